package pickle

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Default limits of a zero Decoder and Encoder.
const (
	// DefaultMaxSize bounds a pickle's length in bytes, in both
	// directions.
	DefaultMaxSize = 16 << 20
	// DefaultMaxContainerLen bounds the number of elements (for a dict,
	// items) of one list, tuple, dict, set or frozenset.
	DefaultMaxContainerLen = 1 << 22
	// DefaultMaxStringLen bounds the length in bytes of one str, bytes,
	// bytearray or int.
	DefaultMaxStringLen = DefaultMaxSize
	// DefaultMaxDepth bounds the nesting of containers, like Python's
	// recursion limit bounds what pickle.dumps can write.
	DefaultMaxDepth = 1000
	// DefaultMaxAlloc bounds what decoding one pickle allocates, the
	// parse and the Go values together: with the runtime's own, it keeps
	// decoding any pickle of up to DefaultMaxSize bytes under 256 MiB.
	DefaultMaxAlloc = 192 << 20
)

const (
	// maxDepthCap caps MaxDepth: the conversion to Go values recurses once
	// per level, and a goroutine's stack is finite.
	maxDepthCap = 100_000
	// maxIntDigits is Python's sys.int_info.default_max_str_digits: the
	// most decimal digits Python itself parses in the text opcodes INT and
	// LONG (and converting more takes quadratic time).
	maxIntDigits = 4300
)

// A Decoder decodes pickles under limits. A field ≤ 0 means its default
// (DefaultMaxSize, ...); MaxDepth is capped at 100000. A Decoder is safe
// for concurrent use by multiple goroutines.
//
// Every length a pickle claims (a string's, a frame's) is checked against
// the limits and against the bytes actually present before anything is
// allocated for it, so a short pickle cannot make the decoder allocate
// much. And everything decoding allocates, the parse and the Go values,
// is charged to one budget before it is allocated: at most MaxAlloc
// bytes, and at most 256 bytes per byte of the pickle plus 1 MiB.
// Typical data needs 5 to 30 bytes per byte, a pickle of nothing but
// empty dicts up to about 180 (Go maps are bigger than Python's dicts),
// so that only a pickle that makes the decoder copy one object many
// times (set() or bytearray() of the same memo entry again and again) or
// hash one big str many times reaches the second bound; a pickle of more
// than a few MiB of small containers reaches MaxAlloc. With the
// defaults, decoding any pickle takes under 256 MiB and a second (see the
// package documentation for figures).
//
// The nesting depth is checked as containers are built, so a deep pickle
// fails at the first container deeper than MaxDepth; the conversion to Go
// values checks it again, for containers that grew after they were placed
// in another.
//
// Objects lists the classes whose instances a pickle may carry, as
// [Object] values (see the package documentation): nil, the default,
// allows none. The map must not be modified while the Decoder is in use.
type Decoder struct {
	MaxSize         int // of the whole pickle, in bytes
	MaxContainerLen int // elements of one list, tuple, set or frozenset; items of one dict
	MaxStringLen    int // bytes of one str, bytes, bytearray or int
	MaxDepth        int // nesting of containers and objects, and open MARKs
	MaxAlloc        int // bytes allocated to decode one pickle, Go values included

	Objects map[Class]bool // classes a pickle may build Objects of: none if nil
}

func (d Decoder) withDefaults() Decoder {
	if d.MaxSize <= 0 {
		d.MaxSize = DefaultMaxSize
	}
	if d.MaxContainerLen <= 0 {
		d.MaxContainerLen = DefaultMaxContainerLen
	}
	if d.MaxStringLen <= 0 {
		d.MaxStringLen = DefaultMaxStringLen
	}
	if d.MaxDepth <= 0 {
		d.MaxDepth = DefaultMaxDepth
	}
	d.MaxDepth = min(d.MaxDepth, maxDepthCap)
	if d.MaxAlloc <= 0 {
		d.MaxAlloc = DefaultMaxAlloc
	}
	return d
}

// kind is the Python type of a container node.
type kind uint8

const (
	kList kind = iota + 1
	kTuple
	kDict
	kSet
	kFrozenSet
	kObject // an Object: see object.go
)

var kindNames = [...]string{kList: "list", kTuple: "tuple", kDict: "dict", kSet: "set", kFrozenSet: "frozenset", kObject: "object"}

// A node is a container under construction, and after STOP a vertex of
// the decoded object graph. The memo and other containers refer to the
// same *node, so a list that grows after it was memoized (EMPTY_LIST,
// MEMOIZE, APPENDS) is seen whole by every reference, as in Python.
type node struct {
	items []any // elements; for a dict, key0, value0, key1, value1, ...
	// height is 1 + the greatest height of the items when they were
	// added (0 for a scalar, so 1 for an empty container), at most
	// MaxDepth, or MaxDepth+1 for a tuple: the arguments of set(l) and
	// frozenset(l), (l,), lie one level above the set they make. It is
	// exact for what Python writes, where a container is complete before
	// it is placed in another; a container that grows after it was placed
	// leaves its holders' heights short. The conversion to Go values
	// checks the depth again, exactly.
	height uint32
	// refs counts the places that hold the node (containers, the
	// result), saturating. Every cycle passes through a node with refs ≥ 2,
	// so only those need cycle checks and conversion caches.
	refs     uint8
	kind     kind
	hashable bool // Python-hashable: a frozenset, a tuple of hashables, an object
	newObj   bool // an object built by NEWOBJ
}

