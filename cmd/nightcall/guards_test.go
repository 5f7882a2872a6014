package main

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// A resident who moved, left or died after the home's page loaded cannot be
// raised for: 409 resident_inactive said plainly, and nothing is appended.
func TestRaiseRefusedForMovedLeftOrDiedResident(t *testing.T) {
	s := startServer(t)
	nurse := s.signedIn("night.rose")
	admin := s.signedIn("admin")
	// The home's page has loaded its residents.
	if list := nurse.do("GET", "/api/v1/residents", nil).list(t); len(list) != 3 {
		t.Fatalf("rose-court lists %d residents, want 3", len(list))
	}
	now := time.Now().UTC().Format(time.RFC3339)
	for path, body := range map[string]map[string]any{
		"/api/v1/residents/rc-101/move": {"care_home_id": "elm-house", "room": "9"},
		"/api/v1/residents/rc-102/left": {"at": now},
		"/api/v1/residents/rc-103/died": {"at": now, "expected": true},
	} {
		if r := admin.do("POST", path, body); r.status != 200 {
			t.Fatalf("POST %s: %d %s", path, r.status, r.body)
		}
	}
	cases := []struct {
		resident, reason, says string
	}{
		{"rc-101", "moved", "moved to another care home"},
		{"rc-102", "", "left the home or died"},
		{"rc-103", "", "left the home or died"},
	}
	for _, c := range cases {
		t.Run(c.resident, func(t *testing.T) {
			before := s.streamLen(c.resident)
			for _, headers := range [][]string{nil, {"Idempotency-Key", "raise-" + c.resident}} {
				r := nurse.do("POST", "/api/v1/escalations", raiseBody(c.resident), headers...)
				if r.status != 409 {
					t.Fatalf("raise for %s: %d %s, want 409", c.resident, r.status, r.body)
				}
				e := r.apiErr(t)
				if e["code"] != "resident_inactive" || !strings.Contains(str(e["message"]), c.says) {
					t.Errorf("raise for %s: %v, want resident_inactive saying %q", c.resident, e, c.says)
				}
				if c.reason != "" && e["reason"] != c.reason {
					t.Errorf("raise for %s: reason %v, want %q", c.resident, e["reason"], c.reason)
				}
				if strings.Contains(string(r.body), "Margaret") || strings.Contains(string(r.body), "elm-house") {
					t.Errorf("the refusal says more than it must: %s", r.body)
				}
			}
			if after := s.streamLen(c.resident); after != before {
				t.Errorf("%s stream grew from %d to %d events on a refused raise", c.resident, before, after)
			}
		})
	}
	// A resident the home never held is still not found: nothing is told of other homes.
	if r := nurse.do("POST", "/api/v1/escalations", raiseBody("eh-202")); r.status != 404 {
		t.Errorf("raise for another home's resident: %d %s, want 404", r.status, r.body)
	}
	// The home the resident moved to can raise for them.
	if r := s.signedIn("night.elm").do("POST", "/api/v1/escalations", raiseBody("rc-101")); r.status != 201 {
		t.Errorf("raise by the new home: %d %s", r.status, r.body)
	}
}

