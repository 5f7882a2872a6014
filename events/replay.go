package events

import (
	"context"
	"errors"
	"fmt"
	"sync"
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
	snap, err := LoadUsableSnapshot(ctx, store, name, p, head)
	if err != nil {
		return 0, err
	}
	if err := p.RestoreState(snap.Data); err != nil {
		return 0, err
	}
	return snap.Position, nil
}

// LoadUsableSnapshot loads the snapshot stored under name if p can restore
// it: one of p's schema at or before head (RestoreSnapshot without the
// restore, for a caller that does something between the two).
func LoadUsableSnapshot(ctx context.Context, store SnapshotStore, name string, p Stateful, head int64) (Snapshot, error) {
	snap, err := store.LoadSnapshot(ctx, name)
	if err != nil {
		return Snapshot{}, err
	}
	if snap.Schema != p.StateSchema() {
		return Snapshot{}, fmt.Errorf("%w: %s has schema %s, this build's is %s", ErrSnapshotStale, name, snap.Schema, p.StateSchema())
	}
	if snap.Position > head {
		return Snapshot{}, fmt.Errorf("%w: %s is at position %d, the log's head at %d", ErrSnapshotStale, name, snap.Position, head)
	}
	return snap, nil
}

// Follower is one model brought up by ReplayShared: From is the position it
// has applied, Apply takes each later event in order.
type Follower struct {
	From  int64
	Apply func(Envelope) error
}

// ReplayShared brings each follower from its own position up to position to,
// reading the log once for all of them (from the lowest position): each
// page read is handed to every follower, and the followers apply it at the
// same time, each on a goroutine of its own. It returns each follower's
// last position applied and its error; a follower whose Apply fails stops
// there (the others go on). A read error stops them all.
func ReplayShared(ctx context.Context, s Store, to int64, fs []Follower) ([]int64, []error) {
	last := make([]int64, len(fs))
	errs := make([]error, len(fs))
	from := to
	for i, f := range fs {
		last[i] = f.From
		from = min(from, f.From)
	}
	if from >= to {
		return last, errs
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pages := make([]chan []Envelope, len(fs))
	failed := make([]chan struct{}, len(fs)) // closed when a follower stops early
	var wg sync.WaitGroup
	for i, f := range fs {
		pages[i], failed[i] = make(chan []Envelope, 2), make(chan struct{})
		wg.Go(func() {
			for evs := range pages[i] {
				for _, e := range evs {
					if e.Position <= last[i] || e.Position > to {
						continue
					}
					if err := f.Apply(e); err != nil {
						errs[i] = fmt.Errorf("apply position %d: %w", e.Position, err)
						close(failed[i])
						return
					}
					last[i] = e.Position
				}
			}
		})
	}
	var readErr error
	stopped := make([]bool, len(fs)) // seen to have failed, by the reader
	live := len(fs)
read:
	for pos := from; pos < to && live > 0; {
		evs, err := s.ReadAll(ctx, pos, int(min(replayPage, to-pos)))
		if err != nil {
			readErr = err
			break
		}
		if len(evs) == 0 {
			readErr = fmt.Errorf("events: the log ends at %d, before %d", pos, to)
			break
		}
		for i := range fs {
			if stopped[i] {
				continue
			}
			select {
			case pages[i] <- evs:
			case <-failed[i]:
				stopped[i] = true
				live--
			case <-ctx.Done():
				readErr = ctx.Err()
				break read
			}
		}
		pos = evs[len(evs)-1].Position
	}
	for i := range fs {
		close(pages[i])
	}
	wg.Wait()
	if readErr != nil {
		for i := range errs {
			if errs[i] == nil && last[i] < to {
				errs[i] = readErr
			}
		}
	}
	return last, errs
}
