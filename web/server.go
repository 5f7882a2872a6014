// Package web is Nightcall's HTTP adapter: the JSON API of API.md, sessions
// and sign-in, health and metrics. It maps domain errors to HTTP in one place
// (errors.go) and never logs patient details.
package web

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/escalation/account"
	"github.com/nightcall-health/nightcall/escalation/audit"
	"github.com/nightcall-health/nightcall/events"
	"github.com/nightcall-health/nightcall/events/argon2id"
)

// MaxBody is the largest request body accepted.
const MaxBody = 1 << 20

// Config configures a Server.
type Config struct {
	// Service runs the commands and queries. Required.
	Service *escalation.Service
	// Store is the event log, for idempotency records and readiness. Required.
	Store events.Store
	// Accounts keeps users and sessions. Required. The account rules run
	// on it with the argon2id hasher.
	Accounts account.Store
	// Logger is optional; nil discards.
	Logger *slog.Logger
	// Registry receives the HTTP metrics and serves /metrics. Optional; a new one by default.
	Registry *prometheus.Registry
	// Ready reports extra readiness problems (projections behind, a stalled
	// consumer). Optional.
	Ready func(ctx context.Context) error
	// PagingReady reports what stops a raise now from being paged (the read
	// model or the pager behind, a stalled safety-critical consumer), for
	// GET /readyz/paging, which the care-home page polls: unlike Ready it
	// does not wait for the audit model. Optional; Ready when nil.
	PagingReady func(ctx context.Context) error
	// TrustedOrigins are public origins allowed to make state-changing
	// requests besides the request's own host. Optional.
	TrustedOrigins []string
	// SessionIdle ends a session this long after its last request.
	// Optional, default DefaultSessionIdle (12h); at most SessionMax.
	SessionIdle time.Duration
	// SessionMax ends a session this long after sign-in, however busy.
	// Optional, default DefaultSessionMax (7 days).
	SessionMax time.Duration
	// Pager is the pager websocket hub. Optional; without it /api/v1/pager is 503.
	Pager *PagerHub
	// Audit is the audit read model. Optional; without it the audit routes are 503.
	Audit *audit.Model
	// Location is the clock for out-of-hours and months. Optional, default UTC.
	Location *time.Location
	// Video is the SFU. Optional; without it call signalling is 503.
	Video Calls
	// ICEServers are the STUN/TURN URLs handed to browsers. Optional.
	ICEServers []string
	// TURN hands browsers TURN servers with short-lived credentials on
	// /api/v1/calls/{id}/ice-servers. Optional.
	TURN TURNConfig
	// Hosts chooses the instance that hosts each call (distributed mode). Optional.
	Hosts Claimer
	// AdvertiseURL is how other instances reach this one (http://10.0.0.5:8080).
	// Optional; with Hosts it makes every participant of a call meet on one instance.
	AdvertiseURL string
	// TrustedProxies are the peers whose X-Forwarded-For / X-Forwarded-Proto
	// (or Forwarded) are believed. Optional; none by default.
	TrustedProxies []netip.Prefix
	// SignInSlots bounds concurrent password checks (argon2id takes 19 MiB
	// each); a sign-in that finds no free slot is refused at once with 429.
	// Optional, default 4.
	SignInSlots int
	// SignInClock is the clock of the failed-sign-in limits. Optional, the
	// wall clock; tests hold it still so that no token refills while ten
	// slow password checks run.
	SignInClock func() time.Time
	// PushHosts is where Web Push subscriptions may point (--push-allowed-hosts).
	// Optional; without it no subscription is accepted.
	PushHosts escalation.PushHosts
	// PushPublicKey is the VAPID public key browsers subscribe with.
	// Optional; without it Web Push is off (503).
	PushPublicKey string
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Registry == nil {
		c.Registry = prometheus.NewRegistry()
	}
	if c.SessionMax <= 0 {
		c.SessionMax = DefaultSessionMax
	}
	if c.SessionIdle <= 0 {
		c.SessionIdle = min(DefaultSessionIdle, c.SessionMax)
	}
	if c.SignInSlots <= 0 {
		c.SignInSlots = 4
	}
}

// Validate lists every problem with c.
func (c Config) Validate() error {
	var errs []error
	if c.Service == nil {
		errs = append(errs, errors.New("web: Config.Service is required"))
	}
	if c.Store == nil {
		errs = append(errs, errors.New("web: Config.Store is required"))
	}
	if c.Accounts == nil {
		errs = append(errs, errors.New("web: Config.Accounts is required"))
	}
	if c.SessionIdle > c.SessionMax && c.SessionMax > 0 {
		errs = append(errs, fmt.Errorf("web: Config.SessionIdle %v is longer than SessionMax %v", c.SessionIdle, c.SessionMax))
	}
	return errors.Join(errs...)
}

