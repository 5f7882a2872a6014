package video

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/turn/v2"
)

const testTURNSecret = "test-turn-secret"

// freeTURNPort finds a port free for both UDP and TCP on 127.0.0.1.
func freeTURNPort(t *testing.T) int {
	t.Helper()
	for i := 0; i < 50; i++ {
		u, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := u.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", itoa(port)))
		u.Close()
		if err == nil {
			l.Close()
			return port
		}
	}
	t.Fatal("no port free for UDP and TCP")
	return 0
}

func itoa(n int) string { return strconv.Itoa(n) }

// startTURN runs a loopback SFU (one media port on 127.0.0.1) and the TURN
// server in front of it.
func startTURN(t *testing.T) (*SFU, *TURN) {
	t.Helper()
	sfu, err := New(Config{MuxUDP: true, ListenIP: "127.0.0.1", Interfaces: []string{"lo"}, IncludeLoopback: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sfu.Close() })
	srv, err := NewTURN(TURNConfig{Port: freeTURNPort(t), ListenIP: "127.0.0.1", Secret: testTURNSecret, SFU: sfu,
		RelayPortMin: 40000, RelayPortMax: 40999})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return sfu, srv
}

// turnClient allocates a relay over transport ("udp" or "tcp") with the
// given login.
func turnClient(t *testing.T, srv *TURN, transport, username, password string) (*turn.Client, net.PacketConn, error) {
	t.Helper()
	addr := net.JoinHostPort("127.0.0.1", itoa(srv.Port()))
	var conn net.PacketConn
	switch transport {
	case "udp":
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		conn = c
	case "tcp":
		c, err := net.Dial("tcp4", addr)
		if err != nil {
			t.Fatal(err)
		}
		conn = turn.NewSTUNConn(c)
	}
	t.Cleanup(func() { conn.Close() })
	c, err := turn.NewClient(&turn.ClientConfig{TURNServerAddr: addr, STUNServerAddr: addr, Conn: conn,
		Username: username, Password: password, Realm: "nightcall", RTO: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	relay, err := c.Allocate()
	if err == nil {
		t.Cleanup(func() { relay.Close() })
	}
	return c, relay, err
}

func TestTURNCredentials(t *testing.T) {
	_, srv := startTURN(t)
	good, err := NewTURNCredential(testTURNSecret, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	expired, _ := NewTURNCredential(testTURNSecret, time.Now().Add(-time.Minute))
	otherSecret, _ := NewTURNCredential("another-secret", time.Now().Add(time.Hour))
	for _, transport := range []string{"udp", "tcp"} {
		for _, c := range []struct {
			name, user, pass string
			ok               bool
		}{
			{"valid", good.Username, good.Credential, true},
			{"wrong credential", good.Username, "bm90IHRoZSBjcmVkZW50aWFs", false},
			{"minted with another secret", otherSecret.Username, otherSecret.Credential, false},
			{"expired", expired.Username, expired.Credential, false},
			{"not a REST username", "alice", TURNPassword(testTURNSecret, "alice"), false},
			{"expiry without an id", "9999999999:", TURNPassword(testTURNSecret, "9999999999:"), false},
		} {
			t.Run(transport+"/"+c.name, func(t *testing.T) {
				_, relay, err := turnClient(t, srv, transport, c.user, c.pass)
				if c.ok && err != nil {
					t.Fatalf("allocation refused: %v", err)
				}
				if !c.ok && err == nil {
					t.Fatalf("allocation granted at %v", relay.LocalAddr())
				}
				if c.ok {
					if port := relay.LocalAddr().(*net.UDPAddr).Port; port < 40000 || port > 40999 {
						t.Errorf("relay port %d outside the range", port)
					}
				}
			})
		}
	}
	st := srv.Stats()
	if st.Allocations[TURNOverUDP] != 1 || st.Allocations[TURNOverTCP] != 1 {
		t.Errorf("allocations %v, want one per transport", st.Allocations)
	}
	if st.AuthRefused < 4 {
		t.Errorf("auth refused %d times, want at least 4 (expired and malformed, both transports)", st.AuthRefused)
	}
}

func TestTURNRelaysOnlyToTheSFU(t *testing.T) {
	sfu, srv := startTURN(t)
	cred, _ := NewTURNCredential(testTURNSecret, time.Now().Add(time.Hour))
	_, relay, err := turnClient(t, srv, "udp", cred.Username, cred.Credential)
	if err != nil {
		t.Fatal(err)
	}
	// Another address on the host: the permission is refused.
	elsewhere, err := net.ListenPacket("udp4", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	defer elsewhere.Close()
	if _, err := relay.WriteTo([]byte("hello"), elsewhere.LocalAddr()); err == nil {
		t.Fatalf("a relay to %v was allowed", elsewhere.LocalAddr())
	}
	refused := srv.Stats().PeersRefused
	if refused == 0 {
		t.Fatal("the refused permission was not counted")
	}

	// The SFU's own IP but another port (another service on the host): the
	// permission is per IP, so the packet is dropped at the relay socket.
	sameHost, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer sameHost.Close()
	if _, err := relay.WriteTo([]byte("hello"), sameHost.LocalAddr()); err != nil {
		t.Fatalf("write to the SFU's IP: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for srv.Stats().PeersRefused == refused {
		if time.Now().After(deadline) {
			t.Fatal("the packet to another port of the SFU's host was not dropped")
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = sameHost.SetReadDeadline(time.Now())
	if n, _, err := sameHost.ReadFrom(make([]byte, 100)); err == nil {
		t.Fatalf("%d bytes reached a port that is not the SFU's", n)
	} else if ne := (net.Error)(nil); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read: %v", err)
	}
	if srv.Stats().BytesToPeers != 0 {
		t.Errorf("relayed %d bytes to peers, want none", srv.Stats().BytesToPeers)
	}

	// The SFU's media address is allowed.
	if len(sfu.MediaAddrs()) != 1 {
		t.Fatalf("media addresses %v, want one", sfu.MediaAddrs())
	}
	media := net.UDPAddrFromAddrPort(sfu.MediaAddrs()[0])
	if _, err := relay.WriteTo([]byte("hello"), media); err != nil {
		t.Fatalf("relay to the SFU %v: %v", media, err)
	}
	for srv.Stats().BytesToPeers == 0 {
		if time.Now().After(deadline) {
			t.Fatal("nothing relayed to the SFU")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestTURNConfigRefusesAnSFUWithoutOneMediaPort(t *testing.T) {
	sfu, err := New(Config{Interfaces: []string{"lo"}, IncludeLoopback: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sfu.Close()
	if _, err := NewTURN(TURNConfig{Port: freeTURNPort(t), Secret: "s", SFU: sfu}); !errors.Is(err, ErrNoMediaPort) {
		t.Fatalf("got %v, want ErrNoMediaPort", err)
	}
	if _, err := NewTURN(TURNConfig{Port: 3478, SFU: sfu, TLSPort: 5349}); err == nil || !strings.Contains(err.Error(), "Secret") || !strings.Contains(err.Error(), "TLS") {
		t.Fatalf("want every problem listed, got %v", err)
	}
}

func TestTURNUsernames(t *testing.T) {
	exp := time.Unix(1767225600, 0).UTC()
	c, err := NewTURNCredential("s", exp)
	if err != nil {
		t.Fatal(err)
	}
	got, id, err := ParseTURNUsername(c.Username)
	if err != nil || !got.Equal(exp) || id == "" || strings.Contains(id, ":") {
		t.Fatalf("round trip of %q: %v %q %v", c.Username, got, id, err)
	}
	if c.Credential != TURNPassword("s", c.Username) {
		t.Error("credential is not the HMAC of the username")
	}
	// The known answer, as coturn computes it: base64(HMAC-SHA1("s", "1767225600:x")).
	// (openssl dgst -sha1 -hmac s -binary | base64)
	if got := TURNPassword("s", "1767225600:x"); got != "oW5gDpGlmhdzeS3iooevVesFCkA=" {
		t.Errorf("HMAC-SHA1 of the fixed username: %s", got)
	}
	for _, bad := range []string{"", "x", ":", "12:", ":id", "-5:id", "abc:id", strings.Repeat("9", 200) + ":id"} {
		if _, _, err := ParseTURNUsername(bad); !errors.Is(err, ErrBadTURNUsername) {
			t.Errorf("%q: got %v", bad, err)
		}
	}
}

// testCert is a self-signed certificate for 127.0.0.1.
func testCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func TestTURNOverTLS(t *testing.T) {
	sfu, err := New(Config{MuxUDP: true, ListenIP: "127.0.0.1", Interfaces: []string{"lo"}, IncludeLoopback: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sfu.Close()
	cert, roots := testCert(t)
	srv, err := NewTURN(TURNConfig{Port: freeTURNPort(t), TLSPort: freeTURNPort(t), ListenIP: "127.0.0.1", Secret: testTURNSecret, SFU: sfu,
		TLS: &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	addr := net.JoinHostPort("127.0.0.1", itoa(srv.TLSPort()))
	raw, err := tls.Dial("tcp4", addr, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	conn := turn.NewSTUNConn(raw)
	defer conn.Close()
	cred, _ := NewTURNCredential(testTURNSecret, time.Now().Add(time.Hour))
	c, err := turn.NewClient(&turn.ClientConfig{TURNServerAddr: addr, STUNServerAddr: addr, Conn: conn,
		Username: cred.Username, Password: cred.Credential, Realm: "nightcall"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	relay, err := c.Allocate()
	if err != nil {
		t.Fatalf("allocation over TLS: %v", err)
	}
	defer relay.Close()
	if n := srv.Stats().Allocations[TURNOverTLS]; n != 1 {
		t.Errorf("%d TLS allocations, want 1", n)
	}
}
