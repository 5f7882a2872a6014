package web

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/escalation/news2"
	"github.com/nightcall-health/nightcall/events"
)

// AccountInput is a new account.
type AccountInput struct {
	Username   string `json:"username"`
	Name       string `json:"name"`
	Role       string `json:"role"`
	CareHomeID string `json:"care_home_id"`
	Password   string `json:"password"`
}

var usernameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{1,39}$`)

// MinPasswordLength is the shortest password a real account may have.
const MinPasswordLength = 12

// CreateAccount validates and creates an account, hashing its password with
// argon2id, and records its creation (never the secret) as an event.
func CreateAccount(ctx context.Context, svc *escalation.Service, accounts events.AccountStore, meta escalation.Meta, in AccountInput) (events.Account, error) {
	field := func(kind escalation.ErrorKind, f, msg string) error {
		return &escalation.InputError{Kind: kind, Field: f, Message: msg}
	}
	switch {
	case in.Username == "":
		return events.Account{}, field(escalation.KindMissingField, "username", "give a username")
	case !usernameRE.MatchString(in.Username):
		return events.Account{}, field(escalation.KindInvalidValue, "username", "usernames are 2–40 lower-case letters, digits, dots, dashes or underscores")
	case strings.TrimSpace(in.Name) == "":
		return events.Account{}, field(escalation.KindMissingField, "name", "give the person's name")
	case !escalation.Role(in.Role).Valid():
		return events.Account{}, field(escalation.KindInvalidValue, "role", "role must be carehome, consultant, auditor or admin")
	case in.Role == string(escalation.RoleCareHome) && in.CareHomeID == "":
		return events.Account{}, field(escalation.KindMissingField, "care_home_id", "care-home staff belong to a home")
	case in.Role != string(escalation.RoleCareHome) && in.CareHomeID != "":
		return events.Account{}, field(escalation.KindInvalidValue, "care_home_id", "only care-home staff belong to a home")
	case len(in.Password) < MinPasswordLength:
		return events.Account{}, field(escalation.KindInvalidValue, "password", "passwords are at least 12 characters")
	}
	if in.CareHomeID != "" {
		if err := svc.CheckCareHome(ctx, escalation.CareHomeID(in.CareHomeID)); err != nil {
			return events.Account{}, err
		}
	}
	hash, err := HashPassword(in.Password)
	if err != nil {
		return events.Account{}, err
	}
	acct := events.Account{Username: in.Username, Name: in.Name, Role: in.Role, CareHomeID: in.CareHomeID, PasswordHash: hash}
	if err := accounts.CreateUser(ctx, acct); errors.Is(err, events.ErrAccountExists) {
		return events.Account{}, &escalation.DuplicateError{Field: "username", Message: "this username is taken"}
	} else if err != nil {
		return events.Account{}, err
	}
	err = svc.RecordUserCreated(ctx, meta, escalation.UserCreated{Username: escalation.Username(in.Username), Role: escalation.Role(in.Role), CareHomeID: escalation.CareHomeID(in.CareHomeID)})
	if err != nil && !errors.Is(err, escalation.ErrDuplicate) {
		return events.Account{}, err
	}
	acct.PasswordHash = ""
	return acct, nil
}

type accountView struct {
	Username   string `json:"username"`
	Name       string `json:"name"`
	Role       string `json:"role"`
	CareHomeID string `json:"care_home_id,omitempty"`
}

func (s *Server) handleCreateUser(w http.ResponseWriter, r *http.Request, a *escalation.Actor) {
	if a.Role != escalation.RoleAdmin {
		s.writeError(w, r, errForbidden)
		return
	}
	var in AccountInput
	if _, ok := s.command(w, r, a, &in, false); !ok {
		return
	}
	acct, err := CreateAccount(r.Context(), s.cfg.Service, s.cfg.Accounts, s.meta(r, a), in)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.log.InfoContext(r.Context(), "account created", "user", acct.Username, "role", acct.Role)
	writeJSON(w, http.StatusCreated, accountView{acct.Username, acct.Name, acct.Role, acct.CareHomeID})
}

func (s *Server) handleListUsers(w http.ResponseWriter, r *http.Request, a *escalation.Actor) {
	if a.Role != escalation.RoleAdmin {
		s.writeError(w, r, errForbidden)
		return
	}
	users, err := s.cfg.Accounts.Users(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]accountView, len(users))
	for i, u := range users {
		out[i] = accountView{u.Username, u.Name, u.Role, u.CareHomeID}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleListHomes(w http.ResponseWriter, r *http.Request, a *escalation.Actor) {
	homes := s.cfg.Service.Read().Homes()
	out := make([]escalation.CareHome, 0, len(homes))
	for _, h := range homes {
		if a.Role == escalation.RoleCareHome && h.ID != a.CareHomeID {
			continue
		}
		out = append(out, h)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleCreateHome(w http.ResponseWriter, r *http.Request, a *escalation.Actor) {
	var in escalation.CareHomeInput
	if _, ok := s.command(w, r, a, &in, false); !ok {
		return
	}
	h, err := s.cfg.Service.RegisterCareHome(r.Context(), s.meta(r, a), in)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, h)
}

func (s *Server) handleUpdateHome(w http.ResponseWriter, r *http.Request, a *escalation.Actor) {
	var in escalation.CareHomeInput
	deactivate := strings.HasSuffix(r.URL.Path, "/deactivate")
	if _, ok := s.command(w, r, a, &in, deactivate); !ok {
		return
	}
	in.ID = escalation.CareHomeID(r.PathValue("id"))
	h, err := s.cfg.Service.UpdateCareHome(r.Context(), s.meta(r, a), in, deactivate)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, h)
}

func (s *Server) handleAdmitResident(w http.ResponseWriter, r *http.Request, a *escalation.Actor) {
	var in escalation.ResidentInput
	if _, ok := s.command(w, r, a, &in, false); !ok {
		return
	}
	res, err := s.cfg.Service.AdmitResident(r.Context(), s.meta(r, a), in)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, viewResident(res))
}

func (s *Server) handleImportResidents(w http.ResponseWriter, r *http.Request, a *escalation.Actor) {
	if a.Role != escalation.RoleAdmin {
		s.writeError(w, r, errForbidden)
		return
	}
	body, err := s.readBody(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	rows, bad, err := escalation.ParseResidentsCSV(strings.NewReader(string(body)))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	dry := r.URL.Query().Get("dry_run") == "true"
	rep, err := s.cfg.Service.ImportResidents(r.Context(), s.meta(r, a), rows, bad, dry)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	status := http.StatusOK
	if !dry && rep.Imported > 0 {
		status = http.StatusCreated
	}
	writeJSON(w, status, rep)
}

type residentChangeRequest struct {
	CareHomeID     string     `json:"care_home_id"`
	Room           string     `json:"room"`
	At             *time.Time `json:"at"`
	Expected       bool       `json:"expected"`
	SpO2Scale      int        `json:"spo2_scale"`
	SetBy          string     `json:"set_by"`
	SetAt          *time.Time `json:"set_at"`
	NEWS2Total     *int       `json:"news2_total"`
	Notes          string     `json:"notes"`
	HasRespectForm bool       `json:"has_respect_form"`
	Focus          string     `json:"focus"`
	Hospital       string     `json:"hospital_admission"`
	CPR            string     `json:"cpr"`
	Summary        string     `json:"summary"`
	RecordedAt     string     `json:"recorded_at"`
	ReviewDue      string     `json:"review_due"`
	Allergies      *[]string  `json:"allergies"`
}

// handleChangeResident serves the per-resident admin routes; the last path
// segment says which change.
func (s *Server) handleChangeResident(w http.ResponseWriter, r *http.Request, a *escalation.Actor) {
	var req residentChangeRequest
	if _, ok := s.command(w, r, a, &req, false); !ok {
		return
	}
	missing := func(f, msg string) {
		s.writeError(w, r, &apiError{Status: 400, Code: "missing_field", Field: f, Message: msg})
	}
	var c escalation.ResidentChange
	switch r.PathValue("change") {
	case "move":
		if req.CareHomeID == "" {
			missing("care_home_id", "name the home the resident moves to")
			return
		}
		c.MoveTo, c.Room = escalation.CareHomeID(req.CareHomeID), req.Room
	case "left", "died":
		if req.At == nil {
			missing("at", "give the time")
			return
		}
		if r.PathValue("change") == "died" {
			c.DiedAt, c.DiedExpected = req.At, req.Expected
		} else {
			c.LeftAt = req.At
		}
	case "spo2-scale":
		if req.SpO2Scale == 0 {
			missing("spo2_scale", "give the scale, 1 or 2")
			return
		}
		c.SpO2Scale, c.ScaleSetBy, c.ScaleSetAt = news2.Scale(req.SpO2Scale), req.SetBy, req.SetAt
		if c.SpO2Scale == news2.Scale2 && strings.TrimSpace(req.SetBy) == "" {
			missing("set_by", "Scale 2 needs the clinician who decided it")
			return
		}
	case "baseline":
		if req.NEWS2Total == nil {
			missing("news2_total", "give the resident's usual NEWS2")
			return
		}
		c.Baseline = &escalation.Baseline{NEWS2Total: *req.NEWS2Total, Notes: req.Notes}
	case "advance-care-plan":
		c.CarePlan = &escalation.AdvanceCarePlan{HasRespectForm: req.HasRespectForm, Focus: req.Focus, HospitalAdmission: req.Hospital,
			CPR: req.CPR, Summary: req.Summary, RecordedAt: req.RecordedAt, ReviewDue: req.ReviewDue}
	case "allergies":
		if req.Allergies == nil {
			missing("allergies", "give the list of allergies ([] for none)")
			return
		}
		c.Allergies, c.SetAllergies = *req.Allergies, true
	default:
		s.writeError(w, r, errNotFound)
		return
	}
	res, err := s.cfg.Service.ChangeResident(r.Context(), s.meta(r, a), escalation.ResidentID(r.PathValue("id")), c)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, viewResident(res))
}
