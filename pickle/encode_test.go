package pickle

import (
	"bytes"
	"errors"
	"math"
	"math/big"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// codec is mproc.Codec, which this package must satisfy without
// importing mproc.
type codec interface {
	Marshal(v any) ([]byte, error)
	Unmarshal(data []byte, v any) error
}

var _ codec = Codec{}

type Point struct {
	X, Y int
}

type everything struct {
	B     bool
	I     int
	I8    int8
	I16   int16
	I32   int32
	I64   int64
	U     uint
	U8    uint8
	U16   uint16
	U32   uint32
	U64   uint64
	F32   float32
	F64   float64
	S     string
	Bytes []byte
	Arr   [3]byte
	Ints  []int
	Strs  []string
	Pts   []Point
	PtPtr *Point
	Nil   *Point
	M     map[string]int
	MP    map[int]*Point
	MA    map[[2]int]string
	Set   map[string]struct{}
	Any   any
	Anys  []any
	Big   *big.Int
	BigV  big.Int
	Dur   time.Duration
	Nest  [][]float64
	Tags  []string `pickle:"tags,omitempty"`
}

// TestRoundTrip encodes Go values and decodes them into the same types.
func TestRoundTrip(t *testing.T) {
	full := everything{
		B: true, I: -1, I8: math.MinInt8, I16: math.MaxInt16, I32: math.MinInt32, I64: math.MaxInt64,
		U: 1, U8: math.MaxUint8, U16: math.MaxUint16, U32: math.MaxUint32, U64: math.MaxUint64,
		F32: 1.25, F64: -math.MaxFloat64, S: "héllo\x00", Bytes: []byte{0, 1, 2}, Arr: [3]byte{9, 8, 7},
		Ints: []int{1, -2, 3}, Strs: []string{"a", ""}, Pts: []Point{{1, 2}, {3, 4}}, PtPtr: &Point{5, 6},
		M: map[string]int{"a": 1, "b": 2}, MP: map[int]*Point{1: {7, 8}, 2: nil}, MA: map[[2]int]string{{1, 2}: "x"},
		Set: map[string]struct{}{}, Any: Tuple{int64(1), "x"}, Anys: []any{nil, true, int64(3), 4.5, "s", []byte("b"), []any{}},
		Big: pow(2, 100), BigV: *new(big.Int).Neg(pow(3, 50)), Dur: 3 * time.Second, Nest: [][]float64{{1}, {}, {2, 3}},
	}
	cases := []any{
		true, -7, int8(-8), uint64(math.MaxUint64), 3.5, float32(-0.5), "", "日本", []byte{}, []byte("x"),
		[]int{}, []int{1, 2}, [2]string{"a", "b"}, map[string]int{}, map[string][]string{"k": {"v"}},
		map[int]bool{-1: true, 1: false}, Point{1, 2}, &Point{3, 4}, full, everything{},
		[]Point{{1, 2}}, map[string]*Point{"p": {1, 1}}, pow(2, 64), *pow(2, 64),
	}
	for _, v := range cases {
		b, err := Marshal(v)
		if err != nil {
			t.Fatalf("%#v: %v", v, err)
		}
		p := reflect.New(reflect.TypeOf(v))
		if err := Unmarshal(b, p.Interface()); err != nil {
			t.Fatalf("%T: %v\n%x", v, err, b)
		}
		got := p.Elem().Interface()
		if !reflect.DeepEqual(got, v) && !equalish(got, v) {
			t.Errorf("%T:\n got %#v\nwant %#v", v, got, v)
		}
	}
}

// equalish compares values whose only difference DeepEqual sees is the
// big.Int internals or nil versus empty.
func equalish(a, b any) bool {
	ab, err1 := Marshal(a)
	bb, err2 := Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ab, bb)
}

// TestRoundTripAny encodes the natural values and decodes them into an
// any: the same values come back.
func TestRoundTripAny(t *testing.T) {
	for name, v := range pythonCases {
		if _, ok := v.(wantErr); ok {
			continue
		}
		b, err := Marshal(v)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var got any
		if err := Unmarshal(b, &got); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !equalValues(got, v) {
			t.Errorf("%s:\n got %s\nwant %s", name, abbrev(got), abbrev(v))
		}
	}
}

