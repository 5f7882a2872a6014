package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/serviceworker"
	"github.com/chromedp/chromedp"
)

type shownNotification struct {
	Title   string   `json:"title"`
	Body    string   `json:"body"`
	Tag     string   `json:"tag"`
	Actions []string `json:"actions"`
}

type clickResult struct {
	Accepted bool   `json:"accepted"`
	Status   int    `json:"status"`
	Window   string `json:"window"`
	Error    string `json:"error"`
}

// TestBrowserLockScreenPageAcceptsFromTheNotification: the console's
// service worker registers at the root; a page pushed by the server reaches
// the test push service, whose decrypted message Chromium's DevTools hand to
// the worker (a headless browser reaches no real push service). The worker
// shows it with Accept and Open and posts `received`; Accept (the worker's
// own click handler, asked through its test hook) posts `seen`, accepts the
// escalation and opens the case. With the server gone the installed console
// still opens, from the worker's cache, and says it is offline.
func TestBrowserLockScreenPageAcceptsFromTheNotification(t *testing.T) {
	ps := newPushService(t, time.Minute)
	s := startServer(t, loopbackVideo, withPush(ps))
	nurse, okafor := s.signedIn("night.rose"), s.signedIn("dr.okafor")
	trustServer(t, ps, okafor)

	b := newBrowser(t)
	tab := newTab(t, b)
	ctxID := chromedp.FromContext(tab).BrowserContextID
	if _, err := chromedp.CallBrowser(tab, browser.SetPermission, browser.SetPermissionParams{
		Permission: &browser.PermissionDescriptor{Name: "notifications"}, Setting: browser.PermissionSettingGranted,
		Origin: s.base, BrowserContextID: ctxID,
	}); err != nil {
		t.Fatalf("grant notifications: %v", err)
	}
	var mu sync.Mutex
	var registration serviceworker.RegistrationID
	if err := chromedp.Listen(tab, func(ev any) {
		if e, ok := ev.(*serviceworker.EventWorkerRegistrationUpdated); ok {
			for _, r := range e.Registrations {
				if r.ScopeURL == s.base+"/" && !r.IsDeleted {
					mu.Lock()
					registration = r.RegistrationID
					mu.Unlock()
				}
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	within(t, tab, 10*time.Second, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, serviceworker.Enable, cdp.Empty{})
		return err
	}))
	browserSignIn(t, tab, s.base, "dr.okafor", "test-password")
	within(t, tab, 20*time.Second, chromedp.Navigate(s.base+"/console"))
	waitText(t, tab, "pager-status", "Pager connected", 15*time.Second)
	waitFor(t, 15*time.Second, "the service worker controls the console", func() bool {
		return js[bool](t, tab, `navigator.serviceWorker.ready.then(r => !!r.active && !!navigator.serviceWorker.controller && r.scope === location.origin + "/")`)
	})
	waitFor(t, 10*time.Second, "the registration reported by DevTools", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return registration != ""
	})
	if !js[bool](t, tab, `fetch("/static/manifest.webmanifest").then(r => r.json()).then(m => m.start_url === "/console" && m.display === "standalone" && m.icons.length >= 2)`) {
		t.Error("the web app manifest is not installable")
	}

	subID := subscribeDevice(t, ps, okafor, "chromium")
	id := str(nurse.do("POST", "/api/v1/escalations", raiseBody("rc-101")).json(t)["id"])
	m := ps.nextPage("chromium", id, 10*time.Second)
	mu.Lock()
	reg := registration
	mu.Unlock()
	within(t, tab, 10*time.Second, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, serviceworker.DeliverPushMessage, serviceworker.DeliverPushMessageParams{Origin: s.base, RegistrationID: reg, Data: m.raw})
		return err
	}))

	// The worker shows the page and says it arrived.
	var shown []shownNotification
	waitFor(t, 10*time.Second, "the notification shown", func() bool {
		shown = js[[]shownNotification](t, tab, `navigator.serviceWorker.ready.then(r => r.getNotifications()).then(ns => ns.map(n => ({title: n.title, body: n.body, tag: n.tag, actions: n.actions.map(a => a.action)})))`)
		return len(shown) == 1
	})
	if n := shown[0]; !strings.Contains(n.Title, "Rose Court") || !strings.Contains(n.Body, "NEWS2 8") || n.Tag != "escalation-"+id ||
		strings.Join(n.Actions, ",") != "accept,open" || strings.Contains(n.Title+n.Body, "Ellis") {
		t.Errorf("notification: %+v", n)
	}
	device := func(field string) bool {
		esc := nurse.do("GET", "/api/v1/escalations/"+id, nil).json(t)
		for _, p := range esc["delivery"].(map[string]any)["pages"].([]any) {
			for _, c := range p.(map[string]any)["consultants"].([]any) {
				for _, d := range c.(map[string]any)["devices"].([]any) {
					dv := d.(map[string]any)
					if dv["device"] == "push-"+subID && dv["channel"] == "push" && dv[field] != nil {
						return true
					}
				}
			}
		}
		return false
	}
	waitFor(t, 10*time.Second, "the worker's received receipt", func() bool { return device("received_at") })

	// Accept, from the notification.
	res := js[clickResult](t, tab, fmt.Sprintf(`new Promise((resolve) => {
		navigator.serviceWorker.addEventListener("message", (ev) => { if (ev.data && ev.data.type === "nightcall-click-done") resolve(ev.data.result); });
		navigator.serviceWorker.ready.then((r) => r.active.postMessage({type: "nightcall-click", tag: %q, action: "accept"}));
	})`, "escalation-"+id))
	if !res.Accepted || res.Status != 200 || res.Error != "" {
		t.Fatalf("Accept on the notification: %+v", res)
	}
	esc := nurse.do("GET", "/api/v1/escalations/"+id, nil).json(t)
	if esc["status"] != "accepted" || esc["accepted_by"].(map[string]any)["username"] != "dr.okafor" {
		t.Fatalf("after Accept on the notification: %v %v", esc["status"], esc["accepted_by"])
	}
	waitFor(t, 5*time.Second, "the worker's seen receipt", func() bool { return device("seen_at") })
	waitFor(t, 10*time.Second, "the case opened", func() bool { return visible(t, tab, "case-view") })
	if n := js[int](t, tab, `navigator.serviceWorker.ready.then(r => r.getNotifications()).then(ns => ns.length)`); n != 0 {
		t.Errorf("%d notifications left after Accept", n)
	}

	// No network: the installed app still opens, and says so.
	s.close()
	within(t, tab, 20*time.Second, chromedp.Navigate(s.base+"/console"))
	waitFor(t, 10*time.Second, "the offline console", func() bool { return visible(t, tab, "offline") })
	if !strings.Contains(textOf(t, tab, "offline"), "Offline") {
		t.Errorf("offline banner says %q", textOf(t, tab, "offline"))
	}
	screenshot(t, tab, "../../docs/screenshots/console-offline.png")
}
