package video

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v3"
)

// Message is one signalling frame (API.md, "Calls").
type Message struct {
	Type         string                   `json:"type"`
	SDP          string                   `json:"sdp,omitempty"`
	Candidate    *webrtc.ICECandidateInit `json:"candidate,omitempty"`
	Participants []Participant            `json:"participants,omitempty"`
	Code         string                   `json:"code,omitempty"`
	Message      string                   `json:"message,omitempty"`
}

// Conn is a participant's signalling channel. Recv returns an error when the
// channel is closed or broken.
type Conn interface {
	Send(Message) error
	Recv() (Message, error)
	Close(reason string)
}

// Room is one call: its participants and the tracks they publish.
type Room struct {
	id      RoomID
	callID  string
	sfu     *SFU
	started time.Time

	mu       sync.Mutex
	peers    map[string]*peer
	tracks   map[string]*forward     // audio, by publisher and track
	sources  map[string]*videoSource // video, by publisher and track
	done     chan struct{}           // closed when the room ends
	endTimer *time.Timer
	ended    bool
	quality  []Quality
}

type peer struct {
	id   string
	who  Participant
	conn Conn
	pc   *webrtc.PeerConnection
	room *Room
	// meters are the peer's stats and the estimate of its downlink.
	meters *meters
	// videoRecv is the m-line the peer's camera is sent on.
	videoRecv *webrtc.RTPTransceiver
	// announced is set (under the room's mu) once the peer's camera has a
	// source, from its answer or its first packet (announceCamera).
	announced bool
	// down is what its feedback tells of its downlink, and its probes.
	down downlink

	negMu       sync.Mutex
	negotiating bool
	again       bool
	// offers counts the offers begun; a video track added now is in the
	// subscriber's description once offer offers+1 is answered.
	offers   uint64
	restart  bool // the next offer restarts ICE
	pending  []webrtc.ICECandidateInit
	restarts restartBudget

	bye    atomic.Bool
	closed chan struct{}
	once   sync.Once
	joined time.Time
}

// forward relays one published audio track, untouched, to every other
// peer: one local track shared by all subscribers. Video goes through a
// videoSource instead (simulcast.go), one local track per subscriber.
type forward struct {
	owner     *peer
	remote    *webrtc.TrackRemote
	local     *webrtc.TrackLocalStaticRTP
	senders   map[string]*webrtc.RTPSender // by subscriber peer id
	subs      atomic.Int64
	packets   atomic.Uint64
	bytes     atomic.Uint64
	rate      rateMeter
	firstSeen time.Time
}

func (r *Room) participants() []Participant {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Participant, 0, len(r.peers))
	for _, p := range r.peers {
		who := p.who
		who.StreamID = p.id // the stream id of its forwarded tracks (publish)
		out = append(out, who)
	}
	return out
}

func (r *Room) join(ctx context.Context, who Participant, conn Conn) error {
	api, mt, err := r.sfu.newAPI()
	if err != nil {
		return err
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return err
	}
	p := &peer{id: uuid.NewString(), who: who, conn: conn, pc: pc, room: r, meters: mt, closed: make(chan struct{}), joined: time.Now()}
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		tr, err := pc.AddTransceiverFromKind(kind, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
		if err != nil {
			_ = pc.Close()
			return err
		}
		if kind == webrtc.RTPCodecTypeVideo {
			p.videoRecv = tr
		}
	}
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c != nil {
			init := c.ToJSON()
			_ = conn.Send(Message{Type: "candidate", Candidate: &init})
		}
	})
	pc.OnTrack(func(t *webrtc.TrackRemote, rcv *webrtc.RTPReceiver) { r.publish(p, t, rcv) })
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateFailed {
			p.close("connection failed")
		}
	})

	r.mu.Lock()
	if r.ended {
		r.mu.Unlock()
		_ = pc.Close()
		return ErrClosed
	}
	if r.endTimer != nil {
		r.endTimer.Stop() // someone came back in time
		r.endTimer = nil
	}
	r.peers[p.id] = p
	for _, f := range r.tracks {
		r.subscribeLocked(p, f)
	}
	for _, src := range r.sources {
		r.subscribeVideoLocked(p, src)
	}
	r.mu.Unlock()
	r.sfu.emit(RoomEvent{Kind: EventJoined, Room: r.id, CallID: r.callID, Role: who.Role, At: time.Now()})
	r.broadcastParticipants()
	p.negotiate()

	go func() {
		select {
		case <-ctx.Done():
			p.close("server shutting down")
		case <-p.closed:
		}
	}()
	p.readLoop()
	r.leave(p)
	return nil
}

