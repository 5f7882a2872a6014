package events

import (
	"encoding/binary"
	"fmt"
	"math"
	"runtime"
	"sync"
	"time"
	"unsafe"
)

// StateWriter and StateReader are the parts of a hand-written snapshot
// codec: a projection writes its state field by field, in an order of its
// own, and reads it back the same way, with no reflection on the way. The
// format is a sequence of unsigned and zig-zag varints; a string is its
// length and bytes, or, for values that repeat (care homes, outcomes, user
// names, roles), a symbol: a reference to an earlier one of the same
// section, so that each is written and allocated once. A time is its
// seconds as a difference from the previous time of the section, its
// nanoseconds and its zone. A section (Section) is a length-prefixed part
// with its own symbols and time base, so that sections decode on their own,
// on several cores if need be.
//
// A reader never trusts a length: a count is bounded by the bytes that
// remain (each item takes at least minBytes), a value out of its range, a
// symbol that was never defined or a section longer than what is left is
// ErrStateCorrupt, and every read after the first failure returns zeros.
// Decoding a damaged snapshot therefore ends in an error, never a panic or
// an allocation larger than a small multiple of the input.

// StateWriter appends a state's binary form.
type StateWriter struct {
	buf     []byte
	syms    map[string]uint64
	lastSec int64
}

// NewStateWriter returns a writer with room for about size bytes.
func NewStateWriter(size int) *StateWriter {
	return &StateWriter{buf: make([]byte, 0, max(size, 64))}
}

// Bytes returns what has been written.
func (w *StateWriter) Bytes() []byte { return w.buf }

// Len is the number of bytes written.
func (w *StateWriter) Len() int { return len(w.buf) }

// Uvarint writes an unsigned number.
func (w *StateWriter) Uvarint(v uint64) { w.buf = binary.AppendUvarint(w.buf, v) }

// Varint writes a signed number.
func (w *StateWriter) Varint(v int64) { w.buf = binary.AppendVarint(w.buf, v) }

// Int writes an int.
func (w *StateWriter) Int(v int) { w.buf = binary.AppendVarint(w.buf, int64(v)) }

// Bool writes a boolean as one byte, 0 or 1.
func (w *StateWriter) Bool(b bool) {
	if b {
		w.buf = append(w.buf, 1)
	} else {
		w.buf = append(w.buf, 0)
	}
}

// Str writes a string.
func (w *StateWriter) Str(s string) {
	w.buf = binary.AppendUvarint(w.buf, uint64(len(s)))
	w.buf = append(w.buf, s...)
}

// Sym writes a string that is likely to repeat: 0 and the string the first
// time the section meets it, its number plus one after that.
func (w *StateWriter) Sym(s string) {
	if i, ok := w.syms[s]; ok {
		w.Uvarint(i + 1)
		return
	}
	if w.syms == nil {
		w.syms = make(map[string]uint64, 256)
	}
	w.syms[s] = uint64(len(w.syms))
	w.buf = append(w.buf, 0)
	w.Str(s)
}

// Length writes the length of a slice or map, keeping nil apart from empty.
func (w *StateWriter) Length(n int, isNil bool) {
	if isNil {
		w.buf = append(w.buf, 0)
		return
	}
	w.Uvarint(uint64(n) + 1) // #nosec G115 -- a length is never negative
}

// Time zones, as written after a time's nanoseconds.
const (
	zoneUTC   = 0
	zoneLocal = 1
	zoneNamed = 2 // a location loaded again by its name
	zoneFixed = 3 // a name and an offset
)

// Time writes a time: its zone and nanoseconds in one number, then its
// seconds less the previous time's (a state's times are mostly close to one
// another). The monotonic clock reading is not kept.
func (w *StateWriter) Time(t time.Time) {
	sec := t.Unix()
	nsec := uint64(t.Nanosecond()) << 2 // #nosec G115 -- nanoseconds are in [0, 1e9)
	loc := t.Location()
	switch {
	case loc == time.UTC:
		w.Uvarint(nsec | zoneUTC)
	case loc == time.Local:
		w.Uvarint(nsec | zoneLocal)
	default:
		// A location loaded by name is written as its name, when loading
		// the name gives the same zone at t (a fixed zone may bear the name
		// of a real one); any other as the zone's name and offset at t.
		name, off := t.Zone()
		if ln := loc.String(); ln != "" && ln != "Local" {
			if l, err := loadLocation(ln); err == nil {
				if n2, off2 := t.In(l).Zone(); n2 == name && off2 == off {
					w.Uvarint(nsec | zoneNamed)
					w.Sym(ln)
					break
				}
			}
		}
		w.Uvarint(nsec | zoneFixed)
		w.Sym(name)
		w.Varint(int64(off))
	}
	w.Varint(sec - w.lastSec)
	w.lastSec = sec
}

