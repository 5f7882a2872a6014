package redis_test

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/nightcall-health/nightcall/escalation/account"
	"github.com/nightcall-health/nightcall/escalation/account/accounttest"
	"github.com/nightcall-health/nightcall/events"
	"github.com/nightcall-health/nightcall/events/eventstest"
	"github.com/nightcall-health/nightcall/events/redis"
	"github.com/nightcall-health/nightcall/events/redis/redistest"
)

func TestRedisStoreContract(t *testing.T) {
	url := redistest.Start(t)
	eventstest.Run(t, func(t *testing.T) events.Store {
		s, err := redis.Open(context.Background(), redis.Config{URL: url, Prefix: "t" + uuid.NewString()[:8] + ":"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestRedisDownIsUnavailable(t *testing.T) {
	url := redistest.Start(t)
	s, err := redis.Open(context.Background(), redis.Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := s.Append(context.Background(), "x", events.AnyVersion, []events.NewEvent{eventstest.Event("a", 1)}, events.AppendOptions{}); !errors.Is(err, events.ErrUnavailable) {
		t.Fatalf("append on a closed client: %v, want ErrUnavailable", err)
	}
}

func TestRedisAccountStoreContract(t *testing.T) {
	url := redistest.Start(t)
	accounttest.Run(t, func(t *testing.T) account.Store {
		s, err := redis.Open(context.Background(), redis.Config{URL: url, Prefix: "t" + uuid.NewString()[:8] + ":"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// An append by one instance wakes a reader waiting on another instance's
// Appended (through the watcher of the global stream), every time, and an
// append on the same instance wakes its own readers.
func TestRedisAppendedWakesOtherInstances(t *testing.T) {
	url := redistest.Start(t)
	open := func() *redis.Store {
		s, err := redis.Open(context.Background(), redis.Config{URL: url, Prefix: "wake:"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b := open(), open()
	waitClosed := func(what string, ch <-chan struct{}) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: not woken", what)
		}
	}
	for i := 1; i <= 3; i++ {
		woke := b.Appended()
		own := a.Appended()
		if _, err := a.Append(context.Background(), "s", events.AnyVersion, []events.NewEvent{eventstest.Event("wake", i)}, events.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
		waitClosed("the appending instance", own)
		waitClosed("the other instance", woke)
	}
}

// Close ends the watcher of the global stream, blocked in XREAD, before it
// returns, and at once (not after the blocking read's 5 s): no goroutine of
// the store outlives it.
func TestRedisCloseStopsTheWatcherAtOnce(t *testing.T) {
	url := redistest.Start(t)
	before := runtime.NumGoroutine()
	s, err := redis.Open(context.Background(), redis.Config{URL: url, Prefix: "close:"})
	if err != nil {
		t.Fatal(err)
	}
	s.Appended()
	time.Sleep(200 * time.Millisecond) // the watcher is blocked in XREAD
	start := time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Close took %v with the watcher blocked", took)
	}
	buf := make([]byte, 1<<20)
	if stacks := string(buf[:runtime.Stack(buf, true)]); strings.Contains(stacks, "redis.(*Store).watch") {
		t.Fatalf("the watcher is still running when Close has returned (goroutines %d before Open, %d now)", before, runtime.NumGoroutine())
	}
}
