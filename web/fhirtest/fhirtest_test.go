package fhirtest

import (
	"strings"
	"testing"
)

const goodBundle = `{"resourceType":"Bundle","id":"4f1c2b9e-4b8c-5f0e-9a63-1d2e3f4a5b6c","type":"collection",
 "timestamp":"2026-11-24T08:00:00Z",
 "entry":[
  {"fullUrl":"urn:uuid:0b0e6a57-7a3c-5a55-8f55-0d6f4b8a0c11","resource":{"resourceType":"Patient","id":"0b0e6a57-7a3c-5a55-8f55-0d6f4b8a0c11",
    "identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9990000018"}]}},
  {"fullUrl":"urn:uuid:9a1d3e52-1c0b-5d7e-8b6a-3c2d1e0f9a8b","resource":{"resourceType":"Observation","id":"9a1d3e52-1c0b-5d7e-8b6a-3c2d1e0f9a8b",
    "status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},
    "subject":{"reference":"urn:uuid:0b0e6a57-7a3c-5a55-8f55-0d6f4b8a0c11"},
    "dataAbsentReason":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/data-absent-reason","code":"asked-declined"}]}}}
 ]}`

// TestValidatorAcceptsAValidBundle: the helper is not so strict that nothing passes.
func TestValidatorAcceptsAValidBundle(t *testing.T) {
	if err := Validate([]byte(goodBundle)); err != nil {
		t.Fatalf("a valid bundle was refused: %v", err)
	}
}

// TestValidatorRefusesWhatR4Refuses: each fault the old exporter made, and
// others, is caught, naming what is wrong.
func TestValidatorRefusesWhatR4Refuses(t *testing.T) {
	for _, c := range []struct {
		name, from, to, want string
	}{
		{"id with an underscore (obs-respiration_rate-…)", `"id":"9a1d3e52-1c0b-5d7e-8b6a-3c2d1e0f9a8b"`, `"id":"obs-respiration_rate-0b6c"`, "Observation"},
		{"id longer than 64", `"id":"9a1d3e52-1c0b-5d7e-8b6a-3c2d1e0f9a8b"`, `"id":"` + strings.Repeat("a", 65) + `"`, "Observation"},
		{"data-absent-reason outside R4's value set", `"code":"asked-declined"`, `"code":"incomplete"`, "data-absent-reason"},
		{"fullUrl that is not a UUID", `"fullUrl":"urn:uuid:9a1d3e52-1c0b-5d7e-8b6a-3c2d1e0f9a8b"`, `"fullUrl":"urn:uuid:obs-1"`, "not a urn:uuid"},
		{"reference to no entry", `"subject":{"reference":"urn:uuid:0b0e6a57`, `"subject":{"reference":"urn:uuid:1b0e6a57`, "matches no entry"},
		{"unknown element", `"status":"final"`, `"status":"final","score":7`, "Observation"},
		{"wrong status code", `"status":"final"`, `"status":"done"`, "Observation"},
		{"bundle type outside its value set", `"type":"collection"`, `"type":"handover"`, "Bundle"},
		{"comparator outside its value set", `"dataAbsentReason":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/data-absent-reason","code":"asked-declined"}]}`, `"valueQuantity":{"value":7,"comparator":"at least"}`, "Observation"},
	} {
		t.Run(c.name, func(t *testing.T) {
			bad := strings.Replace(goodBundle, c.from, c.to, 1)
			if bad == goodBundle {
				t.Fatalf("the fixture has no %q", c.from)
			}
			err := Validate([]byte(bad))
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error does not mention %q: %v", c.want, err)
			}
		})
	}
}
