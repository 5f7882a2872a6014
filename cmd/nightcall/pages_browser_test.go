package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The pages as clinical tools (issue 16), in Chromium at the two sizes that
// matter: a 390×844 phone in portrait with touch (the consultant at home at
// 3 a.m.) and a 1024×768 tablet (the care home).

// onPhone makes the tab a 390×844 phone in portrait, with touch.
func onPhone(t *testing.T, tab context.Context) {
	t.Helper()
	within(t, tab, 10*time.Second, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulatePortrait, chromedp.EmulateMobile, chromedp.EmulateTouch))
}

// onTablet makes the tab a 1024×768 tablet in landscape, with touch.
func onTablet(t *testing.T, tab context.Context) {
	t.Helper()
	within(t, tab, 10*time.Second, chromedp.EmulateViewport(1024, 768, chromedp.EmulateLandscape, chromedp.EmulateTouch))
}

type rect struct{ X, Y, W, H, VW, VH, ScrollY float64 }

// rectOf is an element's box in the viewport, and the viewport.
func rectOf(t *testing.T, tab context.Context, selector string) rect {
	t.Helper()
	return js[rect](t, tab, fmt.Sprintf(`(() => { const e = document.querySelector(%q); if (!e) return {w: -1};
		const r = e.getBoundingClientRect(); return {x: r.left, y: r.top, w: r.width, h: r.height, vw: innerWidth, vh: innerHeight, scrollY: scrollY}; })()`, selector))
}

// inView reports whether the whole element is on screen without scrolling.
func (r rect) inView() bool {
	return r.W > 0 && r.H > 0 && r.X >= 0 && r.Y >= 0 && r.X+r.W <= r.VW+0.5 && r.Y+r.H <= r.VH+0.5
}

// tap touches the middle of an element; scroll first brings it on screen.
func tap(t *testing.T, tab context.Context, selector string, scroll bool) {
	t.Helper()
	if scroll {
		js[bool](t, tab, fmt.Sprintf(`(() => { document.querySelector(%q).scrollIntoView({block: "center"}); return true; })()`, selector))
	}
	r := rectOf(t, tab, selector)
	if !r.inView() {
		t.Fatalf("%s is not on screen to tap: %+v", selector, r)
	}
	within(t, tab, 10*time.Second, chromedp.TapXY(r.X+r.W/2, r.Y+r.H/2))
}

// noSideScroll fails when the page is wider than the screen.
func noSideScroll(t *testing.T, tab context.Context, page string) {
	t.Helper()
	if w := js[[]float64](t, tab, `[document.documentElement.scrollWidth, innerWidth]`); w[0] > w[1] {
		t.Errorf("%s scrolls sideways: %v px wide on a %v px screen", page, w[0], w[1])
	}
}

// smallTargets lists visible controls under 44×44 px (a radio or checkbox
// counts by its label, which is what takes the tap).
func smallTargets(t *testing.T, tab context.Context) []string {
	return js[[]string](t, tab, `(() => {
		const out = [];
		for (const e of document.querySelectorAll("button, a[href], input:not([type=hidden]), select, textarea, summary")) {
			let box = e;
			if (e.matches("input[type=radio], input[type=checkbox]")) box = e.closest("label") || (e.id && document.querySelector('label[for="' + e.id + '"]')) || e;
			const r = box.getBoundingClientRect();
			if (r.width === 0 || r.height === 0 || getComputedStyle(box).visibility === "hidden") continue;
			if (r.width < 44 || r.height < 44) out.push((e.id ? "#" + e.id : e.tagName.toLowerCase()) + " " + JSON.stringify((e.textContent || e.value || "").trim().slice(0, 30)) + " " + Math.round(r.width) + "×" + Math.round(r.height));
		}
		return out; })()`)
}

type ringStop struct {
	ID       string  `json:"id"`
	Tag      string  `json:"tag"`
	Text     string  `json:"text"`
	Width    float64 `json:"width"`
	Style    string  `json:"style"`
	Color    string  `json:"color"`
	Behind   string  `json:"behind"`
	Contrast float64 `json:"contrast"`
}

