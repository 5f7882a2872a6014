package main

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/hkdf"
)

// pushService is a Web Push service on 127.0.0.1 (RFC 8030) that holds the
// server to RFC 8291 and 8292: each push must carry a VAPID JWT signed
// (ES256) with the server's public key, for this endpoint's origin, expiring
// within 24 hours, with a subject; `Content-Encoding: aes128gcm`,
// `Urgency: high` and a TTL no longer than the page timeout. It decrypts
// every payload with the subscription's private key and auth secret, as a
// browser would, and hands the plaintext to the test.
type pushService struct {
	t      testing.TB
	srv    *httptest.Server
	maxTTL int

	mu        sync.Mutex
	vapidKey  *ecdsa.PublicKey
	vapidRaw  string
	subs      map[string]*pushSub
	received  chan pushed
	hangStop  chan struct{}
	stopOnce  sync.Once
	requests  map[string]int
	hangsOpen int
}

// pushSub is one device: its key pair and auth secret, and how its endpoint
// answers.
type pushSub struct {
	name    string
	priv    *ecdh.PrivateKey
	auth    []byte
	answers []int // statuses to answer, in turn; the last repeats. 0 means hang.
}

// pushed is one push the service accepted, decrypted.
type pushed struct {
	sub     string
	at      time.Time
	payload map[string]any
	raw     string
	ttl     int
	topic   string
}

func newPushService(t testing.TB, maxTTL time.Duration) *pushService {
	p := &pushService{t: t, maxTTL: int(maxTTL / time.Second), subs: map[string]*pushSub{}, received: make(chan pushed, 1024),
		hangStop: make(chan struct{}), requests: map[string]int{}}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(func() { p.stopHanging(); p.srv.Close() })
	return p
}

// host is the service's host:port, for --push-allowed-hosts.
func (p *pushService) host() string { return strings.TrimPrefix(p.srv.URL, "http://") }

func (p *pushService) stopHanging() { p.stopOnce.Do(func() { close(p.hangStop) }) }

// trust sets the VAPID public key (base64url, uncompressed) pushes must be signed with.
func (p *pushService) trust(raw string) {
	b, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil || len(b) != 65 {
		p.t.Fatalf("VAPID public key %q: %v", raw, err)
	}
	key, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), b)
	if err != nil {
		p.t.Fatalf("VAPID public key %q is not a P-256 point: %v", raw, err)
	}
	p.mu.Lock()
	p.vapidKey = key
	p.vapidRaw = raw
	p.mu.Unlock()
}

// subscribe makes a device's subscription whose endpoint answers with
// statuses in turn (default 201; 0 hangs until the test ends).
func (p *pushService) subscribe(name string, answers ...int) (*pushSub, map[string]any) {
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		p.t.Fatal(err)
	}
	auth := make([]byte, 16)
	_, _ = rand.Read(auth)
	if len(answers) == 0 {
		answers = []int{http.StatusCreated}
	}
	s := &pushSub{name: name, priv: priv, auth: auth, answers: answers}
	p.mu.Lock()
	p.subs[name] = s
	p.mu.Unlock()
	return s, map[string]any{
		"endpoint":       p.srv.URL + "/push/" + name,
		"expirationTime": nil,
		"keys": map[string]string{
			"p256dh": base64.RawURLEncoding.EncodeToString(priv.PublicKey().Bytes()),
			"auth":   base64.RawURLEncoding.EncodeToString(auth),
		},
	}
}

// requestsTo counts the pushes the endpoint got (answered or not).
func (p *pushService) requestsTo(name string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests[name]
}

// hanging counts requests held open now.
func (p *pushService) hanging() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hangsOpen
}

// next waits for the next accepted push to sub ("" for any) within d.
func (p *pushService) next(sub string, d time.Duration) pushed {
	p.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case m := <-p.received:
			if sub == "" || m.sub == sub {
				return m
			}
		case <-deadline:
			p.t.Fatalf("no push to %q within %v", sub, d)
			return pushed{}
		}
	}
}