// observations_stale, observations_72h, review_overdue, the oxygen flow and
// the timezone are on the wire.
func TestObservationGuardsOnTheWire(t *testing.T) {
	s := startServer(t)
	nurse := s.signedIn("night.rose")
	admin := s.signedIn("admin")
	okafor := s.signedIn("dr.okafor")

	if tz := nurse.do("GET", "/api/v1/me", nil).json(t)["timezone"]; tz != "Europe/London" {
		t.Errorf("/me timezone %v, want Europe/London", tz)
	}

	// Routine sets 80 h and 10 h ago: only the second is in the 72 h trend.
	for _, ago := range []time.Duration{80 * time.Hour, 10 * time.Hour} {
		obs := raiseBody("rc-102")["observations"].(map[string]any)
		obs["taken_at"] = time.Now().Add(-ago).UTC().Format(time.RFC3339)
		if r := nurse.do("POST", "/api/v1/residents/rc-102/observations", map[string]any{"observations": obs}); r.status != 201 {
			t.Fatalf("routine observations %v ago: %d %s", ago, r.status, r.body)
		}
	}

	// Raised on observations taken 2 h before, on oxygen at 2 L/min.
	body := with("rc-102", func(b, o map[string]any) {
		o["taken_at"] = time.Now().Add(-2 * time.Hour).UTC().Format(time.RFC3339)
		o["on_oxygen"], o["oxygen_litres_per_min"] = true, 2
	})
	r := nurse.do("POST", "/api/v1/escalations", body)
	if r.status != 201 {
		t.Fatalf("raise: %d %s", r.status, r.body)
	}
	esc := r.json(t)
	if esc["observations_stale"] != true {
		t.Errorf("raised on 2 h old observations: observations_stale %v", esc["observations_stale"])
	}
	if !strings.Contains(string(r.body), `"oxygen_litres_per_min":2.0`) {
		t.Errorf("the oxygen flow is not kept: %s", r.body)
	}
	got := okafor.do("GET", "/api/v1/escalations/"+str(esc["id"]), nil).json(t)
	if got["observations_stale"] != true {
		t.Errorf("the consultant's view: observations_stale %v", got["observations_stale"])
	}
	queue := okafor.do("GET", "/api/v1/escalations?status=open", nil).list(t)
	if len(queue) != 1 || queue[0]["observations_stale"] != true {
		t.Errorf("the consultant's queue: %v", queue)
	}

	// Fresh observations are not stale.
	fresh := nurse.do("POST", "/api/v1/escalations", raiseBody("rc-103")).json(t)
	if fresh["observations_stale"] != false {
		t.Errorf("fresh observations: observations_stale %v, want false", fresh["observations_stale"])
	}

	res := okafor.do("GET", "/api/v1/residents/rc-102", nil).json(t)
	trend, _ := res["observations_72h"].([]any)
	recent, _ := res["recent_observations"].([]any)
	if len(trend) != 2 || len(recent) != 3 {
		t.Errorf("observations_72h has %d sets (want 2: 10 h and 2 h ago), recent_observations %d (want 3)", len(trend), len(recent))
	}

	// A plan past its review date is overdue; the demo plans are not.
	yesterday := time.Now().In(mustLoc(t, "Europe/London")).AddDate(0, 0, -1).Format("2006-01-02")
	if r := admin.do("POST", "/api/v1/residents/rc-102/advance-care-plan", map[string]any{
		"has_respect_form": true, "focus": "balance", "hospital_admission": "discuss", "cpr": "attempt",
		"summary": "Reviewed with family", "recorded_at": "2025-01-10", "review_due": yesterday,
	}); r.status != 200 {
		t.Fatalf("set plan: %d %s", r.status, r.body)
	}
	for id, want := range map[string]bool{"rc-102": true, "rc-101": false} {
		acp, _ := nurse.do("GET", "/api/v1/residents/"+id, nil).json(t)["advance_care_plan"].(map[string]any)
		if acp == nil || acp["review_overdue"] != want || acp["review_due"] == nil {
			t.Errorf("%s advance_care_plan %v: want review_overdue %v", id, acp, want)
		}
	}

	// A bad oxygen flow is refused with its field, and nothing is appended.
	before := s.streamLen("rc-101")
	for _, c := range []struct {
		flow   any
		oxygen bool
		status int
		code   string
	}{
		{0.4, true, 422, "implausible_observation"},
		{15.1, true, 422, "implausible_observation"},
		{"2", true, 400, "invalid_json"},
		{2, false, 422, "inconsistent_observation"},
	} {
		r := nurse.do("POST", "/api/v1/escalations", with("rc-101", func(b, o map[string]any) {
			o["on_oxygen"], o["oxygen_litres_per_min"] = c.oxygen, c.flow
		}))
		e := r.apiErr(t)
		if r.status != c.status || e["code"] != c.code || e["field"] != "observations.oxygen_litres_per_min" {
			t.Errorf("oxygen %v L/min (on oxygen %v): %d %v, want %d %s", c.flow, c.oxygen, r.status, e, c.status, c.code)
		}
	}
	if after := s.streamLen("rc-101"); after != before {
		t.Errorf("refused raises appended %d events", after-before)
	}
}

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(fmt.Errorf("load %s: %w", name, err))
	}
	return loc
}
