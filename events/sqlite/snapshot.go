package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/nightcall-health/nightcall/events"
)

// Snapshots are kept in parts of at most snapshotPart bytes (SQLite's
// largest value is a little under 1 GB; a part of a few MiB keeps each row
// cheap to write and read).
const snapshotPart = 8 << 20

const snapshotSchema = `
CREATE TABLE IF NOT EXISTS snapshots (
	name     TEXT PRIMARY KEY,
	position INTEGER NOT NULL,
	schema   TEXT    NOT NULL,
	parts    INTEGER NOT NULL,
	bytes    INTEGER NOT NULL,
	saved_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS snapshot_parts (
	name TEXT    NOT NULL,
	part INTEGER NOT NULL,
	data BLOB    NOT NULL,
	PRIMARY KEY (name, part)
);
`

var _ events.SnapshotStore = (*Store)(nil)

// SaveSnapshot implements events.SnapshotStore: the old snapshot is replaced
// in one transaction.
func (s *Store) SaveSnapshot(ctx context.Context, snap events.Snapshot) error {
	if snap.SavedAt.IsZero() {
		snap.SavedAt = time.Now()
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return s.fail("save snapshot", snap.Name, ctx, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM snapshot_parts WHERE name = ?`, snap.Name); err != nil {
		return s.fail("save snapshot", snap.Name, ctx, err)
	}
	parts := 0
	for off := 0; off < len(snap.Data) || parts == 0; off += snapshotPart {
		end := min(off+snapshotPart, len(snap.Data))
		if _, err := tx.ExecContext(ctx, `INSERT INTO snapshot_parts (name, part, data) VALUES (?, ?, ?)`, snap.Name, parts, snap.Data[off:end]); err != nil {
			return s.fail("save snapshot", snap.Name, ctx, err)
		}
		parts++
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO snapshots (name, position, schema, parts, bytes, saved_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET position = excluded.position, schema = excluded.schema, parts = excluded.parts,
		bytes = excluded.bytes, saved_at = excluded.saved_at`,
		snap.Name, snap.Position, snap.Schema, parts, len(snap.Data), snap.SavedAt.UnixNano()); err != nil {
		return s.fail("save snapshot", snap.Name, ctx, err)
	}
	if err := tx.Commit(); err != nil {
		return s.fail("save snapshot", snap.Name, ctx, err)
	}
	return nil
}

// LoadSnapshot implements events.SnapshotStore.
func (s *Store) LoadSnapshot(ctx context.Context, name string) (events.Snapshot, error) {
	snap := events.Snapshot{Name: name}
	var parts, size int
	var saved int64
	// One read transaction, so the header and the parts are of one save.
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return snap, s.fail("load snapshot", name, ctx, err)
	}
	defer tx.Rollback()
	err = tx.QueryRowContext(ctx, `SELECT position, schema, parts, bytes, saved_at FROM snapshots WHERE name = ?`, name).
		Scan(&snap.Position, &snap.Schema, &parts, &size, &saved)
	if errors.Is(err, sql.ErrNoRows) {
		return snap, events.ErrSnapshotNotFound
	}
	if err != nil {
		return snap, s.fail("load snapshot", name, ctx, err)
	}
	snap.SavedAt = time.Unix(0, saved).UTC()
	rows, err := tx.QueryContext(ctx, `SELECT part, data FROM snapshot_parts WHERE name = ? ORDER BY part`, name)
	if err != nil {
		return snap, s.fail("load snapshot", name, ctx, err)
	}
	defer rows.Close()
	snap.Data = make([]byte, 0, size)
	n := 0
	for rows.Next() {
		var part int
		var data sql.RawBytes // appended below, so not copied twice
		if err := rows.Scan(&part, &data); err != nil {
			return snap, s.fail("load snapshot", name, ctx, err)
		}
		if part != n {
			return snap, s.fail("load snapshot", name, ctx, errors.New("a part is missing"))
		}
		snap.Data = append(snap.Data, data...)
		n++
	}
	if err := rows.Err(); err != nil {
		return snap, s.fail("load snapshot", name, ctx, err)
	}
	if n != parts || len(snap.Data) != size {
		return snap, s.fail("load snapshot", name, ctx, errors.New("the parts do not add up"))
	}
	return snap, nil
}
