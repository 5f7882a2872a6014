package escalation

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/nightcall-health/nightcall/escalation/news2"
	"github.com/nightcall-health/nightcall/events"
)

// Event is a past-tense fact about a resident, a home or the rota. Each type
// is registered once under a stable name that is never renamed or reused; the
// names are held to testdata/event-types.golden.
type Event interface{ EventType() string }

// Stable event type names of residents, escalations and care homes. The
// paging, call, rota and account events are named beside their types.
const (
	TypeResidentAdmitted          = "resident.admitted"
	TypeBaselineRecorded          = "resident.baseline_recorded"
	TypeCarePlanRecorded          = "resident.advance_care_plan_recorded"
	TypeSpO2ScaleChanged          = "resident.spo2_scale_changed"
	TypeObservationsRecorded      = "resident.observations_recorded"
	TypeHospitalAdmissionRecorded = "resident.hospital_admission_recorded"
	TypeResidentLeft              = "resident.left"
	TypeResidentDied              = "resident.died"
	TypeEscalationRaised          = "escalation.raised"
	TypeEscalationAccepted        = "escalation.accepted"
	TypeEscalationUnanswered      = "escalation.unanswered"
	TypeEscalationDecided         = "escalation.decided"
	TypeEscalationWithdrawn       = "escalation.withdrawn"
	TypeEscalationFollowedUp      = "escalation.followed_up"
	TypeCareHomeRegistered        = "carehome.registered"
	TypeCareHomeUpdated           = "carehome.updated"
	TypeCareHomeDeactivated       = "carehome.deactivated"
	TypeResidentMoved             = "resident.moved"
	TypeAllergiesRecorded         = "resident.allergies_recorded"
	TypeRotaLevelsSet             = "rota.levels_set"
	TypeRecordAccessed            = "access.record_read"
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
	At        time.Time     `json:"at"`
	Kind      AdmissionKind `json:"kind"`
	Unplanned bool          `json:"unplanned"`
	Reason    string        `json:"reason,omitempty"`
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
	EscalationID EscalationID   `json:"escalation_id"`
	Status       FollowUpStatus `json:"status"`
	At           time.Time      `json:"at"`
}

// CareHomeRegistered: a home joined the service.
type CareHomeRegistered struct {
	CareHome
}

// CareHomeUpdated: name, fallback number or out-of-hours contact changed.
type CareHomeUpdated struct {
	CareHome
}

// CareHomeDeactivated: the home no longer uses the service.
type CareHomeDeactivated struct {
	ID CareHomeID `json:"id"`
}

// ResidentMoved: the resident moved to another home.
type ResidentMoved struct {
	From CareHomeID `json:"from"`
	To   CareHomeID `json:"to"`
	Room string     `json:"room"`
}

// AllergiesRecorded: the resident's allergies, replacing earlier ones.
type AllergiesRecorded struct {
	Allergies []string `json:"allergies"`
}

// RotaLevelsSet: the consultants on call, level by level.
type RotaLevelsSet struct {
	Levels [][]Username `json:"levels"`
}

// RecordAccessed: someone read a resident's record or an escalation.
type RecordAccessed struct {
	Username     Username     `json:"username"`
	Role         Role         `json:"role"`
	What         string       `json:"what"` // resident | resident_events | escalation | resident_list | escalation_list | export_csv | export_csv_text | export_fhir | handover
	ResidentID   ResidentID   `json:"resident_id,omitempty"`
	EscalationID EscalationID `json:"escalation_id,omitempty"`
	// From and To are the range of a bulk export (added 2026-12).
	From *time.Time `json:"from,omitempty"`
	To   *time.Time `json:"to,omitempty"`
}

func (ResidentAdmitted) EventType() string          { return TypeResidentAdmitted }
func (BaselineRecorded) EventType() string          { return TypeBaselineRecorded }
func (CarePlanRecorded) EventType() string          { return TypeCarePlanRecorded }
func (SpO2ScaleChanged) EventType() string          { return TypeSpO2ScaleChanged }
func (ObservationsRecorded) EventType() string      { return TypeObservationsRecorded }
func (HospitalAdmissionRecorded) EventType() string { return TypeHospitalAdmissionRecorded }
func (ResidentLeft) EventType() string              { return TypeResidentLeft }
func (ResidentDied) EventType() string              { return TypeResidentDied }
func (EscalationRaised) EventType() string          { return TypeEscalationRaised }
func (EscalationAccepted) EventType() string        { return TypeEscalationAccepted }
func (EscalationUnanswered) EventType() string      { return TypeEscalationUnanswered }
func (EscalationDecided) EventType() string         { return TypeEscalationDecided }
func (EscalationWithdrawn) EventType() string       { return TypeEscalationWithdrawn }
func (EscalationFollowedUp) EventType() string      { return TypeEscalationFollowedUp }
func (CareHomeRegistered) EventType() string        { return TypeCareHomeRegistered }
func (CareHomeUpdated) EventType() string           { return TypeCareHomeUpdated }
func (CareHomeDeactivated) EventType() string       { return TypeCareHomeDeactivated }
func (ResidentMoved) EventType() string             { return TypeResidentMoved }
func (AllergiesRecorded) EventType() string         { return TypeAllergiesRecorded }
func (RotaLevelsSet) EventType() string             { return TypeRotaLevelsSet }
func (RecordAccessed) EventType() string            { return TypeRecordAccessed }

// registry makes an empty event of each registered type, by stable name.
var registry = map[string]func() Event{}

// registered is every name in the order it was registered, twice if a name
// was: TestEventTypesGolden holds it to the golden list.
var registered []string

// register adds event types to the registry under the names they give.
func register(mks ...func() Event) {
	for _, mk := range mks {
		name := mk().EventType()
		registered = append(registered, name)
		if _, dup := registry[name]; !dup {
			registry[name] = mk
		}
	}
}

func init() {
	register(
		func() Event { return &ResidentAdmitted{} },
		func() Event { return &BaselineRecorded{} },
		func() Event { return &CarePlanRecorded{} },
		func() Event { return &SpO2ScaleChanged{} },
		func() Event { return &ObservationsRecorded{} },
		func() Event { return &HospitalAdmissionRecorded{} },
		func() Event { return &ResidentLeft{} },
		func() Event { return &ResidentDied{} },
		func() Event { return &EscalationRaised{} },
		func() Event { return &EscalationAccepted{} },
		func() Event { return &EscalationUnanswered{} },
		func() Event { return &EscalationDecided{} },
		func() Event { return &EscalationWithdrawn{} },
		func() Event { return &EscalationFollowedUp{} },
		func() Event { return &CareHomeRegistered{} },
		func() Event { return &CareHomeUpdated{} },
		func() Event { return &CareHomeDeactivated{} },
		func() Event { return &ResidentMoved{} },
		func() Event { return &AllergiesRecorded{} },
		func() Event { return &RotaLevelsSet{} },
		func() Event { return &RecordAccessed{} },
	)
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
