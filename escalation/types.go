// Package escalation is Nightcall's domain and application layer: the resident
// aggregate and its event stream, the escalation lifecycle (raise, accept,
// decide, withdraw), NEWS2 advice, and the in-memory read model. It imports no
// Watermill, Redis, Pion or net/http; it speaks to storage through the
// events.Store port.
package escalation

import "github.com/nightcall-health/nightcall/escalation/news2"

// ResidentID identifies a resident.
type ResidentID string

// CareHomeID identifies a care home.
type CareHomeID string

// EscalationID identifies an escalation.
type EscalationID string

// Username identifies a user account.
type Username string

// Role is what a user may do.
type Role string

const (
	RoleCareHome   Role = "carehome"
	RoleConsultant Role = "consultant"
	RoleAuditor    Role = "auditor"
	RoleAdmin      Role = "admin"
	// RoleGP is a general practitioner bound to one or more care homes: it
	// reads those homes' morning handovers and nothing else.
	RoleGP Role = "gp"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool {
	switch r {
	case RoleCareHome, RoleConsultant, RoleAuditor, RoleAdmin, RoleGP:
		return true
	}
	return false
}

// Person names a user as shown to others.
type Person struct {
	Username Username `json:"username"`
	Name     string   `json:"name"`
}

// Actor is the signed-in user a command runs for.
type Actor struct {
	Person
	Role       Role
	CareHomeID CareHomeID
	// CareHomeIDs are the homes a GP is bound to (RoleGP only).
	CareHomeIDs []CareHomeID
	// OnCall is whether the rota has this consultant on call now.
	OnCall bool
}

// Status of a resident in a home.
type ResidentStatus string

const (
	ResidentStatusActive ResidentStatus = "active"
	ResidentStatusLeft   ResidentStatus = "left"
	ResidentStatusDied   ResidentStatus = "died"
)

// Status of an escalation.
type Status string

const (
	StatusPaging     Status = "paging"
	StatusUnanswered Status = "unanswered"
	StatusAccepted   Status = "accepted"
	StatusDecided    Status = "decided"
	StatusWithdrawn  Status = "withdrawn"
)

// Open reports whether s is paging, unanswered or accepted.
func (s Status) Open() bool {
	return s == StatusPaging || s == StatusUnanswered || s == StatusAccepted
}

// Outcome is the consultant's decision.
type Outcome string

const (
	OutcomeAdmit Outcome = "admit"
	OutcomeStay  Outcome = "stay"
)

// Counterfactual is what would have happened without the service.
type Counterfactual string

const (
	CounterfactualED   Counterfactual = "ed"
	CounterfactualGP   Counterfactual = "gp"
	CounterfactualNone Counterfactual = "none"
)

// FollowUpStatus is where the home says the resident is after a stay.
type FollowUpStatus string

const (
	FollowUpAtHome       FollowUpStatus = "at_home"
	FollowUpAdmitted     FollowUpStatus = "admitted"
	FollowUpEDAttendance FollowUpStatus = "ed_attendance"
	FollowUpDied         FollowUpStatus = "died"
)

// Valid reports whether s is a known follow-up status.
func (s FollowUpStatus) Valid() bool {
	switch s {
	case FollowUpAtHome, FollowUpAdmitted, FollowUpEDAttendance, FollowUpDied:
		return true
	}
	return false
}

// AdmissionKind is how a resident went to hospital.
type AdmissionKind string

const (
	AdmissionKindAdmission    AdmissionKind = "admission"
	AdmissionKindEDAttendance AdmissionKind = "ed_attendance"
)

// Valid reports whether k is a known kind of admission.
func (k AdmissionKind) Valid() bool {
	return k == AdmissionKindAdmission || k == AdmissionKindEDAttendance
}

// AdviceLevel is how urgently the home must act while the consultant is paged.
type AdviceLevel string

const (
	AdviceEmergency AdviceLevel = "emergency"
	AdviceUrgent    AdviceLevel = "urgent"
	AdviceRoutine   AdviceLevel = "routine"
)

// Advice tells the home what to do now.
type Advice struct {
	Level AdviceLevel `json:"level"`
	Text  string      `json:"text"`
}

// AdviceFor gives the home's advice for a NEWS2 result (nil when only soft
// signs were raised) and the resident's advance care plan. A partial set is
// advised on its lower bound (the known sub-scores), so a missing value can
// never lower the advice below what the values taken already call for.
func AdviceFor(score *news2.Result, acp *AdvanceCarePlan) Advice {
	if score == nil {
		return Advice{Level: AdviceRoutine, Text: "The consultant is being paged. Keep observing the resident and escalate again if anything changes."}
	}
	what := "NEWS2 7 or more"
	if score.Partial {
		what = "NEWS2 " + score.Label() + " from the values taken (a missing value can only add to it)"
	}
	switch score.ResponseRisk() {
	case news2.RiskHigh:
		text := what + ": call 999 now unless the resident's advance care plan says otherwise. The consultant is being paged."
		if acp != nil && acp.HospitalAdmission == AdmissionNotWanted {
			text = what + ". The advance care plan records that hospital admission is not wanted: follow it, keep the resident comfortable, and call 999 only if it allows. The consultant is being paged."
		}
		return Advice{Level: AdviceEmergency, Text: text}
	case news2.RiskMedium, news2.RiskLowMedium:
		text := "Urgent: NEWS2 of 5 or 6, or a single score of 3. Stay with the resident and repeat the observations at least every hour. The consultant is being paged."
		if score.Partial {
			text = "Urgent: " + what + ", or a single score of 3. Stay with the resident, take the missing values if you can, and repeat the observations at least every hour. The consultant is being paged."
		}
		return Advice{Level: AdviceUrgent, Text: text}
	default:
		text := "The consultant is being paged. Keep observing the resident and escalate again if anything changes."
		if score.Partial {
			text = "NEWS2 " + score.Label() + ": take the missing values if you can. The consultant is being paged. Keep observing the resident and escalate again if anything changes."
		}
		return Advice{Level: AdviceRoutine, Text: text}
	}
}

// SBARD is the structured hand-over written by the home.
type SBARD struct {
	Situation      string `json:"situation"`
	Background     string `json:"background"`
	Assessment     string `json:"assessment"`
	Recommendation string `json:"recommendation"`
}

// Baseline is the resident's usual state (RESTORE2).
type Baseline struct {
	NEWS2Total int    `json:"news2_total"`
	Notes      string `json:"notes"`
}

// AdvanceCarePlan is the coded summary of a ReSPECT form or equivalent.
// CPR and hospital admission are separate decisions: a DNACPR says nothing
// about admission.
type AdvanceCarePlan struct {
	HasRespectForm    bool                `json:"has_respect_form"`
	Focus             CareFocus           `json:"focus"`
	HospitalAdmission AdmissionPreference `json:"hospital_admission"`
	CPR               CPRDecision         `json:"cpr"`
	Summary           string              `json:"summary"`
	RecordedAt        string              `json:"recorded_at"`
	ReviewDue         string              `json:"review_due"`
}

// CareFocus is the overall focus of care an advance care plan records.
type CareFocus string

const (
	FocusExtendLife CareFocus = "extend_life"
	FocusBalance    CareFocus = "balance"
	FocusComfort    CareFocus = "comfort"
)

// AdmissionPreference is what an advance care plan says of hospital admission.
type AdmissionPreference string

const (
	AdmissionWanted    AdmissionPreference = "wanted"
	AdmissionNotWanted AdmissionPreference = "not_wanted"
	AdmissionDiscuss   AdmissionPreference = "discuss"
)

// CPRDecision is an advance care plan's decision on cardiopulmonary resuscitation.
type CPRDecision string

const (
	CPRAttempt      CPRDecision = "attempt"
	CPRDoNotAttempt CPRDecision = "do_not_attempt"
)
