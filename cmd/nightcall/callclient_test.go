package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/nightcall-health/nightcall/video/videoclient"
)

// signalHeader carries c's cookies and its own Origin.
func (c *client) signalHeader(header ...string) http.Header {
	u, _ := url.Parse(c.base)
	h := http.Header{}
	for _, ck := range c.http.Jar.Cookies(u) {
		h.Add("Cookie", ck.Name+"="+ck.Value)
	}
	h.Set("Origin", c.base)
	for i := 0; i+1 < len(header); i += 2 {
		h.Set(header[i], header[i+1])
	}
	return h
}

func (c *client) signalURL(id string) string {
	return "ws" + strings.TrimPrefix(c.base, "http") + "/api/v1/calls/" + id + "/signal"
}

// dialSignal opens the call's signalling socket with c's cookies.
func (c *client) dialSignal(id string, header ...string) (*websocket.Conn, int, error) {
	h := c.signalHeader(header...)
	ws, resp, err := websocket.DefaultDialer.Dial(c.signalURL(id), h)
	c.checkUpgrade(c.signalURL(id), h, resp)
	status := 0
	if resp != nil {
		status = resp.StatusCode
	}
	return ws, status, err
}

// joinCall joins as c with a real Pion peer on loopback.
func joinCall(t *testing.T, c *client, id string) *videoclient.Peer {
	t.Helper()
	p, status, err := videoclient.Dial(videoclient.Config{URL: c.signalURL(id), Header: c.signalHeader(), Errorf: t.Errorf})
	if err != nil {
		t.Fatalf("join call: %d %v", status, err)
	}
	c.checkUpgrade(c.signalURL(id), c.signalHeader(), &http.Response{StatusCode: status, Header: http.Header{}})
	t.Cleanup(p.Close)
	return p
}
