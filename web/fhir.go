package web

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/escalation/news2"
)

// Code systems.
const (
	loinc    = "http://loinc.org"
	snomed   = "http://snomed.info/sct"
	ucum     = "http://unitsofmeasure.org"
	actCode  = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
	obsCat   = "http://terminology.hl7.org/CodeSystem/observation-category"
	absentCS = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
	dispoCS  = "http://terminology.hl7.org/CodeSystem/discharge-disposition"
	nhsNoSys = "https://fhir.nhs.uk/Id/nhs-number"
)

func ptr[T any](v T) *T { return &v }

func concept(system, code, display string) fhir.CodeableConcept {
	return fhir.CodeableConcept{Coding: []fhir.Coding{{System: ptr(system), Code: ptr(code), Display: ptr(display)}}, Text: ptr(display)}
}

func quantity(v string, unit, code string) *fhir.Quantity {
	n := json.Number(v)
	return &fhir.Quantity{Value: &n, Unit: ptr(unit), System: ptr(ucum), Code: ptr(code)}
}

// vital is one vital sign's LOINC code and unit.
type vital struct {
	field, code, display, unit, ucumCode string
	value                                func(o *escalation.Observations) (string, bool)
}

func intVal(p *int) (string, bool) {
	if p == nil {
		return "", false
	}
	return strconv.Itoa(*p), true
}

var vitals = []vital{
	{"respiration_rate", "9279-1", "Respiratory rate", "/min", "/min", func(o *escalation.Observations) (string, bool) { return intVal(o.RespirationRate) }},
	{"spo2", "2708-6", "Oxygen saturation in Arterial blood", "%", "%", func(o *escalation.Observations) (string, bool) { return intVal(o.SpO2) }},
	{"systolic_bp", "8480-6", "Systolic blood pressure", "mm[Hg]", "mm[Hg]", func(o *escalation.Observations) (string, bool) { return intVal(o.SystolicBP) }},
	{"pulse", "8867-4", "Heart rate", "/min", "/min", func(o *escalation.Observations) (string, bool) { return intVal(o.Pulse) }},
	{"temperature", "8310-5", "Body temperature", "Cel", "Cel", func(o *escalation.Observations) (string, bool) {
		if o.Temperature == nil {
			return "", false
		}
		b, _ := o.Temperature.MarshalJSON()
		return string(b), true
	}},
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
)

func (s *Server) handleFHIR(w http.ResponseWriter, r *http.Request, a *escalation.Actor) {
	esc, res, err := s.cfg.Service.GetEscalation(r.Context(), *a, escalation.EscalationID(r.PathValue("id")))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	b, err := buildBundle(esc, res)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/fhir+json; charset=utf-8")
	_, _ = w.Write(b)
}

