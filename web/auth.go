package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/escalation/account"
)

// SessionCookie is the name of the session cookie.
const SessionCookie = "nightcall_session"

func hashSessionID(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

// sessions resolves session cookies to accounts. Lookups are cached so that a
// short store blip does not sign everyone out; a cached session is checked
// against the store again after revalidate.
type sessions struct {
	store      account.Store
	ttl        time.Duration
	revalidate time.Duration

	mu       sync.Mutex
	byHash   map[string]cachedSession
	accounts map[string]cachedAccount
}

type cachedSession struct {
	username string
	expires  time.Time
	checked  time.Time
}

type cachedAccount struct {
	account account.Account
	checked time.Time
}

func newSessions(store account.Store, ttl time.Duration) *sessions {
	return &sessions{store: store, ttl: ttl, revalidate: 30 * time.Second,
		byHash: map[string]cachedSession{}, accounts: map[string]cachedAccount{}}
}

// create starts a session for username and returns its ID (never stored).
func (s *sessions) create(ctx context.Context, acct account.Account) (string, time.Time, error) {
	username := string(acct.Username)
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", time.Time{}, err
	}
	id := base64.RawURLEncoding.EncodeToString(b)
	expires := time.Now().Add(s.ttl)
	if err := s.store.CreateSession(ctx, hashSessionID(id), username, expires); err != nil {
		return "", time.Time{}, err
	}
	s.mu.Lock()
	s.byHash[hashSessionID(id)] = cachedSession{username: username, expires: expires, checked: time.Now()}
	s.accounts[username] = cachedAccount{account: acct, checked: time.Now()}
	s.mu.Unlock()
	return id, expires, nil
}

func (s *sessions) remove(ctx context.Context, id string) error {
	h := hashSessionID(id)
	s.mu.Lock()
	delete(s.byHash, h)
	s.mu.Unlock()
	return s.store.DeleteSession(ctx, h)
}

// resolve returns the account of a live session, or account.ErrNotFound.
func (s *sessions) resolve(ctx context.Context, id string) (account.Account, error) {
	h := hashSessionID(id)
	now := time.Now()
	s.mu.Lock()
	c, ok := s.byHash[h]
	s.mu.Unlock()
	if ok && now.After(c.expires) {
		s.mu.Lock()
		delete(s.byHash, h)
		s.mu.Unlock()
		return account.Account{}, account.ErrNotFound
	}
	if !ok || now.Sub(c.checked) > s.revalidate {
		username, expires, err := s.store.Session(ctx, h)
		switch {
		case errors.Is(err, account.ErrNotFound):
			s.mu.Lock()
			delete(s.byHash, h)
			s.mu.Unlock()
			return account.Account{}, err
		case err != nil && !ok:
			return account.Account{}, err
		case err == nil:
			c = cachedSession{username: username, expires: expires, checked: now}
			s.mu.Lock()
			s.byHash[h] = c
			s.mu.Unlock()
		}
		// On a store error with a cached session, keep using the cache.
	}
	return s.account(ctx, c.username)
}

func (s *sessions) account(ctx context.Context, username string) (account.Account, error) {
	s.mu.Lock()
	c, ok := s.accounts[username]
	s.mu.Unlock()
	if ok && time.Since(c.checked) < s.revalidate {
		return c.account, nil
	}
	a, err := s.store.UserByName(ctx, escalation.Username(username))
	if err != nil {
		if ok && !errors.Is(err, account.ErrNotFound) {
			return c.account, nil
		}
		return account.Account{}, err
	}
	if a.Disabled {
		return account.Account{}, account.ErrNotFound
	}
	s.mu.Lock()
	s.accounts[username] = cachedAccount{account: a, checked: time.Now()}
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
}

func newSignInLimiter() *signInLimiter {
	return &signInLimiter{byUser: map[string]*rate.Limiter{}, byAddr: map[string]*rate.Limiter{}, swept: time.Now()}
}

func (l *signInLimiter) limiters(username, addr string) (*rate.Limiter, *rate.Limiter) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if time.Since(l.swept) > 10*time.Minute {
		// Full buckets carry no state worth keeping.
		for k, v := range l.byUser {
			if v.Tokens() >= 10 {
				delete(l.byUser, k)
			}
		}
		for k, v := range l.byAddr {
			if v.Tokens() >= 100 {
				delete(l.byAddr, k)
			}
		}
		l.swept = time.Now()
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
	now := time.Now()
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
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	http.SetCookie(w, sessionCookie(r, &http.Cookie{Name: SessionCookie, Value: id, Path: "/", Expires: expires}))
	s.log.InfoContext(r.Context(), "signed in", "user", acct.Username, "role", acct.Role)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleSignOut(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(SessionCookie); err == nil {
		if err := s.sessions.remove(r.Context(), c.Value); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	http.SetCookie(w, sessionCookie(r, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1}))
	w.WriteHeader(http.StatusNoContent)
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
