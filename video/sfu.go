// Package video is Nightcall's selective forwarding unit on Pion WebRTC v3:
// one room per escalation; every participant's audio and video forwarded to
// every other participant; the server makes every offer. Pion stays inside
// this package: the rest of the code sees Join, CloseRoom and RoomEvent.
package video

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/pion/dtls/v2"
	"github.com/pion/ice/v2"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/interceptor/pkg/gcc"
	"github.com/pion/interceptor/pkg/stats"
	"github.com/pion/webrtc/v3"
)

// Config configures the SFU.
type Config struct {
	// UDPPort puts all media on one UDP port (a UDP mux). Optional; 0 uses
	// ephemeral ports.
	UDPPort int
	// MuxUDP puts all media on one UDP port even when UDPPort is 0 (an
	// ephemeral one), so that the SFU's media addresses are known: the
	// embedded TURN server relays to them and nowhere else. Optional.
	MuxUDP bool
	// TCPPort enables ICE over TCP on this port, for networks that drop UDP. Optional.
	TCPPort int
	// PublicIP is announced instead of the host's own addresses (NAT 1:1). Optional.
	PublicIP string
	// ListenIP is the address the muxes bind. Optional, default all addresses.
	ListenIP string
	// Interfaces limits candidate gathering to these interface names (tests
	// use "lo"). Optional: all interfaces.
	Interfaces []string
	// IncludeLoopback gathers loopback candidates (tests). Optional.
	IncludeLoopback bool
	// RejoinGrace is how long a room waits for a participant whose connection
	// was lost before the call ends. Optional, default 30s.
	RejoinGrace time.Duration
	// InitialBitrate is the estimate of a subscriber's downlink, in bits per
	// second, before its congestion feedback arrives: it picks the first
	// simulcast layer. Optional, default 1 Mbit/s.
	InitialBitrate int
	// OnEvent receives room lifecycle events. Optional.
	OnEvent func(RoomEvent)
	// Logger is optional; nil discards.
	Logger *slog.Logger
}

// Validate lists every problem with c.
func (c Config) Validate() error {
	var errs []error
	if c.UDPPort < 0 || c.UDPPort > 65535 {
		errs = append(errs, fmt.Errorf("video: UDPPort %d out of range", c.UDPPort))
	}
	if c.TCPPort < 0 || c.TCPPort > 65535 {
		errs = append(errs, fmt.Errorf("video: TCPPort %d out of range", c.TCPPort))
	}
	if c.InitialBitrate < 0 {
		errs = append(errs, fmt.Errorf("video: InitialBitrate %d is negative", c.InitialBitrate))
	}
	if c.PublicIP != "" && net.ParseIP(c.PublicIP) == nil {
		errs = append(errs, fmt.Errorf("video: PublicIP %q is not an IP address", c.PublicIP))
	}
	return errors.Join(errs...)
}

// RoomID names a call's room. It is where web/ (which joins participants to
// a call) and the SFU meet: one room per escalation, named by its ID.
type RoomID string

// Participant is who joins a room. Role is what the event log records; the
// name is shown to the other participants only.
type Participant struct {
	Role string `json:"role"`
	Name string `json:"name"`
	// StreamID is the stream id of the participant's tracks, so that a
	// page can tell whose video a tile shows. Set by the room.
	StreamID string `json:"stream_id,omitempty"`
}

// Event kinds.
const (
	EventStarted = "started"
	EventJoined  = "joined"
	EventLeft    = "left"
	EventEnded   = "ended"
)

// RoomEvent is a lifecycle event of a room.
type RoomEvent struct {
	Kind     string
	Room     RoomID
	CallID   string
	Role     string
	At       time.Time
	Duration time.Duration
	Quality  []Quality
	Reason   string
}

// Quality summarises one participant's media in both directions.
type Quality struct {
	Role string `json:"role"`
	// Upstream: what the server received from this participant.
	UpPackets    uint64  `json:"up_packets"`
	UpLost       int64   `json:"up_packets_lost"`
	UpJitterMs   float64 `json:"up_jitter_ms"`
	UpBitrateKbs float64 `json:"up_bitrate_kbps"`
	// Downstream: what this participant reported receiving from the server.
	DownPackets uint64  `json:"down_packets"`
	DownLost    int64   `json:"down_packets_lost"`
	DownRTTMs   float64 `json:"down_rtt_ms"`
	Seconds     float64 `json:"seconds"`
}

