package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/events/sqlite"
)

// buildBinary builds this command once per test run.
var buildBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "nightcall-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "nightcall")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// process is the real binary running as a child process.
type process struct {
	cmd  *exec.Cmd
	base string
}

func startProcess(t *testing.T, dataDir, addr string, extra ...string) *process {
	t.Helper()
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"serve", "--demo", "--demo-password", "test-password", "--data-dir", dataDir, "--addr", addr, "--log-level", "warn"}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, base: "http://" + addr}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	waitReady(t, p.base)
	return p
}

// The crash test: several clients raise and withdraw against the real binary,
// which is SIGKILLed mid-load and restarted. Every raise that got a 201 is
// there exactly once; an append that did not answer is either whole or
// absent, which a retry with its Idempotency-Key settles.
func TestCrashSafetySIGKILL(t *testing.T) {
	dataDir, addr := t.TempDir(), freeAddr(t)
	p := startProcess(t, dataDir, addr)

	type worker struct {
		user, resident string
		created        []string // escalation IDs answered 201
		inflight       *pending // the request that had no answer at the kill
	}
	workers := []*worker{
		{user: "night.rose", resident: "rc-101"}, {user: "night.rose", resident: "rc-102"},
		{user: "night.rose", resident: "rc-103"}, {user: "night.elm", resident: "eh-201"},
	}
	ctx, stop := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	var wg sync.WaitGroup
	for i, w := range workers {
		c := newClient(t, p.base)
		c.signIn(w.user, "test-password")
		c.http.Timeout = 5 * time.Second
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				key := fmt.Sprintf("w%d-raise-%d", i, n)
				req := &pending{path: "/api/v1/escalations", key: key, body: raiseBody(w.resident)}
				status, id, err := req.send(c)
				if err != nil {
					w.inflight = req
					return
				}
				if status != 201 {
					t.Errorf("worker %d raise: %d", i, status)
					return
				}
				w.created = append(w.created, id)
				wreq := &pending{path: "/api/v1/escalations/" + id + "/withdraw", key: fmt.Sprintf("w%d-withdraw-%d", i, n), body: map[string]string{"reason": "settled"}}
				if status, _, err := wreq.send(c); err != nil {
					w.inflight = wreq
					return
				} else if status != 200 {
					t.Errorf("worker %d withdraw: %d", i, status)
					return
				}
			}
		}()
	}
	<-ctx.Done()
	stop()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, _ = p.cmd.Process.Wait()
	wg.Wait()

	total := 0
	for _, w := range workers {
		total += len(w.created)
	}
	if total < 8 {
		t.Fatalf("only %d escalations created before the kill; the load was too light to test anything", total)
	}
	t.Logf("%d escalations answered 201 before SIGKILL", total)

	// Restart on the same data dir; settle each unanswered request by retrying
	// it with its Idempotency-Key.
	p = startProcess(t, dataDir, addr)
	for _, w := range workers {
		c := newClient(t, p.base)
		c.signIn(w.user, "test-password")
		if w.inflight != nil {
			status, id, err := w.inflight.send(c)
			if err != nil {
				t.Fatalf("retry after restart: %v", err)
			}
			switch {
			case w.inflight.path == "/api/v1/escalations" && status == 201:
				w.created = append(w.created, id)
			case w.inflight.path != "/api/v1/escalations" && status == 200:
			default:
				t.Errorf("retry of %s after restart: %d", w.inflight.path, status)
			}
		}
		for _, id := range w.created {
			if r := c.do("GET", "/api/v1/escalations/"+id, nil); r.status != 200 {
				t.Errorf("escalation %s answered 201 but reads %d after restart", id, r.status)
			}
		}
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.cmd.Wait(); err != nil {
		t.Errorf("SIGTERM exit: %v (want 0 after a graceful drain)", err)
	}

	// Read the log directly: each resident's stream has exactly the raises
	// that were answered, once each, with consecutive versions.
	store, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(dataDir, "nightcall.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for _, w := range workers {
		envs, err := store.Load(context.Background(), escalation.ResidentStream(escalation.ResidentID(w.resident)), 0)
		if err != nil {
			t.Fatal(err)
		}
		r, err := escalation.Rehydrate(envs)
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range envs {
			if e.Version != int64(i+1) {
				t.Fatalf("%s: version %d at index %d", w.resident, e.Version, i)
			}
		}
		seen := map[string]int{}
		for _, e := range r.View().Escalations {
			seen[string(e.ID)]++
		}
		if len(seen) != len(w.created) {
			t.Errorf("%s: %d escalations in the stream, %d answered 201", w.resident, len(seen), len(w.created))
		}
		for _, id := range w.created {
			if seen[id] != 1 {
				t.Errorf("%s: escalation %s appears %d times", w.resident, id, seen[id])
			}
		}
	}
}

// pending is one state-changing request, kept so it can be retried.
type pending struct {
	path, key string
	body      any
}

// send returns the status and the escalation ID, or an error when no answer came.
func (p *pending) send(c *client) (int, string, error) {
	req, err := newJSONRequest("POST", c.base+p.path, p.body)
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Idempotency-Key", p.key)
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var out struct {
		ID string `json:"id"`
	}
	if err := decodeJSON(resp, &out); err != nil {
		return 0, "", err
	}
	return resp.StatusCode, out.ID, nil
}
