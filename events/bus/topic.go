package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/nightcall-health/nightcall/events"
)

// Outbox is a durable topic beside the log: a Watermill publisher whose
// messages are kept in order, each with an offset, until read. A side that
// must not lose a fact and must not wait on the log to record it (the SFU's
// call events) publishes to it; a TopicSubscriber delivers the messages to a
// consumer at least once. events/sqlite and events/redis implement it.
type Outbox interface {
	message.Publisher
	// ReadTopic returns up to limit messages of topic with offset > after,
	// oldest first.
	ReadTopic(ctx context.Context, topic string, after int64, limit int) ([]TopicMessage, error)
}

// TopicMessage is one stored message of an Outbox topic.
type TopicMessage struct {
	Offset  int64
	Message *message.Message
}

// TopicNotifier is implemented by outboxes that can wake readers when a
// message is published, so that tailing needs no busy polling.
type TopicNotifier interface {
	// Published returns a channel that is closed at the next publish.
	Published() <-chan struct{}
}

// Checkpoints keeps a consumer group's durable position (events.Store does).
type Checkpoints interface {
	Checkpoint(ctx context.Context, group string) (int64, error)
	SaveCheckpoint(ctx context.Context, group string, position int64) error
}

// MetaOffset is the metadata key of a topic message's offset.
const MetaOffset = "offset"

// TopicSubscriberConfig configures a TopicSubscriber.
type TopicSubscriberConfig struct {
	// Outbox holds the topic. Required.
	Outbox Outbox
	// Checkpoints keeps the group's offset. Required.
	Checkpoints Checkpoints
	// Group names the durable checkpoint. Required.
	Group string
	// PollInterval bounds how long a new message can wait unseen when the
	// outbox cannot notify (another process published). Optional, default 100ms.
	PollInterval time.Duration
	// BatchSize is how many messages are read at once. Optional, default 256.
	BatchSize int
	// CheckpointEvery is how often the checkpoint is written. Optional,
	// default 200ms; a crash replays at most that much (at least once).
	CheckpointEvery time.Duration
	// NackDelay is the pause before a nacked message is delivered again.
	// Optional, default 100ms.
	NackDelay time.Duration
	// Logger is optional; nil logs nothing.
	Logger watermill.LoggerAdapter
}

func (c *TopicSubscriberConfig) setDefaults() {
	if c.PollInterval <= 0 {
		c.PollInterval = 100 * time.Millisecond
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 256
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
func (c TopicSubscriberConfig) Validate() error {
	var errs []error
	if c.Outbox == nil {
		errs = append(errs, errors.New("bus: TopicSubscriberConfig.Outbox is required"))
	}
	if c.Checkpoints == nil {
		errs = append(errs, errors.New("bus: TopicSubscriberConfig.Checkpoints is required"))
	}
	if c.Group == "" {
		errs = append(errs, errors.New("bus: TopicSubscriberConfig.Group is required"))
	}
	return errors.Join(errs...)
}

// TopicSubscriber is a watermill message.Subscriber over one Outbox: every
// topic it is asked for is read in offset order, the next message sent only
// after the previous one is acked, a nacked one sent again. Delivery is at
// least once, so consumers must be idempotent.
type TopicSubscriber struct {
	cfg TopicSubscriberConfig

	mu     sync.Mutex
	closed bool
	cancel []context.CancelFunc
	wg     sync.WaitGroup
	// done is each topic's acked offset, for Wait.
	done map[string]*events.PositionWaiter
}

var _ message.Subscriber = (*TopicSubscriber)(nil)

// NewTopicSubscriber returns a subscriber; it reads nothing until Subscribe.
func NewTopicSubscriber(cfg TopicSubscriberConfig) (*TopicSubscriber, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &TopicSubscriber{cfg: cfg, done: map[string]*events.PositionWaiter{}}, nil
}

func (s *TopicSubscriber) waiter(topic string) *events.PositionWaiter {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.done[topic]
	if w == nil {
		w = &events.PositionWaiter{}
		s.done[topic] = w
	}
	return w
}

// Acked is the position of topic's messages consumed so far (acked and so
// handled), for whoever must wait for the consumer: a shutdown, a test.
func (s *TopicSubscriber) Acked(topic string) *events.PositionWaiter { return s.waiter(topic) }

// Drained waits until every message of topic published so far has been
// acked, or ctx is done.
func (s *TopicSubscriber) Drained(ctx context.Context, topic string) error {
	w := s.waiter(topic)
	for {
		pos, changed := w.Changed()
		next, err := s.cfg.Outbox.ReadTopic(ctx, topic, pos, 1)
		if err != nil {
			return err
		}
		if len(next) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

// Subscribe implements message.Subscriber.
func (s *TopicSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	group := s.cfg.Group + ":" + topic
	start, err := s.cfg.Checkpoints.Checkpoint(ctx, group)
	if err != nil {
		return nil, fmt.Errorf("bus: read checkpoint of %s: %w", group, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	s.cancel = append(s.cancel, cancel)
	out := make(chan *message.Message)
	w := s.done[topic]
	if w == nil {
		w = &events.PositionWaiter{}
		s.done[topic] = w
	}
	w.Advance(start)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.run(ctx, topic, group, start, w, out)
	}()
	return out, nil
}

func (s *TopicSubscriber) run(ctx context.Context, topic, group string, pos int64, acked *events.PositionWaiter, out chan<- *message.Message) {
	defer close(out)
	saved, lastSave := pos, time.Now()
	save := func(force bool) {
		if pos == saved || (!force && time.Since(lastSave) < s.cfg.CheckpointEvery) {
			return
		}
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := s.cfg.Checkpoints.SaveCheckpoint(sctx, group, pos); err != nil {
			s.cfg.Logger.Error("saving checkpoint", err, watermill.LogFields{"group": group})
			return
		}
		saved, lastSave = pos, time.Now()
	}
	defer save(true)

	notifier, _ := s.cfg.Outbox.(TopicNotifier)
	for {
		var wake <-chan struct{}
		if notifier != nil {
			wake = notifier.Published() // taken before the read, so no publish is missed
		}
		batch, err := s.cfg.Outbox.ReadTopic(ctx, topic, pos, s.cfg.BatchSize)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.cfg.Logger.Error("reading a topic", err, watermill.LogFields{"topic": topic, "after": pos})
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
		for _, tm := range batch {
			m := tm.Message
			ok := deliverUntilAcked(ctx, s.cfg.NackDelay, out, func() *message.Message {
				msg := message.NewMessage(m.UUID, m.Payload)
				for k, v := range m.Metadata {
					msg.Metadata.Set(k, v)
				}
				msg.Metadata.Set(MetaOffset, fmt.Sprint(tm.Offset))
				return msg
			})
			if !ok {
				return
			}
			pos = tm.Offset
			acked.Advance(pos)
			save(false)
		}
	}
}

// deliverUntilAcked sends fresh copies of a message until one is acked;
// false means the subscription ended first.
func deliverUntilAcked(ctx context.Context, nackDelay time.Duration, out chan<- *message.Message, build func() *message.Message) bool {
	for {
		msg := build()
		msg.SetContext(ctx)
		select {
		case out <- msg:
		case <-ctx.Done():
			return false
		}
		select {
		case <-msg.Acked():
			return true
		case <-msg.Nacked():
			if !sleep(ctx, nackDelay) {
				return false
			}
		case <-ctx.Done():
			return false
		}
	}
}

// Close implements message.Subscriber: it ends every subscription, flushes
// the checkpoints and waits for the readers to stop. It is idempotent.
func (s *TopicSubscriber) Close() error {
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
