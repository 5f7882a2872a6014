package audit

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/events"
)

// The audit model's snapshot, written and read by hand (events.StateWriter):
//
//	version byte · position · applied · log time · kept zone · kept window ·
//	escalations · parts · section: admissions and deaths ·
//	section × parts: escalations, each with its kept member
//
// The escalations are written in the model's order (each once: the map is
// rebuilt from them), cut into up to maxParts sections with symbols of
// their own that decode at the same time on every core. Each field is
// written in the order below and read back in the same order: a field
// added to a type must be added here (TestSnapshotCodecKeepsEveryField
// fills every field and fails until it is). An escalation's dirty mark is
// not kept: a restore rebuilds the kept figures from scratch. Nor is its
// seq, which only places it in the kept figures: a restore numbers the
// escalations afresh in their order (so no damaged number can make the
// figures allocate for escalations that do not exist).
//
// Each escalation carries its member in the first kept index (its versions
// and what it adds once settled: what judging it works out), unless it is
// changed since the index took it or is judged as the scan judges it; the
// header names that index's zone and window. A restore keeping the same
// zone and window places these members as they are instead of judging every
// escalation again (at 10M events that judging was about a quarter of a
// restart's CPU); any other index, and any escalation without one, is
// judged. A member is checked as it is read: no more versions than a member
// holds, each code one the figures know, the first version at the raise and
// each later one after the last.

// stateFormat is the first byte of the audit model's snapshot (3: with the
// kept members).
const stateFormat = 3

// maxParts bounds the sections the escalations are cut into; partSize is
// the escalations below which they are not cut further.
const (
	maxParts = 8
	partSize = 2048
)

// escalationMinBytes is the fewest bytes an escalation takes.
const escalationMinBytes = 16

// keptMembers is what a snapshot carries of one kept index: its zone and
// window, and each escalation's member in it (nil: none, judged afresh).
type keptMembers struct {
	zone   string
	window time.Duration
	member func(e *Escalation) *member
}

func encodeState(st *modelState) ([]byte, error) { return encodeStateKept(st, keptMembers{}) }

func encodeStateKept(st *modelState, kept keptMembers) ([]byte, error) {
	if len(st.Order) != len(st.Escalations) {
		return nil, fmt.Errorf("%w: %d escalations in order, %d held", events.ErrStateUnsupported, len(st.Order), len(st.Escalations))
	}
	for _, id := range st.Order {
		if e := st.Escalations[id]; e == nil || e.ID != id {
			return nil, fmt.Errorf("%w: escalation %s is not held under its id", events.ErrStateUnsupported, id)
		}
	}
	parts := min(maxParts, max(1, len(st.Order)/partSize))
	per := (len(st.Order) + parts - 1) / max(parts, 1)
	sections := make([]*events.StateWriter, parts)
	_ = events.InParallel(parts, func(i int) error {
		w := events.NewStateWriter(1 << 16)
		part := st.Order[min(i*per, len(st.Order)):min((i+1)*per, len(st.Order))]
		w.Length(len(part), false)
		for _, id := range part {
			e := st.Escalations[id]
			encEscalation(w, e)
			var mb *member
			if kept.member != nil {
				mb = kept.member(e)
			}
			encMember(w, e, mb)
		}
		sections[i] = w
		return nil
	})

	rest := events.NewStateWriter(1 << 12)
	residents := slices.Sorted(maps.Keys(st.Admissions))
	rest.Length(len(residents), st.Admissions == nil)
	for _, rid := range residents {
		rest.Sym(string(rid))
		as := st.Admissions[rid]
		rest.Length(len(as), as == nil)
		for _, a := range as {
			rest.Time(a.At)
			rest.Sym(string(a.Kind))
			rest.Bool(a.Unplanned)
			rest.Time(a.RecordedAt)
		}
	}
	residents = slices.Sorted(maps.Keys(st.Deaths))
	rest.Length(len(residents), st.Deaths == nil)
	for _, rid := range residents {
		rest.Sym(string(rid))
		d := st.Deaths[rid]
		rest.Time(d.At)
		rest.Bool(d.Expected)
		rest.Time(d.RecordedAt)
	}

	size := rest.Len() + 64
	for _, s := range sections {
		size += s.Len() + 10
	}
	w := events.NewStateWriter(size)
	w.Uvarint(stateFormat)
	w.Varint(st.Pos)
	w.Varint(st.Applied)
	w.Time(st.LogTime)
	w.Str(kept.zone)
	w.Varint(int64(kept.window))
	w.Length(len(st.Order), st.Order == nil)
	w.Bool(st.Escalations == nil)
	w.Uvarint(uint64(len(sections)))
	w.Section(rest)
	for _, s := range sections {
		w.Section(s)
	}
	return w.Bytes(), nil
}

