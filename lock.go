package mproc

import (
	"context"
	"fmt"

	"mproc/internal/psync"
	"mproc/internal/shm"
)

// Lock is a mutual-exclusion lock shared by processes: Python's
// multiprocessing.Lock with the verbs of sync.Mutex. It is owned by a
// process: goroutines of the process that holds it are excluded like other
// processes, and any of them may unlock it.
//
// # When the holder dies
//
// If the process holding the lock dies (it crashes, or is killed with
// SIGKILL), the lock is not lost: the next process to lock it — one already
// waiting, within about 25 ms of the death, or one arriving later — gets it
// together with ErrOwnerDead from LockContext or TryLock. The state the lock
// protects may be half-updated: repair it, then call MarkConsistent. Until
// somebody does, every acquisition reports ErrOwnerDead again (the lock is
// held all the same), so a process that cannot repair the state can unlock
// and leave the repair to another. Lock, which returns nothing, takes the
// lock in that case too; use Consistent to learn about it.
//
// A process stopped with SIGSTOP still holds the lock: waiters wait.
//
// A *Lock is safe for concurrent use; it must not be used after Close. Each
// waiting goroutine occupies an OS thread while it sleeps.
type Lock struct {
	object
	m *psync.Mutex
}

var lockKind = handleKind[Lock]{kind: shm.KindLock, size: 64, make: func(o object) (*Lock, error) {
	return &Lock{object: o, m: shm.At[psync.Mutex](o.seg.Data(), 0)}, nil
}}

// NewLock creates an anonymous lock, for this process and its children
// (pass it inside the argument of Start).
func NewLock() (*Lock, error) { return lockKind.create("", false, lockKind.spec([2]uint64{}, nil)) }

// CreateLock creates the named lock name for unrelated processes to open;
// os.ErrExist if the name is taken.
func CreateLock(name string) (*Lock, error) {
	return lockKind.create(name, true, lockKind.spec([2]uint64{}, nil))
}

// OpenLock opens the named lock name.
func OpenLock(name string) (*Lock, error) { return lockKind.open(name) }

// Lock locks l, waiting as long as it takes. It takes a lock whose holder
// died like LockContext, without telling (see Consistent). It panics if l
// is closed.
func (l *Lock) Lock() {
	if err := l.LockContext(context.Background()); err != nil && err != ErrOwnerDead {
		panic(err)
	}
}

// LockContext locks l, waiting until it is free or ctx is done. It returns
// nil or ErrOwnerDead (see the type's doc) with the lock held, and
// ctx.Err() or os.ErrClosed without it.
func (l *Lock) LockContext(ctx context.Context) error {
	if err := l.closed("lock"); err != nil {
		return err
	}
	return l.m.Lock(ctx, self)
}

// TryLock locks l if that needs no waiting and reports whether it did. Its
// error is ErrOwnerDead (with the lock held) as for LockContext.
func (l *Lock) TryLock() (bool, error) {
	if err := l.closed("lock"); err != nil {
		return false, err
	}
	return l.m.TryLock(self)
}

// Unlock unlocks l. Unlocking a lock this process does not hold is a
// programming error, and panics like sync.Mutex's (Release returns the
// error instead); the lock is left untouched.
func (l *Lock) Unlock() {
	if err := l.Release(); err != nil {
		panic(err)
	}
}

// Release unlocks l, or returns ErrNotOwner, changing nothing, if this
// process does not hold it.
func (l *Lock) Release() error {
	if err := l.closed("lock"); err != nil {
		return err
	}
	if err := l.m.Unlock(self); err != nil {
		return fmt.Errorf("lock %q: %w", l.Name(), err)
	}
	return nil
}

// MarkConsistent tells the lock that the state it protects is repaired
// after a holder died (ErrOwnerDead). This process must hold l.
func (l *Lock) MarkConsistent() error {
	if err := l.m.MarkConsistent(self); err != nil {
		return fmt.Errorf("lock %q: %w", l.Name(), err)
	}
	return nil
}

// Consistent reports whether the lock's state is not marked inconsistent
// by a holder's death.
func (l *Lock) Consistent() bool { return l.m.Consistent() }

// GobEncode implements gob.GobEncoder: a *Lock in the argument of Start
// reaches the child as the same lock.
func (l *Lock) GobEncode() ([]byte, error) { return l.encode() }

// GobDecode implements gob.GobDecoder for a child receiving its argument.
func (l *Lock) GobDecode(b []byte) error { return lockKind.decode(l, b) }
