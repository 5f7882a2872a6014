// Package redis is Nightcall's distributed event store on Redis Streams: each
// event stream is a Redis stream whose entry IDs are 0-<version>, and one Lua
// script appends to it and to the global stream (IDs 0-<position>) in one
// atomic step, checking the expected version, so several Nightcall instances
// can share one Redis. Accounts and sessions live beside the log.
//
// Durability: the promise that nothing acknowledged is lost needs Redis with
// appendonly yes and appendfsync always; everysec can lose the last second.
package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	goredis "github.com/redis/go-redis/v9"

	"github.com/nightcall-health/nightcall/events"
	"github.com/nightcall-health/nightcall/events/bus"
)

// Config configures a Store.
type Config struct {
	// URL is the Redis URL (redis://host:port/db). Required.
	URL string
	// Prefix namespaces every key. Optional, default "nc:".
	Prefix string
}

// Validate lists every problem with c.
func (c Config) Validate() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New("redis: URL is required"))
	}
	return errors.Join(errs...)
}

// Store is an events.Store and an account.Store on Redis.
type Store struct {
	c      *goredis.Client
	p      string
	append *goredis.Script

	mu     sync.Mutex
	closed bool
	// appended is closed at the next append seen (Appended); nil until asked.
	appended chan struct{}
	// watching is whether the watcher of the global stream is running;
	// stopWatch ends it and watchers counts it until it has returned.
	watching  bool
	stopWatch context.CancelFunc
	watchers  sync.WaitGroup
}

var _ events.Store = (*Store)(nil)
var _ events.Notifier = (*Store)(nil)

// appendScript: KEYS = stream, all, position counter, event-id index,
// idempotency key ("" for none). ARGV = stream name, expected version, event
// count, idempotency hash/status/body/created, then 7 fields per event.
const appendScript = `
local stream, all, counter, ids, idem = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local name, expected, n = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local first = ARGV[8]
local prev = redis.call('HGET', ids, first)
if prev then return {'replay', prev} end
local current = redis.call('XLEN', stream)
if expected ~= -1 and current ~= expected then return {'conflict', tostring(current)} end
if idem ~= '' and redis.call('EXISTS', idem) == 1 then return {'idem_exists'} end
local out = {'ok', tostring(current)}
for i = 0, n - 1 do
  local b = 8 + i * 7
  local version = current + i + 1
  local pos = redis.call('INCR', counter)
  local f = {'id', ARGV[b], 'type', ARGV[b+1], 'at', ARGV[b+2], 'actor', ARGV[b+3], 'corr', ARGV[b+4], 'caus', ARGV[b+5], 'data', ARGV[b+6]}
  redis.call('XADD', stream, '0-' .. version, 'pos', pos, unpack(f))
  redis.call('XADD', all, '0-' .. pos, 'stream', name, 'version', version, unpack(f))
  redis.call('HSET', ids, ARGV[b], name .. '|' .. version)
  table.insert(out, tostring(pos))
end
if idem ~= '' then
  redis.call('HSET', idem, 'hash', ARGV[4], 'status', ARGV[5], 'body', ARGV[6], 'created', ARGV[7])
end
return out
`

// Open connects to Redis.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "nc:"
	}
	opt, err := goredis.ParseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = 2*time.Second, 3*time.Second, 3*time.Second
	c := goredis.NewClient(opt)
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("redis: ping %s: %w", cfg.URL, err)
	}
	return &Store{c: c, p: cfg.Prefix, append: goredis.NewScript(appendScript)}, nil
}

func (s *Store) key(parts ...string) string { return s.p + strings.Join(parts, ":") }

func (s *Store) fail(op, stream string, ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return &events.StoreError{Op: op, Stream: stream, Err: err}
}

