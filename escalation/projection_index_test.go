package escalation

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nightcall-health/nightcall/events"
)

// indexLog is a random log of residents admitted to three homes, moving
// between them, and escalations raised, accepted, left unanswered, decided
// and withdrawn, as the read model would be fed it.
func indexLog(t *testing.T, seed uint64, n int) []events.Envelope {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	homes := []CareHomeID{"h1", "h2", "h3"}
	type res struct {
		home CareHomeID
		open EscalationID
	}
	var rs []*res
	var envs []events.Envelope
	versions := map[ResidentID]int64{}
	emit := func(id ResidentID, at time.Time, ev Event) {
		data, err := marshal(ev)
		must(t, err)
		versions[id]++
		envs = append(envs, events.Envelope{ID: fmt.Sprint(len(envs)), Stream: ResidentStream(id), Version: versions[id],
			Position: int64(len(envs) + 1), Type: ev.EventType(), RecordedAt: at, Data: data})
	}
	esc := 0
	for i := range n {
		// Three events to a minute: raises at the same instant, ordered by ID.
		at := t0.Add(time.Duration(i/3) * time.Minute)
		if len(rs) == 0 || rng.IntN(8) == 0 {
			h := homes[rng.IntN(len(homes))]
			rs = append(rs, &res{home: h})
			emit(ResidentID(fmt.Sprint("r", len(rs)-1)), at, &ResidentAdmitted{ResidentID: ResidentID(fmt.Sprint("r", len(rs)-1)), CareHomeID: h, Name: "n", DateOfBirth: "1940-01-02", NHSNumber: "9990000018"})
			continue
		}
		k := rng.IntN(len(rs))
		r, id := rs[k], ResidentID(fmt.Sprint("r", k))
		switch {
		case r.open == "" && rng.IntN(6) == 0:
			to := homes[rng.IntN(len(homes))]
			emit(id, at, &ResidentMoved{From: r.home, To: to})
			r.home = to
		case r.open == "":
			esc++
			r.open = EscalationID(fmt.Sprint("e", esc))
			// Now and then raised in a home the resident's view does not
			// name (the service raises in the resident's home; the read
			// model indexes what the event says all the same).
			home := r.home
			if rng.IntN(10) == 0 {
				home = homes[rng.IntN(len(homes))]
			}
			emit(id, at, &EscalationRaised{EscalationID: r.open, CareHomeID: home, RaisedBy: "night.rose"})
		default:
			switch rng.IntN(4) {
			case 0:
				emit(id, at, &EscalationAccepted{EscalationID: r.open, By: Person{Username: Username(fmt.Sprint("dr", rng.IntN(2)))}})
			case 1:
				emit(id, at, &EscalationUnanswered{EscalationID: r.open, Reason: "r"})
			case 2:
				emit(id, at, &EscalationDecided{EscalationID: r.open, Outcome: OutcomeStay, DecidedBy: "dr0"})
				r.open = ""
			case 3:
				emit(id, at, &EscalationWithdrawn{EscalationID: r.open, Reason: "r", By: "night.rose"})
				r.open = ""
			}
		}
	}
	return envs
}

