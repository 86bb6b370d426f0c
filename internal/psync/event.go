package psync

import (
	"context"
	"sync/atomic"
	"time"

	"mproc/internal/futex"
)

// Event is a flag processes wait for, Python's Event.
type Event struct {
	flag    atomic.Uint32 // futex word: 1 when set
	waiters atomic.Uint32
}

// Set sets the flag and wakes every waiter.
func (e *Event) Set() {
	if e.flag.Swap(1) == 0 && e.waiters.Load() != 0 {
		wakeAll(&e.flag)
	}
}

// Clear clears the flag.
func (e *Event) Clear() { e.flag.Store(0) }

// IsSet reports whether the flag is set.
func (e *Event) IsSet() bool { return e.flag.Load() == 1 }

// Wait waits until the flag is set or ctx is done.
func (e *Event) Wait(ctx context.Context) error {
	if e.IsSet() {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if futex.Spin(e.IsSet) {
		return nil
	}
	e.waiters.Add(1)
	defer e.waiters.Add(^uint32(0))
	for !e.IsSet() {
		if err := futex.Wait(ctx, futex.Addr(&e.flag), 0, time.Time{}); err != nil {
			return err
		}
	}
	return nil
}

// Cond is a condition variable over a lock that lives elsewhere: the
// caller passes the unlock and lock steps. Its futex word is a sequence
// bumped by every Signal and Broadcast, so a signal between the unlock and
// the sleep is never lost, and a signal whose waiter died before using it
// reaches the other waiters when their sleep slices end (within 200 ms:
// futex.IdleSlices).
type Cond struct {
	seq     atomic.Uint32
	waiters atomic.Uint32
}

// Wait unlocks, waits for a Signal or Broadcast (or a spurious wake-up:
// callers re-check their condition in a loop), and locks again, even when
// ctx is done (then it returns ctx's error, or the lock's error if
// relocking failed).
func (c *Cond) Wait(ctx context.Context, unlock func() error, lock func() error) error {
	s := c.seq.Load()
	c.waiters.Add(1)
	if err := unlock(); err != nil {
		c.waiters.Add(^uint32(0))
		return err
	}
	// A Signal wakes one sleeper, which may die before it relocks: so
	// sleepers sleep a slice at a time (backing off to 8, IdleSlices), and
	// the next slice of one that was not woken ends at once if seq moved
	// since it began (a spurious wake-up at worst, which callers handle).
	werr := errSliceOver
	for idle := 0; werr == errSliceOver; idle++ {
		werr = futex.WaitSlices(ctx, futex.Addr(&c.seq), s, futex.IdleSlices(idle))
	}
	c.waiters.Add(^uint32(0))
	if werr != nil {
		c.Signal() // pass on a signal this waiter may have taken
	}
	if err := lock(); err != nil {
		return err
	}
	return werr
}

// Signal wakes one waiter, if any.
func (c *Cond) Signal() {
	c.seq.Add(1)
	if c.waiters.Load() != 0 {
		futexWake(&c.seq, 1)
	}
}

// Broadcast wakes every waiter.
func (c *Cond) Broadcast() {
	c.seq.Add(1)
	if c.waiters.Load() != 0 {
		wakeAll(&c.seq)
	}
}
