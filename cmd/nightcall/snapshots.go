package main

import (
	"context"
	"errors"
	"runtime"
	"time"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/escalation/audit"
	"github.com/nightcall-health/nightcall/escalation/paging"
	"github.com/nightcall-health/nightcall/events"
)

// Projection snapshots: the read model and the audit model are saved to the
// store with the log position they reflect, every snapshotEvents events and
// at shutdown, and restored at start (the read model before the listener
// opens, the audit model after: restoreAudit), so that a restart replays
// only the log after them. A snapshot of another build's types, or past
// the log's head, is not restored (the log is replayed instead).
const (
	snapshotEvents = 50_000
	snapshotCheck  = time.Minute
	snapshotSave   = time.Minute // the longest a save may take at shutdown
)

type stateful struct {
	name string
	p    events.Stateful
	// collectLoad: collect the store's copies of the snapshot's parts
	// before the decode, which then reuses their memory. With the
	// collector off while restoring (restoregc.go) they would stay, and
	// the decode's every page would be fresh, which on this VM costs
	// 3.1 s/GiB in a new process (at 10M events the read model's restore
	// took 5.8 s with it, 6.3 s without). Only for the model restored
	// first, when the heap holds little else and the collection takes
	// milliseconds.
	collectLoad bool
}

func (a *app) statefuls() []stateful {
	return []stateful{{name: escalation.ReadModelSnapshot, p: a.read}, {name: audit.SnapshotName, p: a.audit}}
}

// restoreSnapshots restores the read model from its snapshot in the store
// (only stores that keep snapshots: the embedded one), before any event is
// applied. One that cannot be restored (none saved, another build's, or
// damaged) is rebuilt from the log by its subscriber. The audit model is
// restored after the service has started (restoreAudit).
func (a *app) restoreSnapshots(ctx context.Context, head int64) {
	ss, ok := a.store.(events.SnapshotStore)
	if !ok {
		return
	}
	if pos, ok := a.restoreOne(ctx, ss, stateful{name: escalation.ReadModelSnapshot, p: a.read, collectLoad: true}, head); ok {
		a.readRestoredAt = pos
	}
}

// restoreOne restores one model from its snapshot and logs the outcome,
// returning the position it was restored to and whether it was.
func (a *app) restoreOne(ctx context.Context, ss events.SnapshotStore, s stateful, head int64) (int64, bool) {
	t := time.Now()
	pos, err := restoreFrom(ctx, ss, s, head)
	switch {
	case errors.Is(err, events.ErrSnapshotNotFound):
		return 0, false
	case err != nil:
		if ctx.Err() == nil { // not when the service is stopping
			a.log.Warn("snapshot not restored; the log is replayed", "projection", s.name, "err", err)
		}
		return 0, false
	}
	a.log.Info("restored from a snapshot", "projection", s.name, "position", pos, "head", head, "took", time.Since(t).Round(time.Millisecond))
	return pos, true
}

// restoreAudit brings the audit model up once the service has started:
// from its snapshot (on a store that keeps them) and then the log up to the
// head as it is then, in one read; its consumer starts when it is done
// (auditDone). The audit model serves no page and no call, so a restart is
// ready for the night's work (the read model and the pager) without
// waiting for it, at 10M events half of the restore; until it reaches the
// head the audit figures answer 503, as they do while it catches up.
//
// Cut short by the service stopping before the snapshot is restored, it
// leaves auditDone open: the consumer stays held until the router stops,
// and no snapshot of the model is saved over the one it was restoring.
func (a *app) restoreAudit(ctx context.Context) {
	if a.bringUpAudit(ctx) || ctx.Err() == nil {
		close(a.auditDone)
	}
}

// bringUpAudit is restoreAudit's work; it reports whether the audit model
// was restored from its snapshot (and sets auditRestoredAt).
func (a *app) bringUpAudit(ctx context.Context) bool {
	if a.cfg.auditHold != nil {
		select {
		case <-a.cfg.auditHold:
		case <-ctx.Done():
			return false
		}
	}
	ss, ok := a.store.(events.SnapshotStore)
	if !ok {
		return false
	}
	head, err := a.store.Head(ctx)
	if err != nil {
		if ctx.Err() == nil {
			a.log.Warn("audit snapshot not restored; the log is replayed", "err", err)
		}
		return false
	}
	pos, ok := a.restoreOne(ctx, ss, stateful{name: audit.SnapshotName, p: a.audit}, head)
	if !ok {
		return false
	}
	a.auditRestoredAt = pos
	t := time.Now()
	if err := catchUp(ctx, a.store, []model{a.audit}, head)[0]; err != nil {
		if ctx.Err() == nil {
			a.log.Warn("catching up on the log after the snapshot; the consumer goes on", "projection", audit.SnapshotName, "err", err)
		}
		return true
	}
	a.log.Info("caught up on the log after the snapshot", "projection", audit.SnapshotName, "head", head, "took", time.Since(t).Round(time.Millisecond))
	return true
}

// restoredAt is the position a model was restored to from its snapshot at
// start (-1: none was restored), and whether that is known yet: the audit
// model's is known once restoreAudit is done.
func (a *app) restoredAt(name string) (pos int64, known bool) {
	if name == audit.SnapshotName {
		select {
		case <-a.auditDone:
			return a.auditRestoredAt, true
		default:
			return 0, false
		}
	}
	return a.readRestoredAt, true
}

