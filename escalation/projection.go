package escalation

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"

	"nightcall/events"
)

// Projection is the in-memory read model: every resident and escalation,
// the care homes and the rota, as of a position in the global log. Its
// checkpoint lives with its data, so a redelivered event (at-least-once) is
// recognised by position and changes nothing.
type Projection struct {
	mu        sync.RWMutex
	pos       int64
	residents map[ResidentID]*Resident
	escIndex  map[EscalationID]ResidentID
	homes     map[CareHomeID]CareHome
	rota      [][]Username
	advanced  chan struct{}
}

// NewProjection returns an empty read model at position 0.
func NewProjection() *Projection {
	return &Projection{
		residents: map[ResidentID]*Resident{},
		escIndex:  map[EscalationID]ResidentID{},
		homes:     map[CareHomeID]CareHome{},
		advanced:  make(chan struct{}),
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
			r = &Resident{}
			p.residents[id] = r
		}
		if err := r.ApplyEnvelope(env); err != nil {
			return err
		}
		if env.Type == TypeEscalationRaised {
			var e EscalationRaised
			if err := json.Unmarshal(env.Data, &e); err != nil {
				return err
			}
			p.escIndex[e.EscalationID] = id
		}
	case env.Type == TypeCareHomeRegistered:
		var e CareHomeRegistered
		if err := json.Unmarshal(env.Data, &e); err != nil {
			return err
		}
		p.homes[e.ID] = e.CareHome
	case env.Type == TypeRotaLevelsSet:
		var e RotaLevelsSet
		if err := json.Unmarshal(env.Data, &e); err != nil {
			return err
		}
		p.rota = e.Levels
	}
	p.pos = env.Position
	close(p.advanced)
	p.advanced = make(chan struct{})
	return nil
}

// WaitFor blocks until the projection has applied position pos.
func (p *Projection) WaitFor(ctx context.Context, pos int64) error {
	for {
		p.mu.RLock()
		cur, ch := p.pos, p.advanced
		p.mu.RUnlock()
		if cur >= pos {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

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

// RotaLevels returns the consultants on call, level by level.
func (p *Projection) RotaLevels() [][]Username {
	p.mu.RLock()
	defer p.mu.RUnlock()
	out := make([][]Username, len(p.rota))
	for i, l := range p.rota {
		out[i] = slices.Clone(l)
	}
	return out
}

// OnCall reports whether username is on any rota level now.
func (p *Projection) OnCall(username Username) bool {
	for _, level := range p.RotaLevels() {
		if slices.Contains(level, username) {
			return true
		}
	}
	return false
}

// Escalations returns copies of every escalation, newest first.
func (p *Projection) Escalations() []*Escalation {
	p.mu.RLock()
	defer p.mu.RUnlock()
	var out []*Escalation
	for _, r := range p.residents {
		for _, e := range r.Escalations {
			c := *e
			c.Timeline = slices.Clone(e.Timeline)
			out = append(out, &c)
		}
	}
	slices.SortFunc(out, func(a, b *Escalation) int { return b.RaisedAt.Compare(a.RaisedAt) })
	return out
}

// Residents returns shallow copies of every resident, by ID.
func (p *Projection) Residents() []*Resident {
	p.mu.RLock()
	defer p.mu.RUnlock()
	out := make([]*Resident, 0, len(p.residents))
	for _, r := range p.residents {
		c := *r
		c.Escalations = make([]*Escalation, len(r.Escalations))
		for i, e := range r.Escalations {
			ec := *e
			ec.Timeline = slices.Clone(e.Timeline)
			c.Escalations[i] = &ec
		}
		c.Observations = slices.Clone(r.Observations)
		c.Admissions = slices.Clone(r.Admissions)
		out = append(out, &c)
	}
	slices.SortFunc(out, func(a, b *Resident) int { return strings.Compare(string(a.ID), string(b.ID)) })
	return out
}
