package psync

import (
	"context"
	"sync/atomic"

	"mproc/internal/failpoint"
)

// Failpoints (package failpoint) of the semaphore, for the torture tests.
// FailSemTaking and FailSemReleasing are hit with meta held, between the
// two words a bounded semaphore's acquisition or release changes (the
// caller's record and the value).
const (
	FailSemTaking    = "semaphore.taking"    // halfway through taking a unit, meta held
	FailSemAcquired  = "semaphore.acquired"  // a unit taken; Acquire not yet returned
	FailSemWaiting   = "semaphore.waiting"   // counted as a waiter, about to sleep
	FailSemReleasing = "semaphore.releasing" // halfway through giving a unit back, meta held
	FailSemReleased  = "semaphore.released"  // a unit given back, waiters not yet woken
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
//
// A bounded acquisition or release changes two words under meta, the
// caller's record and the value, and a process killed between them must
// leave no unit lost and none counted twice. So the step is journaled in
// the record: before the first change, the record's waiting field (which
// a semaphore does not otherwise use) is set to 1 + min(value + held,
// max), the units the value and the record stand for together, which the
// step does not change; it is cleared after the second change. Whoever
// reaps a dead record with a journal sets the value to that sum, whichever
// half of the step was done; a dead record without one gives its held
// units back. Both return every unit of the dead process, capped at max.
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

// enter takes meta, waiting until ctx is done at most, and recovers from a
// process that died inside it: its record, journal and all, is reaped.
func (s *Semaphore) enter(ctx context.Context, me uint64) error {
	err := s.meta.Lock(ctx, me)
	if err == ErrOwnerDead {
		s.reap()
		s.meta.MarkConsistent(me)
		return nil
	}
	return err
}

func (s *Semaphore) leave(me uint64) { s.meta.Unlock(me) }

// reap returns the units of dead holders. meta is held.
func (s *Semaphore) reap() bool {
	if s.max == 0 {
		return false
	}
	returned := false
	s.recs.reap(func(r *record) {
		switch {
		case r.waiting != 0: // died inside a step: see the type's comment
			s.value.Store(r.waiting - 1)
		case r.held > 0:
			s.value.Store(uint32(min(uint64(s.value.Load())+uint64(r.held), uint64(s.max))))
		default:
			return
		}
		returned = true
	})
	return returned
}

// journal returns what a bounded step's journal in r holds: 1 + the units
// the value and r stand for together, capped at the bound. meta is held.
func (s *Semaphore) journal(r *record) uint32 {
	return 1 + uint32(min(uint64(s.value.Load())+uint64(r.held), uint64(s.max)))
}

// TryAcquire takes a unit if one is available now.
func (s *Semaphore) TryAcquire(me uint64) bool {
	s.enter(context.Background(), me)
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
	if s.max == 0 {
		s.value.Add(^uint32(0))
		return true
	}
	r := s.recs.claim(me)
	if r == nil {
		return false
	}
	r.waiting = s.journal(r)
	r.held++
	failpoint.Hit(FailSemTaking)
	s.value.Add(^uint32(0))
	r.waiting = 0
	return true
}

// Acquire takes a unit, waiting until one is available or ctx is done
// (also while another process, stopped, holds meta).
func (s *Semaphore) Acquire(ctx context.Context, me uint64) error {
	for {
		if err := s.enter(ctx, me); err != nil {
			return err
		}
		if s.take(me) {
			s.leave(me)
			failpoint.Hit(FailSemAcquired)
			return nil
		}
		s.waiters.Add(1)
		s.leave(me)
		failpoint.Hit(FailSemWaiting)
		err := waitSlice(ctx, &s.value, 0)
		s.waiters.Add(^uint32(0))
		switch err {
		case nil:
		case errSliceOver:
			if err := s.enter(ctx, me); err != nil {
				return err
			}
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
	s.enter(context.Background(), me)
	if s.max != 0 {
		if s.value.Load() >= s.max {
			s.leave(me)
			return ErrOverRelease
		}
		if r := s.recs.find(me); r != nil && r.held > 0 {
			r.waiting = s.journal(r)
			s.value.Add(1)
			failpoint.Hit(FailSemReleasing)
			r.held--
			r.waiting = 0
			r.release()
			s.leave(me)
			failpoint.Hit(FailSemReleased)
			s.wakeOne()
			return nil
		}
	}
	s.value.Add(1)
	s.leave(me)
	failpoint.Hit(FailSemReleased)
	s.wakeOne()
	return nil
}

func (s *Semaphore) wakeOne() {
	if s.waiters.Load() != 0 {
		futexWake(&s.value, 1)
	}
}
