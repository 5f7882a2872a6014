package escalation

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/nightcall-health/nightcall/escalation/news2"
	"github.com/nightcall-health/nightcall/events"
)

// The read model's snapshot, written and read by hand (events.StateWriter):
//
//	version byte · position · residents · escalations · parts ·
//	section: care homes, rota, rota log · section: escalation index ·
//	section × parts: residents
//
// The residents, by far the largest part, are cut into up to maxParts
// sections of about equal weight, each with its own symbols, which decode
// at the same time on every core. The escalation index (escalation →
// resident) is written as "derived" when it is exactly what the residents'
// escalations give, and rebuilt from them; otherwise it is written out.
// Each field is written in the order below, and read back in the same
// order: a field added to a type must be added here (TestSnapshotCodecKeepsEveryField
// fills every field and fails until it is).

// stateFormat is the first byte of the read model's snapshot.
const stateFormat = 3

// maxParts bounds the sections the residents are cut into.
const maxParts = 8

// partWeight is about the escalations and observations below which the
// residents are not cut further.
const partWeight = 4096

// encodeState writes the read model.
func encodeState(st *projectionState) ([]byte, error) {
	ids := slices.Sorted(maps.Keys(st.Residents))
	escs, weight := 0, 0
	for _, id := range ids {
		r := st.Residents[id]
		if r == nil {
			return nil, fmt.Errorf("%w: resident %s has no view", events.ErrStateUnsupported, id)
		}
		escs += len(r.Escalations)
		weight += residentWeight(r)
	}
	// Cut the residents into parts of about equal weight.
	parts := min(maxParts, max(1, weight/partWeight))
	var cuts []int // the first resident of each part after the first
	per, acc := weight/parts+1, 0
	for i, id := range ids {
		acc += residentWeight(st.Residents[id])
		if acc >= per*(len(cuts)+1) && len(cuts) < parts-1 && i+1 < len(ids) {
			cuts = append(cuts, i+1)
		}
	}
	bounds := append(append([]int{0}, cuts...), len(ids))
	sections := make([]*events.StateWriter, len(bounds)-1)
	_ = events.InParallel(len(sections), func(i int) error {
		w := events.NewStateWriter(1 << 16)
		part := ids[bounds[i]:bounds[i+1]]
		w.Length(len(part), false)
		for _, id := range part {
			w.Sym(string(id))
			encResident(w, st.Residents[id])
		}
		sections[i] = w
		return nil
	})

	rest := events.NewStateWriter(1 << 12)
	homes := slices.Sorted(maps.Keys(st.Homes))
	rest.Length(len(homes), st.Homes == nil)
	for _, id := range homes {
		rest.Sym(string(id))
		encCareHome(rest, st.Homes[id])
	}
	encRota(rest, &st.Rota)
	rest.Length(len(st.RotaLog), st.RotaLog == nil)
	for i := range st.RotaLog {
		rest.Time(st.RotaLog[i].from)
		encRota(rest, &st.RotaLog[i].rota)
	}

	index := events.NewStateWriter(64)
	if maps.Equal(deriveIndex(ids, st.Residents, escs), st.EscIndex) && st.EscIndex != nil {
		index.Bool(true)
	} else {
		index.Bool(false)
		keys := slices.Sorted(maps.Keys(st.EscIndex))
		index.Length(len(keys), st.EscIndex == nil)
		for _, k := range keys {
			index.Str(string(k))
			index.Sym(string(st.EscIndex[k]))
		}
	}

	size := rest.Len() + index.Len() + 64
	for _, s := range sections {
		size += s.Len() + 10
	}
	w := events.NewStateWriter(size)
	w.Uvarint(stateFormat)
	w.Varint(st.Pos)
	w.Length(len(ids), st.Residents == nil)
	w.Uvarint(uint64(escs)) // #nosec G115 -- a count
	w.Uvarint(uint64(len(sections)))
	w.Section(rest)
	w.Section(index)
	for _, s := range sections {
		w.Section(s)
	}
	return w.Bytes(), nil
}

// residentWeight is about how long a resident takes to write and read.
func residentWeight(r *ResidentView) int {
	n := 1 + len(r.Observations)
	for i := range r.Escalations {
		n += 2 + len(r.Escalations[i].Timeline)
	}
	return n
}

