package mproc

import (
	"fmt"
	"os"

	"mproc/internal/owner"
	"mproc/internal/shm"
)

// object is what every shared-object handle is made of: the segment that
// holds the object. The handle types embed it, so they share its Name,
// Close and Remove, and its way of travelling in a child's argument.
type object struct {
	seg *shm.Segment
}

// objectSpec describes one kind of shared object's segment.
type objectSpec struct {
	kind  shm.Kind
	size  int                // bytes of the data area
	param [2]uint64          // immutable parameters, covered by the checksum
	init  func([]byte) error // fills a new data area before it is published
	eager [][2]int           // the data ranges given memory at creation; nil: all (shm.CreateOptions.Eager)
}

// newObject creates an anonymous object.
func newObject(spec objectSpec) (object, error) { return createObject("", false, spec) }

// createObject creates the named object name, or an anonymous one if
// !named.
func createObject(name string, named bool, spec objectSpec) (object, error) {
	opts := shm.CreateOptions{Param: spec.param, Init: spec.init, Eager: spec.eager}
	var seg *shm.Segment
	var err error
	if named {
		seg, err = shm.Create(name, spec.kind, spec.size, opts)
	} else {
		seg, err = shm.NewAnonymous(spec.kind, spec.size, opts)
	}
	if err != nil {
		return object{}, fmt.Errorf("create %v: %w", spec.kind, err)
	}
	return object{seg: seg}, nil
}

// openObject opens the named object name of kind, checking that its data
// area holds at least minSize bytes.
func openObject(name string, kind shm.Kind, minSize int) (object, error) {
	seg, err := shm.Open(name, kind, shm.OpenOptions{})
	if err != nil {
		return object{}, fmt.Errorf("open %v: %w", kind, err)
	}
	o := object{seg: seg}
	if err := o.check(minSize); err != nil {
		seg.Close()
		return object{}, fmt.Errorf("open %v %q: %w", kind, name, err)
	}
	return o, nil
}

func (o object) check(minSize int) error {
	if n := len(o.seg.Data()); n < minSize {
		return fmt.Errorf("data area of %d bytes, want at least %d: %w", n, minSize, ErrCorrupt)
	}
	return nil
}

// Name returns the object's name, "" for an anonymous one.
func (o object) Name() string { return o.seg.Name() }

// Close unmaps the object in this process; other processes keep it. The
// handle must not be used afterwards, nor while Close runs. A second Close
// returns os.ErrClosed.
func (o object) Close() error { return o.seg.Close() }

// Remove removes the object's name, so it can no longer be opened;
// processes that have it open keep using it. Anonymous objects have
// nothing to remove.
func (o object) Remove() error {
	if o.seg.Name() == "" {
		return nil
	}
	return shm.Unlink(o.seg.Name())
}

// encode is the body of a handle's GobEncode: the segment's descriptor
// and its name.
func (o object) encode() ([]byte, error) { return encodeHandle(o.seg.FD(), o.seg.Name()) }

// decodeObject is the body of a handle's GobDecode in a child.
func decodeObject(b []byte, kind shm.Kind, minSize int) (object, error) {
	f, name, err := decodeHandle[string](b)
	if err != nil {
		return object{}, err
	}
	seg, err := shm.FromFD(f, kind)
	if err != nil {
		return object{}, fmt.Errorf("%v %q: %w", kind, name, err)
	}
	seg.SetName(name)
	o := object{seg: seg}
	if err := o.check(minSize); err != nil {
		seg.Close()
		return object{}, fmt.Errorf("%v %q: %w", kind, name, err)
	}
	return o, nil
}

// self is this process's packed owner token: who holds a lock.
var self = owner.Self().Pack()

// handleKind describes a handle type H: its segment kind, the data size
// it needs, and how it makes a handle over an object, validating what the
// segment holds. The New/Create/Open constructors and GobDecode of every
// handle type go through it.
type handleKind[H any] struct {
	kind shm.Kind
	size int
	make func(object) (*H, error)
}

func (k handleKind[H]) spec(param [2]uint64, init func([]byte) error) objectSpec {
	return objectSpec{kind: k.kind, size: k.size, param: param, init: init}
}

// create makes a new object: anonymous when name is "" and !named.
func (k handleKind[H]) create(name string, named bool, spec objectSpec) (*H, error) {
	o, err := createObject(name, named, spec)
	if err != nil {
		return nil, err
	}
	return k.finish(o)
}

func (k handleKind[H]) open(name string) (*H, error) {
	o, err := openObject(name, k.kind, k.size)
	if err != nil {
		return nil, err
	}
	h, err := k.finish(o)
	if err != nil {
		return nil, fmt.Errorf("open %v %q: %w", k.kind, name, err)
	}
	return h, nil
}

func (k handleKind[H]) finish(o object) (*H, error) {
	h, err := k.make(o)
	if err != nil {
		o.Close()
		return nil, err
	}
	return h, nil
}

// decode is the body of a handle's GobDecode.
func (k handleKind[H]) decode(h *H, b []byte) error {
	o, err := decodeObject(b, k.kind, k.size)
	if err != nil {
		return err
	}
	v, err := k.finish(o)
	if err != nil {
		return fmt.Errorf("%v %q: %w", k.kind, o.Name(), err)
	}
	*h = *v
	return nil
}

// closed returns os.ErrClosed, wrapped with what, once the handle is
// closed.
func (o object) closed(what string) error {
	if o.seg.Closed() {
		return fmt.Errorf("%s: %w", what, os.ErrClosed)
	}
	return nil
}

// param returns the segment's immutable parameter i.
func (o object) param(i int) uint64 { return o.seg.Param(i) }
