package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// The scenarios added for the pager and Redis run end to end at tiny sizes
// and write their figures as JSON (speed is reported, never asserted): the
// raise → page across two instances on a real redis-server, the memory per
// idle socket, the rebuilds in rounds, and the restarts that hold one copy
// of the models at a time.
func TestBenchScenariosRun(t *testing.T) {
	var out bytes.Buffer
	js := filepath.Join(t.TempDir(), "bench.json")
	args := []string{"bench", "--scenario", "paging-redis,memory,rebuild,restart,audit", "--redis-sockets", "9", "--redis-raises", "2",
		"--memory-sockets", "16", "--audit-events", "3000", "--queries", "3", "--json", js}
	if err := run(context.Background(), args, &out, &out); err != nil {
		t.Fatalf("bench: %v\n%s", err, out.String())
	}
	b, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	var rep benchReport
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	got := map[string]benchResult{}
	for _, r := range rep.Results {
		got[r.Scenario] = r
	}
	if r, ok := got["paging-redis"]; !ok || r.BaselineValue == nil || r.Params["deliveries"] != float64(18) {
		t.Errorf("paging-redis: %+v (want 2 raises × 9 sockets delivered, beside one instance)", r)
	}
	if r, ok := got["memory"]; !ok || r.BaselineValue == nil || r.Extra["goroutines"] == 0 {
		t.Errorf("memory: %+v", r)
	}
	if r, ok := got["restart"]; !ok || r.Extra["runs"] != restartRuns || r.Extra["restart_min_s"] > r.Value || r.Value > r.Extra["restart_max_s"] {
		t.Errorf("restart: %+v (want the median of %d restarts)", r, restartRuns)
	}
	if r := got["restart"]; r.Extra["pages_from_s"] <= 0 || r.Extra["pages_from_s"] > r.Value {
		t.Errorf("restart: paging from %v s, ready at %v s: the audit model is restored after the listener opens", r.Extra["pages_from_s"], r.Value)
	}
	// The rebuild figures are medians of rounds, each round's ratio kept.
	for _, r := range rep.Results {
		if r.Scenario == "rebuild" && (r.Params["runs"] != float64(rebuildRuns) || r.Extra["round_3_ratio"] == 0) {
			t.Errorf("rebuild: %+v (want %d rounds)", r, rebuildRuns)
		}
	}
	if _, ok := got["rebuild"]; !ok {
		t.Errorf("no rebuild figure:\n%s", out.String())
	}
	// The audit scenario ran after the restart dropped the seeded models.
	if _, ok := got["audit"]; !ok {
		t.Errorf("no audit figure:\n%s", out.String())
	}
}
