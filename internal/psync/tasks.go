package psync

import (
	"context"
	"sync/atomic"
	"time"

	"mproc/internal/futex"
)

// Tasks counts unfinished tasks, the JoinableQueue's count: Add before a
// task is put, Done when one is handled, Wait until none is left.
//
// Its futex word is the count itself; Done wakes every waiter when it
// reaches zero and a waiter is counted. A process that dies between
// taking a task and Done leaves the count up for ever: Wait then ends only
// with its context, as Python's join does.
type Tasks struct {
	unfinished atomic.Uint32 // futex word
	waiters    atomic.Uint32
}

// Add counts one more unfinished task.
func (t *Tasks) Add() { t.unfinished.Add(1) }

// Done counts one task finished. It reports false, changing nothing, when
// no task is unfinished.
func (t *Tasks) Done() bool {
	for {
		n := t.unfinished.Load()
		if n == 0 {
			return false
		}
		if t.unfinished.CompareAndSwap(n, n-1) {
			if n == 1 && t.waiters.Load() != 0 {
				wakeAll(&t.unfinished)
			}
			return true
		}
	}
}

// Unfinished returns the count.
func (t *Tasks) Unfinished() int { return int(t.unfinished.Load()) }

// Wait waits until the count is zero or ctx is done.
func (t *Tasks) Wait(ctx context.Context) error {
	t.waiters.Add(1)
	defer t.waiters.Add(^uint32(0))
	for {
		n := t.unfinished.Load()
		if n == 0 {
			return nil
		}
		if err := futex.Wait(ctx, futex.Addr(&t.unfinished), n, time.Time{}); err != nil {
			return err
		}
	}
}
