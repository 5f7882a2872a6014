// Package audit is the read model behind what the service achieved: every
// escalation's milestones, the residents' hospital admissions, follow-ups and
// deaths, each with the time it was recorded, so that a figure "as of" an
// instant can be recomputed exactly from the log. Admissions avoided are
// counted as API.md defines them.
package audit

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/events"
)

// Escalation is one escalation's audit record.
type Escalation struct {
	ID         escalation.EscalationID
	ResidentID escalation.ResidentID
	CareHomeID escalation.CareHomeID
	RaisedAt   time.Time
	NEWS2Total *int
	NEWS2Risk  string
	// NEWS2Label is "8", or "partial, at least 7" for an incomplete set;
	// NEWS2ResponseRisk the band the response had to meet (a partial set's
	// from its lower bound).
	NEWS2Label        string
	NEWS2ResponseRisk string
	AcceptedAt        *time.Time
	AcceptedBy        escalation.Username
	UnansweredAt      *time.Time
	DecidedAt         *time.Time
	Outcome           escalation.Outcome
	Counterfactual    escalation.Counterfactual
	DecidedBy         escalation.Username
	Rationale         string
	Plan              string
	Situation         string
	WithdrawnAt       *time.Time
	FollowUps         []FollowUp

	// seq numbers the escalation in the model, for the buckets (buckets.go);
	// dirty marks it changed since the buckets last took it.
	seq   int
	dirty bool
}

// FollowUp is the home's report of where the resident was.
type FollowUp struct {
	Status     escalation.FollowUpStatus
	At         time.Time
	RecordedAt time.Time
}

// Admission is a recorded hospital admission or A&E attendance.
type Admission struct {
	At         time.Time
	Kind       escalation.AdmissionKind
	Unplanned  bool
	RecordedAt time.Time
}

// Death is a recorded death.
type Death struct {
	At         time.Time
	Expected   bool
	RecordedAt time.Time
}

// Access is one read of a resident's record.
type Access struct {
	At           time.Time               `json:"at"`
	Username     escalation.Username     `json:"username"`
	Role         escalation.Role         `json:"role"`
	What         string                  `json:"what"`
	ResidentID   escalation.ResidentID   `json:"resident_id"`
	EscalationID escalation.EscalationID `json:"escalation_id,omitempty"`
	// From and To are the range of a bulk export (CSV, FHIR).
	From *time.Time `json:"from,omitempty"`
	To   *time.Time `json:"to,omitempty"`
}

// AccessLog reads the reads recorded in [from, to), oldest first, from the
// log itself: access events are not held in memory, so a service that runs
// for years does not grow with every read.
func AccessLog(ctx context.Context, store events.Store, from, to time.Time) ([]Access, error) {
	envs, err := store.Load(ctx, escalation.AccessLogStream(), 0)
	if errors.Is(err, events.ErrStreamNotFound) {
		return []Access{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := []Access{}
	for _, env := range envs {
		at := env.RecordedAt
		if at.Before(from) || (!to.IsZero() && !at.Before(to)) {
			continue
		}
		ev, err := escalation.Decode(env)
		if err != nil {
			return nil, err
		}
		if e, ok := ev.(*escalation.RecordAccessed); ok {
			out = append(out, Access{At: at, Username: e.Username, Role: e.Role, What: e.What, ResidentID: e.ResidentID,
				EscalationID: e.EscalationID, From: e.From, To: e.To})
		}
	}
	return out, nil
}

// Model is the audit read model. Its checkpoint (the last position applied)
// lives with its data: a redelivered event is recognised and ignored.
type Model struct {
	mu          sync.RWMutex
	pos         int64
	escalations map[escalation.EscalationID]*Escalation
	order       []escalation.EscalationID
	admissions  map[escalation.ResidentID][]Admission
	deaths      map[escalation.ResidentID]Death
	applied     int64
	// at is the applied position, for WaitFor.
	at events.PositionWaiter

	// byResident are each resident's escalations, for the admissions and
	// deaths that change them; seqs numbers escalations; logTime is the
	// latest recorded time applied; indexes are the kept figures (buckets.go).
	byResident map[escalation.ResidentID][]*Escalation
	seqs       int
	logTime    time.Time
	indexes    []*index
	dirty      []*Escalation
}

// NewModel returns an empty model.
func NewModel() *Model {
	return &Model{escalations: map[escalation.EscalationID]*Escalation{}, admissions: map[escalation.ResidentID][]Admission{},
		deaths: map[escalation.ResidentID]Death{}, byResident: map[escalation.ResidentID][]*Escalation{}}
}

// Position is the last global position applied.
func (m *Model) Position() int64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.pos
}

// Apply applies one event of the global log.
func (m *Model) Apply(env events.Envelope) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if env.Position <= m.pos {
		return nil
	}
	if err := m.apply(env); err != nil {
		return err
	}
	m.pos = env.Position
	m.applied++
	m.at.Advance(env.Position)
	return nil
}

// WaitFor blocks until the model has applied position pos or ctx is done.
func (m *Model) WaitFor(ctx context.Context, pos int64) error { return m.at.Wait(ctx, pos) }

// auditTypes are the event types the model reads; others are not decoded.
var auditTypes = map[string]bool{
	escalation.TypeEscalationRaised: true, escalation.TypeEscalationAccepted: true, escalation.TypeEscalationUnanswered: true,
	escalation.TypeEscalationDecided: true, escalation.TypeEscalationWithdrawn: true, escalation.TypeEscalationFollowedUp: true,
	escalation.TypeHospitalAdmissionRecorded: true, escalation.TypeResidentDied: true,
}

