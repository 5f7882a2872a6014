package escalation

import (
	"context"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nightcall-health/nightcall/events"
)

// Projection is the in-memory read model: every resident and escalation (as
// views, folded by the read side's apply, never the write aggregate), the
// care homes and the rota, as of a position in the global log. Its
// checkpoint lives with its data, so a redelivered event (at-least-once) is
// recognised by position and changes nothing.
type Projection struct {
	mu        sync.RWMutex
	pos       int64
	residents map[ResidentID]*ResidentView
	escIndex  map[EscalationID]ResidentID
	homes     map[CareHomeID]CareHome
	rota      Rota
	rotaLog   []rotaVersion
	// Derived from residents (kept out of the snapshot and the digest), so
	// that a list visits what it may show rather than every resident:
	// openRes holds the residents with an open escalation; byHome the
	// residents ever of each care home (as residents or by an escalation
	// raised there), never removed, so a resident who moved is still found
	// by the home its old escalations name.
	openRes map[ResidentID]struct{}
	byHome  map[CareHomeID]map[ResidentID]struct{}
	loc     *time.Location
	// at is the applied position, for WaitFor.
	at events.PositionWaiter
	// watches are the channels WatchStreams handed out, by stream; watching
	// counts them, so Apply looks them up only when there are some.
	watchMu  sync.Mutex
	watches  map[string][]*streamWatch
	watching atomic.Int64
}

// streamWatch is one WatchStreams call: its channel is closed once, by the
// first event applied on any of its streams.
type streamWatch struct {
	ch   chan struct{}
	once sync.Once
}

// NewProjection returns an empty read model at position 0. loc is the
// rota's time zone.
func NewProjection(loc *time.Location) *Projection {
	return &Projection{
		loc:       loc,
		residents: map[ResidentID]*ResidentView{},
		escIndex:  map[EscalationID]ResidentID{},
		homes:     map[CareHomeID]CareHome{},
		openRes:   map[ResidentID]struct{}{},
		byHome:    map[CareHomeID]map[ResidentID]struct{}{},
	}
}

// Position is the global position of the last event applied.
func (p *Projection) Position() int64 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.pos
}

// Apply applies one event of the global log. Events at or before the
// checkpoint are ignored.
func (p *Projection) Apply(env events.Envelope) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if env.Position <= p.pos {
		return nil
	}
	switch {
	case strings.HasPrefix(env.Stream, "resident-"):
		id := ResidentID(residentIDFromStream(env.Stream))
		r := p.residents[id]
		if r == nil {
			r = &ResidentView{}
			p.residents[id] = r
		}
		ev, err := Decode(env)
		if err != nil {
			return err
		}
		home := r.CareHomeID
		if ev != nil {
			r.apply(ev, env.RecordedAt)
		}
		if r.CareHomeID != home {
			p.inHome(r.CareHomeID, id)
		}
		if e, ok := ev.(*EscalationRaised); ok {
			p.escIndex[e.EscalationID] = id
			if e.CareHomeID != r.CareHomeID {
				p.inHome(e.CareHomeID, id)
			}
		}
		p.markOpen(r, id)
	case strings.HasPrefix(env.Stream, "carehome-"):
		ev, err := Decode(env)
		if err != nil {
			return err
		}
		id := CareHomeID(strings.TrimPrefix(env.Stream, "carehome-"))
		h := p.homes[id]
		h.apply(ev)
		p.homes[id] = h
	case IsPagingStream(env.Stream):
		ev, err := Decode(env)
		if err != nil {
			return err
		}
		// The stream's name carries the escalation (PagingStream), so the
		// event is decoded once.
		eid := EscalationID(strings.TrimSuffix(strings.TrimPrefix(env.Stream, "escalation-"), "-paging"))
		if r := p.residents[p.escIndex[eid]]; r != nil && ev != nil {
			if esc := r.escalation(eid); esc != nil {
				esc.applyPaging(ev, env.RecordedAt)
			}
		}
	case env.Stream == RotaStream():
		ev, err := Decode(env)
		if err != nil {
			return err
		}
		p.rota.apply(ev)
		p.rotaLog = append(p.rotaLog, rotaVersion{from: env.RecordedAt, rota: p.rota.clone()})
	}
	p.pos = env.Position
	p.at.Advance(env.Position)
	if p.watching.Load() > 0 {
		p.wake(env.Stream)
	}
	return nil
}

