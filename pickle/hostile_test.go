package pickle

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A hostile is a pickle of up to DefaultMaxSize bytes crafted to cost the
// decoder as much time or memory as it can, and the target it is decoded
// into (nil: an *any).
type hostile struct {
	name    string
	data    func() []byte // built on demand: they take 16 MiB each
	target  func() any
	objects bool // decoded with the manager's classes allowed (managerObjects)
}

// decoder is the Decoder h is decoded with: the default limits.
func (h hostile) decoder() Decoder {
	if h.objects {
		return Decoder{Objects: managerObjects}
	}
	return Decoder{}
}

// fill returns head, then unit repeated as often as fits in
// DefaultMaxSize bytes with tail, then tail.
func fill(head, unit, tail string) []byte {
	n := (DefaultMaxSize - len(head) - len(tail)) / len(unit)
	var b bytes.Buffer
	b.Grow(len(head) + n*len(unit) + len(tail))
	b.WriteString(head)
	for range n {
		b.WriteString(unit)
	}
	b.WriteString(tail)
	return b.Bytes()
}

// fillf is fill with a unit that depends on its index i.
func fillf(head string, unit func(i int) string, tail string) []byte {
	var b bytes.Buffer
	b.WriteString(head)
	for i := 0; ; i++ {
		u := unit(i)
		if b.Len()+len(u)+len(tail) > DefaultMaxSize {
			break
		}
		b.WriteString(u)
	}
	b.WriteString(tail)
	return b.Bytes()
}

// chain returns open repeated n times, then close n times, so that the
// whole fits in DefaultMaxSize bytes: a nesting built on the stack.
func chain(head, open, close, tail string) []byte {
	n := (DefaultMaxSize - len(head) - len(tail)) / (len(open) + len(close))
	return []byte(head + strings.Repeat(open, n) + strings.Repeat(close, n) + tail)
}

// many returns a list of lists, each of at most perList copies of unit,
// filling DefaultMaxSize bytes: the most items of one kind the limits
// let a pickle hold.
func many(unit string, perList int) []byte {
	var b bytes.Buffer
	b.WriteString("\x80\x04](")
	inner := "](" + strings.Repeat(unit, perList) + "e"
	for b.Len()+len(inner)+2 <= DefaultMaxSize {
		b.WriteString(inner)
	}
	// A last, shorter list.
	if room := (DefaultMaxSize - b.Len() - 5) / len(unit); room > 0 {
		b.WriteString("](" + strings.Repeat(unit, room) + "e")
	}
	b.WriteString("e.")
	return b.Bytes()
}

// refs returns a list of two million memo references to the one object
// x: as many as parsing affords, so that converting them is what costs.
func refs(x string) []byte {
	return []byte("\x80\x04" + x + "\x940(" + strings.Repeat("h\x00", 2<<20) + "l.")
}

func le64(i uint64) string {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], i)
	return string(b[:])
}

