package audit

import (
	"math"
	"runtime"
	"slices"
	"time"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/events"
)

// The figures kept incrementally. For one zone and one follow-up window an
// index holds every escalation in a bucket of its home, month of raise (in
// the zone) and consultant, and within the bucket in a chunk of its day of
// raise. Each escalation keeps its history of versions: what it adds to the
// figures as of any instant, as a list of (instant, contribution) steps,
// derived from its record exactly as a scan judges it (every instant at which
// the scan's answer can change is a step). Its settling time is its last
// step: from then on it adds its final contribution, which the bucket and
// the chunk sum.
//
// A query adds a bucket's sums when its range holds the whole bucket and it
// is as of the bucket's settling time or later; else it looks at the
// bucket's chunks: a chunk held whole and settled as of the query adds its
// sums (or, when most are, the bucket's sums less the other chunks'), any
// other is looked at escalation by escalation, each answered from its
// versions (a step found among a handful, no scan of the log). So a query as
// of a past instant, or with bounds inside a month, looks one by one only at
// the escalations raised on the days its bounds cut and those still changing
// at its instant. An event that changes an escalation takes it out of its
// chunk and puts it back with its new versions (at the next query, or every
// maxDirty changes); queries share the read lock.

// maxIndexes bounds the (zone, window) pairs kept: further ones are scanned.
const maxIndexes = 4

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
// fewer than maxIndexes exist; nil when there is none. Without create it
// only reads, so it may be called under the read lock.
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
	list := make([]*Escalation, len(m.order))
	for i, id := range m.order {
		list[i] = m.escalations[id]
	}
	return m.newIndex(loc, window, list, nil)
}

// newIndex builds and keeps the index for loc and window of the model's
// escalations, given in the model's order, with members[i] (when there is
// one) list[i]'s member restored from a snapshot.
func (m *Model) newIndex(loc *time.Location, window time.Duration, list []*Escalation, members []*member) *index {
	ix := &index{loc: loc, window: window, buckets: map[bucketKey]*bucket{}, homes: map[escalation.CareHomeID][]*bucket{}}
	ix.build(m, list, members)
	m.indexes = append(m.indexes, ix)
	return ix
}

// buildBatch is how many escalations a build judges at a time, on every
// core, before placing them in order.
const buildBatch = 4096

// build adds the escalations of list (the model's, in its order) to a new
// index: a batch at a time, judged on every core (judging only reads), their
// buckets and chunks found or made in order, and then placed in them on
// every core, each core taking the buckets of one shard (a bucket's members
// in the model's order, as one by one). The samples are merged into their
// runs once, at the end, on every core, not every sixteenth of a run as they
// come (which copies each run many times over while it grows from nothing).
// An escalation with a member restored from a snapshot (members[i], when
// there is one) is placed with it, not judged; build returns how many were
// judged.
func (ix *index) build(m *Model, list []*Escalation, members []*member) (judgedN int) {
	seqs := len(ix.places)
	for _, e := range list {
		seqs = max(seqs, e.seq+1)
	}
	ix.places = slices.Grow(ix.places, seqs-len(ix.places))[:seqs]
	shards := runtime.GOMAXPROCS(0)
	batch := make([]judged, buildBatch)
	const slices = 8         // a batch is judged in this many parts
	var judgedBy [slices]int // escalations judged, by part
	for from := 0; from < len(list); from += buildBatch {
		es := list[from:min(from+buildBatch, len(list))]
		per := (len(es) + slices - 1) / slices
		_ = events.InParallel(slices, func(k int) error {
			for i := k * per; i < min((k+1)*per, len(es)); i++ {
				if from+i < len(members) && members[from+i] != nil {
					batch[i] = ix.restored(members[from+i])
				} else {
					batch[i] = ix.judge(m, es[i])
					judgedBy[k]++
				}
			}
			return nil
		})
		for i := range es {
			ix.locate(&batch[i], shards)
		}
		_ = events.InParallel(shards, func(k int) error {
			for i := range es {
				if batch[i].b.shard == k {
					ix.fill(&batch[i], true)
				}
			}
			return nil
		})
		clear(batch)
	}
	_ = events.InParallel(len(ix.list), func(k int) error {
		b := ix.list[k]
		b.settleRuns()
		for _, ch := range b.days {
			if ch != nil {
				ch.settleRuns()
			}
		}
		return nil
	})
	for _, n := range judgedBy {
		judgedN += n
	}
	return judgedN
}

