package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"syscall"
	"time"
	"unsafe"

	"github.com/google/uuid"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/escalation/audit"
	"github.com/nightcall-health/nightcall/escalation/news2"
	"github.com/nightcall-health/nightcall/escalation/paging"
	"github.com/nightcall-health/nightcall/events"
	"github.com/nightcall-health/nightcall/events/sqlite"
)

// seedAuditLog writes about n events from resident number first on:
// residents with escalations raised, accepted and decided, follow-ups and
// admissions, and reads on record. It returns the events written and the
// next resident number. (Appending from several writers at once seeds no
// faster: the store's one writer is CPU-bound on the inserts, not on fsync.)
func seedAuditLog(ctx context.Context, store *sqlite.Store, n, first int) (int, int, error) {
	total, r := 0, first
	for total < n {
		size, k := 1, 0
		for ; k < 60 && total+size < n; k++ {
			size += 4
			if k%3 != 0 { // stay: a follow-up or an admission
				size++
			}
		}
		rid, batch := seedResident(r, k)
		if _, err := store.Append(ctx, escalation.ResidentStream(rid), events.NoStream, batch, events.AppendOptions{}); err != nil {
			return total, r, err
		}
		total += len(batch)
		r++
	}
	return total, r, nil
}

// seedResident is resident number r's stream: admitted, then escs
// escalations raised, accepted, read and decided, a third admitted, the
// rest followed up or admitted later.
func seedResident(r, escs int) (escalation.ResidentID, []events.NewEvent) {
	mk := func(e escalation.Event, at time.Time) events.NewEvent {
		b, _ := json.Marshal(e)
		return events.NewEvent{ID: uuid.NewString(), Type: e.EventType(), RecordedAt: at, Actor: "bench", Data: b}
	}
	start := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	total7 := 7
	risk := news2.RiskHigh
	score := &news2.Result{Total: &total7, Risk: &risk}
	rid := escalation.ResidentID(fmt.Sprintf("r%06d", r))
	home := escalation.CareHomeID(fmt.Sprintf("home-%02d", r%20))
	at := start.Add(time.Duration(r) * 7 * time.Minute)
	batch := []events.NewEvent{mk(&escalation.ResidentAdmitted{ResidentID: rid, CareHomeID: home, Name: "x", SpO2Scale: 1}, at)}
	for k := 0; k < escs; k++ {
		eid := escalation.EscalationID(uuid.NewString())
		t := at.Add(time.Duration(k) * 96 * time.Hour)
		outcome, cf := escalation.OutcomeStay, escalation.CounterfactualED
		if k%3 == 0 {
			outcome = escalation.OutcomeAdmit
		}
		batch = append(batch,
			mk(&escalation.EscalationRaised{EscalationID: eid, CareHomeID: home, NEWS2: score, SBARD: escalation.SBARD{Situation: "s"}}, t),
			mk(&escalation.EscalationAccepted{EscalationID: eid, By: escalation.Person{Username: "dr.okafor"}}, t.Add(90*time.Second)),
			mk(&escalation.EscalationDecided{EscalationID: eid, Outcome: outcome, Counterfactual: cf, DecidedBy: "dr.okafor"}, t.Add(10*time.Minute)),
			mk(&escalation.RecordAccessed{Username: "dr.okafor", Role: "consultant", What: "escalation", ResidentID: rid, EscalationID: eid}, t.Add(5*time.Minute)),
		)
		if outcome == escalation.OutcomeStay {
			if k%4 == 1 {
				batch = append(batch, mk(&escalation.HospitalAdmissionRecorded{At: t.Add(30 * time.Hour), Kind: "admission", Unplanned: true}, t.Add(30*time.Hour)))
			} else {
				batch = append(batch, mk(&escalation.EscalationFollowedUp{EscalationID: eid, Status: "at_home", At: t.Add(80 * time.Hour)}, t.Add(80*time.Hour)))
			}
		}
	}
	return rid, batch
}

