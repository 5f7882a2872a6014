package video

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/nightcall-health/nightcall/video/videoclient"
)

// wsConn is the signalling channel over a websocket, as web/ gives the SFU.
type wsConn struct {
	ws *websocket.Conn
	mu sync.Mutex
}

func (c *wsConn) Send(m Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ws.WriteJSON(m)
}

func (c *wsConn) Recv() (Message, error) {
	var m Message
	err := c.ws.ReadJSON(&m)
	return m, err
}

func (c *wsConn) Close(string) { _ = c.ws.Close() }

// startRoomServer runs a loopback SFU behind a signalling endpoint
// /signal/{room}/{role} and returns its ws:// prefix.
func startRoomServer(t *testing.T) (*SFU, string) {
	t.Helper()
	sfu, err := New(Config{Interfaces: []string{"lo"}, IncludeLoopback: true, RejoinGrace: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /signal/{room}/{role}", func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		_ = sfu.Join(ctx, RoomID(r.PathValue("room")), Participant{Role: r.PathValue("role"), Name: r.PathValue("role")}, &wsConn{ws: ws})
	})
	srv := httptest.NewServer(mux) // 127.0.0.1
	t.Cleanup(func() { cancel(); sfu.Close(); srv.Close() })
	return sfu, "ws" + strings.TrimPrefix(srv.URL, "http") + "/signal/"
}

