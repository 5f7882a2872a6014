package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/escalation/account"
	"github.com/nightcall-health/nightcall/events"
)

// SessionCookie is the name of the session cookie.
const SessionCookie = "nightcall_session"

func hashSessionID(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

// Session time-out defaults.
const (
	// DefaultSessionIdle ends a session this long after its last request.
	DefaultSessionIdle = 12 * time.Hour
	// DefaultSessionMax ends a session this long after sign-in, however busy.
	DefaultSessionMax = 7 * 24 * time.Hour
	// sessionGrace is how long a session checked against the store may be
	// served from memory while the store cannot be reached.
	sessionGrace = 5 * time.Minute
	// accountRevalidate is how long an account's details are cached.
	accountRevalidate = 30 * time.Second
)

// sessions resolves session cookies to accounts. Every request checks its
// session against the store, which is what revocation (sign-out, a disabled
// account, a changed password) deletes, so a revoked session is refused at
// once on every instance. The idle time-out slides the stored expiry forward
// (at most every touchEvery); the absolute time-out is carried in the
// session ID itself, where it cannot be changed without changing the ID's
// hash. What the store last said is kept in memory so that a short store
// blip does not sign everyone out; revocation events (ApplyAccountEvent)
// drop it on every instance.
type sessions struct {
	store      account.Store
	idle, max  time.Duration
	touchEvery time.Duration

	mu       sync.Mutex
	byHash   map[string]cachedSession
	accounts map[string]cachedAccount
	// revokedUsers and revokedHashes are when an account's sessions, or
	// one session, were revoked: a cached entry checked before then is
	// never served again. Pruned after sessionGrace.
	revokedUsers  map[string]time.Time
	revokedHashes map[string]time.Time
	pruned        time.Time
}

type cachedSession struct {
	username string
	// until is the earlier of the idle and absolute deadlines as last seen.
	until   time.Time
	checked time.Time
}

type cachedAccount struct {
	account account.Account
	checked time.Time
}

func newSessions(store account.Store, idle, maxAge time.Duration) *sessions {
	if maxAge <= 0 {
		maxAge = DefaultSessionMax
	}
	if idle <= 0 || idle > maxAge {
		idle = min(DefaultSessionIdle, maxAge)
	}
	return &sessions{store: store, idle: idle, max: maxAge, touchEvery: min(idle/10, time.Minute),
		byHash: map[string]cachedSession{}, accounts: map[string]cachedAccount{},
		revokedUsers: map[string]time.Time{}, revokedHashes: map[string]time.Time{}, pruned: time.Now()}
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// newSessionID makes a session ID that carries its absolute deadline:
// 43 random characters, a dot, the deadline in Unix seconds.
func newSessionID(deadline time.Time) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b) + "." + strconv.FormatInt(deadline.Unix(), 10), nil
}

// sessionDeadline is the absolute deadline a session ID carries; false for
// an ID made before IDs carried one (its stored expiry is never extended).
func sessionDeadline(id string) (time.Time, bool) {
	i := strings.LastIndexByte(id, '.')
	if i < 0 {
		return time.Time{}, false
	}
	sec, err := strconv.ParseInt(id[i+1:], 10, 64)
	if err != nil || sec <= 0 {
		return time.Time{}, false
	}
	return time.Unix(sec, 0), true
}

// create starts a session for acct and returns its ID (never stored) and
// its absolute deadline. A revocation racing the sign-in (the account
// disabled or its password changed after the password was checked) is
// caught by reading the account again after the session is stored: a
// revocation either deleted the new session or is seen here.
func (s *sessions) create(ctx context.Context, acct account.Account) (string, time.Time, error) {
	username := string(acct.Username)
	now := time.Now()
	deadline := now.Add(s.max).Truncate(time.Second)
	id, err := newSessionID(deadline)
	if err != nil {
		return "", time.Time{}, err
	}
	h := hashSessionID(id)
	until := earlier(now.Add(s.idle), deadline)
	if err := s.store.CreateSession(ctx, h, username, until); err != nil {
		return "", time.Time{}, err
	}
	again, err := s.store.UserByName(ctx, acct.Username)
	if err != nil || again.Disabled || again.PasswordHash != acct.PasswordHash {
		_ = s.store.DeleteSession(context.WithoutCancel(ctx), h)
		if err == nil {
			err = account.ErrBadCredentials
		}
		return "", time.Time{}, err
	}
	s.mu.Lock()
	s.byHash[h] = cachedSession{username: username, until: until, checked: now}
	s.accounts[username] = cachedAccount{account: again, checked: now}
	s.mu.Unlock()
	return id, deadline, nil
}