func (p *pushService) serve(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/push/")
	p.mu.Lock()
	s := p.subs[name]
	p.requests[name]++
	n := p.requests[name]
	p.mu.Unlock()
	if s == nil || r.Method != http.MethodPost {
		http.NotFound(w, r)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<10))
	if err != nil {
		http.Error(w, "read", http.StatusBadRequest)
		return
	}
	ttl, err := p.check(r)
	if err != nil {
		p.t.Errorf("push to %s breaks RFC 8030/8292: %v", name, err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	plain, err := decryptAES128GCM(body, s.priv, s.auth)
	if err != nil {
		p.t.Errorf("push to %s does not decrypt (RFC 8291): %v", name, err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	status := s.answers[min(n, len(s.answers))-1]
	if status == 0 {
		p.mu.Lock()
		p.hangsOpen++
		p.mu.Unlock()
		select { // a push service that never answers
		case <-p.hangStop:
		case <-r.Context().Done():
		}
		p.mu.Lock()
		p.hangsOpen--
		p.mu.Unlock()
		return
	}
	if status == http.StatusCreated {
		var m map[string]any
		if err := json.Unmarshal(plain, &m); err != nil {
			p.t.Errorf("push payload is not JSON: %q", plain)
		}
		p.received <- pushed{sub: name, at: time.Now(), payload: m, raw: string(plain), ttl: ttl, topic: r.Header.Get("Topic")}
		w.Header().Set("Location", "/message/"+strconv.Itoa(n))
	}
	w.WriteHeader(status)
}

// check holds a request to the headers RFC 8030 and 8292 require.
func (p *pushService) check(r *http.Request) (int, error) {
	if ce := r.Header.Get("Content-Encoding"); ce != "aes128gcm" {
		return 0, fmt.Errorf("Content-Encoding %q, want aes128gcm", ce)
	}
	if u := r.Header.Get("Urgency"); u != "high" {
		return 0, fmt.Errorf("Urgency %q, want high", u)
	}
	ttl, err := strconv.Atoi(r.Header.Get("TTL"))
	if err != nil || ttl < 0 {
		return 0, fmt.Errorf("TTL %q is not a number of seconds", r.Header.Get("TTL"))
	}
	if p.maxTTL > 0 && ttl > p.maxTTL {
		return 0, fmt.Errorf("TTL %d is longer than the page timeout (%d s)", ttl, p.maxTTL)
	}
	auth := r.Header.Get("Authorization")
	rest, ok := strings.CutPrefix(auth, "vapid ")
	if !ok {
		return 0, fmt.Errorf("Authorization %q is not vapid", auth)
	}
	var jwt, k string
	for _, part := range strings.Split(rest, ",") {
		part = strings.TrimSpace(part)
		if v, ok := strings.CutPrefix(part, "t="); ok {
			jwt = v
		}
		if v, ok := strings.CutPrefix(part, "k="); ok {
			k = v
		}
	}
	p.mu.Lock()
	key, raw := p.vapidKey, p.vapidRaw
	p.mu.Unlock()
	if key == nil {
		return 0, errors.New("the test never told the push service the server's VAPID key")
	}
	if k != raw {
		return 0, fmt.Errorf("k=%q is not the server's VAPID public key %q", k, raw)
	}
	origin := "http://" + r.Host
	return ttl, checkVAPIDJWT(jwt, key, origin)
}

// checkVAPIDJWT verifies an ES256 JWT and its claims (RFC 8292 §2).
func checkVAPIDJWT(token string, key *ecdsa.PublicKey, origin string) error {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return fmt.Errorf("JWT %q has %d parts", token, len(parts))
	}
	var header struct {
		Alg string `json:"alg"`
		Typ string `json:"typ"`
	}
	if err := decodeJWTPart(parts[0], &header); err != nil {
		return fmt.Errorf("JWT header: %w", err)
	}
	if header.Alg != "ES256" {
		return fmt.Errorf("JWT alg %q, want ES256", header.Alg)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		return fmt.Errorf("JWT signature is not 64 bytes of r||s: %v", err)
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if !ecdsa.Verify(key, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		return errors.New("JWT signature does not verify with the server's VAPID public key")
	}
	var claims struct {
		Aud string `json:"aud"`
		Exp int64  `json:"exp"`
		Sub string `json:"sub"`
	}
	if err := decodeJWTPart(parts[1], &claims); err != nil {
		return fmt.Errorf("JWT claims: %w", err)
	}
	if claims.Aud != origin {
		return fmt.Errorf("aud %q, want the endpoint's origin %q", claims.Aud, origin)
	}
	exp := time.Unix(claims.Exp, 0)
	if !exp.After(time.Now()) || exp.After(time.Now().Add(24*time.Hour)) {
		return fmt.Errorf("exp %v is not within the next 24 hours", exp)
	}
	if claims.Sub == "" {
		return errors.New("sub is missing")
	}
	if u, err := url.Parse(claims.Sub); err != nil || (u.Scheme != "mailto" && u.Scheme != "https") {
		return fmt.Errorf("sub %q is neither mailto: nor https:", claims.Sub)
	}
	return nil
}

func decodeJWTPart(s string, dst any) error {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, dst)
}

// decryptAES128GCM undoes RFC 8291 (Message Encryption for Web Push) with
// the user agent's private key and auth secret, as a browser does: the
// aes128gcm header (RFC 8188) carries the salt, the record size and the
// application server's one-time public key.
func decryptAES128GCM(body []byte, ua *ecdh.PrivateKey, authSecret []byte) ([]byte, error) {
	if len(body) < 21 {
		return nil, errors.New("shorter than the aes128gcm header")
	}
	salt, rs, idlen := body[:16], binary.BigEndian.Uint32(body[16:20]), int(body[20])
	if idlen != 65 || len(body) < 21+idlen {
		return nil, fmt.Errorf("keyid is %d bytes, want the 65-byte application server key", idlen)
	}
	asPublic := body[21 : 21+idlen]
	records := body[21+idlen:]
	if rs < 18 || uint32(len(records)) > rs {
		return nil, fmt.Errorf("%d bytes of records for record size %d: only one record is expected", len(records), rs)
	}
	asKey, err := ecdh.P256().NewPublicKey(asPublic)
	if err != nil {
		return nil, fmt.Errorf("application server key: %w", err)
	}
	shared, err := ua.ECDH(asKey)
	if err != nil {
		return nil, err
	}
	// IKM = HKDF(auth_secret, ecdh_secret, "WebPush: info" 0x00 ua_public as_public, 32)
	info := append(append([]byte("WebPush: info\x00"), ua.PublicKey().Bytes()...), asPublic...)
	ikm := make([]byte, 32)
	if _, err := io.ReadFull(hkdf.New(sha256.New, shared, authSecret, info), ikm); err != nil {
		return nil, err
	}
	cek, nonce := make([]byte, 16), make([]byte, 12)
	if _, err := io.ReadFull(hkdf.New(sha256.New, ikm, salt, []byte("Content-Encoding: aes128gcm\x00")), cek); err != nil {
		return nil, err
	}
	if _, err := io.ReadFull(hkdf.New(sha256.New, ikm, salt, []byte("Content-Encoding: nonce\x00")), nonce); err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	plain, err := gcm.Open(nil, nonce, records, nil)
	if err != nil {
		return nil, fmt.Errorf("AES-128-GCM: %w", err)
	}
	// The last record ends with the delimiter 0x02, then zero padding.
	end := bytes.LastIndexFunc(plain, func(r rune) bool { return r != 0 })
	if end < 0 || plain[end] != 0x02 {
		return nil, errors.New("no last-record delimiter (0x02) before the padding")
	}
	return plain[:end], nil
}
