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
	"github.com/nightcall-health/nightcall/escalation/news2"
	"github.com/nightcall-health/nightcall/events"
)

// Notice reasons.
const (
	// ReasonPage is a page from the rota.
	ReasonPage = "page"
	// ReasonJoinOverdue is the page again to a consultant who accepted and
	// has not joined the call.
	ReasonJoinOverdue = "join_overdue"
)

// Notice is a page as pushed to a consultant's devices.
type Notice struct {
	PageID       string
	EscalationID escalation.EscalationID
	ResidentID   escalation.ResidentID
	CareHomeID   escalation.CareHomeID
	RaisedAt     time.Time
	Consultants  []escalation.Username
	// Level is the rota level paged (1-based; 0 for a join-overdue page).
	Level int
	Round int
	// Reason is ReasonPage or ReasonJoinOverdue.
	Reason string
	// SentAt is when the page was recorded; Expires is when it times out, so
	// a channel that cannot deliver by then may give up.
	SentAt, Expires time.Time
	// NEWS2 is the score the escalation was raised with (nil: soft signs only).
	NEWS2 *news2.Result
}

// Notifier pushes pages and cancellations to devices. Both calls are made
// while the pager applies an event: they must not block (queue and return).
type Notifier interface {
	Page(n Notice)
	Cancel(id escalation.EscalationID, users []escalation.Username, acceptedBy escalation.Username, reason string)
}

// Notifiers fans every page and cancellation out to each channel in turn:
// the pager sockets, Web Push, the page webhook.
type Notifiers []Notifier

// Page implements Notifier.
func (ns Notifiers) Page(n Notice) {
	for _, c := range ns {
		c.Page(n)
	}
}

