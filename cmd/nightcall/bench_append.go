package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/nightcall-health/nightcall/events/sqlite"
)

// benchAppendScenario: writers concurrent appenders (one event each, their
// own stream, with the expected version) through group commit, beside the
// same rows as raw single-row transactions from as many goroutines, same
// driver and synchronous=FULL. The two runs alternate twice so that a disk
// that slows down in between does not favour one.
func benchAppendScenario(ctx context.Context, env *benchEnv) ([]benchResult, error) {
	w, n := env.sizes.Writers, env.sizes.Appends
	var store, raw []sqlite.BenchConcurrent
	for round := 0; round < 2; round++ {
		r, err := sqlite.BenchConcurrentRawInsert(ctx, filepath.Join(env.dir, fmt.Sprintf("raw-%d.db", round)), w, n/2)
		if err != nil {
			return nil, fmt.Errorf("raw: %w", err)
		}
		raw = append(raw, r)
		s, err := sqlite.BenchConcurrentAppend(ctx, filepath.Join(env.dir, fmt.Sprintf("store-%d.db", round)), w, n/2)
		if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		store = append(store, s)
	}
	rate := func(rs []sqlite.BenchConcurrent) (float64, []time.Duration, int64) {
		var n int
		var took time.Duration
		var lat []time.Duration
		var commits int64
		for _, r := range rs {
			n += len(r.Latencies)
			took += r.Elapsed
			lat = append(lat, r.Latencies...)
			commits += r.Commits
		}
		slices.Sort(lat)
		return float64(n) / took.Seconds(), lat, commits
	}
	sRate, sLat, commits := rate(store)
	rRate, rLat, _ := rate(raw)
	params := map[string]any{"writers": w, "appends": n, "synchronous": "FULL"}
	thr := result("append", fmt.Sprintf("%d concurrent writers, throughput", w), "events/s", sRate,
		"raw single-row transactions", rRate, "≥ 5× raw", met(sRate >= 5*rRate))
	thr.Params = params
	thr.Extra = map[string]float64{"appends_per_commit": float64(len(sLat)) / float64(max(commits, 1))}
	p99 := result("append", fmt.Sprintf("%d concurrent writers, p99 latency", w), "ms", ms(pct(sLat, 99)),
		"raw single-row transactions", ms(pct(rLat, 99)), "(for information)", nil)
	p99.Extra = map[string]float64{"p50_ms": ms(pct(sLat, 50)), "baseline_p50_ms": ms(pct(rLat, 50))}
	p99.Params = params
	return []benchResult{thr, p99}, nil
}

// benchAppendOneScenario: one writer, one event per append, beside raw
// single-row INSERTs (no concurrency: group commit cannot help, and must
// not cost).
func benchAppendOneScenario(ctx context.Context, env *benchEnv) ([]benchResult, error) {
	n := env.sizes.SingleAppend
	raw, err := sqlite.BenchRawInsert(ctx, filepath.Join(env.dir, "raw-1.db"), n)
	if err != nil {
		return nil, err
	}
	store, err := sqlite.BenchAppend(ctx, filepath.Join(env.dir, "store-1.db"), n)
	if err != nil {
		return nil, err
	}
	rate := func(lat []time.Duration) float64 {
		var sum time.Duration
		for _, l := range lat {
			sum += l
		}
		slices.Sort(lat)
		return float64(len(lat)) / sum.Seconds()
	}
	sRate, rRate := rate(store), rate(raw)
	r := result("append-1", "one writer, throughput", "events/s", sRate, "raw single-row transactions", rRate, "≥ 0.8× raw", met(sRate >= 0.8*rRate))
	r.Params = map[string]any{"appends": n, "synchronous": "FULL"}
	r.Extra = map[string]float64{"p99_ms": ms(pct(store, 99)), "baseline_p99_ms": ms(pct(raw, 99))}
	return []benchResult{r}, nil
}
