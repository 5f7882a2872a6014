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

// A number too big for the field it is read back into is corruption, not a
// value to truncate: each narrow integer, nanoseconds past a second, and a
// count of zero-size elements beyond any slice's reach. The bytes are made
// by encoding a wider type of the same layout.
func TestStateOutOfRangeIsCorrupt(t *testing.T) {
	type wide struct{ V int64 }
	type uwide struct{ V uint64 }
	cases := []struct {
		name string
		in   any
		into func() any
	}{
		{"int8", &wide{V: 128}, func() any { return &struct{ V int8 }{} }},
		{"int8 low", &wide{V: -129}, func() any { return &struct{ V int8 }{} }},
		{"int16", &wide{V: 1 << 15}, func() any { return &struct{ V int16 }{} }},
		{"int32", &wide{V: -1<<31 - 1}, func() any { return &struct{ V int32 }{} }},
		{"uint16", &uwide{V: 1 << 16}, func() any { return &struct{ V uint16 }{} }},
		{"uint32", &uwide{V: 1 << 32}, func() any { return &struct{ V uint32 }{} }},
		// time.Time is seconds (varint), nanoseconds (uvarint), zone (a byte; 0 is UTC).
		{"nanoseconds", &struct {
			S int64
			N uint64
			Z uint8
		}{S: 0, N: 1_000_000_000, Z: 0}, func() any { return &struct{ T time.Time }{} }},
		// A non-nil slice is a byte 1 then its length (uvarint).
		{"zero-size elements", &struct {
			Set uint8
			N   uint64
		}{Set: 1, N: 1 << 63}, func() any { return &struct{ V []struct{} }{} }},
	}
	for _, c := range cases {
		data, err := events.EncodeState(c.in)
		if err != nil {
			t.Fatal(err)
		}
		if err := events.DecodeState(data, c.into()); !errors.Is(err, events.ErrStateCorrupt) {
			t.Errorf("%s: %v, want ErrStateCorrupt", c.name, err)
		}
	}
	// The edges themselves still read back.
	for _, v := range []int64{-128, 127} {
		data, _ := events.EncodeState(&wide{V: v})
		var out struct{ V int8 }
		if err := events.DecodeState(data, &out); err != nil || int64(out.V) != v {
			t.Errorf("int8 %d: %v, %d", v, err, out.V)
		}
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
