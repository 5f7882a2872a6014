package escalation

import (
	"context"
	"sync"
	"time"
)

// The record of reads: every read of a resident's record or an escalation is
// put on the access log, and a read that cannot be recorded is refused. List
// reads, which show parts of many records, are throttled per user and list.

// listReadEvery bounds how often a user's list reads are put on record: a
// console refreshing its queue every few seconds would otherwise flood the log.
const listReadEvery = 5 * time.Minute

// readThrottle remembers when each key was last put on record.
type readThrottle struct {
	every time.Duration

	mu   sync.Mutex
	last map[string]time.Time
}

func newReadThrottle(every time.Duration) *readThrottle {
	return &readThrottle{every: every, last: map[string]time.Time{}}
}

// due reports whether key has not been recorded within the last period at now.
func (t *readThrottle) due(key string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	last, seen := t.last[key]
	return !seen || now.Sub(last) >= t.every
}

// done notes that key was recorded at now.
func (t *readThrottle) done(key string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.last[key] = now
}

// recordListRead puts a list read on record, at most once per user and list
// every listReadEvery.
func (s *Service) recordListRead(ctx context.Context, a Actor, what string) error {
	return s.recordAccess(ctx, a, what, "", "")
}

// recordAccess puts a read of a resident's record on record, at most once
// per user and record every listReadEvery: a waiting page polling its
// escalation is one read on record, not one a second. A read that cannot be
// recorded is refused.
func (s *Service) recordAccess(ctx context.Context, a Actor, what string, rid ResidentID, eid EscalationID) error {
	key := string(a.Username) + "|" + what + "|" + string(rid) + "|" + string(eid)
	now := s.cfg.Now()
	if !s.listReads.due(key, now) {
		return nil
	}
	if err := s.repo.appendAny(ctx, AccessLogStream(), a.Username, now,
		&RecordAccessed{Username: a.Username, Role: a.Role, What: what, ResidentID: rid, EscalationID: eid}); err != nil {
		return err
	}
	s.listReads.done(key, now)
	return nil
}

// RecordExport puts a bulk export (CSV, with or without free text; FHIR) on
// record with its range, every time: an export is never throttled. An
// export that cannot be recorded must not be served.
func (s *Service) RecordExport(ctx context.Context, a Actor, what string, from, to time.Time) error {
	ev := &RecordAccessed{Username: a.Username, Role: a.Role, What: what}
	if !from.IsZero() {
		f := from.UTC()
		ev.From = &f
	}
	if !to.IsZero() {
		t := to.UTC()
		ev.To = &t
	}
	return s.repo.appendAny(ctx, AccessLogStream(), a.Username, s.cfg.Now(), ev)
}
