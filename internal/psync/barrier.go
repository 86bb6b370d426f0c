package psync

import (
	"context"
	"sync/atomic"
)

// MaxParties bounds a Barrier's parties.
const MaxParties = 256

// Barrier makes a fixed number of parties wait for each other, Python's
// Barrier. Its futex word holds the generation (shifted left by one) and a
// broken bit: a trip bumps the generation, a break sets the bit, a Reset
// bumps the generation without counting it as a trip. The tokens of the
// parties waiting in the current generation are recorded, so that a party
// that dies while waiting breaks the barrier for the others (within a
// slice). A party that dies before it arrives cannot be told from a slow
// one: bound Wait with a context for that.
type Barrier struct {
	meta      Mutex
	state     atomic.Uint32 // futex word: generation<<1 | broken
	lastReset atomic.Uint32 // 1 + the last generation ended by Reset; 0: none
	waiters   atomic.Uint32
	parties   uint32 // set by Init
	count     uint32 // arrived in this generation
	_         uint32
	arrived   [MaxParties]uint64
}

const brokenBit = 1

// Init sets the number of parties of a new Barrier.
func (b *Barrier) Init(parties uint32) { b.parties = parties }

// Parties returns the number of parties.
func (b *Barrier) Parties() int { return int(b.parties) }

func (b *Barrier) enter(me uint64) {
	if err := b.meta.Lock(context.Background(), me); err == ErrOwnerDead {
		// A party died arriving: the barrier cannot trip as planned.
		b.breakLocked()
		b.meta.MarkConsistent(me)
	}
	if b.parties < 1 || b.parties > MaxParties || b.count >= b.parties {
		// Impossible counts (damaged memory): made safe to index with,
		// and the barrier broken.
		b.parties = min(max(b.parties, 1), MaxParties)
		b.count = 0
		b.breakLocked()
	}
}

func (b *Barrier) leave(me uint64) { b.meta.Unlock(me) }

func (b *Barrier) breakLocked() {
	if b.state.Load()&brokenBit == 0 {
		b.state.Or(brokenBit)
		if b.waiters.Load() != 0 {
			wakeAll(&b.state)
		}
	}
}

// Wait arrives at the barrier and waits for the other parties. It returns
// the arrival index (0 first, parties-1 last) when the barrier trips;
// ErrBrokenBarrier when it is or becomes broken; ctx.Err() when ctx ends
// the wait, which breaks the barrier for the other parties, as a timeout
// does in Python.
func (b *Barrier) Wait(ctx context.Context, me uint64) (int, error) {
	b.enter(me)
	st := b.state.Load()
	if st&brokenBit != 0 {
		b.leave(me)
		return 0, ErrBrokenBarrier
	}
	idx := b.count
	if idx+1 == b.parties {
		b.count = 0
		clear(b.arrived[:b.parties])
		b.state.Store(st + 2) // trip: the next generation
		b.leave(me)
		if b.waiters.Load() != 0 {
			wakeAll(&b.state)
		}
		return int(idx), nil
	}
	b.arrived[idx] = me
	b.count++
	b.leave(me)
	gen := st >> 1
	for {
		cur := b.state.Load()
		if cur>>1 != gen {
			if b.lastReset.Load() == gen+1 {
				return 0, ErrBrokenBarrier
			}
			return int(idx), nil
		}
		if cur&brokenBit != 0 {
			return 0, ErrBrokenBarrier
		}
		b.waiters.Add(1)
		err := waitSlice(ctx, &b.state, cur)
		b.waiters.Add(^uint32(0))
		switch err {
		case nil:
		case errSliceOver:
			b.enter(me)
			if b.state.Load()>>1 == gen {
				for _, t := range b.arrived[:b.count] {
					if t != 0 && t != me && !Alive(t) {
						b.breakLocked()
						break
					}
				}
			}
			b.leave(me)
		default:
			b.enter(me)
			tripped := b.state.Load()>>1 != gen && b.lastReset.Load() != gen+1
			if !tripped {
				b.breakLocked()
			}
			b.leave(me)
			if tripped {
				return int(idx), nil
			}
			return 0, err
		}
	}
}

// Abort breaks the barrier: waiting and later parties get
// ErrBrokenBarrier until Reset.
func (b *Barrier) Abort(me uint64) {
	b.enter(me)
	b.breakLocked()
	b.leave(me)
}

// Reset returns the barrier to its initial state; parties waiting get
// ErrBrokenBarrier.
func (b *Barrier) Reset(me uint64) {
	b.enter(me)
	gen := b.state.Load() >> 1
	b.lastReset.Store(gen + 1)
	b.count = 0
	clear(b.arrived[:b.parties])
	b.state.Store((gen + 1) << 1)
	b.leave(me)
	if b.waiters.Load() != 0 {
		wakeAll(&b.state)
	}
}

// Broken reports whether the barrier is broken.
func (b *Barrier) Broken() bool { return b.state.Load()&brokenBit != 0 }

// NWaiting returns the number of parties waiting now.
func (b *Barrier) NWaiting(me uint64) int {
	b.enter(me)
	defer b.leave(me)
	return int(b.count)
}