func (m *Model) apply(env events.Envelope) error {
	if env.RecordedAt.After(m.logTime) {
		m.logTime = env.RecordedAt
	}
	if !auditTypes[env.Type] || !strings.HasPrefix(env.Stream, "resident-") {
		return nil
	}
	ev, err := escalation.Decode(env)
	if err != nil || ev == nil {
		return err
	}
	at := env.RecordedAt
	rid := escalation.ResidentID(strings.TrimPrefix(env.Stream, "resident-"))
	// change applies a change to one escalation: the buckets take it at
	// the next flush.
	change := func(id escalation.EscalationID, f func(a *Escalation)) {
		if a := m.escalations[id]; a != nil {
			f(a)
			m.touch(a)
		}
	}
	// residentChange applies a change to what every escalation of the
	// resident is judged by.
	residentChange := func(f func()) {
		f()
		for _, a := range m.byResident[rid] {
			m.touch(a)
		}
	}
	switch e := ev.(type) {
	case *escalation.EscalationRaised:
		a := &Escalation{ID: e.EscalationID, ResidentID: rid, CareHomeID: e.CareHomeID, RaisedAt: at, Situation: e.SBARD.Situation, seq: m.seqs}
		m.seqs++
		if e.NEWS2 != nil {
			if e.NEWS2.Total != nil {
				t := *e.NEWS2.Total
				a.NEWS2Total, a.NEWS2Risk = &t, string(*e.NEWS2.Risk)
			}
			a.NEWS2Label, a.NEWS2ResponseRisk = e.NEWS2.Label(), string(e.NEWS2.ResponseRisk())
		}
		if old, dup := m.escalations[a.ID]; dup {
			m.touch(old) // the flush takes it out: it is no longer the escalation
			m.byResident[old.ResidentID] = slices.DeleteFunc(m.byResident[old.ResidentID], func(x *Escalation) bool { return x == old })
		} else {
			m.order = append(m.order, a.ID)
		}
		m.escalations[a.ID] = a
		m.byResident[rid] = append(m.byResident[rid], a)
		m.touch(a)
	case *escalation.EscalationAccepted:
		change(e.EscalationID, func(a *Escalation) { a.AcceptedAt, a.AcceptedBy = &at, e.By.Username })
	case *escalation.EscalationUnanswered:
		change(e.EscalationID, func(a *Escalation) {
			if a.UnansweredAt == nil {
				a.UnansweredAt = &at
			}
		})
	case *escalation.EscalationDecided:
		change(e.EscalationID, func(a *Escalation) {
			a.DecidedAt, a.Outcome, a.Counterfactual, a.DecidedBy = &at, e.Outcome, e.Counterfactual, e.DecidedBy
			a.Rationale, a.Plan = e.Rationale, e.Plan
		})
	case *escalation.EscalationWithdrawn:
		change(e.EscalationID, func(a *Escalation) { a.WithdrawnAt = &at })
	case *escalation.EscalationFollowedUp:
		change(e.EscalationID, func(a *Escalation) {
			a.FollowUps = append(a.FollowUps, FollowUp{Status: e.Status, At: e.At, RecordedAt: at})
		})
	case *escalation.HospitalAdmissionRecorded:
		residentChange(func() {
			m.admissions[rid] = append(m.admissions[rid], Admission{At: e.At, Kind: e.Kind, Unplanned: e.Unplanned, RecordedAt: at})
		})
	case *escalation.ResidentDied:
		residentChange(func() { m.deaths[rid] = Death{At: e.At, Expected: e.Expected, RecordedAt: at} })
	}
	return nil
}

// maxDirty bounds the escalations changed since the buckets last took
// their changes: a replay flushes every so often, a query always first.
const maxDirty = 256

// touch marks an escalation changed, for the next flush. Events of one
// escalation come in runs (a replay holds each resident's stream together),
// so a flush mostly handles each once however many events changed it.
func (m *Model) touch(a *Escalation) {
	if len(m.indexes) == 0 || a.dirty {
		return
	}
	a.dirty = true
	m.dirty = append(m.dirty, a)
	if len(m.dirty) >= maxDirty {
		m.flush()
	}
}

// flush gives the kept indexes every escalation changed since the last
// flush: each leaves its chunk with what it added, and comes back with its
// new versions, unless a repeated raise replaced it; then the samples changed
// are merged into their sorted runs.
func (m *Model) flush() {
	for _, a := range m.dirty {
		a.dirty = false
		current := m.escalations[a.ID] == a
		for _, ix := range m.indexes {
			ix.remove(a)
			if current {
				ix.add(m, a)
			}
		}
	}
	m.dirty = m.dirty[:0]
	for _, ix := range m.indexes {
		ix.prepare() // so that no query pays for merging a replay's samples
	}
}

// Escalations returns copies of the escalations raised in [from, to), by raise time.
func (m *Model) Escalations(from, to time.Time) []Escalation {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []Escalation
	for _, id := range m.order {
		e := m.escalations[id]
		if (!from.IsZero() && e.RaisedAt.Before(from)) || (!to.IsZero() && !e.RaisedAt.Before(to)) {
			continue
		}
		c := *e
		c.FollowUps = slices.Clone(e.FollowUps)
		out = append(out, c)
	}
	slices.SortStableFunc(out, func(a, b Escalation) int { return a.RaisedAt.Compare(b.RaisedAt) })
	return out
}

// Digest is a JSON rendering of the whole model, used to check that a
// rebuild equals the live model.
func (m *Model) Digest() string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	b, _ := json.Marshal(struct {
		E []*Escalation
		A map[escalation.ResidentID][]Admission
		D map[escalation.ResidentID]Death
	}{m.sorted(), m.admissions, m.deaths})
	return string(b)
}

func (m *Model) sorted() []*Escalation {
	out := make([]*Escalation, 0, len(m.order))
	for _, id := range m.order {
		out = append(out, m.escalations[id])
	}
	return out
}
