package events

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"
	"unsafe"
)

// A projection's state is written to a snapshot by EncodeState and read
// back by DecodeState: a compact binary form of every field of the value,
// unexported ones included, so that the read model restored from a snapshot
// is the one the replay built, field for field, with nothing for a projection
// to keep in step by hand. Its schema (StateSchema) is a digest of the
// types' shape: a snapshot written before a field was added, removed or
// changed does not match, and the projection replays the log instead.
//
// The state must be a tree: maps, slices, structs, pointers, strings,
// numbers, booleans, time.Time and *time.Location; a pointer to a struct,
// slice, map or array met twice (two places sharing one value) is refused,
// as are funcs, channels and non-nil interfaces. Pointers to numbers,
// strings, booleans and times may be shared (they point at facts that are
// never changed in place) and come back as copies. Map entries are written in the order of their encoded keys,
// so equal states encode to equal bytes (see StateDigest).
//
// The read model and the audit model, whose states are large, write theirs
// by hand instead (StateWriter and StateReader, snapshot_codec.go), which
// takes no reflection, interns repeated strings and decodes on every core;
// StateSchema still digests their types' shape.

// ErrStateUnsupported means a state holds something EncodeState cannot write.
var ErrStateUnsupported = errors.New("events: state cannot be snapshotted")

// ErrStateCorrupt means encoded state could not be read back.
var ErrStateCorrupt = errors.New("events: snapshot state is corrupt")

// EncodeState encodes the value v points to.
func EncodeState(v any) ([]byte, error) {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return nil, fmt.Errorf("%w: EncodeState needs a non-nil pointer, got %T", ErrStateUnsupported, v)
	}
	c, err := codecOf(rv.Type().Elem())
	if err != nil {
		return nil, err
	}
	e := &stateEncoder{buf: make([]byte, 0, 1<<16), seen: map[unsafe.Pointer]bool{}}
	c.enc(e, rv.UnsafePointer())
	if e.err != nil {
		return nil, e.err
	}
	return e.buf, nil
}

// DecodeState decodes data into the value v points to, which it replaces.
func DecodeState(data []byte, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("%w: DecodeState needs a non-nil pointer, got %T", ErrStateUnsupported, v)
	}
	c, err := codecOf(rv.Type().Elem())
	if err != nil {
		return err
	}
	d := &stateDecoder{data: data}
	c.dec(d, rv.UnsafePointer())
	if d.err == nil && d.off != len(d.data) {
		d.err = fmt.Errorf("%w: %d bytes left over", ErrStateCorrupt, len(d.data)-d.off)
	}
	return d.err
}

// StateSchema is a digest of the shape of the type v points to: every
// field's name and type, recursively.
func StateSchema(v any) string {
	t := reflect.TypeOf(v)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var b strings.Builder
	shape(&b, t, map[reflect.Type]bool{})
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:12])
}

// StateDigest is a digest of the encoded state: two equal states have the
// same digest.
func StateDigest(v any) (string, error) {
	b, err := EncodeState(v)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

var (
	timeType     = reflect.TypeFor[time.Time]()
	locationType = reflect.TypeFor[*time.Location]()
)

func shape(b *strings.Builder, t reflect.Type, seen map[reflect.Type]bool) {
	if t.Name() != "" {
		b.WriteString(t.PkgPath() + "." + t.Name() + ":")
	}
	if t == timeType || t == locationType {
		return
	}
	if seen[t] {
		return
	}
	seen[t] = true
	b.WriteString(t.Kind().String())
	switch t.Kind() {
	case reflect.Struct:
		b.WriteString("{")
		for i := range t.NumField() {
			f := t.Field(i)
			b.WriteString(f.Name + " ")
			shape(b, f.Type, seen)
			b.WriteString(";")
		}
		b.WriteString("}")
	case reflect.Pointer, reflect.Slice:
		b.WriteString("[")
		shape(b, t.Elem(), seen)
		b.WriteString("]")
	case reflect.Array:
		fmt.Fprintf(b, "[%d]", t.Len())
		shape(b, t.Elem(), seen)
	case reflect.Map:
		b.WriteString("[")
		shape(b, t.Key(), seen)
		b.WriteString("]")
		shape(b, t.Elem(), seen)
	}
}

type stateEncoder struct {
	buf  []byte
	seen map[unsafe.Pointer]bool
	err  error
}

func (e *stateEncoder) fail(err error) {
	if e.err == nil {
		e.err = err
	}
}
func (e *stateEncoder) uvarint(v uint64) { e.buf = binary.AppendUvarint(e.buf, v) }
func (e *stateEncoder) varint(v int64)   { e.buf = binary.AppendVarint(e.buf, v) }
func (e *stateEncoder) natural(n int)    { e.uvarint(uint64(n)) } // #nosec G115 -- callers pass lengths and nanoseconds, never negative
func (e *stateEncoder) str(s string)     { e.natural(len(s)); e.buf = append(e.buf, s...) }

type stateDecoder struct {
	data []byte
	off  int
	err  error
}

func (d *stateDecoder) fail() {
	if d.err == nil {
		d.err = fmt.Errorf("%w: truncated or malformed at byte %d", ErrStateCorrupt, d.off)
	}
	d.off = len(d.data)
}

func (d *stateDecoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.data[d.off:])
	if n <= 0 {
		d.fail()
		return 0
	}
	d.off += n
	return v
}

