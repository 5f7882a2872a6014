package escalation

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/nightcall-health/nightcall/events"
)

// IsConsultant reports whether a username belongs to a consultant; the rota
// commands refuse anyone else.
type IsConsultant func(ctx context.Context, u Username) (bool, error)

// updateRota loads the rota stream, runs fn (which validates and returns the
// event to record) and appends it with the loaded version as expected.
func (s *Service) updateRota(ctx context.Context, meta Meta, fn func(r *Rota) (Event, error)) (Rota, error) {
	if meta.Actor.Role != RoleAdmin {
		return Rota{}, ErrForbidden
	}
	for attempt := 0; attempt < maxAttempts; attempt++ {
		envs, err := s.cfg.Store.Load(ctx, RotaStream(), 0)
		if err != nil && !errors.Is(err, events.ErrStreamNotFound) {
			return Rota{}, err
		}
		var r Rota
		var version int64
		for _, env := range envs {
			ev, err := Decode(env)
			if err != nil {
				return Rota{}, err
			}
			if ev != nil {
				r.apply(ev)
			}
			version = env.Version
		}
		ev, err := fn(&r)
		if err != nil {
			return Rota{}, err
		}
		data, err := marshal(ev)
		if err != nil {
			return Rota{}, err
		}
		_, err = s.cfg.Store.Append(ctx, RotaStream(), version, []events.NewEvent{{
			ID: s.cfg.NewID(), Type: ev.EventType(), Actor: string(meta.Actor.Username), CorrelationID: meta.CorrelationID,
			RecordedAt: s.cfg.Now(), Data: data,
		}}, events.AppendOptions{})
		if errors.Is(err, events.ErrVersionConflict) {
			continue
		}
		if err != nil {
			return Rota{}, err
		}
		r.apply(ev)
		return r, nil
	}
	return Rota{}, ErrConflict
}

func checkConsultants(ctx context.Context, isConsultant IsConsultant, field string, levels [][]Username) error {
	for i, l := range levels {
		for j, u := range l {
			ok, err := isConsultant(ctx, u)
			if err != nil {
				return err
			}
			if !ok {
				return inputErr(KindInvalidValue, field+"["+strconv.Itoa(i)+"]["+strconv.Itoa(j)+"]", "%q is not a consultant", u)
			}
		}
	}
	return nil
}

// SetShift creates or replaces a shift.
func (s *Service) SetShift(ctx context.Context, meta Meta, sh Shift, isConsultant IsConsultant) (Rota, error) {
	return s.updateRota(ctx, meta, func(r *Rota) (Event, error) {
		if err := sh.Validate(); err != nil {
			return nil, err
		}
		if err := checkConsultants(ctx, isConsultant, "levels", sh.Levels); err != nil {
			return nil, err
		}
		return &RotaShiftSet{Shift: sh}, nil
	})
}

// RemoveShift removes a shift.
func (s *Service) RemoveShift(ctx context.Context, meta Meta, id string) (Rota, error) {
	return s.updateRota(ctx, meta, func(r *Rota) (Event, error) {
		for _, sh := range r.Shifts {
			if sh.ID == id {
				return &RotaShiftRemoved{ShiftID: id}, nil
			}
		}
		return nil, ErrNotFound
	})
}

// SetStanding sets the levels that are on call at all times.
func (s *Service) SetStanding(ctx context.Context, meta Meta, levels [][]Username, isConsultant IsConsultant) (Rota, error) {
	return s.updateRota(ctx, meta, func(r *Rota) (Event, error) {
		if err := checkConsultants(ctx, isConsultant, "levels", levels); err != nil {
			return nil, err
		}
		return &RotaLevelsSet{Levels: levels}, nil
	})
}

// AddOverride has one consultant cover another for a period.
func (s *Service) AddOverride(ctx context.Context, meta Meta, o Override, isConsultant IsConsultant) (Rota, error) {
	o.ID = s.cfg.NewID()
	return s.updateRota(ctx, meta, func(r *Rota) (Event, error) {
		switch {
		case o.From.IsZero():
			return nil, inputErr(KindMissingField, "from", "give the start of the cover")
		case o.To.IsZero():
			return nil, inputErr(KindMissingField, "to", "give the end of the cover")
		case !o.To.After(o.From):
			return nil, inputErr(KindInvalidValue, "to", "the end must be after the start")
		case o.Covered == "":
			return nil, inputErr(KindMissingField, "covered", "name the consultant being covered")
		case o.By == "":
			return nil, inputErr(KindMissingField, "by", "name the consultant covering")
		}
		for field, u := range map[string]Username{"covered": o.Covered, "by": o.By} {
			ok, err := isConsultant(ctx, u)
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, inputErr(KindInvalidValue, field, "%q is not a consultant", u)
			}
		}
		o.From, o.To = o.From.UTC(), o.To.UTC()
		return &RotaOverrideSet{Override: o}, nil
	})
}

// RemoveOverride removes an override.
func (s *Service) RemoveOverride(ctx context.Context, meta Meta, id string) (Rota, error) {
	return s.updateRota(ctx, meta, func(r *Rota) (Event, error) {
		for _, o := range r.Overrides {
			if o.ID == id {
				return &RotaOverrideRemoved{OverrideID: id}, nil
			}
		}
		return nil, ErrNotFound
	})
}

// RotaAt returns who was (or will be) on call at t, from the read model.
func (s *Service) RotaAt(ctx context.Context, a Actor, t time.Time) ([][]Username, error) {
	if err := s.catchUp(ctx); err != nil {
		return nil, err
	}
	return s.cfg.Read.RotaLevelsAt(t), nil
}
