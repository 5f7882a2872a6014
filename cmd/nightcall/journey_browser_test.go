package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

//go:embed testdata/axe/axe.min.js
var axeSource string

// js runs a script in the tab and returns its JSON result.
func js[T any](t *testing.T, tab context.Context, script string) T {
	t.Helper()
	return within(t, tab, 20*time.Second, chromedp.Evaluate[T](script, chromedp.EvalAwaitPromise))
}

// fill sets a form control and fires the events a person's typing would.
func fill(t *testing.T, tab context.Context, id, value string) {
	t.Helper()
	js[bool](t, tab, fmt.Sprintf(`(() => { const e = document.getElementById(%q); e.value = %q;
		e.dispatchEvent(new Event("input", {bubbles: true})); e.dispatchEvent(new Event("change", {bubbles: true})); return true; })()`, id, value))
}

// textOf returns an element's text ("" when absent).
func textOf(t *testing.T, tab context.Context, id string) string {
	return js[string](t, tab, fmt.Sprintf(`(document.getElementById(%q) || {}).textContent || ""`, id))
}

func visible(t *testing.T, tab context.Context, id string) bool {
	return js[bool](t, tab, fmt.Sprintf(`(() => { const e = document.getElementById(%q); return !!e && !e.hidden && e.offsetParent !== null; })()`, id))
}