// Append implements events.Store.
func (s *Store) Append(ctx context.Context, stream string, expected int64, evs []events.NewEvent, opts events.AppendOptions) ([]events.Envelope, error) {
	if err := events.ValidateAppend(stream, expected, evs); err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	idemKey, hash, status, body, created := "", "", "", "", ""
	if rec := opts.Idempotency; rec != nil {
		idemKey, hash, status, body = s.key("idem", rec.Key), rec.RequestHash, strconv.Itoa(rec.Status), string(rec.Body)
		c := rec.CreatedAt
		if c.IsZero() {
			c = now
		}
		created = strconv.FormatInt(c.UnixNano(), 10)
	}
	args := []any{stream, expected, len(evs), hash, status, body, created}
	out := make([]events.Envelope, len(evs))
	for i, e := range evs {
		at := e.RecordedAt
		if at.IsZero() {
			at = now
		}
		data := e.Data
		if len(data) == 0 {
			data = json.RawMessage(`{}`)
		}
		args = append(args, e.ID, e.Type, strconv.FormatInt(at.UTC().UnixNano(), 10), e.Actor, e.CorrelationID, e.CausationID, string(data))
		out[i] = events.Envelope{ID: e.ID, Stream: stream, Type: e.Type, RecordedAt: time.Unix(0, at.UTC().UnixNano()).UTC(), Actor: e.Actor,
			CorrelationID: e.CorrelationID, CausationID: e.CausationID, Data: data}
	}
	res, err := s.append.Run(ctx, s.c, []string{s.key("stream", stream), s.key("all"), s.key("pos"), s.key("eventids"), idemKey}, args...).StringSlice()
	if err != nil {
		return nil, s.fail("append", stream, ctx, err)
	}
	switch res[0] {
	case "replay":
		return s.replayed(ctx, stream, res[1], evs)
	case "conflict":
		actual, _ := strconv.ParseInt(res[1], 10, 64)
		return nil, &events.VersionConflictError{Stream: stream, Expected: expected, Actual: actual}
	case "idem_exists":
		return nil, events.ErrIdempotencyKeyExists
	}
	current, _ := strconv.ParseInt(res[1], 10, 64)
	for i := range out {
		out[i].Version = current + int64(i) + 1
		out[i].Position, _ = strconv.ParseInt(res[i+2], 10, 64)
	}
	s.notify()
	return out, nil
}

// Appended implements events.Notifier: the channel is closed at the next
// append by this instance or, through a watcher blocked on the global
// stream (XREAD BLOCK), by any other instance on the same Redis, so that
// tailing subscribers wake at once instead of at their next poll.
//
// The first call starts the watcher from the log's head as it reads it
// then (one round trip), so that any append after the call returns is seen.
func (s *Store) Appended() <-chan struct{} {
	s.mu.Lock()
	if s.appended == nil {
		s.appended = make(chan struct{})
	}
	ch := s.appended
	var ctx context.Context
	start := !s.watching && !s.closed
	if start {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(context.Background())
		s.watching, s.stopWatch = true, cancel
		s.watchers.Add(1)
	}
	s.mu.Unlock()
	if start {
		last := int64(-1) // unknown: the watcher reads the head itself
		hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if head, err := s.Head(hctx); err == nil {
			last = head
		}
		cancel()
		go func() { defer s.watchers.Done(); s.watch(ctx, last) }()
	}
	return ch
}

// notify closes the channel Appended gave out, if any.
func (s *Store) notify() {
	s.mu.Lock()
	if s.appended != nil {
		close(s.appended)
		s.appended = nil
	}
	s.mu.Unlock()
}

// watchBlock is how long one blocking read of the global stream waits.
const watchBlock = 5 * time.Second

