package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/escalation/audit"
	"github.com/nightcall-health/nightcall/events"
	"github.com/nightcall-health/nightcall/events/sqlite"
)

// BenchmarkRebuild times replays of the bench scenario's seeded log
// (NIGHTCALL_REBUILD_EVENTS events, 200,000 by default): a raw read applying
// nothing (the baseline), and rebuilds of the read model and the audit
// model, each from an empty model. go test -run '^$' -bench Rebuild
// -cpuprofile cpu.out ./cmd/nightcall/
func BenchmarkRebuild(b *testing.B) {
	n := 200_000
	if v, err := strconv.Atoi(os.Getenv("NIGHTCALL_REBUILD_EVENTS")); err == nil && v > 0 {
		n = v
	}
	ctx := context.Background()
	store, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(b.TempDir(), "bench.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	written, _, err := seedAuditLog(ctx, store, n, 0)
	if err != nil {
		b.Fatal(err)
	}
	loc, _ := time.LoadLocation("Europe/London")
	for _, c := range []struct {
		name  string
		apply func() func(events.Envelope) error
	}{
		{"raw", func() func(events.Envelope) error { return func(events.Envelope) error { return nil } }},
		{"read-model", func() func(events.Envelope) error { return escalation.NewProjection(loc).Apply }},
		{"audit-model", func() func(events.Envelope) error {
			m := audit.NewModel()
			m.Keep(loc, 72*time.Hour)
			return m.Apply
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			var cpu time.Duration
			for b.Loop() {
				apply := c.apply()
				t := cpuTime()
				if _, got, err := events.Replay(ctx, store, 0, apply); err != nil || got != written {
					b.Fatalf("replayed %d of %d: %v", got, written, err)
				}
				cpu += cpuTime() - t
			}
			b.ReportMetric(float64(written)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(written)/float64(b.N), "cpu-ns/event")
		})
	}
}