// remove signs a session out: it is deleted from the store and forgotten
// here. It returns the session's username, or "" when it was not live.
func (s *sessions) remove(ctx context.Context, id string) (escalation.Username, error) {
	h := hashSessionID(id)
	subject, _, err := s.store.Session(ctx, h)
	switch {
	case errors.Is(err, account.ErrNotFound):
		subject = ""
	case err != nil:
		return "", err
	}
	if err := s.store.DeleteSession(ctx, h); err != nil {
		return "", err
	}
	s.forgetSession(h)
	return escalation.Username(subject), nil
}

// forgetSession drops one session from memory for good.
func (s *sessions) forgetSession(h string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byHash, h)
	s.revokedHashes[h] = time.Now()
	s.pruneLocked()
}

// forgetUser drops every session and the details of an account from memory.
func (s *sessions) forgetUser(u escalation.Username) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for h, c := range s.byHash {
		if c.username == string(u) {
			delete(s.byHash, h)
		}
	}
	delete(s.accounts, string(u))
	s.revokedUsers[string(u)] = time.Now()
	s.pruneLocked()
}

// pruneLocked drops revocation marks older than any entry they could stop.
func (s *sessions) pruneLocked() {
	now := time.Now()
	if now.Sub(s.pruned) < sessionGrace {
		return
	}
	for k, at := range s.revokedUsers {
		if now.Sub(at) > sessionGrace {
			delete(s.revokedUsers, k)
		}
	}
	for k, at := range s.revokedHashes {
		if now.Sub(at) > sessionGrace {
			delete(s.revokedHashes, k)
		}
	}
	for k, c := range s.byHash {
		if now.Sub(c.checked) > sessionGrace || !now.Before(c.until) {
			delete(s.byHash, k)
		}
	}
	s.pruned = now
}

// userOf is the username of session h as last resolved, if it is held.
func (s *sessions) userOf(h string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.byHash[h]
	return c.username, ok
}

// cached is the remembered session h when the store cannot be asked: only
// if it was checked within sessionGrace, has not timed out since, and was
// not revoked after that check.
func (s *sessions) cached(h string, now time.Time) (cachedSession, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.byHash[h]
	if !ok || now.Sub(c.checked) > sessionGrace || !now.Before(c.until) {
		return cachedSession{}, false
	}
	if at, gone := s.revokedHashes[h]; gone && !at.Before(c.checked) {
		return cachedSession{}, false
	}
	if at, gone := s.revokedUsers[c.username]; gone && !at.Before(c.checked) {
		return cachedSession{}, false
	}
	return c, true
}

// resolve returns the account of a live session, or account.ErrNotFound,
// and slides the session's idle deadline forward.
func (s *sessions) resolve(ctx context.Context, id string) (account.Account, error) {
	h := hashSessionID(id)
	now := time.Now()
	deadline, carries := sessionDeadline(id)
	if carries && !now.Before(deadline) {
		s.forgetSession(h)
		_ = s.store.DeleteSession(ctx, h)
		return account.Account{}, account.ErrNotFound
	}
	subject, until, err := s.store.Session(ctx, h)
	switch {
	case errors.Is(err, account.ErrNotFound):
		s.mu.Lock()
		delete(s.byHash, h)
		s.mu.Unlock()
		return account.Account{}, err
	case err != nil:
		c, ok := s.cached(h, now)
		if !ok {
			return account.Account{}, err
		}
		return s.account(ctx, c.username)
	}
	if carries {
		if next := earlier(now.Add(s.idle), deadline); next.Sub(until) >= s.touchEvery {
			switch err := s.store.TouchSession(ctx, h, next); {
			case errors.Is(err, account.ErrNotFound):
				return account.Account{}, err
			case err == nil:
				until = next
			}
			// Another store error: the session stands; the next request touches it.
		}
	}
	s.mu.Lock()
	s.byHash[h] = cachedSession{username: subject, until: until, checked: now}
	s.pruneLocked()
	s.mu.Unlock()
	return s.account(ctx, subject)
}

