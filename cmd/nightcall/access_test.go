package main

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/nightcall-health/nightcall/escalation"
)

// TestReadsOnRecordWithoutFlooding: a waiting page polling its escalation
// is on record once per five minutes, not once a poll; every bulk export is
// on record with its range; the access log is read from the store.
func TestReadsOnRecordWithoutFlooding(t *testing.T) {
	s := startServer(t)
	nurse, auditor := s.signedIn("night.rose"), s.signedIn("auditor")
	id := str(nurse.do("POST", "/api/v1/escalations", raiseBody("rc-101")).json(t)["id"])
	reads := func(who, what string) (n int, last map[string]any) {
		evs, err := s.app.store.Load(context.Background(), escalation.AccessLogStream(), 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			var m map[string]any
			_ = json.Unmarshal(e.Data, &m)
			if m["username"] == who && m["what"] == what {
				n++
				last = m
			}
		}
		return n, last
	}
	for i := 0; i < 20; i++ {
		if r := nurse.do("GET", "/api/v1/escalations/"+id, nil); r.status != 200 {
			t.Fatalf("poll %d: %d", i, r.status)
		}
	}
	if n, _ := reads("night.rose", "escalation"); n != 1 {
		t.Errorf("20 polls of one escalation are on record %d times, want once", n)
	}
	// Another record by the same user is its own read.
	nurse.do("GET", "/api/v1/residents/rc-102", nil)
	if n, _ := reads("night.rose", "resident"); n != 1 {
		t.Errorf("a read of another record: %d entries, want 1", n)
	}
	// Exports: every one, with its range, and the text variant apart.
	for i := 0; i < 2; i++ {
		if r := auditor.do("GET", "/api/v1/audit/escalations.csv?from=2026-01-01T00:00:00Z&to=2027-01-01T00:00:00Z", nil); r.status != 200 || r.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("csv: %d, Cache-Control %q", r.status, r.header.Get("Cache-Control"))
		}
	}
	auditor.do("GET", "/api/v1/audit/escalations.csv?include_text=true", nil)
	n, last := reads("auditor", "export_csv")
	if n != 2 || last["from"] != "2026-01-01T00:00:00Z" || last["to"] != "2027-01-01T00:00:00Z" {
		t.Errorf("csv exports on record: %d, last %v", n, last)
	}
	if n, _ := reads("auditor", "export_csv_text"); n != 1 {
		t.Errorf("csv exports with free text on record: %d, want 1", n)
	}
	// The access log route reads them back from the store.
	log := auditor.do("GET", "/api/v1/audit/access-log", nil).list(t)
	found := false
	for _, a := range log {
		found = found || (a["what"] == "export_csv_text" && a["username"] == "auditor")
	}
	if !found {
		t.Errorf("the access log route does not list the export: %v", log)
	}
}