// seedOpenEscalations appends n residents, each with a history of decided
// escalations and one more raised and paged, half of them accepted too:
// the escalations a restart's pager warm start reads the streams of.
func seedOpenEscalations(ctx context.Context, store *sqlite.Store, n, first int) (int, int, error) {
	total := 0
	for r := first; r < first+n; r++ {
		rid, batch := seedResident(r, 10)
		home := escalation.CareHomeID(fmt.Sprintf("home-%02d", r%20)) // seedResident's
		eid := escalation.EscalationID(uuid.NewString())
		at := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC).Add(time.Duration(r-first) * time.Second)
		mk := func(e escalation.Event, at time.Time) events.NewEvent {
			b, _ := json.Marshal(e)
			return events.NewEvent{ID: uuid.NewString(), Type: e.EventType(), RecordedAt: at, Actor: "bench", Data: b}
		}
		total7, risk := 7, news2.RiskHigh
		batch = append(batch, mk(&escalation.EscalationRaised{EscalationID: eid, CareHomeID: home,
			NEWS2: &news2.Result{Total: &total7, Risk: &risk}, SBARD: escalation.SBARD{Situation: "s"}}, at))
		if r%2 == 0 {
			batch = append(batch, mk(&escalation.EscalationAccepted{EscalationID: eid, By: escalation.Person{Username: "dr.okafor"}}, at.Add(time.Minute)))
		}
		if _, err := store.Append(ctx, escalation.ResidentStream(rid), events.NoStream, batch, events.AppendOptions{}); err != nil {
			return total, r, err
		}
		page := mk(&escalation.Paged{EscalationID: eid, PageID: uuid.NewString(), Level: 1, Consultants: []escalation.Username{"dr.okafor"}}, at.Add(time.Second))
		if _, err := store.Append(ctx, escalation.PagingStream(eid), events.NoStream, []events.NewEvent{page}, events.AppendOptions{}); err != nil {
			return total, r, err
		}
		total += len(batch) + 1
	}
	return total, first + n, nil
}

// restartOpen is how many escalations are open at the restart scenario's
// restart (about twice the peak's concurrent calls).
const restartOpen = 200

// seededLog is the log the audit, rebuild and restart scenarios share,
// with the read models rebuilt from it and what that took.
type seededLog struct {
	store        *sqlite.Store
	events       int
	nextResident int
	loc          *time.Location
	// rawTook is a sequential read of the whole log applying nothing;
	// readTook and auditTook are rebuilds of the read model and the audit model.
	rawTook, readTook, auditTook time.Duration
	// heapMiB is the Go heap in use with both models built (after a collection).
	heapMiB float64
	read    *escalation.Projection
	audit   *audit.Model
}

func (env *benchEnv) closeLog() {
	if env.log != nil {
		env.log.store.Close()
	}
}

// seeded seeds the log and rebuilds the models once per run.
func (env *benchEnv) seeded(ctx context.Context) (*seededLog, error) {
	if env.log != nil {
		return env.log, nil
	}
	store, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(env.dir, "audit.db")})
	if err != nil {
		return nil, err
	}
	l := &seededLog{store: store}
	env.log = l
	if l.loc, err = time.LoadLocation("Europe/London"); err != nil {
		return nil, err
	}
	t := time.Now()
	head, err := store.Head(ctx)
	if err != nil {
		return nil, err
	}
	switch {
	case reuseLog && head > 0:
		// Resident numbers past the head's are unused: each resident took an event at least.
		l.events, l.nextResident = int(head), int(head)
		fmt.Fprintf(env.out, "   reused the log of %d events in %s\n", l.events, env.dir)
	case head > 0:
		return nil, fmt.Errorf("%s already holds a log of %d events (--reuse-log to use it)", env.dir, head)
	default:
		if l.events, l.nextResident, err = seedAuditLog(ctx, store, env.sizes.AuditEvents, 0); err != nil {
			return nil, err
		}
		fmt.Fprintf(env.out, "   seeded %d events in %.1f s\n", l.events, time.Since(t).Seconds())
	}
	if l.rawTook, err = timeReplay(ctx, store, func(events.Envelope) error { return nil }); err != nil {
		return nil, err
	}
	l.read = escalation.NewProjection(l.loc)
	if l.readTook, err = timeReplay(ctx, store, l.read.Apply); err != nil {
		return nil, fmt.Errorf("read model: %w", err)
	}
	l.audit = audit.NewModel()
	l.audit.Keep(l.loc, 72*time.Hour)
	if l.auditTook, err = timeReplay(ctx, store, l.audit.Apply); err != nil {
		return nil, fmt.Errorf("audit model: %w", err)
	}
	l.heapMiB = float64(memNow().heap) / (1 << 20)
	return l, nil
}

