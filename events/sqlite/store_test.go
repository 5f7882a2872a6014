package sqlite_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"nightcall/events"
	"nightcall/events/eventstest"
	"nightcall/events/sqlite"
)

func open(t testing.TB) *sqlite.Store {
	s, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "events.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStoreContract(t *testing.T) {
	eventstest.Run(t, func(t *testing.T) events.Store { return open(t) })
}

func TestDurableAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	ctx := context.Background()
	s, err := sqlite.Open(ctx, sqlite.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "r", events.NoStream, []events.NewEvent{eventstest.Event("a", 1)}, events.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s.Close() // idempotent
	s, err = sqlite.Open(ctx, sqlite.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Load(ctx, "r", 0)
	if err != nil || len(got) != 1 {
		t.Fatalf("after reopen: %v, %v", got, err)
	}
}

func TestClosedStoreIsUnavailable(t *testing.T) {
	s := open(t)
	s.Close()
	_, err := s.Append(context.Background(), "r", events.AnyVersion, []events.NewEvent{eventstest.Event("a", 1)}, events.AppendOptions{})
	if !errors.Is(err, events.ErrUnavailable) {
		t.Fatalf("append on a closed store: %v, want ErrUnavailable", err)
	}
	if err := s.Ping(context.Background()); !errors.Is(err, events.ErrUnavailable) {
		t.Fatalf("ping on a closed store: %v", err)
	}
}

// BenchmarkAppend measures one-event appends (version check, insert, commit
// with synchronous=FULL) beside raw INSERTs of the same rows through the same
// driver and durability settings, one transaction each. Compare the
// events/s and p99-µs metrics of the two sub-benchmarks.
func BenchmarkAppend(b *testing.B) {
	data, _ := json.Marshal(map[string]any{"observations": map[string]any{"respiration_rate": 22, "spo2": 93, "pulse": 112}, "soft_signs": []string{"breathless"}})
	b.Run("store", func(b *testing.B) {
		s := open(b)
		ctx := context.Background()
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			start := time.Now()
			_, err := s.Append(ctx, "resident-bench", int64(i), []events.NewEvent{{ID: uuid.NewString(), Type: "resident.observations_recorded", Data: data}}, events.AppendOptions{})
			if err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
		}
		report(b, lat)
	})
	b.Run("raw-insert", func(b *testing.B) {
		path := filepath.Join(b.TempDir(), "raw.db")
		s, err := sqlite.Open(context.Background(), sqlite.Config{Path: path}) // same schema
		if err != nil {
			b.Fatal(err)
		}
		s.Close()
		db, err := sql.Open("sqlite", sqlite.DSN(path, 5*time.Second, true))
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		db.SetMaxOpenConns(1)
		ctx := context.Background()
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			start := time.Now()
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO events (id, stream, version, type, recorded_at, data) VALUES (?, ?, ?, ?, ?, ?)`,
				uuid.NewString(), "resident-bench", i+1, "resident.observations_recorded", time.Now().UnixNano(), data); err != nil {
				b.Fatal(err)
			}
			if err := tx.Commit(); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
		}
		report(b, lat)
	})
}

func report(b *testing.B, lat []time.Duration) {
	b.StopTimer()
	if len(lat) == 0 {
		return
	}
	var sum time.Duration
	for _, l := range lat {
		sum += l
	}
	slices.Sort(lat)
	p99 := lat[min(len(lat)-1, (len(lat)*99+99)/100-1)]
	b.ReportMetric(float64(len(lat))/sum.Seconds(), "events/s")
	b.ReportMetric(float64(p99.Microseconds()), "p99-µs")
}