// byteArray is a decoded Python bytearray; it becomes []byte.
type byteArray []byte

// global is an allowlisted constructor pushed by GLOBAL or STACK_GLOBAL:
// one of the pure-data constructors, or a class of Decoder.Objects
// (object set). Only REDUCE (and NEWOBJ, for a class) may consume it;
// anywhere else it is ErrUnsafe.
type global struct {
	module, name string
	object       bool
}

// parser is the pickle machine: a stack, a stack of marks (positions in
// the stack), and the memo. It never recurses.
type parser struct {
	lim    Decoder
	budget *budget
	data   []byte
	pos    int // next byte to read
	off    int // offset of the current opcode
	op     byte
	proto  int // the protocol PROTO declared; 0 if none
	stack  []any
	marks  []int
	memo   memo
	// stackPaid and memoPaid are the capacities of stack and memo.dense
	// charged to the budget in this parse (see growCharged).
	stackPaid, memoPaid int

	emptyTuple *node

	slab *nodeSlab      // the first nodes (see decState)
	strs map[string]any // short strs seen, boxed (see decState)
}

// parse runs the pickle machine over data and returns the value at STOP:
// nil, bool, int64, *big.Int, float64, string, []byte, byteArray or *node.
// It charges what it allocates to b. p keeps what it pooled (see
// decState); the nodes it returns are valid until p is reset.
func (p *parser) parse(data []byte, lim Decoder, b *budget) (any, error) {
	*p = parser{lim: lim, budget: b, data: data, stack: p.stack, marks: p.marks, memo: memo{dense: p.memo.dense},
		slab: p.slab, strs: p.strs}
	if len(data) > lim.MaxSize {
		return nil, &OpError{Detail: fmt.Sprintf("pickle of %d bytes, limit %d", len(data), lim.MaxSize), Err: ErrTooLarge}
	}
	for {
		if p.pos >= len(p.data) {
			return nil, &OpError{Offset: p.pos, Detail: "no STOP before the end", Err: ErrProtocol}
		}
		p.off, p.op = p.pos, p.data[p.pos]
		p.pos++
		if p.op == opStop {
			return p.stop()
		}
		if err := p.step(); err != nil {
			return nil, err
		}
	}
}

// A decState is what decoding one pickle needs, the parser and the
// converter, kept between calls in decStates: small pickles (a manager's
// requests and replies) would otherwise spend much of their time
// allocating it, growing the parser's stack and memo, and making their
// nodes and short strings. Every value is copied out of the stack and the
// memo into the node that holds it, and no decoded value refers to a node
// (the conversion makes Go values of them), so nothing decoded refers to
// what is pooled. The budget still charges everything as if it were
// allocated in this call, so that what a pickle may cost does not depend
// on what the pool held.
type decState struct {
	b budget
	p parser
	c converter
}

var decStates = sync.Pool{New: func() any {
	return &decState{p: parser{slab: new(nodeSlab), strs: make(map[string]any)}}
}}

// nodeSlab holds the first nodes of a parse: a small pickle makes a few.
type nodeSlab struct {
	nodes [16]node
	used  int
}

// Short strings seen by a pooled parser are kept, boxed, so that the keys
// and method names a program sends again and again are allocated once.
const (
	maxCachedStr  = 32 // bytes
	maxCachedStrs = 64
)

// free resets st and returns it to decStates, unless its slices grew
// large.
func (st *decState) free() {
	p := &st.p
	const keep = 256
	if cap(p.stack) > keep || cap(p.marks) > keep || cap(p.memo.dense) > keep || cap(st.c.path) > keep {
		return
	}
	clear(p.stack[:cap(p.stack)])
	clear(p.memo.dense[:cap(p.memo.dense)])
	clear(p.slab.nodes[:p.slab.used])
	p.slab.used = 0
	clear(st.c.path[:cap(st.c.path)])
	*p = parser{stack: p.stack[:0], marks: p.marks[:0], memo: memo{dense: p.memo.dense[:0]}, slab: p.slab, strs: p.strs}
	st.c = converter{path: st.c.path[:0]}
	st.b = budget{}
	decStates.Put(st)
}

func (p *parser) fail(err error, format string, args ...any) error {
	name := opNames[p.op]
	if name == "" {
		name = fmt.Sprintf("opcode 0x%02x", p.op)
	}
	return &OpError{Op: name, Offset: p.off, Detail: fmt.Sprintf(format, args...), Err: err}
}

