package main

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// The roles of the authorisation matrix, in column order.
var authzRoles = []string{"nobody", "staff", "other-home", "on-call", "accepted", "off-call", "auditor", "admin", "gp", "guest", "disabled"}

// Expectations in a cell: A allowed (the request reached the handler's own
// checks: anything but 401, 403 and 404), U 401, F 403, N 404, X 403 or 404
// (refused without saying whether the thing exists).
//
// authzMatrix holds a row for every route the server registers, built from
// the router's own route list: a route without a row fails the test. The
// path is the route with its parameters filled in for the fixture below.
var authzMatrix = []struct {
	route, path, want string
	body              any // sent with POST, PUT and PATCH; {} when nil
}{
	//                                                                                                 nsoaxfdaggd
	{"GET /healthz", "/healthz", "AAAAAAAAAAA", nil},
	{"GET /readyz", "/readyz", "AAAAAAAAAAA", nil},
	{"GET /readyz/paging", "/readyz/paging", "AAAAAAAAAAA", nil},
	{"GET /metrics", "/metrics", "AAAAAAAAAAA", nil},
	{"GET /api/v1/openapi.yaml", "/api/v1/openapi.yaml", "AAAAAAAAAAA", nil},
	{"GET /{$}", "/", "AAAAAAAAAAA", nil},
	{"GET /static/", "/static/app.css", "AAAAAAAAAAA", nil},
	{"GET /sw.js", "/sw.js", "AAAAAAAAAAA", nil},
	{"GET /home", "/home", "AAAAAAAAAAA", nil},
	{"GET /console", "/console", "AAAAAAAAAAA", nil},
	{"GET /admin", "/admin", "AAAAAAAAAAA", nil},
	{"GET /audit", "/audit", "AAAAAAAAAAA", nil},
	{"GET /handover", "/handover", "AAAAAAAAAAA", nil},
	{"GET /call/{id}", "/call/{esc}", "AAAAAAAAAAA", nil},
	{"GET /call/invite/{id}/{token}", "/call/invite/{esc}/not-a-token", "AAAAAAAAAAA", nil},
	{"/api/", "/api/v1/no-such-route", "NNNNNNNNNNN", nil},
	{"POST /call/invite/{id}/{token}", "/call/invite/{esc}/not-a-token", "NNNNNNNNNNN", nil},
	{"POST /api/v1/session", "/api/v1/session", "AAAAAAAAAAA", nil},
	{"GET /api/v1/me", "/api/v1/me", "UAAAAAAAAUU", nil},
	{"GET /api/v1/rota/now", "/api/v1/rota/now", "UAAAAAAAFUU", nil},
	{"GET /api/v1/rota", "/api/v1/rota", "UFFFFFAAFUU", nil},
	{"GET /api/v1/rota/at", "/api/v1/rota/at?time=2026-12-01T03:00:00Z", "UFFFFFAAFUU", nil},
	{"PUT /api/v1/rota/shifts/{id}", "/api/v1/rota/shifts/s-1", "UFFFFFFAFUU", nil},
	{"DELETE /api/v1/rota/shifts/{id}", "/api/v1/rota/shifts/s-1", "UFFFFFFNFUU", nil},
	{"PUT /api/v1/rota/standing", "/api/v1/rota/standing", "UFFFFFFAFUU", map[string]any{"levels": [][]string{{"dr.okafor"}, {"dr.patel"}}}},
	{"POST /api/v1/rota/overrides", "/api/v1/rota/overrides", "UFFFFFFAFUU", nil},
	{"DELETE /api/v1/rota/overrides/{id}", "/api/v1/rota/overrides/o-1", "UFFFFFFNFUU", nil},
	{"POST /api/v1/news2", "/api/v1/news2", "UAAAAAAAFUU", nil},
	{"GET /api/v1/pager", "/api/v1/pager", "UFFAAAFFFUU", nil},
	{"GET /api/v1/residents", "/api/v1/residents", "UAAAAAAAFUU", nil},
	{"GET /api/v1/residents/{id}", "/api/v1/residents/rc-101", "UANAANAAFUU", nil},
	{"GET /api/v1/residents/{id}/events", "/api/v1/residents/rc-101/events", "UANAANAAFUU", nil},
	{"POST /api/v1/residents/{id}/observations", "/api/v1/residents/rc-102/observations", "UAXXXXXXFUU", map[string]any{"observations": map[string]any{"respiration_rate": 16, "spo2": 97, "systolic_bp": 120, "pulse": 70, "consciousness": "A", "temperature": 36.8}}},
	{"POST /api/v1/residents/{id}/hospital-admissions", "/api/v1/residents/rc-102/hospital-admissions", "UAXXXXXAFUU", map[string]any{"at": "2026-11-30T03:00:00Z", "kind": "ed_attendance", "unplanned": true, "reason": "fall"}},
	{"POST /api/v1/residents", "/api/v1/residents", "UAXXXXXAFUU", map[string]any{"id": "rc-150", "care_home_id": "rose-court", "name": "Ada Byron", "date_of_birth": "1935-12-10", "room": "15", "nhs_number": "9434765919"}},
	{"POST /api/v1/residents/import", "/api/v1/residents/import", "UFFFFFFAFUU", nil},
	{"POST /api/v1/residents/{id}/{change}", "/api/v1/residents/rc-102/baseline", "UAXXXXXAFUU", map[string]any{"news2_total": 1, "notes": "usual"}},
	{"GET /api/v1/care-homes", "/api/v1/care-homes", "UAAAAAAAFUU", nil},
	{"POST /api/v1/care-homes", "/api/v1/care-homes", "UFFFFFFAFUU", nil},
	{"GET /api/v1/care-homes/{id}/handover", "/api/v1/care-homes/rose-court/handover?date=2026-12-01", "UAXXXXXAAUU", nil},
	{"GET /api/v1/users", "/api/v1/users", "UFFFFFFAFUU", nil},
	{"POST /api/v1/users", "/api/v1/users", "UFFFFFFAFUU", nil},
	{"POST /api/v1/escalations", "/api/v1/escalations", "UAAFFFFFFUU", nil},
	{"GET /api/v1/escalations", "/api/v1/escalations", "UAAAAAAAFUU", nil},
	{"GET /api/v1/escalations/{id}", "/api/v1/escalations/{esc}", "UANAANAAFUU", nil},
	{"POST /api/v1/escalations/{id}/accept", "/api/v1/escalations/{esc}/accept", "UXXAAFXXFUU", nil},
	{"GET /api/v1/escalations/{id}/fhir", "/api/v1/escalations/{esc}/fhir", "UANAANAAFUU", nil},
	{"POST /api/v1/escalations/{id}/invites", "/api/v1/escalations/{esc}/invites", "UAXXAXXXFUU", map[string]any{"role": "relative"}},
	{"POST /api/v1/escalations/{id}/snapshots", "/api/v1/escalations/{esc}/snapshots", "UXXXAXXXFUU", tinyPNG},
	{"GET /api/v1/escalations/{id}/snapshots/{sid}", "/api/v1/escalations/{esc}/snapshots/no-such-snapshot", "UNNNNNNNFUU", nil},
	{"GET /api/v1/audit/admissions-avoided", "/api/v1/audit/admissions-avoided", "UFFFFFAAFUU", nil},
	{"GET /api/v1/audit/escalations.csv", "/api/v1/audit/escalations.csv", "UFFFFFAAFUU", nil},
	{"GET /api/v1/audit/access-log", "/api/v1/audit/access-log", "UFFFFFAAFUU", nil},
	{"GET /api/v1/calls/config", "/api/v1/calls/config", "AAAAAAAAAAA", nil},
	{"GET /api/v1/calls/{id}/signal", "/api/v1/calls/{esc}/signal", "UANXAXXXXAU", nil},
	{"GET /api/v1/calls/{id}/ice-servers", "/api/v1/calls/{esc}/ice-servers", "UANXAXXXXAU", nil},
	{"GET /api/v1/push/vapid-public-key", "/api/v1/push/vapid-public-key", "UFFAAAFFFUU", nil},
	{"GET /api/v1/push/subscriptions", "/api/v1/push/subscriptions", "UFFAAAFFFUU", nil},
	{"POST /api/v1/push/subscriptions", "/api/v1/push/subscriptions", "UFFAAAFFFUU", nil},
	{"DELETE /api/v1/push/subscriptions/{id}", "/api/v1/push/subscriptions/no-such-subscription", "UFFAAAFFFUU", nil},
	{"POST /api/v1/pages/{page_id}/receipts", "/api/v1/pages/no-such-page/receipts", "UFFAAAFFFUU", nil},
	// Rows that change the fixture come last, in this order.
	{"POST /api/v1/escalations/{id}/follow-up", "/api/v1/escalations/{esc}/follow-up", "UAXXXXXXFUU", nil},
	{"POST /api/v1/escalations/{id}/phone-fallback", "/api/v1/escalations/{esc}/phone-fallback", "UAXXAXXXFUU", nil},
	{"POST /api/v1/escalations/{id}/decision", "/api/v1/escalations/{esc}/decision", "UXXXAXXXFUU", map[string]any{"outcome": "stay", "counterfactual": "ed", "rationale": "r", "plan": "p"}},
	{"POST /api/v1/escalations/{id}/withdraw", "/api/v1/escalations/{esc}/withdraw", "UAXXXXXXFUU", map[string]any{"reason": "better"}},
	{"PATCH /api/v1/care-homes/{id}", "/api/v1/care-homes/ash-court", "UFFFFFFAFUU", nil},
	{"POST /api/v1/care-homes/{id}/deactivate", "/api/v1/care-homes/ash-court/deactivate", "UFFFFFFAFUU", nil},
	{"POST /api/v1/users/{username}/password", "/api/v1/users/night.ash/password", "UFFFFFFAFUU", nil},
	{"POST /api/v1/users/{username}/enable", "/api/v1/users/night.ash/enable", "UFFFFFFAFUU", nil},
	{"POST /api/v1/users/{username}/disable", "/api/v1/users/night.ash/disable", "UFFFFFFAFUU", nil},
	{"DELETE /api/v1/session", "/api/v1/session", "AAAAAAAAAAA", nil},
}

