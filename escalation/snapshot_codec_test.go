package escalation

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime"
	"testing"
	"time"
	"unsafe"

	"github.com/nightcall-health/nightcall/events"
	"github.com/nightcall-health/nightcall/events/eventstest"
)

// filler sets every field of a value, unexported ones included, to
// something random: with full, every pointer, slice and map is non-nil and
// non-empty and every number and string non-zero, so that a field the codec
// forgets reads back as zero and the comparison fails; otherwise each may
// also be nil, empty or zero.
type filler struct {
	rng   *rand.Rand
	full  bool
	zones []*time.Location
	words []string
}

func newFiller(t testing.TB, seed uint64, full bool) *filler {
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	return &filler{rng: rand.New(rand.NewPCG(seed, 7)), full: full,
		zones: []*time.Location{time.UTC, time.Local, london, time.FixedZone("", 3600), time.FixedZone("XST", -5*3600-1800)},
		words: []string{"home-01", "dr.okafor", "stay", "ed", "consultant", "care_home", "urgent", "é ✓ 日本", "x"}}
}

var timeType = reflect.TypeFor[time.Time]()

func (f *filler) str() string {
	if f.rng.IntN(3) == 0 {
		return fmt.Sprintf("s-%d-%x", f.rng.IntN(1000), f.rng.Uint64())
	}
	return f.words[f.rng.IntN(len(f.words))] // repeated, as symbols are
}

func (f *filler) fill(v reflect.Value) {
	if !f.full && f.rng.IntN(4) == 0 {
		return // the zero value
	}
	if v.Type() == timeType {
		t := time.Unix(f.rng.Int64N(4e9)-1e9, f.rng.Int64N(1e9)).In(f.zones[f.rng.IntN(len(f.zones))])
		v.Set(reflect.ValueOf(t))
		return
	}
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(f.full || f.rng.IntN(2) == 0)
	case reflect.Int, reflect.Int64:
		x := f.rng.Int64()>>f.rng.IntN(63) - 1<<20
		if x == 0 {
			x = -1
		}
		v.SetInt(x)
	case reflect.String:
		v.SetString(f.str())
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		f.fill(p.Elem())
		v.Set(p)
	case reflect.Slice:
		n := 1 + f.rng.IntN(3)
		if !f.full {
			n = f.rng.IntN(3)
		}
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := range n {
			f.fill(s.Index(i))
		}
		v.Set(s)
	case reflect.Map:
		n := 1 + f.rng.IntN(3)
		m := reflect.MakeMapWithSize(v.Type(), n)
		for range n {
			k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			f.fill(k)
			f.fill(e)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Struct:
		for i := range v.NumField() {
			fv := v.Field(i)
			if !fv.CanSet() {
				fv = reflect.NewAt(fv.Type(), unsafe.Pointer(fv.UnsafeAddr())).Elem()
			}
			f.fill(fv)
		}
	default:
		panic(fmt.Sprintf("filler: %s", v.Type()))
	}
}

// randomState is a read model with every field set; derived makes its
// escalation index the one its residents give (else it is random).
func randomState(t testing.TB, seed uint64, full, derived bool) *projectionState {
	f := newFiller(t, seed, full)
	st := &projectionState{}
	f.fill(reflect.ValueOf(st).Elem())
	st.Pos &= 1<<62 - 1 // a position is never negative
	if st.Residents == nil {
		st.Residents = map[ResidentID]*ResidentView{}
	}
	for id, r := range st.Residents {
		if r == nil {
			st.Residents[id] = &ResidentView{}
		}
	}
	if derived {
		st.EscIndex = map[EscalationID]ResidentID{}
		for id, r := range st.Residents {
			for _, e := range r.Escalations {
				st.EscIndex[e.ID] = id
			}
		}
	}
	return st
}

func roundTrip(t *testing.T, st *projectionState) (projectionState, []byte) {
	t.Helper()
	data, err := encodeState(st)
	if err != nil {
		t.Fatal(err)
	}
	back, err := decodeState(data)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return back, data
}

