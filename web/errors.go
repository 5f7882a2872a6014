package web

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/events"
)

// apiError is the body of every error response.
type apiError struct {
	Status  int            `json:"-"`
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Field   string         `json:"field,omitempty"`
	Extra   map[string]any `json:"-"`
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func (e *apiError) MarshalJSON() ([]byte, error) {
	m := map[string]any{"code": e.Code, "message": e.Message}
	if e.Field != "" {
		m["field"] = e.Field
	}
	for k, v := range e.Extra {
		m[k] = v
	}
	return json.Marshal(m)
}

func newErr(status int, code, message string) *apiError {
	return &apiError{Status: status, Code: code, Message: message}
}

var (
	errUnauthenticated = newErr(http.StatusUnauthorized, "unauthenticated", "Sign in first.")
	errForbidden       = newErr(http.StatusForbidden, "forbidden", "Your role may not do this.")
	errNotFound        = newErr(http.StatusNotFound, "not_found", "There is no such record, or you may not see it.")
	errBodyTooLarge    = newErr(http.StatusRequestEntityTooLarge, "body_too_large", "The request body is over 1 MiB.")
)

// toAPIError is the one place where domain and store errors become HTTP.
func (s *Server) toAPIError(ctx context.Context, err error, actor *escalation.Actor) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var in *escalation.InputError
	if errors.As(err, &in) {
		status := http.StatusBadRequest
		if in.Kind == escalation.KindImplausible || in.Kind == escalation.KindInconsistent {
			status = http.StatusUnprocessableEntity
		}
		return &apiError{Status: status, Code: string(in.Kind), Message: in.Message, Field: in.Field}
	}
	var open *escalation.EscalationOpenError
	if errors.As(err, &open) {
		e := newErr(http.StatusConflict, "escalation_open", "This resident already has an open escalation.")
		e.Extra = map[string]any{"escalation_id": open.EscalationID}
		return e
	}
	var dup *escalation.DuplicateError
	if errors.As(err, &dup) {
		return &apiError{Status: http.StatusConflict, Code: "duplicate", Field: dup.Field, Message: dup.Message}
	}
	var acc *escalation.AlreadyAcceptedError
	if errors.As(err, &acc) {
		e := newErr(http.StatusConflict, "already_accepted", "Another consultant accepted this escalation first.")
		e.Extra = map[string]any{"accepted_by": acc.By}
		return e
	}
	switch {
	case errors.Is(err, escalation.ErrNotFound):
		return errNotFound
	case errors.Is(err, escalation.ErrForbidden):
		return errForbidden
	case errors.Is(err, escalation.ErrNotAccepted):
		return newErr(http.StatusConflict, "not_accepted", "Accept the escalation before recording a decision.")
	case errors.Is(err, escalation.ErrAlreadyDecided):
		return newErr(http.StatusConflict, "already_decided", "A decision is already recorded for this escalation.")
	case errors.Is(err, escalation.ErrEscalationClosed):
		return newErr(http.StatusConflict, "escalation_closed", "This escalation is closed.")
	case errors.Is(err, escalation.ErrInviteUsed):
		return newErr(http.StatusGone, "invite_used", "This invitation has already been used.")
	case errors.Is(err, escalation.ErrNotAStay):
		return newErr(http.StatusConflict, "not_a_stay", "Follow-ups are for escalations decided as a stay.")
	case errors.Is(err, escalation.ErrCareHomeInactive):
		e := newErr(http.StatusConflict, "care_home_inactive", "This care home has been taken out of service in Nightcall, so no consultant can be paged from here.")
		if actor != nil && actor.Role == escalation.RoleCareHome {
			if phone := s.cfg.Service.Read().Home(actor.CareHomeID).FallbackPhone; phone != "" {
				e.Message += " Phone " + phone + " instead."
				e.Extra = map[string]any{"fallback_phone": phone}
			}
		}
		return e
	case errors.Is(err, escalation.ErrResidentInactive):
		return newErr(http.StatusConflict, "resident_inactive", "This resident has left the home or died.")
	case errors.Is(err, escalation.ErrConflict):
		return newErr(http.StatusConflict, "conflict", "The record changed while saving; try again.")
	case errors.Is(err, events.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		e := newErr(http.StatusServiceUnavailable, "store_unavailable", "Nightcall cannot record this safely right now.")
		if actor != nil && actor.Role == escalation.RoleCareHome {
			if phone := s.cfg.Service.Read().Home(actor.CareHomeID).FallbackPhone; phone != "" {
				e.Message = "Nightcall cannot record this safely right now. Phone " + phone + " instead."
				e.Extra = map[string]any{"fallback_phone": phone}
			}
		}
		s.log.ErrorContext(ctx, "store unavailable", "err", err)
		return e
	}
	s.log.ErrorContext(ctx, "internal error", "err", err)
	return newErr(http.StatusInternalServerError, "internal", "Something went wrong on our side.")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		slog.Error("marshal response", "err", err)
		status, b = http.StatusInternalServerError, []byte(`{"error":{"code":"internal","message":"Something went wrong on our side."}}`)
	}
	writeRaw(w, status, b)
}

func writeRaw(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body) // #nosec G705 -- JSON, served with nosniff
	_, _ = w.Write([]byte("\n"))
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	ae := s.toAPIError(r.Context(), err, actorFrom(r.Context()))
	if ae.Status == http.StatusTooManyRequests {
		if ra, ok := ae.Extra["retry_after"]; ok {
			w.Header().Set("Retry-After", ra.(string))
		}
	}
	writeJSON(w, ae.Status, map[string]any{"error": ae})
}
