package web

import (
	"net/http"
	"sync"
	"time"
)

// MaxSocketsPerUser bounds one user's open sockets of one kind on one
// instance: a consultant's pager sockets, a user's call signalling sockets.
// The next one is refused before the upgrade with 429 rate_limited, so a
// leaking or hostile client cannot hold an instance's memory and goroutines.
const MaxSocketsPerUser = 8

// closeSessionEnded is the close code of a socket whose session ended: the
// account was disabled, its password changed, it signed out or timed out.
// A private-use code (4000–4999), so that a client can tell it from a drop
// and send its user to the sign-in page rather than reconnect.
const closeSessionEnded = 4401

// socketSlots holds one kind of socket by user and by the session that
// opened it, for bounding and for closing them all when the session or the
// account is revoked. A slot is taken before the upgrade (so that the bound
// holds under a burst of parallel upgrades) and given its close function
// after it.
type socketSlots struct {
	limit int

	mu     sync.Mutex
	byUser map[string]map[*socketSlot]struct{}
}

// socketSlot is one socket, or one that is being upgraded.
type socketSlot struct {
	set     *socketSlots
	user    string
	session string
	// close ends the socket; nil until attached.
	close func(reason string)
	// ended is the reason it was revoked before it was attached.
	ended string
}

func newSocketSlots(limit int) *socketSlots {
	return &socketSlots{limit: limit, byUser: map[string]map[*socketSlot]struct{}{}}
}

// take reserves a slot for user's socket opened by session; false when
// user already holds limit.
func (s *socketSlots) take(user, session string) (*socketSlot, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.byUser[user]) >= s.limit {
		return nil, false
	}
	if s.byUser[user] == nil {
		s.byUser[user] = map[*socketSlot]struct{}{}
	}
	slot := &socketSlot{set: s, user: user, session: session}
	s.byUser[user][slot] = struct{}{}
	return slot, true
}

// attach gives the slot its socket's close function. A slot revoked while
// its socket was being upgraded closes the socket at once.
func (slot *socketSlot) attach(close func(reason string)) {
	slot.set.mu.Lock()
	ended := slot.ended
	if ended == "" {
		slot.close = close
	}
	slot.set.mu.Unlock()
	if ended != "" {
		close(ended)
	}
}

// release gives the slot back when its socket has ended (or never opened).
func (slot *socketSlot) release() {
	s := slot.set
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byUser[slot.user], slot)
	if len(s.byUser[slot.user]) == 0 {
		delete(s.byUser, slot.user)
	}
}

// closeUser closes every socket of user and returns how many.
func (s *socketSlots) closeUser(user, reason string) int {
	return s.closeWhere(reason, func(slot *socketSlot) bool { return slot.user == user })
}

// closeSession closes every socket that session opened and returns how many.
func (s *socketSlots) closeSession(session, reason string) int {
	if session == "" {
		return 0
	}
	return s.closeWhere(reason, func(slot *socketSlot) bool { return slot.session == session })
}

func (s *socketSlots) closeWhere(reason string, match func(*socketSlot) bool) int {
	var closers []func(string)
	s.mu.Lock()
	for _, slots := range s.byUser {
		for slot := range slots {
			if !match(slot) {
				continue
			}
			if slot.close != nil {
				closers = append(closers, slot.close)
			} else {
				slot.ended = reason
			}
		}
	}
	s.mu.Unlock()
	for _, c := range closers {
		c(reason)
	}
	return len(closers)
}

// count is how many sockets (open or upgrading) user holds.
func (s *socketSlots) count(user string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byUser[user])
}

// closeAtDeadline closes a socket when its session reaches its absolute
// time-out; the returned stop cancels that when the socket ends first.
func closeAtDeadline(deadline time.Time, close func(reason string)) (stop func()) {
	if deadline.IsZero() {
		return func() {}
	}
	t := time.AfterFunc(time.Until(deadline), func() { close("session timed out") })
	return func() { t.Stop() }
}

// signalOwner names whose signalling socket this is, for its bound and its
// revocation: the staff session's user (resolved earlier in this request),
// or else the guest's session. A staff session that ended since it was
// resolved is refused.
func (s *Server) signalOwner(r *http.Request) (user, session string, err error) {
	if h := sessionHashOf(r); h != "" {
		if u, ok := s.sessions.userOf(h); ok {
			return u, h, nil
		}
		if c, err := r.Cookie(GuestCookie); err != nil || c.Value == "" {
			return "", "", errUnauthenticated
		}
	}
	c, err := r.Cookie(GuestCookie)
	if err != nil || c.Value == "" {
		return "", "", errUnauthenticated
	}
	h := hashSessionID(c.Value)
	return guestPrefix + h, h, nil
}
