package escalation

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nightcall-health/nightcall/events"
)

// Call events, in the resident's stream: a call's start and end and who
// (by role, never by name) joined and left.
const (
	TypeCallStarted           = "call.started"
	TypeCallParticipantJoined = "call.participant_joined"
	TypeCallParticipantLeft   = "call.participant_left"
	TypeCallEnded             = "call.ended"
	TypeInviteCreated         = "call.invite_created"
	TypeInviteUsed            = "call.invite_used"
)

// CallStarted: the first participant joined.
type CallStarted struct {
	EscalationID EscalationID `json:"escalation_id"`
	CallID       string       `json:"call_id"`
}

// CallParticipant: a participant joined or left.
type CallParticipant struct {
	EscalationID EscalationID `json:"escalation_id"`
	CallID       string       `json:"call_id"`
	Role         string       `json:"role"`
}

// CallParticipantJoined is a join.
type CallParticipantJoined struct{ CallParticipant }

// CallParticipantLeft is a leave.
type CallParticipantLeft struct{ CallParticipant }

// CallQuality summarises one participant's media in each direction.
type CallQuality struct {
	Role         string  `json:"role"`
	UpPackets    uint64  `json:"up_packets"`
	UpLost       int64   `json:"up_packets_lost"`
	UpJitterMs   float64 `json:"up_jitter_ms"`
	UpBitrateKbs float64 `json:"up_bitrate_kbps"`
	DownPackets  uint64  `json:"down_packets"`
	DownLost     int64   `json:"down_packets_lost"`
	DownRTTMs    float64 `json:"down_rtt_ms"`
	Seconds      float64 `json:"seconds"`
}

// CallEnded: everyone left, or the decision was recorded.
type CallEnded struct {
	EscalationID    EscalationID  `json:"escalation_id"`
	CallID          string        `json:"call_id"`
	DurationSeconds float64       `json:"duration_seconds"`
	Reason          string        `json:"reason"`
	Quality         []CallQuality `json:"quality"`
}

// InviteCreated: a one-time guest link (only its hash is kept).
type InviteCreated struct {
	EscalationID EscalationID `json:"escalation_id"`
	InviteHash   string       `json:"invite_hash"`
	Role         string       `json:"role"`
	ExpiresAt    time.Time    `json:"expires_at"`
	CreatedBy    Username     `json:"created_by"`
}

// InviteUsed: the link was opened, once.
type InviteUsed struct {
	EscalationID EscalationID `json:"escalation_id"`
	InviteHash   string       `json:"invite_hash"`
}

func (CallStarted) EventType() string           { return TypeCallStarted }
func (CallParticipantJoined) EventType() string { return TypeCallParticipantJoined }
func (CallParticipantLeft) EventType() string   { return TypeCallParticipantLeft }
func (CallEnded) EventType() string             { return TypeCallEnded }
func (InviteCreated) EventType() string         { return TypeInviteCreated }
func (InviteUsed) EventType() string            { return TypeInviteUsed }

func init() {
	registry[TypeCallStarted] = func() Event { return &CallStarted{} }
	registry[TypeCallParticipantJoined] = func() Event { return &CallParticipantJoined{} }
	registry[TypeCallParticipantLeft] = func() Event { return &CallParticipantLeft{} }
	registry[TypeCallEnded] = func() Event { return &CallEnded{} }
	registry[TypeInviteCreated] = func() Event { return &InviteCreated{} }
	registry[TypeInviteUsed] = func() Event { return &InviteUsed{} }
}

// InviteStream is where an escalation's guest invites live.
func InviteStream(id EscalationID) string { return "escalation-" + string(id) + "-invites" }

// applyCall adds a call event to the escalation's timeline.
func (e *Escalation) applyCall(ev Event, at time.Time) {
	switch c := ev.(type) {
	case *CallStarted:
		e.Timeline = append(e.Timeline, TimelineEntry{At: at, Type: TypeCallStarted, Detail: "call started"})
	case *CallParticipantJoined:
		e.Timeline = append(e.Timeline, TimelineEntry{At: at, Type: TypeCallParticipantJoined, Detail: c.Role + " joined"})
	case *CallParticipantLeft:
		e.Timeline = append(e.Timeline, TimelineEntry{At: at, Type: TypeCallParticipantLeft, Detail: c.Role + " left"})
	case *CallEnded:
		e.Timeline = append(e.Timeline, TimelineEntry{At: at, Type: TypeCallEnded, Detail: fmt.Sprintf("call ended after %.0f s (%s)", c.DurationSeconds, c.Reason)})
	}
}

// RecordCall appends a call event to the escalation's resident stream.
func (s *Service) RecordCall(ctx context.Context, id EscalationID, ev Event) error {
	rid, err := s.residentOf(ctx, id)
	if err != nil {
		return err
	}
	meta := Meta{Actor: Actor{Person: Person{Username: "sfu"}}}
	_, err = s.update(ctx, rid, meta, func(r *Resident) error {
		if r.Escalation(id) == nil {
			return ErrNotFound
		}
		r.record(ev, s.cfg.Now())
		return nil
	})
	return err
}

