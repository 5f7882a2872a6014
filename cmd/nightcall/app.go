package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/escalation/audit"
	"github.com/nightcall-health/nightcall/escalation/paging"
	"github.com/nightcall-health/nightcall/events"
	"github.com/nightcall-health/nightcall/events/bus"
	redisstore "github.com/nightcall-health/nightcall/events/redis"
	"github.com/nightcall-health/nightcall/events/sqlite"
	"github.com/nightcall-health/nightcall/video"
	"github.com/nightcall-health/nightcall/web"
)

// app is one running Nightcall process: store, read model, consumers, HTTP.
type app struct {
	cfg      serveConfig
	log      *slog.Logger
	store    backend
	read     *escalation.Projection
	service  *escalation.Service
	router   *bus.Router
	server   *web.Server
	hub      *web.PagerHub
	audit    *audit.Model
	sfu      *video.SFU
	callLog  chan video.RoomEvent
	pager    *paging.Pager
	caughtUp atomic.Bool
}

// backend is an event store that also keeps accounts and the poison queue.
type backend interface {
	events.Store
	events.AccountStore
}

// openBackend opens the configured store and its poison-queue publisher.
func openBackend(ctx context.Context, cfg serveConfig) (backend, message.Publisher, error) {
	if cfg.Store == "redis" {
		s, err := redisstore.Open(ctx, redisstore.Config{URL: cfg.RedisURL})
		if err != nil {
			return nil, nil, err
		}
		return s, s.Publisher(), nil
	}
	s, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(cfg.DataDir, "nightcall.db")})
	if err != nil {
		return nil, nil, err
	}
	return s, s.Publisher(), nil
}

