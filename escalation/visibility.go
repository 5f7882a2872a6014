package escalation

import "time"

// The visibility policy: who may see which escalation and which resident.
// Anything a caller may not see is answered as not found, so that nothing is
// told about residents of other homes.

// AcceptedReadWindow is how long after its decision (or withdrawal) the
// consultant who accepted an escalation may still read it and the
// resident's record: long enough to follow up the night's decision, not
// forever.
const AcceptedReadWindow = 72 * time.Hour

// canSeeEscalation: staff see their own home's; auditors and admins all;
// consultants on call see open ones, and the consultant who accepted one
// sees it while it is open and for AcceptedReadWindow after it closed.
// forAction lets any consultant reach an escalation by ID, so that the
// lifecycle answers (403 off call, 409 already accepted) rather than 404.
func canSeeEscalation(a Actor, e *EscalationView, forAction bool, now time.Time) bool {
	switch a.Role {
	case RoleAdmin, RoleAuditor:
		return true
	case RoleCareHome:
		return e.CareHomeID == a.CareHomeID
	case RoleConsultant:
		if forAction || (e.Status.Open() && a.OnCall) {
			return true
		}
		if e.AcceptedBy == nil || e.AcceptedBy.Username != a.Username {
			return false
		}
		switch {
		case e.Status.Open():
			return true
		case e.Decision != nil:
			return now.Before(e.Decision.DecidedAt.Add(AcceptedReadWindow))
		case e.Withdrawal != nil:
			return now.Before(e.Withdrawal.At.Add(AcceptedReadWindow))
		}
	}
	return false
}

// canSeeResident: staff see their own home's residents; auditors and admins
// all; a consultant those with an escalation the consultant may see.
func canSeeResident(a Actor, r *ResidentView, now time.Time) bool {
	switch a.Role {
	case RoleAdmin, RoleAuditor:
		return true
	case RoleCareHome:
		return r.CareHomeID == a.CareHomeID
	case RoleConsultant:
		for i := range r.Escalations {
			if canSeeEscalation(a, &r.Escalations[i], false, now) {
				return true
			}
		}
	}
	return false
}
