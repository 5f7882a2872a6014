package escalation

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/nightcall-health/nightcall/events"
)

// Config configures a Service.
type Config struct {
	// Store is the event log. Required.
	Store events.Store
	// Read is the read model fed from the log. Required.
	Read *Projection
	// Now is the clock. Optional, default time.Now.
	Now func() time.Time
	// NewID makes event and escalation IDs. Required.
	NewID func() string
	// ReadYourWritesWait bounds how long a read waits for the read model to
	// reach the log's head. Optional, default 3s.
	ReadYourWritesWait time.Duration
}

func (c *Config) setDefaults() {
	if c.Now == nil {
		c.Now = func() time.Time { return time.Now().UTC() }
	}
	if c.ReadYourWritesWait <= 0 {
		c.ReadYourWritesWait = 3 * time.Second
	}
}

// Validate lists every problem with c.
func (c Config) Validate() error {
	var errs []error
	if c.Store == nil {
		errs = append(errs, errors.New("escalation: Config.Store is required"))
	}
	if c.Read == nil {
		errs = append(errs, errors.New("escalation: Config.Read is required"))
	}
	if c.NewID == nil {
		errs = append(errs, errors.New("escalation: Config.NewID is required"))
	}
	return errors.Join(errs...)
}

// Service runs the application commands and queries.
type Service struct {
	cfg      Config
	pagedFor func(EscalationID, Username) bool

	listMu    sync.Mutex
	listReads map[string]time.Time // user|list → last recorded
}

// listReadEvery bounds how often a user's list reads are put on record: a
// console refreshing its queue every few seconds would otherwise flood the log.
const listReadEvery = 5 * time.Minute

// SetPagedFor tells the service who was paged for an escalation: a consultant
// paged for it may accept even when no longer on call.
func (s *Service) SetPagedFor(f func(EscalationID, Username) bool) { s.pagedFor = f }

// NewService returns a Service.
func NewService(cfg Config) (*Service, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Service{cfg: cfg}, nil
}

// Read returns the read model.
func (s *Service) Read() *Projection { return s.cfg.Read }

// IdemFunc builds the idempotency record to store with a command's events,
// from the state the command leaves. It may return nil.
type IdemFunc func(r *Resident) (*events.IdempotencyRecord, error)

// Meta carries who runs a command and how it is to be recorded.
type Meta struct {
	Actor         Actor
	CorrelationID string
	Idempotency   IdemFunc
}

// Result is what a command leaves: the resident as saved and the global
// position of its last event (0 when nothing was appended).
type Result struct {
	Resident *Resident
	Position int64
}

const maxAttempts = 25

// update loads a resident, runs fn and appends what it recorded with the
// loaded version as expected. A conflict means someone else appended first:
// reload and decide again against the new state.
func (s *Service) update(ctx context.Context, id ResidentID, meta Meta, fn func(r *Resident) error) (Result, error) {
	for attempt := 0; attempt < maxAttempts; attempt++ {
		r, err := s.loadResident(ctx, id)
		if err != nil {
			return Result{}, err
		}
		loaded := r.version
		if err := fn(r); err != nil {
			return Result{}, err
		}
		if len(r.pending) == 0 {
			return Result{Resident: r}, nil
		}
		evs, err := r.Pending(meta.Actor.Username, meta.CorrelationID, s.cfg.NewID)
		if err != nil {
			return Result{}, err
		}
		var opts events.AppendOptions
		if meta.Idempotency != nil {
			if opts.Idempotency, err = meta.Idempotency(r); err != nil {
				return Result{}, err
			}
		}
		stored, err := s.cfg.Store.Append(ctx, ResidentStream(id), loaded, evs, opts)
		if errors.Is(err, events.ErrVersionConflict) {
			backoff := time.Duration(rand.IntN(1+attempt*2)) * time.Millisecond
			select {
			case <-ctx.Done():
				return Result{}, ctx.Err()
			case <-time.After(backoff):
			}
			continue
		}
		if err != nil {
			return Result{}, err
		}
		r.pending = nil
		return Result{Resident: r, Position: stored[len(stored)-1].Position}, nil
	}
	return Result{}, ErrConflict
}

