// Package sqlite is Nightcall's embedded event store: one SQLite file (WAL,
// synchronous=FULL) holding the event log, idempotency records, consumer
// checkpoints, the internal message topics and the account tables. The log
// table is itself the durable topic that the Watermill subscriber tails, so an
// append is a publish with no dual write.
package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/nightcall-health/nightcall/events"
)

// Config configures a Store.
type Config struct {
	// Path of the database file. Required. Its directory is created if missing.
	Path string
	// ReadConns is the size of the reader pool. Optional, default 4.
	ReadConns int
	// BusyTimeout is how long a connection waits for a lock. Optional, default 5s.
	BusyTimeout time.Duration
}

func (c *Config) setDefaults() {
	if c.ReadConns <= 0 {
		c.ReadConns = 4
	}
	if c.BusyTimeout <= 0 {
		c.BusyTimeout = 5 * time.Second
	}
}

// Validate lists every problem with c.
func (c Config) Validate() error {
	var errs []error
	if c.Path == "" {
		errs = append(errs, errors.New("sqlite: Path is required"))
	}
	return errors.Join(errs...)
}

// Store is an events.Store on one SQLite file. The single writer connection
// serialises appends, so the version check and the insert can never interleave.
type Store struct {
	w, r *sql.DB
	st   *stmts

	// commits counts the writer's append transactions.
	commits atomic.Int64
	// reqs carries appends to the writer goroutine (write); stop ends it.
	reqs       chan *appendReq
	stop       chan struct{}
	writerDone chan struct{}

	mu        sync.Mutex
	appended  chan struct{}
	published chan struct{}
	closed    bool
}

var _ events.Store = (*Store)(nil)
var _ events.Notifier = (*Store)(nil)

const schema = `
CREATE TABLE IF NOT EXISTS events (
	position       INTEGER PRIMARY KEY AUTOINCREMENT,
	id             TEXT    NOT NULL UNIQUE,
	stream         TEXT    NOT NULL,
	version        INTEGER NOT NULL,
	type           TEXT    NOT NULL,
	recorded_at    INTEGER NOT NULL,
	actor          TEXT    NOT NULL DEFAULT '',
	correlation_id TEXT    NOT NULL DEFAULT '',
	causation_id   TEXT    NOT NULL DEFAULT '',
	data           BLOB    NOT NULL,
	UNIQUE (stream, version)
);
CREATE TABLE IF NOT EXISTS idempotency (
	key          TEXT PRIMARY KEY,
	request_hash TEXT    NOT NULL,
	status       INTEGER NOT NULL,
	body         BLOB    NOT NULL,
	created_at   INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoints (
	group_name TEXT PRIMARY KEY,
	position   INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
	offset     INTEGER PRIMARY KEY AUTOINCREMENT,
	topic      TEXT    NOT NULL,
	uuid       TEXT    NOT NULL,
	payload    BLOB    NOT NULL,
	metadata   TEXT    NOT NULL,
	created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_topic ON messages (topic, offset);
` + accountsSchema

// DSN returns the driver connection string Nightcall uses for path: WAL,
// synchronous=FULL (every commit is fsynced) and a busy timeout.
func DSN(path string, busy time.Duration, immediate bool) string {
	dsn := fmt.Sprintf("file:%s?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(%d)&_pragma=foreign_keys(1)",
		path, busy.Milliseconds())
	if immediate {
		dsn += "&_txlock=immediate"
	}
	return dsn
}