// settleRuns merges a set's samples into its runs.
func (s *sums) settleRuns() {
	s.acceptRun.settle()
	s.decideRun.settle()
}

// index is the buckets of one zone and window.
type index struct {
	loc     *time.Location
	window  time.Duration
	buckets map[bucketKey]*bucket
	list    []*bucket
	homes   map[escalation.CareHomeID][]*bucket
	// places are where each escalation is, by its seq.
	places []place
	// dirty are the sums whose samples changed since the last query.
	dirty []*sums
}

type bucketKey struct {
	home       escalation.CareHomeID
	month      string
	consultant escalation.Username
}

// sums are the final contributions of a set of escalations, with bounds
// on their raise and settling times. The bounds only widen while the set is
// not empty: they may be looser than its members, never tighter, which only
// sends more queries down the slower path.
type sums struct {
	Counts
	acceptRun, decideRun multiset
	minRaised, maxRaised time.Time
	settled              time.Time // the latest settling time of any member
	isDirty              bool
}

// bucket is the sums of one home, month and consultant, and its chunks by
// day of raise (in the index's zone).
type bucket struct {
	key bucketKey
	// shard is the core that fills the bucket in a build.
	shard int
	sums
	days [31]*chunk
}

// chunk is the sums of a bucket's escalations raised on one day, and the
// escalations themselves with their versions, side by side in memory so
// that a query looking at them one by one reads them in order.
type chunk struct {
	sums
	members []member
}

// place is where one escalation is: its chunk (nil when it is in none) and
// its index there.
type place struct {
	b   *bucket
	ch  *chunk
	pos int
}

// maxVersions is how many versions a member holds; an escalation with more
// is judged as the scan judges it.
const maxVersions = 6

// member is one escalation in a chunk, with what it adds as of any instant.
type member struct {
	e      *Escalation
	accept int64 // milliseconds, when it is ever accepted
	decide int64 // milliseconds, when it is ever decided
	// versions[:n] are its versions, the first at its raise.
	versions [maxVersions]version
	n        uint8
	final    code // what it adds once settled (its last version's)
	// scan marks an escalation with more versions than a member holds, or
	// instants a version cannot hold (beyond the years a Unix second
	// counts): it is judged by the scan's code.
	scan bool
}

// member is the escalation numbered seq where it is; nil when in no chunk.
func (ix *index) member(seq int) *member {
	if seq >= len(ix.places) || ix.places[seq].ch == nil {
		return nil
	}
	p := ix.places[seq]
	return &p.ch.members[p.pos]
}

// version is what an escalation adds from one instant (Unix seconds and
// nanoseconds) on, until its next version.
type version struct {
	sec  int64
	nsec int32
	code code
}

// code packs a contribution but for its samples' values (which the member
// holds: a sample once present never changes) and its consultant's name
// (which the escalation holds: whoever accepted, or decided).
type code uint16

const (
	codeOutOfHours code = 1 << iota
	codeUnanswered
	codeWithdrawn
	codeHasAccept
	codeDecided
	codeAdmit
	codeByAccepter // the consultant is who accepted
	codeByDecider  // the consultant is who decided
	codeStayShift  = iota

	codeBy = codeByAccepter | codeByDecider
)

// stayCodes number the stay outcomes in a code; "" is 0.
var stayCodes = []string{"", stayFailed, stayDeath, stayPending, stayAvoided, stayUnconfirmed, stayNeither}

