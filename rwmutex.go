package mproc

import (
	"context"
	"fmt"

	"mproc/internal/psync"
	"mproc/internal/shm"
)

// RWMutex is a reader-writer lock shared by processes, with the verbs of
// sync.RWMutex. Its owners are processes: any number may hold read locks,
// or one the write lock.
//
// Writers are preferred: once a writer waits, new readers wait behind it,
// so readers cannot starve writers; a process must therefore not take a
// second read lock while it holds one (a writer arriving in between would
// deadlock it), as with sync.RWMutex.
//
// Death: a reader that dies is forgotten, and a writer waiting for it goes
// on within about 25 ms; a waiting writer that dies stops holding readers
// back; a writer that dies holding the lock makes the next acquirer,
// reader or writer, get ErrOwnerDead (with what it asked for held) until a
// writer calls MarkConsistent. The lock keeps a record for each process
// that holds read locks or waits to write, up to 64 processes at once; a
// 65th waits for a record to free.
type RWMutex struct {
	object
	rw *psync.RWMutex
}

var rwmutexKind = handleKind[RWMutex]{kind: shm.KindRWMutex, size: psync.RWMutexSize, make: func(o object) (*RWMutex, error) {
	return &RWMutex{object: o, rw: shm.At[psync.RWMutex](o.seg.Data(), 0)}, nil
}}

// NewRWMutex creates an anonymous reader-writer lock.
func NewRWMutex() (*RWMutex, error) {
	return rwmutexKind.create("", false, rwmutexKind.spec([2]uint64{}, nil))
}

// CreateRWMutex creates the named reader-writer lock name.
func CreateRWMutex(name string) (*RWMutex, error) {
	return rwmutexKind.create(name, true, rwmutexKind.spec([2]uint64{}, nil))
}

// OpenRWMutex opens the named reader-writer lock name.
func OpenRWMutex(name string) (*RWMutex, error) { return rwmutexKind.open(name) }

// Lock takes the write lock, waiting as long as it takes (see Lock.Lock
// for a dead holder).
func (rw *RWMutex) Lock() {
	if err := rw.LockContext(context.Background()); err != nil && err != ErrOwnerDead {
		panic(err)
	}
}

// LockContext takes the write lock, waiting until ctx is done at most. It
// returns nil or ErrOwnerDead with the lock held.
func (rw *RWMutex) LockContext(ctx context.Context) error {
	if err := rw.closed("rwmutex"); err != nil {
		return err
	}
	return rw.rw.Lock(ctx, self)
}

// TryLock takes the write lock if that needs no waiting.
func (rw *RWMutex) TryLock() (bool, error) {
	if err := rw.closed("rwmutex"); err != nil {
		return false, err
	}
	return rw.rw.TryLock(self)
}

// Unlock releases the write lock; it panics if this process does not hold
// it.
func (rw *RWMutex) Unlock() { must(rw.rw.Unlock(self), "rwmutex", rw.Name()) }

// RLock takes a read lock, waiting as long as it takes.
func (rw *RWMutex) RLock() {
	if err := rw.RLockContext(context.Background()); err != nil && err != ErrOwnerDead {
		panic(err)
	}
}

// RLockContext takes a read lock, waiting until ctx is done at most.
func (rw *RWMutex) RLockContext(ctx context.Context) error {
	if err := rw.closed("rwmutex"); err != nil {
		return err
	}
	return rw.rw.RLock(ctx, self)
}

// TryRLock takes a read lock if that needs no waiting.
func (rw *RWMutex) TryRLock() (bool, error) {
	if err := rw.closed("rwmutex"); err != nil {
		return false, err
	}
	return rw.rw.TryRLock(self)
}

// RUnlock releases one read lock of this process; it panics if there is
// none.
func (rw *RWMutex) RUnlock() { must(rw.rw.RUnlock(self), "rwmutex", rw.Name()) }

// MarkConsistent clears the mark of a writer that died; this process must
// hold the write lock.
func (rw *RWMutex) MarkConsistent() error { return rw.rw.MarkConsistent(self) }

// Consistent reports whether no dead writer's mark is pending.
func (rw *RWMutex) Consistent() bool { return rw.rw.Consistent(self) }

// GobEncode implements gob.GobEncoder.
func (rw *RWMutex) GobEncode() ([]byte, error) { return rw.encode() }

// GobDecode implements gob.GobDecoder.
func (rw *RWMutex) GobDecode(b []byte) error { return rwmutexKind.decode(rw, b) }

// must panics with err, naming the object: the unlock of a lock not held
// is a programming error, as in package sync.
func must(err error, kind, name string) {
	if err != nil {
		panic(fmt.Errorf("%s %q: %w", kind, name, err))
	}
}