// focusRings presses Tab through the page (up to max stops) and reads the
// focus ring of each element it reaches from getComputedStyle: its width,
// style and colour, and its contrast with the background it is drawn on
// (the nearest ancestor with an opaque background).
func focusRings(t *testing.T, tab context.Context, max int) []ringStop {
	t.Helper()
	js[bool](t, tab, `(() => { document.activeElement && document.activeElement.blur && document.activeElement.blur(); window.scrollTo(0, 0); return true; })()`)
	var stops []ringStop
	seen := map[string]bool{}
	for i := 0; i < max; i++ {
		within(t, tab, 5*time.Second, chromedp.KeyEvent("\t"))
		s := js[ringStop](t, tab, `(() => {
			const e = document.activeElement;
			if (!e || e === document.body) return {tag: ""};
			const lum = (c) => { const m = /rgba?\(([\d.]+),\s*([\d.]+),\s*([\d.]+)/.exec(c); if (!m) return null;
				const ch = [m[1], m[2], m[3]].map((v) => { v = v / 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
				return 0.2126 * ch[0] + 0.7152 * ch[1] + 0.0722 * ch[2]; };
			let ringEl = e, cs = getComputedStyle(e);
			if (cs.outlineStyle === "none" || parseFloat(cs.outlineWidth) === 0) { const l = e.closest(".toggle"); if (l) { ringEl = l; cs = getComputedStyle(l); } }
			let p = ringEl.parentElement, behind = "rgb(255, 255, 255)";
			while (p) { const b = getComputedStyle(p).backgroundColor; if (b && b !== "transparent" && !/rgba\(.*,\s*0\)$/.test(b)) { behind = b; break; } p = p.parentElement; }
			const a = lum(cs.outlineColor), b = lum(behind);
			const contrast = a === null || b === null ? 0 : (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
			return {id: e.id, tag: e.tagName.toLowerCase(), text: (e.textContent || e.value || "").trim().slice(0, 30), width: parseFloat(cs.outlineWidth) || 0,
				style: cs.outlineStyle, color: cs.outlineColor, behind, contrast};
		})()`)
		if s.Tag == "" {
			continue
		}
		key := s.Tag + "#" + s.ID + "/" + s.Text
		if seen[key] {
			break // round the page once
		}
		seen[key] = true
		stops = append(stops, s)
	}
	return stops
}

// checkPage holds every page to the same bar: axe finds nothing serious
// or critical, nothing scrolls sideways, every control is 44 px or more,
// and every focus ring is 2 px or more with 3:1 contrast or better.
func checkPage(t *testing.T, tab context.Context, page string) {
	t.Helper()
	checkAccessibility(t, tab, page)
	noSideScroll(t, tab, page)
	if small := smallTargets(t, tab); len(small) > 0 {
		t.Errorf("%s: targets under 44 px: %s", page, strings.Join(small, "; "))
	}
	stops := focusRings(t, tab, 70)
	if len(stops) == 0 {
		t.Errorf("%s: Tab reaches nothing", page)
	}
	for _, s := range stops {
		if s.Style == "none" || s.Width < 2 || s.Contrast < 3 {
			t.Errorf("%s: focus ring on %s#%s %q: %s %.0f px %s on %s, contrast %.2f:1 (want 3:1 or more)", page, s.Tag, s.ID, s.Text, s.Style, s.Width, s.Color, s.Behind, s.Contrast)
		}
	}
}

// shot saves what is on the screen (not the whole page: what a person sees
// without scrolling) when NIGHTCALL_SCREENSHOTS is set.
func shot(t *testing.T, tab context.Context, name string) {
	t.Helper()
	if os.Getenv("NIGHTCALL_SCREENSHOTS") == "" {
		return
	}
	js[bool](t, tab, `(() => { if (document.activeElement && document.activeElement.blur) document.activeElement.blur(); window.scrollTo(0, 0); return true; })()`)
	shotAsIs(t, tab, name)
}

// shotAsIs saves the screen as it is, scrolled and focused where it is.
func shotAsIs(t *testing.T, tab context.Context, name string) {
	t.Helper()
	if os.Getenv("NIGHTCALL_SCREENSHOTS") == "" {
		return
	}
	png := within(t, tab, 30*time.Second, chromedp.CaptureScreenshot())
	if err := os.WriteFile("../../docs/screenshots/"+name, png, 0o644); err != nil {
		t.Errorf("screenshot: %v", err)
	}
}

// raiseForMargaret fills in and confirms a raise for rc-101 on the home page.
func raiseForMargaret(t *testing.T, home context.Context) {
	t.Helper()
	waitFor(t, 10*time.Second, "residents listed", func() bool {
		return js[bool](t, home, `!!document.querySelector('input[name=resident][value="rc-101"]')`)
	})
	js[bool](t, home, `(() => { document.querySelector('input[name=resident][value="rc-101"]').click(); return true; })()`)
	setObservations(t, home, map[string]string{"respiration_rate": "22", "spo2": "93", "systolic_bp": "104", "pulse": "112", "consciousness": "A", "temperature": "38.4"})
	waitText(t, home, "news2-total", "8", 15*time.Second)
	fill(t, home, "situation", "More breathless since 01:00, not herself")
	within(t, home, 10*time.Second, chromedp.Click(`#raise-submit`))
	within(t, home, 10*time.Second, chromedp.Click(`#raise-confirm-yes`))
	waitText(t, home, "wait-title", "Waiting", 10*time.Second)
}

// decoding waits until the tab decodes video, then until it decodes more.
func decoding(t *testing.T, tab context.Context, who string) {
	t.Helper()
	var first int
	deadline := time.Now().Add(30 * time.Second)
	for first = framesDecoded(t, tab); first == 0; first = framesDecoded(t, tab) {
		if time.Now().After(deadline) {
			report := js[any](t, tab, `(async () => ({status: (document.getElementById("status") || {}).textContent, dbg: window.__dbg, views: [...document.querySelectorAll("main > section")].map(s => s.id + ":" + s.hidden), accepted: (document.getElementById("accepted-by") || {}).textContent, report: window.NightcallCall ? await NightcallCall.report() : null}))()`)
			t.Fatalf("%s decodes no video after 30 s: %v", who, report)
		}
		time.Sleep(100 * time.Millisecond)
	}
	waitFor(t, 15*time.Second, who+"'s video keeps playing", func() bool { return framesDecoded(t, tab) > first })
}

