package pickle

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

// p4 wraps a protocol-4 body: PROTO 4, the body, STOP.
func p4(body string) []byte { return []byte("\x80\x04" + body + ".") }

// TestUnsafe feeds pickles that would import or call something in Python,
// or build objects: each must fail with ErrUnsafe naming the opcode and
// its offset, before anything else happens.
func TestUnsafe(t *testing.T) {
	cases := []struct {
		name, pickle, op string
		offset           int
		detail           string
	}{
		// pickle.dumps(os.system) shaped, called: what an attack looks like.
		{"os.system protocol 0", "cos\nsystem\n(S'echo pwned'\ntR.", "GLOBAL", 0, "os.system"},
		{"posix.system protocol 2", "\x80\x02cposix\nsystem\nq\x00X\x07\x00\x00\x00echo hiq\x01\x85q\x02Rq\x03.", "GLOBAL", 2, "posix.system"},
		{"os.system protocol 4", "\x80\x04\x95\x1e\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x94\x8c\x06system\x94\x93\x94\x8c\x07echo hi\x94\x85\x94R\x94.",
			"STACK_GLOBAL", 25, "os.system"},
		{"builtins.eval", "\x80\x04\x8c\x08builtins\x8c\x04eval\x93\x8c\x041+1\x85R.", "STACK_GLOBAL", 18, "builtins.eval"},
		{"builtins.getattr", "\x80\x02c__builtin__\ngetattr\n.", "GLOBAL", 2, "__builtin__.getattr"},
		{"subprocess.Popen", "\x80\x03csubprocess\nPopen\n.", "GLOBAL", 2, "subprocess.Popen"},
		{"_queue.Empty (the manager's error)", "\x80\x04\x8c\x06_queue\x94\x8c\x05Empty\x94\x93\x94)R\x94.", "STACK_GLOBAL", 19, "_queue.Empty"},
		{"STACK_GLOBAL of non-str", "\x80\x04K\x01K\x02\x93.", "STACK_GLOBAL", 6, "int"},
		{"REDUCE of a non-global", "\x80\x04N)R.", "REDUCE", 4, "calls a None"},
		{"REDUCE of a list", "\x80\x04])R.", "REDUCE", 4, "calls a list"},
		{"BUILD", "\x80\x04}}b.", "BUILD", 4, ""},
		{"INST", "(ios\nsystem\n.", "INST", 1, ""},
		{"OBJ", "\x80\x02(N)o.", "OBJ", 5, ""},
		{"NEWOBJ", "\x80\x02N)\x81.", "NEWOBJ", 4, ""},
		{"NEWOBJ_EX", "\x80\x04N)}\x92.", "NEWOBJ_EX", 5, ""},
		{"EXT1", "\x80\x02\x82\x01.", "EXT1", 2, ""},
		{"EXT2", "\x80\x02\x83\x01\x00.", "EXT2", 2, ""},
		{"EXT4", "\x80\x02\x84\x01\x00\x00\x00.", "EXT4", 2, ""},
		{"PERSID", "P1\n.", "PERSID", 0, ""},
		{"BINPERSID", "\x80\x02NQ.", "BINPERSID", 3, ""},
		// The allowlisted constructors: only as REDUCE's callee, only with
		// the arguments Python writes.
		{"set as a value", "\x80\x02c__builtin__\nset\n.", "STOP", 19, "__builtin__.set used as a value"},
		{"set in a list", "\x80\x02]c__builtin__\nset\na.", "APPEND", 20, "used as a value"},
		{"set in a tuple", "\x80\x02cbuiltins\nset\n\x85.", "TUPLE1", 16, "used as a value"},
		{"set(1)", "\x80\x02cbuiltins\nset\nK\x01\x85R.", "REDUCE", 19, "builtins.set with arguments [int]"},
		{"set(dict)", "\x80\x02cbuiltins\nset\n}\x85R.", "REDUCE", 18, "builtins.set with arguments [dict]"},
		{"set with kwargs", "\x80\x02cbuiltins\nset\n])\x86R.", "REDUCE", 19, "[list tuple]"},
		{"set args not a tuple", "\x80\x02cbuiltins\nset\n]R.", "REDUCE", 17, "arguments of type list"},
		{"bytes(1)", "\x80\x02cbuiltins\nbytes\nK\x05\x85R.", "REDUCE", 21, "builtins.bytes"},
		{"bytes(str)", "\x80\x02cbuiltins\nbytes\n\x8c\x01a\x85R.", "REDUCE", 22, "builtins.bytes"},
		{"encode utf-16", "\x80\x02c_codecs\nencode\n\x8c\x01a\x8c\x06utf-16\x86R.", "REDUCE", 30, "_codecs.encode with arguments [str str]"},
		{"encode one arg", "\x80\x02c_codecs\nencode\n\x8c\x01a\x85R.", "REDUCE", 22, "_codecs.encode with arguments [str]"},
		{"_codecs.decode", "\x80\x02c_codecs\ndecode\n.", "GLOBAL", 2, "_codecs.decode"},
		{"builtins.setattr", "\x80\x02cbuiltins\nsetattr\n.", "GLOBAL", 2, "builtins.setattr"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var v any
			err := Unmarshal([]byte(c.pickle), &v)
			if !errors.Is(err, ErrUnsafe) {
				t.Fatalf("err = %v, want ErrUnsafe", err)
			}
			var oe *OpError
			if !errors.As(err, &oe) {
				t.Fatalf("err %T is not an *OpError", err)
			}
			if oe.Op != c.op || oe.Offset != c.offset || !strings.Contains(oe.Detail, c.detail) {
				t.Errorf("got %s at %d (%q), want %s at %d (%q)", oe.Op, oe.Offset, oe.Detail, c.op, c.offset, c.detail)
			}
			want := fmt.Sprintf("%s at offset %d", c.op, c.offset)
			if !strings.Contains(err.Error(), want) {
				t.Errorf("message %q lacks %q", err, want)
			}
			// Typed targets are refused the same way.
			var s string
			if err := Unmarshal([]byte(c.pickle), &s); !errors.Is(err, ErrUnsafe) {
				t.Errorf("into a string: err = %v", err)
			}
		})
	}
}

