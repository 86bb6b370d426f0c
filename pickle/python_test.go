package pickle

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strings"
	"testing"
)

// wantErr is the expectation of a Python case Go must refuse.
type wantErr struct{ err error }

func nestedList(depth int) any {
	var x any = []any{}
	for range depth {
		x = []any{x}
	}
	return x
}

func intRange(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = int64(i)
	}
	return out
}

// pythonCases are the Go values of the cases of testdata/gen.py, decoded
// into an any.
var pythonCases = map[string]any{
	"none":                 nil,
	"true":                 true,
	"false":                false,
	"int_0":                int64(0),
	"int_255":              int64(255),
	"int_256":              int64(256),
	"int_65535":            int64(65535),
	"int_65536":            int64(65536),
	"int_neg1":             int64(-1),
	"int32_max":            int64(math.MaxInt32),
	"int32_min":            int64(math.MinInt32),
	"int_2_31":             int64(1 << 31),
	"int64_max":            int64(math.MaxInt64),
	"int64_min":            int64(math.MinInt64),
	"int_2_63":             pow(2, 63),
	"int_neg_2_63_minus_1": new(big.Int).Sub(new(big.Int).Neg(pow(2, 63)), big.NewInt(1)),
	"int_2_64":             pow(2, 64),
	"int_2_1000":           pow(2, 1000),
	"int_neg_3_700":        new(big.Int).Neg(pow(3, 700)),
	"int_2_2100":           pow(2, 2100),
	"float_0":              0.0,
	"float_neg0":           math.Copysign(0, -1),
	"float_1_5":            1.5,
	"float_1e300":          1e300,
	"float_tiny":           5e-324,
	"float_inf":            math.Inf(1),
	"float_neginf":         math.Inf(-1),
	"float_nan":            math.NaN(),
	"float_third":          1.0 / 3,
	"str_empty":            "",
	"str_a":                "a",
	"str_accent":           "héllo",
	"str_cjk":              "日本語",
	"str_emoji":            "😀",
	"str_escapes":          "a\\b\nc\x00d\re\x1a\u0100\\u0041",
	"str_surrogate":        "x\xed\xa0\x80y",
	"str_300":              strings.Repeat("é", 150),
	"str_large":            strings.Repeat("L", 70000),
	"bytes_empty":          []byte{},
	"bytes_bin":            []byte("\x00\xff\x80\n\\"),
	"bytes_300":            append(bytes.Clone(byteRange()), bytes.Repeat([]byte("x"), 44)...),
	"bytes_large":          bytes.Repeat([]byte{1}, 70000),
	"bytearray_empty":      []byte{},
	"bytearray":            []byte("ab\xff"),
	"list_empty":           []any{},
	"list_1":               []any{int64(1)},
	"list_mixed":           []any{int64(1), "a", nil, 2.5, []byte("b"), true},
	"list_2500":            intRange(2500),
	"list_1001": func() []any {
		s := make([]any, 1001)
		for i := range s {
			s[i] = "x"
		}
		return s
	}(),
	"list_nested":      []any{[]any{[]any{}}, []any{int64(1), []any{int64(2), []any{int64(3)}}}},
	"list_deep":        nestedList(200),
	"tuple_empty":      Tuple{},
	"tuple_1":          Tuple{int64(1)},
	"tuple_2":          Tuple{int64(1), "b"},
	"tuple_3":          Tuple{int64(1), int64(2), int64(3)},
	"tuple_5":          Tuple{int64(1), int64(2), int64(3), int64(4), int64(5)},
	"tuple_nested":     Tuple{Tuple{}, Tuple{Tuple{}}, []any{Tuple{}}},
	"dict_empty":       map[any]any{},
	"dict_1":           map[any]any{"a": int64(1)},
	"dict_order":       map[any]any{"b": int64(1), "a": int64(2), "c": []any{int64(3)}},
	"dict_scalar_keys": map[any]any{int64(1): "i", nil: "n", 2.5: "f", "k": "s", false: "b"},
	"dict_1500": func() map[any]any {
		m := map[any]any{}
		for i := range 1500 {
			m[fmt.Sprintf("k%d", i)] = int64(i)
		}
		return m
	}(),
	"dict_tuple_key":    Dict{{Tuple{int64(1), int64(2)}, "t"}, {"s", int64(1)}},
	"dict_bytes_key":    Dict{{[]byte("k"), int64(1)}},
	"dict_bigint_key":   Dict{{pow(2, 70), "big"}},
	"set_empty":         Set{},
	"set_ints":          Set{int64(1), int64(2), int64(3)},
	"set_strs":          Set{"a", "b"},
	"set_tuples":        Set{Tuple{int64(1), int64(2)}, Tuple{int64(3), int64(4)}},
	"set_1500":          Set(intRange(1500)),
	"frozenset_empty":   FrozenSet{},
	"frozenset":         FrozenSet{int64(1), "x"},
	"set_of_frozensets": Set{FrozenSet{int64(1)}, FrozenSet{}},
	"shared":            []any{[]any{int64(1), int64(2)}, []any{int64(1), int64(2)}, "s", "s"},
	"shared_tuple":      map[any]any{"a": Tuple{"t", int64(1)}, "b": Tuple{"t", int64(1)}},
	"record": map[any]any{
		"id": int64(7), "name": "widget", "tags": []any{"a", "b"}, "score": 0.5,
		"raw": []byte{1, 2}, "pos": Tuple{int64(3), int64(-4)}, "ok": true, "note": nil,
		"items": []any{
			map[any]any{"name": "x", "qty": int64(1)},
			map[any]any{"name": "y", "qty": int64(2)},
		},
	},
	"recursive_list": wantErr{ErrUnsupported},
	"recursive_dict": wantErr{ErrUnsupported},
}