func (c code) has(f code) bool { return c&f != 0 }
func (c code) stay() string    { return stayCodes[c>>codeStayShift] }

// consultant is the consultant the figures attribute e to under c ("" none).
func (c code) consultant(e *Escalation) escalation.Username {
	switch {
	case c.has(codeByDecider):
		return e.DecidedBy
	case c.has(codeByAccepter):
		return e.AcceptedBy
	}
	return ""
}

// encode packs the contribution x of e (contribution's own rule for its
// consultant: who decided, when named, else who accepted).
func encode(e *Escalation, x contribution) code {
	var c code
	for _, f := range []struct {
		on bool
		c  code
	}{{x.outOfHours, codeOutOfHours}, {x.unanswered, codeUnanswered}, {x.withdrawn, codeWithdrawn},
		{x.hasAccept, codeHasAccept}, {x.decided, codeDecided}, {x.admit, codeAdmit}} {
		if f.on {
			c |= f.c
		}
	}
	switch {
	case x.decided && e.DecidedBy != "":
		c |= codeByDecider
	case x.hasAccept:
		c |= codeByAccepter
	}
	i := slices.Index(stayCodes, x.stay)
	if i < 0 {
		// A stay outcome added without a code: a build error, never data's.
		panic("audit: the stay outcome " + x.stay + " has no code in stayCodes")
	}
	return c | code(i)<<codeStayShift // #nosec G115 -- 0..len(stayCodes)-1
}

// stamp is an instant as a version holds it.
type stamp struct {
	sec  int64
	nsec int32
}

// stampOf is t as a stamp; an instant beyond what one holds exactly is
// clamped, which keeps its order with every version's (all stampable).
func stampOf(t time.Time) stamp {
	if !stampable(t) {
		if t.After(time.Unix(0, 0)) {
			return stamp{math.MaxInt64, 0}
		}
		return stamp{math.MinInt64, 0}
	}
	return stamp{t.Unix(), int32(t.Nanosecond())} // #nosec G115 -- 0..999,999,999
}

// stampable reports whether t's Unix seconds are exact: they overflow only
// for instants billions of years away, and then land far outside ±2⁶².
func stampable(t time.Time) bool { u := t.Unix(); return u > -1<<62 && u < 1<<62 }

// before reports whether s is before o.
func (s stamp) before(o stamp) bool { return s.sec < o.sec || (s.sec == o.sec && s.nsec < o.nsec) }

func (v *version) stamp() stamp { return stamp{v.sec, v.nsec} }

// at is the code of what the member adds as of s; false before its raise.
func (mb *member) at(s stamp) (code, bool) {
	for i := int(mb.n) - 1; i >= 0; i-- {
		if v := &mb.versions[i]; !s.before(v.stamp()) {
			return v.code, true
		}
	}
	return 0, false
}

// steps lists every instant at or after e's raise at which its contribution
// can change as the instant of a query moves: each time the scan compares
// with the query's instant (recorded times, and the end of a stay's window),
// sorted, without repeats.
func (ix *index) steps(e *Escalation, rec record, buf []time.Time) []time.Time {
	out := append(buf[:0], e.RaisedAt)
	at := func(t time.Time) {
		if t.After(e.RaisedAt) {
			out = append(out, t)
		}
	}
	for _, p := range []*time.Time{e.AcceptedAt, e.UnansweredAt, e.DecidedAt, e.WithdrawnAt} {
		if p != nil {
			at(*p)
		}
	}
	for i := range e.FollowUps {
		at(e.FollowUps[i].RecordedAt)
	}
	if e.DecidedAt != nil && e.Outcome != escalation.OutcomeAdmit {
		start := *e.DecidedAt
		end := start.Add(ix.window)
		at(end)
		inWindow := func(t time.Time) bool { return !t.Before(start) && t.Before(end) }
		for _, a := range rec.admissions {
			if a.Unplanned && inWindow(a.At) {
				at(a.RecordedAt)
			}
		}
		if d := rec.death; rec.died && inWindow(d.At) {
			at(d.RecordedAt)
		}
	}
	// A handful, mostly in order already: an insertion sort, dropping repeats.
	n := 1
	for _, t := range out[1:] {
		i := n
		for i > 0 && out[i-1].After(t) {
			i--
		}
		if i > 0 && out[i-1].Equal(t) {
			continue
		}
		copy(out[i+1:n+1], out[i:n])
		out[i] = t
		n++
	}
	return out[:n]
}

