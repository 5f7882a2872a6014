package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// emulateMedia makes the tab's CSS media type media ("print"; "" for screen).
func emulateMedia(media string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Media: media})
		return chromedp.Void{}, err
	}
}

// TestBrowserHandoverPage: a GP opens the morning handover after a night of
// three escalations in Chromium: the page lists exactly those, in order,
// under the strict CSP (its stylesheet applies and its Print button works
// from /static, with no inline script), passes axe, and prints without its
// buttons and without splitting an escalation across pages.
func TestBrowserHandoverPage(t *testing.T) {
	n := aNight(t)
	browser := newBrowser(t)
	tab := newTab(t, browser)
	browserSignIn(t, tab, n.s.base, "dr.rosegp", "test-password")
	within(t, tab, 20*time.Second, chromedp.Navigate(n.s.base+n.path("rose-court")))
	waitText(t, tab, "title", "Morning handover: Rose Court", 10*time.Second)

	ids := js[[]string](t, tab, `[...document.querySelectorAll("article")].map(a => a.id.replace(/^esc-/, ""))`)
	if fmt.Sprint(ids) != fmt.Sprint(n.wantOrder) {
		t.Fatalf("the page lists %v, want %v", ids, n.wantOrder)
	}
	for key, want := range map[string][]string{
		"admit":     {"Margaret Ellis", "Admit to hospital", "Dr Chidi Okafor", "Ambulance to the acute medical unit"},
		"stay":      {"partial, at least 7", "not taken: refused", "Stay in the home", "Follow-up due", "Still open"},
		"withdrawn": {"withdrawn by the home", "Settled after fluids"},
	} {
		if !strings.Contains(strings.Join(n.wantOrder, " "), n.ids[key]) {
			continue // raised after 08:00: in the next handover
		}
		text := textOf(t, tab, "esc-"+n.ids[key])
		for _, w := range want {
			if !strings.Contains(text, w) {
				t.Errorf("%s escalation's text lacks %q: %s", key, w, text)
			}
		}
	}
	if bg := js[string](t, tab, `getComputedStyle(document.querySelector("header")).backgroundColor`); bg != "rgb(11, 37, 69)" {
		t.Errorf("the stylesheet did not apply (header background %s)", bg)
	}
	// The Print button's handler comes from /static/handover.js.
	printed := js[int](t, tab, `(() => { let n = 0; window.print = () => { n++; }; document.getElementById("print").click(); return n; })()`)
	if printed != 1 {
		t.Errorf("the Print button called print %d times", printed)
	}
	checkAccessibility(t, tab, "handover page")
	screenshot(t, tab, "../../docs/screenshots/handover.png")

	within(t, tab, 5*time.Second, emulateMedia("print"))
	if d := js[string](t, tab, `getComputedStyle(document.querySelector(".actions")).display`); d != "none" {
		t.Errorf("printed, the buttons show (display %s)", d)
	}
	if b := js[string](t, tab, `getComputedStyle(document.querySelector("article")).breakInside`); b != "avoid" {
		t.Errorf("printed, an escalation may split across pages (break-inside %s)", b)
	}
	within(t, tab, 5*time.Second, emulateMedia(""))
}
