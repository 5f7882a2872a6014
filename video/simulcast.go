package video

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v3"
)

// Simulcast: a browser sends its camera three times (the SFU's first offer
// asks for rids q, h and f: a quarter, half and full resolution); each layer
// arrives as a TrackRemote of its own. Every subscriber gets ONE outgoing
// video track per publisher, fed from the layer chosen for that subscriber
// from its own receive estimate (Google congestion control over the
// subscriber's transport-wide feedback). A switch happens only on a keyframe
// of the new layer (asked for with a PLI), and rewrites sequence numbers,
// timestamps and VP8 picture IDs so the subscriber sees one continuous
// stream. Audio never goes through here: it is forwarded untouched.
// A publisher without simulcast (an older client, a Pion peer sending one
// track) is a source with one layer, forwarded as before.

// Layer choice.
const (
	adaptEvery = 500 * time.Millisecond
	// headroom: a layer is chosen when its measured bitrate times this fits
	// under the subscriber's estimate (less its audio), shared between the
	// videos it receives.
	headroom = 1.2
	// baseHoldUp is how long the estimate must stay above a higher layer's
	// need before the subscriber goes up; down is at once. After a failed
	// climb (down again within failedClimb) the hold doubles, up to maxHoldUp.
	baseHoldUp  = 4 * time.Second
	maxHoldUp   = 20 * time.Second
	failedClimb = 10 * time.Second
	// a layer with no packet for this long is not offered.
	layerIdle = 2 * time.Second
)

// nominal bitrates of the rids the SFU asks browsers for, used until a
// layer has been measured.
var nominal = map[string]float64{"q": 150_000, "h": 500_000, "f": 1_500_000}

// rank orders the rids the SFU asks for; other rids rank by bitrate.
var ridRank = map[string]int{"q": 0, "h": 1, "f": 2}

// requestSimulcast adds to the video m-line mid of an offer the rids q, h
// and f and "a=simulcast:recv q;h;f", unless it asks for simulcast already.
// A browser answering it sends three encodings of its camera; one that
// cannot sends one, and is forwarded as a source with one layer.
func requestSimulcast(offer, mid string) string {
	if mid == "" {
		return offer
	}
	lines := strings.Split(offer, "\r\n")
	out := make([]string, 0, len(lines)+4)
	section, isVideo, hasSim, target := -1, false, false, false
	flush := func() {
		if target && isVideo && !hasSim {
			// insert before trailing empty line, if any
			add := []string{"a=rid:q recv", "a=rid:h recv", "a=rid:f recv", "a=simulcast:recv q;h;f"}
			if n := len(out); n > 0 && out[n-1] == "" {
				out = append(out[:n-1], append(add, "")...)
			} else {
				out = append(out, add...)
			}
		}
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "m=") {
			flush()
			section++
			isVideo, hasSim, target = strings.HasPrefix(l, "m=video "), false, false
		}
		if section >= 0 {
			if l == "a=mid:"+mid {
				target = true
			}
			if strings.HasPrefix(l, "a=simulcast:") {
				hasSim = true
			}
		}
		out = append(out, l)
	}
	flush()
	return strings.Join(out, "\r\n")
}

// dropEchoedSimulcast removes from an answer the rids it says it will
// receive: an answerer that cannot send simulcast may echo our request
// ("a=rid:q recv", "a=simulcast:recv …", as Pion v3 does), and Pion would
// then wait for rid-tagged streams that never come instead of taking its
// one stream. The rids it sends stay.
func dropEchoedSimulcast(answer string) string {
	if !strings.Contains(answer, " recv") {
		return answer
	}
	lines := strings.Split(answer, "\r\n")
	out := lines[:0]
	for _, l := range lines {
		if (strings.HasPrefix(l, "a=rid:") && strings.Contains(l, " recv")) || strings.HasPrefix(l, "a=simulcast:recv") {
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "\r\n")
}

// rateMeter is the bitrate of a byte counter, sampled by the adapt loop.
type rateMeter struct {
	mu      sync.Mutex
	last    uint64
	at      time.Time
	bps     float64
	samples int
}

func (m *rateMeter) sample(total uint64, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.at.IsZero() {
		if dt := now.Sub(m.at).Seconds(); dt > 0 {
			inst := float64(total-m.last) * 8 / dt
			if m.samples == 0 {
				m.bps = inst
			} else {
				m.bps = 0.5*m.bps + 0.5*inst
			}
			m.samples++
		}
	}
	m.last, m.at = total, now
}

// get is the bitrate and whether it has been measured for a second.
func (m *rateMeter) get() (float64, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.bps, m.samples >= 2
}

// layer is one incoming RTP stream of a video source.
type layer struct {
	src     *videoSource
	rid     string
	remote  *webrtc.TrackRemote
	packets atomic.Uint64
	bytes   atomic.Uint64
	last    atomic.Int64 // unix nanoseconds of the last packet
	lastPLI atomic.Int64
	lastKey atomic.Int64 // unix nanoseconds of the last keyframe's first packet
	rate    rateMeter
}

// bitrate is the layer's measured bitrate, or its nominal one until measured.
func (l *layer) bitrate() float64 {
	if bps, ok := l.rate.get(); ok {
		return bps
	}
	return nominal[l.rid]
}

func (l *layer) active(now time.Time) bool {
	last := l.last.Load()
	return last != 0 && now.Sub(time.Unix(0, last)) < layerIdle
}

// pliInterval is the least time between two PLIs for one layer: a
// publisher answers one within a round trip and an encode.
const pliInterval = 200 * time.Millisecond

// requestKeyframe sends the publisher a PLI for this layer, at most every pliInterval.
func (l *layer) requestKeyframe() {
	now := time.Now().UnixNano()
	last := l.lastPLI.Load()
	if now-last < int64(pliInterval) || !l.lastPLI.CompareAndSwap(last, now) {
		return
	}
	l.sendPLI()
}

// requestKeyframeNow is for a subscriber's first picture, asked once per
// subscription at the moment it can be delivered: a PLI sent a moment
// before for another reason, whose keyframe has come (and gone to the
// others), must not hold it back by pliInterval. One whose keyframe
// has not come yet is enough: the subscriber, live now, gets that one, so
// a publisher joined by many at once is not asked for as many keyframes.
func (l *layer) requestKeyframeNow() {
	now := time.Now().UnixNano()
	if keyframeOnItsWay(now, l.lastPLI.Load(), l.lastKey.Load()) {
		return
	}
	l.lastPLI.Store(now)
	l.sendPLI()
}

// keyframeOnItsWay reports whether a PLI sent at lastPLI (unix ns) is
// still to be answered at now: sent within the last pliInterval (one lost
// on the way is asked again after that), with no keyframe come since.
func keyframeOnItsWay(now, lastPLI, lastKey int64) bool {
	return lastPLI != 0 && now-lastPLI < int64(pliInterval) && lastKey < lastPLI
}

func (l *layer) sendPLI() {
	_ = l.src.owner.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(l.remote.SSRC())}})
}