func decodeState(data []byte) (modelState, error) {
	st, _, _, err := decodeStateList(data)
	return st, err
}

// restoredMembers are the kept members a snapshot carried: members[i] is
// the member of the list's escalation i (nil: none).
type restoredMembers struct {
	zone    string
	window  time.Duration
	members []*member
}

// decodeStateList reads what encodeState wrote, and returns beside it the
// escalations in the order's order (a restore builds from them without a
// lookup of each in the map) and the kept members carried.
func decodeStateList(data []byte) (modelState, []*Escalation, restoredMembers, error) {
	var st modelState
	var list []*Escalation
	var kept restoredMembers
	r := events.NewStateReader(data)
	if v := r.Uvarint(); v != stateFormat {
		r.Fail("format %d, not %d", v, stateFormat)
		return st, nil, kept, r.Err()
	}
	st.Pos = r.Varint()
	st.Applied = r.Varint()
	if st.Pos < 0 || st.Applied < 0 {
		r.Fail("a negative position or count")
	}
	st.LogTime = r.Time()
	kept.zone = r.Str()
	kept.window = time.Duration(r.Varint())
	n, orderNil := r.Length(escalationMinBytes)
	escNil := r.Bool()
	nparts := int(r.UvarintMax(uint64(min(r.Remaining(), maxParts*16)))) // #nosec G115 -- bounded
	rest := r.Section()
	parts := make([]*events.StateReader, nparts)
	for i := range parts {
		parts[i] = r.Section()
	}
	if err := r.Finish(); err != nil {
		return st, nil, kept, err
	}
	if escNil && n > 0 {
		return st, nil, kept, fmt.Errorf("%w: escalations in order and none held", events.ErrStateCorrupt)
	}

	decoded := make([][]Escalation, nparts)
	members := make([][]member, nparts)
	err := events.InParallel(nparts+1, func(i int) error {
		if i == nparts {
			return decodeRest(rest, &st)
		}
		d := &stateDecoder{r: parts[i]}
		k, _ := d.r.Length(escalationMinBytes)
		es := make([]Escalation, k)
		ms := make([]member, k)
		for j := range es {
			d.escalation(&es[j])
			d.member(&es[j], &ms[j])
			if d.r.Err() != nil {
				break
			}
		}
		decoded[i], members[i] = es, ms
		return d.r.Finish()
	})
	if err != nil {
		return st, nil, kept, err
	}
	// The count announced is checked against what was read, which sizes
	// the map and the order: a damaged count never sizes an allocation.
	total := 0
	for _, es := range decoded {
		total += len(es)
	}
	if total != n {
		return st, nil, kept, fmt.Errorf("%w: %d escalations, %d announced", events.ErrStateCorrupt, total, n)
	}
	if !orderNil {
		st.Order = make([]escalation.EscalationID, 0, total)
	}
	if !escNil {
		st.Escalations = make(map[escalation.EscalationID]*Escalation, total)
	}
	list = make([]*Escalation, 0, total)
	kept.members = make([]*member, 0, total)
	for i, es := range decoded {
		for j := range es {
			if mb := &members[i][j]; mb.n > 0 {
				kept.members = append(kept.members, mb)
			} else {
				kept.members = append(kept.members, nil)
			}
			e := &es[j]
			if _, dup := st.Escalations[e.ID]; dup || escNil {
				return st, nil, kept, fmt.Errorf("%w: escalation %s twice", events.ErrStateCorrupt, e.ID)
			}
			e.seq = len(st.Order)
			st.Escalations[e.ID] = e
			st.Order = append(st.Order, e.ID)
			list = append(list, e)
		}
	}
	st.Seqs = n
	return st, list, kept, nil
}