// TestMarshalPython compares Go's bytes with what Python 3.7 to 3.13
// write for simple values (recorded; TestEncodePython checks against the
// live interpreters).
func TestMarshalPython(t *testing.T) {
	cases := []struct {
		v   any
		hex string
	}{
		{nil, "80044e2e"},
		{true, "8004882e"},
		{[]any{}, "80045d942e"},
		{map[string]any{}, "80047d942e"},
		{Tuple{}, "8004292e"},
		{Set{}, "80048f942e"},
		{"é", "80049506000000000000008c02c3a9942e"},
		{[]byte("ab"), "800495060000000000000043026162942e"},
		{FrozenSet{}, "80049504000000000000002891942e"},
		{Tuple{1}, "80049505000000000000004b0185942e"},
		{pow(2, 70), "8004950c000000000000008a090000000000000000402e"},
		{new(big.Int).Sub(new(big.Int).Neg(pow(2, 63)), big.NewInt(1)), "8004950c000000000000008a09ffffffffffffff7fff2e"},
		// The capture of a Python 3.11 manager call.
		{Tuple{nil, "create", Tuple{"get_queue"}, map[string]any{}},
			"8004951e00000000000000284e8c06637265617465948c096765745f71756575659485947d9474942e"},
	}
	for _, c := range cases {
		b, err := Marshal(c.v)
		if err != nil {
			t.Fatal(err)
		}
		if want := mustHex(t, c.hex); !bytes.Equal(b, want) {
			t.Errorf("%#v:\n got %x\nwant %x", c.v, b, want)
		}
	}
}

// TestMarshalErrors checks what cannot be encoded.
func TestMarshalErrors(t *testing.T) {
	type withChan struct {
		C chan int
	}
	cyclic := make([]any, 1)
	cyclic[0] = cyclic
	type node struct {
		Next *node
	}
	loop := &node{}
	loop.Next = loop
	m := map[string]any{}
	m["self"] = m
	var iface any
	iface = &iface

	cases := []struct {
		name string
		v    any
		err  error
		msg  string
	}{
		{"chan", make(chan int), ErrUnsupported, "no pickle form for chan int"},
		{"func", func() {}, ErrUnsupported, "no pickle form"},
		{"complex", 1i, ErrUnsupported, "complex128"},
		{"chan field", withChan{make(chan int)}, ErrUnsupported, ".C: no pickle form"},
		{"cyclic slice", cyclic, ErrUnsupported, "cyclic"},
		{"cyclic pointer", loop, ErrUnsupported, "cyclic"},
		{"cyclic map", m, ErrUnsupported, `["self"]: cyclic`},
		{"pointer to itself", iface, ErrTooLarge, "nested deeper than 1000"},
		{"invalid UTF-8", []string{"ok", "a\xffb"}, ErrUnsupported, "[1]: string is not UTF-8"},
		{"list in a set", Set{[]any{1}}, ErrUnsupported, "unhashable"},
		{"set in a set", Set{Set{}}, ErrUnsupported, "unhashable"},
		{"list in a tuple key", Dict{{Tuple{[]int{1}}, 1}}, ErrUnsupported, "unhashable"},
		{"struct key", map[Point]int{{1, 2}: 3}, ErrUnsupported, "[key {1 2}]: pickle.Point as a dict key"},
		{"map in a frozenset", FrozenSet{map[int]int{}}, ErrUnsupported, "unhashable"},
		{"deep", nestedList(1001), ErrTooLarge, "nested deeper than 1000"},
		{"struct pointer key", Set{&Point{}}, ErrUnsupported, "[0]: pickle.Point as a dict key"},
		{"no exported fields", []any{time.Time{}}, ErrUnsupported, "[0]: time.Time has no exported fields"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := Marshal(c.v)
			if !errors.Is(err, c.err) || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("err = %v, want %v with %q", err, c.err, c.msg)
			}
			if b != nil {
				t.Errorf("bytes with an error")
			}
		})
	}

	// MaxSize bounds the output, before writing a large payload.
	e := Encoder{MaxSize: 100}
	if _, err := e.Marshal(strings.Repeat("x", 80)); err != nil {
		t.Error(err)
	}
	if _, err := e.Marshal(strings.Repeat("x", 100)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("101-byte str: %v", err)
	}
	if _, err := e.Marshal(make([]int, 100)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("100 ints: %v", err)
	}
	if _, err := (Encoder{MaxDepth: 3}).Marshal(nestedList(3)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("MaxDepth 3: %v", err)
	}
	if _, err := (Encoder{MaxDepth: 3}).Marshal(nestedList(2)); err != nil {
		t.Errorf("MaxDepth 3, depth 3: %v", err)
	}
}