// WatchStreams returns a channel closed when the projection next applies an
// event on one of streams, and the function that stops watching (call it
// when done waiting, woken or not). A long poll waits on it for a change to
// what it shows rather than on every event of the log.
func (p *Projection) WatchStreams(streams ...string) (<-chan struct{}, func()) {
	w := &streamWatch{ch: make(chan struct{})}
	p.watchMu.Lock()
	if p.watches == nil {
		p.watches = map[string][]*streamWatch{}
	}
	for _, st := range streams {
		p.watches[st] = append(p.watches[st], w)
	}
	p.watching.Add(int64(len(streams)))
	p.watchMu.Unlock()
	var stop sync.Once
	return w.ch, func() {
		stop.Do(func() {
			p.watchMu.Lock()
			defer p.watchMu.Unlock()
			for _, st := range streams {
				if ws := p.watches[st]; slices.Contains(ws, w) {
					p.watches[st] = slices.DeleteFunc(ws, func(x *streamWatch) bool { return x == w })
					if len(p.watches[st]) == 0 {
						delete(p.watches, st)
					}
					p.watching.Add(-1)
				}
			}
		})
	}
}

// wake closes the channels watching stream and forgets them.
func (p *Projection) wake(stream string) {
	p.watchMu.Lock()
	defer p.watchMu.Unlock()
	for _, w := range p.watches[stream] {
		w.once.Do(func() { close(w.ch) })
	}
	p.watching.Add(-int64(len(p.watches[stream])))
	delete(p.watches, stream)
}

// WaitFor blocks until the projection has applied position pos.
func (p *Projection) WaitFor(ctx context.Context, pos int64) error {
	return p.at.Wait(ctx, pos)
}

// Changed returns the applied position and a channel closed when the
// projection applies a later event.
func (p *Projection) Changed() (int64, <-chan struct{}) { return p.at.Changed() }

// ResidentOf returns the resident an escalation belongs to.
func (p *Projection) ResidentOf(id EscalationID) (ResidentID, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	rid, ok := p.escIndex[id]
	return rid, ok
}

// Home returns a care home (zero if unknown).
func (p *Projection) Home(id CareHomeID) CareHome {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.homes[id]
}

// Homes returns every care home, by ID.
func (p *Projection) Homes() []CareHome {
	p.mu.RLock()
	defer p.mu.RUnlock()
	out := make([]CareHome, 0, len(p.homes))
	for _, h := range p.homes {
		out = append(out, h)
	}
	slices.SortFunc(out, func(a, b CareHome) int { return strings.Compare(string(a.ID), string(b.ID)) })
	return out
}

type rotaVersion struct {
	from time.Time
	rota Rota
}

// RotaLevelsAt returns the consultants on call at t, level by level, by the
// rota as it stood at t: a past instant is answered by the rota then in force.
func (p *Projection) RotaLevelsAt(t time.Time) [][]Username {
	p.mu.RLock()
	defer p.mu.RUnlock()
	for i := len(p.rotaLog) - 1; i >= 0; i-- {
		if !p.rotaLog[i].from.After(t) {
			return p.rotaLog[i].rota.LevelsAt(t, p.loc)
		}
	}
	if len(p.rotaLog) > 0 {
		return nil // before the first rota was recorded nobody was on call
	}
	return p.rota.LevelsAt(t, p.loc)
}

// Rota returns a copy of the rota.
func (p *Projection) Rota() Rota {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.rota.clone()
}

// OnCall reports whether username is on any rota level now.
func (p *Projection) OnCall(username Username) bool {
	for _, level := range p.RotaLevelsAt(time.Now()) {
		if slices.Contains(level, username) {
			return true
		}
	}
	return false
}

// inHome records that resident id is (or was) of care home h.
func (p *Projection) inHome(h CareHomeID, id ResidentID) {
	if h == "" {
		return
	}
	m := p.byHome[h]
	if m == nil {
		m = map[ResidentID]struct{}{}
		p.byHome[h] = m
	}
	m[id] = struct{}{}
}

// markOpen keeps openRes true of r after an event applied to it.
func (p *Projection) markOpen(r *ResidentView, id ResidentID) {
	// Scanned from the newest: an open escalation is nearly always the last.
	for i := len(r.Escalations) - 1; i >= 0; i-- {
		if r.Escalations[i].Status.Open() {
			p.openRes[id] = struct{}{}
			return
		}
	}
	delete(p.openRes, id)
}

