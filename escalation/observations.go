package escalation

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"time"

	"github.com/nightcall-health/nightcall/escalation/news2"
)

// Tenths is a temperature in tenths of a degree Celsius. It is written on the
// wire as a decimal number with one place (38.4).
type Tenths int

// MarshalJSON writes t as a decimal with one place.
func (t Tenths) MarshalJSON() ([]byte, error) {
	return []byte(strconv.FormatFloat(float64(t)/10, 'f', 1, 64)), nil
}

// UnmarshalJSON reads a stored decimal back into tenths, exactly.
func (t *Tenths) UnmarshalJSON(b []byte) error {
	v, err := roundedDecimal(b, 10)
	if err != nil {
		return err
	}
	*t = Tenths(v)
	return nil
}

// AbsentReason says why a value was not taken.
type AbsentReason string

var absentReasons = map[AbsentReason]bool{"refused": true, "asleep": true, "no_equipment": true, "not_trained": true}

// Observations is one validated set of vital signs. A nil field was not taken,
// and then Absent gives the reason.
type Observations struct {
	RespirationRate *int                    `json:"respiration_rate,omitempty"`
	SpO2            *int                    `json:"spo2,omitempty"`
	OnOxygen        *bool                   `json:"on_oxygen,omitempty"`
	SystolicBP      *int                    `json:"systolic_bp,omitempty"`
	Pulse           *int                    `json:"pulse,omitempty"`
	Consciousness   *news2.Consciousness    `json:"consciousness,omitempty"`
	Temperature     *Tenths                 `json:"temperature,omitempty"`
	TakenAt         time.Time               `json:"taken_at"`
	Absent          map[string]AbsentReason `json:"absent,omitempty"`

	// OxygenLitresPerMin is the oxygen flow in L/min, when on oxygen and
	// given (optional; it does not change the score).
	OxygenLitresPerMin *Tenths `json:"oxygen_litres_per_min,omitempty"`
}

// Vitals converts o for scoring.
func (o Observations) Vitals() news2.Vitals {
	v := news2.Vitals{
		RespirationRate: o.RespirationRate, SpO2: o.SpO2, OnOxygen: o.OnOxygen,
		SystolicBP: o.SystolicBP, Pulse: o.Pulse, Consciousness: o.Consciousness,
	}
	if o.Temperature != nil {
		t := int(*o.Temperature)
		v.TemperatureTenths = &t
	}
	return v
}

// ObservationsInput is observations as a client sends them, before validation.
// Numbers are kept raw so that rounding is exact and types are checked here.
type ObservationsInput struct {
	RespirationRate json.RawMessage   `json:"respiration_rate"`
	SpO2            json.RawMessage   `json:"spo2"`
	OnOxygen        json.RawMessage   `json:"on_oxygen"`
	SystolicBP      json.RawMessage   `json:"systolic_bp"`
	Pulse           json.RawMessage   `json:"pulse"`
	Consciousness   json.RawMessage   `json:"consciousness"`
	Temperature     json.RawMessage   `json:"temperature"`
	TakenAt         json.RawMessage   `json:"taken_at"`
	Absent          map[string]string `json:"absent"`

	OxygenLitresPerMin json.RawMessage `json:"oxygen_litres_per_min"`
}

type numericField struct {
	name     string
	raw      json.RawMessage
	min, max int // in the field's own unit (tenths for temperature)
	scale    int64
	unit     string
}