func (p *parser) stop() (any, error) {
	if len(p.marks) > 0 {
		return nil, p.fail(ErrProtocol, "%d MARKs left open", len(p.marks))
	}
	if len(p.stack) != 1 {
		return nil, p.fail(ErrProtocol, "%d values on the stack, want 1", len(p.stack))
	}
	if p.pos != len(p.data) {
		return nil, p.fail(ErrProtocol, "%d bytes after STOP", len(p.data)-p.pos)
	}
	v := p.stack[0]
	if err := p.place(v); err != nil {
		return nil, err
	}
	return v, nil
}

// step executes the opcode p.op, whose argument starts at p.pos.
func (p *parser) step() error {
	switch p.op {
	case opProto:
		v, err := p.uint(1)
		if err != nil {
			return err
		}
		if v > highestProtocol {
			return p.fail(ErrProtocol, "protocol %d", v)
		}
		p.proto = int(v)
	case opFrame:
		// The decoder holds the whole pickle, so a frame needs no buffer:
		// only check that it lies within the data, as Python does.
		n, err := p.uint(8)
		if err != nil {
			return err
		}
		if n > uint64(len(p.data)-p.pos) {
			return p.fail(ErrProtocol, "frame of %d bytes, %d left", n, len(p.data)-p.pos)
		}

	// Marks and the stack.
	case opMark:
		if len(p.marks) >= p.lim.MaxDepth {
			return p.fail(ErrTooLarge, "more than %d open MARKs", p.lim.MaxDepth)
		}
		p.marks = append(p.marks, len(p.stack))
	case opPop:
		if len(p.stack) > p.fence() {
			p.stack = p.stack[:len(p.stack)-1]
		} else if len(p.marks) > 0 {
			p.marks = p.marks[:len(p.marks)-1]
		} else {
			return p.fail(ErrProtocol, "stack underflow")
		}
	case opPopMark:
		if _, err := p.popMark(); err != nil {
			return err
		}
	case opDup:
		v, err := p.top()
		if err != nil {
			return err
		}
		return p.push(v)

	// Scalars.
	case opNone:
		return p.push(nil)
	case opNewTrue:
		return p.push(true)
	case opNewFalse:
		return p.push(false)
	case opBinInt1, opBinInt2:
		v, err := p.uint(width(p.op))
		if err != nil {
			return err
		}
		return p.pushInt(int64(v))
	case opBinInt:
		v, err := p.uint(4)
		if err != nil {
			return err
		}
		return p.pushInt(int64(int32(uint32(v))))
	case opLong1, opLong4:
		n, err := p.uint(width(p.op))
		if err != nil {
			return err
		}
		if p.op == opLong4 && int32(uint32(n)) < 0 {
			return p.fail(ErrProtocol, "negative length %d", int32(uint32(n)))
		}
		b, err := p.bytes(n, "int")
		if err != nil {
			return err
		}
		if err := p.spend(bigCost(len(b))); err != nil {
			return err
		}
		return p.push(decodeLong(b))
	case opInt:
		line, err := p.line()
		if err != nil {
			return err
		}
		switch string(line) {
		case "00":
			return p.push(false)
		case "01":
			return p.push(true)
		}
		v, err := p.decimal(line)
		if err != nil {
			return err
		}
		return p.push(v)
	case opLong:
		line, err := p.line()
		if err != nil {
			return err
		}
		if n := len(line); n > 0 && line[n-1] == 'L' {
			line = line[:n-1]
		}
		v, err := p.decimal(line)
		if err != nil {
			return err
		}
		return p.push(v)
	case opBinFloat:
		b, err := p.read(8)
		if err != nil {
			return err
		}
		return p.pushFloat(math.Float64frombits(binary.BigEndian.Uint64(b)))
	case opFloat:
		line, err := p.line()
		if err != nil {
			return err
		}
		if err := p.spend(allocSize(len(line))); err != nil {
			return err
		}
		f, err := strconv.ParseFloat(string(line), 64)
		if errors.Is(err, strconv.ErrSyntax) { // out of range gives ±Inf or 0, as in Python
			return p.fail(ErrProtocol, "float %q", truncateBytes(line))
		}
		return p.pushFloat(f)

	// Strings.
	case opShortBinUnicode, opBinUnicode, opBinUnicode8:
		n, err := p.uint(width(p.op))
		if err != nil {
			return err
		}
		b, err := p.bytes(n, "str")
		if err != nil {
			return err
		}
		if err := p.spend(allocSize(len(b)) + stringBox); err != nil {
			return err
		}
		if len(b) <= maxCachedStr {
			if v, ok := p.strs[string(b)]; ok {
				return p.push(v)
			}
		}
		s := string(b)
		if !validWTF8(s) {
			return p.fail(ErrProtocol, "str is not UTF-8")
		}
		if len(b) > maxCachedStr {
			return p.push(s)
		}
		if len(p.strs) >= maxCachedStrs {
			clear(p.strs)
		}
		v := any(s)
		p.strs[s] = v
		return p.push(v)
	case opUnicode:
		line, err := p.line()
		if err != nil {
			return err
		}
		// rawUnicodeEscape's buffer, then the str: at most twice the line.
		if err := p.spend(2*allocSize(2*len(line)) + stringBox); err != nil {
			return err
		}
		s, ok := rawUnicodeEscape(line)
		if !ok {
			return p.fail(ErrProtocol, "bad raw-unicode-escape %q", truncateBytes(line))
		}
		if len(s) > p.lim.MaxStringLen { // bytes 0x80-0xff take two in UTF-8
			return p.fail(ErrTooLarge, "str of %d bytes, limit %d", len(s), p.lim.MaxStringLen)
		}
		return p.push(s)
	case opShortBinBytes, opBinBytes, opBinBytes8, opByteArray8:
		n, err := p.uint(width(p.op))
		if err != nil {
			return err
		}
		what := "bytes"
		if p.op == opByteArray8 {
			what = "bytearray"
		}
		b, err := p.bytes(n, what)
		if err != nil {
			return err
		}
		if err := p.spend(allocSize(len(b)) + sliceBox); err != nil {
			return err
		}
		if p.op == opByteArray8 {
			return p.push(byteArray(slices.Clone(b)))
		}
		return p.push(append([]byte{}, b...))

	// Containers.
	case opEmptyTuple:
		if p.emptyTuple == nil { // immutable, so one serves, as in Python
			t, err := p.newNode(kTuple)
			if err != nil {
				return err
			}
			p.emptyTuple = t
		}
		return p.push(p.emptyTuple)
	case opTuple1, opTuple2, opTuple3:
		n := int(p.op-opTuple1) + 1
		if len(p.stack)-p.fence() < n {
			return p.fail(ErrProtocol, "stack underflow")
		}
		items := p.stack[len(p.stack)-n:]
		p.stack = p.stack[:len(p.stack)-n]
		return p.pushTuple(items)
	case opTuple:
		items, err := p.popMark()
		if err != nil {
			return err
		}
		return p.pushTuple(items)
	case opEmptyList:
		return p.pushNew(kList)
	case opList:
		items, err := p.popMark()
		if err != nil {
			return err
		}
		return p.pushContainer(kList, items)
	case opAppend, opAppends:
		return p.extend(kList)
	case opEmptyDict:
		return p.pushNew(kDict)
	case opDict:
		items, err := p.popMark()
		if err != nil {
			return err
		}
		if len(items)%2 != 0 {
			return p.fail(ErrProtocol, "odd number of items")
		}
		return p.pushContainer(kDict, items)
	case opSetItem, opSetItems:
		return p.extend(kDict)
	case opEmptySet:
		return p.pushNew(kSet)
	case opAddItems:
		return p.extend(kSet)
	case opFrozenSet:
		items, err := p.popMark()
		if err != nil {
			return err
		}
		return p.pushContainer(kFrozenSet, items)

	// The memo.
	case opMemoize:
		v, err := p.top()
		if err != nil {
			return err
		}
		return p.memoPut(uint64(p.memo.len()), v)
	case opPut, opBinPut, opLongBinPut:
		i, err := p.memoIndex()
		if err != nil {
			return err
		}
		v, err := p.top()
		if err != nil {
			return err
		}
		return p.memoPut(i, v)
	case opGet, opBinGet, opLongBinGet:
		i, err := p.memoIndex()
		if err != nil {
			return err
		}
		v, ok := p.memo.get(i)
		if !ok {
			return p.fail(ErrProtocol, "memo %d is empty", i)
		}
		return p.push(v)

	// Constructors: only the allowlisted pure-data ones, interpreted here.
	case opGlobal:
		module, err := p.line()
		if err != nil {
			return err
		}
		name, err := p.line()
		if err != nil {
			return err
		}
		if err := p.spend(allocSize(len(module)) + allocSize(len(name))); err != nil {
			return err
		}
		return p.pushGlobal(string(module), string(name))
	case opStackGlobal:
		name, err1 := p.pop()
		module, err2 := p.pop()
		if err := firstErr(err1, err2); err != nil {
			return err
		}
		m, ok1 := module.(string)
		n, ok2 := name.(string)
		if !ok1 || !ok2 {
			return p.fail(ErrUnsafe, "module and name are %s and %s, not str", pyType(module), pyType(name))
		}
		return p.pushGlobal(m, n)
	case opReduce:
		return p.reduce()
	case opNewObj:
		return p.newObj()
	case opBuild:
		return p.build()

	case opInst, opObj, opNewObjEx, opExt1, opExt2, opExt4, opPersID, opBinPersID:
		return p.fail(ErrUnsafe, "builds or loads an object")
	case opNextBuffer, opReadonlyBuffer:
		return p.fail(ErrUnsupported, "out-of-band buffers")
	case opString, opBinString, opShortBinString:
		return p.fail(ErrUnsupported, "Python 2 str")
	default:
		return p.fail(ErrProtocol, "unknown opcode")
	}
	return nil
}

