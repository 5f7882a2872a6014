package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v3"

	"github.com/nightcall-health/nightcall/video"
	"github.com/nightcall-health/nightcall/video/videoclient"
	"github.com/nightcall-health/nightcall/web"
)

// simulcastReport is one line of the namespace helper's output: what the
// care home has received so far, by publisher stream.
type simulcastReport struct {
	At    int64                         `json:"at"` // unix ms
	Video map[string]videoclient.Stream `json:"video"`
	Audio map[string]videoclient.Stream `json:"audio"`
}

// simulcastHelper runs in the namespace (NIGHTCALL_NETNS_HELPER=simulcast):
// it joins the call as the care home with a Pion peer that sends
// congestion feedback, as a browser does, and prints what it receives
// four times a second.
func simulcastHelper() error {
	base, esc, cookie, iface := os.Getenv("NC_BASE"), os.Getenv("NC_ESC"), os.Getenv("NC_COOKIE"), os.Getenv("NC_IFACE")
	d, err := time.ParseDuration(os.Getenv("NC_DURATION"))
	if err != nil {
		return err
	}
	h := http.Header{"Cookie": {cookie}, "Origin": {base}}
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/api/v1/calls/"+esc+"/signal", h)
	if err != nil {
		return err
	}
	api, err := videoclient.LoopbackAPIWith(func(se *webrtc.SettingEngine) {
		se.SetIncludeLoopbackCandidate(false)
		se.SetInterfaceFilter(func(name string) bool { return name == iface })
	})
	if err != nil {
		return err
	}
	p, err := videoclient.Join(videoclient.Config{API: api}, ws)
	if err != nil {
		return err
	}
	defer p.Close()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		time.Sleep(250 * time.Millisecond)
		b, _ := json.Marshal(simulcastReport{At: time.Now().UnixMilli(), Video: p.Streams("video"), Audio: p.Streams("audio")})
		fmt.Println(string(b))
	}
	return nil
}

// simulcastPeer starts the simulcast helper in n and keeps its last report.
type simulcastPeer struct {
	mu   sync.Mutex
	last simulcastReport
	done chan struct{}
}

func (n *netns) simulcastPeer(t *testing.T, base, esc, cookie string, d time.Duration) *simulcastPeer {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", n.name, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "NIGHTCALL_NETNS_HELPER=simulcast", "NC_BASE="+base, "NC_ESC="+esc, "NC_COOKIE="+cookie,
		"NC_IFACE="+n.nsIf, "NC_DURATION="+d.String())
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	sp := &simulcastPeer{done: make(chan struct{})}
	go func() {
		defer close(sp.done)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var r simulcastReport
			if json.Unmarshal(sc.Bytes(), &r) == nil {
				sp.mu.Lock()
				sp.last = r
				sp.mu.Unlock()
			}
		}
	}()
	return sp
}

func (sp *simulcastPeer) report() simulcastReport {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.last
}

// rateLimit limits what reaches the namespace over UDP (the media) to
// bytesPerSecond with an nftables rule; remove lifts it.
func (n *netns) rateLimit(t *testing.T, bytesPerSecond int) (remove func()) {
	t.Helper()
	if _, err := exec.LookPath("nft"); err != nil {
		t.Fatalf("nftables is needed (make test installs it): %v", err)
	}
	ns := []string{"ip", "netns", "exec", n.name, "nft"}
	_ = exec.Command(ns[0], append(ns[1:], "delete", "table", "inet", "ncrate")...).Run()
	sh(t, append(ns, "add", "table", "inet", "ncrate")...)
	sh(t, append(ns, "add chain inet ncrate in { type filter hook input priority 0; }")...)
	// A burst of 0.3 s: a link's buffer, which absorbs the bunching of
	// packets that a busy machine's timers cause.
	sh(t, append(ns, "add", "rule", "inet", "ncrate", "in", "meta", "l4proto", "udp", "limit", "rate", "over", fmt.Sprint(bytesPerSecond), "bytes/second",
		"burst", fmt.Sprint(bytesPerSecond*3/10), "bytes", "drop")...)
	return func() { sh(t, append(ns, "delete", "table", "inet", "ncrate")...) }
}

