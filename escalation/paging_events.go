package escalation

import (
	"fmt"
	"strings"
	"time"
)

// Paging events, on stream escalation-{id}-paging: kept apart from the
// resident stream so that paging noise never conflicts with an accept.
const (
	TypePaged        = "escalation.paged"
	TypePageReceived = "escalation.page_received"
	TypePageSeen     = "escalation.page_seen"
	TypePageTimedOut = "escalation.page_timed_out"
)

// Paged: a rota level was paged.
type Paged struct {
	EscalationID EscalationID `json:"escalation_id"`
	PageID       string       `json:"page_id"`
	Level        int          `json:"level"` // 1-based
	Round        int          `json:"round"` // 0 for the first pass through the rota
	Consultants  []Username   `json:"consultants"`
}

// PageReceipt: a device showed (seen) or got (received) a page.
type PageReceipt struct {
	EscalationID EscalationID `json:"escalation_id"`
	PageID       string       `json:"page_id"`
	Username     Username     `json:"username"`
	Device       string       `json:"device"`
}

// PageReceived is a `received` receipt.
type PageReceived struct{ PageReceipt }

// PageSeen is a `seen` receipt.
type PageSeen struct{ PageReceipt }

// PageTimedOut: a page went unaccepted (or undelivered) too long.
type PageTimedOut struct {
	EscalationID EscalationID `json:"escalation_id"`
	PageID       string       `json:"page_id"`
	Level        int          `json:"level"`
	Round        int          `json:"round"`
	Reason       string       `json:"reason"` // no_receipt | not_accepted
}

func (Paged) EventType() string        { return TypePaged }
func (PageReceived) EventType() string { return TypePageReceived }
func (PageSeen) EventType() string     { return TypePageSeen }
func (PageTimedOut) EventType() string { return TypePageTimedOut }

func init() {
	register(
		func() Event { return &Paged{} },
		func() Event { return &PageReceived{} },
		func() Event { return &PageSeen{} },
		func() Event { return &PageTimedOut{} },
	)
}

// IsPagingStream reports whether stream is an escalation's paging stream.
func IsPagingStream(stream string) bool {
	return strings.HasPrefix(stream, "escalation-") && strings.HasSuffix(stream, "-paging")
}

// applyPaging adds a paging event to the escalation's timeline and timings.
func (e *EscalationView) applyPaging(ev Event, at time.Time) {
	e.noteDelivery(ev, at)
	since := func() string { return fmt.Sprintf(" (%.1f s after raise)", at.Sub(e.RaisedAt).Seconds()) }
	switch p := ev.(type) {
	case *Paged:
		if e.FirstPagedAt == nil {
			t := at
			e.FirstPagedAt = &t
		}
		e.Timeline = append(e.Timeline, TimelineEntry{At: at, Type: TypePaged,
			Detail: fmt.Sprintf("level %d paged (round %d): %s%s", p.Level, p.Round+1, joinUsers(p.Consultants), since())})
	case *PageReceived:
		if e.FirstReceiptAt == nil {
			t := at
			e.FirstReceiptAt = &t
		}
		e.Timeline = append(e.Timeline, TimelineEntry{At: at, Type: TypePageReceived, Detail: "received by " + string(p.Username) + since()})
	case *PageSeen:
		e.Timeline = append(e.Timeline, TimelineEntry{At: at, Type: TypePageSeen, Detail: "seen by " + string(p.Username)})
	case *PageTimedOut:
		what := "not accepted in time"
		if p.Reason == "no_receipt" {
			what = "no receipt from any device"
		}
		e.Timeline = append(e.Timeline, TimelineEntry{At: at, Type: TypePageTimedOut, Detail: fmt.Sprintf("level %d timed out: %s", p.Level, what)})
	}
}

func joinUsers(us []Username) string {
	s := make([]string, len(us))
	for i, u := range us {
		s[i] = string(u)
	}
	return strings.Join(s, ", ")
}
