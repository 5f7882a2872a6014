package video

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/logging"
	"github.com/pion/turn/v2"
)

// The embedded TURN server (pion/turn v2, the line that matches webrtc/v3):
// for care homes whose networks drop UDP or every port but 443. It takes
// TURN over UDP and TCP on one port and TURN over TLS on another, checks
// TURN REST credentials (turncred.go) and relays only between its clients
// and this SFU's media port: it is never an open relay into the network it
// runs in.

// TURNConfig configures the embedded TURN server.
type TURNConfig struct {
	// Port takes TURN over UDP and over TCP. Required.
	Port int
	// TLSPort takes TURN over TLS (a port a strict firewall leaves open,
	// such as 443). Optional; needs TLS.
	TLSPort int
	// TLS holds the certificate for TLSPort. Required with TLSPort.
	TLS *tls.Config
	// ListenIP is the address the listeners and the relays bind. Optional,
	// default all IPv4 addresses.
	ListenIP string
	// RelayIP is the relayed address announced to clients, which the SFU
	// sends to. Optional, default the SFU's public IP or its first media IP.
	RelayIP string
	// RelayPortMin and RelayPortMax bound the relay ports (inclusive).
	// Optional, default 49160–49999.
	RelayPortMin, RelayPortMax int
	// Secret is the TURN REST secret shared by every instance. Required.
	Secret string
	// Realm is the TURN realm. Optional, default "nightcall".
	Realm string
	// SFU is the only peer relayed to. Required; it must take media on
	// one UDP port (Config.UDPPort or Config.MuxUDP).
	SFU *SFU
	// RefreshGrace is how long past its expiry a credential keeps alive an
	// allocation it started (a call outlives its credential's lifetime).
	// New allocations always need an unexpired credential. Optional,
	// default 12h.
	RefreshGrace time.Duration
	// Logger is optional; nil discards. Pion's own chatter goes at debug.
	Logger *slog.Logger
}

func (c *TURNConfig) setDefaults() {
	if c.RelayPortMin == 0 && c.RelayPortMax == 0 {
		c.RelayPortMin, c.RelayPortMax = 49160, 49999
	}
	if c.Realm == "" {
		c.Realm = "nightcall"
	}
	if c.RefreshGrace <= 0 {
		c.RefreshGrace = 12 * time.Hour
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate lists every problem with c.
func (c TURNConfig) Validate() error {
	var errs []error
	if c.Port <= 0 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("video: TURN Port %d out of range", c.Port))
	}
	if c.TLSPort < 0 || c.TLSPort > 65535 {
		errs = append(errs, fmt.Errorf("video: TURN TLSPort %d out of range", c.TLSPort))
	}
	if c.TLSPort > 0 && c.TLS == nil {
		errs = append(errs, errors.New("video: TURN TLSPort needs TLS (a certificate)"))
	}
	if c.TLSPort > 0 && c.TLSPort == c.Port {
		errs = append(errs, errors.New("video: TURN TLSPort must differ from Port"))
	}
	if c.RelayPortMin <= 0 || c.RelayPortMax > 65535 || c.RelayPortMin > c.RelayPortMax {
		errs = append(errs, fmt.Errorf("video: TURN relay ports %d–%d are not a range", c.RelayPortMin, c.RelayPortMax))
	}
	if c.Secret == "" {
		errs = append(errs, errors.New("video: TURN Secret is required"))
	}
	if c.ListenIP != "" && net.ParseIP(c.ListenIP).To4() == nil {
		errs = append(errs, fmt.Errorf("video: TURN ListenIP %q is not an IPv4 address", c.ListenIP))
	}
	if c.RelayIP != "" && net.ParseIP(c.RelayIP).To4() == nil {
		errs = append(errs, fmt.Errorf("video: TURN RelayIP %q is not an IPv4 address", c.RelayIP))
	}
	if c.SFU == nil {
		errs = append(errs, errors.New("video: TURN SFU is required"))
	} else if c.SFU.mediaPort == 0 {
		errs = append(errs, ErrNoMediaPort)
	}
	return errors.Join(errs...)
}

// TURN transports, as the stats name them.
const (
	TURNOverUDP = "udp"
	TURNOverTCP = "tcp"
	TURNOverTLS = "tls"
)

