package audit

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/nightcall-health/nightcall/escalation"
	"github.com/nightcall-health/nightcall/events"
	"github.com/nightcall-health/nightcall/events/eventstest"
)

var timeType = reflect.TypeFor[time.Time]()

// fill sets every field of v, unexported ones included, to something
// random: with full, every pointer and slice is non-nil and non-empty and
// every number, string and boolean non-zero, so that a field the codec
// forgets reads back as zero and the comparison fails.
func fill(rng *rand.Rand, v reflect.Value, full bool, zones []*time.Location) {
	if !full && rng.IntN(4) == 0 {
		return
	}
	if v.Type() == timeType {
		v.Set(reflect.ValueOf(time.Unix(rng.Int64N(4e9)-1e9, rng.Int64N(1e9)).In(zones[rng.IntN(len(zones))])))
		return
	}
	words := []string{"home-01", "dr.okafor", "stay", "ed", "high", "7", "at_home", "é ✓"}
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(full || rng.IntN(2) == 0)
	case reflect.Int, reflect.Int64:
		v.SetInt(rng.Int64()>>rng.IntN(63) | 1)
	case reflect.String:
		if rng.IntN(3) == 0 {
			v.SetString(fmt.Sprintf("s-%x", rng.Uint64()))
		} else {
			v.SetString(words[rng.IntN(len(words))])
		}
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(rng, p.Elem(), full, zones)
		v.Set(p)
	case reflect.Slice:
		n := 1 + rng.IntN(3)
		if !full {
			n = rng.IntN(3)
		}
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := range n {
			fill(rng, s.Index(i), full, zones)
		}
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		for range 1 + rng.IntN(3) {
			k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			fill(rng, k, full, zones)
			fill(rng, e, full, zones)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Struct:
		for i := range v.NumField() {
			fv := v.Field(i)
			if !fv.CanSet() {
				fv = reflect.NewAt(fv.Type(), unsafe.Pointer(fv.UnsafeAddr())).Elem()
			}
			fill(rng, fv, full, zones)
		}
	default:
		panic(fmt.Sprintf("fill: %s", v.Type()))
	}
}

// randomState is an audit model's state with every field set and the
// invariants the model keeps: each escalation once in order, held under its
// id, numbered by its place in order, not dirty.
func randomState(t testing.TB, seed uint64, full bool, escalations int) *modelState {
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	zones := []*time.Location{time.UTC, time.Local, london, time.FixedZone("", -3600)}
	if escalations > 50 {
		zones = zones[:1] // a named zone is slow to compare
	}
	rng := rand.New(rand.NewPCG(seed, 11))
	st := &modelState{}
	fill(rng, reflect.ValueOf(st).Elem(), full, zones)
	st.Pos &= 1<<62 - 1
	st.Applied &= 1<<62 - 1
	st.Escalations = map[escalation.EscalationID]*Escalation{}
	st.Order = nil
	if full || seed%3 != 0 {
		st.Order = []escalation.EscalationID{}
	}
	for i := range escalations {
		e := &Escalation{}
		fill(rng, reflect.ValueOf(e).Elem(), full, zones)
		e.ID = escalation.EscalationID(fmt.Sprintf("e%d-%x", i, rng.Uint64()))
		e.seq, e.dirty = len(st.Order), false
		st.Escalations[e.ID] = e
		st.Order = append(st.Order, e.ID)
	}
	st.Seqs = len(st.Order)
	return st
}

func roundTrip(t *testing.T, st *modelState) (modelState, []byte) {
	t.Helper()
	data, err := encodeState(st)
	if err != nil {
		t.Fatal(err)
	}
	back, list, _, err := decodeStateList(data)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	// The list a restore builds from is the order's escalations, the very
	// ones the map holds.
	if len(list) != len(back.Order) {
		t.Fatalf("%d escalations listed, %d in order", len(list), len(back.Order))
	}
	for i, e := range list {
		if e.ID != back.Order[i] || back.Escalations[e.ID] != e {
			t.Fatalf("listed escalation %d is %s, not the order's %s held in the map", i, e.ID, back.Order[i])
		}
	}
	return back, data
}

