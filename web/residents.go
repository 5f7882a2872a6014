package web

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/events"
)

// residentView is the resident as API.md gives it.
type residentView struct {
	ID                 escalation.ResidentID          `json:"id"`
	CareHomeID         escalation.CareHomeID          `json:"care_home_id"`
	Name               string                         `json:"name"`
	DateOfBirth        string                         `json:"date_of_birth"`
	Room               string                         `json:"room"`
	NHSNumber          string                         `json:"nhs_number"`
	Status             escalation.ResidentStatus      `json:"status"`
	SpO2Scale          int                            `json:"spo2_scale"`
	Baseline           *escalation.Baseline           `json:"baseline"`
	AdvanceCarePlan    *carePlanView                  `json:"advance_care_plan"`
	Allergies          []string                       `json:"allergies"`
	SpO2ScaleSetBy     string                         `json:"spo2_scale_set_by,omitempty"`
	SpO2ScaleSetAt     *time.Time                     `json:"spo2_scale_set_at,omitempty"`
	DiedExpected       *bool                          `json:"died_expected,omitempty"`
	RecentObservations []escalation.ObservationRecord `json:"recent_observations"`
	RecentEscalations  []escalationSummary            `json:"recent_escalations"`
	// Observations72h is every set taken in the 72 hours before the read,
	// oldest first: the consultant's trend of each parameter.
	Observations72h []escalation.ObservationRecord `json:"observations_72h"`
}

// carePlanView is the advance care plan as API.md gives it, plus whether it
// is past its review date today in --timezone.
type carePlanView struct {
	*escalation.AdvanceCarePlan
	ReviewOverdue bool `json:"review_overdue"`
}

// trendWindow is how far back observations_72h reaches.
const trendWindow = 72 * time.Hour

type escalationSummary struct {
	ID       escalation.EscalationID `json:"id"`
	RaisedAt time.Time               `json:"raised_at"`
	Status   escalation.Status       `json:"status"`
	Outcome  *escalation.Outcome     `json:"outcome"`
}

// recent is how many observations and escalations a resident view carries.
const recent = 20

// viewResident renders r now, reading calendar dates in UTC; the server's
// own handlers use Server.viewResident, which reads them in --timezone.
func viewResident(r *escalation.ResidentView) residentView {
	return viewResidentAt(r, time.Now(), time.UTC)
}

// viewResident renders r now in the server's --timezone.
func (s *Server) viewResident(r *escalation.ResidentView) residentView {
	loc := s.cfg.Location
	if loc == nil {
		loc = time.UTC
	}
	return viewResidentAt(r, time.Now(), loc)
}

func viewResidentAt(r *escalation.ResidentView, now time.Time, loc *time.Location) residentView {
	v := residentView{
		ID: r.ID, CareHomeID: r.CareHomeID, Name: r.Name, DateOfBirth: r.DateOfBirth, Room: r.Room,
		NHSNumber: r.NHSNumber, Status: r.Status, SpO2Scale: int(r.SpO2Scale), Baseline: r.Baseline,
		Allergies: r.Allergies, SpO2ScaleSetBy: r.SpO2ScaleSetBy,
		SpO2ScaleSetAt: r.SpO2ScaleSetAt, DiedExpected: r.DiedExpected,
	}
	if p := r.AdvanceCarePlan; p != nil {
		v.AdvanceCarePlan = &carePlanView{AdvanceCarePlan: p, ReviewOverdue: p.ReviewOverdue(now, loc)}
	}
	if v.Allergies == nil {
		v.Allergies = []string{}
	}
	// Observations oldest first, as a series for the trend.
	obs := slices.Clone(r.Observations)
	slices.SortStableFunc(obs, func(a, b escalation.ObservationRecord) int { return a.TakenAt.Compare(b.TakenAt) })
	v.RecentObservations = append([]escalation.ObservationRecord{}, obs[max(0, len(obs)-recent):]...)
	v.Observations72h = []escalation.ObservationRecord{}
	for _, o := range obs {
		if !o.TakenAt.Before(now.Add(-trendWindow)) {
			v.Observations72h = append(v.Observations72h, o)
		}
	}
	// Escalations newest first.
	v.RecentEscalations = []escalationSummary{}
	for i := len(r.Escalations) - 1; i >= 0 && len(v.RecentEscalations) < recent; i-- {
		e := r.Escalations[i]
		sum := escalationSummary{ID: e.ID, RaisedAt: e.RaisedAt, Status: e.Status}
		if e.Decision != nil {
			o := e.Decision.Outcome
			sum.Outcome = &o
		}
		v.RecentEscalations = append(v.RecentEscalations, sum)
	}
	return v
}

