package main

import (
	"encoding/json"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/nightcall-health/nightcall/escalation"
)

func loopbackVideo(c *serveConfig) {
	c.WebRTCLoopback, c.WebRTCInterfaces, c.CallRejoinGrace = true, "lo", 2*time.Second
}

// acceptedEscalation raises for rc-101 and has dr.okafor accept it.
func acceptedEscalation(t testing.TB, s *testServer) (string, *client, *client) {
	nurse, okafor := s.signedIn("night.rose"), s.signedIn("dr.okafor")
	id := str(nurse.do("POST", "/api/v1/escalations", raiseBody("rc-101")).json(t)["id"])
	if r := okafor.do("POST", "/api/v1/escalations/"+id+"/accept", nil); r.status != 200 {
		t.Fatalf("accept: %d %s", r.status, r.body)
	}
	return id, nurse, okafor
}

func TestCallThroughTheSFU(t *testing.T) {
	s := startServer(t, loopbackVideo)
	id, nurse, okafor := acceptedEscalation(t, s)
	baseline := runtime.NumGoroutine()

	home := joinCall(t, nurse, id)
	doctor := joinCall(t, okafor, id)
	waitFor(t, 15*time.Second, "media both ways", func() bool { return home.ReceivingFrom(1, 50) && doctor.ReceivingFrom(1, 50) })

	// A GP joins through a one-time invite and receives both.
	inv := okafor.do("POST", "/api/v1/escalations/"+id+"/invites", map[string]string{"role": "gp"})
	if inv.status != 201 || !strings.HasPrefix(str(inv.json(t)["url"]), "/call/invite/") {
		t.Fatalf("invite: %d %s", inv.status, inv.body)
	}
	link := str(inv.json(t)["url"])
	gp := newClient(t, s.base)
	// Opening the link (a link preview, a mail scanner) spends nothing.
	for i := 0; i < 2; i++ {
		if r := newClient(t, s.base).do("GET", link, nil); r.status != 200 || !strings.Contains(string(r.body), "Nightcall video call") {
			t.Fatalf("opening the invite (%d): %d", i, r.status)
		}
	}
	if r := gp.do("POST", link, nil); r.status != 204 {
		t.Fatalf("joining through the invite: %d %s", r.status, r.body)
	}
	if r := newClient(t, s.base).do("POST", link, nil); r.status != 410 || r.apiErr(t)["code"] != "invite_used" {
		t.Fatalf("second redemption: %d %s", r.status, r.body)
	}
	guest := joinCall(t, gp, id)
	waitFor(t, 15*time.Second, "the guest receives both", func() bool { return guest.ReceivingFrom(2, 30) })
	waitFor(t, 10*time.Second, "everyone receives the guest", func() bool { return home.ReceivingFrom(2, 30) && doctor.ReceivingFrom(2, 30) })
	roles := strings.Join(guest.Participants(), ",")
	for _, r := range []string{"carehome", "consultant", "gp"} {
		if !strings.Contains(roles, r) {
			t.Errorf("participants %q lack %s", roles, r)
		}
	}
	t.Logf("carehome got %v video packets, consultant %v, guest %v", home.Counts("video"), doctor.Counts("video"), guest.Counts("video"))

	// Recording the decision ends the call and frees the room.
	if r := okafor.do("POST", "/api/v1/escalations/"+id+"/decision", map[string]string{"outcome": "stay", "counterfactual": "ed", "rationale": "r", "plan": "p"}); r.status != 201 {
		t.Fatalf("decide: %d %s", r.status, r.body)
	}
	waitFor(t, 10*time.Second, "room closed", func() bool { return s.app.sfu.Rooms() == 0 && home.GotBye() && doctor.GotBye() })
	var ended map[string]any
	var types []string
	waitFor(t, 10*time.Second, "call.ended in the resident stream", func() bool {
		types = nil
		for _, e := range nurse.do("GET", "/api/v1/residents/rc-101/events", nil).list(t) {
			types = append(types, str(e["type"]))
			if e["type"] == "call.ended" {
				ended = e["data"].(map[string]any)
			}
		}
		return ended != nil
	})
	if count(types, "call.started") != 1 || count(types, "call.participant_joined") != 3 || count(types, "call.participant_left") != 3 {
		t.Errorf("call events: %v", types)
	}
	for _, e := range nurse.do("GET", "/api/v1/residents/rc-101/events", nil).list(t) {
		if strings.HasPrefix(str(e["type"]), "call.participant") {
			b, _ := json.Marshal(e["data"])
			if strings.Contains(string(b), "Okafor") || strings.Contains(string(b), "Okoro") {
				t.Errorf("a name in the log: %s", b)
			}
		}
	}
	quality := ended["quality"].([]any)
	if len(quality) != 3 || ended["duration_seconds"].(float64) <= 0 {
		t.Fatalf("call.ended: %v", ended)
	}
	for _, q := range quality {
		m := q.(map[string]any)
		if m["up_packets"].(float64) < 50 || m["up_bitrate_kbps"].(float64) <= 0 {
			t.Errorf("quality of %v: %v", m["role"], m)
		}
	}
	// No goroutine left behind once the peers are gone.
	home.Close()
	doctor.Close()
	guest.Close()
	waitFor(t, 15*time.Second, "goroutines back to the baseline", func() bool { return runtime.NumGoroutine() <= baseline+5 })
}

