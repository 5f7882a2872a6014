package audit

import (
	"encoding/json"
	"fmt"
	"math"
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
// the bank holidays of spring 2026 in London (genLogFrom starts elsewhere).
func genLog(rng *rand.Rand, n int) []events.Envelope { return genLogFrom(rng, n, spring) }

// spring is where genLog starts: ten days before the clocks go forward.
var spring = time.Date(2026, 3, 20, 0, 0, 0, 0, time.UTC)

// genLogFrom is genLog over the 70 days from t0.
func genLogFrom(rng *rand.Rand, n int, t0 time.Time) []events.Envelope {
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
// instant, or month edges) and sometimes one home, for a log from spring
// (randomQueryFrom for one from t0).
func randomQuery(rng *rand.Rand, loc *time.Location, log []events.Envelope) Query {
	return randomQueryFrom(rng, loc, log, spring)
}

// randomQueryFrom is randomQuery for a log from t0: its instants are also
// the starts of days and months in loc (the edges of chunks and buckets) and
// a nanosecond either side of an event's time.
func randomQueryFrom(rng *rand.Rand, loc *time.Location, log []events.Envelope, t0 time.Time) Query {
	anyTime := func() time.Time {
		switch rng.IntN(6) {
		case 0:
			return log[rng.IntN(len(log))].RecordedAt // exactly an event's time
		case 1:
			return log[rng.IntN(len(log))].RecordedAt.Add(time.Duration(rng.IntN(3)-1) * time.Nanosecond)
		case 2:
			y, mo, _ := t0.In(loc).Date()
			return time.Date(y, mo+time.Month(rng.IntN(4)), 1, 0, 0, 0, 0, loc) // a month's start
		case 3:
			y, mo, d := t0.In(loc).Date()
			return time.Date(y, mo, d+rng.IntN(75), 0, 0, 0, 0, loc) // a day's start
		default:
			return t0.Add(time.Duration(rng.IntN(60*24*90)-60*24*5) * time.Minute)
		}
	}
	windows := []string{"72h", "72h", "72h", "24h", "7d", "90m"}
	q := Query{WindowText: windows[rng.IntN(len(windows))], Location: loc}
	q.Window, _ = ParseWindow(q.WindowText)
	switch rng.IntN(4) {
	case 0:
		q.AsOf = t0.AddDate(1, 0, 0) // after everything
	default:
		q.AsOf = anyTime()
	}
	if rng.IntN(2) == 0 {
		q.From = anyTime()
	}
	if rng.IntN(2) == 0 {
		q.To = anyTime()
	}
	if rng.IntN(12) == 0 {
		q.From = anyTime()
		q.To = q.From // an empty range
	}
	if rng.IntN(4) == 0 {
		q.CareHome = []escalation.CareHomeID{"home-a", "home-b", "nowhere"}[rng.IntN(3)]
	}
	return q
}

// The figures from the buckets equal a scan of every escalation, for random
// logs and random queries, asked while the log is being applied (so that
// escalations change, and their versions with them, between queries) and
// after the whole of it; for logs across the clocks going forward (spring),
// going back (autumn) and the end of a year. Every path is taken: buckets
// added whole, days added whole, escalations judged by their versions.
func TestBucketFiguresEqualFullScan(t *testing.T) {
	loc, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	queries, fast := 0, 0
	var paths [3]int
	for _, run := range []struct {
		t0    time.Time
		seeds uint64
	}{{spring, 30}, {time.Date(2026, 10, 10, 0, 0, 0, 0, time.UTC), 15}, {time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), 15}} {
		for seed := uint64(1); seed <= run.seeds; seed++ {
			rng := rand.New(rand.NewPCG(seed, 7))
			log := genLogFrom(rng, 60+rng.IntN(200), run.t0)
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
					q := randomQueryFrom(rng, loc, log[:i], run.t0)
					if rng.IntN(5) == 0 {
						q.Location = time.UTC
					}
					got := m.Figures(q)
					m.mu.Lock()
					want := m.scanFigures(q)
					ix := m.indexFor(q.Location, q.Window, false)
					if ix != nil {
						for p, n := range ix.paths(q) {
							paths[p] += n
						}
					}
					m.mu.Unlock()
					queries++
					if ix != nil {
						fast++
					}
					g, _ := json.Marshal(got)
					w, _ := json.Marshal(want)
					if string(g) != string(w) {
						t.Fatalf("log from %s, seed %d after %d of %d events, query %+v (indexed %v):\n buckets %s\n scan    %s",
							run.t0.Format(time.DateOnly), seed, i, len(log), q, ix != nil, g, w)
					}
				}
			}
		}
	}
	if fast < queries/2 {
		t.Fatalf("only %d of %d queries used the buckets", fast, queries)
	}
	for p, n := range paths {
		if n == 0 {
			t.Fatalf("no query took path %d (whole buckets, whole days, versions: %v): the test would prove nothing", p, paths)
		}
	}
}