// deriveIndex is the escalation index the residents' escalations give.
func deriveIndex(ids []ResidentID, residents map[ResidentID]*ResidentView, size int) map[EscalationID]ResidentID {
	out := make(map[EscalationID]ResidentID, size)
	for _, id := range ids {
		indexEscalations(out, id, residents[id])
	}
	return out
}

// indexEscalations puts each of v's escalations in the index under id.
func indexEscalations(index map[EscalationID]ResidentID, id ResidentID, v *ResidentView) {
	for i := range v.Escalations {
		index[v.Escalations[i].ID] = id
	}
}

// decodeState reads what encodeState wrote.
func decodeState(data []byte) (projectionState, error) {
	var st projectionState
	r := events.NewStateReader(data)
	if v := r.Uvarint(); v != stateFormat {
		r.Fail("format %d, not %d", v, stateFormat)
		return st, r.Err()
	}
	st.Pos = r.Varint()
	if st.Pos < 0 {
		r.Fail("position %d", st.Pos)
	}
	nres, resNil := r.Length(1)
	nesc := int(r.UvarintMax(uint64(r.Remaining())))                     // #nosec G115 -- at most Remaining(), an int
	nparts := int(r.UvarintMax(uint64(min(r.Remaining(), maxParts*16)))) // #nosec G115 -- bounded
	rest, index := r.Section(), r.Section()
	parts := make([]*events.StateReader, nparts)
	for i := range parts {
		parts[i] = r.Section()
	}
	if err := r.Finish(); err != nil {
		return st, err
	}

	ids := make([][]ResidentID, nparts)
	views := make([][]*ResidentView, nparts)
	err := events.InParallel(nparts+1, func(i int) error {
		if i == nparts {
			return decodeRest(rest, &st)
		}
		d := newStateDecoder(parts[i])
		n, _ := d.r.Length(residentMinBytes)
		ids[i], views[i] = make([]ResidentID, n), make([]*ResidentView, n)
		all := make([]ResidentView, n)
		for k := range n {
			ids[i][k] = ResidentID(d.r.Sym())
			views[i][k] = &all[k]
			d.resident(&all[k])
		}
		return d.r.Finish()
	})
	if err != nil {
		return st, err
	}

	// The counts announced are checked against what was read, and maps are
	// sized by the latter: a damaged count never sizes an allocation.
	total, escs := 0, 0
	for i := range views {
		total += len(views[i])
		for _, v := range views[i] {
			escs += len(v.Escalations)
		}
	}
	if total != nres || escs != nesc {
		return st, fmt.Errorf("%w: %d residents and %d escalations, %d and %d announced", events.ErrStateCorrupt, total, escs, nres, nesc)
	}
	// The escalation index, when derived, is built from the decoded views
	// while the residents map is filled: two maps, one core each.
	derived := index.Bool()
	built := make(chan map[EscalationID]ResidentID, 1)
	if derived {
		go func() {
			out := make(map[EscalationID]ResidentID, escs)
			for i := range ids {
				for k, id := range ids[i] {
					indexEscalations(out, id, views[i][k])
				}
			}
			built <- out
		}()
	}
	if !resNil {
		st.Residents = make(map[ResidentID]*ResidentView, total)
	}
	var dup error
	for i := range ids {
		for k, id := range ids[i] {
			if _, twice := st.Residents[id]; twice || resNil {
				dup = fmt.Errorf("%w: resident %s twice", events.ErrStateCorrupt, id)
				break
			}
			st.Residents[id] = views[i][k]
		}
		if dup != nil {
			break
		}
	}
	if derived {
		st.EscIndex = <-built
	}
	if dup != nil {
		return st, dup
	}
	if !derived {
		n, isNil := index.Length(2)
		if !isNil {
			st.EscIndex = make(map[EscalationID]ResidentID, n)
		}
		for range n {
			k := EscalationID(index.Str())
			st.EscIndex[k] = ResidentID(index.Sym())
		}
		if len(st.EscIndex) != n && index.Err() == nil {
			index.Fail("an escalation twice in the index")
		}
	}
	if err := index.Finish(); err != nil {
		return st, err
	}
	return st, nil
}

