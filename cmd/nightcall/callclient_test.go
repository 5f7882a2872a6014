package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v3"
)

// callPeer is a real Pion client in a call: it sends an audio and a video
// track through the SFU and counts what it receives, per publisher.
type callPeer struct {
	t    *testing.T // nil in the network-namespace helper process
	ws   *websocket.Conn
	pc   *webrtc.PeerConnection
	wmu  sync.Mutex
	stop chan struct{}
	once sync.Once

	mu           sync.Mutex
	received     map[string]*atomic.Uint64 // "kind/stream" → packets
	errors       []string
	participants []string
	bye          atomic.Bool
	closed       chan struct{}
}

func loopbackAPI(t *testing.T) *webrtc.API {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se))
}

// dialSignal opens the call's signalling socket with c's cookies.
func (c *client) dialSignal(id string, header ...string) (*websocket.Conn, int, error) {
	u, _ := url.Parse(c.base)
	h := http.Header{}
	for _, ck := range c.http.Jar.Cookies(u) {
		h.Add("Cookie", ck.Name+"="+ck.Value)
	}
	h.Set("Origin", c.base)
	for i := 0; i+1 < len(header); i += 2 {
		h.Set(header[i], header[i+1])
	}
	ws, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(c.base, "http")+"/api/v1/calls/"+id+"/signal", h)
	status := 0
	if resp != nil {
		status = resp.StatusCode
	}
	return ws, status, err
}

func joinCall(t *testing.T, c *client, id string) *callPeer {
	t.Helper()
	ws, status, err := c.dialSignal(id)
	if err != nil {
		t.Fatalf("join call: %d %v", status, err)
	}
	p, err := newCallPeer(t, loopbackAPI(t), ws)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.close)
	return p
}

func (p *callPeer) errorf(format string, args ...any) {
	if p.t != nil {
		p.t.Errorf(format, args...)
	}
}

// newCallPeer joins through an open signalling socket with a peer from api.
func newCallPeer(t *testing.T, api *webrtc.API, ws *websocket.Conn) (*callPeer, error) {
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	p := &callPeer{t: t, ws: ws, pc: pc, stop: make(chan struct{}), received: map[string]*atomic.Uint64{}, closed: make(chan struct{})}
	audio, _ := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "me")
	vid, _ := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", "me")
	for _, tr := range []webrtc.TrackLocal{audio, vid} {
		s, err := pc.AddTrack(tr)
		if err != nil {
			return nil, err
		}
		go func() {
			buf := make([]byte, 1500)
			for {
				if _, _, err := s.Read(buf); err != nil {
					return
				}
			}
		}()
	}
	pc.OnICECandidate(func(cand *webrtc.ICECandidate) {
		if cand != nil {
			init := cand.ToJSON()
			p.send(map[string]any{"type": "candidate", "candidate": init})
		}
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		key := tr.Kind().String() + "/" + tr.StreamID()
		p.mu.Lock()
		n := p.received[key]
		if n == nil {
			n = &atomic.Uint64{}
			p.received[key] = n
		}
		p.mu.Unlock()
		buf := make([]byte, 1500)
		for {
			if _, _, err := tr.Read(buf); err != nil {
				return
			}
			n.Add(1)
		}
	})
	go p.readLoop()
	go p.sendMedia(audio, vid)
	return p, nil
}

func (p *callPeer) send(v any) {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	_ = p.ws.WriteJSON(v)
}

func (p *callPeer) readLoop() {
	defer close(p.closed)
	for {
		_, data, err := p.ws.ReadMessage()
		if err != nil {
			return
		}
		var m struct {
			Type         string                   `json:"type"`
			SDP          string                   `json:"sdp"`
			Candidate    *webrtc.ICECandidateInit `json:"candidate"`
			Code         string                   `json:"code"`
			Participants []struct{ Role string }  `json:"participants"`
		}
		if json.Unmarshal(data, &m) != nil {
			continue
		}
		switch m.Type {
		case "offer":
			if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: m.SDP}); err != nil {
				p.errorf("client set offer: %v", err)
				continue
			}
			ans, err := p.pc.CreateAnswer(nil)
			if err == nil {
				err = p.pc.SetLocalDescription(ans)
			}
			if err != nil {
				p.errorf("client answer: %v", err)
				continue
			}
			p.send(map[string]any{"type": "answer", "sdp": ans.SDP})
		case "candidate":
			if m.Candidate != nil {
				_ = p.pc.AddICECandidate(*m.Candidate)
			}
		case "participants":
			var roles []string
			for _, x := range m.Participants {
				roles = append(roles, x.Role)
			}
			p.mu.Lock()
			p.participants = roles
			p.mu.Unlock()
		case "error":
			p.mu.Lock()
			p.errors = append(p.errors, m.Code)
			p.mu.Unlock()
		case "bye":
			p.bye.Store(true)
		}
	}
}

// sendMedia writes a synthetic VP8 keyframe-like stream and Opus-sized
// audio at about 50 packets a second each.
func (p *callPeer) sendMedia(audio, vid *webrtc.TrackLocalStaticRTP) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	var seq uint16
	var ts uint32
	payload := make([]byte, 900)
	payload[0], payload[1] = 0x10, 0x00 // VP8: start of partition 0, keyframe
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		seq++
		ts += 1800
		_ = vid.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: ts, Marker: true}, Payload: payload})
		_ = audio.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: ts / 2 * 960 / 900}, Payload: payload[:120]})
	}
}

// counts returns packets received per publisher stream for a kind.
func (p *callPeer) counts(kind string) map[string]uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]uint64{}
	for k, v := range p.received {
		if strings.HasPrefix(k, kind+"/") {
			out[strings.TrimPrefix(k, kind+"/")] = v.Load()
		}
	}
	return out
}

// receivingFrom reports whether at least min packets of each kind arrived
// from n distinct publishers.
func (p *callPeer) receivingFrom(n int, min uint64) bool {
	for _, kind := range []string{"audio", "video"} {
		got := 0
		for _, c := range p.counts(kind) {
			if c >= min {
				got++
			}
		}
		if got < n {
			return false
		}
	}
	return true
}

func (p *callPeer) errorCodes() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.errors...)
}

func (p *callPeer) close() {
	p.once.Do(func() {
		close(p.stop)
		p.send(map[string]string{"type": "bye"})
		_ = p.ws.Close()
		_ = p.pc.Close()
	})
}
