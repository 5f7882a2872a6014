package escalation

import (
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/nightcall-health/nightcall/escalation/news2"
)

// Checks on the parts of a resident's record that administration sets, each
// naming the field at fault.

// idRE is what a resident's or a home's ID may look like.
var idRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// validateScale checks an SpO2 scale: Scale 2 needs the clinician who set it.
func validateScale(scale news2.Scale, setBy, field string) error {
	if !scale.Valid() {
		return inputErr(KindInvalidValue, field, "the SpO2 scale is 1 or 2")
	}
	if scale == news2.Scale2 && strings.TrimSpace(setBy) == "" {
		return inputErr(KindMissingField, field+"_set_by", "Scale 2 needs the clinician who decided it (confirmed hypercapnic respiratory failure)")
	}
	return nil
}

// Validate checks a baseline.
func (b Baseline) Validate() error {
	if b.NEWS2Total < 0 || b.NEWS2Total > 20 {
		return inputErr(KindInvalidValue, "baseline.news2_total", "a NEWS2 total is 0 to 20")
	}
	return nil
}

// The codes an advance care plan may hold, in the order they are offered.
var (
	careFocuses          = []CareFocus{FocusExtendLife, FocusBalance, FocusComfort}
	admissionPreferences = []AdmissionPreference{AdmissionWanted, AdmissionNotWanted, AdmissionDiscuss}
	cprDecisions         = []CPRDecision{CPRAttempt, CPRDoNotAttempt}
)

// Validate checks the coded summary of an advance care plan.
func (p AdvanceCarePlan) Validate() error {
	if err := checkCode("advance_care_plan.focus", p.Focus, careFocuses); err != nil {
		return err
	}
	if err := checkCode("advance_care_plan.hospital_admission", p.HospitalAdmission, admissionPreferences); err != nil {
		return err
	}
	if err := checkCode("advance_care_plan.cpr", p.CPR, cprDecisions); err != nil {
		return err
	}
	for field, v := range map[string]string{"advance_care_plan.recorded_at": p.RecordedAt, "advance_care_plan.review_due": p.ReviewDue} {
		if v == "" {
			continue
		}
		if _, err := time.Parse(time.DateOnly, v); err != nil {
			return inputErr(KindInvalidValue, field, "dates are YYYY-MM-DD")
		}
	}
	return nil
}

// checkCode checks that a coded field is given and is one of allowed.
func checkCode[C ~string](field string, value C, allowed []C) error {
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = string(a)
	}
	if value == "" {
		return inputErr(KindMissingField, field, "required: one of %s", strings.Join(names, ", "))
	}
	if !slices.Contains(allowed, value) {
		return inputErr(KindInvalidValue, field, "must be one of %s", strings.Join(names, ", "))
	}
	return nil
}
