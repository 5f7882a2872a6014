package events

import (
	"context"
	"errors"
	"time"
)

// Snapshot is a projection's state as of a position of the global log: a
// restart restores it and replays only the events after Position.
type Snapshot struct {
	// Name is the projection's ("read-model", "audit").
	Name string
	// Position is the last global position the state reflects.
	Position int64
	// Schema is StateSchema of the state's type: a snapshot of another
	// shape is not restored.
	Schema  string
	Data    []byte
	SavedAt time.Time
}

// SnapshotStore keeps the latest snapshot of each projection beside the log.
type SnapshotStore interface {
	// SaveSnapshot replaces the projection's snapshot.
	SaveSnapshot(ctx context.Context, s Snapshot) error
	// LoadSnapshot returns the projection's snapshot, or ErrSnapshotNotFound.
	LoadSnapshot(ctx context.Context, name string) (Snapshot, error)
}

// ErrSnapshotNotFound means no snapshot is stored under the name.
var ErrSnapshotNotFound = errors.New("events: snapshot not found")
