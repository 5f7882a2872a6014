package escalation

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nightcall-health/nightcall/events"
)

// The lists' benchmark: a read model of 20,000 residents in 20 homes, each
// with 10 escalations raised, accepted and decided (200,000, about 800,000
// events) and 200 more open, as the benchmarks' seeded log has them. Each
// list is measured through the indexes and, beside it in the same run, as
// it was before them: every escalation (or resident) copied, then filtered.
var (
	benchListsOnce sync.Once
	benchLists     *Projection
)

func listsModel(b *testing.B) *Projection {
	benchListsOnce.Do(func() {
		p := NewProjection(time.UTC)
		pos := int64(0)
		apply := func(id ResidentID, at time.Time, ev Event) {
			data, err := marshal(ev)
			if err != nil {
				b.Fatal(err)
			}
			pos++
			if err := p.Apply(events.Envelope{ID: fmt.Sprint(pos), Stream: ResidentStream(id), Position: pos, Type: ev.EventType(), RecordedAt: at, Data: data}); err != nil {
				b.Fatal(err)
			}
		}
		for r := range 20_000 {
			id, home := ResidentID(fmt.Sprintf("r%06d", r)), CareHomeID(fmt.Sprintf("home-%02d", r%20))
			at := t0.Add(-time.Duration(r) * time.Minute)
			apply(id, at, &ResidentAdmitted{ResidentID: id, CareHomeID: home, Name: "x", DateOfBirth: "1940-01-02", NHSNumber: "9990000018"})
			for k := range 10 {
				eid := EscalationID(fmt.Sprintf("e%06d-%02d", r, k))
				t := at.Add(time.Duration(k) * time.Hour)
				apply(id, t, &EscalationRaised{EscalationID: eid, CareHomeID: home, RaisedBy: "night.rose", SBARD: SBARD{Situation: "s"}})
				apply(id, t.Add(time.Minute), &EscalationAccepted{EscalationID: eid, By: Person{Username: "dr.okafor", Name: "Dr Okafor"}})
				apply(id, t.Add(5*time.Minute), &EscalationDecided{EscalationID: eid, Outcome: OutcomeStay, Counterfactual: CounterfactualED, Rationale: "r", Plan: "p", DecidedBy: "dr.okafor"})
			}
			if r%100 == 0 {
				apply(id, t0, &EscalationRaised{EscalationID: EscalationID(fmt.Sprintf("e%06d-open", r)), CareHomeID: home, RaisedBy: "night.rose"})
			}
		}
		benchLists = p
	})
	return benchLists
}

func BenchmarkLists(b *testing.B) {
	p := listsModel(b)
	now := t0.Add(time.Hour)
	consultant := Actor{Person: Person{Username: "dr.patel"}, Role: RoleConsultant, OnCall: true}
	home := Actor{Person: Person{Username: "night.rose"}, Role: RoleCareHome, CareHomeID: "home-07"}
	escalations := func(a Actor, status string) func(*EscalationView) bool {
		return func(e *EscalationView) bool {
			return matchStatus(e.Status, status) && canSeeEscalation(a, e, false, now)
		}
	}
	for _, c := range []struct {
		name   string
		a      Actor
		status string
		want   int
	}{{"consultant-open-queue", consultant, "open", 200}, {"home-decided", home, string(StatusDecided), 10_000}} {
		keep := escalations(c.a, c.status)
		b.Run(c.name+"/copy-all-then-filter", func(b *testing.B) {
			for b.Loop() {
				n := 0
				for _, e := range p.Escalations() {
					if keep(e) {
						n++
					}
				}
				if n != c.want {
					b.Fatalf("%d, want %d", n, c.want)
				}
			}
		})
		b.Run(c.name+"/indexed", func(b *testing.B) {
			for b.Loop() {
				if n := len(p.EscalationsWhere(selectionFor(c.a, c.status), keep)); n != c.want {
					b.Fatalf("%d, want %d", n, c.want)
				}
			}
		})
	}
	auditor := Actor{Person: Person{Username: "auditor"}, Role: RoleAuditor}
	all := escalations(auditor, "")
	b.Run("auditor-all/whole-list", func(b *testing.B) {
		for b.Loop() {
			if n := len(p.EscalationsWhere(selectionFor(auditor, ""), all)); n != 200_200 {
				b.Fatalf("%d, want 200,200", n)
			}
		}
	})
	b.Run("auditor-all/first-page-of-100", func(b *testing.B) {
		for b.Loop() {
			if page, more := p.EscalationsPage(selectionFor(auditor, ""), all, Page{Limit: 100}); len(page) != 100 || !more {
				b.Fatalf("%d, more %v", len(page), more)
			}
		}
	})
	keepRes := func(r *ResidentView) bool { return canSeeResident(home, r, now) }
	b.Run("home-residents/copy-all-then-filter", func(b *testing.B) {
		for b.Loop() {
			n := 0
			for _, r := range p.Residents() {
				if keepRes(r) {
					n++
				}
			}
			if n != 1000 {
				b.Fatalf("%d residents, want 1000", n)
			}
		}
	})
	b.Run("home-residents/indexed", func(b *testing.B) {
		for b.Loop() {
			if n := len(p.ResidentsWhere(selectionFor(home, ""), keepRes)); n != 1000 {
				b.Fatalf("%d residents, want 1000", n)
			}
		}
	})
}
