package web

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/escalation/paging"
)

// pagerHubSockets starts a hub over read and, over loopback, one real pager
// socket for each of users (a user named twice gets two), in that order.
// It returns the hub, the client ends and the server ends.
func pagerHubSockets(t *testing.T, read *escalation.Projection, users []escalation.Username, opts ...func(*PagerHub)) (*PagerHub, []*websocket.Conn, []*pagerConn) {
	t.Helper()
	hub := NewPagerHub(read, nil)
	for _, o := range opts {
		o(hub)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go hub.Run(ctx)
	opened := make(chan *pagerConn, 1)
	srv := pagerTestServer(t, hub, func(r *http.Request) escalation.Username { return escalation.Username(r.URL.Query().Get("user")) }, opened)
	var clients []*websocket.Conn
	var servers []*pagerConn
	for _, u := range users {
		ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/?user="+string(u), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ws.Close() })
		select {
		case c := <-opened:
			servers = append(servers, c)
		case <-time.After(10 * time.Second):
			t.Fatal("the socket was not added to the hub")
		}
		clients = append(clients, ws)
	}
	return hub, clients, servers
}

// readRaw reads n frames from ws as they came.
func readRaw(t *testing.T, ws *websocket.Conn, n int) []string {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	var out []string
	for len(out) < n {
		_, data, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("after %d frames %q: %v", len(out), out, err)
		}
		out = append(out, string(data))
	}
	return out
}

// One page reaches every socket of every consultant paged, the same bytes
// on each (one frame encoded once), and a socket of a consultant not paged
// gets nothing; the cancellation after an accept tells the one who accepted
// "accepted" and every other "accepted_by_other", after the page.
func TestPagerFanOutSendsOneFrameToEverySocketOfThePaged(t *testing.T) {
	read := escalation.NewProjection(time.UTC)
	applyRaised(t, read, 1, "res-a", "esc-a", "Alice Bench")
	users := []escalation.Username{"dr.a", "dr.a", "dr.b", "dr.c", "dr.b"}
	hub, ws, _ := pagerHubSockets(t, read, append(users, "dr.notpaged"))
	paged := []escalation.Username{"dr.a", "dr.b", "dr.c"}
	hub.Page(paging.Notice{PageID: "page-a", EscalationID: "esc-a", ResidentID: "res-a", CareHomeID: "home-1", Consultants: paged})
	hub.Cancel("esc-a", paged, "dr.b", "accepted")

	var page string
	for i, u := range users {
		got := readRaw(t, ws[i], 2)
		if page == "" {
			page = got[0]
		}
		var f hubFrame
		if err := json.Unmarshal([]byte(got[0]), &f); err != nil || f.Type != "page" || f.PageID != "page-a" || f.Escalation.Resident.Name != "Alice Bench" {
			t.Fatalf("socket %d (%s): first frame %s (%v); want the page with its details", i, u, got[0], err)
		}
		if got[0] != page {
			t.Errorf("socket %d (%s) got other bytes than the first socket:\n%s\n%s", i, u, got[0], page)
		}
		var c map[string]string
		if err := json.Unmarshal([]byte(got[1]), &c); err != nil {
			t.Fatal(err)
		}
		want := "accepted_by_other"
		if u == "dr.b" {
			want = "accepted"
		}
		if c["type"] != "page_cancelled" || c["escalation_id"] != "esc-a" || c["reason"] != want || len(c) != 3 {
			t.Errorf("socket %d (%s): cancellation %s; want reason %s", i, u, got[1], want)
		}
	}
	// The socket of the consultant not paged got nothing: a page to it
	// alone is its first frame.
	hub.Page(paging.Notice{PageID: "page-own", EscalationID: "esc-a", ResidentID: "res-a", CareHomeID: "home-1",
		Consultants: []escalation.Username{"dr.notpaged"}})
	var f hubFrame
	if err := json.Unmarshal([]byte(readRaw(t, ws[len(users)], 1)[0]), &f); err != nil || f.PageID != "page-own" {
		t.Fatalf("the unpaged consultant's first frame is %+v (%v); want only its own page", f, err)
	}
}

