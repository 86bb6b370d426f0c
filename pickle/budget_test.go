package pickle

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

func TestNodeSize(t *testing.T) {
	if s := reflect.TypeFor[node]().Size(); s > nodeSize {
		t.Errorf("a node takes %d bytes, nodeSize says %d", s, nodeSize)
	}
	if s := reflect.TypeFor[global]().Size(); s > globalSize {
		t.Errorf("a global takes %d bytes, globalSize says %d", s, globalSize)
	}
}

// charge returns what decoding data into a new value of target's type
// charges to its budget, and the error.
func charge(data []byte, target any, d Decoder) (int, error) {
	lim := d.withDefaults()
	b := newBudget(lim, len(data))
	err := lim.unmarshal(data, reflect.New(reflect.TypeOf(target).Elem()), b)
	return b.max - b.left, err
}

// allocated returns the bytes decoding data into a new value of target's
// type allocates, on average over runs.
func allocated(data []byte, target any) float64 { return allocatedWith(data, target, Decoder{}) }

// allocatedWith is allocated under the Decoder d.
func allocatedWith(data []byte, target any, d Decoder) float64 {
	const runs = 20
	lim := d.withDefaults()
	typ := reflect.TypeOf(target).Elem()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	for range runs {
		_ = lim.unmarshal(data, reflect.New(typ), newBudget(lim, len(data)))
	}
	runtime.ReadMemStats(&m1)
	return float64(m1.TotalAlloc-m0.TotalAlloc) / runs
}

// TestBudgetCovers checks, on ordinary data (every pickle Python writes
// for the test cases, the recorded traffic, Go's own pickles) and typed
// targets, that the budget charges at least what decoding allocates:
// what TestHostile checks on the worst inputs.
func TestBudgetCovers(t *testing.T) {
	type job struct {
		ID   int
		Name string
		Tags []string
		Pos  *[2]float64
		M    map[string]int
		Big  big.Int
		Raw  []myByte
		Any  any
	}
	type pk struct {
		name   string
		data   []byte
		target any
		d      Decoder
	}
	var ps []pk
	for _, p := range fixturePickles(t) {
		ps = append(ps, pk{fmt.Sprintf("%s protocol %d", p.Name, p.Protocol), p.data, new(any), Decoder{}})
	}
	for _, c := range capturePickles(t) {
		ps = append(ps, pk{c.file, c.data, new(any), Decoder{}})
	}
	for _, c := range encodeCases() {
		ps = append(ps, pk{c.name, mustMarshal(t, c.v), new(any), Decoder{}})
	}
	for _, c := range batchCases() {
		b := mustMarshal(t, c.v)
		ps = append(ps, pk{c.name, b, new(any), Decoder{}}, pk{c.name + " typed", b, reflect.New(reflect.TypeOf(c.v)).Interface(), Decoder{}})
	}
	jobs := make([]job, 300)
	for i := range jobs {
		jobs[i] = job{i, fmt.Sprint("job", i), []string{"a", "B"}, &[2]float64{1, float64(i)},
			map[string]int{"k": i}, *pow(3, int64(i)), []myByte("raw"), Tuple{i, "x"}}
	}
	ps = append(ps, pk{"jobs", mustMarshal(t, jobs), new([]job), Decoder{}}, pk{"jobs into any", mustMarshal(t, jobs), new(any), Decoder{}},
		pk{"everything", mustMarshal(t, everything{Ints: []int{1, 2}, M: map[string]int{"a": 1}}), new(everything), Decoder{}})
	// Objects, of the classes allowed.
	for _, c := range objectCases {
		ps = append(ps, pk{c.name, mustHex(t, c.pick), new(any), objDecoder})
		if _, ok := c.v.(Object); ok {
			ps = append(ps, pk{c.name + " typed", mustHex(t, c.pick), new(*Object), objDecoder})
		}
	}
	for _, c := range capturePickles(t) {
		ps = append(ps, pk{c.file + " with objects", c.data, new(any), objDecoder})
	}
	var worst string
	var worstRatio float64
	for _, p := range ps {
		charged, err := charge(p.data, p.target, p.d)
		got := allocatedWith(p.data, p.target, p.d)
		extra := 256.0
		if raceEnabled {
			extra += float64(charged) / 4
		}
		if got > float64(charged)+extra {
			t.Errorf("%s into %T: allocated %.0f bytes, charged %d (err %v)", p.name, p.target, got, charged, err)
		}
		if r := got / float64(charged+1); r > worstRatio {
			worst, worstRatio = p.name, r
		}
	}
	t.Logf("%d pickles: allocation / charge at most %.2f (%s)", len(ps), worstRatio, worst)
}

