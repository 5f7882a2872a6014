package calllog_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/events"
	"github.com/nightcall-health/nightcall/events/bus"
	"github.com/nightcall-health/nightcall/events/calllog"
	"github.com/nightcall-health/nightcall/events/sqlite"
	"github.com/nightcall-health/nightcall/video"
)

// flakyStore is the real SQLite store whose appends to resident streams
// fail while failures > 0: a store outage during recording.
type flakyStore struct {
	*sqlite.Store
	failures atomic.Int32
	failed   atomic.Int32
}

func (f *flakyStore) Append(ctx context.Context, stream string, expected int64, evs []events.NewEvent, opts events.AppendOptions) ([]events.Envelope, error) {
	if f.failures.Add(-1) >= 0 {
		f.failed.Add(1)
		return nil, &events.StoreError{Op: "append", Stream: stream, Err: errors.New("disk unavailable")}
	}
	return f.Store.Append(ctx, stream, expected, evs, opts)
}

type rig struct {
	store  *flakyStore
	read   *escalation.Projection
	log    *calllog.Log
	sub    *bus.TopicSubscriber
	stream string
}

const esc = escalation.EscalationID("esc-1")

// start runs a call log against a real SQLite file with one raised
// escalation, and its consumer behind the router's Retry.
func start(t *testing.T) *rig {
	t.Helper()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "e.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	r := &rig{store: &flakyStore{Store: s}, read: escalation.NewProjection(time.UTC), stream: escalation.ResidentStream("r-1")}
	var evs []events.NewEvent
	for _, e := range []escalation.Event{
		&escalation.ResidentAdmitted{ResidentID: "r-1", CareHomeID: "home", Name: "A Resident", SpO2Scale: 1},
		&escalation.EscalationRaised{EscalationID: esc, CareHomeID: "home", RaisedBy: "nurse"},
	} {
		data, _ := json.Marshal(e)
		evs = append(evs, events.NewEvent{ID: uuid.NewString(), Type: e.EventType(), Data: data})
	}
	if _, err := s.Append(ctx, r.stream, events.NoStream, evs, events.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	all, _ := s.ReadAll(ctx, 0, 10)
	for _, env := range all {
		if err := r.read.Apply(env); err != nil {
			t.Fatal(err)
		}
	}
	r.log, err = calllog.New(calllog.Config{Outbox: s.Publisher(), Store: r.store, Read: r.read})
	if err != nil {
		t.Fatal(err)
	}
	r.sub, err = bus.NewTopicSubscriber(bus.TopicSubscriberConfig{Outbox: s.Publisher(), Checkpoints: s, Group: "call-log", NackDelay: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	router, err := bus.NewRouter(slog.New(slog.DiscardHandler), s.Publisher())
	if err != nil {
		t.Fatal(err)
	}
	router.AddSafetyCriticalOn("call-log", calllog.Topic, r.sub, r.log.Record)
	rctx, stop := context.WithCancel(ctx)
	done, err := router.Start(rctx)
	if err != nil {
		t.Fatal(err)
	}
	wctx, stopWriter := context.WithCancel(ctx)
	writerDone := make(chan error, 1)
	go func() { writerDone <- r.log.Run(wctx) }()
	t.Cleanup(func() {
		stopWriter()
		<-writerDone
		stop()
		<-done
	})
	return r
}

// recorded waits until every queued event is in the log and returns the
// call events of the resident's stream.
func (r *rig) recorded(t *testing.T) []events.Envelope {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	if err := r.log.Flushed(ctx); err != nil {
		t.Fatalf("events not stored in the outbox: %v", err)
	}
	if err := r.sub.Drained(ctx, calllog.Topic); err != nil {
		t.Fatalf("events not recorded: %v", err)
	}
	envs, err := r.store.Load(ctx, r.stream, 2)
	if err != nil {
		t.Fatal(err)
	}
	return envs
}

// More call events at once than the old 4096-slot channel held: every one
// is recorded, once, in order.
func TestCallEventBurstAllRecorded(t *testing.T) {
	r := start(t)
	const burst = 4100
	r.log.OnEvent(video.RoomEvent{Kind: video.EventStarted, Room: video.RoomID(esc), CallID: "call-1", At: time.Now()})
	for i := 0; i < burst; i++ {
		kind := video.EventJoined
		if i%2 == 1 {
			kind = video.EventLeft
		}
		r.log.OnEvent(video.RoomEvent{Kind: kind, Room: video.RoomID(esc), CallID: "call-1", Role: "consultant", At: time.Now()})
	}
	r.log.OnEvent(video.RoomEvent{Kind: video.EventEnded, Room: video.RoomID(esc), CallID: "call-1", Duration: time.Minute, Reason: "everyone left", At: time.Now()})
	got := r.recorded(t)
	if len(got) != burst+2 {
		t.Fatalf("recorded %d call events, want %d", len(got), burst+2)
	}
	if got[0].Type != escalation.TypeCallStarted || got[len(got)-1].Type != escalation.TypeCallEnded {
		t.Fatalf("first %s, last %s: not in order", got[0].Type, got[len(got)-1].Type)
	}
	for i, e := range got[1 : len(got)-1] {
		want := escalation.TypeCallParticipantJoined
		if i%2 == 1 {
			want = escalation.TypeCallParticipantLeft
		}
		if e.Type != want {
			t.Fatalf("event %d is %s, want %s", i+1, e.Type, want)
		}
	}
	var ended escalation.CallEnded
	if err := json.Unmarshal(got[len(got)-1].Data, &ended); err != nil || ended.DurationSeconds != 60 || ended.CallID != "call-1" {
		t.Fatalf("call.ended recorded as %s (%v)", got[len(got)-1].Data, err)
	}
}

// A store failure while recording is retried, not dropped, and the retry
// records the event once.
func TestCallEventRetriedThroughStoreFailure(t *testing.T) {
	r := start(t)
	r.store.failures.Store(12) // more than the router's Retry middleware tries for one delivery
	r.log.OnEvent(video.RoomEvent{Kind: video.EventStarted, Room: video.RoomID(esc), CallID: "call-1", At: time.Now()})
	r.log.OnEvent(video.RoomEvent{Kind: video.EventEnded, Room: video.RoomID(esc), CallID: "call-1", Reason: "the decision was recorded", At: time.Now()})
	got := r.recorded(t)
	if r.store.failed.Load() != 12 {
		t.Fatalf("the store failed %d times, want 12", r.store.failed.Load())
	}
	if len(got) != 2 || got[0].Type != escalation.TypeCallStarted || got[1].Type != escalation.TypeCallEnded {
		t.Fatalf("after the outage the log holds %d call events: %+v", len(got), got)
	}
}

// A message delivered twice (at least once) is recorded once.
func TestCallEventRedeliveryRecordedOnce(t *testing.T) {
	r := start(t)
	payload, _ := json.Marshal(video.RoomEvent{Kind: video.EventStarted, Room: video.RoomID(esc), CallID: "call-1", At: time.Now()})
	id := uuid.NewString()
	for i := 0; i < 2; i++ {
		if err := r.store.Publisher().Publish(calllog.Topic, message.NewMessage(id, payload)); err != nil {
			t.Fatal(err)
		}
	}
	if got := r.recorded(t); len(got) != 1 {
		t.Fatalf("a redelivered call event was recorded %d times", len(got))
	}
}
