package web

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/escalation/account"
	"github.com/nightcall-health/nightcall/video"
)

// Calls is the video port: the SFU.
type Calls interface {
	Join(ctx context.Context, room video.RoomID, who video.Participant, conn video.Conn) error
}

// GuestCookie holds a guest's session for one call; it is separate from the
// staff session cookie so a guest link never signs anyone out.
const GuestCookie = "nightcall_guest"

// InviteTTL bounds an invite's life; it also ends with its call.
const InviteTTL = 2 * time.Hour

// Signalling limits.
const (
	signalReadLimit = 64 << 10
	signalRate      = 30
	signalBurst     = 120
	signalPongWait  = 60 * time.Second
	signalPing      = 20 * time.Second
)

// signalQueue bounds the messages waiting to be written to one participant.
// A peer that lets it fill (a dead or very slow connection) is closed, so it
// never holds up the room's signalling to everyone else.
const signalQueue = 64

// errSlowPeer is returned by Send when a participant's queue is full.
var errSlowPeer = errors.New("web: signalling peer too slow; closed")

// wsConn is a video.Conn over a gorilla websocket: a send queue with its own
// writer, keep-alive pings, a read limit and a flood limit.
type wsConn struct {
	wsEnd
	mu    sync.Mutex // one writer at a time
	out   chan outMsg
	limit *rate.Limiter
}

// outMsg is a queued message, or (with flushed set) a marker that Close
// waits for, so that what was sent before a close is written before it.
type outMsg struct {
	b       []byte
	flushed chan struct{}
}

// NewSignalConn adapts a websocket to the SFU's signalling channel.
func NewSignalConn(ws *websocket.Conn) video.Conn { return newWSConn(ws) }

func newWSConn(ws *websocket.Conn) *wsConn {
	c := &wsConn{wsEnd: newWSEnd(ws), out: make(chan outMsg, signalQueue), limit: rate.NewLimiter(signalRate, signalBurst)}
	go c.writeLoop()
	ws.SetReadLimit(signalReadLimit)
	_ = ws.SetReadDeadline(time.Now().Add(signalPongWait))
	ws.SetPongHandler(func(string) error { return ws.SetReadDeadline(time.Now().Add(signalPongWait)) })
	go func() {
		t := time.NewTicker(signalPing)
		defer t.Stop()
		for {
			select {
			case <-c.done:
				return
			case <-t.C:
				if err := ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(10*time.Second)); err != nil {
					return
				}
			}
		}
	}()
	return c
}

// Send queues m for this participant and returns at once: the room sends to
// every participant in turn, so one slow socket must never make it wait.
func (c *wsConn) Send(m video.Message) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	select {
	case <-c.done:
		return websocket.ErrCloseSent
	default:
	}
	select {
	case c.out <- outMsg{b: b}:
		return nil
	default:
		c.closeWith(websocket.ClosePolicyViolation, "too slow")
		return errSlowPeer
	}
}

// writeLoop is the connection's one writer.
func (c *wsConn) writeLoop() {
	for {
		select {
		case <-c.done:
			return
		case m := <-c.out:
			if m.flushed != nil {
				close(m.flushed)
				continue
			}
			c.mu.Lock()
			_ = c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
			err := c.ws.WriteMessage(websocket.TextMessage, m.b)
			c.mu.Unlock()
			if err != nil {
				c.closeWith(websocket.CloseGoingAway, "write failed")
				return
			}
		}
	}
}

func (c *wsConn) Recv() (video.Message, error) {
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			if errors.Is(err, websocket.ErrReadLimit) {
				c.refuse(websocket.CloseMessageTooBig, "frame too large")
			}
			return video.Message{}, err
		}
		_ = c.ws.SetReadDeadline(time.Now().Add(signalPongWait))
		if !c.limit.Allow() {
			c.refuse(websocket.ClosePolicyViolation, "too many messages")
			return video.Message{}, errors.New("flood")
		}
		m, err := parseSignal(data)
		if err != nil {
			_ = c.Send(video.Message{Type: "error", Code: "invalid_json", Message: "messages are JSON objects with a type"})
			continue
		}
		return m, nil
	}
}

