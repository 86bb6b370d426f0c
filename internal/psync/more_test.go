package psync

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mproc/internal/futex"
)

var bg = context.Background()

func TestRMutexReentrant(t *testing.T) {
	var r RMutex
	a := proc()
	for range 3 {
		if err := r.Lock(bg, a, 1); err != nil {
			t.Fatal(err)
		}
	}
	if ok, _ := r.TryLock(a, 2); ok {
		t.Fatal("another holder of the same process got in")
	}
	if d := r.Depth(a, 1); d != 3 {
		t.Fatalf("depth %d", d)
	}
	for range 3 {
		if err := r.Unlock(a, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Unlock(a, 1); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("one unlock too many: %v", err)
	}
	// Exclusion between holders.
	counter := 0
	var wg sync.WaitGroup
	for h := range 4 {
		me := proc()
		wg.Go(func() {
			for range 500 {
				r.Lock(bg, me, uint32(h+1))
				r.Lock(bg, me, uint32(h+1))
				counter++
				r.Unlock(me, uint32(h+1))
				r.Unlock(me, uint32(h+1))
			}
		})
	}
	wg.Wait()
	if counter != 2000 {
		t.Fatalf("counter %d", counter)
	}
	d := proc()
	r.Lock(bg, d, 9)
	r.Lock(bg, d, 9)
	kill(d)
	if err := r.Lock(bg, a, 1); !errors.Is(err, ErrOwnerDead) || r.Depth(a, 1) != 1 {
		t.Fatalf("after a dead holder: %v, depth %d", err, r.Depth(a, 1))
	}
}

func TestRWMutex(t *testing.T) {
	var rw RWMutex
	var readers, writers atomic.Int32
	shared := 0
	var wg sync.WaitGroup
	for i := range 6 {
		me := proc()
		wg.Go(func() {
			for range 300 {
				if i%3 == 0 {
					if err := rw.Lock(bg, me); err != nil {
						t.Error(err)
						return
					}
					if writers.Add(1) != 1 || readers.Load() != 0 {
						t.Error("writer not alone")
					}
					shared++
					writers.Add(-1)
					rw.Unlock(me)
				} else {
					if err := rw.RLock(bg, me); err != nil {
						t.Error(err)
						return
					}
					readers.Add(1)
					if writers.Load() != 0 {
						t.Error("reader beside a writer")
					}
					_ = shared
					readers.Add(-1)
					rw.RUnlock(me)
				}
			}
		})
	}
	wg.Wait()
	if shared != 600 {
		t.Fatalf("shared %d", shared)
	}
	a, b := proc(), proc()
	if err := rw.RUnlock(a); !errors.Is(err, ErrNotOwner) {
		t.Fatal(err)
	}
	if err := rw.Unlock(a); !errors.Is(err, ErrNotOwner) {
		t.Fatal(err)
	}
	// Writer preference: a waiting writer holds back new readers.
	rw.RLock(bg, a)
	wdone := make(chan error, 1)
	go func() { wdone <- rw.Lock(bg, b) }()
	time.Sleep(3 * futex.Slice)
	if ok, _ := rw.TryRLock(proc()); ok {
		t.Fatal("a reader passed a waiting writer")
	}
	// A dead reader does not block the writer forever.
	kill(a)
	if err := <-wdone; err != nil {
		t.Fatalf("writer after a dead reader: %v", err)
	}
	// A dead writer: the next acquirer is told.
	kill(b)
	c := proc()
	if err := rw.RLock(bg, c); !errors.Is(err, ErrOwnerDead) {
		t.Fatalf("reader after a dead writer: %v", err)
	}
	rw.RUnlock(c)
	if err := rw.Lock(bg, c); !errors.Is(err, ErrOwnerDead) {
		t.Fatalf("writer after a dead writer: %v", err)
	}
	rw.MarkConsistent(c)
	rw.Unlock(c)
	if err := rw.RLock(bg, c); err != nil {
		t.Fatalf("after repair: %v", err)
	}
	// A dead waiting writer does not hold readers back forever.
	rw.RUnlock(c)
	rw.RLock(bg, c)
	w := proc()
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	go rw.Lock(ctx, w)
	time.Sleep(3 * futex.Slice)
	kill(w)
	if err := rw.RLock(within(t, time.Second), proc()); err != nil {
		t.Fatalf("reader behind a dead waiting writer: %v", err)
	}
}

func TestSemaphore(t *testing.T) {
	var s Semaphore
	s.Init(2, 0)
	a := proc()
	if !s.TryAcquire(a) || !s.TryAcquire(a) || s.TryAcquire(a) {
		t.Fatal("unbounded semaphore of 2")
	}
	if err := s.Acquire(within(t, 10*time.Millisecond), a); err != context.DeadlineExceeded {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() { got <- s.Acquire(bg, proc()) }()
	time.Sleep(10 * time.Millisecond)
	s.Release(proc()) // anyone may release
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	s.Release(a)
	s.Release(a)
	s.Release(a) // unbounded: past the initial value is fine
	if s.Value() != 3 {
		t.Fatalf("value %d", s.Value())
	}

	var b Semaphore
	b.Init(2, 2)
	if err := b.Release(a); !errors.Is(err, ErrOverRelease) {
		t.Fatalf("over-release: %v", err)
	}
	d := proc()
	b.Acquire(bg, d)
	b.Acquire(bg, d)
	// A waiter gets the units of a holder that died.
	got2 := make(chan error, 1)
	go func() { got2 <- b.Acquire(bg, a) }()
	time.Sleep(2 * futex.Slice)
	kill(d)
	if err := <-got2; err != nil {
		t.Fatal(err)
	}
	if v := b.Value(); v != 1 {
		t.Fatalf("value after the dead holder's return: %d", v)
	}
	// Concurrency never exceeds the bound.
	var in atomic.Int32
	var wg sync.WaitGroup
	b.Release(a)
	for range 6 {
		me := proc()
		wg.Go(func() {
			for range 200 {
				b.Acquire(bg, me)
				if in.Add(1) > 2 {
					t.Error("more than 2 inside")
				}
				in.Add(-1)
				if err := b.Release(me); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
}

func TestEventAndCond(t *testing.T) {
	var e Event
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if err := e.Wait(bg); err != nil {
				t.Error(err)
			}
		})
	}
	time.Sleep(10 * time.Millisecond)
	e.Set()
	wg.Wait()
	e.Clear()
	ctx, cancel := context.WithCancel(bg)
	go func() { time.Sleep(10 * time.Millisecond); cancel() }()
	t0 := time.Now()
	if err := e.Wait(ctx); err != context.Canceled || time.Since(t0) > time.Second {
		t.Fatalf("cancelled wait: %v after %v", err, time.Since(t0))
	}

	var m Mutex
	var c Cond
	me := proc()
	ready := false
	done := condWaiter(bg, &m, &c, &ready)
	time.Sleep(10 * time.Millisecond)
	m.Lock(bg, me)
	ready = true
	c.Signal()
	m.Unlock(me)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestBarrier(t *testing.T) {
	var b Barrier
	b.Init(4)
	for round := range 3 {
		idx := make(chan int, 4)
		var wg sync.WaitGroup
		for range 4 {
			me := proc()
			wg.Go(func() {
				i, err := b.Wait(bg, me)
				if err != nil {
					t.Errorf("round %d: %v", round, err)
				}
				idx <- i
			})
		}
		wg.Wait()
		close(idx)
		seen := 0
		for i := range idx {
			seen |= 1 << i
		}
		if seen != 0b1111 {
			t.Fatalf("round %d: indexes %b", round, seen)
		}
	}
	// A waiting party dies: the others are told.
	errs := make(chan error, 3)
	dying := proc()
	go b.Wait(bg, dying)
	time.Sleep(futex.Slice)
	for range 2 {
		go func() { _, err := b.Wait(bg, proc()); errs <- err }()
	}
	time.Sleep(futex.Slice)
	kill(dying)
	for range 2 {
		if err := <-errs; !errors.Is(err, ErrBrokenBarrier) {
			t.Fatalf("after a party died: %v", err)
		}
	}
	if _, err := b.Wait(bg, proc()); !errors.Is(err, ErrBrokenBarrier) || !b.Broken() {
		t.Fatal("broken barrier accepted a party")
	}
	b.Reset(proc())
	// Reset breaks for those waiting, then works again.
	go func() { _, err := b.Wait(bg, proc()); errs <- err }()
	time.Sleep(futex.Slice)
	b.Reset(proc())
	if err := <-errs; !errors.Is(err, ErrBrokenBarrier) {
		t.Fatalf("waiting through a reset: %v", err)
	}
	// A timed-out party breaks it for the others.
	go func() { _, err := b.Wait(bg, proc()); errs <- err }()
	if _, err := b.Wait(within(t, 2*futex.Slice), proc()); err != context.DeadlineExceeded {
		t.Fatalf("timed out: %v", err)
	}
	if err := <-errs; !errors.Is(err, ErrBrokenBarrier) {
		t.Fatalf("beside a timed-out party: %v", err)
	}
	b.Reset(proc())
	b.Abort(proc())
	if _, err := b.Wait(bg, proc()); !errors.Is(err, ErrBrokenBarrier) {
		t.Fatal("aborted barrier accepted a party")
	}
}

// A Signal taken by a waiter that dies before it relocks reaches another
// waiter within a slice (issue 11).
func TestCondSignalOfDeadWaiterPassesOn(t *testing.T) {
	var m Mutex
	var c Cond
	// The thief: counted as a waiter, first asleep, gone once woken.
	thiefWoken := make(chan struct{})
	go func() {
		s := c.seq.Load()
		c.waiters.Add(1)
		futex.Wait(bg, futex.Addr(&c.seq), s, time.Now().Add(10*time.Second))
		close(thiefWoken)
	}()
	time.Sleep(20 * time.Millisecond)
	ready := false
	done := condWaiter(within(t, 5*time.Second), &m, &c, &ready)
	time.Sleep(20 * time.Millisecond)
	me := proc()
	m.Lock(bg, me)
	ready = true
	c.Signal()
	m.Unlock(me)
	<-thiefWoken
	if err := <-done; err != nil {
		t.Fatalf("the live waiter: %v", err)
	}
}

// Consumers take values from a queue, count them and report them done
// while waiters wait for the queue and the count to be empty, under the
// race detector. The queue here is a counter that a consumer decrements
// after Take, as the ring frees a slot after it.
func TestTasks(t *testing.T) {
	var ts Tasks
	var queued atomic.Int64
	pending := func() (int, bool) { return int(queued.Load()), false }
	if ts.Done() {
		t.Fatal("Done with nothing taken")
	}
	if err := ts.Wait(bg, pending); err != nil {
		t.Fatal(err)
	}
	const n = 10000
	queued.Store(n)
	errs := make(chan error, 3)
	for range 3 {
		go func() { errs <- ts.Wait(within(t, 10*time.Second), pending) }()
	}
	var wg sync.WaitGroup
	var got atomic.Int64
	for range 4 {
		wg.Go(func() {
			for got.Add(1) <= n {
				ts.Take()
				queued.Add(-1)
				if !ts.Done() {
					t.Error("Done refused with a value taken")
				}
			}
		})
	}
	for range 3 {
		if err := <-errs; err != nil || queued.Load() != 0 || ts.Taken() != 0 {
			t.Fatalf("Wait: %v with %d queued, %d taken", err, queued.Load(), ts.Taken())
		}
	}
	wg.Wait()
	ts.Take()
	if err := ts.Wait(within(t, 10*time.Millisecond), pending); err != context.DeadlineExceeded {
		t.Fatalf("Wait with a value taken: %v", err)
	}
	ts.Done()
	queued.Store(1)
	if err := ts.Wait(within(t, 10*time.Millisecond), pending); err != context.DeadlineExceeded {
		t.Fatalf("Wait with a value queued: %v", err)
	}
}

// condWaiter starts a process that waits on c under m until *ready, which
// m guards, and reports how it ended.
func condWaiter(ctx context.Context, m *Mutex, c *Cond, ready *bool) <-chan error {
	done := make(chan error, 1)
	go func() {
		w := proc()
		m.Lock(bg, w)
		for !*ready {
			if err := c.Wait(ctx, func() error { return m.Unlock(w) }, func() error { return m.Lock(bg, w) }); err != nil {
				done <- err
				return
			}
		}
		done <- m.Unlock(w)
	}()
	return done
}
