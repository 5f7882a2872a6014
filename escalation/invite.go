package escalation

import (
	"context"
	"slices"
	"time"

	"github.com/nightcall-health/nightcall/events"
)

// Guest invites, on stream escalation-{id}-invites: a one-time link for a GP,
// relative, interpreter or other guest to join the escalation's call. Only
// the hash of the link's secret is kept.
const (
	TypeInviteCreated = "call.invite_created"
	TypeInviteUsed    = "call.invite_used"
)

// InviteCreated: a one-time guest link (only its hash is kept).
type InviteCreated struct {
	EscalationID EscalationID `json:"escalation_id"`
	InviteHash   string       `json:"invite_hash"`
	Role         CallRole     `json:"role"`
	ExpiresAt    time.Time    `json:"expires_at"`
	CreatedBy    Username     `json:"created_by"`
}

// InviteUsed: the link was opened, once.
type InviteUsed struct {
	EscalationID EscalationID `json:"escalation_id"`
	InviteHash   string       `json:"invite_hash"`
}

func (InviteCreated) EventType() string { return TypeInviteCreated }
func (InviteUsed) EventType() string    { return TypeInviteUsed }

func init() {
	register(
		func() Event { return &InviteCreated{} },
		func() Event { return &InviteUsed{} },
	)
}

// InviteStream is where an escalation's guest invites live.
func InviteStream(id EscalationID) string { return "escalation-" + string(id) + "-invites" }

// InviteRoles are the guests a call may have.
var InviteRoles = []CallRole{CallRoleGP, CallRoleRelative, CallRoleInterpreter, CallRoleOther}

// CreateInvite records a one-time invite for a guest; only the hash of its
// secret is stored. The accepting consultant or staff of the home may invite.
func (s *Service) CreateInvite(ctx context.Context, meta Meta, id EscalationID, role CallRole, secretHash string, ttl time.Duration) (time.Time, error) {
	if !slices.Contains(InviteRoles, role) {
		if role == "" {
			return time.Time{}, inputErr(KindMissingField, "role", "role is required: gp, relative, interpreter or other")
		}
		return time.Time{}, inputErr(KindInvalidValue, "role", "role must be gp, relative, interpreter or other")
	}
	if _, err := s.CallAccess(ctx, meta.Actor, id); err != nil {
		return time.Time{}, err
	}
	now := s.cfg.Now()
	expires := now.Add(ttl).UTC()
	opts, err := meta.appendOptions(expires)
	if err != nil {
		return time.Time{}, err
	}
	_, err = s.repo.append(ctx, InviteStream(id), events.AnyVersion, meta.Actor.Username, meta.CorrelationID,
		pendingAt(now, []Event{&InviteCreated{EscalationID: id, InviteHash: secretHash, Role: role, ExpiresAt: expires, CreatedBy: meta.Actor.Username}}), opts)
	return expires, err
}

// inviteLedger is the invite aggregate: one invite of an escalation's stream,
// whether it was used, and whether its call is open.
type inviteLedger struct {
	escalationID EscalationID
	hash         string
	created      *InviteCreated
	used         bool
	callOpen     bool
	changes
}

// use spends the invite at now, once, and returns the guest's role.
func (l *inviteLedger) use(now time.Time) (CallRole, error) {
	switch {
	case l.created == nil:
		return "", ErrNotFound
	case l.used:
		return "", ErrInviteUsed
	case now.After(l.created.ExpiresAt), !l.callOpen:
		return "", ErrInviteExpired
	}
	ev := &InviteUsed{EscalationID: l.escalationID, InviteHash: l.hash}
	l.used = true
	l.keep(ev, now)
	return l.created.Role, nil
}

// UseInvite spends an invite, exactly once, and returns the guest's role.
func (s *Service) UseInvite(ctx context.Context, id EscalationID, secretHash string) (CallRole, error) {
	now := s.cfg.Now()
	load := func(ctx context.Context, envs []events.Envelope) (*inviteLedger, error) {
		if len(envs) == 0 {
			return nil, ErrNotFound
		}
		l := &inviteLedger{escalationID: id, hash: secretHash}
		for _, env := range envs {
			ev, err := Decode(env)
			if err != nil {
				return nil, err
			}
			switch e := ev.(type) {
			case *InviteCreated:
				if e.InviteHash == secretHash {
					l.created = e
				}
			case *InviteUsed:
				if e.InviteHash == secretHash {
					l.used = true
				}
			}
			l.version = env.Version
		}
		// Whether the call is open is asked only of an invite still to spend.
		if l.created != nil && !l.used && !now.After(l.created.ExpiresAt) {
			open, err := s.callOpen(ctx, id)
			if err != nil {
				return nil, err
			}
			l.callOpen = open
		}
		return l, nil
	}
	var role CallRole
	_, _, err := update(ctx, s.repo, InviteStream(id), saveAs[*inviteLedger]{actor: "guest"}, load, func(l *inviteLedger) error {
		var err error
		role, err = l.use(now)
		return err
	})
	if err != nil {
		return "", err
	}
	return role, nil
}