func byteRange() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

// checkPythonPickles decodes pickles made by Python and compares them with
// pythonCases; if all, every case must be present.
func checkPythonPickles(t *testing.T, ps []pyPickle, all bool) {
	t.Helper()
	seen := map[string]bool{}
	for _, p := range ps {
		seen[p.Name] = true
		want, ok := pythonCases[p.Name]
		if !ok {
			t.Errorf("Python case %q has no Go expectation in pythonCases", p.Name)
			continue
		}
		checkDecoded(t, Decoder{}, p, want)
	}
	if all {
		for name := range pythonCases {
			if !seen[name] {
				t.Errorf("case %q missing from gen.py's output", name)
			}
		}
	}
}

// checkDecoded decodes Python's pickle p with d and compares the value
// with want, or the error with want's if it is a wantErr. It returns the
// value, and whether it is the one wanted.
func checkDecoded(t *testing.T, d Decoder, p pyPickle, want any) (any, bool) {
	t.Helper()
	var got any
	err := d.Unmarshal(p.data, &got)
	if w, ok := want.(wantErr); ok {
		if !errors.Is(err, w.err) {
			t.Errorf("%s protocol %d: err = %v, want %v", p.Name, p.Protocol, err, w.err)
		}
		return nil, false
	}
	if err != nil {
		t.Errorf("%s protocol %d: %v\npickle %x", p.Name, p.Protocol, err, p.data)
		return nil, false
	}
	if !equalValues(got, want) {
		t.Errorf("%s protocol %d:\n got %s\nwant %s\npickle %x", p.Name, p.Protocol, abbrev(got), abbrev(want), p.data)
		return got, false
	}
	return got, true
}

