package sqlite_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nightcall-health/nightcall/events"
	"github.com/nightcall-health/nightcall/events/eventstest"
	"github.com/nightcall-health/nightcall/events/sqlite"
)

// 32 writers appending at once, to streams of their own and to one they
// share: every append is acknowledged, every event lands exactly once, and
// each stream's versions run on without a gap.
func TestGroupCommit32ConcurrentAppendersLandOnce(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	const writers, each = 32, 20
	var wg sync.WaitGroup
	ids := make(chan string, writers*each*2)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				own := eventstest.Event("own", i)
				if _, err := s.Append(ctx, fmt.Sprintf("writer-%d", w), int64(i), []events.NewEvent{own}, events.AppendOptions{}); err != nil {
					t.Errorf("writer %d append %d: %v", w, i, err)
					return
				}
				ids <- own.ID
				shared := eventstest.Event("shared", w)
				if _, err := s.Append(ctx, "shared", events.AnyVersion, []events.NewEvent{shared}, events.AppendOptions{}); err != nil {
					t.Errorf("writer %d shared append %d: %v", w, i, err)
					return
				}
				ids <- shared.ID
			}
		}(w)
	}
	wg.Wait()
	close(ids)
	want := map[string]bool{}
	for id := range ids {
		want[id] = true
	}
	var all []events.Envelope
	for after := int64(0); ; {
		page, err := s.ReadAll(ctx, after, 500)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		all = append(all, page...)
		after = page[len(page)-1].Position
	}
	if len(all) != writers*each*2 || len(want) != writers*each*2 {
		t.Fatalf("log holds %d events, %d acknowledged, want %d", len(all), len(want), writers*each*2)
	}
	seen := map[string]bool{}
	version := map[string]int64{}
	for _, e := range all {
		if !want[e.ID] || seen[e.ID] {
			t.Fatalf("event %s stored twice or never acknowledged", e.ID)
		}
		seen[e.ID] = true
		if e.Version != version[e.Stream]+1 {
			t.Fatalf("stream %s: version %d after %d", e.Stream, e.Version, version[e.Stream])
		}
		version[e.Stream] = e.Version
	}
}

const crashEnv = "NIGHTCALL_GROUP_COMMIT_CRASH_DB"

// The store is killed (SIGKILL) while 32 writers append three events at a
// time: after reopening, every acknowledged append is there whole, no
// append is there in part, and nothing is there twice.
func TestGroupCommitCrashKeepsAcknowledgedAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestGroupCommitCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[string]int{} // stream → appends acknowledged
	sc := bufio.NewScanner(out)
	n := 0
	deadline := time.Now().Add(60 * time.Second)
	for n < 300 && sc.Scan() && time.Now().Before(deadline) {
		var stream string
		var k int
		if _, err := fmt.Sscanf(sc.Text(), "ack %s %d", &stream, &k); err != nil {
			continue
		}
		acked[stream] = max(acked[stream], k+1)
		n++
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if n < 300 {
		t.Fatalf("the child acknowledged only %d appends", n)
	}
	s, err := sqlite.Open(context.Background(), sqlite.Config{Path: path})
	if err != nil {
		t.Fatalf("reopen after the kill: %v", err)
	}
	defer s.Close()
	for w := 0; w < 32; w++ {
		stream := fmt.Sprintf("crash-%02d", w)
		evs, err := s.Load(context.Background(), stream, 0)
		if err != nil && acked[stream] > 0 {
			t.Fatalf("%s: %v after %d acknowledged appends", stream, err, acked[stream])
		}
		if len(evs)%3 != 0 {
			t.Errorf("%s holds %d events: an append of three was stored in part", stream, len(evs))
		}
		if len(evs)/3 < acked[stream] {
			t.Errorf("%s holds %d appends, %d were acknowledged", stream, len(evs)/3, acked[stream])
		}
		for i, e := range evs {
			if want := fmt.Sprintf("%s-%06d-%d", stream, i/3, i%3); e.ID != want || e.Version != int64(i+1) {
				t.Fatalf("%s event %d is %s v%d, want %s v%d", stream, i, e.ID, e.Version, want, i+1)
			}
		}
	}
}

// TestGroupCommitCrashChild is the process the crash test kills; it does
// nothing unless started by it.
func TestGroupCommitCrashChild(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		return
	}
	s, err := sqlite.Open(context.Background(), sqlite.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			stream := fmt.Sprintf("crash-%02d", w)
			for k := 0; ; k++ {
				evs := make([]events.NewEvent, 3)
				for j := range evs {
					evs[j] = events.NewEvent{ID: fmt.Sprintf("%s-%06d-%d", stream, k, j), Type: "n", Data: []byte(`{"x":"` + strings.Repeat("y", 200) + `"}`)}
				}
				if _, err := s.Append(context.Background(), stream, int64(3*k), evs, events.AppendOptions{}); err != nil {
					fmt.Fprintln(os.Stderr, "append:", err)
					return
				}
				mu.Lock()
				fmt.Printf("ack %s %d\n", stream, k)
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
}
