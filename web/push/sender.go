// Package push sends pages to consultants' devices by Web Push (RFC 8030),
// encrypted to each subscription (RFC 8291, aes128gcm) and signed with the
// service's VAPID key (RFC 8292), through github.com/SherClockHolmes/webpush-go.
// It is a paging.Notifier: every page and cancellation is queued without
// blocking the pager and sent from a bounded worker pool, each attempt under
// a timeout, retried with backoff inside the page timeout on 429 and 5xx. A
// push service answering 404 or 410 has forgotten the subscription, which is
// then removed. The payload a lock screen shows carries the page and
// escalation IDs, the home's name and the NEWS2 score, never the resident's
// name, observations or free text.
package push

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	webpush "github.com/SherClockHolmes/webpush-go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/escalation/news2"
	"github.com/nightcall-health/nightcall/escalation/paging"
	"github.com/nightcall-health/nightcall/web/outbound"
)

// Config configures a Sender.
type Config struct {
	// Keys is the VAPID key pair. Required.
	Keys escalation.VAPIDKeys
	// Subject is the VAPID `sub` claim: a mailto: address or an https URL
	// where the push service can reach the operator. Required.
	Subject string
	// Subscriptions returns a consultant's subscriptions. Required. It is
	// asked for every consultant paged, so it should answer from memory
	// (escalation.PushSubscriptionCache).
	Subscriptions func(ctx context.Context, u escalation.Username) ([]escalation.PushSubscription, error)
	// Current returns a subscription as it is now, and false once it has
	// been removed; it is asked before every attempt (retries included), so
	// that nothing is pushed to a subscription after its removal is known.
	// Optional: a subscription is pushed to as it was at the page.
	Current func(ctx context.Context, u escalation.Username, id escalation.PushSubscriptionID) (escalation.PushSubscription, bool, error)
	// Remove deletes a subscription its push service says is gone. Required.
	Remove func(ctx context.Context, u escalation.Username, id escalation.PushSubscriptionID) error
	// Hosts is where push may be sent, checked again at each send. Required.
	Hosts escalation.PushHosts
	// HomeName gives a care home's name for the payload. Optional.
	HomeName func(escalation.CareHomeID) string
	// Claim makes one instance of several send each page (distributed mode):
	// it reports whether this instance won key. Optional: every page is sent.
	Claim func(ctx context.Context, key string) (bool, error)
	// Client sends the requests. Optional: by default one that follows no
	// redirect (an endpoint cannot bounce the server elsewhere).
	Client *http.Client
	// AttemptTimeout cuts off one attempt at a push service that hangs.
	// Optional, default 10s.
	AttemptTimeout time.Duration
	// MaxTTL caps a page's TTL (the page timeout). Optional, default 60s.
	MaxTTL time.Duration
	// Workers and Queue size the pool. Optional (16, 4096).
	Workers, Queue int
	// Observe receives page-recorded → push-service-accepted durations. Optional.
	Observe func(d time.Duration)
	// Registerer takes the metrics. Optional.
	Registerer prometheus.Registerer
	// Logger is optional; nil discards.
	Logger *slog.Logger
	// Now is the clock. Optional.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.AttemptTimeout <= 0 {
		c.AttemptTimeout = 10 * time.Second
	}
	if c.MaxTTL <= 0 {
		c.MaxTTL = time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.HomeName == nil {
		c.HomeName = func(escalation.CareHomeID) string { return "" }
	}
	if c.Client == nil {
		c.Client = &http.Client{
			Transport: &http.Transport{
				Proxy:                 http.ProxyFromEnvironment,
				DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
				TLSHandshakeTimeout:   5 * time.Second,
				ResponseHeaderTimeout: c.AttemptTimeout,
				MaxIdleConnsPerHost:   8,
				IdleConnTimeout:       90 * time.Second,
				ForceAttemptHTTP2:     true,
			},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
}

// Validate lists every problem with c.
func (c Config) Validate() error {
	var errs []error
	if c.Keys.PublicKey == "" || c.Keys.PrivateKey == "" {
		errs = append(errs, errors.New("push: Config.Keys is required"))
	}
	if c.Subject == "" {
		errs = append(errs, errors.New("push: Config.Subject is required"))
	}
	if c.Subscriptions == nil {
		errs = append(errs, errors.New("push: Config.Subscriptions is required"))
	}
	if c.Remove == nil {
		errs = append(errs, errors.New("push: Config.Remove is required"))
	}
	return errors.Join(errs...)
}

// Sender sends pages by Web Push.
type Sender struct {
	cfg     Config
	pool    *outbound.Pool
	results *prometheus.CounterVec

	// cancelled is when each consultant's page for an escalation was last
	// cancelled here: a page recorded before that instant and still
	// waiting to be sent (a retry) is not sent, so a page never overtakes
	// its own cancellation onto the lock screen. Entries older than MaxTTL
	// (no page lives longer) are pruned as new ones come.
	mu        sync.Mutex
	cancelled map[cancelKey]time.Time
}

type cancelKey struct {
	id   escalation.EscalationID
	user escalation.Username
}

var _ paging.Notifier = (*Sender)(nil)

// New returns a Sender; Run must be running for pushes to go out.
func New(cfg Config) (*Sender, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Sender{cfg: cfg, pool: outbound.New(outbound.Config{Workers: cfg.Workers, Queue: cfg.Queue}), cancelled: map[cancelKey]time.Time{},
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nightcall_push_sends_total",
			Help: "Web Push attempts by result: sent, retried (429/5xx/timeout), gone (404/410, subscription removed), refused (other 4xx), abandoned (no time left), dropped (queue full), revoked (not sent: the subscription was removed, or the page cancelled meanwhile); per consultant, load_retried and load_abandoned (the subscriptions could not be read).",
		}, []string{"result"})}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(s.results); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Run sends until ctx is done.
func (s *Sender) Run(ctx context.Context) { s.pool.Run(ctx) }

// Payload is the decrypted push message a service worker receives.
type Payload struct {
	Type         string                  `json:"type"` // page | page_cancelled
	PageID       string                  `json:"page_id,omitempty"`
	EscalationID escalation.EscalationID `json:"escalation_id"`
	CareHome     *Home                   `json:"care_home,omitempty"`
	NEWS2        *Score                  `json:"news2,omitempty"`
	RaisedAt     *time.Time              `json:"raised_at,omitempty"`
	Level        *int                    `json:"level,omitempty"`
	// Reason is "page" or "join_overdue" for a page; accepted,
	// accepted_by_other or withdrawn for a cancellation.
	Reason string `json:"reason"`
	// Device is the name receipts from this subscription carry.
	Device string `json:"device,omitempty"`
	// ExpiresAt is when the page times out.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// Home is the care home, by name: what the lock screen says.
type Home struct {
	ID   escalation.CareHomeID `json:"id"`
	Name string                `json:"name"`
}

// Score is the NEWS2 total and risk, or for a partial set its lower bound.
type Score struct {
	Total   *int        `json:"total"`
	Risk    *news2.Risk `json:"risk"`
	Partial bool        `json:"partial"`
	AtLeast *int        `json:"at_least,omitempty"`
}

func scoreOf(r *news2.Result) *Score {
	if r == nil {
		return nil
	}
	sc := &Score{Total: r.Total, Risk: r.Risk, Partial: r.Partial, AtLeast: r.AtLeast}
	if r.Partial && sc.Risk == nil {
		sc.Risk = r.RiskAtLeast
	}
	return sc
}

// delivery is one message to one subscription.
type delivery struct {
	user    escalation.Username
	sub     escalation.PushSubscription
	payload []byte
	topic   string
	// escalation is what the message is about.
	escalation escalation.EscalationID
	sentAt     time.Time // when the page was recorded (for Observe); zero for cancels
	deadline   time.Time
	attempt    int
}

// Page implements paging.Notifier: it queues the page for every device of
// every consultant paged.
func (s *Sender) Page(n paging.Notice) {
	for _, u := range n.Consultants {
		f := &fan{user: u, escalation: n.EscalationID, claimKey: "push:" + n.PageID + ":" + string(u), sentAt: n.SentAt, deadline: n.Expires, payload: s.pagePayload(n)}
		s.submit(func(ctx context.Context) { s.fanOut(ctx, f) })
	}
}

// Cancel implements paging.Notifier: the devices take the page off the lock screen.
func (s *Sender) Cancel(id escalation.EscalationID, users []escalation.Username, acceptedBy escalation.Username, reason string) {
	now := s.cfg.Now()
	deadline := now.Add(s.cfg.MaxTTL)
	s.mu.Lock()
	for k, at := range s.cancelled {
		if now.Sub(at) > s.cfg.MaxTTL {
			delete(s.cancelled, k)
		}
	}
	for _, u := range users {
		s.cancelled[cancelKey{id, u}] = now
	}
	s.mu.Unlock()
	for _, u := range users {
		r := reason
		if reason == "accepted" && u != acceptedBy {
			r = "accepted_by_other"
		}
		p := Payload{Type: "page_cancelled", EscalationID: id, Reason: r}
		f := &fan{user: u, escalation: id, claimKey: "push-cancel:" + string(id) + ":" + string(u) + ":" + r, deadline: deadline, payload: func(string) Payload { return p }}
		s.submit(func(ctx context.Context) { s.fanOut(ctx, f) })
	}
}

func (s *Sender) submit(j outbound.Job) {
	if err := s.pool.Submit(j); err != nil {
		s.results.WithLabelValues("dropped").Inc()
		s.cfg.Logger.Error("push queue full; the page goes by the other channels", "err", err)
	}
}

func (s *Sender) pagePayload(n paging.Notice) func(device string) Payload {
	raised, expires, level := n.RaisedAt.UTC(), n.Expires.UTC(), n.Level
	home := &Home{ID: n.CareHomeID, Name: s.cfg.HomeName(n.CareHomeID)}
	return func(device string) Payload {
		return Payload{Type: "page", PageID: n.PageID, EscalationID: n.EscalationID, CareHome: home, NEWS2: scoreOf(n.NEWS2),
			RaisedAt: &raised, Level: &level, Reason: n.Reason, Device: device, ExpiresAt: &expires}
	}
}

// topicOf collapses a page and its cancellation at the push service: a
// pending page not yet delivered is replaced by the cancel (RFC 8030 §5.4).
func topicOf(id escalation.EscalationID) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:16])
}

