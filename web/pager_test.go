package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/escalation/paging"
	"github.com/nightcall-health/nightcall/events"
)

// pagerTestServer serves real pager sockets on hub over loopback, each
// for the user named by user(r), handing each server end to opened when
// opened is not nil.
func pagerTestServer(t *testing.T, hub *PagerHub, user func(*http.Request) escalation.Username, opened chan<- *pagerConn) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := pagerUpgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		c := hub.open(ws, user(r), "d1", hub.log)
		if opened != nil {
			opened <- c
		}
		go func() {
			defer hub.close(c)
			for {
				if _, _, err := ws.ReadMessage(); err != nil {
					c.closeWith(websocket.CloseNormalClosure, "")
					return
				}
			}
		}()
	}))
	t.Cleanup(srv.Close)
	return srv
}

// pagerHubSocket starts a hub over read and one real pager socket of
// username to it (over loopback), and returns the hub and the client end.
func pagerHubSocket(t *testing.T, read *escalation.Projection, username escalation.Username, opts ...func(*PagerHub)) (*PagerHub, *websocket.Conn) {
	t.Helper()
	hub := NewPagerHub(read, nil)
	for _, o := range opts {
		o(hub)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go hub.Run(ctx)
	srv := pagerTestServer(t, hub, func(*http.Request) escalation.Username { return username }, nil)
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	deadline := time.Now().Add(10 * time.Second)
	for hub.Connections() < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the socket was not added to the hub")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return hub, ws
}

// applyRaised applies a resident's admission and a raise to the read model.
func applyRaised(t *testing.T, read *escalation.Projection, pos int64, rid escalation.ResidentID, eid escalation.EscalationID, name string) {
	t.Helper()
	for i, e := range []escalation.Event{
		&escalation.ResidentAdmitted{ResidentID: rid, CareHomeID: "home-1", Name: name, SpO2Scale: 1},
		&escalation.EscalationRaised{EscalationID: eid, CareHomeID: "home-1", SoftSigns: []escalation.SoftSign{"not_themselves"}},
	} {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		env := events.Envelope{ID: string(eid) + e.EventType(), Stream: escalation.ResidentStream(rid), Version: int64(i + 1),
			Position: pos + int64(i), Type: e.EventType(), RecordedAt: time.Now(), Data: b}
		if err := read.Apply(env); err != nil {
			t.Fatal(err)
		}
	}
}

type hubFrame struct {
	Type         string `json:"type"`
	PageID       string `json:"page_id"`
	EscalationID string `json:"escalation_id"`
	Escalation   struct {
		ID       string `json:"id"`
		Resident idName `json:"resident"`
	} `json:"escalation"`
}

func readFrames(t *testing.T, ws *websocket.Conn, n int) []hubFrame {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	var out []hubFrame
	for len(out) < n {
		_, data, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("after %d frames %+v: %v", len(out), out, err)
		}
		var f hubFrame
		if err := json.Unmarshal(data, &f); err != nil {
			t.Fatal(err)
		}
		out = append(out, f)
	}
	return out
}

// A page waiting for the read model to know its escalation (A: its raise is
// not in the read model) holds up neither another escalation's page (B),
// which goes out first and with its details, nor loses its own order: A's
// cancellation, pushed after A's page, still follows it.
func TestPagerHubPageDoesNotWaitForAnotherEscalation(t *testing.T) {
	read := escalation.NewProjection(time.UTC)
	applyRaised(t, read, 1, "res-b", "esc-b", "Betty Bench")
	hub, ws := pagerHubSocket(t, read, "dr.test")
	hub.readWait = 3 * time.Second
	dr := []escalation.Username{"dr.test"}
	hub.Page(paging.Notice{PageID: "page-a", EscalationID: "esc-a", ResidentID: "res-a", CareHomeID: "home-1", Consultants: dr})
	hub.Cancel("esc-a", dr, "", "withdrawn")
	hub.Page(paging.Notice{PageID: "page-b", EscalationID: "esc-b", ResidentID: "res-b", CareHomeID: "home-1", Consultants: dr})

	got := readFrames(t, ws, 3)
	if got[0].Type != "page" || got[0].PageID != "page-b" || got[0].Escalation.Resident.Name != "Betty Bench" {
		t.Fatalf("first frame %+v; want escalation B's page, with its details, before A's", got[0])
	}
	if got[1].Type != "page" || got[1].PageID != "page-a" || got[1].Escalation.Resident.Name != "" {
		t.Fatalf("second frame %+v; want A's page (without details: the read model never knew A)", got[1])
	}
	if got[2].Type != "page_cancelled" || got[2].EscalationID != "esc-a" {
		t.Fatalf("third frame %+v; want A's cancellation after A's page", got[2])
	}
}