// layerSample is the SFU's layer for a subscriber at a moment.
type layerSample struct {
	at       time.Time
	layer    string
	estimate int
	probing  bool
}

// timeline summarises samples as the layer and estimate each second.
func timeline(samples []layerSample) string {
	var b strings.Builder
	var last time.Time
	for _, s := range samples {
		if s.at.Sub(last) >= time.Second {
			probe := ""
			if s.probing {
				probe = "+probe"
			}
			fmt.Fprintf(&b, " %s:%s/%dk%s", s.at.Format("05"), s.layer, s.estimate/1000, probe)
			last = s.at
		}
	}
	return b.String()
}

// TestSimulcastSubscriberUnderARateLimit: the consultant sends simulcast;
// the care home sits in a network namespace, a GP on loopback. With the
// care home's side limited to 300 kbit/s it is moved to the low layer and
// its audio arrives without a gap while it is there, and the GP keeps the
// full layer; when the limit lifts the care home climbs back up. The layers
// are read from the SFU and from what each receiver sees in its packets.
func TestSimulcastSubscriberUnderARateLimit(t *testing.T) {
	n := newNetns(t)
	s := startServer(t, func(c *serveConfig) {
		c.Addr = n.hostIP + ":0"
		c.WebRTCLoopback, c.WebRTCInterfaces, c.CallRejoinGrace = true, "lo,"+n.hostIf, 2*time.Second
	})
	id, nurse, okafor := acceptedEscalation(t, s)
	room := video.RoomID(id)
	doctor, _, err := videoclient.Dial(videoclient.Config{URL: okafor.signalURL(id), Header: okafor.signalHeader(), Simulcast: true, Errorf: t.Errorf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(doctor.Close)
	inv := okafor.do("POST", "/api/v1/escalations/"+id+"/invites", map[string]string{"role": "gp"})
	gpClient := newClient(t, s.base)
	if r := gpClient.do("POST", str(inv.json(t)["url"]), nil); r.status != 204 {
		t.Fatalf("invite: %d %s", r.status, r.body)
	}
	// The GP's camera is off: a publisher without simulcast is forwarded
	// whole, and its video alone would not fit the care home's limit.
	gp, _, err := videoclient.Dial(videoclient.Config{URL: gpClient.signalURL(id), Header: gpClient.signalHeader(), NoCamera: true, Errorf: t.Errorf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gp.Close)
	home := n.simulcastPeer(t, s.base, id, sessionCookie(nurse), 3*time.Minute)

	// layer is what the SFU forwards role of the consultant's camera now.
	layer := func(role string) video.SubscriberLayer {
		for _, l := range s.app.sfu.Layers(room) {
			if l.Subscriber == role && l.Publisher == "consultant" {
				return l
			}
		}
		return video.SubscriberLayer{}
	}
	// seen is the layer role's own packets name, and its audio.
	homeVideo := func() (videoclient.Stream, videoclient.Stream) {
		r := home.report()
		var v, a videoclient.Stream
		for _, x := range r.Video {
			if x.Layer != "" {
				v = x
			}
		}
		for stream, x := range r.Audio {
			if _, ok := r.Video[stream]; ok && r.Video[stream].Layer != "" {
				a = x
			}
		}
		return v, a
	}
	gpLayer := func() string {
		for _, x := range gp.Streams("video") {
			if x.Layer != "" {
				return x.Layer
			}
		}
		return ""
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		v, _ := homeVideo()
		if layer("carehome").Layer == "f" && layer("gp").Layer == "f" && v.Layer == "f" && gpLayer() == "f" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not both subscribers on the full layer within 60 s: the SFU says %+v; the care home sees %q, the GP %q", s.app.sfu.Layers(room), v.Layer, gpLayer())
		}
	}

	// Record the SFU's layer for both subscribers from here on.
	var mu sync.Mutex
	var homeLayers, gpLayers []layerSample
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			now := time.Now()
			h, g := layer("carehome"), layer("gp")
			mu.Lock()
			homeLayers = append(homeLayers, layerSample{now, h.Layer, h.EstimateBps, h.Probing})
			gpLayers = append(gpLayers, layerSample{now, g.Layer, g.EstimateBps, g.Probing})
			mu.Unlock()
		}
	}()

	lift := n.rateLimit(t, 37500) // 300 kbit/s
	limited := time.Now()
	waitFor(t, 30*time.Second, "the care home on the low layer", func() bool { return layer("carehome").Layer == "q" })
	switched := time.Since(limited)
	waitFor(t, 10*time.Second, "the care home's packets from the low layer", func() bool { v, _ := homeVideo(); return v.Layer == "q" })
	// Hold the limit; the care home stays low (or tries a climb and falls back).
	holdUntil := time.Now().Add(15 * time.Second)
	for time.Now().Before(holdUntil) {
		time.Sleep(100 * time.Millisecond)
	}
	_, audioLimited := homeVideo()
	lift()
	lifted := time.Now()
	deadline := time.Now().Add(90 * time.Second)
	for l := layer("carehome").Layer; l != "h" && l != "f"; l = layer("carehome").Layer {
		if time.Now().After(deadline) {
			close(stop)
			<-sampled
			t.Fatalf("the care home is still on %q 90 s after the limit lifted; layer/estimate each second:%s", l, timeline(homeLayers))
		}
		time.Sleep(100 * time.Millisecond)
	}
	climbed := time.Since(lifted)
	waitFor(t, 10*time.Second, "the care home's packets from a higher layer", func() bool { v, _ := homeVideo(); return v.Layer == "h" || v.Layer == "f" })
	close(stop)
	<-sampled
	t.Logf("limit at %s → low layer in %.1f s; limit lifted at %s → %s in %.1f s; the care home's layer/estimate each second:%s; the GP's:%s",
		limited.Format("05"), switched.Seconds(), lifted.Format("05"), layer("carehome").Layer, climbed.Seconds(), timeline(homeLayers), timeline(gpLayers))
	fmt.Printf("simulcast: limit→switch %.2f s, lift→climb %.2f s\n", switched.Seconds(), climbed.Seconds())

	mu.Lock()
	defer mu.Unlock()
	// The GP on loopback is not held to the care home's link: while the
	// limit holds and the care home is on the low layer, the GP is on a
	// higher one most of the time, and on the full layer at some point. Its
	// layer follows its own estimate, which on two cores under the full
	// suite with -race can dip for seconds at a time (delay-based GCC
	// reading a loaded scheduler as a queue), so "all of the time" would
	// test the machine, not the SFU.
	var above, during int
	var onFull bool
	for _, g := range gpLayers {
		if g.at.Before(limited.Add(switched)) || !g.at.Before(lifted) {
			continue
		}
		during++
		if g.layer == "h" || g.layer == "f" {
			above++
		}
		onFull = onFull || g.layer == "f"
	}
	if during == 0 || above*2 < during || !onFull {
		t.Errorf("while the care home was on the low layer the GP on loopback was above it in %d of %d samples (on the full layer at some point: %v)", above, during, onFull)
	}
	// While the care home was settled on the low layer (from 3 s after it
	// got there, when the retransmissions of what the switch lost are
	// done, while the limit held), no audio packet was lost.
	// The SFU's probes for more bandwidth are left out: padding above the
	// limit loses packets of every kind, audio too, until the probe fails.
	type span struct{ from, to time.Time }
	var settled []span
	var since time.Time
	for _, h := range homeLayers {
		ok := h.layer == "q" && !h.probing && !h.at.Before(limited) && h.at.Before(lifted)
		if ok {
			if since.IsZero() {
				since = h.at
			}
			continue
		}
		if !since.IsZero() && h.at.Sub(since) > 3*time.Second {
			settled = append(settled, span{since.Add(3 * time.Second), h.at})
		}
		since = time.Time{}
	}
	var total time.Duration
	for _, sp := range settled {
		total += sp.to.Sub(sp.from)
	}
	if total < 5*time.Second {
		t.Errorf("the care home was settled on the low layer for %s in all (%v)", total, settled)
	}
	if audioLimited.Packets < 500 {
		t.Errorf("the care home received %d audio packets", audioLimited.Packets)
	}
	var inSettled []string
	for _, g := range audioLimited.Gaps {
		at := time.UnixMilli(g)
		for _, sp := range settled {
			if !at.Before(sp.from) && at.Before(sp.to) {
				inSettled = append(inSettled, at.Format("15:04:05.000"))
			}
		}
	}
	// The policer drops packets of every kind once its bucket is empty, and
	// a loaded machine can bunch packets past it; the SFU itself never drops
	// audio for video. So: at most one audio packet in a hundred (Opus at 50
	// packets a second) lost in the settled spans, where the low layer leaves
	// the link more than half its rate free.
	allowed := int(total.Seconds() * 50 / 100)
	if len(inSettled) > allowed {
		t.Errorf("%d audio gaps (at most %d allowed) while the care home was on the low layer at %v (settled %v; audio %+v)", len(inSettled), allowed, inSettled, settled, audioLimited)
	} else if len(inSettled) > 0 {
		t.Logf("%d audio gaps (at most %d allowed) in %s settled on the low layer", len(inSettled), allowed, total)
	}
	// The layer is exported.
	metrics := string(newClient(t, s.base).do("GET", "/metrics", nil).body)
	for _, m := range []string{`nightcall_video_layer_switches_total{direction="down"}`, `nightcall_video_subscribers_by_layer{layer="f"}`} {
		if !strings.Contains(metrics, m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
}

// BenchmarkFirstFrameTURNvsUDP measures accept → first decoded frame on
// both call pages in Chromium, the care home's Chromium in a network
// namespace: by turns with UDP allowed (direct host candidates over UDP)
// and with UDP dropped, where only the embedded TURN server over TCP gets
// through. Run with -benchtime 20x for the median of ten of each, from the
// same run (`nightcall bench --scenario turn` does).
func BenchmarkFirstFrameTURNvsUDP(b *testing.B) {
	n := benchNetns(b)
	port := freeUDPTCPPort(b)
	s := startServer(b, func(c *serveConfig) {
		c.Addr = n.hostIP + ":0"
		c.WebRTCLoopback, c.WebRTCInterfaces, c.CallRejoinGrace = true, "lo,"+n.hostIf, 2*time.Second
		c.TURNPort, c.TURNSecret, c.TURNRelayPorts = port, testTURNSecret, "43000-43999"
	})
	home := newTab(b, newBrowserIn(b, n, s.base))
	doctor := newTab(b, newBrowserIn(b, nil, s.base))
	browserSignIn(b, home, s.base, "night.rose", "test-password")
	browserSignIn(b, doctor, s.base, "dr.okafor", "test-password")
	nurse, okafor := s.signedIn("night.rose"), s.signedIn("dr.okafor")
	ns := []string{"ip", "netns", "exec", n.name, "nft"}
	residents := []string{"rc-101", "rc-102", "rc-103"}
	lat := map[string][]time.Duration{}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		mode := []string{"udp", "turn-tcp"}[i%2]
		_ = exec.Command(ns[0], append(ns[1:], "delete", "table", "inet", "ncbench")...).Run()
		if mode == "turn-tcp" {
			for _, args := range [][]string{{"add", "table", "inet", "ncbench"}, {"add chain inet ncbench out { type filter hook output priority 0; }"},
				{"add", "rule", "inet", "ncbench", "out", "meta", "l4proto", "udp", "drop"}} {
				if out, err := exec.Command(ns[0], append(ns[1:], args...)...).CombinedOutput(); err != nil {
					b.Fatalf("nft %v: %v %s", args, err, out)
				}
			}
		}
		id := str(nurse.do("POST", "/api/v1/escalations", raiseBody(residents[i%len(residents)])).json(b)["id"])
		b.StartTimer()
		start := time.Now()
		if r := okafor.do("POST", "/api/v1/escalations/"+id+"/accept", nil); r.status != 200 {
			b.Fatalf("accept: %d", r.status)
		}
		within(b, home, 20*time.Second, chromedp.Navigate(s.base+"/call/"+id))
		within(b, doctor, 20*time.Second, chromedp.Navigate(s.base+"/call/"+id))
		deadline := time.Now().Add(45 * time.Second)
		for framesDecoded(b, doctor) == 0 || framesDecoded(b, home) == 0 {
			if time.Now().After(deadline) {
				b.Fatalf("%s: no frame decoded on both pages within 45s", mode)
			}
			time.Sleep(10 * time.Millisecond)
		}
		lat[mode] = append(lat[mode], time.Since(start))
		b.StopTimer()
		pair := within(b, home, 10*time.Second, chromedp.Evaluate[string](`NightcallCall.selectedPair()`, chromedp.EvalAwaitPromise))
		if want := map[string]string{"udp": "host/udp", "turn-tcp": "relay/tcp"}[mode]; pair != want {
			b.Fatalf("%s: the home's pair is %q, want %q", mode, pair, want)
		}
		okafor.do("POST", "/api/v1/escalations/"+id+"/decision", map[string]string{"outcome": "admit", "counterfactual": "ed", "rationale": "bench"})
		within(b, home, 10*time.Second, chromedp.Navigate("about:blank"))
		within(b, doctor, 10*time.Second, chromedp.Navigate("about:blank"))
		b.StartTimer()
	}
	b.StopTimer()
	for mode, unit := range map[string]string{"udp": "udp-median-ms", "turn-tcp": "turn-median-ms"} {
		if l := lat[mode]; len(l) > 0 {
			slices.Sort(l)
			b.ReportMetric(float64(l[len(l)/2].Milliseconds()), unit)
			b.ReportMetric(float64(len(l)), strings.TrimSuffix(unit, "-median-ms")+"-runs")
		}
	}
}

// benchNetns is newNetns for a benchmark (its own names and addresses).
func benchNetns(tb testing.TB) *netns {
	tb.Helper()
	id := os.Getpid()
	sweepStaleNetns("ncbench", "ncbh")
	n := &netns{name: fmt.Sprintf("ncbench%d", id), hostIf: fmt.Sprintf("ncbh%d", id), nsIf: fmt.Sprintf("ncbn%d", id),
		hostIP: "10.213.8.1", nsIP: "10.213.8.2"}
	run := func(args ...string) {
		tb.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			tb.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	_ = exec.Command("ip", "netns", "del", n.name).Run()
	_ = exec.Command("ip", "link", "del", n.hostIf).Run()
	run("ip", "netns", "add", n.name)
	tb.Cleanup(func() {
		_ = exec.Command("ip", "netns", "del", n.name).Run()
		_ = exec.Command("ip", "link", "del", n.hostIf).Run()
	})
	run("ip", "link", "add", n.hostIf, "type", "veth", "peer", "name", n.nsIf)
	run("ip", "link", "set", n.nsIf, "netns", n.name)
	run("ip", "addr", "add", n.hostIP+"/30", "dev", n.hostIf)
	run("ip", "link", "set", n.hostIf, "up")
	run("ip", "netns", "exec", n.name, "ip", "addr", "add", n.nsIP+"/30", "dev", n.nsIf)
	run("ip", "netns", "exec", n.name, "ip", "link", "set", n.nsIf, "up")
	run("ip", "netns", "exec", n.name, "ip", "link", "set", "lo", "up")
	return n
}

// BenchmarkSFUCPUPerRelayedPacket measures this process's CPU per
// forwarded RTP packet with two-party calls of Pion peers (in a child
// process) reaching the SFU directly over UDP, and with every peer relayed
// through the embedded TURN server (relay-only, TURN over UDP), by turns,
// twice each.
func BenchmarkSFUCPUPerRelayedPacket(b *testing.B) {
	const calls, pps, payload, measure = 4, 150, 1111, 5 * time.Second
	var direct, relayed []float64
	for i := 0; i < 2; i++ {
		for _, relay := range []bool{false, true} {
			cpu := measureRelay(b, relay, calls, pps, payload, measure)
			if relay {
				relayed = append(relayed, cpu)
			} else {
				direct = append(direct, cpu)
			}
		}
	}
	mean := func(v []float64) float64 {
		var s float64
		for _, x := range v {
			s += x
		}
		return s / float64(len(v))
	}
	b.ReportMetric(mean(direct), "direct-us/pkt")
	b.ReportMetric(mean(relayed), "relayed-us/pkt")
}

// measureRelay runs calls two-party calls through an SFU (and, relayed,
// the TURN server in front of it) and returns µs of CPU per forwarded packet.
func measureRelay(b *testing.B, relay bool, calls, pps, payload int, measure time.Duration) float64 {
	b.Helper()
	sfu, err := video.New(video.Config{MuxUDP: true, ListenIP: "127.0.0.1", Interfaces: []string{"lo"}, IncludeLoopback: true})
	if err != nil {
		b.Fatal(err)
	}
	defer sfu.Close()
	env := []string{"NIGHTCALL_NETNS_HELPER=relay-clients", fmt.Sprintf("NC_CALLS=%d", calls), fmt.Sprintf("NC_PPS=%d", pps),
		fmt.Sprintf("NC_PAYLOAD=%d", payload), "NC_DURATION=" + (measure + 30*time.Second).String()}
	if relay {
		port := freeUDPTCPPort(b)
		srv, err := video.NewTURN(video.TURNConfig{Port: port, ListenIP: "127.0.0.1", Secret: testTURNSecret, SFU: sfu, RelayPortMin: 44000, RelayPortMax: 44999})
		if err != nil {
			b.Fatal(err)
		}
		defer srv.Close()
		env = append(env, fmt.Sprintf("NC_TURN=turn:127.0.0.1:%d?transport=udp", port), "NC_TURN_SECRET="+testTURNSecret)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /signal/{room}", func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		_ = sfu.Join(ctx, video.RoomID(r.PathValue("room")), video.Participant{Role: "bench"}, web.NewSignalConn(ws))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), env...), "NC_URL=ws"+strings.TrimPrefix(srv.URL, "http")+"/signal/")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == "ready" {
				ready <- true
				return
			}
		}
		ready <- false
	}()
	select {
	case ok := <-ready:
		if !ok {
			b.Fatal("the clients stopped before they were ready")
		}
	case <-time.After(60 * time.Second):
		b.Fatal("the clients were not ready within 60s")
	}
	time.Sleep(2 * time.Second)
	c0, f0 := cpuTime(), sfu.Forwarded()
	time.Sleep(measure)
	c1, f1 := cpuTime(), sfu.Forwarded()
	if f1 == f0 {
		b.Fatal("nothing was forwarded")
	}
	return float64((c1 - c0).Microseconds()) / float64(f1-f0)
}