// add puts e in its chunk with its versions.
func (ix *index) add(m *Model, e *Escalation) {
	ix.place(ix.judge(m, e))
}

// restored is the judged escalation a snapshot's member mb gives: its
// bucket and day from its raise, and its settling time its last version's
// (a member kept in a snapshot is never one the scan judges).
func (ix *index) restored(mb *member) judged {
	e := mb.e
	local := e.RaisedAt.In(ix.loc)
	y, mo, d := local.Date()
	last := &mb.versions[mb.n-1]
	return judged{mb: *mb, key: bucketKey{home: e.CareHomeID, month: monthKey(y, mo), consultant: mb.final.consultant(e)}, day: d,
		settle: time.Unix(last.sec, int64(last.nsec)).UTC()}
}

// judged is an escalation's member with the bucket and the day it goes in
// and when it settles: what judge works out and place puts in the index.
type judged struct {
	mb     member
	b      *bucket // where it goes: set by locate
	ch     *chunk
	key    bucketKey
	day    int
	settle time.Time
}

// judge works out e's member: its versions, its final contribution, its
// bucket. It only reads the model (many may run at once, under the lock
// the caller holds).
func (ix *index) judge(m *Model, e *Escalation) judged {
	local := e.RaisedAt.In(ix.loc)
	var buf [16]time.Time
	rec := m.recordOf(e.ResidentID)
	steps := ix.steps(e, rec, buf[:])
	// As of its last step, and any later instant, e adds its final
	// contribution; it settles at the last step that changes it.
	q := Query{Window: ix.window, Location: ix.loc, AsOf: steps[len(steps)-1]}
	oh := outOfHoursLocal(local, ix.loc)
	final := m.contributionOf(e, oh, q, rec)
	mb := member{e: e, accept: final.accept, decide: final.decide, final: encode(e, final)}
	settle := q.AsOf
	for _, t := range steps {
		if !stampable(t) {
			mb.scan = true // judged as the scan does, settled at its last step
		}
	}
	for i := 0; i < len(steps) && !mb.scan; i++ {
		q.AsOf = steps[i]
		c := encode(e, m.contributionOf(e, oh, q, rec))
		if mb.n > 0 && mb.versions[mb.n-1].code == c {
			continue
		}
		if int(mb.n) == maxVersions {
			mb.scan = true
			break
		}
		s := stampOf(steps[i])
		mb.versions[mb.n] = version{sec: s.sec, nsec: s.nsec, code: c}
		mb.n++
		settle = steps[i]
	}
	if mb.scan {
		settle = steps[len(steps)-1]
	}
	y, mo, d := local.Date()
	return judged{mb: mb, key: bucketKey{home: e.CareHomeID, month: monthKey(y, mo), consultant: final.consultant}, day: d, settle: settle}
}

// place puts a judged escalation in its chunk.
func (ix *index) place(j judged) {
	if e := j.mb.e; len(ix.places) <= e.seq {
		ix.places = slices.Grow(ix.places, e.seq+1-len(ix.places))[:e.seq+1]
	}
	ix.locate(&j, 1)
	ix.fill(&j, false)
}

