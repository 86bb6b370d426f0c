package psync

import (
	"context"
	"sync/atomic"

	"mproc/internal/failpoint"
)

// Failpoints (package failpoint) of the reader-writer lock, for the
// torture tests. Each is hit with meta held, right after the step it
// names changed the shared state, so a process killed there also leaves
// meta to a dead owner.
const (
	FailRWReadAcquired  = "rwmutex.read.acquired"  // me's read count raised; RLock not yet returned
	FailRWWriteAcquired = "rwmutex.write.acquired" // writer is me; Lock not yet returned
	FailRWWriteWaiting  = "rwmutex.write.waiting"  // me counted as a waiting writer, about to sleep
	FailRWReadReleased  = "rwmutex.read.released"  // me's read count lowered, waiters not yet woken
	FailRWWriteReleased = "rwmutex.write.released" // writer cleared, waiters not yet woken
)

// RWMutex is a robust reader-writer lock with writer preference: once a
// writer waits, new readers wait behind it, so a stream of readers cannot
// starve writers (and a reader must not read-lock again while it holds a
// read lock, as with sync.RWMutex: a writer waiting in between would
// deadlock it).
//
// Every process that holds read locks or waits to write has a record
// with its read count and its waiting-writer count; the totals are
// the sums of the records, so a dead process's share is dropped by freeing
// its record. A dead reader is forgotten; a dead writer makes the next
// acquirer, reader or writer, get ErrOwnerDead until a writer calls
// MarkConsistent. Everything but the futex word and the waiter count is
// guarded by meta, a Mutex held only for a few instructions.
type RWMutex struct {
	meta    Mutex
	seq     atomic.Uint32 // futex word, bumped by every release
	waiters atomic.Uint32
	writer  uint64 // token of the writer holding the lock
	flags   uint32 // flagInconsistent
	_       uint32
	recs    records // held: read locks; waiting: writers waiting
}

// enter takes meta, waiting until ctx is done at most (meta is held for a
// few instructions, but its holder may be stopped there), and recovers
// from a process that died inside it by dropping the records of dead
// processes. Nothing else can be half-written: every other step is a
// single store.
func (rw *RWMutex) enter(ctx context.Context, me uint64) error {
	err := rw.meta.Lock(ctx, me)
	if err == ErrOwnerDead {
		rw.reap()
		rw.meta.MarkConsistent(me)
		return nil
	}
	return err
}

func (rw *RWMutex) leave(me uint64, wake bool) {
	if wake {
		rw.seq.Add(1)
	}
	rw.meta.Unlock(me)
	if wake && rw.waiters.Load() != 0 {
		wakeAll(&rw.seq)
	}
}

// reap drops dead readers and waiting writers and a dead writer. meta is
// held.
func (rw *RWMutex) reap() bool {
	changed := false
	rw.recs.reap(func(*record) { changed = true })
	if rw.writer != 0 && !Alive(rw.writer) {
		rw.writer = 0
		rw.flags |= flagInconsistent
		changed = true
	}
	return changed
}

func (rw *RWMutex) consistency() error {
	if rw.flags&flagInconsistent != 0 {
		return ErrOwnerDead
	}
	return nil
}

// RLock acquires a read lock for me. It returns nil or ErrOwnerDead with
// the read lock held, ctx.Err() without.
func (rw *RWMutex) RLock(ctx context.Context, me uint64) error {
	for {
		if err := rw.enter(ctx, me); err != nil {
			return err
		}
		_, writersWaiting := rw.recs.sum()
		if rw.writer == 0 && writersWaiting == 0 {
			if r := rw.recs.claim(me); r != nil {
				r.held++
				failpoint.Hit(FailRWReadAcquired)
				err := rw.consistency()
				rw.leave(me, false)
				return err
			}
		}
		if err := rw.sleep(ctx, me); err != nil {
			return err
		}
	}
}

