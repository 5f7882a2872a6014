package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/events"
)

// with returns raiseBody(resident) changed by fn.
func with(resident string, fn func(b map[string]any, obs map[string]any)) map[string]any {
	b := raiseBody(resident)
	fn(b, b["observations"].(map[string]any))
	return b
}

func TestBadInputIsRefusedAndChangesNothing(t *testing.T) {
	s := startServer(t)
	nurse := s.signedIn("night.rose")
	elm := s.signedIn("night.elm")
	okafor := s.signedIn("dr.okafor")
	patel := s.signedIn("dr.patel")
	adams := s.signedIn("dr.adams")
	anon := newClient(t, s.base)

	// Fixtures: rc-102 accepted by dr.okafor; rc-103 decided; eh-202 withdrawn, then died.
	accepted := str(nurse.do("POST", "/api/v1/escalations", with("rc-102", func(b, o map[string]any) {})).json(t)["id"])
	okafor.do("POST", "/api/v1/escalations/"+accepted+"/accept", nil)
	decided := str(nurse.do("POST", "/api/v1/escalations", with("rc-103", func(b, o map[string]any) {})).json(t)["id"])
	okafor.do("POST", "/api/v1/escalations/"+decided+"/accept", nil)
	if r := okafor.do("POST", "/api/v1/escalations/"+decided+"/decision", map[string]string{"outcome": "admit", "counterfactual": "ed", "rationale": "Needs IV"}); r.status != 201 {
		t.Fatalf("fixture decision: %d %s", r.status, r.body)
	}
	withdrawn := str(elm.do("POST", "/api/v1/escalations", with("eh-202", func(b, o map[string]any) {})).json(t)["id"])
	if r := elm.do("POST", "/api/v1/escalations/"+withdrawn+"/withdraw", map[string]string{"reason": "Settled"}); r.status != 200 {
		t.Fatalf("fixture withdraw: %d %s", r.status, r.body)
	}
	died, _ := json.Marshal(escalation.ResidentDied{At: time.Now().UTC(), Expected: true})
	if _, err := s.app.store.Append(context.Background(), "resident-eh-202", events.AnyVersion,
		[]events.NewEvent{{ID: uuid.NewString(), Type: escalation.TypeResidentDied, Data: died}}, events.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	// rc-101 gets an open escalation for the escalation_open case, raised last.
	open := str(nurse.do("POST", "/api/v1/escalations", raiseBody("rc-101")).json(t)["id"])

	big := `{"resident_id":"rc-101","sbard":{"situation":"` + strings.Repeat("x", 1<<20) + `"}}`
	// Free text that is not UTF-8: decoded, each bad byte would be stored as U+FFFD.
	valid, _ := json.Marshal(with("rc-102", func(b, o map[string]any) { b["sbard"] = map[string]string{"situation": "BAD"} }))
	notUTF8 := strings.Replace(string(valid), "BAD", "\xc7\xc7 breathless", 1)
	cases := []struct {
		name     string
		c        *client
		method   string
		path     string
		body     any
		headers  []string
		status   int
		code     string
		field    string
		resident string // whose stream must not change
	}{
		{"not JSON", nurse, "POST", "/api/v1/escalations", `{"resident_id":`, nil, 400, "invalid_json", "", "rc-102"},
		{"not UTF-8", nurse, "POST", "/api/v1/escalations", notUTF8, nil, 400, "invalid_json", "", "rc-102"},
		{"wrong type", nurse, "POST", "/api/v1/escalations", with("rc-102", func(b, o map[string]any) { o["spo2"] = "93" }), nil, 400, "invalid_json", "observations.spo2", "rc-102"},
		{"wrong type bool", nurse, "POST", "/api/v1/escalations", with("rc-102", func(b, o map[string]any) { o["on_oxygen"] = "no" }), nil, 400, "invalid_json", "observations.on_oxygen", "rc-102"},
		{"missing resident", nurse, "POST", "/api/v1/escalations", with("", func(b, o map[string]any) {}), nil, 400, "missing_field", "resident_id", "rc-102"},
		{"missing situation", nurse, "POST", "/api/v1/escalations", with("rc-102", func(b, o map[string]any) { delete(b, "sbard") }), nil, 400, "missing_field", "sbard.situation", "rc-102"},
		{"neither observations nor soft signs", nurse, "POST", "/api/v1/escalations", with("rc-102", func(b, o map[string]any) { delete(b, "observations"); delete(b, "soft_signs") }), nil, 400, "missing_field", "observations", "rc-102"},
		{"value left out without reason", nurse, "POST", "/api/v1/escalations", with("rc-102", func(b, o map[string]any) { delete(o, "pulse") }), nil, 400, "missing_field", "observations.pulse", "rc-102"},
		{"consciousness Z", nurse, "POST", "/api/v1/escalations", with("rc-102", func(b, o map[string]any) { o["consciousness"] = "Z" }), nil, 400, "invalid_value", "observations.consciousness", "rc-102"},
		{"unknown soft sign", nurse, "POST", "/api/v1/escalations", with("rc-102", func(b, o map[string]any) { b["soft_signs"] = []string{"breathless", "grumpy"} }), nil, 400, "invalid_value", "soft_signs", "rc-102"},
		{"unknown absent reason", nurse, "POST", "/api/v1/escalations", with("rc-102", func(b, o map[string]any) {
			delete(o, "temperature")
			o["absent"] = map[string]string{"temperature": "forgot"}
		}), nil, 400, "invalid_value", "observations.absent.temperature", "rc-102"},
		{"SpO2 49", nurse, "POST", "/api/v1/escalations", with("rc-102", func(b, o map[string]any) { o["spo2"] = 49 }), nil, 422, "implausible_observation", "observations.spo2", "rc-102"},
		{"respiration 0", nurse, "POST", "/api/v1/escalations", with("rc-102", func(b, o map[string]any) { o["respiration_rate"] = 0 }), nil, 422, "implausible_observation", "observations.respiration_rate", "rc-102"},
		{"temperature 45.1", nurse, "POST", "/api/v1/escalations", with("rc-102", func(b, o map[string]any) { o["temperature"] = 45.1 }), nil, 422, "implausible_observation", "observations.temperature", "rc-102"},
		{"systolic 301", nurse, "POST", "/api/v1/escalations", with("rc-102", func(b, o map[string]any) { o["systolic_bp"] = 301 }), nil, 422, "implausible_observation", "observations.systolic_bp", "rc-102"},
		{"pulse 19", nurse, "POST", "/api/v1/escalations", with("rc-102", func(b, o map[string]any) { o["pulse"] = 19 }), nil, 422, "implausible_observation", "observations.pulse", "rc-102"},
		{"new confusion but alert", nurse, "POST", "/api/v1/escalations", with("rc-102", func(b, o map[string]any) { b["soft_signs"] = []string{"new_confusion"} }), nil, 422, "inconsistent_observation", "observations.consciousness", "rc-102"},
		{"value and absent both", nurse, "POST", "/api/v1/escalations", with("rc-102", func(b, o map[string]any) { o["absent"] = map[string]string{"pulse": "refused"} }), nil, 422, "inconsistent_observation", "observations.pulse", "rc-102"},
		{"no session", anon, "POST", "/api/v1/escalations", raiseBody("rc-102"), nil, 401, "unauthenticated", "", "rc-102"},
		{"consultant raising", okafor, "POST", "/api/v1/escalations", raiseBody("rc-102"), nil, 403, "forbidden", "", "rc-102"},
		{"another home's resident", elm, "POST", "/api/v1/escalations", raiseBody("rc-102"), nil, 404, "not_found", "", "rc-102"},
		{"unknown resident", nurse, "POST", "/api/v1/escalations", raiseBody("rc-999"), nil, 404, "not_found", "", "rc-102"},
		{"body over 1 MiB", nurse, "POST", "/api/v1/escalations", big, nil, 413, "body_too_large", "", "rc-101"},
		{"cross-origin", nurse, "POST", "/api/v1/escalations", raiseBody("rc-102"), []string{"Origin", "http://evil.example", "Sec-Fetch-Site", "cross-site"}, 403, "forbidden", "", "rc-102"},
		{"already open", nurse, "POST", "/api/v1/escalations", raiseBody("rc-101"), nil, 409, "escalation_open", "", "rc-101"},
		{"resident died", elm, "POST", "/api/v1/escalations", raiseBody("eh-202"), nil, 409, "resident_inactive", "", "eh-202"},
		{"another home's escalation", elm, "GET", "/api/v1/escalations/" + accepted, nil, nil, 404, "not_found", "", "rc-102"},
		{"unknown escalation", okafor, "POST", "/api/v1/escalations/nope/accept", nil, nil, 404, "not_found", "", "rc-102"},
		{"staff accepting", nurse, "POST", "/api/v1/escalations/" + open + "/accept", nil, nil, 403, "forbidden", "", "rc-101"},
		{"consultant off the rota accepting", adams, "POST", "/api/v1/escalations/" + open + "/accept", nil, nil, 403, "forbidden", "", "rc-101"},
		{"second consultant accepting", patel, "POST", "/api/v1/escalations/" + accepted + "/accept", nil, nil, 409, "already_accepted", "", "rc-102"},
		{"decision before accept", okafor, "POST", "/api/v1/escalations/" + open + "/decision", map[string]string{"outcome": "stay", "counterfactual": "ed", "rationale": "r", "plan": "p"}, nil, 409, "not_accepted", "", "rc-101"},
		{"decision by another consultant", patel, "POST", "/api/v1/escalations/" + accepted + "/decision", map[string]string{"outcome": "stay", "counterfactual": "ed", "rationale": "r", "plan": "p"}, nil, 403, "forbidden", "", "rc-102"},
		{"outcome maybe", okafor, "POST", "/api/v1/escalations/" + accepted + "/decision", map[string]string{"outcome": "maybe", "counterfactual": "ed", "rationale": "r"}, nil, 400, "invalid_value", "outcome", "rc-102"},
		{"counterfactual missing", okafor, "POST", "/api/v1/escalations/" + accepted + "/decision", map[string]string{"outcome": "admit", "rationale": "r"}, nil, 400, "missing_field", "counterfactual", "rc-102"},
		{"stay without plan", okafor, "POST", "/api/v1/escalations/" + accepted + "/decision", map[string]string{"outcome": "stay", "counterfactual": "gp", "rationale": "r"}, nil, 400, "missing_field", "plan", "rc-102"},
		{"decided twice", okafor, "POST", "/api/v1/escalations/" + decided + "/decision", map[string]string{"outcome": "stay", "counterfactual": "ed", "rationale": "r", "plan": "p"}, nil, 409, "already_decided", "", "rc-103"},
		{"withdraw after decision", nurse, "POST", "/api/v1/escalations/" + decided + "/withdraw", map[string]string{"reason": "x"}, nil, 409, "already_decided", "", "rc-103"},
		{"withdrawn twice", elm, "POST", "/api/v1/escalations/" + withdrawn + "/withdraw", map[string]string{"reason": "x"}, nil, 409, "escalation_closed", "", "eh-202"},
		{"accept after withdrawal", okafor, "POST", "/api/v1/escalations/" + withdrawn + "/accept", nil, nil, 409, "escalation_closed", "", "eh-202"},
		{"withdraw without reason", nurse, "POST", "/api/v1/escalations/" + open + "/withdraw", map[string]string{}, nil, 400, "missing_field", "reason", "rc-101"},
		{"admission kind", nurse, "POST", "/api/v1/residents/rc-102/hospital-admissions", map[string]any{"at": "2026-11-20T10:00:00Z", "kind": "holiday", "unplanned": true}, nil, 400, "invalid_value", "kind", "rc-102"},
		{"admission without time", nurse, "POST", "/api/v1/residents/rc-102/hospital-admissions", map[string]any{"kind": "admission", "unplanned": true}, nil, 400, "missing_field", "at", "rc-102"},
		{"admission for another home", elm, "POST", "/api/v1/residents/rc-102/hospital-admissions", map[string]any{"at": "2026-11-20T10:00:00Z", "kind": "admission", "unplanned": true}, nil, 404, "not_found", "", "rc-102"},
		{"admission by a consultant", okafor, "POST", "/api/v1/residents/rc-102/hospital-admissions", map[string]any{"at": "2026-11-20T10:00:00Z", "kind": "admission", "unplanned": true}, nil, 403, "forbidden", "", "rc-102"},
		{"another home's resident read", elm, "GET", "/api/v1/residents/rc-102", nil, nil, 404, "not_found", "", "rc-102"},
		{"another home's events read", elm, "GET", "/api/v1/residents/rc-102/events", nil, nil, 404, "not_found", "", "rc-102"},
		{"bad status filter", okafor, "GET", "/api/v1/escalations?status=maybe", nil, nil, 400, "invalid_value", "status", "rc-102"},
		{"news2 without session", anon, "POST", "/api/v1/news2", map[string]any{"observations": map[string]any{}}, nil, 401, "unauthenticated", "", "rc-102"},
		{"news2 scale 3", nurse, "POST", "/api/v1/news2", map[string]any{"observations": raiseBody("x")["observations"], "spo2_scale": 3}, nil, 400, "invalid_value", "spo2_scale", "rc-102"},
		{"news2 implausible", nurse, "POST", "/api/v1/news2", map[string]any{"observations": with("x", func(b, o map[string]any) { o["temperature"] = 24.9 })["observations"]}, nil, 422, "implausible_observation", "observations.temperature", "rc-102"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := s.streamLen(tc.resident)
			resp := tc.c.do(tc.method, tc.path, tc.body, tc.headers...)
			if resp.status != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.status, tc.status, resp.body)
			}
			e := resp.apiErr(t)
			if e["code"] != tc.code || str(e["field"]) != tc.field || str(e["message"]) == "" {
				t.Errorf("error %v, want code %s field %q", e, tc.code, tc.field)
			}
			if tc.code == "escalation_open" && e["escalation_id"] != open {
				t.Errorf("escalation_open names %v, want %s", e["escalation_id"], open)
			}
			if tc.code == "already_accepted" && e["accepted_by"].(map[string]any)["username"] != "dr.okafor" {
				t.Errorf("already_accepted names %v", e["accepted_by"])
			}
			if after := s.streamLen(tc.resident); after != before {
				t.Errorf("resident %s stream grew from %d to %d", tc.resident, before, after)
			}
		})
	}
	// The process is unharmed.
	if r := nurse.do("GET", "/api/v1/escalations/"+open, nil); r.status != 200 {
		t.Fatalf("after the bad input: %d %s", r.status, r.body)
	}
}