// TURNStats are the server's counters since start.
type TURNStats struct {
	// Allocations made, by transport (udp, tcp, tls).
	Allocations map[string]uint64
	// ActiveAllocations open now.
	ActiveAllocations int64
	// BytesToPeers and BytesFromPeers are relayed payload bytes.
	BytesToPeers, BytesFromPeers uint64
	// AuthRefused counts requests refused before the integrity check: a
	// malformed or expired username.
	AuthRefused uint64
	// PeersRefused counts permissions refused and packets dropped because
	// the peer was not the SFU's media address.
	PeersRefused uint64
}

// TURN is the running embedded TURN server.
type TURN struct {
	cfg      TURNConfig
	server   *turn.Server
	port     int
	tlsPort  int
	relayIP  net.IP
	bindAddr string
	// relayBind is where relay sockets bind: the relay IP when it is this
	// host's, else the listen address (a public IP behind NAT 1:1).
	relayBind string

	allocations  map[string]*atomic.Uint64
	active       atomic.Int64
	toPeers      atomic.Uint64
	fromPeers    atomic.Uint64
	authRefused  atomic.Uint64
	peersRefused atomic.Uint64

	// live holds the client addresses (5-tuple sources) granted a
	// permission lately: an allocation made with a then-valid credential.
	// Only these may go on refreshing after the credential expires.
	liveMu    sync.Mutex
	live      map[string]time.Time
	lastSweep time.Time

	closeOnce sync.Once
	closeErr  error
}

// liveFor is how long a permission keeps a client address live: longer
// than a permission's lifetime (5 minutes), which clients refresh.
const liveFor = 10 * time.Minute

// NewTURN starts the TURN server on its ports.
func NewTURN(cfg TURNConfig) (*TURN, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	t := &TURN{cfg: cfg, live: map[string]time.Time{}, allocations: map[string]*atomic.Uint64{}}
	for _, tr := range []string{TURNOverUDP, TURNOverTCP, TURNOverTLS} {
		t.allocations[tr] = &atomic.Uint64{}
	}
	relay := cfg.RelayIP
	if relay == "" {
		ip, ok := cfg.SFU.relayIP()
		if !ok {
			return nil, errors.New("video: TURN has no relay address: set RelayIP")
		}
		relay = ip.String()
	}
	t.relayIP = net.ParseIP(relay).To4()
	t.bindAddr = cfg.ListenIP
	if t.bindAddr == "" {
		t.bindAddr = "0.0.0.0"
	}
	t.relayBind = t.bindAddr
	if probe, err := net.ListenPacket("udp4", net.JoinHostPort(t.relayIP.String(), "0")); err == nil {
		// The relay address is this host's: relays send from it, so the SFU
		// sees each relayed packet come from the address the client was
		// given (else a packet to the SFU's loopback address would leave
		// from 127.0.0.1, and ICE would see a peer-reflexive stranger).
		_ = probe.Close()
		t.relayBind = t.relayIP.String()
	}

	udp, err := net.ListenPacket("udp4", net.JoinHostPort(t.bindAddr, strconv.Itoa(cfg.Port)))
	if err != nil {
		return nil, fmt.Errorf("video: TURN listen udp %d: %w", cfg.Port, err)
	}
	tcp, err := net.Listen("tcp4", net.JoinHostPort(t.bindAddr, strconv.Itoa(cfg.Port)))
	if err != nil {
		_ = udp.Close()
		return nil, fmt.Errorf("video: TURN listen tcp %d: %w", cfg.Port, err)
	}
	t.port = cfg.Port
	listeners := []turn.ListenerConfig{{Listener: tcp, RelayAddressGenerator: t.relays(TURNOverTCP), PermissionHandler: t.permit}}
	if cfg.TLSPort > 0 {
		raw, err := net.Listen("tcp4", net.JoinHostPort(t.bindAddr, strconv.Itoa(cfg.TLSPort)))
		if err != nil {
			_ = udp.Close()
			_ = tcp.Close()
			return nil, fmt.Errorf("video: TURN listen tls %d: %w", cfg.TLSPort, err)
		}
		tc := cfg.TLS.Clone()
		tc.NextProtos = nil // TURN is not HTTP; offer no ALPN
		if tc.MinVersion < tls.VersionTLS12 {
			tc.MinVersion = tls.VersionTLS12
		}
		t.tlsPort = cfg.TLSPort
		listeners = append(listeners, turn.ListenerConfig{Listener: tls.NewListener(raw, tc), RelayAddressGenerator: t.relays(TURNOverTLS), PermissionHandler: t.permit})
	}
	t.server, err = turn.NewServer(turn.ServerConfig{
		Realm:             cfg.Realm,
		AuthHandler:       t.auth,
		LoggerFactory:     slogFactory{cfg.Logger.With("component", "turn")},
		PacketConnConfigs: []turn.PacketConnConfig{{PacketConn: udp, RelayAddressGenerator: t.relays(TURNOverUDP), PermissionHandler: t.permit}},
		ListenerConfigs:   listeners,
	})
	if err != nil {
		_ = udp.Close()
		for _, l := range listeners {
			_ = l.Listener.Close()
		}
		return nil, fmt.Errorf("video: TURN server: %w", err)
	}
	cfg.Logger.Info("TURN serving", "port", t.port, "tls_port", t.tlsPort, "relay_ip", t.relayIP.String(),
		"relay_ports", fmt.Sprintf("%d-%d", cfg.RelayPortMin, cfg.RelayPortMax))
	return t, nil
}

