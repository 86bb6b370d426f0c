package psync

import (
	"context"
	"sync/atomic"

	"mproc/internal/failpoint"
)

// Failpoints (package failpoint) of the barrier, for the torture tests.
const (
	FailBarrierArriving = "barrier.arriving" // counted and recorded as arrived, meta held
	FailBarrierWaiting  = "barrier.waiting"  // arrived, about to sleep for the others
	FailBarrierTripping = "barrier.tripping" // the last party: next generation stored, meta held
	FailBarrierTripped  = "barrier.tripped"  // tripped, the waiting parties not yet woken
)

// MaxParties bounds a Barrier's parties.
const MaxParties = 256

// Barrier makes a fixed number of parties wait for each other, Python's
// Barrier. Its futex word holds the generation (shifted left by one) and a
// broken bit: a trip bumps the generation, a break sets the bit, a Reset
// bumps the generation without counting it as a trip. The tokens of the
// parties waiting in the current generation are recorded, so that a party
// that dies while waiting breaks the barrier for the others (within a
// slice) — unless they all arrive first: the round then trips with the dead
// party counted, and it is missing from the next round. A party that dies
// before it arrives (or, so, after its round tripped) cannot be told from a
// slow one: bound Wait with a context for that.
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

func (b *Barrier) enter(me uint64) { b.enterContext(context.Background(), me) }

// enterContext takes meta, waiting until ctx is done at most (its holder
// may be stopped inside), and mends what a process that died inside it
// left: the barrier is then broken.
func (b *Barrier) enterContext(ctx context.Context, me uint64) error {
	err := b.meta.Lock(ctx, me)
	if err != nil && err != ErrOwnerDead {
		return err
	}
	if err == ErrOwnerDead {
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
	return nil
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
// does in Python — if me had arrived: ctx also bounds the wait for meta,
// whose holder may be stopped, and then me never arrived.
func (b *Barrier) Wait(ctx context.Context, me uint64) (int, error) {
	if err := b.enterContext(ctx, me); err != nil {
		return 0, err // not arrived: nothing to break
	}
	st := b.state.Load()
	if st&brokenBit != 0 {
		b.leave(me)
		return 0, ErrBrokenBarrier
	}
	idx := b.count
	if idx+1 == b.parties {
		// Trip: the next generation. A compare-and-swap, as a party whose
		// context ended may set the broken bit without meta (breakNow).
		if !b.state.CompareAndSwap(st, st+2) {
			b.leave(me)
			return 0, ErrBrokenBarrier
		}
		b.count = 0
		clear(b.arrived[:b.parties])
		failpoint.Hit(FailBarrierTripping)
		b.leave(me)
		failpoint.Hit(FailBarrierTripped)
		if b.waiters.Load() != 0 {
			wakeAll(&b.state)
		}
		return int(idx), nil
	}
	b.arrived[idx] = me
	b.count++
	failpoint.Hit(FailBarrierArriving)
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
		failpoint.Hit(FailBarrierWaiting)
		err := waitSlice(ctx, &b.state, cur)
		b.waiters.Add(^uint32(0))
		switch err {
		case nil:
		case errSliceOver:
			if b.enterContext(ctx, me) != nil {
				continue // ctx is done: the next wait says so
			}
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
			// ctx is done. With meta if it is free (Mutex.Lock takes a free
			// mutex even then), else without: its holder may be stopped.
			var tripped bool
			if b.enterContext(ctx, me) == nil {
				tripped = b.state.Load()>>1 != gen && b.lastReset.Load() != gen+1
				if !tripped {
					b.breakLocked()
				}
				b.leave(me)
			} else {
				tripped = b.breakNow(gen)
			}
			if tripped {
				return int(idx), nil
			}
			return 0, err
		}
	}
}

// breakNow breaks generation gen without meta, for a party whose context
// ended while another process, maybe stopped, holds meta. It reports
// whether gen tripped first. A trip is a compare-and-swap of the state, so
// exactly one of the two happens.
func (b *Barrier) breakNow(gen uint32) (tripped bool) {
	for {
		cur := b.state.Load()
		if cur>>1 != gen {
			return b.lastReset.Load() != gen+1
		}
		if cur&brokenBit != 0 || b.state.CompareAndSwap(cur, cur|brokenBit) {
			if b.waiters.Load() != 0 {
				wakeAll(&b.state)
			}
			return false
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