func TestSignInRateLimitPerAddress(t *testing.T) {
	// The limits' clock stands still: ten password checks may take longer
	// than the 6 s in which one failure's token comes back on a busy machine.
	still := time.Now()
	s := startServer(t, func(c *serveConfig) { c.signInClock = func() time.Time { return still } })
	// Two loopback source addresses: 127.0.0.1 and 127.0.0.2.
	from := func(ip string) *client {
		c := newClient(t, s.base)
		jar, _ := cookiejar.New(nil)
		c.http = &http.Client{Jar: jar, Timeout: 30 * time.Second, Transport: &http.Transport{
			DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}).DialContext,
		}}
		return c
	}
	attacker, owner := from("127.0.0.2"), from("127.0.0.1")
	for i := 0; i < 10; i++ {
		r := attacker.do("POST", "/api/v1/session", map[string]string{"username": "dr.okafor", "password": "wrong"})
		if r.status != 401 || r.apiErr(t)["code"] != "unauthenticated" {
			t.Fatalf("failure %d: %d %s", i, r.status, r.body)
		}
	}
	r := attacker.do("POST", "/api/v1/session", map[string]string{"username": "dr.okafor", "password": "test-password"})
	if r.status != 429 || r.apiErr(t)["code"] != "rate_limited" || r.header.Get("Retry-After") == "" {
		t.Fatalf("11th attempt from the same address: %d %s (Retry-After %q)", r.status, r.body, r.header.Get("Retry-After"))
	}
	// The right password from another address is never refused for those failures.
	owner.signIn("dr.okafor", "test-password")
	// Unknown users get the same answer as a wrong password.
	u := owner.do("POST", "/api/v1/session", map[string]string{"username": "nobody", "password": "x"})
	w := owner.do("POST", "/api/v1/session", map[string]string{"username": "dr.patel", "password": "x"})
	if u.status != 401 || w.status != 401 || u.apiErr(t)["message"] != w.apiErr(t)["message"] {
		t.Errorf("unknown user %d %s vs wrong password %d %s", u.status, u.body, w.status, w.body)
	}
}

