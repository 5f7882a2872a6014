package web

import (
	"context"
	"errors"
	"mime"
	"net/http"
	"time"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/escalation/paging"
	"github.com/nightcall-health/nightcall/events"
)

// The consultant's installable app: Web Push subscriptions, page receipts
// over HTTP (from the service worker, which has no socket), and the service
// worker itself, served at the root so that its scope is the whole console.

type pushKeyView struct {
	PublicKey string `json:"public_key"`
}

type pushSubscriptionView struct {
	ID        escalation.PushSubscriptionID `json:"id"`
	Endpoint  string                        `json:"endpoint"`
	CreatedAt time.Time                     `json:"created_at"`
}

func viewPushSubscription(p escalation.PushSubscription) pushSubscriptionView {
	return pushSubscriptionView{ID: p.ID, Endpoint: p.Endpoint, CreatedAt: p.CreatedAt.UTC()}
}

// The web app manifest's type (Go's table lacks it; browsers want it).
func init() { _ = mime.AddExtensionType(".webmanifest", "application/manifest+json") }

var errPushOff = newErr(http.StatusServiceUnavailable, "store_unavailable", "Web Push is not running on this server.")

func (s *Server) handleVAPIDKey(w http.ResponseWriter, r *http.Request, a *escalation.Actor) {
	if a.Role != escalation.RoleConsultant {
		s.writeError(w, r, errForbidden)
		return
	}
	if s.cfg.PushPublicKey == "" {
		s.writeError(w, r, errPushOff)
		return
	}
	writeJSON(w, http.StatusOK, pushKeyView{PublicKey: s.cfg.PushPublicKey})
}

func (s *Server) handleSavePushSubscription(w http.ResponseWriter, r *http.Request, a *escalation.Actor) {
	if a.Role != escalation.RoleConsultant {
		s.writeError(w, r, errForbidden)
		return
	}
	var in escalation.PushSubscriptionInput
	id, ok := s.command(w, r, a, &in, false)
	if !ok {
		return
	}
	meta := s.meta(r, a)
	if id.key != "" {
		// The status (201 new, 200 updated) is known only once decided.
		meta.IdempotencyOf = func(result any) (*events.IdempotencyRecord, error) {
			saved, _ := result.(escalation.SavedPushSubscription)
			return id.recordOf(pushStatus(saved), func(any) any { return viewPushSubscription(saved.PushSubscription) })(result)
		}
	}
	saved, err := s.cfg.Service.SavePushSubscription(r.Context(), meta, in, s.cfg.PushHosts)
	if err == nil {
		s.log.InfoContext(r.Context(), "push subscription saved", "user", a.Username, "subscription_id", saved.ID, "created", saved.Created)
	}
	s.respond(w, r, id, err, pushStatus(saved), func() any { return viewPushSubscription(saved.PushSubscription) })
}

func pushStatus(saved escalation.SavedPushSubscription) int {
	if saved.Created {
		return http.StatusCreated
	}
	return http.StatusOK
}

func (s *Server) handleListPushSubscriptions(w http.ResponseWriter, r *http.Request, a *escalation.Actor) {
	if a.Role != escalation.RoleConsultant {
		s.writeError(w, r, errForbidden)
		return
	}
	subs, err := s.cfg.Service.PushSubscriptions(r.Context(), a.Username)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]pushSubscriptionView, len(subs))
	for i, p := range subs {
		out[i] = viewPushSubscription(p)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleDeletePushSubscription(w http.ResponseWriter, r *http.Request, a *escalation.Actor) {
	if a.Role != escalation.RoleConsultant {
		s.writeError(w, r, errForbidden)
		return
	}
	// Removing is idempotent: one already gone (or never the caller's) is
	// 204 too, and nothing is appended.
	id := escalation.PushSubscriptionID(r.PathValue("id"))
	err := s.cfg.Service.RemovePushSubscription(r.Context(), s.meta(r, a), a.Username, id, escalation.PushUnsubscribed)
	if err != nil && !errors.Is(err, escalation.ErrNotFound) {
		s.writeError(w, r, err)
		return
	}
	if err == nil {
		s.log.InfoContext(r.Context(), "push subscription removed", "user", a.Username, "subscription_id", id)
	}
	w.WriteHeader(http.StatusNoContent)
}

type receiptRequest struct {
	State  string `json:"state"`
	Device string `json:"device"`
}

// handlePageReceipt records a receipt from a device that has no pager
// socket (the service worker, on push arrival and on a notification click):
// it counts exactly as the socket's receipt does.
func (s *Server) handlePageReceipt(w http.ResponseWriter, r *http.Request, a *escalation.Actor) {
	if a.Role != escalation.RoleConsultant {
		s.writeError(w, r, errForbidden)
		return
	}
	var req receiptRequest
	if err := s.decode(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	switch {
	case req.State == "":
		s.writeError(w, r, &apiError{Status: 400, Code: "missing_field", Field: "state", Message: "Give the receipt's state: received or seen."})
		return
	case req.State != "received" && req.State != "seen":
		s.writeError(w, r, &apiError{Status: 400, Code: "invalid_value", Field: "state", Message: "state must be received or seen."})
		return
	case req.Device == "":
		req.Device = "push"
	case !deviceRE.MatchString(req.Device):
		s.writeError(w, r, &apiError{Status: 400, Code: "invalid_value", Field: "device", Message: "device is 1–64 letters, digits, dots, dashes or underscores."})
		return
	}
	var p *paging.Pager
	if s.cfg.Pager != nil {
		p = s.cfg.Pager.getPager()
	}
	if p == nil {
		s.writeError(w, r, newErr(http.StatusServiceUnavailable, "store_unavailable", "Paging is not running."))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	err := p.Receipt(ctx, r.PathValue("page_id"), a.Username, req.Device, req.State)
	if errors.Is(err, paging.ErrUnknownPage) {
		s.writeError(w, r, errNotFound)
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// serviceWorker serves the console's service worker at /sw.js, so that its
// scope is the whole origin (the console, and the case it opens).
func (s *Server) serviceWorker(w http.ResponseWriter, r *http.Request) {
	b, err := staticFS.ReadFile("static/sw.js")
	if err != nil {
		s.writeError(w, r, errNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Service-Worker-Allowed", "/")
	// A new worker reaches devices at once; browsers check at most daily anyway.
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(b)
}

// nameDelivery puts each paged consultant's name beside their username, for
// the home's waiting page ("Dr Okafor: received 02:11 on the phone").
func (s *Server) nameDelivery(ctx context.Context, esc *escalation.EscalationView) {
	names := map[escalation.Username]string{}
	for i := range esc.Delivery.Pages {
		cs := esc.Delivery.Pages[i].Consultants
		for j := range cs {
			u := cs[j].Username
			if _, ok := names[u]; !ok {
				if acct, err := s.sessions.account(ctx, string(u)); err == nil {
					names[u] = acct.Name
				} else {
					names[u] = ""
				}
			}
			cs[j].Name = names[u]
		}
	}
}
