package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/nightcall-health/nightcall/events"
)

// Accounts live beside the log, not in it: password hashes must be replaceable
// and sessions expire. Who changed an account is recorded as an event by the
// caller; the secret never is.
const accountsSchema = `
CREATE TABLE IF NOT EXISTS users (
	username      TEXT PRIMARY KEY,
	name          TEXT NOT NULL,
	role          TEXT NOT NULL,
	care_home_id  TEXT NOT NULL DEFAULT '',
	password_hash TEXT NOT NULL,
	created_at    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
	id_hash    TEXT PRIMARY KEY,
	username   TEXT NOT NULL,
	expires_at INTEGER NOT NULL
);
`

// CreateUser adds an account; events.ErrAccountExists if the username is taken.
func (s *Store) CreateUser(ctx context.Context, u events.Account) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO users (username, name, role, care_home_id, password_hash, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
		u.Username, u.Name, u.Role, u.CareHomeID, u.PasswordHash, time.Now().UnixNano())
	if isUnique(err, "users.username") {
		return events.ErrAccountExists
	}
	if err != nil {
		return s.fail("create user", "", ctx, err)
	}
	return nil
}

// UserByName returns the account, or events.ErrAccountNotFound.
func (s *Store) UserByName(ctx context.Context, username string) (events.Account, error) {
	u := events.Account{Username: username}
	err := s.r.QueryRowContext(ctx, `SELECT name, role, care_home_id, password_hash FROM users WHERE username = ?`, username).
		Scan(&u.Name, &u.Role, &u.CareHomeID, &u.PasswordHash)
	if errors.Is(err, sql.ErrNoRows) {
		return u, events.ErrAccountNotFound
	}
	if err != nil {
		return u, s.fail("user", "", ctx, err)
	}
	return u, nil
}

// Users lists every account.
func (s *Store) Users(ctx context.Context) ([]events.Account, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT username, name, role, care_home_id, password_hash FROM users ORDER BY username`)
	if err != nil {
		return nil, s.fail("users", "", ctx, err)
	}
	defer rows.Close()
	var out []events.Account
	for rows.Next() {
		var u events.Account
		if err := rows.Scan(&u.Username, &u.Name, &u.Role, &u.CareHomeID, &u.PasswordHash); err != nil {
			return nil, s.fail("users", "", ctx, err)
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// CreateSession stores a session under the hash of its ID.
func (s *Store) CreateSession(ctx context.Context, idHash, username string, expires time.Time) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO sessions (id_hash, username, expires_at) VALUES (?, ?, ?)`, idHash, username, expires.UnixNano())
	if err != nil {
		return s.fail("create session", "", ctx, err)
	}
	// Expired sessions are pruned as new ones arrive.
	_, _ = s.w.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at < ?`, time.Now().UnixNano())
	return nil
}

// Session returns the username and expiry of a live session, or events.ErrAccountNotFound.
func (s *Store) Session(ctx context.Context, idHash string) (string, time.Time, error) {
	var username string
	var exp int64
	err := s.r.QueryRowContext(ctx, `SELECT username, expires_at FROM sessions WHERE id_hash = ?`, idHash).Scan(&username, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return "", time.Time{}, events.ErrAccountNotFound
	}
	if err != nil {
		return "", time.Time{}, s.fail("session", "", ctx, err)
	}
	expires := time.Unix(0, exp)
	if time.Now().After(expires) {
		return "", time.Time{}, events.ErrAccountNotFound
	}
	return username, expires, nil
}

// DeleteSession removes a session.
func (s *Store) DeleteSession(ctx context.Context, idHash string) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM sessions WHERE id_hash = ?`, idHash); err != nil {
		return s.fail("delete session", "", ctx, err)
	}
	return nil
}

var _ events.AccountStore = (*Store)(nil)
