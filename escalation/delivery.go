package escalation

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Join overdue, and the page's delivery as the home sees it: who was paged,
// when each of their devices received and saw the page, and whether the
// consultant who accepted has joined the call.

// TypeJoinOverdue is on the escalation's paging stream.
const TypeJoinOverdue = "escalation.join_overdue"

// JoinOverdue: the consultant who accepted had not joined the call the join
// timeout after accepting. They are paged again, as PageID, on every channel,
// and the home is shown its fallback number.
type JoinOverdue struct {
	EscalationID   EscalationID `json:"escalation_id"`
	PageID         string       `json:"page_id"`
	Consultant     Username     `json:"consultant"`
	AcceptedAt     time.Time    `json:"accepted_at"`
	TimeoutSeconds float64      `json:"timeout_seconds"`
}

// EventType is the stable name of the event.
func (JoinOverdue) EventType() string { return TypeJoinOverdue }

func init() { register(func() Event { return &JoinOverdue{} }) }

// Delivery channels of a device, told apart by the device name.
const (
	ChannelPush  = "push"  // a Web Push notification (device "push-{subscription id}")
	ChannelPager = "pager" // an open console's pager socket
)

// PushDevice is the device name receipts from a push subscription carry.
func PushDevice(id PushSubscriptionID) string { return "push-" + string(id) }

// channelOf says how a device got the page.
func channelOf(device string) string {
	if strings.HasPrefix(device, "push") {
		return ChannelPush
	}
	return ChannelPager
}

// Delivery is how the escalation's pages reached the consultants.
type Delivery struct {
	Pages []PageDelivery `json:"pages"`
	// JoinOverdueAt is when the accepting consultant was found not to have
	// joined the call in time (nil: not overdue).
	JoinOverdueAt *time.Time `json:"join_overdue_at"`
	// ConsultantJoinedAt is when the accepting consultant joined the call.
	ConsultantJoinedAt *time.Time `json:"consultant_joined_at"`
}

// PageDelivery is one page and what became of it.
type PageDelivery struct {
	PageID string `json:"page_id"`
	Level  int    `json:"level"`
	Round  int    `json:"round"`
	// Reason is "page" for a rota page, "join_overdue" for the page again
	// to a consultant who accepted and has not joined.
	Reason      string            `json:"reason"`
	SentAt      time.Time         `json:"sent_at"`
	TimedOutAt  *time.Time        `json:"timed_out_at"`
	Consultants []PagedConsultant `json:"consultants"`
}

// PagedConsultant is one consultant a page went to. Name is filled in by the
// adapter that knows accounts.
type PagedConsultant struct {
	Username Username        `json:"username"`
	Name     string          `json:"name"`
	Devices  []DeviceReceipt `json:"devices"`
}

// DeviceReceipt is what one device said of a page.
type DeviceReceipt struct {
	Device     string     `json:"device"`
	Channel    string     `json:"channel"`
	ReceivedAt *time.Time `json:"received_at"`
	SeenAt     *time.Time `json:"seen_at"`
}

// clone copies d so that nothing apply changes is shared.
func (d Delivery) clone() Delivery {
	c := Delivery{JoinOverdueAt: clonePtr(d.JoinOverdueAt), ConsultantJoinedAt: clonePtr(d.ConsultantJoinedAt)}
	// Never null on the wire: an escalation not yet paged has no pages.
	c.Pages = make([]PageDelivery, len(d.Pages))
	for i, p := range d.Pages {
		p.TimedOutAt = clonePtr(p.TimedOutAt)
		cs := make([]PagedConsultant, len(p.Consultants))
		for j, pc := range p.Consultants {
			devs := make([]DeviceReceipt, len(pc.Devices))
			for k, dv := range pc.Devices {
				dv.ReceivedAt, dv.SeenAt = clonePtr(dv.ReceivedAt), clonePtr(dv.SeenAt)
				devs[k] = dv
			}
			pc.Devices = devs
			cs[j] = pc
		}
		p.Consultants = cs
		c.Pages[i] = p
	}
	return c
}

func (d *Delivery) page(id string) *PageDelivery {
	for i := range d.Pages {
		if d.Pages[i].PageID == id {
			return &d.Pages[i]
		}
	}
	return nil
}

// device returns the receipt record of one consultant's device on page p,
// adding it when new.
func (p *PageDelivery) device(u Username, device string) *DeviceReceipt {
	i := slices.IndexFunc(p.Consultants, func(c PagedConsultant) bool { return c.Username == u })
	if i < 0 {
		p.Consultants = append(p.Consultants, PagedConsultant{Username: u})
		i = len(p.Consultants) - 1
	}
	c := &p.Consultants[i]
	j := slices.IndexFunc(c.Devices, func(d DeviceReceipt) bool { return d.Device == device })
	if j < 0 {
		c.Devices = append(c.Devices, DeviceReceipt{Device: device, Channel: channelOf(device)})
		j = len(c.Devices) - 1
	}
	return &c.Devices[j]
}

func consultantsOf(us []Username) []PagedConsultant {
	out := make([]PagedConsultant, len(us))
	for i, u := range us {
		out[i] = PagedConsultant{Username: u, Devices: []DeviceReceipt{}}
	}
	return out
}

// noteDelivery updates the delivery record with a paging or call event.
func (e *EscalationView) noteDelivery(ev Event, at time.Time) {
	d := &e.Delivery
	switch p := ev.(type) {
	case *Paged:
		if d.page(p.PageID) == nil {
			d.Pages = append(d.Pages, PageDelivery{PageID: p.PageID, Level: p.Level, Round: p.Round, Reason: "page", SentAt: at, Consultants: consultantsOf(p.Consultants)})
		}
	case *JoinOverdue:
		if d.JoinOverdueAt == nil {
			t := at
			d.JoinOverdueAt = &t
		}
		if d.page(p.PageID) == nil {
			d.Pages = append(d.Pages, PageDelivery{PageID: p.PageID, Reason: "join_overdue", SentAt: at, Consultants: consultantsOf([]Username{p.Consultant})})
		}
		e.Timeline = append(e.Timeline, TimelineEntry{At: at, Type: TypeJoinOverdue,
			Detail: fmt.Sprintf("%s accepted but had not joined the call after %s: paged again", p.Consultant, time.Duration(p.TimeoutSeconds*float64(time.Second)).Round(time.Second))})
	case *PageReceived:
		if pg := d.page(p.PageID); pg != nil {
			if r := pg.device(p.Username, p.Device); r.ReceivedAt == nil {
				t := at
				r.ReceivedAt = &t
			}
		}
	case *PageSeen:
		if pg := d.page(p.PageID); pg != nil {
			if r := pg.device(p.Username, p.Device); r.SeenAt == nil {
				t := at
				r.SeenAt = &t
			}
		}
	case *PageTimedOut:
		if pg := d.page(p.PageID); pg != nil && pg.TimedOutAt == nil {
			t := at
			pg.TimedOutAt = &t
		}
	case *CallParticipantJoined:
		if p.Role == CallRoleConsultant && d.ConsultantJoinedAt == nil {
			t := at
			d.ConsultantJoinedAt = &t
		}
	}
}