// Section writes a section another writer built, length first.
func (w *StateWriter) Section(s *StateWriter) {
	w.Uvarint(uint64(len(s.buf)))
	w.buf = append(w.buf, s.buf...)
}

// StateReader reads what a StateWriter wrote.
type StateReader struct {
	data    []byte
	off     int
	err     error
	syms    []string
	lastSec int64
	arena   []byte
}

// NewStateReader reads data, which it does not change; the strings it
// returns do not refer to it.
func NewStateReader(data []byte) *StateReader { return &StateReader{data: data} }

// Err is the first failure, if any.
func (r *StateReader) Err() error { return r.err }

// Remaining is the number of bytes not yet read.
func (r *StateReader) Remaining() int { return len(r.data) - r.off }

// Fail records that what was read is not a state this codec writes (a
// value the caller finds out of its range, two entries with one key).
func (r *StateReader) Fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s at byte %d", ErrStateCorrupt, fmt.Sprintf(format, args...), r.off)
	}
	r.off = len(r.data)
}

// Finish is Err, or ErrStateCorrupt if bytes are left over.
func (r *StateReader) Finish() error {
	if r.err == nil && r.off != len(r.data) {
		r.Fail("%d bytes left over", len(r.data)-r.off)
	}
	return r.err
}

func (r *StateReader) truncated() { r.Fail("truncated or malformed") }

// Uvarint reads an unsigned number.
func (r *StateReader) Uvarint() uint64 {
	if r.off < len(r.data) && r.data[r.off] < 0x80 { // the common one-byte case
		v := uint64(r.data[r.off])
		r.off++
		return v
	}
	v, n := binary.Uvarint(r.data[r.off:])
	if n <= 0 {
		r.truncated()
		return 0
	}
	r.off += n
	return v
}

// UvarintMax reads an unsigned number that must be at most hi.
func (r *StateReader) UvarintMax(hi uint64) uint64 {
	v := r.Uvarint()
	if v > hi {
		r.Fail("%d is over %d", v, hi)
		return 0
	}
	return v
}

// Varint reads a signed number.
func (r *StateReader) Varint() int64 {
	v, n := binary.Varint(r.data[r.off:])
	if n <= 0 {
		r.truncated()
		return 0
	}
	r.off += n
	return v
}

// Int reads an int.
func (r *StateReader) Int() int { return r.IntIn(math.MinInt, math.MaxInt) }

// IntIn reads an int that must lie in [lo, hi].
func (r *StateReader) IntIn(lo, hi int) int {
	v := r.Varint()
	if v < int64(lo) || v > int64(hi) {
		r.Fail("%d is outside [%d, %d]", v, lo, hi)
		return 0
	}
	return int(v)
}

// Byte reads one byte.
func (r *StateReader) Byte() byte {
	if r.off >= len(r.data) {
		r.truncated()
		return 0
	}
	b := r.data[r.off]
	r.off++
	return b
}

// Bool reads a boolean: a byte that must be 0 or 1.
func (r *StateReader) Bool() bool {
	switch r.Byte() {
	case 0:
		return false
	case 1:
		return true
	}
	r.Fail("a boolean is neither 0 nor 1")
	return false
}

// next returns the next n bytes, which stay the caller's to copy.
func (r *StateReader) next(n uint64) []byte {
	if n > uint64(r.Remaining()) { // #nosec G115 -- Remaining is never negative
		r.truncated()
		return nil
	}
	k := int(n) // #nosec G115 -- n ≤ Remaining(), itself an int
	b := r.data[r.off : r.off+k : r.off+k]
	r.off += k
	return b
}

// arenaChunk is the size of the blocks short strings are copied into: one
// allocation for many strings (a string keeps its block alive, and the
// strings of a state live about as long as one another).
const arenaChunk = 32 << 10

// Str reads a string.
func (r *StateReader) Str() string {
	b := r.next(r.Uvarint())
	if len(b) == 0 {
		return ""
	}
	if len(b) > arenaChunk/8 {
		return string(b)
	}
	if cap(r.arena)-len(r.arena) < len(b) {
		r.arena = make([]byte, 0, arenaChunk)
	}
	start := len(r.arena)
	r.arena = append(r.arena, b...)
	// The block's bytes at [start, start+len(b)) are never written again.
	return unsafe.String(&r.arena[start], len(b)) // #nosec G103 -- see above
}

// Sym reads a string written by StateWriter.Sym.
func (r *StateReader) Sym() string {
	i := r.Uvarint()
	if i == 0 {
		s := r.Str()
		if r.err == nil {
			r.syms = append(r.syms, s)
		}
		return s
	}
	if i > uint64(len(r.syms)) {
		if r.err == nil {
			r.Fail("symbol %d was never defined", i)
		}
		return ""
	}
	return r.syms[i-1]
}

