package audit

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/escalation/news2"
	"github.com/nightcall-health/nightcall/events"
)

// genLog writes a random log: escalations raised, accepted, left
// unanswered, decided (admit or stay, each counterfactual), withdrawn and
// followed up (some follow-ups recorded days late), hospital admissions and
// deaths (some residents die twice), a raise repeated under the same ID,
// and events recorded out of time order. Times span the clock change and
// the bank holidays of spring 2026 in London.
func genLog(rng *rand.Rand, n int) []events.Envelope {
	t0 := time.Date(2026, 3, 20, 0, 0, 0, 0, time.UTC)
	homes := []escalation.CareHomeID{"home-a", "home-b", "home-c"}
	consultants := []escalation.Username{"dr.a", "dr.b", "dr.c"}
	type rec struct {
		at  time.Time
		rid escalation.ResidentID
		ev  escalation.Event
	}
	var recs []rec
	add := func(at time.Time, rid escalation.ResidentID, ev escalation.Event) {
		recs = append(recs, rec{at, rid, ev})
	}
	minutes := func(lo, hi int) time.Duration { return time.Duration(lo+rng.IntN(hi-lo+1)) * time.Minute }
	var ids []escalation.EscalationID
	for i := 0; i < n; i++ {
		rid := escalation.ResidentID(fmt.Sprintf("r%d", rng.IntN(10)))
		home := homes[rng.IntN(len(homes))]
		id := escalation.EscalationID(fmt.Sprintf("e%d", i))
		if len(ids) > 0 && rng.IntN(40) == 0 {
			id = ids[rng.IntN(len(ids))] // the same raise again
		}
		ids = append(ids, id)
		raised := t0.Add(minutes(0, 60*24*70))
		total := rng.IntN(12)
		risk := news2.RiskMedium
		add(raised, rid, &escalation.EscalationRaised{EscalationID: id, CareHomeID: home, NEWS2: &news2.Result{Total: &total, Risk: &risk}, SBARD: escalation.SBARD{Situation: "s"}})
		if rng.IntN(5) == 0 {
			add(raised.Add(minutes(5, 30)), rid, &escalation.EscalationUnanswered{EscalationID: id})
		}
		if rng.IntN(8) == 0 {
			add(raised.Add(minutes(1, 90)), rid, &escalation.EscalationWithdrawn{EscalationID: id})
			continue
		}
		if rng.IntN(6) == 0 {
			continue // never accepted
		}
		accepted := raised.Add(time.Duration(rng.IntN(3600_000)) * time.Millisecond)
		by := consultants[rng.IntN(len(consultants))]
		add(accepted, rid, &escalation.EscalationAccepted{EscalationID: id, By: escalation.Person{Username: by}})
		if rng.IntN(6) == 0 {
			continue // accepted, not decided
		}
		decided := accepted.Add(minutes(1, 120))
		outcome := escalation.OutcomeStay
		if rng.IntN(3) == 0 {
			outcome = escalation.OutcomeAdmit
		}
		cf := []escalation.Counterfactual{escalation.CounterfactualED, escalation.CounterfactualED, escalation.CounterfactualGP, escalation.CounterfactualNone}[rng.IntN(4)]
		decidedBy := by
		if rng.IntN(5) == 0 {
			decidedBy = consultants[rng.IntN(len(consultants))]
		} else if rng.IntN(10) == 0 {
			decidedBy = ""
		}
		add(decided, rid, &escalation.EscalationDecided{EscalationID: id, Outcome: outcome, Counterfactual: cf, DecidedBy: decidedBy})
		for k := rng.IntN(3); k > 0; k-- {
			status := []escalation.FollowUpStatus{escalation.FollowUpAtHome, escalation.FollowUpAtHome, escalation.FollowUpAdmitted,
				escalation.FollowUpEDAttendance, escalation.FollowUpDied}[rng.IntN(5)]
			at := decided.Add(minutes(0, 60*24*5))
			add(at.Add(minutes(0, 60*24*3)), rid, &escalation.EscalationFollowedUp{EscalationID: id, Status: status, At: at})
		}
	}
	for i := 0; i < n/6; i++ {
		rid := escalation.ResidentID(fmt.Sprintf("r%d", rng.IntN(10)))
		at := t0.Add(minutes(0, 60*24*72))
		kind := []escalation.AdmissionKind{escalation.AdmissionKindAdmission, escalation.AdmissionKindEDAttendance}[rng.IntN(2)]
		add(at.Add(minutes(0, 60*24*4)), rid, &escalation.HospitalAdmissionRecorded{At: at, Kind: kind, Unplanned: rng.IntN(4) != 0})
	}
	for i := 0; i < 3; i++ {
		rid := escalation.ResidentID(fmt.Sprintf("r%d", rng.IntN(10)))
		at := t0.Add(minutes(0, 60*24*72))
		add(at.Add(minutes(0, 60*24*2)), rid, &escalation.ResidentDied{At: at, Expected: rng.IntN(2) == 0})
	}
	slices.SortStableFunc(recs, func(a, b rec) int { return a.at.Compare(b.at) })
	for i := 0; i < len(recs)/20; i++ { // some recorded out of time order
		j := rng.IntN(len(recs) - 1)
		recs[j], recs[j+1] = recs[j+1], recs[j]
	}
	out := make([]events.Envelope, len(recs))
	for i, r := range recs {
		data, _ := json.Marshal(r.ev)
		out[i] = events.Envelope{ID: fmt.Sprint(i), Stream: escalation.ResidentStream(r.rid), Version: int64(i + 1), Position: int64(i + 1),
			Type: r.ev.EventType(), RecordedAt: r.at, Data: data}
	}
	return out
}

