package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath is Debian's Chromium, which `make test` installs.
const chromiumPath = "/usr/bin/chromium"

// newBrowser starts headless Chromium with a fake camera and microphone,
// loopback-only WebRTC and no background networking.
func newBrowser(t testing.TB) context.Context {
	t.Helper()
	return startChromium(t, chromiumPath,
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.WindowSize(1280, 900))
}

// startChromium starts the headless Chromium at path with a fake camera and
// microphone, no background networking, and the options in extra; it is
// stopped when the test ends.
func startChromium(t testing.TB, path string, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	if _, err := exec.LookPath(chromiumPath); err != nil {
		t.Fatalf("Chromium is needed at %s (make test installs Debian's chromium): %v", chromiumPath, err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
	)
	opts = append(opts, extra...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	if err := chromedp.Do(bctx); err != nil { // starts the browser
		cancelBrowser()
		cancelAlloc()
		t.Fatalf("start chromium: %v", err)
	}
	t.Cleanup(func() { cancelBrowser(); cancelAlloc() })
	return bctx
}

// newTab opens a tab in its own browser context, so each user has their own cookies.
func newTab(t testing.TB, browser context.Context) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		t.Fatalf("new tab: %v", err)
	}
	t.Cleanup(cancel)
	return ctx
}

// within runs an action with a deadline.
func within[T any](t testing.TB, tab context.Context, d time.Duration, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, d)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	return v
}

// browserSignIn signs a tab in through the API from the page's own origin.
func browserSignIn(t testing.TB, tab context.Context, base, username, password string) {
	t.Helper()
	within(t, tab, 20*time.Second, chromedp.Navigate(base+"/healthz"))
	status := within(t, tab, 20*time.Second, chromedp.Evaluate[int](fmt.Sprintf(
		`fetch("/api/v1/session",{method:"POST",headers:{"Content-Type":"application/json"},body:JSON.stringify({username:%q,password:%q})}).then(r=>r.status)`,
		username, password), chromedp.EvalAwaitPromise))
	if status != 204 {
		t.Fatalf("browser sign-in as %s: %d", username, status)
	}
}

type videoStats struct {
	FramesDecoded int `json:"framesDecoded"`
	PacketsLost   int `json:"packetsLost"`
}

func framesDecoded(t testing.TB, tab context.Context) int {
	stats := within(t, tab, 10*time.Second, chromedp.Evaluate[[]videoStats](`window.NightcallCall ? window.NightcallCall.stats() : []`, chromedp.EvalAwaitPromise))
	best := 0
	for _, s := range stats {
		best = max(best, s.FramesDecoded)
	}
	return best
}

func screenshot(t *testing.T, tab context.Context, path string) {
	t.Helper()
	if os.Getenv("NIGHTCALL_SCREENSHOTS") == "" {
		return
	}
	png := within(t, tab, 20*time.Second, chromedp.FullScreenshot(100))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Errorf("screenshot: %v", err)
	}
}

func TestBrowserVideoCall(t *testing.T) {
	s := startServer(t, loopbackVideo)
	id, _, _ := acceptedEscalation(t, s)
	browser := newBrowser(t)
	home, doctor := newTab(t, browser), newTab(t, browser)
	browserSignIn(t, home, s.base, "night.rose", "test-password")
	browserSignIn(t, doctor, s.base, "dr.okafor", "test-password")
	start := time.Now()
	within(t, home, 20*time.Second, chromedp.Navigate(s.base+"/call/"+id))
	within(t, doctor, 20*time.Second, chromedp.Navigate(s.base+"/call/"+id))
	for name, tab := range map[string]context.Context{"care home": home, "consultant": doctor} {
		deadline := time.Now().Add(15 * time.Second)
		for framesDecoded(t, tab) == 0 {
			if time.Now().After(deadline) {
				status := within(t, tab, 5*time.Second, chromedp.Text("#status"))
				report := within(t, tab, 5*time.Second, chromedp.Evaluate[[]byte](`window.NightcallCall.report()`, chromedp.EvalAwaitPromise))
				t.Fatalf("%s decodes no video after 30s; the page says %q; %s", name, status, report)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	t.Logf("both pages decoding video %v after the first navigation", time.Since(start).Round(time.Millisecond))
	first := map[string]int{"home": framesDecoded(t, home), "doctor": framesDecoded(t, doctor)}
	time.Sleep(1500 * time.Millisecond)
	if now := framesDecoded(t, home); now <= first["home"] {
		t.Errorf("care home frames stuck at %d", now)
	}
	if now := framesDecoded(t, doctor); now <= first["doctor"] {
		t.Errorf("consultant frames stuck at %d", now)
	}
	screenshot(t, doctor, "../../docs/screenshots/call.png")

	// Poor bandwidth turns the camera off by itself; good bandwidth brings it back.
	videoOn := `window.NightcallCall && document.getElementById("local").srcObject.getVideoTracks().every(t => t.enabled)`
	within(t, home, 5*time.Second, chromedp.Evaluate[bool](`NightcallCall.adapt(90000)`))
	if auto := within(t, home, 5*time.Second, chromedp.Evaluate[bool](`NightcallCall.adapt(90000)`)); !auto {
		t.Fatal("two poor readings did not switch to audio only")
	}
	if within(t, home, 5*time.Second, chromedp.Evaluate[bool](videoOn)) {
		t.Error("the camera still sends on a poor connection")
	}
	for i := 0; i < 3; i++ {
		within(t, home, 5*time.Second, chromedp.Evaluate[bool](`NightcallCall.adapt(2000000)`))
	}
	if !within(t, home, 5*time.Second, chromedp.Evaluate[bool](videoOn)) {
		t.Error("the camera did not come back on a good connection")
	}
}
