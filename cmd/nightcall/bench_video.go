package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/ice/v2"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v3"

	"github.com/nightcall-health/nightcall/video"
	"github.com/nightcall-health/nightcall/video/videoclient"
	"github.com/nightcall-health/nightcall/web"
)

// benchVideoScenario measures the server's CPU per forwarded RTP packet
// with calls two-party calls of Pion peers (run in a child process, so only
// the server's CPU is counted), beside a bare Pion forwarder carrying the
// same calls, the two measured in turn (twice each in a full run) so that
// load from elsewhere falls on both.
func benchVideoScenario(ctx context.Context, env *benchEnv) ([]benchResult, error) {
	s := env.sizes
	rounds := 2
	if s.Measure < 10*time.Second {
		rounds = 1
	}
	var full, bare []forwardMeasure
	for i := 0; i < rounds; i++ {
		f, err := measureSFU(ctx, s.Calls, s.PPS, s.Payload, s.Measure)
		if err != nil {
			return nil, fmt.Errorf("nightcall SFU: %w", err)
		}
		full = append(full, f)
		b := newBareForwarder()
		m, err := measureForwarder(ctx, s.Calls, s.PPS, s.Payload, s.Measure, b.join, b.forwarded.Load)
		if err != nil {
			return nil, fmt.Errorf("bare forwarder: %w", err)
		}
		bare = append(bare, m)
	}
	mean := func(ms []forwardMeasure) (cpu, pps float64) {
		for _, m := range ms {
			cpu += m.cpuPerPacket
			pps += m.packetsPerSecond
		}
		return cpu / float64(len(ms)), pps / float64(len(ms))
	}
	cpu, pps := mean(full)
	bcpu, bpps := mean(bare)
	r := result("video", fmt.Sprintf("SFU server CPU per forwarded packet, %d calls", s.Calls), "µs", cpu, "bare Pion v3 forwarder", bcpu,
		"≤ 57 µs (≈ 0.63× bare Pion)", met(cpu <= 57))
	r.Params = map[string]any{"calls": s.Calls, "pps": s.PPS, "payload": s.Payload, "measure_s": s.Measure.Seconds(), "rounds": rounds}
	r.Extra = map[string]float64{"packets_per_s": pps, "baseline_packets_per_s": bpps,
		"video_loss_pct": lossPct(full), "baseline_video_loss_pct": lossPct(bare)}
	out := []benchResult{r}
	if s.LossCalls > 0 {
		// Many calls at once through the SFU, beside the same through the
		// bare forwarder: the video packets the clients sent and did not
		// receive (the clients share the machine's two cores with the server).
		f, err := measureSFU(ctx, s.LossCalls, s.PPS, s.Payload, s.Measure)
		if err != nil {
			return nil, fmt.Errorf("nightcall SFU, %d calls: %w", s.LossCalls, err)
		}
		b := newBareForwarder()
		m, err := measureForwarder(ctx, s.LossCalls, s.PPS, s.Payload, s.Measure, b.join, b.forwarded.Load)
		if err != nil {
			return nil, fmt.Errorf("bare forwarder, %d calls: %w", s.LossCalls, err)
		}
		loss := lossPct([]forwardMeasure{f})
		l := result("video", fmt.Sprintf("video packets lost, %d calls", s.LossCalls), "%", loss, "bare Pion v3 forwarder", lossPct([]forwardMeasure{m}),
			"no loss", met(f.videoLost == 0))
		l.Params = map[string]any{"calls": s.LossCalls, "pps": s.PPS, "payload": s.Payload, "measure_s": s.Measure.Seconds()}
		l.Extra = map[string]float64{"video_packets_sent": float64(f.videoSent), "video_packets_received": float64(f.videoReceived),
			"video_packets_lost": float64(f.videoLost), "baseline_video_packets_sent": float64(m.videoSent),
			"baseline_video_packets_received": float64(m.videoReceived), "baseline_video_packets_lost": float64(m.videoLost),
			"cpu_us_per_packet": f.cpuPerPacket, "baseline_cpu_us_per_packet": m.cpuPerPacket,
			"packets_per_s": f.packetsPerSecond, "baseline_packets_per_s": m.packetsPerSecond}
		out = append(out, l)
	}
	return out, nil
}