// Length reads a length written by StateWriter.Length; each item takes at
// least minBytes (at least 1), so a length that the bytes left cannot hold
// is corruption.
func (r *StateReader) Length(minBytes int) (n int, isNil bool) {
	v := r.Uvarint()
	if v == 0 {
		return 0, true
	}
	n64 := v - 1
	if n64 > uint64(r.Remaining()/max(minBytes, 1)) { // #nosec G115 -- Remaining is never negative
		r.Fail("a length of %d with %d bytes left", n64, r.Remaining())
		return 0, r.err == nil
	}
	return int(n64), false // #nosec G115 -- n64 ≤ Remaining()
}

// Time reads a time written by StateWriter.Time.
func (r *StateReader) Time() time.Time {
	nz := r.Uvarint()
	zone, nsec := nz&3, nz>>2
	var loc *time.Location
	switch zone {
	case zoneLocal:
		loc = time.Local
	case zoneNamed:
		name := r.Sym()
		l, err := loadLocation(name)
		if err != nil || name == "" || name == "Local" {
			r.Fail("unknown time zone %q", name)
			return time.Time{}
		}
		loc = l
	case zoneFixed:
		name := r.Sym()
		off := r.IntIn(-7*24*3600, 7*24*3600)
		loc = fixedZone(name, off)
	}
	d := r.Varint()
	if nsec > 999_999_999 {
		r.Fail("%d nanoseconds", nsec)
	}
	if r.err != nil {
		return time.Time{}
	}
	sec := r.lastSec + d
	r.lastSec = sec
	t := time.Unix(sec, int64(nsec)) // #nosec G115 -- nsec < 1e9
	if loc == nil {
		return t.UTC()
	}
	return t.In(loc)
}

// OptTime reads a time present when present is true, and returns it from a
// slab.
func (r *StateReader) OptTime(present bool, slab *Slab[time.Time]) *time.Time {
	if !present {
		return nil
	}
	p := slab.New()
	*p = r.Time()
	return p
}

// Section reads a section written by StateWriter.Section: a reader of its
// own, which may be used on another goroutine.
func (r *StateReader) Section() *StateReader {
	b := r.next(r.Uvarint())
	if r.err != nil {
		return &StateReader{err: r.err}
	}
	return &StateReader{data: b}
}

var fixedZones sync.Map // fixedZoneKey → *time.Location

type fixedZoneKey struct {
	name string
	off  int
}

// fixedZone returns one *time.Location for each name and offset.
func fixedZone(name string, off int) *time.Location {
	k := fixedZoneKey{name, off}
	if l, ok := fixedZones.Load(k); ok {
		return l.(*time.Location)
	}
	l, _ := fixedZones.LoadOrStore(fixedZoneKey{string([]byte(name)), off}, time.FixedZone(name, off))
	return l.(*time.Location)
}

// Slab hands out values and short slices of T from blocks allocated a few
// hundred at a time: a decoder makes millions of small objects that live as
// long as one another, and one allocation for many costs the allocator and
// the collector less. Each value or slice handed out is the caller's alone;
// a slice's capacity is its length, so appending to it copies.
type Slab[T any] struct {
	free []T
}

// slabBytes is about the size of one block.
const slabBytes = 16 << 10

func (s *Slab[T]) block() int {
	var zero T
	return max(8, slabBytes/max(int(unsafe.Sizeof(zero)), 1))
}

// New returns a pointer to a new zero T.
func (s *Slab[T]) New() *T {
	if len(s.free) == 0 {
		s.free = make([]T, s.block())
	}
	p := &s.free[0]
	s.free = s.free[1:]
	return p
}

// Make returns a slice of n zero Ts, with capacity n.
func (s *Slab[T]) Make(n int) []T {
	if n == 0 {
		return []T{}
	}
	b := s.block()
	if n > b/4 {
		return make([]T, n)
	}
	if len(s.free) < n {
		s.free = make([]T, b)
	}
	out := s.free[:n:n]
	s.free = s.free[n:]
	return out
}

// InParallel runs part(i) for i in [0, n), on up to GOMAXPROCS goroutines,
// and returns the first error (by i): the sections of a state are written
// and read at the same time on every core.
func InParallel(n int, part func(i int) error) error {
	errs := make([]error, n)
	workers := min(n, runtime.GOMAXPROCS(0))
	if workers <= 1 {
		for i := range n {
			errs[i] = part(i)
		}
	} else {
		var next sync.Mutex
		i := 0
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for {
					next.Lock()
					k := i
					i++
					next.Unlock()
					if k >= n {
						return
					}
					errs[k] = part(k)
				}
			})
		}
		wg.Wait()
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
