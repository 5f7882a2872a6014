package escalation

import (
	"context"
	"time"
)

// The escalation commands: each checks the actor's role, then decides on the
// resident aggregate through the repository loop.

// RaiseInput is a validated request to raise.
type RaiseInput struct {
	ResidentID   ResidentID
	Observations *Observations
	SoftSigns    []SoftSign
	SBARD        SBARD
}

// Raise opens an escalation for a resident of the actor's home.
func (s *Service) Raise(ctx context.Context, meta Meta, in RaiseInput) (*EscalationView, error) {
	if meta.Actor.Role != RoleCareHome {
		return nil, ErrForbidden
	}
	if err := s.homeInService(ctx, meta.Actor.CareHomeID); err != nil {
		return nil, err
	}
	id := EscalationID(s.cfg.NewID())
	now := s.cfg.Now()
	res, err := s.update(ctx, in.ResidentID, meta, func(r *Resident) error {
		if r.CareHomeID() != meta.Actor.CareHomeID {
			return ErrNotFound
		}
		_, err := r.Raise(id, in.Observations, in.SoftSigns, in.SBARD, meta.Actor, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	return s.viewOf(res.Resident, id), nil
}

// FollowUp records where the resident is after a stay (staff of the home).
func (s *Service) FollowUp(ctx context.Context, meta Meta, id EscalationID, status FollowUpStatus, at time.Time) (*EscalationView, error) {
	if meta.Actor.Role != RoleCareHome {
		return nil, ErrForbidden
	}
	now := s.cfg.Now()
	return s.escalationCommand(ctx, meta, id, func(r *Resident, esc *EscalationView) error {
		return r.FollowUp(id, status, at, now)
	})
}

// escalationCommand loads the escalation's resident, checks that the actor can
// see it, and runs fn on the aggregate.
func (s *Service) escalationCommand(ctx context.Context, meta Meta, id EscalationID, fn func(r *Resident, esc *EscalationView) error) (*EscalationView, error) {
	rid, err := s.residentOf(ctx, id)
	if err != nil {
		return nil, err
	}
	res, err := s.update(ctx, rid, meta, func(r *Resident) error {
		esc := r.escalation(id)
		if esc == nil || !canSeeEscalation(meta.Actor, esc, true, s.cfg.Now()) {
			return ErrNotFound
		}
		return fn(r, esc)
	})
	if err != nil {
		return nil, err
	}
	return s.viewOf(res.Resident, id), nil
}

// Accept lets a consultant who is on call take an escalation. Exactly one
// consultant wins; the winner accepting again changes nothing.
func (s *Service) Accept(ctx context.Context, meta Meta, id EscalationID) (*EscalationView, error) {
	if meta.Actor.Role != RoleConsultant {
		return nil, ErrForbidden
	}
	paged := s.pagedFor != nil && s.pagedFor(id, meta.Actor.Username)
	now := s.cfg.Now()
	return s.escalationCommand(ctx, meta, id, func(r *Resident, esc *EscalationView) error {
		if !meta.Actor.OnCall && !paged && !(esc.AcceptedBy != nil && esc.AcceptedBy.Username == meta.Actor.Username) {
			return ErrForbidden
		}
		return r.Accept(id, meta.Actor, now)
	})
}

// Decide records the accepting consultant's decision.
func (s *Service) Decide(ctx context.Context, meta Meta, id EscalationID, d DecisionInput) (*EscalationView, error) {
	if meta.Actor.Role != RoleConsultant {
		return nil, ErrForbidden
	}
	now := s.cfg.Now()
	return s.escalationCommand(ctx, meta, id, func(r *Resident, esc *EscalationView) error {
		return r.Decide(id, d, meta.Actor, now)
	})
}

// Withdraw lets staff of the home withdraw an escalation until it is decided.
func (s *Service) Withdraw(ctx context.Context, meta Meta, id EscalationID, reason string) (*EscalationView, error) {
	if meta.Actor.Role != RoleCareHome {
		return nil, ErrForbidden
	}
	now := s.cfg.Now()
	return s.escalationCommand(ctx, meta, id, func(r *Resident, esc *EscalationView) error {
		return r.Withdraw(id, reason, meta.Actor, now)
	})
}

// MarkUnanswered records that nobody accepted; used by the pager.
func (s *Service) MarkUnanswered(ctx context.Context, meta Meta, id EscalationID, reason string) error {
	rid, err := s.residentOf(ctx, id)
	if err != nil {
		return err
	}
	now := s.cfg.Now()
	_, err = s.update(ctx, rid, meta, func(r *Resident) error { return r.MarkUnanswered(id, reason, now) })
	return err
}

// residentCommand checks that the actor may change the resident (staff of
// its home, or admin) and runs fn.
func (s *Service) residentCommand(ctx context.Context, meta Meta, id ResidentID, fn func(r *Resident) error) (Result, error) {
	a := meta.Actor
	if a.Role != RoleCareHome && a.Role != RoleAdmin {
		return Result{}, ErrForbidden
	}
	return s.update(ctx, id, meta, func(r *Resident) error {
		if a.Role == RoleCareHome && r.CareHomeID() != a.CareHomeID {
			return ErrNotFound
		}
		return fn(r)
	})
}

// RecordHospitalAdmission records an admission or A&E attendance.
func (s *Service) RecordHospitalAdmission(ctx context.Context, meta Meta, id ResidentID, h HospitalAdmissionRecorded) (HospitalAdmission, error) {
	now := s.cfg.Now()
	res, err := s.residentCommand(ctx, meta, id, func(r *Resident) error { return r.RecordHospitalAdmission(h, now) })
	if err != nil {
		return HospitalAdmission{}, err
	}
	return res.Resident.lastAdmission(), nil
}

// RecordObservations records a routine observation set.
func (s *Service) RecordObservations(ctx context.Context, meta Meta, id ResidentID, obs Observations) (ObservationRecord, error) {
	if meta.Actor.Role != RoleCareHome {
		return ObservationRecord{}, ErrForbidden
	}
	now := s.cfg.Now()
	res, err := s.residentCommand(ctx, meta, id, func(r *Resident) error {
		_, err := r.RecordObservations(obs, now)
		return err
	})
	if err != nil {
		return ObservationRecord{}, err
	}
	return res.Resident.lastObservation(), nil
}
