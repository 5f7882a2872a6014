package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/nightcall-health/nightcall/escalation"
)

// TestBrowserSnapshot: in Chromium the consultant presses "Take photo"
// during the call; the frame of the home's video lands in the escalation's
// events and its FHIR bundle, and the home's page says a photo was taken.
func TestBrowserSnapshot(t *testing.T) {
	s := startServer(t, loopbackVideo)
	id, nurse, okafor := acceptedEscalation(t, s)
	browser := newBrowser(t)
	home, doctor := newTab(t, browser), newTab(t, browser)
	browserSignIn(t, home, s.base, "night.rose", "test-password")
	browserSignIn(t, doctor, s.base, "dr.okafor", "test-password")
	within(t, home, 20*time.Second, chromedp.Navigate(s.base+"/call/"+id))
	within(t, doctor, 20*time.Second, chromedp.Navigate(s.base+"/call/"+id))
	for name, tab := range map[string]context.Context{"care home": home, "consultant": doctor} {
		deadline := time.Now().Add(30 * time.Second)
		for framesDecoded(t, tab) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%s decodes no video", name)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitFor(t, 10*time.Second, "call.started on record", func() bool { return hasTimeline(t, okafor, id, escalation.TypeCallStarted) })
	if got := within(t, home, 5*time.Second, chromedp.Evaluate[bool](`!!document.getElementById("take-photo")`)); got {
		t.Error("the home's page offers Take photo")
	}
	within(t, doctor, 10*time.Second, chromedp.Click("#take-photo"))
	within(t, doctor, 15*time.Second, chromedp.WaitVisible("#snapshots img"))

	var snaps []any
	waitFor(t, 10*time.Second, "the snapshot in the case", func() bool {
		snaps, _ = okafor.do("GET", "/api/v1/escalations/"+id, nil).json(t)["snapshots"].([]any)
		return len(snaps) == 1
	})
	sn := snaps[0].(map[string]any)
	if sn["content_type"] != "image/jpeg" || sn["width"].(float64) < 100 {
		t.Errorf("snapshot %v: want a JPEG of the home's video", sn)
	}
	img := nurse.do("GET", "/api/v1/escalations/"+id+"/snapshots/"+str(sn["id"]), nil)
	if img.status != 200 || len(img.body) < 1000 || img.body[0] != 0xff || img.body[1] != 0xd8 {
		t.Errorf("fetching the photo: %d, %d bytes", img.status, len(img.body))
	}
	var taken bool
	for _, e := range nurse.do("GET", "/api/v1/residents/rc-101/events", nil).list(t) {
		taken = taken || e["type"] == escalation.TypeSnapshotTaken
	}
	if !taken {
		t.Error("no snapshot.taken in the resident's events")
	}
	if b := okafor.do("GET", "/api/v1/escalations/"+id+"/fhir", nil); !strings.Contains(string(b.body), `"resourceType":"Media"`) {
		t.Error("no Media in the FHIR bundle")
	}
	within(t, home, 10*time.Second, chromedp.WaitVisible("#call-notices li"))
	if text := within(t, home, 5*time.Second, chromedp.Text("#call-notices")); !strings.Contains(text, "photo") {
		t.Errorf("the home's page says %q", text)
	}
	screenshot(t, doctor, "../../docs/screenshots/snapshot.png")
}
