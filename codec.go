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

// encode returns the message for v: its length and a function that writes
// it into a slot. For bytes, strings and memory it copies straight from v.
func (tr transport[T]) encode(v *T) (int, func([]byte), error) {
	switch tr.kind {
	case asBytes:
		b := any(*v).([]byte)
		return len(b), func(dst []byte) { copy(dst, b) }, nil
	case asString:
		s := reflect.ValueOf(*v).String()
		return len(s), func(dst []byte) { copy(dst, s) }, nil
	case asMemory:
		return tr.size, func(dst []byte) { copy(dst, shm.Bytes(v)) }, nil
	}
	b, err := tr.codec.Marshal(v)
	if err != nil {
		return 0, nil, fmt.Errorf("encode %T: %w", *v, err)
	}
	return len(b), func(dst []byte) { copy(dst, b) }, nil
}

// decode sets *v from a message; the message is only valid during the
// call, so everything is copied out.
func (tr transport[T]) decode(msg []byte, v *T) error {
	switch tr.kind {
	case asBytes:
		b := bytes.Clone(msg)
		if b == nil {
			b = []byte{}
		}
		*v = any(b).(T)
	case asString:
		reflect.ValueOf(v).Elem().SetString(string(msg))
	case asMemory:
		if len(msg) != tr.size {
			return fmt.Errorf("message of %d bytes for a %d-byte %T: %w", len(msg), tr.size, *v, ErrCorrupt)
		}
		copy(shm.Bytes(v), msg)
	default:
		var zero T
		*v = zero
		if err := tr.codec.Unmarshal(msg, v); err != nil {
			return fmt.Errorf("decode %T: %w", *v, err)
		}
	}
	return nil
}