// Open opens (creating if needed) the store at cfg.Path.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Path), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: create data dir: %w", err)
	}
	w, err := sql.Open("sqlite", DSN(cfg.Path, cfg.BusyTimeout, true))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open writer: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	if _, err := w.ExecContext(ctx, schema+snapshotSchema); err != nil {
		_ = w.Close() // the error returned is the one that matters
		return nil, fmt.Errorf("sqlite: create schema: %w", err)
	}
	if err := migrateAccounts(ctx, w); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("sqlite: migrate accounts: %w", err)
	}
	r, err := sql.Open("sqlite", DSN(cfg.Path, cfg.BusyTimeout, false))
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("sqlite: open readers: %w", err)
	}
	r.SetMaxOpenConns(cfg.ReadConns)
	st, err := prepareStmts(ctx, w)
	if err != nil {
		_ = w.Close()
		_ = r.Close()
		return nil, fmt.Errorf("sqlite: prepare: %w", err)
	}
	s := &Store{w: w, r: r, st: st, reqs: make(chan *appendReq), stop: make(chan struct{}), writerDone: make(chan struct{}),
		appended: make(chan struct{}), published: make(chan struct{})}
	go s.write()
	return s, nil
}

// Appended implements events.Notifier.
func (s *Store) Appended() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.appended
}

func (s *Store) notify() {
	s.mu.Lock()
	close(s.appended)
	s.appended = make(chan struct{})
	s.mu.Unlock()
}

// Append implements events.Store. Concurrent appends are group-committed:
// the writer takes every append waiting when it becomes free, applies each in
// its own savepoint (its own version check and idempotency record, so one
// that fails leaves the others) and commits them in one transaction, one
// fsync. Each caller is answered only after that commit is durable.
func (s *Store) Append(ctx context.Context, stream string, expected int64, evs []events.NewEvent, opts events.AppendOptions) ([]events.Envelope, error) {
	if err := events.ValidateAppend(stream, expected, evs); err != nil {
		return nil, err
	}
	req := &appendReq{ctx: ctx, stream: stream, expected: expected, evs: evs, opts: opts, done: make(chan appendResult, 1)}
	select {
	case s.reqs <- req:
	case <-s.stop:
		return nil, s.fail("append", stream, ctx, errClosed)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case res := <-req.done:
		return res.out, res.err
	case <-ctx.Done():
		// The append may still be committed: the caller learns nothing
		// either way, as with any request that runs out of time.
		return nil, ctx.Err()
	}
}

// errClosed is the cause of an append refused because the store is closed.
var errClosed = errors.New("sqlite: store closed")

// Group commit limits: a batch is cut at this many appends or bytes of data.
const (
	maxBatchAppends = 256
	maxBatchBytes   = 8 << 20
)

// appendReq is one caller's append waiting for the writer.
type appendReq struct {
	ctx      context.Context
	stream   string
	expected int64
	evs      []events.NewEvent
	opts     events.AppendOptions
	done     chan appendResult
}

type appendResult struct {
	out []events.Envelope
	err error
}

func (r *appendReq) size() int {
	n := 0
	for _, e := range r.evs {
		n += len(e.Data)
	}
	return n
}

// write is the writer loop: it runs until the store is closed, taking one
// waiting append and every other one waiting behind it, and commits them
// together. The channel is unbuffered, so no append is left in it at close.
func (s *Store) write() {
	defer close(s.writerDone)
	for {
		var first *appendReq
		select {
		case <-s.stop:
			return
		case first = <-s.reqs:
		}
		batch, bytes := []*appendReq{first}, first.size()
	more:
		for len(batch) < maxBatchAppends && bytes < maxBatchBytes {
			select {
			case r := <-s.reqs:
				batch = append(batch, r)
				bytes += r.size()
			default:
				break more
			}
		}
		s.commitBatch(batch)
	}
}

// stmts are the writer's prepared statements.
type stmts struct {
	byID, current, insert, idem    *sql.Stmt
	savepoint, release, rollbackTo *sql.Stmt
}

