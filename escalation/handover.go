package escalation

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/nightcall-health/nightcall/escalation/news2"
)

// The morning handover: every escalation a care home raised since the last
// one, for the day staff, the GP and the community team. A handover on a date
// covers [08:00 the day before, 08:00 on the date) in the service's time
// zone, half-open, so that consecutive handovers tile time and nothing falls
// between two of them; on the days the clocks change the window is 23 or 25
// hours long.

// HandoverHour is the local hour at which one handover ends and the next begins.
const HandoverHour = 8

// HandoverWindow returns the half-open interval [from, to) that the morning
// handover on date (YYYY-MM-DD, a local date in loc) covers.
func HandoverWindow(date string, loc *time.Location) (from, to time.Time, err error) {
	if strings.TrimSpace(date) == "" {
		return time.Time{}, time.Time{}, inputErr(KindMissingField, "date", "give the date of the handover (YYYY-MM-DD)")
	}
	d, err := time.ParseInLocation(time.DateOnly, date, loc)
	if err != nil {
		return time.Time{}, time.Time{}, inputErr(KindInvalidValue, "date", "the date must be a real date written YYYY-MM-DD")
	}
	y, m, day := d.Date()
	// time.Date normalises day-1 across months and years, and resolves 08:00
	// in the zone's offset on that day, so DST changes need no special case.
	return time.Date(y, m, day-1, HandoverHour, 0, 0, 0, loc), time.Date(y, m, day, HandoverHour, 0, 0, 0, loc), nil
}

// HandoverDateFor returns the date of the handover whose window holds t.
func HandoverDateFor(t time.Time, loc *time.Location) string {
	l := t.In(loc)
	y, m, d := l.Date()
	if l.Hour() >= HandoverHour {
		d++
	}
	return time.Date(y, m, d, 12, 0, 0, 0, loc).Format(time.DateOnly)
}

// HandoverQuery asks for one home's handover on one date.
type HandoverQuery struct {
	// CareHomeID is the home. Required.
	CareHomeID CareHomeID
	// Date is the local date of the handover, YYYY-MM-DD. Required.
	Date string
	// Location is the service's time zone (--timezone). Required.
	Location *time.Location
	// OutOfHours reports whether an instant is out of hours (the audit's
	// definition: evenings, nights, weekends, bank holidays). Required.
	OutOfHours func(time.Time) bool
}

// Handover is one home's morning handover.
type Handover struct {
	CareHomeID   CareHomeID `json:"care_home_id"`
	CareHomeName string     `json:"care_home_name"`
	Date         string     `json:"date"`
	From         time.Time  `json:"from"`
	To           time.Time  `json:"to"`
	// TimeZone names the zone the window and the page's times are in.
	TimeZone    string          `json:"time_zone"`
	GeneratedAt time.Time       `json:"generated_at"`
	Summary     HandoverSummary `json:"summary"`
	// Escalations are the night's out-of-hours ones first, each group in
	// the order raised.
	Escalations []HandoverEntry `json:"escalations"`
}

// HandoverSummary counts what the handover holds.
type HandoverSummary struct {
	Escalations int `json:"escalations"`
	OutOfHours  int `json:"out_of_hours"`
	Admit       int `json:"admit"`
	Stay        int `json:"stay"`
	Withdrawn   int `json:"withdrawn"`
	// StillOpen counts escalations with anything left to do.
	StillOpen int `json:"still_open"`
}

// HandoverResident is who an entry is about.
type HandoverResident struct {
	ID          ResidentID  `json:"id"`
	Name        string      `json:"name"`
	Room        string      `json:"room,omitempty"`
	DateOfBirth string      `json:"date_of_birth,omitempty"`
	NHSNumber   string      `json:"nhs_number,omitempty"`
	SpO2Scale   news2.Scale `json:"spo2_scale"`
}