// Port is the UDP and TCP port; TLSPort the TLS one (0 when off).
func (t *TURN) Port() int    { return t.port }
func (t *TURN) TLSPort() int { return t.tlsPort }

// Close stops the server and every allocation. It is safe to call twice.
func (t *TURN) Close() error {
	t.closeOnce.Do(func() { t.closeErr = t.server.Close() })
	return t.closeErr
}

// Stats returns the counters.
func (t *TURN) Stats() TURNStats {
	s := TURNStats{Allocations: map[string]uint64{}, ActiveAllocations: t.active.Load(),
		BytesToPeers: t.toPeers.Load(), BytesFromPeers: t.fromPeers.Load(),
		AuthRefused: t.authRefused.Load(), PeersRefused: t.peersRefused.Load()}
	for tr, n := range t.allocations {
		s.Allocations[tr] = n.Load()
	}
	return s
}

// auth answers with the long-term key for a TURN REST username; Pion then
// checks the request's integrity with it, so a wrong credential fails there.
// An expired username is refused, except from a client address that holds
// an allocation made while it was valid, for up to RefreshGrace.
func (t *TURN) auth(username, realm string, src net.Addr) ([]byte, bool) {
	expires, _, err := ParseTURNUsername(username)
	if err != nil {
		t.authRefused.Add(1)
		return nil, false
	}
	now := time.Now()
	if now.After(expires) && (now.After(expires.Add(t.cfg.RefreshGrace)) || !t.isLive(src, now)) {
		t.authRefused.Add(1)
		return nil, false
	}
	return turn.GenerateAuthKey(username, realm, TURNPassword(t.cfg.Secret, username)), true
}

// permit lets a client open a permission (or bind a channel) to the SFU's
// media addresses only. It runs after the request's integrity was checked,
// so it also marks the client address live.
func (t *TURN) permit(client net.Addr, peer net.IP) bool {
	ip, ok := netip.AddrFromSlice(peer)
	if !ok || !t.cfg.SFU.isMediaIP(ip) {
		t.peersRefused.Add(1)
		t.cfg.Logger.Debug("TURN permission refused: not the SFU", "peer", peer.String())
		return false
	}
	t.markLive(client, time.Now())
	return true
}

func (t *TURN) markLive(client net.Addr, now time.Time) {
	t.liveMu.Lock()
	defer t.liveMu.Unlock()
	t.live[client.String()] = now
	if now.Sub(t.lastSweep) > time.Minute {
		t.lastSweep = now
		for k, at := range t.live {
			if now.Sub(at) > liveFor {
				delete(t.live, k)
			}
		}
	}
}

func (t *TURN) isLive(client net.Addr, now time.Time) bool {
	t.liveMu.Lock()
	defer t.liveMu.Unlock()
	at, ok := t.live[client.String()]
	return ok && now.Sub(at) <= liveFor
}

