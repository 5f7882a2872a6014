package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
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
	pagerWriteWait = 10 * time.Second
	pagerPongWait  = 60 * time.Second
	pagerPingEvery = 20 * time.Second
	pagerReadLimit = 4096
	pagerSendQueue = 64
	// pagerPushQueue bounds the pushes waiting in all escalations' chains.
	pagerPushQueue = 8192
	// pagerReadWait is how long a page waits for the read model to know its
	// escalation before it goes without the details.
	pagerReadWait   = 2 * time.Second
	pagerFrameRate  = 10 // frames per second allowed from a client
	pagerFrameBurst = 30
)

// PagerHub holds the consultants' pager sockets on this instance and pushes
// pages and cancellations to them. Pushing never blocks: each connection has
// a bounded queue, and a client too slow to drain it is disconnected (it gets
// its pages again when it reconnects).
//
// Pushes go out in order per escalation, each escalation on its own chain:
// a page waiting for the read model to know its escalation holds up only the
// pushes of that escalation, never another escalation's page.
type PagerHub struct {
	log  *slog.Logger
	read *escalation.Projection
	// readWait is how long a page waits for the read model (pagerReadWait).
	readWait time.Duration
	// pingEvery is how often each socket is pinged (pagerPingEvery).
	pingEvery time.Duration

	mu    sync.Mutex
	conns map[escalation.Username]map[*pagerConn]struct{}
	pager *paging.Pager

	cmu sync.Mutex
	// chains are the pushes waiting per escalation; each chain has one
	// goroutine draining it while it is not empty, and none when it is.
	chains map[escalation.EscalationID]*pushChain
	// queued counts the pushes waiting in all chains (bounded by pagerPushQueue).
	queued int
	// stopped is closed when Run ends: waits end and pushes are dropped.
	stopped  chan struct{}
	stopOnce sync.Once

	// slots bounds each consultant's pager sockets and closes them when the
	// session or the account is revoked.
	slots *socketSlots
}

// pushChain is one escalation's pushes, in the order they were made.
type pushChain struct{ fs []func() }

// NewPagerHub returns a hub. Pushes go out as soon as they are made; Run
// holds the hub until its context ends, then closes every socket.
func NewPagerHub(read *escalation.Projection, log *slog.Logger) *PagerHub {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &PagerHub{log: log, read: read, readWait: pagerReadWait, pingEvery: pagerPingEvery, conns: map[escalation.Username]map[*pagerConn]struct{}{},
		chains: map[escalation.EscalationID]*pushChain{}, stopped: make(chan struct{}), slots: newSocketSlots(MaxSocketsPerUser)}
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

// Run waits until ctx is done, then stops the pushes and closes every socket.
func (h *PagerHub) Run(ctx context.Context) {
	<-ctx.Done()
	h.stopOnce.Do(func() { close(h.stopped) })
	h.closeAll()
}

// enqueue adds f to the chain of escalation id, starting the chain's
// goroutine when the chain was empty. It never blocks.
func (h *PagerHub) enqueue(id escalation.EscalationID, f func()) {
	select {
	case <-h.stopped:
		return
	default:
	}
	h.cmu.Lock()
	if h.queued >= pagerPushQueue {
		h.cmu.Unlock()
		h.log.Error("pager push queue full; devices will get their pages on reconnect")
		return
	}
	h.queued++
	ch := h.chains[id]
	start := ch == nil
	if start {
		ch = &pushChain{}
		h.chains[id] = ch
	}
	ch.fs = append(ch.fs, f)
	h.cmu.Unlock()
	if start {
		go h.drain(id, ch)
	}
}

// drain runs the pushes of one escalation in order until its chain is empty.
func (h *PagerHub) drain(id escalation.EscalationID, ch *pushChain) {
	for {
		h.cmu.Lock()
		if len(ch.fs) == 0 {
			delete(h.chains, id)
			h.cmu.Unlock()
			return
		}
		f := ch.fs[0]
		ch.fs[0] = nil
		ch.fs = ch.fs[1:]
		h.queued--
		h.cmu.Unlock()
		select {
		case <-h.stopped:
		default:
			f()
		}
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
	timeout := time.NewTimer(h.readWait)
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
		case <-h.stopped:
			break look
		}
	}
	sum.CareHome.Name = h.read.Home(n.CareHomeID).Name
	b, _ := json.Marshal(pageMessage{Type: "page", PageID: n.PageID, Escalation: sum})
	return b
}