// A page whose escalation reaches the read model while it waits goes out
// with its details, and pushes of one escalation keep their order.
func TestPagerHubPageWaitsForItsOwnEscalation(t *testing.T) {
	read := escalation.NewProjection(time.UTC)
	hub, ws := pagerHubSocket(t, read, "dr.test")
	hub.readWait = time.Minute
	dr := []escalation.Username{"dr.test"}
	hub.Page(paging.Notice{PageID: "page-a", EscalationID: "esc-a", ResidentID: "res-a", CareHomeID: "home-1", Consultants: dr})
	hub.Cancel("esc-a", dr, "dr.test", "accepted")
	applyRaised(t, read, 1, "res-a", "esc-a", "Alice Bench")

	got := readFrames(t, ws, 2)
	if got[0].Type != "page" || got[0].PageID != "page-a" || got[0].Escalation.Resident.Name != "Alice Bench" {
		t.Fatalf("first frame %+v; want A's page with its details", got[0])
	}
	if got[1].Type != "page_cancelled" || got[1].EscalationID != "esc-a" {
		t.Fatalf("second frame %+v; want A's cancellation", got[1])
	}
}

// An idle socket is pinged again and again (by its timer, with no writer
// goroutine running), and the frames sent between pings still arrive.
func TestPagerSocketIsPingedWhileIdle(t *testing.T) {
	read := escalation.NewProjection(time.UTC)
	applyRaised(t, read, 1, "res-b", "esc-b", "Betty Bench")
	hub, ws := pagerHubSocket(t, read, "dr.test", func(h *PagerHub) { h.pingEvery = 20 * time.Millisecond })
	pings := make(chan struct{}, 100)
	ws.SetPingHandler(func(string) error {
		select {
		case pings <- struct{}{}:
		default:
		}
		return ws.WriteControl(websocket.PongMessage, nil, time.Now().Add(time.Second))
	})
	frames := make(chan hubFrame, 10)
	go func() {
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				close(frames)
				return
			}
			var f hubFrame
			_ = json.Unmarshal(data, &f)
			frames <- f
		}
	}()
	waitPings := func(n int) {
		t.Helper()
		timeout := time.After(30 * time.Second)
		for i := 0; i < n; i++ {
			select {
			case <-pings:
			case <-timeout:
				t.Fatalf("%d of %d pings", i, n)
			}
		}
	}
	waitPings(3)
	hub.Page(paging.Notice{PageID: "page-b", EscalationID: "esc-b", ResidentID: "res-b", CareHomeID: "home-1", Consultants: []escalation.Username{"dr.test"}})
	select {
	case f := <-frames:
		if f.PageID != "page-b" {
			t.Fatalf("frame %+v, want the page", f)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no page")
	}
	waitPings(3)
}

// A client that stops reading is disconnected once its send queue is full
// (its writer is blocked on the full socket), and the sender is not held by
// it: the sends end although the client never reads.
func TestPagerSlowClientIsDisconnected(t *testing.T) {
	hub, ws := pagerHubSocket(t, escalation.NewProjection(time.UTC), "dr.slow")
	_ = ws // never read
	conns := hub.connsOf("dr.slow")
	if len(conns) != 1 {
		t.Fatalf("%d sockets", len(conns))
	}
	c := conns[0]
	frame := []byte(`{"type":"page","pad":"` + strings.Repeat("x", 64<<10) + `"}`)
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for i := 0; i < 4096; i++ {
			select {
			case <-c.done:
				return
			default:
				c.send(frame)
			}
		}
	}()
	select {
	case <-c.done:
	case <-time.After(60 * time.Second):
		t.Fatal("the slow client was not disconnected")
	}
	select {
	case <-sent:
	case <-time.After(60 * time.Second):
		t.Fatal("a send blocked")
	}
}

// Pending pages sent again on connect are not held to the send queue's
// bound: a consultant with more pending pages than the bound gets every one
// of them, in order, and stays connected (before, the resend overflowed the
// queue, the socket was closed as too slow, and each reconnect did the same).
func TestPagerResendOfManyPendingPagesIsNotTooSlow(t *testing.T) {
	hub, ws := pagerHubSocket(t, escalation.NewProjection(time.UTC), "dr.busy")
	conns := hub.connsOf("dr.busy")
	if len(conns) != 1 {
		t.Fatalf("%d sockets", len(conns))
	}
	c := conns[0]
	const n = 3 * pagerSendQueue
	// Queued under the connection's lock so the writer cannot drain any
	// of them before all are queued: the bound would be reached at once.
	c.mu.Lock()
	writing := c.writing
	c.writing = true // hold the writer back until every frame is queued
	c.mu.Unlock()
	if writing {
		t.Fatal("a writer was already running on an idle socket")
	}
	for i := 0; i < n; i++ {
		c.resend([]byte(`{"type":"page","page_id":"p` + strconv.Itoa(i) + `"}`))
	}
	select {
	case <-c.done:
		t.Fatal("the socket was closed while its pending pages were resent")
	default:
	}
	go c.write()
	got := readFrames(t, ws, n)
	for i, f := range got {
		if f.PageID != "p"+strconv.Itoa(i) {
			t.Fatalf("frame %d is %q", i, f.PageID)
		}
	}
	// The bound still holds for live traffic. The writer may still be
	// between its last write and finding the queue empty (it then clears
	// writing): wait for it to end before holding the writers back, or the
	// sends below would be handed to the hub's writers and drained.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		idle := !c.writing && !c.draining
		if idle {
			c.writing = true
		}
		c.mu.Unlock()
		if idle {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the writer did not end after the queue was drained")
		}
		time.Sleep(time.Millisecond)
	}
	for i := 0; i <= pagerSendQueue; i++ {
		c.send([]byte(`{"type":"page"}`))
	}
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		t.Fatal("live sends beyond the bound did not disconnect the client")
	}
}
