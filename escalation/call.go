package escalation

import (
	"context"
	"fmt"
	"time"
)

// Call events, in the resident's stream: a call's start and end and who
// (by role, never by name) joined and left.
const (
	TypeCallStarted           = "call.started"
	TypeCallParticipantJoined = "call.participant_joined"
	TypeCallParticipantLeft   = "call.participant_left"
	TypeCallEnded             = "call.ended"
)

// CallRole is who a participant is in a call, as the event log records it:
// staff of the home, the accepting consultant, or a guest invited as a GP,
// relative, interpreter or other.
type CallRole string

const (
	CallRoleCareHome    CallRole = "carehome"
	CallRoleConsultant  CallRole = "consultant"
	CallRoleGP          CallRole = "gp"
	CallRoleRelative    CallRole = "relative"
	CallRoleInterpreter CallRole = "interpreter"
	CallRoleOther       CallRole = "other"
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
	Role         CallRole     `json:"role"`
}

// CallParticipantJoined is a join.
type CallParticipantJoined struct{ CallParticipant }

// CallParticipantLeft is a leave.
type CallParticipantLeft struct{ CallParticipant }

// CallQuality summarises one participant's media in each direction.
type CallQuality struct {
	Role         CallRole `json:"role"`
	UpPackets    uint64   `json:"up_packets"`
	UpLost       int64    `json:"up_packets_lost"`
	UpJitterMs   float64  `json:"up_jitter_ms"`
	UpBitrateKbs float64  `json:"up_bitrate_kbps"`
	DownPackets  uint64   `json:"down_packets"`
	DownLost     int64    `json:"down_packets_lost"`
	DownRTTMs    float64  `json:"down_rtt_ms"`
	Seconds      float64  `json:"seconds"`
}

// CallEnded: everyone left, or the decision was recorded.
type CallEnded struct {
	EscalationID    EscalationID  `json:"escalation_id"`
	CallID          string        `json:"call_id"`
	DurationSeconds float64       `json:"duration_seconds"`
	Reason          string        `json:"reason"`
	Quality         []CallQuality `json:"quality"`
}

func (CallStarted) EventType() string           { return TypeCallStarted }
func (CallParticipantJoined) EventType() string { return TypeCallParticipantJoined }
func (CallParticipantLeft) EventType() string   { return TypeCallParticipantLeft }
func (CallEnded) EventType() string             { return TypeCallEnded }

func init() {
	register(
		func() Event { return &CallStarted{} },
		func() Event { return &CallParticipantJoined{} },
		func() Event { return &CallParticipantLeft{} },
		func() Event { return &CallEnded{} },
	)
}

// applyCall adds a call event to the escalation's timeline.
func (e *EscalationView) applyCall(ev Event, at time.Time) {
	e.noteDelivery(ev, at)
	switch c := ev.(type) {
	case *CallStarted:
		e.Timeline = append(e.Timeline, TimelineEntry{At: at, Type: TypeCallStarted, Detail: "call started"})
	case *CallParticipantJoined:
		e.Timeline = append(e.Timeline, TimelineEntry{At: at, Type: TypeCallParticipantJoined, Detail: string(c.Role) + " joined"})
	case *CallParticipantLeft:
		e.Timeline = append(e.Timeline, TimelineEntry{At: at, Type: TypeCallParticipantLeft, Detail: string(c.Role) + " left"})
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
	now := s.cfg.Now()
	_, err = s.update(ctx, rid, meta, func(r *Resident) error {
		if r.escalation(id) == nil {
			return ErrNotFound
		}
		r.record(ev, now)
		return nil
	})
	return err
}

// CallAccess decides whether the actor may join the escalation's call, and
// as what role. The call exists while the escalation is accepted.
func (s *Service) CallAccess(ctx context.Context, a Actor, id EscalationID) (CallRole, error) {
	rid, err := s.residentOf(ctx, id)
	if err != nil {
		return "", err
	}
	r, err := s.loadResident(ctx, rid)
	if err != nil {
		return "", err
	}
	esc := r.escalation(id)
	if esc == nil || !canSeeEscalation(a, esc, false, s.cfg.Now()) {
		return "", ErrNotFound
	}
	var role CallRole
	switch {
	case a.Role == RoleCareHome:
		role = CallRoleCareHome
	case a.Role == RoleConsultant && esc.AcceptedBy != nil && esc.AcceptedBy.Username == a.Username:
		role = CallRoleConsultant
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

// GuestCallOpen reports whether a guest's call is still open (accepted, not decided).
func (s *Service) GuestCallOpen(ctx context.Context, id EscalationID) error {
	open, err := s.callOpen(ctx, id)
	if err != nil {
		return err
	}
	if !open {
		return ErrEscalationClosed
	}
	return nil
}

// callOpen reports whether escalation id is accepted, so its call is open.
func (s *Service) callOpen(ctx context.Context, id EscalationID) (bool, error) {
	rid, err := s.residentOf(ctx, id)
	if err != nil {
		return false, err
	}
	r, err := s.loadResident(ctx, rid)
	if err != nil {
		return false, err
	}
	esc := r.escalation(id)
	return esc != nil && esc.Status == StatusAccepted, nil
}