// videoSource is one publisher's camera: its layers and, per subscriber,
// the one track it is forwarded on.
type videoSource struct {
	room  *Room
	owner *peer
	key   string
	codec webrtc.RTPCodecCapability

	mu     sync.Mutex
	layers map[string]*layer     // by rid ("" without simulcast)
	downs  map[string]*downTrack // by subscriber peer id
	list   atomic.Pointer[[]*downTrack]

	// gone is closed when the source is dropped.
	gone     chan struct{}
	goneOnce sync.Once
}

func (s *videoSource) simulcast() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for rid := range s.layers {
		if rid != "" {
			return true
		}
	}
	return false
}

// layerList is every layer, in no order.
func (s *videoSource) layerList() []*layer {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*layer, 0, len(s.layers))
	for _, l := range s.layers {
		out = append(out, l)
	}
	return out
}

// ordered is the active layers (every layer when now is zero) from the
// lowest to the highest.
func (s *videoSource) ordered(now time.Time) []*layer {
	var out []*layer
	known := true
	for _, l := range s.layerList() {
		if now.IsZero() || l.active(now) {
			out = append(out, l)
			if _, ok := ridRank[l.rid]; !ok {
				known = false
			}
		}
	}
	slices.SortFunc(out, func(a, b *layer) int {
		if known {
			return ridRank[a.rid] - ridRank[b.rid]
		}
		switch ra, rb := a.bitrate(), b.bitrate(); {
		case ra < rb:
			return -1
		case ra > rb:
			return 1
		}
		return strings.Compare(a.rid, b.rid)
	})
	return out
}

func (s *videoSource) layer(rid string) *layer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.layers[rid]
}

func (s *videoSource) refreshList() {
	l := make([]*downTrack, 0, len(s.downs))
	for _, d := range s.downs {
		l = append(l, d)
	}
	s.list.Store(&l)
}

func (s *videoSource) subscribers() []*downTrack {
	if l := s.list.Load(); l != nil {
		return *l
	}
	return nil
}

func (s *videoSource) removeSubscriber(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.downs[id]; d != nil {
		d.mu.Lock()
		d.closed = true
		d.mu.Unlock()
		delete(s.downs, id)
		s.refreshList()
	}
}

// choose is the highest active layer that fits budget (bits per second),
// or the lowest when none does; nil when no layer is active.
func (s *videoSource) choose(budget float64, now time.Time) (*layer, []*layer) {
	layers := s.ordered(now)
	if len(layers) == 0 {
		return nil, nil
	}
	best := layers[0]
	for _, l := range layers {
		if l.bitrate()*headroom <= budget {
			best = l
		}
	}
	return best, layers
}

// publishVideo adds a video track (one simulcast layer, or the only
// stream) to its publisher's source, which its answer may have announced
// already, and forwards it until it ends. mid is the m-line it came on.
func (r *Room) publishVideo(p *peer, t *webrtc.TrackRemote, mid string) {
	key := p.id + "/" + mid
	codec := t.Codec().RTPCodecCapability
	r.mu.Lock()
	if r.ended || r.peers[p.id] != p {
		r.mu.Unlock()
		return // the room ended, or the publisher left, while the track started
	}
	var renegotiate []*peer
	src := r.sources[key]
	if src != nil && src.unpublished() && !sameCodec(src.codec, codec) {
		// Announced with the first codec of the answer, but the camera came
		// in another: the subscribers' tracks are made again for this one.
		r.sfu.cfg.Logger.Debug("video source announced with another codec", "room", string(r.id), "role", p.who.Role,
			"announced", src.codec.MimeType, "codec", codec.MimeType)
		renegotiate = r.dropSourceLocked(src)
		src = nil
	}
	created := src == nil
	if created {
		src, renegotiate = r.newSourceLocked(p, key, codec, renegotiate)
	}
	p.announced = true
	l := &layer{src: src, rid: t.RID(), remote: t}
	src.mu.Lock()
	src.layers[l.rid] = l
	src.mu.Unlock()
	r.mu.Unlock()
	for _, o := range uniquePeers(renegotiate) {
		o.negotiate()
	}
	l.requestKeyframe()
	r.sfu.cfg.Logger.Debug("video layer published", "room", string(r.id), "role", p.who.Role, "rid", l.rid, "codec", codec.MimeType)
	src.forward(l)
	r.unpublishLayer(src, l)
}

