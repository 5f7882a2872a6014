package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/escalation/news2"
	"github.com/nightcall-health/nightcall/web/fhirtest"
)

func intp(v int) *int { return &v }

func tenths(v int) *escalation.Tenths { t := escalation.Tenths(v); return &t }

var testResident = &escalation.ResidentView{ID: "rc-101", CareHomeID: "rose-court", Name: "Margaret Ellis", Room: "12",
	DateOfBirth: "1938-04-02", NHSNumber: "9990000018", SpO2Scale: news2.Scale1}

// fhirEscalation is an escalation of testResident with obs, in status st.
func fhirEscalation(id string, obs *escalation.Observations, scale news2.Scale, st escalation.Status) *escalation.EscalationView {
	raised := time.Date(2026, 11, 24, 2, 15, 0, 0, time.UTC)
	e := &escalation.EscalationView{ID: escalation.EscalationID(id), ResidentID: "rc-101", CareHomeID: "rose-court", Status: st,
		RaisedAt: raised, Observations: obs, SoftSigns: []escalation.SoftSign{"breathless"},
		SBARD: escalation.SBARD{Situation: "More breathless since 01:00 <b>not</b> herself"}}
	if obs != nil {
		s := news2.Score(obs.Vitals(), scale)
		e.NEWS2 = &s
	}
	switch st {
	case escalation.StatusAccepted, escalation.StatusDecided:
		e.AcceptedBy = &escalation.Person{Username: "dr.okafor", Name: "Dr Chidi Okafor"}
	}
	if st == escalation.StatusDecided {
		e.Decision = &escalation.Decision{Outcome: escalation.OutcomeStay, Counterfactual: escalation.CounterfactualED,
			Rationale: "Chest infection", Plan: "Antibiotics; observations 4-hourly", DecidedBy: "dr.okafor", DecidedByName: "Dr Chidi Okafor",
			DecidedAt: raised.Add(25 * time.Minute)}
		due := e.Decision.DecidedAt.Add(escalation.FollowUpWindow)
		e.FollowUpDueAt = &due
	}
	if st == escalation.StatusWithdrawn {
		e.Withdrawal = &escalation.Withdrawal{Reason: "settled", By: "night.rose", At: raised.Add(5 * time.Minute)}
	}
	return e
}

func complete() *escalation.Observations {
	alert, air := news2.Alert, false
	return &escalation.Observations{RespirationRate: intp(22), SpO2: intp(93), OnOxygen: &air, SystolicBP: intp(104), Pulse: intp(112),
		Consciousness: &alert, Temperature: tenths(384), TakenAt: time.Date(2026, 11, 24, 2, 10, 0, 0, time.UTC)}
}

type bundleJSON struct {
	ResourceType string `json:"resourceType"`
	Type         string `json:"type"`
	Entry        []struct {
		FullURL  string         `json:"fullUrl"`
		Resource map[string]any `json:"resource"`
	} `json:"entry"`
}

