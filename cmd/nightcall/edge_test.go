package main

import (
	"net"
	"net/http"
	"net/http/cookiejar"
	"runtime/metrics"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fromAddr is a client whose connections leave from a given loopback address.
func fromAddr(t *testing.T, base, ip string) *client {
	c := newClient(t, base)
	jar, _ := cookiejar.New(nil)
	c.http = &http.Client{Jar: jar, Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}).DialContext,
	}}
	return c
}

// TestSignInFloodCannotExhaustTheService: 64 parallel wrong passwords for one
// account are refused before argon2 once the limit is taken; the heap stays
// small, and the owner signs in from another address at once.
func TestSignInFloodCannotExhaustTheService(t *testing.T) {
	s := startServer(t)
	attacker, owner := fromAddr(t, s.base, "127.0.0.3"), fromAddr(t, s.base, "127.0.0.1")

	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var peak atomic.Uint64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		for {
			metrics.Read(sample)
			if v := sample[0].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()

	var checked, limited, other atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r := attacker.do("POST", "/api/v1/session", map[string]string{"username": "dr.okafor", "password": "wrong-password"})
			switch {
			case r.status == 401:
				checked.Add(1)
			case r.status == 429 && r.header.Get("Retry-After") != "":
				limited.Add(1)
			default:
				other.Add(1)
				t.Errorf("flood answer %d %s", r.status, r.body)
			}
		}()
	}
	close(start)
	wg.Wait()
	close(stop)
	sampler.Wait()
	if checked.Load() > 10 || checked.Load() == 0 {
		t.Errorf("%d wrong passwords were checked, want 1–10 (the rest 429)", checked.Load())
	}
	if limited.Load() != 64-checked.Load()-other.Load() {
		t.Errorf("%d refused with 429, want %d", limited.Load(), 64-checked.Load())
	}
	if p := peak.Load(); p > 200<<20 {
		t.Errorf("heap peaked at %d MiB during the flood, want under 200 MiB", p>>20)
	}
	t.Logf("flood: %d checked, %d refused 429, heap peak %d MiB", checked.Load(), limited.Load(), peak.Load()>>20)
	owner.signIn("dr.okafor", "test-password")
}

// TestTrustedProxyDecidesClientAndScheme: behind a trusted proxy the cookie is
// Secure, HSTS is sent and limits apply per real client; from an untrusted
// peer the forwarded headers change nothing.
func TestTrustedProxyDecidesClientAndScheme(t *testing.T) {
	s := startServer(t, func(c *serveConfig) { c.TrustedProxies = "127.0.0.2/32" })
	proxy := fromAddr(t, s.base, "127.0.0.2")
	direct := fromAddr(t, s.base, "127.0.0.1")
	fwd := func(c *client, clientIP, password string) response {
		return c.do("POST", "/api/v1/session", map[string]string{"username": "dr.patel", "password": password},
			"X-Forwarded-For", clientIP, "X-Forwarded-Proto", "https")
	}
	// Through the proxy, for an HTTPS client: Secure cookie and HSTS.
	r := fwd(proxy, "198.51.100.1", "test-password")
	if r.status != 204 {
		t.Fatalf("sign-in through the proxy: %d %s", r.status, r.body)
	}
	if c := sessionCookieOf(r); c == nil || !c.Secure {
		t.Errorf("cookie through a trusted proxy for an https client is not Secure: %v", r.header.Values("Set-Cookie"))
	}
	if r.header.Get("Strict-Transport-Security") == "" {
		t.Error("no HSTS for an https client behind a trusted proxy")
	}
	// Limits per real client: ten failures for one client behind the proxy
	// do not limit another client behind the same proxy.
	for i := 0; i < 10; i++ {
		if r := fwd(proxy, "198.51.100.7", "wrong"); r.status != 401 {
			t.Fatalf("failure %d: %d", i, r.status)
		}
	}
	if r := fwd(proxy, "198.51.100.7", "wrong"); r.status != 429 {
		t.Errorf("11th failure of one client behind the proxy: %d, want 429", r.status)
	}
	if r := fwd(proxy, "198.51.100.8", "wrong"); r.status != 401 {
		t.Errorf("another client behind the same proxy: %d, want 401 (not limited)", r.status)
	}
	// From an untrusted peer the headers change nothing: no Secure cookie,
	// no HSTS, and rotating X-Forwarded-For does not escape the limit.
	r = fwd(direct, "203.0.113.1", "test-password")
	if c := sessionCookieOf(r); r.status != 204 || c == nil || c.Secure {
		t.Errorf("untrusted peer claiming https: %d, cookie %v", r.status, r.header.Values("Set-Cookie"))
	}
	if r.header.Get("Strict-Transport-Security") != "" {
		t.Error("HSTS sent to a plain-HTTP client that claimed https")
	}
	for i := 0; i < 10; i++ {
		fwd(direct, "203.0.113."+strconv.Itoa(10+i), "wrong")
	}
	if r := fwd(direct, "203.0.113.99", "wrong"); r.status != 429 {
		t.Errorf("an untrusted peer escaped the limit by rotating X-Forwarded-For: %d", r.status)
	}
	// Security headers on every answer.
	h := direct.do("GET", "/api/v1/me", nil).header
	for k, want := range map[string]string{"Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff",
		"Permissions-Policy": "camera=(self), microphone=(self), geolocation=(), payment=(), usb=()"} {
		if h.Get(k) != want {
			t.Errorf("%s: %q, want %q", k, h.Get(k), want)
		}
	}
}

func sessionCookieOf(r response) *http.Cookie {
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == "nightcall_session" {
			return c
		}
	}
	return nil
}