// announceCamera makes the source of p's camera as soon as its answer says
// it sends one, before its first packet: everyone else is offered its track
// then, while the camera's encoder starts, and the first keyframe is
// forwarded as it comes instead of after a negotiation and a keyframe asked
// for (100–200 ms of the first picture). The codec is the answer's first on
// the camera's m-line, which a browser sends; a camera that comes in
// another replaces the source (publishVideo).
func (r *Room) announceCamera(p *peer, answer *sdp.SessionDescription) {
	r.mu.Lock()
	done := p.announced
	r.mu.Unlock()
	if p.videoRecv == nil || done {
		return
	}
	mid := p.videoRecv.Mid()
	pt, ok := cameraPayloadType(answer, mid)
	if !ok {
		return
	}
	var codec webrtc.RTPCodecCapability
	found := false
	for _, c := range p.videoRecv.Receiver().GetParameters().Codecs {
		if c.PayloadType == pt {
			codec, found = c.RTPCodecCapability, true
			break
		}
	}
	if !found {
		return
	}
	key := p.id + "/" + mid
	r.mu.Lock()
	if r.ended || p.announced || r.peers[p.id] != p || r.sources[key] != nil {
		r.mu.Unlock()
		return
	}
	p.announced = true
	_, renegotiate := r.newSourceLocked(p, key, codec, nil)
	r.mu.Unlock()
	r.sfu.cfg.Logger.Debug("video source announced", "room", string(r.id), "role", p.who.Role, "codec", codec.MimeType)
	for _, o := range renegotiate {
		o.negotiate()
	}
}

// cameraPayloadType is the first payload type of the m-line mid when the
// answer (as parseAnswer read it) sends on it. An m-line without a direction attribute (sendrecv by
// RFC 3264) is taken as not sending: browsers and Pion always write one,
// and a camera missed here is still published on its first packet.
func cameraPayloadType(answer *sdp.SessionDescription, mid string) (webrtc.PayloadType, bool) {
	if mid == "" {
		return 0, false
	}
	for _, m := range answer.MediaDescriptions {
		if v, _ := m.Attribute("mid"); m.MediaName.Media != "video" || v != mid {
			continue
		}
		_, sendonly := m.Attribute("sendonly")
		_, sendrecv := m.Attribute("sendrecv")
		if (!sendonly && !sendrecv) || m.MediaName.Port.Value == 0 || len(m.MediaName.Formats) == 0 {
			return 0, false
		}
		pt, err := strconv.ParseUint(m.MediaName.Formats[0], 10, 7)
		if err != nil {
			return 0, false
		}
		return webrtc.PayloadType(pt), true
	}
	return 0, false
}

// newSourceLocked makes p's video source key and subscribes everyone
// else to it; the caller holds r.mu and renegotiates the peers returned
// (appended to renegotiate).
func (r *Room) newSourceLocked(p *peer, key string, codec webrtc.RTPCodecCapability, renegotiate []*peer) (*videoSource, []*peer) {
	src := &videoSource{room: r, owner: p, key: key, codec: codec, layers: map[string]*layer{}, downs: map[string]*downTrack{}, gone: make(chan struct{})}
	r.sources[key] = src
	for _, other := range r.peers {
		if other != p && r.subscribeVideoLocked(other, src) {
			renegotiate = append(renegotiate, other)
		}
	}
	go src.keyframes()
	return src, renegotiate
}

// sameCodec reports whether a source made for codec a can forward b.
func sameCodec(a, b webrtc.RTPCodecCapability) bool {
	return strings.EqualFold(a.MimeType, b.MimeType) && a.ClockRate == b.ClockRate && a.Channels == b.Channels && a.SDPFmtpLine == b.SDPFmtpLine
}

// uniquePeers is ps without repeats, in order.
func uniquePeers(ps []*peer) []*peer {
	out := ps[:0]
	for _, p := range ps {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// midOf is the mid of the m-line rcv receives on ("" if none).
func midOf(pc *webrtc.PeerConnection, rcv *webrtc.RTPReceiver) string {
	for _, tr := range pc.GetTransceivers() {
		if tr.Receiver() == rcv {
			return tr.Mid()
		}
	}
	return ""
}

// forward reads layer l and writes each packet to the subscribers on it.
func (s *videoSource) forward(l *layer) {
	buf := make([]byte, 1500)
	var pkt rtp.Packet
	mime := s.codec.MimeType
	for {
		n, _, err := l.remote.Read(buf)
		if err != nil {
			return
		}
		now := time.Now()
		l.packets.Add(1)
		l.bytes.Add(uint64(n)) // #nosec G115 -- a packet's length, never negative
		l.last.Store(now.UnixNano())
		if pkt.Unmarshal(buf[:n]) != nil {
			continue
		}
		key := isKeyframePayload(mime, pkt.Payload)
		if key {
			l.lastKey.Store(now.UnixNano())
		}
		var sent uint64
		for _, d := range s.subscribers() {
			// A write fails only for a subscriber whose connection is
			// closing; the others go on.
			if ok, _ := d.forward(l, &pkt, key, now); ok {
				sent++
			}
		}
		s.room.sfu.forwarded.Add(sent)
	}
}

// keyframes asks for a keyframe, every 250ms, on each layer a subscriber
// waits for: to start, to switch, or after its own PLI.
func (s *videoSource) keyframes() {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-s.owner.closed:
			return
		case <-s.room.done:
			return
		case <-s.gone:
			return
		case <-t.C:
		}
		want := map[string]bool{}
		var lowest string
		if layers := s.ordered(time.Now()); len(layers) > 0 {
			lowest = layers[0].rid
		}
		for _, d := range s.subscribers() {
			if rid, ok := d.waiting(); ok {
				want[rid] = true
				if !d.started() && ridBelow(lowest, rid) {
					want[lowest] = true // its first picture, sooner
				}
			}
		}
		for rid := range want {
			if l := s.layer(rid); l != nil {
				l.requestKeyframe()
			}
		}
	}
}