func decodeRest(r *events.StateReader, st *projectionState) error {
	d := newStateDecoder(r)
	n, isNil := r.Length(2)
	if !isNil {
		st.Homes = make(map[CareHomeID]CareHome, n)
	}
	for range n {
		id := CareHomeID(r.Sym())
		st.Homes[id] = d.careHome()
	}
	if len(st.Homes) != n {
		r.Fail("a care home twice")
	}
	st.Rota = d.rota()
	n, isNil = r.Length(4)
	if !isNil {
		st.RotaLog = make([]rotaVersion, n)
	}
	for i := range n {
		st.RotaLog[i].from = r.Time()
		st.RotaLog[i].rota = d.rota()
	}
	return r.Finish()
}

// stateDecoder reads one section, handing out what it makes from slabs.
type stateDecoder struct {
	r          *events.StateReader
	times      events.Slab[time.Time]
	ints       events.Slab[int]
	bools      events.Slab[bool]
	risks      events.Slab[news2.Risk]
	cons       events.Slab[news2.Consciousness]
	tenths     events.Slab[Tenths]
	results    events.Slab[news2.Result]
	obs        events.Slab[Observations]
	people     events.Slab[Person]
	decisions  events.Slab[Decision]
	withdrawn  events.Slab[Withdrawal]
	timeline   events.Slab[TimelineEntry]
	followUps  events.Slab[FollowUp]
	pages      events.Slab[PageDelivery]
	paged      events.Slab[PagedConsultant]
	devices    events.Slab[DeviceReceipt]
	admissions events.Slab[HospitalAdmission]
	strs       events.Slab[string]
	softSigns  events.Slab[SoftSign]
	users      events.Slab[Username]
}

func newStateDecoder(r *events.StateReader) *stateDecoder { return &stateDecoder{r: r} }

// Bits of a resident's flags.
const (
	resBaseline = 1 << iota
	resCarePlan
	resScaleSetAt
	resDiedExpected
	resDiedExpectedTrue
)

// residentMinBytes is the fewest bytes a resident (with its key) takes.
const residentMinBytes = 12

func encResident(w *events.StateWriter, v *ResidentView) {
	flags := uint64(0)
	flags |= bit(v.Baseline != nil, resBaseline) | bit(v.AdvanceCarePlan != nil, resCarePlan) | bit(v.SpO2ScaleSetAt != nil, resScaleSetAt)
	if v.DiedExpected != nil {
		flags |= resDiedExpected | bit(*v.DiedExpected, resDiedExpectedTrue)
	}
	w.Uvarint(flags)
	w.Sym(string(v.ID))
	w.Sym(string(v.CareHomeID))
	w.Str(v.Name)
	w.Str(v.DateOfBirth)
	w.Str(v.Room)
	w.Str(v.NHSNumber)
	w.Sym(string(v.Status))
	w.Int(int(v.SpO2Scale))
	if b := v.Baseline; b != nil {
		w.Int(b.NEWS2Total)
		w.Str(b.Notes)
	}
	if p := v.AdvanceCarePlan; p != nil {
		w.Bool(p.HasRespectForm)
		w.Sym(string(p.Focus))
		w.Sym(string(p.HospitalAdmission))
		w.Sym(string(p.CPR))
		w.Str(p.Summary)
		w.Str(p.RecordedAt)
		w.Str(p.ReviewDue)
	}
	encSyms(w, v.Allergies)
	w.Sym(v.SpO2ScaleSetBy)
	if v.SpO2ScaleSetAt != nil {
		w.Time(*v.SpO2ScaleSetAt)
	}
	w.Length(len(v.Observations), v.Observations == nil)
	for i := range v.Observations {
		o := &v.Observations[i]
		w.Time(o.TakenAt)
		encResult(w, &o.NEWS2)
		encObservations(w, &o.Observations)
	}
	w.Length(len(v.Escalations), v.Escalations == nil)
	for i := range v.Escalations {
		encEscalation(w, &v.Escalations[i])
	}
	w.Length(len(v.Admissions), v.Admissions == nil)
	for i := range v.Admissions {
		a := &v.Admissions[i]
		w.Time(a.At)
		w.Sym(string(a.Kind))
		w.Bool(a.Unplanned)
		w.Str(a.Reason)
		w.Time(a.RecordedAt)
	}
}

