package web

import (
	"bytes"
	"fmt"
	"html/template"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/escalation/audit"
	"github.com/nightcall-health/nightcall/escalation/news2"
)

// The morning handover, GET /api/v1/care-homes/{id}/handover?date=YYYY-MM-DD,
// as JSON, as a printable page (served under the strict CSP: no inline
// script or style, its stylesheet and print button in /static), as plain
// text, or as a FHIR R4 document Bundle.

// Handover formats.
const (
	handoverJSON = "json"
	handoverHTML = "html"
	handoverFHIR = "fhir"
	handoverText = "text"
)

// handoverFormat picks the format: ?format= when given, otherwise the
// client's most preferred of the Accept types served, JSON by default.
func handoverFormat(r *http.Request) (string, error) {
	switch f := r.URL.Query().Get("format"); f {
	case handoverJSON, handoverHTML, handoverFHIR, handoverText:
		return f, nil
	case "":
	default:
		return "", &apiError{Status: http.StatusBadRequest, Code: "invalid_value", Field: "format", Message: "format must be json, html, fhir or text."}
	}
	types := map[string]string{
		"application/fhir+json": handoverFHIR, "application/json": handoverJSON, "text/html": handoverHTML, "text/plain": handoverText,
	}
	best, bestQ := handoverJSON, 0.0
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		f, ok := types[mt]
		if !ok {
			continue
		}
		q := 1.0
		if v, err := strconv.ParseFloat(params["q"], 64); err == nil {
			q = v
		}
		if q > bestQ {
			best, bestQ = f, q
		}
	}
	return best, nil
}

// gpRoutes are the only routes a GP may call: a GP reads the handovers of
// its homes and nothing else in the API.
var gpRoutes = map[string]bool{
	"GET /api/v1/me":                       true,
	"GET /api/v1/care-homes/{id}/handover": true,
}

// routeAllowed fences a GP into gpRoutes; other roles are checked by each
// handler and the domain.
func routeAllowed(a *escalation.Actor, r *http.Request) bool {
	return a.Role != escalation.RoleGP || gpRoutes[r.Pattern]
}

// HandoverQuery is the query for one home's handover on date in loc, with
// out of hours as the audit counts it. An empty date is today's handover.
func HandoverQuery(home escalation.CareHomeID, date string, loc *time.Location) escalation.HandoverQuery {
	if date == "" {
		date = time.Now().In(loc).Format(time.DateOnly)
	}
	return escalation.HandoverQuery{CareHomeID: home, Date: date, Location: loc,
		OutOfHours: func(t time.Time) bool { return audit.OutOfHours(t, loc) }}
}

