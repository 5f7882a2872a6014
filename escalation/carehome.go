package escalation

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"time"

	"github.com/nightcall-health/nightcall/events"
)

// CareHome is a home that raises escalations.
type CareHome struct {
	ID                CareHomeID `json:"id"`
	Name              string     `json:"name"`
	FallbackPhone     string     `json:"fallback_phone"`
	OutOfHoursContact string     `json:"out_of_hours_contact,omitempty"`
	Active            bool       `json:"active"`
}

// apply folds one event of the home's stream into h; it never fails.
func (h *CareHome) apply(ev Event) {
	switch e := ev.(type) {
	case *CareHomeRegistered:
		*h = e.CareHome
		h.Active = true
	case *CareHomeUpdated:
		active := h.Active
		*h = e.CareHome
		h.Active = active
	case *CareHomeDeactivated:
		h.Active = false
	}
}

// CareHomeInput creates or updates a home.
type CareHomeInput struct {
	ID                CareHomeID `json:"id"`
	Name              string     `json:"name"`
	FallbackPhone     string     `json:"fallback_phone"`
	OutOfHoursContact string     `json:"out_of_hours_contact"`
}

var phoneRE = regexp.MustCompile(`^\+?[0-9 ()-]{6,20}$`)

func (in CareHomeInput) validate() error {
	switch {
	case in.ID == "":
		return inputErr(KindMissingField, "id", "give the home an id")
	case !idRE.MatchString(string(in.ID)):
		return inputErr(KindInvalidValue, "id", "ids are lower-case letters, digits and dashes")
	case strings.TrimSpace(in.Name) == "":
		return inputErr(KindMissingField, "name", "give the home's name")
	case in.FallbackPhone == "":
		return inputErr(KindMissingField, "fallback_phone", "give the number staff call when nobody answers")
	case !phoneRE.MatchString(in.FallbackPhone):
		return inputErr(KindInvalidValue, "fallback_phone", "not a phone number")
	}
	return nil
}

// newCareHome is the home in, validated, as it joins the service (active).
func newCareHome(in CareHomeInput) (CareHome, error) {
	if err := in.validate(); err != nil {
		return CareHome{}, err
	}
	return CareHome{ID: in.ID, Name: in.Name, FallbackPhone: in.FallbackPhone, OutOfHoursContact: in.OutOfHoursContact, Active: true}, nil
}

// careHomeStream is the care-home aggregate on stream carehome-{id}.
type careHomeStream struct {
	home CareHome
	changes
}

func (h *careHomeStream) publicState() any { return h.home }

// loadCareHome folds a home's stream; a home without one does not exist.
func loadCareHome(_ context.Context, envs []events.Envelope) (*careHomeStream, error) {
	if len(envs) == 0 {
		return nil, ErrNotFound
	}
	h := &careHomeStream{}
	for _, env := range envs {
		ev, err := Decode(env)
		if err != nil {
			return nil, err
		}
		h.home.apply(ev)
		h.version = env.Version
	}
	return h, nil
}

func (h *careHomeStream) record(ev Event, at time.Time) {
	h.home.apply(ev)
	h.keep(ev, at)
}

// deactivate takes the home out of service; a home already out changes nothing.
func (h *careHomeStream) deactivate(now time.Time) {
	if h.home.Active {
		h.record(&CareHomeDeactivated{ID: h.home.ID}, now)
	}
}

// change sets the fields of in that are not empty, keeping the others.
func (h *careHomeStream) change(in CareHomeInput, now time.Time) error {
	next := CareHomeInput{ID: h.home.ID, Name: h.home.Name, FallbackPhone: h.home.FallbackPhone, OutOfHoursContact: h.home.OutOfHoursContact}
	if in.Name != "" {
		next.Name = in.Name
	}
	if in.FallbackPhone != "" {
		next.FallbackPhone = in.FallbackPhone
	}
	if in.OutOfHoursContact != "" {
		next.OutOfHoursContact = in.OutOfHoursContact
	}
	if err := next.validate(); err != nil {
		return err
	}
	h.record(&CareHomeUpdated{CareHome: CareHome{ID: h.home.ID, Name: next.Name, FallbackPhone: next.FallbackPhone,
		OutOfHoursContact: next.OutOfHoursContact, Active: h.home.Active}}, now)
	return nil
}

// RegisterCareHome creates a home.
func (s *Service) RegisterCareHome(ctx context.Context, meta Meta, in CareHomeInput) (CareHome, error) {
	if err := requireAdmin(meta.Actor); err != nil {
		return CareHome{}, err
	}
	h, err := newCareHome(in)
	if err != nil {
		return CareHome{}, err
	}
	err = s.repo.createReturning(ctx, CareHomeStream(in.ID), meta, s.cfg.Now(), h, &CareHomeRegistered{CareHome: h})
	if errors.Is(err, events.ErrVersionConflict) {
		return CareHome{}, &DuplicateError{Field: "id", Message: "a care home with this id exists"}
	}
	return h, err
}

// UpdateCareHome changes a home's name, fallback number or contact; empty
// fields keep their value. With deactivate it takes the home out of service.
func (s *Service) UpdateCareHome(ctx context.Context, meta Meta, in CareHomeInput, deactivate bool) (CareHome, error) {
	if err := requireAdmin(meta.Actor); err != nil {
		return CareHome{}, err
	}
	now := s.cfg.Now()
	h, _, err := update(ctx, s.repo, CareHomeStream(in.ID), saveFor[*careHomeStream](meta), loadCareHome, func(h *careHomeStream) error {
		if deactivate {
			h.deactivate(now)
			return nil
		}
		return h.change(in, now)
	})
	if err != nil {
		return CareHome{}, err
	}
	return h.home, nil
}

// CheckCareHome reports whether id is an active home.
func (s *Service) CheckCareHome(ctx context.Context, id CareHomeID) error {
	if err := s.catchUp(ctx); err != nil {
		return err
	}
	return s.activeHome(id, "care_home_id")
}

// activeHome checks, in the read model, that id is an active home.
func (s *Service) activeHome(id CareHomeID, field string) error {
	if h := s.cfg.Read.Home(id); h.ID == "" || !h.Active {
		return inputErr(KindInvalidValue, field, "there is no active care home %q", id)
	}
	return nil
}

// homeInService refuses a raise from a home that has been deactivated,
// reading the home's own stream (not the read model) so that a deactivation
// on another instance counts at once.
func (s *Service) homeInService(ctx context.Context, id CareHomeID) error {
	envs, err := s.cfg.Store.Load(ctx, CareHomeStream(id), 0)
	if errors.Is(err, events.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	h, err := loadCareHome(ctx, envs)
	if err != nil {
		return err
	}
	if !h.home.Active {
		return ErrCareHomeInactive
	}
	return nil
}

// CareHomes lists every home as the log has it now (the read model is caught
// up first, so a home just created or renamed is listed as saved).
func (s *Service) CareHomes(ctx context.Context) ([]CareHome, error) {
	if err := s.catchUp(ctx); err != nil {
		return nil, err
	}
	return s.cfg.Read.Homes(), nil
}