func (s *sessions) account(ctx context.Context, username string) (account.Account, error) {
	s.mu.Lock()
	c, ok := s.accounts[username]
	s.mu.Unlock()
	if ok && time.Since(c.checked) < accountRevalidate {
		return c.account, nil
	}
	start := time.Now()
	a, err := s.store.UserByName(ctx, escalation.Username(username))
	if err != nil {
		if ok && !errors.Is(err, account.ErrNotFound) && time.Since(c.checked) < sessionGrace {
			return c.account, nil
		}
		return account.Account{}, err
	}
	if a.Disabled {
		return account.Account{}, account.ErrNotFound
	}
	s.mu.Lock()
	if at, gone := s.revokedUsers[username]; !gone || at.Before(start) {
		s.accounts[username] = cachedAccount{account: a, checked: start}
	}
	s.mu.Unlock()
	return a, nil
}

// signInLimiter limits failed sign-ins per (username, address) and per
// address. Only failures are counted, so the right password is refused only
// after failures from the same address.
type signInLimiter struct {
	mu     sync.Mutex
	byUser map[string]*rate.Limiter
	byAddr map[string]*rate.Limiter
	swept  time.Time
	now    func() time.Time
}

func newSignInLimiter(now func() time.Time) *signInLimiter {
	if now == nil {
		now = time.Now
	}
	return &signInLimiter{byUser: map[string]*rate.Limiter{}, byAddr: map[string]*rate.Limiter{}, swept: now(), now: now}
}

func (l *signInLimiter) limiters(username, addr string) (*rate.Limiter, *rate.Limiter) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.now().Sub(l.swept) > 10*time.Minute {
		// Full buckets carry no state worth keeping.
		for k, v := range l.byUser {
			if v.TokensAt(l.now()) >= 10 {
				delete(l.byUser, k)
			}
		}
		for k, v := range l.byAddr {
			if v.TokensAt(l.now()) >= 100 {
				delete(l.byAddr, k)
			}
		}
		l.swept = l.now()
	}
	ku := username + "\x00" + addr
	u, ok := l.byUser[ku]
	if !ok {
		u = rate.NewLimiter(rate.Every(time.Minute/10), 10)
		l.byUser[ku] = u
	}
	a, ok := l.byAddr[addr]
	if !ok {
		a = rate.NewLimiter(rate.Every(time.Minute/100), 100)
		l.byAddr[addr] = a
	}
	return u, a
}

// take reserves one failure from both the (username, address) and the
// address limit before the password is checked, so a burst of parallel
// guesses cannot all reach argon2 before the first failure is counted. It
// returns release, which gives the reservation back (a right password, or a
// check that never ran), or how long to wait when a limit is reached.
func (l *signInLimiter) take(username, addr string) (release func(), wait time.Duration) {
	u, a := l.limiters(username, addr)
	now := l.now()
	var held []*rate.Reservation
	// Cancelling at the reservation's own instant gives its token back even
	// after the check has run (CancelAt at a later time restores nothing).
	undo := func() {
		for _, r := range held {
			r.CancelAt(now)
		}
	}
	for _, lim := range []*rate.Limiter{u, a} {
		r := lim.ReserveN(now, 1)
		if d := r.DelayFrom(now); !r.OK() || d > 0 {
			r.CancelAt(now)
			undo()
			return nil, max(d, time.Second)
		}
		held = append(held, r)
	}
	return undo, 0
}

