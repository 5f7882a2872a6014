package news2

import "testing"

// normal is a complete set that scores 0 on Scale 1.
func normal() Vitals {
	a := Alert
	return Vitals{
		RespirationRate: ptr(16), SpO2: ptr(97), OnOxygen: ptr(false), SystolicBP: ptr(120),
		Pulse: ptr(70), Consciousness: &a, TemperatureTenths: ptr(370),
	}
}

func TestBandEdges(t *testing.T) {
	type edge struct {
		value int
		want  int
	}
	cases := []struct {
		name  string
		set   func(*Vitals, int)
		get   func(SubScores) *int
		edges []edge
	}{
		{"respiration", func(v *Vitals, x int) { v.RespirationRate = ptr(x) }, func(s SubScores) *int { return s.RespirationRate },
			[]edge{{1, 3}, {8, 3}, {9, 1}, {11, 1}, {12, 0}, {20, 0}, {21, 2}, {24, 2}, {25, 3}, {80, 3}}},
		{"spo2 scale 1", func(v *Vitals, x int) { v.SpO2 = ptr(x) }, func(s SubScores) *int { return s.SpO2 },
			[]edge{{50, 3}, {91, 3}, {92, 2}, {93, 2}, {94, 1}, {95, 1}, {96, 0}, {100, 0}}},
		{"systolic", func(v *Vitals, x int) { v.SystolicBP = ptr(x) }, func(s SubScores) *int { return s.SystolicBP },
			[]edge{{40, 3}, {90, 3}, {91, 2}, {100, 2}, {101, 1}, {110, 1}, {111, 0}, {219, 0}, {220, 3}, {300, 3}}},
		{"pulse", func(v *Vitals, x int) { v.Pulse = ptr(x) }, func(s SubScores) *int { return s.Pulse },
			[]edge{{20, 3}, {40, 3}, {41, 1}, {50, 1}, {51, 0}, {90, 0}, {91, 1}, {110, 1}, {111, 2}, {130, 2}, {131, 3}, {250, 3}}},
		{"temperature tenths", func(v *Vitals, x int) { v.TemperatureTenths = ptr(x) }, func(s SubScores) *int { return s.Temperature },
			[]edge{{250, 3}, {350, 3}, {351, 1}, {360, 1}, {361, 0}, {380, 0}, {381, 1}, {390, 1}, {391, 2}, {450, 2}}},
	}
	for _, c := range cases {
		for _, e := range c.edges {
			v := normal()
			c.set(&v, e.value)
			got := c.get(Score(v, Scale1).SubScores)
			if got == nil || *got != e.want {
				t.Errorf("%s %d: got %v, want %d", c.name, e.value, deref(got), e.want)
			}
		}
	}
}

func TestSpO2Scale2(t *testing.T) {
	cases := []struct {
		spo2   int
		oxygen bool
		want   int
	}{
		{83, false, 3}, {84, false, 2}, {85, false, 2}, {86, false, 1}, {87, false, 1},
		{88, false, 0}, {92, false, 0}, {93, false, 0}, {97, false, 0}, {100, false, 0},
		{83, true, 3}, {88, true, 0}, {92, true, 0}, {93, true, 1}, {94, true, 1},
		{95, true, 2}, {96, true, 2}, {97, true, 3}, {100, true, 3},
	}
	for _, c := range cases {
		v := normal()
		v.SpO2, v.OnOxygen = ptr(c.spo2), ptr(c.oxygen)
		r := Score(v, Scale2)
		if got := deref(r.SubScores.SpO2); got != c.want {
			t.Errorf("scale 2 spo2 %d oxygen=%v: got %d, want %d", c.spo2, c.oxygen, got, c.want)
		}
	}
	// A Scale 2 resident on oxygen at 97 % scores 5 from the SpO2 and air/oxygen rows.
	v := normal()
	v.SpO2, v.OnOxygen = ptr(97), ptr(true)
	r := Score(v, Scale2)
	if got := deref(r.SubScores.SpO2) + deref(r.SubScores.AirOrOxygen); got != 5 {
		t.Errorf("scale 2 on oxygen at 97%%: SpO2 + air/oxygen = %d, want 5", got)
	}
	// The same reading on Scale 1 scores 0 for SpO2.
	if got := deref(Score(v, Scale1).SubScores.SpO2); got != 0 {
		t.Errorf("scale 1 at 97%%: got %d, want 0", got)
	}
}

