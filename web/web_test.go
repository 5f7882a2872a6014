package web

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestPasswordHashing(t *testing.T) {
	h, err := HashPassword("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("hash format: %s", h)
	}
	if !CheckPassword(h, "correct horse battery") || CheckPassword(h, "correct horse batterY") {
		t.Error("the hash does not tell the right password from a wrong one")
	}
	h2, _ := HashPassword("correct horse battery")
	if h2 == h {
		t.Error("two hashes of one password are equal: no salt")
	}
	for _, bad := range []string{"", "$argon2id$v=19$m=1,t=1,p=1$!!$!!", "$bcrypt$x"} {
		if CheckPassword(bad, "x") {
			t.Errorf("malformed hash %q accepted", bad)
		}
	}
}

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
	l := newSignInLimiter()
	for i := 0; i < 10; i++ {
		if l.blocked("u", "1.2.3.4") > 0 {
			t.Fatalf("blocked after %d failures", i)
		}
		l.failed("u", "1.2.3.4")
	}
	if l.blocked("u", "1.2.3.4") == 0 {
		t.Error("not blocked after 10 failures")
	}
	if l.blocked("u", "5.6.7.8") > 0 {
		t.Error("another address is blocked for the first one's failures")
	}
}
