package events

import (
	"context"
	"sync"
)

// PositionWaiter is the position a consumer of the global log has reached,
// for everyone who must wait until it reaches some position: a read-your-
// writes query, an audit figure, a page that needs the read model to know its
// escalation. The consumer calls Advance after applying an event; waiters
// block in Wait until the position is reached or their context ends. They are
// woken by a channel closed on every advance, never by polling.
//
// The zero value is ready to use, at position 0. It is safe for concurrent use.
type PositionWaiter struct {
	mu      sync.Mutex
	pos     int64
	changed chan struct{}
}

// Position is the last position advanced to.
func (w *PositionWaiter) Position() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pos
}

// Advance moves the position to pos and wakes every waiter. A position at or
// before the current one changes nothing (delivery is at least once).
func (w *PositionWaiter) Advance(pos int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if pos <= w.pos {
		return
	}
	w.pos = pos
	if w.changed != nil {
		close(w.changed)
		w.changed = nil
	}
}

// Changed returns the current position and a channel that is closed at the
// next advance past it, for a waiter whose condition is not a position
// (taken together, so no advance between the two is missed).
func (w *PositionWaiter) Changed() (int64, <-chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.changed == nil {
		w.changed = make(chan struct{})
	}
	return w.pos, w.changed
}

// Wait blocks until the position is at least pos, and returns nil, or until
// ctx is done, and returns its error.
func (w *PositionWaiter) Wait(ctx context.Context, pos int64) error {
	for {
		cur, ch := w.Changed()
		if cur >= pos {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}