// SFU holds the rooms.
type SFU struct {
	cfg     Config
	setting webrtc.SettingEngine
	closers []func() error

	// mediaPort and mediaIPs are where the SFU takes media (the UDP mux):
	// the only peers the embedded TURN server relays to.
	mediaPort int
	mediaIPs  map[netip.Addr]bool

	mu        sync.Mutex
	rooms     map[RoomID]*Room
	closed    bool
	wg        sync.WaitGroup
	forwarded atomic.Uint64
	layerUp   atomic.Uint64
	layerDown atomic.Uint64
}

// Forwarded is the number of RTP packets written to subscribers so far.
func (s *SFU) Forwarded() uint64 { return s.forwarded.Load() }

// New starts an SFU, binding the UDP and TCP muxes when ports are given.
func New(cfg Config) (*SFU, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.RejoinGrace <= 0 {
		cfg.RejoinGrace = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.InitialBitrate <= 0 {
		cfg.InitialBitrate = defaultInitial
	}
	s := &SFU{cfg: cfg, rooms: map[RoomID]*Room{}}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(cfg.IncludeLoopback)
	// A server has no .local names to resolve or announce: without this
	// every peer connection opens an mDNS socket on 0.0.0.0:5353 and sends
	// multicast group joins off loopback.
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	// AES-128-GCM (hardware AES, one pass for encryption and integrity)
	// first: the SFU is the DTLS server, so its order decides; AES-CM with
	// HMAC-SHA1 stays for a browser that offers nothing else.
	se.SetSRTPProtectionProfiles(SRTPProfiles...)
	// Without RTX (see registerCodecs) a publisher resends a lost packet on
	// its stream's own SSRC, and SRTP's replay check throws away anything
	// older than its window (64 packets by default: a third of a second
	// of 720p). Allow what libwebrtc allows, so a resend after a round trip
	// on 4G is still used.
	se.SetSRTPReplayProtectionWindow(SRTPReplayWindow)
	// The SFU offers, so it is ICE's controlling agent and nominates the
	// pair. Pion waits before nominating a pair whose far end it learned
	// from a check (peer reflexive: a browser hides its host address behind
	// an mDNS name the SFU does not resolve) for 1 s, and one through TURN
	// for 2 s, in case a better pair succeeds meanwhile. The SFU's own
	// candidates are host candidates only: a direct pair that works has
	// succeeded within a few round trips, so it nominates a direct pair as
	// soon as one works, and a relayed one after relayWait.
	se.SetHostAcceptanceMinWait(0)
	se.SetSrflxAcceptanceMinWait(0)
	se.SetPrflxAcceptanceMinWait(0)
	se.SetRelayAcceptanceMinWait(relayWait)
	if len(cfg.Interfaces) > 0 {
		allowed := map[string]bool{}
		for _, i := range cfg.Interfaces {
			allowed[i] = true
		}
		se.SetInterfaceFilter(func(name string) bool { return allowed[name] })
	}
	ip := net.ParseIP(cfg.ListenIP)
	networks := []webrtc.NetworkType{webrtc.NetworkTypeUDP4}
	if cfg.UDPPort > 0 || cfg.MuxUDP {
		conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip, Port: cfg.UDPPort})
		if err != nil {
			return nil, fmt.Errorf("video: listen udp %d: %w", cfg.UDPPort, err)
		}
		s.closers = append(s.closers, conn.Close)
		se.SetICEUDPMux(webrtc.NewICEUDPMux(nil, conn))
		s.mediaPort = conn.LocalAddr().(*net.UDPAddr).Port
		if s.mediaIPs, err = mediaIPs(cfg); err != nil {
			_ = s.Close()
			return nil, err
		}
	}
	if cfg.TCPPort > 0 {
		ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: ip, Port: cfg.TCPPort})
		if err != nil {
			_ = s.Close()
			return nil, fmt.Errorf("video: listen tcp %d: %w", cfg.TCPPort, err)
		}
		s.closers = append(s.closers, ln.Close)
		se.SetICETCPMux(webrtc.NewICETCPMux(nil, ln, 16))
		networks = append(networks, webrtc.NetworkTypeTCP4)
	}
	se.SetNetworkTypes(networks)
	if cfg.PublicIP != "" {
		se.SetNAT1To1IPs([]string{cfg.PublicIP}, webrtc.ICECandidateTypeHost)
	}
	s.setting = se
	return s, nil
}