// paths counts how q is answered: buckets added whole, days added whole,
// escalations looked at one by one.
func (ix *index) paths(q Query) (n [3]int) {
	list := ix.list
	if q.CareHome != "" {
		list = ix.homes[q.CareHome]
	}
	for _, b := range list {
		if !b.selects(&q) {
			continue
		}
		if b.whole(&q) {
			n[0]++
			continue
		}
		for _, ch := range b.days {
			if ch == nil || !ch.selects(&q) {
				continue
			}
			if ch.whole(&q) {
				n[1]++
			} else {
				n[2] += len(ch.members)
			}
		}
	}
	return n
}

// The figures equal the scan's at the edges, over the year-end log and the
// spring one, in both zones kept: as of before the first event, as of every
// event's own instant and a nanosecond before it, as of the end of a stay's
// window and just before it; ranges that are empty, reversed, or that start
// or end exactly on a bucket's edge (a month's start), a day's, an
// escalation's raise, or a nanosecond either side.
func TestFiguresEqualFullScanAtEdges(t *testing.T) {
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	for _, t0 := range []time.Time{spring, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)} {
		rng := rand.New(rand.NewPCG(11, uint64(t0.Month())))
		log := genLogFrom(rng, 300, t0)
		m := NewModel()
		m.Keep(london, 72*time.Hour)
		m.Keep(time.UTC, 72*time.Hour)
		for _, env := range log {
			if err := m.Apply(env); err != nil {
				t.Fatal(err)
			}
		}
		m.Figures(Query{Window: 72 * time.Hour, AsOf: t0, Location: london}) // takes the last changes
		var instants []time.Time
		for _, env := range log {
			instants = append(instants, env.RecordedAt, env.RecordedAt.Add(-time.Nanosecond))
		}
		for _, e := range m.escalations {
			if e.DecidedAt != nil {
				end := e.DecidedAt.Add(72 * time.Hour)
				instants = append(instants, end, end.Add(-time.Nanosecond))
			}
		}
		first := slices.MinFunc(log, func(a, b events.Envelope) int { return a.RecordedAt.Compare(b.RecordedAt) }).RecordedAt
		var edges []time.Time
		for _, loc := range []*time.Location{london, time.UTC} {
			y, mo, d := t0.In(loc).Date()
			for i := -1; i < 4; i++ {
				edges = append(edges, time.Date(y, mo+time.Month(i), 1, 0, 0, 0, 0, loc))
			}
			for i := 0; i < 72; i += 3 {
				edges = append(edges, time.Date(y, mo, d+i, 0, 0, 0, 0, loc))
			}
		}
		for _, id := range m.order[:60] {
			e := m.escalations[id]
			edges = append(edges, e.RaisedAt, e.RaisedAt.Add(-time.Nanosecond), e.RaisedAt.Add(time.Nanosecond))
		}
		rng.Shuffle(len(instants), func(i, j int) { instants[i], instants[j] = instants[j], instants[i] })
		instants = instants[:400]
		check := func(q Query) {
			t.Helper()
			g, _ := json.Marshal(m.Figures(q))
			w, _ := json.Marshal(m.FiguresByScan(q))
			if string(g) != string(w) {
				t.Fatalf("query %+v:\n buckets %s\n scan    %s", q, g, w)
			}
		}
		for _, loc := range []*time.Location{london, time.UTC} {
			q := Query{Window: 72 * time.Hour, WindowText: "72h", Location: loc}
			for _, asOf := range []time.Time{first.Add(-time.Nanosecond), first.AddDate(0, 0, -40), t0.AddDate(2, 0, 0)} {
				q.AsOf = asOf
				check(q)
			}
			for _, asOf := range instants {
				q.AsOf = asOf
				check(q)
			}
			q.AsOf = t0.AddDate(1, 0, 0)
			for i, from := range edges {
				q.From, q.To = from, from
				check(q) // empty
				q.To = edges[(i+7)%len(edges)]
				check(q) // reversed, or a range between two edges
				q.From, q.To = time.Time{}, from
				check(q)
				q.From, q.To = from, time.Time{}
				check(q)
				q.From, q.To = from, edges[(i+1)%len(edges)]
				q.AsOf = instants[rng.IntN(len(instants))]
				check(q)
				q.CareHome = "home-b"
				check(q)
				q.CareHome, q.AsOf = "", t0.AddDate(1, 0, 0)
			}
		}
	}
}

