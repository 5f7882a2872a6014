package audit

import (
	"container/heap"
	"slices"
	"time"

	"github.com/nightcall-health/nightcall/escalation"
)

// The figures kept incrementally. For one zone and one follow-up window an
// index holds each escalation's final contribution (what it adds to every
// figure as of any instant after its last change) in a bucket of its home,
// month of raise (in the zone) and consultant, once it is settled: once the
// log's latest time has passed its settling time (its last recorded event,
// the end of its stay's window, and any admission or death recorded against
// that window) by settleGrace. A query as of an instant after a bucket's
// settling time, whose range holds the whole bucket, adds the bucket's sums;
// any other bucket is looked at escalation by escalation, as are the
// escalations not yet settled. An event that changes a settled escalation
// (a late follow-up, an admission in its window) takes it out of its bucket
// until it settles again.

// settleGrace keeps an escalation out of the buckets for a while after its
// last change, so that the events of a live escalation (accept, decision,
// follow-up) do not move it in and out of a bucket at each step.
const settleGrace = time.Hour

// maxIndexes bounds the (zone, window) pairs kept: further ones are scanned.
const maxIndexes = 4

// farFuture stands for "as of after everything" in a final contribution.
var farFuture = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// Keep makes the model keep figures for queries in loc with window
// incrementally from now on (the default query's zone and window should be
// kept before the log is replayed, so that no query pays for the first build).
func (m *Model) Keep(loc *time.Location, window time.Duration) {
	if loc == nil {
		loc = time.UTC
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.indexFor(loc, window, true)
}

// indexFor returns the index for loc and window, building one if create and
// fewer than maxIndexes exist; nil when there is none.
func (m *Model) indexFor(loc *time.Location, window time.Duration, create bool) *index {
	for _, ix := range m.indexes {
		if ix.window == window && ix.loc.String() == loc.String() {
			return ix
		}
	}
	if !create || len(m.indexes) >= maxIndexes || window <= 0 {
		return nil
	}
	m.flush()
	ix := &index{loc: loc, window: window, buckets: map[bucketKey]*bucket{}}
	ix.open.members = &ix.members
	for _, id := range m.order {
		ix.add(m, m.escalations[id])
	}
	ix.promote(m.logTime)
	m.indexes = append(m.indexes, ix)
	return ix
}

// index is the buckets of one zone and window.
type index struct {
	loc     *time.Location
	window  time.Duration
	buckets map[bucketKey]*bucket
	list    []*bucket
	// members is each escalation's place, by its seq.
	members []member
	// open are the escalations not in a bucket, a min-heap by settling time.
	open openHeap
	// dirty are buckets whose samples changed since the last query.
	dirty []*bucket
}

type bucketKey struct {
	home       escalation.CareHomeID
	month      string
	consultant escalation.Username
}

// bucket is the sums of the settled escalations of one home, month and
// consultant. Its bounds only ever widen: they may be looser than its
// members, never tighter, which only sends more queries down the slow path.
type bucket struct {
	key bucketKey
	Counts
	acceptRun, decideRun multiset
	esc                  []*Escalation
	minRaised, maxRaised time.Time
	settled              time.Time // the latest settling time of any member
	isDirty              bool
}

// member is where one escalation is: in a bucket (at pos) or open (at heapPos).
type member struct {
	e       *Escalation
	b       *bucket
	pos     int
	heapPos int
	settle  time.Time
	c       contribution
	present bool
}

func (ix *index) member(e *Escalation) *member {
	for len(ix.members) <= e.seq {
		ix.members = append(ix.members, member{pos: -1, heapPos: -1})
	}
	return &ix.members[e.seq]
}

// settleTime is when e's contribution stops changing with the instant a
// query is made as of.
func (ix *index) settleTime(m *Model, e *Escalation) time.Time {
	t := e.RaisedAt
	later := func(p *time.Time) {
		if p != nil && p.After(t) {
			t = *p
		}
	}
	later(e.AcceptedAt)
	later(e.UnansweredAt)
	later(e.DecidedAt)
	later(e.WithdrawnAt)
	for i := range e.FollowUps {
		later(&e.FollowUps[i].RecordedAt)
	}
	if e.DecidedAt != nil && e.Outcome != escalation.OutcomeAdmit {
		start := *e.DecidedAt
		end := start.Add(ix.window)
		later(&end)
		inWindow := func(at time.Time) bool { return !at.Before(start) && at.Before(end) }
		for i, a := range m.admissions[e.ResidentID] {
			if a.Unplanned && inWindow(a.At) {
				later(&m.admissions[e.ResidentID][i].RecordedAt)
			}
		}
		if d, ok := m.deaths[e.ResidentID]; ok && inWindow(d.At) {
			later(&d.RecordedAt)
		}
	}
	return t
}

// add puts e among the open escalations, with its final contribution.
func (ix *index) add(m *Model, e *Escalation) {
	mb := ix.member(e)
	local := e.RaisedAt.In(ix.loc)
	*mb = member{e: e, pos: -1, heapPos: -1, present: true, settle: ix.settleTime(m, e),
		c: m.contribution(e, local, Query{Window: ix.window, AsOf: farFuture, Location: ix.loc})}
	heap.Push(&ix.open, e.seq)
}

// remove takes e out of its bucket or the open heap, before it changes.
func (ix *index) remove(e *Escalation) {
	if e.seq >= len(ix.members) {
		return
	}
	mb := &ix.members[e.seq]
	if !mb.present || mb.e != e {
		return
	}
	if mb.b != nil {
		b := mb.b
		b.apply(mb.c, -1)
		last := len(b.esc) - 1
		moved := b.esc[last]
		b.esc[mb.pos] = moved
		ix.members[moved.seq].pos = mb.pos
		b.esc = b.esc[:last]
		ix.touch(b)
	} else if mb.heapPos >= 0 {
		heap.Remove(&ix.open, mb.heapPos)
	}
	*mb = member{pos: -1, heapPos: -1}
}

// promote moves into their buckets the open escalations settled by now
// (the log's latest time) with the grace to spare.
func (ix *index) promote(now time.Time) {
	for len(ix.open.s) > 0 {
		seq := ix.open.s[0]
		mb := &ix.members[seq]
		if mb.settle.Add(settleGrace).After(now) {
			return
		}
		heap.Pop(&ix.open)
		e := mb.e
		local := e.RaisedAt.In(ix.loc)
		y, mo, _ := local.Date()
		key := bucketKey{home: e.CareHomeID, month: monthKey(y, mo), consultant: mb.c.consultant}
		b := ix.buckets[key]
		if b == nil {
			b = &bucket{key: key, minRaised: e.RaisedAt, maxRaised: e.RaisedAt}
			ix.buckets[key] = b
			ix.list = append(ix.list, b)
		}
		if e.RaisedAt.Before(b.minRaised) {
			b.minRaised = e.RaisedAt
		}
		if e.RaisedAt.After(b.maxRaised) {
			b.maxRaised = e.RaisedAt
		}
		if mb.settle.After(b.settled) {
			b.settled = mb.settle
		}
		mb.b, mb.pos = b, len(b.esc)
		b.esc = append(b.esc, e)
		b.apply(mb.c, 1)
		ix.touch(b)
	}
}

func (ix *index) touch(b *bucket) {
	if !b.isDirty {
		b.isDirty = true
		ix.dirty = append(ix.dirty, b)
	}
}

// apply adds (sign 1) or takes away (sign -1) one contribution.
func (b *bucket) apply(x contribution, sign int) {
	c := &b.Counts
	c.Escalations += sign
	if x.outOfHours {
		c.OutOfHours += sign
	}
	if x.unanswered {
		c.EverUnanswered += sign
	}
	if x.withdrawn {
		c.Withdrawn += sign
	}
	if x.hasAccept {
		b.acceptRun.change(x.accept, sign)
	}
	if !x.decided {
		return
	}
	c.Decided += sign
	b.decideRun.change(x.decide, sign)
	if x.admit {
		c.Admit += sign
		return
	}
	c.Stay += sign
	switch x.stay {
	case stayFailed:
		c.FailedStays += sign
	case stayDeath:
		c.DeathsInWindow += sign
	case stayPending:
		c.PendingWindow += sign
	case stayAvoided:
		c.AdmissionsAvoided += sign
	case stayUnconfirmed:
		c.AvoidedUnconfirmed += sign
	}
}

// figures answers q from the buckets and the open escalations.
func (ix *index) figures(m *Model, q Query) Figures {
	for _, b := range ix.dirty {
		b.acceptRun.settle()
		b.decideRun.settle()
		b.isDirty = false
	}
	ix.dirty = ix.dirty[:0]
	t := newTallies(q)
	for _, b := range ix.list {
		if len(b.esc) == 0 || (q.CareHome != "" && b.key.home != q.CareHome) || q.AsOf.Before(b.minRaised) ||
			(!q.To.IsZero() && !b.minRaised.Before(q.To)) || (!q.From.IsZero() && b.maxRaised.Before(q.From)) {
			continue // nothing of it is selected
		}
		whole := (q.From.IsZero() || !b.minRaised.Before(q.From)) && (q.To.IsZero() || b.maxRaised.Before(q.To))
		if !whole || q.AsOf.Before(b.settled) {
			for _, e := range b.esc {
				m.tallyOne(t, e, q)
			}
			continue
		}
		targets := [4]*Counts{&t.total, get(t.homes, b.key.home), get(t.months, b.key.month)}
		if b.key.consultant != "" {
			targets[3] = get(t.consultants, b.key.consultant)
		}
		for _, c := range targets {
			if c != nil {
				c.addBucket(b)
			}
		}
	}
	for _, seq := range ix.open.s {
		m.tallyOne(t, ix.members[seq].e, q)
	}
	return t.figures(q)
}

// addBucket adds a bucket's sums and its samples' sorted runs.
func (c *Counts) addBucket(b *bucket) {
	s := &b.Counts
	c.Escalations += s.Escalations
	c.Decided += s.Decided
	c.Admit += s.Admit
	c.Stay += s.Stay
	c.Withdrawn += s.Withdrawn
	c.EverUnanswered += s.EverUnanswered
	c.AdmissionsAvoided += s.AdmissionsAvoided
	c.AvoidedUnconfirmed += s.AvoidedUnconfirmed
	c.FailedStays += s.FailedStays
	c.PendingWindow += s.PendingWindow
	c.DeathsInWindow += s.DeathsInWindow
	c.OutOfHours += s.OutOfHours
	if len(b.acceptRun.sorted) > 0 {
		c.accept.runs = append(c.accept.runs, b.acceptRun.sorted)
	}
	if len(b.decideRun.sorted) > 0 {
		c.decide.runs = append(c.decide.runs, b.decideRun.sorted)
	}
}

// multiset is a sorted run of samples with the additions and removals
// since it was last sorted.
type multiset struct {
	sorted, added, removed []int64
}

func (s *multiset) change(v int64, sign int) {
	if sign > 0 {
		s.added = append(s.added, v)
	} else {
		s.removed = append(s.removed, v)
	}
	// Merged when the changes pass a sixteenth of the run: each sample is
	// copied a bounded number of times on average, and a query never
	// has many to sort.
	if len(s.added)+len(s.removed) > max(64, len(s.sorted)/16) {
		s.settle()
	}
}

// settle merges the additions and removals into the sorted run. The run is
// replaced, not changed in place: a query's tallies may still hold the old.
func (s *multiset) settle() {
	if len(s.added) == 0 && len(s.removed) == 0 {
		return
	}
	slices.Sort(s.added)
	slices.Sort(s.removed)
	out := make([]int64, 0, len(s.sorted)+len(s.added)-len(s.removed))
	i, j, k := 0, 0, 0
	for i < len(s.sorted) || j < len(s.added) {
		var v int64
		if j >= len(s.added) || (i < len(s.sorted) && s.sorted[i] <= s.added[j]) {
			v = s.sorted[i]
			i++
		} else {
			v = s.added[j]
			j++
		}
		for k < len(s.removed) && s.removed[k] < v {
			k++ // a removal of a value never added: cannot happen
		}
		if k < len(s.removed) && s.removed[k] == v {
			k++
			continue
		}
		out = append(out, v)
	}
	s.sorted, s.added, s.removed = out, s.added[:0], s.removed[:0]
}

// openHeap is the open escalations (by seq), the earliest to settle first.
type openHeap struct {
	members *[]member
	s       []int
}

func (h *openHeap) Len() int { return len(h.s) }
func (h *openHeap) Less(i, j int) bool {
	m := *h.members
	return m[h.s[i]].settle.Before(m[h.s[j]].settle)
}
func (h *openHeap) Swap(i, j int) {
	h.s[i], h.s[j] = h.s[j], h.s[i]
	m := *h.members
	m[h.s[i]].heapPos = i
	m[h.s[j]].heapPos = j
}
func (h *openHeap) Push(x any) {
	seq := x.(int)
	(*h.members)[seq].heapPos = len(h.s)
	h.s = append(h.s, seq)
}
func (h *openHeap) Pop() any {
	seq := h.s[len(h.s)-1]
	h.s = h.s[:len(h.s)-1]
	(*h.members)[seq].heapPos = -1
	return seq
}