// randomQuery picks an as-of instant (before, inside or after the log, or
// on an event's own time), a window (kept or not), a range (open, any
// instant, or month edges) and sometimes one home.
func randomQuery(rng *rand.Rand, loc *time.Location, log []events.Envelope) Query {
	t0 := time.Date(2026, 3, 20, 0, 0, 0, 0, time.UTC)
	anyTime := func() time.Time {
		switch rng.IntN(4) {
		case 0:
			return log[rng.IntN(len(log))].RecordedAt // exactly an event's time
		case 1:
			return time.Date(2026, time.Month(3+rng.IntN(4)), 1, 0, 0, 0, 0, loc) // a month's start
		default:
			return t0.Add(time.Duration(rng.IntN(60*24*90)-60*24*5) * time.Minute)
		}
	}
	windows := []string{"72h", "72h", "72h", "24h", "7d", "90m"}
	q := Query{WindowText: windows[rng.IntN(len(windows))], Location: loc}
	q.Window, _ = ParseWindow(q.WindowText)
	switch rng.IntN(4) {
	case 0:
		q.AsOf = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC) // after everything
	default:
		q.AsOf = anyTime()
	}
	if rng.IntN(2) == 0 {
		q.From = anyTime()
	}
	if rng.IntN(2) == 0 {
		q.To = anyTime()
	}
	if rng.IntN(4) == 0 {
		q.CareHome = []escalation.CareHomeID{"home-a", "home-b", "nowhere"}[rng.IntN(3)]
	}
	return q
}

// The figures from the buckets equal a scan of every escalation, for random
// logs and random queries, asked while the log is being applied (so that
// escalations settle, change after settling and settle again between
// queries) and after the whole of it.
func TestBucketFiguresEqualFullScan(t *testing.T) {
	loc, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	queries, fast := 0, 0
	for seed := uint64(1); seed <= 40; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		log := genLog(rng, 60+rng.IntN(200))
		m := NewModel()
		m.Keep(loc, 72*time.Hour)
		m.Keep(time.UTC, 24*time.Hour)
		for i := 0; i < len(log); {
			step := 1 + rng.IntN(len(log)/4+1)
			for ; step > 0 && i < len(log); step-- {
				if err := m.Apply(log[i]); err != nil {
					t.Fatal(err)
				}
				i++
			}
			for k := 0; k < 12; k++ {
				q := randomQuery(rng, loc, log[:i])
				if rng.IntN(5) == 0 {
					q.Location = time.UTC
				}
				got := m.Figures(q)
				m.mu.Lock()
				want := m.scanFigures(q)
				indexed := m.indexFor(q.Location, q.Window, false) != nil
				m.mu.Unlock()
				queries++
				if indexed {
					fast++
				}
				g, _ := json.Marshal(got)
				w, _ := json.Marshal(want)
				if string(g) != string(w) {
					t.Fatalf("seed %d after %d of %d events, query %+v (indexed %v):\n buckets %s\n scan    %s", seed, i, len(log), q, indexed, g, w)
				}
			}
		}
		ix := m.indexFor(loc, 72*time.Hour, false)
		inBuckets := 0
		for _, b := range ix.list {
			inBuckets += len(b.esc)
		}
		if inBuckets == 0 {
			t.Fatalf("seed %d: no escalation reached a bucket: the test would prove nothing", seed)
		}
	}
	if fast < queries/2 {
		t.Fatalf("only %d of %d queries used the buckets", fast, queries)
	}
}