// unpublishLayer drops layer l; the source goes with its last layer, and
// with it every subscriber's track.
func (r *Room) unpublishLayer(src *videoSource, l *layer) {
	src.mu.Lock()
	if src.layers[l.rid] == l {
		delete(src.layers, l.rid)
	}
	empty := len(src.layers) == 0
	src.mu.Unlock()
	if !empty {
		return
	}
	r.mu.Lock()
	if r.sources[src.key] != src || !src.unpublished() {
		// Gone already, or a new track on the same m-line came meanwhile
		// (publishVideo adds its layer under r.mu): it lives on.
		r.mu.Unlock()
		return
	}
	renegotiate := r.dropSourceLocked(src)
	r.mu.Unlock()
	for _, o := range renegotiate {
		o.negotiate()
	}
}

// dropSourceLocked removes src and every subscriber's track of it; the
// caller holds r.mu and renegotiates the peers returned.
func (r *Room) dropSourceLocked(src *videoSource) []*peer {
	if r.sources[src.key] == src {
		delete(r.sources, src.key)
	}
	src.mu.Lock()
	downs := src.downs
	src.downs = map[string]*downTrack{}
	src.refreshList()
	src.mu.Unlock()
	src.goneOnce.Do(func() { close(src.gone) })
	var renegotiate []*peer
	for id, d := range downs {
		d.mu.Lock()
		d.closed = true
		d.mu.Unlock()
		if other := r.peers[id]; other != nil {
			if err := other.pc.RemoveTrack(d.sender); err == nil {
				renegotiate = append(renegotiate, other)
			}
		}
	}
	return renegotiate
}

// unpublished reports whether no layer of src has come yet (or is left).
func (s *videoSource) unpublished() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.layers) == 0
}

