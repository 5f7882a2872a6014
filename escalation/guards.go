package escalation

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nightcall-health/nightcall/events"
)

// Guards against raising for the wrong resident or on data that no longer
// describes them: observations taken long before the raise, an advance care
// plan past its review date, and a resident who moved to another home after
// the raising page loaded.

// StaleObservationAge is how old observations may be at the raise before both
// sides are told they are stale: a set taken more than an hour before may no
// longer describe the resident.
const StaleObservationAge = time.Hour

// ObservationsStale reports whether observations taken at takenAt are stale
// for a raise at raisedAt: taken more than StaleObservationAge before it.
func ObservationsStale(takenAt, raisedAt time.Time) bool {
	return raisedAt.Sub(takenAt) > StaleObservationAge
}

// ObservationsStale reports whether the escalation was raised on
// observations taken more than an hour before the raise. An escalation on
// soft signs alone has no observations to be stale.
func (e *EscalationView) ObservationsStale() bool {
	return e != nil && e.Observations != nil && ObservationsStale(e.Observations.TakenAt, e.RaisedAt)
}

// reviewDateLayout is how the plan's dates are written (a calendar date).
const reviewDateLayout = "2006-01-02"

// ReviewOverdue reports whether the plan is past its review date at now, on
// the calendar of loc (the service's --timezone): overdue from the day after
// the review date. A plan without a readable review date is not called
// overdue here; it has no date to be past.
func (p *AdvanceCarePlan) ReviewOverdue(now time.Time, loc *time.Location) bool {
	if p == nil || p.ReviewDue == "" {
		return false
	}
	if loc == nil {
		loc = time.UTC
	}
	due, err := time.ParseInLocation(reviewDateLayout, p.ReviewDue, loc)
	if err != nil {
		return false
	}
	local := now.In(loc)
	today := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, loc)
	return today.After(due)
}

// ErrResidentMoved means the resident has moved to another care home: the
// raising home no longer holds them. It is a kind of ErrResidentInactive.
var ErrResidentMoved = fmt.Errorf("the resident has moved to another care home: %w", ErrResidentInactive)

// HeldBy reports whether the resident's stream ever placed them in home: on
// admission, or as the home they moved from.
func HeldBy(envs []events.Envelope, home CareHomeID) (bool, error) {
	for _, env := range envs {
		if env.Type != TypeResidentAdmitted && env.Type != TypeResidentMoved {
			continue
		}
		ev, err := Decode(env)
		if err != nil {
			return false, err
		}
		switch e := ev.(type) {
		case *ResidentAdmitted:
			if e.CareHomeID == home {
				return true, nil
			}
		case *ResidentMoved:
			if e.From == home || e.To == home {
				return true, nil
			}
		}
	}
	return false, nil
}

// GuardedRaise is Raise for the care-home page: a resident the raising home
// held but who has since moved elsewhere is refused with ErrResidentMoved,
// said plainly, rather than as not found. A resident the home never held
// stays not found, so nothing is told about residents of other homes.
func (s *Service) GuardedRaise(ctx context.Context, meta Meta, in RaiseInput) (*EscalationView, error) {
	esc, err := s.Raise(ctx, meta, in)
	if !errors.Is(err, ErrNotFound) || meta.Actor.Role != RoleCareHome {
		return esc, err
	}
	envs, lerr := s.cfg.Store.Load(ctx, ResidentStream(in.ResidentID), 0)
	if errors.Is(lerr, events.ErrStreamNotFound) {
		return nil, err
	}
	if lerr != nil {
		return nil, lerr
	}
	held, herr := HeldBy(envs, meta.Actor.CareHomeID)
	if herr != nil {
		return nil, herr
	}
	if held {
		return nil, ErrResidentMoved
	}
	return nil, err
}