// TestBrowserPhoneConsultant: on a 390×844 phone a page arrives on the open
// console as an Accept button inside the screen, with nothing off to the
// side; one tap opens the case with the home's video playing and, without
// scrolling, the resident's name, age and NHS number, the raw observations,
// NEWS2 and the care plan's admission and CPR wishes. The decision tiles
// record a stay, confirmed in words naming the resident and the home, and
// the form locks with "Back to queue". The tablet names the resident on the
// call and decision screens and on the printed decision.
func TestBrowserPhoneConsultant(t *testing.T) {
	s := startServer(t, loopbackVideo)
	browser := newBrowser(t)
	home, console := newTab(t, browser), newTab(t, browser)
	onPhone(t, console)
	onTablet(t, home)

	signInWithForm(t, console, s.base, "dr.okafor", "/console")
	waitText(t, console, "pager-status", "Pager connected", 15*time.Second)
	checkPage(t, console, "console queue (phone)")

	signInWithForm(t, home, s.base, "night.rose", "/home")
	raiseForMargaret(t, home)

	// The page arrives on the open console: the banner is the Accept button.
	waitText(t, console, "alert", "Margaret Ellis", 10*time.Second)
	banner := textOf(t, console, "alert")
	for _, want := range []string{"Accept", "Rose Court", "NEWS2 8", "Waiting"} {
		if !strings.Contains(banner, want) {
			t.Errorf("the page banner says %q: want %q", banner, want)
		}
	}
	if r := rectOf(t, console, "#alert button"); !r.inView() || r.H < 44 {
		t.Errorf("the Accept control is not inside the phone's screen: %+v", r)
	}
	noSideScroll(t, console, "console with a page (phone)")
	if r := rectOf(t, console, "#queue button"); !r.inView() && r.X+r.W > r.VW {
		t.Errorf("the queue's Accept is off the side of the screen: %+v", r)
	}
	shot(t, console, "console-phone.png")

	tap(t, console, "#alert button", false)
	waitText(t, console, "case-title", "Margaret Ellis", 10*time.Second)
	decoding(t, home, "the care home's tablet")
	decoding(t, console, "the consultant's phone")

	// Without scrolling: who, the raw observations, NEWS2, the care plan's wishes.
	waitText(t, console, "observations", "Respiration rate", 15*time.Second)
	if y := js[float64](t, console, `scrollY`); y != 0 {
		t.Errorf("the case opened scrolled to %v", y)
	}
	for sel, what := range map[string]string{"#case-title": "the name and age", "#case-who": "the NHS number", "#observations table": "the raw observations",
		"#case-news2": "NEWS2", "#acp-wishes": "the care plan's admission and CPR wishes", "#remotes video": "the home's video"} {
		if r := rectOf(t, console, sel); !r.inView() {
			t.Errorf("%s (%s) is not on the phone's screen without scrolling: %+v", what, sel, r)
		}
	}
	title, who, wishes := textOf(t, console, "case-title"), textOf(t, console, "case-who"), textOf(t, console, "acp-wishes")
	if !strings.Contains(title, "Margaret Ellis, 8") || !strings.Contains(who, "999 000 0018") {
		t.Errorf("the case names %q / %q: want the name, age and NHS number", title, who)
	}
	if !strings.Contains(wishes, "discuss") || !strings.Contains(wishes, "do not attempt CPR") {
		t.Errorf("the care plan's wishes say %q", wishes)
	}
	if obs := textOf(t, console, "observations"); !strings.Contains(obs, "22 /min") || !strings.Contains(obs, "38.4 °C") || !strings.Contains(obs, "Taken at") {
		t.Errorf("the observations say %q: want values with units and the time taken", obs)
	}
	// The home's video large, the consultant's own camera small.
	remote, self := rectOf(t, console, "#remotes video"), rectOf(t, console, "#local")
	if remote.W < 0.8*remote.VW || self.W*self.H > remote.W*remote.H/4 {
		t.Errorf("video sizes: the home's %vx%v, own camera %vx%v on a %v px screen", remote.W, remote.H, self.W, self.H, remote.VW)
	}
	if href := js[string](t, console, `document.getElementById("call-home").getAttribute("href")`); href != "tel:+441632960001" {
		t.Errorf("the home's phone is %q, want tel:+441632960001", href)
	}
	if r := rectOf(t, console, "#call-home"); r.H < 44 {
		t.Errorf("the home's phone link is %v px tall", r.H)
	}
	checkPage(t, console, "console case (phone)")
	shot(t, console, "console-case-phone.png")

	// The tablet names the resident on the call screen.
	waitText(t, home, "accepted-by", "Dr Chidi Okafor has accepted", 10*time.Second)
	if w := textOf(t, home, "call-who"); !strings.Contains(w, "Margaret Ellis") || !strings.Contains(w, "12 April 1938") || !strings.Contains(w, "999 000 0018") || !strings.Contains(w, "Rose Court") {
		t.Errorf("the call screen names %q", w)
	}
	checkPage(t, home, "care-home call (tablet)")
	shot(t, home, "home-call-tablet.png")

	// The decision: tiles, a check, the confirm in words, then locked.
	tap(t, console, "#review", true)
	waitText(t, console, "err-outcome", "Choose Stay", 15*time.Second)
	tap(t, console, `label:has(input[name=outcome][value=stay])`, true)
	tap(t, console, `label:has(input[name=counterfactual][value=ed])`, true)
	fill(t, console, "rationale", "Chest infection; observations stable on antibiotics")
	fill(t, console, "plan", "Amoxicillin; observations 4-hourly; call back if NEWS2 rises above 5")
	tap(t, console, "#review", true)
	waitText(t, console, "confirm-text", "Margaret Ellis stays at Rose Court; without this call they would have gone to A&E", 15*time.Second)
	tap(t, console, "#confirm-yes", true)
	waitText(t, console, "decision-result", "Decision recorded", 10*time.Second)
	locked := js[[]string](t, console, `[...document.querySelectorAll("#decision-form input, #decision-form textarea, #decision-form button")].filter(e => e.id !== "back-to-queue" && !e.disabled).map(e => e.id || e.name + "=" + e.value)`)
	if len(locked) > 0 {
		t.Errorf("after recording, these can still be changed: %v", locked)
	}
	if !visible(t, console, "back-to-queue") {
		t.Error("no Back to queue after recording")
	}
	shot(t, console, "console-decided-phone.png")

	// The tablet: the decision screen and its print name the resident.
	waitText(t, home, "outcome", "Stay in the home", 15*time.Second)
	for _, want := range []string{"Margaret Ellis", "12 April 1938", "999 000 0018", "Rose Court"} {
		if !strings.Contains(textOf(t, home, "decision-who"), want) {
			t.Errorf("the decision screen lacks %q: %q", want, textOf(t, home, "decision-who"))
		}
	}
	checkPage(t, home, "care-home decision (tablet)")
	shot(t, home, "home-decision-tablet.png")
	within(t, home, 5*time.Second, emulateMedia("print"))
	printed := js[map[string]string](t, home, `(() => { const d = (id) => getComputedStyle(document.getElementById(id)).display;
		return {who: d("decision-who"), printed: d("printed-at"), plan: d("plan"), header: getComputedStyle(document.querySelector("header")).display, print: d("print"),
			text: document.getElementById("decision-who").textContent + " " + document.getElementById("printed-at").textContent}; })()`)
	within(t, home, 5*time.Second, emulateMedia(""))
	if printed["who"] == "none" || printed["printed"] == "none" || printed["plan"] == "none" || printed["header"] != "none" || printed["print"] != "none" {
		t.Errorf("printed, the decision shows %v", printed)
	}
	for _, want := range []string{"Margaret Ellis", "12 April 1938", "999 000 0018", "Rose Court", "Printed"} {
		if !strings.Contains(printed["text"], want) {
			t.Errorf("the printed decision lacks %q: %q", want, printed["text"])
		}
	}

	tap(t, console, "#back-to-queue", true)
	waitFor(t, 5*time.Second, "back on the queue", func() bool { return visible(t, console, "queue-view") && !visible(t, console, "case-view") })
}