// width is the size in bytes of the integer argument of op: a value, a
// length or a memo index.
func width(op byte) int {
	switch op {
	case opProto, opBinInt1, opLong1, opShortBinUnicode, opShortBinBytes, opBinPut, opBinGet:
		return 1
	case opBinInt2:
		return 2
	case opBinInt, opLong4, opBinUnicode, opBinBytes, opLongBinPut, opLongBinGet:
		return 4
	}
	return 8 // FRAME, BINUNICODE8, BINBYTES8, BYTEARRAY8
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// read returns the next n bytes of the pickle, which it still owns.
func (p *parser) read(n int) ([]byte, error) {
	if n > len(p.data)-p.pos {
		return nil, p.fail(ErrProtocol, "truncated: %d bytes wanted, %d left", n, len(p.data)-p.pos)
	}
	b := p.data[p.pos : p.pos+n]
	p.pos += n
	return b, nil
}

// uint reads an n-byte little-endian unsigned integer (n is 1, 2, 4 or 8).
func (p *parser) uint(n int) (uint64, error) {
	b, err := p.read(n)
	if err != nil {
		return 0, err
	}
	var v uint64
	for i := n - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v, nil
}

// bytes returns the n-byte payload of a str, bytes, bytearray or int, after
// checking n against MaxStringLen and the bytes present: a claimed length
// costs nothing until it is proven.
func (p *parser) bytes(n uint64, what string) ([]byte, error) {
	if n > uint64(p.lim.MaxStringLen) {
		return nil, p.fail(ErrTooLarge, "%s of %d bytes, limit %d", what, n, p.lim.MaxStringLen)
	}
	return p.read(int(n))
}

// line returns the bytes up to the next '\n' (the argument of a text
// opcode), at most MaxStringLen of them.
func (p *parser) line() ([]byte, error) {
	rest := p.data[p.pos:]
	limit := len(rest)
	if p.lim.MaxStringLen < limit {
		limit = p.lim.MaxStringLen + 1
	}
	for i, c := range rest[:limit] {
		if c == '\n' {
			p.pos += i + 1
			return rest[:i], nil
		}
	}
	if limit < len(rest) {
		return nil, p.fail(ErrTooLarge, "line longer than %d bytes", p.lim.MaxStringLen)
	}
	return nil, p.fail(ErrProtocol, "truncated: no end of line")
}

// decimal parses the argument of INT or LONG as Python's int() would, for
// the forms Python writes: an optional sign and decimal digits.
func (p *parser) decimal(line []byte) (any, error) {
	if err := p.spend(allocSize(len(line))); err != nil {
		return nil, err
	}
	s := string(line)
	digits := strings.TrimLeft(s, "+-")
	if len(s)-len(digits) > 1 || digits == "" || strings.Trim(digits, "0123456789") != "" {
		return nil, p.fail(ErrProtocol, "int %q", truncateBytes(line))
	}
	if len(digits) > maxIntDigits {
		return nil, p.fail(ErrTooLarge, "int of %d digits, limit %d", len(digits), maxIntDigits)
	}
	if len(digits) <= 19 { // ParseInt copies s into the error it fails with
		if v, err := strconv.ParseInt(s, 10, 64); err == nil {
			return v, p.spend(boxCost(uint64(v)))
		}
	}
	// A decimal digit takes under half a byte. With room for them all,
	// SetString does not regrow its words at every step.
	if err := p.spend(bigCost(len(digits)/2 + wordSize)); err != nil {
		return nil, err
	}
	b := new(big.Int).SetBits(make([]big.Word, 0, len(digits)/19+2))
	b.SetString(s, 10)
	return normInt(b), nil
}

func (p *parser) memoIndex() (uint64, error) {
	switch p.op {
	case opBinPut, opBinGet, opLongBinPut, opLongBinGet:
		return p.uint(width(p.op))
	}
	line, err := p.line()
	if err != nil {
		return 0, err
	}
	i, err := strconv.ParseUint(string(line), 10, 64)
	if err != nil {
		return 0, p.fail(ErrProtocol, "memo index %q", truncateBytes(line))
	}
	return i, nil
}

// fence is the stack position of the innermost open MARK: the stack below
// it is out of reach until POP_MARK or a container opcode closes it.
func (p *parser) fence() int {
	if len(p.marks) == 0 {
		return 0
	}
	return p.marks[len(p.marks)-1]
}

// spend charges n bytes to the budget, before they are allocated.
func (p *parser) spend(n int) error {
	if p.budget.spend(n) {
		return nil
	}
	return p.fail(ErrTooLarge, "decoding needs more than %d bytes of memory", p.budget.max)
}

// push pushes v, which is charged for already (or allocates nothing,
// like a memo reference).
func (p *parser) push(v any) error {
	// Every push consumes at least one byte of input, so the stack is
	// bounded by MaxSize; bound what one MARK can gather too.
	if (len(p.stack)-p.fence())/2 > p.lim.MaxContainerLen {
		return p.fail(ErrTooLarge, "more than twice %d values above the MARK", p.lim.MaxContainerLen)
	}
	if len(p.stack) == p.stackPaid {
		s, err := p.growCharged(p.stack, max(16, len(p.stack)), &p.stackPaid)
		if err != nil {
			return err
		}
		p.stack = s
	}
	p.stack = append(p.stack, v)
	return nil
}

// pushInt and pushFloat box a number (which allocates unless it is
// small) and push it.
func (p *parser) pushInt(v int64) error {
	if err := p.spend(boxCost(uint64(v))); err != nil {
		return err
	}
	return p.push(v)
}

func (p *parser) pushFloat(f float64) error {
	if err := p.spend(boxCost(math.Float64bits(f))); err != nil {
		return err
	}
	return p.push(f)
}

// grow makes room for n more elements: exactly at first, then doubling
// the capacity (append's growth by a quarter for large slices allocates
// about five times the final size in all, doubling about twice). It
// charges the new array.
func (p *parser) grow(s []any, n int) ([]any, error) {
	c := cap(s)
	return p.growCharged(s, n, &c)
}

// growCharged is grow for the stack and the memo, which a pooled parser
// may start with room in: it charges as if the slice had grown from
// nothing in this parse (*charged is the capacity paid for so far), so
// that what a pickle may cost does not depend on what the pool held.
func (p *parser) growCharged(s []any, n int, charged *int) ([]any, error) {
	if len(s)+n > *charged {
		c := max(len(s)+n, 2**charged)
		if err := p.spend(allocSize(c * ifaceSize)); err != nil {
			return nil, err
		}
		*charged = c
	}
	if len(s)+n <= cap(s) {
		return s, nil
	}
	t := make([]any, len(s), max(len(s)+n, 2*cap(s), *charged))
	copy(t, s)
	return t, nil
}

func (p *parser) pop() (any, error) {
	if len(p.stack) <= p.fence() {
		return nil, p.fail(ErrProtocol, "stack underflow")
	}
	v := p.stack[len(p.stack)-1]
	p.stack[len(p.stack)-1] = nil
	p.stack = p.stack[:len(p.stack)-1]
	return v, nil
}

func (p *parser) top() (any, error) {
	if len(p.stack) <= p.fence() {
		return nil, p.fail(ErrProtocol, "stack underflow")
	}
	return p.stack[len(p.stack)-1], nil
}

// popMark removes the innermost MARK and the values above it, and
// returns them: a view of the stack, valid until the next push.
func (p *parser) popMark() ([]any, error) {
	if len(p.marks) == 0 {
		return nil, p.fail(ErrProtocol, "no MARK")
	}
	m := p.marks[len(p.marks)-1]
	p.marks = p.marks[:len(p.marks)-1]
	items := p.stack[m:]
	p.stack = p.stack[:m]
	return items, nil
}

// place records that v was put into a container or returned, and refuses
// what may not be data.
func (p *parser) place(v any) error {
	switch v := v.(type) {
	case *node:
		if v.refs < math.MaxUint8 {
			v.refs++
		}
	case *global:
		return p.fail(ErrUnsafe, "%s.%s used as a value", v.module, v.name)
	}
	return nil
}

// hashable reports whether v may be a dict key or a set element in Python.
func hashable(v any) bool {
	switch v := v.(type) {
	case *node:
		return v.hashable
	case byteArray, *global:
		return false
	}
	return true
}

func (p *parser) checkLen(n int) error {
	if n > p.lim.MaxContainerLen {
		return p.fail(ErrTooLarge, "container of %d elements, limit %d", n, p.lim.MaxContainerLen)
	}
	return nil
}

// newNode returns a new, empty container of kind k.
func (p *parser) newNode(k kind) (*node, error) {
	if err := p.spend(nodeSize); err != nil {
		return nil, err
	}
	var n *node
	if sl := p.slab; sl.used < len(sl.nodes) {
		n = &sl.nodes[sl.used]
		sl.used++
	} else {
		n = new(node)
	}
	*n = node{kind: k, height: 1, hashable: k == kTuple || k == kFrozenSet}
	return n, nil
}

// pushNew pushes a new, empty container of kind k.
func (p *parser) pushNew(k kind) error {
	n, err := p.newNode(k)
	if err != nil {
		return err
	}
	return p.push(n)
}

// pushTuple pushes a tuple of a copy of items.
func (p *parser) pushTuple(items []any) error {
	return p.pushContainer(kTuple, items)
}

// pushContainer pushes a new tuple, list, dict or frozenset of a copy of
// items.
func (p *parser) pushContainer(k kind, items []any) error {
	n, err := p.newNode(k)
	if err != nil {
		return err
	}
	if err := p.add(n, items); err != nil {
		return err
	}
	return p.push(n)
}

// extend runs APPEND, APPENDS, SETITEM, SETITEMS or ADDITEMS: it adds the
// values above the mark (or the top one or two) to the container below
// them, which must be of kind k.
func (p *parser) extend(k kind) error {
	var items []any
	switch p.op {
	case opAppend, opSetItem:
		n := 1
		if p.op == opSetItem {
			n = 2
		}
		if len(p.stack)-p.fence() < n+1 {
			return p.fail(ErrProtocol, "stack underflow")
		}
		items = p.stack[len(p.stack)-n:]
		p.stack = p.stack[:len(p.stack)-n]
	default:
		var err error
		if items, err = p.popMark(); err != nil {
			return err
		}
		if k == kDict && len(items)%2 != 0 {
			return p.fail(ErrProtocol, "odd number of items")
		}
	}
	c, err := p.top()
	if err != nil {
		return err
	}
	n, ok := c.(*node)
	if ok && n.kind == kObject { // Python would call its append, extend, __setitem__ or add
		return p.fail(ErrUnsafe, "adds items to a %s", pyType(c))
	}
	if !ok || n.kind != k {
		return p.fail(ErrProtocol, "target is a %s, not a %s", pyType(c), kindNames[k])
	}
	return p.add(n, items)
}

// add appends (copies) items to n, checking the length limit, the depth
// and, for a dict's keys and a set's elements, that they are hashable (a
// tuple is hashable if its items are).
func (p *parser) add(n *node, items []any) error {
	count := len(n.items) + len(items)
	if n.kind == kDict {
		count /= 2
	}
	if err := p.checkLen(count); err != nil {
		return err
	}
	height := n.height
	for i, v := range items {
		if err := p.place(v); err != nil {
			return err
		}
		key := n.kind == kSet || n.kind == kFrozenSet || n.kind == kDict && i%2 == 0
		if key && !hashable(v) {
			return p.fail(ErrProtocol, "unhashable %s as a %s key", pyType(v), kindNames[n.kind])
		}
		if n.kind == kTuple {
			n.hashable = n.hashable && hashable(v)
		}
		// A container in itself is a cycle, refused by the conversion;
		// it does not make its own height grow.
		if c, ok := v.(*node); ok && c != n {
			height = max(height, c.height+1)
		}
	}
	if height > uint32(p.lim.MaxDepth) && (n.kind != kTuple || height > uint32(p.lim.MaxDepth)+1) { // see node.height
		return p.fail(ErrTooLarge, "nested deeper than %d", p.lim.MaxDepth)
	}
	n.height = height
	s, err := p.grow(n.items, len(items))
	if err != nil {
		return err
	}
	n.items = append(s, items...)
	return nil
}

// The pure-data constructors the decoder interprets without importing or
// calling anything: what Python writes for sets and frozensets (protocols
// 0-3), bytes (protocols 0-2) and bytearray (protocols 0-4).
func allowedGlobal(module, name string) bool {
	switch module {
	case "builtins", "__builtin__":
		return name == "set" || name == "frozenset" || name == "bytearray" || name == "bytes"
	case "_codecs":
		return name == "encode"
	}
	return false
}

// pushGlobal runs GLOBAL or STACK_GLOBAL: it pushes a pure-data
// constructor or a class of Decoder.Objects, and refuses anything else.
func (p *parser) pushGlobal(module, name string) error {
	g := global{module: module, name: name}
	if !allowedGlobal(module, name) {
		c, ok := p.objectClass(module, name)
		if !ok {
			return p.fail(ErrUnsafe, "%s.%s", truncate(module), truncate(name))
		}
		g = global{module: c.Module, name: c.Name, object: true}
	}
	if err := p.spend(globalSize); err != nil {
		return err
	}
	return p.push(&g)
}

// reduce runs REDUCE for the allowlisted constructors, with the arguments
// Python writes, and for the classes of Decoder.Objects, with any tuple
// of arguments; anything else is ErrUnsafe.
func (p *parser) reduce() error {
	argv, err1 := p.pop()
	fv, err2 := p.pop()
	if err := firstErr(err1, err2); err != nil {
		return err
	}
	f, ok := fv.(*global)
	if !ok {
		return p.fail(ErrUnsafe, "calls a %s", pyType(fv))
	}
	t, ok := argv.(*node)
	if !ok || t.kind != kTuple {
		return p.fail(ErrUnsafe, "%s.%s with arguments of type %s", f.module, f.name, pyType(argv))
	}
	if f.object {
		return p.pushObject(f, t, false)
	}
	args := t.items
	refuse := func() error {
		types := make([]string, 0, min(len(args), 9))
		for i, a := range args {
			if i == 8 {
				types = append(types, fmt.Sprintf("...(%d more)", len(args)-i))
				break
			}
			types = append(types, pyType(a))
		}
		return p.fail(ErrUnsafe, "%s.%s with arguments %v", f.module, f.name, types)
	}
	switch f.name {
	case "set", "frozenset":
		k := map[string]kind{"set": kSet, "frozenset": kFrozenSet}[f.name]
		if len(args) == 0 {
			return p.pushContainer(k, nil)
		}
		if len(args) != 1 {
			return refuse()
		}
		src, ok := args[0].(*node)
		if !ok || src.kind == kDict || src.kind == kObject {
			return refuse()
		}
		return p.pushContainer(k, src.items)
	case "bytes", "bytearray":
		var b []byte
		switch {
		case len(args) == 0:
			b = []byte{}
		case len(args) == 1:
			switch a := args[0].(type) {
			case []byte:
				b = a
			case byteArray:
				b = a
			default:
				return refuse()
			}
			if err := p.spend(allocSize(len(b)) + sliceBox); err != nil {
				return err
			}
			b = slices.Clone(b)
		case len(args) == 2 && f.name == "bytearray":
			var err error
			if b, err = p.latin1(args); err != nil {
				return err
			}
			if b == nil {
				return refuse()
			}
		default:
			return refuse()
		}
		if f.name == "bytearray" {
			return p.push(byteArray(b))
		}
		return p.push(b)
	case "encode": // _codecs.encode(str, "latin1"): bytes at protocols 0-2
		b, err := p.latin1(args)
		if err != nil {
			return err
		}
		if b == nil {
			return refuse()
		}
		return p.push(b)
	}
	return refuse()
}

// latin1 returns the bytes of args (str, "latin1"): each code point is a
// byte. It returns nil, nil if args are not of that form.
func (p *parser) latin1(args []any) ([]byte, error) {
	if len(args) != 2 {
		return nil, nil
	}
	s, ok1 := args[0].(string)
	enc, ok2 := args[1].(string)
	if !ok1 || !ok2 || enc != "latin1" && enc != "latin-1" {
		return nil, nil
	}
	if err := p.spend(allocSize(len(s)) + sliceBox); err != nil {
		return nil, err
	}
	// s is valid (WTF-8): U+0000 to U+007F are one byte, U+0080 to
	// U+00FF two starting 0xc2 or 0xc3, and any other lead byte starts a
	// code point beyond latin-1.
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x80:
			b = append(b, c)
		case (c == 0xc2 || c == 0xc3) && i+1 < len(s):
			b = append(b, c<<6|s[i+1]&0x3f)
			i++
		default:
			r, _ := decodeWTF8(s[i:])
			return nil, p.fail(ErrProtocol, "U+%04X is not latin-1", r)
		}
	}
	return b, nil
}