// Lock acquires the write lock for me, with RLock's results.
func (rw *RWMutex) Lock(ctx context.Context, me uint64) error {
	var waiting *record // me's record while it counts as a waiting writer
	for {
		if err := rw.enter(ctx, me); err != nil {
			if waiting != nil {
				rw.unwait(me, waiting)
			}
			return err
		}
		readers, _ := rw.recs.sum()
		if rw.writer == 0 && readers == 0 {
			rw.writer = me
			if waiting != nil {
				waiting.waiting--
				waiting.release()
			}
			failpoint.Hit(FailRWWriteAcquired)
			err := rw.consistency()
			rw.leave(me, false)
			return err
		}
		if waiting == nil {
			if waiting = rw.recs.claim(me); waiting != nil {
				waiting.waiting++
			}
		}
		if waiting != nil {
			failpoint.Hit(FailRWWriteWaiting)
		}
		if err := rw.sleep(ctx, me); err != nil {
			if waiting != nil {
				rw.unwait(me, waiting)
			}
			return err
		}
	}
}

// unwait uncounts me as a waiting writer, when Lock gives up.
func (rw *RWMutex) unwait(me uint64, waiting *record) {
	rw.enter(context.Background(), me)
	// The record may have been reaped and reused only if me were dead; it
	// is me's still.
	waiting.waiting--
	waiting.release()
	rw.leave(me, true) // readers held back by me may go
}

// sleep releases meta and waits for a release, one slice at most; at the
// end of a slice it drops dead processes' shares.
func (rw *RWMutex) sleep(ctx context.Context, me uint64) error {
	s := rw.seq.Load()
	rw.waiters.Add(1)
	rw.leave(me, false)
	err := waitSlice(ctx, &rw.seq, s)
	rw.waiters.Add(^uint32(0))
	if err == errSliceOver {
		if err := rw.enter(ctx, me); err != nil {
			return err
		}
		rw.leave(me, rw.reap())
		return nil
	}
	return err
}

// RUnlock releases one read lock of me; ErrNotOwner if me holds none.
func (rw *RWMutex) RUnlock(me uint64) error {
	rw.enter(context.Background(), me)
	r := rw.recs.find(me)
	if r == nil || r.held == 0 {
		rw.leave(me, false)
		return ErrNotOwner
	}
	r.held--
	r.release()
	failpoint.Hit(FailRWReadReleased)
	rw.leave(me, true)
	return nil
}

// Unlock releases the write lock; ErrNotOwner if me does not hold it.
func (rw *RWMutex) Unlock(me uint64) error {
	rw.enter(context.Background(), me)
	if rw.writer != me {
		rw.leave(me, false)
		return ErrNotOwner
	}
	rw.writer = 0
	failpoint.Hit(FailRWWriteReleased)
	rw.leave(me, true)
	return nil
}

// MarkConsistent clears the mark a dead writer left; me must hold the
// write lock.
func (rw *RWMutex) MarkConsistent(me uint64) error {
	rw.enter(context.Background(), me)
	defer rw.leave(me, false)
	if rw.writer != me {
		return ErrNotOwner
	}
	rw.flags &^= flagInconsistent
	return nil
}

// Consistent reports whether no dead writer's mark is pending.
func (rw *RWMutex) Consistent(me uint64) bool {
	rw.enter(context.Background(), me)
	defer rw.leave(me, false)
	return rw.flags&flagInconsistent == 0
}

// TryRLock and TryLock are RLock and Lock without waiting.
func (rw *RWMutex) TryRLock(me uint64) (bool, error) {
	rw.enter(context.Background(), me)
	defer rw.leave(me, false)
	if _, ww := rw.recs.sum(); rw.writer == 0 && ww == 0 {
		if r := rw.recs.claim(me); r != nil {
			r.held++
			return true, rw.consistency()
		}
	}
	return false, nil
}

func (rw *RWMutex) TryLock(me uint64) (bool, error) {
	rw.enter(context.Background(), me)
	defer rw.leave(me, false)
	for try := 0; try < 2; try++ {
		if readers, _ := rw.recs.sum(); rw.writer == 0 && readers == 0 {
			rw.writer = me
			return true, rw.consistency()
		}
		if !rw.reap() {
			break
		}
	}
	return false, nil
}