// TestBrowserTabletRaise: on a 1024×768 tablet an empty submit puts an
// error summary at the button and moves focus to it (it is announced: role
// alert); an error survives a re-score; the chosen resident is named on the
// button, on the card and under the list; Scale 2 is stated where SpO2 is
// scored; the care plan sits beside the emergency advice; the waiting
// screen names the resident, Withdraw asks first, and a lost server is said
// on the waiting screen with the fallback number. The sign-in page shows the
// fallback number this tablet last used.
func TestBrowserTabletRaise(t *testing.T) {
	s := startServer(t, loopbackVideo)
	nurse := s.signedIn("night.rose")
	browser := newBrowser(t)
	home := newTab(t, browser)
	onTablet(t, home)

	signInWithForm(t, home, s.base, "night.rose", "/home")
	waitText(t, home, "footer-phone", "+44 1632 960001", 10*time.Second)
	within(t, home, 10*time.Second, chromedp.Click("#signout"))
	waitText(t, home, "signin-fallback-phone", "+44 1632 960001", 10*time.Second)
	if !visible(t, home, "signin-fallback-phone") {
		t.Error("the sign-in page hides the fallback number")
	}
	checkPage(t, home, "sign-in (tablet)")
	shot(t, home, "signin-tablet.png")

	signInWithForm(t, home, s.base, "night.rose", "/home")
	waitFor(t, 10*time.Second, "residents listed", func() bool {
		return js[bool](t, home, `!!document.querySelector('input[name=resident][value="rc-101"]')`)
	})
	if l := textOf(t, home, "raise-submit"); l != "Ask for a consultant" {
		t.Errorf("before a resident is chosen the button says %q", l)
	}

	// An empty submit: the summary at the button takes focus and is announced.
	within(t, home, 10*time.Second, chromedp.Click("#raise-submit"))
	waitFor(t, 5*time.Second, "focus on the error summary", func() bool {
		return js[string](t, home, `document.activeElement ? document.activeElement.id : ""`) == "raise-errors"
	})
	if role := js[string](t, home, `document.getElementById("raise-errors").getAttribute("role")`); role != "alert" {
		t.Errorf("the error summary has role %q, want alert", role)
	}
	summary := textOf(t, home, "raise-errors")
	for _, want := range []string{"Choose the resident", "Describe the situation", "soft sign"} {
		if !strings.Contains(summary, want) {
			t.Errorf("the error summary %q lacks %q", summary, want)
		}
	}
	// The summary sits at the button, not at the top of the page.
	sum, button := rectOf(t, home, "#raise-errors"), rectOf(t, home, "#raise-submit")
	if !sum.inView() || button.Y-(sum.Y+sum.H) > 48 || button.Y < sum.Y {
		t.Errorf("the error summary %+v is not at the button %+v", sum, button)
	}
	if n := len(nurse.do("GET", "/api/v1/escalations?status=open", nil).list(t)); n != 0 {
		t.Fatalf("an empty submit raised %d escalations", n)
	}
	shotAsIs(t, home, "home-errors-tablet.png")

	// Choosing names the resident everywhere on the form.
	js[bool](t, home, `(() => { document.querySelector('input[name=resident][value="rc-103"]').click(); return true; })()`)
	waitText(t, home, "spo2-scale", "Scale 2", 15*time.Second)
	js[bool](t, home, `(() => { document.querySelector('input[name=resident][value="rc-101"]').click(); return true; })()`)
	waitText(t, home, "raise-submit", "Ask for a consultant for Margaret Ellis", 15*time.Second)
	waitText(t, home, "chosen", "Margaret Ellis", 15*time.Second)
	if c := textOf(t, home, "chosen"); !strings.Contains(c, "12 April 1938") || !strings.Contains(c, "999 000 0018") {
		t.Errorf("the chosen line says %q", c)
	}
	widths := js[[]float64](t, home, `[...document.querySelectorAll(".resident")].map(l => parseFloat(getComputedStyle(l).borderTopWidth) * (l.querySelector("input").checked ? -1 : 1))`)
	for _, w := range widths {
		if w < 0 && -w < 4 {
			t.Errorf("the chosen card's border is %v px: it looks like the others", -w)
		}
	}
	if !strings.Contains(textOf(t, home, "spo2-scale"), "Scale 1") {
		t.Errorf("SpO2 scale hint for Margaret Ellis: %q", textOf(t, home, "spo2-scale"))
	}
	if strings.Contains(textOf(t, home, "raise-errors"), "Choose the resident") {
		t.Error("choosing the resident left its error in the summary")
	}

	// An error survives a re-score.
	setObservations(t, home, map[string]string{"respiration_rate": "22", "spo2": "93", "systolic_bp": "104", "pulse": "112", "consciousness": "A", "temperature": "38.4"})
	waitText(t, home, "news2-total", "8", 15*time.Second)
	fill(t, home, "temperature", "39.2") // a second re-score, the last edit an observation
	waitText(t, home, "news2-total", "9", 15*time.Second)
	if e := textOf(t, home, "err-sbard.situation"); !strings.Contains(e, "Describe the situation") {
		t.Errorf("a re-score cleared the situation's error: %q", e)
	}
	if !visible(t, home, "raise-errors") || !strings.Contains(textOf(t, home, "raise-errors"), "Describe the situation") {
		t.Errorf("a re-score cleared the error summary: %q", textOf(t, home, "raise-errors"))
	}
	if sub := textOf(t, home, "news2-subscores"); !strings.Contains(sub, "SpO2 (Scale 1)") {
		t.Errorf("the sub-scores do not say which SpO2 scale: %q", sub)
	}
	if !visible(t, home, "emergency-acp") || !strings.Contains(textOf(t, home, "emergency-acp"), "do not attempt CPR") {
		t.Errorf("no care plan beside the emergency advice: %q", textOf(t, home, "emergency-acp"))
	}
	if l := js[string](t, home, `document.querySelector('label[for="absent-spo2"]').textContent`); !strings.Contains(l, "Taken?") {
		t.Errorf("the absent-value choice is labelled %q", l)
	}
	if r := rectOf(t, home, "label.toggle"); r.H < 44 || r.W < 120 {
		t.Errorf("the on-oxygen toggle is %vx%v", r.W, r.H)
	}
	checkPage(t, home, "care-home raise (tablet)")
	shot(t, home, "home-tablet.png")

	fill(t, home, "situation", "More breathless since 01:00, not herself")
	if visible(t, home, "raise-errors") {
		t.Errorf("the summary stays after every error is fixed: %q", textOf(t, home, "raise-errors"))
	}
	within(t, home, 10*time.Second, chromedp.Click("#raise-submit"))
	within(t, home, 10*time.Second, chromedp.Click("#raise-confirm-yes"))
	waitText(t, home, "wait-who", "Margaret Ellis", 10*time.Second)
	for _, want := range []string{"12 April 1938", "999 000 0018", "Rose Court"} {
		if !strings.Contains(textOf(t, home, "wait-who"), want) {
			t.Errorf("the waiting screen lacks %q: %q", want, textOf(t, home, "wait-who"))
		}
	}
	waitText(t, home, "paged", "Dr Chidi Okafor", 10*time.Second)

	// Withdraw asks first.
	within(t, home, 10*time.Second, chromedp.Click("#withdraw"))
	waitText(t, home, "withdraw-confirm-text", "Margaret Ellis", 15*time.Second)
	if n := len(nurse.do("GET", "/api/v1/escalations?status=open", nil).list(t)); n != 1 {
		t.Fatalf("one tap on Withdraw changed the open escalations to %d", n)
	}
	checkPage(t, home, "care-home waiting (tablet)")
	shot(t, home, "home-waiting-tablet.png")
	within(t, home, 10*time.Second, chromedp.Click("#withdraw-no"))

	// The server is lost: the waiting screen says so, with the number.
	s.close()
	waitText(t, home, "wait-lost", "lost contact", 15*time.Second)
	if !strings.Contains(textOf(t, home, "wait-lost"), "+44 1632 960001") || visible(t, home, "wait-advice") {
		t.Errorf("server lost: %q (advice shown %v)", textOf(t, home, "wait-lost"), visible(t, home, "wait-advice"))
	}
}

