package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/escalation/account"
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
CREATE INDEX IF NOT EXISTS sessions_username ON sessions (username);
`

// accountColumns are added to a users table made before they existed.
var accountColumns = []struct{ name, decl string }{
	{"disabled", "INTEGER NOT NULL DEFAULT 0"},
	// care_home_ids: the homes a GP is bound to, comma-separated (home ids
	// are lower-case letters, digits and dashes, so never hold a comma).
	{"care_home_ids", "TEXT NOT NULL DEFAULT ''"},
	// phone: E.164, '' when none.
	{"phone", "TEXT NOT NULL DEFAULT ''"},
}

// migrateAccounts adds the columns an older file lacks.
func migrateAccounts(ctx context.Context, w *sql.DB) error {
	rows, err := w.QueryContext(ctx, `SELECT name FROM pragma_table_info('users')`)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			_ = rows.Close()
			return err
		}
		have[n] = true
	}
	_ = rows.Close() // rows.Err reports what went wrong while reading
	if err := rows.Err(); err != nil {
		return err
	}
	for _, c := range accountColumns {
		if !have[c.name] {
			if _, err := w.ExecContext(ctx, fmt.Sprintf(`ALTER TABLE users ADD COLUMN %s %s`, c.name, c.decl)); err != nil {
				return err
			}
		}
	}
	return nil
}

var _ account.Store = (*Store)(nil)

// CreateUser implements account.Store.
func (s *Store) CreateUser(ctx context.Context, u account.Account) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO users (username, name, role, care_home_id, care_home_ids, phone, password_hash, disabled, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		u.Username, u.Name, u.Role, u.CareHomeID, joinHomes(u.CareHomeIDs), u.Phone, u.PasswordHash, u.Disabled, time.Now().UnixNano())
	if isUnique(err, "users.username") {
		return account.ErrExists
	}
	if err != nil {
		return s.fail("create user", "", ctx, err)
	}
	return nil
}

const selectAccount = `SELECT username, name, role, care_home_id, care_home_ids, phone, password_hash, disabled FROM users `

func joinHomes(ids []escalation.CareHomeID) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = string(id)
	}
	return strings.Join(s, ",")
}

func splitHomes(s string) []escalation.CareHomeID {
	if s == "" {
		return nil
	}
	var out []escalation.CareHomeID
	for _, id := range strings.Split(s, ",") {
		out = append(out, escalation.CareHomeID(id))
	}
	return out
}

func scanAccount(row interface{ Scan(...any) error }) (account.Account, error) {
	var u account.Account
	var homes string
	err := row.Scan(&u.Username, &u.Name, &u.Role, &u.CareHomeID, &homes, &u.Phone, &u.PasswordHash, &u.Disabled)
	u.CareHomeIDs = splitHomes(homes)
	return u, err
}

// UserByName implements account.Store.
func (s *Store) UserByName(ctx context.Context, username escalation.Username) (account.Account, error) {
	u, err := scanAccount(s.r.QueryRowContext(ctx, selectAccount+`WHERE username = ?`, username))
	if errors.Is(err, sql.ErrNoRows) {
		return account.Account{Username: username}, account.ErrNotFound
	}
	if err != nil {
		return account.Account{}, s.fail("user", "", ctx, err)
	}
	return u, nil
}

// Users implements account.Store.
func (s *Store) Users(ctx context.Context) ([]account.Account, error) {
	rows, err := s.r.QueryContext(ctx, selectAccount+`ORDER BY username`)
	if err != nil {
		return nil, s.fail("users", "", ctx, err)
	}
	defer rows.Close()
	var out []account.Account
	for rows.Next() {
		u, err := scanAccount(rows)
		if err != nil {
			return nil, s.fail("users", "", ctx, err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail("users", "", ctx, err)
	}
	return out, nil
}

// changeUser runs update on the account and, when revoke, deletes its
// sessions, in one transaction.
func (s *Store) changeUser(ctx context.Context, op string, username escalation.Username, revoke bool, update string, args ...any) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return s.fail(op, "", ctx, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, update, append(args, username)...)
	if err != nil {
		return s.fail(op, "", ctx, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return s.fail(op, "", ctx, err)
	} else if n == 0 {
		return account.ErrNotFound
	}
	if revoke {
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE username = ?`, username); err != nil {
			return s.fail(op, "", ctx, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return s.fail(op, "", ctx, err)
	}
	return nil
}

// SetDisabled implements account.Store.
func (s *Store) SetDisabled(ctx context.Context, username escalation.Username, disabled bool) error {
	return s.changeUser(ctx, "disable user", username, disabled, `UPDATE users SET disabled = ? WHERE username = ?`, disabled)
}

// SetPasswordHash implements account.Store.
func (s *Store) SetPasswordHash(ctx context.Context, username escalation.Username, hash string) error {
	return s.changeUser(ctx, "set password", username, true, `UPDATE users SET password_hash = ? WHERE username = ?`, hash)
}

// CreateSession implements account.Store.
func (s *Store) CreateSession(ctx context.Context, idHash, subject string, expires time.Time) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO sessions (id_hash, username, expires_at) VALUES (?, ?, ?)`, idHash, subject, expires.UnixNano())
	if err != nil {
		return s.fail("create session", "", ctx, err)
	}
	// Expired sessions are pruned as new ones arrive.
	_, _ = s.w.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at < ?`, time.Now().UnixNano())
	return nil
}

// Session implements account.Store.
func (s *Store) Session(ctx context.Context, idHash string) (string, time.Time, error) {
	var subject string
	var exp int64
	err := s.r.QueryRowContext(ctx, `SELECT username, expires_at FROM sessions WHERE id_hash = ?`, idHash).Scan(&subject, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return "", time.Time{}, account.ErrNotFound
	}
	if err != nil {
		return "", time.Time{}, s.fail("session", "", ctx, err)
	}
	expires := time.Unix(0, exp)
	if !time.Now().Before(expires) {
		return "", time.Time{}, account.ErrNotFound
	}
	return subject, expires, nil
}

// DeleteSession implements account.Store.
func (s *Store) DeleteSession(ctx context.Context, idHash string) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM sessions WHERE id_hash = ?`, idHash); err != nil {
		return s.fail("delete session", "", ctx, err)
	}
	return nil
}

// TouchSession implements account.Store.
func (s *Store) TouchSession(ctx context.Context, idHash string, expires time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE sessions SET expires_at = ? WHERE id_hash = ? AND expires_at > ?`,
		expires.UnixNano(), idHash, time.Now().UnixNano())
	if err != nil {
		return s.fail("touch session", "", ctx, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return s.fail("touch session", "", ctx, err)
	} else if n == 0 {
		return account.ErrNotFound
	}
	return nil
}