// watch blocks on the global stream after position last and notifies at
// every new entry, until ctx ends or the store is closed. It reads one
// entry only, then the head, so a burst of appends costs two round trips.
// After a failed read it goes on from the same position.
func (s *Store) watch(ctx context.Context, last int64) {
	defer func() {
		s.mu.Lock()
		s.watching = false
		s.mu.Unlock()
	}()
	for ctx.Err() == nil {
		if last < 0 {
			head, err := s.Head(ctx)
			if err != nil {
				if !s.watchPause(ctx) {
					return
				}
				continue
			}
			last = head
		}
		res, err := s.c.XRead(ctx, &goredis.XReadArgs{Streams: []string{s.key("all"), "0-" + strconv.FormatInt(last, 10)}, Count: 1, Block: watchBlock}).Result()
		if errors.Is(err, goredis.Nil) {
			continue // nothing new within watchBlock
		}
		if err != nil {
			if !s.watchPause(ctx) {
				return
			}
			continue
		}
		for _, st := range res {
			for _, m := range st.Messages {
				last = max(last, versionOf(m.ID))
			}
		}
		if head, err := s.Head(ctx); err == nil {
			last = max(last, head)
		}
		s.notify()
	}
}

// watchPause waits a moment after a failed read; false when the watcher
// should end (the store was closed or ctx ended).
func (s *Store) watchPause(ctx context.Context) bool {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return false
	}
	select {
	case <-ctx.Done():
		return false
	case <-time.After(100 * time.Millisecond):
		return true
	}
}

func versionOf(id string) int64 {
	v, _ := strconv.ParseInt(strings.TrimPrefix(id, "0-"), 10, 64)
	return v
}

func (s *Store) replayed(ctx context.Context, stream, prev string, evs []events.NewEvent) ([]events.Envelope, error) {
	name, v, _ := strings.Cut(prev, "|")
	if name != stream {
		return nil, fmt.Errorf("%w: event id %s is already in another stream", events.ErrInvalidAppend, evs[0].ID)
	}
	version, _ := strconv.ParseInt(v, 10, 64)
	stored, err := s.Load(ctx, stream, version-1)
	if err != nil {
		return nil, err
	}
	if len(stored) < len(evs) {
		return nil, &events.VersionConflictError{Stream: stream, Expected: version - 1, Actual: version - 1 + int64(len(stored))}
	}
	stored = stored[:len(evs)]
	for i := range evs {
		if stored[i].ID != evs[i].ID {
			return nil, &events.VersionConflictError{Stream: stream, Expected: version - 1, Actual: stored[len(stored)-1].Version}
		}
	}
	return stored, nil
}

func envelope(msg goredis.XMessage, stream string, version, position int64) events.Envelope {
	str := func(k string) string { v, _ := msg.Values[k].(string); return v }
	at, _ := strconv.ParseInt(str("at"), 10, 64)
	return events.Envelope{ID: str("id"), Stream: stream, Version: version, Position: position, Type: str("type"),
		RecordedAt: time.Unix(0, at).UTC(), Actor: str("actor"), CorrelationID: str("corr"), CausationID: str("caus"), Data: json.RawMessage(str("data"))}
}

// Load implements events.Store.
func (s *Store) Load(ctx context.Context, stream string, after int64) ([]events.Envelope, error) {
	msgs, err := s.c.XRange(ctx, s.key("stream", stream), "0-"+strconv.FormatInt(after+1, 10), "+").Result()
	if err != nil {
		return nil, s.fail("load", stream, ctx, err)
	}
	if len(msgs) == 0 {
		n, err := s.c.XLen(ctx, s.key("stream", stream)).Result()
		if err != nil {
			return nil, s.fail("load", stream, ctx, err)
		}
		if n == 0 {
			return nil, fmt.Errorf("%w: %s", events.ErrStreamNotFound, stream)
		}
		return nil, nil
	}
	out := make([]events.Envelope, len(msgs))
	for i, m := range msgs {
		pos, _ := strconv.ParseInt(fmt.Sprint(m.Values["pos"]), 10, 64)
		out[i] = envelope(m, stream, versionOf(m.ID), pos)
	}
	return out, nil
}

