package escalation

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/nightcall-health/nightcall/escalation/news2"
	"github.com/nightcall-health/nightcall/events"
)

// Event is a past-tense fact about a resident, a home or the rota. Each type
// is registered once under a stable name that is never reused.
type Event interface{ EventType() string }

// Stable event type names.
const (
	TypeResidentAdmitted         = "resident.admitted"
	TypeBaselineRecorded         = "resident.baseline_recorded"
	TypeCarePlanRecorded         = "resident.advance_care_plan_recorded"
	TypeSpO2ScaleChanged         = "resident.spo2_scale_changed"
	TypeObservationsRecorded     = "resident.observations_recorded"
	TypeHospitalAdmissionRecorde = "resident.hospital_admission_recorded"
	TypeResidentLeft             = "resident.left"
	TypeResidentDied             = "resident.died"
	TypeEscalationRaised         = "escalation.raised"
	TypeEscalationAccepted       = "escalation.accepted"
	TypeEscalationUnanswered     = "escalation.unanswered"
	TypeEscalationDecided        = "escalation.decided"
	TypeEscalationWithdrawn      = "escalation.withdrawn"
	TypeEscalationFollowedUp     = "escalation.followed_up"
	TypeCareHomeRegistered       = "carehome.registered"
	TypeRotaLevelsSet            = "rota.levels_set"
	TypeRecordAccessed           = "access.record_read"
)

// ResidentAdmitted: the resident came into a home's care.
type ResidentAdmitted struct {
	ResidentID  ResidentID  `json:"resident_id"`
	CareHomeID  CareHomeID  `json:"care_home_id"`
	Name        string      `json:"name"`
	DateOfBirth string      `json:"date_of_birth"`
	Room        string      `json:"room"`
	NHSNumber   string      `json:"nhs_number"`
	SpO2Scale   news2.Scale `json:"spo2_scale"`
}

// BaselineRecorded: the resident's usual NEWS2 and presentation.
type BaselineRecorded struct {
	Baseline Baseline `json:"baseline"`
}

// CarePlanRecorded: a new or reviewed advance care plan.
type CarePlanRecorded struct {
	Plan AdvanceCarePlan `json:"advance_care_plan"`
}

// SpO2ScaleChanged: a clinician set the resident's SpO2 scale.
type SpO2ScaleChanged struct {
	Scale news2.Scale `json:"spo2_scale"`
	SetBy string      `json:"set_by"`
	SetAt time.Time   `json:"set_at"`
}

// ObservationsRecorded: a routine set of observations, without an escalation.
type ObservationsRecorded struct {
	Observations Observations `json:"observations"`
	NEWS2        news2.Result `json:"news2"`
	SpO2Scale    news2.Scale  `json:"spo2_scale"`
}

// HospitalAdmissionRecorded: the resident went to hospital or A&E.
type HospitalAdmissionRecorded struct {
	At        time.Time `json:"at"`
	Kind      string    `json:"kind"` // admission | ed_attendance
	Unplanned bool      `json:"unplanned"`
	Reason    string    `json:"reason,omitempty"`
}

// ResidentLeft: the resident left the home.
type ResidentLeft struct {
	At time.Time `json:"at"`
}

// ResidentDied: the resident died.
type ResidentDied struct {
	At       time.Time `json:"at"`
	Expected bool      `json:"expected"`
}

// EscalationRaised: night staff asked for a consultant.
type EscalationRaised struct {
	EscalationID EscalationID  `json:"escalation_id"`
	CareHomeID   CareHomeID    `json:"care_home_id"`
	Observations *Observations `json:"observations"`
	NEWS2        *news2.Result `json:"news2"`
	SpO2Scale    news2.Scale   `json:"spo2_scale"`
	SoftSigns    []SoftSign    `json:"soft_signs"`
	SBARD        SBARD         `json:"sbard"`
	Advice       Advice        `json:"advice"`
	RaisedBy     Username      `json:"raised_by"`
}

// EscalationAccepted: a consultant took the escalation.
type EscalationAccepted struct {
	EscalationID EscalationID `json:"escalation_id"`
	By           Person       `json:"by"`
}

// EscalationUnanswered: every rota level timed out, or nobody was on call.
type EscalationUnanswered struct {
	EscalationID EscalationID `json:"escalation_id"`
	Reason       string       `json:"reason"`
}

// EscalationDecided: the consultant's decision.
type EscalationDecided struct {
	EscalationID   EscalationID   `json:"escalation_id"`
	Outcome        Outcome        `json:"outcome"`
	Counterfactual Counterfactual `json:"counterfactual"`
	Rationale      string         `json:"rationale"`
	Plan           string         `json:"plan"`
	DecidedBy      Username       `json:"decided_by"`
	DecidedByName  string         `json:"decided_by_name"`
}

