package psync

import (
	"context"
	"sync/atomic"
)

// Semaphore is a counting semaphore shared by processes. Unbounded (max
// 0), it is a plain counter any process may release, as in Python: units
// taken by a process that dies stay taken. Bounded, it is a pool of max
// units that processes take and give back, and it records how many units
// each process holds (up to NRecords processes at once; a process that finds
// every record taken waits): the units of a process that died are returned
// when a waiter's sleep slice ends, when a TryAcquire finds none, or when
// the next caller finds the meta mutex left by a dead holder.
// A release from a process that holds no units is allowed (a bounded
// semaphore can be used for signalling too) and is only checked against
// the bound; a dead process's units are returned up to the bound.
type Semaphore struct {
	meta    Mutex
	value   atomic.Uint32 // futex word: units available
	waiters atomic.Uint32
	max     uint32 // 0: unbounded; set by Init
	_       uint32
	recs    records // held: units (bounded only)
}

// Init sets the initial value and the bound (0: none) of a new
// Semaphore.
func (s *Semaphore) Init(value, max uint32) {
	s.value.Store(value)
	s.max = max
}

// Max returns the bound, 0 for none.
func (s *Semaphore) Max() uint32 { return s.max }

// Value returns the units available now.
func (s *Semaphore) Value() uint32 { return s.value.Load() }

func (s *Semaphore) enter(me uint64) {
	if err := s.meta.Lock(context.Background(), me); err == ErrOwnerDead {
		// The dead process was inside: its record is returned with it, so
		// a half-done step (record counted, value not yet taken) errs
		// toward one unit too many, which the bound caps.
		s.reap()
		s.meta.MarkConsistent(me)
	}
}

func (s *Semaphore) leave(me uint64) { s.meta.Unlock(me) }

// reap returns the units of dead holders. meta is held.
func (s *Semaphore) reap() bool {
	if s.max == 0 {
		return false
	}
	returned := false
	s.recs.reap(func(r *record) {
		if r.held > 0 {
			s.value.Store(min(s.value.Load()+r.held, s.max))
			returned = true
		}
	})
	return returned
}

// TryAcquire takes a unit if one is available now.
func (s *Semaphore) TryAcquire(me uint64) bool {
	s.enter(me)
	defer s.leave(me)
	ok := s.take(me)
	if !ok && s.reap() {
		ok = s.take(me)
	}
	return ok
}

// take takes a unit for me if one is available and, when bounded, me has
// a record. meta is held.
func (s *Semaphore) take(me uint64) bool {
	if s.value.Load() == 0 {
		return false
	}
	if s.max != 0 {
		r := s.recs.claim(me)
		if r == nil {
			return false
		}
		r.held++ // recorded before taken: see enter
	}
	s.value.Add(^uint32(0))
	return true
}

// Acquire takes a unit, waiting until one is available or ctx is done.
func (s *Semaphore) Acquire(ctx context.Context, me uint64) error {
	for {
		s.enter(me)
		if s.take(me) {
			s.leave(me)
			return nil
		}
		s.waiters.Add(1)
		s.leave(me)
		err := waitSlice(ctx, &s.value, 0)
		s.waiters.Add(^uint32(0))
		switch err {
		case nil:
		case errSliceOver:
			s.enter(me)
			s.reap()
			s.leave(me)
		default:
			s.wakeOne() // pass on a wake-up this waiter may have taken
			return err
		}
	}
}

// Release gives back a unit: ErrOverRelease, changing nothing, if that
// would pass the bound.
func (s *Semaphore) Release(me uint64) error {
	s.enter(me)
	if s.max != 0 {
		if s.value.Load() >= s.max {
			s.leave(me)
			return ErrOverRelease
		}
		if r := s.recs.find(me); r != nil && r.held > 0 {
			r.held--
			r.release()
		}
	}
	s.value.Add(1)
	s.leave(me)
	s.wakeOne()
	return nil
}

func (s *Semaphore) wakeOne() {
	if s.waiters.Load() != 0 {
		futexWake(&s.value, 1)
	}
}
