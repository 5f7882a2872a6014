package paging

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/events"
)

// Notice is a page as pushed to a consultant's devices.
type Notice struct {
	PageID       string
	EscalationID escalation.EscalationID
	ResidentID   escalation.ResidentID
	CareHomeID   escalation.CareHomeID
	RaisedAt     time.Time
	Consultants  []escalation.Username
}

// Notifier pushes pages and cancellations to connected devices.
type Notifier interface {
	Page(n Notice)
	Cancel(id escalation.EscalationID, users []escalation.Username, acceptedBy escalation.Username, reason string)
}

// Timing names for Config.Observe.
const (
	TimingFirstPage    = "raise_to_first_page"
	TimingFirstReceipt = "raise_to_first_receipt"
	TimingAccept       = "raise_to_accept"
)

// Config configures a Pager.
type Config struct {
	// Store is the event log. Required.
	Store events.Store
	// Service records `unanswered` in the resident stream. Required.
	Service *escalation.Service
	// Rota gives who is on call at an instant. Required.
	Rota func(time.Time) [][]escalation.Username
	// Policy gives the timings. Required: PageTimeout and ReceiptTimeout > 0.
	Policy Policy
	// NewID makes event and page IDs. Required.
	NewID func() string
	// Notify pushes to this instance's sockets. Optional.
	Notify Notifier
	// Observe receives raise→page/receipt/accept durations. Optional.
	Observe func(timing string, d time.Duration)
	// Now is the clock. Optional, default time.Now.
	Now func() time.Time
	// Logger is optional; nil discards.
	Logger *slog.Logger
}

// Validate lists every problem with c.
func (c Config) Validate() error {
	var errs []error
	if c.Store == nil {
		errs = append(errs, errors.New("paging: Config.Store is required"))
	}
	if c.Service == nil {
		errs = append(errs, errors.New("paging: Config.Service is required"))
	}
	if c.Rota == nil {
		errs = append(errs, errors.New("paging: Config.Rota is required"))
	}
	if c.NewID == nil {
		errs = append(errs, errors.New("paging: Config.NewID is required"))
	}
	if c.Policy.PageTimeout <= 0 || c.Policy.ReceiptTimeout <= 0 {
		errs = append(errs, errors.New("paging: Config.Policy needs positive timeouts"))
	}
	return errors.Join(errs...)
}

// Pager is the safety-critical consumer that pages consultants. It applies
// every event of the global log (Apply, from a Watermill handler that never
// skips) and runs the timers (Run). Its appends carry the paging stream's
// expected version, so when several instances run, a duplicate decision
// changes nothing.
type Pager struct {
	cfg Config

	mu       sync.Mutex
	states   map[escalation.EscalationID]*State
	pageOf   map[string]escalation.EscalationID
	pos      int64
	liveFrom int64
	wake     chan struct{}
}

// New returns a Pager that treats events after liveFrom (the log's head at
// start) as live: only those are pushed to sockets and timed.
func New(cfg Config, liveFrom int64) (*Pager, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Pager{cfg: cfg, states: map[escalation.EscalationID]*State{}, pageOf: map[string]escalation.EscalationID{},
		liveFrom: liveFrom, wake: make(chan struct{}, 1)}, nil
}

// Position is the last global position applied.
func (p *Pager) Position() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pos
}

// CaughtUp reports whether the pager has replayed the log up to its start.
func (p *Pager) CaughtUp() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pos >= p.liveFrom
}