func (d *stateDecoder) varint() int64 {
	v, n := binary.Varint(d.data[d.off:])
	if n <= 0 {
		d.fail()
		return 0
	}
	d.off += n
	return v
}

// varintIn reads a varint that must lie in [lo, hi]: a value too big for
// the field it is read into is corruption, never something to truncate.
func (d *stateDecoder) varintIn(lo, hi int64) int64 {
	v := d.varint()
	if v < lo || v > hi {
		d.fail()
		return 0
	}
	return v
}

// uvarintMax reads a uvarint that must be at most hi.
func (d *stateDecoder) uvarintMax(hi uint64) uint64 {
	v := d.uvarint()
	if v > hi {
		d.fail()
		return 0
	}
	return v
}

// remaining is the number of bytes not yet read.
func (d *stateDecoder) remaining() uint64 {
	return uint64(len(d.data) - d.off) // #nosec G115 -- off never passes len(data)
}

// count reads a number of items, each of which takes at least one byte, so
// no more than the bytes that remain.
func (d *stateDecoder) count() int {
	return int(d.uvarintMax(d.remaining())) // #nosec G115 -- at most remaining(), itself an int
}

func (d *stateDecoder) bytes(n uint64) []byte {
	if n > d.remaining() {
		d.fail()
		return nil
	}
	k := int(n) // #nosec G115 -- n ≤ remaining(), itself an int
	b := d.data[d.off : d.off+k]
	d.off += k
	return b
}

func (d *stateDecoder) str() string { return string(d.bytes(d.uvarint())) }

func (d *stateDecoder) byte1() byte {
	if d.off >= len(d.data) {
		d.fail()
		return 0
	}
	b := d.data[d.off]
	d.off++
	return b
}

// stateCodec writes and reads one type at a pointer.
type stateCodec struct {
	enc func(e *stateEncoder, p unsafe.Pointer)
	dec func(d *stateDecoder, p unsafe.Pointer)
}

var codecs sync.Map // reflect.Type → *stateCodec

func codecOf(t reflect.Type) (*stateCodec, error) {
	if c, ok := codecs.Load(t); ok {
		return c.(*stateCodec), nil
	}
	building := map[reflect.Type]*stateCodec{}
	c, err := buildCodec(t, building)
	if err != nil {
		return nil, err
	}
	for bt, bc := range building {
		codecs.Store(bt, bc)
	}
	return c, nil
}

// sliceHeader is the runtime layout of a slice.
type sliceHeader struct {
	data     unsafe.Pointer
	len, cap int
}

