package escalation

import (
	"maps"
	"slices"

	"github.com/nightcall-health/nightcall/escalation/news2"
)

// Copies handed out of an aggregate or the read model, so that no caller
// shares state that apply goes on changing, and no caller's change reaches it.

// clonePtr returns a pointer to a copy of *p, or nil.
func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	c := *p
	return &c
}

// clone returns a copy of e that shares nothing apply changes; nil for nil.
func (e *Escalation) clone() *Escalation {
	if e == nil {
		return nil
	}
	c := *e
	c.NEWS2 = cloneResult(e.NEWS2)
	c.AcceptedBy = clonePtr(e.AcceptedBy)
	c.AcceptedAt = clonePtr(e.AcceptedAt)
	c.Decision = clonePtr(e.Decision)
	c.Observations = cloneObservations(e.Observations)
	c.SoftSigns = slices.Clone(e.SoftSigns)
	c.Withdrawal = clonePtr(e.Withdrawal)
	c.FollowUps = slices.Clone(e.FollowUps)
	c.FirstPagedAt = clonePtr(e.FirstPagedAt)
	c.FirstReceiptAt = clonePtr(e.FirstReceiptAt)
	c.FollowUpDueAt = clonePtr(e.FollowUpDueAt)
	c.Timeline = slices.Clone(e.Timeline)
	c.Delivery = e.Delivery.clone()
	c.Snapshots = slices.Clone(e.Snapshots)
	return &c
}

// clone returns a copy of r, its escalations and its series included, that
// shares nothing apply changes.
func (r *Resident) clone() *Resident {
	c := *r
	c.Baseline = clonePtr(r.Baseline)
	c.AdvanceCarePlan = clonePtr(r.AdvanceCarePlan)
	c.Allergies = slices.Clone(r.Allergies)
	c.SpO2ScaleSetAt = clonePtr(r.SpO2ScaleSetAt)
	c.DiedExpected = clonePtr(r.DiedExpected)
	c.Observations = slices.Clone(r.Observations)
	c.Admissions = slices.Clone(r.Admissions)
	c.Escalations = make([]*Escalation, len(r.Escalations))
	for i, e := range r.Escalations {
		c.Escalations[i] = e.clone()
	}
	c.changes = changes{version: r.version}
	return &c
}

// cloneObservations copies a recorded set and its map of absent values. The
// values themselves are recorded facts that nothing changes once scored.
func cloneObservations(o *Observations) *Observations {
	if o == nil {
		return nil
	}
	c := *o
	c.Absent = maps.Clone(o.Absent)
	return &c
}

// cloneResult copies a NEWS2 result and its sub-scores.
func cloneResult(r *news2.Result) *news2.Result {
	if r == nil {
		return nil
	}
	c := *r
	c.Total, c.Risk, c.AtLeast, c.RiskAtLeast = clonePtr(r.Total), clonePtr(r.Risk), clonePtr(r.AtLeast), clonePtr(r.RiskAtLeast)
	s := &c.SubScores
	s.RespirationRate, s.SpO2, s.AirOrOxygen = clonePtr(s.RespirationRate), clonePtr(s.SpO2), clonePtr(s.AirOrOxygen)
	s.SystolicBP, s.Pulse, s.Consciousness, s.Temperature = clonePtr(s.SystolicBP), clonePtr(s.Pulse), clonePtr(s.Consciousness), clonePtr(s.Temperature)
	return &c
}
