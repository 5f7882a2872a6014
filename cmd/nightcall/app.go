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

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/escalation/account"
	"github.com/nightcall-health/nightcall/escalation/audit"
	"github.com/nightcall-health/nightcall/escalation/paging"
	"github.com/nightcall-health/nightcall/events"
	"github.com/nightcall-health/nightcall/events/bus"
	"github.com/nightcall-health/nightcall/events/calllog"
	redisstore "github.com/nightcall-health/nightcall/events/redis"
	"github.com/nightcall-health/nightcall/events/sqlite"
	"github.com/nightcall-health/nightcall/video"
	"github.com/nightcall-health/nightcall/web"
	"github.com/nightcall-health/nightcall/web/pagehook"
	"github.com/nightcall-health/nightcall/web/push"
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
	closeSFU func() error
	turn     *video.TURN // nil without --turn-port
	pager    *paging.Pager
	// push and hook are the pager's other channels (paging_wiring.go);
	// hook is nil without --page-webhook.
	push      *push.Sender
	hook      *pagehook.Sender
	pushKeys  escalation.VAPIDKeys
	pushHosts escalation.PushHosts
	pushSubs  *escalation.PushSubscriptionCache // applied by the pager's consumer, before the pager
	calls     *calllog.Log
	callSub   *bus.TopicSubscriber
	caughtUp  atomic.Bool
	// pagingCaughtUp: the read model and the pager have caught up once.
	pagingCaughtUp atomic.Bool
	// readRestoredAt is the position the read model was restored to from
	// its snapshot at start (-1: none; snapshots.go).
	readRestoredAt int64
	// auditDone is closed when the audit model's restore after the start is
	// done (restoreAudit); its consumer waits for it. auditRestoredAt is the
	// position it was restored to (-1: none), set before.
	auditDone       chan struct{}
	auditRestoredAt int64
	// afterCatchUp runs once the read models reach restoreHead, the log's
	// head at start (the collector, off while they restore: restoregc.go).
	afterCatchUp func()
	restoreHead  int64
	// cleanup releases what the start took, in reverse order.
	cleanup cleanupStack
	// force, when done, cuts the shutdown short (a second signal).
	force context.Context
}

// backend is an event store that also keeps accounts.
type backend interface {
	events.Store
	account.Store
}

