package escalation

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nightcall-health/nightcall/events"
)

// The application service: its configuration and what every command and
// query shares. The commands are in commands.go, the queries in queries.go,
// who may see what in visibility.go and the record of reads in accesslog.go.

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
	cfg       Config
	repo      repository
	pagedFor  func(EscalationID, Username) bool
	listReads *readThrottle
}

// NewService returns a Service.
func NewService(cfg Config) (*Service, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Service{cfg: cfg, repo: repository{store: cfg.Store, newID: cfg.NewID}, listReads: newReadThrottle(listReadEvery)}, nil
}

// SetPagedFor tells the service who was paged for an escalation: a consultant
// paged for it may accept even when no longer on call.
func (s *Service) SetPagedFor(f func(EscalationID, Username) bool) { s.pagedFor = f }

// Read returns the read model.
func (s *Service) Read() *Projection { return s.cfg.Read }

// IdemFunc builds the idempotency record to store with a command's events,
// from a copy of the resident as the command leaves it. It may return nil.
type IdemFunc func(r *ResidentView) (*events.IdempotencyRecord, error)

// Meta carries who runs a command and how it is to be recorded.
type Meta struct {
	Actor         Actor
	CorrelationID string
	// Idempotency builds the record for a command on a resident's stream.
	Idempotency IdemFunc
	// IdempotencyOf builds the record for a command on any other stream
	// (care homes, the rota, invites, users), from the value the command
	// returns to its caller. It is stored in the same append as the events.
	IdempotencyOf func(result any) (*events.IdempotencyRecord, error)
}

// appendOptions carries meta's idempotency record for result, if any.
func (m Meta) appendOptions(result any) (events.AppendOptions, error) {
	var opts events.AppendOptions
	if m.IdempotencyOf == nil {
		return opts, nil
	}
	rec, err := m.IdempotencyOf(result)
	opts.Idempotency = rec
	return opts, err
}

// publicState is what an aggregate of a non-resident stream returns to its
// caller: the value an idempotency record is built from.
type publicState interface{ publicState() any }

// Result is what a command leaves: the resident as saved and the global
// position of its last event (0 when nothing was appended).
type Result struct {
	Resident *Resident
	Position int64
}

// update runs fn against resident id through the repository loop.
func (s *Service) update(ctx context.Context, id ResidentID, meta Meta, fn func(r *Resident) error) (Result, error) {
	as := saveFor[*Resident](meta)
	if idem := meta.Idempotency; idem != nil {
		as.idempotency = func(r *Resident) (*events.IdempotencyRecord, error) {
			v := r.View()
			return idem(&v)
		}
	}
	r, pos, err := update(ctx, s.repo, ResidentStream(id), as, loadResident, fn)
	if err != nil {
		return Result{}, err
	}
	return Result{Resident: r, Position: pos}, nil
}

// loadResident folds a resident's stream; a resident without one does not exist.
func loadResident(_ context.Context, envs []events.Envelope) (*Resident, error) {
	if len(envs) == 0 {
		return nil, ErrNotFound
	}
	return Rehydrate(envs)
}

// getResident loads resident id as it is now.
func (s *Service) getResident(ctx context.Context, id ResidentID) (*Resident, []events.Envelope, error) {
	envs, err := s.cfg.Store.Load(ctx, ResidentStream(id), 0)
	if errors.Is(err, events.ErrStreamNotFound) {
		return nil, nil, ErrNotFound
	}
	if err != nil {
		return nil, nil, err
	}
	r, err := loadResident(ctx, envs)
	return r, envs, err
}

// loadResident loads resident id as it is now.
func (s *Service) loadResident(ctx context.Context, id ResidentID) (*Resident, error) {
	r, _, err := s.getResident(ctx, id)
	return r, err
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

// requireAdmin refuses anyone but an admin.
func requireAdmin(a Actor) error {
	if a.Role != RoleAdmin {
		return ErrForbidden
	}
	return nil
}