// TestMaxAlloc checks the budget's two bounds: MaxAlloc, and
// allocPerByte per byte of the pickle plus allocBase.
func TestMaxAlloc(t *testing.T) {
	list := mustMarshal(t, intRange(100_000)) // a list of ints, 400 KB
	need, err := charge(list, new(any), Decoder{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d bytes of pickle need %d bytes (%.1f per byte)", len(list), need, float64(need)/float64(len(list)))
	var v any
	if err := (Decoder{MaxAlloc: need}).Unmarshal(list, &v); err != nil {
		t.Errorf("MaxAlloc = what it needs: %v", err)
	}
	err = Decoder{MaxAlloc: need - 1}.Unmarshal(list, &v)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), fmt.Sprintf("decoding needs more than %d bytes", need-1)) {
		t.Errorf("MaxAlloc one byte short: %v", err)
	}
	// Refused on typed targets too, when the Go values tip it over.
	typed, err := charge(list, new([]int64), Decoder{})
	if err != nil {
		t.Fatal(err)
	}
	var ints []int64
	if err := (Decoder{MaxAlloc: typed - 1}).Unmarshal(list, &ints); !errors.Is(err, ErrTooLarge) {
		t.Errorf("typed, MaxAlloc one byte short: %v", err)
	}

	// A small pickle that copies a list of 10000 ints again and again
	// (set(l) for the same l, 7 bytes each) reaches the bound per byte,
	// long before MaxAlloc.
	var p bytes.Buffer
	p.WriteString("\x80\x04](" + strings.Repeat("K\x01", 10_000) + "e\x940cbuiltins\nset\n\x940")
	p.WriteString(strings.Repeat("h\x01h\x00\x85R0", 10_000) + "N.")
	limit := allocPerByte*p.Len() + allocBase
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	err = Unmarshal(p.Bytes(), &v)
	runtime.ReadMemStats(&m1)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), fmt.Sprintf("more than %d bytes", limit)) {
		t.Errorf("copies: %v", err)
	}
	if a := m1.TotalAlloc - m0.TotalAlloc; a > uint64(limit)+slack(uint64(limit)) {
		t.Errorf("copies: a pickle of %d bytes allocated %d, bound %d", p.Len(), a, limit)
	}
	// The same copies, fewer: fine.
	few := bytes.Replace(p.Bytes(), []byte(strings.Repeat("h\x01h\x00\x85R0", 10_000)), []byte(strings.Repeat("h\x01h\x00\x85R0", 10)), 1)
	if err := Unmarshal(few, &v); err != nil {
		t.Errorf("10 copies: %v", err)
	}
}

// TestDepthWhileParsing checks that every opcode that builds a container
// refuses to nest deeper than MaxDepth as it builds, without reading the
// rest of the pickle; and that a container that grows after it was
// placed, which the parser's heights miss, is caught by the conversion.
func TestDepthWhileParsing(t *testing.T) {
	const depth = 5
	d := Decoder{MaxDepth: depth}
	rest := strings.Repeat("N", 1<<20) // never read
	// Through the memo, so that MARKs do not nest: the container so far
	// goes to memo entry 0 and off the stack.
	const put = "q\x000"
	cases := []struct {
		name, inner, outer, last string // the innermost container; what wraps x in one more, and the outermost
		op                       string // the opcode that refuses while parsing
		tuple                    bool   // a tuple: refused while parsing only at MaxDepth+2
	}{
		{"APPEND", "]", "x" + put + "]h\x00a", "", "APPEND", false},
		{"APPENDS", "]", "x" + put + "](h\x00e", "", "APPENDS", false},
		{"LIST", "]", "x" + put + "(h\x00l", "", "LIST", false},
		{"TUPLE", ")", "x" + put + "(h\x00t", "", "TUPLE", true},
		{"TUPLE1", ")", "x\x85", "", "TUPLE1", true},
		{"TUPLE2", ")", "xN\x86", "", "TUPLE2", true},
		{"TUPLE3", ")", "xNN\x87", "", "TUPLE3", true},
		{"DICT", "}", "x" + put + "(Nh\x00d", "", "DICT", false},
		{"SETITEM", "}", "x" + put + "}Nh\x00s", "", "SETITEM", false},
		{"SETITEMS", "}", "x" + put + "}(Nh\x00u", "", "SETITEMS", false},
		{"FROZENSET", ")", "x" + put + "(h\x00\x91", "", "FROZENSET", false},
		{"ADDITEMS", ")", "x" + put + "(h\x00\x91", "x" + put + "\x8f(h\x00\x90", "ADDITEMS", false},
		// frozenset([x]): the list is as deep as the frozenset.
		{"frozenset()", ")", "x" + put + "cbuiltins\nfrozenset\n]h\x00a\x85R", "", "APPEND", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			build := func(levels int) []byte {
				s := c.inner
				for i := range levels - 1 {
					outer := c.outer
					if i == levels-2 && c.last != "" {
						outer = c.last
					}
					s = strings.Replace(outer, "x", s, 1)
				}
				return []byte("\x80\x04" + s + ".")
			}
			var v any
			if err := d.Unmarshal(build(depth), &v); err != nil {
				t.Fatalf("%d deep: %v\n%q", depth, err, build(depth))
			}
			if err := d.Unmarshal(build(depth+1), &v); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "nested deeper than 5") {
				t.Errorf("%d deep: err = %v, want nested deeper than %d", depth+1, err, depth)
			}
			// Tuples may reach MaxDepth+1 while parsing: the arguments
			// of set() and frozenset() do.
			deep := build(depth + 1)
			if c.tuple {
				deep = build(depth + 2)
			}
			deep = append(deep[:len(deep)-1], "0"+rest+"."...)
			err := d.Unmarshal(deep, &v)
			var oe *OpError
			if !errors.Is(err, ErrTooLarge) || !errors.As(err, &oe) || oe.Op != c.op || oe.Offset > 200 {
				t.Errorf("err = %v, want %s: nested deeper than %d, while parsing", err, c.op, depth)
			}
		})
	}

	// A list placed in another while empty, then nested into: the parse
	// sees heights of 2, the conversion the whole depth.
	var p strings.Builder
	p.WriteString("\x80\x04]\x94\x32") // l0, memo 0
	for i := range depth {
		// l(i+1) into l(i), then l(i+1) on the stack.
		fmt.Fprintf(&p, "]\x94a0h%c", byte(i+1))
	}
	p.WriteString("0.")
	var v any
	err := d.Unmarshal([]byte(p.String()), &v)
	var ve *ValueError
	if !errors.Is(err, ErrTooLarge) || !errors.As(err, &ve) || !strings.Contains(err.Error(), "nested deeper than 5") {
		t.Errorf("grown after placed: err = %v, want a ValueError: nested deeper than 5", err)
	}
	// A list in itself many times is a cycle, not a deep list.
	self := []byte("\x80\x04]" + strings.Repeat("2a", 2*depth) + ".")
	if err := d.Unmarshal(self, &v); !errors.Is(err, ErrUnsupported) {
		t.Errorf("a list in itself %d times: %v, want ErrUnsupported", 2*depth, err)
	}
}