func (d *stateDecoder) resident(v *ResidentView) {
	r := d.r
	flags := r.UvarintMax(1<<5 - 1)
	v.ID = ResidentID(r.Sym())
	v.CareHomeID = CareHomeID(r.Sym())
	v.Name = r.Str()
	v.DateOfBirth = r.Str()
	v.Room = r.Str()
	v.NHSNumber = r.Str()
	v.Status = ResidentStatus(r.Sym())
	v.SpO2Scale = news2.Scale(r.Int())
	if flags&resBaseline != 0 {
		v.Baseline = &Baseline{NEWS2Total: r.Int(), Notes: r.Str()}
	}
	if flags&resCarePlan != 0 {
		v.AdvanceCarePlan = &AdvanceCarePlan{HasRespectForm: r.Bool(), Focus: CareFocus(r.Sym()), HospitalAdmission: AdmissionPreference(r.Sym()),
			CPR: CPRDecision(r.Sym()), Summary: r.Str(), RecordedAt: r.Str(), ReviewDue: r.Str()}
	}
	v.Allergies = decSyms[string](d, &d.strs)
	v.SpO2ScaleSetBy = r.Sym()
	v.SpO2ScaleSetAt = r.OptTime(flags&resScaleSetAt != 0, &d.times)
	if flags&resDiedExpected != 0 {
		v.DiedExpected = d.bools.New()
		*v.DiedExpected = flags&resDiedExpectedTrue != 0
	}
	if n, isNil := r.Length(4); !isNil {
		v.Observations = make([]ObservationRecord, n) // one resident's: grows by append
		for i := range v.Observations {
			o := &v.Observations[i]
			o.TakenAt = r.Time()
			d.result(&o.NEWS2)
			d.observations(&o.Observations)
		}
	}
	if n, isNil := r.Length(escalationMinBytes); !isNil {
		v.Escalations = make([]EscalationView, n) // one resident's: grows by append
		for i := range v.Escalations {
			d.escalation(&v.Escalations[i])
		}
	}
	if n, isNil := r.Length(6); !isNil {
		v.Admissions = d.admissions.Make(n)
		for i := range v.Admissions {
			a := &v.Admissions[i]
			a.At = r.Time()
			a.Kind = AdmissionKind(r.Sym())
			a.Unplanned = r.Bool()
			a.Reason = r.Str()
			a.RecordedAt = r.Time()
		}
	}
}

func bit(b bool, f uint64) uint64 {
	if b {
		return f
	}
	return 0
}

func encSyms[T ~string](w *events.StateWriter, s []T) {
	w.Length(len(s), s == nil)
	for _, x := range s {
		w.Sym(string(x))
	}
}

func decSyms[T ~string](d *stateDecoder, slab *events.Slab[T]) []T {
	n, isNil := d.r.Length(1)
	if isNil {
		return nil
	}
	out := slab.Make(n)
	for i := range out {
		out[i] = T(d.r.Sym())
	}
	return out
}

func encLevels(w *events.StateWriter, levels [][]Username) {
	w.Length(len(levels), levels == nil)
	for _, l := range levels {
		encSyms(w, l)
	}
}

func (d *stateDecoder) levels() [][]Username {
	n, isNil := d.r.Length(1)
	if isNil {
		return nil
	}
	out := make([][]Username, n)
	for i := range out {
		out[i] = decSyms[Username](d, &d.users)
	}
	return out
}

// Bits of a NEWS2 result's flags: which values are present.
const (
	resultTotal = 1 << iota
	resultRisk
	resultPartial
	resultAtLeast
	resultRiskAtLeast
	resultSubScores // and 6 more bits, one for each sub-score
)

func subScores(s *news2.SubScores) [7]**int {
	return [7]**int{&s.RespirationRate, &s.SpO2, &s.AirOrOxygen, &s.SystolicBP, &s.Pulse, &s.Consciousness, &s.Temperature}
}

func encResult(w *events.StateWriter, r *news2.Result) {
	flags := bit(r.Total != nil, resultTotal) | bit(r.Risk != nil, resultRisk) | bit(r.Partial, resultPartial) |
		bit(r.AtLeast != nil, resultAtLeast) | bit(r.RiskAtLeast != nil, resultRiskAtLeast)
	subs := subScores(&r.SubScores)
	for i, p := range subs {
		flags |= bit(*p != nil, resultSubScores<<i)
	}
	w.Uvarint(flags)
	if r.Total != nil {
		w.Int(*r.Total)
	}
	if r.Risk != nil {
		w.Sym(string(*r.Risk))
	}
	if r.AtLeast != nil {
		w.Int(*r.AtLeast)
	}
	if r.RiskAtLeast != nil {
		w.Sym(string(*r.RiskAtLeast))
	}
	for _, p := range subs {
		if *p != nil {
			w.Int(**p)
		}
	}
}

