package escalation

import (
	"fmt"
	"strings"
	"time"

	"github.com/nightcall-health/nightcall/escalation/news2"
	"github.com/nightcall-health/nightcall/events"
)

// Resident is the aggregate on stream resident-{id}: the resident's details,
// clinical baseline and history, and every escalation raised for them.
// Its fields are for reading; state changes only through the command methods,
// which decide against the current state and then apply new events.
type Resident struct {
	ID              ResidentID          `json:"id"`
	CareHomeID      CareHomeID          `json:"care_home_id"`
	Name            string              `json:"name"`
	DateOfBirth     string              `json:"date_of_birth"`
	Room            string              `json:"room"`
	NHSNumber       string              `json:"nhs_number"`
	Status          ResidentStatus      `json:"status"`
	SpO2Scale       news2.Scale         `json:"spo2_scale"`
	Baseline        *Baseline           `json:"baseline"`
	AdvanceCarePlan *AdvanceCarePlan    `json:"advance_care_plan"`
	Allergies       []string            `json:"allergies"`
	SpO2ScaleSetBy  string              `json:"spo2_scale_set_by,omitempty"`
	SpO2ScaleSetAt  *time.Time          `json:"spo2_scale_set_at,omitempty"`
	DiedExpected    *bool               `json:"died_expected,omitempty"`
	Observations    []ObservationRecord `json:"-"`
	Escalations     []*Escalation       `json:"-"`
	Admissions      []HospitalAdmission `json:"-"`

	changes
}

// ObservationRecord is one scored set in the resident's series.
type ObservationRecord struct {
	TakenAt      time.Time    `json:"taken_at"`
	NEWS2        news2.Result `json:"news2"`
	Observations Observations `json:"observations"`
}

// HospitalAdmission is a recorded admission or A&E attendance.
type HospitalAdmission struct {
	HospitalAdmissionRecorded
	RecordedAt time.Time `json:"recorded_at"`
}

// Escalation is one request for a consultant, inside its resident's stream.
type Escalation struct {
	ID             EscalationID    `json:"id"`
	ResidentID     ResidentID      `json:"resident_id"`
	CareHomeID     CareHomeID      `json:"care_home_id"`
	Status         Status          `json:"status"`
	NEWS2          *news2.Result   `json:"news2"`
	RaisedAt       time.Time       `json:"raised_at"`
	FallbackPhone  string          `json:"fallback_phone"`
	Advice         Advice          `json:"advice"`
	AcceptedBy     *Person         `json:"accepted_by"`
	AcceptedAt     *time.Time      `json:"accepted_at"`
	Decision       *Decision       `json:"decision"`
	Observations   *Observations   `json:"observations"`
	SoftSigns      []SoftSign      `json:"soft_signs"`
	SBARD          SBARD           `json:"sbard"`
	RaisedBy       Username        `json:"raised_by"`
	EverUnanswered bool            `json:"ever_unanswered"`
	Withdrawal     *Withdrawal     `json:"withdrawal,omitempty"`
	FollowUps      []FollowUp      `json:"follow_ups"`
	FirstPagedAt   *time.Time      `json:"first_paged_at"`
	FirstReceiptAt *time.Time      `json:"first_receipt_at"`
	FollowUpDueAt  *time.Time      `json:"follow_up_due_at"`
	FollowUpNeeded bool            `json:"follow_up_needed"`
	Timeline       []TimelineEntry `json:"timeline"`
	// Delivery is how the pages reached the consultants (delivery.go).
	Delivery Delivery `json:"delivery"`
	// Snapshots are the stills taken in the call (snapshot.go).
	Snapshots []Snapshot `json:"snapshots,omitempty"`
}

// Decision is the consultant's recorded decision.
type Decision struct {
	Outcome        Outcome        `json:"outcome"`
	Counterfactual Counterfactual `json:"counterfactual"`
	Rationale      string         `json:"rationale"`
	Plan           string         `json:"plan"`
	DecidedBy      Username       `json:"decided_by"`
	DecidedByName  string         `json:"decided_by_name"`
	DecidedAt      time.Time      `json:"decided_at"`
}

// Withdrawal records why the home withdrew.
type Withdrawal struct {
	Reason string    `json:"reason"`
	By     Username  `json:"by"`
	At     time.Time `json:"at"`
}