func buildCodec(t reflect.Type, building map[reflect.Type]*stateCodec) (*stateCodec, error) {
	if c, ok := codecs.Load(t); ok {
		return c.(*stateCodec), nil
	}
	if c, ok := building[t]; ok {
		return c, nil // recursive: filled in below before it is used
	}
	c := &stateCodec{}
	building[t] = c
	unsupported := func() (*stateCodec, error) {
		return nil, fmt.Errorf("%w: %s (%s)", ErrStateUnsupported, t, t.Kind())
	}
	switch {
	case t == timeType:
		c.enc, c.dec = encTime, decTime
		return c, nil
	case t == locationType:
		c.enc = func(e *stateEncoder, p unsafe.Pointer) {
			loc := *(**time.Location)(p)
			if loc == nil {
				e.buf = append(e.buf, 0)
				return
			}
			e.buf = append(e.buf, 1)
			e.str(loc.String())
		}
		c.dec = func(d *stateDecoder, p unsafe.Pointer) {
			if d.byte1() == 0 {
				*(**time.Location)(p) = nil
				return
			}
			loc, err := loadLocation(d.str())
			if err != nil && d.err == nil {
				d.err = fmt.Errorf("%w: %w", ErrStateCorrupt, err)
			}
			*(**time.Location)(p) = loc
		}
		return c, nil
	}
	kind := t.Kind()
	if t.Size() == 4 && (kind == reflect.Int || kind == reflect.Uint || kind == reflect.Uintptr) {
		kind = map[reflect.Kind]reflect.Kind{reflect.Int: reflect.Int32, reflect.Uint: reflect.Uint32, reflect.Uintptr: reflect.Uint32}[kind]
	}
	switch kind {
	case reflect.Bool:
		c.enc = func(e *stateEncoder, p unsafe.Pointer) {
			b := byte(0)
			if *(*bool)(p) {
				b = 1
			}
			e.buf = append(e.buf, b)
		}
		c.dec = func(d *stateDecoder, p unsafe.Pointer) { *(*bool)(p) = d.byte1() == 1 }
	case reflect.Int, reflect.Int64:
		c.enc = func(e *stateEncoder, p unsafe.Pointer) { e.varint(*(*int64)(p)) }
		c.dec = func(d *stateDecoder, p unsafe.Pointer) { *(*int64)(p) = d.varint() }
	case reflect.Int32:
		c.enc = func(e *stateEncoder, p unsafe.Pointer) { e.varint(int64(*(*int32)(p))) }
		c.dec = func(d *stateDecoder, p unsafe.Pointer) {
			*(*int32)(p) = int32(d.varintIn(math.MinInt32, math.MaxInt32)) // #nosec G115 -- range checked
		}
	case reflect.Int16:
		c.enc = func(e *stateEncoder, p unsafe.Pointer) { e.varint(int64(*(*int16)(p))) }
		c.dec = func(d *stateDecoder, p unsafe.Pointer) {
			*(*int16)(p) = int16(d.varintIn(math.MinInt16, math.MaxInt16)) // #nosec G115 -- range checked
		}
	case reflect.Int8:
		c.enc = func(e *stateEncoder, p unsafe.Pointer) { e.varint(int64(*(*int8)(p))) }
		c.dec = func(d *stateDecoder, p unsafe.Pointer) {
			*(*int8)(p) = int8(d.varintIn(math.MinInt8, math.MaxInt8)) // #nosec G115 -- range checked
		}
	case reflect.Uint, reflect.Uint64, reflect.Uintptr:
		c.enc = func(e *stateEncoder, p unsafe.Pointer) { e.uvarint(*(*uint64)(p)) }
		c.dec = func(d *stateDecoder, p unsafe.Pointer) { *(*uint64)(p) = d.uvarint() }
	case reflect.Uint32:
		c.enc = func(e *stateEncoder, p unsafe.Pointer) { e.uvarint(uint64(*(*uint32)(p))) }
		c.dec = func(d *stateDecoder, p unsafe.Pointer) {
			*(*uint32)(p) = uint32(d.uvarintMax(math.MaxUint32)) // #nosec G115 -- range checked
		}
	case reflect.Uint16:
		c.enc = func(e *stateEncoder, p unsafe.Pointer) { e.uvarint(uint64(*(*uint16)(p))) }
		c.dec = func(d *stateDecoder, p unsafe.Pointer) {
			*(*uint16)(p) = uint16(d.uvarintMax(math.MaxUint16)) // #nosec G115 -- range checked
		}
	case reflect.Uint8:
		c.enc = func(e *stateEncoder, p unsafe.Pointer) { e.buf = append(e.buf, *(*uint8)(p)) }
		c.dec = func(d *stateDecoder, p unsafe.Pointer) { *(*uint8)(p) = d.byte1() }
	case reflect.Float64:
		c.enc = func(e *stateEncoder, p unsafe.Pointer) {
			e.buf = binary.LittleEndian.AppendUint64(e.buf, math.Float64bits(*(*float64)(p)))
		}
		c.dec = func(d *stateDecoder, p unsafe.Pointer) {
			if b := d.bytes(8); b != nil {
				*(*float64)(p) = math.Float64frombits(binary.LittleEndian.Uint64(b))
			}
		}
	case reflect.Float32:
		c.enc = func(e *stateEncoder, p unsafe.Pointer) {
			e.buf = binary.LittleEndian.AppendUint32(e.buf, math.Float32bits(*(*float32)(p)))
		}
		c.dec = func(d *stateDecoder, p unsafe.Pointer) {
			if b := d.bytes(4); b != nil {
				*(*float32)(p) = math.Float32frombits(binary.LittleEndian.Uint32(b))
			}
		}
	case reflect.String:
		c.enc = func(e *stateEncoder, p unsafe.Pointer) { e.str(*(*string)(p)) }
		c.dec = func(d *stateDecoder, p unsafe.Pointer) { *(*string)(p) = d.str() }
	case reflect.Pointer:
		elem, err := buildCodec(t.Elem(), building)
		if err != nil {
			return nil, err
		}
		et := t.Elem()
		zeroSize := et.Size() == 0
		// A pointer to a number, string, boolean or time is a value written
		// once (a recorded fact): two places may share it, and each gets its
		// own copy back. Sharing anything larger is refused.
		track := et != timeType
		switch et.Kind() {
		case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8,
			reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64, reflect.String:
			track = false
		}
		c.enc = func(e *stateEncoder, p unsafe.Pointer) {
			q := *(*unsafe.Pointer)(p)
			if q == nil {
				e.buf = append(e.buf, 0)
				return
			}
			if zeroSize {
				e.buf = append(e.buf, 1)
				return
			}
			if track {
				if e.seen[q] {
					e.fail(fmt.Errorf("%w: a %s is shared by two places", ErrStateUnsupported, t))
					return
				}
				e.seen[q] = true
			}
			e.buf = append(e.buf, 1)
			elem.enc(e, q)
		}
		c.dec = func(d *stateDecoder, p unsafe.Pointer) {
			if d.byte1() == 0 {
				*(*unsafe.Pointer)(p) = nil
				return
			}
			q := reflect.New(et).UnsafePointer()
			elem.dec(d, q)
			*(*unsafe.Pointer)(p) = q
		}
	case reflect.Struct:
		type field struct {
			off uintptr
			c   *stateCodec
		}
		var fields []field
		for i := range t.NumField() {
			f := t.Field(i)
			if f.Type.Size() == 0 {
				continue
			}
			fc, err := buildCodec(f.Type, building)
			if err != nil {
				return nil, fmt.Errorf("%s.%s: %w", t, f.Name, err)
			}
			fields = append(fields, field{f.Offset, fc})
		}
		c.enc = func(e *stateEncoder, p unsafe.Pointer) {
			for _, f := range fields {
				f.c.enc(e, unsafe.Add(p, f.off))
			}
		}
		c.dec = func(d *stateDecoder, p unsafe.Pointer) {
			for _, f := range fields {
				f.c.dec(d, unsafe.Add(p, f.off))
			}
		}
	case reflect.Array:
		elem, err := buildCodec(t.Elem(), building)
		if err != nil {
			return nil, err
		}
		n, size := t.Len(), t.Elem().Size()
		c.enc = func(e *stateEncoder, p unsafe.Pointer) {
			for i := range n {
				elem.enc(e, unsafe.Add(p, uintptr(i)*size))
			}
		}
		c.dec = func(d *stateDecoder, p unsafe.Pointer) {
			for i := range n {
				elem.dec(d, unsafe.Add(p, uintptr(i)*size))
			}
		}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			c.enc = func(e *stateEncoder, p unsafe.Pointer) {
				b := *(*[]byte)(p)
				if b == nil {
					e.buf = append(e.buf, 0)
					return
				}
				e.buf = append(e.buf, 1)
				e.uvarint(uint64(len(b)))
				e.buf = append(e.buf, b...)
			}
			c.dec = func(d *stateDecoder, p unsafe.Pointer) {
				if d.byte1() == 0 {
					*(*[]byte)(p) = nil
					return
				}
				b := d.bytes(d.uvarint())
				*(*[]byte)(p) = append(make([]byte, 0, len(b)), b...)
			}
			break
		}
		elem, err := buildCodec(t.Elem(), building)
		if err != nil {
			return nil, err
		}
		size := t.Elem().Size()
		c.enc = func(e *stateEncoder, p unsafe.Pointer) {
			h := (*sliceHeader)(p)
			if h.data == nil {
				e.buf = append(e.buf, 0)
				return
			}
			e.buf = append(e.buf, 1)
			e.natural(h.len)
			for i := range h.len {
				elem.enc(e, unsafe.Add(h.data, uintptr(i)*size))
			}
		}
		c.dec = func(d *stateDecoder, p unsafe.Pointer) {
			if d.byte1() == 0 {
				reflect.NewAt(t, p).Elem().SetZero()
				return
			}
			var n int
			if size > 0 {
				n = d.count() // every element takes at least a byte
			} else {
				n = int(d.uvarintMax(math.MaxInt32)) // #nosec G115 -- range checked; elements of no size take no bytes
			}
			if d.err != nil {
				return
			}
			s := reflect.MakeSlice(t, n, n)
			reflect.NewAt(t, p).Elem().Set(s)
			h := (*sliceHeader)(p)
			for i := range n {
				elem.dec(d, unsafe.Add(h.data, uintptr(i)*size))
				if d.err != nil {
					return
				}
			}
		}
	case reflect.Map:
		kc, err := buildCodec(t.Key(), building)
		if err != nil {
			return nil, err
		}
		vc, err := buildCodec(t.Elem(), building)
		if err != nil {
			return nil, err
		}
		c.enc = func(e *stateEncoder, p unsafe.Pointer) {
			m := reflect.NewAt(t, p).Elem()
			if m.IsNil() {
				e.buf = append(e.buf, 0)
				return
			}
			e.buf = append(e.buf, 1)
			e.natural(m.Len())
			type entry struct{ k, v []byte }
			entries := make([]entry, 0, m.Len())
			key, val := reflect.New(t.Key()).Elem(), reflect.New(t.Elem()).Elem()
			sub := &stateEncoder{seen: e.seen}
			for it := m.MapRange(); it.Next(); {
				key.SetIterKey(it)
				val.SetIterValue(it)
				sub.buf = sub.buf[:0]
				kc.enc(sub, key.Addr().UnsafePointer())
				k := slices.Clone(sub.buf)
				sub.buf = sub.buf[:0]
				vc.enc(sub, val.Addr().UnsafePointer())
				entries = append(entries, entry{k, slices.Clone(sub.buf)})
			}
			if sub.err != nil {
				e.fail(sub.err)
			}
			slices.SortFunc(entries, func(a, b entry) int { return bytes.Compare(a.k, b.k) })
			for _, en := range entries {
				e.buf = append(e.buf, en.k...)
				e.buf = append(e.buf, en.v...)
			}
		}
		c.dec = func(d *stateDecoder, p unsafe.Pointer) {
			m := reflect.NewAt(t, p).Elem()
			if d.byte1() == 0 {
				m.SetZero()
				return
			}
			n := d.count()
			if d.err != nil {
				return
			}
			mm := reflect.MakeMapWithSize(t, n)
			for range n {
				key, val := reflect.New(t.Key()), reflect.New(t.Elem())
				kc.dec(d, key.UnsafePointer())
				vc.dec(d, val.UnsafePointer())
				if d.err != nil {
					return
				}
				mm.SetMapIndex(key.Elem(), val.Elem())
			}
			m.Set(mm)
		}
	case reflect.Interface:
		c.enc = func(e *stateEncoder, p unsafe.Pointer) {
			if !reflect.NewAt(t, p).Elem().IsNil() {
				e.fail(fmt.Errorf("%w: a non-nil %s", ErrStateUnsupported, t))
			}
			e.buf = append(e.buf, 0)
		}
		c.dec = func(d *stateDecoder, p unsafe.Pointer) {
			if d.byte1() != 0 {
				d.fail()
			}
			reflect.NewAt(t, p).Elem().SetZero()
		}
	default:
		return unsupported()
	}
	return c, nil
}

