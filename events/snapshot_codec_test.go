package events_test

import (
	"errors"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/nightcall-health/nightcall/events"
)

// Every kind of value a hand-written codec writes reads back as written:
// numbers at their limits, strings and symbols (a symbol written twice
// comes back as one string), nil and empty lengths, times in UTC, Local, a
// named zone and fixed zones, and sections with symbols of their own.
func TestStateWriterReaderRoundTrip(t *testing.T) {
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	times := []time.Time{
		{}, time.Unix(0, 0).UTC(), time.Date(2026, 3, 29, 1, 30, 0, 999_999_999, time.UTC),
		time.Date(2026, 7, 1, 12, 0, 0, 5, london), time.Date(2026, 1, 1, 0, 0, 0, 0, time.Local),
		time.Date(1900, 1, 1, 0, 0, 0, 1, time.FixedZone("", 5400)), time.Date(2300, 1, 1, 0, 0, 0, 0, time.FixedZone("XST", -9*3600)),
		// A fixed zone bearing a real zone's name, with another offset.
		time.Date(2026, 7, 1, 12, 0, 0, 0, time.FixedZone("Europe/London", 7200)),
	}
	w := events.NewStateWriter(0)
	w.Uvarint(math.MaxUint64)
	w.Varint(math.MinInt64)
	w.Int(math.MaxInt)
	w.Bool(true)
	w.Bool(false)
	w.Str("")
	w.Str("é ✓ 日本")
	w.Sym("home-01")
	w.Sym("home-02")
	w.Sym("home-01")
	w.Length(0, true)
	w.Length(0, false)
	w.Length(3, false)
	for _, tm := range times {
		w.Time(tm)
	}
	sub := events.NewStateWriter(0)
	sub.Sym("home-02")
	sub.Str(string(make([]byte, 70_000))) // longer than an arena block
	w.Section(sub)
	w.Sym("home-02")

	r := events.NewStateReader(w.Bytes())
	if r.Uvarint() != math.MaxUint64 || r.Varint() != math.MinInt64 || r.Int() != math.MaxInt || !r.Bool() || r.Bool() {
		t.Error("numbers or booleans")
	}
	if r.Str() != "" || r.Str() != "é ✓ 日本" {
		t.Error("strings")
	}
	a, b, c := r.Sym(), r.Sym(), r.Sym()
	if a != "home-01" || b != "home-02" || c != "home-01" {
		t.Errorf("symbols %q %q %q", a, b, c)
	}
	if n, isNil := r.Length(1); n != 0 || !isNil {
		t.Error("nil length")
	}
	if n, isNil := r.Length(1); n != 0 || isNil {
		t.Error("empty length")
	}
	if n, isNil := r.Length(1); n != 3 || isNil {
		t.Error("length 3")
	}
	for _, want := range times {
		got := r.Time()
		gn, go_ := got.Zone()
		wn, wo := want.Zone()
		if !got.Equal(want) || gn != wn || go_ != wo || got.Location().String() != want.Location().String() {
			t.Errorf("time %v (%s) read back as %v (%s)", want, want.Location(), got, got.Location())
		}
	}
	s := r.Section()
	if s.Sym() != "home-02" || len(s.Str()) != 70_000 || s.Finish() != nil {
		t.Error("section")
	}
	if r.Sym() != "home-02" {
		t.Error("a symbol after a section")
	}
	if err := r.Finish(); err != nil {
		t.Fatal(err)
	}
}

