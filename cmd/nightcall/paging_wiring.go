package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/escalation/paging"
	"github.com/nightcall-health/nightcall/events"
	"github.com/nightcall-health/nightcall/web/pagehook"
	"github.com/nightcall-health/nightcall/web/push"
)

// pagerHealth names the pager's own writes among the safety-critical duties
// (/readyz, nightcall_consumers_stalled).
const pagerHealth = "pager-writes"

// claimLease is how long one instance holds the duty to send a page by push
// or webhook (distributed mode).
const claimLease = 15 * time.Minute

// newPager builds the pager and the channels it pages on: the pager sockets
// (a.hub), Web Push with the store's VAPID pair (made on first start), and
// the page webhook when --page-webhook is set. Their metrics go to reg.
func (a *app) newPager(ctx context.Context, head int64, reg prometheus.Registerer, observe func(string, time.Duration)) error {
	cfg := a.cfg
	hosts, err := escalation.ParsePushHosts(cfg.PushAllowedHosts)
	if err != nil {
		return err
	}
	a.pushHosts = hosts
	keys, err := a.service.PushKeys(ctx)
	if err != nil {
		return fmt.Errorf("the Web Push key pair: %w", err)
	}
	a.pushKeys = keys
	claim := a.claimer()
	pusher := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "nightcall_push_seconds", Help: "Seconds from a page being recorded to its push service accepting the push.",
		Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
	})
	if err := reg.Register(pusher); err != nil {
		return err
	}
	gone := escalation.Meta{Actor: escalation.Actor{Person: escalation.Person{Username: "pager"}}}
	// The subscriptions are read from memory, kept current by the pager's
	// consumer (app.go), not from the store at every page.
	a.pushSubs = escalation.NewPushSubscriptionCache(a.store)
	a.push, err = push.New(push.Config{
		Keys: keys, Subject: cfg.pushSubject(), Hosts: hosts, Claim: claim, MaxTTL: cfg.PageTimeout,
		Subscriptions: a.pushSubs.Subscriptions, Current: a.pushSubs.Subscription,
		Remove: func(ctx context.Context, u escalation.Username, id escalation.PushSubscriptionID) error {
			return a.service.RemovePushSubscription(ctx, gone, u, id, escalation.PushGone)
		},
		HomeName:   func(id escalation.CareHomeID) string { return a.read.Home(id).Name },
		Observe:    func(d time.Duration) { pusher.Observe(d.Seconds()) },
		Registerer: reg, Logger: a.log.With("channel", "push"),
	})
	if err != nil {
		return err
	}
	notify := paging.Notifiers{a.hub, a.push}
	if cfg.PageWebhook != "" {
		a.hook, err = pagehook.New(pagehook.Config{
			URL: cfg.PageWebhook, Secret: cfg.PageWebhookSecret, Claim: claim,
			Person: func(ctx context.Context, u escalation.Username) (string, string, error) {
				acct, err := a.store.UserByName(ctx, u)
				return acct.Name, acct.Phone, err
			},
			Home: func(id escalation.CareHomeID) (string, string) {
				h := a.read.Home(id)
				return h.Name, h.FallbackPhone
			},
			Registerer: reg, Logger: a.log.With("channel", "page_webhook"),
		})
		if err != nil {
			return err
		}
		notify = append(notify, a.hook)
	}

	// The pager writes through its own store (tests wrap it to make the
	// writes fail), unanswered included.
	var pagerStore events.Store = a.store
	pagerService := a.service
	if cfg.pagerStore != nil {
		pagerStore = cfg.pagerStore(a.store)
		if pagerService, err = escalation.NewService(escalation.Config{Store: pagerStore, Read: a.read, NewID: newID}); err != nil {
			return err
		}
	}
	a.pager, err = paging.New(paging.Config{
		Store: pagerStore, Service: pagerService, Rota: a.read.RotaLevelsAt, RotaAt: a.read.WaitFor, NewID: newID,
		Notify: notify, Logger: a.log,
		Policy:  paging.Policy{PageTimeout: cfg.PageTimeout, ReceiptTimeout: cfg.PageReceiptTimeout, JoinTimeout: cfg.JoinTimeout},
		Observe: observe,
		Health:  func(err error) { a.router.Report(pagerHealth, err) },
	}, head)
	return err
}

// claimer makes one instance of several send each push and webhook message
// (distributed mode); nil on the embedded store, where there is one.
func (a *app) claimer() func(ctx context.Context, key string) (bool, error) {
	h := a.hosts()
	if h == nil {
		return nil
	}
	owner := a.cfg.AdvertiseURL
	if owner == "" {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		owner = "instance-" + hex.EncodeToString(b)
	}
	return func(ctx context.Context, key string) (bool, error) {
		holder, err := h.Claim(ctx, key, owner, claimLease)
		return holder == owner, err
	}
}

// runChannels runs the push and webhook senders until ctx is done.
func (a *app) runChannels(ctx context.Context) {
	done := make(chan struct{})
	if a.hook != nil {
		go func() { defer close(done); a.hook.Run(ctx) }()
	} else {
		close(done)
	}
	a.push.Run(ctx)
	<-done
}