func TestCallRefusesWhoMayNotJoin(t *testing.T) {
	s := startServer(t, loopbackVideo)
	nurse, okafor := s.signedIn("night.rose"), s.signedIn("dr.okafor")
	id := str(nurse.do("POST", "/api/v1/escalations", raiseBody("rc-102")).json(t)["id"])
	if _, status, err := nurse.dialSignal(id); err == nil || status != 409 {
		t.Errorf("before accept: %d %v", status, err)
	}
	okafor.do("POST", "/api/v1/escalations/"+id+"/accept", nil)
	for _, c := range []struct {
		name   string
		c      *client
		header []string
		status int
	}{
		{"no session", newClient(t, s.base), nil, 401},
		{"another home's staff", s.signedIn("night.elm"), nil, 404},
		{"a consultant who did not accept", s.signedIn("dr.patel"), nil, 403},
		{"an auditor", s.signedIn("auditor"), nil, 403},
		{"a foreign origin", nurse, []string{"Origin", "http://evil.example"}, 403},
	} {
		if _, status, err := c.c.dialSignal(id, c.header...); err == nil || status != c.status {
			t.Errorf("%s: %d %v, want %d", c.name, status, err, c.status)
		}
	}
	if _, status, _ := okafor.dialSignal("no-such-escalation"); status != 404 {
		t.Errorf("unknown escalation: %d", status)
	}
	// An invite for a call that has ended is refused, and so is its guest.
	inv := nurse.do("POST", "/api/v1/escalations/"+id+"/invites", map[string]string{"role": "relative"})
	if inv.status != 201 {
		t.Fatalf("invite: %d %s", inv.status, inv.body)
	}
	if r := nurse.do("POST", "/api/v1/escalations/"+id+"/invites", map[string]string{"role": "pharmacist"}); r.status != 400 || r.apiErr(t)["field"] != "role" {
		t.Errorf("bad invite role: %d %s", r.status, r.body)
	}
	if r := s.signedIn("dr.patel").do("POST", "/api/v1/escalations/"+id+"/invites", map[string]string{"role": "gp"}); r.status != 403 {
		t.Errorf("invite by a consultant who did not accept: %d", r.status)
	}
	okafor.do("POST", "/api/v1/escalations/"+id+"/decision", map[string]string{"outcome": "admit", "counterfactual": "ed", "rationale": "r"})
	if r := newClient(t, s.base).do("POST", str(inv.json(t)["url"]), nil); r.status != 410 || r.apiErr(t)["code"] != "invite_expired" {
		t.Errorf("invite after the call ended: %d %s", r.status, r.body)
	}
	if _, status, _ := nurse.dialSignal(id); status != 409 {
		t.Errorf("after the decision: %d", status)
	}
}