func (s *Service) loadResident(ctx context.Context, id ResidentID) (*Resident, error) {
	envs, err := s.cfg.Store.Load(ctx, ResidentStream(id), 0)
	if errors.Is(err, events.ErrStreamNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return Rehydrate(envs)
}

func toNewEvents(pending []pendingEvent, actor Username, correlationID string, newID func() string) ([]events.NewEvent, error) {
	out := make([]events.NewEvent, len(pending))
	for i, p := range pending {
		data, err := marshal(p.event)
		if err != nil {
			return nil, err
		}
		id := newID()
		corr := correlationID
		if corr == "" {
			corr = id
		}
		out[i] = events.NewEvent{ID: id, Type: p.event.EventType(), RecordedAt: p.at, Actor: string(actor), CorrelationID: corr, Data: data}
	}
	return out, nil
}

// residentOf finds the resident an escalation belongs to, waiting for the read
// model to reach the log's head if it does not know the escalation yet, so a
// caller always finds an escalation whose creation it was told of.
func (s *Service) residentOf(ctx context.Context, id EscalationID) (ResidentID, error) {
	if rid, ok := s.cfg.Read.ResidentOf(id); ok {
		return rid, nil
	}
	if err := s.catchUp(ctx); err != nil {
		return "", err
	}
	if rid, ok := s.cfg.Read.ResidentOf(id); ok {
		return rid, nil
	}
	return "", ErrNotFound
}

// catchUp waits until the read model has applied every event in the log now.
func (s *Service) catchUp(ctx context.Context) error {
	head, err := s.cfg.Store.Head(ctx)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, s.cfg.ReadYourWritesWait)
	defer cancel()
	if err := s.cfg.Read.WaitFor(wctx, head); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: the read model is behind the log", events.ErrUnavailable)
	}
	return nil
}

// RaiseInput is a validated request to raise.
type RaiseInput struct {
	ResidentID   ResidentID
	Observations *Observations
	SoftSigns    []SoftSign
	SBARD        SBARD
}

// Raise opens an escalation for a resident of the actor's home.
func (s *Service) Raise(ctx context.Context, meta Meta, in RaiseInput) (*Escalation, error) {
	if meta.Actor.Role != RoleCareHome {
		return nil, ErrForbidden
	}
	id := EscalationID(s.cfg.NewID())
	res, err := s.update(ctx, in.ResidentID, meta, func(r *Resident) error {
		if r.CareHomeID != meta.Actor.CareHomeID {
			return ErrNotFound
		}
		_, err := r.Raise(id, in.Observations, in.SoftSigns, in.SBARD, meta.Actor, s.cfg.Now())
		return err
	})
	if err != nil {
		return nil, err
	}
	return s.View(res.Resident, id), nil
}

// View returns a copy of escalation id with the home's fallback number and,
// for a stay, when the home is asked to confirm where the resident is.
func (s *Service) View(r *Resident, id EscalationID) *Escalation {
	esc := *r.Escalation(id)
	s.decorate(&esc)
	return &esc
}

func (s *Service) decorate(esc *Escalation) {
	esc.FallbackPhone = s.cfg.Read.Home(esc.CareHomeID).FallbackPhone
	if d := esc.Decision; d != nil && d.Outcome == OutcomeStay {
		due := d.DecidedAt.Add(FollowUpWindow)
		esc.FollowUpDueAt = &due
		esc.FollowUpNeeded = !s.cfg.Now().Before(due) && len(esc.FollowUps) == 0
	}
}

// FollowUp records where the resident is after a stay (staff of the home).
func (s *Service) FollowUp(ctx context.Context, meta Meta, id EscalationID, status string, at time.Time) (*Escalation, error) {
	if meta.Actor.Role != RoleCareHome {
		return nil, ErrForbidden
	}
	return s.escalationCommand(ctx, meta, id, func(r *Resident, esc *Escalation) error {
		return r.FollowUp(id, status, at, s.cfg.Now())
	})
}

// escalationCommand loads the escalation's resident, checks that the actor can
// see it, and runs fn on the aggregate.
func (s *Service) escalationCommand(ctx context.Context, meta Meta, id EscalationID, fn func(r *Resident, esc *Escalation) error) (*Escalation, error) {
	rid, err := s.residentOf(ctx, id)
	if err != nil {
		return nil, err
	}
	res, err := s.update(ctx, rid, meta, func(r *Resident) error {
		esc := r.Escalation(id)
		if esc == nil || !s.canSeeEscalation(meta.Actor, esc, true) {
			return ErrNotFound
		}
		return fn(r, esc)
	})
	if err != nil {
		return nil, err
	}
	return s.View(res.Resident, id), nil
}

// Accept lets a consultant who is on call take an escalation. Exactly one
// consultant wins; the winner accepting again changes nothing.
func (s *Service) Accept(ctx context.Context, meta Meta, id EscalationID) (*Escalation, error) {
	if meta.Actor.Role != RoleConsultant {
		return nil, ErrForbidden
	}
	return s.escalationCommand(ctx, meta, id, func(r *Resident, esc *Escalation) error {
		paged := s.pagedFor != nil && s.pagedFor(id, meta.Actor.Username)
		if !meta.Actor.OnCall && !paged && !(esc.AcceptedBy != nil && esc.AcceptedBy.Username == meta.Actor.Username) {
			return ErrForbidden
		}
		return r.Accept(id, meta.Actor, s.cfg.Now())
	})
}

