package main

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/escalation/audit"
	"github.com/nightcall-health/nightcall/escalation/paging"
	"github.com/nightcall-health/nightcall/events"
)

// Projection snapshots: the read model and the audit model are saved to the
// store with the log position they reflect, every snapshotEvents events and
// at shutdown, and restored at start, so that a restart replays only the log
// after them. A snapshot of another build's types, or past the log's head,
// is not restored (the log is replayed instead).
const (
	snapshotEvents = 50_000
	snapshotCheck  = time.Minute
	snapshotSave   = time.Minute // the longest a save may take at shutdown
)

type stateful struct {
	name string
	p    events.Stateful
}

func (a *app) statefuls() []stateful {
	return []stateful{{escalation.ReadModelSnapshot, a.read}, {audit.SnapshotName, a.audit}}
}

// restoreSnapshots restores the read models from the store's snapshots (only
// stores that keep snapshots: the embedded one), before any event is applied,
// each on a core of its own. One that cannot be restored (none saved, another
// build's, or damaged) is rebuilt from the log by its subscriber.
func (a *app) restoreSnapshots(ctx context.Context, head int64) {
	ss, ok := a.store.(events.SnapshotStore)
	if !ok {
		return
	}
	all := a.statefuls()
	pos, took, errs := restoreAll(ctx, ss, all, head)
	for i, s := range all {
		switch err := errs[i]; {
		case errors.Is(err, events.ErrSnapshotNotFound):
		case err != nil:
			a.log.Warn("snapshot not restored; the log is replayed", "projection", s.name, "err", err)
		default:
			if a.restored == nil {
				a.restored = map[string]int64{}
			}
			a.restored[s.name] = pos[i]
			a.log.Info("restored from a snapshot", "projection", s.name, "position", pos[i], "head", head, "took", took[i].Round(time.Millisecond))
		}
	}
}

// restoreAll restores each model from its snapshot at the same time (the
// restart scenario of nightcall bench times this too), returning each one's
// position, time taken and error.
func restoreAll(ctx context.Context, ss events.SnapshotStore, all []stateful, head int64) ([]int64, []time.Duration, []error) {
	pos := make([]int64, len(all))
	errs := make([]error, len(all))
	took := make([]time.Duration, len(all))
	var wg sync.WaitGroup
	for i, s := range all {
		wg.Go(func() {
			t := time.Now()
			pos[i], errs[i] = events.RestoreSnapshot(ctx, ss, s.name, s.p, head)
			took[i] = time.Since(t)
		})
	}
	wg.Wait()
	return pos, took, errs
}

// model is a read model a restart brings up to the log's head.
type model interface {
	Position() int64
	Apply(events.Envelope) error
}

// catchUp brings the models restored from snapshots up to head before their
// consumers start, reading the tail once for both (events.ReplayShared)
// rather than once each through the bus, and returns each one's error. One
// that fails stops where it failed; its consumer goes on from there.
func catchUp(ctx context.Context, store events.Store, ms []model, head int64) []error {
	fs := make([]events.Follower, len(ms))
	for i, m := range ms {
		fs[i] = events.Follower{From: m.Position(), Apply: m.Apply}
	}
	_, errs := events.ReplayShared(ctx, store, head, fs)
	return errs
}

// catchUpRestored runs catchUp on the models restored from snapshots, and
// then warms the pager up from the read model (warmStartPager).
func (a *app) catchUpRestored(ctx context.Context, head int64) {
	var ms []model
	var names []string
	if _, ok := a.restored[escalation.ReadModelSnapshot]; ok {
		ms, names = append(ms, a.read), append(names, escalation.ReadModelSnapshot)
	}
	if _, ok := a.restored[audit.SnapshotName]; ok {
		ms, names = append(ms, a.audit), append(names, audit.SnapshotName)
	}
	if len(ms) == 0 {
		return
	}
	t := time.Now()
	for i, err := range catchUp(ctx, a.store, ms, head) {
		if err != nil {
			a.log.Warn("catching up on the log after the snapshot; the consumer goes on", "projection", names[i], "err", err)
		}
	}
	a.log.Info("caught up on the log after the snapshots", "head", head, "took", time.Since(t).Round(time.Millisecond))
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
	// usable (none saved, damaged, another build's), which the first save
	// replaces even when the model has not moved since the start's replay.
	saved := map[string]int64{}
	for _, s := range a.statefuls() {
		if pos, ok := a.restored[s.name]; ok {
			saved[s.name] = pos
		} else {
			saved[s.name] = -1
		}
	}
	save := func(ctx context.Context, every int64) {
		for _, s := range a.statefuls() {
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
