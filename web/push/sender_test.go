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
	"slices"
	"strconv"
	"sync"
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
	srv, got, _ := pushEndpointTTLs(t)
	return srv, got
}

// pushEndpointTTLs is pushEndpoint that also keeps each push's TTL header
// (a page's is at most its time left, a cancel's the longest allowed).
func pushEndpointTTLs(t *testing.T) (*httptest.Server, *atomic.Int32, func() []int) {
	t.Helper()
	var got atomic.Int32
	var mu sync.Mutex
	var ttls []int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ttl, _ := strconv.Atoi(r.Header.Get("TTL"))
		mu.Lock()
		ttls = append(ttls, ttl)
		mu.Unlock()
		got.Add(1)
		w.WriteHeader(http.StatusCreated)
	}))
	t.Cleanup(srv.Close)
	return srv, &got, func() []int {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(ttls)
	}
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

// A page whose push is waiting to be retried (the store failing) is not
// sent once the page has been cancelled: the cancellation goes alone, and
// the lock screen never shows a page for an escalation already taken. A
// page recorded after the cancellation (the consultant paged again) goes.
func TestAPageWaitingForARetryIsNotSentAfterItsCancellation(t *testing.T) {
	srv, got, ttls := pushEndpointTTLs(t)
	sub := device(t, srv.URL)
	var down atomic.Bool
	down.Store(true)
	s := startSender(t, srv, func(context.Context, escalation.Username) ([]escalation.PushSubscription, error) {
		if down.Load() {
			return nil, errors.New("store: unavailable")
		}
		return []escalation.PushSubscription{sub}, nil
	})
	first := page(20 * time.Second)
	s.Page(first)
	time.Sleep(20 * time.Millisecond) // the page's first load has failed
	s.Cancel(first.EscalationID, first.Consultants, "dr.other", "accepted")
	time.Sleep(50 * time.Millisecond)
	down.Store(false) // both retry at about 250 ms
	time.Sleep(1500 * time.Millisecond)
	if n, all := got.Load(), ttls(); n != 1 || all[0] <= 20 {
		t.Fatalf("pushes %d with TTLs %v; want only the cancellation (TTL 60, the page's at most 20)", n, all)
	}
	again := page(20 * time.Second)
	again.PageID = "p2"
	s.Page(again)
	for deadline := time.Now().Add(5 * time.Second); got.Load() < 2; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("a page recorded after the cancellation was not pushed (TTLs %v)", ttls())
		}
	}
	if all := ttls(); all[1] > 20 {
		t.Errorf("the second push has TTL %d, want the new page's (at most 20)", all[1])
	}
}
