package web

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/escalation/account"
	"github.com/nightcall-health/nightcall/escalation/news2"
)

type accountView struct {
	Username   escalation.Username   `json:"username"`
	Name       string                `json:"name"`
	Role       escalation.Role       `json:"role"`
	CareHomeID escalation.CareHomeID `json:"care_home_id,omitempty"`
	// CareHomeIDs are the homes a GP is bound to.
	CareHomeIDs []escalation.CareHomeID `json:"care_home_ids,omitempty"`
	// Disabled accounts cannot sign in and hold no sessions.
	Disabled bool `json:"disabled"`
	// Phone is E.164, when given (the page webhook passes a consultant's on).
	Phone string `json:"phone,omitempty"`
}

// viewAccount is what the API shows of an account: never its hash.
func viewAccount(a account.Account) accountView {
	return accountView{Username: a.Username, Name: a.Name, Role: a.Role, CareHomeID: a.CareHomeID, CareHomeIDs: a.CareHomeIDs, Disabled: a.Disabled, Phone: a.Phone}
}

// handleSetDisabled serves POST /api/v1/users/{username}/disable and
// /enable (admin) → 200 with the account. Disabling deletes every session
// of the account in the store (so its next request on any instance is 401),
// closes its sockets here, and appends user.disabled, on which every other
// instance closes the account's sockets too. Both are idempotent.
func (s *Server) handleSetDisabled(w http.ResponseWriter, r *http.Request, a *escalation.Actor) {
	if a.Role != escalation.RoleAdmin {
		s.writeError(w, r, errForbidden)
		return
	}
	var body struct{}
	id, ok := s.command(w, r, a, &body, true)
	if !ok {
		return
	}
	u := escalation.Username(r.PathValue("username"))
	disable := strings.HasSuffix(r.URL.Path, "/disable")
	if disable && u == a.Username {
		s.writeError(w, r, newErr(http.StatusForbidden, "forbidden", "You cannot disable your own account."))
		return
	}
	if err := s.accounts.SetDisabled(r.Context(), u, disable); err != nil {
		s.writeError(w, r, accountErr(err))
		return
	}
	var ev escalation.AccountEvent = &escalation.UserEnabled{Username: u}
	if disable {
		s.endUser(u, "account disabled")
		ev = &escalation.UserDisabled{Username: u}
	} else {
		s.sessions.forgetUser(u)
	}
	acct, err := s.cfg.Accounts.UserByName(r.Context(), u)
	if err != nil {
		s.writeError(w, r, accountErr(err))
		return
	}
	view := viewAccount(acct)
	meta := s.meta(r, a)
	meta.IdempotencyOf = id.recordOf(http.StatusOK, func(any) any { return view })
	_, err = s.cfg.Service.RecordAccountEvent(r.Context(), meta, ev, view)
	if err == nil {
		s.log.InfoContext(r.Context(), "account changed", "user", u, "disabled", disable)
	}
	s.respond(w, r, id, err, http.StatusOK, func() any { return view })
}

// handleSetPassword serves POST /api/v1/users/{username}/password (admin)
// {"password"} → 204: a reset. Every session of the account is revoked, on
// every instance, as for a disabled account.
func (s *Server) handleSetPassword(w http.ResponseWriter, r *http.Request, a *escalation.Actor) {
	if a.Role != escalation.RoleAdmin {
		s.writeError(w, r, errForbidden)
		return
	}
	var req struct {
		Password *string `json:"password"`
	}
	id, ok := s.command(w, r, a, &req, false)
	if !ok {
		return
	}
	if req.Password == nil || *req.Password == "" {
		s.writeError(w, r, &apiError{Status: http.StatusBadRequest, Code: "missing_field", Field: "password", Message: "Give the new password."})
		return
	}
	u := escalation.Username(r.PathValue("username"))
	if err := s.accounts.ChangePassword(r.Context(), u, *req.Password); err != nil {
		s.writeError(w, r, accountErr(err))
		return
	}
	s.endUser(u, "password changed")
	meta := s.meta(r, a)
	meta.IdempotencyOf = id.recordOf(http.StatusNoContent, nil)
	_, err := s.cfg.Service.RecordAccountEvent(r.Context(), meta, &escalation.UserPasswordChanged{Username: u}, nil)
	if err == nil {
		s.log.InfoContext(r.Context(), "password reset", "user", u)
	}
	s.respond(w, r, id, err, http.StatusNoContent, nil)
}

