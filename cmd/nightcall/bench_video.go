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
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v3"

	"github.com/nightcall-health/nightcall/video"
	"github.com/nightcall-health/nightcall/video/videoclient"
	"github.com/nightcall-health/nightcall/web"
)

// benchVideo measures the server's CPU per forwarded RTP packet with calls
// two-party calls of Pion peers (run in a child process, so only the
// server's CPU is counted), beside a bare Pion forwarder of one call.
func benchVideo(ctx context.Context, calls, pps, payload int, measure time.Duration, stdout io.Writer) error {
	sfu, err := video.New(video.Config{IncludeLoopback: true, Interfaces: []string{"lo"}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	defer sfu.Close()
	full, err := measureForwarder(ctx, calls, pps, payload, measure, func(room string, ws *websocket.Conn) {
		_ = sfu.Join(ctx, video.RoomID(room), video.Participant{Role: "bench"}, web.NewSignalConn(ws))
	}, sfu.Forwarded)
	if err != nil {
		return fmt.Errorf("nightcall SFU: %w", err)
	}
	bare := newBareForwarder()
	base, err := measureForwarder(ctx, 1, pps, payload, measure, bare.join, bare.forwarded.Load)
	if err != nil {
		return fmt.Errorf("bare forwarder: %w", err)
	}
	fmt.Fprintf(stdout, "server CPU per forwarded RTP packet, video %d B × %d pkt/s (%.2f Mbps) per peer, %v measured, %s\n\n",
		payload, pps, float64(payload*pps*8)/1e6, measure, time.Now().UTC().Format(time.DateOnly))
	fmt.Fprintf(stdout, "%-46s %10s %14s %12s\n", "", "calls", "packets/s", "µs CPU/pkt")
	for _, r := range []struct {
		name  string
		calls int
		m     forwardMeasure
	}{{"bare Pion forwarder, one call (baseline)", 1, base}, {"Nightcall SFU", calls, full}} {
		fmt.Fprintf(stdout, "%-46s %10d %14.0f %12.2f\n", r.name, r.calls, r.m.packetsPerSecond, r.m.cpuPerPacket)
	}
	return nil
}

type forwardMeasure struct {
	packetsPerSecond, cpuPerPacket float64
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
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == "ready" {
				ready <- nil
				return
			}
		}
		ready <- errors.New("the clients stopped before they were ready")
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
	time.Sleep(measure)
	c1, f1, t1 := cpuTime(), forwarded(), time.Now()
	pkts := float64(f1 - f0)
	if pkts == 0 {
		return forwardMeasure{}, errors.New("nothing was forwarded")
	}
	return forwardMeasure{packetsPerSecond: pkts / t1.Sub(t0).Seconds(), cpuPerPacket: float64((c1 - c0).Microseconds()) / pkts}, nil
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
	time.Sleep(*d)
	return nil
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