// Every field of the read model's state, unexported ones included, nil,
// empty and full, in every kind of time zone, reads back equal, field for
// field, and encodes to the same bytes again. A field added to a type and
// not to snapshot_codec.go fails here.
func TestSnapshotCodecKeepsEveryField(t *testing.T) {
	for seed := range uint64(40) {
		full, derived := seed%2 == 0, seed%3 == 0
		t.Run(fmt.Sprintf("seed %d full %v derived index %v", seed, full, derived), func(t *testing.T) {
			st := randomState(t, seed, full, derived)
			back, data := roundTrip(t, st)
			if !reflect.DeepEqual(*st, back) {
				t.Fatalf("the state read back differs from the one written\nwrote %s\nread  %s", dump(st), dump(&back))
			}
			again, err := encodeState(&back)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(data, again) {
				t.Error("the state read back encodes to other bytes")
			}
		})
	}
}

func dump(st *projectionState) string {
	var b bytes.Buffer
	for id, r := range st.Residents {
		fmt.Fprintf(&b, "%s: %+v\n", id, *r)
	}
	fmt.Fprintf(&b, "index %v\nhomes %v\nrota %+v\nlog %+v", st.EscIndex, st.Homes, st.Rota, st.RotaLog)
	return b.String()
}

// Empty things, zero values and many residents (cut into several parts)
// read back equal; a state with no residents at all too.
func TestSnapshotCodecEdges(t *testing.T) {
	empty := &projectionState{Residents: map[ResidentID]*ResidentView{}, EscIndex: map[EscalationID]ResidentID{}}
	if back, _ := roundTrip(t, empty); !reflect.DeepEqual(*empty, back) {
		t.Errorf("empty state: %+v", back)
	}
	nils := &projectionState{Residents: map[ResidentID]*ResidentView{"r": {}}}
	if back, _ := roundTrip(t, nils); !reflect.DeepEqual(*nils, back) {
		t.Errorf("a resident of zero values and a nil index: %+v", back)
	}
	// Zero-valued items of every list: the fewest bytes each can take.
	zeros := &projectionState{Residents: map[ResidentID]*ResidentView{"r": {
		Observations: make([]ObservationRecord, 3), Admissions: make([]HospitalAdmission, 3),
		Escalations: []EscalationView{{FollowUps: make([]FollowUp, 2), Timeline: make([]TimelineEntry, 2), Snapshots: make([]Snapshot, 2),
			Delivery: Delivery{Pages: []PageDelivery{{Consultants: []PagedConsultant{{Devices: make([]DeviceReceipt, 2)}}}}}}},
	}}, Homes: map[CareHomeID]CareHome{"": {}}, Rota: Rota{Shifts: make([]Shift, 2), Overrides: make([]Override, 2)}, RotaLog: make([]rotaVersion, 2)}
	if back, _ := roundTrip(t, zeros); !reflect.DeepEqual(*zeros, back) {
		t.Errorf("zero-valued items: %+v", back)
	}
	many := randomState(t, 99, false, true)
	f := newFiller(t, 5, true)
	f.zones = []*time.Location{time.UTC} // (a named zone is slow to compare)
	for i := range 1000 {
		r := &ResidentView{}
		f.fill(reflect.ValueOf(r).Elem())
		id := ResidentID(fmt.Sprintf("r%05d", i))
		many.Residents[id] = r
		for _, e := range r.Escalations {
			many.EscIndex[e.ID] = id
		}
	}
	back, data := roundTrip(t, many)
	if !reflect.DeepEqual(*many, back) {
		t.Error("many residents read back differ")
	}
	r := events.NewStateReader(data)
	r.Uvarint() // format
	r.Varint()  // position
	r.Length(1) // residents
	r.Uvarint() // escalations
	if parts := r.Uvarint(); parts < 2 || r.Err() != nil {
		t.Errorf("1,000 residents in %d part(s), want several (%v)", parts, r.Err())
	}
}