// An escalation's versions answer, as of any instant, what the scan adds
// for it then: at each of its steps, a nanosecond either side, and at random.
func TestVersionsEqualContribution(t *testing.T) {
	loc, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for seed := uint64(1); seed <= 10; seed++ {
		rng := rand.New(rand.NewPCG(seed, 3))
		log := genLog(rng, 200)
		m := NewModel()
		m.Keep(loc, 7*24*time.Hour)
		for _, env := range log {
			if err := m.Apply(env); err != nil {
				t.Fatal(err)
			}
		}
		m.Figures(Query{Window: 7 * 24 * time.Hour, AsOf: spring, Location: loc})
		ix := m.indexFor(loc, 7*24*time.Hour, false)
		for _, id := range m.order {
			e := m.escalations[id]
			mb := ix.member(e.seq)
			if mb == nil || mb.e != e {
				t.Fatalf("seed %d: %s is not in the index", seed, id)
			}
			if mb.scan {
				continue // judged by the scan (TestEscalationsBeyondVersionsAreScanned)
			}
			var instants []time.Time
			for _, s := range ix.steps(e, m.recordOf(e.ResidentID), nil) {
				instants = append(instants, s, s.Add(-time.Nanosecond), s.Add(time.Nanosecond))
			}
			for i := 0; i < 20; i++ {
				instants = append(instants, e.RaisedAt.Add(time.Duration(rng.Int64N(int64(20*24*time.Hour)))-time.Hour))
			}
			for _, at := range instants {
				got, ok := mb.at(stampOf(at))
				local := e.RaisedAt.In(loc)
				want := encode(e, m.contribution(e, local, Query{Window: 7 * 24 * time.Hour, AsOf: at, Location: loc}))
				if raised := !e.RaisedAt.After(at); ok != raised || (ok && got != want) {
					t.Fatalf("seed %d, %s as of %s: versions say %v %b, the scan %v %b", seed, id, at, ok, got, raised, want)
				}
				if ok && got.consultant(e) != m.contribution(e, local, Query{Window: 7 * 24 * time.Hour, AsOf: at, Location: loc}).consultant {
					t.Fatalf("seed %d, %s as of %s: consultant differs", seed, id, at)
				}
				checked++
			}
		}
	}
	if checked < 10000 {
		t.Fatalf("only %d instants checked", checked)
	}
}

// Queries on several goroutines, while events are applied in batches, equal
// the scan of the model as it then was (no event applied between the two:
// the position did not move), and after the whole log they equal its scan
// (run with -race: queries share the read lock, appends take the write lock).
func TestFiguresDuringAppends(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	log := genLog(rng, 400)
	m := NewModel()
	m.Keep(time.UTC, 72*time.Hour)
	done := make(chan struct{})
	verified := make(chan struct{}, 1)
	errs := make(chan error, 4)
	for g := 0; g < 4; g++ {
		go func(g int) {
			rng := rand.New(rand.NewPCG(uint64(g), 9))
			for {
				select {
				case <-done:
					errs <- nil
					return
				default:
				}
				q := randomQuery(rng, time.UTC, log)
				q.Window, q.WindowText = 72*time.Hour, "72h"
				before := m.Position()
				got, _ := json.Marshal(m.Figures(q))
				want, _ := json.Marshal(m.FiguresByScan(q))
				if m.Position() != before {
					continue // an event came between the two
				}
				if string(got) != string(want) {
					errs <- fmt.Errorf("at position %d, query %+v:\n buckets %s\n scan    %s", before, q, got, want)
					return
				}
				select {
				case verified <- struct{}{}:
				default:
				}
			}
		}(g)
	}
	deadline := time.After(time.Minute)
	for i := 0; i < len(log); {
		for n := 1 + rng.IntN(20); n > 0 && i < len(log); n-- {
			if err := m.Apply(log[i]); err != nil {
				t.Fatal(err)
			}
			i++
		}
		select { // a query checked between this batch and the next
		case <-verified:
		case err := <-errs:
			t.Fatal(err)
		case <-deadline:
			t.Fatal("no query was checked within a minute")
		}
	}
	close(done)
	for g := 0; g < 4; g++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for k := 0; k < 50; k++ {
		q := randomQuery(rng, time.UTC, log)
		q.Window = 72 * time.Hour
		g, _ := json.Marshal(m.Figures(q))
		w, _ := json.Marshal(m.FiguresByScan(q))
		if string(g) != string(w) {
			t.Fatalf("query %+v:\n buckets %s\n scan    %s", q, g, w)
		}
	}
}

