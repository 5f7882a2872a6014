// Package eventstest is the contract every events.Store must keep. Each store
// backend runs Run against a real instance of itself.
package eventstest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/nightcall-health/nightcall/events"
)

// Factory returns an empty store for one test; the factory arranges its cleanup.
type Factory func(t *testing.T) events.Store

// Run runs the whole contract against stores from newStore.
func Run(t *testing.T, newStore Factory) {
	tests := []struct {
		name string
		fn   func(*testing.T, events.Store)
	}{
		{"AppendAndLoad", testAppendAndLoad},
		{"ExpectedVersion", testExpectedVersion},
		{"ConcurrentSameExpectedVersion", testConcurrentSameVersion},
		{"IdempotentByEventID", testIdempotentByID},
		{"GlobalOrder", testGlobalOrder},
		{"UnknownStream", testUnknownStream},
		{"LargePayload", testLargePayload},
		{"ReadWhileAppending", testReadWhileAppending},
		{"IdempotencyRecordIsAtomic", testIdempotencyRecord},
		{"Checkpoints", testCheckpoints},
		{"InvalidAppend", testInvalidAppend},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// Event returns a new event of type typ with data.
func Event(typ string, data any) events.NewEvent {
	b, err := json.Marshal(data)
	if err != nil {
		panic(err)
	}
	return events.NewEvent{ID: uuid.NewString(), Type: typ, Data: b, Actor: "test"}
}

func testAppendAndLoad(t *testing.T, s events.Store) {
	c := ctx(t)
	got, err := s.Append(c, "resident-a", events.NoStream, []events.NewEvent{Event("x.happened", map[string]int{"n": 1}), Event("y.happened", map[string]int{"n": 2})}, events.AppendOptions{})
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	if len(got) != 2 || got[0].Version != 1 || got[1].Version != 2 || got[1].Position <= got[0].Position {
		t.Fatalf("append returned %+v", got)
	}
	if _, err := s.Append(c, "resident-a", 2, []events.NewEvent{Event("z.happened", nil)}, events.AppendOptions{}); err != nil {
		t.Fatalf("append at 2: %v", err)
	}
	loaded, err := s.Load(c, "resident-a", 0)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if len(loaded) != 3 {
		t.Fatalf("loaded %d events, want 3", len(loaded))
	}
	for i, e := range loaded {
		if e.Version != int64(i+1) || e.Stream != "resident-a" {
			t.Errorf("event %d: version %d stream %s", i, e.Version, e.Stream)
		}
	}
	if loaded[0].Type != "x.happened" || string(loaded[0].Data) != `{"n":1}` || loaded[0].Actor != "test" {
		t.Errorf("first event came back as %+v", loaded[0])
	}
	if loaded[2].RecordedAt.IsZero() || loaded[2].RecordedAt.Location() != time.UTC {
		t.Errorf("recorded time %v not set in UTC", loaded[2].RecordedAt)
	}
	tail, err := s.Load(c, "resident-a", 2)
	if err != nil || len(tail) != 1 || tail[0].Version != 3 {
		t.Fatalf("load after 2: %+v, %v", tail, err)
	}
	none, err := s.Load(c, "resident-a", 3)
	if err != nil || len(none) != 0 {
		t.Fatalf("load after the end: %+v, %v", none, err)
	}
}

func testExpectedVersion(t *testing.T, s events.Store) {
	c := ctx(t)
	if _, err := s.Append(c, "s", events.NoStream, []events.NewEvent{Event("a", nil)}, events.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, expected := range []int64{events.NoStream, 2, 5} {
		_, err := s.Append(c, "s", expected, []events.NewEvent{Event("b", nil)}, events.AppendOptions{})
		var vc *events.VersionConflictError
		if !errors.Is(err, events.ErrVersionConflict) || !errors.As(err, &vc) {
			t.Fatalf("expected %d: got %v, want a version conflict", expected, err)
		}
		if vc.Actual != 1 || vc.Expected != expected || vc.Stream != "s" {
			t.Errorf("conflict error %+v", vc)
		}
	}
	if _, err := s.Append(c, "s", events.AnyVersion, []events.NewEvent{Event("c", nil)}, events.AppendOptions{}); err != nil {
		t.Fatalf("any version: %v", err)
	}
	all, _ := s.Load(c, "s", 0)
	if len(all) != 2 {
		t.Fatalf("stream has %d events, want 2: conflicting appends must leave nothing", len(all))
	}
}

func testConcurrentSameVersion(t *testing.T, s events.Store) {
	c := ctx(t)
	if _, err := s.Append(c, "race", events.NoStream, []events.NewEvent{Event("start", nil)}, events.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	const n = 50
	var wins, conflicts atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, err := s.Append(c, "race", 1, []events.NewEvent{Event("won", map[string]int{"by": i})}, events.AppendOptions{})
			switch {
			case err == nil:
				wins.Add(1)
			case errors.Is(err, events.ErrVersionConflict):
				conflicts.Add(1)
			default:
				errs <- err
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("unexpected error: %v", err)
	}
	if wins.Load() != 1 || conflicts.Load() != n-1 {
		t.Fatalf("wins %d conflicts %d, want 1 and %d", wins.Load(), conflicts.Load(), n-1)
	}
	all, _ := s.Load(c, "race", 0)
	if len(all) != 2 {
		t.Fatalf("stream has %d events, want 2", len(all))
	}
}

func testIdempotentByID(t *testing.T, s events.Store) {
	c := ctx(t)
	evs := []events.NewEvent{Event("a", 1), Event("b", 2)}
	first, err := s.Append(c, "idem", events.NoStream, evs, events.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.Append(c, "idem", events.NoStream, evs, events.AppendOptions{})
	if err != nil {
		t.Fatalf("re-append of the same events: %v", err)
	}
	if len(again) != 2 || again[0].Position != first[0].Position || again[1].Version != 2 {
		t.Errorf("re-append returned %+v, want the stored events %+v", again, first)
	}
	head, _ := s.Head(c)
	if head != first[1].Position {
		t.Errorf("head moved to %d after an idempotent re-append (was %d)", head, first[1].Position)
	}
	// The same ID in another stream is refused.
	if _, err := s.Append(c, "other", events.NoStream, evs[:1], events.AppendOptions{}); !errors.Is(err, events.ErrInvalidAppend) {
		t.Errorf("same event id in another stream: got %v", err)
	}
}

func testGlobalOrder(t *testing.T, s events.Store) {
	c := ctx(t)
	const writers, each = 8, 25
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if _, err := s.Append(c, fmt.Sprintf("order-%d", w), int64(i), []events.NewEvent{Event("n", i)}, events.AppendOptions{}); err != nil {
					t.Errorf("writer %d append %d: %v", w, i, err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	var all []events.Envelope
	var after int64
	for {
		page, err := s.ReadAll(c, after, 37)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		all = append(all, page...)
		after = page[len(page)-1].Position
	}
	if len(all) != writers*each {
		t.Fatalf("read %d events, want %d", len(all), writers*each)
	}
	lastVersion := map[string]int64{}
	for i, e := range all {
		if i > 0 && e.Position <= all[i-1].Position {
			t.Fatalf("position %d after %d", e.Position, all[i-1].Position)
		}
		if e.Version != lastVersion[e.Stream]+1 {
			t.Fatalf("stream %s: version %d after %d in global order", e.Stream, e.Version, lastVersion[e.Stream])
		}
		lastVersion[e.Stream] = e.Version
	}
	head, _ := s.Head(c)
	if head != all[len(all)-1].Position {
		t.Errorf("head %d, last position %d", head, all[len(all)-1].Position)
	}
}

func testUnknownStream(t *testing.T, s events.Store) {
	c := ctx(t)
	if _, err := s.Load(c, "nobody", 0); !errors.Is(err, events.ErrStreamNotFound) {
		t.Errorf("load of unknown stream: got %v, want ErrStreamNotFound", err)
	}
	if head, err := s.Head(c); err != nil || head != 0 {
		t.Errorf("empty store head %d, %v", head, err)
	}
	if evs, err := s.ReadAll(c, 0, 10); err != nil || len(evs) != 0 {
		t.Errorf("empty store read all: %d events, %v", len(evs), err)
	}
}

func testLargePayload(t *testing.T, s events.Store) {
	c := ctx(t)
	big := strings.Repeat("x", 900*1024)
	if _, err := s.Append(c, "big", events.NoStream, []events.NewEvent{Event("big", map[string]string{"s": big})}, events.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load(c, "big", 0)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]string
	if err := json.Unmarshal(got[0].Data, &back); err != nil || back["s"] != big {
		t.Fatalf("large payload did not round-trip (len %d, %v)", len(back["s"]), err)
	}
}

func testReadWhileAppending(t *testing.T, s events.Store) {
	c := ctx(t)
	const total = 300
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < total; i++ {
			if _, err := s.Append(c, fmt.Sprintf("rw-%d", i%7), events.AnyVersion, []events.NewEvent{Event("n", i)}, events.AppendOptions{}); err != nil {
				t.Errorf("append %d: %v", i, err)
				return
			}
		}
	}()
	seen := map[string]bool{}
	var after int64
	deadline := time.Now().Add(30 * time.Second)
	for len(seen) < total && time.Now().Before(deadline) {
		page, err := s.ReadAll(c, after, 50)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page {
			if e.Position <= after {
				t.Fatalf("position %d not after %d", e.Position, after)
			}
			if seen[e.ID] {
				t.Fatalf("event %s read twice", e.ID)
			}
			seen[e.ID] = true
			after = e.Position
		}
		if len(page) == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	<-done
	if len(seen) != total {
		t.Fatalf("tailing reader saw %d of %d events", len(seen), total)
	}
}

func testIdempotencyRecord(t *testing.T, s events.Store) {
	c := ctx(t)
	rec := events.IdempotencyRecord{Key: "u|route|k1", RequestHash: "h1", Status: 201, Body: []byte(`{"ok":true}`)}
	if _, err := s.Append(c, "ik", events.NoStream, []events.NewEvent{Event("a", nil)}, events.AppendOptions{Idempotency: &rec}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Idempotency(c, rec.Key)
	if err != nil || got.Status != 201 || got.RequestHash != "h1" || string(got.Body) != `{"ok":true}` {
		t.Fatalf("record came back as %+v, %v", got, err)
	}
	// A second append under the same key fails whole: no event lands.
	_, err = s.Append(c, "ik", 1, []events.NewEvent{Event("b", nil)}, events.AppendOptions{Idempotency: &rec})
	if !errors.Is(err, events.ErrIdempotencyKeyExists) {
		t.Fatalf("second append with the key: %v", err)
	}
	if all, _ := s.Load(c, "ik", 0); len(all) != 1 {
		t.Fatalf("stream has %d events after a refused append, want 1", len(all))
	}
	if _, err := s.Idempotency(c, "u|route|nope"); !errors.Is(err, events.ErrIdempotencyNotFound) {
		t.Errorf("missing record: %v", err)
	}
}

func testCheckpoints(t *testing.T, s events.Store) {
	c := ctx(t)
	if pos, err := s.Checkpoint(c, "g"); err != nil || pos != 0 {
		t.Fatalf("new group: %d, %v", pos, err)
	}
	for _, p := range []int64{5, 9} {
		if err := s.SaveCheckpoint(c, "g", p); err != nil {
			t.Fatal(err)
		}
	}
	if pos, err := s.Checkpoint(c, "g"); err != nil || pos != 9 {
		t.Fatalf("saved checkpoint: %d, %v", pos, err)
	}
	if pos, _ := s.Checkpoint(c, "other"); pos != 0 {
		t.Errorf("groups share checkpoints: %d", pos)
	}
}

func testInvalidAppend(t *testing.T, s events.Store) {
	c := ctx(t)
	bad := []struct {
		name   string
		stream string
		evs    []events.NewEvent
	}{
		{"no events", "s", nil},
		{"empty stream", "", []events.NewEvent{Event("a", nil)}},
		{"no type", "s", []events.NewEvent{{ID: uuid.NewString()}}},
		{"not JSON", "s", []events.NewEvent{{ID: uuid.NewString(), Type: "a", Data: json.RawMessage(`{`)}}},
	}
	for _, b := range bad {
		if _, err := s.Append(c, b.stream, events.AnyVersion, b.evs, events.AppendOptions{}); !errors.Is(err, events.ErrInvalidAppend) {
			t.Errorf("%s: got %v, want ErrInvalidAppend", b.name, err)
		}
	}
	if head, _ := s.Head(c); head != 0 {
		t.Errorf("invalid appends left %d events", head)
	}
}
