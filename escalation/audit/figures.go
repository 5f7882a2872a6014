package audit

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nightcall-health/nightcall/escalation"
)

// Query selects escalations raised in [From, To) (zero bounds are open),
// optionally of one home, and computes figures as of AsOf: only what had been
// recorded by AsOf counts, so a query can be repeated exactly.
type Query struct {
	From, To   time.Time
	CareHome   escalation.CareHomeID
	Window     time.Duration
	WindowText string
	AsOf       time.Time
	Location   *time.Location
}

// ParseWindow reads a Go duration or a whole number of days ("7d").
func ParseWindow(s string) (time.Duration, error) {
	if strings.HasSuffix(s, "d") {
		n, err := strconv.Atoi(strings.TrimSuffix(s, "d"))
		if err != nil || n <= 0 || n > 366 {
			return 0, fmt.Errorf("window %q: days must be 1 to 366", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 || d > 366*24*time.Hour {
		return 0, fmt.Errorf("window %q: a positive Go duration (72h) or days (7d), at most a year", s)
	}
	return d, nil
}

// Percentiles are nearest-rank, in seconds; nil when there is no sample.
type Percentiles struct {
	P50 *float64 `json:"p50"`
	P90 *float64 `json:"p90"`
}

// Counts are the figures for one slice of escalations.
type Counts struct {
	Escalations        int         `json:"escalations"`
	Decided            int         `json:"decided"`
	Admit              int         `json:"admit"`
	Stay               int         `json:"stay"`
	Withdrawn          int         `json:"withdrawn"`
	EverUnanswered     int         `json:"ever_unanswered"`
	AdmissionsAvoided  int         `json:"admissions_avoided"`
	AvoidedUnconfirmed int         `json:"avoided_unconfirmed"`
	FailedStays        int         `json:"failed_stays"`
	PendingWindow      int         `json:"pending_window"`
	DeathsInWindow     int         `json:"deaths_in_window"`
	OutOfHours         int         `json:"out_of_hours"`
	SecondsToAccept    Percentiles `json:"seconds_to_accept"`
	SecondsToDecision  Percentiles `json:"seconds_to_decision"`

	// accept and decide are the samples, in milliseconds: one by one, and
	// in sorted runs (whole buckets).
	accept, decide samples
}

// HomeCounts are one home's figures.
type HomeCounts struct {
	CareHomeID escalation.CareHomeID `json:"care_home_id"`
	Counts
}

// ConsultantCounts are one consultant's figures (by who decided, or accepted).
type ConsultantCounts struct {
	Consultant escalation.Username `json:"consultant"`
	Counts
}

// MonthCounts are one month's figures (by raise time, in the query's zone).
type MonthCounts struct {
	Month string `json:"month"`
	Counts
}

// Figures is the answer to a Query, in the shape of API.md.
type Figures struct {
	From         *time.Time         `json:"from"`
	To           *time.Time         `json:"to"`
	Window       string             `json:"window"`
	AsOf         time.Time          `json:"as_of"`
	CareHome     string             `json:"care_home,omitempty"`
	Counts                          // flattened into the top level
	ByCareHome   []HomeCounts       `json:"by_care_home"`
	ByConsultant []ConsultantCounts `json:"by_consultant"`
	ByMonth      []MonthCounts      `json:"by_month"`
}

// Stay outcomes.
const (
	stayFailed      = "failed"
	stayDeath       = "death"
	stayPending     = "pending"
	stayAvoided     = "avoided"
	stayUnconfirmed = "unconfirmed"
	stayNeither     = "neither"
)

// Figures computes the figures for q. A query in a zone and window the model
// keeps buckets for (Keep, or the first few asked) adds whole buckets and
// days of settled escalations and looks one by one, each at its versions,
// only at those still changing as of q or on the edge of the query's range;
// any other query scans every escalation. Both give the same figures.
// Queries share the read lock; the first after a change takes the write lock
// to give the buckets the change.
func (m *Model) Figures(q Query) Figures {
	if q.Location == nil {
		q.Location = time.UTC
	}
	m.mu.RLock()
	ix := m.indexFor(q.Location, q.Window, false)
	if (ix != nil && len(m.dirty) == 0 && len(ix.dirty) == 0) || (ix == nil && (len(m.indexes) >= maxIndexes || q.Window <= 0)) {
		defer m.mu.RUnlock()
		if ix == nil {
			return m.scanFigures(q)
		}
		return ix.figures(m, q)
	}
	m.mu.RUnlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	if ix := m.indexFor(q.Location, q.Window, true); ix != nil {
		m.flush()
		ix.prepare()
		return ix.figures(m, q)
	}
	return m.scanFigures(q)
}

// scanFigures computes the figures for q from every escalation.
func (m *Model) scanFigures(q Query) Figures {
	t := newTallies(q)
	for _, id := range m.order {
		m.tallyOne(t, m.escalations[id], q)
	}
	return t.figures(q)
}

// tallies are the running figures of one query: the whole, by home, by
// consultant and by month. They are kept for the next query once finished
// (talliesPool), with the Counts and the room for samples they grew.
type tallies struct {
	total       Counts
	homes       map[escalation.CareHomeID]*Counts
	consultants map[escalation.Username]*Counts
	months      map[string]*Counts
	// used are the Counts handed out (get), spare those to hand out again;
	// local is a bucket's share (buckets.go); arena holds the sorted runs
	// of samples added one by one.
	used, spare []*Counts
	local       [2]Counts
	arena       []int64
}

var talliesPool = sync.Pool{New: func() any {
	return &tallies{homes: map[escalation.CareHomeID]*Counts{}, consultants: map[escalation.Username]*Counts{}, months: map[string]*Counts{}}
}}

func newTallies(Query) *tallies { return talliesPool.Get().(*tallies) }

// release gives the tallies back for another query: nothing of them may be
// used after (figures copies what it answers).
func (t *tallies) release() {
	t.total.reset()
	t.local[0].reset()
	t.local[1].reset()
	for _, c := range t.used {
		c.reset()
	}
	t.spare = append(t.spare, t.used...)
	clear(t.used)
	t.used = t.used[:0]
	clear(t.homes)
	clear(t.consultants)
	clear(t.months)
	t.arena = t.arena[:0]
	talliesPool.Put(t)
}

// reset empties c, keeping the room its samples grew.
func (c *Counts) reset() {
	a, d := c.accept, c.decide
	*c = Counts{accept: a.emptied(), decide: d.emptied()}
}

// emptied is s with no samples and the same room (holding no runs).
func (s samples) emptied() samples {
	clear(s.runs)
	clear(s.minus)
	return samples{one: s.one[:0], runs: s.runs[:0], minus: s.minus[:0]}
}

// get is m's Counts for k, a new one (from the tallies' spares) the first time.
func get[K comparable](t *tallies, m map[K]*Counts, k K) *Counts {
	c := m[k]
	if c == nil {
		if n := len(t.spare); n > 0 {
			c, t.spare = t.spare[n-1], t.spare[:n-1]
		} else {
			c = &Counts{}
		}
		t.used = append(t.used, c)
		m[k] = c
	}
	return c
}

// tallyOne adds one escalation, as of q, if q selects it.
func (m *Model) tallyOne(t *tallies, e *Escalation, q Query) {
	if (!q.From.IsZero() && e.RaisedAt.Before(q.From)) || (!q.To.IsZero() && !e.RaisedAt.Before(q.To)) {
		return
	}
	if q.CareHome != "" && e.CareHomeID != q.CareHome {
		return
	}
	if e.RaisedAt.After(q.AsOf) {
		return // not yet raised as of then
	}
	local := e.RaisedAt.In(q.Location)
	c := m.contribution(e, local, q)
	y, mo, _ := local.Date()
	targets := [4]*Counts{&t.total, get(t, t.homes, e.CareHomeID), get(t, t.months, monthKey(y, mo))}
	if who := c.consultant; who != "" {
		targets[3] = get(t, t.consultants, who)
	}
	for _, c2 := range targets {
		if c2 != nil {
			c2.add(c)
		}
	}
}

// figures finishes the tallies into the answer, and releases them.
func (t *tallies) figures(q Query) Figures {
	defer t.release()
	f := Figures{Window: q.WindowText, AsOf: q.AsOf.UTC(), CareHome: string(q.CareHome)}
	if !q.From.IsZero() {
		t := q.From.UTC()
		f.From = &t
	}
	if !q.To.IsZero() {
		t := q.To.UTC()
		f.To = &t
	}
	f.Counts = t.total.finished()
	f.ByCareHome = make([]HomeCounts, 0, len(t.homes))
	for id, c := range t.homes {
		f.ByCareHome = append(f.ByCareHome, HomeCounts{CareHomeID: id, Counts: c.finished()})
	}
	slices.SortFunc(f.ByCareHome, func(a, b HomeCounts) int { return strings.Compare(string(a.CareHomeID), string(b.CareHomeID)) })
	f.ByConsultant = make([]ConsultantCounts, 0, len(t.consultants))
	for u, c := range t.consultants {
		f.ByConsultant = append(f.ByConsultant, ConsultantCounts{Consultant: u, Counts: c.finished()})
	}
	slices.SortFunc(f.ByConsultant, func(a, b ConsultantCounts) int { return strings.Compare(string(a.Consultant), string(b.Consultant)) })
	f.ByMonth = make([]MonthCounts, 0, len(t.months))
	for mo, c := range t.months {
		f.ByMonth = append(f.ByMonth, MonthCounts{Month: mo, Counts: c.finished()})
	}
	slices.SortFunc(f.ByMonth, func(a, b MonthCounts) int { return strings.Compare(a.Month, b.Month) })
	return f
}

// finished is a copy of c with its percentiles and without its samples.
func (c *Counts) finished() Counts {
	c.finish()
	out := *c
	out.accept, out.decide = samples{}, samples{}
	return out
}

var monthKeys sync.Map

func monthKey(y int, m time.Month) string {
	k := y*100 + int(m)
	if v, ok := monthKeys.Load(k); ok {
		return v.(string)
	}
	s := fmt.Sprintf("%04d-%02d", y, m)
	monthKeys.Store(k, s)
	return s
}

// contribution is what one escalation adds to every slice it falls in.
type contribution struct {
	outOfHours, unanswered, withdrawn, decided, admit bool
	stay                                              string // "" when not a stay
	accept, decide                                    int64  // milliseconds
	hasAccept                                         bool
	consultant                                        escalation.Username
}

func (m *Model) contribution(e *Escalation, local time.Time, q Query) contribution {
	return m.contributionOf(e, outOfHoursLocal(local, q.Location), q, m.recordOf(e.ResidentID))
}

// record is what a resident's stay decisions are judged by: the resident's
// hospital admissions and death, looked up once for every instant judged.
type record struct {
	admissions []Admission
	death      Death
	died       bool
}

func (m *Model) recordOf(id escalation.ResidentID) record {
	d, died := m.deaths[id]
	return record{admissions: m.admissions[id], death: d, died: died}
}

// contributionOf is contribution for an escalation raised out of hours or
// not, its resident's record rec.
func (m *Model) contributionOf(e *Escalation, outOfHours bool, q Query, rec record) contribution {
	c := contribution{outOfHours: outOfHours, unanswered: by(e.UnansweredAt, q.AsOf), withdrawn: by(e.WithdrawnAt, q.AsOf)}
	if by(e.AcceptedAt, q.AsOf) {
		c.hasAccept, c.accept, c.consultant = true, millis(e.AcceptedAt.Sub(e.RaisedAt)), e.AcceptedBy
	}
	if by(e.DecidedAt, q.AsOf) {
		c.decided, c.decide = true, millis(e.DecidedAt.Sub(e.RaisedAt))
		if e.DecidedBy != "" {
			c.consultant = e.DecidedBy
		}
		if e.Outcome == escalation.OutcomeAdmit {
			c.admit = true
		} else {
			c.stay = stayOutcome(e, q, rec)
		}
	}
	return c
}

func (c *Counts) add(x contribution) {
	c.Escalations++
	if x.outOfHours {
		c.OutOfHours++
	}
	if x.unanswered {
		c.EverUnanswered++
	}
	if x.withdrawn {
		c.Withdrawn++
	}
	if x.hasAccept {
		c.accept.one = append(c.accept.one, x.accept)
	}
	if !x.decided {
		return
	}
	c.Decided++
	c.decide.one = append(c.decide.one, x.decide)
	if x.admit {
		c.Admit++
		return
	}
	c.Stay++
	switch x.stay {
	case stayFailed:
		c.FailedStays++
	case stayDeath:
		c.DeathsInWindow++
	case stayPending:
		c.PendingWindow++
	case stayAvoided:
		c.AdmissionsAvoided++
	case stayUnconfirmed:
		c.AvoidedUnconfirmed++
	}
}

func by(t *time.Time, asOf time.Time) bool { return t != nil && !t.After(asOf) }

// stayOutcome classifies a stay decision as of q.AsOf (API.md): an unplanned
// admission or A&E attendance inside the window is a failed stay; a death
// inside it is reported apart; a window still open is pending; after it, a
// stay whose counterfactual was ED is avoided when the home confirmed the
// resident at home at or after the window's end, else unconfirmed. Stays with
// counterfactual gp or none are never avoided nor unconfirmed.
func stayOutcome(e *Escalation, q Query, rec record) string {
	start := *e.DecidedAt
	end := start.Add(q.Window)
	inWindow := func(t time.Time) bool { return !t.Before(start) && t.Before(end) }
	for _, a := range rec.admissions {
		if a.Unplanned && inWindow(a.At) && !a.RecordedAt.After(q.AsOf) {
			return stayFailed
		}
	}
	for _, fu := range e.FollowUps {
		if (fu.Status == escalation.FollowUpAdmitted || fu.Status == escalation.FollowUpEDAttendance) && inWindow(fu.At) && !fu.RecordedAt.After(q.AsOf) {
			return stayFailed
		}
	}
	if d := rec.death; rec.died && inWindow(d.At) && !d.RecordedAt.After(q.AsOf) {
		return stayDeath
	}
	for _, fu := range e.FollowUps {
		if fu.Status == escalation.FollowUpDied && inWindow(fu.At) && !fu.RecordedAt.After(q.AsOf) {
			return stayDeath
		}
	}
	if q.AsOf.Before(end) {
		return stayPending
	}
	if e.Counterfactual != escalation.CounterfactualED {
		return stayNeither
	}
	for _, fu := range e.FollowUps {
		if fu.Status == escalation.FollowUpAtHome && !fu.At.Before(end) && !fu.RecordedAt.After(q.AsOf) {
			return stayAvoided
		}
	}
	return stayUnconfirmed
}

func (c *Counts) finish() {
	c.SecondsToAccept = c.accept.percentiles()
	c.SecondsToDecision = c.decide.percentiles()
}

// millis is a duration in seconds rounded to the millisecond, as the
// figures report it, counted in milliseconds. Rounding keeps order, so the
// nearest-rank sample of the rounded values is the rounded sample.
func millis(d time.Duration) int64 { return int64(math.Round(d.Seconds() * 1000)) }

// samples is a multiset of milliseconds: single values and sorted runs,
// less the values of the sorted runs in minus (each value of which is one of
// the runs': a bucket's run less the runs of its days not taken whole).
type samples struct {
	one   []int64
	runs  [][]int64
	minus [][]int64
}

func (s samples) n() int {
	n := len(s.one)
	for _, r := range s.runs {
		n += len(r)
	}
	for _, r := range s.minus {
		n -= len(r)
	}
	return n
}

// percentiles are nearest-rank: the value at rank ceil(p/100 × n).
func (s samples) percentiles() Percentiles {
	n := s.n()
	if n == 0 {
		return Percentiles{}
	}
	runs := s.runs
	if len(s.one) > 0 {
		one := slices.Clone(s.one)
		slices.Sort(one)
		runs = append(slices.Clip(runs), one)
	}
	rank := func(p float64) *float64 {
		r := int(math.Ceil(p / 100 * float64(n)))
		v := float64(kth(runs, s.minus, max(r, 1))) / 1000
		return &v
	}
	return Percentiles{P50: rank(50), P90: rank(90)}
}

// kth is the k-th smallest (1-based) value of the union of sorted runs less
// the values of the runs in minus: a search over the values, counting how
// many are at most v, in which each run is cut to its values still in the
// search's bounds, the runs left empty are dropped, and once few values are
// left they are sorted.
func kth(runs, minus [][]int64, k int) int64 {
	if len(runs) == 1 && len(minus) == 0 {
		return runs[0][k-1]
	}
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	scratch := kthScratch.Get().(*kthBuf)
	defer kthScratch.Put(scratch)
	live := scratch.live[:0]
	defer func() { clear(live[:cap(live)]); scratch.live = live[:0] }()
	for _, r := range runs {
		if len(r) > 0 {
			lo, hi = min(lo, r[0]), max(hi, r[len(r)-1])
			live = append(live, r)
		}
	}
	plus := len(live) // live[:plus] add, live[plus:] take away
	for _, r := range minus {
		if len(r) > 0 {
			live = append(live, r)
		}
	}
	if cap(scratch.cut) < len(live) {
		scratch.cut = make([]int, len(live))
	}
	cut := scratch.cut[:len(live)]
	// live holds every value in [lo, hi]; below are the smaller ones counted.
	below := 0
	for lo < hi {
		left := 0
		for _, r := range live {
			left += len(r)
		}
		if left <= 64 {
			return fewest(live[:plus], live[plus:], k-below)
		}
		mid := (lo & hi) + (lo^hi)>>1 // the floor of the mean, without overflow
		n := below
		for i, r := range live {
			cut[i] = upper(r, mid)
			if i < plus {
				n += cut[i]
			} else {
				n -= cut[i]
			}
		}
		j, p := 0, 0
		keepLow := n >= k
		if keepLow {
			hi = mid
		} else {
			lo, below = mid+1, n
		}
		for i, r := range live {
			if keepLow {
				r = r[:cut[i]]
			} else {
				r = r[cut[i]:]
			}
			if len(r) > 0 {
				live[j], cut[j] = r, 0
				j++
				if i < plus {
					p++
				}
			}
		}
		live, plus = live[:j], p
	}
	return lo
}

// kthBuf is what kth works in, kept between calls (kthScratch).
type kthBuf struct {
	live [][]int64
	cut  []int
}

var kthScratch = sync.Pool{New: func() any { return new(kthBuf) }}

// fewest is the k-th smallest of at most 64 values, those of the runs plus
// less those of the runs minus.
func fewest(plus, minus [][]int64, k int) int64 {
	var a, b [64]int64
	xs, ys := a[:0], b[:0]
	for _, r := range plus {
		xs = append(xs, r...)
	}
	for _, r := range minus {
		ys = append(ys, r...)
	}
	slices.Sort(xs)
	slices.Sort(ys)
	j := 0
	for _, x := range xs {
		for j < len(ys) && ys[j] < x {
			j++ // a value taken away that was never there: cannot happen
		}
		if j < len(ys) && ys[j] == x {
			j++
			continue
		}
		if k--; k == 0 {
			return x
		}
	}
	return xs[len(xs)-1] // k beyond the values: cannot happen
}

// upper is how many values of the sorted run are at most v.
func upper(r []int64, v int64) int {
	i, j := 0, len(r)
	for i < j {
		h := int(uint(i+j) >> 1)
		if r[h] <= v {
			i = h + 1
		} else {
			j = h
		}
	}
	return i
}

// percentiles of values in seconds (nearest-rank, rounded to the millisecond).
func percentiles(xs []float64) Percentiles {
	s := samples{one: make([]int64, len(xs))}
	for i, x := range xs {
		s.one[i] = int64(math.Round(x * 1000))
	}
	return s.percentiles()
}

// FiguresByScan computes the figures for q from every escalation, without
// the buckets: the reference Figures is checked against, for tests and
// benchmarks.
func (m *Model) FiguresByScan(q Query) Figures {
	if q.Location == nil {
		q.Location = time.UTC
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.scanFigures(q)
}
