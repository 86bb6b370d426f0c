package pickle

import (
	"math"
	"math/big"
	"math/bits"
	"reflect"
	"strconv"
)

// The allocation budget.
//
// Every limit of a Decoder bounds one thing; together they did not bound
// the whole: a pickle of DefaultMaxSize bytes of empty dicts made the
// decoder allocate 1.6 GiB, and one that called set() on the same big list
// again and again (a memo reference costs two bytes, the copy megabytes)
// had no bound at all. So decoding one pickle draws on one budget of
// bytes, charged before each allocation, by the parser and by the
// conversion to Go values alike: every container, every slot of the
// stack, the memo and the items, every str, bytes and int, every Go map,
// slice and pointer made for the result. Work that allocates nothing but
// grows with what the memo lets a pickle repeat is charged as if it
// allocated: the bytes of a str hashed as a map key, and an array copied
// from a shared value. Exceeding the budget is ErrTooLarge.
//
// The budget is min(MaxAlloc, allocPerByte × len(pickle) + allocBase).
// The first term bounds a big pickle; the second a small one, whose
// cost can exceed its size many times only through copies. No pickle
// that copies nothing costs more than about 180 bytes per byte (empty
// dicts), so only MaxAlloc refuses those.
//
// The budget counts what is allocated, not what is live: the arrays a
// growing slice leaves behind count too, as they do in the runtime's
// TotalAlloc, which the tests compare with the budget.

const (
	allocPerByte = 256
	allocBase    = 1 << 20
)

// Sizes in bytes of what the decoder allocates on 64-bit platforms (less
// on others).
const (
	ifaceSize  = 16 // an any: a slot of the stack, the memo or a container
	nodeSize   = 32 // a node (checked by TestNodeSize)
	wordSize   = 8  // a boxed int64 or float64, a big.Word
	sliceBox   = 24 // a slice header boxed in an any
	stringBox  = 16 // a string header boxed in an any
	globalSize = 48 // a global (checked by TestNodeSize)
	cacheEntry = 64 // an entry of a map keyed by node, amortized

	// What every decoding allocates: the parser, the converter, an
	// error.
	decodeOverhead = 1 << 10

	// An entry of the sparse memo, amortized: its map's growth makes
	// random inserts slow too, which this bounds.
	sparseEntry = 256
)

// allocSize is what allocating n bytes costs once Go's allocator rounds
// it up: to a size class (up to a fifth more) below 32 KiB, to 8 KiB
// pages above.
func allocSize(n int) int {
	if n <= 0 {
		return 0
	}
	return n + min(n/4, 8<<10) + 16
}

// mapCost is what a Go map of n entries of slot bytes each (key and
// value) costs, or -1 if that overflows an int: Go's maps keep groups of
// 8 slots and a control word, at most 7/8 full, in tables of powers of
// two.
func mapCost(n int, slot uintptr) int {
	const header = 64
	slots := 8
	if n > 8 {
		slots = 1 << bits.Len(uint(n*8/7))
	}
	if uint64(slot+1) > uint64(math.MaxInt/3/slots) {
		return -1
	}
	if n == 0 {
		return header
	}
	if n <= 8 {
		return header + 8 + 8*int(slot)
	}
	return header + slots*int(slot+1)*3/2
}

// bigCost is what a big.Int of n bytes costs.
func bigCost(n int) int { return 2*allocSize(n) + 64 }

// boxCost is what boxing an int or float in an any costs: Go boxes
// values below 256 without allocating.
func boxCost(bits uint64) int {
	if bits < 256 {
		return 0
	}
	return wordSize
}

// A budget is what one decoding may still allocate, in bytes.
type budget struct {
	left int // -1 once exceeded
	max  int
}

func newBudget(lim Decoder, size int) *budget {
	b := budgetFor(lim, size)
	return &b
}

// budgetFor is the budget of a pickle of size bytes under lim.
func budgetFor(lim Decoder, size int) budget {
	m := min(lim.MaxAlloc, allocBase+allocPerByte*min(size, (math.MaxInt-allocBase)/allocPerByte))
	return budget{left: m, max: m}
}

// spend charges n bytes and reports whether they were within the
// budget. A negative n is a cost that overflowed an int (see costOf).
func (b *budget) spend(n int) bool {
	if n < 0 || n > b.left {
		b.left = -1
		return false
	}
	b.left -= n
	return true
}

// costOf is n values of size bytes each, or -1 if that overflows an int:
// a Go type may be bigger than any pickle.
func costOf(n int, size uintptr) int {
	if size > 0 && uint64(n) > uint64(math.MaxInt)/uint64(size) {
		return -1
	}
	return allocSize(n * int(size))
}

// hashCost is the work of hashing v as a Go map key: the bytes of its
// strings (other kinds hash in time fixed by the Go type).
func hashCost(v reflect.Value) int {
	switch v.Kind() {
	case reflect.String:
		return v.Len()
	case reflect.Interface:
		if !v.IsNil() {
			return hashCost(v.Elem())
		}
	case reflect.Array:
		n := 0
		for i := range v.Len() {
			n += hashCost(v.Index(i))
		}
		return n
	case reflect.Struct:
		n := 0
		for i := range v.NumField() {
			n += hashCost(v.Field(i))
		}
		return n
	}
	return 0
}

// intString formats an int for an error message: in full up to 256
// bits, else by its size, as formatting a huge int takes long.
func intString(v *big.Int) string {
	if v.BitLen() <= 256 {
		return v.String()
	}
	return "int of " + strconv.Itoa(v.BitLen()) + " bits"
}
