// Package news2 scores the Royal College of Physicians' National Early Warning
// Score 2 (RCP 2017, Chart 1 and Chart 4). It is the one NEWS2 implementation in
// Nightcall: the HTTP calculator, escalations and routine observations all score
// through Score.
package news2

import (
	"encoding/json"
	"strconv"
)

// Scale is the resident's SpO2 scale. Scale 2 is only for residents with
// confirmed hypercapnic respiratory failure and a prescribed target of 88–92 %.
type Scale int

const (
	Scale1 Scale = 1
	Scale2 Scale = 2
)

// Valid reports whether s is Scale 1 or Scale 2.
func (s Scale) Valid() bool { return s == Scale1 || s == Scale2 }

// Consciousness is an ACVPU level. C means new or worsening confusion;
// long-standing confusion that is normal for the resident is recorded as A.
type Consciousness string

const (
	Alert        Consciousness = "A"
	NewConfusion Consciousness = "C"
	Voice        Consciousness = "V"
	Pain         Consciousness = "P"
	Unresponsive Consciousness = "U"
)

// Valid reports whether c is one of A, C, V, P, U.
func (c Consciousness) Valid() bool {
	switch c {
	case Alert, NewConfusion, Voice, Pain, Unresponsive:
		return true
	}
	return false
}

// Risk is the clinical risk band of a complete observation set.
type Risk string

const (
	RiskLow       Risk = "low"
	RiskLowMedium Risk = "low-medium"
	RiskMedium    Risk = "medium"
	RiskHigh      Risk = "high"
)

// Vitals is one set of observations as scored. A nil pointer is a value that
// was not taken. Temperature is held in tenths of a degree Celsius so that
// floating-point error can never move a value across a band edge.
type Vitals struct {
	RespirationRate   *int
	SpO2              *int
	OnOxygen          *bool
	SystolicBP        *int
	Pulse             *int
	Consciousness     *Consciousness
	TemperatureTenths *int
}

// SubScores holds the parameter scores that could be computed; nil means the
// parameter was absent.
type SubScores struct {
	RespirationRate *int `json:"respiration_rate,omitempty"`
	SpO2            *int `json:"spo2,omitempty"`
	AirOrOxygen     *int `json:"air_or_oxygen,omitempty"`
	SystolicBP      *int `json:"systolic_bp,omitempty"`
	Pulse           *int `json:"pulse,omitempty"`
	Consciousness   *int `json:"consciousness,omitempty"`
	Temperature     *int `json:"temperature,omitempty"`
}

func (s SubScores) all() []*int {
	return []*int{s.RespirationRate, s.SpO2, s.AirOrOxygen, s.SystolicBP, s.Pulse, s.Consciousness, s.Temperature}
}

// Result is a scored observation set. Total and Risk are nil when the set is
// partial: no aggregate NEWS2 is ever presented from an incomplete set. A
// missing parameter can only add points, so for a partial set the sum of the
// sub-scores that are known is a lower bound on the true total: AtLeast holds
// it, and RiskAtLeast the band that bound already reaches (CLINICAL.md,
// "Partial sets"). Advice, paging and the queue act on that bound.
type Result struct {
	Total       *int      `json:"total"`
	Risk        *Risk     `json:"risk"`
	Partial     bool      `json:"partial"`
	AtLeast     *int      `json:"at_least,omitempty"`
	RiskAtLeast *Risk     `json:"risk_at_least,omitempty"`
	SubScores   SubScores `json:"subscores"`
}

// UnmarshalJSON reads a stored result and fills the lower bound of a partial
// set recorded before the bound was kept, so old events never under-triage.
func (r *Result) UnmarshalJSON(b []byte) error {
	type plain Result
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*r = Result(p)
	if r.Partial {
		bound, risk := r.SubScores.bound()
		r.AtLeast, r.RiskAtLeast = &bound, &risk
	}
	return nil
}

// Bound is the total of a complete set, or the lower bound of a partial one.
func (r Result) Bound() int {
	if r.Total != nil {
		return *r.Total
	}
	b, _ := r.SubScores.bound()
	return b
}

// ResponseRisk is the band the response must meet: the risk of a complete
// set, or the risk its known sub-scores already reach for a partial one. It
// is never lower than the known sub-scores call for.
func (r Result) ResponseRisk() Risk {
	if r.Risk != nil {
		return *r.Risk
	}
	_, risk := r.SubScores.bound()
	return risk
}

// Label is how the score is shown to people: "8", or "partial, at least 7"
// for an incomplete set (never a total).
func (r Result) Label() string {
	if r.Total != nil {
		return strconv.Itoa(*r.Total)
	}
	return "partial, at least " + strconv.Itoa(r.Bound())
}

