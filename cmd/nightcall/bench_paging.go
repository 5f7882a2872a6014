package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/escalation/account"
	"github.com/nightcall-health/nightcall/events/argon2id"
	"github.com/nightcall-health/nightcall/web"
)

// The paging and memory scenarios hold their websocket clients in a child
// process (`nightcall bench pager-clients`): one process cannot hold both
// ends of 10,000 sockets here, and the server's memory and CPU are then its
// own. The child stamps each page with the wall clock, which both processes
// share.

// pagerClients is the child: it dials n sockets to the URL (each "{i}"
// replaced by the socket's number), socket i with the i-th cookie of the
// cookies file (round and round: a user may hold only a few pager sockets),
// says "ready", then prints "page UNIXNANO" for each page received, until
// its standard input closes.
func pagerClients(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bench pager-clients", flag.ContinueOnError)
	u := fs.String("url", "", "websocket URL; {i} is the socket's number")
	n := fs.Int("n", 100, "sockets")
	cookieFile := fs.String("cookies", "", "a file of Cookie header values, one a line")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var cookies []string
	if *cookieFile != "" {
		b, err := os.ReadFile(*cookieFile)
		if err != nil {
			return err
		}
		cookies = strings.Fields(string(b))
	}
	dialer := *websocket.DefaultDialer
	dialer.HandshakeTimeout = 30 * time.Second
	got := make(chan int64, 4096)
	conns := make([]*websocket.Conn, *n)
	var next atomic.Int64
	errs := make(chan error, 32)
	var wg sync.WaitGroup
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= *n {
					return
				}
				h := http.Header{}
				if len(cookies) > 0 {
					h.Set("Cookie", cookies[i%len(cookies)])
				}
				c, _, err := dialer.DialContext(ctx, strings.ReplaceAll(*u, "{i}", strconv.Itoa(i)), h)
				if err != nil {
					errs <- fmt.Errorf("socket %d: %w", i, err)
					return
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	for _, c := range conns {
		go func() {
			for {
				_, data, err := c.ReadMessage()
				if err != nil {
					return
				}
				switch {
				case bytes.Contains(data, []byte(`"type":"page"`)):
					got <- time.Now().UnixNano()
				case bytes.Contains(data, []byte(`"type":"page_cancelled"`)):
					got <- -time.Now().UnixNano() // a cancel: negative
				}
			}
		}()
	}
	w := bufio.NewWriter(stdout)
	fmt.Fprintln(w, "ready")
	w.Flush()
	done := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); close(done) }()
	for {
		select {
		case at := <-got:
			if at < 0 {
				fmt.Fprintf(w, "cancel %d\n", -at)
			} else {
				fmt.Fprintf(w, "page %d\n", at)
			}
			if len(got) == 0 {
				w.Flush()
			}
		case <-done:
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

// clientProc is a running pager-clients child.
type clientProc struct {
	cmd   *exec.Cmd
	stdin io.Closer
	pages chan time.Time
	// cancels has one value per page_cancelled frame received.
	cancels chan struct{}
}

// startClients starts the child with n sockets to u and waits until they
// are all connected.
func startClients(ctx context.Context, u string, n int, cookieFile string) (*clientProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, exe, "bench", "pager-clients", "-url", u, "-n", strconv.Itoa(n), "-cookies", cookieFile)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &clientProc{cmd: cmd, stdin: stdin, pages: make(chan time.Time, 1<<16), cancels: make(chan struct{}, 1<<16)}
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(out)
		isReady := false
		for sc.Scan() {
			line := sc.Text()
			if line == "ready" {
				isReady = true
				ready <- nil
				continue
			}
			if strings.HasPrefix(line, "cancel ") {
				p.cancels <- struct{}{}
				continue
			}
			if ns, ok := strings.CutPrefix(line, "page "); ok {
				if v, err := strconv.ParseInt(ns, 10, 64); err == nil {
					p.pages <- time.Unix(0, v)
				}
			}
		}
		if !isReady {
			ready <- errors.New("the clients stopped before they were connected")
		}
	}()
	select {
	case err := <-ready:
		if err != nil {
			p.stop()
			return nil, err
		}
	case <-time.After(5 * time.Minute):
		p.stop()
		return nil, errors.New("the clients were not connected within 5 minutes")
	}
	return p, nil
}

