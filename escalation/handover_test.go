package escalation

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nightcall-health/nightcall/escalation/news2"
)

// TestHandoverWindowAcrossDST: a handover runs from 08:00 local the day
// before to 08:00 local on its date, so it is 23 hours long on the day the
// clocks go forward and 25 on the day they go back, and each one ends
// exactly where the next begins, every day of the year.
func TestHandoverWindowAcrossDST(t *testing.T) {
	loc := london(t)
	for _, c := range []struct {
		date     string
		from, to string // UTC
		hours    float64
	}{
		{"2026-01-15", "2026-01-14T08:00:00Z", "2026-01-15T08:00:00Z", 24},
		{"2026-03-29", "2026-03-28T08:00:00Z", "2026-03-29T07:00:00Z", 23}, // BST starts 01:00 UTC on 29 March
		{"2026-03-30", "2026-03-29T07:00:00Z", "2026-03-30T07:00:00Z", 24},
		{"2026-10-25", "2026-10-24T07:00:00Z", "2026-10-25T08:00:00Z", 25}, // BST ends 01:00 UTC on 25 October
		{"2026-03-01", "2026-02-28T08:00:00Z", "2026-03-01T08:00:00Z", 24}, // across a month
		{"2027-01-01", "2026-12-31T08:00:00Z", "2027-01-01T08:00:00Z", 24}, // across a year
		{"2028-03-01", "2028-02-29T08:00:00Z", "2028-03-01T08:00:00Z", 24}, // a leap day
	} {
		from, to, err := HandoverWindow(c.date, loc)
		if err != nil {
			t.Fatalf("%s: %v", c.date, err)
		}
		if got := from.UTC().Format(time.RFC3339); got != c.from {
			t.Errorf("%s: from %s, want %s", c.date, got, c.from)
		}
		if got := to.UTC().Format(time.RFC3339); got != c.to {
			t.Errorf("%s: to %s, want %s", c.date, got, c.to)
		}
		if h := to.Sub(from).Hours(); h != c.hours {
			t.Errorf("%s: %v hours long, want %v", c.date, h, c.hours)
		}
		if from.In(loc).Hour() != 8 || to.In(loc).Hour() != 8 {
			t.Errorf("%s: window %v – %v is not 08:00 to 08:00 local", c.date, from.In(loc), to.In(loc))
		}
	}
	// Consecutive handovers tile time: no gap, no overlap, all year round.
	day := time.Date(2026, 1, 1, 12, 0, 0, 0, loc)
	for i := 0; i < 400; i++ {
		d := day.AddDate(0, 0, i).Format(time.DateOnly)
		next := day.AddDate(0, 0, i+1).Format(time.DateOnly)
		_, to, _ := HandoverWindow(d, loc)
		from, _, _ := HandoverWindow(next, loc)
		if !to.Equal(from) {
			t.Fatalf("handover %s ends %v but %s begins %v", d, to, next, from)
		}
	}
	for _, bad := range []struct{ date, kind string }{{"", "missing_field"}, {"2026-02-30", "invalid_value"}, {"24/11/2026", "invalid_value"}, {"2026-11-24T08:00", "invalid_value"}} {
		_, _, err := HandoverWindow(bad.date, loc)
		var ie *InputError
		if !errors.As(err, &ie) || string(ie.Kind) != bad.kind || ie.Field != "date" {
			t.Errorf("date %q: %v, want %s on date", bad.date, err, bad.kind)
		}
	}
}