// CallAccess decides whether the actor may join the escalation's call, and
// as what role. The call exists while the escalation is accepted.
func (s *Service) CallAccess(ctx context.Context, a Actor, id EscalationID) (string, error) {
	rid, err := s.residentOf(ctx, id)
	if err != nil {
		return "", err
	}
	r, err := s.loadResident(ctx, rid)
	if err != nil {
		return "", err
	}
	esc := r.Escalation(id)
	if esc == nil || !s.canSeeEscalation(a, esc, false) {
		return "", ErrNotFound
	}
	role := ""
	switch {
	case a.Role == RoleCareHome:
		role = "carehome"
	case a.Role == RoleConsultant && esc.AcceptedBy != nil && esc.AcceptedBy.Username == a.Username:
		role = "consultant"
	default:
		return "", ErrForbidden
	}
	switch esc.Status {
	case StatusPaging, StatusUnanswered:
		return "", ErrNotAccepted
	case StatusDecided, StatusWithdrawn:
		return "", ErrEscalationClosed
	}
	return role, nil
}

// Invite errors.
var (
	ErrInviteUsed    = errors.New("this invitation has been used")
	ErrInviteExpired = errors.New("this invitation has expired or its call has ended")
)

// InviteRoles are the guests a call may have.
var InviteRoles = []string{"gp", "relative", "interpreter", "other"}

// CreateInvite records a one-time invite for a guest; only the hash of its
// secret is stored. The accepting consultant or staff of the home may invite.
func (s *Service) CreateInvite(ctx context.Context, meta Meta, id EscalationID, role, secretHash string, ttl time.Duration) (time.Time, error) {
	if !slices.Contains(InviteRoles, role) {
		if role == "" {
			return time.Time{}, inputErr(KindMissingField, "role", "role is required: gp, relative, interpreter or other")
		}
		return time.Time{}, inputErr(KindInvalidValue, "role", "role must be gp, relative, interpreter or other")
	}
	if _, err := s.CallAccess(ctx, meta.Actor, id); err != nil {
		return time.Time{}, err
	}
	expires := s.cfg.Now().Add(ttl).UTC()
	ev := &InviteCreated{EscalationID: id, InviteHash: secretHash, Role: role, ExpiresAt: expires, CreatedBy: meta.Actor.Username}
	data, err := marshal(ev)
	if err != nil {
		return time.Time{}, err
	}
	_, err = s.cfg.Store.Append(ctx, InviteStream(id), events.AnyVersion, []events.NewEvent{{
		ID: s.cfg.NewID(), Type: ev.EventType(), Actor: string(meta.Actor.Username), RecordedAt: s.cfg.Now(), Data: data,
	}}, events.AppendOptions{})
	return expires, err
}

// UseInvite spends an invite, exactly once, and returns the guest's role.
func (s *Service) UseInvite(ctx context.Context, id EscalationID, secretHash string) (string, error) {
	for attempt := 0; attempt < maxAttempts; attempt++ {
		envs, err := s.cfg.Store.Load(ctx, InviteStream(id), 0)
		if errors.Is(err, events.ErrStreamNotFound) {
			return "", ErrNotFound
		}
		if err != nil {
			return "", err
		}
		var created *InviteCreated
		used := false
		for _, env := range envs {
			ev, err := Decode(env)
			if err != nil {
				return "", err
			}
			switch e := ev.(type) {
			case *InviteCreated:
				if e.InviteHash == secretHash {
					created = e
				}
			case *InviteUsed:
				if e.InviteHash == secretHash {
					used = true
				}
			}
		}
		switch {
		case created == nil:
			return "", ErrNotFound
		case used:
			return "", ErrInviteUsed
		case s.cfg.Now().After(created.ExpiresAt):
			return "", ErrInviteExpired
		}
		rid, err := s.residentOf(ctx, id)
		if err != nil {
			return "", err
		}
		r, err := s.loadResident(ctx, rid)
		if err != nil {
			return "", err
		}
		if esc := r.Escalation(id); esc == nil || esc.Status != StatusAccepted {
			return "", ErrInviteExpired
		}
		data, err := marshal(&InviteUsed{EscalationID: id, InviteHash: secretHash})
		if err != nil {
			return "", err
		}
		_, err = s.cfg.Store.Append(ctx, InviteStream(id), envs[len(envs)-1].Version, []events.NewEvent{{
			ID: s.cfg.NewID(), Type: TypeInviteUsed, Actor: "guest", RecordedAt: s.cfg.Now(), Data: data,
		}}, events.AppendOptions{})
		if errors.Is(err, events.ErrVersionConflict) {
			continue
		}
		if err != nil {
			return "", err
		}
		return created.Role, nil
	}
	return "", ErrConflict
}

// GuestCallOpen reports whether a guest's call is still open (accepted, not decided).
func (s *Service) GuestCallOpen(ctx context.Context, id EscalationID) error {
	rid, err := s.residentOf(ctx, id)
	if err != nil {
		return err
	}
	r, err := s.loadResident(ctx, rid)
	if err != nil {
		return err
	}
	if esc := r.Escalation(id); esc == nil || esc.Status != StatusAccepted {
		return ErrEscalationClosed
	}
	return nil
}
