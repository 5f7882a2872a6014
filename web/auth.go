package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/time/rate"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/events"
)

// SessionCookie is the name of the session cookie.
const SessionCookie = "nightcall_session"

// argon2id parameters (OWASP's minimum for argon2id: 19 MiB, t=2, p=1).
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
)

// HashPassword returns an argon2id hash in the PHC string format.
func HashPassword(password string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// CheckPassword reports whether password matches a hash from HashPassword.
func CheckPassword(hash, password string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var m uint32
	var t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	want, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// dummyHash is checked when the user does not exist, so that a bad username
// takes as long as a bad password. It is made on first use, not at start.
var dummyHash = sync.OnceValue(func() string { h, _ := HashPassword("nightcall-no-such-user"); return h })

func hashSessionID(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

// sessions resolves session cookies to accounts. Lookups are cached so that a
// short store blip does not sign everyone out; a cached session is checked
// against the store again after revalidate.
type sessions struct {
	store      events.AccountStore
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
	account events.Account
	checked time.Time
}

func newSessions(store events.AccountStore, ttl time.Duration) *sessions {
	return &sessions{store: store, ttl: ttl, revalidate: 30 * time.Second,
		byHash: map[string]cachedSession{}, accounts: map[string]cachedAccount{}}
}

// create starts a session for username and returns its ID (never stored).
func (s *sessions) create(ctx context.Context, acct events.Account) (string, time.Time, error) {
	username := acct.Username
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

// resolve returns the account of a live session, or ErrAccountNotFound.
func (s *sessions) resolve(ctx context.Context, id string) (events.Account, error) {
	h := hashSessionID(id)
	now := time.Now()
	s.mu.Lock()
	c, ok := s.byHash[h]
	s.mu.Unlock()
	if ok && now.After(c.expires) {
		s.mu.Lock()
		delete(s.byHash, h)
		s.mu.Unlock()
		return events.Account{}, events.ErrAccountNotFound
	}
	if !ok || now.Sub(c.checked) > s.revalidate {
		username, expires, err := s.store.Session(ctx, h)
		switch {
		case errors.Is(err, events.ErrAccountNotFound):
			s.mu.Lock()
			delete(s.byHash, h)
			s.mu.Unlock()
			return events.Account{}, err
		case err != nil && !ok:
			return events.Account{}, err
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

func (s *sessions) account(ctx context.Context, username string) (events.Account, error) {
	s.mu.Lock()
	c, ok := s.accounts[username]
	s.mu.Unlock()
	if ok && time.Since(c.checked) < s.revalidate {
		return c.account, nil
	}
	a, err := s.store.UserByName(ctx, username)
	if err != nil {
		if ok && !errors.Is(err, events.ErrAccountNotFound) {
			return c.account, nil
		}
		return events.Account{}, err
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

// blocked returns how long to wait before another attempt, or 0.
func (l *signInLimiter) blocked(username, addr string) time.Duration {
	u, a := l.limiters(username, addr)
	now := time.Now()
	var wait time.Duration
	for _, lim := range []*rate.Limiter{u, a} {
		if lim.TokensAt(now) < 1 {
			r := lim.ReserveN(now, 1)
			d := r.DelayFrom(now)
			r.CancelAt(now)
			wait = max(wait, d, time.Second)
		}
	}
	return wait
}

func (l *signInLimiter) failed(username, addr string) {
	u, a := l.limiters(username, addr)
	u.Allow()
	a.Allow()
}

func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

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
	if wait := s.limiter.blocked(req.Username, addr); wait > 0 {
		secs := strconv.Itoa(int(wait.Round(time.Second).Seconds()))
		e := newErr(http.StatusTooManyRequests, "rate_limited", "Too many failed sign-ins. Wait "+secs+" seconds and try again.")
		e.Extra = map[string]any{"retry_after": secs}
		s.writeError(w, r, e)
		return
	}
	acct, err := s.cfg.Accounts.UserByName(r.Context(), req.Username)
	switch {
	case errors.Is(err, events.ErrAccountNotFound):
		CheckPassword(dummyHash(), req.Password)
		s.limiter.failed(req.Username, addr)
		s.writeError(w, r, newErr(http.StatusUnauthorized, "unauthenticated", "The username or password is wrong."))
		return
	case err != nil:
		s.writeError(w, r, err)
		return
	}
	if !CheckPassword(acct.PasswordHash, req.Password) {
		s.limiter.failed(req.Username, addr)
		s.writeError(w, r, newErr(http.StatusUnauthorized, "unauthenticated", "The username or password is wrong."))
		return
	}
	id, expires, err := s.sessions.create(r.Context(), acct)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: id, Path: "/", Expires: expires, HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode,
	})
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
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
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
	if errors.Is(err, events.ErrAccountNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	a := &escalation.Actor{
		Person: escalation.Person{Username: escalation.Username(acct.Username), Name: acct.Name},
		Role:   escalation.Role(acct.Role), CareHomeID: escalation.CareHomeID(acct.CareHomeID),
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
	if a.Role == escalation.RoleConsultant {
		me["on_call"] = a.OnCall
	}
	writeJSON(w, http.StatusOK, me)
}