func (d *stateDecoder) optInt(present bool) *int {
	if !present {
		return nil
	}
	p := d.ints.New()
	*p = d.r.Int()
	return p
}

func (d *stateDecoder) optRisk(present bool) *news2.Risk {
	if !present {
		return nil
	}
	p := d.risks.New()
	*p = news2.Risk(d.r.Sym())
	return p
}

func (d *stateDecoder) result(res *news2.Result) {
	flags := d.r.UvarintMax(resultSubScores<<7 - 1)
	res.Total = d.optInt(flags&resultTotal != 0)
	res.Risk = d.optRisk(flags&resultRisk != 0)
	res.Partial = flags&resultPartial != 0
	res.AtLeast = d.optInt(flags&resultAtLeast != 0)
	res.RiskAtLeast = d.optRisk(flags&resultRiskAtLeast != 0)
	for i, p := range subScores(&res.SubScores) {
		*p = d.optInt(flags&(resultSubScores<<i) != 0)
	}
}

// Bits of a set of observations' flags: which values are present.
const (
	obsRespirationRate = 1 << iota
	obsSpO2
	obsOnOxygen
	obsOnOxygenTrue
	obsSystolicBP
	obsPulse
	obsConsciousness
	obsTemperature
	obsOxygenFlow
	obsAbsent
)

func encObservations(w *events.StateWriter, o *Observations) {
	flags := bit(o.RespirationRate != nil, obsRespirationRate) | bit(o.SpO2 != nil, obsSpO2) | bit(o.SystolicBP != nil, obsSystolicBP) |
		bit(o.Pulse != nil, obsPulse) | bit(o.Consciousness != nil, obsConsciousness) | bit(o.Temperature != nil, obsTemperature) |
		bit(o.OxygenLitresPerMin != nil, obsOxygenFlow) | bit(o.Absent != nil, obsAbsent)
	if o.OnOxygen != nil {
		flags |= obsOnOxygen | bit(*o.OnOxygen, obsOnOxygenTrue)
	}
	w.Uvarint(flags)
	for _, p := range []*int{o.RespirationRate, o.SpO2, o.SystolicBP, o.Pulse} {
		if p != nil {
			w.Int(*p)
		}
	}
	if o.Consciousness != nil {
		w.Sym(string(*o.Consciousness))
	}
	if o.Temperature != nil {
		w.Int(int(*o.Temperature))
	}
	if o.OxygenLitresPerMin != nil {
		w.Int(int(*o.OxygenLitresPerMin))
	}
	w.Time(o.TakenAt)
	if o.Absent != nil {
		keys := slices.Sorted(maps.Keys(o.Absent))
		w.Length(len(keys), false)
		for _, k := range keys {
			w.Sym(k)
			w.Sym(string(o.Absent[k]))
		}
	}
}

func (d *stateDecoder) optTenths(present bool) *Tenths {
	if !present {
		return nil
	}
	p := d.tenths.New()
	*p = Tenths(d.r.Int())
	return p
}

func (d *stateDecoder) observations(o *Observations) {
	r := d.r
	flags := r.UvarintMax(obsAbsent<<1 - 1)
	o.RespirationRate = d.optInt(flags&obsRespirationRate != 0)
	o.SpO2 = d.optInt(flags&obsSpO2 != 0)
	o.SystolicBP = d.optInt(flags&obsSystolicBP != 0)
	o.Pulse = d.optInt(flags&obsPulse != 0)
	if flags&obsOnOxygen != 0 {
		o.OnOxygen = d.bools.New()
		*o.OnOxygen = flags&obsOnOxygenTrue != 0
	}
	if flags&obsConsciousness != 0 {
		o.Consciousness = d.cons.New()
		*o.Consciousness = news2.Consciousness(r.Sym())
	}
	o.Temperature = d.optTenths(flags&obsTemperature != 0)
	o.OxygenLitresPerMin = d.optTenths(flags&obsOxygenFlow != 0)
	o.TakenAt = r.Time()
	if flags&obsAbsent != 0 {
		n, _ := r.Length(2)
		o.Absent = make(map[string]AbsentReason, n)
		for range n {
			k := r.Sym()
			o.Absent[k] = AbsentReason(r.Sym())
		}
		if len(o.Absent) != n {
			r.Fail("an absent value twice")
		}
	}
}

