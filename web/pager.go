package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/escalation/news2"
	"github.com/nightcall-health/nightcall/escalation/paging"
)

// Pager websocket timings and limits.
const (
	pagerWriteWait  = 10 * time.Second
	pagerPongWait   = 60 * time.Second
	pagerPingEvery  = 20 * time.Second
	pagerReadLimit  = 4096
	pagerSendQueue  = 64
	pagerFrameRate  = 10 // frames per second allowed from a client
	pagerFrameBurst = 30
)

// PagerHub holds the consultants' pager sockets on this instance and pushes
// pages and cancellations to them. Pushing never blocks: each connection has
// a bounded queue, and a client too slow to drain it is disconnected (it gets
// its pages again when it reconnects).
type PagerHub struct {
	log  *slog.Logger
	read *escalation.Projection

	mu    sync.Mutex
	conns map[escalation.Username]map[*pagerConn]struct{}
	pager *paging.Pager

	queue chan func()
	// slots bounds each consultant's pager sockets and closes them when the
	// session or the account is revoked.
	slots *socketSlots
}

// NewPagerHub returns a hub; Run must be running for pushes to go out.
func NewPagerHub(read *escalation.Projection, log *slog.Logger) *PagerHub {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &PagerHub{log: log, read: read, conns: map[escalation.Username]map[*pagerConn]struct{}{}, queue: make(chan func(), 8192), slots: newSocketSlots(MaxSocketsPerUser)}
}

// SetPager connects the hub to the pager that records receipts and knows
// pending pages.
func (h *PagerHub) SetPager(p *paging.Pager) {
	h.mu.Lock()
	h.pager = p
	h.mu.Unlock()
}

func (h *PagerHub) getPager() *paging.Pager {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.pager
}

// Run delivers queued pushes in order until ctx is done, then closes every socket.
func (h *PagerHub) Run(ctx context.Context) {
	defer h.closeAll()
	for {
		select {
		case <-ctx.Done():
			return
		case f := <-h.queue:
			f()
		}
	}
}

func (h *PagerHub) enqueue(f func()) {
	select {
	case h.queue <- f:
	default:
		h.log.Error("pager push queue full; devices will get their pages on reconnect")
	}
}

type pageMessage struct {
	Type       string      `json:"type"`
	PageID     string      `json:"page_id"`
	Escalation pageSummary `json:"escalation"`
}

type pageSummary struct {
	ID        escalation.EscalationID `json:"id"`
	Resident  idName                  `json:"resident"`
	CareHome  idName                  `json:"care_home"`
	NEWS2     *news2.Result           `json:"news2"`
	RaisedAt  time.Time               `json:"raised_at"`
	Advice    escalation.Advice       `json:"advice"`
	SoftSigns []escalation.SoftSign   `json:"soft_signs"`
}

type idName struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// message builds the page frame, waiting briefly for the read model to know
// the escalation (it is fed by a separate consumer).
func (h *PagerHub) message(n paging.Notice) []byte {
	sum := pageSummary{ID: n.EscalationID, Resident: idName{ID: string(n.ResidentID)}, CareHome: idName{ID: string(n.CareHomeID)}, RaisedAt: n.RaisedAt}
	timeout := time.NewTimer(2 * time.Second)
	defer timeout.Stop()
look:
	for {
		_, changed := h.read.Changed() // taken before the look, so no apply is missed
		if r := h.read.Resident(n.ResidentID); r != nil {
			if e := r.Escalation(n.EscalationID); e != nil {
				sum.Resident.Name = r.Name
				sum.NEWS2, sum.Advice, sum.SoftSigns = e.NEWS2, e.Advice, e.SoftSigns
				break
			}
		}
		select {
		case <-changed: // the read model applied an event: look again
		case <-timeout.C:
			break look // the page goes without the details
		}
	}
	sum.CareHome.Name = h.read.Home(n.CareHomeID).Name
	b, _ := json.Marshal(pageMessage{Type: "page", PageID: n.PageID, Escalation: sum})
	return b
}