// reindex builds the derived indexes from the residents (after a restore).
func (p *Projection) reindex() {
	p.openRes = map[ResidentID]struct{}{}
	p.byHome = map[CareHomeID]map[ResidentID]struct{}{}
	for id, r := range p.residents {
		p.inHome(r.CareHomeID, id)
		for i := range r.Escalations {
			if h := r.Escalations[i].CareHomeID; h != r.CareHomeID {
				p.inHome(h, id)
			}
		}
		p.markOpen(r, id)
	}
}

// Selection narrows the residents EscalationsWhere and ResidentsWhere
// visit. Open: only those with an open escalation (paging, unanswered or
// accepted). Home: only those ever of that care home, as a resident or by an
// escalation raised there. The keep function still decides; a selection
// only spares visiting what it could never keep.
type Selection struct {
	Open bool
	Home CareHomeID
}

// visit calls f with each resident sel may hold, under the read lock.
func (p *Projection) visit(sel Selection, f func(*ResidentView)) {
	switch {
	case sel.Open:
		for id := range p.openRes {
			if r := p.residents[id]; r != nil && (sel.Home == "" || p.wasOf(sel.Home, id)) {
				f(r)
			}
		}
	case sel.Home != "":
		for id := range p.byHome[sel.Home] {
			if r := p.residents[id]; r != nil {
				f(r)
			}
		}
	default:
		for _, r := range p.residents {
			f(r)
		}
	}
}

func (p *Projection) wasOf(h CareHomeID, id ResidentID) bool {
	_, ok := p.byHome[h][id]
	return ok
}

// EscalationsWhere returns copies of the escalations keep accepts, among
// the residents sel selects, newest first. Only those are copied: keep sees
// the projection's own escalation, under its read lock, and must neither
// change nor keep it, nor call the projection (a second read lock behind a
// waiting writer deadlocks).
func (p *Projection) EscalationsWhere(sel Selection, keep func(*EscalationView) bool) []*EscalationView {
	out, _ := p.EscalationsPage(sel, keep, Page{})
	return out
}

// EscalationKey places an escalation in a list's order: newest first, then
// by ID (the order is total, so a page ends at one place).
type EscalationKey struct {
	RaisedAt time.Time
	ID       EscalationID
}

// KeyOf is e's place in a list.
func KeyOf(e *EscalationView) EscalationKey { return EscalationKey{RaisedAt: e.RaisedAt, ID: e.ID} }

// compare orders keys as a list does: negative when k comes before o.
func (k EscalationKey) compare(o EscalationKey) int {
	if c := o.RaisedAt.Compare(k.RaisedAt); c != 0 {
		return c
	}
	return strings.Compare(string(o.ID), string(k.ID))
}

// Page bounds a list: at most Limit escalations (0: all), only those after
// After in the list's order (nil: from the start).
type Page struct {
	Limit int
	After *EscalationKey
}

// EscalationsPage is EscalationsWhere bounded by pg, and whether more
// follow the page. Only the page's escalations are copied; a page of a list
// of M takes O(M log Limit) under the read lock, not a sort of all M.
func (p *Projection) EscalationsPage(sel Selection, keep func(*EscalationView) bool, pg Page) ([]*EscalationView, bool) {
	p.mu.RLock()
	page := firstOf[*EscalationView]{limit: pg.Limit, before: func(a, b *EscalationView) bool { return KeyOf(a).compare(KeyOf(b)) < 0 }}
	p.visit(sel, func(r *ResidentView) {
		for i := range r.Escalations {
			e := &r.Escalations[i]
			if (sel.Open && !e.Status.Open()) || (pg.After != nil && KeyOf(e).compare(*pg.After) <= 0) || !keep(e) {
				continue
			}
			page.add(e)
		}
	})
	refs, more := page.h, page.more
	var out []*EscalationView
	for _, e := range refs {
		c := e.clone()
		out = append(out, &c)
	}
	p.mu.RUnlock()
	slices.SortFunc(out, func(a, b *EscalationView) int { return KeyOf(a).compare(KeyOf(b)) })
	return out, more
}

// firstOf keeps the first limit values added, in before's order (all of
// them when limit ≤ 0), and whether any were left out, in O(log limit) an
// add: h is a heap whose root is the last of those kept, replaced by a value
// that comes before it.
type firstOf[T any] struct {
	limit  int
	before func(a, b T) bool
	h      []T
	more   bool
}

