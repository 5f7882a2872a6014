package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/events"
	"github.com/nightcall-health/nightcall/events/sqlite"
)

func timeouts(page, receipt time.Duration) func(*serveConfig) {
	return func(c *serveConfig) { c.PageTimeout, c.PageReceiptTimeout = page, receipt }
}

func TestPageReachesConsultantAndReceiptsAreInTheTimeline(t *testing.T) {
	s := startServer(t)
	nurse, okafor := s.signedIn("night.rose"), s.signedIn("dr.okafor")
	tab := okafor.pager("laptop")
	id := str(nurse.do("POST", "/api/v1/escalations", raiseBody("rc-101")).json(t)["id"])

	page := tab.expect("page", 5*time.Second)
	esc := page["escalation"].(map[string]any)
	if esc["id"] != id || esc["resident"].(map[string]any)["name"] != "Margaret Ellis" ||
		esc["care_home"].(map[string]any)["name"] != "Rose Court" || esc["news2"].(map[string]any)["total"] != 8.0 || str(page["page_id"]) == "" {
		t.Fatalf("page: %v", page)
	}
	tab.ack(page, "received", "seen", "received") // a repeated receipt is recorded once
	var got map[string]any
	waitFor(t, 5*time.Second, "receipts in the timeline", func() bool {
		got = nurse.do("GET", "/api/v1/escalations/"+id, nil).json(t)
		types := timelineTypes(got)
		return count(types, "escalation.page_received") == 1 && count(types, "escalation.page_seen") == 1
	})
	types := timelineTypes(got)
	if types[0] != "escalation.raised" || count(types, "escalation.paged") != 1 {
		t.Errorf("timeline: %v", types)
	}
	if got["first_paged_at"] == nil || got["first_receipt_at"] == nil {
		t.Errorf("raise→page and raise→receipt not shown: %v %v", got["first_paged_at"], got["first_receipt_at"])
	}
	// The paging noise is not in the resident's stream.
	for _, e := range nurse.do("GET", "/api/v1/residents/rc-101/events", nil).list(t) {
		if strings.HasPrefix(str(e["type"]), "escalation.page") {
			t.Errorf("paging event %s in the resident stream", e["type"])
		}
	}
	metrics := nurse.do("GET", "/metrics", nil)
	for _, want := range []string{`nightcall_paging_seconds_count{timing="raise_to_first_page"} 1`, `nightcall_paging_seconds_count{timing="raise_to_first_receipt"} 1`} {
		if !strings.Contains(string(metrics.body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestUnacceptedPageEscalatesThenUnansweredThenPagesAgain(t *testing.T) {
	s := startServer(t, timeouts(time.Second, 30*time.Second))
	nurse, okafor, patel := s.signedIn("night.rose"), s.signedIn("dr.okafor"), s.signedIn("dr.patel")
	o, p := okafor.pager("o"), patel.pager("p")
	raised := time.Now()
	id := str(nurse.do("POST", "/api/v1/escalations", raiseBody("rc-101")).json(t)["id"])

	first := o.expect("page", 3*time.Second)
	o.ack(first, "received")
	second := p.expect("page", 4*time.Second)
	p.ack(second, "received")
	if d := time.Since(raised); d < 900*time.Millisecond {
		t.Errorf("level 2 paged after %v, before the 1s page timeout", d)
	}
	if pageEscalationID(second) != id {
		t.Fatalf("level 2 page for %v", pageEscalationID(second))
	}
	var esc map[string]any
	waitFor(t, 4*time.Second, "unanswered", func() bool {
		esc = nurse.do("GET", "/api/v1/escalations/"+id, nil).json(t)
		return esc["status"] == "unanswered"
	})
	if esc["fallback_phone"] != "+44 1632 960001" || esc["ever_unanswered"] != true {
		t.Errorf("unanswered escalation: %v", esc)
	}
	again := o.expect("page", 4*time.Second)
	if pageEscalationID(again) != id || again["page_id"] == first["page_id"] {
		t.Fatalf("re-page: %v (first %v)", again, first["page_id"])
	}
	evs := nurse.do("GET", "/api/v1/residents/rc-101/events", nil).list(t)
	if last := evs[len(evs)-1]; last["type"] != "escalation.unanswered" {
		t.Errorf("resident stream ends with %v, want escalation.unanswered", last["type"])
	}
	// Accepting stops it: the status leaves unanswered.
	if r := okafor.do("POST", "/api/v1/escalations/"+id+"/accept", nil); r.status != 200 || r.json(t)["status"] != "accepted" {
		t.Fatalf("accept while unanswered: %d %s", r.status, r.body)
	}
}

func TestMissingReceiptPagesNextLevelEarly(t *testing.T) {
	s := startServer(t, timeouts(30*time.Second, 500*time.Millisecond))
	nurse, okafor, patel := s.signedIn("night.rose"), s.signedIn("dr.okafor"), s.signedIn("dr.patel")
	o, p := okafor.pager("locked-phone"), patel.pager("p")
	start := time.Now()
	id := str(nurse.do("POST", "/api/v1/escalations", raiseBody("rc-102")).json(t)["id"])
	o.expect("page", 3*time.Second) // arrives, but no `received` is ever sent
	page := p.expect("page", 5*time.Second)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("level 2 paged after %v; the receipt timeout is 0.5s and the page timeout 30s", d)
	}
	if pageEscalationID(page) != id {
		t.Fatalf("page for %v", pageEscalationID(page))
	}
	esc := nurse.do("GET", "/api/v1/escalations/"+id, nil).json(t)
	found := false
	for _, e := range esc["timeline"].([]any) {
		m := e.(map[string]any)
		if m["type"] == "escalation.page_timed_out" && strings.Contains(str(m["detail"]), "no receipt") {
			found = true
		}
	}
	if !found || esc["status"] != "paging" {
		t.Errorf("timeline should record the undelivered page and still be paging: %v %v", esc["status"], timelineTypes(esc))
	}
}

func TestLateConnectTwoTabsAndCancellation(t *testing.T) {
	s := startServer(t, timeouts(30*time.Second, 300*time.Millisecond))
	nurse, okafor, patel := s.signedIn("night.rose"), s.signedIn("dr.okafor"), s.signedIn("dr.patel")
	id := str(nurse.do("POST", "/api/v1/escalations", raiseBody("rc-103")).json(t)["id"])
	time.Sleep(200 * time.Millisecond)
	// Connecting after the raise still gets the page, in both tabs.
	tab1, tab2 := okafor.pager("tab1"), okafor.pager("tab2")
	for _, tab := range []*pagerSocket{tab1, tab2} {
		if m := tab.expect("page", 3*time.Second); pageEscalationID(m) != id {
			t.Fatalf("tab got %v", m)
		}
	}
	// With no receipt, level 2 is paged too; dr.patel connects late as well.
	p := patel.pager("p")
	p.expect("page", 5*time.Second)
	if r := okafor.do("POST", "/api/v1/escalations/"+id+"/accept", nil); r.status != 200 {
		t.Fatalf("accept: %d %s", r.status, r.body)
	}
	for _, tab := range []*pagerSocket{tab1, tab2} {
		m := tab.expect("page_cancelled", 3*time.Second)
		if m["escalation_id"] != id || m["reason"] != "accepted" {
			t.Errorf("acceptor's tab: %v", m)
		}
	}
	if m := p.expect("page_cancelled", 3*time.Second); m["reason"] != "accepted_by_other" {
		t.Errorf("other consultant: %v", m)
	}
	// A reconnect no longer gets the accepted page.
	okafor.pager("tab3").quiet("page", 500*time.Millisecond)
}

func TestEmptyRotaIsUnansweredAtOnce(t *testing.T) {
	s := startServer(t)
	empty, _ := json.Marshal(escalation.RotaLevelsSet{Levels: [][]escalation.Username{}})
	if _, err := s.app.store.Append(context.Background(), "rota", events.AnyVersion,
		[]events.NewEvent{{ID: uuid.NewString(), Type: escalation.TypeRotaLevelsSet, Data: empty}}, events.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	nurse := s.signedIn("night.rose")
	waitFor(t, 3*time.Second, "rota emptied", func() bool {
		return len(nurse.do("GET", "/api/v1/rota/now", nil).json(t)["levels"].([]any)) == 0
	})
	start := time.Now()
	id := str(nurse.do("POST", "/api/v1/escalations", raiseBody("rc-102")).json(t)["id"])
	var esc map[string]any
	waitFor(t, 3*time.Second, "unanswered with nobody on call", func() bool {
		esc = nurse.do("GET", "/api/v1/escalations/"+id, nil).json(t)
		return esc["status"] == "unanswered"
	})
	t.Logf("unanswered %v after the raise", time.Since(start))
	if esc["fallback_phone"] != "+44 1632 960001" {
		t.Errorf("fallback phone: %v", esc["fallback_phone"])
	}
}

func TestPagerRefusesBadUpgradesAndBadFrames(t *testing.T) {
	s := startServer(t)
	okafor := s.signedIn("dr.okafor")
	for _, c := range []struct {
		name   string
		c      *client
		header []string
		status int
	}{
		{"no session", newClient(t, s.base), nil, 401},
		{"care-home staff", s.signedIn("night.rose"), nil, 403},
		{"auditor", s.signedIn("auditor"), nil, 403},
		{"foreign origin", okafor, []string{"Origin", "http://evil.example"}, 403},
	} {
		if _, status, err := c.c.dialPager("x", c.header...); err == nil || status != c.status {
			t.Errorf("%s: upgrade answered %d (%v), want %d", c.name, status, err, c.status)
		}
	}

	bystander := okafor.pager("bystander")
	bad := []struct {
		name string
		send func(*pagerSocket)
		code int
	}{
		{"not JSON", func(p *pagerSocket) { _ = p.ws.WriteMessage(websocket.TextMessage, []byte("hello")) }, websocket.CloseUnsupportedData},
		{"not UTF-8", func(p *pagerSocket) {
			_ = p.ws.WriteMessage(websocket.TextMessage, []byte("{\"type\":\"seen\",\"page_id\":\"\xc7\xc7\"}"))
		}, websocket.CloseInvalidFramePayloadData},
		{"unknown type", func(p *pagerSocket) { p.send(map[string]string{"type": "shutdown"}) }, websocket.ClosePolicyViolation},
		{"huge frame", func(p *pagerSocket) {
			_ = p.ws.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("x", 64*1024)))
		}, websocket.CloseMessageTooBig},
		{"flood", func(p *pagerSocket) {
			for i := 0; i < 200; i++ {
				if p.ws.WriteJSON(map[string]string{"type": "seen", "page_id": "nope"}) != nil {
					return
				}
			}
		}, websocket.ClosePolicyViolation},
	}
	for _, b := range bad {
		p := okafor.pager(strings.ReplaceAll(b.name, " ", "-"))
		b.send(p)
		code, text := p.closeCode(5 * time.Second)
		if code != b.code || text == "" && b.code != websocket.CloseMessageTooBig {
			t.Errorf("%s: closed with %d %q, want %d with a reason", b.name, code, text, b.code)
		}
	}
	// The server and the other socket are unharmed.
	nurse := s.signedIn("night.rose")
	id := str(nurse.do("POST", "/api/v1/escalations", raiseBody("rc-101")).json(t)["id"])
	if m := bystander.expect("page", 5*time.Second); pageEscalationID(m) != id {
		t.Fatalf("bystander got %v", m)
	}
}

// SIGKILL while paging: the restarted process resumes the timers from the
// log, pages the next level, and neither duplicates a page nor the escalation.
func TestPagingResumesAfterSIGKILL(t *testing.T) {
	dataDir, addr := t.TempDir(), freeAddr(t)
	p := startProcess(t, dataDir, addr, "--page-timeout", "2s", "--page-receipt-timeout", "60s")
	nurse := newClient(t, p.base)
	nurse.signIn("night.rose", "test-password")
	id := str(nurse.do("POST", "/api/v1/escalations", raiseBody("rc-101"), "Idempotency-Key", "raise-1").json(t)["id"])
	waitFor(t, 5*time.Second, "level 1 paged", func() bool {
		return count(timelineTypes(nurse.do("GET", "/api/v1/escalations/"+id, nil).json(t)), "escalation.paged") == 1
	})
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, _ = p.cmd.Process.Wait()
	killed := time.Now()

	p = startProcess(t, dataDir, addr, "--page-timeout", "2s", "--page-receipt-timeout", "60s")
	patel := newClient(t, p.base)
	patel.signIn("dr.patel", "test-password")
	page := patel.pager("p").expect("page", 10*time.Second)
	if pageEscalationID(page) != id {
		t.Fatalf("after restart dr.patel got %v", page)
	}
	t.Logf("level 2 paged %v after the kill", time.Since(killed))
	nurse = newClient(t, p.base)
	nurse.signIn("night.rose", "test-password")
	// Retrying the raise returns the same escalation, not a second one.
	if again := nurse.do("POST", "/api/v1/escalations", raiseBody("rc-101"), "Idempotency-Key", "raise-1"); again.status != 201 || again.json(t)["id"] != id {
		t.Fatalf("retried raise: %d %s", again.status, again.body)
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	_ = p.cmd.Wait()

	store, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(dataDir, "nightcall.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	pagingEvs, err := store.Load(context.Background(), escalation.PagingStream(escalation.EscalationID(id)), 0)
	if err != nil {
		t.Fatal(err)
	}
	pages := map[string]int{}
	for _, e := range pagingEvs {
		if e.Type == escalation.TypePaged {
			var pg escalation.Paged
			_ = json.Unmarshal(e.Data, &pg)
			pages[pg.PageID]++
			if pg.Round == 0 {
				pages["level-"+string(rune('0'+pg.Level))]++
			}
		}
	}
	if pages["level-1"] != 1 || pages["level-2"] != 1 {
		t.Errorf("round-0 pages by level: %v, want one each", pages)
	}
	resident, _ := store.Load(context.Background(), "resident-rc-101", 0)
	raised := 0
	for _, e := range resident {
		if e.Type == escalation.TypeEscalationRaised {
			raised++
		}
	}
	if raised != 1 {
		t.Errorf("%d escalations raised, want 1", raised)
	}
}