// models rebuilds the read and audit models when a restart dropped them.
func (l *seededLog) models(ctx context.Context) error {
	if l.read != nil && l.audit != nil {
		return nil
	}
	read, am := escalation.NewProjection(l.loc), audit.NewModel()
	am.Keep(l.loc, 72*time.Hour)
	if _, _, err := events.Replay(ctx, l.store, 0, func(e events.Envelope) error { return applyBoth(read, am, e) }); err != nil {
		return err
	}
	l.read, l.audit = read, am
	return nil
}

func timeReplay(ctx context.Context, store events.Store, apply func(events.Envelope) error) (time.Duration, error) {
	t := time.Now()
	_, _, err := events.Replay(ctx, store, 0, apply)
	return time.Since(t), err
}

// benchAuditScenario times the admissions-avoided query over the seeded log:
// the default query (the whole range, 72 h window, as of after everything),
// then a mix of ranges, homes and as-of instants; the baseline is the same
// query by a scan of every escalation (the code before the buckets).
func benchAuditScenario(ctx context.Context, env *benchEnv) ([]benchResult, error) {
	l, err := env.seeded(ctx)
	if err != nil {
		return nil, err
	}
	if err := l.models(ctx); err != nil {
		return nil, err
	}
	q := audit.Query{Window: 72 * time.Hour, WindowText: "72h", AsOf: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), Location: l.loc}
	// timeQueries times n queries, in wall time and in the CPU time of the
	// querying thread (which other sessions' load does not inflate), after
	// a collection, so that one set's garbage is not collected in the next.
	timeQueries := func(n int, figures func(audit.Query) audit.Figures, pick func(i int) audit.Query) (lat, cpu []time.Duration, f audit.Figures) {
		runtime.GC()
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		for i := 0; i < n; i++ {
			q := pick(i)
			c, t := threadCPU(), time.Now()
			f = figures(q)
			lat, cpu = append(lat, time.Since(t)), append(cpu, threadCPU()-c)
		}
		slices.Sort(lat)
		slices.Sort(cpu)
		return lat, cpu, f
	}
	same := func(int) audit.Query { return q }
	fast, fastCPU, f := timeQueries(env.sizes.Queries, l.audit.Figures, same)
	slow, _, g := timeQueries(max(3, env.sizes.Queries/10), l.audit.FiguresByScan, same)
	a, _ := json.Marshal(f)
	b, _ := json.Marshal(g)
	if string(a) != string(b) {
		return nil, fmt.Errorf("the buckets' figures differ from the scan's")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	months := []time.Time{}
	for m := time.Date(2026, 1, 1, 0, 0, 0, 0, l.loc); m.Year() < 2027; m = m.AddDate(0, 1, 0) {
		months = append(months, m)
	}
	mixed := func(int) audit.Query {
		m := q
		switch rng.IntN(4) {
		case 0:
			m.From = months[rng.IntN(6)]
			m.To = m.From.AddDate(0, 1+rng.IntN(5), 0)
		case 1:
			m.CareHome = escalation.CareHomeID(fmt.Sprintf("home-%02d", rng.IntN(20)))
		case 2:
			m.AsOf = months[3+rng.IntN(6)] // as of a past instant: open escalations then
		}
		return m
	}
	mix, mixCPU, _ := timeQueries(env.sizes.Queries, l.audit.Figures, mixed)
	params := map[string]any{"events": l.events, "escalations": f.Escalations, "homes": 20, "window": "72h", "queries": env.sizes.Queries}
	p50 := result("audit", "admissions-avoided query, p50", "ms", ms(pct(fast, 50)), "full scan p50", ms(pct(slow, 50)), "", nil)
	p99 := result("audit", "admissions-avoided query, p99", "ms", ms(pct(fast, 99)), "full scan p99", ms(pct(slow, 99)), "p99 ≤ 20 ms", met(ms(pct(fast, 99)) <= 20))
	mx := result("audit", "mixed ranges, homes and as-of, p99", "ms", ms(pct(mix, 99)), "", 0, "p99 ≤ 20 ms", met(ms(pct(mix, 99)) <= 20))
	mx.Extra = map[string]float64{"p50_ms": ms(pct(mix, 50)), "cpu_p50_ms": ms(pct(mixCPU, 50)), "cpu_p99_ms": ms(pct(mixCPU, 99))}
	p99.Extra = map[string]float64{"cpu_p50_ms": ms(pct(fastCPU, 50)), "cpu_p99_ms": ms(pct(fastCPU, 99))}
	fmt.Fprintf(env.out, "   plain p50 %.2f ms (CPU %.2f), p99 %.2f ms (CPU %.2f); mixed p50 %.2f ms (CPU %.2f), p99 %.2f ms (CPU %.2f)\n",
		ms(pct(fast, 50)), ms(pct(fastCPU, 50)), ms(pct(fast, 99)), ms(pct(fastCPU, 99)),
		ms(pct(mix, 50)), ms(pct(mixCPU, 50)), ms(pct(mix, 99)), ms(pct(mixCPU, 99)))
	for _, r := range []*benchResult{&p50, &p99, &mx} {
		r.Params = params
	}
	return []benchResult{p50, p99, mx}, nil
}

