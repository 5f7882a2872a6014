package escalation

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzObservations: any JSON object is either a valid observation set, whose
// values all lie in the plausible ranges, or refused with an InputError.
func FuzzObservations(f *testing.F) {
	for _, s := range []string{
		`{"respiration_rate":22,"spo2":93,"on_oxygen":false,"systolic_bp":104,"pulse":112,"consciousness":"A","temperature":38.4}`,
		`{"respiration_rate":22,"spo2":93,"pulse":112,"consciousness":"A","temperature":38.45,"absent":{"systolic_bp":"refused"}}`,
		`{"respiration_rate":1e2,"spo2":-0,"systolic_bp":40.5,"pulse":250,"consciousness":"C","temperature":"38","taken_at":"2026-11-23T02:10:00Z"}`,
		`{"absent":{"spo2":"asleep","nonsense":"refused"}}`,
		`{"respiration_rate":12345678901234567890123456789012}`,
	} {
		f.Add([]byte(s))
	}
	now := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, b []byte) {
		var in ObservationsInput
		if json.Unmarshal(b, &in) != nil {
			return
		}
		o, err := in.Parse("observations", now)
		if err != nil {
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("%q: error %v is not an InputError", b, err)
			}
			return
		}
		in2 := func(p *int, lo, hi int) {
			if p != nil && (*p < lo || *p > hi) {
				t.Fatalf("%q: accepted %d outside %d–%d", b, *p, lo, hi)
			}
		}
		in2(o.RespirationRate, 1, 80)
		in2(o.SpO2, 50, 100)
		in2(o.SystolicBP, 40, 300)
		in2(o.Pulse, 20, 250)
		if o.Temperature != nil && (*o.Temperature < 250 || *o.Temperature > 450) {
			t.Fatalf("%q: temperature %d tenths accepted", b, *o.Temperature)
		}
		if o.TakenAt.After(now.Add(5 * time.Minute)) {
			t.Fatalf("%q: taken_at in the future accepted", b)
		}
	})
}

// FuzzResidentsCSV: any CSV either parses into rows that each validate, or
// reports row errors; nothing panics.
func FuzzResidentsCSV(f *testing.F) {
	f.Add("id,care_home_id,name,date_of_birth,room,nhs_number\nrc-900,rose-court,Ada Lovelace,1930-12-10,9,9434765919\n")
	f.Add("id,name\n\"unterminated,x\n")
	f.Add("=cmd|' /C calc'!A0,x\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		rows, rowErrs, err := ParseResidentsCSV(strings.NewReader(s))
		if err != nil {
			return
		}
		for _, e := range rowErrs {
			if e.Row < 1 {
				t.Fatalf("row error without a row number: %+v", e)
			}
		}
		_ = rows
	})
}
