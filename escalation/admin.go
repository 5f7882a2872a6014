package escalation

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/nightcall-health/nightcall/escalation/news2"
	"github.com/nightcall-health/nightcall/events"
)

// Administration events.
const (
	TypeCareHomeUpdated     = "carehome.updated"
	TypeCareHomeDeactivated = "carehome.deactivated"
	TypeResidentMoved       = "resident.moved"
	TypeAllergiesRecorded   = "resident.allergies_recorded"
)

// CareHomeUpdated: name, fallback number or out-of-hours contact changed.
type CareHomeUpdated struct {
	CareHome
}

// CareHomeDeactivated: the home no longer uses the service.
type CareHomeDeactivated struct {
	ID CareHomeID `json:"id"`
}

// ResidentMoved: the resident moved to another home.
type ResidentMoved struct {
	From CareHomeID `json:"from"`
	To   CareHomeID `json:"to"`
	Room string     `json:"room"`
}

// AllergiesRecorded: the resident's allergies, replacing earlier ones.
type AllergiesRecorded struct {
	Allergies []string `json:"allergies"`
}

func (CareHomeUpdated) EventType() string     { return TypeCareHomeUpdated }
func (CareHomeDeactivated) EventType() string { return TypeCareHomeDeactivated }
func (ResidentMoved) EventType() string       { return TypeResidentMoved }
func (AllergiesRecorded) EventType() string   { return TypeAllergiesRecorded }

func init() {
	registry[TypeCareHomeUpdated] = func() Event { return &CareHomeUpdated{} }
	registry[TypeCareHomeDeactivated] = func() Event { return &CareHomeDeactivated{} }
	registry[TypeResidentMoved] = func() Event { return &ResidentMoved{} }
	registry[TypeAllergiesRecorded] = func() Event { return &AllergiesRecorded{} }
}

// ErrDuplicate is behind DuplicateError.
var ErrDuplicate = errors.New("already exists")

// DuplicateError names the field that duplicates an existing record.
type DuplicateError struct{ Field, Message string }

func (e *DuplicateError) Error() string { return e.Field + ": " + e.Message }

// Unwrap makes errors.Is(err, ErrDuplicate) true.
func (e *DuplicateError) Unwrap() error { return ErrDuplicate }

var idRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// ValidNHSNumber checks the ten digits and the modulus 11 check digit.
func ValidNHSNumber(s string) bool {
	s = strings.ReplaceAll(s, " ", "")
	if len(s) != 10 {
		return false
	}
	sum := 0
	for i := 0; i < 10; i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
		if i < 9 {
			sum += int(s[i]-'0') * (10 - i)
		}
	}
	check := 11 - sum%11
	if check == 11 {
		check = 0
	}
	return check != 10 && check == int(s[9]-'0')
}

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

// Validate checks every field of a resident on its own, naming the first at fault.
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

