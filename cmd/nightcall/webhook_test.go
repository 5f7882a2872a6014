package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

const webhookSecret = "test-webhook-secret-0123456789"

// webhookReceiver is a switchboard gateway on 127.0.0.1: it answers the
// statuses it is given in turn (the last repeats) and keeps every request.
type webhookReceiver struct {
	srv *httptest.Server

	mu       sync.Mutex
	answers  []int
	received []webhookMessage
}

type webhookMessage struct {
	at        time.Time
	raw       []byte
	body      map[string]any
	signature string
	delivery  string
	status    int
}

func newWebhookReceiver(t testing.TB, answers ...int) *webhookReceiver {
	if len(answers) == 0 {
		answers = []int{http.StatusOK}
	}
	h := &webhookReceiver{answers: answers}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var body map[string]any
		if err := json.Unmarshal(raw, &body); err != nil {
			t.Errorf("webhook body is not JSON: %q", raw)
		}
		h.mu.Lock()
		status := h.answers[min(len(h.received), len(h.answers)-1)]
		h.received = append(h.received, webhookMessage{at: time.Now(), raw: raw, body: body,
			signature: r.Header.Get("X-Nightcall-Signature"), delivery: r.Header.Get("X-Nightcall-Delivery"), status: status})
		h.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *webhookReceiver) messages() []webhookMessage {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]webhookMessage(nil), h.received...)
}

func withWebhook(h *webhookReceiver) func(*serveConfig) {
	return func(c *serveConfig) { c.PageWebhook, c.PageWebhookSecret = h.srv.URL+"/page", webhookSecret }
}

// verifySignature is what the README tells a gateway to do.
func verifySignature(secret string, body []byte, header string) bool {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hmac.Equal([]byte(header), []byte("sha256="+hex.EncodeToString(mac.Sum(nil))))
}

func TestPageWebhookIsSignedCarriesThePhoneAndIsRetriedAfterA500(t *testing.T) {
	hook := newWebhookReceiver(t, http.StatusInternalServerError, http.StatusOK)
	s := startServer(t, withWebhook(hook))
	admin, nurse := s.signedIn("admin"), s.signedIn("night.rose")
	// A consultant with a phone on record, first on the rota.
	user := map[string]any{"username": "dr.jones", "name": "Dr Ada Jones", "role": "consultant", "password": "a-long-test-password", "phone": "+447700900123"}
	if r := admin.do("POST", "/api/v1/users", user); r.status != 201 || r.json(t)["phone"] != "+447700900123" {
		t.Fatalf("create consultant: %d %s", r.status, r.body)
	}
	bad := map[string]any{"username": "dr.nophone", "name": "Dr No", "role": "consultant", "password": "a-long-test-password", "phone": "07700 900123"}
	if r := admin.do("POST", "/api/v1/users", bad); r.status != 400 || str(r.apiErr(t)["field"]) != "phone" {
		t.Errorf("a phone not in E.164: %d %s", r.status, r.body)
	}
	if r := admin.do("PUT", "/api/v1/rota/standing", map[string]any{"levels": [][]string{{"dr.jones"}, {"dr.patel"}}}); r.status != 200 {
		t.Fatalf("rota: %d %s", r.status, r.body)
	}
	id := str(nurse.do("POST", "/api/v1/escalations", raiseBody("rc-101")).json(t)["id"])

	var got []webhookMessage
	waitFor(t, 10*time.Second, "the page delivered on the second attempt", func() bool {
		got = hook.messages()
		return len(got) >= 2
	})
	first, second := got[0], got[1]
	if first.status != 500 || second.status != 200 || string(first.raw) != string(second.raw) || first.delivery == "" || first.delivery != second.delivery {
		t.Errorf("retry after a 500: statuses %d, %d; same body %v; delivery ids %q %q", first.status, second.status,
			string(first.raw) == string(second.raw), first.delivery, second.delivery)
	}
	if !verifySignature(webhookSecret, second.raw, second.signature) {
		t.Errorf("signature %q does not verify", second.signature)
	}
	if verifySignature("another-secret", second.raw, second.signature) {
		t.Errorf("the signature verifies with the wrong secret")
	}
	b := second.body
	consultant, _ := b["consultant"].(map[string]any)
	home, _ := b["care_home"].(map[string]any)
	score, _ := b["news2"].(map[string]any)
	if b["type"] != "page" || str(b["page_id"]) == "" || b["escalation_id"] != id || b["level"] != 1.0 || str(b["raised_at"]) == "" ||
		consultant["username"] != "dr.jones" || consultant["name"] != "Dr Ada Jones" || consultant["phone"] != "+447700900123" ||
		home["id"] != "rose-court" || home["name"] != "Rose Court" || home["fallback_phone"] != "+44 1632 960001" ||
		score["total"] != 8.0 || score["risk"] != "high" || score["partial"] != false {
		t.Errorf("webhook payload: %s", second.raw)
	}
	for _, secret := range []string{"Margaret", "Ellis", "breathless", "Looks unwell", "observations"} {
		if strings.Contains(string(second.raw), secret) {
			t.Errorf("the webhook payload holds %q", secret)
		}
	}
	if !strings.Contains(string(nurse.do("GET", "/metrics", nil).body), "nightcall_page_webhook_failures_total 1") {
		t.Errorf("the failed attempt is not counted in nightcall_page_webhook_failures_total")
	}

	// Accepting is posted too, so the gateway can stop calling.
	jones := newClient(t, s.base)
	jones.signIn("dr.jones", "a-long-test-password")
	if r := jones.do("POST", "/api/v1/escalations/"+id+"/accept", nil); r.status != 200 {
		t.Fatalf("accept: %d %s", r.status, r.body)
	}
	waitFor(t, 10*time.Second, "the cancellation posted", func() bool {
		for _, m := range hook.messages() {
			if m.body["type"] == "page_cancelled" && m.body["escalation_id"] == id && m.body["reason"] == "accepted" &&
				m.body["consultant"].(map[string]any)["phone"] == "+447700900123" && verifySignature(webhookSecret, m.raw, m.signature) {
				return true
			}
		}
		return false
	})
}
