// Package accounttest is the contract every account.Store must keep. Each
// store backend runs Run against a real instance of itself (events/sqlite on
// a file, events/redis on a real redis-server).
package accounttest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/escalation/account"
)

// Factory returns an empty store for one test; the factory arranges its cleanup.
type Factory func(t *testing.T) account.Store

// Run runs the whole contract against stores from newStore.
func Run(t *testing.T, newStore Factory) {
	tests := []struct {
		name string
		fn   func(*testing.T, account.Store)
	}{
		{"CreateAndLookup", testCreateAndLookup},
		{"Duplicate", testDuplicate},
		{"ConcurrentCreate", testConcurrentCreate},
		{"UnknownUser", testUnknownUser},
		{"ListOrdered", testList},
		{"Sessions", testSessions},
		{"SessionExpiry", testSessionExpiry},
		{"DeleteSession", testDeleteSession},
		{"DisableRevokesSessions", testDisable},
		{"PasswordChangeRevokesSessions", testPasswordChange},
		{"TouchSession", testTouchSession},
		{"RevokeFindsATouchedSession", testRevokeTouched},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

func nurse(name string) account.Account {
	return account.Account{Username: escalation.Username(name), Name: "Nurse " + name, Role: escalation.RoleCareHome,
		CareHomeID: "rose-court", PasswordHash: "$argon2id$hash-of-" + name}
}

func mustCreate(t *testing.T, s account.Store, a account.Account) {
	t.Helper()
	if err := s.CreateUser(ctx(t), a); err != nil {
		t.Fatalf("create %s: %v", a.Username, err)
	}
}

func mustSession(t *testing.T, s account.Store, id, subject string) {
	t.Helper()
	if err := s.CreateSession(ctx(t), id, subject, time.Now().Add(time.Hour)); err != nil {
		t.Fatalf("create session %s: %v", id, err)
	}
}

func live(t *testing.T, s account.Store, id string) bool {
	t.Helper()
	_, _, err := s.Session(ctx(t), id)
	if err != nil && !errors.Is(err, account.ErrNotFound) {
		t.Fatalf("session %s: %v", id, err)
	}
	return err == nil
}

func testCreateAndLookup(t *testing.T, s account.Store) {
	want := nurse("night.rose")
	mustCreate(t, s, want)
	got, err := s.UserByName(ctx(t), want.Username)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("account came back as %+v, want %+v", got, want)
	}
	dr := account.Account{Username: "dr.okafor", Name: "Dr Okafor", Role: escalation.RoleConsultant, Phone: "+447700900123", PasswordHash: "h"}
	mustCreate(t, s, dr)
	if got, _ := s.UserByName(ctx(t), dr.Username); !reflect.DeepEqual(got, dr) {
		t.Fatalf("account without a home came back as %+v", got)
	}
	gp := account.Account{Username: "dr.gp", Name: "Dr Shah", Role: escalation.RoleGP, CareHomeIDs: []escalation.CareHomeID{"rose-court", "elm-house"}, PasswordHash: "h"}
	mustCreate(t, s, gp)
	if got, _ := s.UserByName(ctx(t), gp.Username); !reflect.DeepEqual(got, gp) {
		t.Fatalf("a GP bound to two homes came back as %+v", got)
	}
}

func testDuplicate(t *testing.T, s account.Store) {
	first := nurse("night.rose")
	mustCreate(t, s, first)
	second := nurse("night.rose")
	second.Name, second.PasswordHash = "Someone else", "other"
	if err := s.CreateUser(ctx(t), second); !errors.Is(err, account.ErrExists) {
		t.Fatalf("second create: %v, want ErrExists", err)
	}
	if got, _ := s.UserByName(ctx(t), first.Username); !reflect.DeepEqual(got, first) {
		t.Fatalf("a refused create changed the account: %+v", got)
	}
}

func testConcurrentCreate(t *testing.T, s account.Store) {
	const n = 20
	var wins, exists atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			a := nurse("same.name")
			a.Name = fmt.Sprint("racer ", i)
			switch err := s.CreateUser(ctx(t), a); {
			case err == nil:
				wins.Add(1)
			case errors.Is(err, account.ErrExists):
				exists.Add(1)
			default:
				t.Errorf("create %d: %v", i, err)
			}
		}(i)
	}
	wg.Wait()
	if wins.Load() != 1 || exists.Load() != n-1 {
		t.Fatalf("%d creates won and %d were refused, want 1 and %d", wins.Load(), exists.Load(), n-1)
	}
}