// subscribeVideoLocked gives peer p a track of its own for src; the caller
// holds r.mu and renegotiates p. It reports whether a sender was added.
func (r *Room) subscribeVideoLocked(p *peer, src *videoSource) bool {
	if src.owner == p {
		return false
	}
	local, err := webrtc.NewTrackLocalStaticRTP(src.codec, "video", src.owner.id)
	if err != nil {
		return false
	}
	// Never on the m-line the subscriber sends its own camera on: its
	// simulcast rids would make the subscriber take this stream for one
	// of its own layers. AddTrack takes the first free video m-line,
	// which is that one until it is used.
	var sender *webrtc.RTPSender
	if p.videoRecv != nil && p.videoRecv.Sender() == nil {
		tr, terr := p.pc.AddTransceiverFromTrack(local, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if terr != nil {
			return false
		}
		sender = tr.Sender()
	} else if sender, err = p.pc.AddTrack(local); err != nil {
		return false
	}
	now := time.Now()
	d := &downTrack{sub: p, src: src, local: local, sender: sender, holdUp: baseHoldUp, wantKey: true, clock: src.codec.ClockRate,
		vp8: strings.EqualFold(src.codec.MimeType, webrtc.MimeTypeVP8)}
	if d.clock == 0 {
		d.clock = 90000
	}
	n := 1
	for _, s := range r.sources {
		if s != src && s.owner != p {
			n++
		}
	}
	if first, _ := src.choose(float64(p.meters.estimate())/float64(n), time.Time{}); first != nil {
		d.target, d.targetAt = first.rid, now
	} else {
		d.target = ""
	}
	p.negMu.Lock()
	d.offer = p.offers + 1
	p.negMu.Unlock()
	src.mu.Lock()
	src.downs[p.id] = d
	src.refreshList()
	src.mu.Unlock()
	go drainRTCP(sender, d.keyframeRequested, &p.down)
	go d.awaitTransport()
	return true
}

// awaitTransport marks d live once the subscriber's SRTP session is up,
// and asks for its first picture then if its answer has come. Until then
// Pion's WriteRTP drops every packet and reports no error: on a first
// negotiation the answer comes before the DTLS handshake ends, so a
// keyframe forwarded on the answer alone was lost and the picture waited
// for the subscriber's own PLI (100-230ms more on the pages). The
// sender's SetReadDeadline is the exported call that waits for that
// session (or for the sender's stop: then it fails and d stays dark).
func (d *downTrack) awaitTransport() {
	if err := d.sender.SetReadDeadline(time.Time{}); err != nil {
		return
	}
	d.live.Store(true)
	if d.ready.Load() {
		d.firstPicture()
	}
}

// firstPicture asks, once, for the keyframe that starts the subscriber's
// picture, when both its answer and its SRTP session are there (whichever
// comes second calls it): on the lowest layer when that is below its
// target, that keyframe being the quickest; on the first to come for a
// source announced before its first packet.
func (d *downTrack) firstPicture() {
	if !d.asked.CompareAndSwap(false, true) {
		return
	}
	d.mu.Lock()
	rid := d.target
	d.mu.Unlock()
	if layers := d.src.ordered(time.Now()); len(layers) > 0 && (ridBelow(layers[0].rid, rid) || d.src.layer(rid) == nil) {
		rid = layers[0].rid
	}
	if l := d.src.layer(rid); l != nil {
		l.requestKeyframeNow()
	}
}

// negotiated marks p's video tracks that offer number answered carried
// as ready for their first picture, and asks for it as soon as their
// transport is live too: a keyframe sent before the subscriber has the
// description naming its SSRC, or before its SRTP session is up, is
// thrown away, and the picture would wait for the next one.
func (r *Room) negotiated(p *peer, answered uint64) {
	r.mu.Lock()
	sources := make([]*videoSource, 0, len(r.sources))
	for _, s := range r.sources {
		sources = append(sources, s)
	}
	r.mu.Unlock()
	for _, src := range sources {
		src.mu.Lock()
		d := src.downs[p.id]
		src.mu.Unlock()
		if d == nil || d.ready.Load() || d.offer > answered {
			continue
		}
		d.ready.Store(true)
		if d.live.Load() {
			d.firstPicture()
		}
	}
}

// downTrack is one subscriber's track of one publisher's camera.
type downTrack struct {
	sub    *peer
	src    *videoSource
	local  *webrtc.TrackLocalStaticRTP
	sender *webrtc.RTPSender
	clock  uint32

	// offer is the subscriber's offer that first carries this track;
	// ready is set once it is answered, live once the subscriber's SRTP
	// session is up (awaitTransport): nothing is forwarded before both.
	// asked is set by the first picture's keyframe request.
	offer uint64
	ready atomic.Bool
	live  atomic.Bool
	asked atomic.Bool

	mu       sync.Mutex
	closed   bool
	cur      *layer // the layer forwarded now; nil before the first packet
	target   string // the rid to switch to (equal to cur's when settled)
	targetAt time.Time
	wantKey  bool // a keyframe is wanted (a new subscriber, or its PLI)

	// rewriting: out = in + offset, so that each switch continues the
	// subscriber's stream where it left off.
	seqOffset, lastSeq uint16
	tsOffset, lastTS   uint32
	lastAt             time.Time
	floor              uint16 // packets of cur older than this are dropped
	vp8                bool
	pidOffset, lastPID uint16
	hasPID             bool
	tl0Offset, lastTL0 uint8
	hasTL0             bool
	buf, pbuf          []byte

	// choice
	budget   float64
	upSince  time.Time
	holdUp   time.Duration
	lastUp   time.Time
	lastDown time.Time
	switches int
}

// waiting is the rid a keyframe is wanted on, if any.
func (d *downTrack) waiting() (string, bool) {
	if !d.ready.Load() || !d.live.Load() {
		return "", false // a keyframe now would be thrown away
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return "", false
	}
	if d.cur == nil || d.cur.rid != d.target {
		return d.target, true
	}
	if d.wantKey {
		return d.cur.rid, true
	}
	return "", false
}

// started reports whether the subscriber has had its first packet.
func (d *downTrack) started() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cur != nil
}

// keyframeRequested passes the subscriber's PLI or FIR on.
func (d *downTrack) keyframeRequested() {
	d.mu.Lock()
	d.wantKey = true
	rid := d.target
	if d.cur != nil {
		rid = d.cur.rid
	}
	d.mu.Unlock()
	if l := d.src.layer(rid); l != nil {
		l.requestKeyframe()
	}
}

// ridBelow reports whether rid is one of the SFU's rids ranked below target's.
func ridBelow(rid, target string) bool {
	r, ok := ridRank[rid]
	t, tok := ridRank[target]
	return ok && tok && r < t
}

// seqNewer reports whether a is after b in 16-bit serial arithmetic.
func seqNewer(a, b uint16) bool { return int16(a-b) > 0 } // #nosec G115 -- serial-number arithmetic (RFC 1982): the wrap is the point

// forward writes pkt of layer l to the subscriber when l is its layer, or
// switches to l on a keyframe when l is its target. It reports whether
// the packet was written.
func (d *downTrack) forward(l *layer, pkt *rtp.Packet, key bool, now time.Time) (bool, error) {
	if !d.ready.Load() || !d.live.Load() {
		return false, nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return false, nil
	}
	if d.cur != l {
		if d.cur == nil && d.target == "" {
			d.target = l.rid // no layer had a packet when it subscribed: the first to come
		}
		// A subscriber's first picture comes from the first keyframe of
		// its target or of any layer below it (the lowest is the quickest
		// to come: a browser starts its simulcast from the bottom as its
		// own estimate grows); it goes on to the target on the target's
		// keyframe, as any switch up does.
		first := d.cur == nil && key && ridBelow(l.rid, d.target)
		if l.rid != d.target && !first {
			return false, nil
		}
		// A simulcast switch waits for a keyframe of the new layer; the
		// only stream of a source without simulcast starts at once (and
		// asks for a keyframe), as it always did.
		if !key && l.rid != "" && keyframesKnown(d.src.codec.MimeType) {
			return false, nil
		}
		d.switchTo(l, pkt, now)
	} else if !seqNewer(pkt.SequenceNumber, d.floor) && pkt.SequenceNumber != d.floor {
		return false, nil // from before the switch
	}
	if key {
		d.wantKey = false
	}
	out := rtp.Packet{Header: pkt.Header, Payload: pkt.Payload}
	// The publisher's header extensions name its own negotiation; the
	// subscriber's interceptors add what its connection uses (TWCC).
	out.Extension, out.Extensions, out.ExtensionProfile = false, nil, 0
	out.SequenceNumber = pkt.SequenceNumber + d.seqOffset
	out.Timestamp = pkt.Timestamp + d.tsOffset
	if d.vp8 {
		d.rewriteVP8(pkt.Payload, &out)
	}
	if out.Padding {
		// Unmarshal took the padding off; put it back in the payload, so
		// the layers below write it whatever they make of PaddingSize.
		n := max(pkt.Header.PaddingSize, pkt.PaddingSize)
		if n == 0 {
			out.Padding = false
		} else {
			d.pbuf = append(append(d.pbuf[:0], out.Payload...), make([]byte, n)...)
			d.pbuf[len(d.pbuf)-1] = n
			out.Payload, out.Header.PaddingSize, out.PaddingSize = d.pbuf, 0, 0
		}
	}
	if seqNewer(out.SequenceNumber, d.lastSeq) || d.lastAt.IsZero() {
		d.lastSeq, d.lastTS, d.lastAt = out.SequenceNumber, out.Timestamp, now
	}
	if seqNewer(pkt.SequenceNumber, d.floor+8192) {
		d.floor = pkt.SequenceNumber - 8192
	}
	err := d.local.WriteRTP(&out)
	return err == nil, err
}

