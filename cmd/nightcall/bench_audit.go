package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/escalation/audit"
	"github.com/nightcall-health/nightcall/escalation/news2"
	"github.com/nightcall-health/nightcall/events"
	"github.com/nightcall-health/nightcall/events/sqlite"
)

// seedAuditLog writes about n events: residents with escalations raised,
// accepted and decided, follow-ups and admissions, and reads on record.
func seedAuditLog(ctx context.Context, store *sqlite.Store, n int) (int, error) {
	mk := func(e escalation.Event, at time.Time) events.NewEvent {
		b, _ := json.Marshal(e)
		return events.NewEvent{ID: uuid.NewString(), Type: e.EventType(), RecordedAt: at, Actor: "bench", Data: b}
	}
	total, r := 0, 0
	start := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	total7 := 7
	risk := news2.RiskHigh
	score := &news2.Result{Total: &total7, Risk: &risk}
	for total < n {
		rid := escalation.ResidentID(fmt.Sprintf("r%06d", r))
		home := escalation.CareHomeID(fmt.Sprintf("home-%02d", r%20))
		at := start.Add(time.Duration(r) * 7 * time.Minute)
		batch := []events.NewEvent{mk(&escalation.ResidentAdmitted{ResidentID: rid, CareHomeID: home, Name: "x", SpO2Scale: 1}, at)}
		for k := 0; k < 60 && total+len(batch) < n; k++ {
			eid := escalation.EscalationID(uuid.NewString())
			t := at.Add(time.Duration(k) * 96 * time.Hour)
			outcome, cf := escalation.OutcomeStay, escalation.CounterfactualED
			if k%3 == 0 {
				outcome = escalation.OutcomeAdmit
			}
			batch = append(batch,
				mk(&escalation.EscalationRaised{EscalationID: eid, CareHomeID: home, NEWS2: score, SBARD: escalation.SBARD{Situation: "s"}}, t),
				mk(&escalation.EscalationAccepted{EscalationID: eid, By: escalation.Person{Username: "dr.okafor"}}, t.Add(90*time.Second)),
				mk(&escalation.EscalationDecided{EscalationID: eid, Outcome: outcome, Counterfactual: cf, DecidedBy: "dr.okafor"}, t.Add(10*time.Minute)),
				mk(&escalation.RecordAccessed{Username: "dr.okafor", Role: "consultant", What: "escalation", ResidentID: rid, EscalationID: eid}, t.Add(5*time.Minute)),
			)
			if outcome == escalation.OutcomeStay {
				if k%4 == 1 {
					batch = append(batch, mk(&escalation.HospitalAdmissionRecorded{At: t.Add(30 * time.Hour), Kind: "admission", Unplanned: true}, t.Add(30*time.Hour)))
				} else {
					batch = append(batch, mk(&escalation.EscalationFollowedUp{EscalationID: eid, Status: "at_home", At: t.Add(80 * time.Hour)}, t.Add(80*time.Hour)))
				}
			}
		}
		if _, err := store.Append(ctx, escalation.ResidentStream(rid), events.NoStream, batch, events.AppendOptions{}); err != nil {
			return total, err
		}
		total += len(batch)
		r++
	}
	return total, nil
}

func benchAudit(ctx context.Context, n, queries int, stdout io.Writer) error {
	dir, err := os.MkdirTemp("", "nightcall-bench-audit-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	store, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(dir, "nightcall.db")})
	if err != nil {
		return err
	}
	defer store.Close()
	seedStart := time.Now()
	written, err := seedAuditLog(ctx, store, n)
	if err != nil {
		return err
	}
	seedTook := time.Since(seedStart)

	raw, rawTook, err := replay(ctx, store, nil, func(events.Envelope) error { return nil })
	if err != nil {
		return err
	}
	m := audit.NewModel()
	rebuilt, rebuildTook, err := replay(ctx, store, nil, m.Apply)
	if err != nil {
		return err
	}
	loc, _ := time.LoadLocation("Europe/London")
	q := audit.Query{Window: 72 * time.Hour, WindowText: "72h", AsOf: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), Location: loc}
	var lat []time.Duration
	var f audit.Figures
	for i := 0; i < queries; i++ {
		t := time.Now()
		f = m.Figures(q)
		lat = append(lat, time.Since(t))
	}
	slices.Sort(lat)
	fmt.Fprintf(stdout, "audit over %d events (%d escalations; seeded in %v), %s\n\n", written, f.Escalations, seedTook.Round(time.Millisecond), time.Now().UTC().Format(time.DateOnly))
	fmt.Fprintf(stdout, "%-44s %12s %10s\n", "", "events/s", "seconds")
	fmt.Fprintf(stdout, "%-44s %12.0f %10.2f\n", "raw sequential read of the log (baseline)", float64(raw)/rawTook.Seconds(), rawTook.Seconds())
	fmt.Fprintf(stdout, "%-44s %12.0f %10.2f\n", "rebuild of the audit model", float64(rebuilt)/rebuildTook.Seconds(), rebuildTook.Seconds())
	fmt.Fprintf(stdout, "\nadmissions-avoided query over all of it, %d runs: p50 %.1f ms, p99 %.1f ms (avoided %d, failed %d)\n",
		queries, ms(pct(lat, 50)), ms(pct(lat, 99)), f.AdmissionsAvoided, f.FailedStays)
	return nil
}