// accountErr maps the account store's not-found to the API's.
func accountErr(err error) error {
	if errors.Is(err, account.ErrNotFound) {
		return errNotFound
	}
	return err
}

func (s *Server) handleCreateUser(w http.ResponseWriter, r *http.Request, a *escalation.Actor) {
	if a.Role != escalation.RoleAdmin {
		s.writeError(w, r, errForbidden)
		return
	}
	var in account.Input
	id, ok := s.command(w, r, a, &in, false)
	if !ok {
		return
	}
	meta := s.meta(r, a)
	meta.IdempotencyOf = id.recordOf(http.StatusCreated, func(v any) any {
		u := v.(escalation.UserCreated)
		return accountView{Username: u.Username, Name: in.Name, Role: u.Role, CareHomeID: u.CareHomeID, CareHomeIDs: u.CareHomeIDs}
	})
	acct, err := s.accounts.Create(r.Context(), meta, in)
	if err != nil {
		// A twin with the same key that got there first is answered from
		// its record, not as a duplicate.
		if !s.replay(w, r, id) {
			s.writeError(w, r, err)
		}
		return
	}
	s.log.InfoContext(r.Context(), "account created", "user", acct.Username, "role", acct.Role)
	writeJSON(w, http.StatusCreated, viewAccount(acct))
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
		out[i] = viewAccount(u)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleListHomes(w http.ResponseWriter, r *http.Request, a *escalation.Actor) {
	// The care-home page takes its fallback number from this list, and it
	// matters most when the store is failing: if the read model cannot be
	// caught up, answer from what it holds rather than refuse.
	homes, err := s.cfg.Service.CareHomes(r.Context())
	if err != nil {
		homes = s.cfg.Service.Read().Homes()
	}
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
	id, ok := s.command(w, r, a, &in, false)
	if !ok {
		return
	}
	meta := s.meta(r, a)
	meta.IdempotencyOf = id.recordOf(http.StatusCreated, func(v any) any { return v })
	h, err := s.cfg.Service.RegisterCareHome(r.Context(), meta, in)
	s.respond(w, r, id, err, http.StatusCreated, func() any { return h })
}

func (s *Server) handleUpdateHome(w http.ResponseWriter, r *http.Request, a *escalation.Actor) {
	var in escalation.CareHomeInput
	deactivate := strings.HasSuffix(r.URL.Path, "/deactivate")
	id, ok := s.command(w, r, a, &in, deactivate)
	if !ok {
		return
	}
	in.ID = escalation.CareHomeID(r.PathValue("id"))
	meta := s.meta(r, a)
	meta.IdempotencyOf = id.recordOf(http.StatusOK, func(v any) any { return v })
	h, err := s.cfg.Service.UpdateCareHome(r.Context(), meta, in, deactivate)
	s.respond(w, r, id, err, http.StatusOK, func() any { return h })
}

func (s *Server) handleAdmitResident(w http.ResponseWriter, r *http.Request, a *escalation.Actor) {
	var in escalation.ResidentInput
	id, ok := s.command(w, r, a, &in, false)
	if !ok {
		return
	}
	meta := s.meta(r, a)
	meta.Idempotency = id.record(http.StatusCreated, func(res *escalation.ResidentView) any { return viewResident(res) })
	res, err := s.cfg.Service.AdmitResident(r.Context(), meta, in)
	s.respond(w, r, id, err, http.StatusCreated, func() any { return viewResident(res) })
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
	idem, ok := s.command(w, r, a, &req, false)
	if !ok {
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
		c.CarePlan = &escalation.AdvanceCarePlan{HasRespectForm: req.HasRespectForm, Focus: escalation.CareFocus(req.Focus), HospitalAdmission: escalation.AdmissionPreference(req.Hospital),
			CPR: escalation.CPRDecision(req.CPR), Summary: req.Summary, RecordedAt: req.RecordedAt, ReviewDue: req.ReviewDue}
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
	meta := s.meta(r, a)
	meta.Idempotency = idem.record(http.StatusOK, func(res *escalation.ResidentView) any { return viewResident(res) })
	res, err := s.cfg.Service.ChangeResident(r.Context(), meta, escalation.ResidentID(r.PathValue("id")), c)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, viewResident(res))
}
