// Command nightcall runs the Nightcall service and its admin tools.
//
//	nightcall serve [--demo] [flags]   run the service
//	nightcall bench append             measure the event store
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
	_ "time/tzdata" // rotas and out-of-hours use --timezone on any host
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
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
  projections rebuild   replay the log into fresh read models, with progress
  bench    measure performance (nightcall bench append)
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
	a, err := newApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		a.store.Close()
		return err
	}
	return a.run(ctx, ln)
}