// hostileInputs are the worst pickles we could think of, each of up to
// DefaultMaxSize bytes. Each must be decoded or refused within the
// bounds TestHostile asserts.
func hostileInputs() []hostile {
	const perList = 1 << 20 // elements of each inner list of many()
	big8 := func() string { return strings.Repeat("\xff", 8<<20) }
	bigLong := func() string { return "\x8b" + le32(1<<20) + strings.Repeat("\x01", 1<<20) }
	bigStr := func() string { return "X" + le32(1<<20) + strings.Repeat("s", 1<<20) }
	bigBytes := func() string { return "B" + le32(1<<20) + strings.Repeat("s", 1<<20) }
	// A dict of 1.4 million items, each with the same 12 MiB str key
	// (U+0130, which ToLower makes longer).
	bigKeys := func() []byte {
		return fill("\x80\x04X"+le32(12<<20)+strings.Repeat("\u0130", 6<<20)+"\x940}",
			"("+strings.Repeat("h\x00N", 1000)+"u", ".")
	}
	hs := []hostile{
		// Depth, built on the stack: a list nested eight million deep.
		{name: "EMPTY_LIST chain", data: func() []byte { return chain("\x80\x04]", "]", "a", ".") }},
		{name: "EMPTY_DICT chain", data: func() []byte { return chain("\x80\x04}", "N}", "s", ".") }},
		{name: "LIST chain", data: func() []byte { return chain("\x80\x04", "(", "l", ".") }},
		{name: "TUPLE1 chain", data: func() []byte { return fill("\x80\x04N", "\x85", ".") }},
		{name: "TUPLE3 chain", data: func() []byte { return fill("\x80\x04N", "NN\x87", ".") }},
		{name: "FROZENSET chain", data: func() []byte {
			return fillf("\x80\x04(\x91",
				func(i int) string { return "\x940(j" + le32(i) + "\x91" }, ".")
		}},
		// Depth, built through the memo with a short stack: innermost
		// first (each container complete when placed) ...
		{name: "memo list chain innermost first", data: func() []byte {
			return fillf("\x80\x04]\x94",
				func(i int) string { return "0]j" + le32(i) + "a\x94" }, ".")
		}},
		// ... and outermost first: a container grows after it was placed.
		{name: "memo list chain outermost first", data: func() []byte {
			return fillf("\x80\x04]\x94\x32",
				func(i int) string { return "]\x94a0j" + le32(i+1) }, "0.")
		}},
		{name: "memo dict chain outermost first", data: func() []byte {
			return fillf("\x80\x04}\x94\x32",
				func(i int) string { return "N}\x94s0j" + le32(i+1) }, "0.")
		}},
		{name: "DUP list into itself", data: func() []byte { return fill("\x80\x04]", "2a", ".") }},

		// Volume: the most small objects the limits allow.
		{name: "empty lists", data: func() []byte { return many("]", perList) }},
		{name: "empty dicts", data: func() []byte { return many("}", perList) }},
		{name: "empty sets", data: func() []byte { return many("\x8f", perList) }},
		{name: "empty tuples", data: func() []byte { return many(")", perList) }},
		{name: "empty tuples by MARK", data: func() []byte { return many("(t", perList) }},
		{name: "empty lists by MARK", data: func() []byte { return many("(l", perList) }},
		{name: "empty dicts by MARK", data: func() []byte { return many("(d", perList) }},
		{name: "empty frozensets", data: func() []byte { return many("(\x91", perList) }},
		{name: "empty lists memoized", data: func() []byte { return many("]\x94", perList) }},
		{name: "empty dicts memoized", data: func() []byte { return many("}\x94", perList) }},
		{name: "one-item dicts", data: func() []byte { return many("}NNs", perList) }},
		{name: "one-item lists", data: func() []byte { return many("]Na", perList) }},
		{name: "one-item sets", data: func() []byte { return many("\x8f(N\x90", perList) }},
		{name: "small ints", data: func() []byte { return many("K\x01", perList) }},
		{name: "boxed ints", data: func() []byte { return many("M\x00\x01", perList) }},
		{name: "BININT", data: func() []byte { return many("J\x00\x00\x00\x80", perList) }},
		{name: "floats", data: func() []byte { return many("G\x3f\xf1\x00\x00\x00\x00\x00\x00", perList) }},
		{name: "Nones", data: func() []byte { return many("N", perList) }},
		{name: "empty strs", data: func() []byte { return many("\x8c\x00", perList) }},
		{name: "one-byte strs", data: func() []byte { return many("\x8c\x01a", perList) }},
		{name: "one-byte bytes", data: func() []byte { return many("C\x01a", perList) }},
		{name: "empty bytearrays", data: func() []byte { return many("\x96"+le64(0), perList) }},
		{name: "LONG1 ints", data: func() []byte { return many("\x8a\x09\x01\x02\x03\x04\x05\x06\x07\x08\x09", perList) }},
		{name: "DUP of a list", data: func() []byte { return fill("\x80\x04](]", "2", "e.") }},
		{name: "DUP of None in one MARK", data: func() []byte { return fill("\x80\x04](N", "2", "e.") }},
		{name: "Nones in one MARK", data: func() []byte { return fill("\x80\x04(", "N", "t.") }},
		{name: "small ints in one tuple", data: func() []byte { return fill("\x80\x04(", "K\x01", "t.") }},
		{name: "memo GET of a list", data: func() []byte { return fill("\x80\x04](K\x01K\x02e\x940(", "h\x00", "l.") }},

		// The memo itself.
		{name: "MEMOIZE", data: func() []byte { return fill("\x80\x04N", "\x94", ".") }},
		{name: "LONG_BINPUT scattered", data: func() []byte {
			return fillf("\x80\x04N",
				func(i int) string { return "r" + le32(int(uint32(i)*2654435761|1<<31)) }, ".")
		}},
		{name: "PUT scattered", data: func() []byte {
			return fillf("N",
				func(i int) string { return "p" + strconv.FormatUint(uint64(i)*2654435761+1<<40, 10) + "\n" }, ".")
		}},

		// Copies through the memo: one big object, copied again and
		// again by the constructors Python uses for older protocols.
		{name: "set(GET list) repeated", data: func() []byte {
			return fill("\x80\x04]("+strings.Repeat("K\x01", 1<<20)+"e\x940cbuiltins\nset\n\x940",
				"h\x01h\x00\x85R0", "N.")
		}},
		{name: "bytearray(GET bytes) repeated", data: func() []byte {
			return fill("\x80\x04B"+le32(8<<20)+big8()+"\x940cbuiltins\nbytearray\n\x940",
				"h\x01h\x00\x85R0", "N.")
		}},
		{name: "bytes(GET bytearray) repeated", data: func() []byte {
			return fill("\x80\x05\x96"+le64(8<<20)+big8()+"\x940cbuiltins\nbytes\n\x940",
				"h\x01h\x00\x85R0", "N.")
		}},
		{name: "_codecs.encode(GET str) repeated", data: func() []byte {
			return fill("\x80\x04X"+le32(4<<20)+strings.Repeat("\xc3\xbf", 2<<20)+
				"\x940\x8c\x06latin1\x940c_codecs\nencode\n\x940", "h\x02h\x00h\x01\x86R0", "N.")
		}},
		{name: "bytearray(GET str, latin1) repeated", data: func() []byte {
			return fill("\x80\x04X"+le32(4<<20)+strings.Repeat("a", 4<<20)+
				"\x940\x8c\x06latin1\x940cbuiltins\nbytearray\n\x940", "h\x02h\x00h\x01\x86R0", "N.")
		}},

		// Work without allocation: hashing and text.
		{name: "dict with one big str key repeated", data: bigKeys},
		{name: "the same into a map", data: bigKeys, target: func() any { return new(map[string]*int) }},
		{name: "the same into a struct", data: bigKeys, target: func() any { return new(Point) }},
		{name: "set of one big str repeated into a map", target: func() any { return new(map[string]bool) },
			data: func() []byte {
				return fill("\x80\x04X"+le32(12<<20)+strings.Repeat("k", 12<<20)+"\x940\x8f",
					"("+strings.Repeat("h\x00", 1000)+"\x90", ".")
			}},
		{name: "LONG of 4300 digits", data: func() []byte { return fill("\x80\x04N", "L"+strings.Repeat("7", 4300)+"L\n0", ".") }},
		{name: "INT of 4300 digits", data: func() []byte { return fill("\x80\x04N", "I-"+strings.Repeat("9", 4299)+"\n0", ".") }},
		{name: "FLOAT lines", data: func() []byte { return fill("\x80\x04N", "F1.7976931348623157e308\n0", ".") }},
		{name: "UNICODE escapes", data: func() []byte { return fill("\x80\x04(", "V\\U0010ffff\\u1234\xff\n", "t.") }},
		{name: "one UNICODE of high bytes", data: func() []byte { return fill("\x80\x04V", "\xff", "\n.") }},
		{name: "one BINUNICODE8", data: func() []byte { return fill("\x80\x04\x8d"+le64(DefaultMaxSize-12), "a", ".") }},
		{name: "one LONG4", data: func() []byte { return fill("\x80\x04\x8b"+le32(DefaultMaxSize-8), "\x01", ".") }},
		{name: "FRAME spam", data: func() []byte { return fill("\x80\x04", "\x95"+le64(0), "N.") }},
		{name: "MARK POP_MARK spam", data: func() []byte { return fill("\x80\x04", "(N1", "N.") }},
		{name: "MARK POP spam", data: func() []byte { return fill("\x80\x04", "(0", "N.") }},

		// Typed targets that copy per reference.
		{name: "big int into []big.Int", target: func() any { return new([]big.Int) }, data: func() []byte { return refs(bigLong()) }},
		{name: "int of 1016 bits into []float64", target: func() any { return new([]float64) },
			data: func() []byte { return refs("\x8a\x7f" + strings.Repeat("\x01", 127)) }},
		{name: "big int into []int8", target: func() any { return new([]int8) },
			data: func() []byte { return fill("\x80\x04(\x8b"+le32(DefaultMaxSize-10), "\x01", "l.") }},
		{name: "big str into [][]byte", target: func() any { return new([][]byte) }, data: func() []byte { return refs(bigStr()) }},
		{name: "big bytes into []string", target: func() any { return new([]string) }, data: func() []byte { return refs(bigBytes()) }},
		{name: "big bytes into [][]myByte", target: func() any { return new([][]myByte) }, data: func() []byte { return refs(bigBytes()) }},
		{name: "empty dicts into big structs", target: func() any { return new([]everything) },
			data: func() []byte { return []byte("\x80\x04](" + strings.Repeat("}", 1<<19) + "e.") }},
		{name: "empty lists into [][][]any", target: func() any { return new([][][]any) }, data: func() []byte { return many("]", perList) }},

		// Objects, of an allowed class: as many as fit, each as cheap as
		// a pickle can make one ...
		{name: "objects of no arguments", objects: true, data: func() []byte { return fill(keyErrorClass+"](", "h\x00)R", "e.") }},
		{name: "NEWOBJ objects with a state", objects: true, data: func() []byte {
			return fill(keyErrorClass+"](", "h\x00)\x81Nb", "e.")
		}},
		// ... nested, through the arguments or the state ...
		{name: "object chain", objects: true, data: func() []byte {
			n := (DefaultMaxSize - len(keyErrorClass) - 2) / 4
			return []byte(keyErrorClass + strings.Repeat("h\x00", n) + "N" + strings.Repeat("\x85R", n) + ".")
		}},
		{name: "object chain through the state", objects: true, data: func() []byte {
			// Each object is given the one before as its state.
			return fillf(keyErrorClass+"h\x00)R",
				func(i int) string { return "r" + le32(i+1) + "0h\x00)Rj" + le32(i+1) + "b" }, ".")
		}},
		// ... or sharing one big tuple of arguments or one big state.
		{name: "objects of one big tuple", objects: true, data: func() []byte {
			return fill(keyErrorClass+"("+strings.Repeat("K\x01", 1<<20)+"t\x940](", "h\x00h\x01R", "e.")
		}},
		{name: "objects of one big state", objects: true, data: func() []byte {
			return fill(keyErrorClass+"("+strings.Repeat("K\x01", 1<<20)+"l\x940](", "h\x00)Rh\x01b", "e.")
		}},
	}
	return hs
}

