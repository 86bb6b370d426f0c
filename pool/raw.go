package pool

import (
	"encoding/binary"
	"fmt"
	"reflect"

	"mproc"
	"mproc/internal/future"
	"mproc/internal/shm"
)

// codecOf is how a task's values of type T cross between the parent and
// its workers. Under the default codec, a T of a fixed size with nothing
// but numbers and booleans in it (an int, a float64, an array or a struct
// of them with exported fields) crosses as its memory: the parent and
// the workers are the same binary, so the layout is the same, and the
// copy costs nothing next to a codec's reflection (a Map of ints over
// CBOR spent most of its time encoding). Every other T, and every T of
// a task registered WithCodec, goes through the codec.
type codecOf[T any] struct {
	raw bool
	c   mproc.Codec
}

func newCodecOf[T any](cfg taskConfig) codecOf[T] {
	return codecOf[T]{raw: !cfg.explicit && rawType(reflect.TypeFor[T]()), c: cfg.codec}
}

// rawType reports whether t crosses as its memory: the codecs would
// encode every byte of it the same way, so nothing changes but the cost.
// Structs with unexported fields or fields a codec skips ("-" tags) are
// left to the codec, which drops those fields.
func rawType(t reflect.Type) bool {
	if t.Size() == 0 {
		return false
	}
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return true
	case reflect.Array:
		return rawType(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() || f.Tag.Get("json") == "-" || f.Tag.Get("cbor") == "-" || !rawType(f.Type) {
				return false
			}
		}
		return true
	}
	return false
}

// sizeOf is the bytes of a T.
func sizeOf[T any]() int { return int(reflect.TypeFor[T]().Size()) }

func (vc codecOf[T]) marshal(v *T) ([]byte, error) {
	if vc.raw {
		return append([]byte(nil), shm.Bytes(v)...), nil
	}
	return vc.c.Marshal(v)
}

func (vc codecOf[T]) unmarshal(b []byte, v *T) error {
	if vc.raw {
		if len(b) != sizeOf[T]() {
			return fmt.Errorf("%d bytes for a %d-byte %T: %w", len(b), sizeOf[T](), *v, errMalformed)
		}
		copy(shm.Bytes(v), b)
		return nil
	}
	return vc.c.Unmarshal(b, v)
}

// sliceMessage returns the message of a task of kind on the values s:
// one allocation for raw values (their memory after the header).
func (vc codecOf[T]) sliceMessage(kind byte, name string, s []T) ([]byte, error) {
	if vc.raw {
		v := shm.SliceBytes(s)
		return append(appendTaskHeader(make([]byte, 0, taskHeader+len(name)+len(v)), kind, name), v...), nil
	}
	payload, err := marshalAll(vc.c, s)
	if err != nil {
		return nil, err
	}
	return taskMessage(kind, name, payload), nil
}

// marshalAll encodes s through c. (Apart, so that the raw path's s is not
// moved to the heap for the codec's pointer to it.)
func marshalAll[T any](c mproc.Codec, s []T) ([]byte, error) { return c.Marshal(&s) }

func (vc codecOf[T]) unmarshalSlice(b []byte) ([]T, error) {
	if vc.raw {
		size := sizeOf[T]()
		if len(b)%size != 0 {
			return nil, fmt.Errorf("%d bytes for %d-byte values: %w", len(b), size, errMalformed)
		}
		s := make([]T, len(b)/size)
		copy(shm.SliceBytes(s), b)
		return s, nil
	}
	var s []T
	err := vc.c.Unmarshal(b, &s)
	return s, err
}

// marshalBatch encodes a chunk's results: through the codec, or, for a
// raw R, as the number of values, their memory, and the errors (if any)
// through the codec.
func (vc codecOf[R]) marshalBatch(out *batchResult[R]) ([]byte, error) {
	if !vc.raw {
		return vc.c.Marshal(out)
	}
	v := shm.SliceBytes(out.V)
	b := make([]byte, 4, 4+len(v))
	binary.LittleEndian.PutUint32(b, uint32(len(out.V)))
	b = append(b, v...)
	if len(out.E) == 0 {
		return b, nil
	}
	e, err := vc.c.Marshal(&out.E)
	if err != nil {
		return nil, err
	}
	return append(b, e...), nil
}

// unmarshalItems decodes the results of a chunk of n elements
// (marshalBatch) into its items, each failure as its error from src.
func (vc codecOf[R]) unmarshalItems(b []byte, n int, src from) ([]future.Item[R], error) {
	var rs []future.Item[R]
	var errs []batchErr
	if vc.raw {
		// Straight into the items: no slice of values in between.
		size := sizeOf[R]()
		if len(b) < 4 || int(binary.LittleEndian.Uint32(b)) != n || n > (len(b)-4)/size {
			return nil, fmt.Errorf("%d results of %d bytes in %d: %w", n, size, len(b), errMalformed)
		}
		rs = make([]future.Item[R], n)
		for i := range rs {
			copy(shm.Bytes(&rs[i].V), b[4+i*size:])
		}
		if rest := b[4+n*size:]; len(rest) > 0 {
			if err := vc.c.Unmarshal(rest, &errs); err != nil {
				return nil, fmt.Errorf("the errors of %d results: %v: %w", n, err, errMalformed)
			}
		}
	} else {
		out, err := unmarshalBatch[R](vc.c, b)
		if err != nil || len(out.V) != n {
			return nil, fmt.Errorf("%d results (%d decoded): %v: %w", n, len(out.V), err, errMalformed)
		}
		rs = make([]future.Item[R], n)
		for i, v := range out.V {
			rs[i].V = v
		}
		errs = out.E
	}
	for _, e := range errs {
		if e.I < 0 || e.I >= n || e.E == nil {
			return nil, fmt.Errorf("the error of result %d of %d: %w", e.I, n, errMalformed)
		}
		rs[e.I].Err = e.E.err(src)
	}
	return rs, nil
}

func unmarshalBatch[R any](c mproc.Codec, b []byte) (out batchResult[R], err error) {
	err = c.Unmarshal(b, &out)
	return out, err
}