// Server serves the API.
type Server struct {
	cfg      Config
	log      *slog.Logger
	sessions *sessions
	accounts *account.Service
	limiter  *signInLimiter
	// hashSlots bounds concurrent argon2id checks.
	hashSlots chan struct{}
	// signals bounds and tracks call signalling sockets by user and session.
	signals *socketSlots
	handler http.Handler
	metrics *metrics
}

// New builds a Server.
func New(cfg Config) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg: cfg, log: cfg.Logger, sessions: newSessions(cfg.Accounts, cfg.SessionIdle, cfg.SessionMax),
		signals: newSocketSlots(MaxSocketsPerUser),
		limiter: newSignInLimiter(cfg.SignInClock), hashSlots: make(chan struct{}, cfg.SignInSlots),
	}
	var err error
	if s.accounts, err = account.New(account.Config{Store: cfg.Accounts, Hasher: argon2id.Hasher{}, Domain: cfg.Service}); err != nil {
		return nil, err
	}
	if s.metrics, err = newMetrics(cfg.Registry); err != nil {
		return nil, err
	}
	cop := http.NewCrossOriginProtection()
	for _, o := range cfg.TrustedOrigins {
		if err := cop.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("web: trusted origin %q: %w", o, err)
		}
	}
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, newErr(http.StatusForbidden, "forbidden", "Cross-origin requests may not change state."))
	}))
	s.handler = s.edge(s.observe(cop.Handler(s.routes())))
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

//go:embed openapi.yaml
var openapiYAML []byte

