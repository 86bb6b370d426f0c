package mproc

import (
	"bytes"
	"encoding"
	"encoding/gob"
	"fmt"
	"reflect"
	"sync"

	"mproc/internal/fd"
	"mproc/internal/shm"
)

// How handles travel to children.
//
// The argument of Start is encoded with encoding/gob inside an envelope
// struct, so any gob-encodable value works, including nil pointers and
// empty structs (a []byte, a string or a fixed-size pointer-free value
// crosses directly instead: argDirect). Every handle type (the shared objects through object,
// *Conn, *MapFile) implements gob.GobEncoder with encodeHandle: while
// Start encodes, a side table is installed, and encodeHandle appends a
// close-on-exec duplicate of the handle's descriptor to that table and
// writes its index with the handle's own fields (a name, a mode). Start
// sends the encoded bytes and the table's descriptors together over the
// control socket, the descriptors as SCM_RIGHTS. In the child, Register's
// runner (process.go) calls decodeArg with the received descriptors as the
// decode table, and each handle's GobDecode claims its descriptor by index
// with decodeHandle and maps it. Descriptors nobody claimed are closed
// after decoding.
//
// The table is process-wide and guarded by argMu: encoding an argument is
// short, and it keeps handle types free of any encoder plumbing. Encoding a
// handle with gob outside Start fails with ErrNotHandle.

var (
	argMu  sync.Mutex
	encTab *[]*fd.FD // descriptors of the argument being encoded
	decTab []*fd.FD  // descriptors of the argument being decoded
)

type envelope[A any] struct{ V A }

// An argument's first byte says how the rest is encoded: gob (the
// envelope, with handles), or directly, as a queue carries values
// (transport: a []byte, a string, or the memory of a fixed-size
// pointer-free value — which cannot hold a handle). The direct form keeps
// gob out of a child that needs no more: gob's first decode in a fresh
// process compiles its types, 50–100 µs of every cold Start of a function
// taking an int.
const (
	argGob    byte = 0
	argDirect byte = 1
)

var (
	gobEncoderType    = reflect.TypeFor[gob.GobEncoder]()
	binaryMarshalType = reflect.TypeFor[encoding.BinaryMarshaler]()
)

// directArg returns the transport of an argument of type A and whether it
// crosses directly: not a type that chose its own gob encoding.
func directArg[A any]() (transport[A], bool) {
	tr := newTransport[A](nil)
	t, pt := reflect.TypeFor[A](), reflect.TypeFor[*A]()
	if t.Size() == 0 && t.Kind() != reflect.Interface {
		tr = transport[A]{kind: asMemory} // struct{}: nothing to carry
	}
	for _, it := range []reflect.Type{gobEncoderType, binaryMarshalType} {
		if t.Implements(it) || pt.Implements(it) {
			return tr, false
		}
	}
	return tr, tr.kind != asCodec
}

// encodeArg encodes arg and collects the descriptors of its handles; the
// caller closes them once sent.
func encodeArg[A any](arg A) ([]byte, []*fd.FD, error) {
	if tr, ok := directArg[A](); ok {
		msg, err := tr.message(&arg)
		return append([]byte{argDirect}, msg...), nil, err
	}
	argMu.Lock()
	defer argMu.Unlock()
	var tab []*fd.FD
	encTab = &tab
	defer func() { encTab = nil }()
	buf := bytes.NewBuffer([]byte{argGob})
	if err := gob.NewEncoder(buf).Encode(envelope[A]{V: arg}); err != nil {
		closeFDs(tab)
		return nil, nil, err
	}
	return buf.Bytes(), tab, nil
}

// decodeArg decodes an argument encoded by encodeArg, handing fds to the
// handles in it. It takes ownership of fds.
func decodeArg[A any](b []byte, fds []*fd.FD) (v A, err error) {
	if len(b) == 0 {
		closeFDs(fds)
		return v, fmt.Errorf("empty argument: %w", ErrCorrupt)
	}
	if b[0] == argDirect {
		closeFDs(fds) // a direct argument holds no handle
		tr, ok := directArg[A]()
		switch {
		case !ok:
			err = fmt.Errorf("a direct argument for a %v: %w", reflect.TypeFor[A](), ErrCorrupt)
		case tr.kind == asMemory:
			if len(b)-1 != tr.size {
				return v, fmt.Errorf("%d bytes for a %d-byte %v: %w", len(b)-1, tr.size, reflect.TypeFor[A](), ErrCorrupt)
			}
			copy(shm.Bytes(&v), b[1:])
		default:
			err = tr.decode(b[1:], &v)
		}
		return v, err
	}
	argMu.Lock()
	defer argMu.Unlock()
	decTab = fds
	defer func() {
		closeFDs(decTab) // the ones no handle claimed
		decTab = nil
	}()
	var env envelope[A]
	err = gob.NewDecoder(bytes.NewReader(b[1:])).Decode(&env)
	return env.V, err
}

// handleWire is a handle in a child's argument: the index of its
// descriptor in the side table, and the handle's own fields.
type handleWire[M any] struct {
	FD   int
	Meta M
}

// encodeHandle is the body of every handle's GobEncode: it passes a
// duplicate of f and encodes meta beside its index.
func encodeHandle[M any](f *fd.FD, meta M) ([]byte, error) {
	i, err := passFD(f)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	err = gob.NewEncoder(&buf).Encode(handleWire[M]{FD: i, Meta: meta})
	return buf.Bytes(), err
}

// decodeHandle is the body of every handle's GobDecode: it decodes what
// encodeHandle wrote and claims the descriptor, which the caller then
// owns.
func decodeHandle[M any](b []byte) (*fd.FD, M, error) {
	var w handleWire[M]
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&w); err != nil {
		return nil, w.Meta, err
	}
	f, err := claimFD(w.FD)
	return f, w.Meta, err
}

// passFD adds a duplicate of f to the side table and returns its index.
func passFD(f *fd.FD) (int, error) {
	if encTab == nil {
		return 0, ErrNotHandle
	}
	d, err := f.Dup()
	if err != nil {
		return 0, err
	}
	*encTab = append(*encTab, d)
	return len(*encTab) - 1, nil
}

// claimFD takes descriptor i of the side table.
func claimFD(i int) (*fd.FD, error) {
	if decTab == nil {
		return nil, ErrNotHandle
	}
	if i < 0 || i >= len(decTab) || decTab[i] == nil {
		return nil, fmt.Errorf("handle refers to descriptor %d of %d passed", i, len(decTab))
	}
	f := decTab[i]
	decTab[i] = nil
	return f, nil
}

func closeFDs(fds []*fd.FD) {
	for _, f := range fds {
		if f != nil {
			f.Close()
		}
	}
}