// buildBundle renders one escalation as a FHIR R4 collection Bundle: the
// patient (by NHS number), the vital-sign Observations, the NEWS2 total with
// its sub-scores, a virtual Encounter, and the decision as a ClinicalImpression.
func buildBundle(esc *escalation.Escalation, res *escalation.Resident) ([]byte, error) {
	var entries []fhir.BundleEntry
	add := func(id string, v any) error {
		raw, err := json.Marshal(v)
		if err != nil {
			return err
		}
		entries = append(entries, fhir.BundleEntry{FullUrl: ptr("urn:uuid:" + id), Resource: raw})
		return nil
	}
	patientID := "patient-" + string(res.ID)
	patientRef := &fhir.Reference{Reference: ptr("urn:uuid:" + patientID)}
	encounterID := "encounter-" + string(esc.ID)
	encounterRef := &fhir.Reference{Reference: ptr("urn:uuid:" + encounterID)}
	if err := add(patientID, fhir.Patient{Id: ptr(patientID),
		Identifier: []fhir.Identifier{{System: ptr(nhsNoSys), Value: ptr(res.NHSNumber)}}, BirthDate: ptr(res.DateOfBirth)}); err != nil {
		return nil, err
	}
	vitalSigns := []fhir.CodeableConcept{concept(obsCat, "vital-signs", "Vital Signs")}
	var derived []fhir.Reference
	var news2Ref *fhir.Reference
	if o := esc.Observations; o != nil {
		taken := o.TakenAt.UTC().Format(time.RFC3339)
		for _, v := range vitals {
			id := "obs-" + v.field + "-" + string(esc.ID)
			obs := fhir.Observation{Id: ptr(id), Status: fhir.ObservationStatusFinal, Category: vitalSigns,
				Code: concept(loinc, v.code, v.display), Subject: patientRef, Encounter: encounterRef, EffectiveDateTime: ptr(taken)}
			if val, ok := v.value(o); ok {
				obs.ValueQuantity = quantity(val, v.unit, v.ucumCode)
			} else {
				reason := "unknown"
				if rsn, ok := o.Absent[v.field]; ok {
					reason = map[escalation.AbsentReason]string{"refused": "asked-declined", "asleep": "not-performed", "no_equipment": "not-performed", "not_trained": "not-performed"}[rsn]
				}
				dar := concept(absentCS, reason, reason)
				obs.DataAbsentReason = &dar
			}
			if err := add(id, obs); err != nil {
				return nil, err
			}
			derived = append(derived, fhir.Reference{Reference: ptr("urn:uuid:" + id)})
		}
		if esc.NEWS2 != nil {
			id := "news2-" + string(esc.ID)
			obs := fhir.Observation{Id: ptr(id), Status: fhir.ObservationStatusFinal,
				Category: []fhir.CodeableConcept{concept(obsCat, "survey", "Survey")},
				Code:     concept(snomed, news2Total, "Royal College of Physicians NEWS2 (National Early Warning Score 2) total score"),
				Subject:  patientRef, Encounter: encounterRef, EffectiveDateTime: ptr(taken), DerivedFrom: derived}
			if esc.NEWS2.Total != nil {
				obs.ValueQuantity = quantity(strconv.Itoa(*esc.NEWS2.Total), "score", "{ScoreOf}")
			} else {
				dar := concept(absentCS, "incomplete", "Incomplete: one or more parameters were not measured")
				obs.DataAbsentReason = &dar
			}
			spo2Code := subSpO2Scale1
			if res.SpO2Scale == news2.Scale2 {
				spo2Code = subSpO2Scale2
			}
			sub := esc.NEWS2.SubScores
			for _, c := range []struct {
				code, display string
				v             *int
			}{
				{subRespiration, "NEWS2 respiration rate score", sub.RespirationRate}, {spo2Code, "NEWS2 oxygen saturation score", sub.SpO2},
				{subAirOrOxygen, "NEWS2 air or oxygen score", sub.AirOrOxygen}, {subSystolic, "NEWS2 systolic blood pressure score", sub.SystolicBP},
				{subPulse, "NEWS2 pulse rate score", sub.Pulse}, {subConsciousnes, "NEWS2 consciousness score", sub.Consciousness},
				{subTemperature, "NEWS2 temperature score", sub.Temperature},
			} {
				if c.v == nil {
					continue
				}
				obs.Component = append(obs.Component, fhir.ObservationComponent{Code: concept(snomed, c.code, c.display),
					ValueQuantity: quantity(strconv.Itoa(*c.v), "score", "{ScoreOf}")})
			}
			if err := add(id, obs); err != nil {
				return nil, err
			}
			news2Ref = &fhir.Reference{Reference: ptr("urn:uuid:" + id)}
		}
	}
	enc := fhir.Encounter{Id: ptr(encounterID), Status: fhir.EncounterStatusInProgress,
		Class:   fhir.Coding{System: ptr(actCode), Code: ptr("VR"), Display: ptr("virtual")},
		Subject: patientRef, Period: &fhir.Period{Start: ptr(esc.RaisedAt.UTC().Format(time.RFC3339))}}
	if news2Ref != nil {
		enc.ReasonReference = []fhir.Reference{*news2Ref}
	}
	if esc.AcceptedBy != nil {
		enc.Participant = []fhir.EncounterParticipant{{Individual: &fhir.Reference{Display: ptr(esc.AcceptedBy.Name)}}}
	}
	if d := esc.Decision; d != nil {
		enc.Status = fhir.EncounterStatusFinished
		enc.Period.End = ptr(d.DecidedAt.UTC().Format(time.RFC3339))
		dispo := concept(dispoCS, "home", "Home")
		if d.Outcome == escalation.OutcomeAdmit {
			dispo = concept(dispoCS, "other-hcf", "Other healthcare facility")
		}
		enc.Hospitalization = &fhir.EncounterHospitalization{DischargeDisposition: &dispo}
	} else if esc.Status == escalation.StatusWithdrawn {
		enc.Status = fhir.EncounterStatusCancelled
	}
	if err := add(encounterID, enc); err != nil {
		return nil, err
	}
	if d := esc.Decision; d != nil {
		id := "impression-" + string(esc.ID)
		summary := "Decision: " + string(d.Outcome) + ". Without this service: " + string(d.Counterfactual) + ". " + d.Rationale
		if d.Plan != "" {
			summary += " Plan: " + d.Plan
		}
		ci := fhir.ClinicalImpression{Id: ptr(id), Status: fhir.ClinicalImpressionStatusCompleted, Subject: *patientRef,
			Encounter: encounterRef, Date: ptr(d.DecidedAt.UTC().Format(time.RFC3339)),
			Assessor: &fhir.Reference{Display: ptr(d.DecidedByName)}, Summary: ptr(summary)}
		if news2Ref != nil {
			ci.Finding = []fhir.ClinicalImpressionFinding{{ItemReference: news2Ref}}
		}
		if err := add(id, ci); err != nil {
			return nil, err
		}
	}
	return json.Marshal(fhir.Bundle{Id: ptr("escalation-" + string(esc.ID)), Type: fhir.BundleTypeCollection,
		Timestamp: ptr(time.Now().UTC().Format(time.RFC3339)), Entry: entries})
}