// clientAddr is the client's address: the socket's, or the one a trusted
// proxy forwarded.
func clientAddr(r *http.Request) string { return peerOf(r).addr }

type signInRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

func (s *Server) handleSignIn(w http.ResponseWriter, r *http.Request) {
	var req signInRequest
	if err := s.decode(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Username == "" {
		s.writeError(w, r, &apiError{Status: 400, Code: "missing_field", Field: "username", Message: "Give your username."})
		return
	}
	if req.Password == "" {
		s.writeError(w, r, &apiError{Status: 400, Code: "missing_field", Field: "password", Message: "Give your password."})
		return
	}
	addr := clientAddr(r)
	release, wait := s.limiter.take(req.Username, addr)
	if wait > 0 {
		s.writeError(w, r, rateLimited(wait, "Too many failed sign-ins."))
		return
	}
	// At most cap(hashSlots) argon2id checks run at once; one that finds no
	// slot is refused now rather than queued, so a flood of guesses cannot
	// hold memory or delay the next real sign-in.
	select {
	case s.hashSlots <- struct{}{}:
	default:
		release()
		s.writeError(w, r, rateLimited(time.Second, "Too many sign-ins at once."))
		return
	}
	// An unknown user, a wrong password and a disabled account all get the
	// same answer after the same work.
	acct, err := s.accounts.Authenticate(r.Context(), req.Username, req.Password)
	<-s.hashSlots
	switch {
	case errors.Is(err, account.ErrBadCredentials):
		s.writeError(w, r, newErr(http.StatusUnauthorized, "unauthenticated", "The username or password is wrong."))
		return
	case err != nil:
		release()
		s.writeError(w, r, err)
		return
	}
	release() // only failures count against the limits
	id, expires, err := s.sessions.create(r.Context(), acct)
	if errors.Is(err, account.ErrBadCredentials) {
		// Disabled, or its password changed, while signing in.
		s.writeError(w, r, newErr(http.StatusUnauthorized, "unauthenticated", "The username or password is wrong."))
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	http.SetCookie(w, sessionCookie(r, &http.Cookie{Name: SessionCookie, Value: id, Path: "/", Expires: expires})) // #nosec G124 -- sessionCookie sets Secure, HttpOnly, SameSite
	s.log.InfoContext(r.Context(), "signed in", "user", acct.Username, "role", acct.Role)
	w.WriteHeader(http.StatusNoContent)
}

// handleSignOut ends the session on every instance at once: it is deleted
// from the store (which every request checks), and session.revoked tells
// every instance to forget it and close the sockets it opened.
func (s *Server) handleSignOut(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(SessionCookie); err == nil && c.Value != "" {
		u, err := s.sessions.remove(r.Context(), c.Value)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		h := hashSessionID(c.Value)
		s.endSession(h, "signed out")
		if u != "" && !strings.HasPrefix(string(u), guestPrefix) {
			meta := escalation.Meta{Actor: escalation.Actor{Person: escalation.Person{Username: u}}, CorrelationID: requestID(r)}
			ev := &escalation.SessionRevoked{Username: u, SessionHash: h, Reason: escalation.SignedOut}
			if _, err := s.cfg.Service.RecordAccountEvent(r.Context(), meta, ev, nil); err != nil {
				// The session is gone from the store, so no instance serves
				// it again; only its sockets elsewhere stay open.
				s.log.ErrorContext(r.Context(), "recording a sign-out", "user", u, "err", err)
			}
		}
	}
	http.SetCookie(w, sessionCookie(r, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1})) // #nosec G124 -- sessionCookie sets Secure, HttpOnly, SameSite
	w.WriteHeader(http.StatusNoContent)
}

func requestID(r *http.Request) string {
	rid, _ := r.Context().Value(requestIDKey{}).(string)
	return rid
}

// ApplyAccountEvent is every instance's log consumer hook for the account
// lifecycle: a disabled account or a changed password drops every cached
// session of the account and closes its pager and call sockets here; a
// revoked session is dropped and its sockets closed. Other events are
// ignored. It is idempotent, as at-least-once delivery needs.
func (s *Server) ApplyAccountEvent(env events.Envelope) error {
	if !escalation.IsAccountEventType(env.Type) {
		return nil
	}
	ev, err := escalation.Decode(env)
	if err != nil {
		return err
	}
	switch e := ev.(type) {
	case *escalation.UserDisabled:
		s.endUser(e.Username, "account disabled")
	case *escalation.UserPasswordChanged:
		s.endUser(e.Username, "password changed")
	case *escalation.UserEnabled:
		s.sessions.forgetUser(e.Username)
	case *escalation.SessionRevoked:
		s.endSession(e.SessionHash, "signed out")
	}
	return nil
}

// endUser forgets every session of u on this instance and closes its sockets.
func (s *Server) endUser(u escalation.Username, reason string) {
	s.sessions.forgetUser(u)
	n := s.signals.closeUser(string(u), reason)
	if s.cfg.Pager != nil {
		n += s.cfg.Pager.CloseUser(u, reason)
	}
	if n > 0 {
		s.log.Info("sockets closed", "user", u, "sockets", n, "reason", reason)
	}
}

// endSession forgets one session on this instance and closes its sockets.
func (s *Server) endSession(h, reason string) {
	s.sessions.forgetSession(h)
	s.signals.closeSession(h, reason)
	if s.cfg.Pager != nil {
		s.cfg.Pager.CloseSession(h, reason)
	}
}

// sessionHashOf is the stored hash of the request's staff session ("" without one).
func sessionHashOf(r *http.Request) string {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return ""
	}
	return hashSessionID(c.Value)
}