// TestHandoverDateForEdges: the instant 08:00 local belongs to the next
// handover, the instant before it to the one ending then; on DST days too.
func TestHandoverDateForEdges(t *testing.T) {
	loc := london(t)
	for _, c := range []struct {
		at   time.Time
		want string
	}{
		{time.Date(2026, 11, 24, 7, 59, 59, 999999999, loc), "2026-11-24"},
		{time.Date(2026, 11, 24, 8, 0, 0, 0, loc), "2026-11-25"},
		{time.Date(2026, 11, 24, 0, 0, 0, 0, loc), "2026-11-24"},
		{time.Date(2026, 11, 23, 23, 59, 0, 0, loc), "2026-11-24"},
		{time.Date(2026, 3, 29, 7, 59, 59, 0, loc), "2026-03-29"}, // 06:59:59 UTC
		{time.Date(2026, 3, 29, 7, 0, 0, 0, time.UTC), "2026-03-30"},
		{time.Date(2026, 10, 25, 7, 59, 0, 0, time.UTC), "2026-10-25"}, // 07:59 GMT
		{time.Date(2026, 10, 25, 8, 0, 0, 0, time.UTC), "2026-10-26"},
		{time.Date(2026, 12, 31, 9, 0, 0, 0, loc), "2027-01-01"},
	} {
		got := HandoverDateFor(c.at, loc)
		if got != c.want {
			t.Errorf("HandoverDateFor(%v) = %s, want %s", c.at.In(loc), got, c.want)
		}
		from, to, _ := HandoverWindow(got, loc)
		if c.at.Before(from) || !c.at.Before(to) {
			t.Errorf("%v is not inside the window of %s [%v, %v)", c.at, got, from, to)
		}
	}
}

func handoverInt(v int) *int { return &v }

// handoverEsc is an escalation of rose-court raised at, in status st.
func handoverEsc(id string, at time.Time, st Status) *EscalationView {
	alert, air := news2.Alert, false
	obs := &Observations{RespirationRate: handoverInt(22), SpO2: handoverInt(93), OnOxygen: &air, Pulse: handoverInt(112), Consciousness: &alert,
		Temperature: func() *Tenths { v := Tenths(384); return &v }(), TakenAt: at.Add(-10 * time.Minute),
		Absent: map[string]AbsentReason{"systolic_bp": "refused"}}
	score := news2.Score(obs.Vitals(), news2.Scale1)
	e := &EscalationView{ID: EscalationID(id), ResidentID: "rc-101", CareHomeID: "rose-court", Status: st, RaisedAt: at,
		NEWS2: &score, Observations: obs, Advice: AdviceFor(&score, nil), SoftSigns: []SoftSign{}, FollowUps: []FollowUp{}}
	if st == StatusDecided {
		e.AcceptedBy = &Person{Username: "dr.okafor", Name: "Dr Chidi Okafor"}
		e.Decision = &Decision{Outcome: OutcomeStay, Counterfactual: CounterfactualED, Rationale: "r", Plan: "p",
			DecidedBy: "dr.okafor", DecidedByName: "Dr Chidi Okafor", DecidedAt: at.Add(20 * time.Minute)}
	}
	return e
}

