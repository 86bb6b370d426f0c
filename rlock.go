package mproc

import (
	"context"
	"fmt"
	"sync/atomic"

	"mproc/internal/psync"
	"mproc/internal/shm"
)

// RLock is a re-entrant lock shared by processes: Python's
// multiprocessing.RLock. Its owner may lock it again without blocking and
// must unlock it as many times.
//
// The owner is the handle: Go has no thread identity to go by, so each
// *RLock value (from NewRLock, CreateRLock, OpenRLock, or received in a
// child's argument) is one owner, in its process. Code that calls itself
// recursively passes the same handle down; goroutines that must exclude
// each other use different handles (Clone), even in one process. A handle
// used by two goroutines at once is one owner to the lock and does not
// exclude them from each other.
//
// A holder's death is handled as for Lock (ErrOwnerDead, MarkConsistent).
type RLock struct {
	object
	r  *psync.RMutex
	id uint32 // this handle's holder id
}

var holderIDs atomic.Uint32

var rlockKind = handleKind[RLock]{kind: shm.KindRLock, size: 64, make: func(o object) (*RLock, error) {
	return &RLock{object: o, r: shm.At[psync.RMutex](o.seg.Data(), 0), id: holderIDs.Add(1)}, nil
}}

// NewRLock creates an anonymous re-entrant lock.
func NewRLock() (*RLock, error) { return rlockKind.create("", false, rlockKind.spec([2]uint64{}, nil)) }

// CreateRLock creates the named re-entrant lock name.
func CreateRLock(name string) (*RLock, error) {
	return rlockKind.create(name, true, rlockKind.spec([2]uint64{}, nil))
}

// OpenRLock opens the named re-entrant lock name.
func OpenRLock(name string) (*RLock, error) { return rlockKind.open(name) }

// Clone returns another handle of the same lock: another owner.
func (r *RLock) Clone() *RLock {
	return &RLock{object: r.object, r: r.r, id: holderIDs.Add(1)}
}

// Lock locks r, or deepens this handle's hold on it. See Lock.Lock for a
// dead holder.
func (r *RLock) Lock() {
	if err := r.LockContext(context.Background()); err != nil && err != ErrOwnerDead {
		panic(err)
	}
}

// LockContext locks r like Lock, waiting until ctx is done at most.
func (r *RLock) LockContext(ctx context.Context) error {
	if err := r.closed("rlock"); err != nil {
		return err
	}
	return r.r.Lock(ctx, self, r.id)
}

// TryLock locks r if that needs no waiting.
func (r *RLock) TryLock() (bool, error) {
	if err := r.closed("rlock"); err != nil {
		return false, err
	}
	return r.r.TryLock(self, r.id)
}

// Unlock undoes one Lock; it panics if this handle does not hold r.
func (r *RLock) Unlock() {
	if err := r.Release(); err != nil {
		panic(err)
	}
}

// Release undoes one Lock, or returns ErrNotOwner.
func (r *RLock) Release() error {
	if err := r.closed("rlock"); err != nil {
		return err
	}
	if err := r.r.Unlock(self, r.id); err != nil {
		return fmt.Errorf("rlock %q: %w", r.Name(), err)
	}
	return nil
}

// Depth returns how many times this handle holds r (0: not at all).
func (r *RLock) Depth() int { return r.r.Depth(self, r.id) }

// MarkConsistent: see Lock.MarkConsistent.
func (r *RLock) MarkConsistent() error { return r.r.MarkConsistent(self, r.id) }

// Consistent: see Lock.Consistent.
func (r *RLock) Consistent() bool { return r.r.Consistent() }

// GobEncode implements gob.GobEncoder; the child's handle is a new owner.
func (r *RLock) GobEncode() ([]byte, error) { return r.encode() }

// GobDecode implements gob.GobDecoder.
func (r *RLock) GobDecode(b []byte) error { return rlockKind.decode(r, b) }
