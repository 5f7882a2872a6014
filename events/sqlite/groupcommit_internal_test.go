package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/nightcall-health/nightcall/events"
	"github.com/nightcall-health/nightcall/events/eventstest"
)

// One batch holding appends that succeed and appends that fail, each for
// its own reason: every append gets its own answer, the good ones are all
// stored in one transaction and the failed ones leave nothing.
func TestGroupCommitBatchAnswersEachAppendOnItsOwn(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, Config{Path: filepath.Join(t.TempDir(), "events.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rec := events.IdempotencyRecord{Key: "u|route|k", RequestHash: "h", Status: 201, Body: []byte(`{}`)}
	if _, err := s.Append(ctx, "taken", events.NoStream, []events.NewEvent{eventstest.Event("a", 1)}, events.AppendOptions{Idempotency: &rec}); err != nil {
		t.Fatal(err)
	}
	gone, cancel := context.WithCancel(ctx)
	cancel()
	shared := eventstest.Event("shared", 1)
	req := func(c context.Context, stream string, expected int64, opts events.AppendOptions, evs ...events.NewEvent) *appendReq {
		return &appendReq{ctx: c, stream: stream, expected: expected, evs: evs, opts: opts, done: make(chan appendResult, 1)}
	}
	other := events.IdempotencyRecord{Key: "u|route|other", RequestHash: "h2", Status: 200, Body: []byte(`{"n":2}`)}
	batch := []*appendReq{
		req(ctx, "s1", events.NoStream, events.AppendOptions{}, shared, eventstest.Event("b", 2)),            // stored
		req(ctx, "s1", events.NoStream, events.AppendOptions{}, eventstest.Event("c", 3)),                    // conflicts with the first
		req(ctx, "s2", events.NoStream, events.AppendOptions{Idempotency: &rec}, eventstest.Event("d", 4)),   // key already stored
		req(ctx, "s3", events.NoStream, events.AppendOptions{Idempotency: &other}, eventstest.Event("e", 5)), // stored, with its record
		req(gone, "s4", events.NoStream, events.AppendOptions{}, eventstest.Event("f", 6)),                   // caller gone
		req(ctx, "s5", events.NoStream, events.AppendOptions{}, shared),                                      // id already in s1
		req(ctx, "s1", 2, events.AppendOptions{}, eventstest.Event("g", 7)),                                  // stored after the first
	}
	before := s.commits.Load()
	s.commitBatch(batch)
	if got := s.commits.Load() - before; got != 1 {
		t.Fatalf("the batch took %d commits, want 1", got)
	}
	res := make([]appendResult, len(batch))
	for i, r := range batch {
		res[i] = <-r.done
	}
	for _, i := range []int{0, 3, 6} {
		if res[i].err != nil {
			t.Errorf("append %d: %v, want stored", i, res[i].err)
		}
	}
	if !errors.Is(res[1].err, events.ErrVersionConflict) {
		t.Errorf("append 1: %v, want a version conflict", res[1].err)
	}
	if !errors.Is(res[2].err, events.ErrIdempotencyKeyExists) {
		t.Errorf("append 2: %v, want ErrIdempotencyKeyExists", res[2].err)
	}
	if !errors.Is(res[4].err, context.Canceled) {
		t.Errorf("append 4: %v, want context.Canceled", res[4].err)
	}
	if !errors.Is(res[5].err, events.ErrInvalidAppend) {
		t.Errorf("append 5: %v, want ErrInvalidAppend", res[5].err)
	}
	if got := res[6].out; len(got) != 1 || got[0].Version != 3 || got[0].Position <= res[0].out[1].Position {
		t.Errorf("append 6 came back as %+v", got)
	}
	s1, err := s.Load(ctx, "s1", 0)
	if err != nil || len(s1) != 3 {
		t.Fatalf("s1: %d events, %v; want 3", len(s1), err)
	}
	for _, stream := range []string{"s2", "s4", "s5"} {
		if _, err := s.Load(ctx, stream, 0); !errors.Is(err, events.ErrStreamNotFound) {
			t.Errorf("stream %s of a failed append: %v, want nothing stored", stream, err)
		}
	}
	if got, err := s.Idempotency(ctx, other.Key); err != nil || got.Status != 200 {
		t.Errorf("record of the stored append: %+v, %v", got, err)
	}
	if got, _ := s.Idempotency(ctx, rec.Key); got.Status != 201 {
		t.Errorf("the first record was changed: %+v", got)
	}
}