// rewriteVP8 continues the picture ID and TL0PICIDX across switches,
// copying the payload only when they change.
func (d *downTrack) rewriteVP8(payload []byte, out *rtp.Packet) {
	desc, ok := parseVP8(payload)
	if !ok || (desc.pidOff < 0 && desc.tl0Off < 0) {
		return
	}
	if (desc.pidOff >= 0 && d.pidOffset != 0) || (desc.tl0Off >= 0 && d.tl0Offset != 0) {
		d.buf = append(d.buf[:0], payload...)
		out.Payload = d.buf
	}
	if desc.pidOff >= 0 {
		pid := (desc.pid(payload) + d.pidOffset) & desc.mask()
		if d.pidOffset != 0 {
			desc.setPID(out.Payload, pid)
		}
		d.lastPID, d.hasPID = pid, true
	}
	if desc.tl0Off >= 0 {
		tl0 := payload[desc.tl0Off] + d.tl0Offset
		out.Payload[desc.tl0Off] = tl0
		d.lastTL0, d.hasTL0 = tl0, true
	}
}

// switchTo makes l the subscriber's layer from pkt on, continuing its
// sequence numbers (+1 from the last sent), timestamps (by the time since
// the last packet) and VP8 picture IDs.
func (d *downTrack) switchTo(l *layer, pkt *rtp.Packet, now time.Time) {
	from := d.cur
	if !d.lastAt.IsZero() {
		d.seqOffset = d.lastSeq + 1 - pkt.SequenceNumber
		step := uint32(now.Sub(d.lastAt).Seconds() * float64(d.clock))
		d.tsOffset = d.lastTS + max(step, 1) - pkt.Timestamp
		if desc, ok := parseVP8(pkt.Payload); ok {
			if desc.pidOff >= 0 && d.hasPID {
				d.pidOffset = (d.lastPID + 1 - desc.pid(pkt.Payload)) & desc.mask()
			}
			if desc.tl0Off >= 0 && d.hasTL0 {
				d.tl0Offset = d.lastTL0 + 1 - pkt.Payload[desc.tl0Off]
			}
		}
	}
	d.cur, d.floor = l, pkt.SequenceNumber
	if from == nil {
		return
	}
	d.switches++
	sfu := d.src.room.sfu
	up := l.bitrate() > from.bitrate()
	if r, ok := ridRank[l.rid]; ok {
		if rf, ok := ridRank[from.rid]; ok {
			up = r > rf
		}
	}
	if up {
		sfu.layerUp.Add(1)
	} else {
		sfu.layerDown.Add(1)
	}
	sfu.cfg.Logger.Info("video layer switch", "room", string(d.src.room.id), "subscriber", d.sub.who.Role, "publisher", d.src.owner.who.Role,
		"from", from.rid, "to", l.rid, "estimate_kbps", d.sub.meters.estimate()/1000, "budget_kbps", int(d.budget/1000))
}

// adapt picks the subscriber's target layer for budget (bits per second):
// down at once, up only after the budget has stayed above the higher
// layer's need for the hold.
func (d *downTrack) adapt(budget float64, now time.Time) {
	best, layers := d.src.choose(budget, now)
	if best == nil {
		return
	}
	rank := func(rid string) int {
		return slices.IndexFunc(layers, func(l *layer) bool { return l.rid == rid })
	}
	d.mu.Lock()
	d.budget = budget
	if d.closed {
		d.mu.Unlock()
		return
	}
	cur := rank(d.target)
	want := rank(best.rid)
	var ask *layer
	switch {
	case cur < 0: // the target went idle: move at once
		d.target, d.targetAt, d.upSince = best.rid, now, time.Time{}
		ask = best
	case want < cur:
		// The first step down soon after a climb: the climb failed.
		if !d.lastUp.IsZero() && d.lastDown.Before(d.lastUp) && now.Sub(d.lastUp) < failedClimb {
			d.holdUp = min(2*d.holdUp, maxHoldUp)
		}
		d.target, d.targetAt, d.upSince, d.lastDown = best.rid, now, time.Time{}, now
		ask = best
	case want > cur:
		if d.upSince.IsZero() {
			d.upSince = now
		}
		if now.Sub(d.upSince) >= d.holdUp {
			d.target, d.targetAt, d.upSince, d.lastUp = best.rid, now, time.Time{}, now
			ask = best
		}
	default:
		d.upSince = time.Time{}
		if d.holdUp > baseHoldUp && d.lastDown.Before(d.lastUp) && now.Sub(d.lastUp) > 2*failedClimb {
			d.holdUp = baseHoldUp
		}
	}
	d.mu.Unlock()
	if ask != nil {
		ask.requestKeyframe()
	}
}