// restoreFrom restores s from its snapshot, as events.RestoreSnapshot does,
// collecting the load's garbage first when s asks for it (the service and
// the bench's restart restore one model at a time: restoreOne).
func restoreFrom(ctx context.Context, ss events.SnapshotStore, s stateful, head int64) (int64, error) {
	snap, err := events.LoadUsableSnapshot(ctx, ss, s.name, s.p, head)
	if err != nil {
		return 0, err
	}
	if s.collectLoad {
		// The heap the models will take, on huge pages (hugeheap.go): the
		// collection frees the allocation that made it with the load's
		// garbage, and the decode fills it.
		growHugeHeap(restoreHeapEstimate(len(snap.Data)))
		runtime.GC()
	}
	if err := s.p.RestoreState(snap.Data); err != nil {
		return 0, err
	}
	return snap.Position, nil
}

// model is a read model a restart brings up to the log's head.
type model interface {
	Position() int64
	Apply(events.Envelope) error
}

// catchUp brings the models restored from snapshots up to head before their
// consumers start, reading the tail once for all of them
// (events.ReplayShared) rather than once each through the bus, and returns
// each one's error. One that fails stops where it failed; its consumer goes
// on from there.
func catchUp(ctx context.Context, store events.Store, ms []model, head int64) []error {
	fs := make([]events.Follower, len(ms))
	for i, m := range ms {
		fs[i] = events.Follower{From: m.Position(), Apply: m.Apply}
	}
	_, errs := events.ReplayShared(ctx, store, head, fs)
	return errs
}

// catchUpRestored runs catchUp on the read model when it was restored from
// its snapshot, and then warms the pager up from it (warmStartPager).
func (a *app) catchUpRestored(ctx context.Context, head int64) {
	if a.readRestoredAt < 0 {
		return
	}
	t := time.Now()
	if err := catchUp(ctx, a.store, []model{a.read}, head)[0]; err != nil {
		a.log.Warn("catching up on the log after the snapshot; the consumer goes on", "projection", escalation.ReadModelSnapshot, "err", err)
	}
	a.log.Info("caught up on the log after the snapshot", "projection", escalation.ReadModelSnapshot, "head", head, "took", time.Since(t).Round(time.Millisecond))
	a.warmStartPager(ctx, head)
}

// warmStartPager brings the pager to head from the streams of the
// escalations still open in the read model (paging.Pager.WarmStart), when
// the read model stands at head, instead of a replay of the whole log by
// its consumer (minutes at 10M events, with new pages waiting behind it).
func (a *app) warmStartPager(ctx context.Context, head int64) {
	open, at := a.read.Open()
	if at != head {
		return
	}
	t := time.Now()
	n, err := a.pager.WarmStart(ctx, open, at)
	if err != nil {
		a.log.Warn("pager warm start; it replays the log instead", "err", err)
		return
	}
	a.log.Info("pager warmed up from the open escalations", "open", len(open), "events", n, "position", at,
		"took", time.Since(t).Round(time.Millisecond))
}

// runSnapshots saves a snapshot of each read model that has moved on by
// snapshotEvents since its last one (or has none usable in the store: at
// the first check, so a crash after a damaged snapshot does not mean a
// full replay at every start), until ctx is done, and then a last one.
func (a *app) runSnapshots(ctx context.Context) {
	ss, ok := a.store.(events.SnapshotStore)
	if !ok {
		return
	}
	// What the store holds now: the snapshot restored at start, or none
	// usable (-1: none saved, damaged, another build's), which the first save
	// replaces even when the model has not moved since the start's replay.
	// A model still restoring (the audit model, after the start) is not
	// saved until it is done.
	saved := map[string]int64{}
	save := func(ctx context.Context, every int64) {
		for _, s := range a.statefuls() {
			if _, ok := saved[s.name]; !ok {
				at, known := a.restoredAt(s.name)
				if !known {
					continue
				}
				saved[s.name] = at
			}
			pos := s.p.Position()
			switch {
			case pos <= 0: // nothing applied: nothing worth saving
				continue
			case saved[s.name] < 0: // none usable in the store: at the first chance
			case pos-saved[s.name] < every:
				continue
			}
			t := time.Now()
			snap, err := events.SaveSnapshot(ctx, ss, s.name, s.p)
			if err != nil {
				a.log.Warn("saving a snapshot", "projection", s.name, "err", err)
				continue
			}
			saved[s.name] = snap.Position
			a.log.Info("snapshot saved", "projection", s.name, "position", snap.Position, "bytes", len(snap.Data), "took", time.Since(t).Round(time.Millisecond))
		}
	}
	every := snapshotCheck
	if a.cfg.snapshotCheck > 0 {
		every = a.cfg.snapshotCheck
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), snapshotSave)
			save(sctx, 1)
			cancel()
			return
		case <-tick.C:
			save(ctx, snapshotEvents)
		}
	}
}

// replayingPager is a pager over store that only replays (no notifiers, no
// timers run), for the bench and tests to compare a warm start with.
func replayingPager(store events.Store, read *escalation.Projection, head int64) (*paging.Pager, error) {
	svc, err := escalation.NewService(escalation.Config{Store: store, Read: read, NewID: newID})
	if err != nil {
		return nil, err
	}
	return paging.New(paging.Config{Store: store, Service: svc, Rota: read.RotaLevelsAt, NewID: newID,
		Policy: paging.Policy{PageTimeout: time.Minute, ReceiptTimeout: 15 * time.Second}}, head)
}