func TestIdempotencyKey(t *testing.T) {
	s := startServer(t)
	nurse := s.signedIn("night.rose")
	day := s.signedIn("day.rose")
	body := raiseBody("rc-101")

	first := nurse.do("POST", "/api/v1/escalations", body, "Idempotency-Key", "k-1")
	if first.status != 201 {
		t.Fatalf("first: %d %s", first.status, first.body)
	}
	n := s.streamLen("rc-101")
	again := nurse.do("POST", "/api/v1/escalations", body, "Idempotency-Key", "k-1")
	if again.status != 201 || string(again.body) != string(first.body) || again.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: %d %s", again.status, again.body)
	}
	if s.streamLen("rc-101") != n {
		t.Fatalf("replay appended events")
	}
	other := with("rc-101", func(b, o map[string]any) { o["pulse"] = 120 })
	r := nurse.do("POST", "/api/v1/escalations", other, "Idempotency-Key", "k-1")
	if r.status != 422 || r.apiErr(t)["code"] != "idempotency_key_reused" || s.streamLen("rc-101") != n {
		t.Fatalf("same key, other body: %d %s", r.status, r.body)
	}
	// Another user's identical key is their own: day.rose raises for rc-102.
	mine := day.do("POST", "/api/v1/escalations", raiseBody("rc-102"), "Idempotency-Key", "k-1")
	if mine.status != 201 || mine.json(t)["id"] == first.json(t)["id"] {
		t.Fatalf("other user's key collided: %d %s", mine.status, mine.body)
	}
	// The same key on another route is another request.
	id := str(first.json(t)["id"])
	w := nurse.do("POST", "/api/v1/escalations/"+id+"/withdraw", map[string]string{"reason": "Better now"}, "Idempotency-Key", "k-1")
	if w.status != 200 || w.json(t)["status"] != "withdrawn" {
		t.Fatalf("same key on withdraw: %d %s", w.status, w.body)
	}
	w2 := nurse.do("POST", "/api/v1/escalations/"+id+"/withdraw", map[string]string{"reason": "Better now"}, "Idempotency-Key", "k-1")
	if w2.status != 200 || string(w2.body) != string(w.body) {
		t.Fatalf("withdraw replay: %d %s (a second real withdraw would be 409)", w2.status, w2.body)
	}
}

func TestStoreDownAnswers503WithFallbackPhone(t *testing.T) {
	s := startServer(t)
	nurse := s.signedIn("night.rose")
	before := s.streamLen("rc-101")
	s.app.store.Close()
	start := time.Now()
	r := nurse.do("POST", "/api/v1/escalations", raiseBody("rc-101"))
	if r.status != 503 {
		t.Fatalf("raise with the store down: %d %s", r.status, r.body)
	}
	if e := r.apiErr(t); e["code"] != "store_unavailable" || e["fallback_phone"] != "+44 1632 960001" {
		t.Errorf("error: %v", e)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("503 took %v; it must come at once", d)
	}
	for _, path := range []string{"/readyz", "/readyz/paging"} {
		resp, err := http.Get(s.base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 503 {
			t.Errorf("%s with the store down: %d", path, resp.StatusCode)
		}
	}
	_ = before
}
