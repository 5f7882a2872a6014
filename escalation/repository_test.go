package escalation_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/escalation/news2"
	"github.com/nightcall-health/nightcall/events"
	"github.com/nightcall-health/nightcall/events/sqlite"
)

// The repository loop under real contention: commands racing for one stream
// of a real SQLite store, with the read model fed from its log.

var (
	admin      = escalation.Actor{Person: escalation.Person{Username: "admin"}, Role: escalation.RoleAdmin}
	nightStaff = escalation.Actor{Person: escalation.Person{Username: "night"}, Role: escalation.RoleCareHome, CareHomeID: "h1"}
)

// newService opens a store in t.TempDir, feeds a read model from it and
// returns a service with a home h1 and a resident r1.
func newService(t *testing.T) (*escalation.Service, events.Store) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	store, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "events.db")})
	if err != nil {
		t.Fatal(err)
	}
	read := escalation.NewProjection(time.UTC)
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		var pos int64
		for {
			woken := store.Appended()
			envs, err := store.ReadAll(ctx, pos, 500)
			if err != nil {
				return
			}
			for _, env := range envs {
				if err := read.Apply(env); err != nil {
					t.Error(err)
					return
				}
				pos = env.Position
			}
			if len(envs) == 500 {
				continue
			}
			select {
			case <-ctx.Done():
				return
			case <-woken:
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-fed
		store.Close()
	})
	var n atomic.Int64
	svc, err := escalation.NewService(escalation.Config{Store: store, Read: read, NewID: func() string { return fmt.Sprintf("id-%d", n.Add(1)) }})
	if err != nil {
		t.Fatal(err)
	}
	meta := escalation.Meta{Actor: admin}
	if _, err := svc.RegisterCareHome(ctx, meta, escalation.CareHomeInput{ID: "h1", Name: "Home", FallbackPhone: "+44 1632 960000"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.AdmitResident(ctx, meta, escalation.ResidentInput{ID: "r1", CareHomeID: "h1", Name: "Test",
		DateOfBirth: "1940-01-01", NHSNumber: "9434765919"}); err != nil {
		t.Fatal(err)
	}
	return svc, store
}

// race runs f n times at once and returns the errors, one per run.
func race(n int, f func(i int) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = f(i)
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

func observations(taken time.Time) escalation.Observations {
	rr, spo2, bp, hr, air, a, temp := 16, 97, 120, 70, false, news2.Alert, escalation.Tenths(370)
	return escalation.Observations{RespirationRate: &rr, SpO2: &spo2, OnOxygen: &air, SystolicBP: &bp, Pulse: &hr, Consciousness: &a, Temperature: &temp, TakenAt: taken}
}

// Every command of a race is decided again on the state the others left, so
// none is lost: each writer conflicts at most once per other write, fewer
// times than the loop's bound.
func TestUpdateRetriesEveryRacingCommand(t *testing.T) {
	svc, store := newService(t)
	ctx := context.Background()
	const writers, each = 6, 2
	errs := race(writers, func(i int) error {
		for j := range each {
			if _, err := svc.RecordObservations(ctx, escalation.Meta{Actor: nightStaff}, "r1", observations(time.Now().Add(-time.Duration(i*each+j)*time.Minute))); err != nil {
				return err
			}
		}
		return nil
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("writer %d: %v", i, err)
		}
	}
	envs, err := store.Load(ctx, escalation.ResidentStream("r1"), 0)
	if err != nil {
		t.Fatal(err)
	}
	recorded := 0
	for i, env := range envs {
		if env.Version != int64(i+1) {
			t.Fatalf("event %d has version %d", i, env.Version)
		}
		if env.Type == escalation.TypeObservationsRecorded {
			recorded++
		}
	}
	if recorded != writers*each {
		t.Fatalf("%d observation sets recorded, want %d", recorded, writers*each)
	}
}

// Consultants racing to accept: the loop decides each again after the first
// append, so exactly one wins and every other is told who did.
func TestUpdateDecidesAgainOnTheWinnersState(t *testing.T) {
	svc, _ := newService(t)
	ctx := context.Background()
	o := observations(time.Now())
	esc, err := svc.Raise(ctx, escalation.Meta{Actor: nightStaff}, escalation.RaiseInput{ResidentID: "r1", Observations: &o, SBARD: escalation.SBARD{Situation: "s"}})
	if err != nil {
		t.Fatal(err)
	}
	errs := race(6, func(i int) error {
		dr := escalation.Actor{Person: escalation.Person{Username: escalation.Username(fmt.Sprintf("dr%d", i))}, Role: escalation.RoleConsultant, OnCall: true}
		_, err := svc.Accept(ctx, escalation.Meta{Actor: dr}, esc.ID)
		return err
	})
	won := 0
	for i, err := range errs {
		var aa *escalation.AlreadyAcceptedError
		switch {
		case err == nil:
			won++
		case !errors.As(err, &aa):
			t.Errorf("consultant %d: %v, want another consultant accepted first", i, err)
		}
	}
	if won != 1 {
		t.Fatalf("%d consultants accepted, want exactly 1", won)
	}
}

// A one-time invite opened by many at once is spent once.
func TestUseInviteSpendsOnce(t *testing.T) {
	svc, _ := newService(t)
	ctx := context.Background()
	o := observations(time.Now())
	esc, err := svc.Raise(ctx, escalation.Meta{Actor: nightStaff}, escalation.RaiseInput{ResidentID: "r1", Observations: &o, SBARD: escalation.SBARD{Situation: "s"}})
	if err != nil {
		t.Fatal(err)
	}
	dr := escalation.Actor{Person: escalation.Person{Username: "dr"}, Role: escalation.RoleConsultant, OnCall: true}
	if _, err := svc.Accept(ctx, escalation.Meta{Actor: dr}, esc.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateInvite(ctx, escalation.Meta{Actor: dr}, esc.ID, escalation.CallRoleGP, "hash", time.Hour); err != nil {
		t.Fatal(err)
	}
	roles := make([]escalation.CallRole, 6)
	errs := race(len(roles), func(i int) error {
		var err error
		roles[i], err = svc.UseInvite(ctx, esc.ID, "hash")
		return err
	})
	used := 0
	for i, err := range errs {
		switch {
		case err == nil && roles[i] == escalation.CallRoleGP:
			used++
		case !errors.Is(err, escalation.ErrInviteUsed):
			t.Errorf("guest %d: role %q, %v; want the invite used", i, roles[i], err)
		}
	}
	if used != 1 {
		t.Fatalf("the invite was spent %d times, want once", used)
	}
}

// Rota and care-home commands go through the same loop: none racing is lost.
func TestRotaAndCareHomeCommandsRace(t *testing.T) {
	svc, store := newService(t)
	ctx := context.Background()
	meta := escalation.Meta{Actor: admin}
	yes := func(context.Context, escalation.Username) (bool, error) { return true, nil }
	from := time.Date(2026, 11, 23, 20, 0, 0, 0, time.UTC)
	errs := race(6, func(i int) error {
		_, err := svc.AddOverride(ctx, meta, escalation.Override{From: from, To: from.Add(time.Hour), Covered: "a", By: escalation.Username(fmt.Sprintf("dr%d", i))}, yes)
		return err
	})
	errs = append(errs, race(6, func(i int) error {
		_, err := svc.UpdateCareHome(ctx, meta, escalation.CareHomeInput{ID: "h1", Name: fmt.Sprintf("Home %d", i)}, false)
		return err
	})...)
	for i, err := range errs {
		if err != nil {
			t.Errorf("command %d: %v", i, err)
		}
	}
	rota, err := svc.SetStanding(ctx, meta, [][]escalation.Username{{"a"}}, yes)
	if err != nil {
		t.Fatal(err)
	}
	if len(rota.Overrides) != 6 {
		t.Errorf("%d overrides, want 6", len(rota.Overrides))
	}
	envs, err := store.Load(ctx, escalation.CareHomeStream("h1"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(envs) != 7 {
		t.Errorf("the home's stream has %d events, want its registration and 6 updates", len(envs))
	}
	h, err := svc.UpdateCareHome(ctx, meta, escalation.CareHomeInput{ID: "h1"}, true)
	if err != nil || h.Active {
		t.Fatalf("deactivate: %+v, %v", h, err)
	}
	if _, err := svc.UpdateCareHome(ctx, meta, escalation.CareHomeInput{ID: "nowhere"}, true); !errors.Is(err, escalation.ErrNotFound) {
		t.Fatalf("unknown home: %v, want not found", err)
	}
}
