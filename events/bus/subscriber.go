// Package bus wires the event log into Watermill: a Subscriber that tails the
// global log of any events.Store in order, at least once, with a durable
// checkpoint per consumer group; a TopicSubscriber that does the same for a
// durable Outbox topic beside the log (the SFU's call events); and the Router
// with the middlewares every consumer runs behind.
package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/nightcall-health/nightcall/events"
)

// LogTopic is the only topic a LogSubscriber serves: the global event log.
const LogTopic = "events"

// Metadata keys set on every message.
const (
	MetaPosition = "position"
	MetaStream   = "stream"
	MetaType     = "type"
)

// SubscriberConfig configures a LogSubscriber.
type SubscriberConfig struct {
	// Store is the log to tail. Required.
	Store events.Store
	// Group names the durable checkpoint. Optional: when empty the
	// subscription is not durable and starts after From().
	Group string
	// From gives the start position of a non-durable subscription. Optional,
	// default 0 (the beginning of the log).
	From func() int64
	// Wait, when set, holds a non-durable subscription back: it reads
	// nothing until Wait is closed, and From is called then (a model
	// restored after the service has started: its consumer starts where the
	// restore left it). Optional.
	Wait <-chan struct{}
	// PollInterval bounds how long a new event can wait unseen when the store
	// cannot notify (another process appended). Optional, default 100ms.
	PollInterval time.Duration
	// BatchSize is how many events are read at once. Optional, default 512.
	BatchSize int
	// CheckpointEvery is how often a durable checkpoint is written. Optional,
	// default 200ms. Delivery is at least once, so a crash replays at most
	// that much.
	CheckpointEvery time.Duration
	// NackDelay is the pause before a nacked message is delivered again.
	// Optional, default 100ms.
	NackDelay time.Duration
	// Logger is optional; nil logs nothing.
	Logger watermill.LoggerAdapter
}

func (c *SubscriberConfig) setDefaults() {
	if c.From == nil {
		c.From = func() int64 { return 0 }
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 100 * time.Millisecond
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 512
	}
	if c.CheckpointEvery <= 0 {
		c.CheckpointEvery = 200 * time.Millisecond
	}
	if c.NackDelay <= 0 {
		c.NackDelay = 100 * time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = watermill.NopLogger{}
	}
}

// Validate lists every problem with c.
func (c SubscriberConfig) Validate() error {
	var errs []error
	if c.Store == nil {
		errs = append(errs, errors.New("bus: SubscriberConfig.Store is required"))
	}
	if c.Wait != nil && c.Group != "" {
		errs = append(errs, errors.New("bus: SubscriberConfig.Wait is for a non-durable subscription (no Group)"))
	}
	return errors.Join(errs...)
}

// LogSubscriber is a watermill message.Subscriber over the global event log.
// Each message is one events.Envelope as JSON; the next is sent only after the
// previous one is acked, so order is kept.
type LogSubscriber struct {
	cfg SubscriberConfig

	mu     sync.Mutex
	closed bool
	cancel []context.CancelFunc
	wg     sync.WaitGroup
}

var _ message.Subscriber = (*LogSubscriber)(nil)

// NewLogSubscriber returns a subscriber; it reads nothing until Subscribe.
func NewLogSubscriber(cfg SubscriberConfig) (*LogSubscriber, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &LogSubscriber{cfg: cfg}, nil
}

// ErrUnknownTopic is returned when subscribing to a topic other than LogTopic.
var ErrUnknownTopic = errors.New("bus: unknown topic")

// ErrClosed is returned when subscribing after Close.
var ErrClosed = errors.New("bus: subscriber closed")

// Subscribe implements message.Subscriber.
func (s *LogSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	if topic != LogTopic {
		return nil, fmt.Errorf("%w: %q", ErrUnknownTopic, topic)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	var start int64
	if s.cfg.Wait == nil {
		start = s.cfg.From()
	}
	if s.cfg.Group != "" {
		pos, err := s.cfg.Store.Checkpoint(ctx, s.cfg.Group)
		if err != nil {
			return nil, fmt.Errorf("bus: read checkpoint of %s: %w", s.cfg.Group, err)
		}
		start = pos
	}
	ctx, cancel := context.WithCancel(ctx)
	s.cancel = append(s.cancel, cancel)
	out := make(chan *message.Message)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if s.cfg.Wait != nil {
			select {
			case <-s.cfg.Wait:
				start = s.cfg.From()
			case <-ctx.Done():
				close(out)
				return
			}
		}
		s.run(ctx, start, out)
	}()
	return out, nil
}

func (s *LogSubscriber) run(ctx context.Context, pos int64, out chan<- *message.Message) {
	defer close(out)
	saved, lastSave := pos, time.Now()
	save := func(force bool) {
		if s.cfg.Group == "" || pos == saved || (!force && time.Since(lastSave) < s.cfg.CheckpointEvery) {
			return
		}
		// Use a fresh context so the final flush on shutdown still lands.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := s.cfg.Store.SaveCheckpoint(sctx, s.cfg.Group, pos); err != nil {
			s.cfg.Logger.Error("saving checkpoint", err, watermill.LogFields{"group": s.cfg.Group})
			return
		}
		saved, lastSave = pos, time.Now()
	}
	defer save(true)

	notifier, _ := s.cfg.Store.(events.Notifier)
	for {
		var wake <-chan struct{}
		if notifier != nil {
			wake = notifier.Appended() // taken before the read, so no append is missed
		}
		batch, err := s.cfg.Store.ReadAll(ctx, pos, s.cfg.BatchSize)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.cfg.Logger.Error("reading the log", err, watermill.LogFields{"group": s.cfg.Group, "after": pos})
			if !sleep(ctx, s.cfg.PollInterval) {
				return
			}
			continue
		}
		if len(batch) == 0 {
			save(true)
			select {
			case <-ctx.Done():
				return
			case <-wake:
			case <-time.After(s.cfg.PollInterval):
			}
			continue
		}
		for _, env := range batch {
			if !s.deliver(ctx, env, out) {
				return
			}
			pos = env.Position
			save(false)
		}
	}
}

// deliver sends env until it is acked; false means the subscription ended.
func (s *LogSubscriber) deliver(ctx context.Context, env events.Envelope, out chan<- *message.Message) bool {
	payload, err := json.Marshal(env)
	if err != nil {
		// An envelope always marshals; this would be a programming error.
		s.cfg.Logger.Error("marshalling envelope", err, watermill.LogFields{"position": env.Position})
		return false
	}
	return deliverUntilAcked(ctx, s.cfg.NackDelay, out, func() *message.Message {
		msg := message.NewMessage(env.ID, payload)
		msg.Metadata.Set(MetaPosition, strconv.FormatInt(env.Position, 10))
		msg.Metadata.Set(MetaStream, env.Stream)
		msg.Metadata.Set(MetaType, env.Type)
		if env.CorrelationID != "" {
			msg.Metadata.Set(middleware.CorrelationIDMetadataKey, env.CorrelationID)
		}
		return msg
	})
}

// Close implements message.Subscriber: it ends every subscription, flushes
// checkpoints and waits for the readers to stop. It is idempotent.
func (s *LogSubscriber) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for _, c := range s.cancel {
		c()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// Decode reads the envelope carried by a message from a LogSubscriber.
func Decode(msg *message.Message) (events.Envelope, error) {
	var env events.Envelope
	if err := json.Unmarshal(msg.Payload, &env); err != nil {
		return env, fmt.Errorf("bus: decode envelope %s: %w", msg.UUID, err)
	}
	return env, nil
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
