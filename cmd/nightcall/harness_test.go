package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nightcall-health/nightcall/escalation"
)

// testServer is a whole Nightcall process in the test: a real SQLite file in
// a temp dir and a real HTTP listener on 127.0.0.1.
type testServer struct {
	t    testing.TB
	app  *app
	base string
	stop context.CancelFunc
	done chan error
	once sync.Once
}

// testServeConfig is the configuration the tests' services start from, on
// the embedded store in dir.
func testServeConfig(dir string) serveConfig {
	return serveConfig{
		Addr: "127.0.0.1:0", DataDir: dir, Store: "sqlite", Demo: true, DemoPassword: "test-password",
		PageTimeout: time.Minute, PageReceiptTimeout: 15 * time.Second, Timezone: "Europe/London", LogLevel: "info",
	}
}

func startServer(t testing.TB, opts ...func(*serveConfig)) *testServer {
	t.Helper()
	s := launchServer(t, opts...)
	waitReady(t, s.base)
	return s
}

// launchServer starts a service as startServer does without waiting for it
// to be ready.
func launchServer(t testing.TB, opts ...func(*serveConfig)) *testServer {
	t.Helper()
	cfg := testServeConfig(t.TempDir())
	for _, o := range opts {
		o(&cfg)
	}
	level := slog.LevelWarn
	if os.Getenv("NIGHTCALL_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, cancel := context.WithCancel(context.Background())
	a, err := newApp(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	scheme := "http://"
	if cfg.TLSCert != "" {
		scheme = "https://"
	}
	s := &testServer{t: t, app: a, base: scheme + ln.Addr().String(), stop: cancel, done: make(chan error, 1)}
	go func() { s.done <- a.run(ctx, ln) }()
	t.Cleanup(s.close)
	return s
}

func (s *testServer) close() { s.once.Do(s.shutdown) }

func (s *testServer) shutdown() {
	s.stop()
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		s.t.Errorf("server did not shut down within 20s; goroutines:\n%s", buf[:n])
	}
}

func waitReady(t testing.TB, base string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	get := http.Get
	if strings.HasPrefix(base, "https://") {
		// Readiness only: the TLS tests check the certificate themselves.
		get = (&http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}).Get // #nosec G402 -- test readiness poll on loopback
	}
	for time.Now().Before(deadline) {
		resp, err := get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s not ready within 20s", base)
}

// streamLen is the number of events in a resident's stream, read from the store.
func (s *testServer) streamLen(id string) int {
	s.t.Helper()
	evs, err := s.app.store.Load(context.Background(), escalation.ResidentStream(escalation.ResidentID(id)), 0)
	if err != nil {
		s.t.Fatalf("load %s: %v", id, err)
	}
	return len(evs)
}

// client is one browser-like user with its own cookie jar. Every request it
// makes, and every response, is validated against the OpenAPI document the
// server serves (openapi_test.go); a mismatch fails the test.
type client struct {
	t    testing.TB
	base string
	http *http.Client
}

func newClient(t testing.TB, base string) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, base: base, http: &http.Client{Jar: jar, Timeout: 30 * time.Second, Transport: newContractTransport(base, t.Errorf)}}
}

func (s *testServer) signedIn(username string) *client {
	c := newClient(s.t, s.base)
	c.signIn(username, "test-password")
	return c
}

func (c *client) signIn(username, password string) {
	c.t.Helper()
	resp := c.do("POST", "/api/v1/session", map[string]string{"username": username, "password": password})
	if resp.status != http.StatusNoContent {
		c.t.Fatalf("sign in %s: %d %s", username, resp.status, resp.body)
	}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response %d is not a JSON object: %s", r.status, r.body)
	}
	return m
}

func (r response) list(t testing.TB) []map[string]any {
	t.Helper()
	var m []map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response %d is not a JSON array: %s", r.status, r.body)
	}
	return m
}

// apiErr returns the error member of an error response.
func (r response) apiErr(t testing.TB) map[string]any {
	t.Helper()
	e, ok := r.json(t)["error"].(map[string]any)
	if !ok {
		t.Fatalf("response %d has no error object: %s", r.status, r.body)
	}
	return e
}

// do sends body (a string is sent as is, anything else as JSON) with
// optional header pairs.
func (c *client) do(method, path string, body any, headers ...string) response {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// raiseBody is the API.md example escalation for a resident.
func raiseBody(resident string) map[string]any {
	return map[string]any{
		"resident_id": resident,
		"observations": map[string]any{
			"respiration_rate": 22, "spo2": 93, "on_oxygen": false, "systolic_bp": 104,
			"pulse": 112, "consciousness": "A", "temperature": 38.4,
		},
		"soft_signs": []string{"breathless", "eating_drinking_less"},
		"sbard": map[string]string{
			"situation": "More breathless since 01:00", "background": "See care plan",
			"assessment": "Looks unwell", "recommendation": "Please review by video",
		},
	}
}

func str(v any) string { s, _ := v.(string); return s }

func newJSONRequest(method, url string, body any) (*http.Request, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequest(method, url, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	return req, nil
}

func decodeJSON(resp *http.Response, dst any) error {
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, dst)
}