// openBackend opens the configured store and its outbox (the poison queue
// and the call events' topic).
func openBackend(ctx context.Context, cfg serveConfig) (backend, bus.Outbox, error) {
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

// newApp builds every part of the service in order: the store, the read
// models and their consumers, the pager, the SFU (which binds the media
// ports) and the HTTP handler. Nothing runs yet; run starts it. If a step
// fails, everything taken before it is released.
func newApp(ctx context.Context, cfg serveConfig, log *slog.Logger) (_ *app, err error) {
	a := &app{cfg: cfg, log: log, force: context.Background()}
	defer func() {
		if err != nil {
			err = errors.Join(err, a.cleanup.release())
		}
	}()
	loc, err := time.LoadLocation(cfg.Timezone)
	if err != nil {
		return nil, err
	}
	store, outbox, err := openBackend(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open the %s store: %w", cfg.Store, err)
	}
	a.store = store
	a.cleanup.push("store", store.Close)
	a.read = escalation.NewProjection(loc)
	if cfg.Demo {
		seeded, err := seedDemo(ctx, store, store, cfg.DemoPassword)
		if err != nil {
			return nil, err
		}
		log.Info("demo data", "seeded", seeded)
	}
	a.service, err = escalation.NewService(escalation.Config{Store: store, Read: a.read, NewID: newID})
	if err != nil {
		return nil, err
	}
	a.router, err = bus.NewRouter(log, outbox)
	if err != nil {
		return nil, err
	}
	sub, err := bus.NewLogSubscriber(bus.SubscriberConfig{Store: store, Logger: a.router.Logger(), From: a.read.Position})
	if err != nil {
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
		return nil, err
	}
	timings := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "nightcall_paging_seconds", Help: "Seconds from raise to first page, first receipt and accept.",
		Buckets: []float64{0.01, 0.05, 0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800},
	}, []string{"timing"})
	reg := prometheus.NewRegistry()
	if err := a.newPager(ctx, head, reg, func(t string, d time.Duration) { timings.WithLabelValues(t).Observe(d.Seconds()) }); err != nil {
		return nil, err
	}
	a.hub.SetPager(a.pager)
	a.service.SetPagedFor(a.pager.WasPaged)
	pagerSub, err := bus.NewLogSubscriber(bus.SubscriberConfig{Store: store, Logger: a.router.Logger(), From: a.pager.Position})
	if err != nil {
		return nil, err
	}
	a.router.AddSafetyCritical("pager", pagerSub, func(msg *message.Message) error {
		env, err := bus.Decode(msg)
		if err != nil {
			return err
		}
		a.pushSubs.Apply(env) // first: a page never goes to a subscription removed before it
		return a.pager.Apply(env)
	})

	a.audit = audit.NewModel()
	a.audit.Keep(loc, 72*time.Hour) // the API's default window, in the service's zone
	resumeGC := pauseGC()
	a.readRestoredAt = -1
	a.restoreSnapshots(ctx, head)
	a.catchUpRestored(ctx, head)
	a.afterCatchUp = resumeGC
	if a.readRestoredAt < 0 {
		resumeGC() // a full replay makes garbage the collector must take
	}
	a.cleanup.push("collector", func() error { resumeGC(); return nil })
	a.restoreHead = head
	a.auditDone, a.auditRestoredAt = make(chan struct{}), -1
	auditSub, err := bus.NewLogSubscriber(bus.SubscriberConfig{Store: store, Logger: a.router.Logger(),
		From: a.audit.Position, Wait: a.auditDone})
	if err != nil {
		return nil, err
	}
	a.router.AddProjection("audit", auditSub, func(msg *message.Message) error {
		env, err := bus.Decode(msg)
		if err != nil {
			return err
		}
		return a.audit.Apply(env)
	})

	// Call events go from the SFU to the outbox without waiting on the log,
	// and from the outbox to the resident streams behind Retry, redelivered
	// until recorded: none is dropped.
	a.calls, err = calllog.New(calllog.Config{Outbox: outbox, Store: store, Read: a.read, Logger: log, Ended: a.releaseCallHost})
	if err != nil {
		return nil, err
	}
	a.callSub, err = bus.NewTopicSubscriber(bus.TopicSubscriberConfig{Outbox: outbox, Checkpoints: store, Group: "call-log",
		Logger: watermill.NewSlogLogger(log)})
	if err != nil {
		return nil, err
	}
	a.router.AddSafetyCriticalOn("call-log", calllog.Topic, a.callSub, a.calls.Record)

	a.sfu, err = video.New(video.Config{
		UDPPort: cfg.WebRTCUDPPort, TCPPort: cfg.WebRTCTCPPort, PublicIP: cfg.WebRTCPublicIP, ListenIP: cfg.WebRTCListenIP,
		MuxUDP:     cfg.TURNPort > 0, // the embedded TURN relays to that one port only
		Interfaces: splitList(cfg.WebRTCInterfaces), IncludeLoopback: cfg.WebRTCLoopback, RejoinGrace: cfg.CallRejoinGrace, Logger: log,
		OnEvent: a.calls.OnEvent,
	})
	if err != nil {
		return nil, err
	}
	a.closeSFU = once(a.sfu.Close)
	a.cleanup.push("video", a.closeSFU)
	// The call ends when the decision is recorded (or the escalation withdrawn).
	callSub, err := bus.NewLogSubscriber(bus.SubscriberConfig{Store: store, Logger: a.router.Logger(), From: func() int64 { return head }})
	if err != nil {
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
			go a.sfu.CloseRoom(video.RoomID(ref.EscalationID), "the decision was recorded")
		case escalation.TypeSnapshotTaken, escalation.TypeCallFellBackToPhone:
			return a.noticeCall(msg) // notices.go
		}
		return nil
	})
	// A disabled account, a changed password or a sign-out anywhere drops
	// the sessions this instance holds in memory and closes their sockets.
	accountSub, err := bus.NewLogSubscriber(bus.SubscriberConfig{Store: store, Logger: a.router.Logger(), From: func() int64 { return head }})
	if err != nil {
		return nil, err
	}
	a.router.AddProjection("sessions", accountSub, func(msg *message.Message) error {
		if !escalation.IsAccountEventType(msg.Metadata.Get(bus.MetaType)) {
			return nil
		}
		env, err := bus.Decode(msg)
		if err != nil {
			return err
		}
		return a.server.ApplyAccountEvent(env)
	})

	reg.MustRegister(timings)
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "nightcall_read_model_position", Help: "Global log position the read model has applied.",
	}, func() float64 { return float64(a.read.Position()) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "nightcall_consumers_stalled", Help: "Safety-critical consumers (the pager, the call log) failing on an event; alert on > 0.",
	}, func() float64 { return float64(a.router.Stalled()) }))
	if a.turn, err = a.startTURN(reg); err != nil {
		return nil, err
	}
	if a.turn != nil {
		a.cleanup.push("turn", a.turn.Close)
	}
	a.server, err = web.New(web.Config{
		Service: a.service, Store: store, Accounts: store, Logger: log, Registry: reg,
		Ready: a.ready, PagingReady: a.pagingReady, TrustedOrigins: cfg.PublicOrigins, Pager: a.hub, Audit: a.audit, Location: loc,
		Video: a.sfu, ICEServers: splitList(cfg.ICEServers), Hosts: a.hosts(), AdvertiseURL: cfg.AdvertiseURL,
		PushHosts: a.pushHosts, PushPublicKey: a.pushKeys.PublicKey,
		TrustedProxies: mustProxies(cfg.TrustedProxies), SessionIdle: cfg.SessionIdle, SessionMax: cfg.SessionMax, TURN: a.turnConfig(),
		SignInClock: cfg.signInClock,
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// releaseCallHost gives up this instance's claim on a room once its call
// has ended (distributed mode).
func (a *app) releaseCallHost(ctx context.Context, room video.RoomID) {
	if h := a.hosts(); h != nil && a.cfg.AdvertiseURL != "" {
		if err := h.Release(context.WithoutCancel(ctx), "call:"+string(room), a.cfg.AdvertiseURL); err != nil {
			a.log.Warn("releasing a call host claim", "escalation_id", room, "err", err)
		}
	}
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

// ready fails until the read models and the pager have caught up with the
// log once after start, and whenever a safety-critical consumer is stalled.
// The HTTP listener serves before that: after a restart from snapshots the
// read model and the pager are at the head before it opens, so raises are
// paged while the audit model is still restoring (restoreAudit), and
// pagingReady (/readyz/paging, which the care-home page polls) says so.
func (a *app) ready(ctx context.Context) error {
	if !a.caughtUp.Load() {
		head, err := a.store.Head(ctx)
		if err != nil {
			return err
		}
		if err := a.pagingAt(head); err != nil {
			return err
		}
		if a.audit.Position() < head {
			return fmt.Errorf("audit model at %d of %d", a.audit.Position(), head)
		}
		a.caughtUp.Store(true)
	}
	return a.router.Healthy()
}

// pagingReady fails until the read model and the pager have caught up with
// the log once after start (a raise before that waits behind their
// replay), and whenever a safety-critical consumer is stalled.
func (a *app) pagingReady(ctx context.Context) error {
	if !a.pagingCaughtUp.Load() {
		head, err := a.store.Head(ctx)
		if err != nil {
			return err
		}
		if err := a.pagingAt(head); err != nil {
			return err
		}
	}
	return a.router.Healthy()
}

// pagingAt fails unless the read model and the pager have caught up with
// the log's head, and remembers once they have.
func (a *app) pagingAt(head int64) error {
	if a.pagingCaughtUp.Load() {
		return nil
	}
	if a.read.Position() < head {
		return fmt.Errorf("read model at %d of %d", a.read.Position(), head)
	}
	if !a.pager.CaughtUp() {
		return fmt.Errorf("pager replaying the log")
	}
	a.pagingCaughtUp.Store(true)
	return nil
}

// catchUp waits until the read models reach the log's head at start (or
// ctx is done, or catchUpWait has passed) and then runs afterCatchUp.
func (a *app) catchUp(ctx context.Context) {
	defer a.afterCatchUp()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	deadline := time.After(catchUpWait)
	for a.read.Position() < a.restoreHead || a.audit.Position() < a.restoreHead {
		select {
		case <-ctx.Done():
			return
		case <-deadline:
			return
		case <-t.C:
		}
	}
}

// catchUpWait bounds how long the collector stays off after a restore.
const catchUpWait = 2 * time.Minute

// reachable reports whether addr answers HTTP (used by tests and bench).
func reachable(addr string) bool {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + addr + "/healthz")
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// hosts is the call-host registry in distributed mode (nil on the embedded store).
func (a *app) hosts() web.Claimer {
	if h, ok := a.store.(web.Claimer); ok && a.cfg.Store == "redis" {
		return h
	}
	return nil
}

// Shutdown deadlines, each cut short by a second signal.
const (
	httpDrainTimeout = 15 * time.Second
	callDrainTimeout = 10 * time.Second
	readDrainTimeout = 10 * time.Second
)

// Run is `nightcall serve`: it builds the service, binds its HTTP listener
// and serves until ctx is done (the first signal), then shuts down in order.
// When force is done (the second signal) the shutdown stops waiting. A start
// that fails half-way releases everything it took: store, media ports,
// listener.
func Run(ctx, force context.Context, cfg serveConfig, log *slog.Logger) error {
	a, err := newApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	if force != nil {
		a.force = force
	}
	ln, err := listen(cfg)
	if err != nil {
		return errors.Join(fmt.Errorf("listen on %s: %w", cfg.Addr, err), a.cleanup.release())
	}
	return a.run(ctx, ln)
}

// run serves on ln until ctx is done or a part fails, every part on one
// errgroup. The shutdown goes in order, each step under a deadline: HTTP
// first (in-flight requests finish), then the calls (each ends and its end
// reaches the outbox and then the log), then the consumers and workers, and
// last what the start took (the cleanup stack: media ports, store).
func (a *app) run(ctx context.Context, ln net.Listener) (err error) {
	defer func() { err = errors.Join(err, a.cleanup.release()) }()
	a.cleanup.push("http listener", once(ignoreClosed(ln.Close)))

	background := context.WithoutCancel(ctx)
	routerCtx, stopRouter := context.WithCancel(background)
	defer stopRouter()
	workersCtx, stopWorkers := context.WithCancel(background)
	defer stopWorkers()
	writerCtx, stopWriter := context.WithCancel(background)
	defer stopWriter()

	routerDone, err := a.router.Start(routerCtx)
	if err != nil {
		return fmt.Errorf("start consumers: %w", err)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := <-routerDone; err != nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("consumers: %w", err)
		}
		if routerCtx.Err() == nil {
			return errors.New("consumers stopped on their own")
		}
		return nil
	})
	g.Go(func() error { a.hub.Run(workersCtx); return nil })
	g.Go(func() error { a.runSnapshots(workersCtx); return nil })
	g.Go(func() error { a.restoreAudit(workersCtx); return nil })
	g.Go(func() error { a.catchUp(workersCtx); return nil })
	g.Go(func() error { a.runChannels(workersCtx); return nil })
	g.Go(func() error {
		if err := a.pager.Run(workersCtx); err != nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("pager: %w", err)
		}
		return nil
	})
	writerDone := make(chan struct{})
	g.Go(func() error { defer close(writerDone); return a.calls.Run(writerCtx) })

	srv := &http.Server{
		Handler:           a.server,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http: %w", err)
		}
		return nil
	})
	a.log.Info("serving", "addr", ln.Addr().String(), "store", a.cfg.Store, "data_dir", a.cfg.DataDir)

	g.Go(func() error {
		<-gctx.Done()
		a.log.Info("shutting down")
		a.shutdownHTTP(srv)
		if err := a.closeSFU(); err != nil {
			a.log.Error("closing video", "err", err)
		}
		stopWriter()
		a.waitStep("call events to the outbox", callDrainTimeout, func(ctx context.Context) error {
			select {
			case <-writerDone:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		a.waitStep("call events to the log", callDrainTimeout, func(ctx context.Context) error {
			return a.callSub.Drained(ctx, calllog.Topic)
		})
		// The read models reach the log's head before the workers stop, so
		// the snapshots saved at shutdown reflect every event acknowledged
		// (on a store that keeps snapshots; bounded, like each step).
		a.waitStep("read models to the log's head", readDrainTimeout, a.readModelsAtHead)
		stopWorkers()
		stopRouter()
		return nil
	})
	return g.Wait()
}

// readModelsAtHead waits until the read model and the audit model have
// applied the log up to its head as it is now (the audit model only once
// its restore after the start is done: restoreAudit).
func (a *app) readModelsAtHead(ctx context.Context) error {
	if _, ok := a.store.(events.SnapshotStore); !ok {
		return nil // no snapshots to save: nothing gained by waiting
	}
	head, err := a.store.Head(ctx)
	if err != nil {
		return err
	}
	if err := a.read.WaitFor(ctx, head); err != nil {
		return fmt.Errorf("read model at %d of %d: %w", a.read.Position(), head, err)
	}
	select {
	case <-a.auditDone:
	default:
		return nil // still restoring: no snapshot of it is saved (runSnapshots)
	}
	if err := a.audit.WaitFor(ctx, head); err != nil {
		return fmt.Errorf("audit model at %d of %d: %w", a.audit.Position(), head, err)
	}
	return nil
}

// shutdownHTTP stops accepting, lets in-flight requests finish (at most
// httpDrainTimeout, or until forced) and then drops what is left.
func (a *app) shutdownHTTP(srv *http.Server) {
	ctx, cancel := context.WithTimeout(a.force, httpDrainTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		a.log.Warn("http requests still running at the deadline; closing them", "err", err)
		_ = srv.Close()
	}
}

// waitStep runs one shutdown wait under its deadline (cut short by force).
func (a *app) waitStep(what string, d time.Duration, wait func(context.Context) error) {
	ctx, cancel := context.WithTimeout(a.force, d)
	defer cancel()
	if err := wait(ctx); err != nil {
		a.log.Warn("shutdown step cut short; the rest resumes from the outbox at the next start", "step", what, "err", err)
	}
}

// cleanupStack is what a start has taken, released in reverse order: a
// failed start gives back its ports and files, and a stop gives back the rest.
type cleanupStack struct {
	mu    sync.Mutex
	steps []cleanupStep
}

type cleanupStep struct {
	name    string
	release func() error
}

// push adds a release to run before those pushed earlier.
func (c *cleanupStack) push(name string, release func() error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.steps = append(c.steps, cleanupStep{name, release})
}

// release runs every release, last pushed first, once; it returns their
// errors joined.
func (c *cleanupStack) release() error {
	c.mu.Lock()
	steps := c.steps
	c.steps = nil
	c.mu.Unlock()
	var errs []error
	for i := len(steps) - 1; i >= 0; i-- {
		if err := steps[i].release(); err != nil {
			errs = append(errs, fmt.Errorf("release %s: %w", steps[i].name, err))
		}
	}
	return errors.Join(errs...)
}

// once makes a release safe to call twice (the shutdown closes the SFU
// before the cleanup stack would).
func once(f func() error) func() error { return sync.OnceValue(f) }

// ignoreClosed treats an already closed listener as released.
func ignoreClosed(f func() error) func() error {
	return func() error {
		if err := f(); err != nil && !errors.Is(err, net.ErrClosed) {
			return err
		}
		return nil
	}
}

// splitList splits a comma-separated flag value, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