// maxHostileAlloc is the most that decoding any pickle of up to
// DefaultMaxSize bytes may allocate under the default limits.
const maxHostileAlloc = 256 << 20

// maxHostileTime bounds the CPU time of one hostile decoding, loosely:
// the target is a second on a 2-core machine; the race detector slows it
// down several times, and the collector's threads add theirs
// (BenchmarkHostile measures). CPU time, not wall time, so that a busy
// machine does not fail it; what it catches is work that grows faster
// than the pickle, which takes minutes.
const maxHostileTime = 10 * time.Second

// raceEnabled reports a build with the race detector, whose allocator
// does not pack small objects (a boxed int takes 16 bytes, not 8).
var raceEnabled = false

// slack is how much more than charged decoding may allocate: 1 MiB for
// the runtime's own, and a quarter more with the race detector.
func slack(charged uint64) uint64 {
	if raceEnabled {
		return 1<<20 + charged/4
	}
	return 1 << 20
}

// keyErrorClass starts a pickle with builtins.KeyError as memo 0, off the
// stack.
const keyErrorClass = "\x80\x04\x8c\x08builtins\x8c\x08KeyError\x93\x940"

// decodeMeasured decodes data into target under the limits of d, and
// returns what it allocated (TotalAlloc, so garbage counts too), what it
// charged to its budget, and the CPU time it took (the process's, the
// collector's included: wall time would measure the machine's load).
func decodeMeasured(data []byte, target any, d Decoder) (alloc, charged uint64, elapsed time.Duration, err error) {
	lim := d.withDefaults()
	b := newBudget(lim, len(data))
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	start := cpuTime()
	err = lim.unmarshal(data, reflect.ValueOf(target), b)
	elapsed = cpuTime() - start
	runtime.ReadMemStats(&m1)
	return m1.TotalAlloc - m0.TotalAlloc, uint64(b.max - b.left), elapsed, err
}