func (p *peer) close(reason string) {
	p.once.Do(func() {
		close(p.closed)
		p.conn.Close(reason)
	})
}

// readLoop handles the participant's signalling until the channel ends.
func (p *peer) readLoop() {
	for {
		msg, err := p.conn.Recv()
		if err != nil {
			return
		}
		switch msg.Type {
		case "answer":
			p.answer(msg.SDP)
		case "candidate":
			if msg.Candidate == nil {
				p.fail("bad_candidate", "candidate is missing")
				continue
			}
			p.candidate(*msg.Candidate)
		case "restart":
			if !p.restarts.allow(time.Now()) {
				p.fail("rate_limited", "too many ICE restarts; wait a few seconds")
				continue
			}
			p.restartICE()
		case "bye":
			p.bye.Store(true)
			p.close("bye")
			return
		default:
			p.fail("unknown_type", "unknown message type")
		}
	}
}

func (p *peer) fail(code, message string) {
	_ = p.conn.Send(Message{Type: "error", Code: code, Message: message})
}

// negotiate sends a new offer, or marks one as needed when an offer is
// already waiting for its answer: negotiation is serialised per peer.
func (p *peer) negotiate() {
	p.negMu.Lock()
	if p.negotiating {
		p.again = true
		p.negMu.Unlock()
		return
	}
	p.negotiating = true
	p.offers++
	var opts *webrtc.OfferOptions
	if p.restart {
		p.restart = false
		opts = &webrtc.OfferOptions{ICERestart: true}
	}
	p.negMu.Unlock()
	first := p.pc.RemoteDescription() == nil
	offer, err := p.pc.CreateOffer(opts)
	if err == nil {
		err = p.pc.SetLocalDescription(offer)
	}
	if err != nil {
		p.negMu.Lock()
		p.negotiating = false
		p.negMu.Unlock()
		return // the peer is closing
	}
	wire := offer.SDP
	if first && p.videoRecv != nil {
		// The first offer asks for the camera as simulcast (Pion v3 has no
		// API for it, and takes its own offer back unchanged only); later
		// offers repeat the rids the answer agreed, as Pion copies them.
		wire = requestSimulcast(wire, p.videoRecv.Mid())
	}
	_ = p.conn.Send(Message{Type: "offer", SDP: wire})
}

func (p *peer) answer(sdp string) {
	p.negMu.Lock()
	if !p.negotiating {
		p.negMu.Unlock()
		p.fail("unexpected_answer", "no offer is waiting for an answer")
		return
	}
	p.negMu.Unlock()
	desc, err := parseAnswer(sdp)
	if err != nil {
		p.fail("bad_sdp", "the answer is not a session description this call can use")
		return
	}
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: dropEchoedSimulcast(sdp)}); err != nil {
		p.fail("bad_sdp", "the answer could not be applied: "+err.Error())
		return
	}
	p.negMu.Lock()
	pending := p.pending
	p.pending = nil
	p.negotiating = false
	answered := p.offers
	again := p.again
	p.again = false
	p.negMu.Unlock()
	for _, c := range pending {
		p.candidate(c)
	}
	p.room.negotiated(p, answered)
	p.room.announceCamera(p, desc)
	if again {
		p.negotiate()
	}
}

func (p *peer) candidate(c webrtc.ICECandidateInit) {
	if p.pc.RemoteDescription() == nil {
		p.negMu.Lock()
		if len(p.pending) < 64 {
			p.pending = append(p.pending, c)
		}
		p.negMu.Unlock()
		return
	}
	if err := p.pc.AddICECandidate(c); err != nil {
		p.fail("bad_candidate", "the candidate was refused: "+err.Error())
	}
}

