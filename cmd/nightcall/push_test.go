package main

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/events"
	"github.com/nightcall-health/nightcall/events/redis/redistest"
	"github.com/nightcall-health/nightcall/events/sqlite"
)

// withPush points the server's Web Push at the test push service.
func withPush(ps *pushService) func(*serveConfig) {
	return func(c *serveConfig) { c.PushAllowedHosts = ps.host() }
}

// trustServer tells the push service the server's VAPID public key, read
// from the API as a browser would.
func trustServer(t *testing.T, ps *pushService, consultant *client) string {
	t.Helper()
	r := consultant.do("GET", "/api/v1/push/vapid-public-key", nil)
	if r.status != 200 {
		t.Fatalf("vapid-public-key: %d %s", r.status, r.body)
	}
	key := str(r.json(t)["public_key"])
	ps.trust(key)
	return key
}

// subscribeDevice posts a subscription of the push service for the consultant.
func subscribeDevice(t *testing.T, ps *pushService, consultant *client, name string, answers ...int) string {
	t.Helper()
	_, sub := ps.subscribe(name, answers...)
	r := consultant.do("POST", "/api/v1/push/subscriptions", sub)
	if r.status != 201 {
		t.Fatalf("subscribe %s: %d %s", name, r.status, r.body)
	}
	return str(r.json(t)["id"])
}

// nextPage waits for a page (not a cancellation) of escalation id at sub.
func (p *pushService) nextPage(sub, id string, d time.Duration) pushed {
	p.t.Helper()
	deadline := time.Now().Add(d)
	for {
		m := p.next(sub, time.Until(deadline))
		if m.payload["type"] == "page" && (id == "" || m.payload["escalation_id"] == id) {
			return m
		}
	}
}

