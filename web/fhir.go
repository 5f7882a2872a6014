package web

import (
	"encoding/json"
	"html"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/escalation/news2"
)

// FHIR R4 exports: one escalation as a collection Bundle
// (GET /api/v1/escalations/{id}/fhir) and a morning handover as a document
// Bundle. Every resource id is a UUID made with uuid.NewSHA1 from a fixed
// namespace and the record it stands for, so an export is deterministic, ids
// meet FHIR's id rule ([A-Za-z0-9\-\.]{1,64}) and fullUrls are urn:uuid UUIDs.
// Every bundle the tests produce is checked against the official R4 JSON
// schema (web/fhirtest).

// Code systems.
const (
	loinc      = "http://loinc.org"
	snomed     = "http://snomed.info/sct"
	ucum       = "http://unitsofmeasure.org"
	actCode    = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
	obsCat     = "http://terminology.hl7.org/CodeSystem/observation-category"
	absentCS   = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
	dispoCS    = "http://terminology.hl7.org/CodeSystem/discharge-disposition"
	emptyCS    = "http://terminology.hl7.org/CodeSystem/list-empty-reason"
	nhsNoSys   = "https://fhir.nhs.uk/Id/nhs-number"
	rfc3986    = "urn:ietf:rfc:3986"
	vitalsProf = "http://hl7.org/fhir/StructureDefinition/vitalsigns"
	fhirJSON   = "application/fhir+json; charset=utf-8"
)

// fhirNamespace is the namespace of every resource id Nightcall exports.
// Changing it changes every id ever exported: never do.
var fhirNamespace = uuid.MustParse("5b0c1f7e-3d2a-4c8e-9f61-7a4e2d9b0c35")

// fhirID is the UUID of the record named by parts ("escalation", id, "news2").
func fhirID(parts ...string) string {
	return uuid.NewSHA1(fhirNamespace, []byte(strings.Join(parts, "/"))).String()
}

func ptr[T any](v T) *T { return &v }

// optional is nil for "", so that empty strings never reach a FHIR element
// (the schema refuses empty primitives).
func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func instant(t time.Time) *string { return ptr(t.UTC().Format(time.RFC3339)) }

func concept(system, code, display string) fhir.CodeableConcept {
	return fhir.CodeableConcept{Coding: []fhir.Coding{{System: ptr(system), Code: ptr(code), Display: ptr(display)}}, Text: ptr(display)}
}

func quantity(v string, unit, code string) *fhir.Quantity {
	n := json.Number(v)
	return &fhir.Quantity{Value: &n, Unit: ptr(unit), System: ptr(ucum), Code: ptr(code)}
}

func score(v int) *fhir.Quantity { return quantity(strconv.Itoa(v), "score", "{ScoreOf}") }

func ref(id string) *fhir.Reference { return &fhir.Reference{Reference: ptr("urn:uuid:" + id)} }

// absentReasons maps Nightcall's reasons to R4's data-absent-reason value set.
var absentReasons = map[escalation.AbsentReason]struct{ code, display, text string }{
	"refused":      {"asked-declined", "Asked But Declined", "refused by the resident"},
	"asleep":       {"not-performed", "Not Performed", "not taken: the resident was asleep"},
	"no_equipment": {"not-performed", "Not Performed", "not taken: no equipment"},
	"not_trained":  {"not-performed", "Not Performed", "not taken: staff not trained to take it"},
}

// dataAbsent is the dataAbsentReason for an observation left out.
func dataAbsent(o *escalation.Observations, field string) *fhir.CodeableConcept {
	r, ok := absentReasons[o.Absent[field]]
	if !ok {
		c := concept(absentCS, "unknown", "Unknown")
		return &c
	}
	c := concept(absentCS, r.code, r.display)
	c.Text = ptr(r.text)
	return &c
}

// NEWS2 SNOMED codes (UK Core).
const (
	news2Total      = "1104051000000101"
	subRespiration  = "1104301000000104"
	subSpO2Scale1   = "1104311000000102"
	subSpO2Scale2   = "1104321000000108"
	subAirOrOxygen  = "1104331000000105"
	subSystolic     = "1104341000000101"
	subPulse        = "1104351000000103"
	subConsciousnes = "1104361000000100"
	subTemperature  = "1104371000000107"
	acvpuCode       = "1104441000000107"
)