// TestBrowserCallLeaveAndRejoin: when the consultant leaves the call their
// tile goes from the home's screen at once ("Dr Chidi Okafor left the
// call"), Rejoin brings the video back; the same the other way round. When
// the video fails each side is shown the number to phone.
func TestBrowserCallLeaveAndRejoin(t *testing.T) {
	s := startServer(t, loopbackVideo)
	id, _, _ := acceptedEscalation(t, s)
	browser := newBrowser(t)
	home, console := newTab(t, browser), newTab(t, browser)
	onTablet(t, home)
	onPhone(t, console)
	signInWithForm(t, home, s.base, "night.rose", "/home")
	waitText(t, home, "accepted-by", "has accepted", 15*time.Second)
	signInWithForm(t, console, s.base, "dr.okafor", "/console")
	waitFor(t, 15*time.Second, "the queue offers the case", func() bool {
		return strings.Contains(textOf(t, console, "queue"), "Margaret Ellis")
	})
	tap(t, console, "#queue button", false)
	waitText(t, console, "case-title", "Margaret Ellis", 10*time.Second)
	decoding(t, home, "the home")
	decoding(t, console, "the consultant")
	tiles := func(tab context.Context) int {
		return js[int](t, tab, `document.querySelectorAll("#remotes .tile").length`)
	}

	// The consultant leaves: the home's tile for them goes within 2 s.
	tap(t, console, "#leave", true)
	deadline := time.Now().Add(2 * time.Second)
	for tiles(home) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("2 s after the consultant left, the home still shows %d video tiles", tiles(home))
		}
		time.Sleep(50 * time.Millisecond)
	}
	waitText(t, home, "call-notice", "Dr Chidi Okafor left the call", 2*time.Second)
	if !visible(t, console, "rejoin") || visible(t, console, "leave") {
		t.Errorf("after leaving: rejoin shown %v, leave shown %v", visible(t, console, "rejoin"), visible(t, console, "leave"))
	}
	shot(t, home, "home-left-tablet.png")
	tap(t, console, "#rejoin", true)
	waitText(t, home, "call-notice", "joined the call", 10*time.Second)
	decoding(t, home, "the home after the consultant rejoined")
	decoding(t, console, "the consultant after rejoining")

	// The home leaves and rejoins.
	within(t, home, 10*time.Second, chromedp.Click("#leave"))
	deadline = time.Now().Add(2 * time.Second)
	for tiles(console) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("2 s after the home left, the consultant still shows %d video tiles", tiles(console))
		}
		time.Sleep(50 * time.Millisecond)
	}
	waitText(t, console, "call-notice", "left the call", 2*time.Second)
	within(t, home, 10*time.Second, chromedp.Click("#rejoin"))
	decoding(t, console, "the consultant after the home rejoined")
	decoding(t, home, "the home after rejoining")

	// When the video fails, each side has the other's number (the home, its
	// fallback line; the consultant, the home's) in the same place.
	for name, tab := range map[string]context.Context{"home": home, "consultant": console} {
		js[bool](t, tab, `(() => { NightcallCall.trouble("The video connection failed."); return true; })()`)
		if tr := textOf(t, tab, "call-trouble"); !strings.Contains(tr, "+44 1632 960001") {
			t.Errorf("%s: when the video fails the page says %q", name, tr)
		}
		js[bool](t, tab, `(() => { NightcallCall.trouble(null); return true; })()`)
	}
	_ = id
}

