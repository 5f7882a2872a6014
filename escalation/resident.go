package escalation

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nightcall-health/nightcall/escalation/news2"
	"github.com/nightcall-health/nightcall/events"
)

// Resident is the aggregate on stream resident-{id}: the resident's details,
// clinical baseline and history, and every escalation raised for them.
// Its state is unexported and always folded from events: it changes only
// through the command methods, which decide against it and record new
// events, and it is read only as copies (View, Escalation, OpenEscalation),
// so nothing outside the aggregate holds a pointer into it. A Resident is
// made by NewResident (a new admission) or Rehydrate (a stored stream).
type Resident struct {
	state ResidentView
	changes
}

// ErrNotAResidentStream means a stream does not open with a resident's
// admission, so no resident can be rebuilt from it.
var ErrNotAResidentStream = errors.New("escalation: the stream does not open with " + TypeResidentAdmitted)

// NewResident admits a resident: in is validated (and normalised, as
// ResidentInput.Validate does) and the admission's events are recorded,
// ready to open the resident's stream.
func NewResident(in ResidentInput, now time.Time) (*Resident, error) {
	if err := in.Validate(now); err != nil {
		return nil, err
	}
	r := &Resident{}
	for _, e := range in.events(now) {
		r.record(e, now)
	}
	return r, nil
}

// Rehydrate rebuilds a resident from its stored stream, which must open
// with the resident's admission.
func Rehydrate(envs []events.Envelope) (*Resident, error) {
	if len(envs) == 0 || envs[0].Type != TypeResidentAdmitted {
		return nil, ErrNotAResidentStream
	}
	r := &Resident{}
	for _, env := range envs {
		if err := r.ApplyEnvelope(env); err != nil {
			return nil, err
		}
	}
	if r.state.ID == "" {
		return nil, fmt.Errorf("%w: the admission names no resident", ErrNotAResidentStream)
	}
	return r, nil
}

// Version is the stream version the aggregate was loaded at plus its pending events.
func (r *Resident) Version() int64 { return r.version }

// ID is the resident's ID.
func (r *Resident) ID() ResidentID { return r.state.ID }

// CareHomeID is the home the resident is in.
func (r *Resident) CareHomeID() CareHomeID { return r.state.CareHomeID }

// Status is whether the resident is active, left or died.
func (r *Resident) Status() ResidentStatus { return r.state.Status }

// View returns a deep copy of the resident as read: changing it changes
// nothing in the aggregate.
func (r *Resident) View() ResidentView { return r.state.clone() }

// Escalation returns a copy of the escalation with id, or nil.
func (r *Resident) Escalation(id EscalationID) *EscalationView {
	return r.state.escalation(id).cloneRef()
}

// OpenEscalation returns a copy of the resident's open escalation, or nil.
func (r *Resident) OpenEscalation() *EscalationView { return r.state.openEscalation().cloneRef() }

// escalation is the aggregate's own escalation with id, for the commands
// to decide against; nil when there is none. It never leaves the package.
func (r *Resident) escalation(id EscalationID) *EscalationView { return r.state.escalation(id) }

func (r *Resident) openEscalation() *EscalationView { return r.state.openEscalation() }

// lastObservation is a copy of the newest set in the resident's series; the
// series is not empty.
func (r *Resident) lastObservation() ObservationRecord {
	return r.state.Observations[len(r.state.Observations)-1].clone()
}

// lastAdmission is the newest recorded admission; there is one.
func (r *Resident) lastAdmission() HospitalAdmission {
	return r.state.Admissions[len(r.state.Admissions)-1]
}

// ApplyEnvelope applies one stored event.
func (r *Resident) ApplyEnvelope(env events.Envelope) error {
	ev, err := Decode(env)
	if err != nil {
		return err
	}
	if ev != nil {
		r.apply(ev, env.RecordedAt)
	}
	r.version = env.Version
	return nil
}

// record applies a new event and keeps it for saving.
func (r *Resident) record(e Event, at time.Time) {
	at = at.UTC() // times on the wire are UTC
	r.apply(e, at)
	r.keep(e, at)
}

// apply mutates state by the read side's fold (view.go): the aggregate
// decides against exactly what a reader is shown. It never fails.
func (r *Resident) apply(ev Event, at time.Time) { r.state.apply(ev, at) }

