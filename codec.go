package mproc

import (
	"bytes"
	"encoding/gob"
	"encoding/json"
	"fmt"
	"reflect"

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

// DefaultCodec is the Codec of queues created without one: JSONCodec,
// because one message at a time it is about ten times faster than gob,
// which describes the type again in every message (a small struct round
// trip: 1.8 µs against 17.8 µs on the development VM). Swap it in one line
// (mproc.DefaultCodec = mproc.GobCodec{}) for types JSON cannot carry,
// in every program that shares the queues.
var DefaultCodec Codec = JSONCodec{}

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
