package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nightcall-health/nightcall/video"
	"github.com/nightcall-health/nightcall/web"
)

// validateTURN lists the problems with the TURN flags.
func (c serveConfig) validateTURN() []error {
	var errs []error
	for _, p := range []struct {
		name string
		v    int
	}{{"--turn-port", c.TURNPort}, {"--turn-tls-port", c.TURNTLSPort}} {
		if p.v < 0 || p.v > 65535 {
			errs = append(errs, fmt.Errorf("%s %d: must be 0–65535", p.name, p.v))
		}
	}
	if c.TURNTLSPort > 0 && c.TURNPort == 0 {
		errs = append(errs, errors.New("--turn-tls-port needs --turn-port"))
	}
	if c.TURNTLSPort > 0 && c.TLSCert == "" {
		errs = append(errs, errors.New("--turn-tls-port needs --tls-cert and --tls-key"))
	}
	if (c.TURNPort > 0 || c.TURNURLs != "") && c.TURNSecret == "" {
		errs = append(errs, errors.New("--turn-port and --turn-urls need --turn-secret"))
	}
	if _, _, err := parseRelayPorts(c.TURNRelayPorts); err != nil && c.TURNPort > 0 {
		errs = append(errs, fmt.Errorf("--turn-relay-ports: %w", err))
	}
	for _, u := range splitList(c.TURNURLs) {
		if !strings.HasPrefix(u, "turn:") && !strings.HasPrefix(u, "turns:") {
			errs = append(errs, fmt.Errorf("--turn-urls %q: must start with \"turn:\" or \"turns:\"", u))
		}
	}
	if c.TURNCredentialTTL < 0 {
		errs = append(errs, errors.New("--turn-credential-ttl must not be negative"))
	}
	return errs
}

// parseRelayPorts reads "min-max".
func parseRelayPorts(s string) (int, int, error) {
	lo, hi, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, fmt.Errorf("%q is not min-max", s)
	}
	min, err1 := strconv.Atoi(strings.TrimSpace(lo))
	max, err2 := strconv.Atoi(strings.TrimSpace(hi))
	if err1 != nil || err2 != nil || min < 1024 || max > 65535 || min > max {
		return 0, 0, fmt.Errorf("%q is not a port range within 1024–65535", s)
	}
	return min, max, nil
}

// startTURN starts the embedded TURN server in front of the SFU when
// --turn-port is given (nil otherwise), and registers its metrics.
func (a *app) startTURN(reg *prometheus.Registry) (*video.TURN, error) {
	cfg := a.cfg
	registerLayerMetrics(reg, a.sfu)
	if cfg.TURNPort == 0 {
		return nil, nil
	}
	var tc *tls.Config
	if cfg.TURNTLSPort > 0 {
		certs, err := web.NewCertReloader(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, err
		}
		tc = &tls.Config{GetCertificate: certs.GetCertificate, MinVersion: tls.VersionTLS12}
	}
	min, max, _ := parseRelayPorts(cfg.TURNRelayPorts)
	t, err := video.NewTURN(video.TURNConfig{
		Port: cfg.TURNPort, TLSPort: cfg.TURNTLSPort, TLS: tc, ListenIP: cfg.WebRTCListenIP,
		RelayPortMin: min, RelayPortMax: max, Secret: cfg.TURNSecret, SFU: a.sfu, Logger: a.log,
	})
	if err != nil {
		return nil, err
	}
	for _, tr := range []string{video.TURNOverUDP, video.TURNOverTCP, video.TURNOverTLS} {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "nightcall_turn_allocations_total", Help: "TURN allocations made, by the transport the client reached the server on.",
			ConstLabels: prometheus.Labels{"transport": tr},
		}, func() float64 { return float64(t.Stats().Allocations[tr]) }))
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "nightcall_turn_allocations_active", Help: "TURN allocations open now.",
	}, func() float64 { return float64(t.Stats().ActiveAllocations) }))
	for dir, f := range map[string]func(video.TURNStats) uint64{
		"to_peer":   func(s video.TURNStats) uint64 { return s.BytesToPeers },
		"from_peer": func(s video.TURNStats) uint64 { return s.BytesFromPeers },
	} {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "nightcall_turn_relayed_bytes_total", Help: "Bytes relayed by the embedded TURN server between its clients and the SFU.",
			ConstLabels: prometheus.Labels{"direction": dir},
		}, func() float64 { return float64(f(t.Stats())) }))
	}
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "nightcall_turn_auth_refused_total", Help: "TURN requests refused for a malformed or expired username.",
	}, func() float64 { return float64(t.Stats().AuthRefused) }))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "nightcall_turn_peers_refused_total", Help: "TURN permissions refused and packets dropped for a peer that is not the SFU.",
	}, func() float64 { return float64(t.Stats().PeersRefused) }))
	return t, nil
}

// turnConfig is what the HTTP server hands browsers on /ice-servers.
func (a *app) turnConfig() web.TURNConfig {
	c := web.TURNConfig{Secret: a.cfg.TURNSecret, URLs: splitList(a.cfg.TURNURLs), TTL: a.cfg.TURNCredentialTTL, Host: a.cfg.WebRTCPublicIP}
	if a.turn != nil {
		c.Port, c.TLSPort = a.turn.Port(), a.turn.TLSPort()
	}
	return c
}

// registerLayerMetrics exports the SFU's simulcast layer choice: switches
// by direction, and subscriber tracks by the layer they receive now. (It
// runs with the TURN metrics: both are how calls adapt to the network.)
func registerLayerMetrics(reg *prometheus.Registry, sfu *video.SFU) {
	for dir, f := range map[string]func(video.LayerStats) uint64{
		"up":   func(s video.LayerStats) uint64 { return s.SwitchesUp },
		"down": func(s video.LayerStats) uint64 { return s.SwitchesDown },
	} {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "nightcall_video_layer_switches_total", Help: "Simulcast layer switches of subscribers, up or down, from their receive estimates.",
			ConstLabels: prometheus.Labels{"direction": dir},
		}, func() float64 { return float64(f(sfu.LayerStats())) }))
	}
	for _, layer := range []string{"q", "h", "f", "single", "none"} {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "nightcall_video_subscribers_by_layer", Help: "Subscriber video tracks by the layer they receive now (q low, h half, f full; single: a publisher without simulcast; none: not started).",
			ConstLabels: prometheus.Labels{"layer": layer},
		}, func() float64 { return float64(sfu.LayerStats().Receiving[layer]) }))
	}
}