// Page implements paging.Notifier.
func (h *PagerHub) Page(n paging.Notice) {
	h.enqueue(func() {
		msg := h.message(n)
		for _, u := range n.Consultants {
			for _, c := range h.connsOf(u) {
				c.send(msg)
			}
		}
	})
}

// Cancel implements paging.Notifier.
func (h *PagerHub) Cancel(id escalation.EscalationID, users []escalation.Username, acceptedBy escalation.Username, reason string) {
	h.enqueue(func() {
		for _, u := range users {
			r := reason
			if reason == "accepted" && u != acceptedBy {
				r = "accepted_by_other"
			}
			b, _ := json.Marshal(map[string]string{"type": "page_cancelled", "escalation_id": string(id), "reason": r})
			for _, c := range h.connsOf(u) {
				c.send(b)
			}
		}
	})
}

func (h *PagerHub) connsOf(u escalation.Username) []*pagerConn {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]*pagerConn, 0, len(h.conns[u]))
	for c := range h.conns[u] {
		out = append(out, c)
	}
	return out
}

// Connections returns how many pager sockets are open on this instance.
func (h *PagerHub) Connections() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, cs := range h.conns {
		n += len(cs)
	}
	return n
}

// CloseUser closes every pager socket of u on this instance (the account
// was disabled or its password changed) and returns how many.
func (h *PagerHub) CloseUser(u escalation.Username, reason string) int {
	return h.slots.closeUser(string(u), reason)
}

// CloseSession closes every pager socket opened by the session stored
// under hash (it signed out) and returns how many.
func (h *PagerHub) CloseSession(hash, reason string) int {
	return h.slots.closeSession(hash, reason)
}

func (h *PagerHub) add(c *pagerConn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.conns[c.user] == nil {
		h.conns[c.user] = map[*pagerConn]struct{}{}
	}
	h.conns[c.user][c] = struct{}{}
}

func (h *PagerHub) remove(c *pagerConn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.conns[c.user], c)
	if len(h.conns[c.user]) == 0 {
		delete(h.conns, c.user)
	}
}

func (h *PagerHub) closeAll() {
	h.mu.Lock()
	var all []*pagerConn
	for _, cs := range h.conns {
		for c := range cs {
			all = append(all, c)
		}
	}
	h.mu.Unlock()
	for _, c := range all {
		c.closeWith(websocket.CloseGoingAway, "server shutting down")
	}
}

type pagerConn struct {
	wsEnd
	user   escalation.Username
	device string
	out    chan []byte
	log    *slog.Logger
}

// send queues b without blocking; a full queue disconnects the slow client.
func (c *pagerConn) send(b []byte) {
	select {
	case <-c.done:
	case c.out <- b:
	default:
		c.log.Warn("pager client too slow; disconnecting", "user", c.user)
		c.closeWith(websocket.ClosePolicyViolation, "too slow to read pages; reconnect")
	}
}

func (c *pagerConn) writeLoop() {
	ping := time.NewTicker(pagerPingEvery)
	defer ping.Stop()
	for {
		select {
		case <-c.done:
			return
		case b := <-c.out:
			_ = c.ws.SetWriteDeadline(time.Now().Add(pagerWriteWait))
			if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
				c.closeWith(websocket.CloseGoingAway, "write failed")
				return
			}
		case <-ping.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(pagerWriteWait)); err != nil {
				c.closeWith(websocket.CloseGoingAway, "ping failed")
				return
			}
		}
	}
}

var deviceRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// sameOrigin reports whether the Origin header is the request's own host or
// a trusted public origin. No Origin (a non-browser client) is allowed.
func (s *Server) sameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	for _, o := range s.cfg.TrustedOrigins {
		if strings.EqualFold(strings.TrimSuffix(o, "/"), origin) {
			return true
		}
	}
	return false
}