func newApp(ctx context.Context, cfg serveConfig, log *slog.Logger) (*app, error) {
	store, poison, err := openBackend(ctx, cfg)
	if err != nil {
		return nil, err
	}
	loc, err := time.LoadLocation(cfg.Timezone)
	if err != nil {
		store.Close()
		return nil, err
	}
	a := &app{cfg: cfg, log: log, store: store, read: escalation.NewProjection(loc)}
	if cfg.Demo {
		seeded, err := seedDemo(ctx, store, store, cfg.DemoPassword)
		if err != nil {
			store.Close()
			return nil, err
		}
		log.Info("demo data", "seeded", seeded)
	}
	a.service, err = escalation.NewService(escalation.Config{Store: store, Read: a.read, NewID: newID})
	if err != nil {
		store.Close()
		return nil, err
	}
	a.router, err = bus.NewRouter(log, poison)
	if err != nil {
		store.Close()
		return nil, err
	}
	sub, err := bus.NewLogSubscriber(bus.SubscriberConfig{Store: store, From: a.read.Position})
	if err != nil {
		store.Close()
		return nil, err
	}
	a.router.AddProjection("read-model", sub, func(msg *message.Message) error {
		env, err := bus.Decode(msg)
		if err != nil {
			return err
		}
		return a.read.Apply(env)
	})

	a.hub = web.NewPagerHub(a.read, log)
	head, err := store.Head(ctx)
	if err != nil {
		store.Close()
		return nil, err
	}
	timings := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "nightcall_paging_seconds", Help: "Seconds from raise to first page, first receipt and accept.",
		Buckets: []float64{0.01, 0.05, 0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800},
	}, []string{"timing"})
	a.pager, err = paging.New(paging.Config{
		Store: store, Service: a.service, Rota: a.read.RotaLevelsAt, NewID: newID, Notify: a.hub, Logger: log,
		Policy:  paging.Policy{PageTimeout: cfg.PageTimeout, ReceiptTimeout: cfg.PageReceiptTimeout},
		Observe: func(t string, d time.Duration) { timings.WithLabelValues(t).Observe(d.Seconds()) },
	}, head)
	if err != nil {
		store.Close()
		return nil, err
	}
	a.hub.SetPager(a.pager)
	a.service.SetPagedFor(a.pager.WasPaged)
	pagerSub, err := bus.NewLogSubscriber(bus.SubscriberConfig{Store: store, From: a.pager.Position})
	if err != nil {
		store.Close()
		return nil, err
	}
	a.router.AddSafetyCritical("pager", pagerSub, func(msg *message.Message) error {
		env, err := bus.Decode(msg)
		if err != nil {
			return err
		}
		return a.pager.Apply(env)
	})

	a.audit = audit.NewModel()
	auditSub, err := bus.NewLogSubscriber(bus.SubscriberConfig{Store: store, From: a.audit.Position})
	if err != nil {
		store.Close()
		return nil, err
	}
	a.router.AddProjection("audit", auditSub, func(msg *message.Message) error {
		env, err := bus.Decode(msg)
		if err != nil {
			return err
		}
		return a.audit.Apply(env)
	})

	var ifaces []string
	for _, i := range strings.Split(cfg.WebRTCInterfaces, ",") {
		if i = strings.TrimSpace(i); i != "" {
			ifaces = append(ifaces, i)
		}
	}
	a.callLog = make(chan video.RoomEvent, 4096)
	a.sfu, err = video.New(video.Config{
		UDPPort: cfg.WebRTCUDPPort, TCPPort: cfg.WebRTCTCPPort, PublicIP: cfg.WebRTCPublicIP, ListenIP: cfg.WebRTCListenIP,
		Interfaces: ifaces, IncludeLoopback: cfg.WebRTCLoopback, RejoinGrace: cfg.CallRejoinGrace, Logger: log,
		OnEvent: func(e video.RoomEvent) {
			select {
			case a.callLog <- e:
			default:
				log.Error("call event queue full; event not recorded", "escalation_id", e.Room, "kind", e.Kind)
			}
		},
	})
	if err != nil {
		store.Close()
		return nil, err
	}
	// The call ends when the decision is recorded (or the escalation withdrawn).
	callSub, err := bus.NewLogSubscriber(bus.SubscriberConfig{Store: store, From: func() int64 { return head }})
	if err != nil {
		store.Close()
		return nil, err
	}
	a.router.AddProjection("calls", callSub, func(msg *message.Message) error {
		switch msg.Metadata.Get(bus.MetaType) {
		case escalation.TypeEscalationDecided, escalation.TypeEscalationWithdrawn:
			env, err := bus.Decode(msg)
			if err != nil {
				return err
			}
			var ref struct {
				EscalationID string `json:"escalation_id"`
			}
			if err := json.Unmarshal(env.Data, &ref); err != nil {
				return err
			}
			go a.sfu.CloseRoom(ref.EscalationID, "the decision was recorded")
		}
		return nil
	})

	reg := prometheus.NewRegistry()
	reg.MustRegister(timings)
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "nightcall_read_model_position", Help: "Global log position the read model has applied.",
	}, func() float64 { return float64(a.read.Position()) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "nightcall_consumers_stalled", Help: "Safety-critical consumers (the pager) failing on an event; alert on > 0.",
	}, func() float64 { return float64(a.router.Stalled()) }))
	a.server, err = web.New(web.Config{
		Service: a.service, Store: store, Accounts: store, Logger: log, Registry: reg,
		Ready: a.ready, TrustedOrigins: cfg.PublicOrigins, Pager: a.hub, Audit: a.audit, Location: loc,
		Video: a.sfu, ICEServers: splitList(cfg.ICEServers), Hosts: a.hosts(), AdvertiseURL: cfg.AdvertiseURL,
	})
	if err != nil {
		store.Close()
		return nil, err
	}
	return a, nil
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