// FollowUp is the home's confirmation of where the resident is after a stay.
type FollowUp struct {
	Status     FollowUpStatus `json:"status"`
	At         time.Time      `json:"at"`
	RecordedAt time.Time      `json:"recorded_at"`
}

// TimelineEntry is one line of an escalation's history.
type TimelineEntry struct {
	At     time.Time `json:"at"`
	Type   string    `json:"type"`
	Detail string    `json:"detail"`
}

// Version is the stream version the aggregate was loaded at plus its pending events.
func (r *Resident) Version() int64 { return r.version }

// Escalation returns a copy of the escalation with id, or nil.
func (r *Resident) Escalation(id EscalationID) *Escalation { return r.escalation(id).clone() }

// OpenEscalation returns a copy of the resident's open escalation, or nil.
func (r *Resident) OpenEscalation() *Escalation { return r.openEscalation().clone() }

// escalation is the aggregate's own escalation with id, for apply and the
// commands to change; nil when there is none.
func (r *Resident) escalation(id EscalationID) *Escalation {
	for _, e := range r.Escalations {
		if e.ID == id {
			return e
		}
	}
	return nil
}

func (r *Resident) openEscalation() *Escalation {
	for _, e := range r.Escalations {
		if e.Status.Open() {
			return e
		}
	}
	return nil
}

