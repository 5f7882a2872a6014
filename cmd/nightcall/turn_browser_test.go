package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// newBrowserIn starts headless Chromium inside network namespace n (on the
// host when n is nil), treating origin as secure: cameras need a secure
// context, and the server listens on the veth address, not on localhost.
func newBrowserIn(t testing.TB, n *netns, origin string) context.Context {
	t.Helper()
	path := chromiumPath
	if n != nil {
		// DevTools runs over pipes, which ip netns exec passes on.
		path = filepath.Join(t.TempDir(), "chromium-in-netns")
		if err := os.WriteFile(path, []byte("#!/bin/sh\nexec ip netns exec "+n.name+" "+chromiumPath+" \"$@\"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return startChromium(t, path, chromedp.Flag("unsafely-treat-insecure-origin-as-secure", origin))
}

// TestBrowserThroughTURNWhenUDPIsBlocked: the care home's Chromium sits in
// a network namespace that drops every UDP datagram, and the server offers
// no ICE over TCP: the only way in is the embedded TURN server over TCP,
// with the credential the page fetched from /ice-servers. The home's page
// decodes the consultant's video, and the consultant's the home's.
func TestBrowserThroughTURNWhenUDPIsBlocked(t *testing.T) {
	n := newNetns(t)
	if _, err := exec.LookPath("nft"); err != nil {
		t.Fatalf("nftables is needed: %v", err)
	}
	port := freeUDPTCPPort(t)
	s := startServer(t, func(c *serveConfig) {
		c.Addr = n.hostIP + ":0"
		c.WebRTCLoopback, c.WebRTCInterfaces, c.CallRejoinGrace = true, "lo,"+n.hostIf, 2*time.Second
		c.TURNPort, c.TURNSecret, c.TURNRelayPorts = port, testTURNSecret, "42000-42999"
	})
	sh(t, "ip", "netns", "exec", n.name, "nft", "add", "table", "inet", "nightcall")
	sh(t, "ip", "netns", "exec", n.name, "nft", "add chain inet nightcall out { type filter hook output priority 0; }")
	sh(t, "ip", "netns", "exec", n.name, "nft", "add", "rule", "inet", "nightcall", "out", "meta", "l4proto", "udp", "drop")

	id, _, _ := acceptedEscalation(t, s)
	home := newTab(t, newBrowserIn(t, n, s.base))
	doctor := newTab(t, newBrowserIn(t, nil, s.base))
	browserSignIn(t, home, s.base, "night.rose", "test-password")
	browserSignIn(t, doctor, s.base, "dr.okafor", "test-password")
	within(t, doctor, 20*time.Second, chromedp.Navigate(s.base+"/call/"+id))
	within(t, home, 20*time.Second, chromedp.Navigate(s.base+"/call/"+id))
	for name, tab := range map[string]context.Context{"care home (UDP blocked)": home, "consultant": doctor} {
		deadline := time.Now().Add(45 * time.Second)
		for framesDecoded(t, tab) == 0 {
			if time.Now().After(deadline) {
				status := within(t, tab, 5*time.Second, chromedp.Text("#status"))
				servers := within(t, tab, 5*time.Second, chromedp.Evaluate[string](`fetch("/api/v1/calls/`+id+`/ice-servers").then(r => r.text())`, chromedp.EvalAwaitPromise))
				report := within(t, tab, 5*time.Second, chromedp.Evaluate[string](`window.NightcallCall.report().then(JSON.stringify)`, chromedp.EvalAwaitPromise))
				t.Fatalf("%s decodes no video; the page says %q; ice servers %s; TURN %+v; %s", name, status, servers, s.app.turn.Stats(), report)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// The pair in use, once a stats report names one (it may lag the first
	// decoded frame by a report).
	var pair string
	for deadline := time.Now().Add(10 * time.Second); pair == "" && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		pair = within(t, home, 10*time.Second, chromedp.Evaluate[string](`NightcallCall.selectedPair()`, chromedp.EvalAwaitPromise))
	}
	if pair != "relay/tcp" {
		t.Errorf("the home's selected pair is %q, want a relay candidate reached over TCP", pair)
	}
	st := s.app.turn.Stats()
	if st.Allocations["tcp"] == 0 || st.BytesFromPeers == 0 {
		t.Errorf("TURN stats %+v: want a TCP allocation carrying media", st)
	}
}
