// Package psync holds mproc's cross-process synchronisation algorithms:
// a robust mutex and, built on it, the re-entrant lock, the reader-writer
// lock, semaphores, events, conditions and barriers.
//
// Every type here is a plain struct of atomic words with no pointers, meant
// to be placed in shared memory (internal/shm casts it there) and used by
// several processes at once; its zero value is the initial state. The
// algorithms are the same over Go heap memory, which is how the unit tests
// run them under the race detector, with goroutines posing as processes.
//
// # Owners
//
// An owner is a process, named by its packed owner token (internal/owner:
// pid plus start time, never zero, never reused). Methods take the caller's
// token as an argument, me, so that tests can simulate many processes in
// one; the root package passes its own process's token.
//
// # Blocking and dead owners
//
// Waiters sleep on a futex word in slices of at most Slice (25 ms). When a
// slice ends they check whether the process they wait for is still alive
// (Alive) and, if it is dead, recover: the first waiter to see a dead
// mutex owner takes the mutex over with a compare-and-swap on the owner
// word and gets ErrOwnerDead. A death is therefore noticed within one
// slice plus a liveness check (~12 µs), with no watcher thread, and a
// mutex that is never contended never pays for it. A process stopped with
// SIGSTOP is alive: waiters wait for it.
//
// Wake-ups are counted: an unlock makes a futex system call only when a
// waiter has announced itself, and every wait re-checks its condition, so
// spurious and lost wake-ups cost at most one slice.
package psync

import (
	"context"
	"errors"
	"sync/atomic"
	"unsafe"

	"mproc/internal/failpoint"

	"mproc/internal/futex"
	"mproc/internal/owner"
)

// Errors. The root package re-exports them.
var (
	ErrOwnerDead     = errors.New("mproc: previous owner died holding the lock")
	ErrNotOwner      = errors.New("mproc: unlock by a process or handle that does not hold the lock")
	ErrOverRelease   = errors.New("mproc: semaphore released more times than acquired")
	ErrBrokenBarrier = errors.New("mproc: barrier broken")
)

// Alive reports whether the process with packed token tok is alive. Tests
// replace it to simulate deaths.
var Alive = func(tok uint64) bool { return owner.Alive(owner.Unpack(tok)) }

// spins is how many times a contended Lock re-checks the owner word before
// it sleeps: a lock held for a short critical section by a process running
// on another core is usually free again within a few hundred nanoseconds,
// far less than a futex sleep and wake-up.
const spins = 100

// Mutex is a robust mutual-exclusion lock owned by a process.
//
// Layout (24 bytes, 8-aligned): the owner's token, the number of
// sleeping waiters, the futex word that unlocks bump, and flags.
type Mutex struct {
	owner   atomic.Uint64 // 0: unlocked
	waiters atomic.Uint32 // waiters that may be asleep on seq
	seq     atomic.Uint32 // futex word: bumped when a waiter must look again
	flags   atomic.Uint32 // flagInconsistent
	_       uint32
}

const flagInconsistent = 1

// TryLock acquires m if it is free, or if its owner is dead (then it
// returns true and ErrOwnerDead). It never blocks. It also returns
// ErrOwnerDead while the protected state is marked inconsistent.
func (m *Mutex) TryLock(me uint64) (bool, error) {
	if m.owner.CompareAndSwap(0, me) {
		return true, m.consistency()
	}
	if cur := m.owner.Load(); cur != 0 && cur != me && !Alive(cur) {
		if m.takeOver(cur, me) {
			return true, ErrOwnerDead
		}
	}
	return false, nil
}

// Lock acquires m, blocking until it is free, its owner dies or ctx is
// done. It returns nil or ErrOwnerDead with m held, and ctx.Err()
// without.
func (m *Mutex) Lock(ctx context.Context, me uint64) error {
	if m.owner.CompareAndSwap(0, me) {
		failpoint.Hit(FailMutexAcquired)
		return m.consistency()
	}
	for range spins {
		if m.owner.Load() == 0 && m.owner.CompareAndSwap(0, me) {
			failpoint.Hit(FailMutexAcquired)
			return m.consistency()
		}
	}
	return m.lockSlow(ctx, me)
}

