package main

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The wrong-resident and stale-data guards in Chromium: the home confirms the
// resident's name and date of birth and sees stale observations and an
// overdue care plan before raising; the consultant's case view shows each
// raw value with its unit, time and sub-score, the reason a value is absent,
// "partial, at least N", the stale and overdue flags, and a 72 h trend with
// one series per NEWS2 parameter.
func TestBrowserObservationGuards(t *testing.T) {
	s := startServer(t, loopbackVideo)
	nurse := s.signedIn("night.rose")
	admin := s.signedIn("admin")
	london := mustLoc(t, "Europe/London")

	// Earlier routine sets for the trend, and a care plan past its review date.
	for _, ago := range []time.Duration{30 * time.Hour, 6 * time.Hour} {
		obs := raiseBody("rc-101")["observations"].(map[string]any)
		obs["respiration_rate"], obs["pulse"] = 16, 84
		obs["taken_at"] = time.Now().Add(-ago).UTC().Format(time.RFC3339)
		if r := nurse.do("POST", "/api/v1/residents/rc-101/observations", map[string]any{"observations": obs}); r.status != 201 {
			t.Fatalf("routine observations: %d %s", r.status, r.body)
		}
	}
	reviewDue := time.Now().In(london).AddDate(0, 0, -3).Format("2006-01-02")
	if r := admin.do("POST", "/api/v1/residents/rc-101/advance-care-plan", map[string]any{
		"has_respect_form": true, "focus": "balance", "hospital_admission": "discuss", "cpr": "do_not_attempt",
		"summary": "Treat reversible causes at home if possible.", "recorded_at": "2025-03-02", "review_due": reviewDue,
	}); r.status != 200 {
		t.Fatalf("set plan: %d %s", r.status, r.body)
	}

	browser := newBrowser(t)
	home, console := newTab(t, browser), newTab(t, browser)

	// The care home: blood pressure refused, the rest taken two hours ago.
	signInWithForm(t, home, s.base, "night.rose", "/home")
	waitFor(t, 10*time.Second, "residents listed", func() bool {
		return js[bool](t, home, `!!document.querySelector('input[name=resident][value="rc-101"]')`)
	})
	card := js[string](t, home, `document.querySelector('input[name=resident][value="rc-101"]').closest("label").textContent`)
	if !strings.Contains(card, "review overdue") || !strings.Contains(card, "12 April 1938") {
		t.Errorf("the resident card says %q: want the date of birth and \"review overdue\"", card)
	}
	js[bool](t, home, `(() => { document.querySelector('input[name=resident][value="rc-101"]').click(); return true; })()`)
	setObservations(t, home, map[string]string{"respiration_rate": "22", "spo2": "93", "systolic_bp": "", "pulse": "112", "consciousness": "A", "temperature": "38.4"})
	fill(t, home, "absent-systolic_bp", "refused")
	waitText(t, home, "news2-total", "partial, at least 7", 5*time.Second)
	if visible(t, home, "stale-warning") {
		t.Error("observations just entered are flagged stale")
	}
	taken := time.Now().Add(-2 * time.Hour).In(london)
	fill(t, home, "taken_at", taken.Format("15:04"))
	waitText(t, home, "stale-warning", "more than an hour ago", 5*time.Second)
	fill(t, home, "situation", "Breathless and hot since midnight")

	// Raising asks first: is this the right resident?
	within(t, home, 10*time.Second, chromedp.Click(`#raise-submit`))
	waitText(t, home, "raise-confirm-who", "Margaret Ellis", 5*time.Second)
	who := textOf(t, home, "raise-confirm-who")
	if !strings.Contains(who, "born 12 April 1938") || !strings.Contains(who, "room 3") {
		t.Errorf("the confirm step says %q: want the name, date of birth and room", who)
	}
	flags := textOf(t, home, "raise-confirm-flags")
	if !strings.Contains(flags, "more than an hour ago") || !strings.Contains(flags, "review overdue") {
		t.Errorf("the confirm step's flags: %q", flags)
	}
	if !strings.Contains(textOf(t, home, "raise-confirm-yes"), "Margaret Ellis") {
		t.Errorf("the confirm button says %q", textOf(t, home, "raise-confirm-yes"))
	}
	if n := len(nurse.do("GET", "/api/v1/escalations?status=open", nil).list(t)); n != 0 {
		t.Fatalf("%d escalations open before the nurse confirmed", n)
	}
	checkAccessibility(t, home, "care-home confirm step")
	screenshot(t, home, "../../docs/screenshots/home-confirm.png")
	within(t, home, 10*time.Second, chromedp.Click(`#raise-confirm-yes`))
	waitText(t, home, "wait-title", "Waiting", 10*time.Second)
	waitText(t, home, "wait-stale", "more than an hour before", 10*time.Second)
	checkAccessibility(t, home, "care-home waiting")

	// The consultant accepts and opens the case.
	signInWithForm(t, console, s.base, "dr.okafor", "/console")
	waitFor(t, 15*time.Second, "the queue lists the escalation", func() bool {
		return js[bool](t, console, `!!document.querySelector("#queue button")`)
	})
	if q := textOf(t, console, "queue"); !strings.Contains(q, "partial, at least 7") {
		t.Errorf("the queue says %q", q)
	}
	within(t, console, 10*time.Second, chromedp.Click(`#queue button`))
	waitText(t, console, "case-title", "Margaret Ellis", 10*time.Second)
	waitText(t, console, "observations", "Respiration rate", 10*time.Second)

	type row struct{ Param, Value, Taken, Score string }
	rows := js[[]row](t, console, `[...document.querySelectorAll("#observations tbody tr")].map(tr => ({param: tr.dataset.param,
		value: tr.cells[1].textContent, taken: tr.cells[2].textContent, score: tr.cells[3].textContent}))`)
	byParam := map[string]row{}
	for _, r := range rows {
		byParam[r.Param] = r
	}
	// Shown en-GB, 24-hour, in Europe/London; with the date when not today.
	wantTime := taken.Format("15:04")
	otherDay := taken.Format("2006-01-02") != time.Now().In(london).Format("2006-01-02")
	shownAt := func(s string) bool {
		if otherDay {
			return strings.HasSuffix(s, " "+wantTime) && strings.Contains(s, taken.Format("2006"))
		}
		return s == wantTime
	}
	for param, want := range map[string][2]string{
		"respiration_rate": {"22 /min", "2"}, "spo2": {"93 %", "2"}, "on_oxygen": {"Air", "0"},
		"systolic_bp": {"not taken: the resident refused", "not scored"}, "pulse": {"112 /min", "2"},
		"consciousness": {"A — alert", "0"}, "temperature": {"38.4 °C", "1"},
	} {
		r, ok := byParam[param]
		switch {
		case !ok:
			t.Errorf("no row for %s in %v", param, rows)
		case r.Value != want[0] || r.Score != want[1]:
			t.Errorf("%s: %q scored %q, want %q scored %q", param, r.Value, r.Score, want[0], want[1])
		case param != "systolic_bp" && !shownAt(r.Taken):
			t.Errorf("%s taken %q, want %q (en-GB 24-hour in Europe/London)", param, r.Taken, wantTime)
		}
	}
	if n := textOf(t, console, "case-news2"); !strings.Contains(n, "partial, at least 7") || strings.Contains(n, "NEWS2 7 ") {
		t.Errorf("the case's NEWS2 says %q", n)
	}
	if !visible(t, console, "case-stale") || !strings.Contains(textOf(t, console, "case-stale"), "Stale") {
		t.Errorf("stale flag: shown %v, %q", visible(t, console, "case-stale"), textOf(t, console, "case-stale"))
	}
	if !visible(t, console, "acp-overdue") || !strings.Contains(textOf(t, console, "acp"), "review overdue") {
		t.Errorf("care plan: overdue shown %v, %q", visible(t, console, "acp-overdue"), textOf(t, console, "acp"))
	}

	// The trend: one chart and one series per parameter, three sets each
	// (30 h and 6 h ago, and the raise), blood pressure absent in the last.
	type series struct {
		Key    string
		Points int
		Absent int
		Label  string
	}
	got := js[[]series](t, console, `[...document.querySelectorAll("#trend svg")].map(svg => { const g = svg.querySelector("[data-series]");
		return {key: g ? g.dataset.series : "", points: g ? g.querySelectorAll("circle").length : 0,
			absent: g ? g.querySelectorAll(".absent-mark").length : 0, label: svg.getAttribute("aria-label") || ""}; })`)
	want := []string{"respiration_rate", "spo2", "on_oxygen", "systolic_bp", "pulse", "consciousness", "temperature", "news2"}
	if len(got) != len(want) {
		t.Fatalf("the trend has %d charts, want %d (one per parameter and the total): %v", len(got), len(want), got)
	}
	for i, k := range want {
		g := got[i]
		wantPoints, wantAbsent := 3, 0
		if k == "systolic_bp" {
			wantPoints, wantAbsent = 2, 1
		}
		if g.Key != k || g.Points != wantPoints || g.Absent != wantAbsent || g.Label == "" {
			t.Errorf("chart %d: %+v, want series %s with %d points and %d absent", i, g, k, wantPoints, wantAbsent)
		}
	}
	if !strings.Contains(got[4].Label, "Pulse 112 /min at ") || !strings.Contains(got[4].Label, wantTime) || !strings.Contains(got[4].Label, "Scores 0 between 51 and 90") {
		t.Errorf("pulse chart label: %q", got[4].Label)
	}
	if !strings.Contains(got[7].Label, "usual NEWS2 is 1") {
		t.Errorf("NEWS2 chart label: %q (want the baseline)", got[7].Label)
	}
	checkAccessibility(t, console, "consultant case view with observations")
	screenshot(t, console, "../../docs/screenshots/console-case.png")
}
