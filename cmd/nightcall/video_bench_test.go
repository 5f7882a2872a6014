package main

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// BenchmarkAcceptToFirstFrame measures, in Debian's Chromium over loopback,
// the time from a consultant's accept to the first video frame decoded on
// the consultant's call page (both pages opened together at the accept). Run with
// -benchtime 10x for the median of ten.
func BenchmarkAcceptToFirstFrame(b *testing.B) {
	s, home, doctor, nurse, okafor := callBench(b)
	residents := []string{"rc-101", "rc-102", "rc-103"}
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		id := str(nurse.do("POST", "/api/v1/escalations", raiseBody(residents[i%len(residents)])).json(b)["id"])
		b.StartTimer()
		start := time.Now()
		if r := okafor.do("POST", "/api/v1/escalations/"+id+"/accept", nil); r.status != 200 {
			b.Fatalf("accept: %d", r.status)
		}
		// The two pages open at once, as the home's tablet and the
		// consultant's laptop do: neither waits for the other's load.
		var wg sync.WaitGroup
		for _, tab := range []context.Context{home, doctor} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(tab, 20*time.Second)
				defer cancel()
				if _, err := chromedp.Run(ctx, chromedp.Navigate(s.base+"/call/"+id)); err != nil {
					b.Errorf("open the call page: %v", err)
				}
			}()
		}
		wg.Wait()
		if b.Failed() {
			b.FailNow()
		}
		untilFirstFrame(b, doctor)
		lat = append(lat, time.Since(start))
		b.StopTimer()
		endCall(b, i, okafor, id, home, doctor)
		b.StartTimer()
	}
	reportLatencies(b, lat)
}

// BenchmarkAcceptToFirstFrameOnThePages measures the same span as the pages
// are used: the care home's page waiting on its raised escalation (/home),
// the consultant's console open with its pager connected; the clock starts
// at the click on the console's Accept banner and stops at the first frame
// of the home's video decoded on the console. The home's page learns of
// the acceptance from its long poll of the escalation, and each page starts
// its call in place, with no page to load.
func BenchmarkAcceptToFirstFrameOnThePages(b *testing.B) {
	s, home, doctor, nurse, okafor := callBench(b)
	residents := []string{"rc-101", "rc-102", "rc-103"}
	until := func(tab context.Context, what, expr string) {
		b.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !within(b, tab, 10*time.Second, chromedp.Evaluate[bool](expr)) {
			if time.Now().After(deadline) {
				b.Fatalf("%s: not within 20 s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		within(b, doctor, 20*time.Second, chromedp.Navigate(s.base+"/console"))
		until(doctor, "the console's pager", `document.getElementById("pager-status").textContent.includes("Pager connected")`)
		id := str(nurse.do("POST", "/api/v1/escalations", raiseBody(residents[i%len(residents)])).json(b)["id"])
		within(b, home, 20*time.Second, chromedp.Navigate(s.base+"/home"))
		until(home, "the home's wait view", `!document.getElementById("wait-view").hidden`)
		button := `button.page-accept[data-escalation="` + id + `"]`
		until(doctor, "the console's Accept banner", `!!document.querySelector('`+button+`')`)
		time.Sleep(300 * time.Millisecond) // the home's page settles into its wait
		b.StartTimer()
		start := time.Now()
		within(b, doctor, 10*time.Second, chromedp.Click(button))
		untilFirstFrame(b, doctor)
		lat = append(lat, time.Since(start))
		b.StopTimer()
		endCall(b, i, okafor, id, home, doctor)
		b.StartTimer()
	}
	reportLatencies(b, lat)
}

// untilFirstFrame waits for the first video frame decoded on tab.
func untilFirstFrame(b *testing.B, tab context.Context) {
	b.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for framesDecoded(b, tab) == 0 {
		if time.Now().After(deadline) {
			b.Fatal("no frame decoded within 30s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// endCall logs the steps of joining, from each page's own timeline (ms
// after its navigation began: where the time went), records the decision
// that ends escalation id and leaves both pages.
func endCall(b *testing.B, run int, okafor *client, id string, home, doctor context.Context) {
	b.Helper()
	for name, tab := range map[string]context.Context{"home": home, "doctor": doctor} {
		steps := within(b, tab, 5*time.Second, chromedp.Evaluate[string](`performance.getEntriesByType("mark").filter((m) => m.name.startsWith("nightcall:")).map((m) => m.name.slice(10) + "@" + Math.round(m.startTime)).join(" ")`))
		b.Logf("run %d %s: %s", run, name, steps)
	}
	okafor.do("POST", "/api/v1/escalations/"+id+"/decision", map[string]string{"outcome": "admit", "counterfactual": "ed", "rationale": "bench"})
	within(b, home, 10*time.Second, chromedp.Navigate("about:blank"))
	within(b, doctor, 10*time.Second, chromedp.Navigate("about:blank"))
}

// reportLatencies reports the median, least and greatest of lat.
func reportLatencies(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "median-ms")
	b.ReportMetric(float64(lat[0].Milliseconds()), "min-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Milliseconds()), "max-ms")
}

// callBench starts a server with loopback video and a browser with the
// home's tab and the consultant's, each signed in, and API clients for both.
func callBench(b *testing.B) (s *testServer, home, doctor context.Context, nurse, okafor *client) {
	s = startServer(b, loopbackVideo)
	browser := newBrowser(b)
	home, doctor = newTab(b, browser), newTab(b, browser)
	browserSignIn(b, home, s.base, "night.rose", "test-password")
	browserSignIn(b, doctor, s.base, "dr.okafor", "test-password")
	return s, home, doctor, s.signedIn("night.rose"), s.signedIn("dr.okafor")
}