// TestBuildHandoverBoundariesAndOrder: of escalations raised around the
// window's edges only those in [from, to) are handed over; the night's
// out-of-hours ones come first, each group in the order raised; a partial
// set is labelled by its lower bound, never a total; what is still open is
// listed.
func TestBuildHandoverBoundariesAndOrder(t *testing.T) {
	loc := london(t)
	const date = "2026-10-27" // a Tuesday, two days after the clocks went back
	from, to, _ := HandoverWindow(date, loc)
	ooh := func(t time.Time) bool { // the audit's rule, for weekdays: 18:30–08:00
		l := t.In(loc)
		m := l.Hour()*60 + l.Minute()
		return m < 8*60 || m >= 18*60+30
	}
	q := HandoverQuery{CareHomeID: "rose-court", Date: date, Location: loc, OutOfHours: ooh}
	day := func(h, m int) time.Time { return time.Date(2026, 10, 26, h, m, 0, 0, loc) }
	escs := []*EscalationView{
		handoverEsc("before", from.Add(-time.Nanosecond), StatusDecided),
		handoverEsc("at-from", from, StatusDecided),         // 08:00 Monday: in hours, first of the window
		handoverEsc("afternoon", day(14, 0), StatusDecided), // in hours
		handoverEsc("night-late", time.Date(2026, 10, 27, 3, 0, 0, 0, loc), StatusAccepted),
		handoverEsc("night-early", day(22, 15), StatusPaging),
		handoverEsc("last", to.Add(-time.Nanosecond), StatusWithdrawn),
		handoverEsc("at-to", to, StatusDecided), // 08:00 Tuesday belongs to Wednesday's handover
	}
	other := handoverEsc("other-home", day(23, 0), StatusDecided)
	other.CareHomeID = "elm-house"
	escs = append(escs, other)
	residents := func(id ResidentID) *ResidentView {
		return &ResidentView{ID: id, Name: "Margaret Ellis", Room: "12", NHSNumber: "9990000018", SpO2Scale: news2.Scale1}
	}
	now := time.Date(2026, 10, 27, 8, 30, 0, 0, loc)
	h := BuildHandover(CareHome{ID: "rose-court", Name: "Rose Court"}, q, escs, residents, now)

	var got []string
	for _, e := range h.Escalations {
		got = append(got, string(e.ID))
	}
	want := []string{"night-early", "night-late", "last", "at-from", "afternoon"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("handover holds %v, want %v", got, want)
	}
	if !h.From.Equal(from) || !h.To.Equal(to) || h.Date != date || h.TimeZone != "Europe/London" {
		t.Errorf("window %v – %v %s %s", h.From, h.To, h.Date, h.TimeZone)
	}
	if s := h.Summary; s.Escalations != 5 || s.OutOfHours != 3 || s.Stay != 2 || s.Withdrawn != 1 || s.StillOpen != 4 {
		t.Errorf("summary %+v", s)
	}
	for _, e := range h.Escalations {
		if e.NEWS2Label != "partial, at least 7" || e.NEWS2.Total != nil {
			t.Errorf("%s: NEWS2 shown as %q (total %v), want the lower bound", e.ID, e.NEWS2Label, e.NEWS2.Total)
		}
		if e.Resident.Name != "Margaret Ellis" {
			t.Errorf("%s: resident %+v", e.ID, e.Resident)
		}
	}
	open := map[string]string{}
	for _, e := range h.Escalations {
		if len(e.StillOpen) > 0 {
			open[string(e.ID)] = e.StillOpen[0].Code
		}
	}
	wantOpen := map[string]string{"night-early": "awaiting_consultant", "night-late": "awaiting_decision", "at-from": "follow_up_due", "afternoon": "follow_up_due"}
	if fmt.Sprint(open) != fmt.Sprint(wantOpen) {
		t.Errorf("still open %v, want %v", open, wantOpen)
	}
	stay := h.Escalations[3]
	if stay.Outcome == nil || *stay.Outcome != OutcomeStay || *stay.DecidedBy != "dr.okafor" || stay.FollowUpDueAt == nil ||
		!stay.FollowUpDueAt.Equal(stay.DecidedAt.Add(FollowUpWindow)) {
		t.Errorf("decided entry: %+v", stay)
	}
	if undecided := h.Escalations[0]; undecided.Outcome != nil || undecided.DecidedAt != nil || undecided.Plan != nil {
		t.Errorf("undecided entry has a decision: %+v", undecided)
	}
}

// TestMayReadHandover: staff of the home, admins and a GP bound to the home
// read it; another home's staff or GP are told it is not there; no other
// role reads handovers.
func TestMayReadHandover(t *testing.T) {
	for _, c := range []struct {
		actor Actor
		want  error
	}{
		{Actor{Role: RoleAdmin}, nil},
		{Actor{Role: RoleCareHome, CareHomeID: "rose-court"}, nil},
		{Actor{Role: RoleCareHome, CareHomeID: "elm-house"}, ErrNotFound},
		{Actor{Role: RoleGP, CareHomeIDs: []CareHomeID{"elm-house", "rose-court"}}, nil},
		{Actor{Role: RoleGP, CareHomeIDs: []CareHomeID{"elm-house"}}, ErrNotFound},
		{Actor{Role: RoleGP}, ErrNotFound},
		{Actor{Role: RoleGP, CareHomeID: "rose-court"}, ErrNotFound}, // a GP is bound through CareHomeIDs only
		{Actor{Role: RoleConsultant, OnCall: true}, ErrForbidden},
		{Actor{Role: RoleAuditor}, ErrForbidden},
	} {
		if got := mayReadHandover(c.actor, "rose-court"); !errors.Is(got, c.want) || (c.want == nil) != (got == nil) {
			t.Errorf("%+v: %v, want %v", c.actor, got, c.want)
		}
	}
	if !RoleGP.Valid() {
		t.Error("gp is not a valid role")
	}
}
