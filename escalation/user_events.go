package escalation

import (
	"context"
	"errors"

	"github.com/nightcall-health/nightcall/events"
)

// Account events, on stream user-{username}: that an account exists and in
// what role, never its secret.

// TypeUserCreated records that an account was created (never its secret).
const TypeUserCreated = "user.created"

// UserCreated: an account was created.
type UserCreated struct {
	Username   Username   `json:"username"`
	Role       Role       `json:"role"`
	CareHomeID CareHomeID `json:"care_home_id,omitempty"`
	// CareHomeIDs are the homes a GP is bound to.
	CareHomeIDs []CareHomeID `json:"care_home_ids,omitempty"`
}

// EventType is the stable name of the event.
func (UserCreated) EventType() string { return TypeUserCreated }

func init() { register(func() Event { return &UserCreated{} }) }

// UserStream is where an account's events live.
func UserStream(u Username) string { return "user-" + string(u) }

// RecordUserCreated puts an account's creation on the user's stream.
func (s *Service) RecordUserCreated(ctx context.Context, meta Meta, u UserCreated) error {
	err := s.repo.createReturning(ctx, UserStream(u.Username), meta, s.cfg.Now(), u, &u)
	if errors.Is(err, events.ErrVersionConflict) {
		return &DuplicateError{Field: "username", Message: "this username is taken"}
	}
	return err
}