// Close writes what was queued (for at most two seconds), then closes.
func (c *wsConn) Close(reason string) {
	flushed := make(chan struct{})
	wait := time.NewTimer(2 * time.Second)
	defer wait.Stop()
	select {
	case c.out <- outMsg{flushed: flushed}:
		select {
		case <-flushed:
		case <-c.done:
		case <-wait.C:
		}
	case <-c.done:
	case <-wait.C:
	}
	c.closeWith(websocket.CloseNormalClosure, reason)
}

// guest is a guest's session: one call, one role.
type guest struct {
	escalation escalation.EscalationID
	role       escalation.CallRole
}

const guestPrefix = "guest|"

func (s *Server) guestFrom(r *http.Request) (*guest, error) {
	c, err := r.Cookie(GuestCookie)
	if err != nil || c.Value == "" {
		return nil, nil
	}
	username, _, err := s.cfg.Accounts.Session(r.Context(), hashSessionID(c.Value))
	if errors.Is(err, account.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	parts := strings.Split(strings.TrimPrefix(username, guestPrefix), "|")
	if !strings.HasPrefix(username, guestPrefix) || len(parts) != 2 {
		return nil, nil
	}
	return &guest{escalation: escalation.EscalationID(parts[0]), role: escalation.CallRole(parts[1])}, nil
}

// handleSignal upgrades to the call's signalling websocket after every
// check has passed: 401 without a session, 403 for a wrong role or origin,
// 404 for an escalation the caller cannot see, 409 when there is no call.
func (s *Server) handleSignal(w http.ResponseWriter, r *http.Request) {
	id := escalation.EscalationID(r.PathValue("id"))
	if s.cfg.Video == nil {
		s.writeError(w, r, newErr(http.StatusServiceUnavailable, "store_unavailable", "Video is not running."))
		return
	}
	who, err := s.callParticipant(r, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if !s.sameOrigin(r) {
		s.writeError(w, r, newErr(http.StatusForbidden, "forbidden", "Cross-origin websockets are refused."))
		return
	}
	owner, session, err := s.signalOwner(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	slot, ok := s.signals.take(owner, session)
	if !ok {
		s.writeError(w, r, rateLimited(time.Minute, "Too many call connections are open for this account; close one."))
		return
	}
	defer slot.release()
	host, err := s.callHost(r.Context(), string(id))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if host != "" {
		if s.proxySignal(w, r, host) {
			return
		}
		// The hosting instance is gone: take the room over.
		if owner, err := s.cfg.Hosts.Takeover(r.Context(), "call:"+string(id), host, s.cfg.AdvertiseURL, callLease); err != nil || owner != s.cfg.AdvertiseURL {
			s.writeError(w, r, newErr(http.StatusServiceUnavailable, "store_unavailable", "The instance hosting this call cannot be reached."))
			return
		}
		s.log.Warn("took over a call from an unreachable instance", "escalation_id", id)
	}
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	conn := newWSConn(ws)
	// A revoked session or account, or the absolute time-out, ends the
	// socket, and with it the participant's place in the room.
	slot.attach(func(reason string) { conn.closeWith(closeSessionEnded, reason) })
	defer closeAtDeadline(sessionEnds(r), func(reason string) { conn.closeWith(closeSessionEnded, reason) })()
	s.log.Info("call joined", "escalation_id", id, "role", who.Role)
	if err := s.cfg.Video.Join(context.WithoutCancel(r.Context()), video.RoomID(id), who, conn); err != nil {
		_ = conn.Send(video.Message{Type: "error", Code: "call_closed", Message: "This call has ended."})
	}
	conn.Close("")
	s.log.Info("call left", "escalation_id", id, "role", who.Role)
}

// callParticipant decides who the caller is in escalation id's call: staff
// of the home, the accepting consultant, or a guest whose invite is for this
// call, while the call is open. The error is 401 without a session, 403 for
// a wrong role or another call's guest, 404 for an escalation the caller
// cannot see, 409 when there is no call now.
func (s *Server) callParticipant(r *http.Request, id escalation.EscalationID) (video.Participant, error) {
	a, err := s.authenticate(r)
	if err != nil {
		return video.Participant{}, err
	}
	if a != nil {
		role, err := s.cfg.Service.CallAccess(r.Context(), *a, id)
		if err != nil {
			return video.Participant{}, err
		}
		return video.Participant{Role: string(role), Name: a.Name}, nil
	}
	g, err := s.guestFrom(r)
	if err != nil {
		return video.Participant{}, err
	}
	if g == nil {
		return video.Participant{}, errUnauthenticated
	}
	if g.escalation != id {
		return video.Participant{}, newErr(http.StatusForbidden, "forbidden", "This invitation is for another call.")
	}
	if err := s.cfg.Service.GuestCallOpen(r.Context(), id); err != nil {
		return video.Participant{}, err
	}
	return video.Participant{Role: string(g.role), Name: "Guest (" + string(g.role) + ")"}, nil
}

func (s *Server) handleCreateInvite(w http.ResponseWriter, r *http.Request, a *escalation.Actor) {
	var req struct {
		Role escalation.CallRole `json:"role"`
	}
	idem, ok := s.command(w, r, a, &req, false)
	if !ok {
		return
	}
	id := escalation.EscalationID(r.PathValue("id"))
	secret := make([]byte, 24)
	if _, err := rand.Read(secret); err != nil {
		s.writeError(w, r, err)
		return
	}
	token := base64.RawURLEncoding.EncodeToString(secret)
	view := func(expires any) any {
		return map[string]any{"url": "/call/invite/" + string(id) + "/" + token, "expires_at": expires}
	}
	meta := s.meta(r, a)
	meta.IdempotencyOf = idem.recordOf(http.StatusCreated, view)
	expires, err := s.cfg.Service.CreateInvite(r.Context(), meta, id, req.Role, hashSessionID(token), InviteTTL)
	s.respond(w, r, idem, err, http.StatusCreated, func() any { return view(expires) })
}

// handleInvitePage shows the guest's join page and spends nothing: link
// previews and mail scanners open links too. Its Join button POSTs to the
// same URL (handleInvite).
func (s *Server) handleInvitePage(w http.ResponseWriter, r *http.Request) {
	s.servePage(w, r, "call.html")
}

// handleInvite redeems a one-time invite, once, in the same step that makes
// the guest's session for that call alone: 204 with the guest cookie.
func (s *Server) handleInvite(w http.ResponseWriter, r *http.Request) {
	id := escalation.EscalationID(r.PathValue("id"))
	token := r.PathValue("token")
	role, err := s.cfg.Service.UseInvite(r.Context(), id, hashSessionID(token))
	switch {
	case errors.Is(err, escalation.ErrInviteUsed):
		s.writeError(w, r, newErr(http.StatusGone, "invite_used", "This invitation has already been used."))
		return
	case errors.Is(err, escalation.ErrInviteExpired):
		s.writeError(w, r, newErr(http.StatusGone, "invite_expired", "This invitation has expired, or its call has ended."))
		return
	case err != nil:
		s.writeError(w, r, err)
		return
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		s.writeError(w, r, err)
		return
	}
	sid := base64.RawURLEncoding.EncodeToString(b)
	expires := time.Now().Add(InviteTTL)
	if err := s.cfg.Accounts.CreateSession(r.Context(), hashSessionID(sid), guestPrefix+string(id)+"|"+string(role), expires); err != nil {
		s.writeError(w, r, err)
		return
	}
	http.SetCookie(w, sessionCookie(r, &http.Cookie{Name: GuestCookie, Value: sid, Path: "/", Expires: expires})) // #nosec G124 -- sessionCookie sets Secure, HttpOnly, SameSite
	s.log.Info("invite used", "escalation_id", id, "role", role)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleCallConfig(w http.ResponseWriter, r *http.Request) {
	servers := []map[string]any{}
	for _, u := range s.cfg.ICEServers {
		servers = append(servers, map[string]any{"urls": []string{u}})
	}
	writeJSON(w, http.StatusOK, map[string]any{"ice_servers": servers})
}

// parseSignal decodes one signalling frame from a browser.
func parseSignal(data []byte) (video.Message, error) {
	var m video.Message
	if err := checkJSONLimits(data); err != nil {
		return m, err
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, err
	}
	if m.Type == "" {
		return m, errors.New("web: a signalling message needs a type")
	}
	return m, nil
}