// superseded reports whether a page recorded at sentAt for u about id has
// been cancelled since (cancels have a zero sentAt and are never).
func (s *Sender) superseded(id escalation.EscalationID, u escalation.Username, sentAt time.Time) bool {
	if sentAt.IsZero() {
		return false
	}
	s.mu.Lock()
	at, ok := s.cancelled[cancelKey{id, u}]
	s.mu.Unlock()
	return ok && !at.Before(sentAt)
}

// fan is one message to all of one consultant's devices.
type fan struct {
	user       escalation.Username
	escalation escalation.EscalationID
	claimKey   string
	sentAt     time.Time // when the page was recorded; zero for cancels
	deadline   time.Time
	payload    func(device string) Payload
	loads      int // attempts to load the subscriptions
}

// fanOut loads the consultant's subscriptions and queues one delivery each.
// A consultant with none costs no claim. When the subscriptions cannot be
// read (a consultant not in memory and the store failing), it tries again
// with backoff inside the page timeout: a locked phone is often the only
// way to wake the consultant, so a store's bad moment must not cost the push.
func (s *Sender) fanOut(ctx context.Context, f *fan) {
	f.loads++
	u := f.user
	if s.superseded(f.escalation, u, f.sentAt) {
		s.results.WithLabelValues("revoked").Inc()
		return
	}
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	subs, err := s.cfg.Subscriptions(lctx, u)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return // stopping
		}
		wait := outbound.Backoff(f.loads, 250*time.Millisecond, 5*time.Second)
		if s.cfg.Now().Add(wait).After(f.deadline) {
			s.results.WithLabelValues("load_abandoned").Inc()
			s.cfg.Logger.Error("push subscriptions could not be loaded within the page timeout; the page goes by the other channels", "user", u, "attempts", f.loads, "err", err)
			return
		}
		s.results.WithLabelValues("load_retried").Inc()
		s.cfg.Logger.Warn("loading push subscriptions failed; retrying", "user", u, "attempt", f.loads, "wait", wait, "err", err)
		if !s.pool.After(wait, func(ctx context.Context) { s.fanOut(ctx, f) }, func(error) { s.results.WithLabelValues("dropped").Inc() }) {
			s.results.WithLabelValues("dropped").Inc() // stopping
		}
		return
	}
	if len(subs) == 0 {
		return
	}
	if s.cfg.Claim != nil {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		won, err := s.cfg.Claim(cctx, f.claimKey)
		cancel()
		if err != nil {
			s.cfg.Logger.Warn("claiming a push; sending it anyway", "err", err)
		} else if !won {
			return // another instance sends it
		}
	}
	for _, sub := range subs {
		b, err := json.Marshal(f.payload(escalation.PushDevice(sub.ID)))
		if err != nil {
			s.cfg.Logger.Error("push payload", "err", err)
			return
		}
		d := &delivery{user: u, sub: sub, payload: b, topic: topicOf(f.escalation), escalation: f.escalation, sentAt: f.sentAt, deadline: f.deadline}
		s.submit(func(ctx context.Context) { s.send(ctx, d) })
	}
}

