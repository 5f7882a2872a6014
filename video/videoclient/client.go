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
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
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
	// Simulcast sends the video as three RID encodings, q, h and f, as a
	// browser does, at about 50, 300 and 700 kbit/s (SimulcastBitrates
	// changes them). Each packet is a whole VP8 keyframe with a picture ID
	// and names its layer in the payload, so a receiver can tell which
	// layer it gets (Stream.Layer). Optional.
	Simulcast         bool
	SimulcastBitrates [3]int
	// NoCamera sends audio only (a participant with the camera off, or
	// without one). Optional.
	NoCamera bool
	// AnswerDelay holds each answer this long (a slow phone). Optional.
	AnswerDelay time.Duration
	// CandidateDelay holds the trickled ICE candidates, both ways, until
	// this long after joining: the answer goes at once, and the
	// connection (ICE, then DTLS and SRTP) forms only after it, as on a
	// slow network. Optional.
	CandidateDelay time.Duration
	// MediaGate, when set, holds every packet of audio and video until it
	// is closed (a camera whose encoder is slow to start). Optional.
	MediaGate <-chan struct{}
	// VideoCodec is the codec of the camera without simulcast (its
	// packets start an H.264 IDR for H.264). Optional: VP8. The answer
	// still lists the codecs in the media engine's order, VP8 first, so
	// any other comes in a codec the answer did not put first.
	VideoCodec webrtc.RTPCodecCapability
}

// simulcastRIDs are the rids a simulcast Peer sends, lowest first.
var simulcastRIDs = [3]string{"q", "h", "f"}

// simulcastPPS are the packets per second of each layer.
var simulcastPPS = [3]int{25, 50, 100}

// LoopbackAPI gathers loopback UDP candidates only.
func LoopbackAPI() (*webrtc.API, error) { return LoopbackAPIWith(nil) }

// LoopbackAPIWith is LoopbackAPI with more settings (a proxy dialer for
// TURN over TLS, say) applied by change. Its peers run Pion's default
// interceptors, as a browser would: receiver reports, NACKs and
// transport-wide congestion feedback, from which the SFU estimates what
// the peer can receive.
func LoopbackAPIWith(change func(*webrtc.SettingEngine)) (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	if err := webrtc.ConfigureSimulcastExtensionHeaders(m); err != nil {
		return nil, err
	}
	reg := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, reg); err != nil {
		return nil, err
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetSRTPProtectionProfiles(dtls.SRTP_AEAD_AES_128_GCM, dtls.SRTP_AEAD_AES_256_GCM, dtls.SRTP_AES128_CM_HMAC_SHA1_80)
	// A browser's replay window (libwebrtc's): with Pion's default of 64
	// packets, a resend that comes after a burst of loss is thrown away
	// before the TWCC recorder sees it, and the SFU reads every one as lost.
	se.SetSRTPReplayProtectionWindow(1024) // video.SRTPReplayWindow
	if change != nil {
		change(&se)
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(reg)), nil
}

