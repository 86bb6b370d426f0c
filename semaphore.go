package mproc

import (
	"context"
	"fmt"
	"math"

	"mproc/internal/psync"
	"mproc/internal/shm"
)

// Semaphore is a counting semaphore shared by processes: Python's
// multiprocessing.Semaphore. Acquire takes a unit, waiting while there is
// none; Release adds one, and any process may release, past the initial
// value too. Units taken by a process that dies stay taken: a Semaphore is
// a counter, and a unit may stand for something the dead process handed
// on. Use a BoundedSemaphore for a pool of units that holders give back.
//
// A *Semaphore is safe for concurrent use; it must not be used after
// Close.
type Semaphore struct {
	object
	s *psync.Semaphore
}

// BoundedSemaphore is a semaphore whose value never passes its initial
// value: a Release beyond it fails with ErrOverRelease (Python raises
// ValueError). It records how many units each process holds (up to 64
// processes at once; a 65th waits for a record to free), and the units of
// a process that died are given back within about 25 ms to a waiter, or at
// the next acquisition.
type BoundedSemaphore struct {
	Semaphore
}

// The segment's parameter 0 is the bound (0: none), repeated from the data
// area into the checksummed header.
func semaphoreKind(bounded bool) handleKind[Semaphore] {
	return handleKind[Semaphore]{kind: shm.KindSemaphore, size: psync.SemaphoreSize, make: func(o object) (*Semaphore, error) {
		s := shm.At[psync.Semaphore](o.seg.Data(), 0)
		if uint64(s.Max()) != o.param(0) {
			return nil, fmt.Errorf("bound %d in the data, %d in the header: %w", s.Max(), o.param(0), ErrCorrupt)
		}
		if bounded != (s.Max() != 0) {
			what := map[bool]string{true: "a bounded", false: "an unbounded"}
			return nil, fmt.Errorf("%s semaphore, not %s one: %w", what[s.Max() != 0], what[bounded], ErrKind)
		}
		return &Semaphore{object: o, s: s}, nil
	}}
}

func newSemaphore(name string, named bool, value int, bounded bool) (*Semaphore, error) {
	if value < 0 || value > math.MaxUint32-1 || (bounded && value == 0) {
		return nil, fmt.Errorf("semaphore value %d out of range", value)
	}
	max := uint32(0)
	if bounded {
		max = uint32(value)
	}
	k := semaphoreKind(bounded)
	return k.create(name, named, k.spec([2]uint64{uint64(max)}, func(b []byte) error {
		shm.At[psync.Semaphore](b, 0).Init(uint32(value), max)
		return nil
	}))
}

// NewSemaphore creates an anonymous semaphore with value units.
func NewSemaphore(value int) (*Semaphore, error) { return newSemaphore("", false, value, false) }

// CreateSemaphore creates the named semaphore name with value units.
func CreateSemaphore(name string, value int) (*Semaphore, error) {
	return newSemaphore(name, true, value, false)
}

// OpenSemaphore opens the named semaphore name (ErrKind for a bounded one).
func OpenSemaphore(name string) (*Semaphore, error) { return semaphoreKind(false).open(name) }

func bounded(s *Semaphore, err error) (*BoundedSemaphore, error) {
	if err != nil {
		return nil, err
	}
	return &BoundedSemaphore{Semaphore: *s}, nil
}

// NewBoundedSemaphore creates an anonymous bounded semaphore with value
// units, which is also its bound; value must be positive.
func NewBoundedSemaphore(value int) (*BoundedSemaphore, error) {
	return bounded(newSemaphore("", false, value, true))
}

// CreateBoundedSemaphore creates the named bounded semaphore name.
func CreateBoundedSemaphore(name string, value int) (*BoundedSemaphore, error) {
	return bounded(newSemaphore(name, true, value, true))
}

// OpenBoundedSemaphore opens the named bounded semaphore name.
func OpenBoundedSemaphore(name string) (*BoundedSemaphore, error) {
	return bounded(semaphoreKind(true).open(name))
}

// Acquire takes a unit, waiting until one is free or ctx is done.
func (s *Semaphore) Acquire(ctx context.Context) error {
	if err := s.closed("semaphore"); err != nil {
		return err
	}
	return s.s.Acquire(ctx, self)
}

// TryAcquire takes a unit if one is free now.
func (s *Semaphore) TryAcquire() bool {
	if s.closed("semaphore") != nil {
		return false
	}
	return s.s.TryAcquire(self)
}

// Release gives a unit back, waking one waiter. For a BoundedSemaphore it
// fails with ErrOverRelease if every unit is free already.
func (s *Semaphore) Release() error {
	if err := s.closed("semaphore"); err != nil {
		return err
	}
	if err := s.s.Release(self); err != nil {
		return fmt.Errorf("semaphore %q: %w", s.Name(), err)
	}
	return nil
}

// Value returns the number of free units now.
func (s *Semaphore) Value() int { return int(s.s.Value()) }

// GobEncode implements gob.GobEncoder.
func (s *Semaphore) GobEncode() ([]byte, error) { return s.encode() }

// GobDecode implements gob.GobDecoder.
func (s *Semaphore) GobDecode(b []byte) error { return semaphoreKind(false).decode(s, b) }

// GobDecode implements gob.GobDecoder.
func (s *BoundedSemaphore) GobDecode(b []byte) error {
	return semaphoreKind(true).decode(&s.Semaphore, b)
}
