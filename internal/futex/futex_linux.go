// Package futex blocks on a 32-bit word, in ordinary or shared memory, with a
// deadline and a context.
//
// The kernel contract (futex(2)): FUTEX_WAIT sleeps only if *addr still
// equals val when the kernel looks, and may return early for a signal or for
// no reason at all. Wait therefore returns nil for every kind of wake-up —
// a Wake, a changed value, a signal, a spurious return — and callers always
// re-check their condition in a loop. Only a passed deadline or a done
// context is reported as an error.
//
// Cancellation: a context's Done is observed by a context.AfterFunc that
// wakes every waiter on the word. Because that wake can land in the gap
// between the caller's last check and its entry into the kernel, the
// canceller repeats it (50 µs, doubling up to 1 ms) until the waiter says it
// has returned; so a cancelled waiter returns within about a millisecond, and
// a context that is never cancelled costs nothing beyond the AfterFunc
// registration. Other waiters on the same word see one spurious wake-up.
//
// The words may live in memory shared between processes, so the
// process-private futex operations are never used.
package futex

import (
	"context"
	"errors"
	"math"
	"os"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"

	"mproc/internal/unix"
)

// Wait blocks while *addr == val until a Wake on addr, until deadline (the
// zero Time means none) or until ctx is done. It returns nil on any wake-up,
// which may be spurious; os.ErrDeadlineExceeded once deadline has passed;
// ctx.Err() once ctx is done.
func Wait(ctx context.Context, addr *uint32, val uint32, deadline time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ctxBound := false
	if d, ok := ctx.Deadline(); ok && (deadline.IsZero() || d.Before(deadline)) {
		deadline, ctxBound = d, true
	}
	var c *canceller
	var stop func() bool
	if ctx.Done() != nil {
		c = &canceller{addr: addr, quit: make(chan struct{}), done: make(chan struct{})}
		stop = context.AfterFunc(ctx, c.run)
	}
	err := wait(addr, val, deadline)
	if c != nil {
		c.returned.Store(true)
		if !stop() {
			// run has started: it may be about to wake addr, which the
			// caller may unmap as soon as this returns (an object closed
			// after a cancelled wait). Wait until it has stopped.
			close(c.quit)
			<-c.done
		}
	}
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	if err != nil && ctxBound {
		// The kernel's timeout can beat the context's own timer.
		return context.DeadlineExceeded
	}
	return err
}

// wait is one FUTEX_WAIT bounded by deadline.
func wait(addr *uint32, val uint32, deadline time.Time) error {
	var ts *unix.Timespec
	if !deadline.IsZero() {
		d := time.Until(deadline)
		if d <= 0 {
			return os.ErrDeadlineExceeded
		}
		t := unix.NsecToTimespec(int64(d))
		ts = &t
	}
	_, err := unix.Futex(addr, unix.FUTEX_WAIT, val, ts, nil, 0)
	switch err {
	case nil, unix.EAGAIN, unix.EINTR:
		return nil
	case unix.ETIMEDOUT:
		if time.Until(deadline) <= 0 {
			return os.ErrDeadlineExceeded
		}
		return nil
	default:
		// EFAULT or EINVAL: a bad address is a programming error in mproc.
		panic("mproc: futex wait: " + err.Error())
	}
}

// Slice is the longest WaitSlice sleeps. Waiters on shared memory sleep a
// slice at a time so that, when it ends, they can look at what a process
// that died may have left undone (a lock it held, a wake-up it took).
// Tests shorten it.
var Slice = 25 * time.Millisecond

// ErrSliceOver is WaitSlice's report that a slice ended before anything
// else happened.
var ErrSliceOver = errors.New("futex wait slice over")

// WaitSlice is Wait for at most one Slice: it returns nil on any
// wake-up, ErrSliceOver when the slice ended, ctx.Err() once ctx is done.
func WaitSlice(ctx context.Context, addr *uint32, val uint32) error {
	return WaitSlices(ctx, addr, val, 1)
}

// WaitSlices is WaitSlice for at most n slices.
func WaitSlices(ctx context.Context, addr *uint32, val uint32, n int) error {
	err := Wait(ctx, addr, val, time.Now().Add(time.Duration(n)*Slice))
	if err == os.ErrDeadlineExceeded {
		return ErrSliceOver
	}
	return err
}