// threadCPU is the CPU time the calling thread has used, to the nanosecond
// (clock_gettime(CLOCK_THREAD_CPUTIME_ID): getrusage counts whole ticks);
// 0 where it cannot be read.
func threadCPU() time.Duration {
	const clockThreadCPUTime = 3
	var ts syscall.Timespec
	if _, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTime, uintptr(unsafe.Pointer(&ts)), 0); errno != 0 {
		return 0
	}
	return time.Duration(ts.Nano())
}

// benchRebuildScenario: rebuilding each read model from the seeded log
// beside a sequential read of the same log applying nothing (both read the
// next page while the current one is applied).
func benchRebuildScenario(ctx context.Context, env *benchEnv) ([]benchResult, error) {
	l, err := env.seeded(ctx)
	if err != nil {
		return nil, err
	}
	// The seeding's rebuilds are the first of rebuildRuns rounds, each a raw
	// read, a read model rebuild and an audit model rebuild, one after the
	// other; each figure is its median (the machine is shared). The models
	// are dropped first: a later scenario rebuilds them (models).
	raws, reads, audits := []time.Duration{l.rawTook}, []time.Duration{l.readTook}, []time.Duration{l.auditTook}
	l.read, l.audit = nil, nil
	for range rebuildRuns - 1 {
		runtime.GC()
		raw, err := timeReplay(ctx, l.store, func(events.Envelope) error { return nil })
		if err != nil {
			return nil, err
		}
		read := escalation.NewProjection(l.loc)
		readTook, err := timeReplay(ctx, l.store, read.Apply)
		if err != nil {
			return nil, err
		}
		runtime.GC()
		am := audit.NewModel()
		am.Keep(l.loc, 72*time.Hour)
		auditTook, err := timeReplay(ctx, l.store, am.Apply)
		if err != nil {
			return nil, err
		}
		raws, reads, audits = append(raws, raw), append(reads, readTook), append(audits, auditTook)
	}
	median := func(ds []time.Duration) time.Duration { ds = slices.Clone(ds); slices.Sort(ds); return ds[len(ds)/2] }
	rate := func(d time.Duration) float64 { return float64(l.events) / d.Seconds() }
	params := map[string]any{"events": l.events, "runs": rebuildRuns}
	raw := median(raws)
	var out []benchResult
	for _, m := range []struct {
		name string
		took []time.Duration
	}{{"read model rebuild", reads}, {"audit model rebuild (buckets kept)", audits}} {
		took := median(m.took)
		r := result("rebuild", m.name, "events/s", rate(took), "raw sequential read", rate(raw), "≥ 0.8× raw", met(rate(took) >= 0.8*rate(raw)))
		r.Params = params
		r.Extra = map[string]float64{"heap_mib_both_models": l.heapMiB}
		for i := range m.took {
			r.Extra[fmt.Sprintf("round_%d_ratio", i+1)] = raws[i].Seconds() / m.took[i].Seconds()
		}
		out = append(out, r)
	}
	return out, nil
}

