package web

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/escalation/news2"
)

type raiseRequest struct {
	ResidentID   string                        `json:"resident_id"`
	Observations *escalation.ObservationsInput `json:"observations"`
	SoftSigns    []string                      `json:"soft_signs"`
	SBARD        *escalation.SBARD             `json:"sbard"`
}

// parseRaise validates a raise request in the order a person would fix it.
func parseRaise(req raiseRequest, now time.Time) (escalation.RaiseInput, error) {
	in := escalation.RaiseInput{ResidentID: escalation.ResidentID(req.ResidentID)}
	if strings.TrimSpace(req.ResidentID) == "" {
		return in, &apiError{Status: 400, Code: "missing_field", Field: "resident_id", Message: "Choose the resident."}
	}
	if req.Observations == nil && len(req.SoftSigns) == 0 {
		return in, &apiError{Status: 400, Code: "missing_field", Field: "observations", Message: "Give observations, soft signs, or both."}
	}
	if req.SBARD == nil || strings.TrimSpace(req.SBARD.Situation) == "" {
		return in, &apiError{Status: 400, Code: "missing_field", Field: "sbard.situation", Message: "Describe the situation: what has changed and when."}
	}
	in.SBARD = *req.SBARD
	if req.Observations != nil {
		obs, err := req.Observations.Parse("observations", now)
		if err != nil {
			return in, err
		}
		in.Observations = &obs
	}
	signs, err := escalation.ParseSoftSigns("soft_signs", req.SoftSigns)
	if err != nil {
		return in, err
	}
	in.SoftSigns = signs
	return in, escalation.CheckConsistency(in.Observations, in.SoftSigns)
}

// command prepares a state-changing request: reads the body, answers a
// replayed Idempotency-Key, and decodes into dst.
func (s *Server) command(w http.ResponseWriter, r *http.Request, a *escalation.Actor, dst any, emptyOK bool) (*idem, bool) {
	body, err := s.readBody(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return nil, false
	}
	id, err := newIdem(r, a, body)
	if err != nil {
		s.writeError(w, r, err)
		return nil, false
	}
	if s.replay(w, r, id) {
		return nil, false
	}
	if err := decodeBody(body, dst, emptyOK); err != nil {
		s.writeError(w, r, err)
		return nil, false
	}
	return id, true
}

func (s *Server) meta(r *http.Request, a *escalation.Actor) escalation.Meta {
	rid, _ := r.Context().Value(requestIDKey{}).(string)
	return escalation.Meta{Actor: *a, CorrelationID: rid}
}

func (s *Server) handleRaise(w http.ResponseWriter, r *http.Request, a *escalation.Actor) {
	if a.Role != escalation.RoleCareHome {
		s.writeError(w, r, errForbidden)
		return
	}
	var req raiseRequest
	id, ok := s.command(w, r, a, &req, false)
	if !ok {
		return
	}
	in, err := parseRaise(req, time.Now())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	meta := s.meta(r, a)
	meta.Idempotency = id.record(http.StatusCreated, func(res *escalation.ResidentView) any {
		return viewEscalation(s.cfg.Service.View(res, res.Escalations[len(res.Escalations)-1].ID))
	})
	esc, err := s.cfg.Service.GuardedRaise(r.Context(), meta, in)
	if err == nil {
		s.log.InfoContext(r.Context(), "escalation raised", "escalation_id", esc.ID, "care_home_id", esc.CareHomeID, "advice", esc.Advice.Level)
	}
	if errors.Is(err, escalation.ErrResidentMoved) {
		err = errResidentMoved
	}
	s.respond(w, r, id, err, http.StatusCreated, func() any { return viewEscalation(esc) })
}

// errResidentMoved answers a raise for a resident who has moved to another
// home since the page loaded: the same code as left or died, said plainly.
var errResidentMoved = &apiError{Status: http.StatusConflict, Code: "resident_inactive",
	Message: "This resident has moved to another care home, so you cannot ask for a consultant for them here. Reload the page to see your residents.",
	Extra:   map[string]any{"reason": "moved"}}

// escalationView is the escalation as API.md gives it, plus the guards the
// domain computes for it: observations_stale is true when the observations
// were taken more than an hour before the raise.
type escalationView struct {
	*escalation.EscalationView
	ObservationsStale bool `json:"observations_stale"`
}

// viewEscalation renders e (nil stays null).
func viewEscalation(e *escalation.EscalationView) any {
	if e == nil {
		return nil
	}
	return escalationView{EscalationView: e, ObservationsStale: e.ObservationsStale()}
}

// escalationAction runs accept, decision or withdraw with the shared plumbing.
func (s *Server) escalationAction(w http.ResponseWriter, r *http.Request, a *escalation.Actor, status int, dst any, emptyOK bool,
	run func(meta escalation.Meta, id escalation.EscalationID) (*escalation.EscalationView, error)) {
	eid := escalation.EscalationID(r.PathValue("id"))
	id, ok := s.command(w, r, a, dst, emptyOK)
	if !ok {
		return
	}
	meta := s.meta(r, a)
	meta.Idempotency = id.record(status, func(res *escalation.ResidentView) any { return viewEscalation(s.cfg.Service.View(res, eid)) })
	esc, err := run(meta, eid)
	s.respond(w, r, id, err, status, func() any { return viewEscalation(esc) })
}

