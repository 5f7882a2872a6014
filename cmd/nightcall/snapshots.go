package main

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/escalation/audit"
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