// rebuildRuns is how many rounds of rebuilds the rebuild scenario times.
const rebuildRuns = 3

// benchRestartScenario: snapshots of both read models are saved, a tail of
// events is appended after them, and a restart restores the snapshots and
// applies the tail; beside it, a restart without snapshots replays the whole
// log into both. The two must end in the same state.
// restartRuns is how many restarts the restart scenario times.
const restartRuns = 3

func benchRestartScenario(ctx context.Context, env *benchEnv) ([]benchResult, error) {
	l, err := env.seeded(ctx)
	if err != nil {
		return nil, err
	}
	saveTook, snapshotMiB, err := l.saveSnapshots(ctx)
	if err != nil {
		return nil, err
	}
	tail := max(1000, l.events/100)
	written, next, err := seedAuditLog(ctx, l.store, tail, l.nextResident)
	if err != nil {
		return nil, err
	}
	opened, next, err := seedOpenEscalations(ctx, l.store, restartOpen, next)
	if err != nil {
		return nil, err
	}
	written += opened
	l.nextResident = next
	head, err := l.store.Head(ctx)
	if err != nil {
		return nil, err
	}
	// One copy of the models at a time, so that 10M events fit in memory;
	// the median of restartRuns restarts (the machine is shared), each
	// after a collection of the last one's models.
	var restores, restarts, warms, servings []time.Duration
	var d1, a1 string
	var tracked []paging.State
	var pages map[string]escalation.EscalationID
	for range restartRuns {
		runtime.GC()
		rs, err := l.restart(ctx, head)
		if err != nil {
			return nil, err
		}
		if d1 != "" && (rs.read != d1 || rs.audit != a1) {
			return nil, fmt.Errorf("two restarts from the same snapshots differ")
		}
		d1, a1, tracked, pages = rs.read, rs.audit, rs.tracked, rs.pages
		restores, restarts, warms = append(restores, rs.restore), append(restarts, rs.total), append(warms, rs.warm)
		servings = append(servings, rs.serving)
	}
	slices.Sort(warms)
	slices.Sort(servings)
	slices.Sort(restores)
	slices.Sort(restarts)
	restoreTook, restartTook := restores[len(restores)/2], restarts[len(restarts)/2]
	runtime.GC()
	t := time.Now()
	full, fullAudit := escalation.NewProjection(l.loc), audit.NewModel()
	fullAudit.Keep(l.loc, 72*time.Hour)
	fullPager, err := replayingPager(l.store, full, head)
	if err != nil {
		return nil, err
	}
	if _, _, err := events.Replay(ctx, l.store, 0, func(e events.Envelope) error {
		if err := applyBoth(full, fullAudit, e); err != nil {
			return err
		}
		return fullPager.Apply(e)
	}); err != nil {
		return nil, err
	}
	fullTook := time.Since(t)
	// A reused log holds the open escalations of earlier runs too.
	ft, fp := fullPager.Tracked()
	if len(ft) < restartOpen {
		return nil, fmt.Errorf("a full replay's pager tracks %d escalations, fewer than the %d seeded open", len(ft), restartOpen)
	}
	if !reflect.DeepEqual(ft, tracked) || !reflect.DeepEqual(fp, pages) {
		return nil, fmt.Errorf("the pager warmed up at the restart differs from a full replay's (%d and %d escalations tracked)", len(tracked), len(ft))
	}
	d2, err := full.Digest()
	if err != nil {
		return nil, err
	}
	if d1 != d2 || a1 != fullAudit.Digest() {
		return nil, fmt.Errorf("a restart from the snapshots differs from a full rebuild")
	}
	r := result("restart", "restart until ready: read model (snapshot + tail) + pager warm start, then the audit model", "s", restartTook.Seconds(),
		"full replay into all three", fullTook.Seconds(), "≤ 2 s at 10M events", nil)
	if l.events+written >= 10_000_000 {
		r.Met = met(restartTook <= 2*time.Second)
	}
	r.Params = map[string]any{"events": l.events + written, "tail": written, "open": restartOpen, "open_in_log": len(tracked)}
	r.Extra = map[string]float64{"restore_s": restoreTook.Seconds(), "save_s": saveTook.Seconds(),
		"snapshot_mib": snapshotMiB, "runs": restartRuns,
		"restart_min_s": restarts[0].Seconds(), "restart_max_s": restarts[len(restarts)-1].Seconds(),
		"pager_warm_s": warms[len(warms)/2].Seconds(), "pages_from_s": servings[len(servings)/2].Seconds()}
	return []benchResult{r}, nil
}

