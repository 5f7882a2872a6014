// Package account is the application layer for user accounts: the rules for
// creating one (validation, a password hash, its creation recorded as an
// event), signing in, disabling and enabling it and changing its password,
// and the Store port that keeps accounts and sessions (implemented by
// events/sqlite and events/redis, held to the contract in accounttest).
//
// Accounts and sessions live beside the log, not in it: a password hash must
// be replaceable and sessions expire. Like the rest of escalation/, this
// package imports only the standard library, escalation and events; the
// password hash is behind the Hasher port (events/argon2id implements it).
package account

import (
	"context"
	"errors"
	"time"

	"github.com/nightcall-health/nightcall/escalation"
)

// Account is a user account as stored. PasswordHash is never shown or logged.
type Account struct {
	Username   escalation.Username
	Name       string
	Role       escalation.Role
	CareHomeID escalation.CareHomeID
	// CareHomeIDs are the homes a GP is bound to (RoleGP only).
	CareHomeIDs []escalation.CareHomeID
	// Phone is the person's number in E.164 form (+447700900123), optional:
	// the page webhook hands a consultant's to the switchboard or SMS gateway.
	Phone        string
	PasswordHash string
	// Disabled accounts cannot sign in and have no sessions.
	Disabled bool
}

// Store keeps accounts and sessions. Session IDs are stored hashed; a
// session's subject is the username it signs in (or a guest token the caller
// makes). Implementations must be safe for concurrent use.
type Store interface {
	// CreateUser adds an account; ErrExists if the username is taken.
	CreateUser(ctx context.Context, a Account) error
	// UserByName returns the account, or ErrNotFound.
	UserByName(ctx context.Context, username escalation.Username) (Account, error)
	// Users lists every account, ordered by username.
	Users(ctx context.Context) ([]Account, error)
	// SetDisabled disables or enables an account; ErrNotFound if there is
	// none. Disabling deletes every session of the account in the same step.
	SetDisabled(ctx context.Context, username escalation.Username, disabled bool) error
	// SetPasswordHash replaces an account's hash and deletes every session
	// of the account in the same step; ErrNotFound if there is none.
	SetPasswordHash(ctx context.Context, username escalation.Username, hash string) error
	// CreateSession stores a session under the hash of its ID until expires.
	CreateSession(ctx context.Context, idHash, subject string, expires time.Time) error
	// Session returns the subject and expiry of a live session, or ErrNotFound
	// (also once it has expired).
	Session(ctx context.Context, idHash string) (subject string, expires time.Time, err error)
	// DeleteSession removes a session; removing none is not an error.
	DeleteSession(ctx context.Context, idHash string) error
	// TouchSession moves a live session's expiry to expires (an idle
	// time-out sliding forward); ErrNotFound when the session is not live.
	// It never brings back a session that was deleted, revoked or expired.
	TouchSession(ctx context.Context, idHash string, expires time.Time) error
}

var (
	// ErrNotFound means no such account or live session.
	ErrNotFound = errors.New("account: not found")
	// ErrExists means the username is taken.
	ErrExists = errors.New("account: already exists")
	// ErrBadCredentials means a sign-in failed: no such account, the wrong
	// password, or a disabled account (callers cannot tell which, on purpose).
	ErrBadCredentials = errors.New("account: the username or password is wrong")
)
