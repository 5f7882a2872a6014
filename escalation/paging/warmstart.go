package paging

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/events"
)

// WarmStart brings a pager that has applied nothing up to position at
// without reading the whole log: it applies, in log order, the events up
// to at of the resident and paging streams of open, the escalations that
// are paging, unanswered or accepted as of at (the read model's Open), and
// then stands at at, where its consumer takes over.
//
// The pager's state of an escalation is made only of the events of that
// escalation's resident and paging streams (Apply reads no others), and an
// escalation decided or withdrawn by at is one it no longer tracks; so the
// state it reaches is the one a replay of the whole log up to at reaches.
// At 10M events that replay is minutes; this is a few streams. It returns
// how many events it applied. On an error the pager is left as it was (at
// position 0, its consumer replaying the whole log).
func (p *Pager) WarmStart(ctx context.Context, open []escalation.OpenEscalation, at int64) (int, error) {
	if pos := p.Position(); pos != 0 {
		return 0, fmt.Errorf("paging: warm start of a pager already at %d", pos)
	}
	// The streams: each open escalation's paging stream, and its
	// resident's stream once; read on every core at once.
	var streams []string
	residents := map[escalation.ResidentID]bool{}
	for _, o := range open {
		if !residents[o.ResidentID] {
			residents[o.ResidentID] = true
			streams = append(streams, escalation.ResidentStream(o.ResidentID))
		}
		streams = append(streams, escalation.PagingStream(o.ID))
	}
	got := make([][]events.Envelope, len(streams))
	if err := events.InParallel(len(streams), func(i int) error {
		evs, err := p.cfg.Store.Load(ctx, streams[i], 0)
		if errors.Is(err, events.ErrStreamNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("paging: warm start: load %s: %w", streams[i], err)
		}
		got[i] = slices.DeleteFunc(evs, func(e events.Envelope) bool { return e.Position > at })
		return nil
	}); err != nil {
		return 0, err
	}
	evs := slices.Concat(got...)
	slices.SortFunc(evs, func(a, b events.Envelope) int { return cmp.Compare(a.Position, b.Position) })
	evs = slices.CompactFunc(evs, func(a, b events.Envelope) bool { return a.Position == b.Position })
	for _, e := range evs {
		if err := p.Apply(e); err != nil {
			p.reset() // the consumer replays the whole log instead
			return 0, fmt.Errorf("paging: warm start: apply position %d: %w", e.Position, err)
		}
	}
	p.mu.Lock()
	p.pos = max(p.pos, at)
	p.mu.Unlock()
	p.at.Advance(at)
	p.poke()
	return len(evs), nil
}

// reset empties a pager that has only replayed (nothing live, no timers run).
func (p *Pager) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pos = 0
	clear(p.states)
	clear(p.pageOf)
	clear(p.owed)
}

// Tracked returns a copy of the state of every escalation the pager
// tracks, by escalation ID, and the pages it knows by ID (each one's
// escalation): what a warm start must reach, for tests and the bench to
// compare with a replay of the whole log.
func (p *Pager) Tracked() ([]State, map[string]escalation.EscalationID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]State, 0, len(p.states))
	for _, st := range p.states {
		c := *st
		c.Pages = make([]Page, len(st.Pages))
		for i, pg := range st.Pages {
			pg.Consultants = slices.Clone(pg.Consultants)
			pg.receipts = maps.Clone(pg.receipts)
			c.Pages[i] = pg
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b State) int { return cmp.Compare(a.EscalationID, b.EscalationID) })
	return out, maps.Clone(p.pageOf)
}