func decodeRest(r *events.StateReader, st *modelState) error {
	n, isNil := r.Length(2)
	if !isNil {
		st.Admissions = make(map[escalation.ResidentID][]Admission, n)
	}
	for range n {
		rid := escalation.ResidentID(r.Sym())
		k, isNil := r.Length(6)
		var as []Admission
		if !isNil {
			as = make([]Admission, k)
		}
		for i := range as {
			as[i] = Admission{At: r.Time(), Kind: escalation.AdmissionKind(r.Sym()), Unplanned: r.Bool(), RecordedAt: r.Time()}
		}
		st.Admissions[rid] = as
	}
	if len(st.Admissions) != n {
		r.Fail("a resident's admissions twice")
	}
	n, isNil = r.Length(6)
	if !isNil {
		st.Deaths = make(map[escalation.ResidentID]Death, n)
	}
	for range n {
		rid := escalation.ResidentID(r.Sym())
		st.Deaths[rid] = Death{At: r.Time(), Expected: r.Bool(), RecordedAt: r.Time()}
	}
	if len(st.Deaths) != n {
		r.Fail("a resident's death twice")
	}
	return r.Finish()
}

// stateDecoder reads one section, handing out what it makes from slabs.
type stateDecoder struct {
	r         *events.StateReader
	times     events.Slab[time.Time]
	ints      events.Slab[int]
	followUps events.Slab[FollowUp]
}

// Bits of an escalation's flags: which values are present.
const (
	escNEWS2Total = 1 << iota
	escAcceptedAt
	escUnansweredAt
	escDecidedAt
	escWithdrawnAt
	escLast
)

func encEscalation(w *events.StateWriter, e *Escalation) {
	w.Uvarint(bit(e.NEWS2Total != nil, escNEWS2Total) | bit(e.AcceptedAt != nil, escAcceptedAt) | bit(e.UnansweredAt != nil, escUnansweredAt) |
		bit(e.DecidedAt != nil, escDecidedAt) | bit(e.WithdrawnAt != nil, escWithdrawnAt))
	w.Str(string(e.ID))
	w.Sym(string(e.ResidentID))
	w.Sym(string(e.CareHomeID))
	w.Time(e.RaisedAt)
	if e.NEWS2Total != nil {
		w.Int(*e.NEWS2Total)
	}
	w.Sym(e.NEWS2Risk)
	w.Sym(e.NEWS2Label)
	w.Sym(e.NEWS2ResponseRisk)
	for _, t := range []*time.Time{e.AcceptedAt, e.UnansweredAt, e.DecidedAt, e.WithdrawnAt} {
		if t != nil {
			w.Time(*t)
		}
	}
	w.Sym(string(e.AcceptedBy))
	w.Sym(string(e.Outcome))
	w.Sym(string(e.Counterfactual))
	w.Sym(string(e.DecidedBy))
	w.Str(e.Rationale)
	w.Str(e.Plan)
	w.Str(e.Situation)
	w.Length(len(e.FollowUps), e.FollowUps == nil)
	for _, f := range e.FollowUps {
		w.Sym(string(f.Status))
		w.Time(f.At)
		w.Time(f.RecordedAt)
	}
}