// Apply applies one event of the global log; redelivered events are ignored.
func (p *Pager) Apply(env events.Envelope) error {
	isResident := strings.HasPrefix(env.Stream, "resident-")
	isPaging := escalation.IsPagingStream(env.Stream)
	p.mu.Lock()
	defer p.mu.Unlock()
	if env.Position <= p.pos {
		return nil
	}
	if !isResident && !isPaging {
		p.pos = env.Position
		return nil
	}
	ev, err := escalation.Decode(env)
	if err != nil {
		return err
	}
	var ref struct {
		EscalationID escalation.EscalationID `json:"escalation_id"`
	}
	if ev == nil || json.Unmarshal(env.Data, &ref) != nil || ref.EscalationID == "" {
		p.pos = env.Position
		return nil
	}
	st := p.states[ref.EscalationID]
	if st == nil {
		if _, raised := ev.(*escalation.EscalationRaised); !raised {
			p.pos = env.Position
			return nil
		}
		st = &State{ResidentID: escalation.ResidentID(strings.TrimPrefix(env.Stream, "resident-"))}
		p.states[ref.EscalationID] = st
	}
	wasOpen := st.Open()
	var pv int64
	if isPaging {
		pv = env.Version
	}
	st.Apply(ev, env.RecordedAt, pv)
	live := env.Position > p.liveFrom
	p.pos = env.Position
	switch e := ev.(type) {
	case *escalation.Paged:
		p.pageOf[e.PageID] = st.EscalationID
		if live {
			if len(st.Pages) == 1 {
				p.observe(TimingFirstPage, env.RecordedAt.Sub(st.RaisedAt))
			}
			if p.cfg.Notify != nil && st.Open() {
				p.cfg.Notify.Page(p.notice(st, st.Pages[len(st.Pages)-1]))
			}
		}
	case *escalation.PageReceived:
		if live && countReceived(st) == 1 && st.Page(e.PageID).receipts["received|"+e.Device] {
			p.observe(TimingFirstReceipt, env.RecordedAt.Sub(st.RaisedAt))
		}
	case *escalation.EscalationAccepted:
		if live {
			p.observe(TimingAccept, env.RecordedAt.Sub(st.RaisedAt))
		}
	}
	if live && wasOpen && !st.Open() && p.cfg.Notify != nil {
		reason := "withdrawn"
		if st.Status == escalation.StatusAccepted || st.Status == escalation.StatusDecided {
			reason = "accepted"
		}
		p.cfg.Notify.Cancel(st.EscalationID, st.PagedUsers(), st.AcceptedBy, reason)
	}
	if !st.Open() {
		// Accepted, decided or withdrawn: nothing will page it again.
		for _, pg := range st.Pages {
			delete(p.pageOf, pg.ID)
		}
		delete(p.states, st.EscalationID)
	}
	p.poke()
	return nil
}

func countReceived(st *State) int {
	n := 0
	for _, pg := range st.Pages {
		for k := range pg.receipts {
			if strings.HasPrefix(k, "received|") {
				n++
			}
		}
	}
	return n
}

func (p *Pager) observe(timing string, d time.Duration) {
	if p.cfg.Observe != nil {
		p.cfg.Observe(timing, d)
	}
}

func (p *Pager) notice(st *State, pg Page) Notice {
	return Notice{PageID: pg.ID, EscalationID: st.EscalationID, ResidentID: st.ResidentID, CareHomeID: st.CareHomeID,
		RaisedAt: st.RaisedAt, Consultants: slices.Clone(pg.Consultants)}
}

func (p *Pager) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Pending returns the pages of open escalations that included username,
// newest page per escalation, to send again when a device (re)connects.
func (p *Pager) Pending(username escalation.Username) []Notice {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Notice
	for _, st := range p.states {
		if !st.Open() {
			continue
		}
		for i := len(st.Pages) - 1; i >= 0; i-- {
			if slices.Contains(st.Pages[i].Consultants, username) {
				out = append(out, p.notice(st, st.Pages[i]))
				break
			}
		}
	}
	slices.SortFunc(out, func(a, b Notice) int { return a.RaisedAt.Compare(b.RaisedAt) })
	return out
}

// WasPaged reports whether username was paged for escalation id.
func (p *Pager) WasPaged(id escalation.EscalationID, username escalation.Username) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.states[id]
	return st != nil && slices.Contains(st.PagedUsers(), username)
}

// ErrUnknownPage means the page does not exist or was not sent to this user.
var ErrUnknownPage = errors.New("paging: unknown page")