// decodeLong decodes the two's-complement little-endian integer of LONG1
// and LONG4 into an int64 when it fits, else a *big.Int.
func decodeLong(b []byte) any {
	if len(b) == 0 {
		return int64(0)
	}
	if len(b) <= 8 {
		var v uint64
		for i := len(b) - 1; i >= 0; i-- {
			v = v<<8 | uint64(b[i])
		}
		shift := 64 - 8*uint(len(b))
		return int64(v<<shift) >> shift // sign-extend
	}
	// Big-endian, and for a negative x its magnitude ^x + 1, so that the
	// decoding allocates twice the length (as bigCost charges), no more.
	neg := b[len(b)-1]&0x80 != 0
	be := make([]byte, len(b))
	for i, c := range b {
		if neg {
			c = ^c
		}
		be[len(b)-1-i] = c
	}
	v := new(big.Int).SetBytes(be)
	if neg {
		v.Neg(v.Add(v, big.NewInt(1)))
	}
	return normInt(v)
}

// normInt returns v as an int64 if it fits.
func normInt(v *big.Int) any {
	if v.IsInt64() {
		return v.Int64()
	}
	return v
}

// memo is the unpickler's memo: a dict from index to value, dense in
// practice (Python numbers entries 0, 1, 2, ...), with a map for the
// indexes a crafted pickle may scatter.
type memo struct {
	dense  []any
	sparse map[uint64]any
}