// lossPct is the share of the video packets lost in the windows of ms, in
// per cent of those received and lost.
func lossPct(ms []forwardMeasure) float64 {
	var got, lost uint64
	for _, m := range ms {
		got, lost = got+m.videoReceived, lost+m.videoLost
	}
	if got+lost == 0 {
		return 0
	}
	return 100 * float64(lost) / float64(got+lost)
}

// measureSFU measures Nightcall's SFU carrying calls two-party calls.
func measureSFU(ctx context.Context, calls, pps, payload int, measure time.Duration) (forwardMeasure, error) {
	sfu, err := video.New(video.Config{IncludeLoopback: true, Interfaces: []string{"lo"}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return forwardMeasure{}, err
	}
	defer sfu.Close()
	return measureForwarder(ctx, calls, pps, payload, measure, func(room string, ws *websocket.Conn) {
		_ = sfu.Join(ctx, video.RoomID(room), video.Participant{Role: "bench"}, web.NewSignalConn(ws))
	}, sfu.Forwarded)
}

// benchAcceptScenario runs, from the source tree, the Go benchmarks of
// accept → first decoded frame in Chromium over loopback (accept, camera,
// ICE, DTLS, first keyframe decoded): BenchmarkAcceptToFirstFrameOnThePages,
// the pages as they are used (the home's page waiting on its escalation,
// the console accepting from its banner), and beside it
// BenchmarkAcceptToFirstFrame, both call pages loaded at the accept.
func benchAcceptScenario(ctx context.Context, env *benchEnv) ([]benchResult, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	run := func(bench string) (map[string]float64, error) {
		cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", "^"+bench+"$",
			"-benchtime", fmt.Sprintf("%dx", env.sizes.AcceptRuns), "./cmd/nightcall/")
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("go test %s: %w\n%s", bench, err, out)
		}
		m := benchMetrics(string(out))
		if _, ok := m["median-ms"]; !ok {
			return nil, fmt.Errorf("no median in %s's output:\n%s", bench, out)
		}
		return m, nil
	}
	pages, err := run("BenchmarkAcceptToFirstFrameOnThePages")
	if err != nil {
		return nil, err
	}
	loaded, err := run("BenchmarkAcceptToFirstFrame")
	if err != nil {
		return nil, err
	}
	median := pages["median-ms"]
	r := result("accept", "accept → first decoded frame in Chromium, the pages as used, median", "ms", median,
		"both call pages loaded at the accept", loaded["median-ms"], "median ≤ 600 ms", met(median <= 600))
	r.Params = map[string]any{"runs": env.sizes.AcceptRuns}
	r.Extra = map[string]float64{"min_ms": pages["min-ms"], "max_ms": pages["max-ms"],
		"loaded_min_ms": loaded["min-ms"], "loaded_max_ms": loaded["max-ms"]}
	return []benchResult{r}, nil
}

// moduleRoot finds the source tree's go.mod from the working directory up.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(dir + "/go.mod"); err == nil && strings.Contains(string(b), "module github.com/nightcall-health/nightcall") {
			return dir, nil
		}
		parent := dir[:max(strings.LastIndex(dir, "/"), 0)]
		if parent == dir || parent == "" {
			return "", errors.New("accept needs the source tree: run from inside it")
		}
		dir = parent
	}
}