// time.Time is written as seconds, nanoseconds and its zone: UTC, a named
// location (loaded again by name) or a fixed offset. The monotonic clock
// reading is not kept.
func encTime(e *stateEncoder, p unsafe.Pointer) {
	t := *(*time.Time)(p)
	e.varint(t.Unix())
	e.natural(t.Nanosecond())
	loc := t.Location()
	switch {
	case loc == time.UTC:
		e.buf = append(e.buf, 0)
	case loc == time.Local:
		e.buf = append(e.buf, 1)
	default:
		if _, err := loadLocation(loc.String()); err == nil && loc.String() != "" {
			e.buf = append(e.buf, 2)
			e.str(loc.String())
		} else {
			name, off := t.Zone()
			e.buf = append(e.buf, 3)
			e.str(name)
			e.varint(int64(off))
		}
	}
}

func decTime(d *stateDecoder, p unsafe.Pointer) {
	sec := d.varint()
	nsec := d.uvarintMax(999_999_999)
	t := time.Unix(sec, int64(nsec)).UTC() // #nosec G115 -- nsec < 1e9
	switch d.byte1() {
	case 0:
	case 1:
		t = t.Local()
	case 2:
		loc, err := loadLocation(d.str())
		if err != nil {
			d.fail()
			return
		}
		t = t.In(loc)
	case 3:
		name := d.str()
		t = t.In(time.FixedZone(name, int(d.varint())))
	default:
		d.fail()
	}
	*(*time.Time)(p) = t
}

var locations sync.Map // name → *time.Location

func loadLocation(name string) (*time.Location, error) {
	if l, ok := locations.Load(name); ok {
		return l.(*time.Location), nil
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	locations.Store(name, l)
	return l, nil
}
