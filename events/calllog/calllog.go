// Package calllog records the SFU's call events (a call started, a
// participant joined or left, the call ended) on the escalation's resident
// stream so that none is ever lost. The SFU side hands each event to
// OnEvent, which never blocks on I/O; Run publishes them, in order, to a
// durable outbox topic (bus.Outbox, retried until stored); Record is the
// Watermill handler that appends each to the log, behind the router's Retry
// and redelivered until it succeeds. The message ID is the event ID, so a
// redelivery appends nothing twice.
package calllog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/events"
	"github.com/nightcall-health/nightcall/video"
)

// Topic is the outbox topic of call events.
const Topic = "calls"

// Config configures a Log.
type Config struct {
	// Outbox is where events are published (bus.Outbox). Required.
	Outbox message.Publisher
	// Store is the event log the events are recorded in. Required.
	Store events.Store
	// Read finds an escalation's resident. Required.
	Read *escalation.Projection
	// Ended is called once a call's end is recorded (it may be called again
	// for a redelivery). Optional.
	Ended func(ctx context.Context, room video.RoomID)
	// DrainTimeout bounds how long Run keeps publishing what is queued once
	// its context is done. Optional, default 10s.
	DrainTimeout time.Duration
	// CatchUpTimeout bounds how long Record waits for the read model to know
	// an escalation. Optional, default 5s.
	CatchUpTimeout time.Duration
	// Logger is optional; nil discards.
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 10 * time.Second
	}
	if c.CatchUpTimeout <= 0 {
		c.CatchUpTimeout = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate lists every problem with c.
func (c Config) Validate() error {
	var errs []error
	if c.Outbox == nil {
		errs = append(errs, errors.New("calllog: Config.Outbox is required"))
	}
	if c.Store == nil {
		errs = append(errs, errors.New("calllog: Config.Store is required"))
	}
	if c.Read == nil {
		errs = append(errs, errors.New("calllog: Config.Read is required"))
	}
	return errors.Join(errs...)
}

// Log carries call events from the SFU to the event log.
type Log struct {
	cfg Config

	mu    sync.Mutex
	queue []video.RoomEvent
	wake  chan struct{}
	// published counts events stored in the outbox, for Flushed.
	published events.PositionWaiter
	queued    int64
}

// New returns a Log; nothing is published until Run.
func New(cfg Config) (*Log, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Log{cfg: cfg, wake: make(chan struct{}, 1)}, nil
}

// OnEvent queues a room event for the outbox (video.Config.OnEvent). It
// never blocks on I/O and never drops: the queue has no bound.
func (l *Log) OnEvent(e video.RoomEvent) {
	l.mu.Lock()
	l.queue = append(l.queue, e)
	l.queued++
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Flushed waits until every event queued so far is in the outbox, or ctx is done.
func (l *Log) Flushed(ctx context.Context) error {
	l.mu.Lock()
	n := l.queued
	l.mu.Unlock()
	return l.published.Wait(ctx, n)
}

// Run publishes queued events to the outbox in order, retrying a failed
// publish with backoff, until ctx is done; then it publishes what is still
// queued for at most DrainTimeout and returns.
func (l *Log) Run(ctx context.Context) error {
	for {
		if !l.publishQueued(ctx) {
			break
		}
		select {
		case <-ctx.Done():
		case <-l.wake:
			continue
		}
		break
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.cfg.DrainTimeout)
	defer cancel()
	if !l.publishQueued(dctx) {
		l.mu.Lock()
		left := len(l.queue)
		l.mu.Unlock()
		if left > 0 {
			l.cfg.Logger.Error("call events not stored in the outbox at shutdown", "count", left)
			return fmt.Errorf("calllog: %d call events not stored: %w", left, dctx.Err())
		}
	}
	return nil
}

// publishQueued publishes until the queue is empty (true) or ctx is done (false).
func (l *Log) publishQueued(ctx context.Context) bool {
	backoff := 50 * time.Millisecond
	for {
		l.mu.Lock()
		if len(l.queue) == 0 {
			l.mu.Unlock()
			return true
		}
		e := l.queue[0]
		l.mu.Unlock()
		payload, err := json.Marshal(e)
		if err != nil {
			// A RoomEvent always marshals; this would be a programming error.
			l.cfg.Logger.Error("encoding a call event", "err", err)
			l.pop()
			continue
		}
		msg := message.NewMessage(uuid.NewString(), payload)
		msg.Metadata.Set("kind", e.Kind)
		if err := l.cfg.Outbox.Publish(Topic, msg); err != nil {
			l.cfg.Logger.Error("storing a call event in the outbox; retrying", "escalation_id", e.Room, "kind", e.Kind, "err", err)
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return false
			case <-t.C:
			}
			backoff = min(2*backoff, 2*time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		l.pop()
	}
}

func (l *Log) pop() {
	l.mu.Lock()
	l.queue = l.queue[1:]
	l.mu.Unlock()
	l.published.Advance(l.published.Position() + 1)
}

// Record is the Watermill handler of Topic: it appends the message's call
// event to the escalation's resident stream with the message ID as event ID.
// A store failure is returned (retried, then redelivered); a message that
// can never be recorded is logged and acknowledged.
func (l *Log) Record(msg *message.Message) error {
	var e video.RoomEvent
	if err := json.Unmarshal(msg.Payload, &e); err != nil {
		l.cfg.Logger.Error("an unreadable call event", "message_uuid", msg.UUID, "err", err)
		return nil
	}
	ev := domainEvent(e)
	if ev == nil {
		return nil
	}
	ctx := msg.Context()
	id := escalation.EscalationID(e.Room)
	rid, ok := l.cfg.Read.ResidentOf(id)
	if !ok {
		head, err := l.cfg.Store.Head(ctx)
		if err != nil {
			return fmt.Errorf("calllog: %w", err)
		}
		wctx, cancel := context.WithTimeout(ctx, l.cfg.CatchUpTimeout)
		err = l.cfg.Read.WaitFor(wctx, head)
		cancel()
		if err != nil {
			return fmt.Errorf("calllog: the read model is behind the log: %w", events.ErrUnavailable)
		}
		if rid, ok = l.cfg.Read.ResidentOf(id); !ok {
			l.cfg.Logger.Error("a call event for an unknown escalation", "escalation_id", id, "kind", e.Kind)
			return nil
		}
	}
	data, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("calllog: encode %s: %w", ev.EventType(), err)
	}
	at := e.At
	if at.IsZero() {
		at = time.Now()
	}
	_, err = l.cfg.Store.Append(ctx, escalation.ResidentStream(rid), events.AnyVersion,
		[]events.NewEvent{{ID: msg.UUID, Type: ev.EventType(), Actor: "sfu", RecordedAt: at, Data: data}}, events.AppendOptions{})
	if err != nil {
		return fmt.Errorf("calllog: record %s of escalation %s: %w", ev.EventType(), id, err)
	}
	if e.Kind == video.EventEnded && l.cfg.Ended != nil {
		l.cfg.Ended(ctx, e.Room)
	}
	return nil
}

// domainEvent is the escalation event a room event records (nil for none).
func domainEvent(e video.RoomEvent) escalation.Event {
	id := escalation.EscalationID(e.Room)
	switch e.Kind {
	case video.EventStarted:
		return &escalation.CallStarted{EscalationID: id, CallID: e.CallID}
	case video.EventJoined:
		return &escalation.CallParticipantJoined{CallParticipant: escalation.CallParticipant{EscalationID: id, CallID: e.CallID, Role: escalation.CallRole(e.Role)}}
	case video.EventLeft:
		return &escalation.CallParticipantLeft{CallParticipant: escalation.CallParticipant{EscalationID: id, CallID: e.CallID, Role: escalation.CallRole(e.Role)}}
	case video.EventEnded:
		q := make([]escalation.CallQuality, len(e.Quality))
		for i, v := range e.Quality {
			q[i] = escalation.CallQuality{Role: escalation.CallRole(v.Role), UpPackets: v.UpPackets, UpLost: v.UpLost, UpJitterMs: v.UpJitterMs,
				UpBitrateKbs: v.UpBitrateKbs, DownPackets: v.DownPackets, DownLost: v.DownLost, DownRTTMs: v.DownRTTMs, Seconds: v.Seconds}
		}
		return &escalation.CallEnded{EscalationID: id, CallID: e.CallID, DurationSeconds: e.Duration.Seconds(), Reason: e.Reason, Quality: q}
	}
	return nil
}