// HasSingleThree reports whether any available parameter scored 3, which
// calls for an urgent response even when the set is partial.
func (r Result) HasSingleThree() bool {
	for _, v := range r.SubScores.all() {
		if v != nil && *v == 3 {
			return true
		}
	}
	return false
}

// bound sums the known sub-scores and bands the sum by RCP Chart 4's
// precedence (≥7 high, ≥5 medium, any single 3 low-medium, else low).
func (s SubScores) bound() (int, Risk) {
	total, three := 0, false
	for _, p := range s.all() {
		if p == nil {
			continue
		}
		total += *p
		if *p == 3 {
			three = true
		}
	}
	return total, band(total, three)
}

func band(total int, three bool) Risk {
	switch {
	case total >= 7:
		return RiskHigh
	case total >= 5:
		return RiskMedium
	case three:
		return RiskLowMedium
	}
	return RiskLow
}

// Score computes NEWS2 for v on the given SpO2 scale.
func Score(v Vitals, scale Scale) Result {
	var s SubScores
	if v.RespirationRate != nil {
		s.RespirationRate = ptr(respiration(*v.RespirationRate))
	}
	if v.SpO2 != nil && v.OnOxygen != nil {
		if scale == Scale2 {
			s.SpO2 = ptr(spo2Scale2(*v.SpO2, *v.OnOxygen))
		} else {
			s.SpO2 = ptr(spo2Scale1(*v.SpO2))
		}
	} else if v.SpO2 != nil && (scale != Scale2 || *v.SpO2 <= 92) {
		// Scale 1, and Scale 2 up to 92 %, do not depend on oxygen.
		if scale == Scale2 {
			s.SpO2 = ptr(spo2Scale2(*v.SpO2, false))
		} else {
			s.SpO2 = ptr(spo2Scale1(*v.SpO2))
		}
	}
	if v.OnOxygen != nil {
		if *v.OnOxygen {
			s.AirOrOxygen = ptr(2)
		} else {
			s.AirOrOxygen = ptr(0)
		}
	}
	if v.SystolicBP != nil {
		s.SystolicBP = ptr(systolic(*v.SystolicBP))
	}
	if v.Pulse != nil {
		s.Pulse = ptr(pulse(*v.Pulse))
	}
	if v.Consciousness != nil {
		if *v.Consciousness == Alert {
			s.Consciousness = ptr(0)
		} else {
			s.Consciousness = ptr(3)
		}
	}
	if v.TemperatureTenths != nil {
		s.Temperature = ptr(temperature(*v.TemperatureTenths))
	}

	res := Result{SubScores: s}
	for _, p := range s.all() {
		if p == nil {
			res.Partial = true
		}
	}
	total, risk := s.bound()
	if res.Partial {
		res.AtLeast, res.RiskAtLeast = &total, &risk
		return res
	}
	res.Total, res.Risk = &total, &risk
	return res
}

func respiration(rr int) int {
	switch {
	case rr <= 8:
		return 3
	case rr <= 11:
		return 1
	case rr <= 20:
		return 0
	case rr <= 24:
		return 2
	default:
		return 3
	}
}

func spo2Scale1(p int) int {
	switch {
	case p <= 91:
		return 3
	case p <= 93:
		return 2
	case p <= 95:
		return 1
	default:
		return 0
	}
}

func spo2Scale2(p int, onOxygen bool) int {
	switch {
	case p <= 83:
		return 3
	case p <= 85:
		return 2
	case p <= 87:
		return 1
	case p <= 92:
		return 0
	case !onOxygen:
		return 0 // 93 % or above on air scores 0 on Scale 2.
	case p <= 94:
		return 1
	case p <= 96:
		return 2
	default:
		return 3
	}
}

func systolic(bp int) int {
	switch {
	case bp <= 90:
		return 3
	case bp <= 100:
		return 2
	case bp <= 110:
		return 1
	case bp <= 219:
		return 0
	default:
		return 3
	}
}

func pulse(hr int) int {
	switch {
	case hr <= 40:
		return 3
	case hr <= 50:
		return 1
	case hr <= 90:
		return 0
	case hr <= 110:
		return 1
	case hr <= 130:
		return 2
	default:
		return 3
	}
}

func temperature(tenths int) int {
	switch {
	case tenths <= 350:
		return 3
	case tenths <= 360:
		return 1
	case tenths <= 380:
		return 0
	case tenths <= 390:
		return 1
	default:
		return 2
	}
}

func ptr[T any](v T) *T { return &v }
