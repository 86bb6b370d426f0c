package pickle

import (
	"errors"
	"math/big"
	"reflect"
	"testing"
)

// FuzzUnmarshal decodes arbitrary bytes under small limits. It checks
// that decoding never panics, classifies every error, never returns a
// value beyond the limits, and that a value it returns re-encodes, and
// decodes again, to an equal value. The decoder allows a few classes
// (fuzzObjects), so that Objects are fuzzed too. The seeds are the
// pickles Python wrote (testdata/python.jsonl, every protocol), the
// recorded traffic, a few crafted unsafe ones and a few objects.
func FuzzUnmarshal(f *testing.F) {
	for _, p := range fixturePickles(f) {
		f.Add(p.data)
	}
	for _, c := range capturePickles(f) {
		f.Add(c.data)
	}
	for _, s := range []string{
		"cos\nsystem\n(S'echo hi'\ntR.",
		"\x80\x04\x8c\x02os\x94\x8c\x06system\x94\x93\x94\x8c\x02hi\x94\x85\x94R\x94.",
		"\x80\x02c__builtin__\nset\n]K\x01a\x85R.",
		"\x80\x04]\x94h\x00a.",
		"(I01\nL12L\nF1.5\nV\\u00e9\nd.",
	} {
		f.Add([]byte(s))
	}
	for _, s := range objectSeeds {
		f.Add(mustHex(f, s))
	}
	d := Decoder{MaxSize: 1 << 16, MaxContainerLen: 64, MaxStringLen: 256, MaxDepth: 32, Objects: fuzzObjects}
	// Re-encoding adds MEMOIZE where the input may have none, and
	// rewrites text opcodes: allow it room.
	again := Decoder{MaxSize: 1 << 20, MaxContainerLen: 64, MaxStringLen: 256, MaxDepth: 32, Objects: fuzzObjects}
	e := Encoder{MaxSize: 1 << 20, MaxDepth: 64}
	f.Fuzz(func(t *testing.T, data []byte) {
		var v any
		err := d.Unmarshal(data, &v)
		if err != nil {
			if !errors.Is(err, ErrUnsafe) && !errors.Is(err, ErrProtocol) &&
				!errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error %v (%T) wraps no sentinel", err, err)
			}
			if v != nil {
				t.Fatalf("value %#v with error %v", v, err)
			}
			return
		}
		checkLimits(t, v, d)
		b, err := e.Marshal(v)
		if err != nil {
			t.Fatalf("re-encoding %s: %v", abbrev(v), err)
		}
		var w any
		if err := again.Unmarshal(b, &w); err != nil {
			t.Fatalf("decoding the re-encoding %x of %s: %v", b, abbrev(v), err)
		}
		if !equalValues(v, w) {
			t.Fatalf("round trip changed the value\n got %s\nwant %s", abbrev(w), abbrev(v))
		}
		// The typed path on the same data must not panic either.
		var typed struct {
			A []map[string]int
			B *[2]string
		}
		_ = d.Unmarshal(data, &typed)
		var l [][]byte
		_ = d.Unmarshal(data, &l)
	})
}

// fuzzObjects are the classes FuzzUnmarshal's decoder allows.
var fuzzObjects = map[Class]bool{
	{"_queue", "Empty"}:                   true,
	{"builtins", "KeyError"}:              true,
	{"builtins", "slice"}:                 true,
	{"multiprocessing.managers", "Token"}: true,
}

// objectSeeds are pickles of objects, in hex: what Python 3.11 writes for
// ('#ERROR', _queue.Empty()), KeyError('k') with an attribute,
// slice(1, 3, None), ('#PROXY', (('__next__',), Token(...))), and at
// protocol 2 KeyError('k') (as exceptions.KeyError); then crafted ones:
// two BUILDs, a NEWOBJ of a class not allowed, an allowed class as a
// value.
var objectSeeds = []string{
	"80049522000000000000008c06234552524f52948c065f7175657565948c05456d70747994939429529486942e",
	"8004952e000000000000008c086275696c74696e73948c084b65794572726f729493948c016b94859452947d948c046e6f7465944b0173622e",
	"8004951f000000000000008c086275696c74696e73948c05736c6963659493944b014b034e879452942e",
	"8004956b000000000000008c062350524f5859948c085f5f6e6578745f5f9485948c186d756c746970726f63657373696e672e6d616e6167657273948c05546f6b656e9493942981948c084974657261746f72948c093132372e302e302e31944d50c386948c0637663030616194879462869486942e",
	"800263657863657074696f6e730a4b65794572726f720a710058010000006b71018571025271032e",
	"80048c086275696c74696e738c084b65794572726f729329817d627d622e",
	"80048c086275696c74696e738c07736574617474729329812e",
	"80048c065f71756575658c05456d70747993852e",
}

// checkLimits walks a decoded value (each shared slice or map once) and
// fails if it exceeds the decoder's limits.
func checkLimits(t *testing.T, v any, d Decoder) {
	t.Helper()
	heights := map[identity]int{}
	var height func(v any) int // 0 for a scalar, 1 for an empty container
	height = func(v any) int {
		id, shared := sharedID(v)
		if h, ok := heights[id]; shared && ok {
			return h
		}
		var items []any
		switch x := v.(type) {
		case string:
			if len(x) > d.MaxStringLen {
				t.Fatalf("str of %d bytes, limit %d", len(x), d.MaxStringLen)
			}
			return 0
		case []byte:
			if len(x) > d.MaxStringLen {
				t.Fatalf("bytes of %d bytes, limit %d", len(x), d.MaxStringLen)
			}
			return 0
		case *big.Int:
			if len(x.Bytes()) > d.MaxStringLen {
				t.Fatalf("int of %d bytes, limit %d", len(x.Bytes()), d.MaxStringLen)
			}
			return 0
		case nil, bool, int64, float64:
			return 0
		case []any:
			items = x
		case Tuple:
			items = x
		case Set:
			items = x
		case FrozenSet:
			items = x
		case Dict:
			for _, it := range x {
				items = append(items, it.Key, it.Value)
			}
		case Object:
			if !d.Objects[x.Class()] {
				t.Fatalf("an Object of %s, not in the Decoder's Objects", x.Class())
			}
			// One level for the object, as for a container: its
			// arguments are a tuple one level below.
			items = []any{x.Args, x.State}
		case map[any]any:
			for k, v := range x {
				items = append(items, k, v)
			}
		default:
			t.Fatalf("unexpected Go type %T", v)
		}
		n := len(items)
		if reflect.TypeOf(v).Kind() == reflect.Map || reflect.TypeOf(v) == reflect.TypeFor[Dict]() {
			n /= 2
		}
		if _, ok := v.(Object); ok {
			n = 0
		}
		if n > d.MaxContainerLen {
			t.Fatalf("%T of %d elements, limit %d", v, n, d.MaxContainerLen)
		}
		h := 1
		for _, x := range items {
			h = max(h, 1+height(x))
		}
		if shared {
			heights[id] = h
		}
		return h
	}
	if h := height(v); h > d.MaxDepth {
		t.Fatalf("nested %d deep, limit %d", h, d.MaxDepth)
	}
}