// TestMalformed checks that broken pickles are ErrProtocol (or the sentinel
// given) and never a panic or a value.
func TestMalformed(t *testing.T) {
	cases := []struct {
		name, pickle string
		want         error
		msg          string
	}{
		{"empty", "", ErrProtocol, "no STOP"},
		{"no STOP", "\x80\x04N", ErrProtocol, "no STOP"},
		{"unknown opcode 0xff", "\x80\x04\xff.", ErrProtocol, "opcode 0xff at offset 2: unknown opcode"},
		{"unknown opcode 0x99", "\x80\x05\x99.", ErrProtocol, "opcode 0x99"},
		{"unknown opcode z", "z.", ErrProtocol, "opcode 0x7a"},
		{"protocol 6", "\x80\x06N.", ErrProtocol, "protocol 6"},
		{"STOP on empty stack", ".", ErrProtocol, "0 values"},
		{"two values", "NN.", ErrProtocol, "2 values"},
		{"open MARK", "(N.", ErrProtocol, "MARK"},
		{"trailing bytes", "N.N", ErrProtocol, "1 bytes after STOP"},
		{"APPEND underflow", "a.", ErrProtocol, "underflow"},
		{"APPEND to None", "NNa.", ErrProtocol, "target is a None, not a list"},
		{"SETITEM to list", "]NNs.", ErrProtocol, "not a dict"},
		{"ADDITEMS to list", "](N\x90.", ErrProtocol, "not a set"},
		{"TUPLE without MARK", "Nt.", ErrProtocol, "no MARK"},
		{"TUPLE2 underflow", "N\x86.", ErrProtocol, "underflow"},
		{"TUPLE2 across MARK", "N(N\x86.", ErrProtocol, "underflow"},
		{"POP underflow", "0.", ErrProtocol, "underflow"},
		{"DUP underflow", "2.", ErrProtocol, "underflow"},
		{"MEMOIZE empty", "\x94.", ErrProtocol, "underflow"},
		{"BINGET missing", "h\x05.", ErrProtocol, "memo 5 is empty"},
		{"LONG_BINGET missing", "Nq\x00j\x01\x00\x00\x00.", ErrProtocol, "memo 1"},
		{"GET bad index", "gx\n.", ErrProtocol, "memo index"},
		{"SETITEMS odd", "}(NK\x01\x8c\x01au.", ErrProtocol, "odd"},
		{"DICT odd", "(Nd.", ErrProtocol, "odd"},
		{"unhashable dict key", "}]Ns.", ErrProtocol, "unhashable list"},
		{"unhashable set element", "\x8f(}\x90.", ErrProtocol, "unhashable dict"},
		{"unhashable frozenset element", "(\x8f\x91.", ErrProtocol, "unhashable set"},
		{"unhashable tuple key", "}]\x85Ns.", ErrProtocol, "unhashable tuple"},
		{"bytearray key", "}\x96\x00\x00\x00\x00\x00\x00\x00\x00Ns.", ErrProtocol, "unhashable bytearray"},
		{"invalid UTF-8", "\x8c\x01\xff.", ErrProtocol, "not UTF-8"},
		{"overlong UTF-8", "\x8c\x02\xc0\x80.", ErrProtocol, "not UTF-8"},
		{"truncated BININT", "J\x01\x02", ErrProtocol, "truncated"},
		{"truncated str", "\x8c\x05ab.", ErrProtocol, "truncated"},
		{"FRAME past the end", "\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00N.", ErrProtocol, "frame of 16 bytes, 2 left"},
		{"FRAME 2^64-1", "\x80\x04\x95\xff\xff\xff\xff\xff\xff\xff\xffN.", ErrProtocol, "frame of 18446744073709551615"},
		{"LONG4 negative", "\x8b\xff\xff\xff\xff.", ErrProtocol, "negative length"},
		{"INT text", "I12x\n.", ErrProtocol, "int"},
		{"INT no newline", "I12", ErrProtocol, "no end of line"},
		{"LONG text", "L--1L\n.", ErrProtocol, "int"},
		{"FLOAT text", "Fone\n.", ErrProtocol, "float"},
		{"UNICODE bad escape", "V\\u12\n.", ErrProtocol, "raw-unicode-escape"},
		{"UNICODE beyond U+10FFFF", "V\\U00110000\n.", ErrProtocol, "raw-unicode-escape"},
		{"latin1 beyond U+00FF", "\x80\x02c_codecs\nencode\n\x8c\x02\xc4\x80\x8c\x06latin1\x86R.", ErrProtocol, "U+0100"},
		{"Python 2 STRING", "S'a'\n.", ErrUnsupported, "Python 2 str"},
		{"Python 2 BINSTRING", "T\x01\x00\x00\x00a.", ErrUnsupported, "Python 2 str"},
		{"Python 2 SHORT_BINSTRING", "U\x01a.", ErrUnsupported, "Python 2 str"},
		{"NEXT_BUFFER", "\x80\x05\x97.", ErrUnsupported, "out-of-band"},
		{"READONLY_BUFFER", "\x80\x05\x98.", ErrUnsupported, "out-of-band"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var v any
			err := Unmarshal([]byte(c.pickle), &v)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Errorf("message %q lacks %q", err, c.msg)
			}
			if v != nil {
				t.Errorf("v = %#v after an error", v)
			}
		})
	}
}