// SRTPProfiles are the SRTP protection profiles offered, in order of preference.
var SRTPProfiles = []dtls.SRTPProtectionProfile{dtls.SRTP_AEAD_AES_128_GCM, dtls.SRTP_AEAD_AES_256_GCM, dtls.SRTP_AES128_CM_HMAC_SHA1_80}

// newAPI builds the Pion API for one peer: default codecs (VP8, H.264,
// Opus…), the MID and RID header extensions that simulcast needs, the
// default interceptors (NACK, RTCP reports, TWCC feedback for what the peer
// sends), transport-wide sequence numbers on what the SFU sends with Google
// congestion control reading the peer's feedback (the peer's receive
// estimate, which picks its simulcast layers), and a stats interceptor. The
// meters belong to that one peer.
func (s *SFU) newAPI() (*webrtc.API, *meters, error) {
	m := &webrtc.MediaEngine{}
	if err := registerCodecs(m); err != nil {
		return nil, nil, err
	}
	if err := webrtc.ConfigureSimulcastExtensionHeaders(m); err != nil {
		return nil, nil, err
	}
	reg := &interceptor.Registry{}
	mt := &meters{initial: s.cfg.InitialBitrate}
	// Order matters: the congestion controller is the innermost writer, so
	// it sees the transport-wide sequence number the TWCC interceptor
	// (registered after it) has set, and NACK retransmissions pass both.
	bwe, err := cc.NewInterceptor(func() (cc.BandwidthEstimator, error) {
		return gcc.NewSendSideBWE(gcc.SendSideBWEInitialBitrate(s.cfg.InitialBitrate),
			gcc.SendSideBWEMinBitrate(minBitrate), gcc.SendSideBWEMaxBitrate(maxBitrate),
			gcc.SendSideBWEPacer(gcc.NewNoOpPacer()))
	})
	if err != nil {
		return nil, nil, err
	}
	bwe.OnNewPeerConnection(func(_ string, e cc.BandwidthEstimator) { mt.setEstimator(e) })
	reg.Add(bwe)
	if err := webrtc.ConfigureTWCCHeaderExtensionSender(m, reg); err != nil {
		return nil, nil, err
	}
	if err := webrtc.RegisterDefaultInterceptors(m, reg); err != nil {
		return nil, nil, err
	}
	sf, err := stats.NewInterceptor()
	if err != nil {
		return nil, nil, err
	}
	sf.OnNewPeerConnection(func(_ string, g stats.Getter) { mt.setStats(g) })
	reg.Add(sf)
	api := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(s.setting))
	return api, mt, nil
}

// relayWait is how long after its checks begin the SFU nominates a pair
// through TURN (Pion's default is 2 s): time for a direct pair to
// succeed first where one can.
const relayWait = 300 * time.Millisecond

// SRTPReplayWindow is the SRTP replay window, in packets, of the SFU and
// of videoclient's test peers: libwebrtc's.
const SRTPReplayWindow = 1024

// Bounds of the send-side estimate of one subscriber's downlink.
const (
	minBitrate     = 100_000
	maxBitrate     = 8_000_000
	defaultInitial = 1_000_000
)

// meters are one peer's stats getter and bandwidth estimator, set by the
// interceptors when its peer connection is built.
type meters struct {
	initial int
	mu      sync.Mutex
	getter  stats.Getter
	bwe     cc.BandwidthEstimator
}

