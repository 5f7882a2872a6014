package events

import (
	"context"
	"errors"
	"fmt"
)

// replayPage is how many events Replay reads at a time.
const replayPage = 8192

// Replay applies the global log after position after to apply, in order,
// and returns the last position applied and how many events it applied. The
// next page is read while the current one is applied, so a replay takes
// about the longer of the two rather than their sum.
func Replay(ctx context.Context, s Store, after int64, apply func(Envelope) error) (int64, int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type page struct {
		evs []Envelope
		err error
	}
	pages := make(chan page, 2)
	go func() {
		defer close(pages)
		for pos := after; ; {
			evs, err := s.ReadAll(ctx, pos, replayPage)
			select {
			case pages <- page{evs, err}:
			case <-ctx.Done():
				return
			}
			if err != nil || len(evs) == 0 {
				return
			}
			pos = evs[len(evs)-1].Position
		}
	}()
	last, n := after, 0
	for p := range pages {
		if p.err != nil {
			return last, n, p.err
		}
		for _, e := range p.evs {
			if err := apply(e); err != nil {
				return last, n, fmt.Errorf("apply position %d: %w", e.Position, err)
			}
			last = e.Position
			n++
		}
	}
	return last, n, ctx.Err()
}

// Stateful is a projection whose state can be snapshotted.
type Stateful interface {
	// Position is the last global position applied.
	Position() int64
	// StateSchema is the shape of the state (see StateSchema).
	StateSchema() string
	// MarshalState encodes the state and returns the position it reflects.
	MarshalState() (int64, []byte, error)
	// RestoreState replaces the state with an encoded one.
	RestoreState(data []byte) error
}

// SaveSnapshot encodes p and stores it under name.
func SaveSnapshot(ctx context.Context, store SnapshotStore, name string, p Stateful) (Snapshot, error) {
	pos, data, err := p.MarshalState()
	if err != nil {
		return Snapshot{}, err
	}
	snap := Snapshot{Name: name, Position: pos, Schema: p.StateSchema(), Data: data}
	return snap, store.SaveSnapshot(ctx, snap)
}

// ErrSnapshotStale means a stored snapshot cannot be used: another schema,
// or a position past the log's head (the log is not the one it was taken of).
var ErrSnapshotStale = errors.New("events: snapshot does not fit")

// RestoreSnapshot restores p from the snapshot stored under name, if there is
// one of p's schema at or before head. It returns the position restored to;
// on ErrSnapshotNotFound, ErrSnapshotStale or a state that does not decode,
// p is left as it was and the caller replays the log instead.
func RestoreSnapshot(ctx context.Context, store SnapshotStore, name string, p Stateful, head int64) (int64, error) {
	snap, err := store.LoadSnapshot(ctx, name)
	if err != nil {
		return 0, err
	}
	if snap.Schema != p.StateSchema() {
		return 0, fmt.Errorf("%w: %s has schema %s, this build's is %s", ErrSnapshotStale, name, snap.Schema, p.StateSchema())
	}
	if snap.Position > head {
		return 0, fmt.Errorf("%w: %s is at position %d, the log's head at %d", ErrSnapshotStale, name, snap.Position, head)
	}
	if err := p.RestoreState(snap.Data); err != nil {
		return 0, err
	}
	return snap.Position, nil
}
