package web

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nightcall-health/nightcall/escalation"
)

func TestCSVSafe(t *testing.T) {
	for in, want := range map[string]string{"=SUM(A1)": "'=SUM(A1)", "+1 555": "'+1 555", "@cmd": "'@cmd", "-12.5": "-12.5", "plain": "plain", "": ""} {
		if got := csvSafe(in); got != want {
			t.Errorf("csvSafe(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSameOrigin(t *testing.T) {
	s := &Server{cfg: Config{TrustedOrigins: []string{"https://nightcall.example"}}}
	for origin, want := range map[string]bool{
		"":                          true, // not a browser
		"http://app.local:8080":     true, // the request's own host
		"https://nightcall.example": true,
		"https://evil.example":      false,
		"http://app.local:9999":     false,
	} {
		r := httptest.NewRequest("GET", "http://app.local:8080/api/v1/pager", nil)
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
		if got := s.sameOrigin(r); got != want {
			t.Errorf("origin %q: %v, want %v", origin, got, want)
		}
	}
}

func TestSignInLimiter(t *testing.T) {
	now := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	l := newSignInLimiter(func() time.Time { return now })
	for i := 0; i < 10; i++ {
		if _, wait := l.take("u", "1.2.3.4"); wait > 0 {
			t.Fatalf("blocked after %d failures", i)
		}
	}
	if _, wait := l.take("u", "1.2.3.4"); wait == 0 {
		t.Error("not blocked after 10 failures")
	}
	// Ten a minute: six seconds on, one more failure may be tried, and no
	// second one.
	now = now.Add(6 * time.Second)
	if _, wait := l.take("u", "1.2.3.4"); wait > 0 {
		t.Errorf("still blocked 6 s later (wait %v)", wait)
	}
	if _, wait := l.take("u", "1.2.3.4"); wait == 0 {
		t.Error("two failures allowed by one refill")
	}
	if _, wait := l.take("u", "5.6.7.8"); wait > 0 {
		t.Error("another address is blocked for the first one's failures")
	}
	// A right password gives its reservation back: it never counts.
	for i := 0; i < 20; i++ {
		release, wait := l.take("owner", "9.9.9.9")
		if wait > 0 {
			t.Fatalf("successful sign-in %d was limited", i)
		}
		release()
	}
}

func TestTrustedProxies(t *testing.T) {
	prox, err := ParseTrustedProxies("10.0.0.0/8, 127.0.0.2")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseTrustedProxies("10.0.0.0/8,not-an-ip"); err == nil {
		t.Error("a bad CIDR was accepted")
	}
	s := &Server{cfg: Config{TrustedProxies: prox}}
	cases := []struct {
		name, remote string
		hdr          map[string]string
		addr         string
		secure       bool
	}{
		{"untrusted peer's headers change nothing", "192.0.2.7:5000", map[string]string{"X-Forwarded-For": "1.1.1.1", "X-Forwarded-Proto": "https"}, "192.0.2.7", false},
		{"trusted proxy gives the client", "10.1.2.3:5000", map[string]string{"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}, "203.0.113.9", true},
		{"a client cannot choose its own address", "10.1.2.3:5000", map[string]string{"X-Forwarded-For": "6.6.6.6, 203.0.113.9"}, "203.0.113.9", false},
		{"chain of trusted proxies", "127.0.0.2:5000", map[string]string{"X-Forwarded-For": "203.0.113.9, 10.9.9.9"}, "203.0.113.9", false},
		{"Forwarded header", "10.1.2.3:5000", map[string]string{"Forwarded": `for="[2001:db8::1]:4711";proto=https`}, "2001:db8::1", true},
		{"trusted proxy without headers", "10.1.2.3:5000", nil, "10.1.2.3", false},
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.remote
		for k, v := range c.hdr {
			r.Header.Set(k, v)
		}
		p := s.resolvePeer(r)
		if p.addr != c.addr || p.secure != c.secure {
			t.Errorf("%s: got %+v, want addr %s secure %v", c.name, p, c.addr, c.secure)
		}
	}
}

func TestJSONLimits(t *testing.T) {
	huge := `{"resident_id":"rc-101","observations":{"respiration_rate":1` + strings.Repeat("0", 900000) + `}}`
	cases := []struct {
		name, body, code, field string
	}{
		{"900,000-digit number", huge, "invalid_value", "observations.respiration_rate"},
		{"33-character number in an array", `{"levels":[1,2,` + strings.Repeat("9", 33) + `]}`, "invalid_value", "levels.2"},
		{"deep nesting", strings.Repeat("[", 1000) + strings.Repeat("]", 1000), "invalid_json", ""},
		{"32 characters is fine", `{"a":` + strings.Repeat("1", 32) + `}`, "", ""},
		{"malformed is left to the decoder", `{"a":`, "", ""},
		{"not UTF-8", "{\"situation\":\"\xc7\xc7\"}", "invalid_json", ""},
		{"UTF-8 beyond ASCII is fine", `{"situation":"Mrs Ó'Brien – 38.4°C"}`, "", ""},
	}
	for _, c := range cases {
		err := checkJSONLimits([]byte(c.body))
		var ae *apiError
		if c.code == "" {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if !errors.As(err, &ae) || ae.Code != c.code || ae.Field != c.field || ae.Status != 400 {
			t.Errorf("%s: got %+v, want 400 %s field %q", c.name, err, c.code, c.field)
		}
	}
}

// TestIdempotencyRecordHoldsNoPasswordHash: the request hash kept with an
// idempotency record is never an unsalted hash of a password.
func TestIdempotencyRecordHoldsNoPasswordHash(t *testing.T) {
	a := &escalation.Actor{Person: escalation.Person{Username: "admin"}}
	req := func(body string) *idem {
		r := httptest.NewRequest("POST", "/api/v1/users/x/password", strings.NewReader(body))
		r.Header.Set("Idempotency-Key", "k")
		id, err := newIdem(r, a, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	one, two := req(`{"password":"correct horse battery"}`), req(`{"password":"another horse battery"}`)
	if one.hash != two.hash {
		t.Error("the request hash depends on the password")
	}
	if x, y := req(`{"name":"A","password":"p"}`), req(`{"name":"B","password":"p"}`); x.hash == y.hash {
		t.Error("the request hash no longer tells other fields apart")
	}
}
