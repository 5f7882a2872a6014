package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// pagerSocket is a consultant's pager tab.
type pagerSocket struct {
	t  testing.TB
	ws *websocket.Conn
}

// dialPager opens the pager websocket with c's session cookie; it returns
// the HTTP status when the upgrade is refused.
func (c *client) dialPager(device string, header ...string) (*pagerSocket, int, error) {
	h := c.signalHeader(header...)
	wsURL := "ws" + strings.TrimPrefix(c.base, "http") + "/api/v1/pager?device=" + device
	ws, resp, err := websocket.DefaultDialer.Dial(wsURL, h)
	c.checkUpgrade(wsURL, h, resp)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		return nil, status, err
	}
	p := &pagerSocket{t: c.t, ws: ws}
	c.t.Cleanup(func() { ws.Close() })
	return p, http.StatusSwitchingProtocols, nil
}

func (c *client) pager(device string) *pagerSocket {
	c.t.Helper()
	p, status, err := c.dialPager(device)
	if err != nil {
		c.t.Fatalf("pager dial: %d %v", status, err)
	}
	return p
}

// next reads the next message within d.
func (p *pagerSocket) next(d time.Duration) (map[string]any, error) {
	_ = p.ws.SetReadDeadline(time.Now().Add(d))
	_, data, err := p.ws.ReadMessage()
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	return m, nil
}

// expect reads until a message of type typ arrives within d.
func (p *pagerSocket) expect(typ string, d time.Duration) map[string]any {
	p.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		m, err := p.next(time.Until(deadline))
		if err != nil {
			p.t.Fatalf("waiting for %s: %v", typ, err)
		}
		if m["type"] == typ {
			return m
		}
	}
	p.t.Fatalf("no %s within %v", typ, d)
	return nil
}

// quiet asserts that no message of type typ arrives within d.
func (p *pagerSocket) quiet(typ string, d time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		m, err := p.next(time.Until(deadline))
		if err != nil {
			var ne interface{ Timeout() bool }
			if errors.As(err, &ne) && ne.Timeout() {
				return
			}
			p.t.Fatalf("while staying quiet: %v", err)
		}
		if m["type"] == typ {
			p.t.Fatalf("unexpected %s: %v", typ, m)
		}
	}
}

func (p *pagerSocket) send(v any) {
	p.t.Helper()
	if err := p.ws.WriteJSON(v); err != nil {
		p.t.Fatalf("send: %v", err)
	}
}

func (p *pagerSocket) ack(page map[string]any, kinds ...string) {
	for _, k := range kinds {
		p.send(map[string]string{"type": k, "page_id": str(page["page_id"])})
	}
}

// closeCode reads until the server closes and returns the close code and text.
func (p *pagerSocket) closeCode(d time.Duration) (int, string) {
	p.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		_, err := p.next(time.Until(deadline))
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code, ce.Text
		}
		if err != nil {
			p.t.Fatalf("connection ended without a close frame: %v", err)
		}
	}
	p.t.Fatalf("not closed within %v", d)
	return 0, ""
}

func pageEscalationID(m map[string]any) string {
	return str(m["escalation"].(map[string]any)["id"])
}

// waitFor polls f until it returns true or d passes.
func waitFor(t *testing.T, d time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if f() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v", what, d)
}

// timelineTypes returns the types in an escalation's timeline.
func timelineTypes(esc map[string]any) []string {
	var out []string
	for _, e := range esc["timeline"].([]any) {
		out = append(out, str(e.(map[string]any)["type"]))
	}
	return out
}

func count(xs []string, x string) int {
	n := 0
	for _, v := range xs {
		if v == x {
			n++
		}
	}
	return n
}