// ReadAll implements events.Store.
func (s *Store) ReadAll(ctx context.Context, after int64, limit int) ([]events.Envelope, error) {
	if limit <= 0 {
		limit = 1000
	}
	msgs, err := s.c.XRangeN(ctx, s.key("all"), "0-"+strconv.FormatInt(after+1, 10), "+", int64(limit)).Result()
	if err != nil {
		return nil, s.fail("read all", "", ctx, err)
	}
	out := make([]events.Envelope, len(msgs))
	for i, m := range msgs {
		name, _ := m.Values["stream"].(string)
		v, _ := strconv.ParseInt(fmt.Sprint(m.Values["version"]), 10, 64)
		out[i] = envelope(m, name, v, versionOf(m.ID))
	}
	return out, nil
}

// Head implements events.Store.
func (s *Store) Head(ctx context.Context) (int64, error) {
	v, err := s.c.Get(ctx, s.key("pos")).Int64()
	if errors.Is(err, goredis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, s.fail("head", "", ctx, err)
	}
	return v, nil
}

// Idempotency implements events.Store.
func (s *Store) Idempotency(ctx context.Context, key string) (events.IdempotencyRecord, error) {
	m, err := s.c.HGetAll(ctx, s.key("idem", key)).Result()
	if err != nil {
		return events.IdempotencyRecord{}, s.fail("idempotency", "", ctx, err)
	}
	if len(m) == 0 {
		return events.IdempotencyRecord{Key: key}, events.ErrIdempotencyNotFound
	}
	status, _ := strconv.Atoi(m["status"])
	created, _ := strconv.ParseInt(m["created"], 10, 64)
	return events.IdempotencyRecord{Key: key, RequestHash: m["hash"], Status: status, Body: []byte(m["body"]), CreatedAt: time.Unix(0, created).UTC()}, nil
}

// Checkpoint implements events.Store.
func (s *Store) Checkpoint(ctx context.Context, group string) (int64, error) {
	v, err := s.c.HGet(ctx, s.key("checkpoints"), group).Int64()
	if errors.Is(err, goredis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, s.fail("checkpoint", "", ctx, err)
	}
	return v, nil
}

// SaveCheckpoint implements events.Store.
func (s *Store) SaveCheckpoint(ctx context.Context, group string, position int64) error {
	if err := s.c.HSet(ctx, s.key("checkpoints"), group, position).Err(); err != nil {
		return s.fail("save checkpoint", "", ctx, err)
	}
	return nil
}

// Ping implements events.Store.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.c.Ping(ctx).Err(); err != nil {
		return s.fail("ping", "", ctx, err)
	}
	return nil
}

// Close implements events.Store.
// Closing the client cuts the watcher's blocking read short (go-redis does
// not end one when its context is cancelled), and Close returns once the
// watcher has.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.watchers.Wait() // a second Close returns no sooner than the first
		return nil
	}
	s.closed = true
	if s.stopWatch != nil {
		s.stopWatch()
	}
	s.mu.Unlock()
	err := s.c.Close()
	s.watchers.Wait()
	return err
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// Publisher returns a watermill Publisher that appends to a Redis stream per
// topic, entry IDs 0-<offset> from a counter per topic: the durable home of
// the projections' poison queue and of the outbox topics (bus.Outbox).
func (s *Store) Publisher() *Publisher { return &Publisher{s: s} }

// Publisher is the Store's bus.Outbox.
type Publisher struct{ s *Store }

var _ bus.Outbox = (*Publisher)(nil)

// publishScript: KEYS = stream, counter. ARGV = uuid, payload, metadata.
var publishScript = goredis.NewScript(`
local n = redis.call('INCR', KEYS[2])
redis.call('XADD', KEYS[1], '0-' .. n, 'uuid', ARGV[1], 'payload', ARGV[2], 'metadata', ARGV[3])
return n`)