// An escalation already in a bucket that a late event changes leaves it:
// a follow-up recorded days after the stay's window moves the figure.
func TestBucketsFollowLateChanges(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	mk := func(pos int, at time.Time, ev escalation.Event) events.Envelope {
		data, _ := json.Marshal(ev)
		return events.Envelope{ID: fmt.Sprint(pos), Stream: "resident-r1", Version: int64(pos), Position: int64(pos), Type: ev.EventType(), RecordedAt: at, Data: data}
	}
	m := NewModel()
	m.Keep(time.UTC, 72*time.Hour)
	for i, env := range []events.Envelope{
		mk(1, t0, &escalation.EscalationRaised{EscalationID: "e1", CareHomeID: "h"}),
		mk(2, t0.Add(time.Minute), &escalation.EscalationAccepted{EscalationID: "e1", By: escalation.Person{Username: "dr.a"}}),
		mk(3, t0.Add(10*time.Minute), &escalation.EscalationDecided{EscalationID: "e1", Outcome: escalation.OutcomeStay, Counterfactual: escalation.CounterfactualED, DecidedBy: "dr.a"}),
		mk(4, t0.Add(30*24*time.Hour), &escalation.EscalationRaised{EscalationID: "e2", CareHomeID: "h"}), // time moves on: e1 settles
	} {
		if err := m.Apply(env); err != nil {
			t.Fatal(i, err)
		}
	}
	q := Query{Window: 72 * time.Hour, WindowText: "72h", AsOf: t0.Add(60 * 24 * time.Hour), Location: time.UTC}
	if f := m.Figures(q); f.AvoidedUnconfirmed != 1 || f.AdmissionsAvoided != 0 {
		t.Fatalf("before the follow-up: %+v", f.Counts)
	}
	ix := m.indexFor(time.UTC, 72*time.Hour, false)
	if ix.members[0].b == nil {
		t.Fatal("the settled escalation is not in a bucket")
	}
	if err := m.Apply(mk(5, t0.Add(40*24*time.Hour), &escalation.EscalationFollowedUp{EscalationID: "e1", Status: escalation.FollowUpAtHome, At: t0.Add(4 * 24 * time.Hour)})); err != nil {
		t.Fatal(err)
	}
	if f := m.Figures(q); f.AvoidedUnconfirmed != 0 || f.AdmissionsAvoided != 1 {
		t.Fatalf("after the late follow-up: %+v", f.Counts)
	}
	q.AsOf = t0.Add(35 * 24 * time.Hour) // before the follow-up was recorded
	if f := m.Figures(q); f.AvoidedUnconfirmed != 1 || f.AdmissionsAvoided != 0 {
		t.Fatalf("as of before the late follow-up: %+v", f.Counts)
	}
}

// A bucket's samples, changed by many additions and removals (merged as
// they pile up and at a query), are the multiset they describe, and the
// k-th of several runs is the k-th of their union.
func TestMultisetAndKth(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var s multiset
	var ref []int64
	for i := 0; i < 20000; i++ {
		if len(ref) > 0 && rng.IntN(3) == 0 {
			j := rng.IntN(len(ref))
			s.change(ref[j], -1)
			ref = append(ref[:j], ref[j+1:]...)
		} else {
			v := int64(rng.IntN(500))
			s.change(v, 1)
			ref = append(ref, v)
		}
		if i%997 == 0 {
			s.settle()
			want := slices.Sorted(slices.Values(ref))
			if !slices.Equal(s.sorted, want) {
				t.Fatalf("after %d changes the run has %d values, want %d", i, len(s.sorted), len(want))
			}
		}
	}
	runs := [][]int64{{1, 5, 9}, {}, {2, 2, 3, 10}, {7}}
	union := []int64{1, 2, 2, 3, 5, 7, 9, 10}
	for k := 1; k <= len(union); k++ {
		if got := kth(runs, k); got != union[k-1] {
			t.Errorf("kth %d = %d, want %d", k, got, union[k-1])
		}
	}
}
