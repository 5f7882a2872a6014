package main

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestEveryStateChangeHonoursIdempotencyKey: each POST (and PUT/PATCH) that
// creates or changes state, repeated with the same key and body, answers the
// first response byte for byte and appends nothing; the same key with
// another body is 422.
func TestEveryStateChangeHonoursIdempotencyKey(t *testing.T) {
	s := startServer(t)
	admin, nurse, okafor := s.signedIn("admin"), s.signedIn("night.rose"), s.signedIn("dr.okafor")
	id, _, _ := acceptedEscalation(t, s)
	_ = nurse
	now := time.Now().UTC()
	cases := []struct {
		name   string
		c      *client
		method string
		path   string
		body   any
		other  any
	}{
		{"create a home", admin, "POST", "/api/v1/care-homes", map[string]any{"id": "ash-court", "name": "Ash Court", "fallback_phone": "+44 1632 960004"},
			map[string]any{"id": "ash-court", "name": "Ash Court", "fallback_phone": "+44 1632 960005"}},
		{"update a home", admin, "PATCH", "/api/v1/care-homes/ash-court", map[string]any{"name": "Ash Court Nursing"}, map[string]any{"name": "Ash"}},
		{"admit a resident", admin, "POST", "/api/v1/residents", map[string]any{"id": "ac-1", "care_home_id": "ash-court", "name": "Ada Byron", "date_of_birth": "1935-12-10", "room": "1", "nhs_number": "9434765919"},
			map[string]any{"id": "ac-1", "care_home_id": "ash-court", "name": "Ada Lovelace", "date_of_birth": "1935-12-10", "room": "1", "nhs_number": "9434765919"}},
		{"change a baseline", admin, "POST", "/api/v1/residents/ac-1/baseline", map[string]any{"news2_total": 2, "notes": "usual"}, map[string]any{"news2_total": 3}},
		{"create a user", admin, "POST", "/api/v1/users", map[string]any{"username": "night.ash", "name": "Night Ash", "role": "carehome", "care_home_id": "ash-court", "password": "correct horse battery"},
			map[string]any{"username": "night.ash", "name": "Night Ashley", "role": "carehome", "care_home_id": "ash-court", "password": "correct horse battery"}},
		{"reset a password (204)", admin, "POST", "/api/v1/users/night.ash/password", map[string]any{"password": "a new horse battery"},
			"not JSON"},
		{"add a rota override", admin, "POST", "/api/v1/rota/overrides", map[string]any{"from": now.Add(time.Hour), "to": now.Add(2 * time.Hour), "covered": "dr.okafor", "by": "dr.adams"},
			map[string]any{"from": now.Add(time.Hour), "to": now.Add(3 * time.Hour), "covered": "dr.okafor", "by": "dr.adams"}},
		{"invite a guest", okafor, "POST", "/api/v1/escalations/" + id + "/invites", map[string]any{"role": "gp"}, map[string]any{"role": "relative"}},
		{"record observations", s.signedIn("night.rose"), "POST", "/api/v1/residents/rc-102/observations", map[string]any{"observations": map[string]any{"respiration_rate": 16, "spo2": 97, "systolic_bp": 120, "pulse": 70, "consciousness": "A", "temperature": 36.8}},
			map[string]any{"observations": map[string]any{"respiration_rate": 18, "spo2": 97, "systolic_bp": 120, "pulse": 70, "consciousness": "A", "temperature": 36.8}}},
	}
	head := func() int64 {
		h, err := s.app.store.Head(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	for i, c := range cases {
		key := fmt.Sprintf("idem-%d", i)
		first := c.c.do(c.method, c.path, c.body, "Idempotency-Key", key)
		if first.status >= 300 {
			t.Errorf("%s: first %d %s", c.name, first.status, first.body)
			continue
		}
		before := head()
		again := c.c.do(c.method, c.path, c.body, "Idempotency-Key", key)
		if again.status != first.status || string(again.body) != string(first.body) || again.header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("%s: replay %d %q (replayed %q), first %d %q", c.name, again.status, again.body, again.header.Get("Idempotent-Replayed"), first.status, first.body)
		}
		if head() != before {
			t.Errorf("%s: the replay appended events", c.name)
		}
		if r := c.c.do(c.method, c.path, c.other, "Idempotency-Key", key); r.status != 422 || r.apiErr(t)["code"] != "idempotency_key_reused" {
			t.Errorf("%s: same key, other body: %d %s", c.name, r.status, r.body)
		}
		if head() != before {
			t.Errorf("%s: a reused key appended events", c.name)
		}
	}
}