// acvpu is UKCore-ACVPU: the SNOMED finding for each level.
var acvpu = map[news2.Consciousness]struct{ code, display string }{
	news2.Alert:        {"248234008", "Mentally alert"},
	news2.NewConfusion: {"130987000", "Acute confusion"},
	news2.Voice:        {"300202002", "Responds to voice"},
	news2.Pain:         {"450847001", "Responds to pain"},
	news2.Unresponsive: {"422768004", "Unresponsive"},
}

// fhirCase is what the exports need of one escalation.
type fhirCase struct {
	ID            escalation.EscalationID
	Resident      escalation.HandoverResident
	WithName      bool // the document names the resident; the export keeps to identifiers
	RaisedAt      time.Time
	Status        escalation.Status
	Observations  *escalation.Observations
	NEWS2         *news2.Result
	AcceptedBy    *escalation.Person
	Decision      *escalation.Decision
	Withdrawal    *escalation.Withdrawal
	FollowUpDueAt *time.Time
}

func caseOfEscalation(esc *escalation.EscalationView, res *escalation.ResidentView) fhirCase {
	return fhirCase{
		ID: esc.ID, Resident: escalation.HandoverResident{ID: res.ID, Name: res.Name, DateOfBirth: res.DateOfBirth, NHSNumber: res.NHSNumber, SpO2Scale: res.SpO2Scale},
		RaisedAt: esc.RaisedAt, Status: esc.Status, Observations: esc.Observations, NEWS2: esc.NEWS2, AcceptedBy: esc.AcceptedBy,
		Decision: esc.Decision, Withdrawal: esc.Withdrawal, FollowUpDueAt: esc.FollowUpDueAt,
	}
}

func caseOfEntry(e escalation.HandoverEntry) fhirCase {
	c := fhirCase{
		ID: e.ID, Resident: e.Resident, WithName: true, RaisedAt: e.RaisedAt, Status: e.Status, Observations: e.Observations,
		NEWS2: e.NEWS2, AcceptedBy: e.AcceptedBy, Withdrawal: e.Withdrawal, FollowUpDueAt: e.FollowUpDueAt,
	}
	if e.Outcome != nil {
		c.Decision = &escalation.Decision{Outcome: *e.Outcome, Counterfactual: *e.Counterfactual, Rationale: *e.Rationale, Plan: *e.Plan,
			DecidedBy: *e.DecidedBy, DecidedByName: *e.DecidedByName, DecidedAt: *e.DecidedAt}
	}
	return c
}

// bundleBuilder collects entries, each once.
type bundleBuilder struct {
	entries []fhir.BundleEntry
	seen    map[string]bool
}