// TestHugeInts checks that errors about huge ints neither print them in
// full nor take long to.
func TestHugeInts(t *testing.T) {
	huge := mustMarshal(t, []any{new(big.Int).Lsh(big.NewInt(1), 1<<20)})
	var i8 []int8
	err := Unmarshal(huge, &i8)
	if err == nil || !strings.Contains(err.Error(), "int of 1048577 bits overflows int8") {
		t.Errorf("into []int8: %v", err)
	}
	var f []float64
	if err := Unmarshal(huge, &f); err == nil || !strings.Contains(err.Error(), "int of 1048577 bits overflows float64") {
		t.Errorf("into []float64: %v", err)
	}
	small := mustMarshal(t, []any{pow(2, 100)})
	if err := Unmarshal(small, &i8); err == nil || !strings.Contains(err.Error(), "1267650600228229401496703205376 overflows int8") {
		t.Errorf("2^100 into []int8: %v", err)
	}
	// As dict keys, in paths.
	key := mustMarshal(t, Dict{{new(big.Int).Lsh(big.NewInt(1), 1<<20), "x"}})
	var m map[any]int
	if err := Unmarshal(key, &m); err == nil || !strings.Contains(err.Error(), "at [int of 1048577 bits]") {
		t.Errorf("key into map[any]int: %v", err)
	}
	// Two's complement, both signs, around the byte boundaries.
	for _, s := range []string{"-1", "-128", "-129", "-32768", "-9223372036854775808", "-9223372036854775809",
		"-18446744073709551616", "-18446744073709551617", "18446744073709551615", "-" + pow(2, 1000).String()} {
		want := bigInt(s)
		var got big.Int
		if err := Unmarshal(mustMarshal(t, want), &got); err != nil || got.Cmp(want) != 0 {
			t.Errorf("%s: got %v, %v", s, &got, err)
		}
	}
}

// TestStructKeys checks that a struct ignores a dict key too long to
// name any field, however often it comes, without folding its case.
func TestStructKeys(t *testing.T) {
	key := strings.Repeat("\u0130", 1<<20) // U+0130, which ToLower makes longer
	d := make(Dict, 1000)
	for i := range d {
		d[i] = DictItem{key, i}
	}
	d = append(d, DictItem{"x", 7}, DictItem{"\u0130", 1}) // a short key that folds
	data := mustMarshal(t, d)
	var p Point
	if err := Unmarshal(data, &p); err != nil || p.X != 7 {
		t.Fatalf("got %+v, %v", p, err)
	}
	if a := allocated(data, new(Point)); a > 1.5*float64(len(data)) { // the key itself, decoded once
		t.Errorf("allocated %.0f bytes for %d of pickle", a, len(data))
	}
}
