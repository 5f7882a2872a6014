package main

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"
)

func levelNames(t *testing.T, m map[string]any) string {
	var out [][]string
	for _, l := range m["levels"].([]any) {
		var names []string
		for _, p := range l.([]any) {
			names = append(names, str(p.(map[string]any)["username"]))
		}
		out = append(out, names)
	}
	return fmt.Sprint(out)
}

func TestRotaAdministration(t *testing.T) {
	s := startServer(t)
	admin, auditor, adams, nurse := s.signedIn("admin"), s.signedIn("auditor"), s.signedIn("dr.adams"), s.signedIn("night.rose")
	if m := adams.do("GET", "/api/v1/me", nil).json(t); m["on_call"] != false {
		t.Fatalf("dr.adams starts off call: %v", m)
	}
	shift := map[string]any{"days": []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}, "start": "00:00", "end": "00:00", "end_day_offset": 1, "levels": [][]string{{"dr.adams"}}}
	for _, c := range []struct {
		name   string
		c      *client
		body   any
		status int
		field  string
	}{
		{"staff", nurse, shift, 403, ""},
		{"bad day", admin, map[string]any{"days": []string{"funday"}, "start": "00:00", "end": "00:00", "levels": [][]string{{"dr.adams"}}}, 400, "days[0]"},
		{"not a consultant", admin, map[string]any{"days": []string{"mon"}, "start": "18:30", "end": "08:00", "levels": [][]string{{"night.rose"}}}, 400, "levels[0][0]"},
	} {
		r := c.c.do("PUT", "/api/v1/rota/shifts/all-day", c.body)
		if r.status != c.status || str(r.apiErr(t)["field"]) != c.field {
			t.Errorf("%s: %d %s", c.name, r.status, r.body)
		}
	}
	beforeChange := time.Now().UTC()
	time.Sleep(10 * time.Millisecond)
	if r := admin.do("PUT", "/api/v1/rota/shifts/all-day", shift); r.status != 200 {
		t.Fatalf("set shift: %d %s", r.status, r.body)
	}
	waitFor(t, 3*time.Second, "dr.adams on call", func() bool { return adams.do("GET", "/api/v1/me", nil).json(t)["on_call"] == true })
	if got := levelNames(t, nurse.do("GET", "/api/v1/rota/now", nil).json(t)); got != "[[dr.okafor dr.adams] [dr.patel]]" {
		t.Errorf("rota now: %s", got)
	}
	// dr.adams covers dr.okafor for the next hour.
	now := time.Now().UTC()
	r := admin.do("POST", "/api/v1/rota/overrides", map[string]any{"from": now.Add(-time.Minute), "to": now.Add(time.Hour), "covered": "dr.okafor", "by": "dr.adams"})
	if r.status != 201 {
		t.Fatalf("override: %d %s", r.status, r.body)
	}
	waitFor(t, 3*time.Second, "override applied", func() bool {
		return levelNames(t, nurse.do("GET", "/api/v1/rota/now", nil).json(t)) == "[[dr.adams] [dr.patel]]"
	})
	// Who was on call before the change stays answerable.
	past := auditor.do("GET", "/api/v1/rota/at?time="+beforeChange.Format(time.RFC3339Nano), nil)
	if past.status != 200 || levelNames(t, past.json(t)) != "[[dr.okafor] [dr.patel]]" {
		t.Errorf("rota before the change: %d %s", past.status, past.body)
	}
	if got := auditor.do("GET", "/api/v1/rota/at?time="+now.Add(-24*time.Hour).Format(time.RFC3339), nil); levelNames(t, got.json(t)) != "[]" {
		t.Errorf("before any rota was recorded: %s", got.body)
	}
	if r := nurse.do("GET", "/api/v1/rota/at", nil); r.status != 403 {
		t.Errorf("staff reading the full rota: %d", r.status)
	}
	// The CLI works on the same data dir while the server runs.
	var out bytes.Buffer
	if err := run(context.Background(), []string{"rota", "standing", "--data-dir", s.app.cfg.DataDir, "--levels", "dr.patel"}, &out, &out); err != nil {
		t.Fatalf("rota standing: %v\n%s", err, out.String())
	}
	waitFor(t, 3*time.Second, "CLI change seen by the server", func() bool {
		return levelNames(t, nurse.do("GET", "/api/v1/rota/now", nil).json(t)) == "[[dr.patel dr.adams]]"
	})
	if err := run(context.Background(), []string{"rota", "shift", "--data-dir", s.app.cfg.DataDir, "--id", "x", "--days", "mon", "--start", "18:30", "--end", "08:00", "--levels", "auditor"}, &out, &out); err == nil {
		t.Errorf("CLI accepted an auditor on the rota")
	}
	// Every change is an event on the rota stream.
	evs, _ := s.app.store.Load(context.Background(), "rota", 0)
	if len(evs) != 4 {
		t.Errorf("rota stream has %d events, want 4 (demo, shift, override, standing)", len(evs))
	}
}

// The bench commands run end to end (speed is reported, never asserted).
func TestBenchCommandsRun(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"bench", "paging", "-sockets", "20", "-raises", "2"}, &out, &out); err != nil {
		t.Fatalf("bench paging: %v\n%s", err, out.String())
	}
	if err := run(context.Background(), []string{"bench", "append", "-n", "50"}, &out, &out); err != nil {
		t.Fatalf("bench append: %v\n%s", err, out.String())
	}
	if err := run(context.Background(), []string{"bench", "audit", "-n", "3000", "-queries", "3"}, &out, &out); err != nil {
		t.Fatalf("bench audit: %v\n%s", err, out.String())
	}
	if err := run(context.Background(), []string{"bench", "video", "-calls", "2", "-loss-calls", "2", "-measure", "1s"}, &out, &out); err != nil {
		t.Fatalf("bench video: %v\n%s", err, out.String())
	}
	for _, want := range []string{"bare gorilla broadcast", "raise → page, 20 sockets", "raw single-row transactions", "one writer, throughput", "audit model rebuild", "admissions-avoided query, p99", "bare Pion v3 forwarder", "SFU server CPU per forwarded packet", "video packets lost, 2 calls"} {
		if !bytes.Contains(out.Bytes(), []byte(want)) {
			t.Errorf("bench output lacks %q:\n%s", want, out.String())
		}
	}
}
