// Command nightcall runs the Nightcall service and its admin tools.
//
//	nightcall serve [--demo] [flags]   run the service
//	nightcall bench append             measure the event store
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
	_ "time/tzdata" // rotas and out-of-hours use --timezone on any host

	"github.com/nightcall-health/nightcall/web"
)

func main() {
	sigs := make(chan os.Signal, 3)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	ctx, stop := drainThenForce(context.Background(), sigs, func() { os.Exit(2) })
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "nightcall:", err)
		os.Exit(1)
	}
}

// stdin is where commands read secrets from; tests replace it.
var stdin io.Reader = os.Stdin

const usage = `usage: nightcall <command> [flags]

commands:
  serve    run the service (see nightcall serve -h)
  home     add and list care homes
  resident add, import (CSV, with --dry-run) and list residents
  user     add accounts (password on standard input)
  rota     show and change the on-call rota
  audit    admissions avoided and the other figures (table, json or csv)
  handover a care home's morning handover (text, json or a FHIR document)
  projections rebuild   replay the log into fresh read models, with progress
  bench    measure performance (nightcall bench append)
  tls self-signed --host NAME   a certificate for a LAN pilot, and how to trust it
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command")
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stderr)
	case "bench":
		return bench(ctx, args[1:], stdout)
	case "rota":
		return rotaCmd(ctx, args[1:], stdout)
	case "audit":
		return auditCmd(ctx, args[1:], stdout)
	case "projections":
		return projectionsCmd(ctx, args[1:], stdout)
	case "home":
		return homeCmd(ctx, args[1:], stdout)
	case "resident":
		return residentCmd(ctx, args[1:], stdout)
	case "user":
		return userCmd(ctx, args[1:], stdin, stdout)
	case "handover":
		return handoverCmd(ctx, args[1:], stdout)
	case "tls":
		return tlsCmd(ctx, args[1:], stdout)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

// serveConfig is the service configuration from flags and NIGHTCALL_* variables.
type serveConfig struct {
	Addr               string
	DataDir            string
	Store              string
	RedisURL           string
	Demo               bool
	DemoPassword       string
	PageTimeout        time.Duration
	PageReceiptTimeout time.Duration
	WebRTCUDPPort      int
	WebRTCTCPPort      int
	WebRTCPublicIP     string
	ICEServers         string
	WebRTCInterfaces   string
	WebRTCLoopback     bool
	WebRTCListenIP     string
	CallRejoinGrace    time.Duration
	AdvertiseURL       string
	Timezone           string
	LogLevel           string
	PublicOrigins      []string
	// TrustedProxies (--trusted-proxies, CIDR list): the only peers whose
	// X-Forwarded-For / X-Forwarded-Proto or Forwarded are believed.
	TrustedProxies string
	// TLSCert and TLSKey (--tls-cert, --tls-key) serve HTTPS with HTTP/2;
	// both files are read again when they change.
	TLSCert, TLSKey string
	// PushAllowedHosts (--push-allowed-hosts) is where Web Push may be sent;
	// PushSubject (--push-subject) is the VAPID contact for push services.
	PushAllowedHosts, PushSubject string
	// PageWebhook and PageWebhookSecret (--page-webhook, --page-webhook-secret):
	// also POST every page and cancellation there, signed.
	PageWebhook, PageWebhookSecret string
	// JoinTimeout (--join-timeout): an accepted escalation whose consultant
	// has not joined the call by then is join-overdue. Zero: never.
	JoinTimeout time.Duration
	// pagerStore, when set (tests only), wraps the store the pager writes
	// through, to make its writes fail.
	pagerStore storeWrapper
	// signInClock, when set (tests only), is the failed-sign-in limits' clock.
	signInClock func() time.Time
	// snapshotCheck, when set (tests only), replaces the minute between
	// checks for a snapshot to save.
	snapshotCheck time.Duration
	// auditHold, when set (tests only), holds the audit model's restore
	// after the start until it is closed.
	auditHold <-chan struct{}
	// SessionIdle (--session-idle) ends a session that long after its last
	// request; SessionMax (--session-max) that long after sign-in.
	SessionIdle, SessionMax time.Duration
	// TURN for calls: the embedded server's UDP+TCP port (--turn-port, 0:
	// none) and TLS port (--turn-tls-port, with --tls-cert), its relay port
	// range (--turn-relay-ports), the TURN REST secret every instance
	// shares (--turn-secret), the URLs of an external server
	// (--turn-urls) and how long a credential may start an allocation
	// (--turn-credential-ttl).
	TURNPort, TURNTLSPort int
	TURNRelayPorts        string
	TURNSecret            string
	TURNURLs              string
	TURNCredentialTTL     time.Duration
}

// Validate lists every problem with c.
func (c serveConfig) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("--addr %q: %w", c.Addr, err))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("--data-dir must not be empty"))
	}
	switch c.Store {
	case "sqlite":
	case "redis":
		if c.RedisURL == "" {
			errs = append(errs, errors.New("--store redis needs --redis-url"))
		}
	default:
		errs = append(errs, fmt.Errorf("--store %q: must be sqlite or redis", c.Store))
	}
	if c.PageTimeout <= 0 {
		errs = append(errs, errors.New("--page-timeout must be positive"))
	}
	if c.PageReceiptTimeout <= 0 {
		errs = append(errs, errors.New("--page-receipt-timeout must be positive"))
	}
	errs = append(errs, c.validatePaging()...)
	if c.SessionIdle <= 0 || c.SessionMax <= 0 {
		errs = append(errs, errors.New("--session-idle and --session-max must be positive"))
	} else if c.SessionIdle > c.SessionMax {
		errs = append(errs, fmt.Errorf("--session-idle %v is longer than --session-max %v", c.SessionIdle, c.SessionMax))
	}
	if _, err := time.LoadLocation(c.Timezone); err != nil {
		errs = append(errs, fmt.Errorf("--timezone %q: %w", c.Timezone, err))
	}
	for _, p := range []struct {
		name string
		v    int
	}{{"--webrtc-udp-port", c.WebRTCUDPPort}, {"--webrtc-tcp-port", c.WebRTCTCPPort}} {
		if p.v < 0 || p.v > 65535 {
			errs = append(errs, fmt.Errorf("%s %d: must be 0–65535", p.name, p.v))
		}
	}
	if c.WebRTCPublicIP != "" && net.ParseIP(c.WebRTCPublicIP) == nil {
		errs = append(errs, fmt.Errorf("--webrtc-public-ip %q is not an IP address", c.WebRTCPublicIP))
	}
	if _, err := c.mediaInterfaces(); err != nil {
		errs = append(errs, err)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("--tls-cert and --tls-key go together"))
	}
	errs = append(errs, c.validateTURN()...)
	if _, err := web.ParseTrustedProxies(c.TrustedProxies); err != nil {
		errs = append(errs, fmt.Errorf("--trusted-proxies: %w", err))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("--log-level %q: must be debug, info, warn or error", c.LogLevel))
	}
	return errors.Join(errs...)
}

func parseServe(args []string, stderr io.Writer) (serveConfig, error) {
	var c serveConfig
	var origins string
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:8080", "address to listen on")
	fs.StringVar(&c.DataDir, "data-dir", "./data", "directory of the embedded store")
	fs.StringVar(&c.Store, "store", "sqlite", "event store: sqlite or redis")
	fs.StringVar(&c.RedisURL, "redis-url", "redis://127.0.0.1:6379/0", "Redis URL for --store redis")
	fs.BoolVar(&c.Demo, "demo", false, "seed the demo data on an empty store")
	fs.StringVar(&c.DemoPassword, "demo-password", "nightcall-demo", "password of the demo accounts (demos only)")
	fs.DurationVar(&c.PageTimeout, "page-timeout", 60*time.Second, "how long a page waits for acceptance before the next level")
	fs.DurationVar(&c.PageReceiptTimeout, "page-receipt-timeout", 15*time.Second, "how long a page waits for the browser's receipt")
	fs.IntVar(&c.WebRTCUDPPort, "webrtc-udp-port", 0, "UDP port for all media (0: any)")
	fs.IntVar(&c.WebRTCTCPPort, "webrtc-tcp-port", 0, "TCP port for ICE over TCP (0: off)")
	fs.StringVar(&c.WebRTCPublicIP, "webrtc-public-ip", "", "public IP announced for media (NAT 1:1)")
	fs.StringVar(&c.ICEServers, "ice-servers", "", "comma-separated STUN/TURN URLs handed to browsers")
	fs.StringVar(&c.WebRTCInterfaces, "webrtc-interfaces", "", "comma-separated network interfaces to gather media candidates on (default all)")
	fs.BoolVar(&c.WebRTCLoopback, "webrtc-loopback", false, "also gather loopback candidates (tests, single-host demos)")
	fs.StringVar(&c.WebRTCListenIP, "webrtc-listen-ip", "", "address the media ports bind (default all)")
	fs.DurationVar(&c.CallRejoinGrace, "call-rejoin-grace", 30*time.Second, "how long a call waits for a lost participant before it ends")
	fs.StringVar(&c.AdvertiseURL, "advertise-url", "", "how other instances reach this one (distributed mode), e.g. http://10.0.0.5:8080")
	fs.StringVar(&c.Timezone, "timezone", "Europe/London", "clock for rotas and out-of-hours")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "PEM certificate (chain) file: serve HTTPS with HTTP/2 and HSTS; re-read when it changes")
	fs.StringVar(&c.TLSKey, "tls-key", "", "PEM private key file for --tls-cert")
	fs.StringVar(&c.PushAllowedHosts, "push-allowed-hosts", defaultPushHosts(), "comma-separated hosts (host, host:port or *.domain) Web Push may be sent to; http only for loopback hosts named here")
	fs.StringVar(&c.PushSubject, "push-subject", "", "VAPID contact for push services: a mailto: address or https URL (default: the first --public-origin)")
	fs.StringVar(&c.PageWebhook, "page-webhook", "", "also POST every page and cancellation here as signed JSON (a switchboard, SMS or voice gateway)")
	fs.StringVar(&c.PageWebhookSecret, "page-webhook-secret", "", "HMAC-SHA256 key of the page webhook's X-Nightcall-Signature")
	fs.DurationVar(&c.JoinTimeout, "join-timeout", 5*time.Minute, "how long the accepting consultant has to join the call before the home sees its fallback number and they are paged again (0: never)")
	fs.DurationVar(&c.SessionIdle, "session-idle", web.DefaultSessionIdle, "a session ends this long after its last request")
	fs.DurationVar(&c.SessionMax, "session-max", web.DefaultSessionMax, "a session ends this long after sign-in, however busy")
	fs.StringVar(&c.TrustedProxies, "trusted-proxies", "", "comma-separated CIDRs of reverse proxies whose X-Forwarded-For/-Proto (or Forwarded) are believed (default none)")
	fs.IntVar(&c.TURNPort, "turn-port", 0, "embedded TURN server's port, UDP and TCP (0: no embedded TURN)")
	fs.IntVar(&c.TURNTLSPort, "turn-tls-port", 0, "embedded TURN over TLS on this port (443 gets through most firewalls); needs --tls-cert")
	fs.StringVar(&c.TURNRelayPorts, "turn-relay-ports", "49160-49999", "UDP port range of the embedded TURN server's relays")
	fs.StringVar(&c.TURNSecret, "turn-secret", "", "TURN REST secret shared by every instance (and an external TURN server)")
	fs.StringVar(&c.TURNURLs, "turn-urls", "", "comma-separated TURN URLs handed to browsers, when not the embedded server's own (coturn)")
	fs.DurationVar(&c.TURNCredentialTTL, "turn-credential-ttl", time.Hour, "how long a TURN credential may start an allocation")
	fs.StringVar(&origins, "public-origin", "", "comma-separated public origins (https://nightcall.example) trusted besides the request's host")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	// Each flag falls back to NIGHTCALL_<FLAG> when not given on the command line.
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		env := "NIGHTCALL_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok && !set[f.Name] {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", env, v, err))
			}
		}
	})
	for _, o := range strings.Split(origins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			c.PublicOrigins = append(c.PublicOrigins, o)
		}
	}
	errs = append(errs, c.Validate())
	return c, errors.Join(errs...)
}

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	cfg, err := parseServe(args, stderr)
	if err != nil {
		return err
	}
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	if warnings, _ := cfg.mediaInterfaces(); len(warnings) > 0 {
		for _, w := range warnings {
			log.Warn("media settings may leave calls without a usable candidate", "problem", w)
		}
	}
	return Run(ctx, forceOf(ctx), cfg, log)
}

// mediaInterfaces checks --webrtc-interfaces against this host. Loopback
// candidates are dropped unless --webrtc-loopback is set, so naming only
// loopback interfaces without it (or only interfaces the host lacks) leaves
// every call without a usable candidate, with nothing said until both pages
// report a lost connection: that is refused. A named interface the host lacks,
// or no interface with an address at all, is a warning.
func (c serveConfig) mediaInterfaces() (warnings []string, refuse error) {
	var named []string
	for _, n := range strings.Split(c.WebRTCInterfaces, ",") {
		if n = strings.TrimSpace(n); n != "" {
			named = append(named, n)
		}
	}
	usable := func(ifc net.Interface) bool {
		if ifc.Flags&net.FlagUp == 0 {
			return false
		}
		if ifc.Flags&net.FlagLoopback != 0 {
			return c.WebRTCLoopback
		}
		addrs, err := ifc.Addrs()
		return err == nil && len(addrs) > 0
	}
	if len(named) == 0 {
		all, err := net.Interfaces()
		if err != nil {
			return []string{fmt.Sprintf("cannot list network interfaces: %v", err)}, nil
		}
		for _, ifc := range all {
			if usable(ifc) {
				return nil, nil
			}
		}
		return []string{"no network interface with an address, other than loopback: calls need --webrtc-loopback (single host) or a real interface"}, nil
	}
	var good, loopback int
	for _, n := range named {
		ifc, err := net.InterfaceByName(n)
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("--webrtc-interfaces names %q, which this host does not have", n))
			continue
		}
		if ifc.Flags&net.FlagLoopback != 0 {
			loopback++
		}
		if usable(*ifc) {
			good++
		} else if ifc.Flags&net.FlagLoopback == 0 {
			warnings = append(warnings, fmt.Sprintf("--webrtc-interfaces names %q, which is down or has no address", n))
		}
	}
	if good > 0 {
		return warnings, nil
	}
	if loopback > 0 && !c.WebRTCLoopback {
		return warnings, fmt.Errorf("--webrtc-interfaces %q names only loopback, and loopback candidates are dropped without --webrtc-loopback: no call could connect (add --webrtc-loopback for a single-host demo, or name a real interface)", c.WebRTCInterfaces)
	}
	return warnings, fmt.Errorf("--webrtc-interfaces %q: none of these interfaces is up with an address on this host, so no call could connect", c.WebRTCInterfaces)
}

// forceKey carries the context that a second signal cancels.
type forceKey struct{}

// forceOf is the context a second signal cancels (never done when none).
func forceOf(ctx context.Context) context.Context {
	if f, ok := ctx.Value(forceKey{}).(context.Context); ok {
		return f
	}
	return context.Background()
}

// drainThenForce is livekit's two-signal stop: the first signal cancels the
// returned context (serve drains: in-flight requests and calls finish), the
// second cancels its force context (serve stops waiting), a third calls
// exit. stop ends the watching.
func drainThenForce(parent context.Context, sigs <-chan os.Signal, exit func()) (ctx context.Context, stop func()) {
	force, cutShort := context.WithCancel(context.Background())
	ctx, drain := context.WithCancel(context.WithValue(parent, forceKey{}, force))
	done := make(chan struct{})
	go func() {
		for n := 1; ; n++ {
			select {
			case <-done:
				return
			case sig := <-sigs:
				switch n {
				case 1:
					fmt.Fprintf(os.Stderr, "nightcall: %v: draining; send it again to stop at once\n", sig)
					drain()
				case 2:
					fmt.Fprintf(os.Stderr, "nightcall: %v again: stopping without waiting\n", sig)
					cutShort()
				default:
					exit()
				}
			}
		}
	}()
	var once sync.Once
	return ctx, func() { once.Do(func() { close(done); drain(); cutShort() }) }
}

// mustProxies parses a list serveConfig.Validate has already accepted.
func mustProxies(list string) []netip.Prefix {
	p, err := web.ParseTrustedProxies(list)
	if err != nil {
		panic(err)
	}
	return p
}

// listen opens the service's listener: plain TCP, or TLS (HTTP/2 offered,
// the certificate re-read when its files change) with --tls-cert.
func listen(cfg serveConfig) (net.Listener, error) {
	var tc *tls.Config
	if cfg.TLSCert != "" {
		r, err := web.NewCertReloader(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, err
		}
		tc = r.TLSConfig()
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, err
	}
	if tc != nil {
		ln = tls.NewListener(ln, tc)
	}
	return ln, nil
}