func dialPeer(t *testing.T, url string, simulcast bool) *videoclient.Peer {
	t.Helper()
	p, _, err := videoclient.Dial(videoclient.Config{URL: url, Simulcast: simulcast, Errorf: t.Errorf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func waitUntil(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fixedEstimate stands in for a subscriber's congestion controller: the
// test sets the receive estimate the layer choice reads.
type fixedEstimate struct {
	mu  sync.Mutex
	bps int
}

func (e *fixedEstimate) AddStream(_ *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	return w
}
func (e *fixedEstimate) WriteRTCP([]rtcp.Packet, interceptor.Attributes) error { return nil }
func (e *fixedEstimate) GetTargetBitrate() int                                 { e.mu.Lock(); defer e.mu.Unlock(); return e.bps }
func (e *fixedEstimate) OnTargetBitrateChange(func(int))                       {}
func (e *fixedEstimate) GetStats() map[string]any                              { return nil }
func (e *fixedEstimate) Close() error                                          { return nil }
func (e *fixedEstimate) set(bps int)                                           { e.mu.Lock(); e.bps = bps; e.mu.Unlock() }

// peerByRole finds a joined peer of room.
func peerByRole(s *SFU, room RoomID, role string) *peer {
	s.mu.Lock()
	r := s.rooms[room]
	s.mu.Unlock()
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.peers {
		if p.who.Role == role {
			return p
		}
	}
	return nil
}

func layerOf(s *SFU, room RoomID, subscriber string) SubscriberLayer {
	for _, l := range s.Layers(room) {
		if l.Subscriber == subscriber {
			return l
		}
	}
	return SubscriberLayer{}
}

// A publisher sends three simulcast layers through real Pion peers on
// loopback; the subscriber's receive estimate is moved up and down, and
// the SFU switches its layer (down at once, up after the hold), only on
// keyframes. The subscriber sees one stream throughout: every sequence
// number once and in order, timestamps and VP8 picture IDs never going
// back, and every audio packet.
func TestSimulcastLayerSwitchKeepsOneContinuousStream(t *testing.T) {
	sfu, base := startRoomServer(t)
	room := RoomID("room-1")
	pub := dialPeer(t, base+"room-1/consultant", true)
	sub := dialPeer(t, base+"room-1/carehome", false)
	waitUntil(t, 20*time.Second, "the subscriber receiving a layer", func() bool {
		for _, s := range sub.Streams("video") {
			if s.Layer != "" && s.Packets > 20 {
				return true
			}
		}
		return false
	})
	p := peerByRole(sfu, room, "carehome")
	if p == nil {
		t.Fatal("the subscriber is not in the room")
	}
	est := &fixedEstimate{bps: 5_000_000}
	p.meters.setEstimator(est)
	// No probes: the test alone says what the downlink takes.
	p.down.mu.Lock()
	p.down.backoff, p.down.nextProbe, p.down.floor = time.Hour, time.Now().Add(time.Hour), 0
	p.down.mu.Unlock()
	waitUntil(t, 5*time.Second, "a probe under way to end", func() bool { return !p.down.isProbing() })

	video := func() videoclient.Stream {
		for _, s := range sub.Streams("video") {
			return s
		}
		return videoclient.Stream{}
	}
	seen := []string{video().Layer}
	for _, step := range []struct {
		bps  int
		want string
	}{
		{5_000_000, "f"}, {250_000, "q"}, {5_000_000, "f"}, {800_000, "h"}, {250_000, "q"}, {800_000, "h"},
	} {
		est.set(step.bps)
		start := video().Packets
		waitUntil(t, 30*time.Second, "layer "+step.want+" at "+itoa(step.bps)+" bit/s", func() bool {
			s := video()
			return s.Layer == step.want && s.Packets > start+20 && layerOf(sfu, room, "carehome").Layer == step.want
		})
		seen = append(seen, step.want)
	}
	changes := 0
	for i := 1; i < len(seen); i++ {
		if seen[i] != seen[i-1] {
			changes++
		}
	}
	l := layerOf(sfu, room, "carehome")
	if !l.Simulcast || l.Switches < changes || l.Publisher != "consultant" {
		t.Errorf("the SFU reports %+v after the layers %v", l, seen)
	}
	st := sfu.LayerStats()
	if st.SwitchesUp < 2 || st.SwitchesDown < 2 || st.Receiving["h"] != 1 {
		t.Errorf("layer stats %+v after the layers %v", st, seen)
	}
	v := video()
	if v.Lost != 0 || v.Jumps != 0 || v.TimestampBackwards != 0 || v.PictureIDBreaks != 0 {
		t.Errorf("the video was not one continuous stream across %d switches: %+v", l.Switches, v)
	}
	// Audio is forwarded untouched and never dropped for video.
	waitUntil(t, 5*time.Second, "audio", func() bool {
		for _, a := range sub.Streams("audio") {
			return a.Packets > 200
		}
		return false
	})
	for _, a := range sub.Streams("audio") {
		if a.Lost != 0 || a.Jumps != 0 || a.TimestampBackwards != 0 {
			t.Errorf("audio across the switches: %+v", a)
		}
	}
	_ = pub
}

// A publisher that sends one video track (an older client) is forwarded
// as before: one layer, no simulcast, its numbering unchanged.
func TestSingleStreamPublisherIsForwardedAsBefore(t *testing.T) {
	sfu, base := startRoomServer(t)
	dialPeer(t, base+"room-2/consultant", false)
	sub := dialPeer(t, base+"room-2/carehome", false)
	waitUntil(t, 20*time.Second, "video and audio", func() bool { return sub.ReceivingFrom(1, 100) })
	l := layerOf(sfu, "room-2", "carehome")
	if l.Simulcast || l.Layer != "" || !l.Started {
		t.Errorf("a single-stream publisher: %+v", l)
	}
	for kind, streams := range map[string]map[string]videoclient.Stream{"video": sub.Streams("video"), "audio": sub.Streams("audio")} {
		for _, s := range streams {
			if s.Lost != 0 || s.Jumps != 0 {
				t.Errorf("%s: %+v", kind, s)
			}
		}
	}
}

func TestRequestSimulcastAsksOnlyTheCameraSlot(t *testing.T) {
	offer := "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n" +
		"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=recvonly\r\n" +
		"m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=recvonly\r\n" +
		"m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:2\r\na=sendonly\r\n"
	got := requestSimulcast(offer, "1")
	sections := strings.Split(got, "m=")
	if len(sections) != 4 {
		t.Fatalf("sections: %q", got)
	}
	if !strings.Contains(sections[2], "a=rid:q recv\r\na=rid:h recv\r\na=rid:f recv\r\na=simulcast:recv q;h;f\r\n") {
		t.Errorf("the camera slot does not ask for simulcast: %q", sections[2])
	}
	if strings.Contains(sections[1], "rid") || strings.Contains(sections[3], "rid") {
		t.Errorf("another m-line asks for simulcast: %q", got)
	}
	if again := requestSimulcast(got, "1"); again != got {
		t.Errorf("asked twice: %q", again)
	}
	if err := CheckAnswer(got); err != nil {
		t.Errorf("not SDP any more: %v", err)
	}
}

// The VP8 picture ID continues across a switch, 15-bit and 7-bit alike,
// and the publisher's packet is not changed in place.
func TestVP8PictureIDRewrite(t *testing.T) {
	d := &downTrack{vp8: true, clock: 90000}
	mk := func(seq uint16, pid uint16, long bool) *rtp.Packet {
		p := []byte{0x90, 0xc0, byte(pid), 7, 0x00, 1, 2, 3}
		if long {
			p = []byte{0x90, 0xc0, 0x80 | byte(pid>>8), byte(pid), 7, 0x00, 1, 2}
		}
		return &rtp.Packet{Header: rtp.Header{SequenceNumber: seq, Timestamp: uint32(seq) * 3000}, Payload: p}
	}
	var outs []rtp.Packet
	write := func(l *layer, pkt *rtp.Packet) {
		d.mu.Lock()
		if d.cur != l {
			d.switchTo(l, pkt, time.Now())
		}
		out := rtp.Packet{Header: pkt.Header, Payload: pkt.Payload}
		out.SequenceNumber += d.seqOffset
		out.Timestamp += d.tsOffset
		d.rewriteVP8(pkt.Payload, &out)
		out.Payload = append([]byte(nil), out.Payload...)
		d.lastSeq, d.lastTS, d.lastAt = out.SequenceNumber, out.Timestamp, time.Now()
		d.mu.Unlock()
		outs = append(outs, out)
	}
	a, b := &layer{rid: "q"}, &layer{rid: "h"}
	src := &videoSource{room: &Room{sfu: &SFU{cfg: Config{Logger: nopLogger()}}}, owner: &peer{}}
	a.src, b.src, d.src, d.sub = src, src, src, &peer{meters: &meters{}}
	write(a, mk(100, 32766, true))
	write(a, mk(101, 32767, true))
	orig := mk(5000, 9, true)
	write(b, orig)
	write(b, mk(5001, 10, true))
	if orig.Payload[2] != 0x80 || orig.Payload[3] != 9 {
		t.Errorf("the publisher's packet changed: %x", orig.Payload)
	}
	var pids []uint16
	for i, o := range outs {
		desc, _ := parseVP8(o.Payload)
		pids = append(pids, desc.pid(o.Payload))
		if i > 0 && o.SequenceNumber != outs[i-1].SequenceNumber+1 {
			t.Errorf("sequence %d after %d", o.SequenceNumber, outs[i-1].SequenceNumber)
		}
		if i > 0 && int32(o.Timestamp-outs[i-1].Timestamp) < 0 {
			t.Errorf("timestamp went back at %d", i)
		}
	}
	if want := []uint16{32766, 32767, 0, 1}; !equal(pids, want) {
		t.Errorf("picture IDs %v, want %v", pids, want)
	}
	if tl0 := outs[2].Payload[4]; tl0 != 8 {
		t.Errorf("TL0PICIDX after the switch %d, want 8", tl0)
	}
}

func equal(a, b []uint16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// expectContinuousVideo waits until sub has had more than 20 video packets
// and checks that none was lost or out of order.
func expectContinuousVideo(t *testing.T, sub *videoclient.Peer, d time.Duration, what string) {
	t.Helper()
	waitUntil(t, d, what, func() bool {
		for _, s := range sub.Streams("video") {
			return s.Packets > 20
		}
		return false
	})
	for _, s := range sub.Streams("video") {
		if s.Lost != 0 || s.Jumps != 0 {
			t.Errorf("%s: %+v", what, s)
		}
	}
}

func nopLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestNothingForwardedBeforeTheSubscriberAnswers: a subscriber's video
// track starts only once the subscriber has answered the offer carrying it
// (a keyframe sent before would be thrown away by the browser, and its
// first picture would wait for the next), and its first packet is a
// keyframe asked for then.
func TestNothingForwardedBeforeTheSubscriberAnswers(t *testing.T) {
	sfu, base := startRoomServer(t)
	room := RoomID("room-1")
	dialPeer(t, base+"room-1/consultant", true)
	roomOf := func() *Room {
		sfu.mu.Lock()
		defer sfu.mu.Unlock()
		return sfu.rooms[room]
	}
	waitUntil(t, 20*time.Second, "the consultant's camera at the SFU", func() bool {
		r := roomOf()
		if r == nil {
			return false
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.sources) > 0
	})
	const delay = 2 * time.Second
	sub, _, err := videoclient.Dial(videoclient.Config{URL: base + "room-1/carehome", AnswerDelay: delay, Errorf: t.Errorf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Close)
	joined := time.Now()
	var d *downTrack
	waitUntil(t, 5*time.Second, "the care home's video track", func() bool {
		p := peerByRole(sfu, room, "carehome")
		if p == nil {
			return false
		}
		r := roomOf()
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, src := range r.sources {
			src.mu.Lock()
			d = src.downs[p.id]
			src.mu.Unlock()
		}
		return d != nil
	})
	// The consultant's layers keep coming, every packet a keyframe: until
	// the answer, not one reaches the care home's track.
	for time.Since(joined) < delay-300*time.Millisecond {
		if d.started() || d.ready.Load() {
			t.Fatalf("%s after joining, before its answer, the care home's track has started (ready %v)", time.Since(joined).Round(time.Millisecond), d.ready.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	expectContinuousVideo(t, sub, 10*time.Second, "the care home's video after its answer")
}

// TestNothingForwardedBeforeTheSubscribersTransportIsUp: an answered
// subscriber whose connection is still forming (its candidates held back,
// so no DTLS handshake and no SRTP yet) is forwarded nothing: Pion drops
// every packet written before then without an error, so the keyframe its
// picture starts from would be lost. Once the connection is up, the
// picture starts and flows without a gap.
func TestNothingForwardedBeforeTheSubscribersTransportIsUp(t *testing.T) {
	sfu, base := startRoomServer(t)
	room := RoomID("room-1")
	dialPeer(t, base+"room-1/consultant", true)
	roomOf := func() *Room {
		sfu.mu.Lock()
		defer sfu.mu.Unlock()
		return sfu.rooms[room]
	}
	waitUntil(t, 20*time.Second, "the consultant's camera at the SFU", func() bool {
		r := roomOf()
		if r == nil {
			return false
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.sources) > 0
	})
	const delay = 3 * time.Second
	// The client holds its candidates until delay after it was made, which
	// is after dialling began: no connection can form before dialled+delay.
	dialled := time.Now()
	sub, _, err := videoclient.Dial(videoclient.Config{URL: base + "room-1/carehome", CandidateDelay: delay, Errorf: t.Errorf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Close)
	var d *downTrack
	waitUntil(t, 5*time.Second, "the care home's answered video track", func() bool {
		p := peerByRole(sfu, room, "carehome")
		if p == nil {
			return false
		}
		r := roomOf()
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, src := range r.sources {
			src.mu.Lock()
			d = src.downs[p.id]
			src.mu.Unlock()
		}
		return d != nil && d.ready.Load()
	})
	// Answered, every packet of the consultant's a keyframe, and yet
	// nothing goes on the track while its connection forms.
	checks := 0
	for time.Since(dialled) < delay-200*time.Millisecond {
		if d.started() || d.live.Load() {
			t.Fatalf("%s after joining, answered but before its connection, the care home's track has started (live %v, pair %v, state %v)", time.Since(dialled).Round(time.Millisecond), d.live.Load(), sub.SelectedPair(), d.sub.pc.ConnectionState())
		}
		checks++
		time.Sleep(20 * time.Millisecond)
	}
	if checks < 10 {
		t.Fatalf("the answer came %s after joining: only %d checks before the connection could form", time.Since(dialled).Round(time.Millisecond), checks)
	}
	expectContinuousVideo(t, sub, 10*time.Second, "the care home's video once connected")
	if !d.live.Load() || !d.asked.Load() {
		t.Errorf("connected: live %v, first picture asked for %v", d.live.Load(), d.asked.Load())
	}
}

// TestAFirstPictureAsksForAKeyframeUnlessOneIsOnItsWay: the keyframe a
// subscriber's first picture starts from is asked for at once, even just
// after a PLI for another reason, unless that PLI's keyframe has not come
// yet (then the subscriber gets that one).
func TestAFirstPictureAsksForAKeyframeUnlessOneIsOnItsWay(t *testing.T) {
	ms := int64(time.Millisecond)
	now := 10_000 * ms
	for _, c := range []struct {
		name             string
		lastPLI, lastKey int64
		onItsWay         bool
	}{
		{"never asked", 0, 0, false},
		{"asked 50ms ago, nothing since", now - 50*ms, now - 900*ms, true},
		{"asked 50ms ago, never a keyframe", now - 50*ms, 0, true},
		{"asked 50ms ago, its keyframe came", now - 50*ms, now - 20*ms, false},
		{"asked 250ms ago, nothing since (lost)", now - 250*ms, now - 900*ms, false},
		{"asked this instant", now, now - 900*ms, true},
	} {
		if got := keyframeOnItsWay(now, c.lastPLI, c.lastKey); got != c.onItsWay {
			t.Errorf("%s: on its way %v, want %v", c.name, got, c.onItsWay)
		}
	}
}
