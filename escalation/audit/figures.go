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
// keeps buckets for (Keep, or the first few asked) adds whole buckets of
// settled escalations and looks one by one only at those still open to
// change or on the edge of the query's range; any other query scans every
// escalation. Both give the same figures.
func (m *Model) Figures(q Query) Figures {
	if q.Location == nil {
		q.Location = time.UTC
	}
	m.mu.Lock() // the buckets' samples are merged at the first query after a change
	defer m.mu.Unlock()
	if ix := m.indexFor(q.Location, q.Window, true); ix != nil {
		m.flush()
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
// consultant and by month.
type tallies struct {
	total       Counts
	homes       map[escalation.CareHomeID]*Counts
	consultants map[escalation.Username]*Counts
	months      map[string]*Counts
}

func newTallies(q Query) *tallies {
	return &tallies{homes: map[escalation.CareHomeID]*Counts{}, consultants: map[escalation.Username]*Counts{}, months: map[string]*Counts{}}
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
	targets := [4]*Counts{&t.total, get(t.homes, e.CareHomeID), get(t.months, monthKey(y, mo))}
	if who := c.consultant; who != "" {
		targets[3] = get(t.consultants, who)
	}
	for _, c2 := range targets {
		if c2 != nil {
			c2.add(c)
		}
	}
}

// figures finishes the tallies into the answer.
func (t *tallies) figures(q Query) Figures {
	f := Figures{Window: q.WindowText, AsOf: q.AsOf.UTC(), CareHome: string(q.CareHome)}
	if !q.From.IsZero() {
		t := q.From.UTC()
		f.From = &t
	}
	if !q.To.IsZero() {
		t := q.To.UTC()
		f.To = &t
	}
	f.Counts = t.total
	f.Counts.finish()
	f.ByCareHome = []HomeCounts{}
	for id, c := range t.homes {
		c.finish()
		f.ByCareHome = append(f.ByCareHome, HomeCounts{CareHomeID: id, Counts: *c})
	}
	slices.SortFunc(f.ByCareHome, func(a, b HomeCounts) int { return strings.Compare(string(a.CareHomeID), string(b.CareHomeID)) })
	f.ByConsultant = []ConsultantCounts{}
	for u, c := range t.consultants {
		c.finish()
		f.ByConsultant = append(f.ByConsultant, ConsultantCounts{Consultant: u, Counts: *c})
	}
	slices.SortFunc(f.ByConsultant, func(a, b ConsultantCounts) int { return strings.Compare(string(a.Consultant), string(b.Consultant)) })
	f.ByMonth = []MonthCounts{}
	for mo, c := range t.months {
		c.finish()
		f.ByMonth = append(f.ByMonth, MonthCounts{Month: mo, Counts: *c})
	}
	slices.SortFunc(f.ByMonth, func(a, b MonthCounts) int { return strings.Compare(a.Month, b.Month) })
	return f
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
	c := contribution{outOfHours: outOfHoursLocal(local, q.Location), unanswered: by(e.UnansweredAt, q.AsOf), withdrawn: by(e.WithdrawnAt, q.AsOf)}
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
			c.stay = m.stayOutcome(e, q)
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

func get[K comparable](m map[K]*Counts, k K) *Counts {
	c := m[k]
	if c == nil {
		c = &Counts{}
		m[k] = c
	}
	return c
}

func by(t *time.Time, asOf time.Time) bool { return t != nil && !t.After(asOf) }

// stayOutcome classifies a stay decision as of q.AsOf (API.md): an unplanned
// admission or A&E attendance inside the window is a failed stay; a death
// inside it is reported apart; a window still open is pending; after it, a
// stay whose counterfactual was ED is avoided when the home confirmed the
// resident at home at or after the window's end, else unconfirmed. Stays with
// counterfactual gp or none are never avoided nor unconfirmed.
func (m *Model) stayOutcome(e *Escalation, q Query) string {
	start := *e.DecidedAt
	end := start.Add(q.Window)
	inWindow := func(t time.Time) bool { return !t.Before(start) && t.Before(end) }
	for _, a := range m.admissions[e.ResidentID] {
		if a.Unplanned && inWindow(a.At) && !a.RecordedAt.After(q.AsOf) {
			return stayFailed
		}
	}
	for _, fu := range e.FollowUps {
		if (fu.Status == escalation.FollowUpAdmitted || fu.Status == escalation.FollowUpEDAttendance) && inWindow(fu.At) && !fu.RecordedAt.After(q.AsOf) {
			return stayFailed
		}
	}
	if d, ok := m.deaths[e.ResidentID]; ok && inWindow(d.At) && !d.RecordedAt.After(q.AsOf) {
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

// samples is a multiset of milliseconds: single values and sorted runs.
type samples struct {
	one  []int64
	runs [][]int64
}

func (s samples) n() int {
	n := len(s.one)
	for _, r := range s.runs {
		n += len(r)
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
		v := float64(kth(runs, max(r, 1))) / 1000
		return &v
	}
	return Percentiles{P50: rank(50), P90: rank(90)}
}

// kth is the k-th smallest (1-based) value of the union of sorted runs: a
// search over the values, counting in each run how many are at most v.
func kth(runs [][]int64, k int) int64 {
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for _, r := range runs {
		if len(r) > 0 {
			lo, hi = min(lo, r[0]), max(hi, r[len(r)-1])
		}
	}
	if len(runs) == 1 {
		return runs[0][k-1]
	}
	for lo < hi {
		mid := lo + (hi-lo)/2
		n := 0
		for _, r := range runs {
			n += upper(r, mid)
		}
		if n >= k {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
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