// saveSnapshots saves both models' snapshots and then drops the models (a
// later scenario that needs them rebuilds them: see models).
func (l *seededLog) saveSnapshots(ctx context.Context) (took time.Duration, mib float64, err error) {
	if err := l.models(ctx); err != nil {
		return 0, 0, err
	}
	t := time.Now()
	rs, err := events.SaveSnapshot(ctx, l.store, escalation.ReadModelSnapshot, l.read)
	if err != nil {
		return 0, 0, err
	}
	as, err := events.SaveSnapshot(ctx, l.store, audit.SnapshotName, l.audit)
	if err != nil {
		return 0, 0, err
	}
	took = time.Since(t)
	l.read, l.audit = nil, nil
	return took, float64(len(rs.Data)+len(as.Data)) / (1 << 20), nil
}

// restarted is what one restart took and what it ends with: the models'
// digests and the pager's tracked state. serving is until the service
// would open its listener and page (the read model and the pager at the
// head), total until /readyz would say ready (the audit model too).
type restarted struct {
	restore, warm, serving, total time.Duration
	read, audit                   string
	tracked                       []paging.State
	pages                         map[string]escalation.EscalationID
}

// restart does what the service's start does: it restores the read model
// from its snapshot, brings it up on the tail (catchUp) and warms a pager
// up from its open escalations (Pager.WarmStart), which is when the service
// opens its listener and pages; then the audit model is restored and brought
// up (restoreAudit), which is when /readyz says ready. It returns how long
// each took and what it ends with.
func (l *seededLog) restart(ctx context.Context, head int64) (restarted, error) {
	var rs restarted
	t := time.Now()
	// The collector is off until both have caught up, as in the service.
	resumeGC := pauseGC()
	defer resumeGC()
	rm, am := escalation.NewProjection(l.loc), audit.NewModel()
	am.Keep(l.loc, 72*time.Hour)
	if _, err := restoreFrom(ctx, l.store, stateful{name: escalation.ReadModelSnapshot, p: rm, collectLoad: true}, head); err != nil {
		return rs, err
	}
	rs.restore = time.Since(t)
	if err := errors.Join(catchUp(ctx, l.store, []model{rm}, head)...); err != nil {
		return rs, err
	}
	w := time.Now()
	pager, err := replayingPager(l.store, rm, head)
	if err != nil {
		return rs, err
	}
	open, at := rm.Open()
	if _, err := pager.WarmStart(ctx, open, at); err != nil {
		return rs, err
	}
	rs.warm, rs.serving = time.Since(w), time.Since(t)
	if _, err := restoreFrom(ctx, l.store, stateful{name: audit.SnapshotName, p: am}, head); err != nil {
		return rs, err
	}
	if err := errors.Join(catchUp(ctx, l.store, []model{am}, head)...); err != nil {
		return rs, err
	}
	rs.total = time.Since(t)
	resumeGC()
	if rs.read, err = rm.Digest(); err != nil {
		return rs, err
	}
	rs.audit = am.Digest()
	rs.tracked, rs.pages = pager.Tracked()
	return rs, nil
}

func applyBoth(read *escalation.Projection, am *audit.Model, e events.Envelope) error {
	if err := read.Apply(e); err != nil {
		return err
	}
	return am.Apply(e)
}
