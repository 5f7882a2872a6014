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
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

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
	// pagerWriterStuck is how long one socket's write may take before its
	// writer is counted as stuck (on a client whose socket buffer is full)
	// and another writer takes over the other sockets' frames.
	pagerWriterStuck = 50 * time.Millisecond
	// The hub runs GOMAXPROCS/2 writers (at least one): measured on 2
	// cores at 10,000 sockets, one writer paged no slower than two, and it
	// leaves a core to the next raise's path (handler, store, pager).
	// pagerWritersMax bounds the writers, stuck ones included.
	pagerWritersMax = 1024
	// pagerWriterYield is how many sockets a writer drains between yields.
	pagerWriterYield = 32
)

// PagerHub holds the consultants' pager sockets on this instance and pushes
// pages and cancellations to them. Pushing never blocks: each connection has
// a bounded queue, and a client too slow to drain it is disconnected (it gets
// its pages again when it reconnects).
//
// Pushes go out in order per escalation, each escalation on its own chain:
// a page waiting for the read model to know its escalation holds up only the
// pushes of that escalation, never another escalation's page.
//
// A push is encoded once, as one websocket.PreparedMessage that every socket
// getting the same bytes shares, and queued on each socket; the sockets with
// frames waiting are written by a few writer goroutines (pagerWriters), not
// a goroutine per socket, with no lock held while writing.
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

	// writers write the sockets' queued frames.
	writers *pagerWriters
	// batches lends fan-outs the list of sockets they schedule.
	batches sync.Pool
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
		chains: map[escalation.EscalationID]*pushChain{}, stopped: make(chan struct{}), slots: newSocketSlots(MaxSocketsPerUser),
		writers: newPagerWriters(runtime.GOMAXPROCS(0)/2, pagerWritersMax, pagerWriterStuck)}
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

// Page implements paging.Notifier. The page frame is encoded once for
// every socket of every consultant paged.
func (h *PagerHub) Page(n paging.Notice) {
	h.enqueue(n.EscalationID, func() {
		pm, err := websocket.NewPreparedMessage(websocket.TextMessage, h.message(n))
		if err != nil {
			h.log.Error("preparing a page frame", "err", err)
			return
		}
		h.fanOut(n.Consultants, true, func(escalation.Username) *websocket.PreparedMessage { return pm })
	})
}

// cancelMessage is the page_cancelled frame (its fields in the order the
// map it replaced was encoded in).
type cancelMessage struct {
	EscalationID escalation.EscalationID `json:"escalation_id"`
	Reason       string                  `json:"reason"`
	Type         string                  `json:"type"`
}

// Cancel implements paging.Notifier. At most two frames are encoded: the
// reason, and for an accept, accepted_by_other for everyone else.
func (h *PagerHub) Cancel(id escalation.EscalationID, users []escalation.Username, acceptedBy escalation.Username, reason string) {
	h.enqueue(id, func() {
		frame := func(r string) *websocket.PreparedMessage {
			b, _ := json.Marshal(cancelMessage{EscalationID: id, Reason: r, Type: "page_cancelled"})
			pm, err := websocket.NewPreparedMessage(websocket.TextMessage, b)
			if err != nil {
				h.log.Error("preparing a cancel frame", "err", err)
			}
			return pm
		}
		mine := frame(reason)
		other := mine
		if reason == "accepted" {
			other = frame("accepted_by_other")
		}
		if mine == nil || other == nil {
			return
		}
		h.fanOut(users, false, func(u escalation.Username) *websocket.PreparedMessage {
			if u != acceptedBy {
				return other
			}
			return mine
		})
	})
}