// TestTruncated decodes every proper prefix of every fixture pickle: each
// must fail (a pickle ends with STOP), and none may panic.
func TestTruncated(t *testing.T) {
	n := 0
	for _, p := range fixturePickles(t) {
		for i := range len(p.data) {
			var v any
			if err := Unmarshal(p.data[:i], &v); err == nil {
				t.Fatalf("%s protocol %d: prefix of %d bytes decoded: %#v", p.Name, p.Protocol, i, v)
			}
			n++
		}
	}
	t.Logf("%d prefixes", n)
}

// TestPythonOpcodes covers decoding details Python's output exercises
// rarely: memo forms, POP, DUP, text opcodes, sparse memo indexes.
func TestPythonOpcodes(t *testing.T) {
	cases := []struct {
		name, pickle string
		want         any
	}{
		{"POP", "NK\x010.", nil},
		{"POP_MARK", "N(K\x01K\x021.", nil},
		{"POP of a MARK", "N(0.", nil},
		{"DUP", "]2a.", nil}, // a list appended to itself would be recursive: checked below
		{"DUP of an int", "K\x072\x86.", Tuple{int64(7), int64(7)}},
		{"PUT/GET", "K\x07p1\ng1\n\x86.", Tuple{int64(7), int64(7)}},
		{"BINPUT/BINGET", "K\x07q\x09h\x09\x86.", Tuple{int64(7), int64(7)}},
		{"LONG_BINPUT/GET", "K\x07r\x00\x00\x01\x00j\x00\x00\x01\x00\x86.", Tuple{int64(7), int64(7)}},
		{"MEMOIZE after sparse PUT", "K\x01q\x050K\x02\x940h\x01h\x05\x86.", Tuple{int64(2), int64(1)}},
		{"sparse then dense", "K\x01q\x010K\x00q\x000K\x02\x940h\x02h\x01h\x00\x87.", Tuple{int64(2), int64(1), int64(0)}},
		{"INT bools", "(I01\nI00\nI-5\nI+7\nI123456789012345678901\nt.", Tuple{true, false, int64(-5), int64(7), bigInt("123456789012345678901")}},
		{"LONG", "(L5L\nL-99999999999999999999L\nL0\nt.", Tuple{int64(5), bigInt("-99999999999999999999"), int64(0)}},
		{"FLOAT", "(F1.5\nFinf\nF-inf\nF1e999\nF1e-999\nt.", Tuple{1.5, math.Inf(1), math.Inf(-1), math.Inf(1), 0.0}},
		{"UNICODE escapes", "V\\u00e9\\U0001F600\\\\u0041\\x\n.", "é😀\\\\u0041\\x"},
		{"UNICODE latin-1 bytes", "V\xe9\xff\n.", "éÿ"},
		{"UNICODE surrogate", "V\\ud800\n.", "\xed\xa0\x80"},
		{"LONG1 empty", "\x8a\x00.", int64(0)},
		{"LONG1 -1", "\x8a\x01\xff.", int64(-1)},
		{"LONG1 int64 min", "\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x80.", int64(math.MinInt64)},
		{"LONG1 2^63", "\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x80\x00.", pow(2, 63)},
		{"LONG1 non-minimal", "\x8a\x0a\x05\x00\x00\x00\x00\x00\x00\x00\x00\x00.", int64(5)},
		{"LONG4", "\x8b\x02\x00\x00\x00\x00\x80.", int64(-32768)},
		{"BINUNICODE8", "\x8d\x02\x00\x00\x00\x00\x00\x00\x00hi.", "hi"},
		{"BINBYTES8", "\x8e\x01\x00\x00\x00\x00\x00\x00\x00\x00.", []byte{0}},
		{"frames in the middle", "\x80\x04\x95\x03\x00\x00\x00\x00\x00\x00\x00]K\x01\x95\x02\x00\x00\x00\x00\x00\x00\x00a.", []any{int64(1)}},
		{"LIST and DICT", "(K\x01K\x02l(\x8c\x01aK\x01d\x86.", Tuple{[]any{int64(1), int64(2)}, map[any]any{"a": int64(1)}}},
		{"set from tuple", "\x80\x02cbuiltins\nset\nK\x01K\x02\x86\x85R.", Set{int64(1), int64(2)}},
		{"frozenset from set", "\x80\x02cbuiltins\nfrozenset\n\x8f(K\x01\x90\x85R.", FrozenSet{int64(1)}},
		{"bytearray from str latin-1", "\x80\x02c__builtin__\nbytearray\n\x8c\x02\xc3\xa9\x8c\x07latin-1\x86R.", []byte{0xe9}},
		{"bytes()", "\x80\x02c__builtin__\nbytes\n)R.", []byte{}},
		{"memoized global reused", "\x80\x02(c__builtin__\nset\nq\x00)Rh\x00)Rt.", Tuple{Set{}, Set{}}},
		{"surrogate pair halves", "\x8c\x06\xed\xa0\xbd\xed\xb8\x80.", "\xed\xa0\xbd\xed\xb8\x80"},
		{"U+FFFD is valid", "\x8c\x03\xef\xbf\xbd.", "\ufffd"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var v any
			if err := Unmarshal([]byte(c.pickle), &v); err != nil {
				if c.name == "DUP" && errors.Is(err, ErrUnsupported) {
					return // the list contains itself
				}
				t.Fatal(err)
			}
			if !equalValues(v, c.want) {
				t.Errorf("got %#v, want %#v", v, c.want)
			}
		})
	}
}

