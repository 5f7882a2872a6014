package audit

import (
	"fmt"
	"time"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/events"
)

// SnapshotName names the audit model's snapshot in the store.
const SnapshotName = "audit"

// modelState is what the audit model's snapshot keeps: the escalations and
// what they are judged by. The per-resident lists and the buckets point at
// the same escalations and are rebuilt from them.
type modelState struct {
	Pos         int64
	Escalations map[escalation.EscalationID]*Escalation
	Order       []escalation.EscalationID
	Admissions  map[escalation.ResidentID][]Admission
	Deaths      map[escalation.ResidentID]Death
	Applied     int64
	Seqs        int
	LogTime     time.Time
}

// stateVersion is bumped when apply changes what the same events build, so
// that a snapshot taken by the older code is not restored. 2: the
// hand-written binary form of snapshot_codec.go (a snapshot of the generic
// one is rebuilt from the log, never read as the new one). 3: each
// escalation's kept member carried.
const stateVersion = "3"

// StateSchema is the shape of the audit model's snapshot.
func (m *Model) StateSchema() string { return stateVersion + "-" + events.StateSchema(&modelState{}) }

// MarshalState encodes the model and returns the position it reflects.
func (m *Model) MarshalState() (int64, []byte, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	st := modelState{Pos: m.pos, Escalations: m.escalations, Order: m.order, Admissions: m.admissions, Deaths: m.deaths,
		Applied: m.applied, Seqs: m.seqs, LogTime: m.logTime}
	var kept keptMembers
	if len(m.indexes) > 0 {
		ix := m.indexes[0]
		kept = keptMembers{zone: ix.loc.String(), window: ix.window, member: func(e *Escalation) *member {
			if e.dirty {
				return nil // changed since the index took it
			}
			return ix.member(e.seq)
		}}
	}
	data, err := encodeStateKept(&st, kept)
	if err != nil {
		return 0, nil, fmt.Errorf("audit: snapshot: %w", err)
	}
	return m.pos, data, nil
}

// RestoreState replaces the model with an encoded one, before any event is
// applied; the figures kept (Keep) are rebuilt from it, each escalation
// placed with the member the snapshot carries for the same zone and window,
// or else judged.
func (m *Model) RestoreState(data []byte) error {
	st, list, restored, err := decodeStateList(data)
	if err != nil {
		return fmt.Errorf("audit: restore: %w", err)
	}
	m.mu.Lock()
	m.pos, m.escalations, m.order, m.admissions, m.deaths = st.Pos, st.Escalations, st.Order, st.Admissions, st.Deaths
	m.applied, m.seqs, m.logTime = st.Applied, st.Seqs, st.LogTime
	if m.escalations == nil {
		m.escalations = map[escalation.EscalationID]*Escalation{}
	}
	if m.admissions == nil {
		m.admissions = map[escalation.ResidentID][]Admission{}
	}
	if m.deaths == nil {
		m.deaths = map[escalation.ResidentID]Death{}
	}
	m.byResident = map[escalation.ResidentID][]*Escalation{}
	m.dirty = nil
	for _, e := range list {
		e.dirty = false // the kept figures are rebuilt below
		m.byResident[e.ResidentID] = append(m.byResident[e.ResidentID], e)
	}
	kept := m.indexes
	m.indexes = nil
	for _, ix := range kept {
		var members []*member
		if ix.loc.String() == restored.zone && ix.window == restored.window {
			members = restored.members
		}
		m.newIndex(ix.loc, ix.window, list, members)
	}
	m.mu.Unlock()
	m.at.Advance(st.Pos)
	return nil
}