// publish starts forwarding a track the peer sends: audio as it comes to
// everyone, video (each simulcast layer is a track of its own) through a
// videoSource.
func (r *Room) publish(p *peer, t *webrtc.TrackRemote, rcv *webrtc.RTPReceiver) {
	if t.Kind() == webrtc.RTPCodecTypeVideo {
		mid := midOf(p.pc, rcv)
		if mid == "" {
			mid = "track:" + t.ID() // no m-line found: one source per track, as before
		}
		r.publishVideo(p, t, mid)
		return
	}
	local, err := webrtc.NewTrackLocalStaticRTP(t.Codec().RTPCodecCapability, t.Kind().String(), p.id)
	if err != nil {
		return
	}
	f := &forward{owner: p, remote: t, local: local, senders: map[string]*webrtc.RTPSender{}, firstSeen: time.Now()}
	key := p.id + "/" + t.ID() + "/" + t.RID()
	r.mu.Lock()
	if r.ended {
		r.mu.Unlock()
		return
	}
	r.tracks[key] = f
	var renegotiate []*peer
	for _, other := range r.peers {
		if other != p && r.subscribeLocked(other, f) {
			renegotiate = append(renegotiate, other)
		}
	}
	r.mu.Unlock()
	for _, o := range renegotiate {
		o.negotiate()
	}
	buf := make([]byte, 1500)
	for {
		n, _, err := t.Read(buf)
		if err != nil {
			break
		}
		f.packets.Add(1)
		f.bytes.Add(uint64(n)) // #nosec G115 -- a packet's length, never negative
		if _, err := local.Write(buf[:n]); err != nil && !errors.Is(err, io.ErrClosedPipe) {
			break
		}
		r.sfu.forwarded.Add(uint64(f.subs.Load())) // #nosec G115 -- a count of subscribers, never negative
	}
	r.unpublish(key, f)
}

// subscribeLocked adds f to peer p; the caller renegotiates p. It reports
// whether a sender was added.
func (r *Room) subscribeLocked(p *peer, f *forward) bool {
	if f.owner == p {
		return false
	}
	sender, err := p.pc.AddTrack(f.local)
	if err != nil {
		return false
	}
	f.senders[p.id] = sender
	f.subs.Add(1)
	go drainRTCP(sender, nil, &p.down)
	return true
}

// drainRTCP reads RTCP from a subscriber's sender so the interceptors
// (NACK, reports, congestion control) run, counts its transport-wide
// feedback in dl, and passes its keyframe requests to onKeyframe.
func drainRTCP(s *webrtc.RTPSender, onKeyframe func(), dl *downlink) {
	for {
		pkts, _, err := s.ReadRTCP()
		if err != nil {
			return
		}
		for _, pkt := range pkts {
			switch pkt := pkt.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				if onKeyframe != nil {
					onKeyframe()
				}
			case *rtcp.TransportLayerCC:
				dl.feedback(pkt)
			}
		}
	}
}

func (r *Room) unpublish(key string, f *forward) {
	r.mu.Lock()
	if r.tracks[key] != f {
		r.mu.Unlock()
		return
	}
	delete(r.tracks, key)
	f.subs.Store(0)
	var renegotiate []*peer
	for id, s := range f.senders {
		if other := r.peers[id]; other != nil {
			if err := other.pc.RemoveTrack(s); err == nil {
				renegotiate = append(renegotiate, other)
			}
		}
	}
	r.mu.Unlock()
	for _, o := range renegotiate {
		o.negotiate()
	}
}

func (r *Room) broadcastParticipants() {
	list := r.participants()
	r.mu.Lock()
	peers := make([]*peer, 0, len(r.peers))
	for _, p := range r.peers {
		peers = append(peers, p)
	}
	r.mu.Unlock()
	for _, p := range peers {
		_ = p.conn.Send(Message{Type: "participants", Participants: list})
	}
}

