package escalation

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nightcall-health/nightcall/events"
)

func TestObservationsStale(t *testing.T) {
	raised := time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC)
	cases := []struct {
		name  string
		age   time.Duration
		stale bool
	}{
		{"just taken", 0, false},
		{"59 minutes", 59 * time.Minute, false},
		{"exactly an hour", time.Hour, false},
		{"an hour and a second", time.Hour + time.Second, true},
		{"three hours", 3 * time.Hour, true},
		{"taken after the raise (clock skew)", -2 * time.Minute, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := ObservationsStale(raised.Add(-c.age), raised); got != c.stale {
				t.Errorf("ObservationsStale(age %v) = %v, want %v", c.age, got, c.stale)
			}
			esc := &EscalationView{RaisedAt: raised, Observations: &Observations{TakenAt: raised.Add(-c.age)}}
			if got := esc.ObservationsStale(); got != c.stale {
				t.Errorf("Escalation.ObservationsStale(age %v) = %v, want %v", c.age, got, c.stale)
			}
		})
	}
	if (&EscalationView{RaisedAt: raised}).ObservationsStale() {
		t.Error("an escalation on soft signs alone is flagged stale")
	}
	var none *EscalationView
	if none.ObservationsStale() {
		t.Error("a nil escalation is flagged stale")
	}
}

// The stale flag is computed from the escalation the resident's stream
// rebuilds, so it is the same after a restart.
func TestRaiseOnOldObservationsIsStale(t *testing.T) {
	now := time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC)
	r := &Resident{}
	r.apply(&ResidentAdmitted{ResidentID: "r1", CareHomeID: "h1", Name: "Test", SpO2Scale: 1}, now)
	for _, c := range []struct {
		takenAt time.Time
		stale   bool
	}{{now.Add(-90 * time.Minute), true}, {now.Add(-10 * time.Minute), false}} {
		obs, err := parseAt(`{"respiration_rate":16,"spo2":97,"systolic_bp":120,"pulse":70,"consciousness":"A","temperature":37.0,"taken_at":"`+c.takenAt.Format(time.RFC3339)+`"}`, now)
		if err != nil {
			t.Fatal(err)
		}
		id := EscalationID("e-" + c.takenAt.Format("1504"))
		esc, err := r.Raise(id, &obs, nil, SBARD{Situation: "unwell"}, Actor{Person: Person{Username: "n"}, Role: RoleCareHome, CareHomeID: "h1"}, now)
		if err != nil {
			t.Fatal(err)
		}
		if esc.ObservationsStale() != c.stale {
			t.Errorf("taken %v before the raise: stale %v, want %v", now.Sub(c.takenAt), esc.ObservationsStale(), c.stale)
		}
		if err := r.Withdraw(id, "test", Actor{Person: Person{Username: "n"}}, now); err != nil {
			t.Fatal(err)
		}
	}
}

func parseAt(js string, now time.Time) (Observations, error) {
	var in ObservationsInput
	if err := json.Unmarshal([]byte(js), &in); err != nil {
		return Observations{}, err
	}
	return in.Parse("observations", now)
}

func TestCarePlanReviewOverdue(t *testing.T) {
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	noon := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name    string
		due     string
		now     time.Time
		loc     *time.Location
		overdue bool
	}{
		{"due yesterday", "2026-11-30", noon, london, true},
		{"due today", "2026-12-01", noon, london, false},
		{"due tomorrow", "2026-12-02", noon, london, false},
		{"due a year ago", "2025-12-01", noon, london, true},
		{"no review date", "", noon, london, false},
		{"unreadable review date", "next spring", noon, london, false},
		// 23:30 UTC on 1 June is 00:30 on 2 June in London (BST): the plan
		// due on 1 June is overdue there, but not yet on the UTC calendar.
		{"after midnight in London, before it in UTC", "2026-06-01", time.Date(2026, 6, 1, 23, 30, 0, 0, time.UTC), london, true},
		{"the same instant on the UTC calendar", "2026-06-01", time.Date(2026, 6, 1, 23, 30, 0, 0, time.UTC), time.UTC, false},
		{"no location means UTC", "2026-06-01", time.Date(2026, 6, 2, 0, 30, 0, 0, time.UTC), nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := &AdvanceCarePlan{ReviewDue: c.due}
			if got := p.ReviewOverdue(c.now, c.loc); got != c.overdue {
				t.Errorf("review due %q at %v: overdue %v, want %v", c.due, c.now, got, c.overdue)
			}
		})
	}
	var none *AdvanceCarePlan
	if none.ReviewOverdue(noon, london) {
		t.Error("no plan at all is called overdue")
	}
}