// TestAuthorisationMatrix: every role × every route and socket answers as
// the contract says. The matrix is held to the router's own route list, so a
// new route without a row fails here.
func TestAuthorisationMatrix(t *testing.T) {
	s := startServer(t)
	routes := s.app.server.Routes()
	var rows []string
	for _, r := range authzMatrix {
		rows = append(rows, r.route)
	}
	for _, r := range routes {
		if !slices.Contains(rows, r) {
			t.Errorf("route %q has no row in the authorisation matrix", r)
		}
	}
	for _, r := range rows {
		if !slices.Contains(routes, r) {
			t.Errorf("the matrix has a row for %q, which the server does not register", r)
		}
	}

	// The fixture: an escalation accepted by dr.okafor at rose-court, a
	// throwaway home and user for the admin routes, a GP of rose-court, a
	// guest invited to the call, and a consultant whose account is disabled
	// after signing in.
	admin := s.signedIn("admin")
	for _, req := range []struct {
		path string
		body any
	}{
		{"/api/v1/care-homes", map[string]any{"id": "ash-court", "name": "Ash Court", "fallback_phone": "+44 1632 960004"}},
		{"/api/v1/users", map[string]any{"username": "night.ash", "name": "Night Ash", "role": "carehome", "care_home_id": "ash-court", "password": "correct horse battery"}},
		{"/api/v1/users", map[string]any{"username": "dr.gp", "name": "Dr GP", "role": "gp", "care_home_ids": []string{"rose-court"}, "password": "correct horse battery"}},
		{"/api/v1/users", map[string]any{"username": "dr.gone", "name": "Dr Gone", "role": "consultant", "password": "correct horse battery"}},
	} {
		if r := admin.do("POST", req.path, req.body); r.status != 201 {
			t.Fatalf("fixture %s: %d %s", req.path, r.status, r.body)
		}
	}
	esc, nurse, okafor := acceptedEscalation(t, s)
	inv := okafor.do("POST", "/api/v1/escalations/"+esc+"/invites", map[string]string{"role": "gp"})
	guest := newClient(t, s.base)
	if r := guest.do("POST", str(inv.json(t)["url"]), nil); r.status != 204 {
		t.Fatalf("guest redeems the invite: %d %s", r.status, r.body)
	}
	gp := newClient(t, s.base)
	gp.signIn("dr.gp", "correct horse battery")
	gone := newClient(t, s.base)
	gone.signIn("dr.gone", "correct horse battery")
	if r := admin.do("POST", "/api/v1/users/dr.gone/disable", nil); r.status >= 300 {
		t.Fatalf("disable: %d %s", r.status, r.body)
	}
	clients := map[string]*client{
		"nobody": newClient(t, s.base), "staff": nurse, "other-home": s.signedIn("night.elm"),
		"on-call": s.signedIn("dr.patel"), "accepted": okafor, "off-call": s.signedIn("dr.adams"),
		"auditor": s.signedIn("auditor"), "admin": admin, "gp": gp, "guest": guest, "disabled": gone,
	}

	matches := func(want byte, status int) bool {
		switch want {
		case 'A':
			return status != 401 && status != 403 && status != 404
		case 'U':
			return status == 401
		case 'F':
			return status == 403
		case 'N':
			return status == 404
		case 'X':
			return status == 403 || status == 404
		}
		return false
	}
	// Sign-out last, so every other cell runs signed in.
	for _, row := range authzMatrix {
		if len(row.want) != len(authzRoles) {
			t.Fatalf("%s: %d cells, want %d", row.route, len(row.want), len(authzRoles))
		}
		method, _, hasMethod := strings.Cut(row.route, " ")
		if !hasMethod {
			method = http.MethodGet // a catch-all pattern
		}
		path := strings.ReplaceAll(row.path, "{esc}", esc)
		for i, role := range authzRoles {
			var body any
			if method != http.MethodGet && method != http.MethodDelete {
				body = row.body
				if body == nil {
					body = map[string]any{}
				}
			}
			c := clients[role]
			if row.route == "DELETE /api/v1/session" {
				c = newClient(t, s.base) // sign-out of a throwaway client
			}
			r := c.do(method, path, body, "Origin", s.base)
			if !matches(row.want[i], r.status) {
				t.Errorf("%s as %s: %d, want %c (%s)", row.route, role, r.status, row.want[i], strings.TrimSpace(string(r.body[:min(len(r.body), 160)])))
			}
		}
	}
	_ = time.Second
}

// tinyPNG is a 1×1 PNG.
var tinyPNG = []byte{0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
	0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00,
	0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0, 0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99,
	0x3d, 0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82}