func (s *Server) handleListResidents(w http.ResponseWriter, r *http.Request, a *escalation.Actor) {
	q := r.URL.Query()
	limit, err := listLimit(q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var after escalation.ResidentID
	if v := q.Get("after"); v != "" {
		b, err := base64.RawURLEncoding.DecodeString(v)
		if err != nil || len(b) == 0 {
			s.writeError(w, r, &apiError{Status: 400, Code: "invalid_value", Field: "after", Message: "after must be the cursor a page's Link header gave."})
			return
		}
		after = escalation.ResidentID(b)
	}
	list, more, err := s.cfg.Service.ListResidentsPage(r.Context(), *a, limit, after)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]residentView, len(list))
	for i, res := range list {
		out[i] = s.viewResident(res)
	}
	if more {
		next := url.Values{"limit": {strconv.Itoa(limit)}, "after": {base64.RawURLEncoding.EncodeToString([]byte(list[len(list)-1].ID))}}
		w.Header().Set("Link", "</api/v1/residents?"+next.Encode()+`>; rel="next"`)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleGetResident(w http.ResponseWriter, r *http.Request, a *escalation.Actor) {
	res, _, err := s.cfg.Service.GetResident(r.Context(), *a, escalation.ResidentID(r.PathValue("id")), "resident")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.viewResident(res))
}

type eventView struct {
	ID         string    `json:"id"`
	Stream     string    `json:"stream"`
	Version    int64     `json:"version"`
	Position   int64     `json:"position"`
	Type       string    `json:"type"`
	RecordedAt time.Time `json:"recorded_at"`
	Actor      string    `json:"actor,omitempty"`
	Data       any       `json:"data"`
}

func (s *Server) handleResidentEvents(w http.ResponseWriter, r *http.Request, a *escalation.Actor) {
	_, envs, err := s.cfg.Service.GetResident(r.Context(), *a, escalation.ResidentID(r.PathValue("id")), "resident_events")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]eventView, len(envs))
	for i, e := range envs {
		out[i] = viewEvent(e)
	}
	writeJSON(w, http.StatusOK, out)
}

func viewEvent(e events.Envelope) eventView {
	return eventView{ID: e.ID, Stream: e.Stream, Version: e.Version, Position: e.Position, Type: e.Type,
		RecordedAt: e.RecordedAt, Actor: e.Actor, Data: e.Data}
}

func (s *Server) handleRecordObservations(w http.ResponseWriter, r *http.Request, a *escalation.Actor) {
	if a.Role != escalation.RoleCareHome {
		s.writeError(w, r, errForbidden)
		return
	}
	var req struct {
		Observations *escalation.ObservationsInput `json:"observations"`
	}
	id, ok := s.command(w, r, a, &req, false)
	if !ok {
		return
	}
	if req.Observations == nil {
		s.writeError(w, r, &apiError{Status: 400, Code: "missing_field", Field: "observations", Message: "Give the observations."})
		return
	}
	obs, err := req.Observations.Parse("observations", time.Now())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	meta := s.meta(r, a)
	meta.Idempotency = id.record(http.StatusCreated, func(res *escalation.ResidentView) any { return res.Observations[len(res.Observations)-1] })
	rec, err := s.cfg.Service.RecordObservations(r.Context(), meta, escalation.ResidentID(r.PathValue("id")), obs)
	s.respond(w, r, id, err, http.StatusCreated, func() any { return rec })
}

type admissionRequest struct {
	At        *time.Time `json:"at"`
	Kind      string     `json:"kind"`
	Unplanned *bool      `json:"unplanned"`
	Reason    string     `json:"reason"`
}

func (s *Server) handleHospitalAdmission(w http.ResponseWriter, r *http.Request, a *escalation.Actor) {
	if a.Role != escalation.RoleCareHome && a.Role != escalation.RoleAdmin {
		s.writeError(w, r, errForbidden)
		return
	}
	var req admissionRequest
	id, ok := s.command(w, r, a, &req, false)
	if !ok {
		return
	}
	if req.At == nil {
		s.writeError(w, r, &apiError{Status: 400, Code: "missing_field", Field: "at", Message: "Give the time of the admission or attendance."})
		return
	}
	if req.Unplanned == nil {
		s.writeError(w, r, &apiError{Status: 400, Code: "missing_field", Field: "unplanned", Message: "Say whether it was unplanned."})
		return
	}
	h := escalation.HospitalAdmissionRecorded{At: *req.At, Kind: escalation.AdmissionKind(req.Kind), Unplanned: *req.Unplanned, Reason: req.Reason}
	meta := s.meta(r, a)
	meta.Idempotency = id.record(http.StatusCreated, func(res *escalation.ResidentView) any { return res.Admissions[len(res.Admissions)-1] })
	adm, err := s.cfg.Service.RecordHospitalAdmission(r.Context(), meta, escalation.ResidentID(r.PathValue("id")), h)
	s.respond(w, r, id, err, http.StatusCreated, func() any { return adm })
}
