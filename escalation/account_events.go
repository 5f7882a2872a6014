package escalation

import (
	"context"
	"time"

	"github.com/nightcall-health/nightcall/events"
)

// Account lifecycle events, on stream user-{username} beside user.created.
// The account store changes first (it is what every request checks); these
// facts then tell every instance, through its log consumer, to drop what it
// holds for the account or session: cached sessions and open sockets. They
// never carry a secret: a revoked session is named by the hash it was stored
// under, which is worthless once the session is gone.

// Account event type names.
const (
	TypeUserDisabled        = "user.disabled"
	TypeUserEnabled         = "user.enabled"
	TypeUserPasswordChanged = "user.password_changed"
	TypeSessionRevoked      = "session.revoked"
)

// UserDisabled: the account was disabled and every session of it revoked.
type UserDisabled struct {
	Username Username `json:"username"`
}

// UserEnabled: a disabled account may sign in again.
type UserEnabled struct {
	Username Username `json:"username"`
}

// UserPasswordChanged: the account's password was replaced and every
// session of it revoked.
type UserPasswordChanged struct {
	Username Username `json:"username"`
}

// SessionRevokedReason says why one session ended early.
type SessionRevokedReason string

// SignedOut is a session ended by its user.
const SignedOut SessionRevokedReason = "signed_out"

// SessionRevoked: one session of the account ended before its time-out.
type SessionRevoked struct {
	Username Username `json:"username"`
	// SessionHash is the hash the session was stored under.
	SessionHash string               `json:"session_hash"`
	Reason      SessionRevokedReason `json:"reason"`
}

// EventType is the stable name of the event.
func (UserDisabled) EventType() string { return TypeUserDisabled }

// EventType is the stable name of the event.
func (UserEnabled) EventType() string { return TypeUserEnabled }

// EventType is the stable name of the event.
func (UserPasswordChanged) EventType() string { return TypeUserPasswordChanged }

// EventType is the stable name of the event.
func (SessionRevoked) EventType() string { return TypeSessionRevoked }

func (e UserDisabled) accountOf() Username        { return e.Username }
func (e UserEnabled) accountOf() Username         { return e.Username }
func (e UserPasswordChanged) accountOf() Username { return e.Username }
func (e SessionRevoked) accountOf() Username      { return e.Username }

func init() {
	register(
		func() Event { return &UserDisabled{} },
		func() Event { return &UserEnabled{} },
		func() Event { return &UserPasswordChanged{} },
		func() Event { return &SessionRevoked{} },
	)
}

// AccountEvent is one of the account lifecycle events above.
type AccountEvent interface {
	Event
	accountOf() Username
}

// IsAccountEventType reports whether name is an account lifecycle event,
// so that a consumer can skip every other event without decoding it.
func IsAccountEventType(name string) bool {
	switch name {
	case TypeUserDisabled, TypeUserEnabled, TypeUserPasswordChanged, TypeSessionRevoked:
		return true
	}
	return false
}

// RecordAccountEvent puts an account lifecycle fact on the user's stream,
// with meta's idempotency record for result (the command's response) in the
// same append. It returns the event's global position.
func (s *Service) RecordAccountEvent(ctx context.Context, meta Meta, e AccountEvent, result any) (int64, error) {
	opts, err := meta.appendOptions(result)
	if err != nil {
		return 0, err
	}
	stored, err := s.repo.append(ctx, UserStream(e.accountOf()), events.AnyVersion, meta.Actor.Username, meta.CorrelationID,
		[]pendingEvent{{event: e, at: s.now()}}, opts)
	if err != nil {
		return 0, err
	}
	return stored[len(stored)-1].Position, nil
}

// now is the service clock.
func (s *Service) now() time.Time { return s.cfg.Now() }