// TestListsThroughTheIndexesEqualAScanOfEverything: for every kind of
// caller and status filter, the lists the read model answers through its
// indexes (open escalations, residents by home) are those a scan of every
// escalation and resident finds, at every point of a random log and after
// a restore from a snapshot (whose indexes are rebuilt, not stored). The
// scan is the code before the indexes.
func TestListsThroughTheIndexesEqualAScanOfEverything(t *testing.T) {
	now := t0.Add(30 * time.Hour)
	actors := []Actor{
		{Person: Person{Username: "night.rose"}, Role: RoleCareHome, CareHomeID: "h1"},
		{Person: Person{Username: "night.sam"}, Role: RoleCareHome, CareHomeID: "h2"},
		{Person: Person{Username: "dr0"}, Role: RoleConsultant, OnCall: true},
		{Person: Person{Username: "dr1"}, Role: RoleConsultant},
		{Person: Person{Username: "audit"}, Role: RoleAuditor},
	}
	statuses := []string{"", "open", string(StatusPaging), string(StatusUnanswered), string(StatusAccepted), string(StatusDecided), string(StatusWithdrawn)}
	check := func(t *testing.T, p *Projection, at string) {
		t.Helper()
		checked := 0
		for _, a := range actors {
			for _, status := range statuses {
				var want []*EscalationView
				for _, e := range p.Escalations() {
					if matchStatus(e.Status, status) && canSeeEscalation(a, e, false, now) {
						want = append(want, e)
					}
				}
				got := p.EscalationsWhere(selectionFor(a, status), func(e *EscalationView) bool {
					return matchStatus(e.Status, status) && canSeeEscalation(a, e, false, now)
				})
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("%s: %s %q: %d escalations through the indexes, %d by a scan", at, a.Username, status, len(got), len(want))
				}
				checked += len(want)
				// Page by page, each after the last of the one before: the same list.
				for _, limit := range []int{1, 3, 7} {
					var all []*EscalationView
					var after *EscalationKey
					for saidMore := false; ; {
						page, more := p.EscalationsPage(selectionFor(a, status), func(e *EscalationView) bool {
							return matchStatus(e.Status, status) && canSeeEscalation(a, e, false, now)
						}, Page{Limit: limit, After: after})
						if len(page) > limit || (more && len(page) != limit) || (saidMore && len(page) == 0) {
							t.Fatalf("%s: %s %q, pages of %d: a page of %d, more %v (the page before said more: %v)", at, a.Username, status, limit, len(page), more, saidMore)
						}
						all = append(all, page...)
						if !more {
							break
						}
						k := KeyOf(page[len(page)-1])
						after, saidMore = &k, true
					}
					if !reflect.DeepEqual(all, want) {
						t.Fatalf("%s: %s %q: %d escalations in pages of %d, %d in one list", at, a.Username, status, len(all), limit, len(want))
					}
				}
			}
			var want []*ResidentView
			for _, r := range p.Residents() {
				if canSeeResident(a, r, now) {
					want = append(want, r)
				}
			}
			got := p.ResidentsWhere(selectionFor(a, ""), func(r *ResidentView) bool { return canSeeResident(a, r, now) })
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s: %s: %d residents through the indexes, %d by a scan", at, a.Username, len(got), len(want))
			}
			for _, limit := range []int{1, 3, 7} {
				var all []*ResidentView
				var after ResidentID
				for saidMore := false; ; {
					page, more := p.ResidentsPage(selectionFor(a, ""), func(r *ResidentView) bool { return canSeeResident(a, r, now) }, limit, after)
					if len(page) > limit || (more && len(page) != limit) || (saidMore && len(page) == 0) {
						t.Fatalf("%s: %s residents, pages of %d: a page of %d, more %v", at, a.Username, limit, len(page), more)
					}
					all = append(all, page...)
					if !more {
						break
					}
					after, saidMore = page[len(page)-1].ID, true
				}
				if !reflect.DeepEqual(all, want) {
					t.Fatalf("%s: %s: %d residents in pages of %d, %d in one list", at, a.Username, len(all), limit, len(want))
				}
			}
			for _, h := range []CareHomeID{"h1", "h2", "h3"} {
				var want []*EscalationView
				for _, e := range p.Escalations() {
					if e.CareHomeID == h {
						want = append(want, e)
					}
				}
				if got := p.EscalationsWhere(Selection{Home: h}, func(e *EscalationView) bool { return e.CareHomeID == h }); !reflect.DeepEqual(got, want) {
					t.Fatalf("%s: home %s's escalations: %d through the index, %d by a scan", at, h, len(got), len(want))
				}
			}
		}
		var want []OpenEscalation
		for _, e := range p.Escalations() {
			if e.Status.Open() {
				want = append(want, OpenEscalation{ID: e.ID, ResidentID: e.ResidentID})
			}
		}
		got, _ := p.Open()
		slices.SortFunc(got, func(a, b OpenEscalation) int { return strings.Compare(string(a.ID), string(b.ID)) })
		slices.SortFunc(want, func(a, b OpenEscalation) int { return strings.Compare(string(a.ID), string(b.ID)) })
		if !slices.Equal(got, want) {
			t.Fatalf("%s: Open gives %v, a scan %v", at, got, want)
		}
		// Residents leave the open index when their escalation closes (else
		// every list of open ones visits them for ever).
		withOpen := map[ResidentID]bool{}
		for _, o := range want {
			withOpen[o.ResidentID] = true
		}
		if len(p.openRes) != len(withOpen) {
			t.Fatalf("%s: %d residents in the open index, %d with an open escalation", at, len(p.openRes), len(withOpen))
		}
		if checked == 0 {
			t.Fatalf("%s: nothing to compare", at)
		}
	}
	for seed := range uint64(5) {
		envs := indexLog(t, seed, 600)
		p := NewProjection(time.UTC)
		moved := 0
		for i, env := range envs {
			must(t, p.Apply(env))
			if env.Type == TypeResidentMoved {
				moved++
			}
			if i%97 == 96 {
				check(t, p, fmt.Sprintf("seed %d, event %d", seed, i+1))
			}
		}
		if moved == 0 {
			t.Fatalf("seed %d: no resident moved: the log does not test a move", seed)
		}
		check(t, p, fmt.Sprintf("seed %d, the end", seed))
		_, data, err := p.MarshalState()
		must(t, err)
		q := NewProjection(time.UTC)
		must(t, q.RestoreState(data))
		check(t, q, fmt.Sprintf("seed %d, restored", seed))
	}
}
