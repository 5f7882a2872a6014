package main

import (
	"net/http"
	"testing"
	"time"
)

// TestTheHomeLearnsOfTheAcceptanceTheMomentItHappens: the care home's page
// follows its escalation by long poll (If-None-Match with the tag it has,
// Prefer: wait), so the acceptance that starts its call reaches it at once
// instead of at its next poll. A wait with nothing new ends 304 with the
// same tag; another resident's escalation does not end it; the wait is
// only for those who may see the escalation.
func TestTheHomeLearnsOfTheAcceptanceTheMomentItHappens(t *testing.T) {
	s := startServer(t)
	nurse, okafor := s.signedIn("night.rose"), s.signedIn("dr.okafor")
	id := str(nurse.do("POST", "/api/v1/escalations", raiseBody("rc-101")).json(t)["id"])
	path := "/api/v1/escalations/" + id

	// The tag the page holds once the raise has been paged (the page is on
	// the paging stream, which the view and its tag include, a moment
	// after the raise is answered).
	var first response
	waitFor(t, 10*time.Second, "the raise paged", func() bool {
		first = nurse.do("GET", path, nil)
		return first.status == http.StatusOK && first.json(t)["first_paged_at"] != nil
	})
	tag := first.header.Get("ETag")
	if first.status != http.StatusOK || len(tag) < 3 || tag[0] != '"' {
		t.Fatalf("GET: %d, ETag %q: want 200 with a strong entity tag", first.status, tag)
	}
	// Unchanged: 304 at once without a wait, after the wait with one.
	if r := nurse.do("GET", path, nil, "If-None-Match", tag); r.status != http.StatusNotModified || r.header.Get("ETag") != tag || len(r.body) != 0 {
		t.Fatalf("If-None-Match with the current tag: %d, ETag %q, %d bytes: want 304, the same tag, no body", r.status, r.header.Get("ETag"), len(r.body))
	}
	t0 := time.Now()
	if r := nurse.do("GET", path, nil, "If-None-Match", tag, "Prefer", "wait=1"); r.status != http.StatusNotModified || r.header.Get("ETag") != tag {
		t.Fatalf("a wait with nothing new: %d, ETag %q: want 304 and the same tag", r.status, r.header.Get("ETag"))
	}
	if took := time.Since(t0); took < 900*time.Millisecond || took > 5*time.Second {
		t.Fatalf("a 1 s wait with nothing new was answered after %v", took)
	}
	// A tag the escalation no longer has is answered in full at once.
	if r := nurse.do("GET", path, nil, "If-None-Match", `"0.0.0"`, "Prefer", "wait=20"); r.status != http.StatusOK || r.header.Get("ETag") != tag {
		t.Fatalf("an old tag: %d, ETag %q: want 200 with %s", r.status, r.header.Get("ETag"), tag)
	}
	// Another care home's staff wait for nothing: 404 at once.
	t0 = time.Now()
	if r := s.signedIn("night.elm").do("GET", path, nil, "If-None-Match", tag, "Prefer", "wait=20"); r.status != http.StatusNotFound || time.Since(t0) > 5*time.Second {
		t.Fatalf("another home's long poll: %d after %v, want 404 at once", r.status, time.Since(t0))
	}

	type answer struct {
		r  response
		at time.Time
	}
	done := make(chan answer, 1)
	go func() {
		r := nurse.do("GET", path, nil, "If-None-Match", tag, "Prefer", "wait=20")
		done <- answer{r, time.Now()}
	}()
	// Another resident's escalation, in the same home, changes nothing here.
	nurse.do("POST", "/api/v1/escalations", raiseBody("rc-102"))
	select {
	case a := <-done:
		t.Fatalf("the wait ended (%d) on another resident's escalation", a.r.status)
	case <-time.After(1500 * time.Millisecond):
	}
	accepted := time.Now()
	if r := okafor.do("POST", path+"/accept", nil); r.status != http.StatusOK {
		t.Fatalf("accept: %d %s", r.status, r.body)
	}
	select {
	case a := <-done:
		if a.r.status != http.StatusOK || str(a.r.json(t)["status"]) != "accepted" {
			t.Fatalf("the wait ended %d, status %v: want 200 and accepted", a.r.status, a.r.json(t)["status"])
		}
		if nt := a.r.header.Get("ETag"); nt == tag || nt == "" {
			t.Fatalf("the accepted escalation kept the tag %q", nt)
		}
		if lag := a.at.Sub(accepted); lag > 2*time.Second {
			t.Fatalf("the home heard of the acceptance %v after it", lag)
		}
		t.Logf("acceptance → the home's answer: %v", a.at.Sub(accepted).Round(time.Millisecond))
	case <-time.After(15 * time.Second):
		t.Fatal("the long poll was not answered when the escalation was accepted")
	}
}