func (f *firstOf[T]) add(v T) {
	switch {
	case f.limit <= 0:
		f.h = append(f.h, v)
	case len(f.h) < f.limit:
		f.h = append(f.h, v)
		f.up(len(f.h) - 1)
	case f.before(v, f.h[0]):
		f.h[0], f.more = v, true
		f.down(0)
	default:
		f.more = true
	}
}

// after is the heap's order: a parent comes after its children.
func (f *firstOf[T]) after(i, j int) bool { return f.before(f.h[j], f.h[i]) }

func (f *firstOf[T]) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !f.after(i, parent) {
			return
		}
		f.h[i], f.h[parent] = f.h[parent], f.h[i]
		i = parent
	}
}

func (f *firstOf[T]) down(i int) {
	for {
		c := 2*i + 1
		if c >= len(f.h) {
			return
		}
		if c+1 < len(f.h) && f.after(c+1, c) {
			c++
		}
		if !f.after(c, i) {
			return
		}
		f.h[i], f.h[c] = f.h[c], f.h[i]
		i = c
	}
}

// ResidentsWhere returns copies of the residents keep accepts, among those
// sel selects, by ID. Only those are copied: keep sees the projection's own
// resident, under its read lock, and must neither change nor keep it, nor
// call the projection.
func (p *Projection) ResidentsWhere(sel Selection, keep func(*ResidentView) bool) []*ResidentView {
	out, _ := p.ResidentsPage(sel, keep, 0, "")
	return out
}

// ResidentsPage is ResidentsWhere bounded to at most limit residents (0:
// all) whose IDs come after after (""; from the first), and whether more
// follow the page. Only the page's residents are copied.
func (p *Projection) ResidentsPage(sel Selection, keep func(*ResidentView) bool, limit int, after ResidentID) ([]*ResidentView, bool) {
	p.mu.RLock()
	page := firstOf[*ResidentView]{limit: limit, before: func(a, b *ResidentView) bool { return a.ID < b.ID }}
	p.visit(sel, func(r *ResidentView) {
		if (after == "" || r.ID > after) && keep(r) {
			page.add(r)
		}
	})
	refs, more := page.h, page.more
	var out []*ResidentView
	for _, r := range refs {
		out = append(out, r.cloneRef())
	}
	p.mu.RUnlock()
	slices.SortFunc(out, func(a, b *ResidentView) int { return strings.Compare(string(a.ID), string(b.ID)) })
	return out, more
}

// Escalations returns copies of every escalation, in a list's order: the
// whole model copied (the lists' benchmark baseline, tests).
func (p *Projection) Escalations() []*EscalationView {
	p.mu.RLock()
	defer p.mu.RUnlock()
	var out []*EscalationView
	for _, r := range p.residents {
		for _, e := range r.Escalations {
			c := e.clone()
			out = append(out, &c)
		}
	}
	slices.SortFunc(out, func(a, b *EscalationView) int { return KeyOf(a).compare(KeyOf(b)) })
	return out
}

// Residents returns copies of every resident, by ID.
func (p *Projection) Residents() []*ResidentView {
	p.mu.RLock()
	defer p.mu.RUnlock()
	out := make([]*ResidentView, 0, len(p.residents))
	for _, r := range p.residents {
		out = append(out, r.cloneRef())
	}
	slices.SortFunc(out, func(a, b *ResidentView) int { return strings.Compare(string(a.ID), string(b.ID)) })
	return out
}

// Resident returns a copy of one resident, or nil.
func (p *Projection) Resident(id ResidentID) *ResidentView {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.residents[id].cloneRef()
}

// OpenEscalation names an escalation that is paging, unanswered or
// accepted, and its resident.
type OpenEscalation struct {
	ID         EscalationID
	ResidentID ResidentID
}

// Open returns the escalations that are paging, unanswered or accepted (not
// decided or withdrawn), and the position they are as of: what the pager
// may still have to act on (paging.Pager.WarmStart).
func (p *Projection) Open() ([]OpenEscalation, int64) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	var out []OpenEscalation
	p.visit(Selection{Open: true}, func(r *ResidentView) {
		for i := range r.Escalations {
			if e := &r.Escalations[i]; e.Status.Open() {
				out = append(out, OpenEscalation{ID: e.ID, ResidentID: r.ID})
			}
		}
	})
	return out, p.pos
}
