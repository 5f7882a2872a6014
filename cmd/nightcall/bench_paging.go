package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// benchPaging measures raise→page over loopback with n consultant sockets
// connected, beside a bare gorilla/websocket broadcast with no store.
func benchPaging(ctx context.Context, sockets, raises int, stdout io.Writer) error {
	dir, err := os.MkdirTemp("", "nightcall-bench-paging-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	bare, err := measureBare(ctx, sockets, raises)
	if err != nil {
		return fmt.Errorf("bare broadcast: %w", err)
	}
	full, err := measureNightcall(ctx, dir, sockets, raises)
	if err != nil {
		return fmt.Errorf("nightcall: %w", err)
	}
	fmt.Fprintf(stdout, "raise→page over loopback, %d sockets, %d raises, %s\n\n", sockets, raises, time.Now().UTC().Format(time.DateOnly))
	fmt.Fprintf(stdout, "%-44s %10s %10s %10s\n", "", "p50 ms", "p99 ms", "max ms")
	for _, r := range []struct {
		name string
		lat  []time.Duration
	}{{"bare gorilla broadcast, no store (baseline)", bare}, {"Nightcall raise → page (store, pager, hub)", full}} {
		slices.Sort(r.lat)
		fmt.Fprintf(stdout, "%-44s %10.2f %10.2f %10.2f\n", r.name, ms(pct(r.lat, 50)), ms(pct(r.lat, 99)), ms(r.lat[len(r.lat)-1]))
	}
	return nil
}

func pct(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted)*p+99)/100 - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// fanIn connects n sockets and returns a channel of (socket, receive time)
// for messages whose type is "page".
func fanIn(ctx context.Context, n int, dial func(i int) (*websocket.Conn, error)) (<-chan time.Time, func(), error) {
	got := make(chan time.Time, n*4)
	var conns []*websocket.Conn
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		c, err := dial(i)
		if err != nil {
			for _, c := range conns {
				c.Close()
			}
			return nil, nil, fmt.Errorf("socket %d: %w", i, err)
		}
		conns = append(conns, c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				_, data, err := c.ReadMessage()
				if err != nil {
					return
				}
				at := time.Now()
				if bytes.Contains(data, []byte(`"type":"page"`)) {
					select {
					case got <- at:
					case <-ctx.Done():
						return
					}
				}
			}
		}()
	}
	closeAll := func() {
		for _, c := range conns {
			c.Close()
		}
		wg.Wait()
	}
	return got, closeAll, nil
}

// collect waits for n receipts and returns their latencies from start.
func collect(got <-chan time.Time, n int, start time.Time) ([]time.Duration, error) {
	out := make([]time.Duration, 0, n)
	timeout := time.After(30 * time.Second)
	for len(out) < n {
		select {
		case at := <-got:
			out = append(out, at.Sub(start))
		case <-timeout:
			return nil, fmt.Errorf("only %d of %d sockets got the page within 30s", len(out), n)
		}
	}
	return out, nil
}

func measureBare(ctx context.Context, n, raises int) ([]time.Duration, error) {
	var mu sync.Mutex
	var conns []*websocket.Conn
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
	})
	mux.HandleFunc("POST /raise", func(w http.ResponseWriter, r *http.Request) {
		msg, _ := json.Marshal(map[string]any{"type": "page", "page_id": "p", "escalation": map[string]string{"id": "e"}})
		mu.Lock()
		for _, c := range conns {
			_ = c.WriteMessage(websocket.TextMessage, msg)
		}
		mu.Unlock()
		w.WriteHeader(http.StatusCreated)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	defer srv.Close()
	base := ln.Addr().String()
	got, closeAll, err := fanIn(ctx, n, func(int) (*websocket.Conn, error) {
		c, _, err := websocket.DefaultDialer.Dial("ws://"+base+"/ws", nil)
		return c, err
	})
	if err != nil {
		return nil, err
	}
	defer closeAll()
	for {
		mu.Lock()
		k := len(conns)
		mu.Unlock()
		if k >= n {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	var all []time.Duration
	for i := 0; i < raises; i++ {
		start := time.Now()
		resp, err := http.Post("http://"+base+"/raise", "application/json", strings.NewReader("{}"))
		if err != nil {
			return nil, err
		}
		resp.Body.Close()
		lat, err := collect(got, n, start)
		if err != nil {
			return nil, err
		}
		all = append(all, lat...)
	}
	return all, nil
}

func measureNightcall(ctx context.Context, dir string, n, raises int) ([]time.Duration, error) {
	cfg := serveConfig{Addr: "127.0.0.1:0", DataDir: dir, Store: "sqlite", Demo: true, DemoPassword: "bench",
		PageTimeout: 10 * time.Minute, PageReceiptTimeout: 10 * time.Minute, Timezone: "Europe/London", LogLevel: "error"}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	actx, stop := context.WithCancel(ctx)
	defer stop()
	a, err := newApp(actx, cfg, log)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- a.run(actx, ln) }()
	defer func() { stop(); <-done }()
	base := "http://" + ln.Addr().String()
	for !reachable(ln.Addr().String()) {
		time.Sleep(10 * time.Millisecond)
	}

	signIn := func(user string) (*http.Client, error) {
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
		resp, err := c.Post(base+"/api/v1/session", "application/json", strings.NewReader(`{"username":"`+user+`","password":"bench"}`))
		if err != nil {
			return nil, err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			return nil, fmt.Errorf("sign in %s: %d", user, resp.StatusCode)
		}
		return c, nil
	}
	dr, err := signIn("dr.okafor")
	if err != nil {
		return nil, err
	}
	nurse, err := signIn("night.rose")
	if err != nil {
		return nil, err
	}
	u, _ := url.Parse(base)
	h := http.Header{}
	for _, ck := range dr.Jar.Cookies(u) {
		h.Add("Cookie", ck.Name+"="+ck.Value)
	}
	got, closeAll, err := fanIn(ctx, n, func(i int) (*websocket.Conn, error) {
		c, _, err := websocket.DefaultDialer.Dial(fmt.Sprintf("ws%s/api/v1/pager?device=d%d", strings.TrimPrefix(base, "http"), i), h)
		return c, err
	})
	if err != nil {
		return nil, err
	}
	defer closeAll()
	for a.hub.Connections() < n {
		time.Sleep(10 * time.Millisecond)
	}
	post := func(path, body string) (map[string]any, error) {
		resp, err := nurse.Post(base+path, "application/json", strings.NewReader(body))
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
			return nil, err
		}
		if resp.StatusCode >= 300 {
			return nil, fmt.Errorf("%s: %d %v", path, resp.StatusCode, m)
		}
		return m, nil
	}
	raise := `{"resident_id":"rc-101","soft_signs":["not_themselves"],"sbard":{"situation":"bench"}}`
	var all []time.Duration
	for i := 0; i < raises; i++ {
		start := time.Now()
		esc, err := post("/api/v1/escalations", raise)
		if err != nil {
			return nil, err
		}
		lat, err := collect(got, n, start)
		if err != nil {
			return nil, err
		}
		all = append(all, lat...)
		if _, err := post("/api/v1/escalations/"+fmt.Sprint(esc["id"])+"/withdraw", `{"reason":"bench"}`); err != nil {
			return nil, err
		}
	}
	return all, nil
}
