// Package events defines Nightcall's event envelope and the event store port.
// Adapters live in sub-packages: events/sqlite (the embedded default) and the
// Watermill wiring in events/bus. This package imports only the standard
// library (and github.com/google/uuid, for DeterministicID) so that the
// domain may depend on it.
package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Envelope is one recorded event. Version is 1-based and consecutive within a
// stream; Position is the event's place in the global log, strictly increasing.
type Envelope struct {
	ID            string          `json:"id"`
	Stream        string          `json:"stream"`
	Version       int64           `json:"version"`
	Position      int64           `json:"position"`
	Type          string          `json:"type"`
	RecordedAt    time.Time       `json:"recorded_at"`
	Actor         string          `json:"actor,omitempty"`
	CorrelationID string          `json:"correlation_id,omitempty"`
	CausationID   string          `json:"causation_id,omitempty"`
	Data          json.RawMessage `json:"data"`
}

// NewEvent is an event about to be appended. The store fills in the stream,
// version, position and (when zero) the recorded time.
type NewEvent struct {
	ID            string
	Type          string
	RecordedAt    time.Time
	Actor         string
	CorrelationID string
	CausationID   string
	Data          json.RawMessage
}

// Expected versions with a special meaning; any other value n >= 1 means the
// stream must currently end at version n.
const (
	// AnyVersion appends whatever the stream's current version.
	AnyVersion int64 = -1
	// NoStream requires that the stream does not exist yet.
	NoStream int64 = 0
)

// IdempotencyRecord is the first response to a request that carried an
// Idempotency-Key. It is stored in the same atomic step as the events the
// request produced, so a replay can never see one without the other.
type IdempotencyRecord struct {
	// Key is the scoped key: user, route and the client's key.
	Key string
	// RequestHash identifies the body; a different body under the same key is refused.
	RequestHash string
	Status      int
	Body        []byte
	CreatedAt   time.Time
}

// AppendOptions are optional parts of an append.
type AppendOptions struct {
	// Idempotency, when set, is stored with the events. If a record with the
	// same key exists the whole append fails with ErrIdempotencyKeyExists.
	Idempotency *IdempotencyRecord
}

// Store is an append-only event log with optimistic concurrency per stream and
// a single global order. Implementations must be safe for concurrent use.
type Store interface {
	// Append adds events to the end of stream if its current version equals
	// expected (or expected is AnyVersion). It is atomic: all events and the
	// idempotency record are stored, or nothing is. Appending events whose IDs
	// are already the tail of the stream, in the same order, is a no-op that
	// returns the stored envelopes (idempotent by event ID).
	Append(ctx context.Context, stream string, expected int64, evs []NewEvent, opts AppendOptions) ([]Envelope, error)
	// Load returns the events of stream with version > after, in order.
	// An unknown stream is ErrStreamNotFound.
	Load(ctx context.Context, stream string, after int64) ([]Envelope, error)
	// ReadAll returns up to limit events of the global log with position > after.
	ReadAll(ctx context.Context, after int64, limit int) ([]Envelope, error)
	// Head is the position of the last event in the global log (0 when empty).
	Head(ctx context.Context) (int64, error)
	// Idempotency returns the record stored under key, or ErrIdempotencyNotFound.
	Idempotency(ctx context.Context, key string) (IdempotencyRecord, error)
	// Checkpoint returns a consumer group's durable position (0 when none).
	Checkpoint(ctx context.Context, group string) (int64, error)
	// SaveCheckpoint stores a consumer group's position.
	SaveCheckpoint(ctx context.Context, group string, position int64) error
	// Ping reports whether the store can take writes now.
	Ping(ctx context.Context) error
	// Close releases the store. It is safe to call more than once.
	Close() error
}

// Notifier is implemented by stores that can wake readers when events are
// appended, so that tailing needs no busy polling.
type Notifier interface {
	// Appended returns a channel that is closed at the next append.
	Appended() <-chan struct{}
}

var (
	// ErrVersionConflict means the stream's version was not the expected one.
	ErrVersionConflict = errors.New("events: stream version conflict")
	// ErrStreamNotFound means the stream has no events.
	ErrStreamNotFound = errors.New("events: stream not found")
	// ErrIdempotencyKeyExists means a record under that key is already stored.
	ErrIdempotencyKeyExists = errors.New("events: idempotency key already stored")
	// ErrIdempotencyNotFound means no record is stored under that key.
	ErrIdempotencyNotFound = errors.New("events: idempotency record not found")
	// ErrUnavailable means the store cannot durably record or read now.
	ErrUnavailable = errors.New("events: store unavailable")
	// ErrInvalidAppend means the append itself is malformed (no events, an empty ID).
	ErrInvalidAppend = errors.New("events: invalid append")
)

// VersionConflictError says which stream conflicted and how.
type VersionConflictError struct {
	Stream   string
	Expected int64
	Actual   int64
}

func (e *VersionConflictError) Error() string {
	return fmt.Sprintf("events: stream %q is at version %d, expected %d", e.Stream, e.Actual, e.Expected)
}

// Unwrap makes errors.Is(err, ErrVersionConflict) true.
func (e *VersionConflictError) Unwrap() error { return ErrVersionConflict }

// StoreError wraps an infrastructure failure with the operation and stream.
// It unwraps to ErrUnavailable and to the cause.
type StoreError struct {
	Op     string
	Stream string
	Err    error
}

func (e *StoreError) Error() string {
	if e.Stream != "" {
		return fmt.Sprintf("events: %s %s: %v", e.Op, e.Stream, e.Err)
	}
	return fmt.Sprintf("events: %s: %v", e.Op, e.Err)
}

// Unwrap returns both the unavailability sentinel and the cause.
func (e *StoreError) Unwrap() []error { return []error{ErrUnavailable, e.Err} }

// ValidateAppend checks an append's arguments the same way for every store:
// a stream name, at least one event, IDs and types, JSON data, no ID twice.
func ValidateAppend(stream string, expected int64, evs []NewEvent) error {
	switch {
	case stream == "":
		return fmt.Errorf("%w: empty stream name", ErrInvalidAppend)
	case len(evs) == 0:
		return fmt.Errorf("%w: no events", ErrInvalidAppend)
	case expected < AnyVersion:
		return fmt.Errorf("%w: expected version %d", ErrInvalidAppend, expected)
	}
	seen := make(map[string]bool, len(evs))
	for _, e := range evs {
		if e.ID == "" || e.Type == "" {
			return fmt.Errorf("%w: event without id or type", ErrInvalidAppend)
		}
		if seen[e.ID] {
			return fmt.Errorf("%w: event id %s twice in one append", ErrInvalidAppend, e.ID)
		}
		seen[e.ID] = true
		if len(e.Data) > 0 && !json.Valid(e.Data) {
			return fmt.Errorf("%w: event %s data is not JSON", ErrInvalidAppend, e.ID)
		}
	}
	return nil
}