func abbrev(v any) string {
	s := fmt.Sprintf("%#v", v)
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// TestDecodePython decodes what every Python found on the machine writes
// for the cases of testdata/gen.py, at every protocol it has.
func TestDecodePython(t *testing.T) {
	pys := pythons(t)
	var tested []string
	for _, py := range pys {
		t.Run(py.version, func(t *testing.T) {
			version, ps := parseDump(t, runPython(t, py, nil, "dump"))
			if version != py.version {
				t.Fatalf("gen.py says Python %s, want %s", version, py.version)
			}
			protos := map[int]bool{}
			for _, p := range ps {
				protos[p.Protocol] = true
			}
			checkPythonPickles(t, ps, true)
			t.Logf("Python %s: %d pickles, %d protocols", py.version, len(ps), len(protos))
		})
		tested = append(tested, py.version)
	}
	t.Logf("Python versions tested: %s", strings.Join(tested, ", "))
	for _, n := range pythonsNote {
		t.Log(n)
	}
}

// TestDecodePythonFixture decodes the checked-in pickles of gen.py small.
func TestDecodePythonFixture(t *testing.T) {
	ps := fixturePickles(t)
	if len(ps) < 300 {
		t.Fatalf("only %d pickles in testdata/python.jsonl", len(ps))
	}
	checkPythonPickles(t, ps, false)
}

// TestDecodePythonTyped decodes Python's record into a struct, at every
// protocol.
func TestDecodePythonTyped(t *testing.T) {
	type item struct {
		Name string
		Qty  uint8
	}
	type record struct {
		ID    int `pickle:"id"`
		Name  string
		Tags  []string
		Score float32
		Raw   []byte
		Pos   [2]int
		OK    bool
		Note  *string
		Items []item
		Extra map[string]int // absent: stays nil
	}
	want := record{ID: 7, Name: "widget", Tags: []string{"a", "b"}, Score: 0.5, Raw: []byte{1, 2},
		Pos: [2]int{3, -4}, OK: true, Items: []item{{"x", 1}, {"y", 2}}}
	n := 0
	for _, p := range fixturePickles(t) {
		if p.Name != "record" {
			continue
		}
		n++
		var got record
		if err := Unmarshal(p.data, &got); err != nil {
			t.Fatalf("protocol %d: %v", p.Protocol, err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("protocol %d: got %+v, want %+v", p.Protocol, got, want)
		}
	}
	if n < 5 {
		t.Fatalf("%d record pickles", n)
	}
}

// An encodeCase is a Go value, and the repr Python prints after
// pickle.loads of its encoding. exact: Python's pickle.dumps(value, 4)
// of what it loaded must equal Go's bytes.
type encodeCase struct {
	name  string
	v     any
	repr  string
	exact bool
}

type person struct {
	Name    string `pickle:"name"`
	Age     int
	skipped int
	Hidden  int    `pickle:"-"`
	Opt     string `pickle:",omitempty"`
	Nick    *string
	Friends []*person `pickle:"friends,omitempty"`
}

type embedded struct {
	Base
	Own int
}

type Base struct {
	ID   int
	Kind string `pickle:"kind"`
}

func encodeCases() []encodeCase {
	ints := make([]int, 2500)
	var intsRepr strings.Builder
	intsRepr.WriteString("[")
	for i := range ints {
		ints[i] = i
		if i > 0 {
			intsRepr.WriteString(", ")
		}
		fmt.Fprint(&intsRepr, i)
	}
	intsRepr.WriteString("]")

	var dict Dict
	var dictRepr strings.Builder
	dictRepr.WriteString("{")
	for i := range 1500 {
		dict = append(dict, DictItem{fmt.Sprintf("k%d", i), i})
		if i > 0 {
			dictRepr.WriteString(", ")
		}
		fmt.Fprintf(&dictRepr, "'k%d': %d", i, i)
	}
	dictRepr.WriteString("}")

	strs := make([]any, 600)
	var strsRepr strings.Builder
	strsRepr.WriteString("[")
	for i := range 300 {
		s := fmt.Sprintf("s%d", i)
		strs[i], strs[300+i] = s, s
	}
	for i, s := range strs {
		if i > 0 {
			strsRepr.WriteString(", ")
		}
		fmt.Fprintf(&strsRepr, "'%s'", s)
	}
	strsRepr.WriteString("]")

	shared := []int{1, 2}
	sharedMap := map[string]int{"k": 1}
	bob := &person{Name: "bob", Age: 40}
	nick := "al"
	deep := nestedList(200) // Python 3.11 and older cannot pickle much deeper

	// Structs whose field names come right after a 64 KiB frame fills up.
	type wide struct {
		A string
		B int
	}
	bigStructs := make([]wide, 400)
	var bs strings.Builder
	bs.WriteString("[")
	for i := range bigStructs {
		a := fmt.Sprint(i) + strings.Repeat("x", 200)
		bigStructs[i] = wide{a, i}
		if i > 0 {
			bs.WriteString(", ")
		}
		fmt.Fprintf(&bs, "{'A': '%s', 'B': %d}", a, i)
	}
	bs.WriteString("]")
	bigStructsRepr := bs.String()

	return []encodeCase{
		{"nil", nil, "None", true},
		{"bools", []bool{true, false}, "[True, False]", true},
		{"ints", []any{0, 255, 256, 65535, 65536, -1, int8(-128), uint8(255), int16(-300), uint16(65535),
			int32(math.MaxInt32), int32(math.MinInt32), int64(math.MaxInt32) + 1, int64(math.MinInt32) - 1,
			int64(math.MaxInt64), int64(math.MinInt64), uint64(math.MaxUint64), uint(7), uintptr(9)},
			"[0, 255, 256, 65535, 65536, -1, -128, 255, -300, 65535, 2147483647, -2147483648, 2147483648, " +
				"-2147483649, 9223372036854775807, -9223372036854775808, 18446744073709551615, 7, 9]", true},
		{"bigints", []any{pow(2, 100), new(big.Int).Neg(pow(2, 100)), big.NewInt(5), *big.NewInt(-7),
			new(big.Int).Neg(pow(2, 63)), pow(2, 2100), (*big.Int)(nil)},
			"[1267650600228229401496703205376, -1267650600228229401496703205376, 5, -7, -9223372036854775808, " +
				pow(2, 2100).String() + ", None]", true},
		{"floats", []any{1.5, float32(0.25), math.Inf(1), math.Inf(-1), math.Copysign(0, -1), 1e300, 5e-324},
			"[1.5, 0.25, inf, -inf, -0.0, 1e+300, 5e-324]", true},
		{"nan", math.NaN(), "nan", true},
		{"strings", []string{"", "a", "héllo", "日本語", "😀", "a\nb\x00'\\"},
			`['', 'a', 'héllo', '日本語', '😀', "a\nb\x00'\\"]`, true},
		{"surrogate", "x\xed\xa0\x80y", `'x\ud800y'`, true},
		{"bytes", [][]byte{{}, {0, 255}, []byte("abc"), nil}, `[b'', b'\x00\xff', b'abc', b'']`, true},
		{"byte_array", [4]byte{1, 2, 3, 4}, `b'\x01\x02\x03\x04'`, true},
		{"pointers", []any{&[2]byte{5, 6}, &[2]int{7, 8}, map[[1]string]int{{"k"}: 1}, &nick}, `[b'\x05\x06', [7, 8], {('k',): 1}, 'al']`, true},
		{"tuple", Tuple{1, "a", Tuple{}, Tuple{nil}, Tuple{1, 2}, Tuple{1, 2, 3}}, "(1, 'a', (), (None,), (1, 2), (1, 2, 3))", true},
		{"tuple_5", Tuple{1, 2, 3, 4, 5}, "(1, 2, 3, 4, 5)", true},
		{"set_1", Set{1}, "{1}", true},
		{"set_sorted", Set{1, 2, 3}, "{1, 2, 3}", true},
		{"set_unordered", Set{"b", Tuple{1, 2}, nil}, "", false},
		{"set_empty", Set{}, "set()", true},
		{"frozenset", FrozenSet{Tuple{1, 2}}, "frozenset({(1, 2)})", true},
		{"frozenset_empty", FrozenSet{}, "frozenset()", true},
		{"set_of_frozenset", Set{FrozenSet{1}}, "{frozenset({1})}", true},
		{"map", map[string]any{"b": 1, "a": []any{true, nil}}, "{'a': [True, None], 'b': 1}", true},
		{"map_int_keys", map[int]string{3: "c", 1: "a", 2: "b", -5: "m"}, "{-5: 'm', 1: 'a', 2: 'b', 3: 'c'}", true},
		{"map_mixed_keys", map[any]int{"s": 1, 2: 2, 1.5: 3, nil: 4, true: 5}, "{None: 4, True: 5, 2: 2, 1.5: 3, 's': 1}", true},
		{"map_array_keys", map[[2]int]bool{{1, 2}: true, {0, 9}: false}, "{(0, 9): False, (1, 2): True}", true},
		{"map_nil", map[string]int(nil), "{}", true},
		{"dict", Dict{{Tuple{1, 2}, "t"}, {[]byte("k"), 1}, {"z", nil}, {FrozenSet{}, 2}}, "{(1, 2): 't', b'k': 1, 'z': None, frozenset(): 2}", true},
		{"struct", person{Name: "al", Age: 3, skipped: 1, Hidden: 2, Nick: &nick}, "{'name': 'al', 'Age': 3, 'Nick': 'al'}", true},
		{"struct_ptr", &person{Name: "cy", Opt: "o", Friends: []*person{bob, bob}}, "{'name': 'cy', 'Age': 0, 'Opt': 'o', 'Nick': None, " +
			"'friends': [{'name': 'bob', 'Age': 40, 'Nick': None}, {'name': 'bob', 'Age': 40, 'Nick': None}]}", true},
		{"embedded", embedded{Base{1, "k"}, 2}, "{'ID': 1, 'kind': 'k', 'Own': 2}", true},
		{"shared", []any{shared, shared, sharedMap, sharedMap, "dup", "dup"}, "[[1, 2], [1, 2], {'k': 1}, {'k': 1}, 'dup', 'dup']", true},
		{"many_memo", strs, strsRepr.String(), true},
		{"list_2500", ints, intsRepr.String(), true},
		{"dict_1500", dict, dictRepr.String(), true},
		{"str_large", strings.Repeat("x", 70000), "'" + strings.Repeat("x", 70000) + "'", true},
		{"bytes_large", []any{1, bytes.Repeat([]byte{'y'}, 70000), 2}, "[1, b'" + strings.Repeat("y", 70000) + "', 2]", true},
		{"deep", deep, strings.Repeat("[", 201) + strings.Repeat("]", 201), true},
		{"structs_large", bigStructs, bigStructsRepr, true},
	}
}

// TestEncodePython has every Python found load Go's pickles: it compares
// their repr, and Python's own pickle of what it loaded with Go's bytes.
func TestEncodePython(t *testing.T) {
	cases := encodeCases()
	names := make([]string, len(cases))
	values := make([]any, len(cases))
	for i, c := range cases {
		names[i], values[i] = c.name, c.v
	}
	encoded, input := loadsInput(t, names, values)
	var tested []string
	for _, py := range pythons(t) {
		t.Run(py.version, func(t *testing.T) {
			for i, r := range pythonLoads(t, py, input, names) {
				c := cases[i]
				if r.Error != "" {
					t.Errorf("%s: Python: %s\npickle %x", c.name, r.Error, encoded[i])
					continue
				}
				if c.repr != "" && r.Repr != c.repr {
					t.Errorf("%s: Python repr\n got %s\nwant %s", c.name, abbrevS(r.Repr), abbrevS(c.repr))
				}
				// Python 3.6 frames differently (Go writes what 3.7 and later write).
				exact := c.exact && atLeast(py.version, 3, 7)
				if exact && r.Redump != hex.EncodeToString(encoded[i]) {
					t.Errorf("%s: Go's pickle differs from Python's\n  go %s\n  py %s", c.name,
						abbrevS(hex.EncodeToString(encoded[i])), abbrevS(r.Redump))
				}
			}
		})
		tested = append(tested, py.version)
	}
	t.Logf("Python versions tested: %s", strings.Join(tested, ", "))
}

// loadsInput marshals values and returns their pickles and the input of
// gen.py loads for them, named by names.
func loadsInput(t *testing.T, names []string, values []any) (pickles [][]byte, input []byte) {
	t.Helper()
	var in bytes.Buffer
	for i, v := range values {
		b, err := Marshal(v)
		if err != nil {
			t.Fatalf("%s: Marshal: %v", names[i], err)
		}
		pickles = append(pickles, b)
		line, _ := json.Marshal(map[string]string{"name": names[i], "hex": hex.EncodeToString(b)})
		in.Write(append(line, '\n'))
	}
	return pickles, in.Bytes()
}

// A pyLoaded is gen.py loads' answer for one pickle: the repr of what
// Python loaded, its class (module.qualname), its args if it is an
// exception, and its pickle.dumps(value, 4) in hex; or the error.
type pyLoaded struct{ Name, Repr, Type, Args, Redump, Error string }

// pythonLoads runs gen.py loads under py on input (from loadsInput), and
// returns its answers, one for each of names, in order.
func pythonLoads(t *testing.T, py python, input []byte, names []string) []pyLoaded {
	t.Helper()
	out := runPython(t, py, input, "loads")
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 16<<20)
	var rs []pyLoaded
	for sc.Scan() {
		var r pyLoaded
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		if len(rs) >= len(names) || r.Name != names[len(rs)] {
			t.Fatalf("answer %d for %q, want %d answers for %q...", len(rs), r.Name, len(names), names[0])
		}
		rs = append(rs, r)
	}
	if len(rs) != len(names) {
		t.Fatalf("%d answers for %d pickles", len(rs), len(names))
	}
	return rs
}

// reordered reports whether v holds a map[any]any of two or more items,
// whose Python order decoding did not keep (re-encoding sorts the keys).
func reordered(v any) bool {
	switch v := v.(type) {
	case map[any]any:
		if len(v) > 1 {
			return true
		}
		for _, x := range v {
			if reordered(x) {
				return true
			}
		}
	case []any:
		return slices.ContainsFunc(v, reordered)
	case Tuple:
		return slices.ContainsFunc(v, reordered)
	case Object:
		return reordered(v.Args) || reordered(v.State)
	}
	return false
}

func abbrevS(s string) string {
	if len(s) > 400 {
		return s[:400] + fmt.Sprintf("... (%d bytes)", len(s))
	}
	return s
}

// TestDecodeCaptures decodes the pickles of the recorded Python traffic:
// those naming a class (the manager's exceptions and Tokens) are
// ErrUnsafe, and decode with the manager's classes allowed (as Objects);
// the others decode; and those Python wrote (framed) re-encode to the
// same bytes.
func TestDecodeCaptures(t *testing.T) {
	cs := capturePickles(t)
	var ok, unsafe, same int
	for _, c := range cs {
		var v any
		err := Unmarshal(c.data, &v)
		if bytes.Contains(c.data, []byte{opStackGlobal}) && bytes.Contains(c.data, []byte("Empty")) {
			if !errors.Is(err, ErrUnsafe) {
				t.Errorf("%s: %x: err = %v, want ErrUnsafe", c.file, c.data, err)
			}
			unsafe++
			err = objDecoder.Unmarshal(c.data, &v)
		}
		if err != nil {
			t.Errorf("%s: %x: %v", c.file, c.data, err)
			continue
		}
		ok++
		b, err := Marshal(v)
		if err != nil {
			t.Errorf("%s: re-encode %#v: %v", c.file, v, err)
			continue
		}
		if c.data[2] == opFrame && !reordered(v) {
			if !bytes.Equal(b, c.data) {
				t.Errorf("%s: re-encoded\n got %x\nwant %x", c.file, b, c.data)
			}
			same++
		}
	}
	if ok < 30 || unsafe < 1 || same < 20 {
		t.Errorf("decoded %d, unsafe %d, re-encoded identically %d of %d captures", ok, unsafe, same, len(cs))
	}
	t.Logf("captures: %d decoded (%d re-encoded byte for byte), %d ErrUnsafe without Objects", ok, same, unsafe)
}