func prepareStmts(ctx context.Context, db *sql.DB) (*stmts, error) {
	var st stmts
	for _, p := range []struct {
		dst **sql.Stmt
		q   string
	}{
		{&st.byID, `SELECT stream, version FROM events WHERE id = ?`},
		{&st.current, `SELECT COALESCE(MAX(version), 0) FROM events WHERE stream = ?`},
		{&st.insert, `INSERT INTO events (id, stream, version, type, recorded_at, actor, correlation_id, causation_id, data)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING position`},
		{&st.idem, `INSERT INTO idempotency (key, request_hash, status, body, created_at) VALUES (?, ?, ?, ?, ?)`},
		{&st.savepoint, `SAVEPOINT nc_append`},
		{&st.release, `RELEASE nc_append`},
		{&st.rollbackTo, `ROLLBACK TO nc_append`},
	} {
		stmt, err := db.PrepareContext(ctx, p.q)
		if err != nil {
			st.close()
			return nil, err
		}
		*p.dst = stmt
	}
	return &st, nil
}

func (st *stmts) close() {
	for _, stmt := range []*sql.Stmt{st.byID, st.current, st.insert, st.idem, st.savepoint, st.release, st.rollbackTo} {
		if stmt != nil {
			_ = stmt.Close() // the connections close next; nothing to do about a failure here
		}
	}
}

// commitBatch applies every append of batch in one transaction, each inside
// its own savepoint, commits, and only then answers each caller. If the
// transaction cannot be committed, every append in it fails as unavailable.
func (s *Store) commitBatch(batch []*appendReq) {
	// The statements run under a context of their own: one caller giving up
	// must not interrupt a transaction that holds others' appends.
	ctx := context.Background()
	res := make([]appendResult, len(batch))
	failAll := func(err error) {
		for i, r := range batch {
			if res[i].err == nil { // stored in the lost transaction, or not reached
				res[i] = appendResult{err: s.fail("append", r.stream, r.ctx, err)}
			}
		}
	}
	answer := func() {
		for i, r := range batch {
			r.done <- res[i]
		}
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		failAll(err)
		answer()
		return
	}
	defer tx.Rollback()
	single := len(batch) == 1
	stored := 0
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			res[i].err = err // gone before its turn: nothing of it is written
			continue
		}
		if !single {
			if _, err := tx.StmtContext(ctx, s.st.savepoint).ExecContext(ctx); err != nil {
				failAll(err)
				answer()
				return
			}
		}
		out, err := s.appendTx(ctx, tx, r)
		if err != nil {
			res[i].err = err
			if single {
				answer() // the deferred rollback undoes it
				return
			}
			if _, rerr := tx.StmtContext(ctx, s.st.rollbackTo).ExecContext(ctx); rerr != nil {
				// SQLite may have rolled the whole transaction back itself
				// (a full disk, an I/O error): nothing of the batch stands.
				failAll(errors.Join(err, rerr))
				answer()
				return
			}
		} else {
			res[i].out = out
			stored++
		}
		if !single {
			if _, err := tx.StmtContext(ctx, s.st.release).ExecContext(ctx); err != nil {
				failAll(err)
				answer()
				return
			}
		}
	}
	if stored == 0 {
		answer()
		return
	}
	if err := tx.Commit(); err != nil {
		failAll(err)
		answer()
		return
	}
	s.commits.Add(1)
	s.notify()
	answer()
}