// HandoverEntry is one escalation as handed over.
type HandoverEntry struct {
	ID         EscalationID     `json:"id"`
	Resident   HandoverResident `json:"resident"`
	RaisedAt   time.Time        `json:"raised_at"`
	RaisedBy   Username         `json:"raised_by"`
	OutOfHours bool             `json:"out_of_hours"`
	// NEWS2 is nil when only soft signs were raised.
	NEWS2 *news2.Result `json:"news2"`
	// NEWS2Label is how the score is shown: "8", or "partial, at least 7".
	NEWS2Label   string        `json:"news2_label,omitempty"`
	Observations *Observations `json:"observations"`
	SoftSigns    []SoftSign    `json:"soft_signs"`
	SBARD        SBARD         `json:"sbard"`
	// Advice is the level of advice the home was given on raising.
	Advice     AdviceLevel `json:"advice_level"`
	Status     Status      `json:"status"`
	AcceptedBy *Person     `json:"accepted_by"`
	// The decision, null until one is recorded.
	Outcome        *Outcome        `json:"outcome"`
	Counterfactual *Counterfactual `json:"counterfactual"`
	Rationale      *string         `json:"rationale"`
	Plan           *string         `json:"plan"`
	DecidedBy      *Username       `json:"decided_by"`
	DecidedByName  *string         `json:"decided_by_name"`
	DecidedAt      *time.Time      `json:"decided_at"`
	Withdrawal     *Withdrawal     `json:"withdrawal"`
	FollowUpDueAt  *time.Time      `json:"follow_up_due_at"`
	FollowUps      []FollowUp      `json:"follow_ups"`
	// StillOpen lists what is left to do (empty when nothing is).
	StillOpen []OpenItem `json:"still_open"`
}

// OpenItem is one thing a handover leaves to the day team.
type OpenItem struct {
	Code string `json:"code"` // awaiting_consultant | awaiting_decision | follow_up_due | follow_up_overdue
	Text string `json:"text"`
}

func (q HandoverQuery) validate() error {
	var errs []error
	if q.Location == nil {
		errs = append(errs, errors.New("escalation: HandoverQuery.Location is required"))
	}
	if q.OutOfHours == nil {
		errs = append(errs, errors.New("escalation: HandoverQuery.OutOfHours is required"))
	}
	return errors.Join(errs...)
}

// mayReadHandover: staff of the home, admins, and a GP bound to the home. A
// home the caller has no tie to is answered as not found; other roles may
// not read handovers at all.
func mayReadHandover(a Actor, home CareHomeID) error {
	switch a.Role {
	case RoleAdmin:
		return nil
	case RoleCareHome:
		if a.CareHomeID == home {
			return nil
		}
		return ErrNotFound
	case RoleGP:
		if slices.Contains(a.CareHomeIDs, home) {
			return nil
		}
		return ErrNotFound
	}
	return ErrForbidden
}