// Peer is one participant.
type Peer struct {
	cfg  Config
	ws   *websocket.Conn
	pc   *webrtc.PeerConnection
	wmu  sync.Mutex
	stop chan struct{}
	once sync.Once
	born time.Time

	mu           sync.Mutex
	received     map[string]*atomic.Uint64 // "kind/stream" → packets
	streams      map[string]*Stream        // "kind/stream" → continuity
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
	p := &Peer{cfg: cfg, ws: ws, pc: pc, stop: make(chan struct{}), born: time.Now(), received: map[string]*atomic.Uint64{}, streams: map[string]*Stream{}}
	audio, _ := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "me")
	vp8 := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
	camera := vp8
	if cfg.VideoCodec.MimeType != "" {
		camera = cfg.VideoCodec
	}
	vid, err := webrtc.NewTrackLocalStaticRTP(camera, "video", "me")
	if err != nil {
		pc.Close()
		return nil, err
	}
	drain := func(s *webrtc.RTPSender) {
		buf := make([]byte, 1500)
		for {
			if _, _, err := s.Read(buf); err != nil {
				return
			}
		}
	}
	tracks := []webrtc.TrackLocal{audio, vid}
	if cfg.Simulcast || cfg.NoCamera {
		tracks = tracks[:1]
	}
	for _, tr := range tracks {
		s, err := pc.AddTrack(tr)
		if err != nil {
			pc.Close()
			return nil, err
		}
		go drain(s)
	}
	var layers []*ridTrack
	if cfg.Simulcast && !cfg.NoCamera {
		for i, rid := range simulcastRIDs {
			t, err := webrtc.NewTrackLocalStaticRTP(vp8, "video", "me", webrtc.WithRTPStreamID(rid))
			if err != nil {
				pc.Close()
				return nil, err
			}
			rate := cfg.SimulcastBitrates[i]
			if rate <= 0 {
				rate = [3]int{50_000, 300_000, 700_000}[i]
			}
			layers = append(layers, &ridTrack{TrackLocalStaticRTP: t, pps: simulcastPPS[i], payload: max(16, rate/8/simulcastPPS[i])})
		}
		s, err := pc.AddTrack(layers[0])
		if err == nil {
			for _, l := range layers[1:] {
				if err = s.AddEncoding(l); err != nil {
					break
				}
			}
		}
		if err != nil {
			pc.Close()
			return nil, err
		}
		for _, l := range layers {
			l.sender = s
		}
		go drain(s)
	}
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c != nil {
			init := c.ToJSON()
			p.held(func() { p.send(map[string]any{"type": "candidate", "candidate": init}) })
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
		st := p.streams[key]
		if st == nil {
			st = &Stream{}
			p.streams[key] = st
		}
		st.fresh = true // a new track: its numbering starts afresh
		st.Codec = tr.Codec().MimeType
		p.mu.Unlock()
		for {
			pkt, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			n.Add(1)
			p.mu.Lock()
			st.note(pkt, time.Now())
			p.mu.Unlock()
		}
	})
	go p.readLoop()
	if cfg.Simulcast || cfg.NoCamera {
		go p.sendAudio(audio)
		for _, l := range layers {
			go p.sendLayer(l)
		}
	} else {
		go p.sendMedia(audio, vid)
	}
	return p, nil
}

// withoutCandidates takes the candidates gathered in time for an offer or
// answer out of it, to be trickled (each with its m-section's mid).
func withoutCandidates(offer string) (string, []webrtc.ICECandidateInit) {
	var kept []string
	var found []webrtc.ICECandidateInit
	mid := ""
	for _, line := range strings.Split(offer, "\r\n") {
		switch {
		case strings.HasPrefix(line, "m="):
			mid = ""
		case strings.HasPrefix(line, "a=mid:"):
			mid = strings.TrimPrefix(line, "a=mid:")
		case strings.HasPrefix(line, "a=candidate:"):
			m := mid
			found = append(found, webrtc.ICECandidateInit{Candidate: strings.TrimPrefix(line, "a="), SDPMid: &m})
			continue
		case line == "a=end-of-candidates":
			continue
		}
		kept = append(kept, line)
	}
	return strings.Join(kept, "\r\n"), found
}

