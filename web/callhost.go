package web

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// Claimer chooses which instance hosts a call (distributed mode): the first
// instance to get a participant claims the room; the others send their
// participants' signalling there, so every participant's media meets in one SFU.
type Claimer interface {
	Claim(ctx context.Context, name, owner string, ttl time.Duration) (string, error)
	Takeover(ctx context.Context, name, dead, owner string, ttl time.Duration) (string, error)
	Release(ctx context.Context, name, owner string) error
}

// callLease bounds how long a room stays claimed by an instance that vanished.
const callLease = 6 * time.Hour

// callHost returns the base URL of the instance hosting the call, or "" when
// this instance hosts it.
func (s *Server) callHost(ctx context.Context, id string) (string, error) {
	if s.cfg.Hosts == nil || s.cfg.AdvertiseURL == "" {
		return "", nil
	}
	host, err := s.cfg.Hosts.Claim(ctx, "call:"+id, s.cfg.AdvertiseURL, callLease)
	if err != nil || host == s.cfg.AdvertiseURL {
		return "", err
	}
	return host, nil
}

// proxySignal relays a participant's signalling to the hosting instance;
// the media then flows straight between the participant and that instance's
// SFU, whose candidates the signalling carries. It reports false when the
// host cannot be reached, so the caller can take the room over.
func (s *Server) proxySignal(w http.ResponseWriter, r *http.Request, host string) bool {
	u, err := url.Parse(host)
	if err != nil {
		return false
	}
	target := "ws" + strings.TrimPrefix(u.Scheme, "http") + "://" + u.Host + r.URL.Path
	h := http.Header{"Origin": {u.Scheme + "://" + u.Host}}
	for _, c := range r.Header.Values("Cookie") {
		h.Add("Cookie", c)
	}
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	upstream, resp, err := d.DialContext(r.Context(), target, h)
	if err != nil {
		var ne net.Error
		if resp == nil && (errors.As(err, &ne) || strings.Contains(err.Error(), "connection refused")) {
			return false
		}
		status := http.StatusBadGateway
		if resp != nil {
			status = resp.StatusCode
		}
		s.writeError(w, r, newErr(status, "call_host_refused", "The instance hosting this call refused the connection."))
		return true
	}
	down, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		_ = upstream.Close()
		return true
	}
	// Limits and deadlines on both legs. Liveness passes through: the
	// host's pings go on to the browser and the browser's pongs come back,
	// so the host sees whether the browser is alive, not whether this relay
	// is (gorilla would otherwise answer the host's pings itself).
	down.SetReadLimit(signalReadLimit)
	upstream.SetReadLimit(1 << 20) // the host's offers carry every participant's tracks
	_ = down.SetReadDeadline(time.Now().Add(signalPongWait))
	_ = upstream.SetReadDeadline(time.Now().Add(signalPongWait))
	upstream.SetPingHandler(func(data string) error {
		_ = upstream.SetReadDeadline(time.Now().Add(signalPongWait))
		return down.WriteControl(websocket.PingMessage, []byte(data), time.Now().Add(5*time.Second))
	})
	down.SetPongHandler(func(data string) error {
		_ = down.SetReadDeadline(time.Now().Add(signalPongWait))
		return upstream.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(5*time.Second))
	})
	done := make(chan struct{}, 2)
	pump := func(from, to *websocket.Conn) {
		defer func() { done <- struct{}{} }()
		for {
			t, data, err := from.ReadMessage()
			_ = from.SetReadDeadline(time.Now().Add(signalPongWait))
			if err != nil {
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					_ = to.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(ce.Code, ce.Text), time.Now().Add(time.Second))
				}
				return
			}
			_ = to.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if err := to.WriteMessage(t, data); err != nil {
				return
			}
		}
	}
	go pump(upstream, down)
	go pump(down, upstream)
	<-done
	_ = upstream.Close() // ends the other pump; the call is over either way
	_ = down.Close()
	<-done
	return true
}