// sessionEnds is when the request's staff session reaches its absolute
// time-out (zero when unknown).
func sessionEnds(r *http.Request) time.Time {
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		return time.Time{}
	}
	t, _ := sessionDeadline(c.Value)
	return t
}

type actorKey struct{}

func actorFrom(ctx context.Context) *escalation.Actor {
	a, _ := ctx.Value(actorKey{}).(*escalation.Actor)
	return a
}

// authenticate resolves the session cookie; it returns nil when there is none.
func (s *Server) authenticate(r *http.Request) (*escalation.Actor, error) {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return nil, nil
	}
	acct, err := s.sessions.resolve(r.Context(), c.Value)
	if errors.Is(err, account.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	a := &escalation.Actor{
		Person: escalation.Person{Username: escalation.Username(acct.Username), Name: acct.Name},
		Role:   escalation.Role(acct.Role), CareHomeID: escalation.CareHomeID(acct.CareHomeID),
		CareHomeIDs: acct.CareHomeIDs,
	}
	if a.Role == escalation.RoleConsultant {
		a.OnCall = s.cfg.Service.Read().OnCall(a.Username)
	}
	return a, nil
}

// requireAuth wraps h so that it runs only with a signed-in actor.
func (s *Server) requireAuth(h func(http.ResponseWriter, *http.Request, *escalation.Actor)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a, err := s.authenticate(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if a == nil {
			s.writeError(w, r, errUnauthenticated)
			return
		}
		if !routeAllowed(a, r) {
			s.writeError(w, r, errForbidden)
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), actorKey{}, a))
		if lw, ok := w.(*statusWriter); ok {
			lw.user = string(a.Username)
		}
		h(w, r, a)
	}
}

func (s *Server) handleMe(w http.ResponseWriter, r *http.Request, a *escalation.Actor) {
	me := map[string]any{"username": a.Username, "name": a.Name, "role": a.Role}
	if a.CareHomeID != "" {
		me["care_home_id"] = a.CareHomeID
	}
	if a.Role == escalation.RoleGP {
		me["care_home_ids"] = a.CareHomeIDs
	}
	if a.Role == escalation.RoleConsultant {
		me["on_call"] = a.OnCall
	}
	// The pages show every time in the service's --timezone, not the device's.
	me["timezone"] = time.UTC.String()
	if s.cfg.Location != nil {
		me["timezone"] = s.cfg.Location.String()
	}
	writeJSON(w, http.StatusOK, me)
}
