package redis_test

import (
	"context"
	"errors"
	"testing"

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