// relayClients runs in the child (NIGHTCALL_NETNS_HELPER=relay-clients):
// NC_CALLS rooms of two peers, relay-only through NC_TURN when it is set.
func relayClients() error {
	calls, _ := strconv.Atoi(os.Getenv("NC_CALLS"))
	pps, _ := strconv.Atoi(os.Getenv("NC_PPS"))
	payload, _ := strconv.Atoi(os.Getenv("NC_PAYLOAD"))
	d, err := time.ParseDuration(os.Getenv("NC_DURATION"))
	if err != nil {
		return err
	}
	var peers []*videoclient.Peer
	defer func() {
		for _, p := range peers {
			p.Close()
		}
	}()
	for i := 0; i < calls; i++ {
		for j := 0; j < 2; j++ {
			cfg := videoclient.Config{URL: fmt.Sprintf("%sroom-%d", os.Getenv("NC_URL"), i), VideoPacketsPerSecond: pps, VideoPayload: payload}
			if u := os.Getenv("NC_TURN"); u != "" {
				cred, err := video.NewTURNCredential(os.Getenv("NC_TURN_SECRET"), time.Now().Add(time.Hour))
				if err != nil {
					return err
				}
				cfg.ICEServers = []webrtc.ICEServer{{URLs: []string{u}, Username: cred.Username, Credential: cred.Credential}}
				cfg.RelayOnly = true
			}
			p, _, err := videoclient.Dial(cfg)
			if err != nil {
				return err
			}
			peers = append(peers, p)
		}
	}
	deadline := time.Now().Add(50 * time.Second)
	for {
		all := true
		for _, p := range peers {
			if !p.ReceivingFrom(1, 20) {
				all = false
			}
		}
		if all {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not every peer is receiving")
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Println("ready")
	time.Sleep(d)
	return nil
}