func (s *Server) routes() *routeMux {
	mux := newRouteMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.handleReady)
	mux.HandleFunc("GET /readyz/paging", s.handlePagingReady)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.cfg.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /api/v1/openapi.yaml", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		_, _ = w.Write(openapiYAML)
	})

	mux.HandleFunc("POST /api/v1/session", s.handleSignIn)
	mux.HandleFunc("DELETE /api/v1/session", s.handleSignOut)
	mux.HandleFunc("GET /api/v1/me", s.requireAuth(s.handleMe))
	mux.HandleFunc("GET /api/v1/rota/now", s.requireAuth(s.handleRotaNow))
	mux.HandleFunc("GET /api/v1/rota", s.requireAuth(s.handleGetRota))
	mux.HandleFunc("GET /api/v1/rota/at", s.requireAuth(s.handleRotaAt))
	mux.HandleFunc("PUT /api/v1/rota/shifts/{id}", s.requireAuth(s.handleSetShift))
	mux.HandleFunc("DELETE /api/v1/rota/shifts/{id}", s.requireAuth(s.handleRemoveShift))
	mux.HandleFunc("PUT /api/v1/rota/standing", s.requireAuth(s.handleSetStanding))
	mux.HandleFunc("POST /api/v1/rota/overrides", s.requireAuth(s.handleAddOverride))
	mux.HandleFunc("DELETE /api/v1/rota/overrides/{id}", s.requireAuth(s.handleRemoveOverride))
	mux.HandleFunc("POST /api/v1/news2", s.requireAuth(s.handleNEWS2))
	mux.HandleFunc("GET /api/v1/pager", s.requireAuth(s.handlePager))
	mux.HandleFunc("POST /api/v1/pages/{page_id}/receipts", s.requireAuth(s.handlePageReceipt))
	mux.HandleFunc("GET /api/v1/push/vapid-public-key", s.requireAuth(s.handleVAPIDKey))
	mux.HandleFunc("POST /api/v1/push/subscriptions", s.requireAuth(s.handleSavePushSubscription))
	mux.HandleFunc("GET /api/v1/push/subscriptions", s.requireAuth(s.handleListPushSubscriptions))
	mux.HandleFunc("DELETE /api/v1/push/subscriptions/{id}", s.requireAuth(s.handleDeletePushSubscription))

	mux.HandleFunc("GET /api/v1/residents", s.requireAuth(s.handleListResidents))
	mux.HandleFunc("GET /api/v1/residents/{id}", s.requireAuth(s.handleGetResident))
	mux.HandleFunc("GET /api/v1/residents/{id}/events", s.requireAuth(s.handleResidentEvents))
	mux.HandleFunc("POST /api/v1/residents/{id}/observations", s.requireAuth(s.handleRecordObservations))
	mux.HandleFunc("POST /api/v1/residents/{id}/hospital-admissions", s.requireAuth(s.handleHospitalAdmission))

	mux.HandleFunc("POST /api/v1/residents", s.requireAuth(s.handleAdmitResident))
	mux.HandleFunc("POST /api/v1/residents/import", s.requireAuth(s.handleImportResidents))
	mux.HandleFunc("POST /api/v1/residents/{id}/{change}", s.requireAuth(s.handleChangeResident))
	mux.HandleFunc("GET /api/v1/care-homes", s.requireAuth(s.handleListHomes))
	mux.HandleFunc("POST /api/v1/care-homes", s.requireAuth(s.handleCreateHome))
	mux.HandleFunc("PATCH /api/v1/care-homes/{id}", s.requireAuth(s.handleUpdateHome))
	mux.HandleFunc("POST /api/v1/care-homes/{id}/deactivate", s.requireAuth(s.handleUpdateHome))
	mux.HandleFunc("GET /api/v1/care-homes/{id}/handover", s.requireAuth(s.handleHandover))
	mux.HandleFunc("GET /handover", s.handleHandoverLanding)
	mux.HandleFunc("GET /api/v1/users", s.requireAuth(s.handleListUsers))
	mux.HandleFunc("POST /api/v1/users", s.requireAuth(s.handleCreateUser))
	mux.HandleFunc("POST /api/v1/users/{username}/disable", s.requireAuth(s.handleSetDisabled))
	mux.HandleFunc("POST /api/v1/users/{username}/enable", s.requireAuth(s.handleSetDisabled))
	mux.HandleFunc("POST /api/v1/users/{username}/password", s.requireAuth(s.handleSetPassword))

	mux.HandleFunc("POST /api/v1/escalations", s.requireAuth(s.handleRaise))
	mux.HandleFunc("GET /api/v1/escalations", s.requireAuth(s.handleListEscalations))
	mux.HandleFunc("GET /api/v1/escalations/{id}", s.requireAuth(s.handleGetEscalation))
	mux.HandleFunc("POST /api/v1/escalations/{id}/accept", s.requireAuth(s.handleAccept))
	mux.HandleFunc("POST /api/v1/escalations/{id}/decision", s.requireAuth(s.handleDecision))
	mux.HandleFunc("POST /api/v1/escalations/{id}/withdraw", s.requireAuth(s.handleWithdraw))
	mux.HandleFunc("POST /api/v1/escalations/{id}/follow-up", s.requireAuth(s.handleFollowUp))
	mux.HandleFunc("GET /api/v1/escalations/{id}/fhir", s.requireAuth(s.handleFHIR))
	mux.HandleFunc("POST /api/v1/escalations/{id}/snapshots", s.requireAuth(s.handleTakeSnapshot))
	mux.HandleFunc("GET /api/v1/escalations/{id}/snapshots/{sid}", s.requireAuth(s.handleGetSnapshot))
	mux.HandleFunc("POST /api/v1/escalations/{id}/phone-fallback", s.requireAuth(s.handlePhoneFallback))
	mux.HandleFunc("GET /api/v1/audit/admissions-avoided", s.requireAuth(s.handleAdmissionsAvoided))
	mux.HandleFunc("GET /api/v1/audit/escalations.csv", s.requireAuth(s.handleAuditCSV))
	mux.HandleFunc("GET /api/v1/audit/access-log", s.requireAuth(s.handleAccessLog))

	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, newErr(http.StatusNotFound, "not_found", "No such API route."))
	})
	mux.HandleFunc("GET /api/v1/calls/{id}/signal", s.handleSignal)
	mux.HandleFunc("GET /api/v1/calls/{id}/ice-servers", s.handleICEServers)
	mux.HandleFunc("GET /api/v1/calls/config", s.handleCallConfig)
	mux.HandleFunc("POST /api/v1/escalations/{id}/invites", s.requireAuth(s.handleCreateInvite))
	mux.HandleFunc("GET /call/invite/{id}/{token}", s.handleInvitePage)
	mux.HandleFunc("POST /call/invite/{id}/{token}", s.handleInvite)
	mux.HandleFunc("GET /call/{id}", func(w http.ResponseWriter, r *http.Request) { s.servePage(w, r, "call.html") })
	mux.Handle("GET /static/", staticHandler())
	mux.HandleFunc("GET /sw.js", s.serviceWorker)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { s.servePage(w, r, "signin.html") })
	for _, page := range []string{"home", "console", "admin", "audit"} {
		mux.HandleFunc("GET /"+page, func(w http.ResponseWriter, r *http.Request) { s.servePage(w, r, page+".html") })
	}
	return mux
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	s.writeReady(w, r, s.cfg.Ready)
}