type forwardMeasure struct {
	packetsPerSecond, cpuPerPacket float64
	// videoSent, videoReceived and videoLost are the clients' video packets
	// sent, received and lost in the window, counted by the clients (all
	// calls; each packet sent has one receiver, the call's other peer). A
	// packet is lost when its sequence number is skipped at the receiver:
	// the SFU shifts the numbers by an offset (changed only at a layer
	// switch, without a gap), so a packet dropped anywhere on the way, the
	// sender's socket, the SFU or the receiver's socket, is a gap.
	videoSent, videoReceived, videoLost uint64
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// measureForwarder serves signalling with join, starts the clients in a
// child process, and measures this process's CPU and forwarded packets.
func measureForwarder(ctx context.Context, calls, pps, payload int, measure time.Duration, join func(room string, ws *websocket.Conn), forwarded func() uint64) (forwardMeasure, error) {
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /signal/{room}", func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		join(r.PathValue("room"), ws)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return forwardMeasure{}, err
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	defer srv.Close()
	exe, err := os.Executable()
	if err != nil {
		return forwardMeasure{}, err
	}
	total := measure + 20*time.Second
	cmd := exec.CommandContext(ctx, exe, "bench", "video-clients", "-url", "ws://"+ln.Addr().String()+"/signal/",
		"-calls", fmt.Sprint(calls), "-pps", fmt.Sprint(pps), "-payload", fmt.Sprint(payload), "-for", total.String())
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return forwardMeasure{}, err
	}
	if err := cmd.Start(); err != nil {
		return forwardMeasure{}, err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	ready := make(chan error, 1)
	var countsMu sync.Mutex
	var sent, received, lost uint64 // the clients' last counts line
	counts := func() (uint64, uint64, uint64) { countsMu.Lock(); defer countsMu.Unlock(); return sent, received, lost }
	go func() {
		sc := bufio.NewScanner(out)
		isReady := false
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			var s, r, l uint64
			switch {
			case line == "ready" && !isReady:
				isReady = true
				ready <- nil
			case isReady:
				if n, _ := fmt.Sscanf(line, "counts %d %d %d", &s, &r, &l); n == 3 {
					countsMu.Lock()
					sent, received, lost = s, r, l
					countsMu.Unlock()
				}
			}
		}
		if !isReady {
			ready <- errors.New("the clients stopped before they were ready")
		}
	}()
	select {
	case err := <-ready:
		if err != nil {
			return forwardMeasure{}, err
		}
	case <-time.After(60 * time.Second):
		return forwardMeasure{}, errors.New("the clients were not ready within 60s")
	}
	time.Sleep(2 * time.Second) // let keyframe requests and renegotiation settle
	c0, f0, t0 := cpuTime(), forwarded(), time.Now()
	s0, r0, l0 := counts()
	time.Sleep(measure)
	c1, f1, t1 := cpuTime(), forwarded(), time.Now()
	s1, r1, l1 := counts()
	pkts := float64(f1 - f0)
	if pkts == 0 {
		return forwardMeasure{}, errors.New("nothing was forwarded")
	}
	if s1 <= s0 {
		return forwardMeasure{}, errors.New("the clients reported no counts while measuring")
	}
	return forwardMeasure{packetsPerSecond: pkts / t1.Sub(t0).Seconds(), cpuPerPacket: float64((c1 - c0).Microseconds()) / pkts,
		videoSent: s1 - s0, videoReceived: r1 - r0, videoLost: l1 - l0}, nil
}

