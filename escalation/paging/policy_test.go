package paging

import (
	"fmt"
	"testing"
	"time"

	"github.com/nightcall-health/nightcall/escalation"
)

var (
	t0     = time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC)
	levels = [][]escalation.Username{{"l1"}, {"l2"}}
	policy = Policy{PageTimeout: 60 * time.Second, ReceiptTimeout: 15 * time.Second}
)

func raised() *State {
	s := &State{}
	s.Apply(&escalation.EscalationRaised{EscalationID: "e"}, t0, 0)
	return s
}

func kinds(acts []Action) string {
	out := ""
	for _, a := range acts {
		out += a.Kind
		if a.Kind == ActPage {
			out += fmt.Sprintf("(L%d R%d)", a.Level, a.Round)
		}
		if a.Kind == ActTimeOut {
			out += "(" + a.Reason + ")"
		}
		out += " "
	}
	return out
}

func page(s *State, level, round int, at time.Time) {
	s.Apply(&escalation.Paged{EscalationID: "e", PageID: fmt.Sprintf("p%d-%d", round, level), Level: level, Round: round}, at, s.Version+1)
}

func TestPolicyWalk(t *testing.T) {
	s := raised()
	acts, _ := policy.Decide(s, levels, t0)
	if kinds(acts) != "page(L1 R0) " {
		t.Fatalf("at raise: %s", kinds(acts))
	}
	page(s, 1, 0, t0)
	s.Apply(&escalation.PageReceived{PageReceipt: escalation.PageReceipt{PageID: "p0-1", Device: "d"}}, t0.Add(time.Second), s.Version+1)
	acts, due := policy.Decide(s, levels, t0.Add(30*time.Second))
	if len(acts) != 0 || !due.Equal(t0.Add(60*time.Second)) {
		t.Fatalf("received, waiting: %s due %v", kinds(acts), due)
	}
	acts, _ = policy.Decide(s, levels, t0.Add(60*time.Second))
	if kinds(acts) != "time_out(not_accepted) page(L2 R0) " {
		t.Fatalf("page timeout: %s", kinds(acts))
	}
	// Level 2 never receives: the receipt timeout ends its wait early.
	s.Apply(&escalation.PageTimedOut{PageID: "p0-1"}, t0.Add(60*time.Second), s.Version+1)
	page(s, 2, 0, t0.Add(60*time.Second))
	acts, due = policy.Decide(s, levels, t0.Add(61*time.Second))
	if len(acts) != 0 || !due.Equal(t0.Add(75*time.Second)) {
		t.Fatalf("level 2 waiting for receipt: %s due %v", kinds(acts), due)
	}
	acts, _ = policy.Decide(s, levels, t0.Add(75*time.Second))
	if kinds(acts) != "time_out(no_receipt) " {
		t.Fatalf("last level times out: %s", kinds(acts))
	}
	s.Apply(&escalation.PageTimedOut{PageID: "p0-2"}, t0.Add(75*time.Second), s.Version+1)
	acts, due = policy.Decide(s, levels, t0.Add(75*time.Second))
	if kinds(acts) != "unanswered " || !due.Equal(t0.Add(135*time.Second)) {
		t.Fatalf("every level timed out: %s due %v", kinds(acts), due)
	}
	s.Apply(&escalation.EscalationUnanswered{EscalationID: "e"}, t0.Add(75*time.Second), 0)
	acts, _ = policy.Decide(s, levels, t0.Add(135*time.Second))
	if kinds(acts) != "page(L1 R1) " {
		t.Fatalf("next round: %s", kinds(acts))
	}
	// Accepting closes it: nothing more to do.
	s.Apply(&escalation.EscalationAccepted{EscalationID: "e", By: escalation.Person{Username: "l1"}}, t0.Add(140*time.Second), 0)
	if acts, due := policy.Decide(s, levels, t0.Add(999*time.Second)); len(acts) != 0 || !due.IsZero() {
		t.Fatalf("after accept: %s %v", kinds(acts), due)
	}
}

func TestRoundGapsBackOffToTenMinutes(t *testing.T) {
	p := Policy{PageTimeout: time.Minute}
	want := []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 10 * time.Minute, 10 * time.Minute}
	for i, w := range want {
		if got := p.RoundGap(i + 1); got != w {
			t.Errorf("round %d gap %v, want %v", i+1, got, w)
		}
	}
}