// adaptLoop measures every layer and picks each subscriber's layers, until
// the room ends.
func (r *Room) adaptLoop() {
	t := time.NewTicker(adaptEvery)
	defer t.Stop()
	for {
		select {
		case <-r.done:
			return
		case now := <-t.C:
			r.adapt(now)
		}
	}
}

func (r *Room) adapt(now time.Time) {
	r.mu.Lock()
	audio := make([]*forward, 0, len(r.tracks))
	for _, f := range r.tracks {
		audio = append(audio, f)
	}
	sources := make([]*videoSource, 0, len(r.sources))
	for _, s := range r.sources {
		sources = append(sources, s)
	}
	r.mu.Unlock()
	for _, f := range audio {
		f.rate.sample(f.bytes.Load(), now)
	}
	for _, s := range sources {
		for _, l := range s.layerList() {
			l.rate.sample(l.bytes.Load(), now)
		}
	}
	type sub struct {
		audio float64
		downs []*downTrack
	}
	subs := map[*peer]*sub{}
	r.mu.Lock()
	for _, p := range r.peers {
		s := &sub{}
		for _, f := range r.tracks {
			if _, ok := f.senders[p.id]; ok {
				bps, _ := f.rate.get()
				s.audio += bps
			}
		}
		subs[p] = s
	}
	r.mu.Unlock()
	for _, src := range sources {
		for _, d := range src.subscribers() {
			if s := subs[d.sub]; s != nil {
				s.downs = append(s.downs, d)
			}
		}
	}
	for p, s := range subs {
		gcc := float64(p.meters.estimate())
		floor := p.down.tick(now, gcc)
		if len(s.downs) == 0 {
			continue
		}
		estimate := max(gcc, floor)
		for i, budget := range allocate(s.downs, estimate-s.audio*headroom, now) {
			s.downs[i].adapt(budget, now)
		}
		r.maybeProbe(p, s.audio, s.downs, estimate, now)
	}
}

// allocate shares a subscriber's video budget between the videos it
// receives: each starts on its lowest layer, and the lowest-placed goes up
// a layer while the total fits. A video's budget is what its layer needs
// plus an even share of what is left (which lifts none of them further).
func allocate(downs []*downTrack, budget float64, now time.Time) []float64 {
	layers := make([][]*layer, len(downs))
	at := make([]int, len(downs))
	used := 0.0
	for i, d := range downs {
		layers[i] = d.src.ordered(now)
		if len(layers[i]) > 0 {
			used += layers[i][0].bitrate() * headroom
		}
	}
	for {
		best, step := -1, 0.0
		for i := range downs {
			if at[i]+1 < len(layers[i]) {
				s := (layers[i][at[i]+1].bitrate() - layers[i][at[i]].bitrate()) * headroom
				if used+s <= budget && (best < 0 || at[i] < at[best]) {
					best, step = i, s
				}
			}
		}
		if best < 0 {
			break
		}
		at[best]++
		used += step
	}
	out := make([]float64, len(downs))
	left := max(budget-used, 0) / float64(len(downs))
	for i := range downs {
		if len(layers[i]) > 0 {
			out[i] = layers[i][at[i]].bitrate()*headroom + left
		}
	}
	return out
}

// maybeProbe sends p padding for a moment when one of its videos could go
// up a layer but its estimate does not allow it: the probe is at the rate
// every video one layer up needs (the highest stay where they are).
func (r *Room) maybeProbe(p *peer, audio float64, downs []*downTrack, estimate float64, now time.Time) {
	need, sending := audio*headroom, audio
	below := false
	var pad *downTrack
	for _, d := range downs {
		layers := d.src.ordered(now)
		d.mu.Lock()
		target, started := d.target, d.cur != nil
		var cur *layer
		if started {
			cur = d.cur
		}
		d.mu.Unlock()
		i := slices.IndexFunc(layers, func(l *layer) bool { return l.rid == target })
		if i < 0 || !started {
			return // settle first
		}
		next := layers[i]
		if i+1 < len(layers) {
			next, below = layers[i+1], true
		}
		need += next.bitrate() * headroom
		sending += cur.bitrate()
		if pad == nil {
			pad = d
		}
	}
	if !below || estimate >= need {
		return
	}
	rate := need * probeOver
	if rate-sending <= 0 || !p.down.startProbe(rate, now) {
		return
	}
	r.sfu.cfg.Logger.Debug("video probe", "room", string(r.id), "subscriber", p.who.Role, "rate_kbps", int(rate/1000), "estimate_kbps", int(estimate/1000))
	go pad.pad(rate-sending, now.Add(probeFor))
}