// A damaged snapshot (cut short anywhere, a byte changed anywhere, a length
// or a count far too large) is ErrStateCorrupt or, for a change that still
// reads, a state; never a panic, and never an allocation beyond a small
// multiple of the input.
func TestSnapshotCodecDamagedIsCorrupt(t *testing.T) {
	_, data := roundTrip(t, randomState(t, 3, true, true))
	for n := range len(data) {
		if _, err := decodeState(data[:n]); !errors.Is(err, events.ErrStateCorrupt) {
			t.Fatalf("cut to %d of %d bytes: %v, want ErrStateCorrupt", n, len(data), err)
		}
	}
	if _, err := decodeState(append(bytes.Clone(data), 0)); !errors.Is(err, events.ErrStateCorrupt) {
		t.Errorf("a byte too many: %v", err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 1000 {
		bad := bytes.Clone(data)
		at := i % len(bad)
		bad[at] ^= byte(1 + rng.IntN(255))
		if _, err := decodeState(bad); err != nil && !errors.Is(err, events.ErrStateCorrupt) {
			t.Fatalf("byte %d changed: %v", at, err)
		}
	}
	// Hand-made headers claiming far more than there is.
	huge := func(parts ...func(w *events.StateWriter)) []byte {
		w := events.NewStateWriter(64)
		for _, p := range parts {
			p(w)
		}
		return w.Bytes()
	}
	format := func(w *events.StateWriter) { w.Uvarint(stateFormat); w.Varint(1) }
	for name, b := range map[string][]byte{
		"old format":            huge(func(w *events.StateWriter) { w.Uvarint(2) }),
		"negative position":     huge(func(w *events.StateWriter) { w.Uvarint(stateFormat); w.Varint(-1) }),
		"a billion residents":   huge(format, func(w *events.StateWriter) { w.Length(1e9, false) }),
		"a billion escalations": huge(format, func(w *events.StateWriter) { w.Length(0, false); w.Uvarint(1e9) }),
		"a billion parts":       huge(format, func(w *events.StateWriter) { w.Length(0, false); w.Uvarint(0); w.Uvarint(1e9) }),
		"a section of 1 GiB":    huge(format, func(w *events.StateWriter) { w.Length(0, false); w.Uvarint(0); w.Uvarint(0); w.Uvarint(1 << 30) }),
		"a part of a billion residents": huge(format, func(w *events.StateWriter) {
			w.Length(1, false)
			w.Uvarint(0)
			w.Uvarint(1)
			w.Section(events.NewStateWriter(0)) // rest
			ix := events.NewStateWriter(0)
			ix.Bool(true)
			w.Section(ix)
			p := events.NewStateWriter(0)
			p.Length(1e9, false)
			w.Section(p)
		}),
	} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := decodeState(b)
		runtime.ReadMemStats(&after)
		if !errors.Is(err, events.ErrStateCorrupt) {
			t.Errorf("%s: %v, want ErrStateCorrupt", name, err)
		}
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
			t.Errorf("%s: %d bytes allocated", name, grew)
		}
	}
}

// A read model restored from a snapshot that does not decode is left as it
// was, and one of another state version is not restored.
func TestRestoreStateRefusesDamage(t *testing.T) {
	p := NewProjection(time.UTC)
	st := randomState(t, 8, true, true)
	data, err := encodeState(st)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.RestoreState(data[:len(data)-1]); !errors.Is(err, events.ErrStateCorrupt) {
		t.Fatalf("restore of a cut snapshot: %v", err)
	}
	if p.Position() != 0 || len(p.residents) != 0 {
		t.Error("a failed restore changed the read model")
	}
	if err := p.RestoreState(data); err != nil {
		t.Fatal(err)
	}
	if p.Position() != st.Pos || len(p.residents) != len(st.Residents) {
		t.Errorf("restored to %d with %d residents", p.Position(), len(p.residents))
	}
	if s := p.StateSchema(); s[:2] != stateVersion+"-" || stateVersion == "2" {
		t.Errorf("schema %s: the state version must move on from the generic encoding's 2", s)
	}
}

// FuzzSnapshotState: any input decodes to a state or ErrStateCorrupt, never
// a panic; a state read re-encodes, and that encoding is a fixed point.
func FuzzSnapshotState(f *testing.F) {
	for seed := range uint64(4) {
		data, err := encodeState(randomState(f, seed, seed%2 == 0, seed%3 == 0))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	empty, _ := encodeState(&projectionState{})
	f.Add(empty)
	f.Fuzz(func(t *testing.T, data []byte) {
		eventstest.StateCodecHolds(t, data, decodeState, encodeState)
	})
}