func (d *stateDecoder) escalation(e *Escalation) {
	r := d.r
	flags := r.UvarintMax(escLast - 1)
	e.ID = escalation.EscalationID(r.Str())
	e.ResidentID = escalation.ResidentID(r.Sym())
	e.CareHomeID = escalation.CareHomeID(r.Sym())
	e.RaisedAt = r.Time()
	if flags&escNEWS2Total != 0 {
		e.NEWS2Total = d.ints.New()
		*e.NEWS2Total = r.Int()
	}
	e.NEWS2Risk = r.Sym()
	e.NEWS2Label = r.Sym()
	e.NEWS2ResponseRisk = r.Sym()
	e.AcceptedAt = r.OptTime(flags&escAcceptedAt != 0, &d.times)
	e.UnansweredAt = r.OptTime(flags&escUnansweredAt != 0, &d.times)
	e.DecidedAt = r.OptTime(flags&escDecidedAt != 0, &d.times)
	e.WithdrawnAt = r.OptTime(flags&escWithdrawnAt != 0, &d.times)
	e.AcceptedBy = escalation.Username(r.Sym())
	e.Outcome = escalation.Outcome(r.Sym())
	e.Counterfactual = escalation.Counterfactual(r.Sym())
	e.DecidedBy = escalation.Username(r.Sym())
	e.Rationale = r.Str()
	e.Plan = r.Str()
	e.Situation = r.Str()
	if n, isNil := r.Length(5); !isNil {
		e.FollowUps = d.followUps.Make(n)
		for i := range e.FollowUps {
			f := &e.FollowUps[i]
			f.Status = escalation.FollowUpStatus(r.Sym())
			f.At = r.Time()
			f.RecordedAt = r.Time()
		}
	}
}

// encMember writes e's kept member mb (nil: none).
func encMember(w *events.StateWriter, e *Escalation, mb *member) {
	if mb == nil || mb.scan || mb.n == 0 || mb.e != e {
		w.Uvarint(0)
		return
	}
	w.Uvarint(uint64(mb.n))
	w.Varint(mb.accept)
	w.Varint(mb.decide)
	for i := range int(mb.n) {
		v := &mb.versions[i]
		if i > 0 {
			w.Varint(v.sec - mb.versions[i-1].sec)
			w.Uvarint(uint64(v.nsec)) // #nosec G115 -- 0..999,999,999
		}
		w.Uvarint(uint64(v.code))
	}
}

// member reads e's kept member into mb (n 0: none), checking it.
func (d *stateDecoder) member(e *Escalation, mb *member) {
	r := d.r
	n := r.UvarintMax(maxVersions)
	if n == 0 {
		return
	}
	if !stampable(e.RaisedAt) {
		r.Fail("a kept member of an escalation the scan judges")
		return
	}
	mb.e = e
	mb.n = uint8(n) // #nosec G115 -- at most maxVersions
	mb.accept, mb.decide = r.Varint(), r.Varint()
	raised := stampOf(e.RaisedAt)
	for i := range int(n) {
		v := &mb.versions[i]
		if i == 0 {
			v.sec, v.nsec = raised.sec, raised.nsec
		} else {
			prev := mb.versions[i-1].stamp()
			d := r.Varint()
			nsec := r.UvarintMax(999_999_999)
			v.sec, v.nsec = prev.sec+d, int32(nsec) // #nosec G115 -- bounded above
			if d < 0 || d > 1<<40 || !prev.before(v.stamp()) {
				r.Fail("a kept member's versions out of order")
				return
			}
		}
		c := r.UvarintMax(math.MaxUint16)
		if int(c>>codeStayShift) >= len(stayCodes) {
			r.Fail("a kept member's code %d", c)
			return
		}
		v.code = code(c)
	}
	mb.final = mb.versions[n-1].code
}

func bit(b bool, f uint64) uint64 {
	if b {
		return f
	}
	return 0
}