// Validate checks the coded summary of an advance care plan.
func (p AdvanceCarePlan) Validate() error {
	checks := []struct {
		field, value string
		allowed      []string
	}{
		{"advance_care_plan.focus", p.Focus, []string{"extend_life", "balance", "comfort"}},
		{"advance_care_plan.hospital_admission", p.HospitalAdmission, []string{"wanted", "not_wanted", "discuss"}},
		{"advance_care_plan.cpr", p.CPR, []string{"attempt", "do_not_attempt"}},
	}
	for _, c := range checks {
		if c.value == "" {
			return inputErr(KindMissingField, c.field, "required: one of %s", strings.Join(c.allowed, ", "))
		}
		if !slices.Contains(c.allowed, c.value) {
			return inputErr(KindInvalidValue, c.field, "must be one of %s", strings.Join(c.allowed, ", "))
		}
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

func (s *Service) requireAdmin(a Actor) error {
	if a.Role != RoleAdmin {
		return ErrForbidden
	}
	return nil
}

// appendNew appends events to a stream that must not exist yet.
func (s *Service) appendNew(ctx context.Context, meta Meta, stream string, evs ...Event) error {
	now := s.cfg.Now()
	pending := make([]pendingEvent, len(evs))
	for i, e := range evs {
		pending[i] = pendingEvent{event: e, at: now}
	}
	newEvs, err := toNewEvents(pending, meta.Actor.Username, meta.CorrelationID, s.cfg.NewID)
	if err != nil {
		return err
	}
	_, err = s.cfg.Store.Append(ctx, stream, events.NoStream, newEvs, events.AppendOptions{})
	return err
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

// RegisterCareHome creates a home.
func (s *Service) RegisterCareHome(ctx context.Context, meta Meta, in CareHomeInput) (CareHome, error) {
	if err := s.requireAdmin(meta.Actor); err != nil {
		return CareHome{}, err
	}
	if err := in.validate(); err != nil {
		return CareHome{}, err
	}
	h := CareHome{ID: in.ID, Name: in.Name, FallbackPhone: in.FallbackPhone, OutOfHoursContact: in.OutOfHoursContact, Active: true}
	err := s.appendNew(ctx, meta, CareHomeStream(in.ID), &CareHomeRegistered{CareHome: h})
	if errors.Is(err, events.ErrVersionConflict) {
		return CareHome{}, &DuplicateError{Field: "id", Message: "a care home with this id exists"}
	}
	return h, err
}

// UpdateCareHome changes a home's name, fallback number or contact; empty fields keep their value.
func (s *Service) UpdateCareHome(ctx context.Context, meta Meta, in CareHomeInput, deactivate bool) (CareHome, error) {
	if err := s.requireAdmin(meta.Actor); err != nil {
		return CareHome{}, err
	}
	for attempt := 0; attempt < maxAttempts; attempt++ {
		envs, err := s.cfg.Store.Load(ctx, CareHomeStream(in.ID), 0)
		if errors.Is(err, events.ErrStreamNotFound) {
			return CareHome{}, ErrNotFound
		}
		if err != nil {
			return CareHome{}, err
		}
		var h CareHome
		for _, env := range envs {
			ev, err := Decode(env)
			if err != nil {
				return CareHome{}, err
			}
			h.apply(ev)
		}
		var ev Event
		if deactivate {
			if !h.Active {
				return h, nil
			}
			ev = &CareHomeDeactivated{ID: h.ID}
		} else {
			next := CareHomeInput{ID: h.ID, Name: h.Name, FallbackPhone: h.FallbackPhone, OutOfHoursContact: h.OutOfHoursContact}
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
				return CareHome{}, err
			}
			ev = &CareHomeUpdated{CareHome: CareHome{ID: h.ID, Name: next.Name, FallbackPhone: next.FallbackPhone, OutOfHoursContact: next.OutOfHoursContact, Active: h.Active}}
		}
		data, err := marshal(ev)
		if err != nil {
			return CareHome{}, err
		}
		_, err = s.cfg.Store.Append(ctx, CareHomeStream(in.ID), envs[len(envs)-1].Version, []events.NewEvent{{
			ID: s.cfg.NewID(), Type: ev.EventType(), Actor: string(meta.Actor.Username), RecordedAt: s.cfg.Now(), Data: data,
		}}, events.AppendOptions{})
		if errors.Is(err, events.ErrVersionConflict) {
			continue
		}
		if err != nil {
			return CareHome{}, err
		}
		h.apply(ev)
		return h, nil
	}
	return CareHome{}, ErrConflict
}

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

// AdmitResident admits a resident to a home with their baseline. Staff may
// admit to their own home; admins to any.
func (s *Service) AdmitResident(ctx context.Context, meta Meta, in ResidentInput) (*Resident, error) {
	a := meta.Actor
	if a.Role != RoleAdmin && !(a.Role == RoleCareHome && a.CareHomeID == in.CareHomeID) {
		return nil, ErrForbidden
	}
	if err := s.checkNewResident(ctx, &in); err != nil {
		return nil, err
	}
	err := s.appendNew(ctx, meta, ResidentStream(in.ID), in.events(s.cfg.Now())...)
	if errors.Is(err, events.ErrVersionConflict) {
		return nil, &DuplicateError{Field: "id", Message: "a resident with this id exists"}
	}
	if err != nil {
		return nil, err
	}
	return s.loadResident(ctx, in.ID)
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
	if h := s.cfg.Read.Home(in.CareHomeID); h.ID == "" || !h.Active {
		return inputErr(KindInvalidValue, "care_home_id", "there is no active care home %q", in.CareHomeID)
	}
	if s.cfg.Read.Resident(in.ID) != nil {
		return &DuplicateError{Field: "id", Message: "a resident with this id exists"}
	}
	for _, r := range s.cfg.Read.Residents() {
		if r.NHSNumber == in.NHSNumber && r.Status == ResidentStatusActive {
			return &DuplicateError{Field: "nhs_number", Message: "another active resident has this NHS number"}
		}
	}
	return nil
}

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
func (s *Service) ChangeResident(ctx context.Context, meta Meta, id ResidentID, c ResidentChange) (*Resident, error) {
	now := s.cfg.Now()
	if c.MoveTo != "" {
		if err := s.catchUp(ctx); err != nil {
			return nil, err
		}
		if h := s.cfg.Read.Home(c.MoveTo); h.ID == "" || !h.Active {
			return nil, inputErr(KindInvalidValue, "care_home_id", "there is no active care home %q", c.MoveTo)
		}
	}
	res, err := s.residentCommand(ctx, meta, id, func(r *Resident) error {
		switch {
		case c.MoveTo != "":
			if open := r.OpenEscalation(); open != nil {
				return &EscalationOpenError{EscalationID: open.ID}
			}
			if !r.Active() {
				return ErrResidentInactive
			}
			if c.MoveTo == r.CareHomeID {
				return inputErr(KindInvalidValue, "care_home_id", "the resident is already in this home")
			}
			r.record(&ResidentMoved{From: r.CareHomeID, To: c.MoveTo, Room: c.Room}, now)
		case c.LeftAt != nil || c.DiedAt != nil:
			if !r.Active() {
				return ErrResidentInactive
			}
			if open := r.OpenEscalation(); open != nil && c.LeftAt != nil {
				return &EscalationOpenError{EscalationID: open.ID}
			}
			if c.DiedAt != nil {
				if c.DiedAt.After(now.Add(5 * time.Minute)) {
					return inputErr(KindInvalidValue, "at", "the time is in the future")
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
	})
	if err != nil {
		return nil, err
	}
	return res.Resident, nil
}

// ImportRow is the outcome of one row of an import.
type ImportRow struct {
	Row     int        `json:"row"`
	ID      ResidentID `json:"id,omitempty"`
	Code    string     `json:"code,omitempty"`
	Field   string     `json:"field,omitempty"`
	Message string     `json:"message,omitempty"`
}

// ImportReport says what an import did, or would do.
type ImportReport struct {
	DryRun   bool        `json:"dry_run"`
	Rows     int         `json:"rows"`
	Imported int         `json:"imported"`
	Valid    int         `json:"valid"`
	Errors   []ImportRow `json:"errors"`
}

// ImportResidents admits every valid row and reports every bad one; a dry run
// checks all rows and appends nothing. Duplicates within the file count too.
func (s *Service) ImportResidents(ctx context.Context, meta Meta, rows []ResidentInput, rowErrs []ImportRow, dryRun bool) (ImportReport, error) {
	if err := s.requireAdmin(meta.Actor); err != nil {
		return ImportReport{}, err
	}
	rep := ImportReport{DryRun: dryRun, Rows: len(rows) + len(rowErrs), Errors: append([]ImportRow{}, rowErrs...)}
	seenID, seenNHS := map[ResidentID]bool{}, map[string]bool{}
	for i, in := range rows {
		rowNum := in.rowNumber(i)
		fail := func(err error) {
			row := ImportRow{Row: rowNum, ID: in.ID, Message: err.Error()}
			var ie *InputError
			var de *DuplicateError
			switch {
			case errors.As(err, &ie):
				row.Code, row.Field, row.Message = string(ie.Kind), ie.Field, ie.Message
			case errors.As(err, &de):
				row.Code, row.Field, row.Message = "duplicate", de.Field, de.Message
			}
			rep.Errors = append(rep.Errors, row)
		}
		if err := s.checkNewResident(ctx, &in); err != nil {
			var ie *InputError
			var de *DuplicateError
			if !errors.As(err, &ie) && !errors.As(err, &de) {
				return rep, err
			}
			fail(err)
			continue
		}
		if seenID[in.ID] {
			fail(&DuplicateError{Field: "id", Message: "this id is on an earlier row"})
			continue
		}
		if seenNHS[in.NHSNumber] {
			fail(&DuplicateError{Field: "nhs_number", Message: "this NHS number is on an earlier row"})
			continue
		}
		seenID[in.ID], seenNHS[in.NHSNumber] = true, true
		rep.Valid++
		if dryRun {
			continue
		}
		err := s.appendNew(ctx, meta, ResidentStream(in.ID), in.events(s.cfg.Now())...)
		if errors.Is(err, events.ErrVersionConflict) {
			fail(&DuplicateError{Field: "id", Message: "a resident with this id exists"})
			rep.Valid--
			continue
		}
		if err != nil {
			return rep, err
		}
		rep.Imported++
	}
	slices.SortFunc(rep.Errors, func(a, b ImportRow) int { return a.Row - b.Row })
	return rep, nil
}

// rowNumber is the row's line in the file when read from CSV, else its index from 1.
func (in ResidentInput) rowNumber(i int) int {
	if in.Row > 0 {
		return in.Row
	}
	return i + 1
}

// TypeUserCreated records that an account was created (never its secret).
const TypeUserCreated = "user.created"

// UserCreated: an account was created.
type UserCreated struct {
	Username   Username   `json:"username"`
	Role       Role       `json:"role"`
	CareHomeID CareHomeID `json:"care_home_id,omitempty"`
}

func (UserCreated) EventType() string { return TypeUserCreated }

func init() { registry[TypeUserCreated] = func() Event { return &UserCreated{} } }

// RecordUserCreated puts an account's creation on the user's stream.
func (s *Service) RecordUserCreated(ctx context.Context, meta Meta, u UserCreated) error {
	err := s.appendNew(ctx, meta, "user-"+string(u.Username), &u)
	if errors.Is(err, events.ErrVersionConflict) {
		return &DuplicateError{Field: "username", Message: "this username is taken"}
	}
	return err
}

// CheckCareHome reports whether id is an active home.
func (s *Service) CheckCareHome(ctx context.Context, id CareHomeID) error {
	if err := s.catchUp(ctx); err != nil {
		return err
	}
	if h := s.cfg.Read.Home(id); h.ID == "" || !h.Active {
		return inputErr(KindInvalidValue, "care_home_id", "there is no active care home %q", id)
	}
	return nil
}