func TestHeldBy(t *testing.T) {
	env := func(v int64, e Event) events.Envelope {
		data, err := marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		return events.Envelope{Stream: "resident-r1", Version: v, Type: e.EventType(), Data: data}
	}
	envs := []events.Envelope{
		env(1, &ResidentAdmitted{ResidentID: "r1", CareHomeID: "rose", Name: "Test"}),
		env(2, &ResidentMoved{From: "rose", To: "elm"}),
		env(3, &ResidentMoved{From: "elm", To: "oak"}),
	}
	for home, want := range map[CareHomeID]bool{"rose": true, "elm": true, "oak": true, "ash": false} {
		got, err := HeldBy(envs, home)
		if err != nil || got != want {
			t.Errorf("HeldBy(%s) = %v, %v; want %v", home, got, err, want)
		}
	}
	if !errors.Is(ErrResidentMoved, ErrResidentInactive) {
		t.Error("ErrResidentMoved is not a kind of ErrResidentInactive")
	}
}

func TestOxygenFlow(t *testing.T) {
	now := time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC)
	base := `"respiration_rate":16,"spo2":97,"systolic_bp":120,"pulse":70,"consciousness":"A","temperature":37.0`
	good := map[string]Tenths{"0.5": 5, "2": 20, "2.25": 23, "15": 150, "14.95": 150}
	for in, want := range good {
		o, err := parseAt(`{`+base+`,"on_oxygen":true,"oxygen_litres_per_min":`+in+`}`, now)
		if err != nil {
			t.Fatalf("%s L/min: %v", in, err)
		}
		if o.OxygenLitresPerMin == nil || *o.OxygenLitresPerMin != want {
			t.Errorf("%s L/min: got %v, want %d tenths", in, o.OxygenLitresPerMin, want)
		}
	}
	o, err := parseAt(`{`+base+`,"on_oxygen":true}`, now)
	if err != nil || o.OxygenLitresPerMin != nil {
		t.Errorf("no flow given: %v, %v", o.OxygenLitresPerMin, err)
	}
	b, _ := json.Marshal(Tenths(20))
	if string(b) != "2.0" {
		t.Errorf("2 L/min is written %s", b)
	}
	bad := []struct {
		name, js string
		kind     ErrorKind
	}{
		{"below 0.5", `"on_oxygen":true,"oxygen_litres_per_min":0.4`, KindImplausible},
		{"zero", `"on_oxygen":true,"oxygen_litres_per_min":0`, KindImplausible},
		{"negative", `"on_oxygen":true,"oxygen_litres_per_min":-2`, KindImplausible},
		{"over 15", `"on_oxygen":true,"oxygen_litres_per_min":15.1`, KindImplausible},
		{"not a number", `"on_oxygen":true,"oxygen_litres_per_min":"2"`, KindInvalidJSON},
		{"on air", `"on_oxygen":false,"oxygen_litres_per_min":2`, KindInconsistent},
		{"air by default", `"oxygen_litres_per_min":2`, KindInconsistent},
		{"oxygen marked absent", `"absent":{"on_oxygen":"refused"},"oxygen_litres_per_min":2`, KindInconsistent},
	}
	for _, c := range bad {
		_, err := parseAt(`{`+base+`,`+c.js+`}`, now)
		var in *InputError
		if !errors.As(err, &in) || in.Kind != c.kind || in.Field != "observations.oxygen_litres_per_min" {
			t.Errorf("%s: got %v, want %s on observations.oxygen_litres_per_min", c.name, err, c.kind)
		}
	}
}
