package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nightcall-health/nightcall/events"
	"github.com/nightcall-health/nightcall/events/eventstest"
	"github.com/nightcall-health/nightcall/events/sqlite"
)

// ReplayShared reads the log once for several followers, each from its own
// position up to the one asked for, in order, over several pages; one whose
// Apply fails stops there and the others go on; a log shorter than asked
// for is an error for every follower it leaves short.
func TestReplaySharedBringsEachFollowerUpFromItsOwnPosition(t *testing.T) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "log.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const total = 20_000 // more than two of Replay's pages
	for b := 0; b < total/500; b++ {
		evs := make([]events.NewEvent, 500)
		for i := range evs {
			evs[i] = eventstest.Event("tick", map[string]int{"n": b*500 + i})
		}
		if _, err := s.Append(ctx, fmt.Sprintf("s-%d", b%7), events.AnyVersion, evs, events.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	const to = 15_000
	seen := make([][]int64, 3)
	follower := func(i int, from, failAt int64) events.Follower {
		return events.Follower{From: from, Apply: func(e events.Envelope) error {
			if e.Position == failAt {
				return errors.New("cannot apply")
			}
			seen[i] = append(seen[i], e.Position)
			return nil
		}}
	}
	last, errs := events.ReplayShared(ctx, s, to, []events.Follower{follower(0, 0, -1), follower(1, 5_000, -1), follower(2, 0, 12_345)})
	for i, want := range []struct {
		from, last int64
		failed     bool
	}{{0, to, false}, {5_000, to, false}, {0, 12_344, true}} {
		if (errs[i] != nil) != want.failed || last[i] != want.last {
			t.Errorf("follower %d: last %d, err %v; want last %d, failed %v", i, last[i], errs[i], want.last, want.failed)
		}
		if int64(len(seen[i])) != want.last-want.from {
			t.Errorf("follower %d applied %d events, want %d", i, len(seen[i]), want.last-want.from)
			continue
		}
		for k, p := range seen[i] {
			if p != want.from+int64(k)+1 {
				t.Fatalf("follower %d: event %d at position %d, want %d (in order, none skipped)", i, k, p, want.from+int64(k)+1)
			}
		}
	}
	if errs[2] == nil || !strings.Contains(errs[2].Error(), "12345") {
		t.Errorf("the failing follower's error %v does not name the position", errs[2])
	}

	// Past the head: each follower ends at the head with an error.
	last, errs = events.ReplayShared(ctx, s, total+10, []events.Follower{{From: to, Apply: func(events.Envelope) error { return nil }}})
	if errs[0] == nil || last[0] != total {
		t.Errorf("asked past the head: last %d, err %v", last[0], errs[0])
	}
	// Nothing to do: no read, no error.
	if last, errs = events.ReplayShared(ctx, s, to, []events.Follower{{From: to}}); errs[0] != nil || last[0] != to {
		t.Errorf("at the position asked for already: last %d, err %v", last[0], errs[0])
	}
}
