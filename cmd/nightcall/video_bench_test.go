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
	s := startServer(b, loopbackVideo)
	browser := newBrowser(b)
	home, doctor := newTab(b, browser), newTab(b, browser)
	browserSignIn(b, home, s.base, "night.rose", "test-password")
	browserSignIn(b, doctor, s.base, "dr.okafor", "test-password")
	nurse, okafor := s.signedIn("night.rose"), s.signedIn("dr.okafor")
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
		deadline := time.Now().Add(30 * time.Second)
		for framesDecoded(b, doctor) == 0 {
			if time.Now().After(deadline) {
				b.Fatal("no frame decoded within 30s")
			}
			time.Sleep(10 * time.Millisecond)
		}
		lat = append(lat, time.Since(start))
		b.StopTimer()
		// The steps of joining, from each page's own timeline (ms after
		// its navigation began): where the time went.
		for name, tab := range map[string]context.Context{"home": home, "doctor": doctor} {
			steps := within(b, tab, 5*time.Second, chromedp.Evaluate[string](`performance.getEntriesByType("mark").filter((m) => m.name.startsWith("nightcall:")).map((m) => m.name.slice(10) + "@" + Math.round(m.startTime)).join(" ")`))
			b.Logf("run %d %s: %s", i, name, steps)
		}
		okafor.do("POST", "/api/v1/escalations/"+id+"/decision", map[string]string{"outcome": "admit", "counterfactual": "ed", "rationale": "bench"})
		within(b, home, 10*time.Second, chromedp.Navigate("about:blank"))
		within(b, doctor, 10*time.Second, chromedp.Navigate("about:blank"))
		b.StartTimer()
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "median-ms")
	b.ReportMetric(float64(lat[0].Milliseconds()), "min-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Milliseconds()), "max-ms")
}
