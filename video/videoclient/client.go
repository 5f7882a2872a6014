// Package videoclient is a Pion WebRTC client for Nightcall calls: it joins
// through the signalling websocket, sends a synthetic audio and VP8 video
// stream, and counts what it receives from each publisher. The tests and
// `nightcall bench video` use it as the far end of a call.
package videoclient

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/dtls/v2"
	"github.com/pion/ice/v2"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v3"
)

// Config configures a Peer.
type Config struct {
	// URL is the signalling websocket (ws://…/api/v1/calls/{id}/signal). Required.
	URL string
	// Header carries the cookie and Origin. Optional.
	Header http.Header
	// API builds the peer connection. Optional: LoopbackAPI().
	API *webrtc.API
	// VideoPacketsPerSecond and VideoPayload shape the video stream.
	// Optional, defaults 50 and 900 bytes (about 0.4 Mbps).
	VideoPacketsPerSecond int
	VideoPayload          int
	// Errorf reports a protocol failure. Optional.
	Errorf func(format string, args ...any)
	// ICEServers are the STUN/TURN servers (from /ice-servers). Optional.
	ICEServers []webrtc.ICEServer
	// RelayOnly gathers and uses relay candidates only
	// (ICETransportPolicyRelay): every packet goes through TURN. Optional.
	RelayOnly bool
}

// LoopbackAPI gathers loopback UDP candidates only.
func LoopbackAPI() (*webrtc.API, error) { return LoopbackAPIWith(nil) }

// LoopbackAPIWith is LoopbackAPI with more settings (a proxy dialer for
// TURN over TLS, say) applied by change.
func LoopbackAPIWith(change func(*webrtc.SettingEngine)) (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetSRTPProtectionProfiles(dtls.SRTP_AEAD_AES_128_GCM, dtls.SRTP_AEAD_AES_256_GCM, dtls.SRTP_AES128_CM_HMAC_SHA1_80)
	if change != nil {
		change(&se)
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se)), nil
}

// Peer is one participant.
type Peer struct {
	cfg  Config
	ws   *websocket.Conn
	pc   *webrtc.PeerConnection
	wmu  sync.Mutex
	stop chan struct{}
	once sync.Once

	mu           sync.Mutex
	received     map[string]*atomic.Uint64 // "kind/stream" → packets
	errs         []string
	participants []string
	notices      []string
	bye          atomic.Bool
	sent         atomic.Uint64
}

// Dial opens the signalling socket and joins.
func Dial(cfg Config) (*Peer, int, error) {
	ws, resp, err := websocket.DefaultDialer.Dial(cfg.URL, cfg.Header)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		return nil, status, err
	}
	p, err := Join(cfg, ws)
	return p, http.StatusSwitchingProtocols, err
}

// Join joins through an open signalling socket.
func Join(cfg Config, ws *websocket.Conn) (*Peer, error) {
	if cfg.API == nil {
		api, err := LoopbackAPI()
		if err != nil {
			return nil, err
		}
		cfg.API = api
	}
	if cfg.VideoPacketsPerSecond <= 0 {
		cfg.VideoPacketsPerSecond = 50
	}
	if cfg.VideoPayload <= 0 {
		cfg.VideoPayload = 900
	}
	if cfg.Errorf == nil {
		cfg.Errorf = func(string, ...any) {}
	}
	pcfg := webrtc.Configuration{ICEServers: cfg.ICEServers}
	if cfg.RelayOnly {
		pcfg.ICETransportPolicy = webrtc.ICETransportPolicyRelay
	}
	pc, err := cfg.API.NewPeerConnection(pcfg)
	if err != nil {
		return nil, err
	}
	p := &Peer{cfg: cfg, ws: ws, pc: pc, stop: make(chan struct{}), received: map[string]*atomic.Uint64{}}
	audio, _ := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "me")
	vid, _ := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", "me")
	for _, tr := range []webrtc.TrackLocal{audio, vid} {
		s, err := pc.AddTrack(tr)
		if err != nil {
			pc.Close()
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
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c != nil {
			p.send(map[string]any{"type": "candidate", "candidate": c.ToJSON()})
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

func (p *Peer) send(v any) {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	_ = p.ws.WriteJSON(v)
}

func (p *Peer) readLoop() {
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
			Message      string                   `json:"message"`
			Participants []struct{ Role string }  `json:"participants"`
		}
		if json.Unmarshal(data, &m) != nil {
			continue
		}
		switch m.Type {
		case "offer":
			if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: m.SDP}); err != nil {
				p.cfg.Errorf("client set offer: %v", err)
				continue
			}
			ans, err := p.pc.CreateAnswer(nil)
			if err == nil {
				err = p.pc.SetLocalDescription(ans)
			}
			if err != nil {
				p.cfg.Errorf("client answer: %v", err)
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
			p.errs = append(p.errs, m.Code)
			p.mu.Unlock()
		case "notice":
			p.mu.Lock()
			p.notices = append(p.notices, m.Code)
			p.mu.Unlock()
		case "bye":
			p.bye.Store(true)
		}
	}
}

