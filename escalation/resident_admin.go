package escalation

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/nightcall-health/nightcall/escalation/news2"
	"github.com/nightcall-health/nightcall/events"
)

// Resident administration: admitting a resident with their clinical baseline,
// and the changes to their record afterwards (a move, leaving, death, a new
// SpO2 scale, baseline, care plan or allergies).

// ResidentInput is a resident to admit, with their clinical baseline.
type ResidentInput struct {
	ID              ResidentID       `json:"id"`
	CareHomeID      CareHomeID       `json:"care_home_id"`
	Name            string           `json:"name"`
	DateOfBirth     string           `json:"date_of_birth"`
	Room            string           `json:"room"`
	NHSNumber       string           `json:"nhs_number"`
	SpO2Scale       news2.Scale      `json:"spo2_scale"`
	SpO2ScaleSetBy  string           `json:"spo2_scale_set_by"`
	SpO2ScaleSetAt  *time.Time       `json:"spo2_scale_set_at"`
	Baseline        *Baseline        `json:"baseline"`
	AdvanceCarePlan *AdvanceCarePlan `json:"advance_care_plan"`
	Allergies       []string         `json:"allergies"`
	// Row is the line of a CSV import this came from (0 otherwise).
	Row int `json:"-"`
}

// Validate checks every field of a resident on its own, naming the first at
// fault. It normalises the NHS number (no spaces) and the default scale.
func (in *ResidentInput) Validate(now time.Time) error {
	in.NHSNumber = strings.ReplaceAll(in.NHSNumber, " ", "")
	switch {
	case in.ID == "":
		return inputErr(KindMissingField, "id", "give the resident an id")
	case !idRE.MatchString(string(in.ID)):
		return inputErr(KindInvalidValue, "id", "ids are lower-case letters, digits and dashes")
	case in.CareHomeID == "":
		return inputErr(KindMissingField, "care_home_id", "name the care home")
	case strings.TrimSpace(in.Name) == "":
		return inputErr(KindMissingField, "name", "give the resident's name")
	case in.DateOfBirth == "":
		return inputErr(KindMissingField, "date_of_birth", "give the date of birth (YYYY-MM-DD)")
	case in.NHSNumber == "":
		return inputErr(KindMissingField, "nhs_number", "give the NHS number")
	case !ValidNHSNumber(in.NHSNumber):
		return inputErr(KindInvalidValue, "nhs_number", "not a valid NHS number (ten digits with a modulus 11 check digit)")
	}
	dob, err := time.Parse(time.DateOnly, in.DateOfBirth)
	if err != nil {
		return inputErr(KindInvalidValue, "date_of_birth", "the date of birth must be YYYY-MM-DD")
	}
	if dob.After(now) {
		return inputErr(KindInvalidValue, "date_of_birth", "the date of birth is in the future")
	}
	if dob.Before(now.AddDate(-125, 0, 0)) {
		return inputErr(KindInvalidValue, "date_of_birth", "the date of birth is more than 125 years ago")
	}
	if in.SpO2Scale == 0 {
		in.SpO2Scale = news2.Scale1
	}
	if err := validateScale(in.SpO2Scale, in.SpO2ScaleSetBy, "spo2_scale"); err != nil {
		return err
	}
	if in.Baseline != nil {
		if err := in.Baseline.Validate(); err != nil {
			return err
		}
	}
	if in.AdvanceCarePlan != nil {
		if err := in.AdvanceCarePlan.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// events are the facts that open a validated resident's stream.
func (in ResidentInput) events(now time.Time) []Event {
	evs := []Event{&ResidentAdmitted{ResidentID: in.ID, CareHomeID: in.CareHomeID, Name: in.Name, DateOfBirth: in.DateOfBirth,
		Room: in.Room, NHSNumber: in.NHSNumber, SpO2Scale: news2.Scale1}}
	if in.SpO2Scale == news2.Scale2 {
		at := now
		if in.SpO2ScaleSetAt != nil {
			at = *in.SpO2ScaleSetAt
		}
		evs = append(evs, &SpO2ScaleChanged{Scale: news2.Scale2, SetBy: in.SpO2ScaleSetBy, SetAt: at.UTC()})
	}
	if in.Baseline != nil {
		evs = append(evs, &BaselineRecorded{Baseline: *in.Baseline})
	}
	if in.AdvanceCarePlan != nil {
		evs = append(evs, &CarePlanRecorded{Plan: *in.AdvanceCarePlan})
	}
	if len(in.Allergies) > 0 {
		evs = append(evs, &AllergiesRecorded{Allergies: in.Allergies})
	}
	return evs
}

// AdmitResident admits a resident to a home with their baseline. Staff may
// admit to their own home; admins to any.
func (s *Service) AdmitResident(ctx context.Context, meta Meta, in ResidentInput) (*ResidentView, error) {
	a := meta.Actor
	if a.Role != RoleAdmin && !(a.Role == RoleCareHome && a.CareHomeID == in.CareHomeID) {
		return nil, ErrForbidden
	}
	if err := s.checkNewResident(ctx, &in); err != nil {
		return nil, err
	}
	if err := s.admit(ctx, meta, in); err != nil {
		return nil, err
	}
	r, err := s.loadResident(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	v := r.View()
	return &v, nil
}

// admit opens a checked resident's stream; one that exists is a duplicate.
func (s *Service) admit(ctx context.Context, meta Meta, in ResidentInput) error {
	now := s.cfg.Now()
	r, err := NewResident(in, now)
	if err != nil {
		return err
	}
	evs := make([]Event, len(r.pending))
	for i, p := range r.pending {
		evs[i] = p.event
	}
	var result any
	if meta.Idempotency != nil {
		// The record is the resident these events make, as a later read gives it.
		v := r.View()
		result = &v
		resident := meta.Idempotency
		meta.IdempotencyOf = func(v any) (*events.IdempotencyRecord, error) { return resident(v.(*ResidentView)) }
	}
	err = s.repo.createReturning(ctx, ResidentStream(in.ID), meta, now, result, evs...)
	if errors.Is(err, events.ErrVersionConflict) {
		return &DuplicateError{Field: "id", Message: "a resident with this id exists"}
	}
	return err
}

// checkNewResident validates the input and its fit with what is recorded:
// the home exists and is active, the id and NHS number are new.
func (s *Service) checkNewResident(ctx context.Context, in *ResidentInput) error {
	if err := in.Validate(s.cfg.Now()); err != nil {
		return err
	}
	if err := s.catchUp(ctx); err != nil {
		return err
	}
	if err := s.activeHome(in.CareHomeID, "care_home_id"); err != nil {
		return err
	}
	if s.cfg.Read.Resident(in.ID) != nil {
		return &DuplicateError{Field: "id", Message: "a resident with this id exists"}
	}
	if dup := s.cfg.Read.ResidentsWhere(Selection{}, func(r *ResidentView) bool {
		return r.NHSNumber == in.NHSNumber && r.Status == ResidentStatusActive
	}); len(dup) > 0 {
		return &DuplicateError{Field: "nhs_number", Message: "another active resident has this NHS number"}
	}
	return nil
}

// ResidentChange is one administrative change to a resident.
type ResidentChange struct {
	MoveTo        CareHomeID
	Room          string
	LeftAt        *time.Time
	DiedAt        *time.Time
	DiedExpected  bool
	SpO2Scale     news2.Scale
	ScaleSetBy    string
	ScaleSetAt    *time.Time
	Baseline      *Baseline
	CarePlan      *AdvanceCarePlan
	Allergies     []string
	SetAllergies  bool
	ChangeSummary string
}

// ChangeResident applies one administrative change (admin, or staff of the home).
func (s *Service) ChangeResident(ctx context.Context, meta Meta, id ResidentID, c ResidentChange) (*ResidentView, error) {
	now := s.cfg.Now()
	if c.MoveTo != "" {
		if err := s.catchUp(ctx); err != nil {
			return nil, err
		}
		if err := s.activeHome(c.MoveTo, "care_home_id"); err != nil {
			return nil, err
		}
	}
	res, err := s.residentCommand(ctx, meta, id, func(r *Resident) error { return r.change(c, now) })
	if err != nil {
		return nil, err
	}
	v := res.Resident.View()
	return &v, nil
}

// change decides one administrative change against the resident's state.
func (r *Resident) change(c ResidentChange, now time.Time) error {
	switch {
	case c.MoveTo != "":
		if open := r.openEscalation(); open != nil {
			return &EscalationOpenError{EscalationID: open.ID}
		}
		if !r.Active() {
			return ErrResidentInactive
		}
		if c.MoveTo == r.state.CareHomeID {
			return inputErr(KindInvalidValue, "care_home_id", "the resident is already in this home")
		}
		r.record(&ResidentMoved{From: r.state.CareHomeID, To: c.MoveTo, Room: c.Room}, now)
	case c.LeftAt != nil || c.DiedAt != nil:
		if !r.Active() {
			return ErrResidentInactive
		}
		if open := r.openEscalation(); open != nil && c.LeftAt != nil {
			return &EscalationOpenError{EscalationID: open.ID}
		}
		if c.DiedAt != nil {
			if c.DiedAt.After(now.Add(5 * time.Minute)) {
				return inputErr(KindInvalidValue, "at", "the time is in the future")
			}
			// A death closes the resident's open escalation, and with it
			// its paging: nobody is woken for a resident who has died.
			if open := r.openEscalation(); open != nil {
				r.record(&EscalationWithdrawn{EscalationID: open.ID, Reason: "the resident died", By: "nightcall"}, now)
			}
			r.record(&ResidentDied{At: c.DiedAt.UTC(), Expected: c.DiedExpected}, now)
		} else {
			if c.LeftAt.After(now.Add(5 * time.Minute)) {
				return inputErr(KindInvalidValue, "at", "the time is in the future")
			}
			r.record(&ResidentLeft{At: c.LeftAt.UTC()}, now)
		}
	case c.SpO2Scale != 0:
		if err := validateScale(c.SpO2Scale, c.ScaleSetBy, "spo2_scale"); err != nil {
			return err
		}
		at := now
		if c.ScaleSetAt != nil {
			at = c.ScaleSetAt.UTC()
		}
		r.record(&SpO2ScaleChanged{Scale: c.SpO2Scale, SetBy: c.ScaleSetBy, SetAt: at}, now)
	case c.Baseline != nil:
		if err := c.Baseline.Validate(); err != nil {
			return err
		}
		r.record(&BaselineRecorded{Baseline: *c.Baseline}, now)
	case c.CarePlan != nil:
		if err := c.CarePlan.Validate(); err != nil {
			return err
		}
		r.record(&CarePlanRecorded{Plan: *c.CarePlan}, now)
	case c.SetAllergies:
		r.record(&AllergiesRecorded{Allergies: c.Allergies}, now)
	default:
		return inputErr(KindMissingField, "", "nothing to change")
	}
	return nil
}
