package mproc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"reflect"
	"sync/atomic"

	"mproc/internal/psync"
	"mproc/internal/shm"
)

// Value is one value of type T in shared memory: Python's
// multiprocessing.Value. Array is n of them: multiprocessing.Array.
//
// T must be fixed-size and free of pointers: numbers, bools, and arrays and
// structs of them. Strings, slices, maps, pointers, interfaces, channels
// and functions cannot be shared as memory; the constructors reject them
// with an error.
//
// Load, Store and CompareAndSwap are atomic. When T is 4 or 8 bytes they
// are single atomic instructions (CompareAndSwap then compares bits, so a
// float's -0 and +0 differ and NaN equals the same NaN); otherwise they
// take a lock of the object's own, not Lock(). Add is atomic for integer
// and floating-point T and panics for any other T. For compound updates,
// hold Lock() around them, as with Python's get_lock(): they may be called
// while it is held.
type Value[T any] struct {
	object
	cells[T]
}

// Array is n values of type T in shared memory; see Value.
type Array[T any] struct {
	object
	cells[T]
}

// cells is the shared part of Value and Array: in the data area's first
// cache line the user's lock (offset 0) and the cells' own lock (offset
// cellLockOffset, taken by Load, Store and CompareAndSwap of values that
// are not 4 or 8 bytes), the values after it. A segment made before the
// cells' lock existed has zeros there: an unlocked mutex.
type cells[T any] struct {
	lock *Lock
	cell *Lock
	vals []T
	word int // 4, 8 or 0: how values are accessed atomically
	num  numKind
}

type numKind uint8

const (
	notNumber numKind = iota
	signed
	unsigned
	float
)

const (
	cellLockOffset = 32 // after the user's lock (a psync.Mutex of 24 bytes)
	valuesOffset   = 64 // the values start one cache line in, after the locks
)

// Both locks fit where they are (a negative constant does not compile).
const (
	_ = uint(cellLockOffset - psync.MutexSize)
	_ = uint(valuesOffset - cellLockOffset - psync.MutexSize)
)

// elemType checks that T can live in shared memory and returns its
// fingerprint for the segment header: size, and a checksum of its name.
func elemType[T any]() (reflect.Type, uint64, error) {
	t := reflect.TypeFor[T]()
	if t.Size() == 0 {
		return nil, 0, fmt.Errorf("%v has size 0", t)
	}
	if bad := pointerful(t); bad != nil {
		return nil, 0, fmt.Errorf("%v cannot live in shared memory: it holds %v, a pointer", t, bad)
	}
	return t, uint64(t.Size()) | uint64(crc32.ChecksumIEEE([]byte(t.String())))<<32, nil
}

// pointerful returns the first type within t that is or holds a pointer,
// or nil.
func pointerful(t reflect.Type) reflect.Type {
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return nil
	case reflect.Array:
		return pointerful(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if bad := pointerful(t.Field(i).Type); bad != nil {
				return bad
			}
		}
		return nil
	}
	return t
}

func newCells[T any](o object, n int) cells[T] {
	t := reflect.TypeFor[T]()
	c := cells[T]{
		lock: &Lock{object: o, m: shm.At[psync.Mutex](o.seg.Data(), 0)},
		cell: &Lock{object: o, m: shm.At[psync.Mutex](o.seg.Data(), cellLockOffset)},
		vals: shm.Slice[T](o.seg.Data(), valuesOffset, n),
	}
	if s := t.Size(); s == 4 || s == 8 {
		c.word = int(s)
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		c.num = signed
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		c.num = unsigned
	case reflect.Float32, reflect.Float64:
		c.num = float
	}
	return c
}

// valueKind makes the handleKind of a Value or an Array of n (0: any,
// when opening) elements of T.
func cellsKind[T, H any](kind shm.Kind, wrap func(object, cells[T]) *H) handleKind[H] {
	return handleKind[H]{kind: kind, size: valuesOffset, make: func(o object) (*H, error) {
		t, fp, err := elemType[T]()
		if err != nil {
			return nil, err
		}
		if o.param(0) != fp {
			return nil, fmt.Errorf("holds elements of %d bytes of another type, not %v: %w", o.param(0)&math.MaxUint32, t, ErrKind)
		}
		// The creator sizes the data area exactly: anything else is a
		// crafted or damaged header.
		n, size := o.param(1), uint64(len(o.seg.Data()))
		if n > (size-valuesOffset)/uint64(t.Size()) || valuesOffset+n*uint64(t.Size()) != size {
			return nil, fmt.Errorf("%d elements do not match its %d bytes: %w", n, size, ErrCorrupt)
		}
		if kind == shm.KindValue && n != 1 {
			return nil, fmt.Errorf("a value of %d elements: %w", n, ErrCorrupt)
		}
		return wrap(o, newCells[T](o, int(n))), nil
	}}
}