// Receipt records a `received` or `seen` receipt from one device, once.
func (p *Pager) Receipt(ctx context.Context, pageID string, username escalation.Username, device, kind string) error {
	p.mu.Lock()
	id, ok := p.pageOf[pageID]
	st := p.states[id]
	var pg *Page
	if ok && st != nil {
		pg = st.Page(pageID)
	}
	if pg == nil || !slices.Contains(pg.Consultants, username) {
		p.mu.Unlock()
		return ErrUnknownPage
	}
	done := pg.HasReceipt(kind, device)
	p.mu.Unlock()
	if done {
		return nil
	}
	receipt := escalation.PageReceipt{EscalationID: id, PageID: pageID, Username: username, Device: device}
	var ev escalation.Event = &escalation.PageReceived{PageReceipt: receipt}
	if kind == "seen" {
		ev = &escalation.PageSeen{PageReceipt: receipt}
	}
	data, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	// A deterministic event ID makes a receipt recorded twice (two instances,
	// a retried frame) one event.
	eid := events.DeterministicID(pageID + "|" + kind + "|" + device)
	_, err = p.cfg.Store.Append(ctx, escalation.PagingStream(id), events.AnyVersion, []events.NewEvent{{
		ID: eid, Type: ev.EventType(), Actor: string(username), RecordedAt: p.cfg.Now(), Data: data,
	}}, events.AppendOptions{})
	return err
}

// Run decides and records paging until ctx is done. It waits for the replay
// to reach the log's head at start before acting on anything.
func (p *Pager) Run(ctx context.Context) error {
	for !p.CaughtUp() {
		select {
		case <-ctx.Done():
			return nil
		case <-p.wake:
		case <-time.After(50 * time.Millisecond):
		}
	}
	for {
		next := p.tick(ctx)
		wait := time.Minute
		if !next.IsZero() {
			wait = max(time.Until(next), 5*time.Millisecond)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-p.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

type work struct {
	st      State
	actions []Action
}

// tick decides for every open escalation and records what is due. It returns
// the earliest next due time.
func (p *Pager) tick(ctx context.Context) time.Time {
	now := p.cfg.Now()
	levels := p.cfg.Rota(now)
	var next time.Time
	var todo []work
	p.mu.Lock()
	for _, st := range p.states {
		acts, due := p.cfg.Policy.Decide(st, levels, now)
		if len(acts) > 0 {
			c := *st
			c.Pages = slices.Clone(st.Pages)
			todo = append(todo, work{st: c, actions: acts})
		}
		if !due.IsZero() && (next.IsZero() || due.Before(next)) {
			next = due
		}
	}
	p.mu.Unlock()
	for _, w := range todo {
		if err := p.execute(ctx, w); err != nil && ctx.Err() == nil {
			p.cfg.Logger.Error("paging action failed", "escalation_id", w.st.EscalationID, "err", err)
			retry := p.cfg.Now().Add(500 * time.Millisecond)
			if next.IsZero() || retry.Before(next) {
				next = retry
			}
		}
	}
	if len(todo) > 0 {
		// Look again soon: what was appended comes back through Apply.
		soon := p.cfg.Now().Add(20 * time.Millisecond)
		if next.IsZero() || soon.Before(next) {
			next = soon
		}
	}
	return next
}

func (p *Pager) execute(ctx context.Context, w work) error {
	now := p.cfg.Now()
	var evs []events.NewEvent
	for _, a := range w.actions {
		var ev escalation.Event
		switch a.Kind {
		case ActPage:
			ev = &escalation.Paged{EscalationID: w.st.EscalationID, PageID: p.cfg.NewID(), Level: a.Level, Round: a.Round, Consultants: a.Consultants}
		case ActTimeOut:
			ev = &escalation.PageTimedOut{EscalationID: w.st.EscalationID, PageID: a.PageID, Level: a.Level, Round: a.Round, Reason: a.Reason}
		case ActUnanswered:
			err := p.cfg.Service.MarkUnanswered(ctx, escalation.Meta{Actor: escalation.Actor{Person: escalation.Person{Username: "pager"}}}, w.st.EscalationID, a.Reason)
			if err != nil {
				return fmt.Errorf("record unanswered: %w", err)
			}
			continue
		}
		data, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		evs = append(evs, events.NewEvent{ID: p.cfg.NewID(), Type: ev.EventType(), Actor: "pager", RecordedAt: now, Data: data})
	}
	if len(evs) == 0 {
		return nil
	}
	_, err := p.cfg.Store.Append(ctx, escalation.PagingStream(w.st.EscalationID), w.st.Version, evs, events.AppendOptions{})
	if errors.Is(err, events.ErrVersionConflict) {
		return nil // another instance, or a receipt, got there first: decide again on the new state
	}
	return err
}
