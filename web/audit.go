package web

import (
	"context"
	"encoding/csv"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/escalation/audit"
)

func canAudit(a *escalation.Actor) bool {
	return a.Role == escalation.RoleAuditor || a.Role == escalation.RoleAdmin
}

// auditReady waits (bounded) for the audit model to reach the log's head, so
// a figure reflects every write acknowledged before the query.
func (s *Server) auditReady(ctx context.Context) error {
	if s.cfg.Audit == nil {
		return newErr(http.StatusServiceUnavailable, "store_unavailable", "Audit is not running.")
	}
	head, err := s.cfg.Store.Head(ctx)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := s.cfg.Audit.WaitFor(wctx, head); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return newErr(http.StatusServiceUnavailable, "store_unavailable", "The audit figures are catching up; try again.")
	}
	return nil
}

func badParam(field, msg string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: "invalid_value", Field: field, Message: msg}
}

func parseInstant(r *http.Request, name string) (time.Time, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, badParam(name, name+" must be an RFC 3339 instant.")
	}
	return t, nil
}

// AuditQuery reads the admissions-avoided parameters.
func (s *Server) auditQuery(r *http.Request) (audit.Query, error) {
	q := audit.Query{Location: s.location(), CareHome: escalation.CareHomeID(r.URL.Query().Get("care_home")), AsOf: time.Now()}
	var err error
	if q.From, err = parseInstant(r, "from"); err != nil {
		return q, err
	}
	if q.To, err = parseInstant(r, "to"); err != nil {
		return q, err
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.To.After(q.From) {
		return q, badParam("to", "to must be after from.")
	}
	asOf, err := parseInstant(r, "as_of")
	if err != nil {
		return q, err
	}
	if !asOf.IsZero() {
		q.AsOf = asOf
	}
	q.WindowText = r.URL.Query().Get("window")
	if q.WindowText == "" {
		q.WindowText = "72h"
	}
	if q.Window, err = audit.ParseWindow(q.WindowText); err != nil {
		return q, badParam("window", err.Error())
	}
	return q, nil
}

func (s *Server) location() *time.Location {
	if s.cfg.Location != nil {
		return s.cfg.Location
	}
	return time.UTC
}

func (s *Server) handleAdmissionsAvoided(w http.ResponseWriter, r *http.Request, a *escalation.Actor) {
	if !canAudit(a) {
		s.writeError(w, r, errForbidden)
		return
	}
	q, err := s.auditQuery(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.auditReady(r.Context()); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.cfg.Audit.Figures(q))
}

// auditRange checks the role and reads the optional from/to bounds of an
// audit read; it answers the request itself when it cannot go on.
func (s *Server) auditRange(w http.ResponseWriter, r *http.Request, a *escalation.Actor) (time.Time, time.Time, bool) {
	if !canAudit(a) {
		s.writeError(w, r, errForbidden)
		return time.Time{}, time.Time{}, false
	}
	from, err := parseInstant(r, "from")
	if err == nil {
		var to time.Time
		if to, err = parseInstant(r, "to"); err == nil {
			return from, to, true
		}
	}
	s.writeError(w, r, err)
	return time.Time{}, time.Time{}, false
}

func (s *Server) handleAccessLog(w http.ResponseWriter, r *http.Request, a *escalation.Actor) {
	from, to, ok := s.auditRange(w, r, a)
	if !ok {
		return
	}
	log, err := audit.AccessLog(r.Context(), s.cfg.Store, from, to)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, log)
}

// CSVHeader is the column list of the escalations export; the free-text
// columns come only with include_text=true.
var CSVHeader = []string{"escalation_id", "resident_id", "care_home_id", "raised_at", "out_of_hours", "news2_total", "news2_risk",
	"status", "ever_unanswered", "accepted_by", "accepted_at", "seconds_to_accept", "decided_at", "outcome", "counterfactual",
	"decided_by", "seconds_to_decision", "withdrawn_at", "follow_up_status", "follow_up_at",
	// Added 2026-12: news2 is the score as shown ("8", or "partial, at least 7":
	// news2_total is empty for a partial set), news2_response_risk the band the
	// response had to meet.
	"news2", "news2_response_risk"}

var csvTextColumns = []string{"situation", "rationale", "plan"}

func (s *Server) handleAuditCSV(w http.ResponseWriter, r *http.Request, a *escalation.Actor) {
	from, to, ok := s.auditRange(w, r, a)
	if !ok {
		return
	}
	text := r.URL.Query().Get("include_text") == "true"
	if err := s.auditReady(r.Context()); err != nil {
		s.writeError(w, r, err)
		return
	}
	what := "export_csv"
	if text {
		what = "export_csv_text"
	}
	if err := s.cfg.Service.RecordExport(r.Context(), *a, what, from, to); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="escalations.csv"`)
	cw := csv.NewWriter(w)
	header := CSVHeader
	if text {
		header = append(append([]string{}, CSVHeader...), csvTextColumns...)
	}
	_ = cw.Write(header)
	stamp := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	}
	secs := func(t *time.Time, from time.Time) string {
		if t == nil {
			return ""
		}
		return strconv.FormatFloat(t.Sub(from).Seconds(), 'f', 0, 64)
	}
	for _, e := range s.cfg.Audit.Escalations(from, to) {
		status := "paging"
		switch {
		case e.DecidedAt != nil:
			status = "decided"
		case e.WithdrawnAt != nil:
			status = "withdrawn"
		case e.AcceptedAt != nil:
			status = "accepted"
		case e.UnansweredAt != nil:
			status = "unanswered"
		}
		total := ""
		if e.NEWS2Total != nil {
			total = strconv.Itoa(*e.NEWS2Total)
		}
		fuStatus, fuAt := "", ""
		if n := len(e.FollowUps); n > 0 {
			fuStatus, fuAt = string(e.FollowUps[n-1].Status), e.FollowUps[n-1].At.UTC().Format(time.RFC3339)
		}
		row := []string{string(e.ID), string(e.ResidentID), string(e.CareHomeID), e.RaisedAt.UTC().Format(time.RFC3339),
			strconv.FormatBool(audit.OutOfHours(e.RaisedAt, s.location())), total, e.NEWS2Risk, status,
			strconv.FormatBool(e.UnansweredAt != nil), string(e.AcceptedBy), stamp(e.AcceptedAt), secs(e.AcceptedAt, e.RaisedAt),
			stamp(e.DecidedAt), string(e.Outcome), string(e.Counterfactual), string(e.DecidedBy), secs(e.DecidedAt, e.RaisedAt),
			stamp(e.WithdrawnAt), fuStatus, fuAt, e.NEWS2Label, e.NEWS2ResponseRisk}
		if text {
			row = append(row, e.Situation, e.Rationale, e.Plan)
		}
		for i := range row {
			row[i] = csvSafe(row[i])
		}
		_ = cw.Write(row)
	}
	cw.Flush()
}

// csvSafe stops a spreadsheet from reading a cell as a formula.
func csvSafe(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		if _, err := strconv.ParseFloat(v, 64); err != nil {
			return "'" + v
		}
	}
	return v
}
