package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/nightcall-health/nightcall/events"
)

// benchData is a typical observation event body.
var benchData, _ = json.Marshal(map[string]any{
	"observations": map[string]any{"respiration_rate": 22, "spo2": 93, "on_oxygen": false, "systolic_bp": 104, "pulse": 112, "consciousness": "A", "temperature": 38.4},
	"soft_signs":   []string{"breathless"},
})

// BenchAppend appends n one-event batches to one stream of a new store at
// path, each with its expected version, and returns each append's latency.
func BenchAppend(ctx context.Context, path string, n int) ([]time.Duration, error) {
	s, err := Open(ctx, Config{Path: path})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	lat := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		start := time.Now()
		if _, err := s.Append(ctx, "resident-bench", int64(i), []events.NewEvent{{ID: uuid.NewString(), Type: "resident.observations_recorded", Data: benchData}}, events.AppendOptions{}); err != nil {
			return nil, err
		}
		lat = append(lat, time.Since(start))
	}
	return lat, nil
}

// BenchRawInsert inserts the same rows as BenchAppend into the same schema
// through the same driver and durability settings, one transaction each, with
// no version check: the floor an append can approach.
func BenchRawInsert(ctx context.Context, path string, n int) ([]time.Duration, error) {
	s, err := Open(ctx, Config{Path: path})
	if err != nil {
		return nil, err
	}
	if err := s.Close(); err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", DSN(path, 5*time.Second, true))
	if err != nil {
		return nil, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	lat := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		start := time.Now()
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return nil, err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO events (id, stream, version, type, recorded_at, data) VALUES (?, ?, ?, ?, ?, ?)`,
			uuid.NewString(), "resident-bench", i+1, "resident.observations_recorded", time.Now().UnixNano(), benchData); err != nil {
			_ = tx.Rollback() // the insert's error is the one returned
			return nil, err
		}
		if err := tx.Commit(); err != nil {
			return nil, err
		}
		lat = append(lat, time.Since(start))
	}
	return lat, nil
}

// BenchConcurrent is the result of a run of concurrent writers.
type BenchConcurrent struct {
	// Latencies of every append, in completion order.
	Latencies []time.Duration
	// Elapsed is the wall time from the first append to the last answer.
	Elapsed time.Duration
	// Commits is the number of transactions the store committed (0 for raw).
	Commits int64
}

// BenchConcurrentAppend runs writers goroutines appending n one-event
// batches in all, each writer to its own stream with its expected version,
// against a new store at path: group commit shares their fsyncs.
func BenchConcurrentAppend(ctx context.Context, path string, writers, n int) (BenchConcurrent, error) {
	s, err := Open(ctx, Config{Path: path})
	if err != nil {
		return BenchConcurrent{}, err
	}
	defer s.Close()
	before := s.commits.Load()
	res, err := runWriters(writers, n, func(w, i int) error {
		_, err := s.Append(ctx, fmt.Sprintf("resident-bench-%d", w), int64(i), []events.NewEvent{{ID: uuid.NewString(), Type: "resident.observations_recorded", Data: benchData}}, events.AppendOptions{})
		return err
	})
	res.Commits = s.commits.Load() - before
	return res, err
}

// BenchConcurrentRawInsert is the baseline of BenchConcurrentAppend: the
// same rows, same driver and durability, each INSERT in a transaction of
// its own, writers goroutines sharing one connection (SQLite has one writer).
func BenchConcurrentRawInsert(ctx context.Context, path string, writers, n int) (BenchConcurrent, error) {
	s, err := Open(ctx, Config{Path: path})
	if err != nil {
		return BenchConcurrent{}, err
	}
	if err := s.Close(); err != nil {
		return BenchConcurrent{}, err
	}
	db, err := sql.Open("sqlite", DSN(path, 5*time.Second, true))
	if err != nil {
		return BenchConcurrent{}, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	return runWriters(writers, n, func(w, i int) error {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO events (id, stream, version, type, recorded_at, data) VALUES (?, ?, ?, ?, ?, ?)`,
			uuid.NewString(), fmt.Sprintf("resident-bench-%d", w), i+1, "resident.observations_recorded", time.Now().UnixNano(), benchData); err != nil {
			_ = tx.Rollback() // the insert's error is the one returned
			return err
		}
		return tx.Commit()
	})
}

// runWriters runs op(writer, i) for i = 0.. on writers goroutines, n in all.
func runWriters(writers, n int, op func(w, i int) error) (BenchConcurrent, error) {
	lat := make([][]time.Duration, writers)
	errs := make([]error, writers)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < n/writers; i++ {
				t := time.Now()
				if err := op(w, i); err != nil {
					errs[w] = err
					return
				}
				lat[w] = append(lat[w], time.Since(t))
			}
		}(w)
	}
	wg.Wait()
	res := BenchConcurrent{Elapsed: time.Since(start)}
	for _, l := range lat {
		res.Latencies = append(res.Latencies, l...)
	}
	return res, errors.Join(errs...)
}