func parseBundle(t *testing.T, b []byte) bundleJSON {
	t.Helper()
	var out bundleJSON
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func (b bundleJSON) byCode(code string) []map[string]any {
	var out []map[string]any
	for _, e := range b.Entry {
		if c, ok := e.Resource["code"].(map[string]any); ok {
			codings, _ := c["coding"].([]any)
			for _, cd := range codings {
				if cd.(map[string]any)["code"] == code {
					out = append(out, e.Resource)
				}
			}
		}
	}
	return out
}

// TestEscalationBundleIsValidR4: every shape of escalation exports as a
// bundle the official R4 schema accepts, with the seven NEWS2 parameters as
// Observations (blood pressure as the vital-signs panel, consciousness on
// ACVPU, air or oxygen coded), the score derived from all seven, and a
// partial set given as "at least" its lower bound — never a total and never
// the non-R4 code "incomplete".
func TestEscalationBundleIsValidR4(t *testing.T) {
	partial := complete()
	partial.SystolicBP, partial.Absent = nil, map[string]escalation.AbsentReason{"systolic_bp": "refused"}
	twoAbsent := complete()
	twoAbsent.Temperature, twoAbsent.Consciousness = nil, nil
	twoAbsent.Absent = map[string]escalation.AbsentReason{"temperature": "asleep", "consciousness": "not_trained"}
	oxygen := complete()
	on := true
	oxygen.OnOxygen, oxygen.SpO2, oxygen.OxygenLitresPerMin = &on, intp(97), tenths(20)
	c := news2.NewConfusion
	oxygen.Consciousness = &c
	noAir := complete()
	noAir.OnOxygen, noAir.Absent = nil, map[string]escalation.AbsentReason{"on_oxygen": "no_equipment"}

	for _, tc := range []struct {
		name   string
		esc    *escalation.EscalationView
		scale  news2.Scale
		obs    int    // Observations expected (seven parameters and the score)
		value  string // the NEWS2 value
		atLeas bool
	}{
		{"complete, decided stay", fhirEscalation("e1", complete(), news2.Scale1, escalation.StatusDecided), news2.Scale1, 8, "8", false},
		{"blood pressure refused (API.md's partial example)", fhirEscalation("e2", partial, news2.Scale1, escalation.StatusPaging), news2.Scale1, 8, "7", true},
		{"two absent, accepted", fhirEscalation("e3", twoAbsent, news2.Scale1, escalation.StatusAccepted), news2.Scale1, 8, "7", true},
		{"on oxygen with flow, Scale 2, new confusion", fhirEscalation("e4", oxygen, news2.Scale2, escalation.StatusDecided), news2.Scale2, 8, "", false},
		{"air or oxygen not known", fhirEscalation("e5", noAir, news2.Scale1, escalation.StatusUnanswered), news2.Scale1, 8, "", true},
		{"soft signs only, withdrawn", fhirEscalation("e6", nil, news2.Scale1, escalation.StatusWithdrawn), news2.Scale1, 0, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := *testResident
			res.SpO2Scale = tc.scale
			now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
			body, err := buildBundle(tc.esc, &res, now)
			if err != nil {
				t.Fatal(err)
			}
			fhirtest.Check(t, body)
			again, _ := buildBundle(tc.esc, &res, now)
			if !bytes.Equal(body, again) {
				t.Error("two exports of the same escalation differ: ids are not deterministic")
			}
			b := parseBundle(t, body)
			if b.Type != "collection" {
				t.Errorf("type %s", b.Type)
			}
			kinds := map[string]int{}
			for _, e := range b.Entry {
				kinds[e.Resource["resourceType"].(string)]++
				if id := e.Resource["id"].(string); e.FullURL != "urn:uuid:"+id {
					t.Errorf("fullUrl %s for id %s", e.FullURL, id)
				}
			}
			if kinds["Observation"] != tc.obs || kinds["Patient"] != 1 || kinds["Encounter"] != 1 {
				t.Errorf("resources %v", kinds)
			}
			if tc.obs == 0 {
				return
			}
			for _, code := range []string{"9279-1", "2708-6", "85354-9", "8867-4", "1104441000000107", "8310-5"} {
				if len(b.byCode(code)) != 1 {
					t.Errorf("no single Observation coded %s", code)
				}
			}
			bp := b.byCode("85354-9")[0]
			comps := bp["component"].([]any)
			if len(comps) != 2 || !strings.Contains(fmt.Sprint(comps[0]), "8480-6") || !strings.Contains(fmt.Sprint(comps[1]), "8462-4") {
				t.Errorf("blood pressure panel components: %v", comps)
			}
			score := b.byCode("1104051000000101")
			if len(score) != 1 {
				t.Fatalf("NEWS2 observations: %d", len(score))
			}
			if d := score[0]["derivedFrom"].([]any); len(d) != 7 {
				t.Errorf("NEWS2 derived from %d observations, want all seven", len(d))
			}
			vq := score[0]["valueQuantity"].(map[string]any)
			if tc.value != "" && fmt.Sprint(vq["value"]) != tc.value {
				t.Errorf("NEWS2 value %v, want %s", vq["value"], tc.value)
			}
			if tc.atLeas {
				note := fmt.Sprint(score[0]["note"])
				if vq["comparator"] != ">=" || !strings.Contains(note, "partial, at least "+fmt.Sprint(vq["value"])) {
					t.Errorf("partial NEWS2: comparator %v, note %s", vq["comparator"], note)
				}
			} else if vq["comparator"] != nil {
				t.Errorf("complete NEWS2 with comparator %v", vq["comparator"])
			}
			if strings.Contains(string(body), `"incomplete"`) {
				t.Error(`the bundle uses "incomplete"`)
			}
		})
	}
}

// handoverOf builds a handover of three escalations of one night: an admit,
// a stay and a withdrawn one.
func handoverOf(t *testing.T) (*escalation.Handover, []string) {
	t.Helper()
	loc, _ := time.LoadLocation("Europe/London")
	stay := fhirEscalation("stay-1", complete(), news2.Scale1, escalation.StatusDecided)
	partial := complete()
	partial.SystolicBP, partial.Absent = nil, map[string]escalation.AbsentReason{"systolic_bp": "refused"}
	admit := fhirEscalation("admit-1", partial, news2.Scale1, escalation.StatusDecided)
	admit.RaisedAt = admit.RaisedAt.Add(-3 * time.Hour)
	admit.Decision.Outcome, admit.Decision.DecidedAt, admit.FollowUpDueAt = escalation.OutcomeAdmit, admit.RaisedAt.Add(20*time.Minute), nil
	withdrawn := fhirEscalation("withdrawn-1", nil, news2.Scale1, escalation.StatusWithdrawn)
	withdrawn.RaisedAt = withdrawn.RaisedAt.Add(2 * time.Hour)
	withdrawn.Withdrawal.At = withdrawn.RaisedAt.Add(5 * time.Minute)
	q := HandoverQuery("rose-court", "2026-11-24", loc)
	h := escalation.BuildHandover(escalation.CareHome{ID: "rose-court", Name: "Rose Court"}, q, []*escalation.EscalationView{stay, withdrawn, admit},
		func(escalation.ResidentID) *escalation.ResidentView { return testResident }, time.Date(2026, 11, 24, 8, 30, 0, 0, time.UTC))
	return h, []string{"admit-1", "stay-1", "withdrawn-1"}
}