// handleHandoverLanding is where a GP lands after signing in (and where a
// home's staff can open today's handover): the printable page of the
// caller's first home. Anyone else, or no session, goes to the sign-in page.
func (s *Server) handleHandoverLanding(w http.ResponseWriter, r *http.Request) {
	a, err := s.authenticate(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var home escalation.CareHomeID
	switch {
	case a == nil:
	case a.Role == escalation.RoleGP && len(a.CareHomeIDs) > 0:
		home = a.CareHomeIDs[0]
	case a.Role == escalation.RoleCareHome:
		home = a.CareHomeID
	}
	to := "/"
	if home != "" {
		to = handoverPath(home, time.Now().In(s.location()).Format(time.DateOnly)) + "&format=html"
	}
	// A bare 303: the document declares no body for it.
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Location", to)
	w.WriteHeader(http.StatusSeeOther)
}

func handoverPath(home escalation.CareHomeID, date string) string {
	return "/api/v1/care-homes/" + url.PathEscape(string(home)) + "/handover?date=" + url.QueryEscape(date)
}

func (s *Server) handleHandover(w http.ResponseWriter, r *http.Request, a *escalation.Actor) {
	w.Header().Set("Vary", "Accept")
	format, err := handoverFormat(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	loc := s.location()
	h, err := s.cfg.Service.Handover(r.Context(), *a, HandoverQuery(escalation.CareHomeID(r.PathValue("id")), r.URL.Query().Get("date"), loc))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	switch format {
	case handoverFHIR:
		b, err := HandoverBundle(h, loc)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeFHIR(w, b)
	case handoverHTML:
		var buf bytes.Buffer
		page := newHandoverPage(h, loc)
		page.navigation(a, s.cfg.Service.Read(), loc, time.Now())
		if err := handoverPageTemplate.Execute(&buf, page); err != nil {
			s.writeError(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", pageCSP)
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Referrer-Policy", "no-referrer")
		_, _ = w.Write(buf.Bytes())
	case handoverText:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		WriteHandoverText(w, h, loc)
	default:
		writeJSON(w, http.StatusOK, h)
	}
}

// handoverPageTemplate is the printable page (web/static/handover.tmpl).
var handoverPageTemplate = template.Must(template.ParseFS(staticFS, "static/handover.tmpl"))

// handoverPage is what the page template shows, every time already in
// en-GB 24-hour form in the service's zone.
type handoverPage struct {
	Title, Home, Date, From, To, TimeZone, Generated string
	home                                             escalation.CareHomeID
	date                                             string
	Query                                            string
	Summary                                          escalation.HandoverSummary
	Entries                                          []handoverPageEntry
	// Previous and Next are the neighbouring handovers' pages (Next is
	// empty while that handover has not begun); Homes the caller's other
	// homes' pages (a GP bound to several).
	Previous, Next string
	Homes          []pageLink
}

type pageLink struct{ Name, URL string }

// navigation adds the links around the handover: the day before and after,
// and, for a GP of several homes, the same date at the others.
func (p *handoverPage) navigation(a *escalation.Actor, read *escalation.Projection, loc *time.Location, now time.Time) {
	date, err := time.ParseInLocation(time.DateOnly, p.date, loc)
	if err != nil {
		return
	}
	at := func(d time.Time) string { return handoverPath(p.home, d.Format(time.DateOnly)) + "&format=html" }
	p.Previous = at(date.AddDate(0, 0, -1))
	next := date.AddDate(0, 0, 1)
	if from, _, err := escalation.HandoverWindow(next.Format(time.DateOnly), loc); err == nil && !from.After(now) {
		p.Next = at(next)
	}
	if a.Role != escalation.RoleGP {
		return
	}
	for _, id := range a.CareHomeIDs {
		if id != p.home {
			p.Homes = append(p.Homes, pageLink{Name: read.Home(id).Name, URL: handoverPath(id, p.date) + "&format=html"})
		}
	}
}

type handoverPageEntry struct {
	ID, Name, Room, DateOfBirth, NHSNumber string
	Raised                                 string
	OutOfHours                             bool
	NEWS2, Risk, Advice                    string
	Partial                                bool
	TakenAt                                string
	Observations                           []observationRow
	SoftSigns                              []string
	SBARD                                  escalation.SBARD
	Status                                 string
	Outcome, Counterfactual, Rationale     string
	Plan, DecidedBy, DecidedAt             string
	Withdrawn                              string
	FollowUpDue                            string
	FollowUps                              []string
	StillOpen                              []string
}

type observationRow struct{ Parameter, Value, Score string }

func newHandoverPage(h *escalation.Handover, loc *time.Location) handoverPage {
	date, _ := time.ParseInLocation(time.DateOnly, h.Date, loc)
	p := handoverPage{
		Title: "Morning handover: " + h.CareHomeName, Home: h.CareHomeName, Date: date.Format("Monday 2 January 2006"),
		From: escalation.LocalTime(h.From, loc), To: escalation.LocalTime(h.To, loc), TimeZone: h.TimeZone,
		Generated: escalation.LocalTime(h.GeneratedAt, loc), Summary: h.Summary,
		Query: handoverPath(h.CareHomeID, h.Date), home: h.CareHomeID, date: h.Date,
	}
	for _, e := range h.Escalations {
		pe := handoverPageEntry{
			ID: string(e.ID), Name: e.Resident.Name, Room: e.Resident.Room, DateOfBirth: e.Resident.DateOfBirth, NHSNumber: e.Resident.NHSNumber,
			Raised: escalation.LocalTime(e.RaisedAt, loc), OutOfHours: e.OutOfHours, NEWS2: "not scored (soft signs only)",
			Advice: string(e.Advice), SBARD: e.SBARD, Status: statusText[e.Status],
		}
		if e.NEWS2 != nil {
			pe.NEWS2, pe.Partial, pe.Risk = e.NEWS2Label, e.NEWS2.Partial, string(e.NEWS2.ResponseRisk())
		}
		if o := e.Observations; o != nil {
			pe.TakenAt = escalation.LocalTime(o.TakenAt, loc)
			pe.Observations = observationRows(o, e.NEWS2, e.Resident.SpO2Scale)
		}
		for _, sgn := range e.SoftSigns {
			pe.SoftSigns = append(pe.SoftSigns, softSignText(sgn))
		}
		if e.Outcome != nil {
			pe.Outcome, pe.Counterfactual = outcomeText[*e.Outcome], counterfactualText[*e.Counterfactual]
			pe.Rationale, pe.Plan, pe.DecidedBy, pe.DecidedAt = *e.Rationale, *e.Plan, *e.DecidedByName, escalation.LocalTime(*e.DecidedAt, loc)
		}
		if w := e.Withdrawal; w != nil {
			pe.Withdrawn = w.Reason + " (" + string(w.By) + ", " + escalation.LocalTime(w.At, loc) + ")"
		}
		if e.FollowUpDueAt != nil {
			pe.FollowUpDue = escalation.LocalTime(*e.FollowUpDueAt, loc)
		}
		for _, f := range e.FollowUps {
			pe.FollowUps = append(pe.FollowUps, strings.ReplaceAll(string(f.Status), "_", " ")+" at "+escalation.LocalTime(f.At, loc))
		}
		for _, o := range e.StillOpen {
			pe.StillOpen = append(pe.StillOpen, o.Text)
		}
		p.Entries = append(p.Entries, pe)
	}
	return p
}

var statusText = map[escalation.Status]string{
	escalation.StatusPaging: "paging a consultant", escalation.StatusUnanswered: "unanswered: no consultant has accepted",
	escalation.StatusAccepted: "accepted, awaiting a decision", escalation.StatusDecided: "decided", escalation.StatusWithdrawn: "withdrawn by the home",
}

var outcomeText = map[escalation.Outcome]string{escalation.OutcomeAdmit: "Admit to hospital", escalation.OutcomeStay: "Stay in the home"}

var counterfactualText = map[escalation.Counterfactual]string{
	escalation.CounterfactualED: "999 / A&E", escalation.CounterfactualGP: "a GP visit", escalation.CounterfactualNone: "no other care",
}

var softSignLabels = map[escalation.SoftSign]string{
	"breathless": "breathing faster or more short of breath", "eating_drinking_less": "eating or drinking less",
	"new_confusion": "new or worse confusion", "sleepier": "sleeping more or more tired", "agitated": "agitated, restless or distressed",
	"withdrawn": "withdrawn", "off_legs": "unsteady, less mobile, off legs", "skin_changes": "pale, cold, clammy or mottled skin",
	"bowel_urine_change": "changes in bowels or urine", "new_pain": "new pain", "family_worried": "family or carers worried",
	"not_themselves": "not themselves",
}

func softSignText(s escalation.SoftSign) string {
	if l, ok := softSignLabels[s]; ok {
		return l
	}
	return strings.ReplaceAll(string(s), "_", " ")
}

var absentText = map[escalation.AbsentReason]string{
	"refused": "refused", "asleep": "resident asleep", "no_equipment": "no equipment", "not_trained": "staff not trained",
}

// observationRows lists the seven NEWS2 parameters with their values, units
// and sub-scores; a value not taken shows its reason.
func observationRows(o *escalation.Observations, r *news2.Result, scale news2.Scale) []observationRow {
	var sub news2.SubScores
	if r != nil {
		sub = r.SubScores
	}
	scoreOf := func(p *int) string {
		if p == nil {
			return "–"
		}
		return strconv.Itoa(*p)
	}
	absent := func(field string) string {
		if why, ok := absentText[o.Absent[field]]; ok {
			return "not taken: " + why
		}
		return "not taken"
	}
	num := func(p *int, unit, field string) string {
		if p == nil {
			return absent(field)
		}
		return strconv.Itoa(*p) + " " + unit
	}
	air := absent("on_oxygen")
	if o.OnOxygen != nil {
		air = "air"
		if *o.OnOxygen {
			air = "oxygen"
			if o.OxygenLitresPerMin != nil {
				b, _ := o.OxygenLitresPerMin.MarshalJSON()
				air += ", " + string(b) + " L/min"
			}
		}
	}
	cons := absent("consciousness")
	if o.Consciousness != nil {
		cons = map[news2.Consciousness]string{news2.Alert: "A: alert", news2.NewConfusion: "C: new confusion", news2.Voice: "V: responds to voice",
			news2.Pain: "P: responds to pain", news2.Unresponsive: "U: unresponsive"}[*o.Consciousness]
	}
	temp := absent("temperature")
	if o.Temperature != nil {
		b, _ := o.Temperature.MarshalJSON()
		temp = string(b) + " °C"
	}
	return []observationRow{
		{"Respiration rate", num(o.RespirationRate, "/min", "respiration_rate"), scoreOf(sub.RespirationRate)},
		{fmt.Sprintf("SpO2 (Scale %d)", scale), num(o.SpO2, "%", "spo2"), scoreOf(sub.SpO2)},
		{"Air or oxygen", air, scoreOf(sub.AirOrOxygen)},
		{"Systolic blood pressure", num(o.SystolicBP, "mmHg", "systolic_bp"), scoreOf(sub.SystolicBP)},
		{"Pulse", num(o.Pulse, "/min", "pulse"), scoreOf(sub.Pulse)},
		{"Consciousness (ACVPU)", cons, scoreOf(sub.Consciousness)},
		{"Temperature", temp, scoreOf(sub.Temperature)},
	}
}

// WriteHandoverText prints a handover for a terminal or a plain-text mail.
func WriteHandoverText(w io.Writer, h *escalation.Handover, loc *time.Location) {
	p := newHandoverPage(h, loc)
	fmt.Fprintf(w, "Morning handover: %s, %s\n", p.Home, p.Date)
	fmt.Fprintf(w, "Escalations raised from %s to %s (%s)\n", p.From, p.To, p.TimeZone)
	fmt.Fprintf(w, "%d escalations, %d out of hours; %d admit, %d stay, %d withdrawn; %d with something still open\n",
		h.Summary.Escalations, h.Summary.OutOfHours, h.Summary.Admit, h.Summary.Stay, h.Summary.Withdrawn, h.Summary.StillOpen)
	if len(p.Entries) == 0 {
		fmt.Fprintln(w, "\nNo escalations were raised in this window.")
	}
	for i, e := range p.Entries {
		fmt.Fprintf(w, "\n%d. %s", i+1, e.Name)
		if e.Room != "" {
			fmt.Fprintf(w, ", room %s", e.Room)
		}
		if e.NHSNumber != "" {
			fmt.Fprintf(w, ", NHS %s", e.NHSNumber)
		}
		fmt.Fprintf(w, "\n   Raised %s%s; NEWS2 %s\n", e.Raised, map[bool]string{true: " (out of hours)"}[e.OutOfHours], e.NEWS2)
		for _, o := range e.Observations {
			fmt.Fprintf(w, "     %-24s %-28s score %s\n", o.Parameter, o.Value, o.Score)
		}
		if len(e.SoftSigns) > 0 {
			fmt.Fprintf(w, "   Soft signs: %s\n", strings.Join(e.SoftSigns, "; "))
		}
		if e.SBARD.Situation != "" {
			fmt.Fprintf(w, "   Situation: %s\n", e.SBARD.Situation)
		}
		fmt.Fprintf(w, "   Status: %s\n", e.Status)
		if e.Outcome != "" {
			fmt.Fprintf(w, "   Outcome: %s (without this service: %s), decided by %s at %s\n", e.Outcome, e.Counterfactual, e.DecidedBy, e.DecidedAt)
			fmt.Fprintf(w, "   Rationale: %s\n", e.Rationale)
			if e.Plan != "" {
				fmt.Fprintf(w, "   Plan: %s\n", e.Plan)
			}
		}
		if e.Withdrawn != "" {
			fmt.Fprintf(w, "   Withdrawn: %s\n", e.Withdrawn)
		}
		if e.FollowUpDue != "" {
			fmt.Fprintf(w, "   Follow-up due: %s\n", e.FollowUpDue)
		}
		for _, f := range e.FollowUps {
			fmt.Fprintf(w, "   Follow-up: %s\n", f)
		}
		for _, o := range e.StillOpen {
			fmt.Fprintf(w, "   Still open: %s\n", o)
		}
	}
	fmt.Fprintf(w, "\nGenerated %s by Nightcall.\n", p.Generated)
}
