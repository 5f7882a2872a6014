package audit

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/escalation/news2"
	"github.com/nightcall-health/nightcall/events"
)

// benchLog is a log shaped like the one `nightcall bench --scenario audit`
// seeds, of about n events: residents of 20 homes with up to 60
// escalations each, raised, accepted, read and decided, a third admitted,
// the rest followed up or admitted later. With vary, the times to accept and
// to decide vary from one escalation to the next (the bench's are all alike,
// which makes every percentile's search end at once).
func benchLog(n int, vary bool) []events.Envelope {
	var out []events.Envelope
	benchEvents(n, vary, func(env events.Envelope) { out = append(out, env) })
	return out
}

// benchEvents hands benchLog's events to each, one by one.
func benchEvents(n int, vary bool, each func(events.Envelope)) {
	written := 0
	start := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	total7 := 7
	risk := news2.RiskHigh
	score := &news2.Result{Total: &total7, Risk: &risk}
	add := func(rid escalation.ResidentID, e escalation.Event, at time.Time) {
		b, _ := json.Marshal(e)
		written++
		p := int64(written)
		each(events.Envelope{ID: fmt.Sprint(p), Stream: escalation.ResidentStream(rid), Position: p, Version: p,
			Type: e.EventType(), RecordedAt: at, Data: b})
	}
	for r := 0; written < n; r++ {
		size, escs := 1, 0
		for ; escs < 60 && written+size < n; escs++ {
			size += 4
			if escs%3 != 0 {
				size++
			}
		}
		rid := escalation.ResidentID(fmt.Sprintf("r%06d", r))
		home := escalation.CareHomeID(fmt.Sprintf("home-%02d", r%20))
		at := start.Add(time.Duration(r) * 7 * time.Minute)
		add(rid, &escalation.ResidentAdmitted{ResidentID: rid, CareHomeID: home, Name: "x", SpO2Scale: 1}, at)
		for k := 0; k < escs; k++ {
			eid := escalation.EscalationID(fmt.Sprintf("e-%d-%d", r, k))
			t := at.Add(time.Duration(k) * 96 * time.Hour)
			outcome := escalation.OutcomeStay
			if k%3 == 0 {
				outcome = escalation.OutcomeAdmit
			}
			add(rid, &escalation.EscalationRaised{EscalationID: eid, CareHomeID: home, NEWS2: score, SBARD: escalation.SBARD{Situation: "s"}}, t)
			accept, decide := 90*time.Second, 10*time.Minute
			if vary {
				accept += time.Duration((r*7919+k*104729)%600_000) * time.Millisecond
				decide = accept + 510*time.Second + time.Duration((r*6007+k*7727)%1_200_000)*time.Millisecond
			}
			add(rid, &escalation.EscalationAccepted{EscalationID: eid, By: escalation.Person{Username: "dr.okafor"}}, t.Add(accept))
			add(rid, &escalation.EscalationDecided{EscalationID: eid, Outcome: outcome, Counterfactual: escalation.CounterfactualED, DecidedBy: "dr.okafor"}, t.Add(decide))
			add(rid, &escalation.RecordAccessed{Username: "dr.okafor", Role: "consultant", What: "escalation", ResidentID: rid, EscalationID: eid}, t.Add(5*time.Minute))
			if outcome == escalation.OutcomeStay {
				if k%4 == 1 {
					add(rid, &escalation.HospitalAdmissionRecorded{At: t.Add(30 * time.Hour), Kind: "admission", Unplanned: true}, t.Add(30*time.Hour))
				} else {
					add(rid, &escalation.EscalationFollowedUp{EscalationID: eid, Status: "at_home", At: t.Add(80 * time.Hour)}, t.Add(80*time.Hour))
				}
			}
		}
	}
}

// benchMixed is the bench's mix: a range of whole months, one home, as of a
// past month's start, or the default query, picked at random.
func benchMixed(loc *time.Location) func() Query {
	q := Query{Window: 72 * time.Hour, WindowText: "72h", AsOf: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), Location: loc}
	rng := rand.New(rand.NewPCG(1, 2))
	var months []time.Time
	for m := time.Date(2026, 1, 1, 0, 0, 0, 0, loc); m.Year() < 2027; m = m.AddDate(0, 1, 0) {
		months = append(months, m)
	}
	return func() Query {
		m := q
		switch rng.IntN(4) {
		case 0:
			m.From = months[rng.IntN(6)]
			m.To = m.From.AddDate(0, 1+rng.IntN(5), 0)
		case 1:
			m.CareHome = escalation.CareHomeID(fmt.Sprintf("home-%02d", rng.IntN(20)))
		case 2:
			m.AsOf = months[3+rng.IntN(6)]
		}
		return m
	}
}

// BenchmarkFiguresMixed times the bench's mixed queries over a log of
// 200,000 events, or AUDIT_BENCH_EVENTS (go test -run '^$' -bench
// FiguresMixed ./escalation/audit/).
func BenchmarkFiguresMixed(b *testing.B) {
	n := 200_000
	if v, err := strconv.Atoi(os.Getenv("AUDIT_BENCH_EVENTS")); err == nil && v > 0 {
		n = v
	}
	loc, err := time.LoadLocation("Europe/London")
	if err != nil {
		b.Fatal(err)
	}
	m := NewModel()
	m.Keep(loc, 72*time.Hour)
	benchEvents(n, os.Getenv("AUDIT_BENCH_VARY") != "", func(env events.Envelope) {
		if err := m.Apply(env); err != nil {
			b.Fatal(err)
		}
	})
	for _, asOf := range []bool{false, true} {
		name := map[bool]string{false: "ranges-homes", true: "as-of"}[asOf]
		b.Run(name, func(b *testing.B) {
			next := benchMixed(loc)
			b.ReportAllocs()
			for b.Loop() {
				q := next()
				for (q.AsOf.Year() < 2027) != asOf {
					q = next()
				}
				m.Figures(q)
			}
		})
	}
}

// BenchmarkReplay times a rebuild of the model, with the default figures
// kept, from a log of 200,000 events shaped like the bench's.
func BenchmarkReplay(b *testing.B) {
	loc, err := time.LoadLocation("Europe/London")
	if err != nil {
		b.Fatal(err)
	}
	log := benchLog(200_000, false)
	b.ReportAllocs()
	for b.Loop() {
		m := NewModel()
		m.Keep(loc, 72*time.Hour)
		for _, env := range log {
			if err := m.Apply(env); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(len(log))*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
