// Package fhirtest checks FHIR R4 JSON for tests: against the official FHIR
// R4 JSON schema (vendored in testdata, see testdata/README.md), and for the
// rules the schema cannot express that Nightcall promises: every fullUrl a
// urn:uuid UUID, every urn:uuid reference resolved inside the bundle, and
// data-absent-reason codes only from R4's value set. Every test that fetches
// or builds a FHIR bundle runs it through Check.
package fhirtest

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

//go:embed testdata/fhir.schema.json
var schemaJSON []byte

// schemaURL names the vendored schema; it is the schema's own id.
const schemaURL = "http://hl7.org/fhir/json-schema/4.0"

type compiled struct {
	c    *jsonschema.Compiler
	root *jsonschema.Schema

	mu   sync.Mutex
	defs map[string]*jsonschema.Schema
}

var schemas = sync.OnceValues(func() (*compiled, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schemaJSON))
	if err != nil {
		return nil, fmt.Errorf("fhirtest: read the R4 schema: %w", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(schemaURL, doc); err != nil {
		return nil, fmt.Errorf("fhirtest: add the R4 schema: %w", err)
	}
	root, err := c.Compile(schemaURL)
	if err != nil {
		return nil, fmt.Errorf("fhirtest: compile the R4 schema: %w", err)
	}
	return &compiled{c: c, root: root, defs: map[string]*jsonschema.Schema{}}, nil
})

// definition compiles the schema of one resource type, for error messages
// that name the element at fault (the root schema's oneOf hides them).
func (s *compiled) definition(resourceType string) (*jsonschema.Schema, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d, ok := s.defs[resourceType]; ok {
		return d, nil
	}
	d, err := s.c.Compile(schemaURL + "#/definitions/" + resourceType)
	if err != nil {
		return nil, fmt.Errorf("fhirtest: no R4 resource type %q: %w", resourceType, err)
	}
	s.defs[resourceType] = d
	return d, nil
}

// dataAbsentReasons is R4's value set http://hl7.org/fhir/ValueSet/data-absent-reason.
var dataAbsentReasons = map[string]bool{
	"unknown": true, "asked-unknown": true, "temp-unknown": true, "not-asked": true, "asked-declined": true,
	"masked": true, "not-applicable": true, "unsupported": true, "as-text": true, "error": true,
	"not-a-number": true, "negative-infinity": true, "positive-infinity": true, "not-performed": true, "not-permitted": true,
}

const dataAbsentSystem = "http://terminology.hl7.org/CodeSystem/data-absent-reason"

var urnUUID = regexp.MustCompile(`^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// Validate checks one FHIR R4 resource (usually a Bundle) in JSON and
// returns every problem found, joined; nil when it is valid.
func Validate(body []byte) error {
	s, err := schemas()
	if err != nil {
		return err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	var errs []error
	if err := s.root.Validate(inst); err != nil {
		errs = append(errs, fmt.Errorf("R4 schema: %w", s.explain(inst, err)))
	}
	var res map[string]any
	if err := json.Unmarshal(body, &res); err != nil {
		return errors.Join(append(errs, err)...)
	}
	errs = append(errs, checkCodes(res, "")...)
	if res["resourceType"] == "Bundle" {
		errs = append(errs, checkBundle(res)...)
	}
	return errors.Join(errs...)
}

// explain narrows a failure of the root schema to the resources at fault,
// validated against their own definitions.
func (s *compiled) explain(inst any, rootErr error) error {
	var resources []any
	if m, ok := inst.(map[string]any); ok {
		resources = append(resources, m)
		if entries, ok := m["entry"].([]any); ok {
			for _, e := range entries {
				if em, ok := e.(map[string]any); ok && em["resource"] != nil {
					resources = append(resources, em["resource"])
				}
			}
		}
	}
	var errs []error
	for i, r := range resources {
		m, _ := r.(map[string]any)
		rt, _ := m["resourceType"].(string)
		if rt == "" {
			errs = append(errs, fmt.Errorf("resource %d has no resourceType", i))
			continue
		}
		d, err := s.definition(rt)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if i == 0 && rt == "Bundle" {
			// The bundle's own definition checks entries through the same
			// oneOf; drop the resources so only the envelope is judged here.
			c := make(map[string]any, len(m))
			for k, v := range m {
				c[k] = v
			}
			if entries, ok := m["entry"].([]any); ok {
				stripped := make([]any, len(entries))
				for j, e := range entries {
					em, _ := e.(map[string]any)
					ec := map[string]any{}
					for k, v := range em {
						if k != "resource" {
							ec[k] = v
						}
					}
					stripped[j] = ec
				}
				c["entry"] = stripped
			}
			r = c
		}
		if err := d.Validate(r); err != nil {
			id, _ := m["id"].(string)
			errs = append(errs, fmt.Errorf("%s/%s: %w", rt, id, err))
		}
	}
	if len(errs) == 0 {
		return rootErr
	}
	return errors.Join(errs...)
}

// checkCodes walks every coding and refuses data-absent-reason codes outside
// R4's value set.
func checkCodes(v any, path string) []error {
	var errs []error
	switch x := v.(type) {
	case map[string]any:
		if x["system"] == dataAbsentSystem {
			if code, _ := x["code"].(string); !dataAbsentReasons[code] {
				errs = append(errs, fmt.Errorf("%s: %q is not in R4's data-absent-reason value set", path, code))
			}
		}
		for k, c := range x {
			errs = append(errs, checkCodes(c, path+"/"+k)...)
		}
	case []any:
		for i, c := range x {
			errs = append(errs, checkCodes(c, fmt.Sprintf("%s/%d", path, i))...)
		}
	}
	return errs
}

// checkBundle checks that every fullUrl is a distinct urn:uuid UUID and that
// every urn:uuid reference points at an entry of the bundle.
func checkBundle(b map[string]any) []error {
	var errs []error
	entries, _ := b["entry"].([]any)
	full := map[string]bool{}
	for i, e := range entries {
		em, _ := e.(map[string]any)
		u, _ := em["fullUrl"].(string)
		switch {
		case !urnUUID.MatchString(u):
			errs = append(errs, fmt.Errorf("entry %d: fullUrl %q is not a urn:uuid UUID", i, u))
		case full[u]:
			errs = append(errs, fmt.Errorf("entry %d: fullUrl %q appears twice", i, u))
		}
		full[u] = true
	}
	var walk func(v any, path string)
	walk = func(v any, path string) {
		switch x := v.(type) {
		case map[string]any:
			if ref, ok := x["reference"].(string); ok && strings.HasPrefix(ref, "urn:uuid:") && !full[ref] {
				errs = append(errs, fmt.Errorf("%s: reference %q matches no entry", path, ref))
			}
			for k, c := range x {
				walk(c, path+"/"+k)
			}
		case []any:
			for i, c := range x {
				walk(c, fmt.Sprintf("%s/%d", path, i))
			}
		}
	}
	walk(entries, "entry")
	return errs
}

// Check fails tb with every problem Validate finds in body.
func Check(tb testing.TB, body []byte) {
	tb.Helper()
	if err := Validate(body); err != nil {
		tb.Errorf("FHIR R4 validation failed:\n%v\nbody: %.2000s", err, body)
	}
}
