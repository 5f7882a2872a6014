package escalation

import (
	"context"
	"strconv"
	"time"

	"github.com/nightcall-health/nightcall/events"
)

// The rota commands (admins only). The consultants named are checked before
// the repository loop, so that deciding against the rota stays pure.

// IsConsultant reports whether a username belongs to a consultant; the rota
// commands refuse anyone else.
type IsConsultant func(ctx context.Context, u Username) (bool, error)

// rotaStream is the rota aggregate on stream "rota".
type rotaStream struct {
	rota Rota
	changes
}

func (r *rotaStream) publicState() any { return r.rota.clone() }

// loadRota folds the rota stream; before its first event the rota is empty.
func loadRota(_ context.Context, envs []events.Envelope) (*rotaStream, error) {
	r := &rotaStream{}
	for _, env := range envs {
		ev, err := Decode(env)
		if err != nil {
			return nil, err
		}
		r.rota.apply(ev)
		r.version = env.Version
	}
	return r, nil
}

func (r *rotaStream) record(ev Event, at time.Time) {
	r.rota.apply(ev)
	r.keep(ev, at)
}

// updateRota runs decide against the rota through the repository loop and
// returns a copy of the rota it leaves.
func (s *Service) updateRota(ctx context.Context, meta Meta, decide func(r *rotaStream, now time.Time) error) (Rota, error) {
	if err := requireAdmin(meta.Actor); err != nil {
		return Rota{}, err
	}
	now := s.cfg.Now()
	r, _, err := update(ctx, s.repo, RotaStream(), saveFor[*rotaStream](meta), loadRota, func(r *rotaStream) error { return decide(r, now) })
	if err != nil {
		return Rota{}, err
	}
	return r.rota.clone(), nil
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
	if err := requireAdmin(meta.Actor); err != nil {
		return Rota{}, err
	}
	if err := sh.Validate(); err != nil {
		return Rota{}, err
	}
	if err := checkConsultants(ctx, isConsultant, "levels", sh.Levels); err != nil {
		return Rota{}, err
	}
	return s.updateRota(ctx, meta, func(r *rotaStream, now time.Time) error {
		r.record(&RotaShiftSet{Shift: sh}, now)
		return nil
	})
}

// RemoveShift removes a shift.
func (s *Service) RemoveShift(ctx context.Context, meta Meta, id string) (Rota, error) {
	return s.updateRota(ctx, meta, func(r *rotaStream, now time.Time) error {
		for _, sh := range r.rota.Shifts {
			if sh.ID == id {
				r.record(&RotaShiftRemoved{ShiftID: id}, now)
				return nil
			}
		}
		return ErrNotFound
	})
}

// SetStanding sets the levels that are on call at all times.
func (s *Service) SetStanding(ctx context.Context, meta Meta, levels [][]Username, isConsultant IsConsultant) (Rota, error) {
	if err := requireAdmin(meta.Actor); err != nil {
		return Rota{}, err
	}
	if err := checkConsultants(ctx, isConsultant, "levels", levels); err != nil {
		return Rota{}, err
	}
	return s.updateRota(ctx, meta, func(r *rotaStream, now time.Time) error {
		r.record(&RotaLevelsSet{Levels: levels}, now)
		return nil
	})
}

// AddOverride has one consultant cover another for a period.
func (s *Service) AddOverride(ctx context.Context, meta Meta, o Override, isConsultant IsConsultant) (Rota, error) {
	if err := requireAdmin(meta.Actor); err != nil {
		return Rota{}, err
	}
	o.ID = s.cfg.NewID()
	if err := o.validate(); err != nil {
		return Rota{}, err
	}
	for field, u := range map[string]Username{"covered": o.Covered, "by": o.By} {
		ok, err := isConsultant(ctx, u)
		if err != nil {
			return Rota{}, err
		}
		if !ok {
			return Rota{}, inputErr(KindInvalidValue, field, "%q is not a consultant", u)
		}
	}
	o.From, o.To = o.From.UTC(), o.To.UTC()
	return s.updateRota(ctx, meta, func(r *rotaStream, now time.Time) error {
		r.record(&RotaOverrideSet{Override: o}, now)
		return nil
	})
}

// validate checks an override's period and the two consultants it names.
func (o Override) validate() error {
	switch {
	case o.From.IsZero():
		return inputErr(KindMissingField, "from", "give the start of the cover")
	case o.To.IsZero():
		return inputErr(KindMissingField, "to", "give the end of the cover")
	case !o.To.After(o.From):
		return inputErr(KindInvalidValue, "to", "the end must be after the start")
	case o.Covered == "":
		return inputErr(KindMissingField, "covered", "name the consultant being covered")
	case o.By == "":
		return inputErr(KindMissingField, "by", "name the consultant covering")
	}
	return nil
}

// RemoveOverride removes an override.
func (s *Service) RemoveOverride(ctx context.Context, meta Meta, id string) (Rota, error) {
	return s.updateRota(ctx, meta, func(r *rotaStream, now time.Time) error {
		for _, o := range r.rota.Overrides {
			if o.ID == id {
				r.record(&RotaOverrideRemoved{OverrideID: id}, now)
				return nil
			}
		}
		return ErrNotFound
	})
}

// RotaAt returns who was (or will be) on call at t, from the read model.
func (s *Service) RotaAt(ctx context.Context, a Actor, t time.Time) ([][]Username, error) {
	if err := s.catchUp(ctx); err != nil {
		return nil, err
	}
	return s.cfg.Read.RotaLevelsAt(t), nil
}

// CurrentRota is the rota as the log has it now: the read model is caught up
// first, so an admin who has just saved a shift or a cover sees it listed.
func (s *Service) CurrentRota(ctx context.Context) (Rota, error) {
	if err := s.catchUp(ctx); err != nil {
		return Rota{}, err
	}
	return s.cfg.Read.Rota(), nil
}