// Parse validates in, with field names under prefix ("observations"), and
// returns the observation set. now is the time received: the default for
// taken_at and the bound for a reading in the future.
func (in ObservationsInput) Parse(prefix string, now time.Time) (Observations, error) {
	var o Observations
	f := func(name string) string { return prefix + "." + name }

	for name, reason := range in.Absent {
		switch name {
		case "respiration_rate", "spo2", "on_oxygen", "systolic_bp", "pulse", "consciousness", "temperature":
		default:
			return o, inputErr(KindInvalidValue, f("absent."+name), "%q is not an observation that can be absent", name)
		}
		if !absentReasons[AbsentReason(reason)] {
			return o, inputErr(KindInvalidValue, f("absent."+name), "the reason must be one of refused, asleep, no_equipment, not_trained")
		}
	}
	absent := func(name string) bool { _, ok := in.Absent[name]; return ok }
	present := func(raw json.RawMessage) bool { return len(raw) > 0 && !bytes.Equal(raw, []byte("null")) }

	numbers := []struct {
		numericField
		dst **int
	}{
		{numericField{"respiration_rate", in.RespirationRate, 1, 80, 1, "/min"}, &o.RespirationRate},
		{numericField{"spo2", in.SpO2, 50, 100, 1, "%"}, &o.SpO2},
		{numericField{"systolic_bp", in.SystolicBP, 40, 300, 1, "mmHg"}, &o.SystolicBP},
		{numericField{"pulse", in.Pulse, 20, 250, 1, "/min"}, &o.Pulse},
		{numericField{"temperature", in.Temperature, 250, 450, 10, "°C"}, nil},
	}
	for _, n := range numbers {
		if !present(n.raw) {
			if !absent(n.name) {
				return o, inputErr(KindMissingField, f(n.name), "%s is required, or give a reason in absent", n.name)
			}
			continue
		}
		if absent(n.name) {
			return o, inputErr(KindInconsistent, f(n.name), "%s is given and also marked absent", n.name)
		}
		v, err := roundedDecimal(n.raw, n.scale)
		if err != nil {
			return o, inputErr(KindInvalidJSON, f(n.name), "%s must be a number", n.name)
		}
		if v < int64(n.min) || v > int64(n.max) {
			lo, hi := strconv.Itoa(n.min), strconv.Itoa(n.max)
			if n.scale == 10 {
				lo, hi = fmt.Sprintf("%.1f", float64(n.min)/10), fmt.Sprintf("%.1f", float64(n.max)/10)
			}
			return o, inputErr(KindImplausible, f(n.name), "%s must be between %s and %s %s", n.name, lo, hi, n.unit)
		}
		iv := int(v)
		if n.dst != nil {
			*n.dst = &iv
		} else {
			t := Tenths(iv)
			o.Temperature = &t
		}
	}

	switch {
	case present(in.OnOxygen):
		if absent("on_oxygen") {
			return o, inputErr(KindInconsistent, f("on_oxygen"), "on_oxygen is given and also marked absent")
		}
		var b bool
		if err := json.Unmarshal(in.OnOxygen, &b); err != nil {
			return o, inputErr(KindInvalidJSON, f("on_oxygen"), "on_oxygen must be true or false")
		}
		o.OnOxygen = &b
	case !absent("on_oxygen"):
		// Not given and not marked absent: the resident is breathing room air.
		b := false
		o.OnOxygen = &b
	}

	if present(in.OxygenLitresPerMin) {
		const field = "oxygen_litres_per_min"
		v, err := roundedDecimal(in.OxygenLitresPerMin, 10)
		if err != nil {
			return o, inputErr(KindInvalidJSON, f(field), "oxygen_litres_per_min must be a number of litres per minute")
		}
		if v < 5 || v > 150 {
			return o, inputErr(KindImplausible, f(field), "oxygen_litres_per_min must be between 0.5 and 15.0 L/min")
		}
		if o.OnOxygen == nil || !*o.OnOxygen {
			return o, inputErr(KindInconsistent, f(field), "an oxygen flow is given but on_oxygen is not true")
		}
		l := Tenths(v)
		o.OxygenLitresPerMin = &l
	}

	switch {
	case present(in.Consciousness):
		if absent("consciousness") {
			return o, inputErr(KindInconsistent, f("consciousness"), "consciousness is given and also marked absent")
		}
		var s string
		if err := json.Unmarshal(in.Consciousness, &s); err != nil {
			return o, inputErr(KindInvalidJSON, f("consciousness"), "consciousness must be a string")
		}
		c := news2.Consciousness(s)
		if !c.Valid() {
			return o, inputErr(KindInvalidValue, f("consciousness"), "consciousness must be one of A, C, V, P, U")
		}
		o.Consciousness = &c
	case !absent("consciousness"):
		return o, inputErr(KindMissingField, f("consciousness"), "consciousness is required (A, C, V, P or U), or give a reason in absent")
	}

	o.TakenAt = now.UTC()
	if present(in.TakenAt) {
		var s string
		if err := json.Unmarshal(in.TakenAt, &s); err != nil {
			return o, inputErr(KindInvalidJSON, f("taken_at"), "taken_at must be an RFC 3339 time")
		}
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return o, inputErr(KindInvalidJSON, f("taken_at"), "taken_at must be an RFC 3339 time")
		}
		if t.After(now.Add(5 * time.Minute)) {
			return o, inputErr(KindImplausible, f("taken_at"), "taken_at is in the future")
		}
		o.TakenAt = t.UTC()
	}
	if len(in.Absent) > 0 {
		o.Absent = make(map[string]AbsentReason, len(in.Absent))
		for k, v := range in.Absent {
			o.Absent[k] = AbsentReason(v)
		}
	}
	return o, nil
}