func (b *bundleBuilder) add(id string, v any) error {
	if b.seen == nil {
		b.seen = map[string]bool{}
	}
	if b.seen[id] {
		return nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b.seen[id] = true
	b.entries = append(b.entries, fhir.BundleEntry{FullUrl: ptr("urn:uuid:" + id), Resource: raw})
	return nil
}

// caseRefs are the resources one escalation became, for a document section.
type caseRefs struct {
	patient string
	all     []fhir.Reference
}

// vital is one numeric vital sign: its LOINC code, unit and value.
type vital struct {
	field, code, display, unit string
	extra                      []fhir.Coding
	value                      func(o *escalation.Observations) (string, bool)
}

func intVal(p *int) (string, bool) {
	if p == nil {
		return "", false
	}
	return strconv.Itoa(*p), true
}

// The seven NEWS2 parameters, in the order of RCP Chart 1.
var numericVitals = map[string]vital{
	"respiration_rate": {"respiration_rate", "9279-1", "Respiratory rate", "/min", nil,
		func(o *escalation.Observations) (string, bool) { return intVal(o.RespirationRate) }},
	"spo2": {"spo2", "2708-6", "Oxygen saturation in Arterial blood", "%",
		[]fhir.Coding{{System: ptr(loinc), Code: ptr("59408-5"), Display: ptr("Oxygen saturation in Arterial blood by Pulse oximetry")}},
		func(o *escalation.Observations) (string, bool) { return intVal(o.SpO2) }},
	"pulse": {"pulse", "8867-4", "Heart rate", "/min", nil,
		func(o *escalation.Observations) (string, bool) { return intVal(o.Pulse) }},
	"temperature": {"temperature", "8310-5", "Body temperature", "Cel", nil,
		func(o *escalation.Observations) (string, bool) {
			if o.Temperature == nil {
				return "", false
			}
			b, _ := o.Temperature.MarshalJSON()
			return string(b), true
		}},
}

// addCase adds the patient, the seven NEWS2 observations and the score, the
// virtual Encounter, and the decision (ClinicalImpression, and a CarePlan for
// its plan) for one escalation.
func addCase(b *bundleBuilder, c fhirCase) (caseRefs, error) {
	eid := string(c.ID)
	patientID := fhirID("resident", string(c.Resident.ID))
	refs := caseRefs{patient: patientID}
	keep := func(id string) { refs.all = append(refs.all, *ref(id)) }
	patient := fhir.Patient{Id: ptr(patientID), BirthDate: optional(c.Resident.DateOfBirth)}
	if c.Resident.NHSNumber != "" {
		patient.Identifier = []fhir.Identifier{{System: ptr(nhsNoSys), Value: ptr(c.Resident.NHSNumber)}}
	}
	if c.WithName && c.Resident.Name != "" {
		patient.Name = []fhir.HumanName{{Text: ptr(c.Resident.Name)}}
	}
	if err := b.add(patientID, patient); err != nil {
		return refs, err
	}
	encounterID := fhirID("escalation", eid, "encounter")
	var derived []fhir.Reference
	var news2ID string
	if o := c.Observations; o != nil {
		taken := instant(o.TakenAt)
		vitalSigns := []fhir.CodeableConcept{concept(obsCat, "vital-signs", "Vital Signs")}
		base := func(field string, code fhir.CodeableConcept, category []fhir.CodeableConcept) fhir.Observation {
			return fhir.Observation{Id: ptr(fhirID("escalation", eid, "observation", field)), Status: fhir.ObservationStatusFinal,
				Category: category, Code: code, Subject: ref(patientID), Encounter: ref(encounterID), EffectiveDateTime: taken}
		}
		var obs []fhir.Observation
		num := func(field string) {
			v := numericVitals[field]
			code := concept(loinc, v.code, v.display)
			code.Coding = append(code.Coding, v.extra...)
			ob := base(field, code, vitalSigns)
			ob.Meta = &fhir.Meta{Profile: []string{vitalsProf}}
			if val, ok := v.value(o); ok {
				ob.ValueQuantity = quantity(val, v.unit, v.unit)
			} else {
				ob.DataAbsentReason = dataAbsent(o, field)
			}
			obs = append(obs, ob)
		}
		num("respiration_rate")
		num("spo2")

		// Air or oxygen (UK Core: breathing room air, or on oxygen with its flow).
		air := base("air_or_oxygen", fhir.CodeableConcept{Text: ptr("Air or oxygen")}, vitalSigns)
		switch {
		case o.OnOxygen == nil:
			air.DataAbsentReason = dataAbsent(o, "on_oxygen")
		case *o.OnOxygen:
			v := concept(snomed, "371825009", "Patient on oxygen")
			air.ValueCodeableConcept = &v
			if o.OxygenLitresPerMin != nil {
				b, _ := o.OxygenLitresPerMin.MarshalJSON()
				air.Component = []fhir.ObservationComponent{{Code: concept(loinc, "3151-8", "Inhaled oxygen flow rate"),
					ValueQuantity: quantity(string(b), "L/min", "L/min")}}
			}
		default:
			v := concept(snomed, "722742002", "Breathing room air")
			air.ValueCodeableConcept = &v
		}
		obs = append(obs, air)

		// Blood pressure in the vital-signs panel shape: NEWS2 takes the
		// systolic alone, so the diastolic component says it was not asked.
		bp := base("blood_pressure", concept(loinc, "85354-9", "Blood pressure panel with all children optional"), vitalSigns)
		bp.Meta = &fhir.Meta{Profile: []string{"http://hl7.org/fhir/StructureDefinition/bp"}}
		systolic := fhir.ObservationComponent{Code: concept(loinc, "8480-6", "Systolic blood pressure")}
		if o.SystolicBP != nil {
			systolic.ValueQuantity = quantity(strconv.Itoa(*o.SystolicBP), "mmHg", "mm[Hg]")
		} else {
			systolic.DataAbsentReason = dataAbsent(o, "systolic_bp")
		}
		notAsked := concept(absentCS, "not-asked", "Not Asked")
		notAsked.Text = ptr("NEWS2 takes the systolic pressure only")
		bp.Component = []fhir.ObservationComponent{systolic, {Code: concept(loinc, "8462-4", "Diastolic blood pressure"), DataAbsentReason: &notAsked}}
		obs = append(obs, bp)

		num("pulse")

		// Consciousness on the ACVPU scale (UKCore-ACVPU).
		cons := base("consciousness", concept(snomed, acvpuCode, "ACVPU (Alert Confusion Voice Pain Unresponsive) scale score"),
			[]fhir.CodeableConcept{concept(obsCat, "exam", "Exam")})
		if o.Consciousness != nil {
			a := acvpu[*o.Consciousness]
			v := concept(snomed, a.code, a.display)
			cons.ValueCodeableConcept = &v
		} else {
			cons.DataAbsentReason = dataAbsent(o, "consciousness")
		}
		obs = append(obs, cons)

		num("temperature")

		for _, ob := range obs {
			if err := b.add(*ob.Id, ob); err != nil {
				return refs, err
			}
			derived = append(derived, *ref(*ob.Id))
		}
		if c.NEWS2 != nil {
			news2ID = fhirID("escalation", eid, "news2")
			if err := b.add(news2ID, news2Observation(c, news2ID, patientID, encounterID, derived)); err != nil {
				return refs, err
			}
		}
	}

	enc := fhir.Encounter{Id: ptr(encounterID), Status: encounterStatus(c.Status),
		Class:   fhir.Coding{System: ptr(actCode), Code: ptr("VR"), Display: ptr("virtual")},
		Subject: ref(patientID), Period: &fhir.Period{Start: instant(c.RaisedAt)}}
	if news2ID != "" {
		enc.ReasonReference = []fhir.Reference{*ref(news2ID)}
	}
	if c.AcceptedBy != nil {
		enc.Participant = []fhir.EncounterParticipant{{Individual: &fhir.Reference{Display: ptr(c.AcceptedBy.Name)}}}
	}
	if d := c.Decision; d != nil {
		enc.Period.End = instant(d.DecidedAt)
		dispo := concept(dispoCS, "home", "Home")
		if d.Outcome == escalation.OutcomeAdmit {
			dispo = concept(dispoCS, "other-hcf", "Other healthcare facility")
		}
		enc.Hospitalization = &fhir.EncounterHospitalization{DischargeDisposition: &dispo}
	} else if c.Withdrawal != nil {
		enc.Period.End = instant(c.Withdrawal.At)
	}
	if err := b.add(encounterID, enc); err != nil {
		return refs, err
	}
	keep(encounterID)
	if news2ID != "" {
		keep(news2ID)
	}
	refs.all = append(refs.all, derived...)

	if d := c.Decision; d != nil {
		id := fhirID("escalation", eid, "impression")
		summary := "Decision: " + string(d.Outcome) + ". Without this service: " + string(d.Counterfactual) + ". " + d.Rationale
		if d.Plan != "" {
			summary += " Plan: " + d.Plan
		}
		ci := fhir.ClinicalImpression{Id: ptr(id), Status: fhir.ClinicalImpressionStatusCompleted, Subject: *ref(patientID),
			Encounter: ref(encounterID), Date: instant(d.DecidedAt), Assessor: decider(d), Summary: ptr(summary)}
		if news2ID != "" {
			ci.Finding = []fhir.ClinicalImpressionFinding{{ItemReference: ref(news2ID)}}
		}
		if err := b.add(id, ci); err != nil {
			return refs, err
		}
		keep(id)
		if strings.TrimSpace(d.Plan) != "" {
			planID := fhirID("escalation", eid, "careplan")
			cp := fhir.CarePlan{Id: ptr(planID), Status: fhir.RequestStatusActive, Intent: fhir.CarePlanIntentPlan,
				Title: ptr("Plan after the video review"), Description: ptr(d.Plan), Subject: *ref(patientID),
				Encounter: ref(encounterID), Created: instant(d.DecidedAt), Period: &fhir.Period{Start: instant(d.DecidedAt)},
				Author: decider(d)}
			if c.FollowUpDueAt != nil {
				cp.Period.End = instant(*c.FollowUpDueAt)
			}
			if err := b.add(planID, cp); err != nil {
				return refs, err
			}
			keep(planID)
		}
	}
	return refs, nil
}

// news2Observation is the NEWS2 total, derived from all seven parameters. A
// partial set has no total: its known sub-scores are a lower bound, given as
// a value with comparator ">=" and the note "partial, at least N".
func news2Observation(c fhirCase, id, patientID, encounterID string, derived []fhir.Reference) fhir.Observation {
	obs := fhir.Observation{Id: ptr(id), Status: fhir.ObservationStatusFinal,
		Category: []fhir.CodeableConcept{concept(obsCat, "survey", "Survey")},
		Code:     concept(snomed, news2Total, "Royal College of Physicians NEWS2 (National Early Warning Score 2) total score"),
		Subject:  ref(patientID), Encounter: ref(encounterID), EffectiveDateTime: instant(c.Observations.TakenAt), DerivedFrom: derived}
	r := c.NEWS2
	obs.ValueQuantity = score(r.Bound())
	if r.Total == nil {
		obs.ValueQuantity.Comparator = ptr(fhir.QuantityComparatorGreaterOrEquals)
		obs.Note = []fhir.Annotation{{Text: r.Label() + ": one or more values were not taken, and a missing value can only add to the score."}}
	}
	spo2Code := subSpO2Scale1
	if c.Resident.SpO2Scale == news2.Scale2 {
		spo2Code = subSpO2Scale2
	}
	sub := r.SubScores
	for _, p := range []struct {
		code, display string
		v             *int
	}{
		{subRespiration, "NEWS2 respiration rate score", sub.RespirationRate}, {spo2Code, "NEWS2 oxygen saturation score", sub.SpO2},
		{subAirOrOxygen, "NEWS2 air or oxygen score", sub.AirOrOxygen}, {subSystolic, "NEWS2 systolic blood pressure score", sub.SystolicBP},
		{subPulse, "NEWS2 pulse rate score", sub.Pulse}, {subConsciousnes, "NEWS2 consciousness score", sub.Consciousness},
		{subTemperature, "NEWS2 temperature score", sub.Temperature},
	} {
		comp := fhir.ObservationComponent{Code: concept(snomed, p.code, p.display)}
		if p.v != nil {
			comp.ValueQuantity = score(*p.v)
		} else {
			dar := concept(absentCS, "not-performed", "Not Performed")
			dar.Text = ptr("the value it scores was not taken")
			comp.DataAbsentReason = &dar
		}
		obs.Component = append(obs.Component, comp)
	}
	return obs
}

// decider names the consultant who decided (by display: consultants are not
// exported as Practitioner resources), or nil when nobody is named.
func decider(d *escalation.Decision) *fhir.Reference {
	name := d.DecidedByName
	if name == "" {
		name = string(d.DecidedBy)
	}
	if name == "" {
		return nil
	}
	return &fhir.Reference{Display: &name}
}

func encounterStatus(s escalation.Status) fhir.EncounterStatus {
	switch s {
	case escalation.StatusAccepted:
		return fhir.EncounterStatusInProgress
	case escalation.StatusDecided:
		return fhir.EncounterStatusFinished
	case escalation.StatusWithdrawn:
		return fhir.EncounterStatusCancelled
	}
	return fhir.EncounterStatusPlanned // paging or unanswered: nobody has joined yet
}

// writeFHIR sends a FHIR body; like every API answer it is never cached.
func writeFHIR(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", fhirJSON)
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(body) // #nosec G705 -- FHIR JSON, served with nosniff
}

func (s *Server) handleFHIR(w http.ResponseWriter, r *http.Request, a *escalation.Actor) {
	esc, res, err := s.cfg.Service.GetEscalation(r.Context(), *a, escalation.EscalationID(r.PathValue("id")))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	b, err := buildBundle(esc, res, time.Now())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeFHIR(w, b)
}

// buildBundle renders one escalation as a FHIR R4 collection Bundle: the
// patient (by NHS number), the seven NEWS2 parameters as Observations, the
// NEWS2 total derived from them with its sub-scores, a virtual Encounter, and
// the decision as a ClinicalImpression with the plan as a CarePlan.
func buildBundle(esc *escalation.EscalationView, res *escalation.ResidentView, now time.Time) ([]byte, error) {
	var b bundleBuilder
	if _, err := addCase(&b, caseOfEscalation(esc, res)); err != nil {
		return nil, err
	}
	if err := addSnapshotMedia(&b, esc, res); err != nil { // snapshots.go
		return nil, err
	}
	return json.Marshal(fhir.Bundle{Id: ptr(fhirID("escalation", string(esc.ID), "bundle")), Type: fhir.BundleTypeCollection,
		Timestamp: instant(now), Entry: b.entries})
}

// HandoverBundle renders a morning handover as a FHIR R4 document Bundle: the
// Composition first (one section per escalation, with its narrative), then
// the care home, and every resource the sections reference.
func HandoverBundle(h *escalation.Handover, loc *time.Location) ([]byte, error) {
	var b bundleBuilder
	stamp := h.GeneratedAt.UTC().Format(time.RFC3339Nano)
	docID := fhirID("handover", string(h.CareHomeID), h.Date, stamp)
	compID := fhirID("handover", string(h.CareHomeID), h.Date, stamp, "composition")
	homeID := fhirID("carehome", string(h.CareHomeID))
	date, _ := time.ParseInLocation(time.DateOnly, h.Date, loc)
	comp := fhir.Composition{Id: ptr(compID), Status: fhir.CompositionStatusFinal,
		Type:    concept(loinc, "34133-9", "Summary of episode note"),
		Subject: ref(homeID), Date: h.GeneratedAt.UTC().Format(time.RFC3339), Author: []fhir.Reference{{Display: ptr("Nightcall")}},
		Title: "Morning handover: " + h.CareHomeName + ", " + date.Format("Monday 2 January 2006"),
		Event: []fhir.CompositionEvent{{Period: &fhir.Period{Start: instant(h.From), End: instant(h.To)}}}}
	comp.Type.Text = ptr("Morning handover")
	var rest bundleBuilder
	if err := rest.add(homeID, fhir.Organization{Id: ptr(homeID), Name: optional(h.CareHomeName)}); err != nil {
		return nil, err
	}
	for _, e := range h.Escalations {
		refs, err := addCase(&rest, caseOfEntry(e))
		if err != nil {
			return nil, err
		}
		comp.Section = append(comp.Section, fhir.CompositionSection{
			Title: ptr(e.Resident.Name + ": raised " + escalation.LocalTime(e.RaisedAt, loc)),
			Focus: ref(refs.patient), Entry: refs.all,
			Text: &fhir.Narrative{Status: fhir.NarrativeStatusGenerated, Div: entryNarrative(e, loc)},
		})
	}
	if len(h.Escalations) == 0 {
		empty := concept(emptyCS, "nilknown", "Nil Known")
		comp.Section = []fhir.CompositionSection{{Title: ptr("Escalations"), EmptyReason: &empty,
			Text: &fhir.Narrative{Status: fhir.NarrativeStatusGenerated, Div: xhtml("<p>No escalations were raised between " +
				html.EscapeString(escalation.LocalTime(h.From, loc)) + " and " + html.EscapeString(escalation.LocalTime(h.To, loc)) + ".</p>")}}}
	}
	if err := b.add(compID, comp); err != nil {
		return nil, err
	}
	b.entries = append(b.entries, rest.entries...)
	return json.Marshal(fhir.Bundle{Id: ptr(docID), Type: fhir.BundleTypeDocument,
		Identifier: &fhir.Identifier{System: ptr(rfc3986), Value: ptr("urn:uuid:" + docID)},
		Timestamp:  ptr(h.GeneratedAt.UTC().Format(time.RFC3339)), Entry: b.entries})
}

func xhtml(inner string) string {
	return `<div xmlns="http://www.w3.org/1999/xhtml">` + inner + `</div>`
}

// entryNarrative is a section's human-readable text: what a GP reads first.
func entryNarrative(e escalation.HandoverEntry, loc *time.Location) string {
	var sb strings.Builder
	line := func(label, value string) {
		if value != "" {
			sb.WriteString("<p><b>" + html.EscapeString(label) + ":</b> " + html.EscapeString(value) + "</p>")
		}
	}
	line("Raised", escalation.LocalTime(e.RaisedAt, loc)+map[bool]string{true: " (out of hours)", false: ""}[e.OutOfHours])
	line("NEWS2", e.NEWS2Label)
	line("Situation", e.SBARD.Situation)
	line("Status", statusText[e.Status])
	if e.Outcome != nil {
		line("Outcome", outcomeText[*e.Outcome]+" (without this service: "+counterfactualText[*e.Counterfactual]+")")
		line("Decided", *e.DecidedByName+", "+escalation.LocalTime(*e.DecidedAt, loc))
		line("Plan", *e.Plan)
	}
	if e.Withdrawal != nil {
		line("Withdrawn", e.Withdrawal.Reason)
	}
	if e.FollowUpDueAt != nil {
		line("Follow-up due", escalation.LocalTime(*e.FollowUpDueAt, loc))
	}
	for _, o := range e.StillOpen {
		line("Still open", o.Text)
	}
	return xhtml(sb.String())
}