// appendTx is one append inside the writer's transaction.
func (s *Store) appendTx(ctx context.Context, tx *sql.Tx, r *appendReq) ([]events.Envelope, error) {
	stream, expected, evs := r.stream, r.expected, r.evs
	fail := func(err error) error { return s.fail("append", stream, r.ctx, err) }

	// Idempotent by event ID: the same events already at the stream's tail.
	var prevStream string
	var prevVersion int64
	switch err := tx.StmtContext(ctx, s.st.byID).QueryRowContext(ctx, evs[0].ID).Scan(&prevStream, &prevVersion); {
	case err == nil:
		return s.replayed(ctx, tx, stream, prevStream, prevVersion, evs)
	case !errors.Is(err, sql.ErrNoRows):
		return nil, fail(err)
	}

	var current int64
	if err := tx.StmtContext(ctx, s.st.current).QueryRowContext(ctx, stream).Scan(&current); err != nil {
		return nil, fail(err)
	}
	if expected != events.AnyVersion && expected != current {
		return nil, &events.VersionConflictError{Stream: stream, Expected: expected, Actual: current}
	}

	now := time.Now().UTC()
	out := make([]events.Envelope, len(evs))
	insert := tx.StmtContext(ctx, s.st.insert)
	for i, e := range evs {
		at := e.RecordedAt
		if at.IsZero() {
			at = now
		}
		at = at.UTC()
		data := e.Data
		if len(data) == 0 {
			data = json.RawMessage(`{}`)
		}
		env := events.Envelope{
			ID: e.ID, Stream: stream, Version: current + int64(i) + 1, Type: e.Type, RecordedAt: at,
			Actor: e.Actor, CorrelationID: e.CorrelationID, CausationID: e.CausationID, Data: data,
		}
		err := insert.QueryRowContext(ctx, env.ID, env.Stream, env.Version, env.Type, at.UnixNano(),
			env.Actor, env.CorrelationID, env.CausationID, []byte(data)).Scan(&env.Position)
		if err != nil {
			if isUnique(err, "events.stream") {
				return nil, &events.VersionConflictError{Stream: stream, Expected: expected, Actual: current}
			}
			if isUnique(err, "events.id") {
				return nil, fmt.Errorf("%w: event id %s appears twice", events.ErrInvalidAppend, e.ID)
			}
			return nil, fail(err)
		}
		out[i] = env
	}
	if rec := r.opts.Idempotency; rec != nil {
		created := rec.CreatedAt
		if created.IsZero() {
			created = now
		}
		_, err := tx.StmtContext(ctx, s.st.idem).ExecContext(ctx, rec.Key, rec.RequestHash, rec.Status, rec.Body, created.UnixNano())
		if err != nil {
			if isUnique(err, "idempotency.key") {
				return nil, events.ErrIdempotencyKeyExists
			}
			return nil, fail(err)
		}
	}
	return out, nil
}

// replayed answers an append whose first event ID is already stored.
func (s *Store) replayed(ctx context.Context, tx *sql.Tx, stream, prevStream string, prevVersion int64, evs []events.NewEvent) ([]events.Envelope, error) {
	if prevStream != stream {
		return nil, fmt.Errorf("%w: event id %s is already in another stream", events.ErrInvalidAppend, evs[0].ID)
	}
	stored, err := loadTx(ctx, tx, stream, prevVersion-1, len(evs))
	if err != nil {
		return nil, s.fail("append", stream, ctx, err)
	}
	if len(stored) != len(evs) {
		return nil, &events.VersionConflictError{Stream: stream, Expected: prevVersion - 1, Actual: prevVersion - 1 + int64(len(stored))}
	}
	for i := range evs {
		if stored[i].ID != evs[i].ID {
			return nil, &events.VersionConflictError{Stream: stream, Expected: prevVersion - 1, Actual: stored[len(stored)-1].Version}
		}
	}
	return stored, nil
}

const selectEnvelope = `SELECT position, id, stream, version, type, recorded_at, actor, correlation_id, causation_id, data FROM events `

type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func scanAll(ctx context.Context, q queryer, query string, args ...any) ([]events.Envelope, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []events.Envelope
	for rows.Next() {
		var e events.Envelope
		var at int64
		var data []byte
		if err := rows.Scan(&e.Position, &e.ID, &e.Stream, &e.Version, &e.Type, &at, &e.Actor, &e.CorrelationID, &e.CausationID, &data); err != nil {
			return nil, err
		}
		e.RecordedAt = time.Unix(0, at).UTC()
		e.Data = data
		out = append(out, e)
	}
	return out, rows.Err()
}

func loadTx(ctx context.Context, q queryer, stream string, after int64, limit int) ([]events.Envelope, error) {
	return scanAll(ctx, q, selectEnvelope+`WHERE stream = ? AND version > ? ORDER BY version LIMIT ?`, stream, after, limit)
}