func jsonOf(e escalation.Event) (json.RawMessage, error) { return json.Marshal(e) }

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// ready fails until the read model has caught up with the log once after
// start, and whenever a safety-critical consumer is stalled.
func (a *app) ready(ctx context.Context) error {
	if !a.caughtUp.Load() {
		head, err := a.store.Head(ctx)
		if err != nil {
			return err
		}
		if a.read.Position() < head {
			return fmt.Errorf("read model at %d of %d", a.read.Position(), head)
		}
		if a.audit.Position() < head {
			return fmt.Errorf("audit model at %d of %d", a.audit.Position(), head)
		}
		if !a.pager.CaughtUp() {
			return fmt.Errorf("pager replaying the log")
		}
		a.caughtUp.Store(true)
	}
	return a.router.Healthy()
}

// run serves until ctx is done, then drains: HTTP first (in-flight requests
// finish), then the consumers, then the store.
func (a *app) run(ctx context.Context, ln net.Listener) error {
	defer a.store.Close()
	routerCtx, stopRouter := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRouter()
	routerDone, err := a.router.Start(routerCtx)
	if err != nil {
		return fmt.Errorf("start consumers: %w", err)
	}
	var workers sync.WaitGroup
	workers.Add(3)
	go func() { defer workers.Done(); a.recordCalls(routerCtx) }()
	go func() { defer workers.Done(); a.hub.Run(routerCtx) }()
	go func() { defer workers.Done(); _ = a.pager.Run(routerCtx) }()
	srv := &http.Server{
		Handler:           a.server,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	a.log.Info("serving", "addr", ln.Addr().String(), "store", a.cfg.Store, "data_dir", a.cfg.DataDir)

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		return err
	}
	a.log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		a.log.Error("http shutdown", "err", err)
	}
	if err := a.sfu.Close(); err != nil {
		a.log.Error("closing video", "err", err)
	}
	stopRouter()
	workers.Wait()
	if err := <-routerDone; err != nil && !errors.Is(err, context.Canceled) {
		a.log.Error("consumers stopped", "err", err)
	}
	return nil
}

// reachable reports whether addr answers HTTP (used by tests and bench).
func reachable(addr string) bool {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + addr + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// hosts is the call-host registry in distributed mode (nil on the embedded store).
func (a *app) hosts() web.Claimer {
	if h, ok := a.store.(web.Claimer); ok && a.cfg.Store == "redis" {
		return h
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// recordCalls appends the SFU's room events to the resident streams, in order.
func (a *app) recordCalls(ctx context.Context) {
	for {
		var e video.RoomEvent
		select {
		case e = <-a.callLog:
		case <-ctx.Done():
			// Record what is already queued (a shutdown ends calls) before stopping.
			select {
			case e = <-a.callLog:
			default:
				return
			}
		}
		id := escalation.EscalationID(e.Room)
		var ev escalation.Event
		switch e.Kind {
		case video.EventStarted:
			ev = &escalation.CallStarted{EscalationID: id, CallID: e.CallID}
		case video.EventJoined:
			ev = &escalation.CallParticipantJoined{CallParticipant: escalation.CallParticipant{EscalationID: id, CallID: e.CallID, Role: e.Role}}
		case video.EventLeft:
			ev = &escalation.CallParticipantLeft{CallParticipant: escalation.CallParticipant{EscalationID: id, CallID: e.CallID, Role: e.Role}}
		case video.EventEnded:
			if h := a.hosts(); h != nil && a.cfg.AdvertiseURL != "" {
				_ = h.Release(context.WithoutCancel(ctx), "call:"+e.Room, a.cfg.AdvertiseURL)
			}
			q := make([]escalation.CallQuality, len(e.Quality))
			for i, v := range e.Quality {
				q[i] = escalation.CallQuality(v)
			}
			ev = &escalation.CallEnded{EscalationID: id, CallID: e.CallID, DurationSeconds: e.Duration.Seconds(), Reason: e.Reason, Quality: q}
		default:
			continue
		}
		for attempt := 0; ; attempt++ {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			err := a.service.RecordCall(rctx, id, ev)
			cancel()
			if err == nil {
				break
			}
			a.log.Error("recording a call event", "escalation_id", id, "kind", e.Kind, "err", err)
			if attempt >= 5 {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}
