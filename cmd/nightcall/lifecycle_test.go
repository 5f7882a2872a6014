package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// freePorts returns a TCP and a UDP port on 127.0.0.1 that are free now.
func freePorts(t *testing.T) (tcp, udp int) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tcp = l.Addr().(*net.TCPAddr).Port
	l.Close()
	u, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	udp = u.LocalAddr().(*net.UDPAddr).Port
	u.Close()
	return tcp, udp
}

// noLeakedGoroutines waits until the goroutine count is back to before,
// and dumps them all if it is not within the deadline.
func noLeakedGoroutines(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines left, %d before the start:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond) // polling the runtime's count, not synchronising
	}
}

// A start that fails half-way releases what it took: the media ports can be
// bound again, the store file opens again, and no goroutine is left.
func TestFailedStartReleasesEverything(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	base := func(t *testing.T) serveConfig {
		httpPort, udpPort := freePorts(t)
		mediaTCP, _ := freePorts(t)
		return serveConfig{
			Addr: fmt.Sprintf("127.0.0.1:%d", httpPort), DataDir: t.TempDir(), Store: "sqlite", Demo: true, DemoPassword: "test-password",
			PageTimeout: time.Minute, PageReceiptTimeout: 15 * time.Second, Timezone: "Europe/London", LogLevel: "error",
			WebRTCUDPPort: udpPort, WebRTCTCPPort: mediaTCP, WebRTCListenIP: "127.0.0.1",
		}
	}
	rebind := func(t *testing.T, cfg serveConfig) {
		t.Helper()
		u, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: cfg.WebRTCUDPPort})
		if err != nil {
			t.Fatalf("the media UDP port is still bound after the failed start: %v", err)
		}
		u.Close()
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", cfg.WebRTCTCPPort))
		if err != nil {
			t.Fatalf("the media TCP port is still bound after the failed start: %v", err)
		}
		l.Close()
	}
	hold := func(t *testing.T, network string, port int) {
		t.Helper()
		var c io.Closer
		var err error
		if network == "udp" {
			c, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		} else {
			c, err = net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
	}
	cases := []struct {
		name string
		// take arranges the failure; it returns the config to start with.
		take func(t *testing.T, cfg serveConfig) serveConfig
	}{
		{"HTTP port taken after the store and media ports", func(t *testing.T, cfg serveConfig) serveConfig {
			var port int
			fmt.Sscanf(cfg.Addr, "127.0.0.1:%d", &port)
			hold(t, "tcp", port)
			return cfg
		}},
		{"media TCP port taken after the UDP port", func(t *testing.T, cfg serveConfig) serveConfig {
			hold(t, "tcp", cfg.WebRTCTCPPort)
			return cfg
		}},
		{"media UDP port taken after the store", func(t *testing.T, cfg serveConfig) serveConfig {
			hold(t, "udp", cfg.WebRTCUDPPort)
			return cfg
		}},
		{"Redis unreachable", func(t *testing.T, cfg serveConfig) serveConfig {
			dead, _ := freePorts(t)
			cfg.Store, cfg.RedisURL = "redis", fmt.Sprintf("redis://127.0.0.1:%d/0", dead)
			return cfg
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base(t)
			cfg = tc.take(t, cfg)
			before := runtime.NumGoroutine()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := Run(ctx, nil, cfg, quiet)
			if err == nil {
				t.Fatal("the start succeeded")
			}
			t.Logf("start failed as arranged: %v", err)
			noLeakedGoroutines(t, before)
			switch tc.name {
			case "HTTP port taken after the store and media ports":
				rebind(t, cfg)
			case "media TCP port taken after the UDP port":
				u, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: cfg.WebRTCUDPPort})
				if err != nil {
					t.Fatalf("the media UDP port is still bound: %v", err)
				}
				u.Close()
			}
			if cfg.Store == "sqlite" {
				// The store was closed: the same file serves a whole start again.
				cfg.WebRTCUDPPort, cfg.WebRTCTCPPort = 0, 0
				cfg.Addr = "127.0.0.1:0"
				a, err := newApp(ctx, cfg, quiet)
				if err != nil {
					t.Fatalf("the data dir does not open again: %v", err)
				}
				if err := a.cleanup.release(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// The first signal drains (the listener closes, an in-flight request is
// waited for); the second stops without waiting; serve then returns with
// everything released.
func TestSecondSignalForcesShutdown(t *testing.T) {
	httpPort, udpPort := freePorts(t)
	cfg := serveConfig{
		Addr: fmt.Sprintf("127.0.0.1:%d", httpPort), DataDir: t.TempDir(), Store: "sqlite", Demo: true, DemoPassword: "test-password",
		PageTimeout: time.Minute, PageReceiptTimeout: 15 * time.Second, Timezone: "Europe/London", LogLevel: "error",
		WebRTCUDPPort: udpPort, WebRTCListenIP: "127.0.0.1",
	}
	sigs := make(chan os.Signal, 3)
	exited := make(chan struct{})
	ctx, stop := drainThenForce(context.Background(), sigs, func() { close(exited) })
	defer stop()
	done := make(chan error, 1)
	var logs lockedBuffer
	go func() { done <- Run(ctx, forceOf(ctx), cfg, slog.New(slog.NewTextHandler(&logs, nil))) }()
	base := "http://" + cfg.Addr
	waitReady(t, base)

	// A request in flight: its headers never end.
	c, err := net.Dial("tcp", cfg.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n")); err != nil {
		t.Fatal(err)
	}
	sigs <- syscall.SIGTERM
	deadline := time.Now().Add(10 * time.Second)
	for {
		l, err := net.Dial("tcp", cfg.Addr)
		if err != nil {
			break // the listener is closed: draining
		}
		l.Close()
		if time.Now().After(deadline) {
			t.Fatal("the first signal did not close the listener")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("serve returned (%v) while a request was in flight and before the second signal", err)
	default:
	}
	sigs <- syscall.SIGINT
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve after the second signal: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the second signal did not stop serve")
	}
	// The request was cut off by the second signal, not ended by a timeout.
	if !strings.Contains(logs.String(), "http requests still running at the deadline; closing them") {
		t.Fatalf("the HTTP drain was not cut short; log:\n%s", logs.String())
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("the in-flight connection is still open")
	}
	u, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: udpPort})
	if err != nil {
		t.Fatalf("the media port is still bound after serve returned: %v", err)
	}
	u.Close()
	sigs <- syscall.SIGINT
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("a third signal did not exit")
	}
}

// lockedBuffer is a log sink safe for the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
