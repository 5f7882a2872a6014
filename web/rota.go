package web

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/escalation/account"
)

func (s *Server) isConsultant(ctx context.Context, u escalation.Username) (bool, error) {
	a, err := s.cfg.Accounts.UserByName(ctx, u)
	if errors.Is(err, account.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return a.Role == escalation.RoleConsultant, nil
}

func canReadRota(a *escalation.Actor) bool {
	return a.Role == escalation.RoleAdmin || a.Role == escalation.RoleAuditor
}

func (s *Server) handleGetRota(w http.ResponseWriter, r *http.Request, a *escalation.Actor) {
	if !canReadRota(a) {
		s.writeError(w, r, errForbidden)
		return
	}
	rota, err := s.cfg.Service.CurrentRota(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rota)
}

// handleRotaAt answers who was on call at ?time= (default now), so that the
// rota at any past instant is auditable.
func (s *Server) handleRotaAt(w http.ResponseWriter, r *http.Request, a *escalation.Actor) {
	if !canReadRota(a) {
		s.writeError(w, r, errForbidden)
		return
	}
	at := time.Now()
	if q := r.URL.Query().Get("time"); q != "" {
		t, err := time.Parse(time.RFC3339, q)
		if err != nil {
			s.writeError(w, r, &apiError{Status: 400, Code: "invalid_value", Field: "time", Message: "time must be an RFC 3339 instant."})
			return
		}
		at = t
	}
	levels, err := s.cfg.Service.RotaAt(r.Context(), *a, at)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"time": at.UTC(), "levels": s.people(r.Context(), levels)})
}

func (s *Server) people(ctx context.Context, levels [][]escalation.Username) [][]escalation.Person {
	out := make([][]escalation.Person, len(levels))
	for i, level := range levels {
		out[i] = make([]escalation.Person, 0, len(level))
		for _, u := range level {
			p := escalation.Person{Username: u}
			if acct, err := s.sessions.account(ctx, string(u)); err == nil {
				p.Name = acct.Name
			}
			out[i] = append(out[i], p)
		}
	}
	return out
}

// rotaCommand runs an admin rota change with the shared plumbing.
func (s *Server) rotaCommand(w http.ResponseWriter, r *http.Request, a *escalation.Actor, dst any, emptyOK bool, status int,
	run func(meta escalation.Meta) (escalation.Rota, error)) {
	if a.Role != escalation.RoleAdmin {
		s.writeError(w, r, errForbidden)
		return
	}
	id, ok := s.command(w, r, a, dst, emptyOK)
	if !ok {
		return
	}
	meta := s.meta(r, a)
	meta.IdempotencyOf = id.recordOf(status, func(v any) any { return v })
	rota, err := run(meta)
	s.respond(w, r, id, err, status, func() any { return rota })
}

func (s *Server) handleSetShift(w http.ResponseWriter, r *http.Request, a *escalation.Actor) {
	var sh escalation.Shift
	s.rotaCommand(w, r, a, &sh, false, http.StatusOK, func(meta escalation.Meta) (escalation.Rota, error) {
		sh.ID = r.PathValue("id")
		return s.cfg.Service.SetShift(r.Context(), meta, sh, s.isConsultant)
	})
}

func (s *Server) handleRemoveShift(w http.ResponseWriter, r *http.Request, a *escalation.Actor) {
	var none struct{}
	s.rotaCommand(w, r, a, &none, true, http.StatusNoContent, func(meta escalation.Meta) (escalation.Rota, error) {
		return s.cfg.Service.RemoveShift(r.Context(), meta, r.PathValue("id"))
	})
}

func (s *Server) handleSetStanding(w http.ResponseWriter, r *http.Request, a *escalation.Actor) {
	var req struct {
		Levels [][]escalation.Username `json:"levels"`
	}
	s.rotaCommand(w, r, a, &req, false, http.StatusOK, func(meta escalation.Meta) (escalation.Rota, error) {
		if req.Levels == nil {
			req.Levels = [][]escalation.Username{}
		}
		return s.cfg.Service.SetStanding(r.Context(), meta, req.Levels, s.isConsultant)
	})
}

func (s *Server) handleAddOverride(w http.ResponseWriter, r *http.Request, a *escalation.Actor) {
	var o escalation.Override
	s.rotaCommand(w, r, a, &o, false, http.StatusCreated, func(meta escalation.Meta) (escalation.Rota, error) {
		return s.cfg.Service.AddOverride(r.Context(), meta, o, s.isConsultant)
	})
}

func (s *Server) handleRemoveOverride(w http.ResponseWriter, r *http.Request, a *escalation.Actor) {
	var none struct{}
	s.rotaCommand(w, r, a, &none, true, http.StatusNoContent, func(meta escalation.Meta) (escalation.Rota, error) {
		return s.cfg.Service.RemoveOverride(r.Context(), meta, r.PathValue("id"))
	})
}