// handlePagingReady is /readyz for the pager alone: 200 while a raise is
// paged (the care-home page shows its fallback number otherwise).
func (s *Server) handlePagingReady(w http.ResponseWriter, r *http.Request) {
	check := s.cfg.PagingReady
	if check == nil {
		check = s.cfg.Ready
	}
	s.writeReady(w, r, check)
}

// writeReady answers a readiness check: the store's ping, then check.
func (s *Server) writeReady(w http.ResponseWriter, r *http.Request, check func(context.Context) error) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	problems := map[string]string{}
	if err := s.cfg.Store.Ping(ctx); err != nil {
		problems["store"] = "unreachable"
	}
	if check != nil {
		if err := check(ctx); err != nil {
			problems["consumers"] = err.Error()
		}
	}
	if len(problems) > 0 {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "problems": problems})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// readBody reads a request body of at most MaxBody bytes.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, errBodyTooLarge
	}
	if err != nil {
		return nil, newErr(http.StatusBadRequest, "invalid_json", "The request body could not be read.")
	}
	return body, nil
}

// decode reads the body into dst.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, dst any) error {
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	return decodeBody(body, dst, false)
}

// decodeBody unmarshals JSON, turning type errors into invalid_json with the
// field. An empty body is allowed when emptyOK.
func decodeBody(body []byte, dst any, emptyOK bool) error {
	if len(bytes.TrimSpace(body)) == 0 {
		if emptyOK {
			return nil
		}
		return newErr(http.StatusBadRequest, "invalid_json", "The request body must be a JSON object.")
	}
	if err := checkJSONLimits(body); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(dst); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			e := newErr(http.StatusBadRequest, "invalid_json", fmt.Sprintf("%s has the wrong type: expected %s.", te.Field, te.Type))
			e.Field = te.Field
			if te.Field == "" {
				e.Message = "The request body must be a JSON object."
			}
			return e
		}
		return newErr(http.StatusBadRequest, "invalid_json", "The request body is not valid JSON.")
	}
	if dec.More() {
		return newErr(http.StatusBadRequest, "invalid_json", "The request body has data after the JSON value.")
	}
	return nil
}

// statusWriter records the status for logs and metrics.
type statusWriter struct {
	http.ResponseWriter
	status int
	user   string
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Hijack lets websocket upgrades through; the status is then 101.
func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("web: response writer cannot hijack")
	}
	if w.status == 0 {
		w.status = http.StatusSwitchingProtocols
	}
	return h.Hijack()
}

type requestIDKey struct{}

// observe logs every request (route, status, duration, user; never bodies),
// counts it, and turns a panic into a 500.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rid := r.Header.Get("X-Request-Id")
		if rid == "" || len(rid) > 64 {
			rid = uuid.NewString()
		}
		w.Header().Set("X-Request-Id", rid)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		r = r.WithContext(context.WithValue(r.Context(), requestIDKey{}, rid))
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.ErrorContext(r.Context(), "panic serving request", "request_id", rid, "panic", fmt.Sprint(p))
				if sw.status == 0 {
					writeJSON(sw, http.StatusInternalServerError, map[string]any{"error": newErr(500, "internal", "Something went wrong on our side.")})
				}
			}
			route := r.Pattern
			if route == "" {
				route = "unmatched"
			}
			d := time.Since(start)
			s.metrics.requests.WithLabelValues(route, strconv.Itoa(sw.status)).Inc()
			s.metrics.latency.WithLabelValues(route).Observe(d.Seconds())
			level := slog.LevelInfo
			switch {
			case sw.status == http.StatusServiceUnavailable:
				level = slog.LevelWarn
			case sw.status >= 500:
				level = slog.LevelError
			}
			s.log.Log(r.Context(), level, "request", "request_id", rid, "method", r.Method, "route", route,
				"status", sw.status, "duration_ms", d.Milliseconds(), "user", sw.user)
		}()
		next.ServeHTTP(sw, r)
	})
}

type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newMetrics(reg *prometheus.Registry) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nightcall_http_requests_total", Help: "HTTP requests by route pattern and status.",
		}, []string{"route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "nightcall_http_request_duration_seconds", Help: "HTTP request latency by route pattern.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"route"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
