package escalation

import (
	"fmt"
	"time"

	"github.com/nightcall-health/nightcall/escalation/news2"
)

// The read side: what a resident and an escalation look like to a reader.
// A view is plain data folded from the events by one apply (below), the one
// definition of what each event means to a reader. The read model keeps its
// state as views; the resident aggregate (resident.go) keeps one as its
// private state. Views leave the package only as deep copies (clone.go), so
// that a caller never shares state that apply goes on changing.

// ResidentView is a resident as read: details, clinical baseline, history,
// and every escalation raised for them, oldest first.
type ResidentView struct {
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
	Escalations     []EscalationView    `json:"-"`
	Admissions      []HospitalAdmission `json:"-"`
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

// EscalationView is one request for a consultant as read.
type EscalationView struct {
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

// Escalation returns a copy of the view's escalation with id, or nil.
func (v *ResidentView) Escalation(id EscalationID) *EscalationView {
	return v.escalation(id).cloneRef()
}

// escalation returns the view's escalation with id, or nil. The pointer is
// into v, for apply and the aggregate to change; it never leaves the package.
func (v *ResidentView) escalation(id EscalationID) *EscalationView {
	for i := range v.Escalations {
		if v.Escalations[i].ID == id {
			return &v.Escalations[i]
		}
	}
	return nil
}

// openEscalation is the view's open escalation (at most one), or nil.
func (v *ResidentView) openEscalation() *EscalationView {
	for i := range v.Escalations {
		if v.Escalations[i].Status.Open() {
			return &v.Escalations[i]
		}
	}
	return nil
}

// apply folds one event of the resident's stream into the view; it never
// fails, and an event it does not know changes nothing.
func (v *ResidentView) apply(ev Event, at time.Time) {
	switch e := ev.(type) {
	case *ResidentAdmitted:
		v.ID, v.CareHomeID, v.Name, v.DateOfBirth, v.Room, v.NHSNumber = e.ResidentID, e.CareHomeID, e.Name, e.DateOfBirth, e.Room, e.NHSNumber
		v.SpO2Scale, v.Status = e.SpO2Scale, ResidentStatusActive
		if !v.SpO2Scale.Valid() {
			v.SpO2Scale = news2.Scale1
		}
	case *BaselineRecorded:
		b := e.Baseline
		v.Baseline = &b
	case *CarePlanRecorded:
		p := e.Plan
		v.AdvanceCarePlan = &p
	case *SpO2ScaleChanged:
		setAt := e.SetAt
		v.SpO2Scale, v.SpO2ScaleSetBy, v.SpO2ScaleSetAt = e.Scale, e.SetBy, &setAt
	case *ResidentMoved:
		v.CareHomeID = e.To
		if e.Room != "" {
			v.Room = e.Room
		}
	case *AllergiesRecorded:
		v.Allergies = e.Allergies
	case *ObservationsRecorded:
		v.Observations = append(v.Observations, ObservationRecord{TakenAt: e.Observations.TakenAt, NEWS2: e.NEWS2, Observations: e.Observations})
	case *HospitalAdmissionRecorded:
		v.Admissions = append(v.Admissions, HospitalAdmission{HospitalAdmissionRecorded: *e, RecordedAt: at})
	case *ResidentLeft:
		v.Status = ResidentStatusLeft
	case *ResidentDied:
		expected := e.Expected
		v.Status, v.DiedExpected = ResidentStatusDied, &expected
	case *EscalationRaised:
		esc := EscalationView{
			ID: e.EscalationID, ResidentID: v.ID, CareHomeID: e.CareHomeID, Status: StatusPaging,
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
			v.Observations = append(v.Observations, ObservationRecord{TakenAt: e.Observations.TakenAt, NEWS2: *e.NEWS2, Observations: *e.Observations})
		}
		v.Escalations = append(v.Escalations, esc)
	case *EscalationAccepted:
		if esc := v.escalation(e.EscalationID); esc != nil {
			by, t := e.By, at
			esc.Status, esc.AcceptedBy, esc.AcceptedAt = StatusAccepted, &by, &t
			esc.Timeline = append(esc.Timeline, TimelineEntry{At: at, Type: TypeEscalationAccepted,
				Detail: fmt.Sprintf("accepted by %s (%.1f s after raise)", by.Username, at.Sub(esc.RaisedAt).Seconds())})
		}
	case *EscalationUnanswered:
		if esc := v.escalation(e.EscalationID); esc != nil {
			if esc.Status == StatusPaging {
				esc.Status = StatusUnanswered
			}
			esc.EverUnanswered = true
			esc.Timeline = append(esc.Timeline, TimelineEntry{At: at, Type: TypeEscalationUnanswered, Detail: e.Reason})
		}
	case *EscalationDecided:
		if esc := v.escalation(e.EscalationID); esc != nil {
			esc.Status = StatusDecided
			esc.Decision = &Decision{
				Outcome: e.Outcome, Counterfactual: e.Counterfactual, Rationale: e.Rationale, Plan: e.Plan,
				DecidedBy: e.DecidedBy, DecidedByName: e.DecidedByName, DecidedAt: at,
			}
			esc.Timeline = append(esc.Timeline, TimelineEntry{At: at, Type: TypeEscalationDecided, Detail: string(e.Outcome) + " by " + string(e.DecidedBy)})
		}
	case *EscalationWithdrawn:
		if esc := v.escalation(e.EscalationID); esc != nil {
			esc.Status = StatusWithdrawn
			esc.Withdrawal = &Withdrawal{Reason: e.Reason, By: e.By, At: at}
			esc.Timeline = append(esc.Timeline, TimelineEntry{At: at, Type: TypeEscalationWithdrawn, Detail: "withdrawn by " + string(e.By)})
		}
	case *CallStarted:
		if esc := v.escalation(e.EscalationID); esc != nil {
			esc.applyCall(e, at)
		}
	case *CallParticipantJoined:
		if esc := v.escalation(e.EscalationID); esc != nil {
			esc.applyCall(e, at)
		}
	case *CallParticipantLeft:
		if esc := v.escalation(e.EscalationID); esc != nil {
			esc.applyCall(e, at)
		}
	case *CallEnded:
		if esc := v.escalation(e.EscalationID); esc != nil {
			esc.applyCall(e, at)
		}
	case *EscalationFollowedUp:
		if esc := v.escalation(e.EscalationID); esc != nil {
			esc.FollowUps = append(esc.FollowUps, FollowUp{Status: e.Status, At: e.At, RecordedAt: at})
			esc.Timeline = append(esc.Timeline, TimelineEntry{At: at, Type: TypeEscalationFollowedUp, Detail: string(e.Status)})
		}
	default:
		v.applyFact(ev, at) // events that bring their own apply (snapshot.go)
	}
}
