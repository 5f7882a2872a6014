package push

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	webpush "github.com/SherClockHolmes/webpush-go"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/escalation/paging"
)

// pushEndpoint is a push service on loopback that takes every push (201)
// and counts them.
func pushEndpoint(t *testing.T) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var got atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		w.WriteHeader(http.StatusCreated)
	}))
	t.Cleanup(srv.Close)
	return srv, &got
}

// device is a subscription with real keys (the payload is encrypted to them).
func device(t *testing.T, endpoint string) escalation.PushSubscription {
	t.Helper()
	key, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	auth := make([]byte, 16)
	_, _ = rand.Read(auth)
	return escalation.PushSubscription{ID: "phone", Username: "dr.okafor", Endpoint: endpoint + "/push/phone",
		P256dh: base64.RawURLEncoding.EncodeToString(key.PublicKey().Bytes()), Auth: base64.RawURLEncoding.EncodeToString(auth)}
}

// startSender runs a Sender whose subscriptions come from load, sending to srv.
func startSender(t *testing.T, srv *httptest.Server, load func(context.Context, escalation.Username) ([]escalation.PushSubscription, error)) *Sender {
	t.Helper()
	priv, pub, err := webpush.GenerateVAPIDKeys()
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(srv.URL)
	s, err := New(Config{
		Keys: escalation.VAPIDKeys{PublicKey: pub, PrivateKey: priv}, Subject: "mailto:ops@nightcall.test",
		Hosts: escalation.PushHosts{u.Host}, Subscriptions: load,
		Remove: func(context.Context, escalation.Username, escalation.PushSubscriptionID) error { return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

func page(expires time.Duration) paging.Notice {
	now := time.Now()
	return paging.Notice{PageID: "p1", EscalationID: "e1", CareHomeID: "h1", RaisedAt: now, Level: 1, Reason: paging.ReasonPage,
		Consultants: []escalation.Username{"dr.okafor"}, SentAt: now, Expires: now.Add(expires)}
}

// A consultant's subscriptions that cannot be read at the page (the store
// failing for a moment) are read again with backoff, and the phone is
// pushed once they can be: the push is not lost to the store's bad moment.
func TestSubscriptionsThatFailToLoadAreLoadedAgainAndThePushGoes(t *testing.T) {
	srv, got := pushEndpoint(t)
	sub := device(t, srv.URL)
	var loads atomic.Int32
	s := startSender(t, srv, func(context.Context, escalation.Username) ([]escalation.PushSubscription, error) {
		if loads.Add(1) <= 2 {
			return nil, errors.New("store: database is locked")
		}
		return []escalation.PushSubscription{sub}, nil
	})
	s.Page(page(30 * time.Second))
	for deadline := time.Now().Add(10 * time.Second); got.Load() == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no push after %d loads of the subscriptions", loads.Load())
		}
	}
	time.Sleep(300 * time.Millisecond)
	if n, l := got.Load(), loads.Load(); n != 1 || l != 3 {
		t.Errorf("%d pushes after %d loads, want 1 push after 3 loads (two failed)", n, l)
	}
}

// Subscriptions that never load are tried only inside the page timeout:
// the sender gives up before the page expires and stops trying.
func TestSubscriptionsThatNeverLoadAreGivenUpAtThePageTimeout(t *testing.T) {
	srv, got := pushEndpoint(t)
	var loads atomic.Int32
	s := startSender(t, srv, func(context.Context, escalation.Username) ([]escalation.PushSubscription, error) {
		loads.Add(1)
		return nil, errors.New("store: unavailable")
	})
	s.Page(page(time.Second))
	time.Sleep(2 * time.Second)
	settled := loads.Load()
	time.Sleep(time.Second)
	if l := loads.Load(); settled < 2 || l != settled {
		t.Errorf("loads: %d by the page timeout, %d a second later; want at least 2 (retried) and no more after it", settled, l)
	}
	if n := got.Load(); n != 0 {
		t.Errorf("%d pushes with no subscriptions loaded", n)
	}
}