// TestRecursive checks self-containing values: refused, not looped on.
func TestRecursive(t *testing.T) {
	cases := map[string]string{
		"list in itself":         "\x80\x04]\x94h\x00a.",
		"dict in itself":         "\x80\x04}\x94\x8c\x01ah\x00s.",
		"list via a tuple":       "\x80\x04]\x94h\x00\x85a.",
		"two lists":              "\x80\x04]\x94]\x94h\x00aa.",
		"list in itself via DUP": "\x80\x04]2a.",
	}
	for name, p := range cases {
		t.Run(name, func(t *testing.T) {
			var v any
			err := Unmarshal([]byte(p), &v)
			if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "recursive") {
				t.Errorf("into any: err = %v", err)
			}
			var l []any
			if err := Unmarshal([]byte(p), &l); !errors.Is(err, ErrUnsupported) {
				if _, ok := err.(*UnmarshalTypeError); !ok {
					t.Errorf("into []any: err = %v", err)
				}
			}
			type tree []tree
			var tr tree
			if err := Unmarshal([]byte(p), &tr); err == nil {
				t.Errorf("into a recursive type: no error")
			}
		})
	}
}

// TestShared checks that memo references stay shared, so that a pickle of
// exponential size when expanded decodes in linear time and memory.
func TestShared(t *testing.T) {
	// l0 = [1]; l(i+1) = [li, li]: 2^60 leaves if expanded.
	var p bytes.Buffer
	p.WriteString("\x80\x04]\x94K\x01a") // memo 0 = l0
	for i := range 60 {
		// memo i+1 = l(i+1) = [li, li]; leave only l(i+1) on the stack.
		fmt.Fprintf(&p, "]\x94(j%sj%se00j%s", le32(i), le32(i), le32(i+1))
	}
	p.WriteString(".")
	var v any
	if err := Unmarshal(p.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	// Shared in Go too.
	top := v.([]any)
	a, c := top[0].([]any), top[1].([]any)
	if &a[0] != &c[0] {
		t.Errorf("the two references are not the same slice")
	}
	// Re-encoding writes each list once, thanks to the memo.
	out, err := Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) > 2*p.Len() {
		t.Errorf("re-encoded in %d bytes from %d", len(out), p.Len())
	}
	var w any
	if err := Unmarshal(out, &w); err != nil {
		t.Fatal(err)
	}
	// Typed: a recursive slice type converts each shared node once.
	type tree []tree
	var tr tree
	if err := Unmarshal(p.Bytes(), &tr); err == nil {
		t.Fatal("the leaf 1 is not a tree: want an error")
	}
	q := bytes.ReplaceAll(p.Bytes(), []byte("]\x94K\x01a"), []byte("]\x94"))
	if err := Unmarshal(q, &tr); err != nil {
		t.Fatal(err)
	}
	if len(tr) != 2 || &tr[0][0] != &tr[1][0] {
		t.Errorf("typed conversion did not share")
	}
}