func valueKind[T any]() handleKind[Value[T]] {
	return cellsKind(shm.KindValue, func(o object, c cells[T]) *Value[T] { return &Value[T]{o, c} })
}

func arrayKind[T any]() handleKind[Array[T]] {
	return cellsKind(shm.KindArray, func(o object, c cells[T]) *Array[T] { return &Array[T]{o, c} })
}

// cellsSpec is the segment of n values of T, initialised from init.
func cellsSpec[T any](kind shm.Kind, n int, init []T) (objectSpec, error) {
	t, fp, err := elemType[T]()
	if err != nil {
		return objectSpec{}, err
	}
	if n < 0 || uint64(n) > (shm.MaxDataSize-valuesOffset)/uint64(t.Size()) {
		return objectSpec{}, fmt.Errorf("%d elements of %v out of range", n, t)
	}
	return objectSpec{kind: kind, size: valuesOffset + n*int(t.Size()), param: [2]uint64{fp, uint64(n)},
		init: func(b []byte) error {
			copy(shm.Slice[T](b, valuesOffset, n), init)
			return nil
		}}, nil
}

func createValue[T any](name string, named bool, v T) (*Value[T], error) {
	spec, err := cellsSpec(shm.KindValue, 1, []T{v})
	if err != nil {
		return nil, err
	}
	return valueKind[T]().create(name, named, spec)
}

// NewValue creates an anonymous shared value holding v.
func NewValue[T any](v T) (*Value[T], error) { return createValue("", false, v) }

// CreateValue creates the named shared value name holding v.
func CreateValue[T any](name string, v T) (*Value[T], error) { return createValue(name, true, v) }

// OpenValue opens the named shared value name, which must hold a T
// (ErrKind otherwise).
func OpenValue[T any](name string) (*Value[T], error) { return valueKind[T]().open(name) }

func createArray[T any](name string, named bool, n int, init []T) (*Array[T], error) {
	spec, err := cellsSpec(shm.KindArray, n, init)
	if err != nil {
		return nil, err
	}
	return arrayKind[T]().create(name, named, spec)
}

// NewArray creates an anonymous shared array of n zero values.
func NewArray[T any](n int) (*Array[T], error) { return createArray[T]("", false, n, nil) }

// NewArrayOf creates an anonymous shared array holding a copy of vs.
func NewArrayOf[T any](vs []T) (*Array[T], error) { return createArray("", false, len(vs), vs) }

// CreateArray creates the named shared array name of n zero values.
func CreateArray[T any](name string, n int) (*Array[T], error) {
	return createArray[T](name, true, n, nil)
}

// OpenArray opens the named shared array name, which must hold Ts.
func OpenArray[T any](name string) (*Array[T], error) { return arrayKind[T]().open(name) }

// Load returns the value.
func (v *Value[T]) Load() T { return v.load(0) }

// Store sets the value.
func (v *Value[T]) Store(x T) { v.store(0, x) }

// Add adds delta to the value and returns the new value.
func (v *Value[T]) Add(delta T) T { return v.add(0, delta) }

// CompareAndSwap sets the value to new if it is old, and reports whether
// it did.
func (v *Value[T]) CompareAndSwap(old, new T) bool { return v.cas(0, old, new) }

// Lock returns the lock of the value, for compound updates (Python's
// get_lock()). It shares the value's mapping: do not Close it.
func (v *Value[T]) Lock() *Lock { return v.lock }

// GobEncode implements gob.GobEncoder.
func (v *Value[T]) GobEncode() ([]byte, error) { return v.encode() }

// GobDecode implements gob.GobDecoder.
func (v *Value[T]) GobDecode(b []byte) error { return valueKind[T]().decode(v, b) }

// Len returns the number of elements.
func (a *Array[T]) Len() int { return len(a.vals) }

// Load returns element i.
func (a *Array[T]) Load(i int) T { return a.load(i) }

