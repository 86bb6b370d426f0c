package pickle

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"slices"
	"strings"
	"sync"
)

// An Encoder writes pickles under limits. A field ≤ 0 means its default
// (DefaultMaxSize, DefaultMaxDepth); MaxDepth is capped at 100000. An
// Encoder is safe for concurrent use by multiple goroutines.
type Encoder struct {
	MaxSize  int // of the whole pickle, in bytes
	MaxDepth int // nesting of containers and pointers
}

// Python's framer (pickle.py _Framer, matched byte for byte by _pickle.c
// since Python 3.7): frames of about 64 KiB, none under 4 bytes, and
// payloads of 64 KiB or more written outside frames.
const (
	frameSizeMin    = 4
	frameSizeTarget = 64 << 10
	frameHeaderSize = 9
	batchSize       = 1000 // items per APPENDS, SETITEMS, ADDITEMS (_pickle.c's BATCHSIZE)
)

// Marshal returns the protocol-4 pickle of v, which Python 3.4 and later
// read, written as Python's own pickler writes the same value: framed,
// with MEMOIZE after each str, bytes and container, and BINGET for a str
// seen before and for a slice, map or pointer (to a struct or array)
// seen before, so that values shared in Go are shared in Python and a
// shared value is written once. It writes:
//
//   - nil, nil pointers and nil interfaces as None;
//   - bool as bool; every integer type, big.Int and *big.Int as int;
//     float32 and float64 as float;
//   - string as str (it must be UTF-8; lone surrogates, which Python strs
//     may hold, are allowed); []byte and [N]byte as bytes;
//   - Tuple as tuple, Set as set, FrozenSet as frozenset, Dict as dict;
//     other slices and arrays as list (a nil slice as an empty one);
//   - maps as dict, their keys sorted (numbers, then str, ...) so that
//     the output is deterministic;
//   - structs as dict of their exported fields (see [Decoder.Unmarshal]
//     for names, tags and embedding; `pickle:",omitempty"` skips a zero
//     value); a struct with fields but none exported, such as
//     time.Time, is refused rather than written as {};
//   - [Object] as the Python object it describes (see the package
//     documentation); an *Object written before as a memo reference;
//   - pointers and interfaces as what they point to.
//
// Dict keys and set elements must be hashable in Python: arrays there
// become tuples; slices (other than []byte, Tuple, FrozenSet), maps,
// Sets and structs (other than Object) are refused with ErrUnsupported,
// as are channels, functions, complex numbers and cyclic values.
func (e Encoder) Marshal(v any) ([]byte, error) {
	b, err := e.Append(make([]byte, 0, 256), v)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// Append appends the pickle of v to dst and returns the extended slice,
// as Marshal returns it alone (MaxSize bounds the pickle, not dst): a
// program that sends pickle after pickle can encode each into one
// buffer. On error it returns dst unchanged, though the bytes past its
// length may have been written.
func (e Encoder) Append(dst []byte, v any) ([]byte, error) {
	s := newEncState()
	defer s.free()
	s.maxSize, s.maxDepth = e.MaxSize, e.MaxDepth
	if s.maxSize <= 0 {
		s.maxSize = DefaultMaxSize
	}
	if s.maxDepth <= 0 {
		s.maxDepth = DefaultMaxDepth
	}
	s.maxDepth = min(s.maxDepth, maxDepthCap)
	// maxSize bounds len(s.buf): the pickle and what dst held.
	s.base = len(dst)
	s.maxSize = min(s.maxSize, math.MaxInt-s.base) + s.base
	s.buf = append(dst, opProto, 4)
	s.startFrame()
	if err := s.encode(reflect.ValueOf(v), false); err != nil {
		return dst, err
	}
	s.buf = append(s.buf, opStop)
	s.endFrame()
	if len(s.buf) > s.maxSize {
		return dst, s.tooLarge()
	}
	return s.buf, nil
}

// encStates keeps encoders' memo maps between calls: small messages (a
// manager's requests and replies) would otherwise spend most of their time
// making and growing them.
var encStates = sync.Pool{New: func() any { return new(encState) }}

func newEncState() *encState {
	s := encStates.Get().(*encState)
	s.emptyBytes = -1
	return s
}

// free returns s to encStates with its maps emptied, unless they grew
// large (one big message should not pin its memo for good).
func (s *encState) free() {
	const keep = 256
	if s.strs.m != nil || s.ids.m != nil || len(s.classes) > keep || cap(s.idSlab) > keep || cap(s.path) > keep {
		return
	}
	s.strs.reset()
	s.ids.reset()
	clear(s.classes)
	clear(s.idSlab)
	clear(s.path[:cap(s.path)])
	*s = encState{strs: s.strs, classes: s.classes, ids: s.ids, idSlab: s.idSlab[:0], path: s.path[:0]}
	encStates.Put(s)
}

// memoTable maps keys to values: slices searched in order while small (a
// manager's request memoizes a handful of values, where hashing and
// clearing a map cost more than the search), a map past memoLinear.
type memoTable[K comparable, V any] struct {
	keys []K
	vals []V
	m    map[K]V
}

const memoLinear = 16

func (t *memoTable[K, V]) get(k K) (V, bool) {
	if t.m != nil {
		v, ok := t.m[k]
		return v, ok
	}
	for i := range t.keys {
		if t.keys[i] == k {
			return t.vals[i], true
		}
	}
	var zero V
	return zero, false
}

func (t *memoTable[K, V]) set(k K, v V) {
	if t.m != nil {
		t.m[k] = v
		return
	}
	for i := range t.keys {
		if t.keys[i] == k {
			t.vals[i] = v
			return
		}
	}
	if len(t.keys) < memoLinear {
		t.keys, t.vals = append(t.keys, k), append(t.vals, v)
		return
	}
	t.m = make(map[K]V, 4*memoLinear)
	for i := range t.keys {
		t.m[t.keys[i]] = t.vals[i]
	}
	t.m[k] = v
}

// reset empties t for reuse, keeping its slices.
func (t *memoTable[K, V]) reset() {
	clear(t.keys)
	clear(t.vals)
	t.keys, t.vals, t.m = t.keys[:0], t.vals[:0], nil
}

type encState struct {
	buf        []byte
	frameStart int // where the current frame's header goes, or -1
	maxSize    int // bounds len(buf)
	base       int // len(buf) before the pickle (Append's dst)
	maxDepth   int
	depth      int
	path       path // where encoding is, for errors

	memoLen    uint32                    // entries in the unpickler's memo
	strs       memoTable[string, uint32] // str -> memo index
	classes    map[Class]uint32          // an Object's class -> memo index
	ids        memoTable[identity, memoEntry]
	emptyBytes int64 // memo index of b"", or -1
	idSlab     []identity
}

// identity is a Go value with reference identity: a slice (its array,
// length and type), a map, or a pointer to a struct or array.
type identity struct {
	ptr uintptr
	len int
	typ reflect.Type
}

type memoEntry struct {
	index uint32
	done  bool // false while its elements are being written: seeing it again is a cycle
}

func (s *encState) errorf(err error, format string, args ...any) error {
	return &ValueError{Path: s.path.String(), Detail: fmt.Sprintf(format, args...), Err: err}
}

func (s *encState) tooLarge() error {
	return s.errorf(ErrTooLarge, "pickle longer than %d bytes", s.maxSize-s.base)
}

func (s *encState) startFrame() {
	s.frameStart = len(s.buf)
	s.buf = append(s.buf, make([]byte, frameHeaderSize)...)
}

// endFrame closes the current frame: it writes its header, or removes the
// header's room if the frame is under frameSizeMin bytes.
func (s *encState) endFrame() {
	n := len(s.buf) - s.frameStart - frameHeaderSize
	if n >= frameSizeMin {
		s.buf[s.frameStart] = opFrame
		binary.LittleEndian.PutUint64(s.buf[s.frameStart+1:], uint64(n))
	} else {
		copy(s.buf[s.frameStart:], s.buf[s.frameStart+frameHeaderSize:])
		s.buf = s.buf[:len(s.buf)-frameHeaderSize]
	}
	s.frameStart = -1
}

// boundary is called before each value, as Python's save does: it starts
// a new frame once the current one reaches the target size.
func (s *encState) boundary() {
	if len(s.buf)-s.frameStart-frameHeaderSize >= frameSizeTarget {
		s.endFrame()
		s.startFrame()
	}
}

// writeLarge writes an opcode with a payload of frameSizeTarget bytes or
// more outside any frame, as Python does.
func writeLarge[T string | []byte](s *encState, header []byte, payload T) {
	s.endFrame()
	s.buf = append(s.buf, header...)
	s.buf = append(s.buf, payload...)
	s.startFrame()
}

func (s *encState) memoize() uint32 {
	s.buf = append(s.buf, opMemoize)
	s.memoLen++
	return s.memoLen - 1
}

func (s *encState) get(i uint32) {
	if i < 256 {
		s.buf = append(s.buf, opBinGet, byte(i))
	} else {
		s.buf = binary.LittleEndian.AppendUint32(append(s.buf, opLongBinGet), i)
	}
}

func (s *encState) push(e pathElem) { s.path = append(s.path, e) }
func (s *encState) pop()            { s.path = s.path[:len(s.path)-1] }

func indexStep(i int) pathElem { return pathElem{kind: indexElem, index: i} }

// encode writes v; key says v is a dict key or a set element, which
// Python must be able to hash.
func (s *encState) encode(v reflect.Value, key bool) error {
	s.boundary()
	if len(s.buf) > s.maxSize {
		return s.tooLarge()
	}
	if !v.IsValid() {
		s.buf = append(s.buf, opNone)
		return nil
	}
	t := v.Type()
	switch t {
	case bigIntType:
		b := v.Interface().(big.Int)
		s.bigInt(&b)
		return nil
	case bigIntPtrType:
		if v.IsNil() {
			s.buf = append(s.buf, opNone)
		} else {
			s.bigInt(v.Interface().(*big.Int))
		}
		return nil
	case objectType:
		return s.object(v, nil)
	case objectPtrType:
		if v.IsNil() {
			s.buf = append(s.buf, opNone)
			return nil
		}
		return s.shared(v, identity{ptr: v.Pointer(), typ: t}, func(id *identity) error {
			return s.object(v.Elem(), id)
		})
	}
	switch v.Kind() {
	case reflect.Bool:
		if v.Bool() {
			s.buf = append(s.buf, opNewTrue)
		} else {
			s.buf = append(s.buf, opNewFalse)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		s.int(v.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if u := v.Uint(); u <= math.MaxInt64 {
			s.int(int64(u))
		} else {
			s.bigInt(new(big.Int).SetUint64(u))
		}
	case reflect.Float32, reflect.Float64:
		s.buf = binary.BigEndian.AppendUint64(append(s.buf, opBinFloat), math.Float64bits(v.Float()))
	case reflect.String:
		return s.str(v.String())
	case reflect.Interface:
		if v.IsNil() {
			s.buf = append(s.buf, opNone)
			return nil
		}
		return s.encode(v.Elem(), key)
	case reflect.Pointer:
		if v.IsNil() {
			s.buf = append(s.buf, opNone)
			return nil
		}
		e := t.Elem()
		if e.Kind() == reflect.Struct && key {
			return s.unhashable(e)
		}
		if e.Size() > 0 && (e.Kind() == reflect.Struct || e.Kind() == reflect.Array && e.Elem().Kind() != reflect.Uint8) {
			// A dict or list (or tuple) with an identity (zero-size
			// values may share their address, so they have none).
			return s.shared(v, identity{ptr: v.Pointer(), typ: t}, func(id *identity) error {
				return s.container(v.Elem(), key, id)
			})
		}
		return s.deref(v.Elem(), key)
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return s.bytes(v)
		}
		if key && t != tupleType && t != frozenSetType {
			return s.unhashable(t)
		}
		if v.Len() == 0 || t.Elem().Size() == 0 {
			return s.container(v, key, nil)
		}
		return s.shared(v, identity{ptr: v.Pointer(), len: v.Len(), typ: t}, func(id *identity) error {
			return s.container(v, key, id)
		})
	case reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return s.bytes(v)
		}
		return s.container(v, key, nil)
	case reflect.Map:
		if key {
			return s.unhashable(t)
		}
		if v.IsNil() {
			return s.container(v, key, nil)
		}
		return s.shared(v, identity{ptr: v.Pointer(), typ: t}, func(id *identity) error {
			return s.container(v, key, id)
		})
	case reflect.Struct:
		if key {
			return s.unhashable(t)
		}
		return s.container(v, key, nil)
	default:
		return s.errorf(ErrUnsupported, "no pickle form for %v", t)
	}
	return nil
}

func (s *encState) unhashable(t reflect.Type) error {
	return s.errorf(ErrUnsupported, "%v as a dict key or set element: unhashable in Python", t)
}

// deref writes what a pointer points to, one level deeper: pointer
// cycles without a container in between end at MaxDepth.
func (s *encState) deref(v reflect.Value, key bool) error {
	if s.depth >= s.maxDepth {
		return s.errorf(ErrTooLarge, "nested deeper than %d", s.maxDepth)
	}
	s.depth++
	defer func() { s.depth-- }()
	return s.encode(v, key)
}

// shared writes a BINGET for a value with identity id written before, and
// otherwise writes it with write, which memoizes it under id.
func (s *encState) shared(v reflect.Value, id identity, write func(*identity) error) error {
	if e, ok := s.ids.get(id); ok {
		if !e.done {
			return s.errorf(ErrUnsupported, "cyclic %v", v.Type())
		}
		s.get(e.index)
		return nil
	}
	s.ids.set(id, memoEntry{})
	// write gets a pointer into s.idSlab rather than to id, which would
	// then escape: one allocation per container.
	s.idSlab = append(s.idSlab, id)
	if err := write(&s.idSlab[len(s.idSlab)-1]); err != nil {
		return err
	}
	e, _ := s.ids.get(id)
	e.done = true
	s.ids.set(id, e)
	return nil
}

// memoizeAs writes MEMOIZE and records the index for id.
func (s *encState) memoizeAs(id *identity) {
	i := s.memoize()
	if id != nil {
		s.ids.set(*id, memoEntry{index: i})
	}
}

func (s *encState) int(x int64) {
	switch {
	case 0 <= x && x <= 0xff:
		s.buf = append(s.buf, opBinInt1, byte(x))
	case 0 <= x && x <= 0xffff:
		s.buf = binary.LittleEndian.AppendUint16(append(s.buf, opBinInt2), uint16(x))
	case math.MinInt32 <= x && x <= math.MaxInt32:
		s.buf = binary.LittleEndian.AppendUint32(append(s.buf, opBinInt), uint32(x))
	default:
		s.bigInt(big.NewInt(x))
	}
}

// bigInt writes x as Python's encode_long does: LONG1 or LONG4 with the
// shortest two's-complement little-endian bytes.
func (s *encState) bigInt(x *big.Int) {
	if x.IsInt64() && math.MinInt32 <= x.Int64() && x.Int64() <= math.MaxInt32 {
		s.int(x.Int64())
		return
	}
	n := x.BitLen()/8 + 1
	v := new(big.Int).Set(x)
	if x.Sign() < 0 {
		v.Add(v, new(big.Int).Lsh(big.NewInt(1), uint(8*n)))
	}
	b := v.FillBytes(make([]byte, n))
	slices.Reverse(b)
	if x.Sign() < 0 && n > 1 && b[n-1] == 0xff && b[n-2]&0x80 != 0 {
		b = b[:n-1]
	}
	if len(b) < 256 {
		s.buf = append(s.buf, opLong1, byte(len(b)))
	} else {
		s.buf = binary.LittleEndian.AppendUint32(append(s.buf, opLong4), uint32(len(b)))
	}
	s.buf = append(s.buf, b...)
}

func (s *encState) str(x string) error {
	if i, ok := s.strs.get(x); ok {
		s.get(i)
		return nil
	}
	if !validWTF8(x) {
		return s.errorf(ErrUnsupported, "string is not UTF-8: %q", truncate(x))
	}
	if err := payload(s, opShortBinUnicode, opBinUnicode, opBinUnicode8, x); err != nil {
		return err
	}
	s.strs.set(x, s.memoize())
	return nil
}

// payload writes a str or bytes opcode (short, 4-byte or 8-byte length)
// and its payload.
func payload[T string | []byte](s *encState, short, long, huge byte, x T) error {
	n := len(x)
	if len(s.buf)+n > s.maxSize {
		return s.tooLarge()
	}
	switch {
	case n <= 0xff:
		s.buf = append(s.buf, short, byte(n))
		s.buf = append(s.buf, x...)
	case uint64(n) > math.MaxUint32:
		writeLarge(s, binary.LittleEndian.AppendUint64([]byte{huge}, uint64(n)), x)
	case n >= frameSizeTarget:
		writeLarge(s, binary.LittleEndian.AppendUint32([]byte{long}, uint32(n)), x)
	default:
		s.buf = binary.LittleEndian.AppendUint32(append(s.buf, long), uint32(n))
		s.buf = append(s.buf, x...)
	}
	return nil
}

// bytes writes a []byte or [N]byte. Python's b"" is one object, so every
// empty bytes is memoized once; others are memoized by identity.
func (s *encState) bytes(v reflect.Value) error {
	if v.Len() == 0 {
		if s.emptyBytes >= 0 {
			s.get(uint32(s.emptyBytes))
			return nil
		}
		s.buf = append(s.buf, opShortBinBytes, 0)
		s.emptyBytes = int64(s.memoize())
		return nil
	}
	var b []byte
	if v.Kind() == reflect.Array {
		if v.CanAddr() {
			b = v.Slice(0, v.Len()).Bytes()
		} else {
			b = make([]byte, v.Len())
			reflect.Copy(reflect.ValueOf(b), v)
		}
		return s.writeBytes(b, nil)
	}
	return s.shared(v, identity{ptr: v.Pointer(), len: v.Len(), typ: v.Type()}, func(id *identity) error {
		return s.writeBytes(v.Bytes(), id)
	})
}

func (s *encState) writeBytes(b []byte, id *identity) error {
	if err := payload(s, opShortBinBytes, opBinBytes, opBinBytes8, b); err != nil {
		return err
	}
	s.memoizeAs(id)
	return nil
}

var (
	tupleType     = reflect.TypeFor[Tuple]()
	setType       = reflect.TypeFor[Set]()
	frozenSetType = reflect.TypeFor[FrozenSet]()
)

// container writes a list, tuple, set, frozenset or dict, memoized under
// id if not nil.
func (s *encState) container(v reflect.Value, key bool, id *identity) error {
	if s.depth >= s.maxDepth {
		return s.errorf(ErrTooLarge, "nested deeper than %d", s.maxDepth)
	}
	s.depth++
	defer func() { s.depth-- }()
	t := v.Type()
	switch {
	case t == tupleType || key && v.Kind() == reflect.Array:
		return s.tuple(v, key, id)
	case t == setType:
		return s.set(v, id)
	case t == frozenSetType:
		return s.frozenSet(v, id)
	case t == dictType:
		return s.dict(v, id)
	case v.Kind() == reflect.Map:
		return s.mapDict(v, id)
	case v.Kind() == reflect.Struct:
		return s.structDict(v, id)
	}
	s.buf = append(s.buf, opEmptyList)
	s.memoizeAs(id)
	return s.batches(v.Len(), 1, opAppend, opAppends, false, func(i int) error {
		s.push(indexStep(i))
		defer s.pop()
		return s.encode(v.Index(i), false)
	})
}

// batches writes the n items (of stride values each) of a list, dict or
// set as the C pickler (_pickle.c, which pickle.dumps uses) writes those
// of an exact list, dict or set; pickle.py's _Pickler differs in the
// last batch. Python 3.6 to 3.13 agree (TestEncodeBatchesPython):
//
//   - no items: nothing;
//   - one item of a list or dict (one is not 0): its values, then one
//     (APPEND, SETITEM); a set's one item is a batch like any other;
//   - otherwise batches of up to batchSize items, each MARK, the values,
//     many (APPENDS, SETITEMS, ADDITEMS). A list's batches end with its
//     last item (batch_list_exact loops while items remain); a dict's
//     and a set's continue while the last batch was full
//     (batch_dict_exact and save_set loop while a batch has batchSize
//     items), so that n a multiple of batchSize ends with an empty
//     MARK many.
func (s *encState) batches(n, stride int, one, many byte, afterFull bool, item func(i int) error) error {
	if n == 0 {
		return nil
	}
	if n == 1 && one != 0 {
		for j := range stride {
			if err := item(j); err != nil {
				return err
			}
		}
		s.buf = append(s.buf, one)
		return nil
	}
	for start := 0; ; start += batchSize {
		end := min(start+batchSize, n)
		s.buf = append(s.buf, opMark)
		for i := start * stride; i < end*stride; i++ {
			if err := item(i); err != nil {
				return err
			}
		}
		s.buf = append(s.buf, many)
		if end == n && (!afterFull || end-start < batchSize) {
			return nil
		}
	}
}

func (s *encState) elems(v reflect.Value, key bool) error {
	for i := range v.Len() {
		s.push(indexStep(i))
		if err := s.encode(v.Index(i), key); err != nil {
			return err
		}
		s.pop()
	}
	return nil
}

func (s *encState) tuple(v reflect.Value, key bool, id *identity) error {
	n := v.Len()
	switch {
	case n == 0:
		s.buf = append(s.buf, opEmptyTuple)
		return nil
	case n <= 3:
		if err := s.elems(v, key); err != nil {
			return err
		}
		s.buf = append(s.buf, opTuple1+byte(n-1))
	default:
		s.buf = append(s.buf, opMark)
		if err := s.elems(v, key); err != nil {
			return err
		}
		s.buf = append(s.buf, opTuple)
	}
	s.memoizeAs(id)
	return nil
}

func (s *encState) set(v reflect.Value, id *identity) error {
	s.buf = append(s.buf, opEmptySet)
	s.memoizeAs(id)
	return s.batches(v.Len(), 1, 0, opAddItems, true, func(i int) error {
		s.push(indexStep(i))
		defer s.pop()
		return s.encode(v.Index(i), true)
	})
}

func (s *encState) frozenSet(v reflect.Value, id *identity) error {
	s.buf = append(s.buf, opMark)
	if err := s.elems(v, true); err != nil {
		return err
	}
	s.buf = append(s.buf, opFrozenSet)
	s.memoizeAs(id)
	return nil
}

// dict writes a Dict in its order.
func (s *encState) dict(v reflect.Value, id *identity) error {
	s.buf = append(s.buf, opEmptyDict)
	s.memoizeAs(id)
	d := v.Interface().(Dict)
	return s.batches(len(d), 2, opSetItem, opSetItems, true, func(i int) error {
		it := d[i/2]
		if i%2 == 0 {
			s.push(pathElem{kind: keyElem, key: reflect.ValueOf(it.Key)})
			defer s.pop()
			return s.encode(reflect.ValueOf(it.Key), true)
		}
		s.push(pathElem{kind: valueElem, key: reflect.ValueOf(it.Key)})
		defer s.pop()
		return s.encode(reflect.ValueOf(it.Value), false)
	})
}

// mapDict writes a Go map with its keys sorted.
func (s *encState) mapDict(v reflect.Value, id *identity) error {
	s.buf = append(s.buf, opEmptyDict)
	s.memoizeAs(id)
	// MapRange, not MapKeys and MapIndex: a NaN key cannot be looked up.
	type kv struct{ k, v reflect.Value }
	items := make([]kv, 0, v.Len())
	for it := v.MapRange(); it.Next(); {
		items = append(items, kv{it.Key(), it.Value()})
	}
	slices.SortStableFunc(items, func(a, b kv) int { return compareKeys(a.k, b.k) })
	return s.batches(len(items), 2, opSetItem, opSetItems, true, func(i int) error {
		it := items[i/2]
		if i%2 == 0 {
			s.push(pathElem{kind: keyElem, key: it.k})
			defer s.pop()
			return s.encode(it.k, true)
		}
		s.push(pathElem{kind: valueElem, key: it.k})
		defer s.pop()
		return s.encode(it.v, false)
	})
}

func (s *encState) structDict(v reflect.Value, id *identity) error {
	all := cachedFields(v.Type()).list
	if len(all) == 0 && v.NumField() > 0 {
		return s.errorf(ErrUnsupported, "%v has no exported fields", v.Type())
	}
	s.buf = append(s.buf, opEmptyDict)
	s.memoizeAs(id)
	fields := all
	if slices.ContainsFunc(all, func(f field) bool { return f.omitEmpty }) {
		fields = nil
		for _, f := range all {
			if !f.omitEmpty || !v.FieldByIndex(f.index).IsZero() {
				fields = append(fields, f)
			}
		}
	}
	return s.batches(len(fields), 2, opSetItem, opSetItems, true, func(i int) error {
		f := fields[i/2]
		if i%2 == 0 {
			s.boundary() // as before every value
			return s.str(f.name)
		}
		s.push(pathElem{name: f.name})
		defer s.pop()
		return s.encode(v.FieldByIndex(f.index), false)
	})
}

// compareKeys orders map keys: None, bools, numbers, str, bytes, then
// tuples (arrays) element by element; within a class by value.
func compareKeys(a, b reflect.Value) int {
	a, b = unwrapKey(a), unwrapKey(b)
	ra, rb := keyRank(a), keyRank(b)
	if ra != rb {
		return cmp.Compare(ra, rb)
	}
	switch ra {
	case 1:
		return cmp.Compare(b2i(a.Bool()), b2i(b.Bool()))
	case 2:
		return keyInt(a).Cmp(keyInt(b))
	case 3:
		return cmp.Compare(a.Float(), b.Float())
	case 4:
		return strings.Compare(a.String(), b.String())
	case 5:
		return bytes.Compare(keyBytes(a), keyBytes(b))
	case 6:
		for i := range min(a.Len(), b.Len()) {
			if c := compareKeys(a.Index(i), b.Index(i)); c != 0 {
				return c
			}
		}
		return cmp.Compare(a.Len(), b.Len())
	}
	return 0
}

// unwrapKey follows interfaces and pointers (but a *big.Int) to the value
// a key is written as; nil ones become the invalid Value.
func unwrapKey(v reflect.Value) reflect.Value {
	for (v.Kind() == reflect.Interface || v.Kind() == reflect.Pointer) && v.Type() != bigIntPtrType {
		if v.IsNil() {
			return reflect.Value{}
		}
		v = v.Elem()
	}
	if v.Kind() == reflect.Pointer && v.IsNil() {
		return reflect.Value{}
	}
	return v
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func keyRank(v reflect.Value) int {
	if !v.IsValid() {
		return 0
	}
	if v.Type() == bigIntType || v.Type() == bigIntPtrType {
		return 2
	}
	switch v.Kind() {
	case reflect.Bool:
		return 1
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return 2
	case reflect.Float32, reflect.Float64:
		return 3
	case reflect.String:
		return 4
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return 5
		}
		return 6
	}
	return 7
}

func keyInt(v reflect.Value) *big.Int {
	switch {
	case v.Type() == bigIntPtrType:
		return v.Interface().(*big.Int)
	case v.Type() == bigIntType:
		b := v.Interface().(big.Int)
		return &b
	case v.CanInt():
		return big.NewInt(v.Int())
	}
	return new(big.Int).SetUint64(v.Uint())
}

func keyBytes(v reflect.Value) []byte {
	if v.Kind() == reflect.Slice {
		return v.Bytes()
	}
	b := make([]byte, v.Len())
	reflect.Copy(reflect.ValueOf(b), v)
	return b
}