// IdleSlices returns how many slices a waiter that has found nothing to do
// in its last idle consecutive slices sleeps next: 1, 2, 4, then 8 (200
// ms) for ever. A waiter that looks only for what a dead process may have
// left (a wake-up it took) backs off so, and costs about five wake-ups a
// second while idle.
func IdleSlices(idle int) int { return 1 << min(idle, 3) }

// canceller wakes addr until the waiter it serves has returned.
type canceller struct {
	addr     *uint32
	returned atomic.Bool
	quit     chan struct{} // closed by Wait once it has returned, if run started
	done     chan struct{} // closed when run returns
}

func (c *canceller) run() {
	defer close(c.done)
	pause := 50 * time.Microsecond
	for !c.returned.Load() {
		WakeAll(c.addr)
		t := time.NewTimer(pause)
		select {
		case <-c.quit:
			t.Stop()
			return
		case <-t.C:
		}
		pause = min(2*pause, time.Millisecond)
	}
}

// Addr returns the address of w's value, for Wait and Wake: an
// atomic.Uint32 is its value and a zero-size guard, and the structures in
// shared memory keep their futex words as atomic.Uint32.
func Addr(w *atomic.Uint32) *uint32 { return (*uint32)(unsafe.Pointer(w)) }

// Wake wakes at most n waiters on addr and returns how many it woke.
func Wake(addr *uint32, n int) int {
	if n <= 0 {
		return 0
	}
	if n > math.MaxInt32 {
		n = math.MaxInt32
	}
	woken, err := unix.Futex(addr, unix.FUTEX_WAKE, uint32(n), nil, nil, 0)
	if err != nil {
		panic("mproc: futex wake: " + err.Error())
	}
	return woken
}

// WakeAll wakes every waiter on addr and returns how many it woke.
func WakeAll(addr *uint32) int { return Wake(addr, math.MaxInt32) }

// SpinFor is how long a waiter polls before it sleeps on the futex. Each
// poll yields the CPU (sched_yield), so on one core the peer that will set
// the word runs at once instead of after a futex sleep and wake-up, and on
// two cores the waiter sees the word change without the cost of waking a
// halted CPU. An idle waiter pays it once and then sleeps: it burns no CPU
// while nothing happens.
const SpinFor = 20 * time.Microsecond

// Spin polls cond, yielding between polls, for at most SpinFor.
func Spin(cond func() bool) bool {
	var start time.Time
	for i := 0; ; i++ {
		if cond() {
			return true
		}
		if i&7 == 0 {
			if i == 0 {
				start = time.Now()
			} else if time.Since(start) > SpinFor {
				return false
			}
		}
		unix.SchedYield()
	}
}

// SpinGo is Spin for a goroutine that may have just handed work to
// another goroutine of its process, as a connection's reader does: every
// poll also lets the goroutines queued on its P run (runtime.Gosched). A
// poller otherwise keeps its P, and the goroutine that acts on what it
// waits for — the caller that sends the next request once the reader has
// passed on the reply — may be queued on that very P: it ran only once the
// poller had gone to sleep in the futex and the runtime had taken the P
// back, 100 µs and more later (net/rpc over shmnet: 190 µs a call with
// Spin, 20 µs with SpinGo; a Gosched only at the start, or only after the
// first 2 µs, gave 35 and 130 µs). It is not Spin's habit because each
// Gosched wakes another thread to look for work: a single-goroutine waiter
// pays several µs (shmnet's plain 64 B echo: 1.5 µs with Spin, about 5
// with SpinGo; the queue's round trip on one CPU went from 3.6 to 18 µs
// when Spin did it).
func SpinGo(cond func() bool) bool {
	var start time.Time
	for i := 0; ; i++ {
		if cond() {
			return true
		}
		if i&7 == 0 {
			if i == 0 {
				start = time.Now()
			} else if time.Since(start) > SpinFor {
				return false
			}
		}
		runtime.Gosched()
		if cond() {
			return true
		}
		unix.SchedYield()
	}
}
