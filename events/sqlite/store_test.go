package sqlite_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/nightcall-health/nightcall/events"
	"github.com/nightcall-health/nightcall/events/eventstest"
	"github.com/nightcall-health/nightcall/events/sqlite"
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
// driver and durability settings, one transaction each. Compare the events/s
// and p99-µs metrics of the two sub-benchmarks.
func BenchmarkAppend(b *testing.B) {
	for _, c := range []struct {
		name string
		fn   func(context.Context, string, int) ([]time.Duration, error)
	}{{"store", sqlite.BenchAppend}, {"raw-insert", sqlite.BenchRawInsert}} {
		b.Run(c.name, func(b *testing.B) {
			lat, err := c.fn(context.Background(), filepath.Join(b.TempDir(), "bench.db"), b.N)
			if err != nil {
				b.Fatal(err)
			}
			var sum time.Duration
			for _, l := range lat {
				sum += l
			}
			slices.Sort(lat)
			b.ReportMetric(float64(len(lat))/sum.Seconds(), "events/s")
			b.ReportMetric(float64(lat[(len(lat)*99+99)/100-1].Microseconds()), "p99-µs")
		})
	}
}

// A snapshot over several parts reads back whole; a second save replaces
// the first; an unknown name is ErrSnapshotNotFound.
func TestSnapshotsSaveAndLoad(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	if _, err := s.LoadSnapshot(ctx, "read-model"); !errors.Is(err, events.ErrSnapshotNotFound) {
		t.Fatalf("no snapshot yet: %v", err)
	}
	big := make([]byte, 8<<20+12345)
	for i := range big {
		big[i] = byte(i * 7)
	}
	for _, snap := range []events.Snapshot{
		{Name: "read-model", Position: 10, Schema: "s1", Data: big},
		{Name: "read-model", Position: 20, Schema: "s2", Data: []byte("small")},
		{Name: "audit", Position: 5, Schema: "a", Data: big[:100]},
	} {
		if err := s.SaveSnapshot(ctx, snap); err != nil {
			t.Fatal(err)
		}
		got, err := s.LoadSnapshot(ctx, snap.Name)
		if err != nil || got.Position != snap.Position || got.Schema != snap.Schema || !slices.Equal(got.Data, snap.Data) {
			t.Fatalf("%s at %d came back as position %d schema %s, %d bytes, %v", snap.Name, snap.Position, got.Position, got.Schema, len(got.Data), err)
		}
	}
	if got, _ := s.LoadSnapshot(ctx, "read-model"); got.Position != 20 {
		t.Fatalf("the second save did not replace the first: %d", got.Position)
	}
}