func (m *meters) setStats(g stats.Getter) { m.mu.Lock(); m.getter = g; m.mu.Unlock() }

func (m *meters) setEstimator(e cc.BandwidthEstimator) { m.mu.Lock(); m.bwe = e; m.mu.Unlock() }

func (m *meters) stats() stats.Getter { m.mu.Lock(); defer m.mu.Unlock(); return m.getter }

// estimate is the send-side estimate of what the peer can receive, in
// bits per second: the initial bitrate until its feedback says otherwise.
func (m *meters) estimate() int {
	m.mu.Lock()
	e := m.bwe
	m.mu.Unlock()
	if e == nil {
		return m.initial
	}
	return e.GetTargetBitrate()
}

// ErrClosed means the SFU or the room is closed.
var ErrClosed = errors.New("video: closed")

// room returns the open room id, creating it.
func (s *SFU) room(id RoomID) (*Room, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	r := s.rooms[id]
	if r == nil {
		r = &Room{id: id, callID: uuid.NewString(), sfu: s, peers: map[string]*peer{}, tracks: map[string]*forward{},
			sources: map[string]*videoSource{}, started: time.Now(), done: make(chan struct{})}
		s.rooms[id] = r
		go r.adaptLoop()
		s.emit(RoomEvent{Kind: EventStarted, Room: id, CallID: r.callID, At: r.started})
	}
	return r, nil
}

func (s *SFU) emit(e RoomEvent) {
	if s.cfg.OnEvent != nil {
		s.cfg.OnEvent(e)
	}
}

func (s *SFU) forget(r *Room) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rooms[r.id] == r {
		delete(s.rooms, r.id)
	}
}

// Rooms is the number of open rooms.
func (s *SFU) Rooms() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.rooms)
}

// CloseRoom ends a call (the decision was recorded): everyone gets a bye and
// every Pion resource is freed.
func (s *SFU) CloseRoom(room RoomID, reason string) {
	s.mu.Lock()
	r := s.rooms[room]
	s.mu.Unlock()
	if r != nil {
		r.end(reason)
	}
}

// Close ends every room and releases the ports.
func (s *SFU) Close() error {
	s.mu.Lock()
	s.closed = true
	rooms := make([]*Room, 0, len(s.rooms))
	for _, r := range s.rooms {
		rooms = append(rooms, r)
	}
	s.mu.Unlock()
	for _, r := range rooms {
		r.end("server shutting down")
	}
	s.wg.Wait()
	var errs []error
	for _, c := range s.closers {
		errs = append(errs, c())
	}
	return errors.Join(errs...)
}

// Join runs one participant's session until they leave, the connection is
// lost, or the room ends. conn carries the signalling messages.
func (s *SFU) Join(ctx context.Context, room RoomID, who Participant, conn Conn) error {
	r, err := s.room(room)
	if err != nil {
		return err
	}
	s.wg.Add(1)
	defer s.wg.Done()
	return r.join(ctx, who, conn)
}

// registerCodecs registers Opus, VP8 and H.264 (the codecs the SFU detects
// keyframes in and forwards), each without its RTX repair stream: in Pion
// v3.3.6 a simulcast receiver's RTX stream is attached while the track is
// being read, a data race (pion/webrtc#3332, fixed only in v4). Without RTX
// a lost packet is still resent after a NACK, on the stream's own SSRC.
func registerCodecs(m *webrtc.MediaEngine) error {
	fb := []webrtc.RTCPFeedback{{Type: "goog-remb"}, {Type: "ccm", Parameter: "fir"}, {Type: "nack"}, {Type: "nack", Parameter: "pli"}}
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"},
		PayloadType:        111,
	}, webrtc.RTPCodecTypeAudio); err != nil {
		return err
	}
	for _, c := range []webrtc.RTPCodecParameters{
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: fb}, PayloadType: 96},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f", RTCPFeedback: fb}, PayloadType: 102},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f", RTCPFeedback: fb}, PayloadType: 106},
	} {
		if err := m.RegisterCodec(c, webrtc.RTPCodecTypeVideo); err != nil {
			return err
		}
	}
	return nil
}
