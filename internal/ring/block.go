package ring

import (
	"context"
	"sync/atomic"

	"mproc/internal/futex"
)

// Put is TryPutFunc that waits while the ring is full: first a short spin
// (futex.Spin: the consumer may be about to free a slot), then on the
// futex, until ctx is done. A consumer that died reading the slot in the
// way is dealt with after a slice.
func (r *Ring) Put(ctx context.Context, n int, fill func([]byte)) error {
	return r.put(ctx, n, nil, fill)
}

// PutBytes is Put of msg.
func (r *Ring) PutBytes(ctx context.Context, msg []byte) error {
	return r.put(ctx, len(msg), msg, nil)
}

func (r *Ring) put(ctx context.Context, n int, msg []byte, fill func([]byte)) error {
	w := waiter{r: r, put: true}
	var b blocker
	for {
		err := r.tryPut(ctx, n, msg, fill, &b)
		if err != ErrFull {
			w.leave()
			return err
		}
		if err := w.wait(ctx, b); err != nil {
			return err
		}
	}
}

// Get is TryGet that waits while the ring is empty, as Put does.
func (r *Ring) Get(ctx context.Context, read func([]byte)) error {
	_, err := r.get(ctx, nil, read)
	return err
}

// GetAppend is Get that appends the message to dst.
func (r *Ring) GetAppend(ctx context.Context, dst []byte) ([]byte, error) {
	return r.get(ctx, dst, nil)
}

func (r *Ring) get(ctx context.Context, dst []byte, read func([]byte)) ([]byte, error) {
	w := waiter{r: r}
	var b blocker
	for {
		out, err := r.tryGet(dst, read, &b)
		if err != ErrEmpty {
			w.leave()
			return out, err
		}
		if err := w.wait(ctx, b); err != nil {
			return out, err
		}
	}
}

type noSpinKey struct{}

// NoSpin returns ctx for the puts and gets of a waiter that expects a
// long wait: they sleep on the futex at once instead of first polling for
// futex.SpinFor. Each poll yields the CPU, and on a machine whose CPUs are
// all busy with the work the poller waits for, the yield hands its CPU to
// a busy process and gets it back only when the scheduler next picks it:
// a pool's result collector polling between tasks of a millisecond made
// the workers wait up to a task's length for their next task (1% of the
// gaps between tasks near 1 ms, against 0.15 ms sleeping at once).
func NoSpin(ctx context.Context) context.Context {
	return context.WithValue(ctx, noSpinKey{}, true)
}

type noWakeKey struct{}

// NoWake returns ctx for puts that do not wake a sleeping getter: the
// message waits in the ring until a getter looks (a later put that wakes
// it, or the end of its sleep slice). For a producer that knows its
// consumer is in no hurry and that another put of its own will follow: a
// pool worker whose result only feeds a Map and whose next task is
// already queued (a wake-up of the parent per result took a CPU from the
// workers on a machine they fill).
func NoWake(ctx context.Context) context.Context {
	return context.WithValue(ctx, noWakeKey{}, true)
}

// waiter is the state of one blocked put or get between its tries: it
// spins once, then announces itself in the waiter count (after which
// every change wakes it, so it tries once more before it sleeps), then
// sleeps a slice at a time. It is a plain struct and the tries are direct
// calls, so a put or get that does not block allocates nothing.
type waiter struct {
	r         *Ring
	put       bool
	spun      bool
	announced bool
	seq       uint32
	idle      int // slices in a row that ended with nothing changed
}

func (w *waiter) words() (word, waiters *atomic.Uint32) {
	if w.put {
		return &w.r.c.notFull, &w.r.c.putWaiters
	}
	return &w.r.c.notEmpty, &w.r.c.getWaiters
}

// wait is called after a try found the ring full (or empty); the caller
// tries again when it returns nil.
func (w *waiter) wait(ctx context.Context, b blocker) error {
	word, waiters := w.words()
	if !w.announced {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !w.spun {
			w.spun = true
			ready := w.r.canGet
			if w.put {
				ready = w.r.canPut
			}
			if ctx.Value(noSpinKey{}) == nil && futex.Spin(ready) {
				return nil
			}
		}
		w.seq = word.Load()
		waiters.Add(1)
		w.announced = true
		return nil
	}
	// Sleep a slice at a time, and try again when it ends. A process's
	// claim in the way may be a dead process's (then it is repaired). And
	// a wake-up is given to one sleeper, which may die before it takes
	// the message it was woken for: the message would stay in the ring
	// while every other getter sleeps, so they look again when a slice
	// ends. (A getter of a plainly empty ring backs off to 8 slices,
	// futex.IdleSlices: an idle consumer costs a few wake-ups a second.)
	n := 1
	if _, claimed := b.claim(); !claimed && !w.put {
		n = futex.IdleSlices(w.idle) // nothing to repair: a plainly empty ring
	}
	err := futex.WaitSlices(ctx, futex.Addr(word), w.seq, n)
	w.leave()
	switch err {
	case nil:
		w.idle = 0
	case futex.ErrSliceOver:
		w.idle++
		w.r.repairIfDead(b)
	default:
		// Pass on a wake-up this waiter may have taken.
		if w.put {
			w.r.wakePutters()
		} else {
			w.r.wakeGetters()
		}
		return err
	}
	return nil
}

// leave takes the waiter out of the count if it announced itself.
func (w *waiter) leave() {
	if w.announced {
		_, waiters := w.words()
		waiters.Add(^uint32(0))
		w.announced = false
	}
}

// canPut reports whether a put would not find the ring full.
func (r *Ring) canPut() bool {
	pos := r.c.tail.Load()
	s, _ := r.slot(pos)
	return r.c.closed.Load() != 0 || lapOf(s.state.Load()) >= pos/r.cap
}

// canGet reports whether a get would find a message or the close.
func (r *Ring) canGet() bool {
	pos := r.c.head.Load()
	s, _ := r.slot(pos)
	st := s.state.Load()
	return r.c.closed.Load() != 0 || st == state(pos/r.cap, kWritten) || st == state(pos/r.cap, kSkipped)
}
