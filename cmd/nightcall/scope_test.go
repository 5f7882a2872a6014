package main

import (
	"testing"
	"time"
)

// TestDeactivatedHomeCannotRaise: a home taken out of service is refused
// with 409 care_home_inactive and its fallback number, and nothing is
// appended.
func TestDeactivatedHomeCannotRaise(t *testing.T) {
	s := startServer(t)
	admin, nurse := s.signedIn("admin"), s.signedIn("night.rose")
	if r := admin.do("POST", "/api/v1/care-homes/rose-court/deactivate", nil); r.status != 200 {
		t.Fatalf("deactivate: %d %s", r.status, r.body)
	}
	before := s.streamLen("rc-101")
	r := nurse.do("POST", "/api/v1/escalations", raiseBody("rc-101"))
	if r.status != 409 || r.apiErr(t)["code"] != "care_home_inactive" || r.apiErr(t)["fallback_phone"] != "+44 1632 960001" {
		t.Fatalf("raise from a deactivated home: %d %s", r.status, r.body)
	}
	if s.streamLen("rc-101") != before {
		t.Error("a refused raise appended events")
	}
	// Another home is unaffected.
	if r := s.signedIn("night.elm").do("POST", "/api/v1/escalations", raiseBody("eh-201")); r.status != 201 {
		t.Errorf("raise from an active home: %d %s", r.status, r.body)
	}
}

// TestDeathClosesTheOpenEscalationAndItsPaging: recording a death withdraws
// the resident's open escalation, so the consultant's page is cancelled.
func TestDeathClosesTheOpenEscalationAndItsPaging(t *testing.T) {
	s := startServer(t)
	nurse, admin := s.signedIn("night.rose"), s.signedIn("admin")
	pager := s.signedIn("dr.okafor").pager("phone")
	id := str(nurse.do("POST", "/api/v1/escalations", raiseBody("rc-101")).json(t)["id"])
	if page := pager.expect("page", 10*time.Second); str(page["escalation"].(map[string]any)["id"]) != id {
		t.Fatalf("page for another escalation: %v", page)
	}
	r := admin.do("POST", "/api/v1/residents/rc-101/died", map[string]any{"at": time.Now().UTC().Add(-time.Minute), "expected": true})
	if r.status != 200 {
		t.Fatalf("record death: %d %s", r.status, r.body)
	}
	if c := pager.expect("page_cancelled", 10*time.Second); c["escalation_id"] != id || c["reason"] != "withdrawn" {
		t.Errorf("cancellation after the death: %v", c)
	}
	esc := nurse.do("GET", "/api/v1/escalations/"+id, nil).json(t)
	if esc["status"] != "withdrawn" {
		t.Errorf("escalation after the death: %v", esc["status"])
	}
}
