package pickle

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
)

// batchSizes are the container lengths around the batch boundaries of
// APPENDS, SETITEMS and ADDITEMS.
var batchSizes = []int{0, 1, 2, 999, 1000, 1001, 1999, 2000, 2001}

// A batchCase is a container of n ints (for a dict, n items i: i) of
// one kind.
type batchCase struct {
	name string
	v    any
}

func batchCases() []batchCase {
	var cs []batchCase
	for _, n := range batchSizes {
		list := make([]int, n)
		dict := make(map[int]int, n)
		var set Set
		var fset FrozenSet
		var tuple Tuple
		strs := make(Dict, n) // values that fill frames
		for i := range n {
			list[i] = i
			dict[i] = i
			set = append(set, i)
			fset = append(fset, i)
			tuple = append(tuple, i)
			strs[i] = DictItem{i, fmt.Sprintf("%040d", i)}
		}
		if set == nil {
			set, fset, tuple = Set{}, FrozenSet{}, Tuple{}
		}
		cs = append(cs,
			batchCase{fmt.Sprintf("list %d", n), list},
			batchCase{fmt.Sprintf("dict %d", n), dict},
			batchCase{fmt.Sprintf("set %d", n), set},
			batchCase{fmt.Sprintf("frozenset %d", n), fset},
			batchCase{fmt.Sprintf("tuple %d", n), tuple},
			batchCase{fmt.Sprintf("dict of strs %d", n), strs},
		)
	}
	return cs
}

// opLen is the length of the opcode and argument at the start of b, for
// the opcodes of a protocol-4 pickle of ints, strs and containers.
func opLen(t *testing.T, b []byte) int {
	switch b[0] {
	case opProto, opBinInt1, opBinGet, opBinPut:
		return 2
	case opBinInt2:
		return 3
	case opBinInt, opLongBinGet, opLongBinPut:
		return 5
	case opFrame, opBinFloat:
		return 9
	case opShortBinUnicode, opShortBinBytes, opLong1:
		return 2 + int(b[1])
	case opBinUnicode, opBinBytes:
		return 5 + int(binary.LittleEndian.Uint32(b[1:]))
	case opMark, opStop, opEmptyList, opEmptyDict, opEmptySet, opEmptyTuple, opMemoize, opAppend, opAppends,
		opSetItem, opSetItems, opAddItems, opFrozenSet, opTuple, opTuple1, opTuple2, opTuple3, opNone:
		return 1
	}
	t.Fatalf("opLen: unexpected opcode 0x%02x", b[0])
	return 0
}

// structure summarizes a pickle's containers: the names of the container
// opcodes, with runs of other opcodes as "xN" (their number), and
// without FRAMEs, PROTO and STOP. "list 1001" is
// "EMPTY_LIST MARK x1000 APPENDS MARK x1 APPENDS", counting MEMOIZE.
func structure(t *testing.T, b []byte) string {
	var out []string
	run := 0
	for i := 0; i < len(b); i += opLen(t, b[i:]) {
		switch op := b[i]; op {
		case opFrame, opProto, opStop:
		case opMark, opEmptyList, opEmptyDict, opEmptySet, opEmptyTuple, opAppend, opAppends,
			opSetItem, opSetItems, opAddItems, opFrozenSet, opTuple, opTuple1, opTuple2, opTuple3:
			if run > 0 {
				out = append(out, fmt.Sprintf("x%d", run))
				run = 0
			}
			out = append(out, opNames[op])
		default:
			run++
		}
	}
	if run > 0 {
		out = append(out, fmt.Sprintf("x%d", run))
	}
	return strings.Join(out, " ")
}

// withoutFrames returns pickle b without its FRAME opcodes.
func withoutFrames(t *testing.T, b []byte) []byte {
	var out []byte
	for i := 0; i < len(b); {
		n := opLen(t, b[i:])
		if b[i] != opFrame {
			out = append(out, b[i:i+n]...)
		}
		i += n
	}
	return out
}