// held runs f now, or once CandidateDelay after joining has passed.
func (p *Peer) held(f func()) {
	if wait := time.Until(p.born.Add(p.cfg.CandidateDelay)); wait > 0 {
		time.AfterFunc(wait, f)
		return
	}
	f()
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
			offer, inline := m.SDP, []webrtc.ICECandidateInit(nil)
			if time.Until(p.born.Add(p.cfg.CandidateDelay)) > 0 {
				offer, inline = withoutCandidates(offer)
			}
			if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
				if !p.leaving() { // an offer that crosses our own leaving is no fault
					p.cfg.Errorf("client set offer: %v", err)
				}
				continue
			}
			for _, c := range inline {
				p.held(func() { _ = p.pc.AddICECandidate(c) })
			}
			if p.cfg.AnswerDelay > 0 {
				select {
				case <-time.After(p.cfg.AnswerDelay):
				case <-p.stop:
					return
				}
			}
			ans, err := p.pc.CreateAnswer(nil)
			if err == nil {
				err = p.pc.SetLocalDescription(ans)
			}
			if err != nil {
				if !p.leaving() {
					p.cfg.Errorf("client answer: %v", err)
				}
				continue
			}
			answer, ours := ans.SDP, []webrtc.ICECandidateInit(nil)
			if time.Until(p.born.Add(p.cfg.CandidateDelay)) > 0 {
				answer, ours = withoutCandidates(answer)
			}
			p.send(map[string]any{"type": "answer", "sdp": answer})
			for _, c := range ours {
				p.held(func() { p.send(map[string]any{"type": "candidate", "candidate": c}) })
			}
		case "candidate":
			if c := m.Candidate; c != nil {
				p.held(func() { _ = p.pc.AddICECandidate(*c) })
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
	if !p.mediaStarts() {
		return
	}
	t := time.NewTicker(time.Second / time.Duration(p.cfg.VideoPacketsPerSecond))
	defer t.Stop()
	var seq, aseq uint16
	var ts uint32
	payload := make([]byte, p.cfg.VideoPayload)
	payload[0], payload[1] = 0x10, 0x00 // VP8: start of partition 0, keyframe
	if strings.EqualFold(vid.Codec().MimeType, webrtc.MimeTypeH264) {
		payload[0], payload[1] = 0x65, 0x88 // H.264: a single IDR slice
	}
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

// ridTrack is one simulcast encoding. Pion does not mark what it sends with
// the MID and RID header extensions, which a receiver needs to tell the
// encodings apart: the writer adds them, with the ids Bind learns.
type ridTrack struct {
	*webrtc.TrackLocalStaticRTP
	sender       *webrtc.RTPSender
	pps, payload int
	midID, ridID atomic.Uint32
	mid          atomic.Value // string
}

// Bind records the negotiated ids of the MID and RID extensions.
func (t *ridTrack) Bind(c webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	for _, e := range c.HeaderExtensions() {
		switch e.URI {
		case sdp.SDESMidURI:
			t.midID.Store(uint32(e.ID))
		case sdp.SDESRTPStreamIDURI:
			t.ridID.Store(uint32(e.ID))
		}
	}
	return t.TrackLocalStaticRTP.Bind(c)
}

// midOf is the mid of the m-line t is sent on ("" before negotiation).
func (p *Peer) midOf(t *ridTrack) string {
	if m, _ := t.mid.Load().(string); m != "" {
		return m
	}
	for _, tr := range p.pc.GetTransceivers() {
		if tr.Sender() == t.sender {
			if m := tr.Mid(); m != "" {
				t.mid.Store(m)
				return m
			}
		}
	}
	return ""
}

// sendLayer writes one simulcast encoding: every packet a whole VP8
// keyframe with a 15-bit picture ID, naming its layer ("NC" and the rid
// after the VP8 header).
func (p *Peer) sendLayer(t *ridTrack) {
	if !p.mediaStarts() {
		return
	}
	tick := time.NewTicker(time.Second / time.Duration(t.pps))
	defer tick.Stop()
	payload := make([]byte, t.payload)
	rid := t.RID()
	var seq, pid uint16
	var ts uint32
	for {
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
		mid, midID, ridID := p.midOf(t), t.midID.Load(), t.ridID.Load()
		if mid == "" || midID == 0 || ridID == 0 {
			continue
		}
		seq++
		pid = (pid + 1) & 0x7fff
		ts += 90000 / uint32(t.pps)
		// X, S, partition 0; I: a 15-bit picture ID; the VP8 header's P bit 0 (keyframe).
		payload[0], payload[1], payload[2], payload[3], payload[4] = 0x90, 0x80, 0x80|byte(pid>>8), byte(pid), 0x00
		payload[5], payload[6], payload[7] = 'N', 'C', rid[0]
		pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: ts, Marker: true}, Payload: payload}
		_ = pkt.Header.SetExtension(uint8(midID), []byte(mid))
		_ = pkt.Header.SetExtension(uint8(ridID), []byte(rid))
		if err := t.WriteRTP(pkt); err == nil {
			p.sent.Add(1)
		}
	}
}