// Nearest-rank selection over many sorted runs (some empty, some long, with
// repeats, negative and extreme values), less runs of some of their values,
// equals the k-th of the sorted difference.
func TestKthOfRunsEqualsSortedUnion(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	for trial := 0; trial < 600; trial++ {
		var runs, minus [][]int64
		var union, kept []int64
		for r := rng.IntN(40); r >= 0; r-- {
			run := make([]int64, rng.IntN(50))
			for i := range run {
				switch rng.IntN(10) {
				case 0:
					run[i] = math.MaxInt64 - int64(rng.IntN(3))
				case 1:
					run[i] = math.MinInt64 + int64(rng.IntN(3))
				default:
					run[i] = int64(rng.IntN(2000)) - 500
				}
			}
			slices.Sort(run)
			runs = append(runs, run)
			union = append(union, run...)
		}
		if trial%2 == 1 { // take some away, in runs of their own
			rng.Shuffle(len(union), func(i, j int) { union[i], union[j] = union[j], union[i] })
			cut := rng.IntN(len(union) + 1)
			away := union[:cut]
			kept = slices.Clone(union[cut:])
			for len(away) > 0 {
				n := 1 + rng.IntN(len(away))
				run := slices.Clone(away[:n])
				slices.Sort(run)
				minus = append(minus, run)
				away = away[n:]
			}
			union = kept
		}
		if len(union) == 0 {
			continue
		}
		slices.Sort(union)
		for _, k := range []int{1, len(union), 1 + rng.IntN(len(union)), (len(union) + 1) / 2} {
			if got := kth(runs, minus, k); got != union[k-1] {
				t.Fatalf("trial %d: kth %d of %d (%d runs less %d) = %d, want %d", trial, k, len(union), len(runs), len(minus), got, union[k-1])
			}
		}
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
	if b := ix.places[0].b; b == nil || !b.whole(&q) {
		t.Fatal("the settled escalation's bucket is not added whole")
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
			s.change(ref[j], -1, false)
			ref = append(ref[:j], ref[j+1:]...)
		} else {
			v := int64(rng.IntN(500))
			s.change(v, 1, false)
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
		if got := kth(runs, nil, k); got != union[k-1] {
			t.Errorf("kth %d = %d, want %d", k, got, union[k-1])
		}
	}
}

// An escalation with an instant no version can hold exactly (a follow-up
// recorded billions of years on), or with more versions than a member
// holds, is judged as the scan judges it, and the others beside it still by
// their versions.
func TestEscalationsBeyondVersionsAreScanned(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	far := time.Unix(1<<62+5, 0)
	mk := func(pos int, rid string, at time.Time, ev escalation.Event) events.Envelope {
		data, _ := json.Marshal(ev)
		return events.Envelope{ID: fmt.Sprint(pos), Stream: "resident-" + rid, Version: int64(pos), Position: int64(pos), Type: ev.EventType(), RecordedAt: at, Data: data}
	}
	stay := func(id escalation.EscalationID, by escalation.Username) *escalation.EscalationDecided {
		return &escalation.EscalationDecided{EscalationID: id, Outcome: escalation.OutcomeStay, Counterfactual: escalation.CounterfactualED, DecidedBy: by}
	}
	m := NewModel()
	m.Keep(time.UTC, 72*time.Hour)
	var instants []time.Time
	for i, env := range []events.Envelope{
		mk(1, "r1", t0, &escalation.EscalationRaised{EscalationID: "e1", CareHomeID: "h"}),
		mk(2, "r2", t0.Add(time.Minute), &escalation.EscalationRaised{EscalationID: "e2", CareHomeID: "h"}),
		mk(3, "r3", t0.Add(time.Minute), &escalation.EscalationRaised{EscalationID: "e3", CareHomeID: "h"}),
		mk(4, "r1", t0.Add(2*time.Minute), &escalation.EscalationAccepted{EscalationID: "e1", By: escalation.Person{Username: "dr.a"}}),
		mk(5, "r2", t0.Add(3*time.Minute), &escalation.EscalationAccepted{EscalationID: "e2", By: escalation.Person{Username: "dr.a"}}),
		mk(6, "r3", t0.Add(4*time.Minute), &escalation.EscalationUnanswered{EscalationID: "e3"}),
		mk(7, "r3", t0.Add(5*time.Minute), &escalation.EscalationWithdrawn{EscalationID: "e3"}),
		mk(8, "r3", t0.Add(6*time.Minute), &escalation.EscalationAccepted{EscalationID: "e3", By: escalation.Person{Username: "dr.c"}}),
		mk(9, "r1", t0.Add(7*time.Minute), stay("e1", "dr.b")),
		mk(10, "r2", t0.Add(8*time.Minute), stay("e2", "dr.a")),
		mk(11, "r3", t0.Add(9*time.Minute), stay("e3", "dr.d")),
		mk(12, "r3", t0.Add(20*time.Hour), &escalation.ResidentDied{At: t0.Add(19 * time.Hour)}),
		mk(13, "r3", t0.Add(30*time.Hour), &escalation.HospitalAdmissionRecorded{At: t0.Add(10 * time.Hour), Kind: escalation.AdmissionKindAdmission, Unplanned: true}),
		mk(14, "r1", far, &escalation.EscalationFollowedUp{EscalationID: "e1", Status: escalation.FollowUpAtHome, At: t0.Add(4 * 24 * time.Hour)}),
	} {
		if err := m.Apply(env); err != nil {
			t.Fatal(i, err)
		}
		instants = append(instants, env.RecordedAt.Add(-time.Nanosecond), env.RecordedAt)
	}
	m.Figures(Query{Window: 72 * time.Hour, AsOf: t0, Location: time.UTC})
	ix := m.indexFor(time.UTC, 72*time.Hour, false)
	if !ix.member(0).scan || ix.member(1).scan || !ix.member(2).scan {
		t.Fatalf("scan marks: e1 %v, e2 %v, e3 %v; want e1 and e3", ix.member(0).scan, ix.member(1).scan, ix.member(2).scan)
	}
	instants = append(instants, t0.Add(time.Hour), t0.AddDate(1, 0, 0), far.Add(time.Second))
	for _, asOf := range instants {
		for _, from := range []time.Time{{}, t0.Add(30 * time.Second)} {
			q := Query{Window: 72 * time.Hour, WindowText: "72h", AsOf: asOf, From: from, Location: time.UTC}
			g, _ := json.Marshal(m.Figures(q))
			w, _ := json.Marshal(m.FiguresByScan(q))
			if string(g) != string(w) {
				t.Fatalf("as of %s from %s:\n buckets %s\n scan    %s", asOf, from, g, w)
			}
		}
	}
}

// Queries as of instants in any order (later then earlier, earlier then
// later, shuffled, the same one twice) each equal the scan as of their own
// instant: nothing answered for one instant is reused for another. The
// instants are the log's own times, the ends of stays' windows and a
// nanosecond either side of each, in the zone and windows kept and in
// others (built by the first query that asks).
func TestFiguresAsOfInAnyOrderEqualFullScan(t *testing.T) {
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(21, 4))
	log := genLog(rng, 250)
	m := NewModel()
	m.Keep(london, 72*time.Hour)
	for _, env := range log {
		if err := m.Apply(env); err != nil {
			t.Fatal(err)
		}
	}
	var instants []time.Time
	for _, env := range log {
		instants = append(instants, env.RecordedAt, env.RecordedAt.Add(-time.Nanosecond))
	}
	for _, e := range m.escalations {
		if e.DecidedAt != nil {
			for _, w := range []time.Duration{72 * time.Hour, 24 * time.Hour} {
				end := e.DecidedAt.Add(w)
				instants = append(instants, end, end.Add(-time.Nanosecond))
			}
		}
	}
	slices.SortFunc(instants, func(a, b time.Time) int { return a.Compare(b) })
	rng.Shuffle(len(instants), func(i, j int) { instants[i], instants[j] = instants[j], instants[i] })
	instants = instants[:150]
	slices.SortFunc(instants, func(a, b time.Time) int { return b.Compare(a) }) // latest first
	orders := [][]time.Time{instants, slices.Clone(instants), slices.Clone(instants)}
	slices.Reverse(orders[1]) // earliest first
	rng.Shuffle(len(orders[2]), func(i, j int) { orders[2][i], orders[2][j] = orders[2][j], orders[2][i] })
	checked := 0
	for _, w := range []struct {
		loc    *time.Location
		window time.Duration
	}{{london, 72 * time.Hour}, {london, 24 * time.Hour}, {time.UTC, 72 * time.Hour}} {
		for o, order := range orders {
			for i, asOf := range order {
				q := randomQuery(rng, w.loc, log)
				q.Location, q.Window, q.AsOf = w.loc, w.window, asOf
				if i%3 == 0 {
					q.From, q.To, q.CareHome = time.Time{}, time.Time{}, "" // every bucket
				}
				for range 2 { // and the same query again, right after
					g, _ := json.Marshal(m.Figures(q))
					s, _ := json.Marshal(m.FiguresByScan(q))
					if string(g) != string(s) {
						t.Fatalf("order %d, query %d %+v:\n buckets %s\n scan    %s", o, i, q, g, s)
					}
					checked++
				}
			}
		}
	}
	if ix := m.indexFor(time.UTC, 72*time.Hour, false); ix == nil {
		t.Fatal("the queries in UTC were not answered from buckets: the test would prove little")
	}
	if checked < 2000 {
		t.Fatalf("only %d queries checked", checked)
	}
}