// TestMarshalBatches checks how Marshal splits lists, dicts and sets
// into batches against what CPython's C pickler (pickle.dumps) writes, as
// recorded from Python 3.6 to 3.13 (all alike; TestEncodeBatchesPython
// checks the live interpreters). pickle.py's _Pickler differs: it
// writes APPEND or SETITEM for a last batch of one item, and no empty
// last batch.
func TestMarshalBatches(t *testing.T) {
	// batches describes the batches of n items: MARK xK many, for K the
	// values of each batch (stride per item) and its MEMOIZEs (memo per
	// item).
	batches := func(n, stride int, many string, afterFull bool) string {
		var out []string
		for start := 0; ; start += batchSize {
			k := min(batchSize, n-start)
			if k > 0 {
				out = append(out, fmt.Sprintf("MARK x%d %s", k*stride, many))
			} else {
				out = append(out, "MARK "+many)
			}
			if start+k == n && (!afterFull || k < batchSize) {
				return strings.Join(out, " ")
			}
		}
	}
	want := func(kind string, n int) string {
		switch {
		case n == 0 && kind == "list":
			return "EMPTY_LIST x1"
		case n == 0 && kind == "dict":
			return "EMPTY_DICT x1"
		case n == 0 && kind == "set":
			return "EMPTY_SET x1"
		case n == 1 && kind == "list":
			return "EMPTY_LIST x2 APPEND"
		case n == 1 && kind == "dict":
			return "EMPTY_DICT x3 SETITEM"
		case kind == "list":
			return "EMPTY_LIST x1 " + batches(n, 1, "APPENDS", false)
		case kind == "dict":
			return "EMPTY_DICT x1 " + batches(n, 2, "SETITEMS", true)
		case kind == "set":
			return "EMPTY_SET x1 " + batches(n, 1, "ADDITEMS", true)
		case kind == "frozenset" && n == 0:
			return "MARK FROZENSET x1"
		case kind == "frozenset":
			return fmt.Sprintf("MARK x%d FROZENSET x1", n)
		case kind == "tuple" && n == 0:
			return "EMPTY_TUPLE"
		case kind == "tuple" && n <= 3:
			return fmt.Sprintf("x%d %s x1", n, opNames[opTuple1+byte(n-1)])
		case kind == "tuple":
			return fmt.Sprintf("MARK x%d TUPLE x1", n)
		}
		return "?"
	}
	// Spelled out, as Python 3.13 writes them (with the MEMOIZEs).
	spelled := map[string]string{
		"list 1001": "EMPTY_LIST x1 MARK x1000 APPENDS MARK x1 APPENDS",
		"list 2000": "EMPTY_LIST x1 MARK x1000 APPENDS MARK x1000 APPENDS",
		"dict 1000": "EMPTY_DICT x1 MARK x2000 SETITEMS MARK SETITEMS",
		"dict 1001": "EMPTY_DICT x1 MARK x2000 SETITEMS MARK x2 SETITEMS",
		"set 1":     "EMPTY_SET x1 MARK x1 ADDITEMS",
		"set 1000":  "EMPTY_SET x1 MARK x1000 ADDITEMS MARK ADDITEMS",
		"set 2001":  "EMPTY_SET x1 MARK x1000 ADDITEMS MARK x1000 ADDITEMS MARK x1 ADDITEMS",
	}
	for _, c := range batchCases() {
		kind, ns, _ := strings.Cut(c.name, " ")
		if strings.HasPrefix(ns, "of strs") {
			continue
		}
		var n int
		fmt.Sscan(ns, &n)
		w := want(kind, n)
		if s, ok := spelled[c.name]; ok && s != w {
			t.Fatalf("%s: the test's rule gives %q, Python %q", c.name, w, s)
		}
		b, err := Marshal(c.v)
		if err != nil {
			t.Fatal(err)
		}
		// Ints below 256 are one BININT1 each; every container but a
		// tuple is memoized once.
		if got := structure(t, b); got != w {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, w)
		}
	}
}

// TestEncodeBatchesPython has every Python found re-pickle Go's pickles
// of containers around the batch boundaries: pickle.dumps(pickle.loads(b),
// 4) must be b, byte for byte from Python 3.7 (3.6 frames differently, so
// there FRAMEs are left out of the comparison).
func TestEncodeBatchesPython(t *testing.T) {
	cases := batchCases()
	names := make([]string, len(cases))
	values := make([]any, len(cases))
	for i, c := range cases {
		names[i], values[i] = c.name, c.v
	}
	encoded, input := loadsInput(t, names, values)
	var agree, differ []string
	for _, py := range pythons(t) {
		mismatches := 0
		t.Run(py.version, func(t *testing.T) {
			for i, r := range pythonLoads(t, py, input, names) {
				if r.Error != "" {
					t.Fatalf("%s: Python: %s", names[i], r.Error)
				}
				got, want := encoded[i], mustHex(t, r.Redump)
				if !atLeast(py.version, 3, 7) {
					got, want = withoutFrames(t, got), withoutFrames(t, want)
				}
				if !bytes.Equal(got, want) {
					mismatches++
					t.Errorf("%s: Go's pickle differs from Python's\n  go %s\n  py %s", names[i],
						structure(t, got), structure(t, want))
				}
			}
		})
		if mismatches == 0 {
			agree = append(agree, py.version)
		} else {
			differ = append(differ, py.version)
		}
	}
	if differ == nil {
		differ = []string{"none"}
	}
	t.Logf("%d containers; Go's batches are Python's in: %s; differ in: %s", len(cases),
		strings.Join(agree, ", "), strings.Join(differ, ", "))
}