// Decide records the accepting consultant's decision.
func (s *Service) Decide(ctx context.Context, meta Meta, id EscalationID, d DecisionInput) (*Escalation, error) {
	if meta.Actor.Role != RoleConsultant {
		return nil, ErrForbidden
	}
	return s.escalationCommand(ctx, meta, id, func(r *Resident, esc *Escalation) error {
		return r.Decide(id, d, meta.Actor, s.cfg.Now())
	})
}

// Withdraw lets staff of the home withdraw an escalation until it is decided.
func (s *Service) Withdraw(ctx context.Context, meta Meta, id EscalationID, reason string) (*Escalation, error) {
	if meta.Actor.Role != RoleCareHome {
		return nil, ErrForbidden
	}
	return s.escalationCommand(ctx, meta, id, func(r *Resident, esc *Escalation) error {
		return r.Withdraw(id, reason, meta.Actor, s.cfg.Now())
	})
}

// MarkUnanswered records that nobody accepted; used by the pager.
func (s *Service) MarkUnanswered(ctx context.Context, meta Meta, id EscalationID, reason string) error {
	rid, err := s.residentOf(ctx, id)
	if err != nil {
		return err
	}
	_, err = s.update(ctx, rid, meta, func(r *Resident) error { return r.MarkUnanswered(id, reason, s.cfg.Now()) })
	return err
}

// residentCommand checks that the actor may change the resident (staff of
// its home, or admin) and runs fn.
func (s *Service) residentCommand(ctx context.Context, meta Meta, id ResidentID, fn func(r *Resident) error) (Result, error) {
	a := meta.Actor
	if a.Role != RoleCareHome && a.Role != RoleAdmin {
		return Result{}, ErrForbidden
	}
	return s.update(ctx, id, meta, func(r *Resident) error {
		if a.Role == RoleCareHome && r.CareHomeID != a.CareHomeID {
			return ErrNotFound
		}
		return fn(r)
	})
}

// RecordHospitalAdmission records an admission or A&E attendance.
func (s *Service) RecordHospitalAdmission(ctx context.Context, meta Meta, id ResidentID, h HospitalAdmissionRecorded) (HospitalAdmission, error) {
	res, err := s.residentCommand(ctx, meta, id, func(r *Resident) error { return r.RecordHospitalAdmission(h, s.cfg.Now()) })
	if err != nil {
		return HospitalAdmission{}, err
	}
	return res.Resident.Admissions[len(res.Resident.Admissions)-1], nil
}

// RecordObservations records a routine observation set.
func (s *Service) RecordObservations(ctx context.Context, meta Meta, id ResidentID, obs Observations) (ObservationRecord, error) {
	if meta.Actor.Role != RoleCareHome {
		return ObservationRecord{}, ErrForbidden
	}
	var rec ObservationRecord
	_, err := s.residentCommand(ctx, meta, id, func(r *Resident) error {
		var err error
		rec, err = r.RecordObservations(obs, s.cfg.Now())
		return err
	})
	return rec, err
}