// Queries on many goroutines at once, as of different instants, in the
// windows kept and in new ones (whose buckets the first such query builds
// under the write lock while others read), each equal the scan as of its
// own instant: queries sharing the read lock share no scratch and change
// nothing another reads (run with -race). The model does not change while
// they run, so every query is checked.
func TestConcurrentQueriesAsOfEqualFullScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 2))
	log := genLog(rng, 300)
	m := NewModel()
	m.Keep(time.UTC, 72*time.Hour)
	for _, env := range log {
		if err := m.Apply(env); err != nil {
			t.Fatal(err)
		}
	}
	const goroutines, each = 8, 150
	errs := make(chan error, goroutines)
	start := make(chan struct{})
	for g := range goroutines {
		go func() {
			rng := rand.New(rand.NewPCG(uint64(g), 31))
			<-start
			for i := range each {
				q := randomQuery(rng, time.UTC, log)
				if i%2 == 0 {
					q.Window, q.WindowText = 72*time.Hour, "72h"
				}
				got, _ := json.Marshal(m.Figures(q))
				want, _ := json.Marshal(m.FiguresByScan(q))
				if string(got) != string(want) {
					errs <- fmt.Errorf("goroutine %d, query %d %+v:\n buckets %s\n scan    %s", g, i, q, got, want)
					return
				}
			}
			errs <- nil
		}()
	}
	close(start)
	for range goroutines {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	m.mu.RLock()
	n := len(m.indexes)
	m.mu.RUnlock()
	if n < 2 {
		t.Fatalf("%d indexes: no query built one while others read", n)
	}
}