// Handover returns the morning handover q asks for and puts the read on
// record, one access-log entry for each escalation shown (one for the
// handover when it shows none). A read that cannot be recorded is refused.
func (s *Service) Handover(ctx context.Context, a Actor, q HandoverQuery) (*Handover, error) {
	if err := q.validate(); err != nil {
		return nil, err
	}
	if err := mayReadHandover(a, q.CareHomeID); err != nil {
		return nil, err
	}
	from, to, err := HandoverWindow(q.Date, q.Location)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	if from.After(now) {
		return nil, inputErr(KindInvalidValue, "date", "the handover on %s has not begun: it covers from 08:00 the day before", q.Date)
	}
	if err := s.catchUp(ctx); err != nil {
		return nil, err
	}
	home := s.cfg.Read.Home(q.CareHomeID)
	if home.ID == "" {
		return nil, ErrNotFound
	}
	escs := s.cfg.Read.EscalationsWhere(Selection{Home: q.CareHomeID}, func(e *EscalationView) bool {
		return e.CareHomeID == q.CareHomeID && !e.RaisedAt.Before(from) && e.RaisedAt.Before(to)
	})
	for _, e := range escs {
		s.decorate(e)
	}
	h := BuildHandover(home, q, escs, s.cfg.Read.Resident, now)
	for _, e := range h.Escalations {
		if err := s.recordAccess(ctx, a, "handover", e.Resident.ID, e.ID); err != nil {
			return nil, err
		}
	}
	if len(h.Escalations) == 0 {
		if err := s.recordAccess(ctx, a, "handover", "", ""); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// BuildHandover assembles a handover from the escalations of one home; those
// raised outside q's window are left out. resident looks a resident up (nil
// when unknown). It is pure: Service.Handover feeds it the read model.
func BuildHandover(home CareHome, q HandoverQuery, escs []*EscalationView, resident func(ResidentID) *ResidentView, now time.Time) *Handover {
	from, to, _ := HandoverWindow(q.Date, q.Location)
	h := &Handover{
		CareHomeID: home.ID, CareHomeName: home.Name, Date: q.Date, From: from.UTC(), To: to.UTC(),
		TimeZone: q.Location.String(), GeneratedAt: now.UTC(), Escalations: []HandoverEntry{},
	}
	for _, e := range escs {
		if e.CareHomeID != home.ID || e.RaisedAt.Before(from) || !e.RaisedAt.Before(to) {
			continue
		}
		h.Escalations = append(h.Escalations, handoverEntry(e, resident(e.ResidentID), q, now))
	}
	slices.SortStableFunc(h.Escalations, func(a, b HandoverEntry) int {
		if a.OutOfHours != b.OutOfHours {
			if a.OutOfHours {
				return -1
			}
			return 1
		}
		if c := a.RaisedAt.Compare(b.RaisedAt); c != 0 {
			return c
		}
		return strings.Compare(string(a.ID), string(b.ID))
	})
	for _, e := range h.Escalations {
		h.Summary.Escalations++
		if e.OutOfHours {
			h.Summary.OutOfHours++
		}
		if e.Outcome != nil {
			switch *e.Outcome {
			case OutcomeAdmit:
				h.Summary.Admit++
			case OutcomeStay:
				h.Summary.Stay++
			}
		}
		if e.Status == StatusWithdrawn {
			h.Summary.Withdrawn++
		}
		if len(e.StillOpen) > 0 {
			h.Summary.StillOpen++
		}
	}
	return h
}

func handoverEntry(e *EscalationView, r *ResidentView, q HandoverQuery, now time.Time) HandoverEntry {
	out := HandoverEntry{
		ID: e.ID, Resident: HandoverResident{ID: e.ResidentID, Name: string(e.ResidentID)},
		RaisedAt: e.RaisedAt.UTC(), RaisedBy: e.RaisedBy, OutOfHours: q.OutOfHours(e.RaisedAt),
		NEWS2: e.NEWS2, Observations: e.Observations, SoftSigns: e.SoftSigns, SBARD: e.SBARD,
		Advice: e.Advice.Level, Status: e.Status, AcceptedBy: e.AcceptedBy, Withdrawal: e.Withdrawal,
		FollowUpDueAt: e.FollowUpDueAt, FollowUps: e.FollowUps, StillOpen: []OpenItem{},
	}
	if r != nil {
		out.Resident = HandoverResident{ID: r.ID, Name: r.Name, Room: r.Room, DateOfBirth: r.DateOfBirth, NHSNumber: r.NHSNumber, SpO2Scale: r.SpO2Scale}
	}
	if out.SoftSigns == nil {
		out.SoftSigns = []SoftSign{}
	}
	if out.FollowUps == nil {
		out.FollowUps = []FollowUp{}
	}
	if e.NEWS2 != nil {
		out.NEWS2Label = e.NEWS2.Label()
	}
	if d := e.Decision; d != nil {
		c := *d // the read model's decision is shared: point into a copy
		c.DecidedAt = c.DecidedAt.UTC()
		out.Outcome, out.Counterfactual, out.Rationale, out.Plan = &c.Outcome, &c.Counterfactual, &c.Rationale, &c.Plan
		out.DecidedBy, out.DecidedByName, out.DecidedAt = &c.DecidedBy, &c.DecidedByName, &c.DecidedAt
		if d.Outcome == OutcomeStay && out.FollowUpDueAt == nil {
			due := d.DecidedAt.Add(FollowUpWindow).UTC()
			out.FollowUpDueAt = &due
		}
	}
	out.StillOpen = stillOpen(out, q.Location, now)
	return out
}

// stillOpen says what an escalation leaves to do: a consultant to accept, a
// decision to record, or the home's confirmation of where a resident who
// stayed is by the end of the follow-up window.
func stillOpen(e HandoverEntry, loc *time.Location, now time.Time) []OpenItem {
	switch e.Status {
	case StatusPaging, StatusUnanswered:
		return []OpenItem{{Code: "awaiting_consultant", Text: "No consultant has accepted yet: the home is still waiting, or should phone its fallback number."}}
	case StatusAccepted:
		who := "a consultant"
		if e.AcceptedBy != nil {
			who = e.AcceptedBy.Name
		}
		return []OpenItem{{Code: "awaiting_decision", Text: "Accepted by " + who + "; no decision recorded yet."}}
	case StatusDecided:
		if e.Outcome == nil || *e.Outcome != OutcomeStay || len(e.FollowUps) > 0 || e.FollowUpDueAt == nil {
			return []OpenItem{}
		}
		when := LocalTime(*e.FollowUpDueAt, loc)
		if now.Before(*e.FollowUpDueAt) {
			return []OpenItem{{Code: "follow_up_due", Text: "Record where the resident is (at home, admitted, A&E or died) by " + when + "."}}
		}
		return []OpenItem{{Code: "follow_up_overdue", Text: "Overdue since " + when + ": record where the resident is (at home, admitted, A&E or died)."}}
	}
	return []OpenItem{}
}

// LocalTime writes t for people: en-GB, 24-hour, in loc, with the date
// ("Tue 24 Nov 2026 02:10").
func LocalTime(t time.Time, loc *time.Location) string {
	return t.In(loc).Format("Mon 2 Jan 2006 15:04")
}