// Publish implements message.Publisher; each message is stored in order.
func (p *Publisher) Publish(topic string, msgs ...*message.Message) error {
	if topic == "" {
		return errors.New("redis: publish to an empty topic")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	keys := []string{p.s.key("msgs", topic), p.s.key("msgs-offset", topic)}
	for _, m := range msgs {
		if err := publishScript.Run(ctx, p.s.c, keys, m.UUID, string(m.Payload), mustJSON(m.Metadata)).Err(); err != nil {
			return p.s.fail("publish", topic, ctx, err)
		}
	}
	return nil
}

// Close implements message.Publisher; the store owns the connection.
func (p *Publisher) Close() error { return nil }

// ReadTopic implements bus.Outbox.
func (p *Publisher) ReadTopic(ctx context.Context, topic string, after int64, limit int) ([]bus.TopicMessage, error) {
	if limit <= 0 {
		limit = 256
	}
	msgs, err := p.s.c.XRangeN(ctx, p.s.key("msgs", topic), "0-"+strconv.FormatInt(after+1, 10), "+", int64(limit)).Result()
	if err != nil {
		return nil, p.s.fail("read topic", topic, ctx, err)
	}
	out := make([]bus.TopicMessage, len(msgs))
	for i, x := range msgs {
		str := func(k string) string { v, _ := x.Values[k].(string); return v }
		m := message.NewMessage(str("uuid"), []byte(str("payload")))
		if err := json.Unmarshal([]byte(str("metadata")), &m.Metadata); err != nil {
			return nil, fmt.Errorf("redis: message %s metadata: %w", m.UUID, err)
		}
		out[i] = bus.TopicMessage{Offset: versionOf(x.ID), Message: m}
	}
	return out, nil
}

// Messages returns the messages published to topic, oldest first.
func (s *Store) Messages(ctx context.Context, topic string) ([]*message.Message, error) {
	var out []*message.Message
	var after int64
	for {
		page, err := s.Publisher().ReadTopic(ctx, topic, after, 1000)
		if err != nil {
			return nil, err
		}
		if len(page) == 0 {
			return out, nil
		}
		for _, tm := range page {
			out = append(out, tm.Message)
		}
		after = page[len(page)-1].Offset
	}
}

// The claim scripts run by their SHA after the first call (go-redis EVALSHA).
var (
	// claimScript sets KEYS[1] to ARGV[1] unless another owner holds it, and
	// returns the owner; ARGV[2] is the lease in milliseconds.
	claimScript = goredis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then return cur end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return ARGV[1]`)
	// takeoverScript sets KEYS[1] to ARGV[2] if it is unset or held by ARGV[1].
	takeoverScript = goredis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then return cur end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return ARGV[2]`)
	// releaseScript deletes KEYS[1] if ARGV[1] holds it.
	releaseScript = goredis.NewScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`)
)

// Claim makes owner the holder of name for ttl unless someone else holds
// it, and returns the holder. Calls use it to choose the instance that hosts
// a room.
func (s *Store) Claim(ctx context.Context, name, owner string, ttl time.Duration) (string, error) {
	v, err := claimScript.Run(ctx, s.c, []string{s.key("claim", name)}, owner, ttl.Milliseconds()).Text()
	if err != nil {
		return "", s.fail("claim", name, ctx, err)
	}
	return v, nil
}

// Takeover makes owner the holder of name if it is still held by dead.
func (s *Store) Takeover(ctx context.Context, name, dead, owner string, ttl time.Duration) (string, error) {
	v, err := takeoverScript.Run(ctx, s.c, []string{s.key("claim", name)}, dead, owner, ttl.Milliseconds()).Text()
	if err != nil {
		return "", s.fail("takeover", name, ctx, err)
	}
	return v, nil
}

// Release gives up name if owner holds it.
func (s *Store) Release(ctx context.Context, name, owner string) error {
	if err := releaseScript.Run(ctx, s.c, []string{s.key("claim", name)}, owner).Err(); err != nil && !errors.Is(err, goredis.Nil) {
		return s.fail("release", name, ctx, err)
	}
	return nil
}
