package escalation

import (
	"errors"
	"testing"
	"time"

	"github.com/nightcall-health/nightcall/escalation/news2"
	"github.com/nightcall-health/nightcall/events"
)

var t0 = time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)

func resident(scale news2.Scale, plan *AdvanceCarePlan) *Resident {
	r := &Resident{}
	r.apply(&ResidentAdmitted{ResidentID: "r1", CareHomeID: "h1", Name: "Test", SpO2Scale: scale}, t0)
	if plan != nil {
		r.apply(&CarePlanRecorded{Plan: *plan}, t0)
	}
	return r
}

var (
	staff = Actor{Person: Person{Username: "night"}, Role: RoleCareHome, CareHomeID: "h1"}
	drA   = Actor{Person: Person{Username: "a", Name: "Dr A"}, Role: RoleConsultant, OnCall: true}
	drB   = Actor{Person: Person{Username: "b", Name: "Dr B"}, Role: RoleConsultant, OnCall: true}
)

func obs(spo2 int, oxygen bool) *Observations {
	a := news2.Alert
	t := Tenths(370)
	rr, sbp, hr := 16, 120, 70
	return &Observations{RespirationRate: &rr, SpO2: &spo2, OnOxygen: &oxygen, SystolicBP: &sbp, Pulse: &hr, Consciousness: &a, Temperature: &t, TakenAt: t0}
}

