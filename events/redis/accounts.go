package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/escalation/account"
)

// Accounts are one hash (username → account JSON); each session is a key
// with the session's TTL, and each subject has a set of its session hashes
// so that disabling an account or changing its password can revoke them all.

var _ account.Store = (*Store)(nil)

// createSessionScript: KEYS = session key, subject's set. ARGV = subject,
// session hash, TTL ms. The set lives as long as its longest session.
var createSessionScript = goredis.NewScript(`
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
redis.call('SADD', KEYS[2], ARGV[2])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
return 1`)

func (s *Store) sessionKey(idHash string) string  { return s.key("session", idHash) }
func (s *Store) subjectKey(subject string) string { return s.key("sessions-of", subject) }

// CreateUser implements account.Store.
func (s *Store) CreateUser(ctx context.Context, a account.Account) error {
	ok, err := s.c.HSetNX(ctx, s.key("users"), string(a.Username), mustJSON(a)).Result()
	if err != nil {
		return s.fail("create user", "", ctx, err)
	}
	if !ok {
		return account.ErrExists
	}
	return nil
}

// UserByName implements account.Store.
func (s *Store) UserByName(ctx context.Context, username escalation.Username) (account.Account, error) {
	v, err := s.c.HGet(ctx, s.key("users"), string(username)).Result()
	if errors.Is(err, goredis.Nil) {
		return account.Account{Username: username}, account.ErrNotFound
	}
	if err != nil {
		return account.Account{}, s.fail("user", "", ctx, err)
	}
	var a account.Account
	if err := json.Unmarshal([]byte(v), &a); err != nil {
		return account.Account{}, fmt.Errorf("redis: account %s: %w", username, err)
	}
	return a, nil
}

// Users implements account.Store.
func (s *Store) Users(ctx context.Context) ([]account.Account, error) {
	m, err := s.c.HGetAll(ctx, s.key("users")).Result()
	if err != nil {
		return nil, s.fail("users", "", ctx, err)
	}
	out := make([]account.Account, 0, len(m))
	for name, v := range m {
		var a account.Account
		if err := json.Unmarshal([]byte(v), &a); err != nil {
			return nil, fmt.Errorf("redis: account %s: %w", name, err)
		}
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b account.Account) int { return strings.Compare(string(a.Username), string(b.Username)) })
	return out, nil
}

// changeUser applies change to the stored account and, when revoke, deletes
// every session of it, in one optimistic transaction (retried when a session
// is created or the account changed meanwhile).
func (s *Store) changeUser(ctx context.Context, op string, username escalation.Username, revoke bool, change func(*account.Account)) error {
	users, set := s.key("users"), s.subjectKey(string(username))
	txf := func(tx *goredis.Tx) error {
		v, err := tx.HGet(ctx, users, string(username)).Result()
		if errors.Is(err, goredis.Nil) {
			return account.ErrNotFound
		}
		if err != nil {
			return err
		}
		var a account.Account
		if err := json.Unmarshal([]byte(v), &a); err != nil {
			return fmt.Errorf("redis: account %s: %w", username, err)
		}
		change(&a)
		var sessions []string
		if revoke {
			if sessions, err = tx.SMembers(ctx, set).Result(); err != nil {
				return err
			}
		}
		_, err = tx.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			p.HSet(ctx, users, string(username), mustJSON(a))
			if revoke {
				for _, h := range sessions {
					p.Del(ctx, s.sessionKey(h))
				}
				p.Del(ctx, set)
			}
			return nil
		})
		return err
	}
	for attempt := 0; attempt < 20; attempt++ {
		err := s.c.Watch(ctx, txf, users, set)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, account.ErrNotFound):
			return err
		case !errors.Is(err, goredis.TxFailedErr):
			return s.fail(op, "", ctx, err)
		}
	}
	return s.fail(op, "", ctx, errors.New("too much contention on the account"))
}

// SetDisabled implements account.Store.
func (s *Store) SetDisabled(ctx context.Context, username escalation.Username, disabled bool) error {
	return s.changeUser(ctx, "disable user", username, disabled, func(a *account.Account) { a.Disabled = disabled })
}

// SetPasswordHash implements account.Store.
func (s *Store) SetPasswordHash(ctx context.Context, username escalation.Username, hash string) error {
	return s.changeUser(ctx, "set password", username, true, func(a *account.Account) { a.PasswordHash = hash })
}

// CreateSession implements account.Store. A session already expired is
// not stored.
func (s *Store) CreateSession(ctx context.Context, idHash, subject string, expires time.Time) error {
	ttl := time.Until(expires).Milliseconds()
	if ttl <= 0 {
		return nil
	}
	err := createSessionScript.Run(ctx, s.c, []string{s.sessionKey(idHash), s.subjectKey(subject)}, subject, idHash, ttl).Err()
	if err != nil {
		return s.fail("create session", "", ctx, err)
	}
	return nil
}

// Session implements account.Store.
func (s *Store) Session(ctx context.Context, idHash string) (string, time.Time, error) {
	k := s.sessionKey(idHash)
	pipe := s.c.Pipeline()
	get := pipe.Get(ctx, k)
	ttl := pipe.PTTL(ctx, k)
	_, err := pipe.Exec(ctx)
	if errors.Is(get.Err(), goredis.Nil) {
		return "", time.Time{}, account.ErrNotFound
	}
	if err != nil {
		return "", time.Time{}, s.fail("session", "", ctx, err)
	}
	return get.Val(), time.Now().Add(ttl.Val()), nil
}

// DeleteSession implements account.Store. The subject's set keeps the hash
// until it expires or is revoked; deleting a missing key then is harmless.
func (s *Store) DeleteSession(ctx context.Context, idHash string) error {
	if err := s.c.Del(ctx, s.sessionKey(idHash)).Err(); err != nil {
		return s.fail("delete session", "", ctx, err)
	}
	return nil
}

// touchSessionScript: KEYS = session key, subject's set. ARGV = subject, TTL
// ms, session hash. Only a live session of that subject is extended, and its
// subject's set with it (holding it), so that a revocation still finds it.
var touchSessionScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
return 1`)

// TouchSession implements account.Store.
func (s *Store) TouchSession(ctx context.Context, idHash string, expires time.Time) error {
	subject, err := s.c.Get(ctx, s.sessionKey(idHash)).Result()
	if errors.Is(err, goredis.Nil) {
		return account.ErrNotFound
	}
	if err != nil {
		return s.fail("touch session", "", ctx, err)
	}
	ttl := time.Until(expires).Milliseconds()
	if ttl <= 0 {
		return s.DeleteSession(ctx, idHash)
	}
	n, err := touchSessionScript.Run(ctx, s.c, []string{s.sessionKey(idHash), s.subjectKey(subject)}, subject, ttl, idHash).Int()
	if err != nil {
		return s.fail("touch session", "", ctx, err)
	}
	if n == 0 {
		return account.ErrNotFound
	}
	return nil
}