// Bits of an escalation's flags: which values are present.
const (
	escNEWS2 = 1 << iota
	escAcceptedBy
	escAcceptedAt
	escDecision
	escObservations
	escWithdrawal
	escFirstPagedAt
	escFirstReceiptAt
	escFollowUpDueAt
	escEverUnanswered
	escFollowUpNeeded
	escJoinOverdueAt
	escConsultantJoinedAt
	escLast
)

// escalationMinBytes is the fewest bytes an escalation takes.
const escalationMinBytes = 16

func encEscalation(w *events.StateWriter, e *EscalationView) {
	flags := bit(e.NEWS2 != nil, escNEWS2) | bit(e.AcceptedBy != nil, escAcceptedBy) | bit(e.AcceptedAt != nil, escAcceptedAt) |
		bit(e.Decision != nil, escDecision) | bit(e.Observations != nil, escObservations) | bit(e.Withdrawal != nil, escWithdrawal) |
		bit(e.FirstPagedAt != nil, escFirstPagedAt) | bit(e.FirstReceiptAt != nil, escFirstReceiptAt) |
		bit(e.FollowUpDueAt != nil, escFollowUpDueAt) | bit(e.EverUnanswered, escEverUnanswered) | bit(e.FollowUpNeeded, escFollowUpNeeded) |
		bit(e.Delivery.JoinOverdueAt != nil, escJoinOverdueAt) | bit(e.Delivery.ConsultantJoinedAt != nil, escConsultantJoinedAt)
	w.Uvarint(flags)
	w.Str(string(e.ID))
	w.Sym(string(e.ResidentID))
	w.Sym(string(e.CareHomeID))
	w.Sym(string(e.Status))
	w.Time(e.RaisedAt)
	w.Sym(e.FallbackPhone)
	w.Sym(string(e.Advice.Level))
	w.Sym(e.Advice.Text)
	w.Sym(string(e.RaisedBy))
	w.Str(e.SBARD.Situation)
	w.Str(e.SBARD.Background)
	w.Str(e.SBARD.Assessment)
	w.Str(e.SBARD.Recommendation)
	encSyms(w, e.SoftSigns)
	if e.NEWS2 != nil {
		encResult(w, e.NEWS2)
	}
	if p := e.AcceptedBy; p != nil {
		w.Sym(string(p.Username))
		w.Sym(p.Name)
	}
	for _, t := range []*time.Time{e.AcceptedAt, e.FirstPagedAt, e.FirstReceiptAt, e.FollowUpDueAt, e.Delivery.JoinOverdueAt, e.Delivery.ConsultantJoinedAt} {
		if t != nil {
			w.Time(*t)
		}
	}
	if x := e.Decision; x != nil {
		w.Sym(string(x.Outcome))
		w.Sym(string(x.Counterfactual))
		w.Str(x.Rationale)
		w.Str(x.Plan)
		w.Sym(string(x.DecidedBy))
		w.Sym(x.DecidedByName)
		w.Time(x.DecidedAt)
	}
	if e.Observations != nil {
		encObservations(w, e.Observations)
	}
	if x := e.Withdrawal; x != nil {
		w.Str(x.Reason)
		w.Sym(string(x.By))
		w.Time(x.At)
	}
	w.Length(len(e.FollowUps), e.FollowUps == nil)
	for _, f := range e.FollowUps {
		w.Sym(string(f.Status))
		w.Time(f.At)
		w.Time(f.RecordedAt)
	}
	w.Length(len(e.Timeline), e.Timeline == nil)
	for i := range e.Timeline {
		t := &e.Timeline[i]
		w.Time(t.At)
		w.Sym(t.Type)
		w.Sym(t.Detail)
	}
	w.Length(len(e.Delivery.Pages), e.Delivery.Pages == nil)
	for i := range e.Delivery.Pages {
		encPage(w, &e.Delivery.Pages[i])
	}
	w.Length(len(e.Snapshots), e.Snapshots == nil)
	for i := range e.Snapshots {
		s := &e.Snapshots[i]
		w.Str(string(s.ID))
		w.Time(s.TakenAt)
		w.Sym(string(s.ContentType))
		w.Int(s.Bytes)
		w.Int(s.Width)
		w.Int(s.Height)
		w.Sym(string(s.TakenBy))
		w.Str(s.SHA1)
		w.Str(s.sha256)
		w.Str(s.stream)
	}
}