// EscalationWithdrawn: the home no longer needs the consultant.
type EscalationWithdrawn struct {
	EscalationID EscalationID `json:"escalation_id"`
	Reason       string       `json:"reason"`
	By           Username     `json:"by"`
}

// EscalationFollowedUp: the home confirmed where the resident is after a stay.
type EscalationFollowedUp struct {
	EscalationID EscalationID `json:"escalation_id"`
	Status       string       `json:"status"` // at_home | admitted | ed_attendance | died
	At           time.Time    `json:"at"`
}

// CareHomeRegistered: a home joined the service.
type CareHomeRegistered struct {
	CareHome
}

// RotaLevelsSet: the consultants on call, level by level.
type RotaLevelsSet struct {
	Levels [][]Username `json:"levels"`
}

// RecordAccessed: someone read a resident's record or an escalation.
type RecordAccessed struct {
	Username     Username     `json:"username"`
	Role         Role         `json:"role"`
	What         string       `json:"what"` // resident | resident_events | escalation | resident_list | escalation_list
	ResidentID   ResidentID   `json:"resident_id,omitempty"`
	EscalationID EscalationID `json:"escalation_id,omitempty"`
}

func (ResidentAdmitted) EventType() string          { return TypeResidentAdmitted }
func (BaselineRecorded) EventType() string          { return TypeBaselineRecorded }
func (CarePlanRecorded) EventType() string          { return TypeCarePlanRecorded }
func (SpO2ScaleChanged) EventType() string          { return TypeSpO2ScaleChanged }
func (ObservationsRecorded) EventType() string      { return TypeObservationsRecorded }
func (HospitalAdmissionRecorded) EventType() string { return TypeHospitalAdmissionRecorde }
func (ResidentLeft) EventType() string              { return TypeResidentLeft }
func (ResidentDied) EventType() string              { return TypeResidentDied }
func (EscalationRaised) EventType() string          { return TypeEscalationRaised }
func (EscalationAccepted) EventType() string        { return TypeEscalationAccepted }
func (EscalationUnanswered) EventType() string      { return TypeEscalationUnanswered }
func (EscalationDecided) EventType() string         { return TypeEscalationDecided }
func (EscalationWithdrawn) EventType() string       { return TypeEscalationWithdrawn }
func (EscalationFollowedUp) EventType() string      { return TypeEscalationFollowedUp }
func (CareHomeRegistered) EventType() string        { return TypeCareHomeRegistered }
func (RotaLevelsSet) EventType() string             { return TypeRotaLevelsSet }
func (RecordAccessed) EventType() string            { return TypeRecordAccessed }

var registry = map[string]func() Event{
	TypeResidentAdmitted:         func() Event { return &ResidentAdmitted{} },
	TypeBaselineRecorded:         func() Event { return &BaselineRecorded{} },
	TypeCarePlanRecorded:         func() Event { return &CarePlanRecorded{} },
	TypeSpO2ScaleChanged:         func() Event { return &SpO2ScaleChanged{} },
	TypeObservationsRecorded:     func() Event { return &ObservationsRecorded{} },
	TypeHospitalAdmissionRecorde: func() Event { return &HospitalAdmissionRecorded{} },
	TypeResidentLeft:             func() Event { return &ResidentLeft{} },
	TypeResidentDied:             func() Event { return &ResidentDied{} },
	TypeEscalationRaised:         func() Event { return &EscalationRaised{} },
	TypeEscalationAccepted:       func() Event { return &EscalationAccepted{} },
	TypeEscalationUnanswered:     func() Event { return &EscalationUnanswered{} },
	TypeEscalationDecided:        func() Event { return &EscalationDecided{} },
	TypeEscalationWithdrawn:      func() Event { return &EscalationWithdrawn{} },
	TypeEscalationFollowedUp:     func() Event { return &EscalationFollowedUp{} },
	TypeCareHomeRegistered:       func() Event { return &CareHomeRegistered{} },
	TypeRotaLevelsSet:            func() Event { return &RotaLevelsSet{} },
	TypeRecordAccessed:           func() Event { return &RecordAccessed{} },
}

// Decode turns a stored envelope into its event. Unknown types (written by a
// newer version) decode to nil without error, so old readers skip them.
func Decode(env events.Envelope) (Event, error) {
	mk, ok := registry[env.Type]
	if !ok {
		return nil, nil
	}
	e := mk()
	if err := json.Unmarshal(env.Data, e); err != nil {
		return nil, fmt.Errorf("decode %s at %s v%d: %w", env.Type, env.Stream, env.Version, err)
	}
	return e, nil
}

// Stream names.
func ResidentStream(id ResidentID) string  { return "resident-" + string(id) }
func CareHomeStream(id CareHomeID) string  { return "carehome-" + string(id) }
func PagingStream(id EscalationID) string  { return "escalation-" + string(id) + "-paging" }
func AccessLogStream() string              { return "access-log" }
func RotaStream() string                   { return "rota" }
func residentIDFromStream(s string) string { return s[len("resident-"):] }
