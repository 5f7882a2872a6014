package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/nightcall-health/nightcall/video"
)

// TestSlowSignallingPeerNeverStallsTheRoom: a participant whose socket is
// not read fills its queue and is closed; Send never blocks the caller, so
// the room's other participants are not held up. What was queued before a
// Close is written before the close frame.
func TestSlowSignallingPeerNeverStallsTheRoom(t *testing.T) {
	var mu sync.Mutex
	var conns []*wsConn
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		mu.Lock()
		conns = append(conns, newWSConn(ws))
		mu.Unlock()
	}))
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	slow, _, err := websocket.DefaultDialer.Dial(url, nil) // never read
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	deadline := time.Now().Add(5 * time.Second)
	waitConns := func(n int) {
		for {
			mu.Lock()
			got := len(conns)
			mu.Unlock()
			if got == n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("connections not accepted")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitConns(1)
	polite, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer polite.Close()
	waitConns(2)
	mu.Lock()
	slowConn, politeConn := conns[0], conns[1]
	mu.Unlock()

	big := video.Message{Type: "offer", SDP: strings.Repeat("a=x\r\n", 12000)} // ~60 KB
	sent := make(chan error, 1)
	go func() {
		var last error
		for i := 0; i < 500 && last == nil; i++ {
			last = slowConn.Send(big)
		}
		sent <- last
	}()
	select {
	case err := <-sent:
		if err == nil {
			t.Fatal("500 large messages to a peer that never reads were all queued: the queue is unbounded")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Send blocked on a peer that never reads")
	}
	select {
	case <-slowConn.done:
	default:
		t.Error("the slow peer was not closed")
	}
	// The polite peer still gets its messages, and a close flushes first.
	for i := 0; i < 3; i++ {
		if err := politeConn.Send(video.Message{Type: "participants"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := politeConn.Send(video.Message{Type: "bye"}); err != nil {
		t.Fatal(err)
	}
	politeConn.Close("call ended")
	_ = polite.SetReadDeadline(time.Now().Add(5 * time.Second))
	var got []string
	for {
		_, data, err := polite.ReadMessage()
		if err != nil {
			break
		}
		got = append(got, string(data))
	}
	if len(got) != 4 || !strings.Contains(got[3], `"bye"`) {
		t.Errorf("the polite peer got %d messages before the close (%v), want 3 participants then bye", len(got), got)
	}
}