// fanOut queues frameOf(u) on every socket of each of users, under the
// hub's lock (which adds and removes sockets, and is never held while
// writing), then hands the sockets to the writers: those that were idle,
// and for a page (urgent) those waiting behind cancellations, which it
// puts ahead of them.
func (h *PagerHub) fanOut(users []escalation.Username, urgent bool, frameOf func(escalation.Username) *websocket.PreparedMessage) {
	bp, _ := h.batches.Get().(*[]*pagerConn)
	if bp == nil {
		bp = new([]*pagerConn)
	}
	batch := (*bp)[:0]
	h.mu.Lock()
	for _, u := range users {
		cs := h.conns[u]
		if len(cs) == 0 {
			continue
		}
		pm := frameOf(u)
		for c := range cs {
			if c.push(pm, false, urgent) {
				batch = append(batch, c)
			}
		}
	}
	h.mu.Unlock()
	h.writers.schedule(urgent, batch...)
	clear(batch)
	*bp = batch[:0]
	h.batches.Put(bp)
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
	c := &pagerConn{wsEnd: newWSEnd(ws), user: user, device: device, log: log, pingEvery: h.pingEvery, writers: h.writers}
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
// reader), a small read buffer, a ping timer and its (empty) send queue:
// frames are written by the hub's writers, as prepared messages, which need
// no write buffer.
type pagerConn struct {
	wsEnd
	user    escalation.Username
	device  string
	log     *slog.Logger
	writers *pagerWriters

	mu sync.Mutex
	// queue[qhead:] are the frames waiting to be written, oldest first.
	queue []*websocket.PreparedMessage
	qhead int
	// writing is whether a writer is draining queue (or is scheduled to).
	writing bool
	// draining is whether a writer is draining queue now.
	draining bool
	// inUrgent and inOther are whether the socket waits in the writers'
	// urgent lane, and in the other.
	inUrgent, inOther bool
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

// enqueue queues the one frame b (of this socket alone) and schedules the
// socket's writing. A resent page (unbounded) is urgent.
func (c *pagerConn) enqueue(b []byte, unbounded bool) {
	pm, err := websocket.NewPreparedMessage(websocket.TextMessage, b)
	if err != nil {
		c.log.Error("preparing a pager frame", "err", err)
		return
	}
	if c.push(pm, unbounded, unbounded) {
		c.writers.schedule(unbounded, c)
	}
}

// push queues pm without blocking (a full queue disconnects the slow
// client, unless unbounded) and reports whether the socket must be handed
// to the writers (in the urgent lane when urgent): it had nothing waiting,
// or, for an urgent frame, it waits in the other lane only. The queue keeps
// its order whichever lane the socket is written from.
func (c *pagerConn) push(pm *websocket.PreparedMessage, unbounded, urgent bool) bool {
	select {
	case <-c.done:
		return false
	default:
	}
	c.mu.Lock()
	if !unbounded && len(c.queue)-c.qhead >= pagerSendQueue {
		c.mu.Unlock()
		c.log.Warn("pager client too slow; disconnecting", "user", c.user)
		// The close frame may wait for the slow client: not on the pusher.
		go c.closeWith(websocket.ClosePolicyViolation, "too slow to read pages; reconnect")
		return false
	}
	if c.qhead > 0 && len(c.queue) == cap(c.queue) {
		n := copy(c.queue, c.queue[c.qhead:])
		clear(c.queue[n:])
		c.queue, c.qhead = c.queue[:n], 0
	}
	c.queue = append(c.queue, pm)
	start := false
	switch {
	case !c.writing:
		start, c.writing = true, true
		c.inUrgent, c.inOther = urgent, !urgent
	case urgent && c.inOther && !c.inUrgent && !c.draining:
		start, c.inUrgent = true, true // ahead of the other lane
	}
	c.mu.Unlock()
	return start
}

// write writes the queued frames in order, then ends. The queue keeps its
// room for the next frames; a socket that is ending drops it.
func (c *pagerConn) write() { c.drain(false) }

// drain is write by a writer that took the socket from its lane (the
// urgent one when urgent). A socket may wait in both lanes: the writer that
// takes it second finds it drained, or being drained, and leaves it.
func (c *pagerConn) drain(urgent bool) {
	c.mu.Lock()
	if urgent {
		c.inUrgent = false
	} else {
		c.inOther = false
	}
	if c.draining || c.qhead == len(c.queue) {
		c.mu.Unlock()
		return
	}
	c.draining = true
	c.mu.Unlock()
	for {
		c.mu.Lock()
		if c.qhead == len(c.queue) {
			if cap(c.queue) > 4 {
				c.queue = nil // a burst's room is not kept on an idle socket
			}
			c.queue, c.qhead, c.writing, c.draining = c.queue[:0], 0, false, false
			c.mu.Unlock()
			return
		}
		pm := c.queue[c.qhead]
		c.queue[c.qhead] = nil
		c.qhead++
		c.mu.Unlock()
		select {
		case <-c.done:
			c.drop()
			return
		default:
		}
		_ = c.ws.SetWriteDeadline(time.Now().Add(pagerWriteWait))
		if err := c.ws.WritePreparedMessage(pm); err != nil {
			// The close frame may wait for the client: not on the writer.
			go c.closeWith(websocket.CloseGoingAway, "write failed")
			c.drop()
			return
		}
	}
}

// drop empties the queue of a socket that is ending; writing and draining
// stay true, so nothing is written to it again.
func (c *pagerConn) drop() {
	c.mu.Lock()
	c.queue, c.qhead = nil, 0
	c.mu.Unlock()
}

// pagerWriters writes the frames queued on pager sockets. A socket with
// frames waiting is scheduled once (until its queue is drained) and written
// by one writer at a time, in order. Up to size writers run while sockets
// wait (none when idle): a batched write loop over the sockets, instead of
// a goroutine woken per socket. A writer whose write has taken longer than
// stuckAfter (a client whose socket buffer is full blocks the write until
// its deadline) no longer counts, and another writer is started for the
// other sockets; the stuck one ends, or counts again, when its write
// returns. At most max writers run, stuck ones included.
type pagerWriters struct {
	size, max  int
	stuckAfter time.Duration

	mu sync.Mutex
	// lanes are the sockets waiting for a writer, in order: those with a
	// page waiting (urgent), taken first, and the others.
	urgent, other pagerLane
	// active is how many of running are not stuck.
	active   int
	running  []*pagerWriter
	watching bool
}

// pagerLane is a queue of sockets: q[head:] wait.
type pagerLane struct {
	q    []*pagerConn
	head int
}

func (l *pagerLane) len() int { return len(l.q) - l.head }

func (l *pagerLane) pop() *pagerConn {
	c := l.q[l.head]
	l.q[l.head] = nil
	l.head++
	switch {
	case l.head == len(l.q):
		l.q, l.head = l.q[:0], 0
	case l.head >= 1024 && 2*l.head >= len(l.q):
		n := copy(l.q, l.q[l.head:])
		clear(l.q[n:])
		l.q, l.head = l.q[:n], 0
	}
	return c
}

// pagerWriter is one writer goroutine.
type pagerWriter struct {
	// since is when its current socket's write began (monoNow), 0 between.
	since atomic.Int64
	// stuck is whether it has been writing for longer than stuckAfter (mu).
	stuck bool
	// written counts the sockets it has drained.
	written int
}

// pagerEpoch anchors monoNow.
var pagerEpoch = time.Now()

// monoNow is the monotonic clock in nanoseconds since pagerEpoch (never 0).
func monoNow() int64 { return int64(time.Since(pagerEpoch)) + 1 }

func newPagerWriters(size, maxWriters int, stuckAfter time.Duration) *pagerWriters {
	return &pagerWriters{size: max(1, size), max: max(1, size, maxWriters), stuckAfter: stuckAfter}
}

// schedule hands cs (each just given a frame, as push said) to the
// writers, in the urgent lane or the other.
func (p *pagerWriters) schedule(urgent bool, cs ...*pagerConn) {
	if len(cs) == 0 {
		return
	}
	p.mu.Lock()
	if urgent {
		p.urgent.q = append(p.urgent.q, cs...)
	} else {
		p.other.q = append(p.other.q, cs...)
	}
	p.startLocked()
	p.mu.Unlock()
}

// startLocked starts writers while fewer than size are active, sockets
// wait and max allows, and the watch over them.
func (p *pagerWriters) startLocked() {
	for p.active < p.size && p.active < p.urgent.len()+p.other.len() && len(p.running) < p.max {
		w := &pagerWriter{}
		p.running = append(p.running, w)
		p.active++
		go p.work(w)
	}
	if len(p.running) > 0 && !p.watching {
		p.watching = true
		go p.watch()
	}
}

// work writes waiting sockets, one at a time, until none waits.
func (p *pagerWriters) work(w *pagerWriter) {
	p.mu.Lock()
	for {
		if w.stuck {
			if p.active >= p.size {
				p.endLocked(w)
				p.mu.Unlock()
				return
			}
			w.stuck = false
			p.active++
		}
		var c *pagerConn
		urgent := p.urgent.len() > 0
		switch {
		case urgent:
			c = p.urgent.pop()
		case p.other.len() > 0:
			c = p.other.pop()
		default:
			p.active--
			p.endLocked(w)
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		w.since.Store(monoNow())
		c.drain(urgent)
		w.since.Store(0)
		// Every few sockets the writer lets other goroutines run: with the
		// writers on every P, the next raise's path (its handler, the
		// store, the pager) would otherwise wait for preemption at each
		// step while a fan-out runs.
		if w.written++; w.written%pagerWriterYield == 0 {
			runtime.Gosched()
		}
		p.mu.Lock()
	}
}

func (p *pagerWriters) endLocked(w *pagerWriter) {
	if i := slices.Index(p.running, w); i >= 0 {
		p.running = slices.Delete(p.running, i, i+1)
	}
}

// watch marks writers stuck and starts others in their place, while any
// writer runs.
func (p *pagerWriters) watch() {
	t := time.NewTicker(p.stuckAfter / 2)
	defer t.Stop()
	for range t.C {
		p.mu.Lock()
		if len(p.running) == 0 {
			p.watching = false
			p.mu.Unlock()
			return
		}
		now := monoNow()
		for _, w := range p.running {
			if s := w.since.Load(); !w.stuck && s != 0 && time.Duration(now-s) > p.stuckAfter {
				w.stuck = true
				p.active--
			}
		}
		p.watching = true
		p.startLocked()
		p.mu.Unlock()
	}
}

// startPing arms the ping timer. The first ping comes at a random point of
// the second half of the interval, so that sockets connected together do
// not all ping at once.
func (c *pagerConn) startPing() {
	first := c.pingEvery/2 + mrand.N(c.pingEvery/2+1) // #nosec G404 -- jitter, not a secret
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
		if !utf8.Valid(data) { // RFC 6455 5.6; gorilla does not check
			c.refuse(websocket.CloseInvalidFramePayloadData, "text frames must be UTF-8")
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