func TestWebPushPageCarriesNoPatientDetailsAndCountsAsDelivered(t *testing.T) {
	ps := newPushService(t, 30*time.Second)
	s := startServer(t, withPush(ps), timeouts(30*time.Second, 2*time.Second))
	nurse, okafor, patel := s.signedIn("night.rose"), s.signedIn("dr.okafor"), s.signedIn("dr.patel")
	key := trustServer(t, ps, okafor)
	if len(key) != 87 { // 65 bytes, base64url without padding
		t.Errorf("VAPID public key %q is not an uncompressed P-256 point", key)
	}
	subID := subscribeDevice(t, ps, okafor, "okafor-phone")

	// The same endpoint again updates (200, the same id), never doubles.
	_, again := ps.subscribe("okafor-phone")
	r := okafor.do("POST", "/api/v1/push/subscriptions", again)
	if r.status != 200 || str(r.json(t)["id"]) != subID {
		t.Fatalf("the same endpoint again: %d %s (first id %s)", r.status, r.body, subID)
	}
	if list := okafor.do("GET", "/api/v1/push/subscriptions", nil).list(t); len(list) != 1 || str(list[0]["id"]) != subID {
		t.Fatalf("subscriptions after posting one endpoint twice: %v", list)
	}
	if list := patel.do("GET", "/api/v1/push/subscriptions", nil).list(t); len(list) != 0 {
		t.Fatalf("another consultant sees %v", list)
	}

	id := str(nurse.do("POST", "/api/v1/escalations", raiseBody("rc-101")).json(t)["id"])
	m := ps.nextPage("okafor-phone", id, 10*time.Second)
	p := m.payload
	home, _ := p["care_home"].(map[string]any)
	score, _ := p["news2"].(map[string]any)
	if p["type"] != "page" || str(p["page_id"]) == "" || p["escalation_id"] != id || p["level"] != 1.0 ||
		home["id"] != "rose-court" || home["name"] != "Rose Court" || str(p["raised_at"]) == "" ||
		score["total"] != 8.0 || score["risk"] != "high" || score["partial"] != false {
		t.Fatalf("push payload: %s", m.raw)
	}
	if m.ttl < 1 || m.ttl > 30 {
		t.Errorf("TTL %d, want 1–30 s (the page timeout)", m.ttl)
	}
	// Nothing of the resident: no name, no observation, no free text. The
	// IDs and times are taken out first (a UUID can hold "104").
	rest := map[string]any{}
	for k, v := range p {
		if !slices.Contains([]string{"page_id", "escalation_id", "device", "raised_at", "expires_at"}, k) {
			rest[k] = v
		}
	}
	scan, _ := json.Marshal(rest)
	for _, secret := range []string{"Margaret", "Ellis", "rc-101", "breathless", "See care plan", "Looks unwell",
		"Please review", "respiration", "spo2", "112", "38.4", "104", "22", "93", "observations", "sbard", "soft_signs", "subscores"} {
		if strings.Contains(strings.ToLower(string(scan)), strings.ToLower(secret)) || strings.Contains(m.raw, "Margaret") || strings.Contains(m.raw, "Ellis") {
			t.Errorf("the lock-screen payload holds %q: %s", secret, m.raw)
		}
	}

	// The service worker's `received` counts as the socket's: the receipt
	// timeout (2 s) does not page the next level.
	pageID, device := str(p["page_id"]), str(p["device"])
	if device != "push-"+subID {
		t.Errorf("payload device %q, want push-%s", device, subID)
	}
	for range 2 { // twice: recorded once
		if r := okafor.do("POST", "/api/v1/pages/"+pageID+"/receipts", map[string]string{"state": "received", "device": device}); r.status != 204 {
			t.Fatalf("received receipt: %d %s", r.status, r.body)
		}
	}
	if r := okafor.do("POST", "/api/v1/pages/"+pageID+"/receipts", map[string]string{"state": "seen", "device": device}); r.status != 204 {
		t.Fatalf("seen receipt: %d %s", r.status, r.body)
	}
	if r := patel.do("POST", "/api/v1/pages/"+pageID+"/receipts", map[string]string{"state": "received"}); r.status != 404 {
		t.Errorf("a receipt for another consultant's page: %d %s", r.status, r.body)
	}
	var esc map[string]any
	waitFor(t, 5*time.Second, "the push receipts in the timeline", func() bool {
		esc = nurse.do("GET", "/api/v1/escalations/"+id, nil).json(t)
		types := timelineTypes(esc)
		return count(types, "escalation.page_received") == 1 && count(types, "escalation.page_seen") == 1
	})
	pages := esc["delivery"].(map[string]any)["pages"].([]any)
	first := pages[0].(map[string]any)
	who := first["consultants"].([]any)[0].(map[string]any)
	dev := who["devices"].([]any)[0].(map[string]any)
	if who["name"] != "Dr Chidi Okafor" || dev["channel"] != "push" || dev["received_at"] == nil || dev["seen_at"] == nil {
		t.Errorf("delivery as the home sees it: %v", first)
	}
	deadline := time.Now().Add(4 * time.Second) // twice the receipt timeout
	for time.Now().Before(deadline) {
		if types := timelineTypes(nurse.do("GET", "/api/v1/escalations/"+id, nil).json(t)); count(types, "escalation.page_timed_out") > 0 {
			t.Fatalf("a delivered push did not stop the receipt timeout: %v", types)
		}
		time.Sleep(200 * time.Millisecond)
	}
	evs, err := s.app.store.Load(context.Background(), escalation.PagingStream(escalation.EscalationID(id)), 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range evs {
		if e.Type == escalation.TypePageReceived {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d received events for one device's receipt posted twice", n)
	}

	// Accepting cancels: the push takes the page off the lock screen.
	if r := okafor.do("POST", "/api/v1/escalations/"+id+"/accept", nil); r.status != 200 {
		t.Fatalf("accept: %d %s", r.status, r.body)
	}
	for {
		c := ps.next("okafor-phone", 5*time.Second)
		if c.payload["type"] == "page_cancelled" {
			if c.payload["escalation_id"] != id || c.payload["reason"] != "accepted" || c.topic != m.topic {
				t.Errorf("cancellation %s (topic %q, page's %q)", c.raw, c.topic, m.topic)
			}
			break
		}
	}
}

func TestWebPushGoneRemovesTheSubscriptionAndFailuresAreRetried(t *testing.T) {
	ps := newPushService(t, time.Minute)
	s := startServer(t, withPush(ps))
	nurse, okafor := s.signedIn("night.rose"), s.signedIn("dr.okafor")
	trustServer(t, ps, okafor)
	goneID := subscribeDevice(t, ps, okafor, "old-tablet", http.StatusGone)
	subscribeDevice(t, ps, okafor, "flaky-phone", http.StatusInternalServerError, http.StatusTooManyRequests, http.StatusCreated)

	id := str(nurse.do("POST", "/api/v1/escalations", raiseBody("rc-101")).json(t)["id"])
	ps.nextPage("flaky-phone", id, 15*time.Second)
	if n := ps.requestsTo("flaky-phone"); n != 3 {
		t.Errorf("the flaky endpoint got %d pushes, want 3 (500, 429, then delivered)", n)
	}
	waitFor(t, 5*time.Second, "the gone subscription removed", func() bool {
		for _, sub := range okafor.do("GET", "/api/v1/push/subscriptions", nil).list(t) {
			if str(sub["id"]) == goneID {
				return false
			}
		}
		return true
	})
	if n := ps.requestsTo("old-tablet"); n != 1 {
		t.Errorf("a 410 endpoint got %d pushes, want 1", n)
	}
	evs, err := s.app.store.Load(context.Background(), escalation.PushStream("dr.okafor"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if last := evs[len(evs)-1]; last.Type != escalation.TypePushSubscriptionRemoved || !strings.Contains(string(last.Data), `"gone"`) {
		t.Errorf("the removal on record: %s %s", last.Type, last.Data)
	}
	// The consultant removes a device; removing it again is 204 and records nothing.
	list := okafor.do("GET", "/api/v1/push/subscriptions", nil).list(t)
	if len(list) != 1 {
		t.Fatalf("subscriptions left: %v", list)
	}
	for range 2 {
		if r := okafor.do("DELETE", "/api/v1/push/subscriptions/"+str(list[0]["id"]), nil); r.status != 204 {
			t.Fatalf("delete: %d %s", r.status, r.body)
		}
	}
	after, _ := s.app.store.Load(context.Background(), escalation.PushStream("dr.okafor"), 0)
	if len(after) != len(evs)+1 {
		t.Errorf("two deletes appended %d events, want 1", len(after)-len(evs))
	}
}

func TestWebPushHangingServiceDoesNotDelayAnotherConsultant(t *testing.T) {
	ps := newPushService(t, time.Minute)
	s := startServer(t, withPush(ps))
	admin, nurse, okafor, patel := s.signedIn("admin"), s.signedIn("night.rose"), s.signedIn("dr.okafor"), s.signedIn("dr.patel")
	if r := admin.do("PUT", "/api/v1/rota/standing", map[string]any{"levels": [][]string{{"dr.okafor", "dr.patel"}}}); r.status != 200 {
		t.Fatalf("rota: %d %s", r.status, r.body)
	}
	trustServer(t, ps, okafor)
	subscribeDevice(t, ps, okafor, "okafor-hangs", 0)
	subscribeDevice(t, ps, patel, "patel-phone")

	// Many pages at once to the consultant whose push service hangs: each
	// holds a request open, and the other consultant's pages still arrive.
	ids := []string{str(nurse.do("POST", "/api/v1/escalations", raiseBody("rc-101")).json(t)["id"])}
	waitFor(t, 5*time.Second, "the first push to the hanging service held open", func() bool { return ps.hanging() > 0 })
	for _, rid := range []string{"rc-102", "rc-103"} {
		ids = append(ids, str(nurse.do("POST", "/api/v1/escalations", raiseBody(rid)).json(t)["id"]))
	}
	elm := s.signedIn("night.elm")
	for _, rid := range []string{"eh-201", "eh-202"} {
		ids = append(ids, str(elm.do("POST", "/api/v1/escalations", raiseBody(rid)).json(t)["id"]))
	}
	got := map[string]bool{}
	for len(got) < len(ids) {
		m := ps.nextPage("patel-phone", "", 10*time.Second)
		got[str(m.payload["escalation_id"])] = true
	}
	if ps.hanging() == 0 {
		t.Fatal("the hanging pushes were let go: the test proves nothing")
	}
	t.Logf("%d pages reached patel while %d pushes to okafor's push service hung", len(got), ps.hanging())
}

// failingStore fails every append while failing is set (a full disk, a
// lost Redis primary), for the pager's writes.
type failingStore struct {
	events.Store
	failing atomic.Bool
	failed  atomic.Int64
}

func (f *failingStore) Append(ctx context.Context, stream string, expected int64, evs []events.NewEvent, opts events.AppendOptions) ([]events.Envelope, error) {
	if f.failing.Load() {
		f.failed.Add(1)
		return nil, &events.StoreError{Op: "append", Stream: stream, Err: errors.New("injected failure: no space left on device")}
	}
	return f.Store.Append(ctx, stream, expected, evs, opts)
}

func readyStatus(t *testing.T, s *testServer) int { return readyStatusOf(t, s, "/readyz") }

// readyStatusOf is the status of a readiness check (path: /readyz or
// /readyz/paging).
func readyStatusOf(t *testing.T, s *testServer, path string) int {
	t.Helper()
	resp, err := http.Get(s.base + path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func stalledMetric(t *testing.T, c *client) string {
	for _, line := range strings.Split(string(c.do("GET", "/metrics", nil).body), "\n") {
		if strings.HasPrefix(line, "nightcall_consumers_stalled ") {
			return strings.TrimPrefix(line, "nightcall_consumers_stalled ")
		}
	}
	return ""
}

// pagingLog is the paging stream's pages and time-outs, as "paged L1 R0"…
func pagingLog(t *testing.T, s *testServer, id string) []string {
	evs, err := s.app.store.Load(context.Background(), escalation.PagingStream(escalation.EscalationID(id)), 0)
	if err != nil && !errors.Is(err, events.ErrStreamNotFound) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		var d struct {
			Level, Round int
		}
		_ = json.Unmarshal(e.Data, &d)
		switch e.Type {
		case escalation.TypePaged:
			out = append(out, fmt.Sprintf("paged L%d R%d", d.Level, d.Round))
		case escalation.TypePageTimedOut:
			out = append(out, fmt.Sprintf("timed out L%d R%d", d.Level, d.Round))
		}
	}
	return out
}

func TestPagingStallsTruthfullyAndResumesWithoutSkippingOrRepeating(t *testing.T) {
	fs := &failingStore{}
	s := startServer(t, loopbackVideo, timeouts(3*time.Second, 30*time.Second), func(c *serveConfig) {
		c.pagerStore = func(st events.Store) events.Store { fs.Store = st; return fs }
	})
	nurse, okafor, patel := s.signedIn("night.rose"), s.signedIn("dr.okafor"), s.signedIn("dr.patel")
	o, p := okafor.pager("o"), patel.pager("p")
	browser := newBrowser(t)
	home := newTab(t, browser)
	signInWithForm(t, home, s.base, "night.rose", "/home")
	waitText(t, home, "footer-phone", "+44 1632 960001", 10*time.Second)

	// The store refuses the pager's writes: the raise is recorded (it is the
	// home's write), the page is not, and paging says so at once.
	fs.failing.Store(true)
	id := str(nurse.do("POST", "/api/v1/escalations", raiseBody("rc-101")).json(t)["id"])
	waitFor(t, 2*time.Second, "/readyz and /readyz/paging 503 while the pager cannot write", func() bool {
		return readyStatus(t, s) == 503 && readyStatusOf(t, s, "/readyz/paging") == 503
	})
	if m := stalledMetric(t, nurse); m != "1" {
		t.Errorf("nightcall_consumers_stalled %q while the pager's writes fail, want 1", m)
	}
	waitText(t, home, "fallback-reason", "cannot page a consultant", 10*time.Second)
	if !visible(t, home, "fallback") || textOf(t, home, "fallback-phone") != "+44 1632 960001" {
		t.Fatalf("the home is not shown its fallback number while paging is stalled")
	}
	screenshot(t, home, "../../docs/screenshots/home-paging-stalled.png")

	// The store takes writes again: level 1 is paged, once, and all is well.
	fs.failing.Store(false)
	first := o.expect("page", 5*time.Second)
	if pageEscalationID(first) != id {
		t.Fatalf("page for %s", pageEscalationID(first))
	}
	waitFor(t, 3*time.Second, "/readyz and /readyz/paging 200 again", func() bool {
		return readyStatus(t, s) == 200 && readyStatusOf(t, s, "/readyz/paging") == 200
	})
	if m := stalledMetric(t, nurse); m != "0" {
		t.Errorf("nightcall_consumers_stalled %q after recovery", m)
	}
	o.ack(first, "received")

	// It fails again while level 1's time is running out: the time-out and
	// the page to level 2 wait for the store, then go once each.
	fs.failing.Store(true)
	waitFor(t, 10*time.Second, "/readyz 503 when the level-1 time-out cannot be written", func() bool { return readyStatus(t, s) == 503 })
	fs.failing.Store(false)
	second := p.expect("page", 5*time.Second)
	if pageEscalationID(second) != id {
		t.Fatalf("level 2 page for %s", pageEscalationID(second))
	}
	p.ack(second, "received")
	waitFor(t, 10*time.Second, "unanswered, then round 2 from level 1", func() bool {
		return slices.Contains(pagingLog(t, s, id), "paged L1 R1")
	})
	got := pagingLog(t, s, id)
	want := []string{"paged L1 R0", "timed out L1 R0", "paged L2 R0", "timed out L2 R0", "paged L1 R1"}
	if !slices.Equal(got, want) {
		t.Errorf("the paging stream is %v, want %v (no level skipped, none paged twice)", got, want)
	}
	if fs.failed.Load() == 0 {
		t.Fatal("no write failed: the test proves nothing")
	}
	esc := nurse.do("GET", "/api/v1/escalations/"+id, nil).json(t)
	if esc["status"] != "unanswered" {
		t.Errorf("status %v after every level timed out", esc["status"])
	}
}

func TestJoinOverduePagesAgainOnEveryChannelAndTheHomeSeesItsNumber(t *testing.T) {
	ps := newPushService(t, time.Minute)
	hook := newWebhookReceiver(t)
	s := startServer(t, loopbackVideo, withPush(ps), withWebhook(hook), func(c *serveConfig) { c.JoinTimeout = time.Second })
	nurse, okafor := s.signedIn("night.rose"), s.signedIn("dr.okafor")
	trustServer(t, ps, okafor)
	subscribeDevice(t, ps, okafor, "okafor-phone")
	tab := okafor.pager("laptop")

	id := str(nurse.do("POST", "/api/v1/escalations", raiseBody("rc-101")).json(t)["id"])
	page := tab.expect("page", 5*time.Second)
	tab.ack(page, "received")
	ps.nextPage("okafor-phone", id, 5*time.Second)
	if r := okafor.do("POST", "/api/v1/escalations/"+id+"/accept", nil); r.status != 200 {
		t.Fatalf("accept: %d %s", r.status, r.body)
	}

	// The home waits for the call; the consultant never joins.
	browser := newBrowser(t)
	home := newTab(t, browser)
	signInWithForm(t, home, s.base, "night.rose", "/home")
	waitText(t, home, "accepted-by", "Waiting for them to join: 0:", 10*time.Second)

	again := tab.expect("page", 5*time.Second)
	if pageEscalationID(again) != id || again["page_id"] == page["page_id"] {
		t.Fatalf("paged again: %v (first %v)", again, page["page_id"])
	}
	pushAgain := ps.nextPage("okafor-phone", id, 5*time.Second)
	if pushAgain.payload["reason"] != "join_overdue" || pushAgain.payload["page_id"] != again["page_id"] {
		t.Errorf("the push again: %s", pushAgain.raw)
	}
	waitFor(t, 10*time.Second, "the webhook's join-overdue page", func() bool {
		for _, m := range hook.messages() {
			if m.body["reason"] == "join_overdue" && m.body["escalation_id"] == id {
				return true
			}
		}
		return false
	})
	esc := nurse.do("GET", "/api/v1/escalations/"+id, nil).json(t)
	if count(timelineTypes(esc), "escalation.join_overdue") != 1 || esc["delivery"].(map[string]any)["join_overdue_at"] == nil {
		t.Errorf("join overdue not on record: %v %v", timelineTypes(esc), esc["delivery"])
	}
	waitText(t, home, "fallback-reason", "has not joined", 10*time.Second)
	if !visible(t, home, "fallback") || textOf(t, home, "fallback-phone") != "+44 1632 960001" {
		t.Fatalf("the home is not shown its fallback number when the consultant has not joined")
	}
	waitText(t, home, "accepted-by", "Dr Chidi Okafor has accepted: joining the video call (accepted at", 5*time.Second)
	screenshot(t, home, "../../docs/screenshots/home-join-overdue.png")
	// It is overdue once: no third page.
	tab.quiet("page", 2*time.Second)
}

// latencies returns the p50 and p99 (nearest rank) of ds.
func latencies(ds []time.Duration) (time.Duration, time.Duration) {
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	rank := func(p float64) time.Duration {
		i := int(p*float64(len(s))+0.999999) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	return rank(0.50), rank(0.99)
}

// TestRaiseToPushBesideRaiseToSocket measures, over 100 raises, how long a
// page takes from the raise to the test push service (decrypted) and to an
// open pager socket, in the same run. It logs the figures; it asserts only
// that every page arrived by both.
func TestRaiseToPushBesideRaiseToSocket(t *testing.T) {
	ps := newPushService(t, time.Minute)
	s := startServer(t, withPush(ps))
	nurse, okafor := s.signedIn("night.rose"), s.signedIn("dr.okafor")
	trustServer(t, ps, okafor)
	subscribeDevice(t, ps, okafor, "okafor-phone")
	tab := okafor.pager("laptop")
	const raises = 100
	var toPush, toSocket []time.Duration
	for i := range raises {
		start := time.Now()
		r := nurse.do("POST", "/api/v1/escalations", raiseBody("rc-101"))
		if r.status != 201 {
			t.Fatalf("raise %d: %d %s", i, r.status, r.body)
		}
		id := str(r.json(t)["id"])
		for {
			m := tab.expect("page", 10*time.Second)
			if pageEscalationID(m) == id {
				toSocket = append(toSocket, time.Since(start))
				break
			}
		}
		toPush = append(toPush, ps.nextPage("okafor-phone", id, 10*time.Second).at.Sub(start))
		if w := nurse.do("POST", "/api/v1/escalations/"+id+"/withdraw", map[string]string{"reason": "measuring"}); w.status != 200 {
			t.Fatalf("withdraw %d: %d %s", i, w.status, w.body)
		}
	}
	p50p, p99p := latencies(toPush)
	p50s, p99s := latencies(toSocket)
	t.Logf("raise → push received at the test push service: p50 %v, p99 %v; raise → websocket page: p50 %v, p99 %v (%d raises)",
		p50p.Round(10*time.Microsecond), p99p.Round(10*time.Microsecond), p50s.Round(10*time.Microsecond), p99s.Round(10*time.Microsecond), raises)
}

func TestPushAndReceiptBadInputIsRefusedAndChangesNothing(t *testing.T) {
	ps := newPushService(t, time.Minute)
	s := startServer(t, withPush(ps))
	nurse, okafor, patel := s.signedIn("night.rose"), s.signedIn("dr.okafor"), s.signedIn("dr.patel")
	_, good := ps.subscribe("okafor-phone")
	keys := good["keys"].(map[string]string)
	with := func(endpoint, p256dh, auth string) map[string]any {
		return map[string]any{"endpoint": endpoint, "expirationTime": nil, "keys": map[string]string{"p256dh": p256dh, "auth": auth}}
	}
	ep := str(good["endpoint"])
	short := keys["p256dh"][:len(keys["p256dh"])-4]
	offCurve := "BAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	for _, c := range []struct {
		name        string
		body        any
		status      int
		code, field string
	}{
		{"not JSON", "{endpoint:", 400, "invalid_json", ""},
		{"endpoint a number", map[string]any{"endpoint": 5, "keys": keys}, 400, "invalid_json", "endpoint"},
		{"keys a string", map[string]any{"endpoint": ep, "keys": "abc"}, 400, "invalid_json", "keys"},
		{"no endpoint", map[string]any{"keys": keys}, 400, "missing_field", "endpoint"},
		{"no keys", map[string]any{"endpoint": ep}, 400, "missing_field", "keys.p256dh"},
		{"https, a host not allowed", with("https://evil.example/push/x", keys["p256dh"], keys["auth"]), 400, "invalid_value", "endpoint"},
		{"http, a private address", with("http://10.0.0.5/push/x", keys["p256dh"], keys["auth"]), 400, "invalid_value", "endpoint"},
		{"http, cloud metadata", with("http://169.254.169.254/latest/meta-data", keys["p256dh"], keys["auth"]), 400, "invalid_value", "endpoint"},
		{"http, loopback on a port not named", with("http://127.0.0.1:1/push/x", keys["p256dh"], keys["auth"]), 400, "invalid_value", "endpoint"},
		{"https to the allowed loopback host", with("https://"+ps.host()+"/push/x", keys["p256dh"], keys["auth"]), 201, "", ""},
		{"file URL", with("file:///etc/passwd", keys["p256dh"], keys["auth"]), 400, "invalid_value", "endpoint"},
		{"p256dh too short", with(ep, short, keys["auth"]), 400, "invalid_value", "keys.p256dh"},
		{"p256dh not base64", with(ep, "not base64 at all!", keys["auth"]), 400, "invalid_value", "keys.p256dh"},
		{"p256dh off the curve", with(ep, offCurve, keys["auth"]), 400, "invalid_value", "keys.p256dh"},
		{"auth 12 bytes", with(ep, keys["p256dh"], "AAAAAAAAAAAAAAAA"), 400, "invalid_value", "keys.auth"},
		{"auth empty", with(ep, keys["p256dh"], ""), 400, "missing_field", "keys.auth"},
	} {
		before := pushEvents(t, s, "dr.okafor")
		r := okafor.do("POST", "/api/v1/push/subscriptions", c.body)
		if r.status != c.status {
			t.Errorf("%s: %d %s, want %d", c.name, r.status, r.body, c.status)
			continue
		}
		if c.status >= 400 {
			e := r.apiErr(t)
			if e["code"] != c.code || (c.field != "" && e["field"] != c.field) {
				t.Errorf("%s: %v, want %s on %q", c.name, e, c.code, c.field)
			}
			if after := pushEvents(t, s, "dr.okafor"); after != before {
				t.Errorf("%s: %d events appended by a refused subscription", c.name, after-before)
			}
		}
	}
	// Only consultants: a nurse can neither subscribe nor read the key.
	if r := nurse.do("POST", "/api/v1/push/subscriptions", good); r.status != 403 {
		t.Errorf("a nurse subscribing: %d", r.status)
	}
	if r := nurse.do("GET", "/api/v1/push/vapid-public-key", nil); r.status != 403 {
		t.Errorf("a nurse reading the key: %d", r.status)
	}
	// Another consultant cannot remove okafor's devices.
	list := okafor.do("GET", "/api/v1/push/subscriptions", nil).list(t)
	before := pushEvents(t, s, "dr.okafor")
	if r := patel.do("DELETE", "/api/v1/push/subscriptions/"+str(list[0]["id"]), nil); r.status != 204 || pushEvents(t, s, "dr.okafor") != before {
		t.Errorf("another consultant's delete: %d, events %d → %d", r.status, before, pushEvents(t, s, "dr.okafor"))
	}

	// Receipts.
	tab := okafor.pager("laptop")
	id := str(nurse.do("POST", "/api/v1/escalations", raiseBody("rc-101")).json(t)["id"])
	page := tab.expect("page", 5*time.Second)
	pageID := str(page["page_id"])
	stream := escalation.PagingStream(escalation.EscalationID(id))
	n := func() int {
		evs, _ := s.app.store.Load(context.Background(), stream, 0)
		return len(evs)
	}
	was := n()
	for _, c := range []struct {
		name, who, path string
		body            any
		status          int
		code, field     string
	}{
		{"no state", "okafor", pageID, map[string]string{}, 400, "missing_field", "state"},
		{"state read", "okafor", pageID, map[string]string{"state": "read"}, 400, "invalid_value", "state"},
		{"not JSON", "okafor", pageID, "state=received", 400, "invalid_json", ""},
		{"a bad device", "okafor", pageID, map[string]string{"state": "received", "device": "../../etc"}, 400, "invalid_value", "device"},
		{"another consultant's page", "patel", pageID, map[string]string{"state": "received"}, 404, "not_found", ""},
		{"no such page", "okafor", "no-such-page", map[string]string{"state": "received"}, 404, "not_found", ""},
		{"a nurse", "nurse", pageID, map[string]string{"state": "received"}, 403, "forbidden", ""},
	} {
		c2 := map[string]*client{"okafor": okafor, "patel": patel, "nurse": nurse}[c.who]
		r := c2.do("POST", "/api/v1/pages/"+c.path+"/receipts", c.body)
		if r.status != c.status || r.apiErr(t)["code"] != c.code || (c.field != "" && r.apiErr(t)["field"] != c.field) {
			t.Errorf("receipt, %s: %d %s", c.name, r.status, r.body)
		}
	}
	if n() != was {
		t.Errorf("refused receipts appended %d events", n()-was)
	}
	for range 3 {
		if r := okafor.do("POST", "/api/v1/pages/"+pageID+"/receipts", map[string]string{"state": "received", "device": "phone-1"}); r.status != 204 {
			t.Fatalf("receipt: %d %s", r.status, r.body)
		}
	}
	waitFor(t, 5*time.Second, "the receipt recorded", func() bool { return n() == was+1 })
	if r := okafor.do("POST", "/api/v1/pages/"+pageID+"/receipts", map[string]string{"state": "received", "device": "phone-1"}); r.status != 204 || n() != was+1 {
		t.Errorf("a receipt again: %d, %d events (want %d)", r.status, n(), was+1)
	}
	// The process is unharmed: paging still works.
	if r := okafor.do("POST", "/api/v1/escalations/"+id+"/accept", nil); r.status != 200 {
		t.Errorf("accept after bad input: %d %s", r.status, r.body)
	}
}

// pushEvents counts the events on a consultant's push stream.
func pushEvents(t *testing.T, s *testServer, user string) int {
	evs, err := s.app.store.Load(context.Background(), escalation.PushStream(escalation.Username(user)), 0)
	if err != nil && !errors.Is(err, events.ErrStreamNotFound) {
		t.Fatal(err)
	}
	return len(evs)
}

// TestWebPushOnTwoInstancesOneKeyPairOnePush: on one Redis, every instance
// signs with the one VAPID pair the first start made, and each page is
// pushed once, whichever instance's pager saw it first.
func TestWebPushOnTwoInstancesOneKeyPairOnePush(t *testing.T) {
	url := redistest.Start(t)
	ps := newPushService(t, time.Minute)
	onRedis := func(c *serveConfig) { c.Store, c.RedisURL = "redis", url; c.PushAllowedHosts = ps.host() }
	a := startServer(t, onRedis)
	b := startServer(t, onRedis)
	okA, okB := a.signedIn("dr.okafor"), b.signedIn("dr.okafor")
	keyA, keyB := trustServer(t, ps, okA), trustServer(t, ps, okB)
	if keyA != keyB {
		t.Fatalf("two instances, two VAPID keys: %s and %s", keyA, keyB)
	}
	evs, err := a.app.store.Load(context.Background(), escalation.PushVAPIDStream(), 0)
	if err != nil || len(evs) != 1 {
		t.Fatalf("the key pair on record: %d events, %v", len(evs), err)
	}
	subscribeDevice(t, ps, okA, "okafor-phone")
	if list := okB.do("GET", "/api/v1/push/subscriptions", nil).list(t); len(list) != 1 {
		t.Fatalf("the subscription made on a, read on b: %v", list)
	}
	nurse := b.signedIn("night.rose")
	id := str(nurse.do("POST", "/api/v1/escalations", raiseBody("rc-101")).json(t)["id"])
	first := ps.nextPage("okafor-phone", id, 10*time.Second)
	deadline := time.After(2 * time.Second)
	for {
		select {
		case m := <-ps.received:
			if m.payload["page_id"] == first.payload["page_id"] {
				t.Fatalf("the page was pushed twice (two instances)")
			}
		case <-deadline:
			return
		}
	}
}

// pushSends is the nightcall_push_sends_total counter of one result.
func pushSends(t *testing.T, c *client, result string) int {
	t.Helper()
	prefix := `nightcall_push_sends_total{result="` + result + `"} `
	for _, line := range strings.Split(string(c.do("GET", "/metrics", nil).body), "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("%s%s", prefix, v)
			}
			return n
		}
	}
	return 0
}

// pagesTo waits, within d, for a page (not a cancellation) of escalation id
// at every one of subs, in whatever order they come: each device's push is a
// delivery of its own, sent in parallel, so one device's may be accepted
// before another's. (Waiting for one device with next, then the next, would
// drop the second's push if it came first.)
func (p *pushService) pagesTo(id string, d time.Duration, subs ...string) map[string]pushed {
	p.t.Helper()
	got := make(map[string]pushed, len(subs))
	deadline := time.After(d)
	for len(got) < len(subs) {
		select {
		case m := <-p.received:
			if slices.Contains(subs, m.sub) && m.payload["type"] == "page" && m.payload["escalation_id"] == id {
				if _, dup := got[m.sub]; !dup {
					got[m.sub] = m
				}
			}
		case <-deadline:
			var missing []string
			for _, sub := range subs {
				if _, ok := got[sub]; !ok {
					missing = append(missing, sub)
				}
			}
			p.t.Fatalf("no page of %s to %v within %v", id, missing, d)
		}
	}
	return got
}

// A subscription removed by its consultant is never pushed to again once
// its removal is applied: a push to it still being retried (its service
// answers 503) is dropped at its next attempt, unsent, and the next page
// leaves it out, while a device subscribed after the subscriptions were
// cached gets that page. The new device is subscribed just before the
// raise, without waiting for the cache: its save is on the log before the
// page, and the cache is kept current by the pager's own consumer, applied
// before the pager, so the page's fan-out always has it.
func TestWebPushRevokedSubscriptionIsNeverPushedAfterItsRemovalIsApplied(t *testing.T) {
	ps := newPushService(t, time.Minute)
	// No receipt is posted: a receipt timeout as long as the page's keeps
	// a slow run from paging again (and pushing more) mid-test.
	s := startServer(t, withPush(ps), timeouts(time.Minute, time.Minute))
	nurse, okafor := s.signedIn("night.rose"), s.signedIn("dr.okafor")
	trustServer(t, ps, okafor)
	// The phone's third push (the second page, after the first page and its
	// cancellation) is retried once: the laptop's page then comes first.
	subscribeDevice(t, ps, okafor, "phone", http.StatusCreated, http.StatusCreated, http.StatusServiceUnavailable, http.StatusCreated)
	tablet := subscribeDevice(t, ps, okafor, "tablet", http.StatusServiceUnavailable)

	first := str(nurse.do("POST", "/api/v1/escalations", raiseBody("rc-101")).json(t)["id"])
	ps.nextPage("phone", first, 15*time.Second)
	waitFor(t, 15*time.Second, "the tablet's push retried", func() bool { return ps.requestsTo("tablet") >= 2 })

	if r := okafor.do("DELETE", "/api/v1/push/subscriptions/"+tablet, nil); r.status != 204 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	ctx := context.Background()
	waitFor(t, 15*time.Second, "the removal applied", func() bool {
		_, ok, err := s.app.pushSubs.Subscription(ctx, "dr.okafor", escalation.PushSubscriptionID(tablet))
		return err == nil && !ok
	})
	// An attempt that began before the removal was applied may still end
	// (503): the retry after it is dropped.
	waitFor(t, 15*time.Second, "the retried push dropped as revoked", func() bool { return pushSends(t, okafor, "revoked") >= 1 })
	before := ps.requestsTo("tablet")

	subscribeDevice(t, ps, okafor, "laptop") // no wait for the cache: see above
	if w := nurse.do("POST", "/api/v1/escalations/"+first+"/withdraw", map[string]string{"reason": "test"}); w.status != 200 {
		t.Fatalf("withdraw: %d %s", w.status, w.body)
	}
	second := str(nurse.do("POST", "/api/v1/escalations", raiseBody("rc-101")).json(t)["id"])
	ps.pagesTo(second, 15*time.Second, "phone", "laptop")
	subs, err := s.app.pushSubs.Subscriptions(ctx, "dr.okafor")
	if err != nil {
		t.Fatal(err)
	}
	for _, sub := range subs {
		if sub.ID == escalation.PushSubscriptionID(tablet) {
			t.Fatalf("the removed subscription is still cached: %+v", subs)
		}
	}
	if n := ps.requestsTo("tablet"); n != before {
		t.Errorf("the removed subscription got %d more pushes after its removal was applied", n-before)
	}
	if n := pushSends(t, okafor, "revoked"); n != 1 {
		t.Errorf("%d pushes dropped as revoked, want 1 (the retry of the first page; the second page left it out)", n)
	}
}

// pausedLoads is a real store whose Load, having read, waits to return
// until released: an event can then be appended and applied while a read
// of the stream is under way.
type pausedLoads struct {
	events.Store
	read, release chan struct{}
}

func (p *pausedLoads) Load(ctx context.Context, stream string, after int64) ([]events.Envelope, error) {
	envs, err := p.Store.Load(ctx, stream, after)
	p.read <- struct{}{}
	<-p.release
	return envs, err
}

// pushInput is a browser's subscription to a loopback endpoint, with real keys.
func pushInput(t *testing.T, name string) escalation.PushSubscriptionInput {
	t.Helper()
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	auth := make([]byte, 16)
	_, _ = rand.Read(auth)
	var in escalation.PushSubscriptionInput
	in.Endpoint = "http://127.0.0.1/push/" + name
	in.Keys.P256dh = base64.RawURLEncoding.EncodeToString(priv.PublicKey().Bytes())
	in.Keys.Auth = base64.RawURLEncoding.EncodeToString(auth)
	return in
}

// The push subscription cache folds a consultant's stream the first time
// it is asked, and an event applied while that read is under way (a
// removal appended after the read) is not lost; an event delivered again
// (at least once) changes nothing, and a later save is applied.
func TestPushSubscriptionCacheKeepsAnEventAppliedWhileItReads(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "events.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	svc, err := escalation.NewService(escalation.Config{Store: store, Read: escalation.NewProjection(time.UTC), NewID: newID})
	if err != nil {
		t.Fatal(err)
	}
	const user = escalation.Username("dr.cache")
	meta := escalation.Meta{Actor: escalation.Actor{Person: escalation.Person{Username: user}, Role: escalation.RoleConsultant}}
	hosts := escalation.PushHosts{"127.0.0.1"}
	a, err := svc.SavePushSubscription(ctx, meta, pushInput(t, "a"), hosts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SavePushSubscription(ctx, meta, pushInput(t, "b"), hosts); err != nil {
		t.Fatal(err)
	}
	stream := func() []events.Envelope {
		envs, err := store.Load(ctx, escalation.PushStream(user), 0)
		if err != nil {
			t.Fatal(err)
		}
		return envs
	}
	paused := &pausedLoads{Store: store, read: make(chan struct{}), release: make(chan struct{})}
	cache := escalation.NewPushSubscriptionCache(paused)
	type answer struct {
		subs []escalation.PushSubscription
		err  error
	}
	got := make(chan answer, 1)
	go func() {
		subs, err := cache.Subscriptions(ctx, user)
		got <- answer{subs, err}
	}()
	<-paused.read // the read has both subscriptions
	if err := svc.RemovePushSubscription(ctx, meta, user, a.ID, escalation.PushUnsubscribed); err != nil {
		t.Fatal(err)
	}
	envs := stream()
	cache.Apply(envs[len(envs)-1]) // the removal, applied as the consumer would
	close(paused.release)
	ans := <-got
	if ans.err != nil {
		t.Fatal(ans.err)
	}
	if len(ans.subs) != 1 || ans.subs[0].ID == a.ID {
		t.Fatalf("after the removal applied during the read: %+v; want b alone", ans.subs)
	}
	cache.Apply(envs[0]) // a's save, delivered again
	if _, ok, err := cache.Subscription(ctx, user, a.ID); err != nil || ok {
		t.Fatalf("a redelivered save brought a back (%v, %v)", ok, err)
	}
	c, err := svc.SavePushSubscription(ctx, meta, pushInput(t, "c"), hosts)
	if err != nil {
		t.Fatal(err)
	}
	envs = stream()
	cache.Apply(envs[len(envs)-1])
	if sub, ok, err := cache.Subscription(ctx, user, c.ID); err != nil || !ok || sub.Endpoint != c.Endpoint {
		t.Fatalf("the later save: %+v %v %v", sub, ok, err)
	}
	if subs, _ := cache.Subscriptions(ctx, user); len(subs) != 2 {
		t.Fatalf("subscriptions: %+v; want b and c", subs)
	}
}