// TestMarshalZeroSize checks that zero-size values, which may share an
// address, are not taken for one shared value.
func TestMarshalZeroSize(t *testing.T) {
	type empty struct{}
	a, b := &empty{}, &empty{}
	data := mustMarshal(t, []any{a, b, []empty{{}, {}}, []empty{{}, {}}, struct{}{}})
	if bytes.Contains(data, []byte{opBinGet}) {
		t.Errorf("zero-size values shared: %x", data)
	}
	var v any
	if err := Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	want := []any{map[any]any{}, map[any]any{}, []any{map[any]any{}, map[any]any{}}, []any{map[any]any{}, map[any]any{}}, map[any]any{}}
	if !equalValues(v, want) {
		t.Errorf("got %#v", v)
	}
}

// TestMarshalShared checks that values shared in Go are written once and
// shared after decoding, and that merely equal ones are not.
func TestMarshalShared(t *testing.T) {
	s := []int{1, 2, 3}
	b := []byte("shared bytes")
	p := &Point{1, 2}
	v := []any{s, s, s[:2], b, b, p, p, *p, *p, "str", "str"}
	data, err := Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	// One copy of each shared payload.
	if n := bytes.Count(data, []byte("shared bytes")); n != 1 {
		t.Errorf("shared bytes written %d times", n)
	}
	if n := bytes.Count(data, []byte("str")); n != 1 {
		t.Errorf("str written %d times", n)
	}
	var got []any
	if err := Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	same := func(a, b any) bool { return reflect.ValueOf(a).Pointer() == reflect.ValueOf(b).Pointer() }
	if !same(got[0], got[1]) || same(got[0], got[2]) {
		t.Errorf("slices: shared %v, prefix shared %v", same(got[0], got[1]), same(got[0], got[2]))
	}
	if !same(got[3], got[4]) {
		t.Errorf("bytes not shared")
	}
	if !same(got[5], got[6]) || same(got[7], got[8]) {
		t.Errorf("pointer shared %v, values shared %v", same(got[5], got[6]), same(got[7], got[8]))
	}
}

// TestMarshalDeterministic checks that maps are written in one order.
func TestMarshalDeterministic(t *testing.T) {
	m := map[any]any{}
	for i := range 200 {
		m[i] = i
		m[float64(i)+0.5] = i
		m[string(rune('a'+i%26))+string(rune('a'+i/26))] = i
	}
	m[nil], m[true], m[false] = 1, 2, 3
	first := mustMarshal(t, m)
	for range 20 {
		if !bytes.Equal(mustMarshal(t, m), first) {
			t.Fatal("two encodings differ")
		}
	}
	var back map[any]any
	if err := Unmarshal(first, &back); err != nil || len(back) != len(m) {
		t.Fatalf("%d keys, %v", len(back), err)
	}
}

// TestCodec checks the Codec's limits and the transport's habit of
// passing a pointer to the value.
func TestCodec(t *testing.T) {
	c := Codec{Decoder: Decoder{MaxSize: 64}, Encoder: Encoder{MaxSize: 64}}
	type job struct {
		ID   int
		Args []string
	}
	in := job{7, []string{"a", "b"}}
	b, err := c.Marshal(&in)
	if err != nil {
		t.Fatal(err)
	}
	var out job
	if err := c.Unmarshal(b, &out); err != nil || !reflect.DeepEqual(in, out) {
		t.Fatalf("got %+v, %v", out, err)
	}
	big := job{1, []string{strings.Repeat("x", 64)}}
	if _, err := c.Marshal(&big); !errors.Is(err, ErrTooLarge) {
		t.Errorf("encode over MaxSize: %v", err)
	}
	if err := c.Unmarshal(mustMarshal(t, &big), &out); !errors.Is(err, ErrTooLarge) {
		t.Errorf("decode over MaxSize: %v", err)
	}
}

// Append appends a pickle to what dst holds, the same bytes Marshal
// writes; MaxSize bounds the pickle only; on error dst comes back
// unchanged.
func TestAppend(t *testing.T) {
	v := map[string]any{"k": []any{int64(1), "two", 3.0}}
	want, err := Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	prefix := []byte("prefix")
	got, err := Encoder{MaxSize: len(want)}.Append(prefix, v)
	if err != nil || string(got) != "prefix"+string(want) {
		t.Fatalf("Append = %q, %v; want prefix+%q", got, err, want)
	}
	got, err = Encoder{MaxSize: len(want) - 1}.Append(prefix, v)
	if !errors.Is(err, ErrTooLarge) || string(got) != "prefix" || !strings.Contains(err.Error(), strconv.Itoa(len(want)-1)) {
		t.Fatalf("Append over MaxSize = %q, %v; want prefix and ErrTooLarge naming %d", got, err, len(want)-1)
	}
	if _, err := (Encoder{}).Append(prefix, make(chan int)); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("Append of a channel: %v", err)
	}
}
