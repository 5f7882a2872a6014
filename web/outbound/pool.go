// Package outbound is the bounded worker pool that Nightcall's outbound
// channels (Web Push, the page webhook) send from. A page is handed over
// without blocking the pager; each attempt runs on one of a fixed number of
// workers under its own timeout; a retry waits on a timer, not on a worker,
// so one push service that hangs or keeps failing never delays another page.
package outbound

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"
)

// Job is one attempt; ctx ends when the pool stops.
type Job func(ctx context.Context)

// Config configures a Pool.
type Config struct {
	// Workers is how many attempts run at once. Optional, default 16.
	Workers int
	// Queue is how many attempts may wait for a worker. Optional, default 4096.
	Queue int
}

func (c *Config) setDefaults() {
	if c.Workers <= 0 {
		c.Workers = 16
	}
	if c.Queue <= 0 {
		c.Queue = 4096
	}
}

// Pool runs jobs on a fixed set of workers.
type Pool struct {
	cfg  Config
	jobs chan Job

	mu      sync.Mutex
	stopped bool
	timers  map[*time.Timer]struct{}
	done    chan struct{}
}

// New returns a pool; Run must be running for jobs to run.
func New(cfg Config) *Pool {
	cfg.setDefaults()
	return &Pool{cfg: cfg, jobs: make(chan Job, cfg.Queue), timers: map[*time.Timer]struct{}{}, done: make(chan struct{})}
}

// ErrFull means the queue is full (or the pool has stopped): the job was dropped.
var ErrFull = errors.New("outbound: queue full")

// Submit queues j without blocking.
func (p *Pool) Submit(j Job) error {
	select {
	case <-p.done:
		return ErrFull
	default:
	}
	select {
	case p.jobs <- j:
		return nil
	default:
		return ErrFull
	}
}

// After queues j once d has passed, holding no worker meanwhile. It reports
// false when the pool has stopped.
func (p *Pool) After(d time.Duration, j Job, dropped func(error)) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return false
	}
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		p.mu.Lock()
		delete(p.timers, t)
		p.mu.Unlock()
		if err := p.Submit(j); err != nil && dropped != nil {
			dropped(err)
		}
	})
	p.timers[t] = struct{}{}
	return true
}

// Run runs the workers until ctx is done, then stops the waiting retries and
// waits for the attempts under way (each is under its own timeout).
func (p *Pool) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for range p.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case j := <-p.jobs:
					j(ctx)
				}
			}
		}()
	}
	<-ctx.Done()
	p.mu.Lock()
	p.stopped = true
	close(p.done)
	for t := range p.timers {
		t.Stop()
	}
	p.timers = nil
	p.mu.Unlock()
	wg.Wait()
}

// Backoff is the wait before retry n (n >= 1): initial doubling up to max,
// with jitter of up to a quarter either way, so that retries to one failing
// service do not arrive in lockstep.
func Backoff(n int, initial, max time.Duration) time.Duration {
	d := initial
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	j := int64(d) / 4
	if j > 0 {
		d += time.Duration(rand.Int64N(2*j) - j) // #nosec G404 -- retry jitter, not a secret
	}
	return d
}