func testUnknownUser(t *testing.T, s account.Store) {
	if _, err := s.UserByName(ctx(t), "nobody"); !errors.Is(err, account.ErrNotFound) {
		t.Errorf("unknown user: %v, want ErrNotFound", err)
	}
	if err := s.SetDisabled(ctx(t), "nobody", true); !errors.Is(err, account.ErrNotFound) {
		t.Errorf("disable unknown user: %v, want ErrNotFound", err)
	}
	if err := s.SetPasswordHash(ctx(t), "nobody", "h"); !errors.Is(err, account.ErrNotFound) {
		t.Errorf("password of unknown user: %v, want ErrNotFound", err)
	}
	if _, err := s.UserByName(ctx(t), "nobody"); !errors.Is(err, account.ErrNotFound) {
		t.Errorf("a refused change created the user: %v", err)
	}
}

func testList(t *testing.T, s account.Store) {
	if users, err := s.Users(ctx(t)); err != nil || len(users) != 0 {
		t.Fatalf("empty store lists %d users, %v", len(users), err)
	}
	for _, name := range []string{"zoe", "amir", "night.rose", "dr.patel"} {
		mustCreate(t, s, nurse(name))
	}
	users, err := s.Users(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	var names []escalation.Username
	for _, u := range users {
		names = append(names, u.Username)
	}
	if fmt.Sprint(names) != "[amir dr.patel night.rose zoe]" {
		t.Fatalf("users listed as %v, want them by username", names)
	}
	if !reflect.DeepEqual(users[2], nurse("night.rose")) {
		t.Fatalf("listed account %+v", users[2])
	}
}

func testSessions(t *testing.T, s account.Store) {
	if _, _, err := s.Session(ctx(t), "no-such-hash"); !errors.Is(err, account.ErrNotFound) {
		t.Fatalf("unknown session: %v, want ErrNotFound", err)
	}
	expires := time.Now().Add(time.Hour)
	if err := s.CreateSession(ctx(t), "hash-1", "night.rose", expires); err != nil {
		t.Fatal(err)
	}
	subject, exp, err := s.Session(ctx(t), "hash-1")
	if err != nil || subject != "night.rose" {
		t.Fatalf("session: %q, %v", subject, err)
	}
	if d := exp.Sub(expires); d < -time.Second || d > time.Second {
		t.Errorf("expiry came back as %v, want about %v", exp, expires)
	}
	// Sessions do not need an account (a guest's subject is a token).
	mustSession(t, s, "hash-2", "guest:e1|family")
	if subject, _, err := s.Session(ctx(t), "hash-2"); err != nil || subject != "guest:e1|family" {
		t.Fatalf("guest session: %q, %v", subject, err)
	}
}

func testSessionExpiry(t *testing.T, s account.Store) {
	if err := s.CreateSession(ctx(t), "past", "night.rose", time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if live(t, s, "past") {
		t.Fatal("a session created already expired is live")
	}
	if err := s.CreateSession(ctx(t), "short", "night.rose", time.Now().Add(300*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	mustSession(t, s, "long", "night.rose")
	deadline := time.Now().Add(20 * time.Second)
	for live(t, s, "short") {
		if time.Now().After(deadline) {
			t.Fatal("a session is still live 20s after it expired")
		}
		time.Sleep(20 * time.Millisecond) // polling a store's clock, not synchronising goroutines
	}
	if !live(t, s, "long") {
		t.Fatal("another session expired with it")
	}
}

func testDeleteSession(t *testing.T, s account.Store) {
	mustSession(t, s, "a", "night.rose")
	mustSession(t, s, "b", "night.rose")
	if err := s.DeleteSession(ctx(t), "a"); err != nil {
		t.Fatal(err)
	}
	if live(t, s, "a") || !live(t, s, "b") {
		t.Fatal("delete removed the wrong session")
	}
	if err := s.DeleteSession(ctx(t), "a"); err != nil {
		t.Fatalf("deleting a deleted session: %v", err)
	}
}

func testDisable(t *testing.T, s account.Store) {
	rose, elm := nurse("night.rose"), nurse("night.elm")
	mustCreate(t, s, rose)
	mustCreate(t, s, elm)
	mustSession(t, s, "rose-phone", "night.rose")
	mustSession(t, s, "rose-laptop", "night.rose")
	mustSession(t, s, "elm-phone", "night.elm")
	if err := s.SetDisabled(ctx(t), rose.Username, true); err != nil {
		t.Fatal(err)
	}
	got, err := s.UserByName(ctx(t), rose.Username)
	if err != nil || !got.Disabled {
		t.Fatalf("after disable: %+v, %v", got, err)
	}
	if live(t, s, "rose-phone") || live(t, s, "rose-laptop") {
		t.Fatal("disabling left a session of the account live")
	}
	if !live(t, s, "elm-phone") {
		t.Fatal("disabling one account ended another's session")
	}
	if err := s.SetDisabled(ctx(t), rose.Username, true); err != nil {
		t.Fatalf("disabling twice: %v", err)
	}
	if err := s.SetDisabled(ctx(t), rose.Username, false); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.UserByName(ctx(t), rose.Username); !reflect.DeepEqual(got, rose) {
		t.Fatalf("after enable: %+v, want %+v", got, rose)
	}
	mustSession(t, s, "rose-again", "night.rose")
	if !live(t, s, "rose-again") {
		t.Fatal("an enabled account cannot hold a session")
	}
}

func testPasswordChange(t *testing.T, s account.Store) {
	rose, elm := nurse("night.rose"), nurse("night.elm")
	mustCreate(t, s, rose)
	mustCreate(t, s, elm)
	mustSession(t, s, "rose-phone", "night.rose")
	mustSession(t, s, "elm-phone", "night.elm")
	if err := s.SetPasswordHash(ctx(t), rose.Username, "new-hash"); err != nil {
		t.Fatal(err)
	}
	got, err := s.UserByName(ctx(t), rose.Username)
	if err != nil || got.PasswordHash != "new-hash" || got.Name != rose.Name || got.Disabled {
		t.Fatalf("after password change: %+v, %v", got, err)
	}
	if live(t, s, "rose-phone") {
		t.Fatal("a password change left a session live")
	}
	if !live(t, s, "elm-phone") {
		t.Fatal("a password change ended another account's session")
	}
}

func testTouchSession(t *testing.T, s account.Store) {
	if err := s.CreateSession(ctx(t), "idle", "night.rose", time.Now().Add(400*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	if err := s.TouchSession(ctx(t), "idle", later); err != nil {
		t.Fatalf("touch a live session: %v", err)
	}
	subject, exp, err := s.Session(ctx(t), "idle")
	if err != nil || subject != "night.rose" {
		t.Fatalf("touched session: %q, %v", subject, err)
	}
	if d := exp.Sub(later); d < -time.Second || d > time.Second {
		t.Errorf("touched expiry %v, want about %v", exp, later)
	}
	// Touching never brings a session back.
	if err := s.TouchSession(ctx(t), "no-such-hash", later); !errors.Is(err, account.ErrNotFound) {
		t.Errorf("touch an unknown session: %v, want ErrNotFound", err)
	}
	mustSession(t, s, "gone", "night.rose")
	if err := s.DeleteSession(ctx(t), "gone"); err != nil {
		t.Fatal(err)
	}
	if err := s.TouchSession(ctx(t), "gone", later); !errors.Is(err, account.ErrNotFound) || live(t, s, "gone") {
		t.Errorf("touch a deleted session: %v (live %v), want ErrNotFound", err, live(t, s, "gone"))
	}
	if err := s.CreateSession(ctx(t), "lapsing", "night.rose", time.Now().Add(200*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for live(t, s, "lapsing") {
		if time.Now().After(deadline) {
			t.Fatal("a session is still live 20s after it expired")
		}
		time.Sleep(20 * time.Millisecond) // polling a store's clock, not synchronising goroutines
	}
	if err := s.TouchSession(ctx(t), "lapsing", later); !errors.Is(err, account.ErrNotFound) || live(t, s, "lapsing") {
		t.Errorf("touch an expired session: %v, want ErrNotFound and still expired", err)
	}
}

// testRevokeTouched: a session touched past the lifetime it was created with
// is still found and revoked by a password change.
func testRevokeTouched(t *testing.T, s account.Store) {
	mustCreate(t, s, nurse("night.rose"))
	if err := s.CreateSession(ctx(t), "short", "night.rose", time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := s.TouchSession(ctx(t), "short", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	// Past the first lifetime, the session lives on by its touch...
	deadline := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond) // waiting out a store TTL, not synchronising goroutines
	}
	if !live(t, s, "short") {
		t.Fatal("a touched session expired at its first expiry")
	}
	// ...and a password change still ends it.
	if err := s.SetPasswordHash(ctx(t), "night.rose", "new-hash"); err != nil {
		t.Fatal(err)
	}
	if live(t, s, "short") {
		t.Fatal("a password change left a touched session live")
	}
}
