package main

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3filter"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/video/videoclient"
)

func init() {
	// Snapshots go up and down as the image itself.
	for _, t := range []string{"image/jpeg", "image/png"} {
		openapi3filter.RegisterBodyDecoder(t, openapi3filter.FileBodyDecoder)
	}
}

// testImage encodes a small picture as JPEG or PNG.
func testImage(t testing.TB, format string, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for x := 0; x < w; x++ {
		for y := 0; y < h; y++ {
			img.Set(x, y, color.RGBA{uint8(x * 4), uint8(y * 4), 128, 255})
		}
	}
	var buf bytes.Buffer
	var err error
	if format == "png" {
		err = png.Encode(&buf, img)
	} else {
		err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 80})
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// callOn joins the home and the consultant and waits until the call is on
// record as started.
func callOn(t *testing.T, s *testServer, id string, nurse, okafor *client) (*videoclient.Peer, *videoclient.Peer) {
	t.Helper()
	home := joinCall(t, nurse, id)
	doctor := joinCall(t, okafor, id)
	waitFor(t, 15*time.Second, "media both ways", func() bool { return home.ReceivingFrom(1, 20) && doctor.ReceivingFrom(1, 20) })
	waitFor(t, 10*time.Second, "call.started on record", func() bool {
		return hasTimeline(t, okafor, id, escalation.TypeCallStarted)
	})
	return home, doctor
}

func hasTimeline(t *testing.T, c *client, id, typ string) bool {
	for _, e := range c.do("GET", "/api/v1/escalations/"+id, nil).json(t)["timeline"].([]any) {
		if e.(map[string]any)["type"] == typ {
			return true
		}
	}
	return false
}

// snapshotEventsSince lists the snapshot events in the log after position.
func (s *testServer) snapshotEventsSince(t *testing.T, after int64) []string {
	t.Helper()
	evs, err := s.app.store.ReadAll(context.Background(), after, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		if strings.HasPrefix(e.Type, "snapshot.") {
			out = append(out, e.Type+" in "+e.Stream)
		}
	}
	return out
}