// Pending returns the events recorded since load, ready to append.
func (r *Resident) Pending(actor Username, correlationID string, newID func() string) ([]events.NewEvent, error) {
	return toNewEvents(r.pending, actor, correlationID, newID)
}

// Active reports whether the resident can be escalated.
func (r *Resident) Active() bool { return r.state.Status == ResidentStatusActive }

// Raise opens an escalation. obs may be nil when only soft signs are given.
func (r *Resident) Raise(id EscalationID, obs *Observations, signs []SoftSign, sbard SBARD, by Actor, now time.Time) (*EscalationView, error) {
	if !r.Active() {
		return nil, ErrResidentInactive
	}
	if open := r.openEscalation(); open != nil {
		return nil, &EscalationOpenError{EscalationID: open.ID}
	}
	if obs == nil && len(signs) == 0 {
		return nil, inputErr(KindMissingField, "observations", "give observations, soft signs, or both")
	}
	if strings.TrimSpace(sbard.Situation) == "" {
		return nil, inputErr(KindMissingField, "sbard.situation", "describe the situation: what has changed and when")
	}
	if err := CheckConsistency(obs, signs); err != nil {
		return nil, err
	}
	var score *news2.Result
	if obs != nil {
		s := news2.Score(obs.Vitals(), r.state.SpO2Scale)
		score = &s
	}
	if signs == nil {
		signs = []SoftSign{}
	}
	r.record(&EscalationRaised{
		EscalationID: id, CareHomeID: r.state.CareHomeID, Observations: obs, NEWS2: score, SpO2Scale: r.state.SpO2Scale,
		SoftSigns: signs, SBARD: sbard, Advice: AdviceFor(score, r.state.AdvanceCarePlan), RaisedBy: by.Username,
	}, now)
	return r.Escalation(id), nil
}

// Accept records that consultant took escalation id. The same consultant
// accepting again changes nothing.
func (r *Resident) Accept(id EscalationID, by Actor, now time.Time) error {
	esc := r.escalation(id)
	if esc == nil {
		return ErrNotFound
	}
	switch esc.Status {
	case StatusAccepted:
		if esc.AcceptedBy.Username == by.Username {
			return nil
		}
		return &AlreadyAcceptedError{By: *esc.AcceptedBy}
	case StatusDecided:
		if esc.AcceptedBy != nil && esc.AcceptedBy.Username != by.Username {
			return &AlreadyAcceptedError{By: *esc.AcceptedBy}
		}
		return ErrAlreadyDecided
	case StatusWithdrawn:
		return ErrEscalationClosed
	}
	r.record(&EscalationAccepted{EscalationID: id, By: by.Person}, now)
	return nil
}

// DecisionInput is what the consultant records.
type DecisionInput struct {
	Outcome        Outcome
	Counterfactual Counterfactual
	Rationale      string
	Plan           string
}

// Validate checks the enumerations and required fields.
func (d DecisionInput) Validate() error {
	switch {
	case d.Outcome == "":
		return inputErr(KindMissingField, "outcome", "outcome is required: admit or stay")
	case d.Outcome != OutcomeAdmit && d.Outcome != OutcomeStay:
		return inputErr(KindInvalidValue, "outcome", "outcome must be admit or stay")
	case d.Counterfactual == "":
		return inputErr(KindMissingField, "counterfactual", "counterfactual is required: ed, gp or none")
	case d.Counterfactual != CounterfactualED && d.Counterfactual != CounterfactualGP && d.Counterfactual != CounterfactualNone:
		return inputErr(KindInvalidValue, "counterfactual", "counterfactual must be ed, gp or none")
	case strings.TrimSpace(d.Rationale) == "":
		return inputErr(KindMissingField, "rationale", "give the rationale for the decision")
	case d.Outcome == OutcomeStay && strings.TrimSpace(d.Plan) == "":
		return inputErr(KindMissingField, "plan", "a stay needs a plan: what to do, when to re-check, when to call again")
	}
	return nil
}

