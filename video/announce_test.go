package video

import (
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v3"

	"github.com/nightcall-health/nightcall/video/videoclient"
)

// sourceOf is the video source peer p publishes in room (nil if none), with
// its codec, its layer count and the downTrack of subscriber sub.
func sourceOf(s *SFU, room RoomID, p, sub *peer) (src *videoSource, codec string, layers int, d *downTrack) {
	s.mu.Lock()
	r := s.rooms[room]
	s.mu.Unlock()
	if r == nil || p == nil {
		return nil, "", 0, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, candidate := range r.sources {
		if candidate.owner != p {
			continue
		}
		candidate.mu.Lock()
		layers = len(candidate.layers)
		if sub != nil {
			d = candidate.downs[sub.id]
		}
		candidate.mu.Unlock()
		return candidate, candidate.codec.MimeType, layers, d
	}
	return nil, "", 0, nil
}

// dialHeld joins a peer whose media waits for the gate returned (closed by
// the test's cleanup at the latest).
func dialHeld(t *testing.T, url string, cfg videoclient.Config) (*videoclient.Peer, chan struct{}) {
	t.Helper()
	gate := make(chan struct{})
	cfg.URL, cfg.MediaGate, cfg.Errorf = url, gate, t.Errorf
	p, _, err := videoclient.Dial(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p, gate
}

// A camera is offered to the others from its publisher's answer: the
// subscriber has answered the offer carrying its track before the camera
// has sent one packet, so the camera's first keyframe is forwarded as it
// comes (the subscriber's negotiation no longer waits for the first packet
// and then for a keyframe asked for after it).
func TestTheCameraIsOfferedToTheOthersBeforeItsFirstPacket(t *testing.T) {
	sfu, base := startRoomServer(t)
	const room = RoomID("room-1")
	sub := dialPeer(t, base+"room-1/consultant", false)
	pub, gate := dialHeld(t, base+"room-1/carehome", videoclient.Config{Simulcast: true})
	waitUntil(t, 20*time.Second, "the consultant's track of the care home's camera, answered, before its first packet", func() bool {
		_, _, _, d := sourceOf(sfu, room, peerByRole(sfu, room, "carehome"), peerByRole(sfu, room, "consultant"))
		return d != nil && d.ready.Load()
	})
	src, codec, layers, d := sourceOf(sfu, room, peerByRole(sfu, room, "carehome"), peerByRole(sfu, room, "consultant"))
	if layers != 0 || pub.Sent() != 0 || d.started() {
		t.Fatalf("the gate is shut, yet the source has %d layers, the camera sent %d packets, the track started %v", layers, pub.Sent(), d.started())
	}
	if !strings.EqualFold(codec, webrtc.MimeTypeVP8) {
		t.Fatalf("announced codec %q, want the answer's first, VP8", codec)
	}
	close(gate)
	expectContinuousVideo(t, sub, 20*time.Second, "the consultant's video of the care home")
	// The layers came to the source announced: the same one, not a second.
	after, _, layers, _ := sourceOf(sfu, room, peerByRole(sfu, room, "carehome"), nil)
	if after != src || layers == 0 {
		t.Errorf("after the first packets the source is %p with %d layers, want the announced %p", after, layers, src)
	}
}

// A camera that comes in another codec than the answer's first (here
// H.264, where the answer lists VP8 first) replaces the source announced
// for it: the subscriber is offered a track of the codec that came, and
// receives it.
func TestACameraInAnotherCodecReplacesItsAnnouncedSource(t *testing.T) {
	sfu, base := startRoomServer(t)
	const room = RoomID("room-1")
	sub := dialPeer(t, base+"room-1/consultant", false)
	h264 := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}
	_, gate := dialHeld(t, base+"room-1/carehome", videoclient.Config{VideoCodec: h264})
	var announced *videoSource
	waitUntil(t, 20*time.Second, "the care home's camera announced in VP8 and answered by the consultant", func() bool {
		src, codec, _, d := sourceOf(sfu, room, peerByRole(sfu, room, "carehome"), peerByRole(sfu, room, "consultant"))
		announced = src
		return d != nil && d.ready.Load() && strings.EqualFold(codec, webrtc.MimeTypeVP8)
	})
	close(gate)
	waitUntil(t, 20*time.Second, "the care home's H.264 video at the consultant", func() bool {
		for _, s := range sub.Streams("video") {
			return s.Packets > 20 && strings.EqualFold(s.Codec, webrtc.MimeTypeH264)
		}
		return false
	})
	src, codec, layers, _ := sourceOf(sfu, room, peerByRole(sfu, room, "carehome"), nil)
	if src == announced || !strings.EqualFold(codec, webrtc.MimeTypeH264) || layers != 1 {
		t.Errorf("the source is %p (announced %p), codec %q, %d layers; want a new H.264 source with one layer", src, announced, codec, layers)
	}
	select {
	case <-announced.gone:
	default:
		t.Error("the source announced in VP8 was not dropped")
	}
}

// A camera announced from its answer that never sends goes with its
// publisher: no layer ends it, so the leave does, and the subscriber's
// track of it is taken away.
func TestAnAnnouncedCameraThatNeverSendsGoesWithItsPublisher(t *testing.T) {
	sfu, base := startRoomServer(t)
	const room = RoomID("room-1")
	dialPeer(t, base+"room-1/consultant", false)
	pub, _ := dialHeld(t, base+"room-1/carehome", videoclient.Config{Simulcast: true})
	var d *downTrack
	var src *videoSource
	var home *peer
	waitUntil(t, 20*time.Second, "the care home's camera announced and answered", func() bool {
		home = peerByRole(sfu, room, "carehome")
		src, _, _, d = sourceOf(sfu, room, home, peerByRole(sfu, room, "consultant"))
		return d != nil && d.ready.Load()
	})
	pub.Close()
	waitUntil(t, 20*time.Second, "the care home gone", func() bool { return peerByRole(sfu, room, "carehome") == nil })
	sfu.mu.Lock()
	r := sfu.rooms[room]
	sfu.mu.Unlock()
	r.mu.Lock()
	n := 0
	for _, s := range r.sources {
		if s.owner == home {
			n++
		}
	}
	r.mu.Unlock()
	d.mu.Lock()
	closed := d.closed
	d.mu.Unlock()
	if n != 0 || !closed {
		t.Errorf("after the publisher left: %d sources of its own, the subscriber's track closed %v", n, closed)
	}
	select {
	case <-src.gone:
	default:
		t.Error("the announced source is not marked gone (its keyframe loop runs on)")
	}
	waitUntil(t, 10*time.Second, "the consultant's sender of the camera removed", func() bool {
		c := peerByRole(sfu, room, "consultant")
		for _, tr := range c.pc.GetTransceivers() {
			if s := tr.Sender(); s != nil && s == d.sender && s.Track() != nil {
				return false
			}
		}
		return true
	})
}