func TestMalformedSignallingLeavesTheCallUnharmed(t *testing.T) {
	s := startServer(t, loopbackVideo)
	id, nurse, okafor := acceptedEscalation(t, s)
	home := joinCall(t, nurse, id)
	doctor := joinCall(t, okafor, id)
	waitFor(t, 15*time.Second, "media both ways", func() bool { return home.ReceivingFrom(1, 20) && doctor.ReceivingFrom(1, 20) })

	// A third socket for the home sends garbage of every kind.
	bad, _, err := nurse.dialSignal(id)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	for _, frame := range []string{
		`not json`,
		`{"type":"answer","sdp":"v=0 this is not SDP"}`,
		`{"type":"candidate","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 9 typ host","sdpMid":"no-such-mid"}}`,
		`{"type":"candidate"}`,
		`{"type":"teleport"}`,
	} {
		if err := bad.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
			t.Fatal(err)
		}
	}
	codes := map[string]bool{}
	deadline := time.Now().Add(5 * time.Second)
	for len(codes) < 4 && time.Now().Before(deadline) {
		_ = bad.SetReadDeadline(deadline)
		_, data, err := bad.ReadMessage()
		if err != nil {
			break
		}
		var m struct{ Type, Code string }
		_ = json.Unmarshal(data, &m)
		if m.Type == "error" {
			codes[m.Code] = true
		}
	}
	for _, want := range []string{"invalid_json", "bad_candidate", "unknown_type"} {
		if !codes[want] {
			t.Errorf("no %s error (got %v)", want, codes)
		}
	}
	if !codes["bad_sdp"] && !codes["unexpected_answer"] {
		t.Errorf("a bad answer was not reported (got %v)", codes)
	}
	// A flood closes that socket with a reason.
	for i := 0; i < 400; i++ {
		if bad.WriteMessage(websocket.TextMessage, []byte(`{"type":"candidate"}`)) != nil {
			break
		}
	}
	closedWith := 0
	for time.Now().Before(deadline.Add(5 * time.Second)) {
		_ = bad.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, _, err := bad.ReadMessage(); err != nil {
			if ce, ok := err.(*websocket.CloseError); ok {
				closedWith = ce.Code
			}
			break
		}
	}
	if closedWith != websocket.ClosePolicyViolation {
		t.Errorf("flood closed with %d, want %d", closedWith, websocket.ClosePolicyViolation)
	}
	// The others keep their media.
	before := doctor.Counts("video")
	time.Sleep(time.Second)
	after := doctor.Counts("video")
	grew := false
	for k, v := range after {
		if v > before[k]+10 {
			grew = true
		}
	}
	if !grew {
		t.Errorf("the consultant's video stopped: %v then %v", before, after)
	}
	if len(home.Errors()) != 0 || len(doctor.Errors()) != 0 {
		t.Errorf("good peers got errors: %v %v", home.Errors(), doctor.Errors())
	}
}

// A participant whose connection drops can rejoin while the other keeps media.
func TestRejoinAfterADroppedConnection(t *testing.T) {
	s := startServer(t, loopbackVideo)
	id, nurse, okafor := acceptedEscalation(t, s)
	home := joinCall(t, nurse, id)
	doctor := joinCall(t, okafor, id)
	waitFor(t, 15*time.Second, "media both ways", func() bool { return home.ReceivingFrom(1, 20) && doctor.ReceivingFrom(1, 20) })
	// Drop the home's connection without a bye.
	home.Drop()
	again := joinCall(t, nurse, id)
	waitFor(t, 15*time.Second, "the rejoined home receives the consultant", func() bool { return again.ReceivingFrom(1, 20) })
	waitFor(t, 15*time.Second, "the consultant receives the rejoined home", func() bool { return doctor.ReceivingFrom(2, 20) })
	if s.app.sfu.Rooms() != 1 {
		t.Errorf("rooms: %d", s.app.sfu.Rooms())
	}
	evs := nurse.do("GET", "/api/v1/residents/rc-101/events", nil).list(t)
	var types []string
	for _, e := range evs {
		types = append(types, str(e["type"]))
	}
	if count(types, "call.started") != 1 || count(types, "call.ended") != 0 {
		t.Errorf("one call continues: %v", types)
	}
	_ = escalation.TypeCallEnded
}
