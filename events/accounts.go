package events

import (
	"context"
	"errors"
	"time"
)

// Account is a user account. Accounts and sessions are kept beside the log,
// not in it: a password hash must be replaceable and sessions expire.
type Account struct {
	Username     string
	Name         string
	Role         string
	CareHomeID   string
	PasswordHash string
}

// AccountStore keeps accounts and sessions. Session IDs are stored hashed.
type AccountStore interface {
	CreateUser(ctx context.Context, a Account) error
	UserByName(ctx context.Context, username string) (Account, error)
	Users(ctx context.Context) ([]Account, error)
	CreateSession(ctx context.Context, idHash, username string, expires time.Time) error
	Session(ctx context.Context, idHash string) (username string, expires time.Time, err error)
	DeleteSession(ctx context.Context, idHash string) error
}

var (
	// ErrAccountNotFound means no such user or live session.
	ErrAccountNotFound = errors.New("events: account not found")
	// ErrAccountExists means the username is taken.
	ErrAccountExists = errors.New("events: account already exists")
)