// Outcome of one attempt.
type outcome int

const (
	sent outcome = iota
	retry
	gone
	refused
)

// send makes one attempt and schedules the next if it should be retried.
func (s *Sender) send(ctx context.Context, d *delivery) {
	d.attempt++
	if s.superseded(d.escalation, d.user, d.sentAt) {
		s.results.WithLabelValues("revoked").Inc()
		s.cfg.Logger.Info("page cancelled before its push went; not sent", "user", d.user, "subscription_id", d.sub.ID, "attempts", d.attempt-1)
		return
	}
	now := s.cfg.Now()
	left := d.deadline.Sub(now)
	if left <= 0 {
		s.results.WithLabelValues("abandoned").Inc()
		s.cfg.Logger.Warn("push not delivered within the page timeout", "user", d.user, "subscription_id", d.sub.ID, "attempts", d.attempt-1)
		return
	}
	var (
		res    = retry
		wait   time.Duration
		detail string
		check  error
	)
	if s.cfg.Current != nil {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		sub, ok, err := s.cfg.Current(cctx, d.user, d.sub.ID)
		cancel()
		switch {
		case err != nil:
			// Not known to be current: not sent now, tried again later.
			check, detail = err, "checking the subscription: "+err.Error()
		case !ok:
			s.results.WithLabelValues("revoked").Inc()
			s.cfg.Logger.Info("push subscription removed since the page; not sent", "user", d.user, "subscription_id", d.sub.ID)
			return
		default:
			d.sub = sub // its keys as they are now
		}
	}
	if check == nil {
		res, wait, detail = s.attempt(ctx, d, left)
	}
	switch res {
	case sent:
		s.results.WithLabelValues("sent").Inc()
		if s.cfg.Observe != nil && !d.sentAt.IsZero() {
			s.cfg.Observe(s.cfg.Now().Sub(d.sentAt))
		}
	case gone:
		s.results.WithLabelValues("gone").Inc()
		s.cfg.Logger.Info("push subscription gone; removing it", "user", d.user, "subscription_id", d.sub.ID, "status", detail)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := s.cfg.Remove(rctx, d.user, d.sub.ID); err != nil && !errors.Is(err, escalation.ErrNotFound) {
			s.cfg.Logger.Error("removing a gone push subscription", "user", d.user, "subscription_id", d.sub.ID, "err", err)
		}
	case refused:
		s.results.WithLabelValues("refused").Inc()
		s.cfg.Logger.Warn("push refused", "user", d.user, "subscription_id", d.sub.ID, "status", detail)
	case retry:
		s.results.WithLabelValues("retried").Inc()
		if wait <= 0 {
			wait = outbound.Backoff(d.attempt, 250*time.Millisecond, 5*time.Second)
		}
		if s.cfg.Now().Add(wait).After(d.deadline) {
			s.results.WithLabelValues("abandoned").Inc()
			s.cfg.Logger.Warn("push failing and the page timeout is near; giving up", "user", d.user, "subscription_id", d.sub.ID, "status", detail, "attempts", d.attempt)
			return
		}
		s.cfg.Logger.Info("push failed; retrying", "user", d.user, "subscription_id", d.sub.ID, "status", detail, "attempt", d.attempt, "wait", wait)
		s.pool.After(wait, func(ctx context.Context) { s.send(ctx, d) }, func(error) { s.results.WithLabelValues("dropped").Inc() })
	}
}

