// Package pagehook is the second paging channel, for phones without Web
// Push: every page and cancellation is POSTed as JSON to an operator's
// gateway (a hospital switchboard, an SMS or voice gateway) with the paged
// consultant's phone number, signed with HMAC-SHA256 of the body
// (`X-Nightcall-Signature: sha256=<hex>`), and retried with backoff on a
// failure or a 5xx. It is a paging.Notifier, sending from a bounded worker
// pool so that a gateway that is down never delays a page.
package pagehook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/escalation/news2"
	"github.com/nightcall-health/nightcall/escalation/paging"
	"github.com/nightcall-health/nightcall/events"
	"github.com/nightcall-health/nightcall/web/outbound"
)

// SignatureHeader carries `sha256=<hex HMAC-SHA256 of the body>`.
const SignatureHeader = "X-Nightcall-Signature"

// DeliveryHeader names one message; retries of it carry the same value, so
// a gateway can drop a repeat.
const DeliveryHeader = "X-Nightcall-Delivery"

// Consultant is what the gateway is told of the person to call.
type Consultant struct {
	Username escalation.Username `json:"username"`
	Name     string              `json:"name"`
	Phone    string              `json:"phone"`
}

// Home is the care home and its fallback number.
type Home struct {
	ID            escalation.CareHomeID `json:"id"`
	Name          string                `json:"name"`
	FallbackPhone string                `json:"fallback_phone"`
}

// Score is the NEWS2 total and risk; a partial set has no total, only its
// lower bound at_least.
type Score struct {
	Total   *int        `json:"total"`
	Risk    *news2.Risk `json:"risk"`
	Partial bool        `json:"partial"`
	AtLeast *int        `json:"at_least,omitempty"`
}

// Message is the JSON body of one POST.
type Message struct {
	Type         string                  `json:"type"` // page | page_cancelled
	PageID       string                  `json:"page_id,omitempty"`
	EscalationID escalation.EscalationID `json:"escalation_id"`
	Level        int                     `json:"level"`
	// Reason: page or join_overdue for a page; accepted, accepted_by_other
	// or withdrawn for a cancellation.
	Reason     string     `json:"reason"`
	Consultant Consultant `json:"consultant"`
	CareHome   Home       `json:"care_home"`
	NEWS2      *Score     `json:"news2"`
	RaisedAt   *time.Time `json:"raised_at"`
	// SentAt is when this message was first sent; a gateway may refuse old ones.
	SentAt time.Time `json:"sent_at"`
}

// Config configures a Sender.
type Config struct {
	// URL is where to POST. Required: http or https.
	URL string
	// Secret keys the signature. Required.
	Secret string
	// Person gives a consultant's name and phone. Required.
	Person func(ctx context.Context, u escalation.Username) (name, phone string, err error)
	// Home gives a care home's name and fallback number. Required.
	Home func(escalation.CareHomeID) (name, fallback string)
	// Claim makes one instance of several send each message (distributed
	// mode). Optional.
	Claim func(ctx context.Context, key string) (bool, error)
	// Client sends the requests. Optional, default 10 s per attempt, no redirects.
	Client *http.Client
	// MaxRetryFor bounds how long one message is retried. Optional, default 5 min.
	MaxRetryFor time.Duration
	// InitialBackoff is the wait before the first retry. Optional, default 500ms.
	InitialBackoff time.Duration
	// Workers and Queue size the pool. Optional (8, 4096).
	Workers, Queue int
	// Registerer takes the metrics. Optional.
	Registerer prometheus.Registerer
	// Logger is optional; nil discards.
	Logger *slog.Logger
	// Now is the clock. Optional.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.Client == nil {
		c.Client = &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if c.MaxRetryFor <= 0 {
		c.MaxRetryFor = 5 * time.Minute
	}
	if c.InitialBackoff <= 0 {
		c.InitialBackoff = 500 * time.Millisecond
	}
	if c.Workers <= 0 {
		c.Workers = 8
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate lists every problem with c.
func (c Config) Validate() error {
	var errs []error
	if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, errors.New("pagehook: Config.URL must be an http or https URL"))
	}
	if c.Secret == "" {
		errs = append(errs, errors.New("pagehook: Config.Secret is required (--page-webhook-secret)"))
	}
	if c.Person == nil {
		errs = append(errs, errors.New("pagehook: Config.Person is required"))
	}
	if c.Home == nil {
		errs = append(errs, errors.New("pagehook: Config.Home is required"))
	}
	return errors.Join(errs...)
}

// Sender posts pages to the webhook.
type Sender struct {
	cfg      Config
	pool     *outbound.Pool
	failures prometheus.Counter
	results  *prometheus.CounterVec
}

var _ paging.Notifier = (*Sender)(nil)

// New returns a Sender; Run must be running for messages to go out.
func New(cfg Config) (*Sender, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Sender{cfg: cfg, pool: outbound.New(outbound.Config{Workers: cfg.Workers, Queue: cfg.Queue}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nightcall_page_webhook_failures_total",
			Help: "Page webhook attempts that failed (no answer, a 5xx, or another non-2xx); alert on a rising rate.",
		}),
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nightcall_page_webhook_messages_total",
			Help: "Page webhook messages by outcome: delivered, refused (a 4xx), abandoned (retries ran out), dropped (queue full).",
		}, []string{"result"}),
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{s.failures, s.results} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return s, nil
}

