package escalation

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func parse(t *testing.T, js string) (Observations, error) {
	t.Helper()
	var in ObservationsInput
	if err := json.Unmarshal([]byte(js), &in); err != nil {
		t.Fatal(err)
	}
	return in.Parse("observations", time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC))
}

const full = `"respiration_rate":16,"spo2":97,"systolic_bp":120,"pulse":70,"consciousness":"A"`

func TestTemperatureRoundsHalfUpExactly(t *testing.T) {
	cases := map[string]Tenths{"36.05": 361, "36.04": 360, "38.44": 384, "38.45": 385, "36": 360, "35.95": 360, "38.0": 380}
	for in, want := range cases {
		o, err := parse(t, `{`+full+`,"temperature":`+in+`}`)
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if *o.Temperature != want {
			t.Errorf("temperature %s: got %d tenths, want %d", in, *o.Temperature, want)
		}
	}
	// 36.05 rounds to 36.1 and scores 0, not 1.
	o, _ := parse(t, `{`+full+`,"temperature":36.05}`)
	b, _ := json.Marshal(o.Temperature)
	if string(b) != "36.1" {
		t.Errorf("stored temperature %s, want 36.1", b)
	}
}

func TestWholeNumbersRoundHalfUp(t *testing.T) {
	o, err := parse(t, `{"respiration_rate":20.5,"spo2":95.4,"systolic_bp":120,"pulse":70,"consciousness":"A","temperature":37}`)
	if err != nil {
		t.Fatal(err)
	}
	if *o.RespirationRate != 21 || *o.SpO2 != 95 {
		t.Errorf("rounded to %d and %d, want 21 and 95", *o.RespirationRate, *o.SpO2)
	}
}

func TestObservationErrors(t *testing.T) {
	cases := []struct {
		name, js string
		kind     ErrorKind
		field    string
	}{
		{"missing", `{"spo2":97,"systolic_bp":120,"pulse":70,"consciousness":"A","temperature":37}`, KindMissingField, "observations.respiration_rate"},
		{"absent with reason is fine", `{"spo2":97,"systolic_bp":120,"pulse":70,"consciousness":"A","temperature":37,"absent":{"respiration_rate":"asleep"}}`, "", ""},
		{"string number", `{` + full + `,"temperature":"37"}`, KindInvalidJSON, "observations.temperature"},
		{"implausible low", `{` + full + `,"temperature":24.9}`, KindImplausible, "observations.temperature"},
		{"plausible edge", `{` + full + `,"temperature":25.0}`, "", ""},
		{"rounds into range", `{` + full + `,"temperature":24.95}`, "", ""},
		{"future", `{` + full + `,"temperature":37,"taken_at":"2026-11-23T04:00:00Z"}`, KindImplausible, "observations.taken_at"},
		{"bad time", `{` + full + `,"temperature":37,"taken_at":"yesterday"}`, KindInvalidJSON, "observations.taken_at"},
		{"missing consciousness", `{"respiration_rate":16,"spo2":97,"systolic_bp":120,"pulse":70,"temperature":37}`, KindMissingField, "observations.consciousness"},
		{"lower-case consciousness", `{"respiration_rate":16,"spo2":97,"systolic_bp":120,"pulse":70,"consciousness":"a","temperature":37}`, KindInvalidValue, "observations.consciousness"},
		{"absent unknown field", `{` + full + `,"temperature":37,"absent":{"mood":"refused"}}`, KindInvalidValue, "observations.absent.mood"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parse(t, c.js)
			if c.kind == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			var ie *InputError
			if !errors.As(err, &ie) || ie.Kind != c.kind || ie.Field != c.field {
				t.Fatalf("got %v, want %s on %s", err, c.kind, c.field)
			}
		})
	}
}

func TestOnOxygenDefaultsToAir(t *testing.T) {
	o, err := parse(t, `{`+full+`,"temperature":37}`)
	if err != nil || o.OnOxygen == nil || *o.OnOxygen {
		t.Fatalf("on_oxygen left out: %v %v", o.OnOxygen, err)
	}
}