// attempt posts d once, within left and the attempt timeout.
func (s *Sender) attempt(ctx context.Context, d *delivery, left time.Duration) (outcome, time.Duration, string) {
	u, err := url.Parse(d.sub.Endpoint)
	if err != nil || !s.cfg.Hosts.Allows(u) {
		return refused, 0, "endpoint no longer allowed"
	}
	ttl := min(left, s.cfg.MaxTTL)
	actx, cancel := context.WithTimeout(ctx, min(s.cfg.AttemptTimeout, left))
	defer cancel()
	resp, err := webpush.SendNotificationWithContext(actx, d.payload, &webpush.Subscription{
		Endpoint: d.sub.Endpoint, Keys: webpush.Keys{P256dh: d.sub.P256dh, Auth: d.sub.Auth},
	}, &webpush.Options{
		HTTPClient: s.cfg.Client, Subscriber: s.cfg.Subject, Topic: d.topic,
		TTL: max(1, int(ttl/time.Second)), Urgency: webpush.UrgencyHigh,
		VAPIDPublicKey: s.cfg.Keys.PublicKey, VAPIDPrivateKey: s.cfg.Keys.PrivateKey,
	})
	if err != nil {
		if ctx.Err() != nil {
			return refused, 0, "stopping"
		}
		var ue *url.Error
		if errors.As(err, &ue) || errors.Is(err, context.DeadlineExceeded) {
			return retry, 0, err.Error()
		}
		return refused, 0, err.Error() // a key that cannot be used: no retry will help
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	code := resp.StatusCode
	detail := strconv.Itoa(code)
	switch {
	case code >= 200 && code < 300:
		return sent, 0, detail
	case code == http.StatusNotFound || code == http.StatusGone:
		return gone, 0, detail
	case code == http.StatusTooManyRequests || code >= 500:
		return retry, retryAfter(resp.Header.Get("Retry-After")), detail
	}
	return refused, 0, detail
}

// retryAfter reads a Retry-After of seconds (dates are not worth the wait here).
func retryAfter(v string) time.Duration {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0
	}
	return time.Duration(n) * time.Second
}
