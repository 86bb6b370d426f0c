package ring

import (
	"context"
	"errors"
	"os"
	"sync/atomic"
	"time"

	"mproc/internal/futex"
)

// Slice is the longest a blocked Put or Get sleeps before it checks
// whether the process in its way died. Tests shorten it.
var Slice = 25 * time.Millisecond

// Put is TryPutFunc that waits while the ring is full: first a short spin
// (futex.Spin: the consumer may be about to free a slot), then on the
// futex, until ctx is done or deadline (zero: none) passes. A consumer
// that died reading the slot in the way is dealt with after a slice.
func (r *Ring) Put(ctx context.Context, n int, fill func([]byte), deadline time.Time) error {
	return r.block(ctx, deadline, &r.c.notFull, &r.c.putWaiters, ErrFull, r.canPut,
		func() Blocked { return r.TryPutFunc(n, fill) }, r.wakePutters)
}

// Get is TryGet that waits while the ring is empty, as Put does.
func (r *Ring) Get(ctx context.Context, read func([]byte), deadline time.Time) error {
	return r.block(ctx, deadline, &r.c.notEmpty, &r.c.getWaiters, ErrEmpty, r.canGet,
		func() Blocked { return r.TryGet(read) }, r.wakeGetters)
}

func (r *Ring) block(ctx context.Context, deadline time.Time, word, waiters *atomic.Uint32, busy error,
	ready func() bool, try func() Blocked, passOn func()) error {
	spun := false
	for {
		b := try()
		if b.Err != busy {
			return b.Err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !spun {
			spun = true
			if futex.Spin(ready) {
				continue
			}
		}
		seq := word.Load()
		waiters.Add(1)
		if b = try(); b.Err != busy { // announced: a change from now on wakes us
			waiters.Add(^uint32(0))
			return b.Err
		}
		end := time.Now().Add(Slice)
		own := !deadline.IsZero() && deadline.Before(end)
		if own {
			end = deadline
		}
		err := futex.Wait(ctx, addr(word), seq, end)
		waiters.Add(^uint32(0))
		switch {
		case err == nil:
		case errors.Is(err, os.ErrDeadlineExceeded) && !own:
			r.RepairIfDead(b)
		default:
			passOn() // a wake-up this waiter may have taken
			return err
		}
	}
}

// canPut reports whether a put would not find the ring full.
func (r *Ring) canPut() bool {
	pos := r.c.tail.Load()
	s, _ := r.slot(pos)
	st := s.state.Load()
	return r.c.closed.Load() != 0 || lapOf(st) >= pos/r.cap
}

// canGet reports whether a get would find a message or the close.
func (r *Ring) canGet() bool {
	pos := r.c.head.Load()
	s, _ := r.slot(pos)
	st := s.state.Load()
	k := kindOf(st)
	return r.c.closed.Load() != 0 || lapOf(st) == pos/r.cap && (k == kWritten || k == kSkipped || k == kReading)
}
