// Package paging is the escalation policy as a durable process: who to page
// and when, derived only from the log. State is rebuilt by replaying events;
// Decide says what to append next and when to look again, so a restart (even
// after SIGKILL) resumes every timer at the right moment.
package paging

import (
	"time"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/escalation/news2"
)

// Policy holds the timings.
type Policy struct {
	// PageTimeout is how long a page waits for acceptance before the next level.
	PageTimeout time.Duration
	// ReceiptTimeout is how long a page waits for any device's `received`
	// receipt before it counts as undelivered and the next level is paged.
	ReceiptTimeout time.Duration
	// MaxRoundGap caps the pause between rounds once unanswered. Default 10 min.
	MaxRoundGap time.Duration
	// JoinTimeout is how long the consultant who accepted has to join the
	// call before the escalation is join-overdue and they are paged again.
	// Zero: never.
	JoinTimeout time.Duration
}

// RoundGap is the pause before round r (r >= 1) starts again from level 1:
// one page timeout, then doubling, capped at MaxRoundGap.
func (p Policy) RoundGap(r int) time.Duration {
	max := p.MaxRoundGap
	if max <= 0 {
		max = 10 * time.Minute
	}
	gap := p.PageTimeout
	for i := 1; i < r && gap < max; i++ {
		gap *= 2
	}
	return min(gap, max)
}

// Page is one page as the log records it.
type Page struct {
	ID          string
	Level       int
	Round       int
	Consultants []escalation.Username
	SentAt      time.Time
	Received    bool
	TimedOut    bool
	TimedOutAt  time.Time
	// receipts recorded, by kind and device, so each is recorded once.
	receipts map[string]bool
}

// State is one escalation's paging, derived from its resident and paging events.
type State struct {
	EscalationID escalation.EscalationID
	ResidentID   escalation.ResidentID
	CareHomeID   escalation.CareHomeID
	RaisedAt     time.Time
	// NEWS2 is the score raised with (nil for soft signs only), for the page.
	NEWS2 *news2.Result
	// Status is the escalation's status in the resident stream.
	Status     escalation.Status
	AcceptedBy escalation.Username
	AcceptedAt time.Time
	// Joined: the consultant who accepted has joined the call.
	Joined bool
	// JoinOverdue: they had not joined by the join timeout, and were paged again.
	JoinOverdue bool
	Unanswered  bool
	Pages       []Page
	// Version of the paging stream, for the expected version of the next append.
	Version int64
}

// Open reports whether paging still matters (not accepted, decided or withdrawn).
func (s *State) Open() bool {
	return s.Status == escalation.StatusPaging || s.Status == escalation.StatusUnanswered
}

// Tracked reports whether the pager still has anything to do for the
// escalation: page it, or watch that the consultant who accepted joins.
func (s *State) Tracked() bool {
	return s.Open() || (s.Status == escalation.StatusAccepted && !s.Joined)
}

// Page returns the page with id, or nil.
func (s *State) Page(id string) *Page {
	for i := range s.Pages {
		if s.Pages[i].ID == id {
			return &s.Pages[i]
		}
	}
	return nil
}

// PagedUsers returns everyone paged for the escalation so far.
func (s *State) PagedUsers() []escalation.Username {
	seen := map[escalation.Username]bool{}
	var out []escalation.Username
	for _, p := range s.Pages {
		for _, u := range p.Consultants {
			if !seen[u] {
				seen[u] = true
				out = append(out, u)
			}
		}
	}
	return out
}

// Action kinds.
const (
	ActPage       = "page"
	ActTimeOut    = "time_out"
	ActUnanswered = "unanswered"
	// ActJoinOverdue records that the accepting consultant has not joined,
	// and pages them again.
	ActJoinOverdue = "join_overdue"
)

// Action is one thing to record.
type Action struct {
	Kind        string
	Level       int // for ActPage
	Round       int
	Consultants []escalation.Username
	PageID      string // for ActTimeOut
	Reason      string
}