func TestConsciousnessAndOxygen(t *testing.T) {
	for _, c := range []struct {
		level Consciousness
		want  int
	}{{Alert, 0}, {NewConfusion, 3}, {Voice, 3}, {Pain, 3}, {Unresponsive, 3}} {
		v := normal()
		l := c.level
		v.Consciousness = &l
		if got := deref(Score(v, Scale1).SubScores.Consciousness); got != c.want {
			t.Errorf("consciousness %s: got %d, want %d", c.level, got, c.want)
		}
	}
	v := normal()
	v.OnOxygen = ptr(true)
	if got := deref(Score(v, Scale1).SubScores.AirOrOxygen); got != 2 {
		t.Errorf("oxygen: got %d, want 2", got)
	}
}

func TestTotalAndRiskPrecedence(t *testing.T) {
	cases := []struct {
		name      string
		mutate    func(*Vitals)
		wantTotal int
		wantRisk  Risk
	}{
		{"all normal", func(v *Vitals) {}, 0, RiskLow},
		{"total 4 without a 3", func(v *Vitals) { v.RespirationRate = ptr(22); v.Pulse = ptr(115) }, 4, RiskLow},
		{"single 3 alone", func(v *Vitals) { v.Pulse = ptr(140) }, 3, RiskLowMedium},
		{"single 3 plus 1 is still low-medium", func(v *Vitals) { v.Pulse = ptr(140); v.TemperatureTenths = ptr(385) }, 4, RiskLowMedium},
		{"total 5 is medium", func(v *Vitals) { v.RespirationRate = ptr(22); v.Pulse = ptr(115); v.TemperatureTenths = ptr(385) }, 5, RiskMedium},
		{"total 6 with a 3 is medium", func(v *Vitals) { v.Pulse = ptr(140); v.SpO2 = ptr(95); v.RespirationRate = ptr(22) }, 6, RiskMedium},
		{"total 7 is high", func(v *Vitals) { v.Pulse = ptr(140); v.SpO2 = ptr(93); v.RespirationRate = ptr(22) }, 7, RiskHigh},
		{"API example scores 8", func(v *Vitals) {
			v.RespirationRate, v.SpO2, v.SystolicBP, v.Pulse, v.TemperatureTenths = ptr(22), ptr(93), ptr(104), ptr(112), ptr(384)
		}, 8, RiskHigh},
		{"maximum is 20", func(v *Vitals) {
			u := Unresponsive
			v.RespirationRate, v.SpO2, v.OnOxygen, v.SystolicBP, v.Pulse, v.Consciousness, v.TemperatureTenths = ptr(30), ptr(85), ptr(true), ptr(80), ptr(150), &u, ptr(340)
		}, 20, RiskHigh},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := normal()
			c.mutate(&v)
			r := Score(v, Scale1)
			if r.Partial || r.Total == nil || r.Risk == nil {
				t.Fatalf("complete set reported partial: %+v", r)
			}
			if *r.Total != c.wantTotal || *r.Risk != c.wantRisk {
				t.Errorf("got total %d risk %s, want %d %s", *r.Total, *r.Risk, c.wantTotal, c.wantRisk)
			}
		})
	}
}

func TestPartialSetHasNoAggregate(t *testing.T) {
	v := normal()
	v.TemperatureTenths = nil
	v.Pulse = ptr(135)
	r := Score(v, Scale1)
	if !r.Partial || r.Total != nil || r.Risk != nil {
		t.Fatalf("partial set: got %+v", r)
	}
	if r.SubScores.Temperature != nil {
		t.Errorf("absent temperature has a sub-score")
	}
	if deref(r.SubScores.Pulse) != 3 || !r.HasSingleThree() {
		t.Errorf("a 3 in a partial set must still show: %+v", r.SubScores)
	}
}

func TestScale2WithoutOxygenStatus(t *testing.T) {
	v := normal()
	v.OnOxygen = nil
	v.SpO2 = ptr(95)
	if r := Score(v, Scale2); r.SubScores.SpO2 != nil || !r.Partial {
		t.Errorf("scale 2 at 95%% with oxygen unknown must not be scored: %+v", r.SubScores)
	}
	v.SpO2 = ptr(86)
	if r := Score(v, Scale2); deref(r.SubScores.SpO2) != 1 {
		t.Errorf("scale 2 at 86%% scores 1 whatever the oxygen: %+v", r.SubScores)
	}
}

func deref(p *int) int {
	if p == nil {
		return -1
	}
	return *p
}
