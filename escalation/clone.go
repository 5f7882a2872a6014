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

// clone returns a copy of e that shares nothing apply changes.
func (e EscalationView) clone() EscalationView {
	c := e
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
	return c
}

// cloneRef returns a pointer to a copy of *e, or nil for nil.
func (e *EscalationView) cloneRef() *EscalationView {
	if e == nil {
		return nil
	}
	c := e.clone()
	return &c
}

// clone returns a copy of v, its escalations and its series included, that
// shares nothing apply changes.
func (v ResidentView) clone() ResidentView {
	c := v
	c.Baseline = clonePtr(v.Baseline)
	c.AdvanceCarePlan = clonePtr(v.AdvanceCarePlan)
	c.Allergies = slices.Clone(v.Allergies)
	c.SpO2ScaleSetAt = clonePtr(v.SpO2ScaleSetAt)
	c.DiedExpected = clonePtr(v.DiedExpected)
	c.Observations = nil
	if v.Observations != nil {
		c.Observations = make([]ObservationRecord, len(v.Observations))
		for i, o := range v.Observations {
			c.Observations[i] = o.clone()
		}
	}
	c.Admissions = slices.Clone(v.Admissions)
	c.Escalations = nil
	if v.Escalations != nil {
		c.Escalations = make([]EscalationView, len(v.Escalations))
		for i, e := range v.Escalations {
			c.Escalations[i] = e.clone()
		}
	}
	return c
}

// clone returns a copy of o that shares no value with it.
func (o ObservationRecord) clone() ObservationRecord {
	o.NEWS2 = *cloneResult(&o.NEWS2)
	o.Observations = *cloneObservations(&o.Observations)
	return o
}

// cloneRef returns a pointer to a copy of *v, or nil for nil.
func (v *ResidentView) cloneRef() *ResidentView {
	if v == nil {
		return nil
	}
	c := v.clone()
	return &c
}

// cloneObservations copies a recorded set: its values and its map of
// absent values.
func cloneObservations(o *Observations) *Observations {
	if o == nil {
		return nil
	}
	c := *o
	c.RespirationRate, c.SpO2, c.OnOxygen = clonePtr(o.RespirationRate), clonePtr(o.SpO2), clonePtr(o.OnOxygen)
	c.SystolicBP, c.Pulse, c.Consciousness = clonePtr(o.SystolicBP), clonePtr(o.Pulse), clonePtr(o.Consciousness)
	c.Temperature, c.OxygenLitresPerMin = clonePtr(o.Temperature), clonePtr(o.OxygenLitresPerMin)
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