func (s *testServer) head(t *testing.T) int64 {
	t.Helper()
	h, err := s.app.store.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestSnapshotIsStoredReadOnRecordAndExported: the accepting consultant
// takes a still during the call; it is in the timeline, the case and the
// FHIR bundle, the home's page is told, those who may read the escalation
// fetch the same bytes and every fetch is on the access log.
func TestSnapshotIsStoredReadOnRecordAndExported(t *testing.T) {
	s := startServer(t, loopbackVideo)
	id, nurse, okafor := acceptedEscalation(t, s)
	home, _ := callOn(t, s, id, nurse, okafor)

	// Near the limit: the image goes into the store as several parts.
	big := append(testImage(t, "jpeg", 64, 48), bytes.Repeat([]byte{0}, escalation.MaxSnapshotBytes-4096)...)
	for _, c := range []struct {
		name, contentType string
		body              []byte
		want              string
	}{
		{"jpeg", "image/jpeg", testImage(t, "jpeg", 64, 48), "image/jpeg"},
		{"png sent as octet-stream", "application/octet-stream", testImage(t, "png", 32, 16), "image/png"},
		{"jpeg of almost 2 MiB", "image/jpeg", big, "image/jpeg"},
	} {
		r := okafor.do("POST", "/api/v1/escalations/"+id+"/snapshots", c.body, "Content-Type", c.contentType)
		if r.status != 201 {
			t.Fatalf("%s: %d %s", c.name, r.status, r.body)
		}
		sn := r.json(t)
		if sn["content_type"] != c.want || str(sn["id"]) == "" || str(sn["taken_at"]) == "" {
			t.Fatalf("%s: %v", c.name, sn)
		}
		sid := str(sn["id"])
		for who, cl := range map[string]*client{"home": nurse, "consultant": okafor, "auditor": s.signedIn("auditor")} {
			got := cl.do("GET", "/api/v1/escalations/"+id+"/snapshots/"+sid, nil)
			if got.status != 200 || !bytes.Equal(got.body, c.body) || got.header.Get("Content-Type") != c.want {
				t.Errorf("%s fetching %s: %d %s, %d bytes (want %d)", who, c.name, got.status, got.header.Get("Content-Type"), len(got.body), len(c.body))
			}
			if cc := got.header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
				t.Errorf("%s: Cache-Control %q", who, cc)
			}
		}
		for who, c := range map[string]struct {
			c      *client
			status int
		}{"another home": {s.signedIn("night.elm"), 404}, "nobody": {newClient(t, s.base), 401}} {
			if r := c.c.do("GET", "/api/v1/escalations/"+id+"/snapshots/"+sid, nil); r.status != c.status {
				t.Errorf("%s: %d, want %d", who, r.status, c.status)
			}
		}
	}
	if r := nurse.do("GET", "/api/v1/escalations/"+id+"/snapshots/no-such-snapshot", nil); r.status != 404 {
		t.Errorf("unknown snapshot: %d", r.status)
	}

	// In the case, the timeline and the resident's stream.
	esc := okafor.do("GET", "/api/v1/escalations/"+id, nil).json(t)
	if snaps, _ := esc["snapshots"].([]any); len(snaps) != 3 {
		t.Errorf("snapshots in the case: %v", esc["snapshots"])
	}
	if !hasTimeline(t, okafor, id, escalation.TypeSnapshotTaken) {
		t.Error("no snapshot.taken in the timeline")
	}
	var taken int
	for _, e := range nurse.do("GET", "/api/v1/residents/rc-101/events", nil).list(t) {
		if e["type"] == escalation.TypeSnapshotTaken {
			taken++
			if b, _ := json.Marshal(e["data"]); len(b) > 2000 {
				t.Errorf("snapshot.taken carries %d bytes: the image belongs in its own stream", len(b))
			}
		}
	}
	if taken != 3 {
		t.Errorf("%d snapshot.taken in the resident stream, want 3", taken)
	}
	// Every fetch on record: 3 snapshots × 3 readers.
	log, err := s.app.store.Load(context.Background(), escalation.AccessLogStream(), 0)
	if err != nil {
		t.Fatal(err)
	}
	fetches := 0
	for _, e := range log {
		var rec escalation.RecordAccessed
		_ = json.Unmarshal(e.Data, &rec)
		if rec.What == "snapshot" && string(rec.EscalationID) == id {
			fetches++
		}
	}
	if fetches != 9 {
		t.Errorf("%d snapshot fetches on record, want 9", fetches)
	}
	// The home's page is told.
	waitFor(t, 10*time.Second, "a notice on the home's call", func() bool { return count(home.Notices(), "snapshot_taken") == 3 })

	// In the FHIR bundle, as Media.
	bundle := okafor.do("GET", "/api/v1/escalations/"+id+"/fhir", nil)
	var b struct {
		Entry []struct {
			Resource struct {
				ResourceType string `json:"resourceType"`
				Content      struct {
					ContentType string `json:"contentType"`
					URL         string `json:"url"`
					Size        int    `json:"size"`
				} `json:"content"`
			} `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(bundle.body, &b); err != nil {
		t.Fatal(err)
	}
	media := 0
	for _, e := range b.Entry {
		if e.Resource.ResourceType == "Media" {
			media++
			if !strings.HasPrefix(e.Resource.Content.URL, "/api/v1/escalations/"+id+"/snapshots/") || e.Resource.Content.Size == 0 {
				t.Errorf("Media content %+v", e.Resource.Content)
			}
		}
	}
	if media != 3 {
		t.Errorf("%d Media resources in the bundle, want 3", media)
	}
}

// TestSnapshotBadInputStoresNothing: not an image, too large, the wrong
// role, no call, a call that has ended: each a precise 4xx, nothing stored.
func TestSnapshotBadInputStoresNothing(t *testing.T) {
	s := startServer(t, loopbackVideo)
	id, nurse, okafor := acceptedEscalation(t, s)
	jpg := testImage(t, "jpeg", 16, 16)
	post := func(c *client, body []byte, ct string) response {
		return c.do("POST", "/api/v1/escalations/"+id+"/snapshots", body, "Content-Type", ct)
	}
	refuse := func(name string, r response, status int, code string) {
		t.Helper()
		if r.status != status || r.apiErr(t)["code"] != code {
			t.Errorf("%s: %d %s, want %d %s", name, r.status, r.body, status, code)
		}
	}
	before := s.head(t)
	refuse("no call yet", post(okafor, jpg, "image/jpeg"), 409, "call_not_in_progress")
	if s.head(t) != before {
		t.Error("a snapshot refused before the call appended events")
	}
	callOn(t, s, id, nurse, okafor)
	before = s.head(t)
	refuse("text", post(okafor, []byte("this is not a picture"), "image/jpeg"), 415, "not_an_image")
	refuse("PNG magic and garbage", post(okafor, append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte("x"), 100)...), "image/png"), 415, "not_an_image")
	refuse("a JPEG cut short", post(okafor, jpg[:20], "image/jpeg"), 415, "not_an_image")
	refuse("a GIF", post(okafor, []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"), "application/octet-stream"), 415, "not_an_image")
	refuse("empty", post(okafor, nil, "image/jpeg"), 415, "not_an_image")
	tooBig := append(testImage(t, "jpeg", 16, 16), bytes.Repeat([]byte{0}, escalation.MaxSnapshotBytes)...)
	refuse("over 2 MiB", post(okafor, tooBig, "image/jpeg"), 413, "body_too_large")
	refuse("staff of the home", post(nurse, jpg, "image/jpeg"), 403, "forbidden")
	refuse("a consultant who did not accept", post(s.signedIn("dr.patel"), jpg, "image/jpeg"), 403, "forbidden")
	refuse("an auditor", post(s.signedIn("auditor"), jpg, "image/jpeg"), 403, "forbidden")
	refuse("another home's escalation", s.signedIn("dr.okafor").do("POST", "/api/v1/escalations/no-such-escalation/snapshots", jpg, "Content-Type", "image/jpeg"), 404, "not_found")
	if got := s.snapshotEventsSince(t, before); len(got) != 0 {
		t.Errorf("refused snapshots stored: %v", got)
	}
	// The call ends with the decision: no more photos.
	if r := okafor.do("POST", "/api/v1/escalations/"+id+"/decision", map[string]string{"outcome": "stay", "counterfactual": "ed", "rationale": "r", "plan": "p"}); r.status != 201 {
		t.Fatalf("decide: %d %s", r.status, r.body)
	}
	before = s.head(t)
	refuse("after the call ended", post(okafor, jpg, "image/jpeg"), 409, "escalation_closed")
	if got := s.snapshotEventsSince(t, before); len(got) != 0 {
		t.Errorf("a snapshot after the call was stored: %v", got)
	}
	if r := newClient(t, s.base).do("GET", "/healthz", nil); r.status != 200 {
		t.Errorf("healthz after bad input: %d", r.status)
	}
}

// TestContinueByPhone: each side gets the other's number, the fall-back is
// on record and the other side's page is told.
func TestContinueByPhone(t *testing.T) {
	s := startServer(t, loopbackVideo)
	id, nurse, okafor := acceptedEscalation(t, s)
	home, doctor := callOn(t, s, id, nurse, okafor)

	r := okafor.do("POST", "/api/v1/escalations/"+id+"/phone-fallback", nil)
	if r.status != 200 || r.json(t)["phone"] != "+44 1632 960001" || r.json(t)["call"] != "carehome" {
		t.Fatalf("consultant: %d %s", r.status, r.body)
	}
	r = nurse.do("POST", "/api/v1/escalations/"+id+"/phone-fallback", nil)
	if r.status != 200 || r.json(t)["call"] != "consultant" || r.json(t)["phone"] != "+447700900101" {
		t.Fatalf("home: %d %s", r.status, r.body)
	}
	waitFor(t, 10*time.Second, "both pages told", func() bool {
		return count(home.Notices(), "phone_fallback") == 2 && count(doctor.Notices(), "phone_fallback") == 2
	})
	var fell []string
	for _, e := range nurse.do("GET", "/api/v1/residents/rc-101/events", nil).list(t) {
		if e["type"] == escalation.TypeCallFellBackToPhone {
			fell = append(fell, str(e["data"].(map[string]any)["by"]))
		}
	}
	if strings.Join(fell, ",") != "consultant,carehome" {
		t.Errorf("call.fell_back_to_phone by %v", fell)
	}
	if !hasTimeline(t, nurse, id, escalation.TypeCallFellBackToPhone) {
		t.Error("not in the timeline")
	}
	for name, c := range map[string]struct {
		c      *client
		status int
	}{"another home": {s.signedIn("night.elm"), 404}, "a consultant who did not accept": {s.signedIn("dr.patel"), 403},
		"an auditor": {s.signedIn("auditor"), 403}, "nobody": {newClient(t, s.base), 401}} {
		if r := c.c.do("POST", "/api/v1/escalations/"+id+"/phone-fallback", nil); r.status != c.status {
			t.Errorf("%s: %d %s, want %d", name, r.status, r.body, c.status)
		}
	}
	okafor.do("POST", "/api/v1/escalations/"+id+"/decision", map[string]string{"outcome": "admit", "counterfactual": "ed", "rationale": "r"})
	if r := nurse.do("POST", "/api/v1/escalations/"+id+"/phone-fallback", nil); r.status != 409 {
		t.Errorf("after the decision: %d", r.status)
	}
}
