package bus_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/nightcall-health/nightcall/events/bus"
)

func TestTopicSubscriberInOrderRedeliveredDurable(t *testing.T) {
	s := openStore(t)
	for i := 1; i <= 3; i++ {
		if err := s.Publisher().Publish("calls", message.NewMessage(fmt.Sprint("m", i), []byte(fmt.Sprint(i)))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Publisher().Publish("other", message.NewMessage("x", []byte("{}"))); err != nil {
		t.Fatal(err)
	}
	cfg := bus.TopicSubscriberConfig{Outbox: s.Publisher(), Checkpoints: s, Group: "g", CheckpointEvery: time.Millisecond, NackDelay: time.Millisecond}
	sub, err := bus.NewTopicSubscriber(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := sub.Subscribe(context.Background(), "calls")
	if err != nil {
		t.Fatal(err)
	}
	m := next(t, ch)
	if m.UUID != "m1" || m.Metadata.Get(bus.MetaOffset) == "" {
		t.Fatalf("first message %s %v", m.UUID, m.Metadata)
	}
	m.Nack()
	if m = next(t, ch); m.UUID != "m1" {
		t.Fatalf("after a nack got %s, want m1 again", m.UUID)
	}
	m.Ack()
	if m = next(t, ch); m.UUID != "m2" {
		t.Fatalf("second message %s", m.UUID)
	}
	m.Ack()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sub.Acked("calls").Wait(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	// The checkpoint resumes after the last acked message; other topics are apart.
	sub2, _ := bus.NewTopicSubscriber(cfg)
	defer sub2.Close()
	ch2, _ := sub2.Subscribe(context.Background(), "calls")
	m = next(t, ch2)
	if m.UUID != "m3" {
		t.Fatalf("resumed at %s, want m3", m.UUID)
	}
	m.Ack()
	if err := sub2.Drained(ctx, "calls"); err != nil {
		t.Fatal(err)
	}
	if _, err := bus.NewTopicSubscriber(bus.TopicSubscriberConfig{}); err == nil {
		t.Fatal("a config without outbox, checkpoints or group accepted")
	}
}