// quality summarises what p sent and received, from the stats interceptor.
func (r *Room) qualityOf(p *peer) Quality {
	q := Quality{Role: p.who.Role, Seconds: time.Since(p.joined).Seconds()}
	g := p.meters.stats()
	type upstream struct {
		remote *webrtc.TrackRemote
		bytes  uint64
	}
	r.mu.Lock()
	var up []upstream
	for _, f := range r.tracks {
		if f.owner == p {
			up = append(up, upstream{f.remote, f.bytes.Load()})
		}
	}
	for _, src := range r.sources {
		if src.owner == p {
			for _, l := range src.layerList() {
				up = append(up, upstream{l.remote, l.bytes.Load()})
			}
		}
	}
	r.mu.Unlock()
	var bytes uint64
	for _, f := range up {
		bytes += f.bytes
		if g != nil {
			if s := g.Get(uint32(f.remote.SSRC())); s != nil {
				q.UpPackets += s.InboundRTPStreamStats.PacketsReceived
				q.UpLost += s.InboundRTPStreamStats.PacketsLost
				q.UpJitterMs = max(q.UpJitterMs, s.InboundRTPStreamStats.Jitter*1000)
			}
		}
	}
	if q.Seconds > 0 {
		q.UpBitrateKbs = float64(bytes) * 8 / 1000 / q.Seconds
	}
	if g != nil {
		for _, tr := range p.pc.GetTransceivers() {
			s := tr.Sender()
			if s == nil || s.Track() == nil {
				continue
			}
			for _, enc := range s.GetParameters().Encodings {
				if st := g.Get(uint32(enc.SSRC)); st != nil {
					q.DownPackets += st.RemoteInboundRTPStreamStats.PacketsReceived
					q.DownLost += st.RemoteInboundRTPStreamStats.PacketsLost
					if rtt := st.RemoteInboundRTPStreamStats.RoundTripTime; rtt > 0 {
						q.DownRTTMs = max(q.DownRTTMs, float64(rtt.Microseconds())/1000)
					}
				}
			}
		}
	}
	return q
}

// leave removes p; when nobody is left the call ends, at once after a bye,
// or after the rejoin grace when the connection was lost.
func (r *Room) leave(p *peer) {
	p.close("left")
	q := r.qualityOf(p)
	_ = p.pc.Close()
	r.mu.Lock()
	delete(r.peers, p.id)
	for _, f := range r.tracks {
		if _, ok := f.senders[p.id]; ok {
			delete(f.senders, p.id)
			f.subs.Add(-1)
		}
	}
	var renegotiate []*peer
	for _, src := range r.sources {
		if src.owner == p && src.unpublished() {
			// Announced from its answer, never sent: no layer ends it.
			renegotiate = append(renegotiate, r.dropSourceLocked(src)...)
			continue
		}
		src.removeSubscriber(p.id)
	}
	r.quality = append(r.quality, q)
	empty := len(r.peers) == 0 && !r.ended
	if empty {
		grace := r.sfu.cfg.RejoinGrace
		if p.bye.Load() {
			grace = 0
		}
		r.endTimer = time.AfterFunc(grace, func() { r.end("everyone left") })
	}
	r.mu.Unlock()
	for _, o := range renegotiate {
		o.negotiate()
	}
	r.sfu.emit(RoomEvent{Kind: EventLeft, Room: r.id, CallID: r.callID, Role: p.who.Role, At: time.Now()})
	r.broadcastParticipants()
}

// end closes the room once: a bye to everyone, every peer connection closed.
func (r *Room) end(reason string) {
	r.mu.Lock()
	if r.ended {
		r.mu.Unlock()
		return
	}
	r.ended = true
	close(r.done)
	if r.endTimer != nil {
		r.endTimer.Stop()
	}
	peers := make([]*peer, 0, len(r.peers))
	for _, p := range r.peers {
		peers = append(peers, p)
	}
	r.mu.Unlock()
	r.sfu.forget(r)
	for _, p := range peers {
		_ = p.conn.Send(Message{Type: "bye", Message: reason})
		p.close(reason)
	}
	// Each joined session records its own quality as it leaves; wait briefly for them.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		n := len(r.peers)
		r.mu.Unlock()
		if n == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.mu.Lock()
	quality := append([]Quality(nil), r.quality...)
	r.mu.Unlock()
	r.sfu.emit(RoomEvent{Kind: EventEnded, Room: r.id, CallID: r.callID, At: time.Now(), Duration: time.Since(r.started), Quality: quality, Reason: reason})
}