// waitText polls until an element's text contains want.
func waitText(t *testing.T, tab context.Context, id, want string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		got := textOf(t, tab, id)
		if strings.Contains(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("#%s says %q, want %q", id, got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// signInWithForm types the credentials into the sign-in page.
func signInWithForm(t *testing.T, tab context.Context, base, username, landing string) {
	t.Helper()
	within(t, tab, 20*time.Second, chromedp.Navigate(base+"/"))
	within(t, tab, 10*time.Second, chromedp.SendKeys("#username", username))
	within(t, tab, 10*time.Second, chromedp.SendKeys("#password", "test-password"))
	within(t, tab, 10*time.Second, chromedp.Click(`#signin button[type=submit]`))
	deadline := time.Now().Add(15 * time.Second)
	for {
		loc := within(t, tab, 5*time.Second, chromedp.Location())
		if strings.HasSuffix(loc, landing) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s landed on %s, want %s", username, loc, landing)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type axeViolation struct {
	ID     string `json:"id"`
	Impact string `json:"impact"`
	Help   string `json:"help"`
	Nodes  int    `json:"nodes"`
}

// checkAccessibility runs axe-core on the page and fails on serious or critical violations.
func checkAccessibility(t *testing.T, tab context.Context, page string) {
	t.Helper()
	js[bool](t, tab, axeSource+";true")
	res := js[[]axeViolation](t, tab, `axe.run(document, {resultTypes: ["violations"]}).then(r => r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.length})))`)
	for _, v := range res {
		if v.Impact == "serious" || v.Impact == "critical" {
			t.Errorf("%s: axe %s (%s) on %d elements: %s", page, v.ID, v.Impact, v.Nodes, v.Help)
		}
	}
}

// setObservations fills the observation form.
func setObservations(t *testing.T, tab context.Context, o map[string]string) {
	for _, id := range []string{"respiration_rate", "spo2", "systolic_bp", "pulse", "temperature"} {
		fill(t, tab, id, o[id])
	}
	fill(t, tab, "consciousness", o["consciousness"])
}

func TestBrowserJourney(t *testing.T) {
	s := startServer(t, loopbackVideo)
	browser := newBrowser(t)
	home, console := newTab(t, browser), newTab(t, browser)

	signInWithForm(t, console, s.base, "dr.okafor", "/console")
	waitText(t, console, "pager-status", "Pager connected", 15*time.Second)
	checkAccessibility(t, console, "consultant console")
	screenshot(t, console, "../../docs/screenshots/console.png")

	signInWithForm(t, home, s.base, "night.rose", "/home")
	waitText(t, home, "footer-phone", "+44 1632 960001", 10*time.Second)
	waitFor(t, 10*time.Second, "residents listed", func() bool {
		return js[bool](t, home, `!!document.querySelector('input[name=resident][value="rc-101"]')`)
	})
	js[bool](t, home, `(() => { document.querySelector('input[name=resident][value="rc-101"]').click(); return true; })()`)

	// The NEWS2 the page shows before raising is the server's, on band edges too.
	api := s.signedIn("night.rose")
	for _, o := range []map[string]string{
		{"respiration_rate": "24", "spo2": "92", "systolic_bp": "100", "pulse": "131", "consciousness": "A", "temperature": "39.1"},
		{"respiration_rate": "12", "spo2": "96", "systolic_bp": "111", "pulse": "51", "consciousness": "A", "temperature": "36.1"},
		{"respiration_rate": "9", "spo2": "94", "systolic_bp": "219", "pulse": "90", "consciousness": "C", "temperature": "35.0"},
		{"respiration_rate": "25", "spo2": "91", "systolic_bp": "90", "pulse": "40", "consciousness": "V", "temperature": "36.0"},
	} {
		setObservations(t, home, o)
		body := map[string]any{"consciousness": o["consciousness"], "on_oxygen": false}
		for _, k := range []string{"respiration_rate", "spo2", "systolic_bp", "pulse", "temperature"} {
			body[k] = json.Number(o[k])
		}
		server := api.do("POST", "/api/v1/news2", map[string]any{"observations": body}).json(t)
		want := fmt.Sprint(server["total"])
		waitText(t, home, "news2-total", want, 5*time.Second)
		if server["total"].(float64) >= 7 {
			if !visible(t, home, "emergency") || !strings.Contains(textOf(t, home, "emergency"), "999") {
				t.Errorf("NEWS2 %s: no emergency advice on the page", want)
			}
		} else if visible(t, home, "emergency") {
			t.Errorf("NEWS2 %s: emergency advice shown", want)
		}
	}
	// An impossible value shows the server's error beside that field.
	fill(t, home, "spo2", "49")
	waitText(t, home, "err-observations.spo2", "between 50 and 100", 5*time.Second)
	setObservations(t, home, map[string]string{"respiration_rate": "22", "spo2": "93", "systolic_bp": "104", "pulse": "112", "consciousness": "A", "temperature": "38.4"})
	waitText(t, home, "news2-total", "8", 5*time.Second)
	checkAccessibility(t, home, "care-home page")
	screenshot(t, home, "../../docs/screenshots/home.png")
	fill(t, home, "situation", "More breathless since 01:00, not herself")
	js[bool](t, home, `(() => { document.querySelector('#soft-signs input[value=breathless]').click(); return true; })()`)
	start := time.Now()
	within(t, home, 10*time.Second, chromedp.Click(`#raise-form button[type=submit]`))
	within(t, home, 10*time.Second, chromedp.Click(`#raise-confirm-yes`)) // the nurse confirms the resident
	waitText(t, home, "wait-title", "Waiting", 10*time.Second)
	screenshot(t, home, "../../docs/screenshots/home-waiting.png")

	// The console, already open, gets the page and accepts.
	waitText(t, console, "alert", "Margaret Ellis", 10*time.Second)
	t.Logf("page shown on the console %v after the raise", time.Since(start).Round(time.Millisecond))
	within(t, console, 10*time.Second, chromedp.Click(`#queue button`))
	waitText(t, console, "case-title", "Margaret Ellis", 10*time.Second)
	for name, tab := range map[string]context.Context{"care home": home, "consultant": console} {
		deadline := time.Now().Add(30 * time.Second)
		for framesDecoded(t, tab) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%s page decodes no video", name)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	t.Logf("both pages decoding video %v after the raise", time.Since(start).Round(time.Millisecond))
	if !strings.Contains(textOf(t, console, "acp"), "do not attempt CPR") || !strings.Contains(textOf(t, console, "acp"), "discuss") {
		t.Errorf("advance care plan panel: %q", textOf(t, console, "acp"))
	}
	checkAccessibility(t, console, "consultant case view")
	screenshot(t, console, "../../docs/screenshots/console-call.png")
	screenshot(t, home, "../../docs/screenshots/home-call.png")

	// The decision, with its confirmation step.
	js[bool](t, console, `(() => { document.querySelector('input[name=outcome][value=stay]').click(); document.querySelector('input[name=counterfactual][value=ed]').click(); return true; })()`)
	fill(t, console, "rationale", "Chest infection; observations stable on antibiotics")
	fill(t, console, "plan", "Amoxicillin; observations 4-hourly; call back if NEWS2 rises above 5")
	within(t, console, 10*time.Second, chromedp.Click("#review"))
	within(t, console, 10*time.Second, chromedp.Click("#confirm-yes"))
	waitText(t, console, "decision-result", "Decision recorded", 10*time.Second)

	waitText(t, home, "outcome", "Stay in the home", 15*time.Second)
	waitText(t, home, "plan", "Amoxicillin", 5*time.Second)
	checkAccessibility(t, home, "care-home decision")
	screenshot(t, home, "../../docs/screenshots/home-decision.png")
	evs := api.do("GET", "/api/v1/residents/rc-101/events", nil).list(t)
	decided := false
	for _, e := range evs {
		if e["type"] == "escalation.decided" && e["data"].(map[string]any)["outcome"] == "stay" {
			decided = true
		}
	}
	if !decided {
		t.Errorf("the resident's stream lacks the decision")
	}

	// The other pages pass axe too.
	admin, auditor := newTab(t, browser), newTab(t, browser)
	signInWithForm(t, admin, s.base, "admin", "/admin")
	waitText(t, admin, "rota", "Level 1", 10*time.Second)
	checkAccessibility(t, admin, "admin page")
	screenshot(t, admin, "../../docs/screenshots/admin.png")
	signInWithForm(t, auditor, s.base, "auditor", "/audit")
	waitText(t, auditor, "headline", "Escalations", 10*time.Second)
	checkAccessibility(t, auditor, "audit page")
	screenshot(t, auditor, "../../docs/screenshots/audit.png")
	signin := newTab(t, browser)
	within(t, signin, 10*time.Second, chromedp.Navigate(s.base+"/"))
	checkAccessibility(t, signin, "sign-in page")
	screenshot(t, signin, "../../docs/screenshots/signin.png")
}

func TestBrowserFallbackNumber(t *testing.T) {
	// Unanswered: every level times out, the home sees its number in large type.
	s := startServer(t, loopbackVideo, timeouts(time.Second, time.Second))
	browser := newBrowser(t)
	home := newTab(t, browser)
	signInWithForm(t, home, s.base, "night.rose", "/home")
	waitFor(t, 10*time.Second, "residents listed", func() bool {
		return js[bool](t, home, `!!document.querySelector('input[name=resident][value="rc-102"]')`)
	})
	if visible(t, home, "fallback") {
		t.Fatal("fallback shown before anything went wrong")
	}
	js[bool](t, home, `(() => { document.querySelector('input[name=resident][value="rc-102"]').click(); document.querySelector('#soft-signs input[value=not_themselves]').click(); return true; })()`)
	fill(t, home, "situation", "Not herself tonight")
	within(t, home, 10*time.Second, chromedp.Click(`#raise-form button[type=submit]`))
	within(t, home, 10*time.Second, chromedp.Click(`#raise-confirm-yes`)) // the nurse confirms the resident
	waitText(t, home, "fallback-reason", "No consultant has answered", 15*time.Second)
	if !visible(t, home, "fallback") || textOf(t, home, "fallback-phone") != "+44 1632 960001" {
		t.Fatalf("unanswered: fallback %v %q", visible(t, home, "fallback"), textOf(t, home, "fallback-phone"))
	}
	screenshot(t, home, "../../docs/screenshots/home-unanswered.png")

	// The server stops: the page still shows the number, from its cache.
	s2 := startServer(t, loopbackVideo)
	tab := newTab(t, browser)
	signInWithForm(t, tab, s2.base, "night.elm", "/home")
	waitText(t, tab, "footer-phone", "+44 1632 960002", 10*time.Second)
	s2.close()
	waitText(t, tab, "fallback-reason", "cannot be reached", 15*time.Second)
	if !visible(t, tab, "fallback") || textOf(t, tab, "fallback-phone") != "+44 1632 960002" {
		t.Fatalf("server stopped: fallback %v %q", visible(t, tab, "fallback"), textOf(t, tab, "fallback-phone"))
	}
}