// Rehydrate rebuilds a resident from its stored stream.
func Rehydrate(envs []events.Envelope) (*Resident, error) {
	r := &Resident{}
	for _, env := range envs {
		if err := r.ApplyEnvelope(env); err != nil {
			return nil, err
		}
	}
	return r, nil
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

// apply mutates state; it never fails.
func (r *Resident) apply(ev Event, at time.Time) {
	switch e := ev.(type) {
	case *ResidentAdmitted:
		r.ID, r.CareHomeID, r.Name, r.DateOfBirth, r.Room, r.NHSNumber = e.ResidentID, e.CareHomeID, e.Name, e.DateOfBirth, e.Room, e.NHSNumber
		r.SpO2Scale, r.Status = e.SpO2Scale, ResidentStatusActive
		if !r.SpO2Scale.Valid() {
			r.SpO2Scale = news2.Scale1
		}
	case *BaselineRecorded:
		b := e.Baseline
		r.Baseline = &b
	case *CarePlanRecorded:
		p := e.Plan
		r.AdvanceCarePlan = &p
	case *SpO2ScaleChanged:
		setAt := e.SetAt
		r.SpO2Scale, r.SpO2ScaleSetBy, r.SpO2ScaleSetAt = e.Scale, e.SetBy, &setAt
	case *ResidentMoved:
		r.CareHomeID = e.To
		if e.Room != "" {
			r.Room = e.Room
		}
	case *AllergiesRecorded:
		r.Allergies = e.Allergies
	case *ObservationsRecorded:
		r.Observations = append(r.Observations, ObservationRecord{TakenAt: e.Observations.TakenAt, NEWS2: e.NEWS2, Observations: e.Observations})
	case *HospitalAdmissionRecorded:
		r.Admissions = append(r.Admissions, HospitalAdmission{HospitalAdmissionRecorded: *e, RecordedAt: at})
	case *ResidentLeft:
		r.Status = ResidentStatusLeft
	case *ResidentDied:
		expected := e.Expected
		r.Status, r.DiedExpected = ResidentStatusDied, &expected
	case *EscalationRaised:
		esc := &Escalation{
			ID: e.EscalationID, ResidentID: r.ID, CareHomeID: e.CareHomeID, Status: StatusPaging,
			NEWS2: e.NEWS2, RaisedAt: at, Advice: e.Advice, Observations: e.Observations,
			SoftSigns: e.SoftSigns, SBARD: e.SBARD, RaisedBy: e.RaisedBy, FollowUps: []FollowUp{},
		}
		if esc.SoftSigns == nil {
			esc.SoftSigns = []SoftSign{}
		}
		detail := "raised by " + string(e.RaisedBy) + "; advice " + string(e.Advice.Level)
		if e.NEWS2 != nil {
			detail += "; NEWS2 " + e.NEWS2.Label()
		}
		esc.Timeline = []TimelineEntry{{At: at, Type: TypeEscalationRaised, Detail: detail}}
		if e.Observations != nil {
			r.Observations = append(r.Observations, ObservationRecord{TakenAt: e.Observations.TakenAt, NEWS2: *e.NEWS2, Observations: *e.Observations})
		}
		r.Escalations = append(r.Escalations, esc)
	case *EscalationAccepted:
		if esc := r.escalation(e.EscalationID); esc != nil {
			by, t := e.By, at
			esc.Status, esc.AcceptedBy, esc.AcceptedAt = StatusAccepted, &by, &t
			esc.Timeline = append(esc.Timeline, TimelineEntry{At: at, Type: TypeEscalationAccepted,
				Detail: fmt.Sprintf("accepted by %s (%.1f s after raise)", by.Username, at.Sub(esc.RaisedAt).Seconds())})
		}
	case *EscalationUnanswered:
		if esc := r.escalation(e.EscalationID); esc != nil {
			if esc.Status == StatusPaging {
				esc.Status = StatusUnanswered
			}
			esc.EverUnanswered = true
			esc.Timeline = append(esc.Timeline, TimelineEntry{At: at, Type: TypeEscalationUnanswered, Detail: e.Reason})
		}
	case *EscalationDecided:
		if esc := r.escalation(e.EscalationID); esc != nil {
			esc.Status = StatusDecided
			esc.Decision = &Decision{
				Outcome: e.Outcome, Counterfactual: e.Counterfactual, Rationale: e.Rationale, Plan: e.Plan,
				DecidedBy: e.DecidedBy, DecidedByName: e.DecidedByName, DecidedAt: at,
			}
			esc.Timeline = append(esc.Timeline, TimelineEntry{At: at, Type: TypeEscalationDecided, Detail: string(e.Outcome) + " by " + string(e.DecidedBy)})
		}
	case *EscalationWithdrawn:
		if esc := r.escalation(e.EscalationID); esc != nil {
			esc.Status = StatusWithdrawn
			esc.Withdrawal = &Withdrawal{Reason: e.Reason, By: e.By, At: at}
			esc.Timeline = append(esc.Timeline, TimelineEntry{At: at, Type: TypeEscalationWithdrawn, Detail: "withdrawn by " + string(e.By)})
		}
	case *CallStarted:
		if esc := r.escalation(e.EscalationID); esc != nil {
			esc.applyCall(e, at)
		}
	case *CallParticipantJoined:
		if esc := r.escalation(e.EscalationID); esc != nil {
			esc.applyCall(e, at)
		}
	case *CallParticipantLeft:
		if esc := r.escalation(e.EscalationID); esc != nil {
			esc.applyCall(e, at)
		}
	case *CallEnded:
		if esc := r.escalation(e.EscalationID); esc != nil {
			esc.applyCall(e, at)
		}
	case *EscalationFollowedUp:
		if esc := r.escalation(e.EscalationID); esc != nil {
			esc.FollowUps = append(esc.FollowUps, FollowUp{Status: e.Status, At: e.At, RecordedAt: at})
			esc.Timeline = append(esc.Timeline, TimelineEntry{At: at, Type: TypeEscalationFollowedUp, Detail: string(e.Status)})
		}
	default:
		r.applyFact(ev, at) // events that bring their own apply (snapshot.go)
	}
}

// Pending returns the events recorded since load, ready to append.
func (r *Resident) Pending(actor Username, correlationID string, newID func() string) ([]events.NewEvent, error) {
	return toNewEvents(r.pending, actor, correlationID, newID)
}

// Active reports whether the resident can be escalated.
func (r *Resident) Active() bool { return r.Status == ResidentStatusActive }

// Raise opens an escalation. obs may be nil when only soft signs are given.
func (r *Resident) Raise(id EscalationID, obs *Observations, signs []SoftSign, sbard SBARD, by Actor, now time.Time) (*Escalation, error) {
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
		s := news2.Score(obs.Vitals(), r.SpO2Scale)
		score = &s
	}
	if signs == nil {
		signs = []SoftSign{}
	}
	r.record(&EscalationRaised{
		EscalationID: id, CareHomeID: r.CareHomeID, Observations: obs, NEWS2: score, SpO2Scale: r.SpO2Scale,
		SoftSigns: signs, SBARD: sbard, Advice: AdviceFor(score, r.AdvanceCarePlan), RaisedBy: by.Username,
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
	score := news2.Score(obs.Vitals(), r.SpO2Scale)
	r.record(&ObservationsRecorded{Observations: obs, NEWS2: score, SpO2Scale: r.SpO2Scale}, now)
	return r.Observations[len(r.Observations)-1], nil
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
