package escalation

import (
	"context"
	"errors"
	"hash/fnv"
	"slices"
	"strconv"
	"time"

	"github.com/nightcall-health/nightcall/events"
)

// The queries: each answers only what the actor may see (visibility.go) and
// puts the read on record (accesslog.go).

// View returns a copy of escalation id of resident r with the home's
// fallback number and, for a stay, when the home is asked to confirm where
// the resident is; nil when r has no such escalation.
func (s *Service) View(r *ResidentView, id EscalationID) *EscalationView {
	return s.decorated(r.escalation(id).cloneRef())
}

// viewOf is View for the aggregate a command leaves.
func (s *Service) viewOf(r *Resident, id EscalationID) *EscalationView {
	return s.decorated(r.Escalation(id))
}

// decorated decorates esc (a copy) and returns it; nil stays nil.
func (s *Service) decorated(esc *EscalationView) *EscalationView {
	if esc != nil {
		s.decorate(esc)
	}
	return esc
}

func (s *Service) decorate(esc *EscalationView) {
	esc.FallbackPhone = s.cfg.Read.Home(esc.CareHomeID).FallbackPhone
	if d := esc.Decision; d != nil && d.Outcome == OutcomeStay {
		due := d.DecidedAt.Add(FollowUpWindow)
		esc.FollowUpDueAt = &due
		esc.FollowUpNeeded = !s.cfg.Now().Before(due) && len(esc.FollowUps) == 0
	}
}

// GetEscalation returns an escalation the actor may see, with its paging
// history, and records the read.
func (s *Service) GetEscalation(ctx context.Context, a Actor, id EscalationID) (*EscalationView, *ResidentView, error) {
	esc, r, _, err := s.getEscalation(ctx, a, id)
	return esc, r, err
}

// EscalationTag names the state of what an escalation's view is made of:
// the resident's stream, the escalation's paging stream, the home's
// fallback number and whether a stay's follow-up is now overdue. A view
// with the same tag is the same view (but for the names of consultants,
// which are the accounts'). It is the escalation's HTTP entity tag.
type EscalationTag string

// WaitEscalation is GetEscalation for a long poll: while the escalation's
// tag is still seen, it waits, up to wait, for an event on the streams its
// view is made of, and returns the view as it is then (and its tag); it
// returns a nil view when nothing changed within wait (or ctx ended first).
// Every view it reads is on record, as GetEscalation's is; a wait that ends
// with nothing new reads the record once.
func (s *Service) WaitEscalation(ctx context.Context, a Actor, id EscalationID, seen EscalationTag, wait time.Duration) (*EscalationView, *ResidentView, EscalationTag, error) {
	rid, err := s.residentOf(ctx, id)
	if err != nil {
		return nil, nil, "", err
	}
	timeout := time.NewTimer(wait)
	defer timeout.Stop()
	streams := []string{ResidentStream(rid), PagingStream(id)}
	for {
		// Watch before reading, so an event applied between the read and
		// the wait still wakes it. (The home's stream is watched from the
		// second read on: a change to its number missed in between is
		// answered by the client's next request, whose tag then differs.)
		changed, stop := s.cfg.Read.WatchStreams(streams...)
		esc, r, tag, err := s.getEscalation(ctx, a, id)
		if err != nil || tag != seen {
			stop()
			return esc, r, tag, err
		}
		select {
		case <-changed:
			// The read model has applied an event on one of the streams,
			// which the store held first: the next read sees it.
		case <-timeout.C:
			stop()
			return nil, nil, tag, nil
		case <-ctx.Done():
			stop()
			return nil, nil, tag, nil
		}
		stop()
		streams = []string{ResidentStream(rid), PagingStream(id), CareHomeStream(esc.CareHomeID)}
	}
}