// videoClients runs in the child process: calls rooms of two peers each.
func videoClients(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bench video-clients", flag.ContinueOnError)
	url := fs.String("url", "", "signalling URL prefix")
	calls := fs.Int("calls", 20, "calls")
	pps := fs.Int("pps", 150, "video packets per second per peer")
	payload := fs.Int("payload", 1200, "video payload bytes")
	d := fs.Duration("for", 30*time.Second, "how long to run")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var peers []*videoclient.Peer
	defer func() {
		for _, p := range peers {
			p.Close()
		}
	}()
	for i := 0; i < *calls; i++ {
		for j := 0; j < 2; j++ {
			p, _, err := videoclient.Dial(videoclient.Config{URL: fmt.Sprintf("%sroom-%d", *url, i), VideoPacketsPerSecond: *pps, VideoPayload: *payload})
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
			return errors.New("not every peer is receiving")
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Fprintln(stdout, "ready")
	// Every 200 ms, the video packets all peers have sent, received and
	// lost so far (the parent measures loss from them).
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for end := time.After(*d); ; {
		select {
		case <-end:
			return nil
		case <-tick.C:
		}
		var sent, received, lost uint64
		for _, p := range peers {
			sent += p.Sent()
			for _, st := range p.Streams("video") {
				received, lost = received+st.Packets, lost+st.Lost
			}
		}
		fmt.Fprintf(stdout, "counts %d %d %d\n", sent, received, lost)
	}
}

// bareForwarder is the baseline: the least Pion needs to relay a call —
// default codecs and interceptors, one track copied to the other peer.
type bareForwarder struct {
	api       *webrtc.API
	mu        sync.Mutex
	rooms     map[string][]*barePeer
	forwarded atomic.Uint64
}

type barePeer struct {
	pc    *webrtc.PeerConnection
	ws    *websocket.Conn
	wmu   sync.Mutex
	negMu sync.Mutex
	ready chan struct{}
	turn  chan struct{} // one offer at a time, until its answer
}

func newBareForwarder() *bareForwarder {
	m := &webrtc.MediaEngine{}
	_ = m.RegisterDefaultCodecs()
	reg := &interceptor.Registry{}
	_ = webrtc.RegisterDefaultInterceptors(m, reg)
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetInterfaceFilter(func(n string) bool { return n == "lo" })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled) // the default SRTP profiles: a bare forwarder
	return &bareForwarder{api: webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se)), rooms: map[string][]*barePeer{}}
}

func (b *barePeer) send(v any) {
	b.wmu.Lock()
	defer b.wmu.Unlock()
	_ = b.ws.WriteJSON(v)
}

// offer sends an offer and waits for its answer before the next.
func (b *barePeer) offer() {
	b.turn <- struct{}{}
	defer func() { <-b.turn }()
	b.negMu.Lock()
	o, err := b.pc.CreateOffer(nil)
	if err == nil {
		err = b.pc.SetLocalDescription(o)
	}
	if err != nil {
		b.negMu.Unlock()
		return
	}
	b.ready = make(chan struct{})
	b.send(map[string]string{"type": "offer", "sdp": o.SDP})
	ready := b.ready
	b.negMu.Unlock()
	select {
	case <-ready:
	case <-time.After(5 * time.Second):
	}
}

func (f *bareForwarder) join(room string, ws *websocket.Conn) {
	pc, err := f.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return
	}
	defer pc.Close()
	me := &barePeer{pc: pc, ws: ws, turn: make(chan struct{}, 1)}
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		_, _ = pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
	}
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c != nil {
			me.send(map[string]any{"type": "candidate", "candidate": c.ToJSON()})
		}
	})
	f.mu.Lock()
	f.rooms[room] = append(f.rooms[room], me)
	f.mu.Unlock()
	pc.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		local, err := webrtc.NewTrackLocalStaticRTP(t.Codec().RTPCodecCapability, t.ID(), "bare")
		if err != nil {
			return
		}
		var other *barePeer
		for wait := 0; other == nil && wait < 500; wait++ { // the second peer may join later
			f.mu.Lock()
			for _, p := range f.rooms[room] {
				if p != me {
					other = p
				}
			}
			f.mu.Unlock()
			if other == nil {
				time.Sleep(20 * time.Millisecond)
			}
		}
		if other == nil {
			return
		}
		s, err := other.pc.AddTrack(local)
		if err != nil {
			return
		}
		go func() {
			buf := make([]byte, 1500)
			for {
				if _, _, err := s.Read(buf); err != nil {
					return
				}
			}
		}()
		go other.offer()
		buf := make([]byte, 1500)
		for {
			n, _, err := t.Read(buf)
			if err != nil {
				return
			}
			if _, err := local.Write(buf[:n]); err == nil {
				f.forwarded.Add(1)
			}
		}
	})
	go me.offer()
	for {
		var m video.Message
		if err := ws.ReadJSON(&m); err != nil {
			return
		}
		switch m.Type {
		case "answer":
			if pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: m.SDP}) == nil {
				me.negMu.Lock()
				if me.ready != nil {
					close(me.ready)
					me.ready = nil
				}
				me.negMu.Unlock()
			}
		case "candidate":
			if m.Candidate != nil {
				_ = pc.AddICECandidate(*m.Candidate)
			}
		}
	}
}
