package mproc

import (
	"bytes"
	"encoding/gob"
	"encoding/json"
	"fmt"
	"reflect"
	"sync"

	"github.com/fxamacker/cbor/v2"

	"mproc/internal/shm"
)

// Codec turns values into bytes and back, for queue messages whose type is
// neither []byte, string, nor fixed-size and free of pointers (those cross
// as bytes or as memory, without a codec).
type Codec interface {
	Marshal(v any) ([]byte, error)
	Unmarshal(data []byte, v any) error
}

// GobCodec encodes with encoding/gob, one self-describing message each.
type GobCodec struct{}

// Marshal implements Codec.
func (GobCodec) Marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	err := gob.NewEncoder(&buf).Encode(v)
	return buf.Bytes(), err
}

// Unmarshal implements Codec; v is a pointer.
func (GobCodec) Unmarshal(data []byte, v any) error {
	return gob.NewDecoder(bytes.NewReader(data)).Decode(v)
}

// JSONCodec encodes with encoding/json.
type JSONCodec struct{}

// Marshal implements Codec.
func (JSONCodec) Marshal(v any) ([]byte, error) { return json.Marshal(v) }

// Unmarshal implements Codec; v is a pointer.
func (JSONCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

// CBORCodec encodes with CBOR (RFC 8949), through
// github.com/fxamacker/cbor/v2. Decoding is bounded for untrusted input:
// at most CBORMaxNesting levels of nesting and CBORMaxElements elements in
// an array or pairs in a map, each checked before anything is allocated;
// a longer or deeper message fails to decode. Struct fields are named as
// encoding/json names them (json tags are honoured), times keep their
// nanoseconds and zone (RFC 3339), and a map decoded into an interface is
// a map[string]any, as with JSON.
type CBORCodec struct{}

// Bounds of CBORCodec's decoding.
const (
	CBORMaxNesting  = 32
	CBORMaxElements = 1 << 17
)

var cborModes = sync.OnceValues(func() (cbor.EncMode, cbor.DecMode) {
	enc, err := cbor.EncOptions{Time: cbor.TimeRFC3339Nano}.EncMode()
	if err != nil {
		panic("mproc: CBOR encoding options: " + err.Error())
	}
	dec, err := cbor.DecOptions{
		MaxNestedLevels:  CBORMaxNesting,
		MaxArrayElements: CBORMaxElements,
		MaxMapPairs:      CBORMaxElements,
		DefaultMapType:   reflect.TypeFor[map[string]any](),
	}.DecMode()
	if err != nil {
		panic("mproc: CBOR decoding options: " + err.Error())
	}
	return enc, dec
})

// Marshal implements Codec.
func (CBORCodec) Marshal(v any) ([]byte, error) {
	enc, _ := cborModes()
	return enc.Marshal(v)
}

// Unmarshal implements Codec; v is a pointer.
func (CBORCodec) Unmarshal(data []byte, v any) error {
	_, dec := cborModes()
	return dec.Unmarshal(data, v)
}

// DefaultCodec is the Codec of queues, connections and pool tasks created
// without one: CBORCodec, chosen by measurement (BENCHMARKS.md, the codec
// section: on the values that cross most often it takes about 0.15× the
// time of encoding/json with half its allocations, and it is the only codec
// measured that refused every hostile input cheaply). JSONCodec and
// GobCodec are one line away; every program that shares a queue must use
// the same codec.
var DefaultCodec Codec = CBORCodec{}

// transport is how values of type T become a queue message and back.
type transport[T any] struct {
	kind  transportKind
	size  int // the message size of memory-copied values
	codec Codec
}

type transportKind uint8

const (
	asBytes  transportKind = iota + 1 // []byte
	asString                          // string
	asMemory                          // fixed-size, pointer-free
	asCodec
)

func newTransport[T any](codec Codec) transport[T] {
	t := reflect.TypeFor[T]()
	switch {
	case t == reflect.TypeFor[[]byte]():
		return transport[T]{kind: asBytes}
	case t.Kind() == reflect.String:
		return transport[T]{kind: asString}
	case t.Size() > 0 && pointerful(t) == nil:
		return transport[T]{kind: asMemory, size: int(t.Size())}
	}
	if codec == nil {
		codec = DefaultCodec
	}
	return transport[T]{kind: asCodec, codec: codec}
}

// message returns the bytes of the message for v: v's own bytes (a
// []byte, a string's, or the memory of a fixed-size value) where it can,
// so that a put copies once, into the slot. It keeps no reference to v, so
// that the caller's v can stay on its stack.
func (tr transport[T]) message(v *T) ([]byte, error) {
	switch tr.kind {
	case asBytes:
		return *shm.As[[]byte](v), nil
	case asString:
		return shm.StringBytes(*shm.As[string](v)), nil
	case asMemory:
		return shm.Bytes(v), nil
	}
	return tr.marshal(*v)
}

func (tr transport[T]) marshal(v T) ([]byte, error) {
	b, err := tr.codec.Marshal(&v)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", v, err)
	}
	return b, nil
}

// buffer returns where a get appends the message for v: v's own memory
// for a fixed-size value, so that a get copies once, out of the slot.
func (tr transport[T]) buffer(v *T) []byte {
	if tr.kind == asMemory {
		return shm.Bytes(v)[:0]
	}
	return nil
}

// decode sets *v from msg, which the get appended to buffer(v) and which
// v may keep.
func (tr transport[T]) decode(msg []byte, v *T) error {
	switch tr.kind {
	case asBytes:
		if msg == nil {
			msg = []byte{}
		}
		*shm.As[[]byte](v) = msg
	case asString:
		*shm.As[string](v) = shm.String(msg)
	case asMemory:
		if len(msg) != tr.size {
			return fmt.Errorf("message of %d bytes for a %d-byte %v: %w", len(msg), tr.size, reflect.TypeFor[T](), ErrCorrupt)
		}
	default:
		x, err := tr.unmarshal(msg)
		if err != nil {
			return err
		}
		*v = x
	}
	return nil
}

func (tr transport[T]) unmarshal(msg []byte) (T, error) {
	var v T
	if err := tr.codec.Unmarshal(msg, &v); err != nil {
		return v, fmt.Errorf("decode %T: %w", v, err)
	}
	return v, nil
}