// Load implements events.Store.
func (s *Store) Load(ctx context.Context, stream string, after int64) ([]events.Envelope, error) {
	out, err := loadTx(ctx, s.r, stream, after, -1)
	if err != nil {
		return nil, s.fail("load", stream, ctx, err)
	}
	if len(out) == 0 {
		if after > 0 {
			// The stream may exist and simply have nothing newer.
			var n int
			if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM events WHERE stream = ? AND version = ?`, stream, after).Scan(&n); err != nil {
				return nil, s.fail("load", stream, ctx, err)
			}
			if n > 0 {
				return nil, nil
			}
		}
		return nil, fmt.Errorf("%w: %s", events.ErrStreamNotFound, stream)
	}
	return out, nil
}

// ReadAll implements events.Store.
func (s *Store) ReadAll(ctx context.Context, after int64, limit int) ([]events.Envelope, error) {
	if limit <= 0 {
		limit = 1000
	}
	out, err := scanAll(ctx, s.r, selectEnvelope+`WHERE position > ? ORDER BY position LIMIT ?`, after, limit)
	if err != nil {
		return nil, s.fail("read all", "", ctx, err)
	}
	return out, nil
}

// Head implements events.Store.
func (s *Store) Head(ctx context.Context) (int64, error) {
	var head int64
	if err := s.r.QueryRowContext(ctx, `SELECT COALESCE(MAX(position), 0) FROM events`).Scan(&head); err != nil {
		return 0, s.fail("head", "", ctx, err)
	}
	return head, nil
}

// Idempotency implements events.Store.
func (s *Store) Idempotency(ctx context.Context, key string) (events.IdempotencyRecord, error) {
	rec := events.IdempotencyRecord{Key: key}
	var created int64
	err := s.r.QueryRowContext(ctx, `SELECT request_hash, status, body, created_at FROM idempotency WHERE key = ?`, key).
		Scan(&rec.RequestHash, &rec.Status, &rec.Body, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return rec, events.ErrIdempotencyNotFound
	}
	if err != nil {
		return rec, s.fail("idempotency", "", ctx, err)
	}
	rec.CreatedAt = time.Unix(0, created).UTC()
	return rec, nil
}

// Checkpoint implements events.Store.
func (s *Store) Checkpoint(ctx context.Context, group string) (int64, error) {
	var pos int64
	err := s.r.QueryRowContext(ctx, `SELECT position FROM checkpoints WHERE group_name = ?`, group).Scan(&pos)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, s.fail("checkpoint", "", ctx, err)
	}
	return pos, nil
}

// SaveCheckpoint implements events.Store.
func (s *Store) SaveCheckpoint(ctx context.Context, group string, position int64) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO checkpoints (group_name, position) VALUES (?, ?)
		ON CONFLICT (group_name) DO UPDATE SET position = excluded.position`, group, position)
	if err != nil {
		return s.fail("save checkpoint", "", ctx, err)
	}
	return nil
}

// Ping implements events.Store: it checks that the writer can reach the file.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.w.PingContext(ctx); err != nil {
		return s.fail("ping", "", ctx, err)
	}
	var one int
	if err := s.w.QueryRowContext(ctx, `SELECT 1 FROM events LIMIT 0`).Scan(&one); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return s.fail("ping", "", ctx, err)
	}
	return nil
}

// Close implements events.Store.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	<-s.writerDone
	s.st.close()
	return errors.Join(s.r.Close(), s.w.Close())
}

// fail wraps an infrastructure error. A cancelled context is reported as such,
// not as an unavailable store.
func (s *Store) fail(op, stream string, ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return &events.StoreError{Op: op, Stream: stream, Err: err}
}

func isUnique(err error, column string) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	code := se.Code()
	return (code == sqlite3.SQLITE_CONSTRAINT_UNIQUE || code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY) &&
		strings.Contains(se.Error(), column)
}