// Page implements paging.Notifier.
func (h *PagerHub) Page(n paging.Notice) {
	h.enqueue(n.EscalationID, func() {
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
	h.enqueue(id, func() {
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

// open makes ws user's pager socket on device: it is added to the hub and
// pinged. Its reader calls close when it ends.
func (h *PagerHub) open(ws *websocket.Conn, user escalation.Username, device string, log *slog.Logger) *pagerConn {
	c := &pagerConn{wsEnd: newWSEnd(ws), user: user, device: device, log: log, pingEvery: h.pingEvery}
	h.add(c)
	c.startPing()
	return c
}

// close removes c from the hub and stops its pings.
func (h *PagerHub) close(c *pagerConn) {
	c.stopPing()
	h.remove(c)
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

// pagerConn is one pager socket. An idle one holds one goroutine (its
// reader), a small read buffer and a ping timer: the write buffer comes from
// a pool for each write, and the send queue and its writer goroutine exist
// only while frames are waiting.
type pagerConn struct {
	wsEnd
	user   escalation.Username
	device string
	log    *slog.Logger

	mu sync.Mutex
	// queue holds the frames waiting to be written; nil while none are.
	queue [][]byte
	// writing is whether a writer goroutine is draining queue.
	writing bool
	// ping sends the next ping, every pingEvery; nil once the socket has ended.
	ping      *time.Timer
	pingEvery time.Duration
}

// stillPending reports whether page pageID is still one of user's pending pages.
func stillPending(p *paging.Pager, user escalation.Username, pageID string) bool {
	for _, n := range p.Pending(user) {
		if n.PageID == pageID {
			return true
		}
	}
	return false
}

// send queues b without blocking; a full queue disconnects the slow client.
func (c *pagerConn) send(b []byte) { c.enqueue(b, false) }

// resend queues a pending page sent again on connect. It is not held to
// the queue's bound: a consultant with more pending pages than the bound
// would otherwise be disconnected on every reconnect and never settle; the
// pending pages are bounded by the open escalations.
func (c *pagerConn) resend(b []byte) { c.enqueue(b, true) }

func (c *pagerConn) enqueue(b []byte, unbounded bool) {
	select {
	case <-c.done:
		return
	default:
	}
	c.mu.Lock()
	if !unbounded && len(c.queue) >= pagerSendQueue {
		c.mu.Unlock()
		c.log.Warn("pager client too slow; disconnecting", "user", c.user)
		// The close frame may wait for the slow client: not on the pusher.
		go c.closeWith(websocket.ClosePolicyViolation, "too slow to read pages; reconnect")
		return
	}
	c.queue = append(c.queue, b)
	start := !c.writing
	c.writing = true
	c.mu.Unlock()
	if start {
		go c.write()
	}
}

// write writes the queued frames in order, then ends, dropping the queue.
func (c *pagerConn) write() {
	for {
		c.mu.Lock()
		if len(c.queue) == 0 {
			c.queue, c.writing = nil, false
			c.mu.Unlock()
			return
		}
		b := c.queue[0]
		c.queue[0] = nil
		c.queue = c.queue[1:]
		c.mu.Unlock()
		select {
		case <-c.done:
			c.mu.Lock()
			c.queue = nil // writing stays true: nothing is written again
			c.mu.Unlock()
			return
		default:
		}
		_ = c.ws.SetWriteDeadline(time.Now().Add(pagerWriteWait))
		if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
			c.closeWith(websocket.CloseGoingAway, "write failed")
		}
	}
}

// startPing arms the ping timer. The first ping comes at a random point of
// the second half of the interval, so that sockets connected together do
// not all ping at once.
func (c *pagerConn) startPing() {
	first := c.pingEvery/2 + mrand.N(c.pingEvery/2+1)
	c.mu.Lock()
	c.ping = time.AfterFunc(first, c.sendPing)
	c.mu.Unlock()
}

// sendPing runs on the timer's own goroutine: gorilla's WriteControl may
// run beside the writer.
func (c *pagerConn) sendPing() {
	if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(pagerWriteWait)); err != nil {
		c.closeWith(websocket.CloseGoingAway, "ping failed")
		return
	}
	c.mu.Lock()
	if c.ping != nil {
		c.ping.Reset(c.pingEvery)
	}
	c.mu.Unlock()
}

func (c *pagerConn) stopPing() {
	c.mu.Lock()
	if c.ping != nil {
		c.ping.Stop()
		c.ping = nil
	}
	c.mu.Unlock()
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

// pagerWriteBuffers lends pager sockets a write buffer for each write only.
var pagerWriteBuffers sync.Pool

// pagerUpgrader keeps an idle pager socket small: a 512-byte read buffer
// (client frames are receipts of under 100 bytes; a longer frame is read in
// several reads) and write buffers from a pool.
var pagerUpgrader = websocket.Upgrader{
	ReadBufferSize:  512,
	WriteBufferSize: 4096,
	WriteBufferPool: &pagerWriteBuffers,
	CheckOrigin:     func(*http.Request) bool { return true },
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
	device := r.URL.Query().Get("device")
	if !deviceRE.MatchString(device) {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		device = hex.EncodeToString(b)
	}
	ws, err := pagerUpgrader.Upgrade(w, r, nil)
	if err != nil {
		slot.release()
		return // the upgrader has answered
	}
	c := hub.open(ws, a.Username, device, s.log)
	slot.attach(func(reason string) { c.closeWith(closeSessionEnded, reason) })
	stopDeadline := closeAtDeadline(sessionEnds(r), func(reason string) { c.closeWith(closeSessionEnded, reason) })
	s.log.Info("pager connected", "user", a.Username, "device", device)

	// Pages not yet accepted are sent again on every (re)connect, each in
	// its escalation's order.
	if p := hub.getPager(); p != nil {
		user := a.Username
		for _, n := range p.Pending(user) {
			hub.enqueue(n.EscalationID, func() {
				// Still pending when its turn comes: a cancel queued on this
				// escalation's chain before it has already gone out.
				if !stillPending(p, user, n.PageID) {
					return
				}
				c.resend(hub.message(n))
			})
		}
	}
	// The socket is read on a goroutine of its own and this handler returns,
	// so that the HTTP server's connection goroutine, its stack and its
	// 4 KiB read and write buffers are not held for the socket's life.
	user := a.Username
	go func() {
		defer slot.release()
		defer hub.close(c)
		defer stopDeadline()
		// Outside the request's middleware now: a panic here must end this
		// socket, never the process (and with it every page).
		defer func() {
			if v := recover(); v != nil {
				s.log.Error("pager socket panicked; closing it", "user", user, "panic", fmt.Sprint(v))
			}
		}()
		s.pagerReadLoop(c, hub)
		s.log.Info("pager disconnected", "user", user, "device", device)
	}()
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