func (s *Server) handleAccept(w http.ResponseWriter, r *http.Request, a *escalation.Actor) {
	if a.Role != escalation.RoleConsultant {
		s.writeError(w, r, errForbidden)
		return
	}
	var req struct{}
	s.escalationAction(w, r, a, http.StatusOK, &req, true, func(meta escalation.Meta, id escalation.EscalationID) (*escalation.EscalationView, error) {
		esc, err := s.cfg.Service.Accept(r.Context(), meta, id)
		if err == nil {
			s.log.InfoContext(r.Context(), "escalation accepted", "escalation_id", id, "consultant", a.Username)
		}
		return esc, err
	})
}

type decisionRequest struct {
	Outcome        string `json:"outcome"`
	Counterfactual string `json:"counterfactual"`
	Rationale      string `json:"rationale"`
	Plan           string `json:"plan"`
}

func (s *Server) handleDecision(w http.ResponseWriter, r *http.Request, a *escalation.Actor) {
	if a.Role != escalation.RoleConsultant {
		s.writeError(w, r, errForbidden)
		return
	}
	var req decisionRequest
	s.escalationAction(w, r, a, http.StatusCreated, &req, false, func(meta escalation.Meta, id escalation.EscalationID) (*escalation.EscalationView, error) {
		d := escalation.DecisionInput{
			Outcome: escalation.Outcome(req.Outcome), Counterfactual: escalation.Counterfactual(req.Counterfactual),
			Rationale: req.Rationale, Plan: req.Plan,
		}
		if err := d.Validate(); err != nil {
			return nil, err
		}
		esc, err := s.cfg.Service.Decide(r.Context(), meta, id, d)
		if err == nil {
			s.log.InfoContext(r.Context(), "escalation decided", "escalation_id", id, "outcome", d.Outcome)
		}
		return esc, err
	})
}

func (s *Server) handleWithdraw(w http.ResponseWriter, r *http.Request, a *escalation.Actor) {
	if a.Role != escalation.RoleCareHome {
		s.writeError(w, r, errForbidden)
		return
	}
	var req struct {
		Reason string `json:"reason"`
	}
	s.escalationAction(w, r, a, http.StatusOK, &req, false, func(meta escalation.Meta, id escalation.EscalationID) (*escalation.EscalationView, error) {
		return s.cfg.Service.Withdraw(r.Context(), meta, id, req.Reason)
	})
}

// handleGetEscalation answers with the escalation and its entity tag. With
// If-None-Match naming the tag it has, a client is answered 304 Not Modified
// while the escalation is unchanged; adding Prefer: wait=N (RFC 7240) makes
// it a long poll: the answer waits, up to N seconds (at most
// maxEscalationWait), for the escalation to change, and comes as soon as it
// does. The care home's page waits so for the consultant's acceptance,
// which starts its call.
func (s *Server) handleGetEscalation(w http.ResponseWriter, r *http.Request, a *escalation.Actor) {
	seen := etagOf(r.Header.Get("If-None-Match"))
	var wait time.Duration
	if seen != "" {
		wait = preferredWait(r.Header.Values("Prefer"), maxEscalationWait)
	}
	esc, _, tag, err := s.cfg.Service.WaitEscalation(r.Context(), *a, escalation.EscalationID(r.PathValue("id")), seen, wait)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("ETag", `"`+string(tag)+`"`)
	if esc == nil {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	s.nameDelivery(r.Context(), esc)
	writeJSON(w, http.StatusOK, viewEscalation(esc))
}

// maxEscalationWait bounds a long poll of an escalation: well inside the
// idle time-outs of the proxies in front of a pilot (60 s is common).
const maxEscalationWait = 25 * time.Second

// etagOf is the tag an If-None-Match header names ("" for none, a list or
// "*": those are answered in full).
func etagOf(h string) escalation.EscalationTag {
	h = strings.TrimSpace(h)
	if len(h) < 3 || h[0] != '"' || h[len(h)-1] != '"' || strings.ContainsAny(h[1:len(h)-1], `",`) {
		return ""
	}
	return escalation.EscalationTag(h[1 : len(h)-1])
}

// preferredWait reads the wait preference of Prefer headers (RFC 7240,
// "wait=N" in seconds), bounded by most; 0 without one.
func preferredWait(prefer []string, most time.Duration) time.Duration {
	for _, h := range prefer {
		for _, p := range strings.Split(h, ",") {
			name, value, ok := strings.Cut(strings.TrimSpace(p), "=")
			if !ok || !strings.EqualFold(strings.TrimSpace(name), "wait") {
				continue
			}
			n, err := strconv.Atoi(strings.Trim(strings.TrimSpace(value), `"`))
			if err != nil || n <= 0 {
				return 0
			}
			return min(time.Duration(n)*time.Second, most)
		}
	}
	return 0
}

func (s *Server) handleListEscalations(w http.ResponseWriter, r *http.Request, a *escalation.Actor) {
	status := r.URL.Query().Get("status")
	if !escalation.ValidStatusFilter(status) {
		s.writeError(w, r, &apiError{Status: 400, Code: "invalid_value", Field: "status",
			Message: "status must be open, paging, unanswered, accepted, decided or withdrawn."})
		return
	}
	pg, err := listPage(r.URL.Query())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	list, more, err := s.cfg.Service.ListEscalationsPage(r.Context(), *a, status, pg)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]any, len(list))
	for i, e := range list {
		out[i] = viewEscalation(e)
	}
	if more {
		q := url.Values{}
		if status != "" {
			q.Set("status", status)
		}
		q.Set("limit", strconv.Itoa(pg.Limit))
		q.Set("after", pageCursor(escalation.KeyOf(list[len(list)-1])))
		w.Header().Set("Link", "</api/v1/escalations?"+q.Encode()+`>; rel="next"`)
	}
	writeJSON(w, http.StatusOK, out)
}