func TestNobodyOnCall(t *testing.T) {
	s := raised()
	acts, due := policy.Decide(s, nil, t0)
	if kinds(acts) != "unanswered " || due.IsZero() {
		t.Fatalf("empty rota: %s %v", kinds(acts), due)
	}
	s.Apply(&escalation.EscalationUnanswered{EscalationID: "e"}, t0, 0)
	if acts, _ := policy.Decide(s, nil, t0.Add(time.Second)); len(acts) != 0 {
		t.Fatalf("unanswered recorded once: %s", kinds(acts))
	}
	// Someone comes on call: paging starts.
	if acts, _ := policy.Decide(s, levels, t0.Add(2*time.Second)); kinds(acts) != "page(L1 R0) " {
		t.Fatalf("rota filled: %s", kinds(acts))
	}
}

func TestJoinOverdueOnceAfterTheJoinTimeout(t *testing.T) {
	p := policy
	p.JoinTimeout = 5 * time.Minute
	s := raised()
	page(s, 1, 0, t0)
	accepted := t0.Add(time.Minute)
	s.Apply(&escalation.EscalationAccepted{EscalationID: "e", By: escalation.Person{Username: "l1"}}, accepted, 0)
	if !s.Tracked() || s.Open() {
		t.Fatalf("accepted, not joined: tracked %v open %v", s.Tracked(), s.Open())
	}
	acts, due := p.Decide(s, levels, accepted.Add(time.Minute))
	if len(acts) != 0 || !due.Equal(accepted.Add(5*time.Minute)) {
		t.Fatalf("waiting for the join: %s due %v", kinds(acts), due)
	}
	acts, _ = p.Decide(s, levels, accepted.Add(5*time.Minute))
	if kinds(acts) != "join_overdue " || len(acts[0].Consultants) != 1 || acts[0].Consultants[0] != "l1" {
		t.Fatalf("at the join timeout: %s %v", kinds(acts), acts)
	}
	s.Apply(&escalation.JoinOverdue{EscalationID: "e", PageID: "again", Consultant: "l1"}, accepted.Add(5*time.Minute), s.Version+1)
	if acts, due := p.Decide(s, levels, accepted.Add(time.Hour)); len(acts) != 0 || !due.IsZero() {
		t.Fatalf("overdue once only: %s %v", kinds(acts), due)
	}
	if pg := s.Page("again"); pg == nil || pg.Level != 0 || pg.Consultants[0] != "l1" {
		t.Fatalf("the page again is not on record: %+v", pg)
	}
	s.Apply(&escalation.CallParticipantJoined{CallParticipant: escalation.CallParticipant{EscalationID: "e", Role: escalation.CallRoleConsultant}}, accepted.Add(6*time.Minute), 0)
	if s.Tracked() {
		t.Fatal("still tracked after the consultant joined")
	}

	// A consultant who joins in time is never overdue; no join timeout, never.
	s2 := raised()
	page(s2, 1, 0, t0)
	s2.Apply(&escalation.EscalationAccepted{EscalationID: "e", By: escalation.Person{Username: "l1"}}, accepted, 0)
	s2.Apply(&escalation.CallParticipantJoined{CallParticipant: escalation.CallParticipant{EscalationID: "e", Role: escalation.CallRoleCareHome}}, accepted, 0)
	if !s2.Tracked() {
		t.Fatal("the home joining is not the consultant joining")
	}
	if acts, _ := policy.Decide(s2, levels, accepted.Add(time.Hour)); len(acts) != 0 {
		t.Fatalf("with no join timeout: %s", kinds(acts))
	}
}

// TestUnansweredOwedAfterARePage: when recording unanswered failed but the
// re-page went out, the policy still owes unanswered; one never loses the other.
func TestUnansweredOwedAfterARePage(t *testing.T) {
	s := raised()
	page(s, 1, 0, t0)
	s.Apply(&escalation.PageTimedOut{PageID: "p0-1"}, t0.Add(time.Minute), s.Version+1)
	page(s, 2, 0, t0.Add(time.Minute))
	s.Apply(&escalation.PageTimedOut{PageID: "p0-2"}, t0.Add(2*time.Minute), s.Version+1)
	// unanswered failed to record; round 1 began anyway.
	page(s, 1, 1, t0.Add(3*time.Minute))
	acts, _ := policy.Decide(s, levels, t0.Add(3*time.Minute+time.Second))
	if kinds(acts) != "unanswered " {
		t.Fatalf("owed unanswered while round 1 waits: %s", kinds(acts))
	}
	s.Apply(&escalation.EscalationUnanswered{EscalationID: "e"}, t0.Add(3*time.Minute+time.Second), 0)
	if acts, _ := policy.Decide(s, levels, t0.Add(3*time.Minute+2*time.Second)); len(acts) != 0 {
		t.Fatalf("once recorded: %s", kinds(acts))
	}
}