// Store sets element i.
func (a *Array[T]) Store(i int, x T) { a.store(i, x) }

// Add adds delta to element i and returns its new value.
func (a *Array[T]) Add(i int, delta T) T { return a.add(i, delta) }

// CompareAndSwap sets element i to new if it is old.
func (a *Array[T]) CompareAndSwap(i int, old, new T) bool { return a.cas(i, old, new) }

// Slice returns the elements as a slice over the shared memory itself, for
// bulk access without synchronisation (hold Lock() if others write). It
// must not be used after Close.
func (a *Array[T]) Slice() []T { return a.vals }

// Lock returns the lock of the array; see Value.Lock.
func (a *Array[T]) Lock() *Lock { return a.lock }

// GobEncode implements gob.GobEncoder.
func (a *Array[T]) GobEncode() ([]byte, error) { return a.encode() }

// GobDecode implements gob.GobDecoder.
func (a *Array[T]) GobDecode(b []byte) error { return arrayKind[T]().decode(a, b) }

func (c *cells[T]) load(i int) T {
	p := &c.vals[i]
	switch c.word {
	case 4:
		b := atomic.LoadUint32(shm.As[uint32](p))
		return *shm.As[T](&b)
	case 8:
		b := atomic.LoadUint64(shm.As[uint64](p))
		return *shm.As[T](&b)
	}
	c.lockCell()
	defer c.cell.Unlock()
	return *p
}

// lockCell takes the cells' own lock. A process that died holding it may
// have left a value half-written, as any writer of plain memory may: the
// lock is marked consistent again and the value read or written as it is.
func (c *cells[T]) lockCell() {
	switch err := c.cell.LockContext(context.Background()); {
	case errors.Is(err, ErrOwnerDead):
		c.cell.MarkConsistent()
	case err != nil:
		panic(err)
	}
}

func (c *cells[T]) store(i int, x T) {
	p := &c.vals[i]
	switch c.word {
	case 4:
		atomic.StoreUint32(shm.As[uint32](p), *shm.As[uint32](&x))
		return
	case 8:
		atomic.StoreUint64(shm.As[uint64](p), *shm.As[uint64](&x))
		return
	}
	c.lockCell()
	defer c.cell.Unlock()
	*p = x
}

func (c *cells[T]) cas(i int, old, new T) bool {
	p := &c.vals[i]
	switch c.word {
	case 4:
		return atomic.CompareAndSwapUint32(shm.As[uint32](p), *shm.As[uint32](&old), *shm.As[uint32](&new))
	case 8:
		return atomic.CompareAndSwapUint64(shm.As[uint64](p), *shm.As[uint64](&old), *shm.As[uint64](&new))
	}
	c.lockCell()
	defer c.cell.Unlock()
	if !bytes.Equal(shm.Bytes(p), shm.Bytes(&old)) {
		return false
	}
	*p = new
	return true
}

func (c *cells[T]) add(i int, delta T) T {
	if c.num == notNumber {
		panic(fmt.Sprintf("mproc: Add on a shared %v, which is not a number", reflect.TypeFor[T]()))
	}
	if c.word == 0 || c.num == float {
		// Sub-word integers have no atomic add, floats none at all: a
		// compare-and-swap loop (word-sized) or the lock (smaller).
		if c.word != 0 {
			for {
				old := c.load(i)
				n := plus(old, delta)
				if c.cas(i, old, n) {
					return n
				}
			}
		}
		c.lockCell()
		defer c.cell.Unlock()
		c.vals[i] = plus(c.vals[i], delta)
		return c.vals[i]
	}
	p := &c.vals[i]
	var r T
	if c.word == 4 {
		n := atomic.AddUint32(shm.As[uint32](p), *shm.As[uint32](&delta))
		r = *shm.As[T](&n)
	} else {
		n := atomic.AddUint64(shm.As[uint64](p), *shm.As[uint64](&delta))
		r = *shm.As[T](&n)
	}
	return r
}

// plus returns a+b for a numeric T (two's complement makes the unsigned
// word sum right for signed integers too).
func plus[T any](a, b T) T {
	va, vb := reflect.ValueOf(&a).Elem(), reflect.ValueOf(b)
	switch va.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		va.SetInt(va.Int() + vb.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		va.SetUint(va.Uint() + vb.Uint())
	case reflect.Float32, reflect.Float64:
		va.SetFloat(va.Float() + vb.Float())
	}
	return a
}