// Run sends until ctx is done.
func (s *Sender) Run(ctx context.Context) { s.pool.Run(ctx) }

// Sign is the signature header's value for body.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether header is the signature of body with secret, in
// constant time: what a gateway does before it acts on a message.
func Verify(secret string, body []byte, header string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(header))
}

type job struct {
	msg      Message
	id       string
	body     []byte
	deadline time.Time
	attempt  int
}

// Page implements paging.Notifier.
func (s *Sender) Page(n paging.Notice) {
	raised := n.RaisedAt.UTC()
	deadline := n.Expires
	if deadline.IsZero() {
		deadline = s.cfg.Now().Add(s.cfg.MaxRetryFor)
	}
	for _, u := range n.Consultants {
		msg := Message{Type: "page", PageID: n.PageID, EscalationID: n.EscalationID, Level: n.Level, Reason: n.Reason,
			Consultant: Consultant{Username: u}, NEWS2: scoreOf(n.NEWS2), RaisedAt: &raised}
		s.queue(msg, n.CareHomeID, "page|"+n.PageID+"|"+string(u), deadline)
	}
}

// Cancel implements paging.Notifier.
func (s *Sender) Cancel(id escalation.EscalationID, users []escalation.Username, acceptedBy escalation.Username, reason string) {
	for _, u := range users {
		r := reason
		if reason == "accepted" && u != acceptedBy {
			r = "accepted_by_other"
		}
		msg := Message{Type: "page_cancelled", EscalationID: id, Reason: r, Consultant: Consultant{Username: u}}
		s.queue(msg, "", "cancel|"+string(id)+"|"+string(u)+"|"+r, s.cfg.Now().Add(s.cfg.MaxRetryFor))
	}
}

func (s *Sender) queue(msg Message, home escalation.CareHomeID, key string, deadline time.Time) {
	j := &job{msg: msg, id: events.DeterministicID("pagehook|" + key), deadline: deadline}
	err := s.pool.Submit(func(ctx context.Context) { s.prepare(ctx, j, home, key) })
	if err != nil {
		s.results.WithLabelValues("dropped").Inc()
		s.cfg.Logger.Error("page webhook queue full", "err", err)
	}
}

// prepare fills in the consultant and the home, then makes the first attempt.
func (s *Sender) prepare(ctx context.Context, j *job, home escalation.CareHomeID, key string) {
	if s.cfg.Claim != nil {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		won, err := s.cfg.Claim(cctx, "pagehook:"+key)
		cancel()
		if err == nil && !won {
			return
		}
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	name, phone, err := s.cfg.Person(pctx, j.msg.Consultant.Username)
	cancel()
	if err != nil {
		s.cfg.Logger.Warn("page webhook: the consultant's account could not be read; sending without name and phone", "user", j.msg.Consultant.Username, "err", err)
	}
	j.msg.Consultant.Name, j.msg.Consultant.Phone = name, phone
	if home != "" {
		j.msg.CareHome.ID = home
		j.msg.CareHome.Name, j.msg.CareHome.FallbackPhone = s.cfg.Home(home)
	}
	j.msg.SentAt = s.cfg.Now().UTC()
	if j.body, err = json.Marshal(j.msg); err != nil {
		s.cfg.Logger.Error("page webhook body", "err", err)
		return
	}
	s.send(ctx, j)
}

func (s *Sender) send(ctx context.Context, j *job) {
	j.attempt++
	ok, retry, detail := s.attempt(ctx, j)
	if ok {
		s.results.WithLabelValues("delivered").Inc()
		return
	}
	if ctx.Err() != nil {
		return // stopping: not the gateway's failure
	}
	s.failures.Inc()
	if !retry {
		s.results.WithLabelValues("refused").Inc()
		s.cfg.Logger.Error("page webhook refused the message", "escalation_id", j.msg.EscalationID, "status", detail)
		return
	}
	wait := outbound.Backoff(j.attempt, s.cfg.InitialBackoff, 30*time.Second)
	if s.cfg.Now().Add(wait).After(j.deadline) {
		s.results.WithLabelValues("abandoned").Inc()
		s.cfg.Logger.Error("page webhook failing; giving up on this message", "escalation_id", j.msg.EscalationID, "status", detail, "attempts", j.attempt)
		return
	}
	s.cfg.Logger.Warn("page webhook failed; retrying", "escalation_id", j.msg.EscalationID, "status", detail, "attempt", j.attempt, "wait", wait)
	s.pool.After(wait, func(ctx context.Context) { s.send(ctx, j) }, func(error) { s.results.WithLabelValues("dropped").Inc() })
}

// attempt posts once; it reports success, and whether a failure is worth retrying.
func (s *Sender) attempt(ctx context.Context, j *job) (ok, retry bool, detail string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.URL, bytes.NewReader(j.body))
	if err != nil {
		return false, false, err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Nightcall-Pagehook/1")
	req.Header.Set(SignatureHeader, Sign(s.cfg.Secret, j.body))
	req.Header.Set(DeliveryHeader, j.id)
	resp, err := s.cfg.Client.Do(req)
	if err != nil {
		return false, ctx.Err() == nil, "no answer"
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return true, false, ""
	case c == http.StatusTooManyRequests || c >= 500 || c == http.StatusRequestTimeout:
		return false, true, strconv.Itoa(c)
	default:
		return false, false, strconv.Itoa(c)
	}
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
