package escalation

import (
	"fmt"
	"strings"
	"testing"

	"github.com/nightcall-health/nightcall/escalation/news2"
)

// The seven NEWS2 inputs, each with values on both sides of every band edge.
var partialParams = []struct {
	name   string
	values []int
	set    func(*news2.Vitals, int)
	clear  func(*news2.Vitals)
}{
	{"respiration_rate", []int{8, 9, 11, 12, 20, 21, 24, 25}, func(v *news2.Vitals, x int) { v.RespirationRate = &x }, func(v *news2.Vitals) { v.RespirationRate = nil }},
	{"spo2", []int{91, 92, 93, 94, 95, 96}, func(v *news2.Vitals, x int) { v.SpO2 = &x }, func(v *news2.Vitals) { v.SpO2 = nil }},
	{"on_oxygen", []int{0, 1}, func(v *news2.Vitals, x int) { b := x == 1; v.OnOxygen = &b }, func(v *news2.Vitals) { v.OnOxygen = nil }},
	{"systolic_bp", []int{90, 91, 100, 101, 110, 111, 219, 220}, func(v *news2.Vitals, x int) { v.SystolicBP = &x }, func(v *news2.Vitals) { v.SystolicBP = nil }},
	{"pulse", []int{40, 41, 50, 51, 90, 91, 110, 111, 130, 131}, func(v *news2.Vitals, x int) { v.Pulse = &x }, func(v *news2.Vitals) { v.Pulse = nil }},
	{"consciousness", []int{0, 1}, func(v *news2.Vitals, x int) {
		c := news2.Alert
		if x == 1 {
			c = news2.NewConfusion
		}
		v.Consciousness = &c
	}, func(v *news2.Vitals) { v.Consciousness = nil }},
	{"temperature", []int{350, 351, 360, 361, 380, 381, 390, 391}, func(v *news2.Vitals, x int) { v.TemperatureTenths = &x }, func(v *news2.Vitals) { v.TemperatureTenths = nil }},
}

// A mildly unwell base set (RR 22 → 2, pulse 112 → 2, 38.4 °C → 1, SpO2 95 → 1)
// so that one edge value moves the known sum across 5 and 7.
func partialBase() news2.Vitals {
	rr, spo2, bp, hr, temp := 22, 95, 120, 112, 384
	air, a := false, news2.Alert
	return news2.Vitals{RespirationRate: &rr, SpO2: &spo2, OnOxygen: &air, SystolicBP: &bp, Pulse: &hr, Consciousness: &a, TemperatureTenths: &temp}
}

func subscoreOf(s news2.SubScores, name string) *int {
	switch name {
	case "respiration_rate":
		return s.RespirationRate
	case "spo2":
		return s.SpO2
	case "on_oxygen":
		return s.AirOrOxygen
	case "systolic_bp":
		return s.SystolicBP
	case "pulse":
		return s.Pulse
	case "consciousness":
		return s.Consciousness
	default:
		return s.Temperature
	}
}

var adviceRank = map[AdviceLevel]int{AdviceRoutine: 0, AdviceUrgent: 1, AdviceEmergency: 2}

// required is what the known sub-scores alone call for (CLINICAL.md, "Partial
// sets"), worked out here from the complete set's own sub-scores.
func required(full news2.SubScores, absent map[string]bool) (AdviceLevel, int) {
	sum, three := 0, false
	for _, p := range partialParams {
		if absent[p.name] {
			continue
		}
		// On Scale 1 the SpO2 sub-score does not depend on air or oxygen,
		// so it stays known when on_oxygen is absent.
		v := subscoreOf(full, p.name)
		sum += *v
		three = three || *v == 3
	}
	switch {
	case sum >= 7:
		return AdviceEmergency, sum
	case sum >= 5 || three:
		return AdviceUrgent, sum
	}
	return AdviceRoutine, sum
}

// TestPartialSetsNeverUnderTriage varies every parameter across its band
// edges with one and with two other parameters absent: the advice is never
// lower than the known sub-scores call for, the bound is the known sum, no
// total is shown, and no completion of the missing values scores lower.
func TestPartialSetsNeverUnderTriage(t *testing.T) {
	checked := 0
	for _, varied := range partialParams {
		for _, value := range varied.values {
			full := partialBase()
			varied.set(&full, value)
			fullScore := news2.Score(full, news2.Scale1)
			var absentSets []map[string]bool
			for i, a := range partialParams {
				if a.name == varied.name {
					continue
				}
				absentSets = append(absentSets, map[string]bool{a.name: true})
				for _, b := range partialParams[i+1:] {
					if b.name != varied.name {
						absentSets = append(absentSets, map[string]bool{a.name: true, b.name: true})
					}
				}
			}
			for _, absent := range absentSets {
				v := full
				var names []string
				for _, p := range partialParams {
					if absent[p.name] {
						p.clear(&v)
						names = append(names, p.name)
					}
				}
				name := fmt.Sprintf("%s=%d/absent=%s", varied.name, value, strings.Join(names, "+"))
				got := news2.Score(v, news2.Scale1)
				want, sum := required(fullScore.SubScores, absent)
				adv := AdviceFor(&got, nil)
				checked++
				if !got.Partial || got.Total != nil || got.Risk != nil {
					t.Errorf("%s: a partial set must have no total: %+v", name, got)
				}
				if got.AtLeast == nil || *got.AtLeast != sum || got.Bound() != sum {
					t.Errorf("%s: at_least %v, want the known sum %d", name, got.AtLeast, sum)
				}
				if adviceRank[adv.Level] < adviceRank[want] {
					t.Errorf("%s: advice %s, but the known sub-scores (sum %d) call for %s", name, adv.Level, sum, want)
				}
				if !strings.Contains(got.Label(), fmt.Sprintf("partial, at least %d", sum)) {
					t.Errorf("%s: label %q", name, got.Label())
				}
				if fullAdv := AdviceFor(&fullScore, nil); adviceRank[adv.Level] > adviceRank[fullAdv.Level] {
					t.Errorf("%s: partial advice %s above the complete set's %s: the bound is not a lower bound", name, adv.Level, fullAdv.Level)
				}
			}
		}
	}
	if checked < 900 {
		t.Fatalf("only %d partial sets checked", checked)
	}
}

// TestPartialSetFromTheIssue is the live hazard: 2+2+0+2+0+1 = 7 with blood
// pressure refused was advised "routine".
func TestPartialSetFromTheIssue(t *testing.T) {
	v := partialBase()
	spo2 := 93
	v.SpO2, v.SystolicBP = &spo2, nil
	s := news2.Score(v, news2.Scale1)
	adv := AdviceFor(&s, nil)
	if adv.Level != AdviceEmergency || !strings.Contains(adv.Text, "call 999") || !strings.Contains(adv.Text, "partial, at least 7") {
		t.Fatalf("advice %+v, want emergency saying partial, at least 7 and call 999", adv)
	}
	if s.RiskAtLeast == nil || *s.RiskAtLeast != news2.RiskHigh {
		t.Fatalf("risk_at_least %v, want high", s.RiskAtLeast)
	}
}