// sendAudio writes Opus-sized audio (32 kbit/s, a voice call's) at 50
// packets a second.
func (p *Peer) sendAudio(audio *webrtc.TrackLocalStaticRTP) {
	if !p.mediaStarts() {
		return
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	payload := make([]byte, 80)
	var seq uint16
	for {
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
		seq++
		_ = audio.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 960}, Payload: payload})
	}
}

// mediaStarts waits for MediaGate; false if the peer leaves meanwhile.
func (p *Peer) mediaStarts() bool {
	if p.cfg.MediaGate == nil {
		return true
	}
	select {
	case <-p.stop:
		return false
	case <-p.cfg.MediaGate:
		return true
	}
}

// Stream is what a peer received on one publisher's track of one kind:
// its continuity, seen as the receiver's jitter buffer would.
type Stream struct {
	Packets uint64
	// Lost counts sequence numbers skipped (a gap of n counts n); Jumps
	// counts every step that is not +1 (gaps, reordering, repeats).
	Lost, Jumps uint64
	// TimestampBackwards counts packets whose RTP timestamp went back.
	TimestampBackwards uint64
	// PictureIDBreaks counts VP8 picture IDs that neither repeat nor
	// step by one.
	PictureIDBreaks uint64
	// Layer is the rid named by the last packet of a simulcast Peer ("" otherwise).
	Layer string
	// Codec is the MIME type of the last track it came on.
	Codec string
	// Gaps are when each loss was noticed (unix milliseconds, the last 1000).
	Gaps []int64

	fresh   bool
	lastSeq uint16
	lastTS  uint32
	lastPID int
}

func (s *Stream) note(pkt *rtp.Packet, now time.Time) {
	s.Packets++
	pl := pkt.Payload
	pid := -1
	if len(pl) >= 8 && pl[0] == 0x90 && pl[1] == 0x80 && pl[2]&0x80 != 0 {
		pid = int(pl[2]&0x7f)<<8 | int(pl[3])
		if pl[5] == 'N' && pl[6] == 'C' {
			s.Layer = string(pl[7:8])
		}
	}
	if s.fresh {
		s.fresh = false
	} else {
		d := pkt.SequenceNumber - s.lastSeq
		switch {
		case d == 1:
		case d == 0 || d >= 0x8000:
			s.Jumps++ // a repeat, or late: the numbering does not go back
			return
		default:
			s.Jumps++
			s.Lost += uint64(d - 1)
			s.Gaps = append(s.Gaps, now.UnixMilli())
			if len(s.Gaps) > 1000 {
				s.Gaps = s.Gaps[1:]
			}
		}
		if int32(pkt.Timestamp-s.lastTS) < 0 {
			s.TimestampBackwards++
		}
		if pid >= 0 && s.lastPID >= 0 && pid != s.lastPID && pid != (s.lastPID+1)&0x7fff {
			s.PictureIDBreaks++
		}
	}
	s.lastSeq, s.lastTS, s.lastPID = pkt.SequenceNumber, pkt.Timestamp, pid
}

// Streams returns what arrived on each publisher's track of a kind, by stream id.
func (p *Peer) Streams(kind string) map[string]Stream {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]Stream{}
	for k, v := range p.streams {
		if strings.HasPrefix(k, kind+"/") {
			c := *v
			c.Gaps = append([]int64(nil), v.Gaps...)
			out[strings.TrimPrefix(k, kind+"/")] = c
		}
	}
	return out
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

// leaving reports whether Close or Drop has been called.
func (p *Peer) leaving() bool {
	select {
	case <-p.stop:
		return true
	default:
		return false
	}
}

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