// TestHostile decodes the hostile pickles: each, of up to DefaultMaxSize
// bytes, must be decoded or refused allocating at most 256 MiB, and no
// more than the budget was charged (so that the budget's accounting
// misses nothing). It logs the figures; the package documentation quotes
// the worst.
func TestHostile(t *testing.T) {
	var worstAlloc, worstTime string
	var maxAlloc uint64
	var maxTime time.Duration
	for _, h := range hostileInputs() {
		t.Run(h.name, func(t *testing.T) {
			data := h.data()
			if len(data) > DefaultMaxSize {
				t.Fatalf("%d bytes, more than DefaultMaxSize", len(data))
			}
			var target any = new(any)
			if h.target != nil {
				target = h.target()
			}
			alloc, charged, elapsed, err := decodeMeasured(data, target, h.decoder())
			var te *UnmarshalTypeError
			if err != nil && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrUnsupported) && !errors.As(err, &te) {
				t.Errorf("err = %v, want nil, ErrTooLarge, ErrUnsupported or a type error", err)
			}
			t.Logf("%.2f s, %.1f MiB allocated, %.1f MiB charged: %v", elapsed.Seconds(),
				float64(alloc)/(1<<20), float64(charged)/(1<<20), abbrevS(fmt.Sprint(err)))
			if alloc > maxHostileAlloc {
				t.Errorf("allocated %.1f MiB, more than %d MiB", float64(alloc)/(1<<20), maxHostileAlloc>>20)
			}
			if alloc > charged+slack(charged) {
				t.Errorf("allocated %d bytes, charged %d: the budget misses allocations", alloc, charged)
			}
			if elapsed > maxHostileTime {
				t.Errorf("took %v, more than %v", elapsed, maxHostileTime)
			}
			if alloc > maxAlloc {
				maxAlloc, worstAlloc = alloc, h.name
			}
			if elapsed > maxTime {
				maxTime, worstTime = elapsed, h.name
			}
		})
	}
	t.Logf("most allocated: %.1f MiB (%s); longest: %.2f s (%s)",
		float64(maxAlloc)/(1<<20), worstAlloc, maxTime.Seconds(), worstTime)
}

// BenchmarkHostile times the decoding of every hostile pickle
// (go test -run XXX -bench Hostile -benchtime 3x).
func BenchmarkHostile(b *testing.B) {
	for _, h := range hostileInputs() {
		data := h.data()
		b.Run(strings.ReplaceAll(h.name, " ", "_"), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				var target any = new(any)
				if h.target != nil {
					target = h.target()
				}
				_ = h.decoder().Unmarshal(data, target)
			}
		})
	}
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