// TestHandoverDocumentIsValidR4: the handover as a FHIR document: type
// document, an identifier, the Composition first with one section per
// escalation (each with its narrative and every entry resolved in the
// bundle), and the whole accepted by the R4 schema; an empty night too.
func TestHandoverDocumentIsValidR4(t *testing.T) {
	loc, _ := time.LoadLocation("Europe/London")
	h, ids := handoverOf(t)
	body, err := HandoverBundle(h, loc)
	if err != nil {
		t.Fatal(err)
	}
	fhirtest.Check(t, body)
	b := parseBundle(t, body)
	if b.Type != "document" || len(b.Entry) == 0 || b.Entry[0].Resource["resourceType"] != "Composition" {
		t.Fatalf("not a document with a Composition first: %s", body[:min(len(body), 400)])
	}
	sections := b.Entry[0].Resource["section"].([]any)
	if len(sections) != len(ids) {
		t.Fatalf("%d sections for %d escalations", len(sections), len(ids))
	}
	if !strings.Contains(fmt.Sprint(sections[0]), "partial, at least 7") || !strings.Contains(fmt.Sprint(sections[1]), "Antibiotics") {
		t.Errorf("section narratives: %v", sections)
	}
	if strings.Contains(string(body), "<b>not</b>") {
		t.Error("free text reached the narrative unescaped")
	}
	patients := 0
	for _, e := range b.Entry {
		if e.Resource["resourceType"] == "Patient" {
			patients++
		}
	}
	if patients != 1 {
		t.Errorf("%d Patient entries for one resident", patients)
	}

	empty := escalation.BuildHandover(escalation.CareHome{ID: "rose-court", Name: "Rose Court"}, HandoverQuery("rose-court", "2026-11-25", loc), nil, nil, time.Now())
	body, err = HandoverBundle(empty, loc)
	if err != nil {
		t.Fatal(err)
	}
	fhirtest.Check(t, body)
	if !strings.Contains(string(body), "nilknown") {
		t.Errorf("an empty handover does not say so: %s", body)
	}
}

// TestHandoverPageAndText: the printable page escapes free text, links only
// its own stylesheet and script, and shows the NEWS2 lower bound and each
// observation with its unit and sub-score; the text form says the same.
func TestHandoverPageAndText(t *testing.T) {
	loc, _ := time.LoadLocation("Europe/London")
	h, _ := handoverOf(t)
	var buf bytes.Buffer
	if err := handoverPageTemplate.Execute(&buf, newHandoverPage(h, loc)); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, want := range []string{"Morning handover: Rose Court", "Tuesday 24 November 2026", "partial, at least 7", "not taken: refused",
		"38.4 °C", "Admit to hospital", "Stay in the home", "withdrawn by the home", "Antibiotics; observations 4-hourly", "Dr Chidi Okafor",
		`href="/static/handover.css"`, `src="/static/handover.js"`, "&lt;b&gt;not&lt;/b&gt;", "Mon 23 Nov 2026 23:15"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, "<b>not</b>") || strings.Contains(page, "style=") || strings.Count(page, "<script") != 1 {
		t.Error("page has unescaped text, inline style or inline script")
	}
	var txt bytes.Buffer
	WriteHandoverText(&txt, h, loc)
	for _, want := range []string{"Morning handover: Rose Court", "1. Margaret Ellis", "NEWS2 partial, at least 7", "Outcome: Admit to hospital", "Withdrawn: settled"} {
		if !strings.Contains(txt.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, txt.String())
		}
	}
}

// TestHandoverFormat: ?format= wins; otherwise the best Accept type served.
func TestHandoverFormat(t *testing.T) {
	for _, c := range []struct{ query, accept, want string }{
		{"", "", "json"},
		{"", "application/fhir+json", "fhir"},
		{"", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "html"},
		{"", "application/json, text/html;q=0.5", "json"},
		{"", "text/html;q=0.4, application/fhir+json", "fhir"},
		{"", "text/plain", "text"},
		{"", "image/png", "json"},
		{"format=fhir", "text/html", "fhir"},
		{"format=html", "application/json", "html"},
		{"format=text", "", "text"},
	} {
		r := httptest.NewRequest("GET", "/api/v1/care-homes/rose-court/handover?"+c.query, nil)
		if c.accept != "" {
			r.Header.Set("Accept", c.accept)
		}
		got, err := handoverFormat(r)
		if err != nil || got != c.want {
			t.Errorf("%q / %q: %s %v, want %s", c.query, c.accept, got, err, c.want)
		}
	}
	r := httptest.NewRequest("GET", "/api/v1/care-homes/rose-court/handover?format=pdf", nil)
	if _, err := handoverFormat(r); err == nil || err.(*apiError).Field != "format" {
		t.Errorf("format=pdf: %v", err)
	}
}
