package escalation

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nightcall-health/nightcall/events"
)

// Web Push (RFC 8030, 8291, 8292): the service's VAPID key pair, on stream
// push-vapid, and each consultant's push subscriptions, on stream
// push-{username}. A subscription is a device's push endpoint and the keys a
// page is encrypted to; it is not patient data.
const (
	TypePushKeysCreated         = "push.vapid_keys_created"
	TypePushSubscriptionSaved   = "push.subscription_saved"
	TypePushSubscriptionRemoved = "push.subscription_removed"
)

// PushSubscriptionID names one device's subscription. It is derived from the
// endpoint, so the same endpoint posted twice is the same subscription.
type PushSubscriptionID string

// PushRemoval says why a subscription was removed.
type PushRemoval string

const (
	// PushUnsubscribed: the consultant (or the device) removed it.
	PushUnsubscribed PushRemoval = "unsubscribed"
	// PushGone: the push service answered 404 or 410, the subscription no longer exists.
	PushGone PushRemoval = "gone"
)

// VAPIDKeys is the service's application-server key pair (P-256), each key
// base64url without padding: the public key as an uncompressed point (65
// bytes), the private key as its 32-byte scalar. One pair serves every
// instance; the first instance to start makes it.
type VAPIDKeys struct {
	PublicKey  string `json:"public_key"`
	PrivateKey string `json:"private_key"`
}

// PushKeysCreated: the VAPID key pair was made.
type PushKeysCreated struct {
	VAPIDKeys
}

// PushSubscription is one device's Web Push subscription.
type PushSubscription struct {
	ID        PushSubscriptionID `json:"id"`
	Username  Username           `json:"username"`
	Endpoint  string             `json:"endpoint"`
	P256dh    string             `json:"p256dh"`
	Auth      string             `json:"auth"`
	CreatedAt time.Time          `json:"created_at"`
}

// PushSubscriptionSaved: a subscription was added, or its keys changed.
type PushSubscriptionSaved struct {
	Subscription PushSubscription `json:"subscription"`
}

// PushSubscriptionRemoved: a subscription was removed.
type PushSubscriptionRemoved struct {
	ID       PushSubscriptionID `json:"id"`
	Username Username           `json:"username"`
	Reason   PushRemoval        `json:"reason"`
}

func (PushKeysCreated) EventType() string         { return TypePushKeysCreated }
func (PushSubscriptionSaved) EventType() string   { return TypePushSubscriptionSaved }
func (PushSubscriptionRemoved) EventType() string { return TypePushSubscriptionRemoved }

func init() {
	register(
		func() Event { return &PushKeysCreated{} },
		func() Event { return &PushSubscriptionSaved{} },
		func() Event { return &PushSubscriptionRemoved{} },
	)
}

// PushVAPIDStream holds the VAPID key pair.
func PushVAPIDStream() string { return "push-vapid" }

// PushStream holds a consultant's subscriptions.
func PushStream(u Username) string { return "push-" + string(u) }

// PushHosts is where Web Push may be sent: host names, "host:port", or
// "*.suffix" for every host under suffix. Plain http is allowed only for a
// loopback host named exactly (tests run a push service on 127.0.0.1), so an
// endpoint can never make the server an open proxy into its own network.
type PushHosts []string

// DefaultPushHosts are the push services of the major browsers: Chrome and
// Edge on Android (FCM), Firefox (Mozilla autopush), Safari and iOS (Apple),
// Edge on Windows (WNS).
var DefaultPushHosts = PushHosts{
	"fcm.googleapis.com", "android.googleapis.com",
	"updates.push.services.mozilla.com", "push.services.mozilla.com",
	"web.push.apple.com", "*.push.apple.com",
	"*.notify.windows.com",
}

// ParsePushHosts reads a comma-separated --push-allowed-hosts value.
func ParsePushHosts(list string) (PushHosts, error) {
	var out PushHosts
	for _, h := range strings.Split(list, ",") {
		h = strings.ToLower(strings.TrimSpace(h))
		if h == "" {
			continue
		}
		if strings.ContainsAny(h, "/@?#") || strings.Count(strings.TrimPrefix(h, "*."), "*") > 0 {
			return nil, errors.New(h + " is not a host, host:port or *.domain")
		}
		out = append(out, h)
	}
	return out, nil
}

