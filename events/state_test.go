package events_test

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/nightcall-health/nightcall/events"
)

type inner struct {
	Name   string
	hidden int
	At     time.Time
	Tags   []string
	Bytes  []byte
	Scores map[string]*int
}

type outer struct {
	pos      int64
	byID     map[string]*inner
	list     []inner
	empty    []int
	none     []int
	ptr      *inner
	nilPtr   *inner
	arr      [3]uint16
	f        float64
	ok       bool
	loc      *time.Location
	small    int8
	u        uint32
	nilMap   map[int]bool
	emptyMap map[int]bool
}

func sample(t *testing.T) *outer {
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	seven := 7
	at := time.Date(2026, 3, 29, 1, 30, 0, 123, time.UTC)
	return &outer{
		pos: 42,
		byID: map[string]*inner{
			"b": {Name: "b", hidden: -3, At: at.In(london), Tags: []string{}, Scores: map[string]*int{"x": &seven, "y": nil}},
			"a": {Name: "a", At: at.In(time.FixedZone("", 3600)), Bytes: []byte{1, 2, 3}},
		},
		list:     []inner{{Name: "l", At: at}},
		empty:    []int{},
		ptr:      &inner{Name: "p", hidden: 1 << 40},
		arr:      [3]uint16{1, 2, 65535},
		f:        -1.5,
		ok:       true,
		loc:      london,
		small:    -128,
		u:        1 << 31,
		emptyMap: map[int]bool{},
	}
}

// A state with unexported fields, maps, nil and empty slices and maps,
// pointers, times in three kinds of zone and a location reads back equal,
// and equal states encode to equal bytes whatever the maps' order.
func TestStateRoundTrip(t *testing.T) {
	in := sample(t)
	data, err := events.EncodeState(in)
	if err != nil {
		t.Fatal(err)
	}
	var out outer
	if err := events.DecodeState(data, &out); err != nil {
		t.Fatal(err)
	}
	again, err := events.EncodeState(&out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, again) {
		t.Fatal("a decoded state encodes to other bytes")
	}
	if out.pos != 42 || out.byID["b"].hidden != -3 || *out.byID["b"].Scores["x"] != 7 || out.byID["b"].Scores["y"] != nil ||
		out.ptr.hidden != 1<<40 || out.nilPtr != nil || out.arr[2] != 65535 || out.f != -1.5 || !out.ok || out.small != -128 || out.u != 1<<31 {
		t.Fatalf("decoded %+v", out)
	}
	if out.none != nil || out.empty == nil || len(out.empty) != 0 || out.nilMap != nil || out.emptyMap == nil {
		t.Error("nil and empty were not kept apart")
	}
	if out.byID["b"].Tags == nil || out.byID["a"].Tags != nil || !bytes.Equal(out.byID["a"].Bytes, []byte{1, 2, 3}) {
		t.Error("slices inside map values changed")
	}
	for k, want := range in.byID {
		got := out.byID[k].At
		if !got.Equal(want.At) || got.Location().String() != want.At.Location().String() {
			t.Errorf("%s: time %v, want %v", k, got, want.At)
		}
		if _, off := got.Zone(); func() int { _, o := want.At.Zone(); return o }() != off {
			t.Errorf("%s: zone offset changed", k)
		}
	}
	if out.loc.String() != "Europe/London" || !reflect.DeepEqual(out.list[0].At, in.list[0].At) {
		t.Error("location or UTC time changed")
	}
	d1, _ := events.StateDigest(in)
	d2, _ := events.StateDigest(&out)
	if d1 != d2 {
		t.Error("equal states have different digests")
	}
	out.byID["a"].hidden++
	if d3, _ := events.StateDigest(&out); d3 == d1 {
		t.Error("a changed unexported field left the digest as it was")
	}
}

// Truncated or damaged data is an error, never a panic.
func TestStateCorruptIsAnError(t *testing.T) {
	data, err := events.EncodeState(sample(t))
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < len(data); n++ {
		var out outer
		if err := events.DecodeState(data[:n], &out); !errors.Is(err, events.ErrStateCorrupt) {
			t.Fatalf("truncated to %d of %d bytes: %v", n, len(data), err)
		}
	}
	var out outer
	if err := events.DecodeState(append(data, 0), &out); !errors.Is(err, events.ErrStateCorrupt) {
		t.Fatalf("a byte too many: %v", err)
	}
	for i := range data {
		bad := bytes.Clone(data)
		bad[i] ^= 0xff
		var out outer
		_ = events.DecodeState(bad, &out) // must not panic
	}
}

type shared struct {
	a, b *inner
}

type withFunc struct {
	F func()
}

type withIface struct {
	v any
}

// What cannot be written faithfully is refused: one value reached from two
// places, funcs, interfaces holding something.
func TestStateRefusesWhatItCannotKeep(t *testing.T) {
	x := &inner{Name: "x"}
	if _, err := events.EncodeState(&shared{a: x, b: x}); !errors.Is(err, events.ErrStateUnsupported) {
		t.Errorf("shared pointer: %v", err)
	}
	if _, err := events.EncodeState(&shared{a: x, b: &inner{}}); err != nil {
		t.Errorf("two pointers to two values: %v", err)
	}
	if _, err := events.EncodeState(&withFunc{}); !errors.Is(err, events.ErrStateUnsupported) {
		t.Errorf("func: %v", err)
	}
	if _, err := events.EncodeState(&withIface{v: 1}); !errors.Is(err, events.ErrStateUnsupported) {
		t.Errorf("interface: %v", err)
	}
	if _, err := events.EncodeState(&withIface{}); err != nil {
		t.Errorf("nil interface: %v", err)
	}
}

type v1 struct {
	A string
	B int
}

type v2 struct {
	A string
	B int
	C bool
}

// The schema changes with the shape of the type, unexported fields included.
func TestStateSchemaFollowsTheType(t *testing.T) {
	if events.StateSchema(&v1{}) == events.StateSchema(&v2{}) {
		t.Error("a field added left the schema as it was")
	}
	if events.StateSchema(&v1{}) != events.StateSchema(v1{}) {
		t.Error("the schema of a type and of a pointer to it differ")
	}
	if a, b := events.StateSchema(&outer{}), events.StateSchema(&outer{}); a != b || len(a) != 24 {
		t.Errorf("the schema is not stable: %s, %s", a, b)
	}
}

type sharedLeaf struct {
	a, b *int
	t, u *time.Time
}

// Two places pointing at one number or time come back as two equal copies.
func TestStateSharedLeavesAreCopied(t *testing.T) {
	n, at := 5, time.Unix(100, 0).UTC()
	data, err := events.EncodeState(&sharedLeaf{a: &n, b: &n, t: &at, u: &at})
	if err != nil {
		t.Fatal(err)
	}
	var out sharedLeaf
	if err := events.DecodeState(data, &out); err != nil || *out.a != 5 || *out.b != 5 || !out.t.Equal(at) || !out.u.Equal(at) {
		t.Fatalf("%+v, %v", out, err)
	}
}
