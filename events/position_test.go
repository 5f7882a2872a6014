package events_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nightcall-health/nightcall/events"
)

func TestPositionWaiterWakesEveryWaiter(t *testing.T) {
	var w events.PositionWaiter
	const waiters = 20
	var wg sync.WaitGroup
	errs := make(chan error, waiters)
	for i := 0; i < waiters; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			errs <- w.Wait(ctx, int64(1+i%5))
		}(i)
	}
	for p := int64(1); p <= 5; p++ {
		w.Advance(p)
	}
	w.Advance(3) // a redelivery does not move it back
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("waiter: %v", err)
		}
	}
	if w.Position() != 5 {
		t.Fatalf("position %d, want 5", w.Position())
	}
	// Already reached: returns at once, even with a done context.
	done, cancel := context.WithCancel(context.Background())
	cancel()
	if err := w.Wait(done, 5); err != nil {
		t.Fatalf("wait for a reached position: %v", err)
	}
}

func TestPositionWaiterHonoursContext(t *testing.T) {
	var w events.PositionWaiter
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan error, 1)
	go func() { got <- w.Wait(ctx, 1) }()
	cancel()
	if err := <-got; !errors.Is(err, context.Canceled) {
		t.Fatalf("wait after cancel: %v", err)
	}
	pos, ch := w.Changed()
	w.Advance(pos + 1)
	select {
	case <-ch:
	default:
		t.Fatal("Changed channel not closed by the next advance")
	}
}
