package psync

import (
	"context"
	"sync/atomic"
)

// RMutex is a re-entrant robust mutex. Its owner is a process and, inside
// it, a holder id (the root package gives every RLock handle its own): the
// same process and holder may lock it again, and must unlock it as many
// times.
//
// Layout (32 bytes): the Mutex, the holder id, the depth.
type RMutex struct {
	m      Mutex
	holder atomic.Uint32 // written only by the owner; 0 when unlocked
	depth  atomic.Uint32 // written only by the owner
}

// Lock acquires r for (me, holder), re-entrantly. Errors are Mutex.Lock's;
// on ErrOwnerDead the depth starts afresh at 1.
func (r *RMutex) Lock(ctx context.Context, me uint64, holder uint32) error {
	if r.m.HeldBy(me) && r.holder.Load() == holder {
		r.depth.Add(1)
		return nil
	}
	err := r.m.Lock(ctx, me)
	if err == nil || err == ErrOwnerDead {
		r.holder.Store(holder)
		r.depth.Store(1)
	}
	return err
}

// TryLock is Lock without waiting.
func (r *RMutex) TryLock(me uint64, holder uint32) (bool, error) {
	if r.m.HeldBy(me) && r.holder.Load() == holder {
		r.depth.Add(1)
		return true, nil
	}
	ok, err := r.m.TryLock(me)
	if ok {
		r.holder.Store(holder)
		r.depth.Store(1)
	}
	return ok, err
}

// Unlock undoes one Lock by (me, holder); ErrNotOwner if they do not hold
// r.
func (r *RMutex) Unlock(me uint64, holder uint32) error {
	if !r.m.HeldBy(me) || r.holder.Load() != holder || r.depth.Load() == 0 {
		return ErrNotOwner
	}
	if r.depth.Add(^uint32(0)) > 0 {
		return nil
	}
	r.holder.Store(0)
	return r.m.Unlock(me)
}

// MarkConsistent is Mutex.MarkConsistent for the holder.
func (r *RMutex) MarkConsistent(me uint64, holder uint32) error {
	if r.holder.Load() != holder {
		return ErrNotOwner
	}
	return r.m.MarkConsistent(me)
}

// Consistent is Mutex.Consistent.
func (r *RMutex) Consistent() bool { return r.m.Consistent() }

// Depth returns how many times the holder has locked r, 0 if (me, holder)
// does not hold it.
func (r *RMutex) Depth(me uint64, holder uint32) int {
	if !r.m.HeldBy(me) || r.holder.Load() != holder {
		return 0
	}
	return int(r.depth.Load())
}
