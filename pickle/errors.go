package pickle

import (
	"errors"
	"fmt"
	"math/big"
	"reflect"
	"strconv"
	"strings"
)

// Errors from decoding. Each is wrapped in an [*OpError] that names the
// opcode and its offset; match with errors.Is.
var (
	// ErrUnsafe: the pickle asks to import, build or call something
	// (GLOBAL, STACK_GLOBAL, REDUCE, BUILD, INST, OBJ, NEWOBJ, NEWOBJ_EX,
	// EXT1/2/4, PERSID, BINPERSID) beyond the few pure-data constructors
	// the decoder interprets itself and the classes the Decoder's Objects
	// lists (see the package documentation). Nothing was imported or run.
	ErrUnsafe = errors.New("mproc: unsafe pickle: refusing to import or call")
	// ErrProtocol: the bytes are not a well-formed pickle: an unknown
	// opcode, a truncated argument, a stack or mark underflow, a missing
	// memo entry, invalid UTF-8, an unhashable dict key, trailing bytes
	// after STOP, and the like.
	ErrProtocol = errors.New("mproc: malformed pickle")
)

// Errors from both directions.
var (
	// ErrTooLarge: a limit of the Decoder or Encoder was reached: the total
	// size, a container's length, a string's length, the nesting depth or
	// the memory decoding needs (see [Decoder]). Limits are checked
	// before anything is allocated for the value.
	ErrTooLarge = errors.New("mproc: pickle exceeds a limit")
	// ErrUnsupported: a valid value this package does not carry: on
	// decoding a recursive (self-containing) structure, Python 2 str
	// opcodes, out-of-band buffers, a second BUILD of one object; on
	// encoding a Go value with no pickle form (channels, functions,
	// complex numbers, cyclic values, strings that are not UTF-8,
	// unhashable dict keys or set elements, an Object without a module
	// or a name).
	ErrUnsupported = errors.New("mproc: pickle value not supported")
)

// An OpError reports where decoding a pickle failed: the opcode, its byte
// offset, and why. Err is one of ErrUnsafe, ErrProtocol, ErrTooLarge or
// ErrUnsupported.
type OpError struct {
	Op     string // the opcode's name as pickletools spells it, e.g. "STACK_GLOBAL"; "" for the whole pickle
	Offset int    // byte offset of the opcode in the pickle
	Detail string // e.g. "os.system", "string of 4294967295 bytes"
	Err    error
}

func (e *OpError) Error() string {
	s := "pickle: "
	if e.Op != "" {
		s += fmt.Sprintf("%s at offset %d: ", e.Op, e.Offset)
	} else if e.Offset > 0 {
		s += fmt.Sprintf("offset %d: ", e.Offset)
	}
	if e.Detail != "" {
		s += e.Detail + ": "
	}
	return s + e.Err.Error()
}

func (e *OpError) Unwrap() error { return e.Err }

// An UnmarshalTypeError reports a decoded Python value that does not fit
// the Go type at Path (e.g. ".Items[3].Name", or "" at the top).
type UnmarshalTypeError struct {
	Value  string       // the Python type, e.g. "str", "int", "list"
	Type   reflect.Type // the Go type it could not become
	Path   string
	Detail string // e.g. "overflows int8"; may be empty
}

func (e *UnmarshalTypeError) Error() string {
	s := fmt.Sprintf("pickle: cannot unmarshal Python %s into Go value of type %v", e.Value, e.Type)
	if e.Path != "" {
		s += " at " + e.Path
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// A ValueError reports a decoded or encoded value that a limit or a rule
// refused, at Path (a Go path when encoding or decoding into typed
// values). Err is ErrTooLarge or ErrUnsupported.
type ValueError struct {
	Path   string
	Detail string
	Err    error
}

func (e *ValueError) Error() string {
	s := "pickle: "
	if e.Path != "" {
		s += e.Path + ": "
	}
	if e.Detail != "" {
		s += e.Detail + ": "
	}
	return s + e.Err.Error()
}

func (e *ValueError) Unwrap() error { return e.Err }

// A path is where in a value an error happened, as Go syntax: .Field,
// [index], ["key"] (the value of a key) or [key] (a key itself).
type path []pathElem

type pathElem struct {
	kind  uint8 // fieldElem, indexElem, valueElem or keyElem
	name  string
	index int
	key   any // a decoded Python value, or a reflect.Value when encoding
}

const (
	fieldElem uint8 = iota
	indexElem
	valueElem
	keyElem
)

// maxPath is the most path elements an error shows.
const maxPath = 16

// String renders the path, eliding the middle of a long one.
func (p path) String() string {
	var b strings.Builder
	for i, e := range p {
		if n := len(p); n > maxPath && i >= maxPath/2 && i < n-maxPath/2 {
			if i == maxPath/2 {
				fmt.Fprintf(&b, "...(%d more)...", n-maxPath)
			}
			continue
		}
		switch e.kind {
		case fieldElem:
			b.WriteString("." + e.name)
		case indexElem:
			b.WriteString("[" + strconv.Itoa(e.index) + "]")
		case valueElem:
			b.WriteString("[" + keyString(e.key) + "]")
		case keyElem:
			if e.key == nil {
				b.WriteString("[key]")
			} else {
				b.WriteString("[key " + keyString(e.key) + "]")
			}
		}
	}
	return b.String()
}

// keyString renders a dict key: a Go value (when encoding), or a
// decoded Python one.
func keyString(k any) string {
	if rv, ok := k.(reflect.Value); ok {
		if !rv.IsValid() {
			return "nil"
		}
		if rv.Kind() == reflect.String {
			return strconv.Quote(truncate(rv.String()))
		}
		switch b := rv.Interface().(type) {
		case *big.Int:
			if b != nil {
				return intString(b)
			}
		case big.Int:
			return intString(&b)
		}
		return truncate(fmt.Sprint(rv.Interface()))
	}
	switch v := k.(type) {
	case nil:
		return "None"
	case bool:
		if v {
			return "True"
		}
		return "False"
	case string:
		return strconv.Quote(truncate(v))
	case *big.Int:
		return intString(v)
	case int64, float64:
		return fmt.Sprint(v)
	}
	return pyType(k)
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// truncateBytes is truncate for the argument of a text opcode, copying
// no more of it than it shows.
func truncateBytes(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}