// sendMedia writes a synthetic VP8 stream whose every packet starts a
// keyframe, and Opus-sized audio at 50 packets a second.
func (p *Peer) sendMedia(audio, vid *webrtc.TrackLocalStaticRTP) {
	t := time.NewTicker(time.Second / time.Duration(p.cfg.VideoPacketsPerSecond))
	defer t.Stop()
	var seq, aseq uint16
	var ts uint32
	payload := make([]byte, p.cfg.VideoPayload)
	payload[0], payload[1] = 0x10, 0x00 // VP8: start of partition 0, keyframe
	every := max(1, p.cfg.VideoPacketsPerSecond/50)
	for i := 0; ; i++ {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		seq++
		ts += 90000 / uint32(p.cfg.VideoPacketsPerSecond)
		if err := vid.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: ts, Marker: true}, Payload: payload}); err == nil {
			p.sent.Add(1)
		}
		if i%every == 0 {
			aseq++
			_ = audio.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: aseq, Timestamp: uint32(aseq) * 960}, Payload: payload[:120]})
		}
	}
}

// Counts returns the packets received per publisher stream for a kind.
func (p *Peer) Counts(kind string) map[string]uint64 {
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

// ReceivingFrom reports whether at least min packets of each kind arrived
// from n distinct publishers.
func (p *Peer) ReceivingFrom(n int, min uint64) bool {
	for _, kind := range []string{"audio", "video"} {
		got := 0
		for _, c := range p.Counts(kind) {
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

// SelectedPair is the candidate pair the media flows on, nil before ICE
// has chosen one.
func (p *Peer) SelectedPair() *webrtc.ICECandidatePair {
	for _, tr := range p.pc.GetTransceivers() {
		s := tr.Sender()
		if s == nil || s.Transport() == nil {
			continue
		}
		if pair, err := s.Transport().ICETransport().GetSelectedCandidatePair(); err == nil && pair != nil {
			return pair
		}
	}
	return nil
}

// Errors returns the error codes the server sent.
func (p *Peer) Errors() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.errs...)
}

// RestartICE asks the server for an ICE restart, as a page does when its
// network changed: the answer to the server's new offer gathers afresh.
func (p *Peer) RestartICE() { p.send(map[string]string{"type": "restart"}) }

// Notices returns the codes of the notices the server sent.
func (p *Peer) Notices() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.notices...)
}

// Participants returns the roles in the last participants message.
func (p *Peer) Participants() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.participants...)
}

// GotBye reports whether the server ended the call.
func (p *Peer) GotBye() bool { return p.bye.Load() }

// Sent is the number of video packets sent.
func (p *Peer) Sent() uint64 { return p.sent.Load() }

// Close leaves with a bye.
func (p *Peer) Close() { p.leave(true) }

// Drop loses the connection without a bye.
func (p *Peer) Drop() { p.leave(false) }

func (p *Peer) leave(bye bool) {
	p.once.Do(func() {
		close(p.stop)
		if bye {
			p.send(map[string]string{"type": "bye"})
		}
		_ = p.ws.Close()
		_ = p.pc.Close()
	})
}