// Whatever is wrong with the bytes is ErrStateCorrupt, read by read: cut
// short, a boolean other than 0 or 1, nanoseconds past a second, a symbol
// never defined, an unknown zone, a length or a section the bytes left
// cannot hold, bytes left over, a value over its bound. After the first
// failure every read is zero.
func TestStateReaderDamage(t *testing.T) {
	write := func(f func(w *events.StateWriter)) []byte {
		w := events.NewStateWriter(0)
		f(w)
		return w.Bytes()
	}
	for name, c := range map[string]struct {
		data []byte
		read func(r *events.StateReader)
	}{
		"cut varint":         {[]byte{0x80}, func(r *events.StateReader) { r.Uvarint() }},
		"cut string":         {write(func(w *events.StateWriter) { w.Uvarint(10); w.Bool(true) }), func(r *events.StateReader) { r.Str() }},
		"empty":              {nil, func(r *events.StateReader) { r.Bool() }},
		"boolean 2":          {[]byte{2}, func(r *events.StateReader) { r.Bool() }},
		"nanoseconds":        {write(func(w *events.StateWriter) { w.Uvarint(1e9 << 2); w.Varint(0) }), func(r *events.StateReader) { r.Time() }},
		"undefined symbol":   {write(func(w *events.StateWriter) { w.Uvarint(5) }), func(r *events.StateReader) { r.Sym() }},
		"unknown zone":       {write(func(w *events.StateWriter) { w.Uvarint(2); w.Sym("Mars/Olympus"); w.Varint(0) }), func(r *events.StateReader) { r.Time() }},
		"zone named Local":   {write(func(w *events.StateWriter) { w.Uvarint(2); w.Sym("Local"); w.Varint(0) }), func(r *events.StateReader) { r.Time() }},
		"offset of a year":   {write(func(w *events.StateWriter) { w.Uvarint(3); w.Sym(""); w.Varint(365 * 86400); w.Varint(0) }), func(r *events.StateReader) { r.Time() }},
		"length":             {write(func(w *events.StateWriter) { w.Length(5, false); w.Str("abcd") }), func(r *events.StateReader) { r.Length(1) }},
		"length of big ones": {write(func(w *events.StateWriter) { w.Length(5, false); w.Str("abcdefgh") }), func(r *events.StateReader) { r.Length(4) }},
		"section":            {write(func(w *events.StateWriter) { w.Uvarint(1 << 40) }), func(r *events.StateReader) { r.Section().Uvarint() }},
		"left over":          {[]byte{1, 2}, func(r *events.StateReader) { r.Byte() }},
		"over its bound":     {write(func(w *events.StateWriter) { w.Uvarint(300) }), func(r *events.StateReader) { r.UvarintMax(255) }},
		"int out of range":   {write(func(w *events.StateWriter) { w.Varint(-5) }), func(r *events.StateReader) { r.IntIn(0, 10) }},
		"varint too long":    {[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, func(r *events.StateReader) { r.Varint() }},
	} {
		r := events.NewStateReader(c.data)
		c.read(r)
		if err := r.Finish(); !errors.Is(err, events.ErrStateCorrupt) {
			t.Errorf("%s: %v, want ErrStateCorrupt", name, err)
		}
		if r.Uvarint() != 0 || r.Str() != "" || r.Sym() != "" || !r.Time().IsZero() || r.Remaining() != 0 {
			t.Errorf("%s: a read after the failure is not zero", name)
		}
	}
	r := events.NewStateReader([]byte{1})
	r.Fail("two entries with one key")
	if err := r.Err(); !errors.Is(err, events.ErrStateCorrupt) {
		t.Errorf("Fail: %v", err)
	}
}

// A slab hands out distinct zero values and slices whose capacity is their
// length (an append copies, never writing over a neighbour's).
func TestSlab(t *testing.T) {
	var s events.Slab[[3]int]
	seen := map[*[3]int]bool{}
	for i := range 5000 {
		p := s.New()
		if seen[p] || *p != [3]int{} {
			t.Fatal("a value handed out twice or not zero")
		}
		seen[p] = true
		p[0] = i
	}
	var ints events.Slab[int]
	a, b := ints.Make(3), ints.Make(2)
	if len(a) != 3 || cap(a) != 3 || len(b) != 2 || cap(b) != 2 {
		t.Fatalf("len/cap %d/%d %d/%d", len(a), cap(a), len(b), cap(b))
	}
	a = append(a, 9)
	if b[0] != 0 || a[3] != 9 {
		t.Error("an append wrote over the next slice")
	}
	if e := ints.Make(0); e == nil || len(e) != 0 {
		t.Error("Make(0) is not an empty slice")
	}
	if big := ints.Make(100_000); len(big) != 100_000 {
		t.Error("a long slice")
	}
}

// InParallel runs every part and returns the first part's error.
func TestInParallel(t *testing.T) {
	done := make([]bool, 50)
	errA, errB := errors.New("a"), errors.New("b")
	err := events.InParallel(len(done), func(i int) error {
		done[i] = true
		switch i {
		case 7:
			return errA
		case 30:
			return errB
		}
		return nil
	})
	if !errors.Is(err, errA) || slices.Contains(done, false) {
		t.Errorf("err %v, all run %v", err, !slices.Contains(done, false))
	}
	if err := events.InParallel(0, func(int) error { return errA }); err != nil {
		t.Error(err)
	}
}

// FuzzStateReader: any bytes read as any sequence of values end in values
// or ErrStateCorrupt, never a panic, and never a length the bytes cannot hold.
func FuzzStateReader(f *testing.F) {
	w := events.NewStateWriter(0)
	w.Sym("a")
	w.Time(time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("X", 60)))
	w.Length(2, false)
	w.Str("bc")
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7}, w.Bytes())
	f.Fuzz(func(t *testing.T, ops, data []byte) {
		r := events.NewStateReader(data)
		for _, op := range ops {
			switch op % 9 {
			case 0:
				r.Uvarint()
			case 1:
				r.Varint()
			case 2:
				r.Bool()
			case 3:
				r.Str()
			case 4:
				r.Sym()
			case 5:
				r.Time()
			case 6:
				if n, _ := r.Length(int(op%4) + 1); n > len(data) {
					t.Fatalf("a length of %d from %d bytes", n, len(data))
				}
			case 7:
				r.Section().Sym()
			case 8:
				r.IntIn(-3, 3)
			}
		}
		if err := r.Finish(); err != nil && !errors.Is(err, events.ErrStateCorrupt) {
			t.Fatal(err)
		}
	})
}
