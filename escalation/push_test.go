package escalation

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/url"
	"testing"
)

func TestPushHostsAllowOnlyPushServices(t *testing.T) {
	hosts, err := ParsePushHosts("fcm.googleapis.com, *.notify.windows.com, 127.0.0.1:4443, localhost")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		endpoint string
		want     bool
	}{
		{"https://fcm.googleapis.com/fcm/send/abc", true},
		{"https://FCM.googleapis.com/fcm/send/abc", true},
		{"https://wns2-par02p.notify.windows.com/w/?token=x", true},
		{"https://notify.windows.com.evil.example/w", false},
		{"https://evil.example/fcm.googleapis.com", false},
		{"https://fcm.googleapis.com.evil.example/x", false},
		{"https://user@fcm.googleapis.com/x", false},
		{"http://fcm.googleapis.com/x", false},             // plain http to a real service
		{"http://127.0.0.1:4443/push/a", true},             // loopback, named with its port
		{"http://127.0.0.1:4444/push/a", false},            // loopback, another port
		{"http://localhost:9/push", true},                  // loopback named without a port
		{"http://10.0.0.1/push", false},                    // the service's own network
		{"http://169.254.169.254/latest/meta-data", false}, // cloud metadata
		{"ftp://fcm.googleapis.com/x", false},
		{"https://[::1]/x", false},
	} {
		u, _ := url.Parse(c.endpoint)
		if got := hosts.Allows(u); got != c.want {
			t.Errorf("%s: allowed %v, want %v", c.endpoint, got, c.want)
		}
	}
	if _, err := ParsePushHosts("https://fcm.googleapis.com/"); err == nil {
		t.Error("a URL taken for a host")
	}
	for _, u := range []string{"https://fcm.googleapis.com/x", "https://web.push.apple.com/x", "https://updates.push.services.mozilla.com/wpush/v2/x"} {
		p, _ := url.Parse(u)
		if !DefaultPushHosts.Allows(p) {
			t.Errorf("the default hosts refuse %s", u)
		}
	}
}

func TestPushSubscriptionValidation(t *testing.T) {
	k, _ := ecdh.P256().GenerateKey(rand.Reader)
	good := base64.RawURLEncoding.EncodeToString(k.PublicKey().Bytes())
	auth := base64.RawURLEncoding.EncodeToString(make([]byte, 16))
	offCurve := base64.RawURLEncoding.EncodeToString(append([]byte{4}, make([]byte, 64)...))
	hosts := PushHosts{"fcm.googleapis.com"}
	in := func(endpoint, p256dh, a string) PushSubscriptionInput {
		var s PushSubscriptionInput
		s.Endpoint, s.Keys.P256dh, s.Keys.Auth = endpoint, p256dh, a
		return s
	}
	const ep = "https://fcm.googleapis.com/fcm/send/x"
	for _, c := range []struct {
		name        string
		in          PushSubscriptionInput
		kind, field string
	}{
		{"good", in(ep, good, auth), "", ""},
		{"padded standard base64 keys", in(ep, base64.StdEncoding.EncodeToString(k.PublicKey().Bytes()), base64.StdEncoding.EncodeToString(make([]byte, 16))), "", ""},
		{"no endpoint", in("", good, auth), string(KindMissingField), "endpoint"},
		{"relative endpoint", in("/push", good, auth), string(KindInvalidValue), "endpoint"},
		{"endpoint not allowed", in("https://evil.example/x", good, auth), string(KindInvalidValue), "endpoint"},
		{"no p256dh", in(ep, "", auth), string(KindMissingField), "keys.p256dh"},
		{"no auth", in(ep, good, ""), string(KindMissingField), "keys.auth"},
		{"p256dh not base64", in(ep, "!!!", auth), string(KindInvalidValue), "keys.p256dh"},
		{"p256dh 64 bytes", in(ep, base64.RawURLEncoding.EncodeToString(make([]byte, 64)), auth), string(KindInvalidValue), "keys.p256dh"},
		{"p256dh off the curve", in(ep, offCurve, auth), string(KindInvalidValue), "keys.p256dh"},
		{"auth 15 bytes", in(ep, good, base64.RawURLEncoding.EncodeToString(make([]byte, 15))), string(KindInvalidValue), "keys.auth"},
		{"auth 17 bytes", in(ep, good, base64.RawURLEncoding.EncodeToString(make([]byte, 17))), string(KindInvalidValue), "keys.auth"},
	} {
		err := c.in.Validate(hosts)
		var ie *InputError
		switch {
		case c.kind == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.kind != "" && (!errors.As(err, &ie) || string(ie.Kind) != c.kind || ie.Field != c.field):
			t.Errorf("%s: %v, want %s on %s", c.name, err, c.kind, c.field)
		}
	}
}

func TestVAPIDKeysAreAP256Pair(t *testing.T) {
	k, err := NewVAPIDKeys()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := base64.RawURLEncoding.DecodeString(k.PublicKey)
	priv, _ := base64.RawURLEncoding.DecodeString(k.PrivateKey)
	sk, err := ecdh.P256().NewPrivateKey(priv)
	if err != nil || len(pub) != 65 || string(sk.PublicKey().Bytes()) != string(pub) {
		t.Fatalf("keys %+v: %v", k, err)
	}
}
