package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func selfSigned(t *testing.T, dir, host string) (certPEM []byte) {
	t.Helper()
	var out bytes.Buffer
	if err := tlsCmd(context.Background(), []string{"self-signed", "--host", host, "--out", dir}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "Certificate Trust Settings") || !strings.Contains(out.String(), "--tls-cert") {
		t.Errorf("self-signed does not say how to trust and use it:\n%s", out.String())
	}
	b, err := os.ReadFile(filepath.Join(dir, "nightcall.crt"))
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(filepath.Join(dir, "nightcall.key")); st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", st.Mode().Perm())
	}
	return b
}

func servedSerial(t *testing.T, base string, roots *x509.CertPool) string {
	t.Helper()
	conn, err := tls.Dial("tcp", strings.TrimPrefix(base, "https://"), &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// TestTLSServesHTTP2WithHSTSAndPicksUpRenewal: `nightcall tls self-signed`
// makes a pair the server serves over HTTP/2 with HSTS and Secure cookies;
// a renewed pair on disk is served without a restart; the pager websocket
// works over TLS.
func TestTLSServesHTTP2WithHSTSAndPicksUpRenewal(t *testing.T) {
	dir := t.TempDir()
	first := selfSigned(t, dir, "127.0.0.1")
	s := startServer(t, func(c *serveConfig) {
		c.TLSCert, c.TLSKey = filepath.Join(dir, "nightcall.crt"), filepath.Join(dir, "nightcall.key")
	})
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(first)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}}
	resp, err := hc.Post(s.base+"/api/v1/session", "application/json", strings.NewReader(`{"username":"dr.okafor","password":"test-password"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 || resp.ProtoMajor != 2 {
		t.Fatalf("sign-in over TLS: %d over %s, want 204 over HTTP/2", resp.StatusCode, resp.Proto)
	}
	if hsts := resp.Header.Get("Strict-Transport-Security"); !strings.Contains(hsts, "max-age=") {
		t.Errorf("no HSTS over TLS: %q", hsts)
	}
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "nightcall_session" {
			session = c
		}
	}
	if session == nil || !session.Secure {
		t.Fatalf("session cookie over TLS is not Secure: %v", resp.Header.Values("Set-Cookie"))
	}
	// The pager websocket over TLS (HTTP/1.1 upgrade).
	d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: roots}, HandshakeTimeout: 5 * time.Second}
	ws, wresp, err := d.Dial(strings.Replace(s.base, "https://", "wss://", 1)+"/api/v1/pager",
		http.Header{"Cookie": {"nightcall_session=" + session.Value}, "Origin": {s.base}})
	if err != nil {
		t.Fatalf("pager over TLS: %v (%v)", err, wresp)
	}
	ws.Close()

	// Renewal: a new pair written in place is served without a restart.
	before := servedSerial(t, s.base, roots)
	renewDir := t.TempDir()
	second := selfSigned(t, renewDir, "127.0.0.1")
	for _, f := range []string{"nightcall.crt", "nightcall.key"} {
		b, _ := os.ReadFile(filepath.Join(renewDir, f))
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	roots.AppendCertsFromPEM(second)
	deadline := time.Now().Add(10 * time.Second)
	for servedSerial(t, s.base, roots) == before {
		if time.Now().After(deadline) {
			t.Fatal("the renewed certificate was not served within 10s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestServeFlagsRefuseHalfATLSPair(t *testing.T) {
	_, err := parseServe([]string{"--tls-cert", "x.crt"}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "--tls-cert and --tls-key go together") {
		t.Errorf("half a TLS pair: %v", err)
	}
	_, err = parseServe([]string{"--trusted-proxies", "10.0.0.0/8,nonsense"}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "nonsense") {
		t.Errorf("bad --trusted-proxies: %v", err)
	}
}

// TestTLSSelfSignedKeyIsPrivateOverAnOldFile: a key file left with a looser
// mode (an earlier pair copied by hand) is rewritten 0600 with the new key,
// not written into with its old mode kept.
func TestTLSSelfSignedKeyIsPrivateOverAnOldFile(t *testing.T) {
	dir := t.TempDir()
	keyPath := filepath.Join(dir, "nightcall.key")
	if err := os.WriteFile(keyPath, []byte("an old key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(keyPath, 0o644); err != nil {
		t.Fatal(err)
	}
	selfSigned(t, dir, "127.0.0.1") // checks the mode is 0600
	b, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("-----BEGIN PRIVATE KEY-----")) {
		t.Errorf("the key file does not hold the new key: %q", b[:min(len(b), 40)])
	}
}