func (d *stateDecoder) escalation(e *EscalationView) {
	r := d.r
	flags := r.UvarintMax(escLast - 1)
	e.ID = EscalationID(r.Str())
	e.ResidentID = ResidentID(r.Sym())
	e.CareHomeID = CareHomeID(r.Sym())
	e.Status = Status(r.Sym())
	e.RaisedAt = r.Time()
	e.FallbackPhone = r.Sym()
	e.Advice.Level = AdviceLevel(r.Sym())
	e.Advice.Text = r.Sym()
	e.RaisedBy = Username(r.Sym())
	e.SBARD.Situation = r.Str()
	e.SBARD.Background = r.Str()
	e.SBARD.Assessment = r.Str()
	e.SBARD.Recommendation = r.Str()
	e.SoftSigns = decSyms[SoftSign](d, &d.softSigns)
	e.EverUnanswered = flags&escEverUnanswered != 0
	e.FollowUpNeeded = flags&escFollowUpNeeded != 0
	if flags&escNEWS2 != 0 {
		e.NEWS2 = d.results.New()
		d.result(e.NEWS2)
	}
	if flags&escAcceptedBy != 0 {
		e.AcceptedBy = d.people.New()
		e.AcceptedBy.Username = Username(r.Sym())
		e.AcceptedBy.Name = r.Sym()
	}
	e.AcceptedAt = r.OptTime(flags&escAcceptedAt != 0, &d.times)
	e.FirstPagedAt = r.OptTime(flags&escFirstPagedAt != 0, &d.times)
	e.FirstReceiptAt = r.OptTime(flags&escFirstReceiptAt != 0, &d.times)
	e.FollowUpDueAt = r.OptTime(flags&escFollowUpDueAt != 0, &d.times)
	e.Delivery.JoinOverdueAt = r.OptTime(flags&escJoinOverdueAt != 0, &d.times)
	e.Delivery.ConsultantJoinedAt = r.OptTime(flags&escConsultantJoinedAt != 0, &d.times)
	if flags&escDecision != 0 {
		x := d.decisions.New()
		x.Outcome = Outcome(r.Sym())
		x.Counterfactual = Counterfactual(r.Sym())
		x.Rationale = r.Str()
		x.Plan = r.Str()
		x.DecidedBy = Username(r.Sym())
		x.DecidedByName = r.Sym()
		x.DecidedAt = r.Time()
		e.Decision = x
	}
	if flags&escObservations != 0 {
		e.Observations = d.obs.New()
		d.observations(e.Observations)
	}
	if flags&escWithdrawal != 0 {
		x := d.withdrawn.New()
		x.Reason = r.Str()
		x.By = Username(r.Sym())
		x.At = r.Time()
		e.Withdrawal = x
	}
	if n, isNil := r.Length(5); !isNil {
		e.FollowUps = d.followUps.Make(n)
		for i := range e.FollowUps {
			f := &e.FollowUps[i]
			f.Status = FollowUpStatus(r.Sym())
			f.At = r.Time()
			f.RecordedAt = r.Time()
		}
	}
	if n, isNil := r.Length(4); !isNil {
		e.Timeline = d.timeline.Make(n)
		for i := range e.Timeline {
			t := &e.Timeline[i]
			t.At = r.Time()
			t.Type = r.Sym()
			t.Detail = r.Sym()
		}
	}
	if n, isNil := r.Length(pageMinBytes); !isNil {
		e.Delivery.Pages = d.pages.Make(n)
		for i := range e.Delivery.Pages {
			d.page(&e.Delivery.Pages[i])
		}
	}
	if n, isNil := r.Length(8); !isNil {
		e.Snapshots = make([]Snapshot, n)
		for i := range e.Snapshots {
			s := &e.Snapshots[i]
			s.ID = SnapshotID(r.Str())
			s.TakenAt = r.Time()
			s.ContentType = ImageType(r.Sym())
			s.Bytes = r.Int()
			s.Width = r.Int()
			s.Height = r.Int()
			s.TakenBy = Username(r.Sym())
			s.SHA1 = r.Str()
			s.sha256 = r.Str()
			s.stream = r.Str()
		}
	}
}

// pageMinBytes is the fewest bytes a page takes.
const pageMinBytes = 6

