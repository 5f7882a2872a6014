package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/escalation/audit"
	"github.com/nightcall-health/nightcall/events"
	"github.com/nightcall-health/nightcall/events/sqlite"
)

// A restart from snapshots brings the models up on the tail in one read and
// warms the pager up from the streams of the escalations still open, not a
// replay of the whole log through its consumer: the service is at the head
// as it starts, and the pager tracks exactly what a pager that replayed the
// whole log tracks (each open escalation's status, pages, receipts and
// versions; decided and withdrawn ones not at all), and goes on paging.
func TestRestartWarmsThePagerUpFromTheOpenEscalations(t *testing.T) {
	dir := t.TempDir()
	inDir := func(c *serveConfig) { c.DataDir = dir }
	s1 := startServer(t, inDir)
	journeyStep(t, s1, "rc-101") // one decided, one withdrawn
	nurse, okafor := s1.signedIn("night.rose"), s1.signedIn("dr.okafor")
	_ = okafor
	paged := str(nurse.do("POST", "/api/v1/escalations", raiseBody("rc-102")).json(t)["id"])
	accepted := str(nurse.do("POST", "/api/v1/escalations", raiseBody("rc-103")).json(t)["id"])
	var pageID string
	var consultant escalation.Username
	waitFor(t, 10*time.Second, "both paged", func() bool {
		states, _ := s1.app.pager.Tracked()
		n := 0
		for _, st := range states {
			if len(st.Pages) > 0 {
				n++
				if st.EscalationID == escalation.EscalationID(paged) {
					pageID, consultant = st.Pages[0].ID, st.Pages[0].Consultants[0]
				}
			}
		}
		return n == 2
	})
	okafor = s1.signedIn(string(consultant))
	if r := okafor.do("POST", "/api/v1/pages/"+pageID+"/receipts", map[string]string{"state": "received", "device": "phone"}); r.status != http.StatusNoContent {
		t.Fatalf("receipt: %d %s", r.status, r.body)
	}
	if r := okafor.do("POST", "/api/v1/escalations/"+accepted+"/accept", nil); r.status != http.StatusOK {
		t.Fatalf("accept: %d %s", r.status, r.body)
	}
	s1.close()

	// What the next start does, by hand: restore, one catch-up, warm start;
	// beside a pager that replays the whole log.
	store, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(dir, "nightcall.db")})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	head, err := store.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	loc, _ := time.LoadLocation("Europe/London")
	read, am := escalation.NewProjection(loc), audit.NewModel()
	am.Keep(loc, 72*time.Hour)
	var errs []error
	for _, s := range []stateful{{name: escalation.ReadModelSnapshot, p: read}, {name: audit.SnapshotName, p: am}} {
		_, err := restoreFrom(ctx, store, s, head)
		errs = append(errs, err)
	}
	for _, err := range append(errs, catchUp(ctx, store, []model{read, am}, head)...) {
		if err != nil {
			t.Fatal(err)
		}
	}
	warm, err := replayingPager(store, read, head)
	if err != nil {
		t.Fatal(err)
	}
	open, at := read.Open()
	if len(open) != 2 || at != head {
		t.Fatalf("open escalations %v at %d, want the paged and the accepted one at the head %d", open, at, head)
	}
	n, err := warm.WarmStart(ctx, open, at)
	if err != nil {
		t.Fatal(err)
	}
	full, err := replayingPager(store, read, head)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := events.Replay(ctx, store, 0, full.Apply); err != nil {
		t.Fatal(err)
	}
	if n == 0 || n >= int(head)/2 {
		t.Errorf("the warm start applied %d events of %d: want the open escalations' streams only", n, head)
	}
	ws, wp := warm.Tracked()
	fs, fp := full.Tracked()
	if len(fs) != 2 || !reflect.DeepEqual(ws, fs) || !reflect.DeepEqual(wp, fp) {
		t.Errorf("warm start tracks %+v (pages %v),\na full replay %+v (pages %v)", ws, wp, fs, fp)
	}
	if !warm.CaughtUp() || warm.Position() != head {
		t.Errorf("warm pager at %d (caught up %v), head %d", warm.Position(), warm.CaughtUp(), head)
	}
	var received bool
	for _, st := range ws {
		for _, pg := range st.Pages {
			received = received || pg.Received
		}
	}
	if !received {
		t.Error("the receipt before the restart is not in the warm pager's state")
	}
	// A warm start only starts from nothing.
	if _, err := warm.WarmStart(ctx, open, at); err == nil {
		t.Error("a second warm start was taken")
	}
	store.Close()

	// The service does the same as it is built: before any consumer runs,
	// the models and the pager stand at the head, and the open page is
	// pending again for the consultant.
	a, err := newApp(ctx, testServeConfig(dir), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer a.cleanup.release()
	if got := a.pager.Position(); got != head || !a.pager.CaughtUp() {
		t.Fatalf("the pager starts at %d, not the head %d: its consumer would replay the whole log", got, head)
	}
	if r := a.read.Position(); r != head {
		t.Errorf("the read model starts at %d, not the head %d", r, head)
	}
	// The audit model is restored after the start, off the clinical path,
	// and its consumer is held until it is done.
	if au := a.audit.Position(); au != 0 {
		t.Errorf("the audit model was restored (at %d) before the service started", au)
	}
	if err := a.ready(ctx); err == nil || !strings.Contains(err.Error(), "audit model at 0") {
		t.Errorf("/readyz with the audit model still to restore: %v, want not ready until every model is at the head", err)
	}
	if err := a.pagingReady(ctx); err != nil {
		t.Errorf("/readyz/paging with the read model and the pager at the head: %v", err)
	}
	// An event after the snapshot, which only the restore's catch-up can
	// apply (no consumer runs here).
	tail, err := a.store.Append(ctx, "tail-after-the-snapshot", events.AnyVersion, []events.NewEvent{{ID: newID(), Type: "test.noise", RecordedAt: time.Now(), Data: []byte(`{}`)}}, events.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a.restoreAudit(ctx)
	select {
	case <-a.auditDone:
	case <-time.After(10 * time.Second):
		t.Fatal("the audit model's consumer is still held 10 s after its restore")
	}
	if a.audit.Position() != tail[0].Position || a.auditRestoredAt != head {
		t.Errorf("after its restore the audit model is at %d (restored to %d), not the head %d (snapshot at %d)", a.audit.Position(), a.auditRestoredAt, tail[0].Position, head)
	}
	if err := a.ready(ctx); err != nil {
		t.Errorf("not ready with every model and the pager at the head: %v", err)
	}
	var again bool
	for _, p := range a.pager.Pending(consultant) {
		again = again || p.EscalationID == escalation.EscalationID(paged)
	}
	if !again {
		t.Error("the escalation paged before the restart is not pending after it")
	}
}

// After a restart from snapshots the service pages before the audit model
// is back: the read model and the pager stand at the head when the
// listener opens, and the audit model is restored after (restoreAudit),
// its consumer held until then. Meanwhile /readyz and the audit routes say
// 503; once it is done both answer, and the figures count the escalation
// raised while it was restoring.
func TestRestartPagesBeforeTheAuditModelIsRestored(t *testing.T) {
	dir := t.TempDir()
	s1 := startServer(t, func(c *serveConfig) { c.DataDir = dir })
	journeyStep(t, s1, "rc-101")
	figures := func(s *testServer) (int, map[string]any) {
		r := s.signedIn("auditor").do("GET", "/api/v1/audit/admissions-avoided", nil)
		if r.status != http.StatusOK {
			return r.status, r.apiErr(t)
		}
		return r.status, r.json(t)
	}
	_, before := figures(s1)
	s1.close()

	hold := make(chan struct{})
	s2 := launchServer(t, func(c *serveConfig) { c.DataDir, c.auditHold = dir, hold })
	tab := s2.signedIn("dr.okafor").pager("laptop")
	id := str(s2.signedIn("night.rose").do("POST", "/api/v1/escalations", raiseBody("rc-102")).json(t)["id"])
	if page := tab.expect("page", 10*time.Second); page["escalation"].(map[string]any)["id"] != id {
		t.Fatalf("page: %v", page)
	}
	// /readyz says 503 throughout, and names the audit model once the read
	// model has applied the raise's last events (a few ms after the page,
	// which the pager sends first).
	for deadline := time.Now().Add(10 * time.Second); ; {
		resp, err := http.Get(s2.base + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("/readyz with the audit model still to restore: %d %s", resp.StatusCode, body)
		}
		if strings.Contains(string(body), "audit model") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz with the audit model still to restore does not name it: %s", body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if status, e := figures(s2); status != http.StatusServiceUnavailable || e["code"] != "store_unavailable" {
		t.Errorf("audit figures with the audit model still to restore: %d %v", status, e)
	}
	if got := s2.app.audit.Position(); got != 0 {
		t.Errorf("the audit model moved (to %d) while held", got)
	}

	if status := readyStatusOf(t, s2, "/readyz/paging"); status != http.StatusOK {
		t.Errorf("/readyz/paging while the audit model restores: %d (the home would show its number)", status)
	}

	close(hold)
	waitReady(t, s2.base)
	if <-s2.app.auditDone; s2.app.auditRestoredAt <= 0 {
		t.Errorf("the audit model was not restored from its snapshot (%d)", s2.app.auditRestoredAt)
	}
	status, after := figures(s2)
	if status != http.StatusOK || after["escalations"] != before["escalations"].(float64)+1 {
		t.Errorf("audit figures after the restore: %d %v, before the restart %v escalations", status, after["escalations"], before["escalations"])
	}
}

// A stop that cuts the audit model's restore short before its snapshot is
// restored (before the load, or during it) leaves it held: its consumer
// does not start from nothing, the snapshot it was restoring is not saved
// over, and the shutdown does not wait for it. One cut short in the
// catch-up after the restore releases the consumer from where the model
// stands, a position it reflects whole.
func TestAuditRestoreCutShortByTheStopLeavesTheModelHeld(t *testing.T) {
	dir := t.TempDir()
	s1 := startServer(t, func(c *serveConfig) { c.DataDir = dir })
	journeyStep(t, s1, "rc-101")
	s1.close()
	for _, step := range []string{"before", "load", "tail"} {
		t.Run(step, func(t *testing.T) {
			a, err := newApp(context.Background(), testServeConfig(dir), slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			defer a.cleanup.release()
			head, err := a.store.Head(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if step == "tail" { // something after the snapshot to catch up on
				if _, err := a.store.Append(context.Background(), "tail-after-the-snapshot", events.AnyVersion,
					[]events.NewEvent{{ID: newID(), Type: "test.noise", RecordedAt: time.Now(), Data: []byte(`{}`)}}, events.AppendOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if step == "before" {
				cancel()
			}
			a.store = stopAt{Store: a.store.(*sqlite.Store), step: step, cancel: cancel}
			a.restoreAudit(ctx)
			released := false
			select {
			case <-a.auditDone:
				released = true
			default:
			}
			at, known := a.restoredAt(audit.SnapshotName)
			if step == "tail" {
				if !released || !known || at != head || a.audit.Position() != head {
					t.Errorf("cut short in the catch-up: released %v, restored to %d (known %v), at %d; want released at the snapshot's %d",
						released, at, known, a.audit.Position(), head)
				}
				return
			}
			if released || known {
				t.Errorf("cut short %s the load: the consumer released %v, a snapshot could be saved %v", step, released, known)
			}
			start := time.Now()
			wctx, stop := context.WithTimeout(context.Background(), 5*time.Second)
			defer stop()
			if err := a.readModelsAtHead(wctx); err != nil || time.Since(start) > time.Second {
				t.Errorf("the shutdown's wait for the models: %v after %v, want no wait for the held audit model", err, time.Since(start))
			}
		})
	}
}

// stopAt is the embedded store with the service stopping (cancel) as the
// audit model's restore reaches a step: its snapshot's load ("load") or
// the log after it ("tail").
type stopAt struct {
	*sqlite.Store
	step   string
	cancel context.CancelFunc
}

func (s stopAt) LoadSnapshot(ctx context.Context, name string) (events.Snapshot, error) {
	if s.step == "load" && name == audit.SnapshotName {
		s.cancel()
		return events.Snapshot{}, ctx.Err()
	}
	return s.Store.LoadSnapshot(ctx, name)
}

func (s stopAt) ReadAll(ctx context.Context, after int64, limit int) ([]events.Envelope, error) {
	if s.step == "tail" {
		s.cancel()
		return nil, ctx.Err()
	}
	return s.Store.ReadAll(ctx, after, limit)
}

// Without a usable snapshot the read model and the pager replay the log
// through their consumers after the start; until they have, a raise would
// wait behind that replay, and /readyz/paging (the care-home page's
// banner) says so.
func TestPagingNotReadyWhileTheLogIsReplayed(t *testing.T) {
	dir := t.TempDir()
	s1 := startServer(t, func(c *serveConfig) { c.DataDir = dir })
	journeyStep(t, s1, "rc-101")
	s1.close()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(dir, "nightcall.db")})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := store.LoadSnapshot(ctx, escalation.ReadModelSnapshot)
	if err != nil {
		t.Fatal(err)
	}
	snap.Data = snap.Data[:len(snap.Data)/2] // damaged: the log is replayed instead
	if err := store.SaveSnapshot(ctx, snap); err != nil {
		t.Fatal(err)
	}
	store.Close()

	a, err := newApp(ctx, testServeConfig(dir), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer a.cleanup.release()
	// No consumer runs here: the read model and the pager stay at 0.
	rec := httptest.NewRecorder()
	a.server.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz/paging", nil))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "read model at 0") {
		t.Errorf("/readyz/paging with the read model replaying: %d %s", rec.Code, rec.Body)
	}
}