func le32(i int) string {
	return string([]byte{byte(i), byte(i >> 8), byte(i >> 16), byte(i >> 24)})
}

// TestLimits checks each limit, and that huge claimed lengths fail at once
// without allocating.
func TestLimits(t *testing.T) {
	claims := map[string]string{
		"BINUNICODE8 4 GiB":     "\x80\x04\x8d\x00\x00\x00\x00\x01\x00\x00\x00.",
		"BINUNICODE 4 GiB":      "\x80\x04X\xff\xff\xff\xff.",
		"BINBYTES8 2^63":        "\x80\x04\x8e\x00\x00\x00\x00\x00\x00\x00\x80.",
		"BINBYTES 4 GiB":        "\x80\x03B\xff\xff\xff\xff.",
		"BYTEARRAY8 2^64-1":     "\x80\x05\x96\xff\xff\xff\xff\xff\xff\xff\xff.",
		"LONG4 2 GiB":           "\x80\x02\x8b\xff\xff\xff\x7f.",
		"FRAME 2^64-1":          "\x80\x04\x95\xff\xff\xff\xff\xff\xff\xff\xffN.",
		"LONG_BINPUT 4G index":  "\x80\x04Nr\xff\xff\xff\xff.", // valid
		"LONG_BINGET 4G index":  "\x80\x04j\xff\xff\xff\xff.",
		"PUT 2^63 index":        "Np9223372036854775807\n.", // valid
		"SHORT_BINUNICODE 255":  "\x80\x04\x8c\xff.",
		"unterminated UNICODE":  "V" + strings.Repeat("a", 100),
		"UNICODE of a huge len": "V\\U0010ffff",
	}
	for name, p := range claims {
		t.Run(name, func(t *testing.T) {
			data := []byte(p)
			valid := strings.Contains(name, "PUT")
			var v any
			err := Unmarshal(data, &v)
			if !valid && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrProtocol) || valid && err != nil {
				t.Fatalf("err = %v", err)
			}
			for _, d := range []Decoder{{}, {MaxStringLen: math.MaxInt, MaxSize: math.MaxInt}} {
				var m0, m1 runtime.MemStats
				runtime.ReadMemStats(&m0)
				allocs := testing.AllocsPerRun(10, func() {
					var v any
					if err := d.Unmarshal(data, &v); (err == nil) != valid {
						t.Fatalf("err = %v", err)
					}
				})
				runtime.ReadMemStats(&m1)
				if allocs > 10 || m1.TotalAlloc-m0.TotalAlloc > 64<<10 {
					t.Errorf("%+v: %v allocations, %d bytes", d, allocs, m1.TotalAlloc-m0.TotalAlloc)
				}
			}
		})
	}

	// The default string limit refuses before looking at the data.
	var v any
	err := Unmarshal([]byte("\x80\x04\x8d\x00\x00\x00\x00\x01\x00\x00\x00."), &v)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "str of 4294967296 bytes, limit 16777216") {
		t.Errorf("4 GiB str: %v", err)
	}

	list := func(n int) []byte { // [None] * n
		return append(append([]byte("\x80\x04]("), bytes.Repeat([]byte("N"), n)...), "e."...)
	}
	nested := func(n int) []byte { // [[[...]]] n deep
		return append(append([]byte("\x80\x04"), bytes.Repeat([]byte("]"), n)...), append(bytes.Repeat([]byte("a"), n-1), '.')...)
	}
	limited := []struct {
		name  string
		d     Decoder
		ok    []byte
		large []byte
	}{
		{"MaxSize", Decoder{MaxSize: 15}, list(9), list(10)},
		{"MaxContainerLen list", Decoder{MaxContainerLen: 10}, list(10), list(11)},
		{"MaxContainerLen list by APPEND", Decoder{MaxContainerLen: 3}, []byte("]NaNaNa."), []byte("]NaNaNaNa.")},
		{"MaxContainerLen tuple", Decoder{MaxContainerLen: 3}, []byte("(NNNt."), []byte("(NNNNt.")},
		{"MaxContainerLen dict", Decoder{MaxContainerLen: 2}, []byte("}(K\x01NK\x02Nu."), []byte("}(K\x01NK\x02NK\x03Nu.")},
		{"MaxContainerLen set", Decoder{MaxContainerLen: 2}, []byte("\x8f(K\x01K\x02\x90."), []byte("\x8f(K\x01K\x02K\x03\x90.")},
		{"MaxContainerLen frozenset", Decoder{MaxContainerLen: 1}, []byte("(K\x01\x91."), []byte("(K\x01K\x02\x91.")},
		{"MaxContainerLen set()", Decoder{MaxContainerLen: 1}, []byte("cbuiltins\nset\n]K\x01a\x85R."), []byte("cbuiltins\nset\n](K\x01K\x02e\x85R.")},
		{"MaxContainerLen stack", Decoder{MaxContainerLen: 2}, []byte("(NNNNNN1N."), []byte("(NNNNNNN1N.")},
		{"MaxStringLen str", Decoder{MaxStringLen: 3}, []byte("\x8c\x03abc."), []byte("\x8c\x04abcd.")},
		{"MaxStringLen bytes", Decoder{MaxStringLen: 3}, []byte("C\x03abc."), []byte("C\x04abcd.")},
		{"MaxStringLen int", Decoder{MaxStringLen: 3}, []byte("\x8a\x03abc."), []byte("\x8a\x04abcd.")},
		{"MaxStringLen line", Decoder{MaxStringLen: 3}, []byte("Vabc\n."), []byte("Vabcd\n.")},
		{"MaxDepth", Decoder{MaxDepth: 5}, nested(5), nested(6)},
		{"MaxDepth default", Decoder{}, nested(1000), nested(1001)},
		{"MaxDepth MARKs", Decoder{MaxDepth: 3}, []byte("(((NNNttt."), []byte("((((NNNNtttt.")},
		{"int digits", Decoder{}, []byte("L" + strings.Repeat("9", 4300) + "\n."), []byte("L" + strings.Repeat("9", 4301) + "\n.")},
	}
	for _, c := range limited {
		t.Run(c.name, func(t *testing.T) {
			var v any
			if err := c.d.Unmarshal(c.ok, &v); err != nil {
				t.Errorf("at the limit: %v", err)
			}
			err := c.d.Unmarshal(c.large, &v)
			if !errors.Is(err, ErrTooLarge) {
				t.Errorf("over the limit: err = %v, want ErrTooLarge", err)
			}
		})
	}

	// A shared value counts at its deepest place: l = [[...]] 20 deep,
	// then [l, [[...[l]...]]] with l again 20 levels down.
	var sh bytes.Buffer
	sh.WriteString("\x80\x04]\x94") // memo 0: the outer list
	sh.Write(nested(20)[2 : 2+20])  // 20 EMPTY_LISTs
	sh.Write(bytes.Repeat([]byte("a"), 19))
	sh.WriteString("\x94a") // memo 1: l, appended to the outer list
	sh.Write(bytes.Repeat([]byte("]"), 20))
	sh.WriteString("h\x01a")
	sh.Write(bytes.Repeat([]byte("a"), 20))
	sh.WriteString(".")
	if err := (Decoder{MaxDepth: 41}).Unmarshal(sh.Bytes(), &v); err != nil {
		t.Errorf("shared, 41 deep, MaxDepth 41: %v", err)
	}
	for _, target := range []any{&v, new([]any), new([]any)} {
		if err := (Decoder{MaxDepth: 40}).Unmarshal(sh.Bytes(), target); !errors.Is(err, ErrTooLarge) {
			t.Errorf("shared, 41 deep, MaxDepth 40, into %T: %v", target, err)
		}
	}
	type tree []tree
	if err := (Decoder{MaxDepth: 40}).Unmarshal(sh.Bytes(), new(tree)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("shared, 41 deep, MaxDepth 40, into a tree: %v", err)
	}
	if err := (Decoder{MaxDepth: 41}).Unmarshal(sh.Bytes(), new(tree)); err != nil {
		t.Errorf("shared, 41 deep, MaxDepth 41, into a tree: %v", err)
	}

	// A deep nesting fails by limit, not by exhausting the stack, even
	// with the largest MaxDepth.
	deep := nested(200_000)
	err = Decoder{MaxDepth: math.MaxInt, MaxContainerLen: math.MaxInt}.Unmarshal(deep, &v)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "100000") {
		t.Errorf("200000 deep: %v", err)
	}
}