// GetEscalation returns an escalation the actor may see, and records the read.
func (s *Service) GetEscalation(ctx context.Context, a Actor, id EscalationID) (*Escalation, *Resident, error) {
	rid, err := s.residentOf(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	r, err := s.loadResident(ctx, rid)
	if err != nil {
		return nil, nil, err
	}
	esc := r.Escalation(id)
	if esc == nil || !s.canSeeEscalation(a, esc, false) {
		return nil, nil, ErrNotFound
	}
	paging, err := s.cfg.Store.Load(ctx, PagingStream(id), 0)
	if err != nil && !errors.Is(err, events.ErrStreamNotFound) {
		return nil, nil, err
	}
	for _, env := range paging {
		ev, err := Decode(env)
		if err != nil {
			return nil, nil, err
		}
		esc.applyPaging(ev, env.RecordedAt)
	}
	slices.SortStableFunc(esc.Timeline, func(a, b TimelineEntry) int { return a.At.Compare(b.At) })
	if err := s.recordAccess(ctx, a, "escalation", rid, id); err != nil {
		return nil, nil, err
	}
	return s.View(r, id), r, nil
}

// GetResident returns a resident the actor may see, and records the read.
func (s *Service) GetResident(ctx context.Context, a Actor, id ResidentID, what string) (*Resident, []events.Envelope, error) {
	envs, err := s.cfg.Store.Load(ctx, ResidentStream(id), 0)
	if errors.Is(err, events.ErrStreamNotFound) {
		return nil, nil, ErrNotFound
	}
	if err != nil {
		return nil, nil, err
	}
	r, err := Rehydrate(envs)
	if err != nil {
		return nil, nil, err
	}
	if !s.canSeeResident(a, r) {
		return nil, nil, ErrNotFound
	}
	if err := s.recordAccess(ctx, a, what, id, ""); err != nil {
		return nil, nil, err
	}
	return r, envs, nil
}

// ListEscalations returns the escalations the actor may see, newest first,
// filtered by status ("" for all, "open" for paging, unanswered or accepted).
func (s *Service) ListEscalations(ctx context.Context, a Actor, status string) ([]*Escalation, error) {
	if err := s.catchUp(ctx); err != nil {
		return nil, err
	}
	if err := s.recordListRead(ctx, a, "escalation_list"); err != nil {
		return nil, err
	}
	all := s.cfg.Read.Escalations()
	out := make([]*Escalation, 0, len(all))
	for _, e := range all {
		if !matchStatus(e.Status, status) || !s.canSeeEscalation(a, e, false) {
			continue
		}
		s.decorate(e)
		out = append(out, e)
	}
	return out, nil
}

// ValidStatusFilter reports whether f is a status filter ListEscalations knows.
func ValidStatusFilter(f string) bool {
	switch Status(f) {
	case "", "open", StatusPaging, StatusUnanswered, StatusAccepted, StatusDecided, StatusWithdrawn:
		return true
	}
	return false
}

func matchStatus(s Status, filter string) bool {
	switch filter {
	case "":
		return true
	case "open":
		return s.Open()
	default:
		return string(s) == filter
	}
}

// ListResidents returns the residents the actor may see.
func (s *Service) ListResidents(ctx context.Context, a Actor) ([]*Resident, error) {
	if err := s.catchUp(ctx); err != nil {
		return nil, err
	}
	if err := s.recordListRead(ctx, a, "resident_list"); err != nil {
		return nil, err
	}
	all := s.cfg.Read.Residents()
	out := make([]*Resident, 0, len(all))
	for _, r := range all {
		if s.canSeeResident(a, r) {
			out = append(out, r)
		}
	}
	return out, nil
}

// canSeeEscalation: staff see their own home's; auditors and admins all;
// consultants on call see open ones, and every consultant sees those they
// accepted. forAction lets any consultant reach an escalation by ID, so that
// the lifecycle answers (403 off call, 409 already accepted) rather than 404.
func (s *Service) canSeeEscalation(a Actor, e *Escalation, forAction bool) bool {
	switch a.Role {
	case RoleAdmin, RoleAuditor:
		return true
	case RoleCareHome:
		return e.CareHomeID == a.CareHomeID
	case RoleConsultant:
		if e.AcceptedBy != nil && e.AcceptedBy.Username == a.Username {
			return true
		}
		return forAction || (e.Status.Open() && a.OnCall)
	}
	return false
}

func (s *Service) canSeeResident(a Actor, r *Resident) bool {
	switch a.Role {
	case RoleAdmin, RoleAuditor:
		return true
	case RoleCareHome:
		return r.CareHomeID == a.CareHomeID
	case RoleConsultant:
		for _, e := range r.Escalations {
			if s.canSeeEscalation(a, e, false) {
				return true
			}
		}
	}
	return false
}

// recordListRead puts a list read (which shows parts of many records) on
// record, at most once per user and list every listReadEvery.
func (s *Service) recordListRead(ctx context.Context, a Actor, what string) error {
	key := string(a.Username) + "|" + what
	now := s.cfg.Now()
	s.listMu.Lock()
	if s.listReads == nil {
		s.listReads = map[string]time.Time{}
	}
	last, seen := s.listReads[key]
	s.listMu.Unlock()
	if seen && now.Sub(last) < listReadEvery {
		return nil
	}
	if err := s.recordAccess(ctx, a, what, "", ""); err != nil {
		return err
	}
	s.listMu.Lock()
	s.listReads[key] = now
	s.listMu.Unlock()
	return nil
}

// recordAccess puts a read of a resident's record on record. A read that
// cannot be recorded is refused.
func (s *Service) recordAccess(ctx context.Context, a Actor, what string, rid ResidentID, eid EscalationID) error {
	data, err := marshal(&RecordAccessed{Username: a.Username, Role: a.Role, What: what, ResidentID: rid, EscalationID: eid})
	if err != nil {
		return err
	}
	_, err = s.cfg.Store.Append(ctx, AccessLogStream(), events.AnyVersion, []events.NewEvent{{
		ID: s.cfg.NewID(), Type: TypeRecordAccessed, Actor: string(a.Username), RecordedAt: s.cfg.Now(), Data: data,
	}}, events.AppendOptions{})
	return err
}
