package bus

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
)

// PoisonTopic receives projection messages that kept failing.
const PoisonTopic = "poison"

// Router runs every consumer of the log behind Watermill's middlewares.
type Router struct {
	*message.Router
	poison message.Publisher
	logger watermill.LoggerAdapter

	mu      sync.Mutex
	stalled map[string]error
}

// NewRouter builds a router whose handlers all get CorrelationID and Recoverer.
// poison is where projections put messages that kept failing.
func NewRouter(logger *slog.Logger, poison message.Publisher) (*Router, error) {
	wl := watermill.NewSlogLoggerWithLevelMapping(logger, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})
	r, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, wl)
	if err != nil {
		return nil, err
	}
	r.AddMiddleware(middleware.CorrelationID)
	return &Router{Router: r, poison: poison, logger: wl, stalled: map[string]error{}}, nil
}

// AddProjection adds a read-model consumer. A message that fails after
// retries goes to the poison queue so that one bad event cannot stop a
// projection; projections may be rebuilt from the log.
func (r *Router) AddProjection(name string, sub message.Subscriber, h message.NoPublishHandlerFunc) {
	poison, err := middleware.PoisonQueue(r.poison, PoisonTopic)
	if err != nil {
		panic(err) // only with an empty topic, which is a constant here
	}
	r.AddConsumerHandler(name, LogTopic, sub, h).AddMiddleware(
		poison,
		middleware.Retry{MaxRetries: 3, InitialInterval: 50 * time.Millisecond, Multiplier: 2, Logger: r.logger}.Middleware,
		middleware.Recoverer,
	)
}

// AddSafetyCritical adds a consumer that must never skip an event (the pager,
// the timers). It retries with backoff; if an event still fails, the consumer
// is marked stalled (Healthy reports it) and the event is delivered again
// until it succeeds. Nothing is ever sent to the poison queue.
func (r *Router) AddSafetyCritical(name string, sub message.Subscriber, h message.NoPublishHandlerFunc) {
	r.AddSafetyCriticalOn(name, LogTopic, sub, h)
}

// AddSafetyCriticalOn is AddSafetyCritical on another topic of sub (an
// Outbox topic through a TopicSubscriber): a failing message is retried with
// backoff, then delivered again until it succeeds, never dropped.
func (r *Router) AddSafetyCriticalOn(name, topic string, sub message.Subscriber, h message.NoPublishHandlerFunc) {
	track := func(next message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			out, err := next(msg)
			r.mu.Lock()
			if err != nil {
				r.stalled[name] = err
			} else {
				delete(r.stalled, name)
			}
			r.mu.Unlock()
			if err != nil {
				r.logger.Error("safety-critical consumer stalled", err, watermill.LogFields{"consumer": name, "message_uuid": msg.UUID})
			}
			return out, err
		}
	}
	r.AddConsumerHandler(name, topic, sub, h).AddMiddleware(
		track,
		middleware.Retry{MaxRetries: 5, InitialInterval: 100 * time.Millisecond, MaxInterval: 2 * time.Second, Multiplier: 2, Logger: r.logger}.Middleware,
		middleware.Recoverer,
	)
}

// Report marks a safety-critical duty that runs outside a handler (the
// pager's own writes: paged, timed out, unanswered, re-page) as stalled
// (err != nil) or healthy again (nil). Stalled and Healthy count it like a
// consumer, so the metric rises and readiness fails while it is stalled.
func (r *Router) Report(name string, err error) {
	r.mu.Lock()
	_, was := r.stalled[name]
	if err != nil {
		r.stalled[name] = err
	} else {
		delete(r.stalled, name)
	}
	r.mu.Unlock()
	switch {
	case err != nil && !was:
		r.logger.Error("safety-critical duty stalled", err, watermill.LogFields{"consumer": name})
	case err == nil && was:
		r.logger.Info("safety-critical duty recovered", watermill.LogFields{"consumer": name})
	}
}

// Logger is the router's logger (the service's), for the subscribers it
// runs, so that every log subscriber logs through the service's logger.
func (r *Router) Logger() watermill.LoggerAdapter { return r.logger }

// Stalled is the number of safety-critical consumers stalled now (a metric).
func (r *Router) Stalled() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.stalled)
}

// Healthy reports an error naming a stalled safety-critical consumer, if any.
func (r *Router) Healthy() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for name, err := range r.stalled {
		errs = append(errs, errors.New(name+": "+err.Error()))
	}
	return errors.Join(errs...)
}

// Start runs the router until ctx is done, and waits for it to be running.
func (r *Router) Start(ctx context.Context) (<-chan error, error) {
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	select {
	case <-r.Running():
		return done, nil
	case err := <-done:
		return nil, err
	}
}