func (m *memo) len() int { return len(m.dense) + len(m.sparse) }

func (m *memo) get(i uint64) (any, bool) {
	if i < uint64(len(m.dense)) {
		return m.dense[i], true
	}
	v, ok := m.sparse[i]
	return v, ok
}

// memoPut sets memo entry i to v, charging what the memo grows by.
func (p *parser) memoPut(i uint64, v any) error {
	m := &p.memo
	switch {
	case i < uint64(len(m.dense)):
		m.dense[i] = v
	case i == uint64(len(m.dense)):
		if err := p.memoAppend(v); err != nil {
			return err
		}
		delete(m.sparse, i)
		for { // keep dense and sparse disjoint
			next, ok := m.sparse[uint64(len(m.dense))]
			if !ok {
				break
			}
			delete(m.sparse, uint64(len(m.dense)))
			if err := p.memoAppend(next); err != nil {
				return err
			}
		}
	default:
		if _, ok := m.sparse[i]; !ok {
			if err := p.spend(sparseEntry); err != nil {
				return err
			}
		}
		if m.sparse == nil {
			m.sparse = make(map[uint64]any)
		}
		m.sparse[i] = v
	}
	return nil
}

func (p *parser) memoAppend(v any) error {
	s, err := p.growCharged(p.memo.dense, 1, &p.memoPaid)
	if err != nil {
		return err
	}
	p.memo.dense = append(s, v)
	return nil
}

// pyType names the Python type of a decoded value.
func pyType(v any) string {
	switch v := v.(type) {
	case nil:
		return "None"
	case bool:
		return "bool"
	case int64, *big.Int:
		return "int"
	case float64:
		return "float"
	case string:
		return "str"
	case []byte:
		return "bytes"
	case byteArray:
		return "bytearray"
	case *node:
		if v.kind == kObject {
			g := v.items[0].(*global)
			return g.module + "." + g.name
		}
		return kindNames[v.kind]
	case *global:
		return "global " + v.module + "." + v.name
	}
	return fmt.Sprintf("%T", v)
}
