package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/nightcall-health/nightcall/escalation/account"
	"github.com/nightcall-health/nightcall/escalation/account/accounttest"
	"github.com/nightcall-health/nightcall/events/sqlite"
)

func TestAccountStoreContract(t *testing.T) {
	accounttest.Run(t, func(t *testing.T) account.Store { return open(t) })
}

// A file made before accounts could be disabled opens, and its accounts
// come back enabled.
func TestAccountsMigrateOlderFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE users (username TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL,
		care_home_id TEXT NOT NULL DEFAULT '', password_hash TEXT NOT NULL, created_at INTEGER NOT NULL);
		INSERT INTO users VALUES ('dr.okafor', 'Dr Okafor', 'consultant', '', 'h', 1)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err := sqlite.Open(context.Background(), sqlite.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a, err := s.UserByName(context.Background(), "dr.okafor")
	if err != nil || a.Disabled || a.PasswordHash != "h" {
		t.Fatalf("old account: %+v, %v", a, err)
	}
	if err := s.SetDisabled(context.Background(), "dr.okafor", true); err != nil {
		t.Fatal(err)
	}
}
