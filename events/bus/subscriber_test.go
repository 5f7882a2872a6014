package bus_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/nightcall-health/nightcall/events"
	"github.com/nightcall-health/nightcall/events/bus"
	"github.com/nightcall-health/nightcall/events/eventstest"
	"github.com/nightcall-health/nightcall/events/sqlite"
)

func openStore(t *testing.T) *sqlite.Store {
	s, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "e.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func appendN(t *testing.T, s events.Store, n int) {
	for i := 0; i < n; i++ {
		if _, err := s.Append(context.Background(), "s", events.AnyVersion, []events.NewEvent{eventstest.Event("n", i)}, events.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

func next(t *testing.T, ch <-chan *message.Message) *message.Message {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no message within 5s")
		return nil
	}
}

func TestSubscriberInOrderAtLeastOnceDurable(t *testing.T) {
	s := openStore(t)
	appendN(t, s, 3)
	sub, err := bus.NewLogSubscriber(bus.SubscriberConfig{Store: s, Group: "g", CheckpointEvery: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := sub.Subscribe(context.Background(), bus.LogTopic)
	if err != nil {
		t.Fatal(err)
	}
	m := next(t, ch)
	env, _ := bus.Decode(m)
	if env.Position != 1 {
		t.Fatalf("first position %d", env.Position)
	}
	m.Nack() // redelivered, not skipped
	m = next(t, ch)
	if env, _ = bus.Decode(m); env.Position != 1 {
		t.Fatalf("after nack got position %d, want 1 again", env.Position)
	}
	m.Ack()
	m = next(t, ch)
	if env, _ = bus.Decode(m); env.Position != 2 || m.Metadata.Get(bus.MetaType) != "n" {
		t.Fatalf("second message: %+v", env)
	}
	m.Ack()
	// A new event wakes the subscriber without waiting for a poll.
	m = next(t, ch)
	m.Ack()
	appendN(t, s, 1)
	if env, _ = bus.Decode(next(t, ch)); env.Position != 4 {
		t.Fatalf("tail position %d", env.Position)
	}
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-ch; ok {
		t.Fatal("channel still open after Close")
	}
	// The durable checkpoint resumes after the last acked event (3).
	if pos, _ := s.Checkpoint(context.Background(), "g"); pos != 3 {
		t.Fatalf("checkpoint %d, want 3", pos)
	}
	sub2, _ := bus.NewLogSubscriber(bus.SubscriberConfig{Store: s, Group: "g"})
	defer sub2.Close()
	ch2, _ := sub2.Subscribe(context.Background(), bus.LogTopic)
	if env, _ = bus.Decode(next(t, ch2)); env.Position != 4 {
		t.Fatalf("resumed at %d, want 4 (the unacked one)", env.Position)
	}
	if _, err := sub2.Subscribe(context.Background(), "other"); err == nil {
		t.Fatal("unknown topic accepted")
	}
}

// A subscription with Wait reads nothing until Wait is closed, and starts
// after the position From gives then, not when Subscribe was called.
func TestSubscriberWithWaitStartsWhereFromIsWhenReleased(t *testing.T) {
	s := openStore(t)
	appendN(t, s, 5)
	var from atomic.Int64 // 0 at Subscribe: a subscriber that read it then would deliver position 1
	wait := make(chan struct{})
	sub, err := bus.NewLogSubscriber(bus.SubscriberConfig{Store: s, From: from.Load, Wait: wait})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ch, err := sub.Subscribe(context.Background(), bus.LogTopic)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-ch:
		env, _ := bus.Decode(m)
		t.Fatalf("delivered position %d before Wait was closed", env.Position)
	case <-time.After(300 * time.Millisecond):
	}
	from.Store(3)
	close(wait)
	m := next(t, ch)
	if env, _ := bus.Decode(m); env.Position != 4 {
		t.Fatalf("first position after the release %d, want 4", env.Position)
	}
	m.Ack()

	// Closed before the release: the channel closes, nothing is read.
	held, err := bus.NewLogSubscriber(bus.SubscriberConfig{Store: s, Wait: make(chan struct{})})
	if err != nil {
		t.Fatal(err)
	}
	hch, err := held.Subscribe(context.Background(), bus.LogTopic)
	if err != nil {
		t.Fatal(err)
	}
	if err := held.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-hch; ok {
		t.Fatal("a held subscription delivered after Close")
	}
	if _, err := bus.NewLogSubscriber(bus.SubscriberConfig{Store: s, Group: "g", Wait: wait}); err == nil {
		t.Fatal("Wait with a durable group accepted")
	}
}

func TestProjectionPoisonQueueAndSafetyCriticalStall(t *testing.T) {
	s := openStore(t)
	appendN(t, s, 2)
	r, err := bus.NewRouter(slog.New(slog.DiscardHandler), s.Publisher())
	if err != nil {
		t.Fatal(err)
	}
	projSub, _ := bus.NewLogSubscriber(bus.SubscriberConfig{Store: s})
	critSub, _ := bus.NewLogSubscriber(bus.SubscriberConfig{Store: s, NackDelay: 10 * time.Millisecond})
	projected := make(chan int64, 10)
	r.AddProjection("proj", projSub, func(m *message.Message) error {
		env, _ := bus.Decode(m)
		if env.Position == 1 {
			return context.DeadlineExceeded // always fails: goes to the poison queue
		}
		projected <- env.Position
		return nil
	})
	r.AddSafetyCritical("pager", critSub, func(m *message.Message) error { return context.DeadlineExceeded })
	ctx, cancel := context.WithCancel(context.Background())
	done, err := r.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case pos := <-projected:
		if pos != 2 {
			t.Fatalf("projection got %d", pos)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("projection stuck behind a poison event")
	}
	poisoned, err := s.Messages(context.Background(), bus.PoisonTopic)
	if err != nil || len(poisoned) != 1 {
		t.Fatalf("poison queue: %d messages, %v", len(poisoned), err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for r.Healthy() == nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if r.Healthy() == nil || r.Stalled() != 1 {
		t.Fatalf("a failing safety-critical consumer is not reported (stalled %d)", r.Stalled())
	}
	cancel()
	<-done
}
