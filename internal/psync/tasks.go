package psync

import (
	"context"
	"sync/atomic"
	"time"

	"mproc/internal/futex"
)

// Tasks is the JoinableQueue's count of values got and not yet reported
// done; the values still in the queue are counted by the queue's ring
// (ring.Ring.Pending), so that Join waits for both.
//
// Counting at the consumer's side is what makes the count survive deaths.
// A producer is never counted: its message is in the ring or it is not
// (a producer that dies inside Put leaves a slot the ring skips, and
// nothing to undo). A consumer counts a value after copying it out and
// before freeing its slot (the ring calls Take), so at every instant the
// value is in the ring, or counted here, or both; a consumer that dies
// before that leaves a claim the ring repairs (the value is abandoned,
// counted nowhere), and one that dies after it leaves the count up for
// ever, as in Python: Join then ends only with its context.
type Tasks struct {
	taken   atomic.Uint32 // values got and not yet done
	waiters atomic.Uint32 // processes in Wait
	seq     atomic.Uint32 // futex word: bumped when taken reaches zero with a waiter
}

// Take counts one value got. The ring calls it, before it frees the slot.
func (t *Tasks) Take() { t.taken.Add(1) }

// Done counts one value handled. It reports false, changing nothing, when
// no value is counted as got.
func (t *Tasks) Done() bool {
	for {
		n := t.taken.Load()
		if n == 0 {
			return false
		}
		if t.taken.CompareAndSwap(n, n-1) {
			if n == 1 && t.waiters.Load() != 0 {
				t.seq.Add(1)
				wakeAll(&t.seq)
			}
			return true
		}
	}
}

// Taken returns the number of values got and not yet done.
func (t *Tasks) Taken() int { return int(t.taken.Load()) }

// Wait waits until pending reports nothing in the queue and no value is
// counted as got, or ctx is done. pending counts the values in the queue
// and says whether one is claimed by a consumer (whose death nobody would
// wake this wait for).
func (t *Tasks) Wait(ctx context.Context, pending func() (n int, claimed bool)) error {
	t.waiters.Add(1)
	defer t.waiters.Add(^uint32(0))
	for {
		seq := t.seq.Load()
		// The queue first, then the count: a value that leaves the queue
		// between the two was counted before it left.
		n, claimed := pending()
		if n == 0 && t.taken.Load() == 0 {
			return nil
		}
		// A value taken is done with a wake-up when the count reaches
		// zero; only a dead consumer's claim changes nothing that wakes
		// this wait: look again after a slice while there is a claim.
		var err error
		if claimed {
			err = waitSlice(ctx, &t.seq, seq)
		} else {
			err = futex.Wait(ctx, futex.Addr(&t.seq), seq, time.Time{})
		}
		if ctx.Err() != nil {
			return err
		}
	}
}