// SubscriberLayer is which layer one subscriber receives of one
// publisher's camera.
type SubscriberLayer struct {
	Subscriber string `json:"subscriber"` // role
	Publisher  string `json:"publisher"`  // role
	// SubscriberStream and PublisherStream are the participants' stream ids.
	SubscriberStream string `json:"subscriber_stream"`
	PublisherStream  string `json:"publisher_stream"`
	// Simulcast is whether the publisher sends layers; Layer is the rid
	// forwarded now ("" before the first packet, or without simulcast) and
	// Target the rid it is switching to.
	Simulcast bool   `json:"simulcast"`
	Layer     string `json:"layer"`
	Target    string `json:"target"`
	Started   bool   `json:"started"`
	// EstimateBps is the subscriber's receive estimate; BudgetBps what it
	// leaves for this video.
	EstimateBps int `json:"estimate_bps"`
	BudgetBps   int `json:"budget_bps"`
	Switches    int `json:"switches"`
	// Probing is whether the subscriber is being sent padding to see if
	// it can take more; Probes and ProbesOK count them and those that
	// went through without loss.
	Probing  bool `json:"probing"`
	Probes   int  `json:"probes"`
	ProbesOK int  `json:"probes_ok"`
}

// Layers reports, for every subscriber of every camera in room, the layer
// it receives.
func (s *SFU) Layers(room RoomID) []SubscriberLayer {
	s.mu.Lock()
	r := s.rooms[room]
	s.mu.Unlock()
	if r == nil {
		return nil
	}
	r.mu.Lock()
	sources := make([]*videoSource, 0, len(r.sources))
	for _, src := range r.sources {
		sources = append(sources, src)
	}
	r.mu.Unlock()
	var out []SubscriberLayer
	for _, src := range sources {
		sim := src.simulcast()
		for _, d := range src.subscribers() {
			d.mu.Lock()
			l := SubscriberLayer{Subscriber: d.sub.who.Role, Publisher: src.owner.who.Role, SubscriberStream: d.sub.id, PublisherStream: src.owner.id,
				Simulcast: sim, Target: d.target, Started: d.cur != nil, BudgetBps: int(d.budget), Switches: d.switches}
			if d.cur != nil {
				l.Layer = d.cur.rid
			}
			d.mu.Unlock()
			l.EstimateBps = d.sub.meters.estimate()
			dl := &d.sub.down
			dl.mu.Lock()
			l.Probing, l.Probes, l.ProbesOK = dl.probing, dl.probes, dl.probesOK
			if dl.floor > float64(l.EstimateBps) {
				l.EstimateBps = int(dl.floor)
			}
			dl.mu.Unlock()
			out = append(out, l)
		}
	}
	slices.SortFunc(out, func(a, b SubscriberLayer) int {
		return strings.Compare(a.Subscriber+a.SubscriberStream+a.Publisher, b.Subscriber+b.SubscriberStream+b.Publisher)
	})
	return out
}

// LayerStats counts layer switches and the subscribers on each layer.
type LayerStats struct {
	SwitchesUp, SwitchesDown uint64
	// Receiving is the number of subscriber tracks on each layer, by rid
	// ("single" for a publisher without simulcast, "none" before the first packet).
	Receiving map[string]int
}

// LayerStats reports the layer switches so far and who receives what now.
func (s *SFU) LayerStats() LayerStats {
	st := LayerStats{SwitchesUp: s.layerUp.Load(), SwitchesDown: s.layerDown.Load(), Receiving: map[string]int{}}
	s.mu.Lock()
	rooms := make([]RoomID, 0, len(s.rooms))
	for id := range s.rooms {
		rooms = append(rooms, id)
	}
	s.mu.Unlock()
	for _, id := range rooms {
		for _, l := range s.Layers(id) {
			switch {
			case !l.Started:
				st.Receiving["none"]++
			case l.Layer == "":
				st.Receiving["single"]++
			default:
				st.Receiving[l.Layer]++
			}
		}
	}
	return st
}

// vp8Desc locates the picture ID and TL0PICIDX of a VP8 payload
// descriptor (RFC 7741); an offset of -1 is absent.
type vp8Desc struct {
	pidOff, pidLen, tl0Off int
}

func parseVP8(p []byte) (vp8Desc, bool) {
	d := vp8Desc{pidOff: -1, tl0Off: -1}
	if len(p) < 1 || p[0]&0x80 == 0 {
		return d, len(p) > 0
	}
	if len(p) < 2 {
		return d, false
	}
	ext, i := p[1], 2
	if ext&0x80 != 0 {
		if len(p) <= i {
			return d, false
		}
		d.pidOff = i
		if p[i]&0x80 != 0 {
			if len(p) < i+2 {
				return d, false
			}
			d.pidLen = 2
		} else {
			d.pidLen = 1
		}
		i += d.pidLen
	}
	if ext&0x40 != 0 {
		if len(p) <= i {
			return vp8Desc{pidOff: -1, tl0Off: -1}, false
		}
		d.tl0Off = i
	}
	return d, true
}

func (d vp8Desc) mask() uint16 {
	if d.pidLen == 2 {
		return 0x7fff
	}
	return 0x7f
}

func (d vp8Desc) pid(p []byte) uint16 {
	if d.pidLen == 2 {
		return uint16(p[d.pidOff]&0x7f)<<8 | uint16(p[d.pidOff+1])
	}
	return uint16(p[d.pidOff] & 0x7f)
}

func (d vp8Desc) setPID(p []byte, v uint16) {
	if d.pidLen == 2 {
		p[d.pidOff] = 0x80 | byte(v>>8)&0x7f
		p[d.pidOff+1] = byte(v) // #nosec G115 -- the low byte of the picture ID, on purpose
		return
	}
	p[d.pidOff] = byte(v) & 0x7f // #nosec G115 -- a 7-bit picture ID, on purpose
}