func (p *clientProc) stop() {
	p.stdin.Close()
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

// awaitCancels waits for n page_cancelled frames.
func (p *clientProc) awaitCancels(n int) error {
	timeout := time.After(60 * time.Second)
	for got := 0; got < n; got++ {
		select {
		case <-p.cancels:
		case <-timeout:
			return fmt.Errorf("only %d of %d sockets got the cancellation within 60s", got, n)
		}
	}
	return nil
}

// collect waits for n pages and returns their latencies from start.
func (p *clientProc) collect(n int, start time.Time) ([]time.Duration, error) {
	out := make([]time.Duration, 0, n)
	timeout := time.After(60 * time.Second)
	for len(out) < n {
		select {
		case at := <-p.pages:
			out = append(out, at.Sub(start))
		case <-timeout:
			return nil, fmt.Errorf("only %d of %d sockets got the page within 60s", len(out), n)
		}
	}
	return out, nil
}

// bareServer is the baseline: gorilla/websocket with its defaults, one
// reading goroutine per socket, and a POST that writes one message to each.
type bareServer struct {
	mu    sync.Mutex
	conns []*websocket.Conn
	base  string
	srv   *http.Server
}

func startBare() (*bareServer, error) {
	b := &bareServer{}
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		b.mu.Lock()
		b.conns = append(b.conns, c)
		b.mu.Unlock()
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("POST /raise", func(w http.ResponseWriter, r *http.Request) {
		msg, _ := json.Marshal(map[string]any{"type": "page", "page_id": "p", "escalation": map[string]string{"id": "e"}})
		b.mu.Lock()
		for _, c := range b.conns {
			_ = c.WriteMessage(websocket.TextMessage, msg)
		}
		b.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b.srv = &http.Server{Handler: mux}
	go b.srv.Serve(ln)
	b.base = ln.Addr().String()
	return b, nil
}

func (b *bareServer) connections() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.conns)
}

func (b *bareServer) close() {
	b.mu.Lock()
	for _, c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
	b.srv.Close()
}

// benchApp is a Nightcall instance on a fresh data directory (demo data),
// with a signed-in nurse and, for the sockets, consultants enough that none
// holds more than web.MaxSocketsPerUser pager sockets, all on the first
// rota level, so that one page reaches every socket.
type benchApp struct {
	a        *app
	base     string
	nurse    *http.Client
	cookies  string // a file of the consultants' cookies
	stop     func()
	pagerURL string
}

// startBenchApp starts an instance on SQLite and prepares it for sockets.
func startBenchApp(ctx context.Context, dir string, sockets int) (*benchApp, error) {
	b, err := startBenchInstance(ctx, dir, nil)
	if err != nil {
		return nil, err
	}
	if err := b.prepare(ctx, b, dir, sockets); err != nil {
		b.stop()
		return nil, err
	}
	return b, nil
}

// startBenchInstance starts an instance (demo data) with the bench's
// settings, changed by mod when not nil, and waits until it answers.
func startBenchInstance(ctx context.Context, dir string, mod func(*serveConfig)) (*benchApp, error) {
	cfg := serveConfig{Addr: "127.0.0.1:0", DataDir: dir, Store: "sqlite", Demo: true, DemoPassword: "bench",
		PageTimeout: 10 * time.Minute, PageReceiptTimeout: 10 * time.Minute, Timezone: "Europe/London", LogLevel: "error"}
	if mod != nil {
		mod(&cfg)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	actx, stop := context.WithCancel(ctx)
	a, err := newApp(actx, cfg, log)
	if err != nil {
		stop()
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		stop()
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- a.run(actx, ln) }()
	b := &benchApp{a: a, base: "http://" + ln.Addr().String(), stop: func() { stop(); <-done }}
	if err := benchWait("the service to answer", 30*time.Second, func() bool { return reachable(ln.Addr().String()) }); err != nil {
		b.stop()
		return nil, err
	}
	return b, nil
}

// signIn signs user in on b.
func (b *benchApp) signIn(user string) (*http.Client, error) {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 60 * time.Second}
	resp, err := c.Post(b.base+"/api/v1/session", "application/json", strings.NewReader(`{"username":"`+user+`","password":"bench"}`))
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return nil, fmt.Errorf("sign in %s: %d", user, resp.StatusCode)
	}
	return c, nil
}