// allowedPeer reports whether a relayed packet may go to or come from addr:
// the SFU's media port on one of its media IPs.
func (t *TURN) allowedPeer(addr net.Addr) bool {
	u, ok := addr.(*net.UDPAddr)
	if !ok {
		return false
	}
	ap := u.AddrPort()
	return t.cfg.SFU.isMediaAddr(netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
}

// relays makes the relay address generator for one listener: relay ports
// from the bounded range, each relay socket counted and filtered.
func (t *TURN) relays(transport string) turn.RelayAddressGenerator {
	return &relayGenerator{t: t, transport: transport, inner: &turn.RelayAddressGeneratorPortRange{
		RelayAddress: t.relayIP, Address: t.relayBind,
		MinPort: uint16(t.cfg.RelayPortMin), MaxPort: uint16(t.cfg.RelayPortMax), MaxRetries: 20, // #nosec G115 -- Validate keeps both in 1..65535
	}}
}

// errRelayPort is a requested relay port outside the range.
var errRelayPort = errors.New("video: TURN relay port outside the allowed range")

type relayGenerator struct {
	t         *TURN
	transport string
	inner     *turn.RelayAddressGeneratorPortRange
}

func (g *relayGenerator) Validate() error { return g.inner.Validate() }

func (g *relayGenerator) AllocatePacketConn(network string, requestedPort int) (net.PacketConn, net.Addr, error) {
	if requestedPort != 0 && (requestedPort < g.t.cfg.RelayPortMin || requestedPort > g.t.cfg.RelayPortMax) {
		return nil, nil, errRelayPort
	}
	conn, addr, err := g.inner.AllocatePacketConn(network, requestedPort)
	if err != nil {
		return nil, nil, err
	}
	g.t.allocations[g.transport].Add(1)
	g.t.active.Add(1)
	return &relayConn{PacketConn: conn, t: g.t}, addr, nil
}

// AllocateConn refuses TCP relays (RFC 6062): media to the SFU is UDP.
func (g *relayGenerator) AllocateConn(string, int) (net.Conn, net.Addr, error) {
	return nil, nil, errors.New("video: TURN TCP relays are not offered")
}

// relayConn is one allocation's relay socket: it counts what it relays and
// drops anything to or from an address that is not the SFU's media port
// (the permission handler has already limited the IPs).
type relayConn struct {
	net.PacketConn
	t      *TURN
	closed atomic.Bool
}

func (c *relayConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if !c.t.allowedPeer(addr) {
		c.t.peersRefused.Add(1)
		return len(p), nil // dropped, as a firewall would
	}
	n, err := c.PacketConn.WriteTo(p, addr)
	c.t.toPeers.Add(uint64(max(n, 0)))
	return n, err
}

func (c *relayConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(p)
		if err != nil {
			return n, addr, err
		}
		if !c.t.allowedPeer(addr) {
			c.t.peersRefused.Add(1)
			continue
		}
		c.t.fromPeers.Add(uint64(n)) // #nosec G115 -- a read's length, never negative
		return n, addr, nil
	}
}

func (c *relayConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.t.active.Add(-1)
	}
	return c.PacketConn.Close()
}

// slogFactory hands Pion's TURN loggers to slog, at debug: Pion logs every
// refused request as an error, and a flood of bad credentials must not
// flood the service's log.
type slogFactory struct{ log *slog.Logger }

func (f slogFactory) NewLogger(scope string) logging.LeveledLogger {
	return slogLeveled{f.log.With("scope", scope)}
}

type slogLeveled struct{ log *slog.Logger }

func (l slogLeveled) debugf(format string, a ...any) {
	if l.log.Enabled(context.Background(), slog.LevelDebug) { // Pion logs per packet: format only when wanted
		l.log.Debug(fmt.Sprintf(format, a...))
	}
}

func (l slogLeveled) Trace(string)                   {}
func (l slogLeveled) Tracef(string, ...any)          {}
func (l slogLeveled) Debug(msg string)               { l.log.Debug(msg) }
func (l slogLeveled) Debugf(format string, a ...any) { l.debugf(format, a...) }
func (l slogLeveled) Info(msg string)                { l.log.Debug(msg) }
func (l slogLeveled) Infof(format string, a ...any)  { l.debugf(format, a...) }
func (l slogLeveled) Warn(msg string)                { l.log.Debug(msg) }
func (l slogLeveled) Warnf(format string, a ...any)  { l.debugf(format, a...) }
func (l slogLeveled) Error(msg string)               { l.log.Debug(msg) }
func (l slogLeveled) Errorf(format string, a ...any) { l.debugf(format, a...) }
