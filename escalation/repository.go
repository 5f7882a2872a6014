package escalation

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/nightcall-health/nightcall/events"
)

// Retry bounds for a command that keeps meeting a version conflict.
const (
	// maxAttempts is how often a command is decided before ErrConflict.
	maxAttempts = 25
	// maxBackoff caps the jittered wait between two attempts.
	maxBackoff = 50 * time.Millisecond
)

// pendingEvent is an event a command recorded, with when it happened.
type pendingEvent struct {
	event Event
	at    time.Time
}

// changes is what an aggregate has recorded since it was loaded from its
// stream. Every aggregate a command changes embeds it.
type changes struct {
	// version is the stream's version as loaded plus the events recorded since.
	version int64
	pending []pendingEvent
}

// recorded gives update the aggregate's changes.
func (c *changes) recorded() *changes { return c }

// loaded is the stream version the aggregate was folded from.
func (c *changes) loaded() int64 { return c.version - int64(len(c.pending)) }

// keep adds a new event, already applied by the aggregate, for saving.
func (c *changes) keep(e Event, at time.Time) {
	c.version++
	c.pending = append(c.pending, pendingEvent{event: e, at: at})
}

// aggregate is state folded from one stream whose commands record new events.
type aggregate interface{ recorded() *changes }

// repository is where commands load their aggregates from and save what they
// decided: the event log and the source of event IDs.
type repository struct {
	store events.Store
	newID func() string
}

// saveAs says how a command's events are put on record: who ran the command,
// the request it belongs to, and optionally the idempotency record to store
// in the same append, built from the state the events leave.
type saveAs[A any] struct {
	actor         Username
	correlationID string
	idempotency   func(A) (*events.IdempotencyRecord, error)
}

// saveFor records as meta's actor, in meta's request.
func saveFor[A any](meta Meta) saveAs[A] {
	as := saveAs[A]{actor: meta.Actor.Username, correlationID: meta.CorrelationID}
	if meta.IdempotencyOf != nil {
		as.idempotency = func(a A) (*events.IdempotencyRecord, error) {
			if p, ok := any(a).(publicState); ok {
				return meta.IdempotencyOf(p.publicState())
			}
			return nil, nil
		}
	}
	return as
}

// update is the one optimistic-concurrency loop every command goes through,
// so that the domain functions stay pure. It loads stream and folds it with
// load (which is given no envelopes when the stream does not exist), lets
// decide record what it decides on the aggregate, and appends those events
// with the loaded version as expected. A version conflict means someone else
// appended first: after a short jittered wait it loads and decides again, at
// most maxAttempts times, then gives up with ErrConflict.
//
// decide sees only the aggregate; it may run more than once and must have no
// other effect. When it records nothing, nothing is appended. update returns
// the aggregate as saved and the global position of its last event (0 when
// nothing was appended).
func update[A aggregate](ctx context.Context, repo repository, stream string, as saveAs[A],
	load func(context.Context, []events.Envelope) (A, error), decide func(A) error) (A, int64, error) {
	var zero A
	for attempt := 0; attempt < maxAttempts; attempt++ {
		envs, err := repo.store.Load(ctx, stream, 0)
		if err != nil && !errors.Is(err, events.ErrStreamNotFound) {
			return zero, 0, err
		}
		agg, err := load(ctx, envs)
		if err != nil {
			return zero, 0, err
		}
		if err := decide(agg); err != nil {
			return zero, 0, err
		}
		ch := agg.recorded()
		if len(ch.pending) == 0 {
			return agg, 0, nil
		}
		var opts events.AppendOptions
		if as.idempotency != nil {
			if opts.Idempotency, err = as.idempotency(agg); err != nil {
				return zero, 0, err
			}
		}
		stored, err := repo.append(ctx, stream, ch.loaded(), as.actor, as.correlationID, ch.pending, opts)
		if errors.Is(err, events.ErrVersionConflict) {
			if err := backoff(ctx, attempt); err != nil {
				return zero, 0, err
			}
			continue
		}
		if err != nil {
			return zero, 0, err
		}
		ch.pending = nil
		return agg, stored[len(stored)-1].Position, nil
	}
	return zero, 0, ErrConflict
}

// backoff waits a random while that grows with the attempt, so that two
// commands racing for one stream do not collide again in lockstep.
func backoff(ctx context.Context, attempt int) error {
	ceiling := min(time.Duration(1+2*attempt)*time.Millisecond, maxBackoff)
	t := time.NewTimer(rand.N(ceiling)) // #nosec G404 -- retry jitter, not a secret
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// append stores pending on stream with expected as its current version.
func (repo repository) append(ctx context.Context, stream string, expected int64, actor Username, correlationID string,
	pending []pendingEvent, opts events.AppendOptions) ([]events.Envelope, error) {
	evs, err := toNewEvents(pending, actor, correlationID, repo.newID)
	if err != nil {
		return nil, err
	}
	return repo.store.Append(ctx, stream, expected, evs, opts)
}

// create starts a stream that must not exist yet; a conflict means it does.
func (repo repository) create(ctx context.Context, stream string, meta Meta, at time.Time, evs ...Event) error {
	return repo.createReturning(ctx, stream, meta, at, nil, evs...)
}

// createReturning is create for a command that returns result: meta's
// idempotency record for it is stored in the same append.
func (repo repository) createReturning(ctx context.Context, stream string, meta Meta, at time.Time, result any, evs ...Event) error {
	opts, err := meta.appendOptions(result)
	if err != nil {
		return err
	}
	_, err = repo.append(ctx, stream, events.NoStream, meta.Actor.Username, meta.CorrelationID, pendingAt(at, evs), opts)
	return err
}

// appendAny adds events to a stream whatever its version: for logs that no
// decision is taken against (record reads, invites created).
func (repo repository) appendAny(ctx context.Context, stream string, actor Username, at time.Time, evs ...Event) error {
	_, err := repo.append(ctx, stream, events.AnyVersion, actor, "", pendingAt(at, evs), events.AppendOptions{})
	return err
}

func pendingAt(at time.Time, evs []Event) []pendingEvent {
	out := make([]pendingEvent, len(evs))
	for i, e := range evs {
		out[i] = pendingEvent{event: e, at: at}
	}
	return out
}

// toNewEvents serialises recorded events for the store. An event without a
// correlation ID starts its own chain: it is correlated with itself.
func toNewEvents(pending []pendingEvent, actor Username, correlationID string, newID func() string) ([]events.NewEvent, error) {
	out := make([]events.NewEvent, len(pending))
	for i, p := range pending {
		data, err := marshal(p.event)
		if err != nil {
			return nil, err
		}
		id := newID()
		corr := correlationID
		if corr == "" {
			corr = id
		}
		out[i] = events.NewEvent{ID: id, Type: p.event.EventType(), RecordedAt: p.at, Actor: string(actor), CorrelationID: corr, Data: data}
	}
	return out, nil
}
