package escalation

import (
	"fmt"
	"testing"
	"time"
)

func london(t *testing.T) *time.Location {
	loc, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// Weekday nights 18:30–08:00 and whole weekends, as a real rota would have them.
func nightsAndWeekends() *Rota {
	two := 2
	return &Rota{Shifts: []Shift{
		{ID: "weeknights", Days: []string{"mon", "tue", "wed", "thu", "fri"}, Start: "18:30", End: "08:00", Levels: [][]Username{{"night1"}, {"night2"}}},
		{ID: "weekend", Days: []string{"sat"}, Start: "08:00", End: "08:00", EndDayOffset: &two, Levels: [][]Username{{"wkend1"}}},
	}}
}

func TestShiftBoundariesAcrossDaylightSaving(t *testing.T) {
	loc := london(t)
	r := &Rota{Shifts: []Shift{{ID: "sat-night", Days: []string{"sat"}, Start: "18:30", End: "08:00", Levels: [][]Username{{"dr"}}}}}
	cases := []struct {
		instant string
		on      bool
	}{
		// 2026-03-29: clocks go forward at 01:00 UTC. Sat 18:30 GMT = 18:30Z; Sun 08:00 BST = 07:00Z.
		{"2026-03-28T18:29:59Z", false}, {"2026-03-28T18:30:00Z", true},
		{"2026-03-29T06:59:59Z", true}, {"2026-03-29T07:00:00Z", false},
		// 2026-10-25: clocks go back at 01:00 UTC. Sat 18:30 BST = 17:30Z; Sun 08:00 GMT = 08:00Z.
		{"2026-10-24T17:29:59Z", false}, {"2026-10-24T17:30:00Z", true},
		{"2026-10-25T07:59:59Z", true}, {"2026-10-25T08:00:00Z", false},
	}
	for _, c := range cases {
		got := len(r.LevelsAt(at(c.instant), loc)) > 0
		if got != c.on {
			t.Errorf("%s: on call %v, want %v", c.instant, got, c.on)
		}
	}
}

func TestNightsWeekendsAndOverrides(t *testing.T) {
	loc := london(t)
	r := nightsAndWeekends()
	cases := []struct {
		instant string
		want    string
	}{
		{"2026-11-23T12:00:00Z", "[]"},                  // Monday daytime: in hours
		{"2026-11-23T18:30:00Z", "[[night1] [night2]]"}, // Monday night
		{"2026-11-24T07:59:00Z", "[[night1] [night2]]"}, // Tuesday early morning
		{"2026-11-24T08:00:00Z", "[]"},
		{"2026-11-28T07:59:00Z", "[[night1] [night2]]"}, // Friday night into Saturday
		{"2026-11-28T08:00:00Z", "[[wkend1]]"},          // Saturday 08:00: weekend starts
		{"2026-11-30T07:59:00Z", "[[wkend1]]"},          // Monday 07:59: weekend still
		{"2026-11-30T08:00:00Z", "[]"},
	}
	for _, c := range cases {
		if got := fmt.Sprint(r.LevelsAt(at(c.instant), loc)); got != c.want {
			t.Errorf("%s: %s, want %s", c.instant, got, c.want)
		}
	}
	// An override puts night3 in night1's place for one night only.
	r.apply(&RotaOverrideSet{Override: Override{ID: "o1", From: at("2026-11-23T18:30:00Z"), To: at("2026-11-24T08:00:00Z"), Covered: "night1", By: "night3"}})
	if got := fmt.Sprint(r.LevelsAt(at("2026-11-23T20:00:00Z"), loc)); got != "[[night3] [night2]]" {
		t.Errorf("override night: %s", got)
	}
	if got := fmt.Sprint(r.LevelsAt(at("2026-11-24T20:00:00Z"), loc)); got != "[[night1] [night2]]" {
		t.Errorf("the next night: %s", got)
	}
	// Standing levels merge with shifts by level, each consultant once.
	r.apply(&RotaLevelsSet{Levels: [][]Username{{"always"}, {"night2"}}})
	if got := fmt.Sprint(r.LevelsAt(at("2026-11-24T20:00:00Z"), loc)); got != "[[always night1] [night2]]" {
		t.Errorf("standing plus shift: %s", got)
	}
}

func TestShiftValidation(t *testing.T) {
	bad := []Shift{
		{ID: "", Days: []string{"mon"}, Start: "18:30", End: "08:00", Levels: [][]Username{{"a"}}},
		{ID: "x", Days: []string{"monday"}, Start: "18:30", End: "08:00", Levels: [][]Username{{"a"}}},
		{ID: "x", Days: []string{"mon"}, Start: "25:00", End: "08:00", Levels: [][]Username{{"a"}}},
		{ID: "x", Days: []string{"mon"}, Start: "18:30", End: "8:00", Levels: [][]Username{{"a"}}},
		{ID: "x", Days: []string{"mon"}, Start: "18:30", End: "08:00", Levels: [][]Username{{}}},
		{ID: "x", Days: []string{"mon"}, Start: "18:30", End: "08:00"},
	}
	for i, s := range bad {
		if s.Validate() == nil {
			t.Errorf("case %d accepted: %+v", i, s)
		}
	}
}
