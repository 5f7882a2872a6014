package escalation

// The visibility policy: who may see which escalation and which resident.
// Anything a caller may not see is answered as not found, so that nothing is
// told about residents of other homes.

// canSeeEscalation: staff see their own home's; auditors and admins all;
// consultants on call see open ones, and every consultant sees those they
// accepted. forAction lets any consultant reach an escalation by ID, so that
// the lifecycle answers (403 off call, 409 already accepted) rather than 404.
func canSeeEscalation(a Actor, e *Escalation, forAction bool) bool {
	switch a.Role {
	case RoleAdmin, RoleAuditor:
		return true
	case RoleCareHome:
		return e.CareHomeID == a.CareHomeID
	case RoleConsultant:
		if e.AcceptedBy != nil && e.AcceptedBy.Username == a.Username {
			return true
		}
		return forAction || (e.Status.Open() && a.OnCall)
	}
	return false
}

// canSeeResident: staff see their own home's residents; auditors and admins
// all; a consultant those with an escalation the consultant may see.
func canSeeResident(a Actor, r *Resident) bool {
	switch a.Role {
	case RoleAdmin, RoleAuditor:
		return true
	case RoleCareHome:
		return r.CareHomeID == a.CareHomeID
	case RoleConsultant:
		for _, e := range r.Escalations {
			if canSeeEscalation(a, e, false) {
				return true
			}
		}
	}
	return false
}