// Decide records the accepting consultant's decision.
func (r *Resident) Decide(id EscalationID, d DecisionInput, by Actor, now time.Time) error {
	esc := r.escalation(id)
	if esc == nil {
		return ErrNotFound
	}
	// Only the consultant who accepted learns how the lifecycle stands
	// after the accept (decided, or not): anyone else is refused first.
	if esc.AcceptedBy != nil && esc.AcceptedBy.Username != by.Username {
		return ErrForbidden
	}
	switch esc.Status {
	case StatusPaging, StatusUnanswered:
		return ErrNotAccepted
	case StatusWithdrawn:
		return ErrEscalationClosed
	case StatusDecided:
		return ErrAlreadyDecided
	}
	if err := d.Validate(); err != nil {
		return err
	}
	r.record(&EscalationDecided{
		EscalationID: id, Outcome: d.Outcome, Counterfactual: d.Counterfactual, Rationale: d.Rationale, Plan: d.Plan,
		DecidedBy: by.Username, DecidedByName: by.Name,
	}, now)
	return nil
}

// Withdraw closes an escalation the home no longer needs; allowed until decided.
func (r *Resident) Withdraw(id EscalationID, reason string, by Actor, now time.Time) error {
	esc := r.escalation(id)
	if esc == nil {
		return ErrNotFound
	}
	switch esc.Status {
	case StatusDecided:
		return ErrAlreadyDecided
	case StatusWithdrawn:
		return ErrEscalationClosed
	}
	if strings.TrimSpace(reason) == "" {
		return inputErr(KindMissingField, "reason", "say why the escalation is withdrawn")
	}
	r.record(&EscalationWithdrawn{EscalationID: id, Reason: reason, By: by.Username}, now)
	return nil
}

// MarkUnanswered records that nobody accepted in time (or nobody is on call).
func (r *Resident) MarkUnanswered(id EscalationID, reason string, now time.Time) error {
	esc := r.escalation(id)
	if esc == nil {
		return ErrNotFound
	}
	if esc.Status != StatusPaging {
		return nil // already unanswered, or no longer waiting: nothing to record
	}
	r.record(&EscalationUnanswered{EscalationID: id, Reason: reason}, now)
	return nil
}

// RecordHospitalAdmission records an admission or A&E attendance.
func (r *Resident) RecordHospitalAdmission(h HospitalAdmissionRecorded, now time.Time) error {
	switch {
	case h.At.IsZero():
		return inputErr(KindMissingField, "at", "give the time of the admission or attendance")
	case h.Kind == "":
		return inputErr(KindMissingField, "kind", "kind is required: admission or ed_attendance")
	case !h.Kind.Valid():
		return inputErr(KindInvalidValue, "kind", "kind must be admission or ed_attendance")
	case h.At.After(now.Add(5 * time.Minute)):
		return inputErr(KindInvalidValue, "at", "the time is in the future")
	}
	h.At = h.At.UTC()
	r.record(&h, now)
	return nil
}

// RecordObservations records a routine set, scored on the resident's scale.
func (r *Resident) RecordObservations(obs Observations, now time.Time) (ObservationRecord, error) {
	if !r.Active() {
		return ObservationRecord{}, ErrResidentInactive
	}
	score := news2.Score(obs.Vitals(), r.state.SpO2Scale)
	r.record(&ObservationsRecorded{Observations: obs, NEWS2: score, SpO2Scale: r.state.SpO2Scale}, now)
	return r.lastObservation(), nil
}

// FollowUpWindow is how long after a stay the home is asked where the resident is.
const FollowUpWindow = 72 * time.Hour

// FollowUp records the home's confirmation of where the resident is after a stay.
func (r *Resident) FollowUp(id EscalationID, status FollowUpStatus, at, now time.Time) error {
	esc := r.escalation(id)
	if esc == nil {
		return ErrNotFound
	}
	if esc.Decision == nil || esc.Decision.Outcome != OutcomeStay {
		return ErrNotAStay
	}
	switch {
	case status == "":
		return inputErr(KindMissingField, "status", "status is required: at_home, admitted, ed_attendance or died")
	case !status.Valid():
		return inputErr(KindInvalidValue, "status", "status must be at_home, admitted, ed_attendance or died")
	}
	switch {
	case at.IsZero():
		return inputErr(KindMissingField, "at", "give the time the resident was in that place")
	case at.After(now.Add(5 * time.Minute)):
		return inputErr(KindInvalidValue, "at", "the time is in the future")
	case at.Before(esc.Decision.DecidedAt):
		return inputErr(KindInvalidValue, "at", "the time is before the decision")
	}
	r.record(&EscalationFollowedUp{EscalationID: id, Status: status, At: at.UTC()}, now)
	return nil
}