// A writer blocked on one client that has stopped reading (its socket
// buffer full, so the write waits for its deadline) does not hold up the
// other sockets: with a single writer, another writer takes over, and a
// page reaches the other consultant while the stuck write still waits.
func TestPagerWriterStuckOnOneClientDoesNotHoldUpOthers(t *testing.T) {
	read := escalation.NewProjection(time.UTC)
	applyRaised(t, read, 1, "res-a", "esc-a", "Alice Bench")
	hub, ws, conns := pagerHubSockets(t, read, []escalation.Username{"dr.stuck", "dr.fine"}, func(h *PagerHub) {
		h.writers = newPagerWriters(1, pagerWritersMax, pagerWriterStuck)
	})
	stuck := conns[0] // its client, ws[0], never reads
	// Frames until the writer is blocked on the stuck socket: far more than
	// loopback buffers hold, fewer than the queue's bound.
	frame := []byte(`{"type":"page","pad":"` + strings.Repeat("x", 1<<20) + `"}`)
	for range pagerSendQueue / 2 {
		stuck.send(frame)
	}
	// Blocked: a writer has been in one socket's write for half a second.
	blocked := func() bool {
		hub.writers.mu.Lock()
		defer hub.writers.mu.Unlock()
		for _, w := range hub.writers.running {
			if s := w.since.Load(); s != 0 && time.Duration(monoNow()-s) > 500*time.Millisecond {
				return true
			}
		}
		return false
	}
	deadline := time.Now().Add(30 * time.Second)
	for !blocked() {
		if time.Now().After(deadline) {
			t.Fatal("the writer never blocked on the client that does not read")
		}
		time.Sleep(5 * time.Millisecond)
	}
	hub.Page(paging.Notice{PageID: "page-a", EscalationID: "esc-a", ResidentID: "res-a", CareHomeID: "home-1",
		Consultants: []escalation.Username{"dr.fine"}})
	var f hubFrame
	if err := json.Unmarshal([]byte(readRaw(t, ws[1], 1)[0]), &f); err != nil || f.PageID != "page-a" {
		t.Fatalf("frame %+v (%v); want the page", f, err)
	}
	select {
	case <-stuck.done:
		t.Fatal("the page reached the other consultant only once the stuck socket was closed")
	default:
	}
	if !blocked() {
		t.Fatal("the page reached the other consultant only once the stuck write ended")
	}
	// The stuck client is still cut off by the queue's bound.
	for range pagerSendQueue + 1 {
		stuck.send([]byte(`{"type":"page"}`))
	}
	select {
	case <-stuck.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the stuck client was not disconnected")
	}
}

// Pages pushed from many goroutines at once, to many sockets, each reach
// every socket exactly once, and each escalation's cancellation follows its
// page (run with -race: the writers share the sockets' queues).
func TestPagerConcurrentFanOutsDeliverEveryFrameInEscalationOrder(t *testing.T) {
	read := escalation.NewProjection(time.UTC)
	var users []escalation.Username
	for range 24 {
		users = append(users, "dr.a", "dr.b")
	}
	hub, ws, _ := pagerHubSockets(t, read, users, func(h *PagerHub) { h.readWait = time.Millisecond })
	const escalations = 20
	var wg sync.WaitGroup
	for i := range escalations {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := escalation.EscalationID("esc-" + string(rune('a'+i)))
			both := []escalation.Username{"dr.a", "dr.b"}
			hub.Page(paging.Notice{PageID: "page-" + string(id), EscalationID: id, ResidentID: "res-none", CareHomeID: "home-1", Consultants: both})
			hub.Cancel(id, both, "", "withdrawn")
		}()
	}
	wg.Wait()
	for i := range ws {
		seen := map[string]string{}
		for _, raw := range readRaw(t, ws[i], 2*escalations) {
			var f hubFrame
			if err := json.Unmarshal([]byte(raw), &f); err != nil {
				t.Fatal(err)
			}
			switch f.Type {
			case "page":
				if seen[f.Escalation.ID] != "" {
					t.Fatalf("socket %d: page of %s after %s", i, f.Escalation.ID, seen[f.Escalation.ID])
				}
				seen[f.Escalation.ID] = "page"
			case "page_cancelled":
				if seen[f.EscalationID] != "page" {
					t.Fatalf("socket %d: cancellation of %s after %q", i, f.EscalationID, seen[f.EscalationID])
				}
				seen[f.EscalationID] = "cancelled"
			}
		}
		if len(seen) != escalations {
			t.Fatalf("socket %d saw %d escalations", i, len(seen))
		}
	}
}