func encPage(w *events.StateWriter, p *PageDelivery) {
	w.Str(p.PageID)
	w.Int(p.Level)
	w.Int(p.Round)
	w.Sym(p.Reason)
	w.Time(p.SentAt)
	w.Bool(p.TimedOutAt != nil)
	if p.TimedOutAt != nil {
		w.Time(*p.TimedOutAt)
	}
	w.Length(len(p.Consultants), p.Consultants == nil)
	for i := range p.Consultants {
		c := &p.Consultants[i]
		w.Sym(string(c.Username))
		w.Sym(c.Name)
		w.Length(len(c.Devices), c.Devices == nil)
		for _, dv := range c.Devices {
			w.Uvarint(bit(dv.ReceivedAt != nil, 1) | bit(dv.SeenAt != nil, 2))
			w.Sym(dv.Device)
			w.Sym(dv.Channel)
			if dv.ReceivedAt != nil {
				w.Time(*dv.ReceivedAt)
			}
			if dv.SeenAt != nil {
				w.Time(*dv.SeenAt)
			}
		}
	}
}

func (d *stateDecoder) page(p *PageDelivery) {
	r := d.r
	p.PageID = r.Str()
	p.Level = r.Int()
	p.Round = r.Int()
	p.Reason = r.Sym()
	p.SentAt = r.Time()
	p.TimedOutAt = r.OptTime(r.Bool(), &d.times)
	n, isNil := r.Length(3)
	if isNil {
		return
	}
	p.Consultants = d.paged.Make(n)
	for i := range p.Consultants {
		c := &p.Consultants[i]
		c.Username = Username(r.Sym())
		c.Name = r.Sym()
		m, isNil := r.Length(3)
		if isNil {
			continue
		}
		c.Devices = d.devices.Make(m)
		for k := range c.Devices {
			dv := &c.Devices[k]
			flags := r.UvarintMax(3)
			dv.Device = r.Sym()
			dv.Channel = r.Sym()
			dv.ReceivedAt = r.OptTime(flags&1 != 0, &d.times)
			dv.SeenAt = r.OptTime(flags&2 != 0, &d.times)
		}
	}
}

func encCareHome(w *events.StateWriter, h CareHome) {
	w.Sym(string(h.ID))
	w.Str(h.Name)
	w.Str(h.FallbackPhone)
	w.Str(h.OutOfHoursContact)
	w.Bool(h.Active)
}

func (d *stateDecoder) careHome() CareHome {
	r := d.r
	return CareHome{ID: CareHomeID(r.Sym()), Name: r.Str(), FallbackPhone: r.Str(), OutOfHoursContact: r.Str(), Active: r.Bool()}
}

func encRota(w *events.StateWriter, rota *Rota) {
	encLevels(w, rota.Standing)
	w.Length(len(rota.Shifts), rota.Shifts == nil)
	for i := range rota.Shifts {
		s := &rota.Shifts[i]
		w.Str(s.ID)
		w.Str(s.Name)
		encSyms(w, s.Days)
		w.Sym(s.Start)
		w.Sym(s.End)
		w.Bool(s.EndDayOffset != nil)
		if s.EndDayOffset != nil {
			w.Int(*s.EndDayOffset)
		}
		encLevels(w, s.Levels)
	}
	w.Length(len(rota.Overrides), rota.Overrides == nil)
	for _, o := range rota.Overrides {
		w.Str(o.ID)
		w.Time(o.From)
		w.Time(o.To)
		w.Sym(string(o.Covered))
		w.Sym(string(o.By))
	}
}

func (d *stateDecoder) rota() Rota {
	r := d.r
	var out Rota
	out.Standing = d.levels()
	if n, isNil := r.Length(6); !isNil {
		out.Shifts = make([]Shift, n)
		for i := range out.Shifts {
			s := &out.Shifts[i]
			s.ID = r.Str()
			s.Name = r.Str()
			s.Days = decSyms[string](d, &d.strs)
			s.Start = r.Sym()
			s.End = r.Sym()
			s.EndDayOffset = d.optInt(r.Bool())
			s.Levels = d.levels()
		}
	}
	if n, isNil := r.Length(6); !isNil {
		out.Overrides = make([]Override, n)
		for i := range out.Overrides {
			o := &out.Overrides[i]
			o.ID = r.Str()
			o.From = r.Time()
			o.To = r.Time()
			o.Covered = Username(r.Sym())
			o.By = Username(r.Sym())
		}
	}
	return out
}