func TestLifecycle(t *testing.T) {
	r := resident(news2.Scale1, nil)
	esc, err := r.Raise("e1", obs(97, false), nil, SBARD{Situation: "s"}, staff, t0)
	if err != nil || esc.Status != StatusPaging {
		t.Fatalf("raise: %v %v", esc, err)
	}
	if _, err := r.Raise("e2", obs(97, false), nil, SBARD{Situation: "s"}, staff, t0); !errors.Is(err, ErrEscalationOpen) {
		t.Fatalf("second raise while open: %v", err)
	}
	if err := r.Decide("e1", DecisionInput{Outcome: OutcomeStay, Counterfactual: CounterfactualED, Rationale: "r", Plan: "p"}, drA, t0); !errors.Is(err, ErrNotAccepted) {
		t.Fatalf("decide before accept: %v", err)
	}
	if err := r.Accept("e1", drA, t0); err != nil {
		t.Fatal(err)
	}
	n := len(r.pending)
	if err := r.Accept("e1", drA, t0); err != nil || len(r.pending) != n {
		t.Fatalf("same consultant again: %v, %d new events", err, len(r.pending)-n)
	}
	var aa *AlreadyAcceptedError
	if err := r.Accept("e1", drB, t0); !errors.As(err, &aa) || aa.By.Username != "a" {
		t.Fatalf("other consultant: %v", err)
	}
	if err := r.Decide("e1", DecisionInput{Outcome: OutcomeStay, Counterfactual: CounterfactualED, Rationale: "r", Plan: "p"}, drB, t0); !errors.Is(err, ErrForbidden) {
		t.Fatalf("decide by non-acceptor: %v", err)
	}
	if err := r.Decide("e1", DecisionInput{Outcome: OutcomeStay, Counterfactual: CounterfactualED, Rationale: "r", Plan: "p"}, drA, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := r.Withdraw("e1", "x", staff, t0); !errors.Is(err, ErrAlreadyDecided) {
		t.Fatalf("withdraw after decision: %v", err)
	}
	if e := r.Escalation("e1"); e.Status != StatusDecided || e.Decision.DecidedByName != "Dr A" || e.Decision.DecidedBy != "a" || len(e.Timeline) != 3 {
		t.Fatalf("decided escalation: %+v", e)
	}
	// Replaying the recorded events rebuilds the same state.
	evs, err := r.Pending("x", "", func() string { return time.Now().String() })
	if err != nil {
		t.Fatal(err)
	}
	envs := []events.Envelope{}
	for i, e := range evs {
		envs = append(envs, events.Envelope{ID: e.ID, Stream: "resident-r1", Version: int64(i + 2), Type: e.Type, RecordedAt: e.RecordedAt, Data: e.Data})
	}
	back := resident(news2.Scale1, nil)
	for _, env := range envs {
		if err := back.ApplyEnvelope(env); err != nil {
			t.Fatal(err)
		}
	}
	if got := back.Escalation("e1"); got == nil || got.Status != StatusDecided || got.Decision.Outcome != OutcomeStay || got.AcceptedBy.Username != "a" {
		t.Fatalf("rehydrated: %+v", got)
	}
}

func TestRaiseScoresOnTheResidentsScale(t *testing.T) {
	r := resident(news2.Scale2, nil)
	esc, err := r.Raise("e1", obs(90, false), nil, SBARD{Situation: "s"}, staff, t0)
	if err != nil {
		t.Fatal(err)
	}
	if *esc.NEWS2.SubScores.SpO2 != 0 {
		t.Errorf("90%% on Scale 2 scores %d, want 0", *esc.NEWS2.SubScores.SpO2)
	}
	r1 := resident(news2.Scale1, nil)
	esc1, _ := r1.Raise("e1", obs(90, false), nil, SBARD{Situation: "s"}, staff, t0)
	if *esc1.NEWS2.SubScores.SpO2 != 3 {
		t.Errorf("90%% on Scale 1 scores %d, want 3", *esc1.NEWS2.SubScores.SpO2)
	}
}

func TestAdvice(t *testing.T) {
	high := func() *news2.Result {
		o := obs(85, true)
		hr := 140
		o.Pulse = &hr
		s := news2.Score(o.Vitals(), news2.Scale1)
		return &s
	}()
	if a := AdviceFor(high, nil); a.Level != AdviceEmergency {
		t.Errorf("NEWS2 %d: %s", *high.Total, a.Level)
	}
	if a := AdviceFor(high, &AdvanceCarePlan{HospitalAdmission: "not_wanted"}); a.Level != AdviceEmergency || a.Text == AdviceFor(high, nil).Text {
		t.Errorf("emergency with admission not wanted should say so: %+v", a)
	}
	three := func() *news2.Result { s := news2.Score(obs(91, false).Vitals(), news2.Scale1); return &s }()
	if a := AdviceFor(three, nil); a.Level != AdviceUrgent {
		t.Errorf("single 3: %s", a.Level)
	}
	low := func() *news2.Result { s := news2.Score(obs(97, false).Vitals(), news2.Scale1); return &s }()
	if a := AdviceFor(low, nil); a.Level != AdviceRoutine {
		t.Errorf("NEWS2 0: %s", a.Level)
	}
	if a := AdviceFor(nil, nil); a.Level != AdviceRoutine {
		t.Errorf("soft signs only: %s", a.Level)
	}
}

func TestInactiveResidentCannotBeEscalated(t *testing.T) {
	r := resident(news2.Scale1, nil)
	r.apply(&ResidentDied{At: t0}, t0)
	if _, err := r.Raise("e1", obs(97, false), nil, SBARD{Situation: "s"}, staff, t0); !errors.Is(err, ErrResidentInactive) {
		t.Fatalf("raise for a resident who died: %v", err)
	}
}

func TestProjectionIgnoresRedelivery(t *testing.T) {
	p := NewProjection(time.UTC)
	raised := &EscalationRaised{EscalationID: "e1", CareHomeID: "h1", SBARD: SBARD{Situation: "s"}}
	admitted := &ResidentAdmitted{ResidentID: "r1", CareHomeID: "h1"}
	var envs []events.Envelope
	for i, e := range []Event{admitted, raised} {
		data, _ := marshal(e)
		envs = append(envs, events.Envelope{ID: string(rune('a' + i)), Stream: "resident-r1", Version: int64(i + 1), Position: int64(i + 1), Type: e.EventType(), Data: data})
	}
	for _, env := range append(envs, envs...) { // every event delivered twice
		if err := p.Apply(env); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(p.Escalations()); n != 1 || p.Position() != 2 {
		t.Fatalf("after redelivery: %d escalations at %d, want 1 at 2", n, p.Position())
	}
	if rid, ok := p.ResidentOf("e1"); !ok || rid != "r1" {
		t.Fatalf("index: %v %v", rid, ok)
	}
}
