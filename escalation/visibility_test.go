package escalation

import (
	"testing"
	"time"
)

// TestAcceptedConsultantReadsFor72HoursAfterTheDecision: the consultant who
// accepted reads the escalation (and so the resident) while it is open and
// for 72 hours after the decision or withdrawal, not forever; others never.
func TestAcceptedConsultantReadsFor72HoursAfterTheDecision(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	okafor := Actor{Person: Person{Username: "dr.okafor"}, Role: RoleConsultant}
	patel := Actor{Person: Person{Username: "dr.patel"}, Role: RoleConsultant}
	accepted := &Person{Username: "dr.okafor"}
	decided := &EscalationView{Status: StatusDecided, AcceptedBy: accepted, Decision: &Decision{DecidedAt: t0}}
	withdrawn := &EscalationView{Status: StatusWithdrawn, AcceptedBy: accepted, Withdrawal: &Withdrawal{At: t0}}
	open := &EscalationView{Status: StatusAccepted, AcceptedBy: accepted}
	cases := []struct {
		name string
		a    Actor
		e    *EscalationView
		at   time.Time
		want bool
	}{
		{"open, accepted by me, a week on", okafor, open, t0.Add(7 * 24 * time.Hour), true},
		{"decided, 71h59m later", okafor, decided, t0.Add(72*time.Hour - time.Minute), true},
		{"decided, 72h later", okafor, decided, t0.Add(72 * time.Hour), false},
		{"withdrawn, 1h later", okafor, withdrawn, t0.Add(time.Hour), true},
		{"withdrawn, 4 days later", okafor, withdrawn, t0.Add(96 * time.Hour), false},
		{"decided, another consultant off call", patel, decided, t0.Add(time.Hour), false},
	}
	for _, c := range cases {
		if got := canSeeEscalation(c.a, c.e, false, c.at); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
		r := &ResidentView{Escalations: []EscalationView{*c.e}}
		if got := canSeeResident(c.a, r, c.at); got != c.want {
			t.Errorf("%s (resident record): %v, want %v", c.name, got, c.want)
		}
	}
}