var upgrader = websocket.Upgrader{
	ReadBufferSize:  4096,
	WriteBufferSize: 4096,
	// The Origin is checked before the upgrade, with a JSON 403.
	CheckOrigin: func(*http.Request) bool { return true },
}

func (s *Server) handlePager(w http.ResponseWriter, r *http.Request, a *escalation.Actor) {
	if a.Role != escalation.RoleConsultant {
		s.writeError(w, r, newErr(http.StatusForbidden, "forbidden", "Only consultants have a pager."))
		return
	}
	if !s.sameOrigin(r) {
		s.writeError(w, r, newErr(http.StatusForbidden, "forbidden", "Cross-origin websockets are refused."))
		return
	}
	hub := s.cfg.Pager
	if hub == nil {
		s.writeError(w, r, newErr(http.StatusServiceUnavailable, "store_unavailable", "Paging is not running."))
		return
	}
	slot, ok := hub.slots.take(string(a.Username), sessionHashOf(r))
	if !ok {
		s.writeError(w, r, rateLimited(time.Minute, "Too many pager connections are open for this account; close one."))
		return
	}
	defer slot.release()
	device := r.URL.Query().Get("device")
	if !deviceRE.MatchString(device) {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		device = hex.EncodeToString(b)
	}
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	c := &pagerConn{wsEnd: newWSEnd(ws), user: a.Username, device: device, out: make(chan []byte, pagerSendQueue), log: s.log}
	hub.add(c)
	defer hub.remove(c)
	slot.attach(func(reason string) { c.closeWith(closeSessionEnded, reason) })
	defer closeAtDeadline(sessionEnds(r), func(reason string) { c.closeWith(closeSessionEnded, reason) })()
	go c.writeLoop()
	s.log.Info("pager connected", "user", a.Username, "device", device)

	// Pages not yet accepted are sent again on every (re)connect.
	if p := hub.getPager(); p != nil {
		for _, n := range p.Pending(a.Username) {
			c.send(hub.message(n))
		}
	}
	s.pagerReadLoop(c, hub)
	s.log.Info("pager disconnected", "user", a.Username, "device", device)
}

type pagerFrame struct {
	Type   string `json:"type"`
	PageID string `json:"page_id"`
}

// parsePagerFrame decodes one client frame; the type is checked by the caller.
func parsePagerFrame(data []byte) (pagerFrame, error) {
	var f pagerFrame
	if err := checkJSONLimits(data); err != nil {
		return f, err
	}
	err := json.Unmarshal(data, &f)
	return f, err
}

func (s *Server) pagerReadLoop(c *pagerConn, hub *PagerHub) {
	defer c.closeWith(websocket.CloseNormalClosure, "")
	c.ws.SetReadLimit(pagerReadLimit)
	_ = c.ws.SetReadDeadline(time.Now().Add(pagerPongWait))
	c.ws.SetPongHandler(func(string) error { return c.ws.SetReadDeadline(time.Now().Add(pagerPongWait)) })
	limit := rate.NewLimiter(pagerFrameRate, pagerFrameBurst)
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			if errors.Is(err, websocket.ErrReadLimit) {
				c.refuse(websocket.CloseMessageTooBig, "frame too large")
			}
			return
		}
		_ = c.ws.SetReadDeadline(time.Now().Add(pagerPongWait))
		if !limit.Allow() {
			c.refuse(websocket.ClosePolicyViolation, "too many messages")
			return
		}
		f, err := parsePagerFrame(data)
		if err != nil {
			c.refuse(websocket.CloseUnsupportedData, "frames must be JSON")
			return
		}
		switch f.Type {
		case "received", "seen":
			p := hub.getPager()
			if p == nil || f.PageID == "" {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := p.Receipt(ctx, f.PageID, c.user, c.device, f.Type)
			cancel()
			if err != nil && !errors.Is(err, paging.ErrUnknownPage) {
				s.log.Error("recording a page receipt", "user", c.user, "err", err)
			}
		default:
			c.refuse(websocket.ClosePolicyViolation, "unknown message type")
			return
		}
	}
}