// The admissions-avoided scenario in small, with a window of seconds: stays
// decided one after another, as of an instant inside their windows, are all
// pending, whatever was asked before (as of after the confirmation, as of
// between the windows' end and it); as of those later instants they are
// unconfirmed, avoided or neither. The window's buckets are built by the
// first query, as the API's are for a window it does not keep.
func TestStaysPendingAsOfInsideWindowAfterLaterQueries(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 5, 46, 0, 0, time.UTC)
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	pos := 0
	mk := func(rid string, at time.Time, ev escalation.Event) events.Envelope {
		pos++
		data, _ := json.Marshal(ev)
		return events.Envelope{ID: fmt.Sprint(pos), Stream: "resident-" + rid, Version: int64(pos), Position: int64(pos), Type: ev.EventType(), RecordedAt: at, Data: data}
	}
	var log []events.Envelope
	stays := []struct {
		id, rid string
		cf      escalation.Counterfactual
	}{{"confirmed", "rc-101", escalation.CounterfactualED}, {"unconfirmed", "rc-102", escalation.CounterfactualED}, {"gp", "rc-103", escalation.CounterfactualGP}}
	var lastDecided time.Time
	for i, s := range stays {
		at := t0.Add(ms(300 * i))
		id := escalation.EscalationID(s.id)
		log = append(log,
			mk(s.rid, at, &escalation.EscalationRaised{EscalationID: id, CareHomeID: "rose-court"}),
			mk(s.rid, at.Add(ms(40)), &escalation.EscalationAccepted{EscalationID: id, By: escalation.Person{Username: "dr.okafor"}}),
			mk(s.rid, at.Add(ms(80)), &escalation.EscalationDecided{EscalationID: id, Outcome: escalation.OutcomeStay, Counterfactual: s.cf, DecidedBy: "dr.okafor"}))
		lastDecided = at.Add(ms(80))
	}
	const window = 4 * time.Second
	firstEnd := t0.Add(ms(80)).Add(window)
	confirmedAt := lastDecided.Add(window + ms(100))
	log = append(log, mk("rc-101", confirmedAt, &escalation.EscalationFollowedUp{EscalationID: "confirmed", Status: escalation.FollowUpAtHome, At: confirmedAt}))
	m := NewModel()
	m.Keep(time.UTC, 72*time.Hour)
	for _, env := range log {
		if err := m.Apply(env); err != nil {
			t.Fatal(err)
		}
	}
	inside := lastDecided.Add(time.Second) // inside every window
	between := confirmedAt.Add(-ms(1))     // every window over, the confirmation not yet recorded
	after := confirmedAt.Add(time.Hour)
	want := map[time.Time][3]int{ // pending, avoided, unconfirmed
		inside:                  {3, 0, 0},
		firstEnd.Add(-ms(1)):    {3, 0, 0},
		firstEnd:                {2, 0, 1},
		between:                 {0, 0, 2},
		after:                   {0, 1, 1},
		lastDecided.Add(window): {0, 0, 2},
	}
	for _, order := range [][]time.Time{
		{after, inside, between, inside, firstEnd, firstEnd.Add(-ms(1)), after, lastDecided.Add(window), inside},
		{inside, after, firstEnd.Add(-ms(1)), between, firstEnd, inside},
	} {
		for _, asOf := range order {
			q := Query{Window: window, WindowText: "4s", AsOf: asOf, From: t0.Add(-time.Minute), To: t0.Add(time.Hour), Location: time.UTC}
			f := m.Figures(q)
			if got := [3]int{f.PendingWindow, f.AdmissionsAvoided, f.AvoidedUnconfirmed}; got != want[asOf] {
				t.Errorf("as of %s: pending, avoided, unconfirmed = %v, want %v", asOf.Format(time.RFC3339Nano), got, want[asOf])
			}
			g, _ := json.Marshal(f)
			s, _ := json.Marshal(m.FiguresByScan(q))
			if string(g) != string(s) {
				t.Errorf("as of %s:\n buckets %s\n scan    %s", asOf.Format(time.RFC3339Nano), g, s)
			}
		}
	}
	if m.indexFor(time.UTC, window, false) == nil {
		t.Fatal("the 4s window was not answered from buckets")
	}
}

// Every stay outcome round-trips through a code, with the flags beside it
// intact; an outcome with no code is refused loudly, never packed as
// uint16(-1) over the flags.
func TestStayOutcomesRoundTripThroughCodes(t *testing.T) {
	e := &Escalation{DecidedBy: "dr.okafor"}
	for _, stay := range stayCodes {
		c := encode(e, contribution{decided: true, withdrawn: true, stay: stay})
		if c.stay() != stay || !c.has(codeDecided) || !c.has(codeWithdrawn) || c.has(codeAdmit) || !c.has(codeByDecider) {
			t.Errorf("stay %q: code %016b reads back stay %q", stay, c, c.stay())
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("a stay outcome with no code was encoded")
		}
	}()
	encode(e, contribution{decided: true, stay: "not-an-outcome"})
}