// roundedDecimal reads a JSON number exactly and returns it times scale,
// rounded half-up (half away from zero).
func roundedDecimal(raw json.RawMessage, scale int64) (int64, error) {
	s := string(bytes.TrimSpace(raw))
	if s == "" || (s[0] != '-' && (s[0] < '0' || s[0] > '9')) {
		return 0, fmt.Errorf("not a number: %s", s)
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return 0, fmt.Errorf("not a number: %s", s)
	}
	r.Mul(r, new(big.Rat).SetInt64(scale))
	neg := r.Sign() < 0
	r.Abs(r)
	r.Add(r, big.NewRat(1, 2))
	q := new(big.Int).Quo(r.Num(), r.Denom())
	if !q.IsInt64() || q.Int64() > 1<<40 {
		return 0, fmt.Errorf("number out of range: %s", s)
	}
	v := q.Int64()
	if neg {
		v = -v
	}
	return v, nil
}

// SoftSign is a RESTORE2 soft sign code.
type SoftSign string

// SoftSigns lists the codes accepted, in display order.
var SoftSigns = []SoftSign{
	"breathless", "eating_drinking_less", "new_confusion", "sleepier", "agitated", "withdrawn",
	"off_legs", "skin_changes", "bowel_urine_change", "new_pain", "family_worried", "not_themselves",
}

// ParseSoftSigns validates codes, refusing unknown ones and dropping repeats.
func ParseSoftSigns(field string, codes []string) ([]SoftSign, error) {
	known := make(map[SoftSign]bool, len(SoftSigns))
	for _, s := range SoftSigns {
		known[s] = true
	}
	out := make([]SoftSign, 0, len(codes))
	seen := map[SoftSign]bool{}
	for i, c := range codes {
		s := SoftSign(c)
		if !known[s] {
			return nil, inputErr(KindInvalidValue, field, "%q (item %d) is not a known soft sign", c, i+1)
		}
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out, nil
}

// CheckConsistency refuses observations that contradict the soft signs: new
// confusion is recorded as consciousness C, not A.
func CheckConsistency(obs *Observations, signs []SoftSign) error {
	if obs == nil || obs.Consciousness == nil {
		return nil
	}
	for _, s := range signs {
		if s == "new_confusion" && *obs.Consciousness == news2.Alert {
			return inputErr(KindInconsistent, "observations.consciousness",
				"the soft sign new_confusion means consciousness C (new or worse confusion), not A")
		}
	}
	return nil
}