// getEscalation is GetEscalation with the view's tag.
func (s *Service) getEscalation(ctx context.Context, a Actor, id EscalationID) (*EscalationView, *ResidentView, EscalationTag, error) {
	rid, err := s.residentOf(ctx, id)
	if err != nil {
		return nil, nil, "", err
	}
	r, err := s.loadResident(ctx, rid)
	if err != nil {
		return nil, nil, "", err
	}
	esc := r.Escalation(id)
	if esc == nil || !canSeeEscalation(a, esc, false, s.cfg.Now()) {
		return nil, nil, "", ErrNotFound
	}
	paging, err := s.cfg.Store.Load(ctx, PagingStream(id), 0)
	if err != nil && !errors.Is(err, events.ErrStreamNotFound) {
		return nil, nil, "", err
	}
	var pagingVersion int64
	if len(paging) > 0 {
		pagingVersion = paging[len(paging)-1].Version
	}
	for _, env := range paging {
		ev, err := Decode(env)
		if err != nil {
			return nil, nil, "", err
		}
		esc.applyPaging(ev, env.RecordedAt)
	}
	slices.SortStableFunc(esc.Timeline, func(a, b TimelineEntry) int { return a.At.Compare(b.At) })
	if err := s.recordAccess(ctx, a, "escalation", rid, id); err != nil {
		return nil, nil, "", err
	}
	s.decorate(esc)
	h := fnv.New32a()
	_, _ = h.Write([]byte(esc.FallbackPhone))
	tag := EscalationTag(strconv.FormatInt(r.Version(), 10) + "." + strconv.FormatInt(pagingVersion, 10) + "." + strconv.FormatUint(uint64(h.Sum32()), 36))
	if esc.FollowUpNeeded {
		// The one part of the view that changes with the clock, not an event.
		tag += ".f"
	}
	v := r.View()
	return esc, &v, tag, nil
}

// GetResident returns a resident the actor may see with its stored stream,
// and records the read.
func (s *Service) GetResident(ctx context.Context, a Actor, id ResidentID, what string) (*ResidentView, []events.Envelope, error) {
	r, envs, err := s.getResident(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	v := r.View()
	if !canSeeResident(a, &v, s.cfg.Now()) {
		return nil, nil, ErrNotFound
	}
	if err := s.recordAccess(ctx, a, what, id, ""); err != nil {
		return nil, nil, err
	}
	return &v, envs, nil
}

// ListEscalations returns the escalations the actor may see, newest first,
// filtered by status ("" for all, "open" for paging, unanswered or accepted).
func (s *Service) ListEscalations(ctx context.Context, a Actor, status string) ([]*EscalationView, error) {
	out, _, err := s.ListEscalationsPage(ctx, a, status, Page{})
	return out, err
}

// ListEscalationsPage is ListEscalations bounded by pg, and whether more
// follow the page.
func (s *Service) ListEscalationsPage(ctx context.Context, a Actor, status string, pg Page) ([]*EscalationView, bool, error) {
	if err := s.catchUp(ctx); err != nil {
		return nil, false, err
	}
	if err := s.recordListRead(ctx, a, "escalation_list"); err != nil {
		return nil, false, err
	}
	now := s.cfg.Now()
	out, more := s.cfg.Read.EscalationsPage(selectionFor(a, status), func(e *EscalationView) bool {
		return matchStatus(e.Status, status) && canSeeEscalation(a, e, false, now)
	}, pg)
	for _, e := range out {
		s.decorate(e)
	}
	return out, more, nil
}

// selectionFor is what a list for a may hold, filtered by status: a care
// home's staff see only their home's; the open statuses are open only.
func selectionFor(a Actor, status string) Selection {
	var sel Selection
	if a.Role == RoleCareHome {
		sel.Home = a.CareHomeID
	}
	switch Status(status) {
	case "open", StatusPaging, StatusUnanswered, StatusAccepted:
		sel.Open = true
	}
	return sel
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
func (s *Service) ListResidents(ctx context.Context, a Actor) ([]*ResidentView, error) {
	out, _, err := s.ListResidentsPage(ctx, a, 0, "")
	return out, err
}

// ListResidentsPage is ListResidents bounded to at most limit residents (0:
// all) whose IDs come after after, and whether more follow the page.
func (s *Service) ListResidentsPage(ctx context.Context, a Actor, limit int, after ResidentID) ([]*ResidentView, bool, error) {
	if err := s.catchUp(ctx); err != nil {
		return nil, false, err
	}
	if err := s.recordListRead(ctx, a, "resident_list"); err != nil {
		return nil, false, err
	}
	now := s.cfg.Now()
	out, more := s.cfg.Read.ResidentsPage(selectionFor(a, ""), func(r *ResidentView) bool { return canSeeResident(a, r, now) }, limit, after)
	return out, more, nil
}