// Allows reports whether u may be sent Web Push: https on an allowed host,
// or http on a loopback host named in the list.
func (hs PushHosts) Allows(u *url.URL) bool {
	if u == nil || u.User != nil || u.Host == "" || u.Opaque != "" {
		return false
	}
	host := strings.ToLower(u.Hostname())
	hostPort := strings.ToLower(u.Host)
	switch u.Scheme {
	case "https":
		for _, h := range hs {
			switch {
			case h == host || h == hostPort:
				return true
			case strings.HasPrefix(h, "*.") && strings.HasSuffix(host, h[1:]) && u.Port() == "":
				return true
			}
		}
	case "http":
		if !isLoopback(host) {
			return false
		}
		return slices.Contains(hs, host) || slices.Contains(hs, hostPort)
	}
	return false
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// PushSubscriptionInput is the browser's PushSubscription JSON.
type PushSubscriptionInput struct {
	Endpoint       string   `json:"endpoint"`
	ExpirationTime *float64 `json:"expirationTime"`
	Keys           struct {
		P256dh string `json:"p256dh"`
		Auth   string `json:"auth"`
	} `json:"keys"`
}

// maxEndpoint bounds an endpoint URL; real ones are a few hundred bytes.
const maxEndpoint = 2048

// decodeKey reads a subscription key: base64url (the browser's form), with or
// without padding; standard base64 is taken too.
func decodeKey(s string) ([]byte, error) {
	s = strings.TrimRight(strings.TrimSpace(s), "=")
	if b, err := base64.RawURLEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawStdEncoding.DecodeString(s)
}

// Validate checks the subscription: an endpoint that hosts allows, a P-256
// public key of 65 bytes on the curve, and a 16-byte auth secret.
func (in PushSubscriptionInput) Validate(hosts PushHosts) error {
	if strings.TrimSpace(in.Endpoint) == "" {
		return inputErr(KindMissingField, "endpoint", "give the subscription's endpoint")
	}
	u, err := url.Parse(in.Endpoint)
	if err != nil || len(in.Endpoint) > maxEndpoint || !u.IsAbs() {
		return inputErr(KindInvalidValue, "endpoint", "the endpoint is not an absolute URL")
	}
	if !hosts.Allows(u) {
		return inputErr(KindInvalidValue, "endpoint", "push is sent only over https to a browser's push service; this endpoint is not allowed")
	}
	if in.Keys.P256dh == "" {
		return inputErr(KindMissingField, "keys.p256dh", "give the subscription's p256dh key")
	}
	if in.Keys.Auth == "" {
		return inputErr(KindMissingField, "keys.auth", "give the subscription's auth secret")
	}
	pub, err := decodeKey(in.Keys.P256dh)
	if err != nil || len(pub) != 65 {
		return inputErr(KindInvalidValue, "keys.p256dh", "p256dh must be base64url of a 65-byte uncompressed P-256 point")
	}
	if _, err := ecdh.P256().NewPublicKey(pub); err != nil {
		return inputErr(KindInvalidValue, "keys.p256dh", "p256dh is not a point on P-256")
	}
	auth, err := decodeKey(in.Keys.Auth)
	if err != nil || len(auth) != 16 {
		return inputErr(KindInvalidValue, "keys.auth", "auth must be base64url of 16 bytes")
	}
	return nil
}

// pushStream is a consultant's subscriptions, folded from push-{username}.
type pushStream struct {
	subs []PushSubscription
	changes
}

func (p *pushStream) publicState() any { return p.subs }

func loadPushStream(_ context.Context, envs []events.Envelope) (*pushStream, error) {
	p := &pushStream{}
	for _, env := range envs {
		ev, err := Decode(env)
		if err != nil {
			return nil, err
		}
		p.apply(ev)
		p.version = env.Version
	}
	return p, nil
}

func (p *pushStream) apply(ev Event) {
	switch e := ev.(type) {
	case *PushSubscriptionSaved:
		if i := p.index(e.Subscription.ID); i >= 0 {
			p.subs[i] = e.Subscription
		} else {
			p.subs = append(p.subs, e.Subscription)
		}
	case *PushSubscriptionRemoved:
		if i := p.index(e.ID); i >= 0 {
			p.subs = slices.Delete(p.subs, i, i+1)
		}
	}
}

func (p *pushStream) index(id PushSubscriptionID) int {
	return slices.IndexFunc(p.subs, func(s PushSubscription) bool { return s.ID == id })
}

func (p *pushStream) record(ev Event, at time.Time) {
	p.apply(ev)
	p.keep(ev, at)
}

// pushSubscriptionID is derived from the endpoint alone.
func pushSubscriptionID(endpoint string) PushSubscriptionID {
	return PushSubscriptionID(events.DeterministicID("push-subscription|" + endpoint))
}

// SavedPushSubscription is what SavePushSubscription did: the subscription
// and whether it is new (else it was there and its keys were updated).
type SavedPushSubscription struct {
	PushSubscription
	Created bool
}

// SavePushSubscription adds a device's subscription for the consultant in
// meta, or updates the keys of the one with the same endpoint. Only
// consultants have subscriptions.
func (s *Service) SavePushSubscription(ctx context.Context, meta Meta, in PushSubscriptionInput, hosts PushHosts) (SavedPushSubscription, error) {
	if meta.Actor.Role != RoleConsultant {
		return SavedPushSubscription{}, ErrForbidden
	}
	if err := in.Validate(hosts); err != nil {
		return SavedPushSubscription{}, err
	}
	user := meta.Actor.Username
	id := pushSubscriptionID(in.Endpoint)
	var out SavedPushSubscription
	as := saveAs[*pushStream]{actor: user, correlationID: meta.CorrelationID}
	if meta.IdempotencyOf != nil {
		as.idempotency = func(*pushStream) (*events.IdempotencyRecord, error) { return meta.IdempotencyOf(out) }
	}
	now := s.cfg.Now()
	_, _, err := update(ctx, s.repo, PushStream(user), as, loadPushStream, func(p *pushStream) error {
		sub := PushSubscription{ID: id, Username: user, Endpoint: in.Endpoint, P256dh: in.Keys.P256dh, Auth: in.Keys.Auth, CreatedAt: now}
		out = SavedPushSubscription{PushSubscription: sub, Created: true}
		if i := p.index(id); i >= 0 {
			old := p.subs[i]
			sub.CreatedAt = old.CreatedAt
			out = SavedPushSubscription{PushSubscription: sub}
			if old == sub {
				return nil // the same subscription again: nothing to record
			}
		}
		p.record(&PushSubscriptionSaved{Subscription: sub}, now)
		return nil
	})
	if err != nil {
		return SavedPushSubscription{}, err
	}
	return out, nil
}

// PushSubscriptions returns a consultant's subscriptions, oldest first, read
// from the log (so a GET after a POST on any instance shows it).
func (s *Service) PushSubscriptions(ctx context.Context, user Username) ([]PushSubscription, error) {
	envs, err := s.cfg.Store.Load(ctx, PushStream(user), 0)
	if errors.Is(err, events.ErrStreamNotFound) {
		return []PushSubscription{}, nil
	}
	if err != nil {
		return nil, err
	}
	p, err := loadPushStream(ctx, envs)
	if err != nil {
		return nil, err
	}
	return slices.Clone(p.subs), nil
}

// PushSubscriptionCache holds consultants' push subscriptions in memory, so
// that a page reads no store. It is event-sourced: a consultant's
// subscriptions are folded from their push stream the first time they are
// asked for, and kept current from then on by Apply, which the consumer
// that feeds the pager calls with every event of the log before the pager
// sees it (so a subscription removed before a page is never in that page's
// fan-out). Versions make it exact: an event already folded is skipped, and
// one arriving while the stream is being read is applied after the read.
type PushSubscriptionCache struct {
	store events.Store

	mu    sync.Mutex
	users map[Username]*pushEntry
}

// pushEntry is one consultant's subscriptions in the cache.
type pushEntry struct {
	subs    []PushSubscription
	version int64
	// loading is closed once the stream has been read; nil since then.
	loading chan struct{}
	// early are the stream's events applied while it was being read.
	early []events.Envelope
}

// NewPushSubscriptionCache returns an empty cache over store.
func NewPushSubscriptionCache(store events.Store) *PushSubscriptionCache {
	return &PushSubscriptionCache{store: store, users: map[Username]*pushEntry{}}
}

// Apply takes one event of the global log (in log order, at least once).
// It never fails: an event it cannot read drops that consultant from the
// cache, to be read from the store again when next asked for.
func (c *PushSubscriptionCache) Apply(env events.Envelope) {
	rest, ok := strings.CutPrefix(env.Stream, "push-")
	if !ok || env.Stream == PushVAPIDStream() {
		return
	}
	user := Username(rest)
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.users[user]
	switch {
	case e == nil:
		// Not cached: read whole from the store when first asked for.
	case e.loading != nil:
		e.early = append(e.early, env)
	case !e.apply(env):
		delete(c.users, user)
	}
}

// apply folds env into e; false when e can no longer be trusted (a version
// was skipped, or the event cannot be read).
func (e *pushEntry) apply(env events.Envelope) bool {
	if env.Version <= e.version {
		return true // already folded
	}
	if env.Version != e.version+1 {
		return false
	}
	ev, err := Decode(env)
	if err != nil {
		return false
	}
	p := pushStream{subs: e.subs}
	p.apply(ev)
	e.subs, e.version = p.subs, env.Version
	return true
}

// entry returns user's entry, read from the store first if it is not
// cached. The caller holds nothing; c.mu is held on return.
func (c *PushSubscriptionCache) entry(ctx context.Context, user Username) (*pushEntry, error) {
	for {
		c.mu.Lock()
		e := c.users[user]
		if e == nil {
			e = &pushEntry{loading: make(chan struct{})}
			c.users[user] = e
			c.mu.Unlock()
			if err := c.fill(ctx, user, e); err != nil {
				return nil, err
			}
			continue
		}
		if e.loading == nil {
			return e, nil
		}
		ch := e.loading
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
}

// fill reads user's stream into e (inserted, loading, before the read began,
// so that every later event is either in the read or in e.early), then
// applies the early events. A failed read takes e out again.
func (c *PushSubscriptionCache) fill(ctx context.Context, user Username, e *pushEntry) error {
	envs, err := c.store.Load(ctx, PushStream(user), 0)
	if errors.Is(err, events.ErrStreamNotFound) {
		envs, err = nil, nil
	}
	var p *pushStream
	if err == nil {
		p, err = loadPushStream(ctx, envs)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	defer close(e.loading)
	ok := err == nil
	if ok {
		e.subs, e.version = p.subs, p.version
		for _, env := range e.early {
			if ok = e.apply(env); !ok {
				break
			}
		}
	}
	e.loading, e.early = nil, nil
	if !ok && c.users[user] == e {
		delete(c.users, user) // the next ask reads the store again
	}
	if err != nil {
		return fmt.Errorf("push subscriptions of %s: %w", user, err)
	}
	return nil
}

// Subscriptions returns user's subscriptions, oldest first, from memory
// (from the store only the first time user is asked for).
func (c *PushSubscriptionCache) Subscriptions(ctx context.Context, user Username) ([]PushSubscription, error) {
	e, err := c.entry(ctx, user)
	if err != nil {
		return nil, err
	}
	defer c.mu.Unlock()
	return slices.Clone(e.subs), nil
}

// Subscription returns user's subscription id as it is now, and false when
// user has no such subscription (it was removed).
func (c *PushSubscriptionCache) Subscription(ctx context.Context, user Username, id PushSubscriptionID) (PushSubscription, bool, error) {
	e, err := c.entry(ctx, user)
	if err != nil {
		return PushSubscription{}, false, err
	}
	defer c.mu.Unlock()
	for _, s := range e.subs {
		if s.ID == id {
			return s, true, nil
		}
	}
	return PushSubscription{}, false, nil
}

// RemovePushSubscription removes one of user's subscriptions; ErrNotFound
// when user has none with that id. The consultant removes their own
// (PushUnsubscribed); the push sender removes one its push service says is
// gone (PushGone), as actor "pager".
func (s *Service) RemovePushSubscription(ctx context.Context, meta Meta, user Username, id PushSubscriptionID, reason PushRemoval) error {
	if reason == PushUnsubscribed && (meta.Actor.Role != RoleConsultant || meta.Actor.Username != user) {
		return ErrNotFound
	}
	as := saveAs[*pushStream]{actor: meta.Actor.Username, correlationID: meta.CorrelationID}
	_, _, err := update(ctx, s.repo, PushStream(user), as, loadPushStream, func(p *pushStream) error {
		if p.index(id) < 0 {
			return ErrNotFound
		}
		p.record(&PushSubscriptionRemoved{ID: id, Username: user, Reason: reason}, s.cfg.Now())
		return nil
	})
	return err
}

// PushKeys returns the service's VAPID key pair, making it on first use. The
// pair is appended with expected version "no stream", so when several
// instances start at once the first append wins and the others read it.
func (s *Service) PushKeys(ctx context.Context) (VAPIDKeys, error) {
	for attempt := 0; attempt < 3; attempt++ {
		envs, err := s.cfg.Store.Load(ctx, PushVAPIDStream(), 0)
		if err != nil && !errors.Is(err, events.ErrStreamNotFound) {
			return VAPIDKeys{}, err
		}
		for _, env := range envs {
			ev, err := Decode(env)
			if err != nil {
				return VAPIDKeys{}, err
			}
			if k, ok := ev.(*PushKeysCreated); ok {
				return k.VAPIDKeys, nil
			}
		}
		keys, err := NewVAPIDKeys()
		if err != nil {
			return VAPIDKeys{}, err
		}
		err = s.repo.create(ctx, PushVAPIDStream(), Meta{Actor: Actor{Person: Person{Username: "nightcall"}}}, s.cfg.Now(), &PushKeysCreated{VAPIDKeys: keys})
		if err == nil {
			return keys, nil
		}
		if !errors.Is(err, events.ErrVersionConflict) {
			return VAPIDKeys{}, err
		}
		// Another instance made the pair first: read theirs.
	}
	return VAPIDKeys{}, ErrConflict
}

// NewVAPIDKeys makes a fresh P-256 key pair in the VAPIDKeys encoding.
func NewVAPIDKeys() (VAPIDKeys, error) {
	k, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return VAPIDKeys{}, err
	}
	return VAPIDKeys{
		PublicKey:  base64.RawURLEncoding.EncodeToString(k.PublicKey().Bytes()),
		PrivateKey: base64.RawURLEncoding.EncodeToString(k.Bytes()),
	}, nil
}