// MaxListLimit is the most a page of a list may hold.
const MaxListLimit = 1000

// listPage reads a list's limit and after parameters: without limit the
// whole list, as before there were pages.
func listPage(q url.Values) (escalation.Page, error) {
	var pg escalation.Page
	n, err := listLimit(q)
	if err != nil {
		return pg, err
	}
	pg.Limit = n
	if v := q.Get("after"); v != "" {
		k, ok := parsePageCursor(v)
		if !ok {
			return pg, &apiError{Status: 400, Code: "invalid_value", Field: "after", Message: "after must be the cursor a page's Link header gave."}
		}
		pg.After = &k
	}
	return pg, nil
}

// listLimit is a list's limit parameter: 0 when it has none.
func listLimit(q url.Values) (int, error) {
	v := q.Get("limit")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > MaxListLimit {
		return 0, &apiError{Status: 400, Code: "invalid_value", Field: "limit", Message: fmt.Sprintf("limit must be a whole number from 1 to %d.", MaxListLimit)}
	}
	return n, nil
}

// pageCursor is the opaque cursor of a list's place: after k.
func pageCursor(k escalation.EscalationKey) string {
	return base64.RawURLEncoding.EncodeToString([]byte(k.RaisedAt.UTC().Format(time.RFC3339Nano) + "|" + string(k.ID)))
}

func parsePageCursor(v string) (escalation.EscalationKey, bool) {
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil {
		return escalation.EscalationKey{}, false
	}
	at, id, ok := strings.Cut(string(b), "|")
	t, err := time.Parse(time.RFC3339Nano, at)
	if !ok || err != nil || id == "" {
		return escalation.EscalationKey{}, false
	}
	return escalation.EscalationKey{RaisedAt: t, ID: escalation.EscalationID(id)}, true
}

type news2Request struct {
	Observations *escalation.ObservationsInput `json:"observations"`
	SpO2Scale    json.RawMessage               `json:"spo2_scale"`
}

func (s *Server) handleNEWS2(w http.ResponseWriter, r *http.Request, a *escalation.Actor) {
	var req news2Request
	if err := s.decode(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Observations == nil {
		s.writeError(w, r, &apiError{Status: 400, Code: "missing_field", Field: "observations", Message: "Give the observations to score."})
		return
	}
	scale := news2.Scale1
	if len(req.SpO2Scale) > 0 && !bytes.Equal(req.SpO2Scale, []byte("null")) {
		var n int
		if err := json.Unmarshal(req.SpO2Scale, &n); err != nil {
			s.writeError(w, r, &apiError{Status: 400, Code: "invalid_json", Field: "spo2_scale", Message: "spo2_scale must be 1 or 2."})
			return
		}
		if scale = news2.Scale(n); !scale.Valid() {
			s.writeError(w, r, &apiError{Status: 400, Code: "invalid_value", Field: "spo2_scale", Message: "spo2_scale must be 1 or 2."})
			return
		}
	}
	obs, err := req.Observations.Parse("observations", time.Now())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, news2.Score(obs.Vitals(), scale))
}

func (s *Server) handleRotaNow(w http.ResponseWriter, r *http.Request, a *escalation.Actor) {
	levels, err := s.cfg.Service.RotaAt(r.Context(), *a, time.Now())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"levels": s.people(r.Context(), levels)})
}

func (s *Server) handleFollowUp(w http.ResponseWriter, r *http.Request, a *escalation.Actor) {
	if a.Role != escalation.RoleCareHome {
		s.writeError(w, r, errForbidden)
		return
	}
	var req struct {
		Status string     `json:"status"`
		At     *time.Time `json:"at"`
	}
	s.escalationAction(w, r, a, http.StatusCreated, &req, false, func(meta escalation.Meta, id escalation.EscalationID) (*escalation.EscalationView, error) {
		var at time.Time
		if req.At != nil {
			at = *req.At
		}
		return s.cfg.Service.FollowUp(r.Context(), meta, id, escalation.FollowUpStatus(req.Status), at)
	})
}