// Every field of the audit model's state, nil, empty and full, in every
// kind of time zone, reads back equal and encodes to the same bytes again;
// many escalations are cut into several parts. A field added to a type and
// not to snapshot_codec.go fails here.
func TestSnapshotCodecKeepsEveryField(t *testing.T) {
	for seed := range uint64(30) {
		n := []int{0, 1, 7, 40}[seed%4]
		if seed == 29 {
			n = 5000
		}
		t.Run(fmt.Sprintf("seed %d, %d escalations", seed, n), func(t *testing.T) {
			st := randomState(t, seed, seed%2 == 0, n)
			back, data := roundTrip(t, st)
			if !reflect.DeepEqual(*st, back) {
				t.Fatalf("the state read back differs\nwrote %+v\nread  %+v", *st, back)
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

// Escalations numbered with gaps (a repeated raise replaced one) are
// numbered afresh by their order; a dirty mark is not kept.
func TestSnapshotCodecRenumbers(t *testing.T) {
	st := randomState(t, 1, true, 6)
	for i, id := range st.Order {
		st.Escalations[id].seq = 100 - 10*i
		st.Escalations[id].dirty = i%2 == 0
	}
	st.Seqs = 101
	back, _ := roundTrip(t, st)
	for i, id := range back.Order {
		if e := back.Escalations[id]; e.seq != i || e.dirty {
			t.Errorf("escalation %d: seq %d dirty %v", i, e.seq, e.dirty)
		}
	}
	if back.Seqs != len(st.Order) {
		t.Errorf("seqs %d", back.Seqs)
	}
}

// A state the model would never hold (an escalation out of order, or held
// under another id) is refused rather than written wrong.
func TestSnapshotCodecRefusesInconsistentState(t *testing.T) {
	st := randomState(t, 2, true, 3)
	st.Order = st.Order[:2]
	if _, err := encodeState(st); !errors.Is(err, events.ErrStateUnsupported) {
		t.Errorf("an escalation missing from order: %v", err)
	}
	st = randomState(t, 2, true, 3)
	st.Escalations[st.Order[0]].ID = "other"
	if _, err := encodeState(st); !errors.Is(err, events.ErrStateUnsupported) {
		t.Errorf("an escalation under another id: %v", err)
	}
}

// A damaged snapshot is ErrStateCorrupt (or, for a change that still reads,
// a state); never a panic or an allocation beyond a small multiple of it.
func TestSnapshotCodecDamagedIsCorrupt(t *testing.T) {
	_, data := roundTrip(t, randomState(t, 4, true, 12))
	for n := range len(data) {
		if _, err := decodeState(data[:n]); !errors.Is(err, events.ErrStateCorrupt) {
			t.Fatalf("cut to %d of %d bytes: %v", n, len(data), err)
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 3000 {
		bad := bytes.Clone(data)
		bad[i%len(bad)] ^= byte(1 + rng.IntN(255))
		if _, err := decodeState(bad); err != nil && !errors.Is(err, events.ErrStateCorrupt) {
			t.Fatalf("byte %d changed: %v", i%len(bad), err)
		}
	}
	head := func(parts ...func(w *events.StateWriter)) []byte {
		w := events.NewStateWriter(64)
		w.Uvarint(stateFormat)
		w.Varint(1)
		w.Varint(1)
		w.Time(time.Time{})
		w.Str("")
		w.Varint(0)
		for _, p := range parts {
			p(w)
		}
		return w.Bytes()
	}
	for name, b := range map[string][]byte{
		"a billion escalations": head(func(w *events.StateWriter) { w.Length(1e9, false) }),
		"a billion parts":       head(func(w *events.StateWriter) { w.Length(0, false); w.Bool(false); w.Uvarint(1e9) }),
		"a section of 1 GiB":    head(func(w *events.StateWriter) { w.Length(0, false); w.Bool(false); w.Uvarint(0); w.Uvarint(1 << 30) }),
		"held nil, some in order": head(func(w *events.StateWriter) {
			w.Length(1, false)
			w.Bool(true)
			w.Uvarint(0)
			w.Section(events.NewStateWriter(0))
		}),
		"a part of a billion escalations": head(func(w *events.StateWriter) {
			w.Length(0, false)
			w.Bool(false)
			w.Uvarint(1)
			rest := events.NewStateWriter(0)
			rest.Length(0, false)
			rest.Length(0, false)
			w.Section(rest)
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

// A model restored from its snapshot equals the model it was taken of, its
// figures too; a damaged snapshot leaves the model as it was.
func TestRestoreStateKeepsFigures(t *testing.T) {
	loc, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	m := NewModel()
	m.Keep(loc, 72*time.Hour)
	st := randomState(t, 6, true, 200)
	m.pos, m.escalations, m.order, m.admissions, m.deaths, m.seqs = st.Pos, st.Escalations, st.Order, st.Admissions, st.Deaths, st.Seqs
	for _, id := range m.order {
		e := m.escalations[id]
		m.byResident[e.ResidentID] = append(m.byResident[e.ResidentID], e)
	}
	_, data, err := m.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	back := NewModel()
	back.Keep(loc, 72*time.Hour)
	if err := back.RestoreState(data[:len(data)-2]); !errors.Is(err, events.ErrStateCorrupt) || back.Position() != 0 {
		t.Fatalf("a cut snapshot: %v, position %d", err, back.Position())
	}
	if err := back.RestoreState(data); err != nil {
		t.Fatal(err)
	}
	if back.Digest() != m.Digest() || back.Position() != m.Position() {
		t.Error("the restored model differs")
	}
	q := Query{Window: 72 * time.Hour, WindowText: "72h", AsOf: time.Unix(4e9, 0), Location: loc}
	if a, b := m.FiguresByScan(q), back.FiguresByScan(q); !reflect.DeepEqual(a, b) {
		t.Errorf("figures after a restore %+v, before %+v", b.Counts, a.Counts)
	}
	if !slices.Equal(back.order, m.order) {
		t.Error("order differs")
	}
}

// FuzzSnapshotState: any input decodes to a state or ErrStateCorrupt, never
// a panic; a state read re-encodes, and that encoding is a fixed point.
func FuzzSnapshotState(f *testing.F) {
	for seed := range uint64(4) {
		data, err := encodeState(randomState(f, seed, seed%2 == 0, int(seed)*3))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		eventstest.StateCodecHolds(t, data, decodeState, encodeState)
	})
}
