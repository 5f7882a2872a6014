package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/escalation/audit"
	"github.com/nightcall-health/nightcall/events"
	"github.com/nightcall-health/nightcall/events/sqlite"
)

// rebuildTo replays the log up to pos into fresh read models.
func rebuildTo(t *testing.T, store events.Store, pos int64) (*escalation.Projection, *audit.Model) {
	t.Helper()
	loc, _ := time.LoadLocation("Europe/London")
	read, am := escalation.NewProjection(loc), audit.NewModel()
	am.Keep(loc, 72*time.Hour)
	if _, _, err := events.Replay(context.Background(), store, 0, func(e events.Envelope) error {
		if e.Position > pos {
			return nil
		}
		if err := read.Apply(e); err != nil {
			return err
		}
		return am.Apply(e)
	}); err != nil {
		t.Fatal(err)
	}
	return read, am
}

func digest(t *testing.T, p *escalation.Projection) string {
	t.Helper()
	d, err := p.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// journeyStep raises, accepts and decides one escalation and raises and
// withdraws another: escalation, paging and access events.
func journeyStep(t *testing.T, s *testServer, resident string) {
	t.Helper()
	nurse, okafor := s.signedIn("night.rose"), s.signedIn("dr.okafor")
	id := str(nurse.do("POST", "/api/v1/escalations", raiseBody(resident)).json(t)["id"])
	if r := okafor.do("POST", "/api/v1/escalations/"+id+"/accept", nil); r.status != http.StatusOK {
		t.Fatalf("accept: %d %s", r.status, r.body)
	}
	if r := okafor.do("POST", "/api/v1/escalations/"+id+"/decision", map[string]string{
		"outcome": "stay", "counterfactual": "ed", "rationale": "r", "plan": "p"}); r.status != http.StatusCreated {
		t.Fatalf("decision: %d %s", r.status, r.body)
	}
	okafor.do("GET", "/api/v1/escalations/"+id, nil)
	other := str(nurse.do("POST", "/api/v1/escalations", raiseBody("rc-103")).json(t)["id"])
	if r := nurse.do("POST", "/api/v1/escalations/"+other+"/withdraw", map[string]string{"reason": "better"}); r.status != http.StatusOK {
		t.Fatalf("withdraw: %d %s", r.status, r.body)
	}
}

// A service stopped after some work saves snapshots of its read models; at
// the next start it restores them and applies only the log after them, and
// once it has done more work its read models equal a rebuild of the whole
// log, field for field. A snapshot restored by hand and brought up by the
// tail equals the rebuild too.
func TestRestartFromSnapshotsEqualsFullRebuild(t *testing.T) {
	dir := t.TempDir()
	inDir := func(c *serveConfig) { c.DataDir = dir }
	s1 := startServer(t, inDir)
	journeyStep(t, s1, "rc-101")
	s1.close()
	saved := s1.app.read.Position()

	s2 := startServer(t, inDir)
	if got := s2.app.readRestoredAt; got != saved || got == 0 {
		t.Fatalf("the read model was restored to %d, want the snapshot saved at shutdown (%d)", got, saved)
	}
	// The audit model is restored after the start, and its consumer goes
	// on from there.
	<-s2.app.auditDone
	if got := s2.app.auditRestoredAt; got != saved {
		t.Fatalf("the audit model was restored to %d, want the snapshot saved at shutdown (%d)", got, saved)
	}
	// The collector, off while the models restored and caught up, is back
	// on once they have (restoregc.go).
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if !gcPaused() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the collector is still off 10 s after a restart from snapshots")
		}
	}
	journeyStep(t, s2, "rc-102")
	s2.close()
	pos := s2.app.read.Position()
	if pos <= saved {
		t.Fatalf("nothing was applied after the snapshot (%d, %d)", saved, pos)
	}

	store, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(dir, "nightcall.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	read, am := rebuildTo(t, store, pos)
	if digest(t, s2.app.read) != digest(t, read) {
		t.Error("the read model restored from a snapshot and brought up by the log differs from a full rebuild")
	}
	if got := s2.app.audit.Position(); got != pos {
		t.Errorf("the audit model stopped at %d, the read model at %d: the shutdown waits for both to reach the head", got, pos)
	}
	if s2.app.audit.Digest() != am.Digest() {
		t.Error("the audit model restored from a snapshot differs from a full rebuild")
	}
	q := audit.Query{Window: 72 * time.Hour, WindowText: "72h", AsOf: time.Now(), Location: time.UTC}
	if a, b := s2.app.audit.Figures(q), am.Figures(q); a.Escalations != b.Escalations || a.Escalations == 0 || a.Withdrawn != b.Withdrawn {
		t.Errorf("audit figures after a restart %+v, after a rebuild %+v", a.Counts, b.Counts)
	}

	// By hand: the snapshot of a model part-way, restored, plus the tail.
	half, halfAudit := rebuildTo(t, store, saved)
	for _, s := range []stateful{{name: escalation.ReadModelSnapshot, p: half}, {name: audit.SnapshotName, p: halfAudit}} {
		if _, err := events.SaveSnapshot(context.Background(), store, s.name, s.p); err != nil {
			t.Fatal(err)
		}
	}
	loc, _ := time.LoadLocation("Europe/London")
	back, backAudit := escalation.NewProjection(loc), audit.NewModel()
	backAudit.Keep(loc, 72*time.Hour)
	for _, s := range []stateful{{name: escalation.ReadModelSnapshot, p: back}, {name: audit.SnapshotName, p: backAudit}} {
		if got, err := events.RestoreSnapshot(context.Background(), store, s.name, s.p, pos); err != nil || got != saved {
			t.Fatalf("restore %s: %d, %v", s.name, got, err)
		}
	}
	if _, _, err := events.Replay(context.Background(), store, saved, func(e events.Envelope) error {
		if e.Position > pos {
			return nil
		}
		if err := back.Apply(e); err != nil {
			return err
		}
		return backAudit.Apply(e)
	}); err != nil {
		t.Fatal(err)
	}
	if digest(t, back) != digest(t, read) || backAudit.Digest() != am.Digest() {
		t.Error("snapshot plus tail differs from a full rebuild")
	}
	if a, b := backAudit.Figures(q), am.Figures(q); a.Escalations != b.Escalations || a.Stay != b.Stay {
		t.Errorf("figures from snapshot plus tail %+v, from a rebuild %+v", a.Counts, b.Counts)
	}
	// A snapshot past the log's head, or of another shape, is not restored.
	if _, err := events.RestoreSnapshot(context.Background(), store, escalation.ReadModelSnapshot, escalation.NewProjection(loc), saved-1); err == nil {
		t.Error("a snapshot past the head was restored")
	}
	if err := store.SaveSnapshot(context.Background(), events.Snapshot{Name: escalation.ReadModelSnapshot, Position: 1, Schema: "other", Data: []byte{1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := events.RestoreSnapshot(context.Background(), store, escalation.ReadModelSnapshot, escalation.NewProjection(loc), pos); err == nil {
		t.Error("a snapshot of another schema was restored")
	}
}

// A damaged snapshot (cut short, a byte changed) is refused as
// ErrStateCorrupt, and one written by the build before the binary codec
// (same types, state version 2) is refused as stale, never read as the new
// form: at the next start both models are rebuilt from the log, equal to a
// full rebuild, and the snapshots saved at that shutdown restore again.
func TestDamagedOrOldSnapshotIsRebuiltFromTheLog(t *testing.T) {
	dir := t.TempDir()
	inDir := func(c *serveConfig) { c.DataDir = dir }
	s1 := startServer(t, inDir)
	journeyStep(t, s1, "rc-101")
	s1.close()

	ctx := context.Background()
	path := filepath.Join(dir, "nightcall.db")
	store, err := sqlite.Open(ctx, sqlite.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	head, err := store.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	loc, _ := time.LoadLocation("Europe/London")
	read, err := store.LoadSnapshot(ctx, escalation.ReadModelSnapshot)
	if err != nil {
		t.Fatal(err)
	}
	for i, damage := range []func([]byte) []byte{
		func(b []byte) []byte { return b[:len(b)/2] },
		func(b []byte) []byte { return b[:len(b)-1] },
		func(b []byte) []byte { b = bytes.Clone(b); b[0] ^= 0xff; return b },
		func(b []byte) []byte { return append(bytes.Clone(b), 0) },
	} {
		bad := read
		bad.Data = damage(read.Data)
		if err := store.SaveSnapshot(ctx, bad); err != nil {
			t.Fatal(err)
		}
		if _, err := events.RestoreSnapshot(ctx, store, escalation.ReadModelSnapshot, escalation.NewProjection(loc), head); !errors.Is(err, events.ErrStateCorrupt) {
			t.Errorf("damage %d: %v, want ErrStateCorrupt", i, err)
		}
	}
	aud, err := store.LoadSnapshot(ctx, audit.SnapshotName)
	if err != nil {
		t.Fatal(err)
	}
	version, shape, ok := strings.Cut(aud.Schema, "-")
	if !ok || version == "1" {
		t.Fatalf("audit schema %q: the state version must move on from the generic encoding's 1", aud.Schema)
	}
	old := aud
	old.Schema = "1-" + shape // what the build before wrote for the same types
	if err := store.SaveSnapshot(ctx, old); err != nil {
		t.Fatal(err)
	}
	if _, err := events.RestoreSnapshot(ctx, store, audit.SnapshotName, audit.NewModel(), head); !errors.Is(err, events.ErrSnapshotStale) {
		t.Errorf("a snapshot of the old version: %v, want ErrSnapshotStale", err)
	}
	store.Close()

	s2 := startServer(t, inDir)
	if <-s2.app.auditDone; s2.app.readRestoredAt != -1 || s2.app.auditRestoredAt != -1 {
		t.Fatalf("restored from a damaged or old snapshot: read model %d, audit %d", s2.app.readRestoredAt, s2.app.auditRestoredAt)
	}
	type waiter interface {
		WaitFor(ctx context.Context, pos int64) error
	}
	for _, p := range []waiter{s2.app.read, s2.app.audit} {
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		if err := p.WaitFor(wctx, head); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
	s2.close()
	store, err = sqlite.Open(ctx, sqlite.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	pos := s2.app.read.Position()
	rebuilt, rebuiltAudit := rebuildTo(t, store, pos)
	if digest(t, s2.app.read) != digest(t, rebuilt) {
		t.Error("the read model rebuilt after a damaged snapshot differs from a full rebuild")
	}
	if s2.app.audit.Position() != pos || s2.app.audit.Digest() != rebuiltAudit.Digest() {
		t.Error("the audit model rebuilt after an old snapshot differs from a full rebuild")
	}
	for _, s := range []stateful{{name: escalation.ReadModelSnapshot, p: escalation.NewProjection(loc)}, {name: audit.SnapshotName, p: audit.NewModel()}} {
		if got, err := events.RestoreSnapshot(ctx, store, s.name, s.p, pos); err != nil || got == 0 {
			t.Errorf("the snapshot of %s saved after the rebuild: %d, %v", s.name, got, err)
		}
	}
}

// A model with no usable snapshot in the store is saved at the first check,
// while the service runs: a crash before a clean shutdown does not leave
// every later start replaying the whole log. One that has not moved since
// is not saved again.
func TestModelWithoutASnapshotIsSavedAtTheFirstCheck(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, func(c *serveConfig) { c.DataDir, c.snapshotCheck = dir, 200*time.Millisecond })
	journeyStep(t, s, "rc-101")
	ctx := context.Background()
	store, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(dir, "nightcall.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var first events.Snapshot
	waitFor(t, 10*time.Second, "a snapshot of the read model while the service runs", func() bool {
		first, err = store.LoadSnapshot(ctx, escalation.ReadModelSnapshot)
		return err == nil && first.Position > 0
	})
	if _, err := store.LoadSnapshot(ctx, audit.SnapshotName); err != nil {
		t.Errorf("no audit snapshot while the service runs: %v", err)
	}
	time.Sleep(time.Second) // five more checks, fewer than snapshotEvents new events
	again, err := store.LoadSnapshot(ctx, escalation.ReadModelSnapshot)
	if err != nil || !again.SavedAt.Equal(first.SavedAt) {
		t.Errorf("the snapshot was saved again without %d new events: %v then %v (%v)", snapshotEvents, first.SavedAt, again.SavedAt, err)
	}
}