// prepare signs the nurse in on b, and creates the consultants for sockets
// sockets, puts them on the rota's first level and signs them in on
// sockets' instance (b itself, or another instance on the same store), whose
// pager URL and cookies the clients then use.
func (b *benchApp) prepare(ctx context.Context, on *benchApp, dir string, sockets int) error {
	var err error
	if b.nurse, err = b.signIn("night.rose"); err != nil {
		return err
	}
	users := (sockets + web.MaxSocketsPerUser - 1) / web.MaxSocketsPerUser
	hash, err := argon2id.Hash("bench")
	if err != nil {
		return err
	}
	level := make([]escalation.Username, users)
	for i := range level {
		level[i] = escalation.Username(fmt.Sprintf("bench.c%05d", i))
		if err := b.a.store.CreateUser(ctx, account.Account{Username: level[i], Name: "Bench consultant", Role: escalation.RoleConsultant, PasswordHash: hash}); err != nil {
			return fmt.Errorf("bench consultant: %w", err)
		}
	}
	admin := escalation.Meta{Actor: escalation.Actor{Person: escalation.Person{Username: "bench"}, Role: escalation.RoleAdmin}}
	if _, err := b.a.service.SetStanding(ctx, admin, [][]escalation.Username{level}, func(context.Context, escalation.Username) (bool, error) { return true, nil }); err != nil {
		return fmt.Errorf("bench rota: %w", err)
	}
	u, _ := url.Parse(on.base)
	cookies := make([]string, users)
	var next atomic.Int64
	errs := make(chan error, 4)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ { // sign-ins hash: a few at a time
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= users {
					return
				}
				c, err := on.signIn(string(level[i]))
				if err != nil {
					errs <- err
					return
				}
				var parts []string
				for _, ck := range c.Jar.Cookies(u) {
					parts = append(parts, ck.Name+"="+ck.Value)
				}
				cookies[i] = strings.Join(parts, ";")
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	on.cookies = benchDir(dir, "cookies.txt")
	if err := os.WriteFile(on.cookies, []byte(strings.Join(cookies, "\n")), 0o600); err != nil {
		return err
	}
	on.pagerURL = "ws" + strings.TrimPrefix(on.base, "http") + "/api/v1/pager?device=d{i}"
	return nil
}

func (b *benchApp) post(path, body string) (map[string]any, error) {
	resp, err := b.nurse.Post(b.base+path, "application/json", strings.NewReader(body))
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

// benchWait polls cond until it holds or the deadline passes.
func benchWait(what string, d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not within %v", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// benchPagingScenario: raise → page over loopback to every connected
// consultant socket (a durable raise, the pager's decision and durable page,
// the hub's fan-out), beside a bare gorilla broadcast with no store, both
// with the same number of sockets held by a child process.
func benchPagingScenario(ctx context.Context, env *benchEnv) ([]benchResult, error) {
	n, raises := env.sizes.Sockets, env.sizes.Raises
	bare, err := startBare()
	if err != nil {
		return nil, err
	}
	// The CPU time of this process (the server; the clients are the
	// child's) while raising, per raise.
	var bareCPU, fullCPU time.Duration
	bareLat, err := func() ([]time.Duration, error) {
		defer bare.close()
		p, err := startClients(ctx, "ws://"+bare.base+"/ws", n, "")
		if err != nil {
			return nil, err
		}
		defer p.stop()
		if err := benchWait("bare sockets", time.Minute, func() bool { return bare.connections() >= n }); err != nil {
			return nil, err
		}
		var all []time.Duration
		cpu0 := processCPU()
		defer func() { bareCPU = processCPU() - cpu0 }()
		for i := 0; i < raises; i++ {
			start := time.Now()
			resp, err := http.Post("http://"+bare.base+"/raise", "application/json", strings.NewReader("{}"))
			if err != nil {
				return nil, err
			}
			resp.Body.Close()
			lat, err := p.collect(n, start)
			if err != nil {
				return nil, err
			}
			all = append(all, lat...)
		}
		return all, nil
	}()
	if err != nil {
		return nil, fmt.Errorf("bare broadcast: %w", err)
	}
	fullLat, err := func() ([]time.Duration, error) {
		b, err := startBenchApp(ctx, benchDir(env.dir, "paging"), n)
		if err != nil {
			return nil, err
		}
		defer b.stop()
		p, err := startClients(ctx, b.pagerURL, n, b.cookies)
		if err != nil {
			return nil, err
		}
		defer p.stop()
		if err := benchWait("pager sockets", time.Minute, func() bool { return b.a.hub.Connections() >= n }); err != nil {
			return nil, err
		}
		stopProfile, err := startPagingProfile()
		if err != nil {
			return nil, err
		}
		defer stopProfile()
		cpu0 := processCPU()
		defer func() { fullCPU = processCPU() - cpu0 }()
		return b.raiseAndCollect(p, n, raises)
	}()
	if err != nil {
		return nil, fmt.Errorf("nightcall: %w", err)
	}
	bareFirst, fullFirst := firsts(bareLat, n), firsts(fullLat, n)
	slices.Sort(bareLat)
	slices.Sort(fullLat)
	p99, base99 := ms(pct(fullLat, 99)), ms(pct(bareLat, 99))
	r := result("paging", fmt.Sprintf("raise → page, %d sockets, p99", n), "ms", p99, "bare gorilla broadcast p99", base99,
		"p99 ≤ 25 ms and ≤ 1.5× bare, at 10,000 sockets", met(p99 <= 25 && p99 <= 1.5*base99))
	r.Params = map[string]any{"sockets": n, "raises": raises, "deliveries": len(fullLat)}
	r.Extra = map[string]float64{"p50_ms": ms(pct(fullLat, 50)), "max_ms": ms(fullLat[len(fullLat)-1]),
		"baseline_p50_ms": ms(pct(bareLat, 50)), "baseline_max_ms": ms(bareLat[len(bareLat)-1]),
		"first_p50_ms": ms(pct(fullFirst, 50)), "baseline_first_p50_ms": ms(pct(bareFirst, 50)),
		"server_cpu_ms_per_raise": ms(fullCPU / time.Duration(raises)), "baseline_server_cpu_ms_per_raise": ms(bareCPU / time.Duration(raises))}
	return []benchResult{r}, nil
}

// processCPU is the CPU time (user and system) this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// firsts returns, sorted, the first socket's latency of each raise, from
// lat as collected (n sockets' latencies per raise, in arrival order): the
// path to the first frame, without the fan-out to the others.
func firsts(lat []time.Duration, n int) []time.Duration {
	var out []time.Duration
	for i := 0; i < len(lat); i += n {
		out = append(out, slices.Min(lat[i:min(i+n, len(lat))]))
	}
	slices.Sort(out)
	return out
}

// raiseAndCollect raises (as b's nurse) and withdraws an escalation raises
// times, and returns the latency of each of the n sockets' pages.
func (b *benchApp) raiseAndCollect(p *clientProc, n, raises int) ([]time.Duration, error) {
	raise := `{"resident_id":"rc-101","soft_signs":["not_themselves"],"sbard":{"situation":"bench"}}`
	var all []time.Duration
	for i := 0; i < raises; i++ {
		for len(p.cancels) > 0 { // none left over to end the next wait early
			<-p.cancels
		}
		start := time.Now()
		esc, err := b.post("/api/v1/escalations", raise)
		if err != nil {
			return nil, err
		}
		lat, err := p.collect(n, start)
		if err != nil {
			return nil, err
		}
		all = append(all, lat...)
		if _, err := b.post("/api/v1/escalations/"+fmt.Sprint(esc["id"])+"/withdraw", `{"reason":"bench"}`); err != nil {
			return nil, err
		}
		// The next raise is measured alone, as the baseline's broadcasts
		// are: not while this one's cancellation is still being written to
		// every socket.
		if err := p.awaitCancels(n); err != nil {
			return nil, err
		}
	}
	return all, nil
}

// pagingProfileEnv names a directory: when set, the paging scenario writes
// pprof profiles of the server while it raises and pages (not while the
// sockets connect, nor during the baseline): cpu.pprof, allocs.pprof (with
// allocs-base.pprof to diff against), mutex.pprof, block.pprof and
// trace.out (go tool trace).
const pagingProfileEnv = "NIGHTCALL_BENCH_PAGING_PROFILE"

// startPagingProfile starts the profiles pagingProfileEnv asks for and
// returns what writes them.
func startPagingProfile() (func(), error) {
	dir := os.Getenv(pagingProfileEnv)
	if dir == "" {
		return func() {}, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	write := func(name string, f func(io.Writer) error) {
		out, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return
		}
		defer out.Close()
		_ = f(out)
	}
	lookup := func(name string) func(io.Writer) error {
		return func(w io.Writer) error { return pprof.Lookup(name).WriteTo(w, 0) }
	}
	runtime.GC()
	write("allocs-base.pprof", lookup("allocs"))
	runtime.SetMutexProfileFraction(5)
	runtime.SetBlockProfileRate(int(10 * time.Microsecond))
	cpu, err := os.Create(filepath.Join(dir, "cpu.pprof"))
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(cpu); err != nil {
		cpu.Close()
		return nil, err
	}
	tr, err := os.Create(filepath.Join(dir, "trace.out"))
	if err != nil {
		return nil, err
	}
	if err := trace.Start(tr); err != nil {
		tr.Close()
		tr = nil
	}
	return func() {
		if tr != nil {
			trace.Stop()
			tr.Close()
		}
		pprof.StopCPUProfile()
		cpu.Close()
		write("allocs.pprof", lookup("allocs"))
		write("mutex.pprof", lookup("mutex"))
		write("block.pprof", lookup("block"))
		runtime.SetMutexProfileFraction(0)
		runtime.SetBlockProfileRate(0)
	}, nil
}

func benchDir(dir, name string) string { return dir + string(os.PathSeparator) + name }

// memSample is the process's memory at one instant, after a collection.
type memSample struct {
	heap, stack, rss uint64
	goroutines       int
}

// memNow is the Go memory in use (heap spans and stacks) after a collection.
func memNow() memSample {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	s := memSample{heap: m.HeapInuse, stack: m.StackInuse, goroutines: runtime.NumGoroutine()}
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 1 {
			if pages, err := strconv.ParseUint(f[1], 10, 64); err == nil {
				s.rss = pages * uint64(os.Getpagesize())
			}
		}
	}
	return s
}

// perSocket is the growth from a to b per socket: Go heap + stacks, the
// heap and the stacks alone (KiB), RSS (KiB) and goroutines.
func perSocket(a, b memSample, n int) (goMem, heap, stack, rss, goroutines float64) {
	d := func(x, y uint64) float64 { return float64(int64(y)-int64(x)) / float64(n) / 1024 }
	return d(a.heap+a.stack, b.heap+b.stack), d(a.heap, b.heap), d(a.stack, b.stack), d(a.rss, b.rss),
		float64(b.goroutines-a.goroutines) / float64(n)
}

// benchMemoryScenario: the server's memory per idle pager socket (Go heap
// and stacks, after a collection, before and after the sockets connect),
// beside a gorilla/websocket server with its default buffers and one
// reading goroutine per socket.
func benchMemoryScenario(ctx context.Context, env *benchEnv) ([]benchResult, error) {
	n := env.sizes.MemSockets
	type perSock struct{ goMem, heap, stack, rss, goroutines float64 }
	measure := func(start func() (string, string, func() int, func(), error)) (perSock, error) {
		var ps perSock
		u, cookie, count, stop, err := start()
		if err != nil {
			return ps, err
		}
		defer stop()
		m0 := memNow()
		p, err := startClients(ctx, u, n, cookie)
		if err != nil {
			return ps, err
		}
		defer p.stop()
		if err := benchWait("idle sockets", time.Minute, func() bool { return count() >= n }); err != nil {
			return ps, err
		}
		time.Sleep(time.Second) // let the sockets' first messages go out and their buffers be released
		m1 := memNow()
		if heapProfile != "" && cookie != "" {
			if f, err := os.Create(heapProfile); err == nil {
				_ = pprof.WriteHeapProfile(f)
				f.Close()
			}
		}
		ps.goMem, ps.heap, ps.stack, ps.rss, ps.goroutines = perSocket(m0, m1, n)
		return ps, nil
	}
	bare, err := measure(func() (string, string, func() int, func(), error) {
		b, err := startBare()
		if err != nil {
			return "", "", nil, nil, err
		}
		return "ws://" + b.base + "/ws", "", b.connections, b.close, nil
	})
	if err != nil {
		return nil, fmt.Errorf("bare: %w", err)
	}
	full, err := measure(func() (string, string, func() int, func(), error) {
		b, err := startBenchApp(ctx, benchDir(env.dir, "memory"), n)
		if err != nil {
			return "", "", nil, nil, err
		}
		return b.pagerURL, b.cookies, b.a.hub.Connections, b.stop, nil
	})
	if err != nil {
		return nil, fmt.Errorf("nightcall: %w", err)
	}
	r := result("memory", fmt.Sprintf("memory per idle pager socket, %d sockets (Go heap + stacks)", n), "KiB", full.goMem,
		"gorilla defaults", bare.goMem, "≤ 16 KiB", met(full.goMem <= 16))
	r.Params = map[string]any{"sockets": n}
	r.Extra = map[string]float64{"heap_kib": full.heap, "stack_kib": full.stack, "rss_kib": full.rss, "goroutines": full.goroutines,
		"baseline_heap_kib": bare.heap, "baseline_stack_kib": bare.stack, "baseline_rss_kib": bare.rss, "baseline_goroutines": bare.goroutines}
	return []benchResult{r}, nil
}
