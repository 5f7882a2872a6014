package escalation

import (
	"errors"
	"fmt"
)

// Domain errors. The web adapter alone maps them to HTTP statuses and codes.
var (
	// ErrNotFound means the thing does not exist or is not visible to the caller.
	ErrNotFound = errors.New("not found")
	// ErrForbidden means the caller's role may not do this.
	ErrForbidden = errors.New("forbidden")
	// ErrNotAccepted means the escalation has not been accepted yet.
	ErrNotAccepted = errors.New("the escalation has not been accepted")
	// ErrAlreadyDecided means a decision is already recorded.
	ErrAlreadyDecided = errors.New("a decision is already recorded for this escalation")
	// ErrEscalationClosed means the escalation was withdrawn or otherwise closed.
	ErrEscalationClosed = errors.New("the escalation is closed")
	// ErrCareHomeInactive means the raising staff's home has been taken out
	// of service (deactivated).
	ErrCareHomeInactive = errors.New("the care home is deactivated")
	// ErrResidentInactive means the resident has left the home or died.
	ErrResidentInactive = errors.New("the resident has left the home or died")
	// ErrEscalationOpen is the sentinel behind EscalationOpenError.
	ErrEscalationOpen = errors.New("the resident already has an open escalation")
	// ErrAlreadyAccepted is the sentinel behind AlreadyAcceptedError.
	ErrAlreadyAccepted = errors.New("another consultant accepted first")
	// ErrConflict means the stream kept changing under the command; try again.
	ErrConflict = errors.New("too many concurrent changes, try again")
)

// EscalationOpenError names the open escalation.
type EscalationOpenError struct{ EscalationID EscalationID }

func (e *EscalationOpenError) Error() string {
	return fmt.Sprintf("the resident already has an open escalation (%s)", e.EscalationID)
}

// Unwrap makes errors.Is(err, ErrEscalationOpen) true.
func (e *EscalationOpenError) Unwrap() error { return ErrEscalationOpen }

// AlreadyAcceptedError names the consultant who accepted first.
type AlreadyAcceptedError struct{ By Person }

func (e *AlreadyAcceptedError) Error() string {
	return fmt.Sprintf("%s accepted this escalation first", e.By.Username)
}

// Unwrap makes errors.Is(err, ErrAlreadyAccepted) true.
func (e *AlreadyAcceptedError) Unwrap() error { return ErrAlreadyAccepted }

// ErrorKind classifies input that cannot be accepted. The list is a wire
// contract: it is only ever appended to.
type ErrorKind string

const (
	KindInvalidJSON    ErrorKind = "invalid_json"
	KindMissingField   ErrorKind = "missing_field"
	KindInvalidValue   ErrorKind = "invalid_value"
	KindImplausible    ErrorKind = "implausible_observation"
	KindInconsistent   ErrorKind = "inconsistent_observation"
	KindInvalidRequest ErrorKind = "invalid_request"
)

// InputError is bad input, naming the field at fault.
type InputError struct {
	Kind    ErrorKind
	Field   string
	Message string
}

func (e *InputError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

func inputErr(kind ErrorKind, field, format string, args ...any) *InputError {
	return &InputError{Kind: kind, Field: field, Message: fmt.Sprintf(format, args...)}
}

// ErrDuplicate is behind DuplicateError.
var ErrDuplicate = errors.New("already exists")

// DuplicateError names the field that duplicates an existing record.
type DuplicateError struct{ Field, Message string }

func (e *DuplicateError) Error() string { return e.Field + ": " + e.Message }

// Unwrap makes errors.Is(err, ErrDuplicate) true.
func (e *DuplicateError) Unwrap() error { return ErrDuplicate }

// ErrNotAStay means a follow-up was given for an escalation not decided as a stay.
var ErrNotAStay = errors.New("follow-ups are for escalations decided as a stay")

// Invite errors.
var (
	// ErrInviteUsed means the one-time invite was opened before.
	ErrInviteUsed = errors.New("this invitation has been used")
	// ErrInviteExpired means the invite's time is up or its call has ended.
	ErrInviteExpired = errors.New("this invitation has expired or its call has ended")
)