// Decide returns what to record now for s, given who is on call now, and when
// to decide again (zero when nothing is pending). Actions that go to the
// paging stream come first and are appended together; ActUnanswered goes to
// the resident stream.
func (p Policy) Decide(s *State, levels [][]escalation.Username, now time.Time) ([]Action, time.Time) {
	if s.Status == escalation.StatusAccepted {
		return p.decideJoin(s, now)
	}
	if !s.Open() {
		return nil, time.Time{}
	}
	if len(s.Pages) == 0 {
		if len(levels) == 0 {
			// Nobody on call: say so at once, never silence; page as soon as someone is.
			var acts []Action
			if !s.Unanswered {
				acts = append(acts, Action{Kind: ActUnanswered, Reason: "nobody is on call"})
			}
			return acts, now.Add(time.Second)
		}
		return []Action{{Kind: ActPage, Level: 1, Round: 0, Consultants: levels[0]}}, time.Time{}
	}
	last := s.Pages[len(s.Pages)-1]
	var owed []Action
	if !s.Unanswered && last.Round > 0 {
		// A later round has begun, so every level timed out once: unanswered
		// is owed even though recording it failed before the re-page went out.
		owed = []Action{{Kind: ActUnanswered, Reason: "every rota level timed out"}}
	}
	if !last.TimedOut {
		deadline, reason := last.SentAt.Add(p.PageTimeout), "not_accepted"
		if !last.Received {
			if rd := last.SentAt.Add(p.ReceiptTimeout); rd.Before(deadline) {
				deadline, reason = rd, "no_receipt"
			}
		}
		if now.Before(deadline) {
			return owed, deadline
		}
		acts := []Action{{Kind: ActTimeOut, PageID: last.ID, Level: last.Level, Round: last.Round, Reason: reason}}
		if last.Level < len(levels) {
			acts = append(acts, Action{Kind: ActPage, Level: last.Level + 1, Round: last.Round, Consultants: levels[last.Level]})
		}
		return append(acts, owed...), now
	}
	// The last page timed out without a next level paged.
	if last.Level < len(levels) {
		return append([]Action{{Kind: ActPage, Level: last.Level + 1, Round: last.Round, Consultants: levels[last.Level]}}, owed...), time.Time{}
	}
	var acts []Action
	if !s.Unanswered {
		acts = append(acts, Action{Kind: ActUnanswered, Reason: "every rota level timed out"})
	}
	due := last.TimedOutAt.Add(p.RoundGap(last.Round + 1))
	if now.Before(due) || len(levels) == 0 {
		if len(levels) == 0 {
			due = now.Add(time.Second)
		}
		return acts, due
	}
	return append(acts, Action{Kind: ActPage, Level: 1, Round: last.Round + 1, Consultants: levels[0]}), time.Time{}
}

// decideJoin watches an accepted escalation: when the consultant who
// accepted has not joined the call by the join timeout, it is join-overdue
// once, and they are paged again.
func (p Policy) decideJoin(s *State, now time.Time) ([]Action, time.Time) {
	if p.JoinTimeout <= 0 || s.Joined || s.JoinOverdue || s.AcceptedBy == "" {
		return nil, time.Time{}
	}
	due := s.AcceptedAt.Add(p.JoinTimeout)
	if now.Before(due) {
		return nil, due
	}
	return []Action{{Kind: ActJoinOverdue, Consultants: []escalation.Username{s.AcceptedBy}}}, time.Time{}
}

// Apply updates s with one event of its resident or paging stream.
func (s *State) Apply(ev escalation.Event, at time.Time, pagingVersion int64) {
	switch e := ev.(type) {
	case *escalation.EscalationRaised:
		s.EscalationID, s.CareHomeID, s.RaisedAt, s.Status = e.EscalationID, e.CareHomeID, at, escalation.StatusPaging
		s.NEWS2 = e.NEWS2
	case *escalation.EscalationAccepted:
		s.Status, s.AcceptedBy, s.AcceptedAt = escalation.StatusAccepted, e.By.Username, at
	case *escalation.CallParticipantJoined:
		if e.Role == escalation.CallRoleConsultant {
			s.Joined = true
		}
	case *escalation.JoinOverdue:
		s.JoinOverdue = true
		if s.Page(e.PageID) == nil {
			s.Pages = append(s.Pages, Page{ID: e.PageID, Consultants: []escalation.Username{e.Consultant}, SentAt: at, receipts: map[string]bool{}})
		}
	case *escalation.EscalationUnanswered:
		s.Unanswered = true
		if s.Status == escalation.StatusPaging {
			s.Status = escalation.StatusUnanswered
		}
	case *escalation.EscalationDecided:
		s.Status = escalation.StatusDecided
	case *escalation.EscalationWithdrawn:
		s.Status = escalation.StatusWithdrawn
	case *escalation.Paged:
		s.Pages = append(s.Pages, Page{ID: e.PageID, Level: e.Level, Round: e.Round, Consultants: e.Consultants, SentAt: at, receipts: map[string]bool{}})
	case *escalation.PageReceived:
		if pg := s.Page(e.PageID); pg != nil {
			pg.Received = true
			pg.receipts["received|"+e.Device] = true
		}
	case *escalation.PageSeen:
		if pg := s.Page(e.PageID); pg != nil {
			pg.receipts["seen|"+e.Device] = true
		}
	case *escalation.PageTimedOut:
		if pg := s.Page(e.PageID); pg != nil {
			pg.TimedOut, pg.TimedOutAt = true, at
		}
	}
	if pagingVersion > 0 {
		s.Version = pagingVersion
	}
}

// HasReceipt reports whether a receipt of kind from device is recorded.
func (p *Page) HasReceipt(kind, device string) bool { return p.receipts[kind+"|"+device] }