// Failpoints (package failpoint) of the mutex, for the torture tests.
const (
	FailMutexAcquired = "mutex.acquired" // owner is this process, Lock not yet returned
	FailMutexWaiting  = "mutex.waiting"  // counted in waiters, about to sleep
	FailMutexReleased = "mutex.released" // owner cleared, waiters not yet woken
)

func (m *Mutex) lockSlow(ctx context.Context, me uint64) error {
	m.waiters.Add(1)
	defer m.waiters.Add(^uint32(0))
	failpoint.Hit(FailMutexWaiting)
	for {
		s := m.seq.Load()
		cur := m.owner.Load()
		if cur == 0 {
			if m.owner.CompareAndSwap(0, me) {
				failpoint.Hit(FailMutexAcquired)
				return m.consistency()
			}
			continue
		}
		err := waitSlice(ctx, &m.seq, s)
		if err == errSliceOver {
			if cur = m.owner.Load(); cur != 0 && cur != me && !Alive(cur) && m.takeOver(cur, me) {
				return ErrOwnerDead
			}
			continue
		}
		if err != nil {
			// The wake-up this waiter may have consumed is passed on.
			m.wakeOne()
			return err
		}
	}
}

// takeOver replaces the dead owner dead by me and marks the state
// inconsistent. Only one of the waiters that saw the death succeeds.
func (m *Mutex) takeOver(dead, me uint64) bool {
	if !m.owner.CompareAndSwap(dead, me) {
		return false
	}
	m.flags.Or(flagInconsistent)
	return true
}

func (m *Mutex) consistency() error {
	if m.flags.Load()&flagInconsistent != 0 {
		return ErrOwnerDead
	}
	return nil
}

// Unlock releases m, which me must hold; otherwise it returns ErrNotOwner
// and changes nothing.
func (m *Mutex) Unlock(me uint64) error {
	if !m.owner.CompareAndSwap(me, 0) {
		return ErrNotOwner
	}
	failpoint.Hit(FailMutexReleased)
	m.wakeOne()
	return nil
}

func (m *Mutex) wakeOne() {
	if m.waiters.Load() != 0 {
		m.seq.Add(1)
		futex.Wake(futex.Addr(&m.seq), 1)
	}
}

// MarkConsistent clears the inconsistent mark left by a dead owner; me
// must hold m.
func (m *Mutex) MarkConsistent(me uint64) error {
	if m.owner.Load() != me {
		return ErrNotOwner
	}
	m.flags.And(^uint32(flagInconsistent))
	return nil
}

// Consistent reports whether the protected state is not marked
// inconsistent.
func (m *Mutex) Consistent() bool { return m.flags.Load()&flagInconsistent == 0 }

// Owner returns the holder's token, 0 when unlocked.
func (m *Mutex) Owner() uint64 { return m.owner.Load() }

// HeldBy reports whether me holds m.
func (m *Mutex) HeldBy(me uint64) bool { return m.owner.Load() == me }

// errSliceOver says a wait slice ended with nothing else to report.
var errSliceOver = futex.ErrSliceOver

// waitSlice sleeps on word while it holds val, for at most one
// futex.Slice (futex.WaitSlice).
func waitSlice(ctx context.Context, word *atomic.Uint32, val uint32) error {
	return futex.WaitSlice(ctx, futex.Addr(word), val)
}

func init() {
	var w atomic.Uint32
	if unsafe.Sizeof(w) != 4 || unsafe.Sizeof(Mutex{}) != 24 {
		panic("mproc: psync layout changed")
	}
}

func wakeAll(w *atomic.Uint32)          { futex.WakeAll(futex.Addr(w)) }
func futexWake(w *atomic.Uint32, n int) { futex.Wake(futex.Addr(w), n) }