// TestMemoryBound checks the documented figure for what decoding
// allocates per input byte on the worst inputs that copy nothing, many
// empty containers: under 200 (the budget allows allocPerByte, 256).
func TestMemoryBound(t *testing.T) {
	const n = 1 << 18
	for _, item := range []string{"]", "}", ")", "\x8f", "N", "\x8c\x00", "K\x01", "(\x91"} {
		data := append([]byte("\x80\x04]("), bytes.Repeat([]byte(item), n)...)
		data = append(data, "e."...)
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		var v any
		if err := Unmarshal(data, &v); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&m1)
		perByte := float64(m1.TotalAlloc-m0.TotalAlloc) / float64(len(data))
		t.Logf("%q × %d: %.0f bytes allocated per input byte", item, n, perByte)
		if perByte > 200 {
			t.Errorf("%q: %.0f bytes per input byte, documented at most 200", item, perByte)
		}
	}
}

// TestUnmarshalTyped decodes into typed targets, and checks the errors.
func TestUnmarshalTyped(t *testing.T) {
	type item struct {
		Name string
		Qty  int8
	}
	type order struct {
		ID    uint   `pickle:"id"`
		Items []item `pickle:"items"`
	}
	enc := func(v any) []byte {
		b, err := Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	good := enc(map[string]any{"id": 9, "items": []any{map[string]any{"Name": "a", "Qty": 1}, map[string]any{"name": "b", "qty": -2}}})
	var o order
	if err := Unmarshal(good, &o); err != nil {
		t.Fatal(err)
	}
	if want := (order{9, []item{{"a", 1}, {"b", -2}}}); !reflect.DeepEqual(o, want) {
		t.Errorf("got %+v, want %+v", o, want)
	}

	errCases := []struct {
		name   string
		pickle []byte
		target any
		path   string
		value  string
		detail string
	}{
		{"str for int", enc(map[string]any{"id": 1, "items": []any{map[string]any{}, map[string]any{}, map[string]any{}, map[string]any{"Name": 5}}}),
			&order{}, ".items[3].Name", "int", ""},
		{"overflow", enc(map[string]any{"items": []any{map[string]any{"Qty": 300}}}), &order{}, ".items[0].Qty", "int", "300 overflows int8"},
		{"negative uint", enc(map[string]any{"id": -1}), &order{}, ".id", "int", "-1 overflows uint"},
		{"list for struct", enc([]int{1}), &order{}, "", "list", ""},
		{"None for int", enc(nil), new(int), "", "None", ""},
		{"map value", enc(map[string]any{"a": "x"}), new(map[string]int), `["a"]`, "str", ""},
		{"map key", enc(map[string]int{"a": 1}), new(map[int]int), "[key]", "str", ""},
		{"set for map[string]int", enc(Set{"a"}), new(map[string]int), "", "set", ""},
		{"array length", enc(Tuple{1, 2}), new([3]int), "", "tuple", "2 elements for 3"},
		{"bytes length", enc([]byte{1, 2}), new([3]byte), "", "bytes", "2 bytes for 3"},
		{"big for int64", enc(pow(2, 64)), new(int64), "", "int", "overflows int64"},
		{"float for int", enc(1.5), new(int), "", "float", ""},
		{"bool for int", enc(true), new(int), "", "bool", ""},
		{"int for bool", enc(1), new(bool), "", "int", ""},
		{"str for Stringer", enc("x"), new(fmt.Stringer), "", "str", ""},
		{"int key for struct", enc(map[int]int{1: 1}), &order{}, "[1]", "int", "keys must be str"},
		{"float32 overflow", enc(1e300), new(float32), "", "float", "overflows float32"},
		{"dict for slice", enc(map[string]int{}), new([]int), "", "dict", ""},
		{"nested in any", enc([]any{[]any{1}}), new([][]string), "[0][0]", "int", ""},
		{"list for Dict", enc([]any{}), new(Dict), "", "list", ""},
		{"dict for time.Time", enc(map[string]int{"wall": 1}), new(time.Time), "", "dict", "no exported fields"},
		{"set for map[int]int", enc(Set{1}), new(map[int]int), "", "set", ""},
	}
	for _, c := range errCases {
		t.Run(c.name, func(t *testing.T) {
			err := Unmarshal(c.pickle, c.target)
			var te *UnmarshalTypeError
			if !errors.As(err, &te) {
				t.Fatalf("err = %v (%T), want *UnmarshalTypeError", err, err)
			}
			if te.Path != c.path || te.Value != c.value || !strings.Contains(te.Detail, c.detail) {
				t.Errorf("got path %q value %q detail %q, want %q %q %q", te.Path, te.Value, te.Detail, c.path, c.value, c.detail)
			}
			if !strings.Contains(err.Error(), "into Go value of type") {
				t.Errorf("message %q", err)
			}
		})
	}

	// Unhashable-in-Go keys into an interface-keyed map.
	if err := Unmarshal(enc(Dict{{Tuple{1}, 1}}), new(map[any]int)); !errors.Is(err, ErrUnsupported) {
		t.Errorf("tuple key into map[any]int: %v", err)
	}
	// Not a pointer.
	if err := Unmarshal(enc(1), 1); !errors.Is(err, ErrUnsupported) {
		t.Errorf("non-pointer: %v", err)
	}
	if err := Unmarshal(enc(1), (*int)(nil)); !errors.Is(err, ErrUnsupported) {
		t.Errorf("nil pointer: %v", err)
	}
}

// TestUnmarshalConversions covers the conversions into typed targets.
func TestUnmarshalConversions(t *testing.T) {
	type inner struct{ A, B int }
	type withPtr struct {
		P  *inner
		Q  *inner
		S  []int
		M  map[string]int
		I  any
		BI *big.Int
		BV big.Int
	}
	type embeds struct {
		inner
		C int `pickle:"c"`
	}
	cases := []struct {
		name   string
		v      any // encoded with Marshal
		target any // a pointer to a zero value
		want   any // what *target must be
	}{
		{"int kinds", 42, new(uint16), uint16(42)},
		{"int to float", 3, new(float64), 3.0},
		{"big to float", pow(2, 70), new(float64), math.Pow(2, 70)},
		{"big to uint64", uint64(math.MaxUint64), new(uint64), uint64(math.MaxUint64)},
		{"float32", 0.5, new(float32), float32(0.5)},
		{"inf to float32", math.Inf(1), new(float32), float32(math.Inf(1))},
		{"bytes to string", []byte("hi"), new(string), "hi"},
		{"str to bytes", "hi", new([]byte), []byte("hi")},
		{"bytes to array", []byte{1, 2}, new([2]byte), [2]byte{1, 2}},
		{"tuple to array", Tuple{1, 2}, new([2]int), [2]int{1, 2}},
		{"set to slice", Set{"a"}, new([]string), []string{"a"}},
		{"set to map", Set{"a", "b"}, new(map[string]struct{}), map[string]struct{}{"a": {}, "b": {}}},
		{"frozenset to map bool", FrozenSet{1}, new(map[int]bool), map[int]bool{1: true}},
		{"tuple keys", Dict{{Tuple{1, 2}, "x"}}, new(map[[2]int]string), map[[2]int]string{{1, 2}: "x"}},
		{"dict to Dict", map[string]int{"b": 2, "a": 1}, new(Dict), Dict{{"a", int64(1)}, {"b", int64(2)}}},
		{"nil to slice and map", map[string]any{"S": nil, "M": nil, "P": nil}, new(withPtr), withPtr{}},
		{"pointers and any", map[string]any{"P": map[string]int{"A": 1}, "I": Tuple{1}, "BI": 5, "BV": pow(2, 65)}, new(withPtr),
			withPtr{P: &inner{A: 1}, I: Tuple{int64(1)}, BI: big.NewInt(5), BV: *pow(2, 65)}},
		{"embedded", map[string]int{"A": 1, "b": 2, "c": 3, "unknown": 4}, new(embeds), embeds{inner{1, 2}, 3}},
		{"None to pointer", nil, new(*int), (*int)(nil)},
		{"None to any", nil, new(any), nil},
		{"list of any", []any{1, "a"}, new([]any), []any{int64(1), "a"}},
		{"named types", []string{"x"}, new(Tuple), Tuple{"x"}},
		{"[]MyByte", []byte{1, 2}, new([]myByte), []myByte{1, 2}},
		{"[2]MyByte", []byte{1, 2}, new([2]myByte), [2]myByte{1, 2}},
		{"str to []MyByte", "é", new([]myByte), []myByte{0xc3, 0xa9}},
		{"named []byte", []byte{1}, new(myBytes), myBytes{1}},
		{"set to map of a named empty struct", Set{1}, new(map[int]void), map[int]void{1: {}}},
		{"list of ints to []byte", []int{1, 255}, new([]byte), []byte{1, 255}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := Marshal(c.v)
			if err != nil {
				t.Fatal(err)
			}
			if err := Unmarshal(b, c.target); err != nil {
				t.Fatal(err)
			}
			got := reflect.ValueOf(c.target).Elem().Interface()
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %#v, want %#v", got, c.want)
			}
		})
	}

	// Shared objects stay shared in typed targets too.
	shared := &inner{1, 2}
	b, err := Marshal(map[string]any{"P": shared, "Q": shared})
	if err != nil {
		t.Fatal(err)
	}
	var w withPtr
	if err := Unmarshal(b, &w); err != nil {
		t.Fatal(err)
	}
	if w.P == nil || w.P != w.Q {
		t.Errorf("P and Q are not the same pointer: %p %p", w.P, w.Q)
	}
	// Unmarshal replaces the target.
	m := map[string]int{"old": 1}
	if err := Unmarshal(mustMarshal(t, map[string]int{"new": 2}), &m); err != nil || len(m) != 1 || m["new"] != 2 {
		t.Errorf("got %v, %v", m, err)
	}
}

func mustMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type (
	myByte  byte
	myBytes []byte
	void    struct{}
)

// TestNaturalDict checks the choice between map[any]any and Dict.
func TestNaturalDict(t *testing.T) {
	for _, c := range []struct {
		v    any
		dict bool
	}{
		{map[string]int{"a": 1}, false},
		{map[any]any{nil: 1, true: 2, 3: 4, 1.5: 5, "s": 6}, false},
		{Dict{{Tuple{1}, 1}}, true},
		{Dict{{[]byte("b"), 1}}, true},
		{Dict{{FrozenSet{}, 1}}, true},
		{Dict{{pow(2, 64), 1}}, true},
		{Dict{{"a", 1}, {Tuple{}, 2}}, true},
	} {
		var v any
		if err := Unmarshal(mustMarshal(t, c.v), &v); err != nil {
			t.Fatal(err)
		}
		_, isDict := v.(Dict)
		_, isMap := v.(map[any]any)
		if isDict != c.dict || isMap == c.dict {
			t.Errorf("%#v decoded as %T", c.v, v)
		}
	}
}
