package main

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"testing"
	"time"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/escalation/audit"
	"github.com/nightcall-health/nightcall/events"
	"github.com/nightcall-health/nightcall/events/sqlite"
)

// BenchmarkSnapshotState times saving and restoring both models' snapshots
// over the bench scenario's seeded log (NIGHTCALL_SNAPSHOT_EVENTS events,
// 100,000 by default): encoding, decoding, and a restore from the store as
// the restart scenario does it (with the models it was taken of dropped
// first, as after a restart). CPU time per operation is reported beside the
// wall clock, the machine being shared. go test -run '^$' -bench
// SnapshotState -cpuprofile cpu.out -memprofile mem.out ./cmd/nightcall/
func BenchmarkSnapshotState(b *testing.B) {
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("NIGHTCALL_SNAPSHOT_EVENTS")); err == nil && v > 0 {
		n = v
	}
	ctx := context.Background()
	store, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(b.TempDir(), "bench.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	if _, _, err := seedAuditLog(ctx, store, n, 0); err != nil {
		b.Fatal(err)
	}
	loc, _ := time.LoadLocation("Europe/London")
	newAudit := func() *audit.Model { a := audit.NewModel(); a.Keep(loc, 72*time.Hour); return a }
	read, am := escalation.NewProjection(loc), newAudit()
	if _, _, err := events.Replay(ctx, store, 0, func(e events.Envelope) error { return applyBoth(read, am, e) }); err != nil {
		b.Fatal(err)
	}
	type model struct {
		name  string
		p     events.Stateful
		fresh func() events.Stateful
		data  []byte
	}
	models := []*model{
		{name: escalation.ReadModelSnapshot, p: read, fresh: func() events.Stateful { return escalation.NewProjection(loc) }},
		{name: audit.SnapshotName, p: am, fresh: func() events.Stateful { return newAudit() }},
	}
	for _, m := range models {
		if _, m.data, err = m.p.MarshalState(); err != nil {
			b.Fatal(err)
		}
		b.Run(m.name+"/encode", func(b *testing.B) {
			measure(b, len(m.data), func() error { _, _, err := m.p.MarshalState(); return err })
		})
		if _, err := events.SaveSnapshot(ctx, store, m.name, m.p); err != nil {
			b.Fatal(err)
		}
	}
	head, err := store.Head(ctx)
	if err != nil {
		b.Fatal(err)
	}
	// Drop the models the snapshots were taken of.
	read, am = nil, nil
	for _, m := range models {
		m.p = nil
	}
	runtime.GC()
	for _, m := range models {
		b.Run(m.name+"/decode", func(b *testing.B) {
			measure(b, len(m.data), func() error { return m.fresh().RestoreState(m.data) })
		})
	}
	b.Run("restore-both", func(b *testing.B) {
		measure(b, len(models[0].data)+len(models[1].data), func() error {
			for _, m := range models {
				if _, err := events.RestoreSnapshot(ctx, store, m.name, m.fresh(), head); err != nil {
					return err
				}
			}
			return nil
		})
	})
}

// measure runs op in b's loop, with the garbage of the last run collected
// before the next (a restore starts with an empty heap), and reports the
// CPU time per op beside the wall clock.
func measure(b *testing.B, size int, op func() error) {
	b.ReportAllocs()
	b.SetBytes(int64(size))
	var cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		runtime.GC()
		b.StartTimer()
		c := cpuTime()
		var err error
		// Labelled, so that a CPU profile can be cut to one op (pprof
		// -tagfocus op=...): the goroutines it starts carry the label too.
		pprof.Do(context.Background(), pprof.Labels("op", b.Name()), func(context.Context) { err = op() })
		if err != nil {
			b.Fatal(err)
		}
		cpu += cpuTime() - c
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
}