// locate finds (or makes) the bucket and chunk j goes in; a new bucket is
// given a shard of shards, for a build.
func (ix *index) locate(j *judged, shards int) {
	b := ix.buckets[j.key]
	if b == nil {
		b = &bucket{key: j.key, shard: len(ix.list) % shards}
		ix.buckets[j.key] = b
		ix.list = append(ix.list, b)
		ix.homes[j.key.home] = append(ix.homes[j.key.home], b)
	}
	ch := b.days[j.day-1]
	if ch == nil {
		ch = &chunk{}
		b.days[j.day-1] = ch
	}
	j.b, j.ch = b, ch
}

// fill adds j to the chunk locate found, and its final contribution to the
// chunk's and bucket's sums. In bulk (a build) it changes nothing but its
// bucket, its chunks and its own place, so builds of different buckets may
// run at once; the samples then wait to be settled.
func (ix *index) fill(j *judged, bulk bool) {
	e, b, ch := j.mb.e, j.b, j.ch
	ix.places[e.seq] = place{b: b, ch: ch, pos: len(ch.members)}
	ch.members = append(ch.members, j.mb)
	for _, s := range []*sums{&b.sums, &ch.sums} {
		s.widen(e.RaisedAt, j.settle)
		s.apply(j.mb.final, j.mb.accept, j.mb.decide, 1, bulk)
		if !bulk {
			ix.touch(s)
		}
	}
}

// remove takes e out of its chunk, before it changes.
func (ix *index) remove(e *Escalation) {
	mb := ix.member(e.seq)
	if mb == nil || mb.e != e {
		return
	}
	p := ix.places[e.seq]
	for _, s := range []*sums{&p.b.sums, &p.ch.sums} {
		s.apply(mb.final, mb.accept, mb.decide, -1, false)
		ix.touch(s)
	}
	ch := p.ch
	last := len(ch.members) - 1
	if p.pos != last {
		ch.members[p.pos] = ch.members[last]
		ix.places[ch.members[p.pos].e.seq].pos = p.pos
	}
	ch.members[last] = member{}
	ch.members = ch.members[:last]
	ix.places[e.seq] = place{}
}

// widen makes the bounds take one more member (resetting them when the set
// is empty).
func (s *sums) widen(raised, settle time.Time) {
	if s.Escalations == 0 {
		s.minRaised, s.maxRaised, s.settled = raised, raised, settle
		return
	}
	if raised.Before(s.minRaised) {
		s.minRaised = raised
	}
	if raised.After(s.maxRaised) {
		s.maxRaised = raised
	}
	if settle.After(s.settled) {
		s.settled = settle
	}
}

func (ix *index) touch(s *sums) {
	if !s.isDirty {
		s.isDirty = true
		ix.dirty = append(ix.dirty, s)
	}
}

// prepare merges the samples changed since the last query into their runs.
func (ix *index) prepare() {
	for _, s := range ix.dirty {
		s.acceptRun.settle()
		s.decideRun.settle()
		s.isDirty = false
	}
	ix.dirty = ix.dirty[:0]
}

// apply adds (sign 1) or takes away (sign -1) one final contribution; in
// bulk its samples wait for the next settle.
func (s *sums) apply(x code, accept, decide int64, sign int, bulk bool) {
	c := &s.Counts
	c.tally(x, sign)
	if x.has(codeHasAccept) {
		s.acceptRun.change(accept, sign, bulk)
	}
	if x.has(codeDecided) {
		s.decideRun.change(decide, sign, bulk)
	}
}