// Cancel implements Notifier.
func (ns Notifiers) Cancel(id escalation.EscalationID, users []escalation.Username, acceptedBy escalation.Username, reason string) {
	for _, c := range ns {
		c.Cancel(id, slices.Clone(users), acceptedBy, reason)
	}
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
	// Notify pushes to this instance's sockets and the other channels
	// (Notifiers fans out). Optional.
	Notify Notifier
	// Health is told, after every round of decisions, whether the pager's
	// writes are failing (an error naming them) or not (nil). A failing
	// pager is stalled: readiness fails and the homes see their fallback
	// number until the store takes the writes. Optional.
	Health func(err error)
	// RotaAt waits until the rota that Rota reads has applied the log up to
	// a position (the read model's WaitFor), so that the pager never
	// decides on a rota older than the events it has seen. Optional.
	RotaAt func(ctx context.Context, pos int64) error
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
	// at is pos, for Receipt to wait on.
	at events.PositionWaiter
	// owed are unanswered records that failed, by escalation, so the next
	// round records them even when the policy has moved on to a re-page.
	owed map[escalation.EscalationID]string
	// failing are the escalations whose last write failed, and when.
	failing map[escalation.EscalationID]failure
	// claimed are receipts being or already appended, by escalation.
	claimed map[escalation.EscalationID]map[string]bool
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
		liveFrom: liveFrom, wake: make(chan struct{}, 1), owed: map[escalation.EscalationID]string{},
		failing: map[escalation.EscalationID]failure{}, claimed: map[escalation.EscalationID]map[string]bool{}}, nil
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
	defer func() { p.at.Advance(p.pos) }()
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
	wasOpen, wasJoinPaged := st.Open(), st.JoinOverdue
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
	case *escalation.JoinOverdue:
		p.pageOf[e.PageID] = st.EscalationID
		if live && p.cfg.Notify != nil && !st.Joined && st.Status == escalation.StatusAccepted {
			p.cfg.Notify.Page(p.notice(st, *st.Page(e.PageID)))
		}
	case *escalation.EscalationUnanswered:
		delete(p.owed, st.EscalationID)
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
	if !st.Tracked() {
		// Joined, decided or withdrawn: nothing will page it again.
		if live && wasJoinPaged && p.cfg.Notify != nil && st.AcceptedBy != "" {
			p.cfg.Notify.Cancel(st.EscalationID, []escalation.Username{st.AcceptedBy}, st.AcceptedBy, "accepted")
		}
		for _, pg := range st.Pages {
			delete(p.pageOf, pg.ID)
		}
		delete(p.states, st.EscalationID)
		delete(p.owed, st.EscalationID)
		delete(p.failing, st.EscalationID)
		delete(p.claimed, st.EscalationID)
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
	n := Notice{PageID: pg.ID, EscalationID: st.EscalationID, ResidentID: st.ResidentID, CareHomeID: st.CareHomeID,
		RaisedAt: st.RaisedAt, Consultants: slices.Clone(pg.Consultants), Level: pg.Level, Round: pg.Round,
		Reason: ReasonPage, SentAt: pg.SentAt, Expires: pg.SentAt.Add(p.cfg.Policy.PageTimeout), NEWS2: st.NEWS2}
	if pg.Level == 0 {
		n.Reason = ReasonJoinOverdue
	}
	return n
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
			// The page again to a consultant who accepted and has not joined.
			if st.JoinOverdue && st.AcceptedBy == username && len(st.Pages) > 0 {
				out = append(out, p.notice(st, st.Pages[len(st.Pages)-1]))
			}
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

// receiptWait bounds how long a receipt for a page this instance has not
// seen yet waits for the log (the page may have been recorded on another
// instance a moment ago).
const receiptWait = 2 * time.Second

// Receipt records a `received` or `seen` receipt from one device, once: a
// receipt already recorded (or being recorded) is not recorded again.
// ErrUnknownPage when the page does not exist, was not sent to username or
// belongs to an escalation that no longer pages.
func (p *Pager) Receipt(ctx context.Context, pageID string, username escalation.Username, device, kind string) error {
	if kind != "received" && kind != "seen" {
		return ErrUnknownPage
	}
	id, pg, err := p.lookPage(ctx, pageID, username)
	if err != nil {
		return err
	}
	key := pageID + "|" + kind + "|" + device
	if pg.HasReceipt(kind, device) || p.claimed[id][key] {
		p.mu.Unlock()
		return nil
	}
	// Claimed: a twin arriving while this one is appended records nothing.
	if p.claimed[id] == nil {
		p.claimed[id] = map[string]bool{}
	}
	p.claimed[id][key] = true
	p.mu.Unlock()
	release := func() {
		p.mu.Lock()
		delete(p.claimed[id], key)
		p.mu.Unlock()
	}
	receipt := escalation.PageReceipt{EscalationID: id, PageID: pageID, Username: username, Device: device}
	var ev escalation.Event = &escalation.PageReceived{PageReceipt: receipt}
	if kind == "seen" {
		ev = &escalation.PageSeen{PageReceipt: receipt}
	}
	data, err := json.Marshal(ev)
	if err != nil {
		release()
		return err
	}
	// A deterministic event ID makes a receipt recorded twice (two instances,
	// a retried frame) one event.
	eid := events.DeterministicID(key)
	_, err = p.cfg.Store.Append(ctx, escalation.PagingStream(id), events.AnyVersion, []events.NewEvent{{
		ID: eid, Type: ev.EventType(), Actor: string(username), RecordedAt: p.cfg.Now(), Data: data,
	}}, events.AppendOptions{})
	if err != nil {
		release()
	}
	return err
}

// lookPage finds a page sent to username, waiting briefly for the log when
// this instance has not seen it yet. On success p.mu is held.
func (p *Pager) lookPage(ctx context.Context, pageID string, username escalation.Username) (escalation.EscalationID, *Page, error) {
	find := func() (escalation.EscalationID, *Page) {
		id, ok := p.pageOf[pageID]
		st := p.states[id]
		if !ok || st == nil {
			return "", nil
		}
		pg := st.Page(pageID)
		if pg == nil || !slices.Contains(pg.Consultants, username) {
			return "", nil
		}
		return id, pg
	}
	p.mu.Lock()
	if id, pg := find(); pg != nil {
		return id, pg, nil
	}
	_, known := p.pageOf[pageID]
	p.mu.Unlock()
	if known {
		return "", nil, ErrUnknownPage // another consultant's page
	}
	head, err := p.cfg.Store.Head(ctx)
	if err != nil {
		return "", nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, receiptWait)
	defer cancel()
	if p.at.Wait(wctx, head) != nil && ctx.Err() != nil {
		return "", nil, ctx.Err()
	}
	p.mu.Lock()
	if id, pg := find(); pg != nil {
		return id, pg, nil
	}
	p.mu.Unlock()
	return "", nil, ErrUnknownPage
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

// tick decides for every tracked escalation and records what is due. It
// returns the earliest next due time. It does not act until the rota it
// reads has caught up with the log position the pager has reached.
func (p *Pager) tick(ctx context.Context) time.Time {
	if p.cfg.RotaAt != nil {
		wctx, cancel := context.WithTimeout(ctx, time.Second)
		err := p.cfg.RotaAt(wctx, p.Position())
		cancel()
		if err != nil {
			return p.cfg.Now().Add(50 * time.Millisecond)
		}
	}
	now := p.cfg.Now()
	levels := p.cfg.Rota(now)
	var next time.Time
	var todo []work
	p.mu.Lock()
	for _, st := range p.states {
		if f, ok := p.failing[st.EscalationID]; ok && now.Before(f.at.Add(retryEvery)) {
			// Its last write failed a moment ago: try again at the retry time,
			// not at every event that wakes the pager.
			if retry := f.at.Add(retryEvery); next.IsZero() || retry.Before(next) {
				next = retry
			}
			continue
		}
		acts, due := p.cfg.Policy.Decide(st, levels, now)
		if reason, ok := p.owed[st.EscalationID]; ok && !st.Unanswered && st.Open() && !hasKind(acts, ActUnanswered) {
			acts = append(acts, Action{Kind: ActUnanswered, Reason: reason})
		}
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
	written := false
	for _, w := range todo {
		err := p.execute(ctx, w)
		if ctx.Err() != nil {
			return next
		}
		p.mu.Lock()
		_, was := p.failing[w.st.EscalationID]
		if err != nil {
			p.failing[w.st.EscalationID] = failure{err: err, at: p.cfg.Now()}
		} else {
			delete(p.failing, w.st.EscalationID)
			written = true
		}
		p.mu.Unlock()
		switch {
		case err != nil && !was:
			p.cfg.Logger.Error("paging write failed; retrying until the store takes it", "escalation_id", w.st.EscalationID, "err", err)
		case err != nil:
			p.cfg.Logger.Debug("paging write failed again", "escalation_id", w.st.EscalationID, "err", err)
		case was:
			p.cfg.Logger.Info("paging write recorded after failing", "escalation_id", w.st.EscalationID)
		}
		if err != nil {
			if retry := p.cfg.Now().Add(retryEvery); next.IsZero() || retry.Before(next) {
				next = retry
			}
		}
	}
	p.reportHealth()
	if written {
		// Look again soon: what was appended comes back through Apply.
		soon := p.cfg.Now().Add(20 * time.Millisecond)
		if next.IsZero() || soon.Before(next) {
			next = soon
		}
	}
	return next
}

func hasKind(acts []Action, kind string) bool {
	return slices.ContainsFunc(acts, func(a Action) bool { return a.Kind == kind })
}

// retryEvery is how soon a failed write is tried again.
const retryEvery = 500 * time.Millisecond

// failure is an escalation's last failed write.
type failure struct {
	err error
	at  time.Time
}

// ErrWritesFailing is behind the error Health is given while the pager's
// writes fail.
var ErrWritesFailing = errors.New("paging: writes failing")

// reportHealth tells Health whether any escalation's writes are failing.
func (p *Pager) reportHealth() {
	if p.cfg.Health == nil {
		return
	}
	p.mu.Lock()
	var err error
	if n := len(p.failing); n > 0 {
		var first error
		for _, f := range p.failing {
			first = f.err
			break
		}
		err = fmt.Errorf("%w for %d escalation(s): %w", ErrWritesFailing, n, first)
	}
	p.mu.Unlock()
	p.cfg.Health(err)
}

// Stalled reports whether any of the pager's writes are failing now.
func (p *Pager) Stalled() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.failing) > 0
}

// execute records one escalation's actions: the paging-stream events in one
// append, and unanswered on the resident stream, each whatever becomes of
// the other, so that a failure of one never loses the other.
func (p *Pager) execute(ctx context.Context, w work) error {
	now := p.cfg.Now()
	var evs []events.NewEvent
	var errs []error
	for _, a := range w.actions {
		var ev escalation.Event
		switch a.Kind {
		case ActPage:
			ev = &escalation.Paged{EscalationID: w.st.EscalationID, PageID: p.cfg.NewID(), Level: a.Level, Round: a.Round, Consultants: a.Consultants}
		case ActTimeOut:
			ev = &escalation.PageTimedOut{EscalationID: w.st.EscalationID, PageID: a.PageID, Level: a.Level, Round: a.Round, Reason: a.Reason}
		case ActJoinOverdue:
			ev = &escalation.JoinOverdue{EscalationID: w.st.EscalationID, PageID: p.cfg.NewID(), Consultant: a.Consultants[0],
				AcceptedAt: w.st.AcceptedAt, TimeoutSeconds: p.cfg.Policy.JoinTimeout.Seconds()}
		case ActUnanswered:
			err := p.cfg.Service.MarkUnanswered(ctx, escalation.Meta{Actor: escalation.Actor{Person: escalation.Person{Username: "pager"}}}, w.st.EscalationID, a.Reason)
			p.mu.Lock()
			if err != nil {
				p.owed[w.st.EscalationID] = a.Reason
				errs = append(errs, fmt.Errorf("record unanswered: %w", err))
			} else {
				delete(p.owed, w.st.EscalationID)
			}
			p.mu.Unlock()
			continue
		}
		data, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		evs = append(evs, events.NewEvent{ID: p.cfg.NewID(), Type: ev.EventType(), Actor: "pager", RecordedAt: now, Data: data})
	}
	if len(evs) > 0 {
		_, err := p.cfg.Store.Append(ctx, escalation.PagingStream(w.st.EscalationID), w.st.Version, evs, events.AppendOptions{})
		// A version conflict means another instance, or a receipt, got there
		// first: decide again on the new state.
		if err != nil && !errors.Is(err, events.ErrVersionConflict) {
			errs = append(errs, fmt.Errorf("record %s: %w", evs[0].Type, err))
		}
	}
	return errors.Join(errs...)
}
