package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
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
	s.Close()
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
			tx.Rollback()
			return nil, err
		}
		if err := tx.Commit(); err != nil {
			return nil, err
		}
		lat = append(lat, time.Since(start))
	}
	return lat, nil
}