// tally adds (sign 1) or takes away (sign -1) the counts of one contribution.
func (c *Counts) tally(x code, sign int) {
	c.Escalations += sign
	if x.has(codeOutOfHours) {
		c.OutOfHours += sign
	}
	if x.has(codeUnanswered) {
		c.EverUnanswered += sign
	}
	if x.has(codeWithdrawn) {
		c.Withdrawn += sign
	}
	if !x.has(codeDecided) {
		return
	}
	c.Decided += sign
	if x.has(codeAdmit) {
		c.Admit += sign
		return
	}
	c.Stay += sign
	switch x.stay() {
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

// addOne adds one escalation's contribution x, its samples one by one.
func (c *Counts) addOne(x code, mb *member) {
	c.tally(x, 1)
	if x.has(codeHasAccept) {
		c.accept.one = append(c.accept.one, mb.accept)
	}
	if x.has(codeDecided) {
		c.decide.one = append(c.decide.one, mb.decide)
	}
}

// selects reports whether q may select a member of s.
func (s *sums) selects(q *Query) bool {
	return s.Escalations > 0 && !q.AsOf.Before(s.minRaised) &&
		(q.To.IsZero() || s.minRaised.Before(q.To)) && (q.From.IsZero() || !s.maxRaised.Before(q.From))
}

// whole reports whether q selects every member of s and judges each by its
// final contribution.
func (s *sums) whole(q *Query) bool {
	return (q.From.IsZero() || !s.minRaised.Before(q.From)) && (q.To.IsZero() || s.maxRaised.Before(q.To)) &&
		!q.AsOf.Before(s.settled)
}

// stampRange is a query's range [from, to) of raise times.
type stampRange struct{ from, to stamp }

// holds reports whether the range holds s.
func (r stampRange) holds(s stamp) bool { return !s.before(r.from) && s.before(r.to) }

// figures answers q from the buckets, as a scan would (after prepare).
func (ix *index) figures(m *Model, q Query) Figures {
	t := newTallies(q)
	list := ix.list
	if q.CareHome != "" {
		list = ix.homes[q.CareHome]
	}
	asOf := stampOf(q.AsOf)
	r := stampRange{from: stamp{math.MinInt64, 0}, to: stamp{math.MaxInt64, 0}}
	if !q.From.IsZero() {
		r.from = stampOf(q.From)
	}
	if !q.To.IsZero() {
		r.to = stampOf(q.To)
	}
	for _, b := range list {
		if !b.selects(&q) {
			continue
		}
		if b.whole(&q) {
			t.add(b.key, &b.Counts, &Counts{}, &b.sums)
			continue
		}
		// all is the bucket's share of the whole, by home and by month;
		// others are those of its members judged by their versions that
		// are not its consultant's as of q (another's, or no one's). The
		// days held whole are added, or, when they are most of the bucket,
		// the bucket less the other days (fewer runs for the percentiles
		// to search).
		all, others := &t.local[0], &t.local[1]
		all.reset()
		others.reset()
		var wholeDay [31]bool
		held, other := 0, 0
		for d, ch := range b.days {
			switch {
			case ch == nil || ch.Escalations == 0:
			case ch.selects(&q) && ch.whole(&q):
				wholeDay[d] = true
				held++
			default:
				other++
			}
		}
		less := held > other+1
		if less {
			all.addSums(&b.sums, 1)
		}
		for d, ch := range b.days {
			if ch == nil || ch.Escalations == 0 {
				continue
			}
			if wholeDay[d] {
				if !less {
					all.addSums(&ch.sums, 1)
				}
				continue
			}
			if less {
				all.addSums(&ch.sums, -1)
			}
			if !ch.selects(&q) {
				continue
			}
			for i := range ch.members {
				mb := &ch.members[i]
				if mb.scan {
					m.tallyOne(t, mb.e, q)
					continue
				}
				if raised := mb.versions[0].stamp(); !r.holds(raised) || asOf.before(raised) {
					continue // not selected, or not yet raised as of q
				}
				x, _ := mb.at(asOf)
				all.addOne(x, mb)
				switch {
				case x&codeBy == 0:
					others.addOne(x, mb) // no one's yet
				case x&codeBy == mb.final&codeBy:
					// the bucket's consultant
				default:
					if who := x.consultant(mb.e); who != b.key.consultant {
						others.addOne(x, mb)
						if who != "" {
							get(t, t.consultants, who).addOne(x, mb)
						}
					}
				}
			}
		}
		if all.Escalations > 0 {
			t.sortOnes(all)
			t.sortOnes(others)
			t.add(b.key, all, others, nil)
		}
	}
	return t.figures(q)
}

// add adds a bucket's share: all to the whole, its home and month, and all
// less others to its consultant's (when it has some); from, when not nil,
// are sums whose sorted runs are all's samples (and there are no others).
func (t *tallies) add(k bucketKey, all, others *Counts, from *sums) {
	for _, c := range [3]*Counts{&t.total, get(t, t.homes, k.home), get(t, t.months, k.month)} {
		if from != nil {
			c.addSums(from, 1)
		} else {
			c.addCounts(all)
		}
	}
	if k.consultant == "" || all.Escalations == others.Escalations {
		return
	}
	c := get(t, t.consultants, k.consultant)
	if from != nil {
		c.addSums(from, 1)
		return
	}
	c.addCounts(all)
	c.sum(others, -1)
	for _, x := range [2][2]*samples{{&c.accept, &others.accept}, {&c.decide, &others.decide}} {
		x[0].minus = append(x[0].minus, x[1].runs...) // others' one by one, sorted
	}
}

// sortOnes turns the samples added one by one to c into a sorted run (in
// the tallies' arena, so that c's room can take the next bucket's).
func (t *tallies) sortOnes(c *Counts) {
	for _, s := range []*samples{&c.accept, &c.decide} {
		if len(s.one) > 0 {
			slices.Sort(s.one)
			start := len(t.arena)
			t.arena = append(t.arena, s.one...)
			s.runs = append(s.runs, t.arena[start:len(t.arena):len(t.arena)])
			s.one = s.one[:0]
		}
	}
}

// addCounts adds the counts and the samples of another tally.
func (c *Counts) addCounts(o *Counts) {
	c.sum(o, 1)
	for _, x := range [2][2]*samples{{&c.accept, &o.accept}, {&c.decide, &o.decide}} {
		x[0].runs = append(x[0].runs, x[1].runs...)
		x[0].minus = append(x[0].minus, x[1].minus...)
		x[0].one = append(x[0].one, x[1].one...)
	}
}

// addSums adds (sign 1) or takes away (sign -1) sums' counts and their
// samples' sorted runs.
func (c *Counts) addSums(s *sums, sign int) {
	c.sum(&s.Counts, sign)
	for _, x := range [2]struct {
		to  *samples
		run []int64
	}{{&c.accept, s.acceptRun.sorted}, {&c.decide, s.decideRun.sorted}} {
		switch {
		case len(x.run) == 0:
		case sign > 0:
			x.to.runs = append(x.to.runs, x.run)
		default:
			x.to.minus = append(x.to.minus, x.run)
		}
	}
}

// sum adds (sign 1) or takes away (sign -1) the counts of o.
func (c *Counts) sum(s *Counts, sign int) {
	c.Escalations += sign * s.Escalations
	c.Decided += sign * s.Decided
	c.Admit += sign * s.Admit
	c.Stay += sign * s.Stay
	c.Withdrawn += sign * s.Withdrawn
	c.EverUnanswered += sign * s.EverUnanswered
	c.AdmissionsAvoided += sign * s.AdmissionsAvoided
	c.AvoidedUnconfirmed += sign * s.AvoidedUnconfirmed
	c.FailedStays += sign * s.FailedStays
	c.PendingWindow += sign * s.PendingWindow
	c.DeathsInWindow += sign * s.DeathsInWindow
	c.OutOfHours += sign * s.OutOfHours
}

// multiset is a sorted run of samples with the additions and removals
// since it was last sorted.
type multiset struct {
	sorted, added, removed []int64
}

func (s *multiset) change(v int64, sign int, bulk bool) {
	if sign > 0 {
		s.added = append(s.added, v)
	} else {
		s.removed = append(s.removed, v)
	}
	// Merged when the changes pass a sixteenth of the run: each sample is
	// copied a bounded number of times on average, and a query never
	// has many to sort.
	if !bulk && len(s.added)+len(s.removed) > max(64, len(s.sorted)/16) {
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