// TestBrowserPagesAtBothSizes: sign-in, admin, audit and the call page at
// phone and tablet size pass axe, the 44 px and focus-ring checks and never
// scroll sideways; the admin page edits a resident, the rota and accounts
// and shows the API's validation at the field; the audit page states its
// period, gives rates beside counts, draws bars with values and axes and
// defines its terms.
func TestBrowserPagesAtBothSizes(t *testing.T) {
	s := startServer(t, loopbackVideo)
	id, _, _ := acceptedEscalation(t, s)
	browser := newBrowser(t)
	for _, size := range []string{"phone", "tablet"} {
		tab := newTab(t, browser)
		if size == "phone" {
			onPhone(t, tab)
		} else {
			onTablet(t, tab)
		}
		within(t, tab, 10*time.Second, chromedp.Navigate(s.base+"/"))
		checkPage(t, tab, "sign-in ("+size+")")
		shot(t, tab, "signin-"+size+".png")
		signInWithForm(t, tab, s.base, "admin", "/admin")
		waitText(t, tab, "rota", "Level 1", 10*time.Second)
		checkPage(t, tab, "admin ("+size+")")
		shot(t, tab, "admin-"+size+".png")
		within(t, tab, 10*time.Second, chromedp.Navigate(s.base+"/audit"))
		waitText(t, tab, "headline", "Escalations", 10*time.Second)
		checkPage(t, tab, "audit ("+size+")")
		shot(t, tab, "audit-"+size+".png")
		call := newTab(t, browser)
		if size == "phone" {
			onPhone(t, call)
		} else {
			onTablet(t, call)
		}
		browserSignIn(t, call, s.base, "dr.okafor", "test-password")
		within(t, call, 20*time.Second, chromedp.Navigate(s.base+"/call/"+id))
		waitText(t, call, "status", "Connected", 30*time.Second)
		checkPage(t, call, "call page ("+size+")")
	}

	// Administration on the tablet, with the API's answers at the fields.
	admin := newTab(t, browser)
	onTablet(t, admin)
	signInWithForm(t, admin, s.base, "admin", "/admin")
	waitText(t, admin, "rota", "Level 1", 10*time.Second)
	api := s.signedIn("admin")
	within(t, admin, 10*time.Second, chromedp.Click(`button[data-edit="rc-102"]`))
	waitText(t, admin, "resident-edit-title", "Arthur Penrose", 15*time.Second)
	fill(t, admin, "scale-value", "2")
	fill(t, admin, "scale-by", "")
	within(t, admin, 10*time.Second, chromedp.Click(`#scale-form button[type=submit]`))
	waitText(t, admin, "err-scale-set_by", "clinician", 15*time.Second)
	fill(t, admin, "scale-by", "Dr Chidi Okafor")
	within(t, admin, 10*time.Second, chromedp.Click(`#scale-form button[type=submit]`))
	waitText(t, admin, "scale-saved", "Scale 2", 15*time.Second)
	if r := api.do("GET", "/api/v1/residents/rc-102", nil).json(t); r["spo2_scale"] != float64(2) {
		t.Errorf("after saving Scale 2 the resident has %v", r["spo2_scale"])
	}
	fill(t, admin, "baseline-total", "25")
	within(t, admin, 10*time.Second, chromedp.Click(`#baseline-form button[type=submit]`))
	waitText(t, admin, "err-baseline-news2_total", "0 to 20", 15*time.Second)
	fill(t, admin, "baseline-total", "2")
	within(t, admin, 10*time.Second, chromedp.Click(`#baseline-form button[type=submit]`))
	waitText(t, admin, "baseline-saved", "2", 15*time.Second)
	fill(t, admin, "acp-hospital", "not_wanted")
	fill(t, admin, "acp-cpr", "do_not_attempt")
	within(t, admin, 10*time.Second, chromedp.Click(`#acp-form button[type=submit]`))
	waitText(t, admin, "acp-saved", "does not want hospital admission", 15*time.Second)
	fill(t, admin, "move-home", "elm-house")
	fill(t, admin, "move-room", "9")
	within(t, admin, 10*time.Second, chromedp.Click(`#move-form button[type=submit]`))
	waitText(t, admin, "move-saved", "Elm House, room 9", 15*time.Second)
	if r := api.do("GET", "/api/v1/residents/rc-102", nil).json(t); r["care_home_id"] != "elm-house" || r["room"] != "9" {
		t.Errorf("after the move the resident is in %v room %v", r["care_home_id"], r["room"])
	}

	// Accounts: a short password is refused at the field; disable and enable.
	within(t, admin, 10*time.Second, chromedp.Click(`li[data-user="dr.patel"] button:nth-of-type(2)`))
	fill(t, admin, "new-password", "short")
	within(t, admin, 10*time.Second, chromedp.Click(`#password-form button[type=submit]`))
	waitText(t, admin, "err-password-password", "12 characters", 15*time.Second)
	fill(t, admin, "new-password", "a-new-long-password")
	within(t, admin, 10*time.Second, chromedp.Click(`#password-form button[type=submit]`))
	waitText(t, admin, "password-saved", "Password changed for dr.patel", 15*time.Second)
	if st := newClient(t, s.base).do("POST", "/api/v1/session", map[string]string{"username": "dr.patel", "password": "a-new-long-password"}).status; st != 204 {
		t.Errorf("signing in with the new password: %d", st)
	}
	within(t, admin, 10*time.Second, chromedp.Click(`li[data-user="dr.adams"] button:nth-of-type(1)`))
	waitText(t, admin, "users-status", "dr.adams is disabled", 15*time.Second)
	waitFor(t, 5*time.Second, "the list shows the account disabled", func() bool {
		return strings.Contains(js[string](t, admin, `document.querySelector('li[data-user="dr.adams"]').textContent`), "disabled")
	})
	if st := newClient(t, s.base).do("POST", "/api/v1/session", map[string]string{"username": "dr.adams", "password": "test-password"}).status; st != 401 {
		t.Errorf("a disabled account signs in: %d", st)
	}
	within(t, admin, 10*time.Second, chromedp.Click(`li[data-user="dr.adams"] button:nth-of-type(1)`))
	waitText(t, admin, "users-status", "dr.adams is enabled", 15*time.Second)

	// The rota: a shift's problems at its fields, then saved; cover arranged.
	fill(t, admin, "shift-id", "weeknights")
	fill(t, admin, "shift-name", "Weeknights")
	fill(t, admin, "shift-start", "20:00")
	fill(t, admin, "shift-end", "08:00")
	fill(t, admin, "shift-levels", "dr.nobody")
	within(t, admin, 10*time.Second, chromedp.Click(`#shift-form button[type=submit]`))
	waitText(t, admin, "err-shift-days", "days", 15*time.Second)
	js[bool](t, admin, `(() => { ["mon","tue","wed","thu"].forEach(d => document.getElementById("shift-day-" + d).click()); return true; })()`)
	within(t, admin, 10*time.Second, chromedp.Click(`#shift-form button[type=submit]`))
	waitText(t, admin, "err-shift-levels", "not a consultant", 15*time.Second)
	fill(t, admin, "shift-levels", "dr.okafor\ndr.patel, dr.adams")
	within(t, admin, 10*time.Second, chromedp.Click(`#shift-form button[type=submit]`))
	waitText(t, admin, "shift-saved", "weeknights saved", 15*time.Second)
	// The list is re-read after the save and shows it: GET /api/v1/rota
	// catches the read model up to the log first (read your writes).
	waitText(t, admin, "shifts", "20:00–08:00", 15*time.Second)
	london := mustLoc(t, "Europe/London")
	from := time.Now().In(london).Add(24 * time.Hour)
	fill(t, admin, "override-covered", "dr.okafor")
	fill(t, admin, "override-by", "dr.adams")
	fill(t, admin, "override-from-date", from.Format("2006-01-02"))
	fill(t, admin, "override-from-time", "20:00")
	fill(t, admin, "override-to-date", from.Format("2006-01-02"))
	fill(t, admin, "override-to-time", "19:00")
	within(t, admin, 10*time.Second, chromedp.Click(`#override-form button[type=submit]`))
	waitText(t, admin, "err-override-to", "after the start", 15*time.Second)
	fill(t, admin, "override-to-date", from.Add(24*time.Hour).Format("2006-01-02"))
	fill(t, admin, "override-to-time", "08:00")
	within(t, admin, 10*time.Second, chromedp.Click(`#override-form button[type=submit]`))
	waitText(t, admin, "override-saved", "Cover arranged", 15*time.Second)
	waitText(t, admin, "overrides", "Dr Grace Adams (dr.adams) covers Dr Chidi Okafor (dr.okafor) from "+from.Format("2 Jan 2006")+" 20:00", 15*time.Second)
	checkPage(t, admin, "admin after edits (tablet)")

	// The audit page.
	audit := newTab(t, browser)
	onTablet(t, audit)
	signInWithForm(t, audit, s.base, "auditor", "/audit")
	waitText(t, audit, "period", "Escalations raised", 10*time.Second)
	if p := textOf(t, audit, "period"); !strings.Contains(p, "Follow-up window 72 hours") || !strings.Contains(p, "Figures as of") {
		t.Errorf("the period says %q", p)
	}
	waitText(t, audit, "headline", "% of", 15*time.Second) // the figures load after the period
	if hl := textOf(t, audit, "headline"); !strings.Contains(hl, "% of") || !strings.Contains(hl, "median") {
		t.Errorf("no rates beside the counts: %q", hl)
	}
	if txt := js[string](t, audit, `[...document.querySelectorAll("#tta svg text")].map(t => t.textContent).join("|")`); !strings.Contains(txt, "Escalations") || !strings.Contains(txt, "|1|") || !strings.Contains(txt, "Time from raise to accept") {
		t.Errorf("the time-to-accept chart has no values or axes: %q", txt)
	}
	if d := textOf(t, audit, "terms"); !strings.Contains(d, "Window still open") || !strings.Contains(d, "Failed stay") {
		t.Errorf("the terms are not defined: %q", d)
	}
}
