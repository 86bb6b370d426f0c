package mproc_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"mproc"
)

// syncArg carries every kind of handle to a child; each child function
// uses the ones it needs.
type syncArg struct {
	RL  *mproc.RLock
	RW  *mproc.RWMutex
	Sem *mproc.BoundedSemaphore
	Ev  *mproc.Event
	Ev2 *mproc.Event
	C   *mproc.Cond
	B   *mproc.Barrier
	V   *mproc.Value[int64]
	A   *mproc.Array[uint32]
	M   *mproc.SharedMemory
	N   int
}

var (
	rlockCountFn = mproc.Register("rlock-count", func(ctx context.Context, a syncArg) error {
		for range a.N {
			a.RL.Lock()
			a.RL.Lock() // re-entrant
			bump(a.M)
			a.RL.Unlock()
			a.RL.Unlock()
		}
		return nil
	})
	rwCountFn = mproc.Register("rw-count", func(ctx context.Context, a syncArg) error {
		for i := range a.N {
			if i%4 == 0 {
				a.RW.RLock()
				_ = count(a.M)
				a.RW.RUnlock()
				continue
			}
			a.RW.Lock()
			bump(a.M)
			a.RW.Unlock()
		}
		return nil
	})
	valueAddFn = mproc.Register("value-add", func(ctx context.Context, a syncArg) error {
		for i := range a.N {
			a.V.Add(1)
			a.A.Add(i%a.A.Len(), 1)
		}
		// A compound update under the value's lock.
		a.V.Lock().Lock()
		a.V.Store(a.V.Load() + 1000)
		a.V.Lock().Unlock()
		return nil
	})
	eventWaitFn = mproc.Register("event-wait", func(ctx context.Context, a syncArg) error {
		a.Ev2.Set() // "I am here"
		return a.Ev.Wait(ctx)
	})
	barrierFn = mproc.Register("barrier", func(ctx context.Context, a syncArg) error {
		for range a.N {
			if _, err := a.B.Wait(ctx); err != nil {
				return err
			}
		}
		if a.N == 0 { // the victim: arrive and wait to be killed
			a.B.Wait(ctx)
			select {}
		}
		return nil
	})
	semHoldFn = mproc.Register("sem-hold", func(ctx context.Context, a syncArg) error {
		for range a.N {
			if err := a.Sem.Acquire(ctx); err != nil {
				return err
			}
		}
		a.Ev.Set()
		select {}
	})
	condConsumerFn = mproc.Register("cond-consumer", func(ctx context.Context, a syncArg) error {
		a.C.L.Lock()
		defer a.C.L.Unlock()
		for count(a.M) == 0 {
			if err := a.C.Wait(ctx); err != nil {
				return err
			}
		}
		if got := count(a.M); got != 42 {
			return fmt.Errorf("consumer saw %d", got)
		}
		return nil
	})
)

func must[T any](t *testing.T) func(v T, err error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func startAll(t *testing.T, n int, f *mproc.Func[syncArg], a syncArg) []*mproc.Process {
	var ps []*mproc.Process
	for range n {
		ps = append(ps, start(t, f, a, mproc.ProcOptions{}))
	}
	return ps
}

func waitAll(t *testing.T, ps []*mproc.Process) {
	t.Helper()
	for _, p := range ps {
		if err := wait(t, p); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRLockCountsExactly(t *testing.T) {
	const n = 100_000
	rl := must[*mproc.RLock](t)(mproc.NewRLock())
	defer rl.Close()
	m := newShared(t, 64)
	ps := startAll(t, 3, rlockCountFn, syncArg{RL: rl, M: m, N: n})
	other := rl.Clone()
	for range n {
		rl.Lock()
		rl.Lock()
		if ok, _ := other.TryLock(); ok {
			t.Fatal("a second handle got into a held RLock")
		}
		bump(m)
		rl.Unlock()
		rl.Unlock()
	}
	waitAll(t, ps)
	if got := count(m); got != 4*n {
		t.Fatalf("counter %d, want %d", got, 4*n)
	}
	if err := rl.Release(); !errors.Is(err, mproc.ErrNotOwner) {
		t.Fatalf("release of a free RLock: %v", err)
	}
}

func TestRWMutexCountsExactly(t *testing.T) {
	const n = 100_000
	rw := must[*mproc.RWMutex](t)(mproc.NewRWMutex())
	defer rw.Close()
	m := newShared(t, 64)
	ps := startAll(t, 3, rwCountFn, syncArg{RW: rw, M: m, N: n})
	for range n / 4 {
		rw.Lock()
		bump(m)
		rw.Unlock()
	}
	waitAll(t, ps)
	if got, want := count(m), uint64(3*n*3/4+n/4); got != want {
		t.Fatalf("counter %d, want %d", got, want)
	}
}

func TestValueAndArrayAcrossProcesses(t *testing.T) {
	const n = 20_000
	v := must[*mproc.Value[int64]](t)(mproc.NewValue[int64](5))
	defer v.Close()
	a := must[*mproc.Array[uint32]](t)(mproc.NewArray[uint32](8))
	defer a.Close()
	ps := startAll(t, 3, valueAddFn, syncArg{V: v, A: a, N: n})
	waitAll(t, ps)
	if got := v.Load(); got != 5+3*n+3*1000 {
		t.Fatalf("value %d", got)
	}
	sum := uint32(0)
	for _, x := range a.Slice() {
		sum += x
	}
	if sum != 3*n {
		t.Fatalf("array sum %d", sum)
	}
	if !v.CompareAndSwap(5+3*n+3000, -1) || v.CompareAndSwap(0, 1) || v.Load() != -1 {
		t.Fatal("CompareAndSwap")
	}
}

func TestValueTypes(t *testing.T) {
	type point struct{ X, Y, Z float64 }
	p := must[*mproc.Value[point]](t)(mproc.NewValue(point{1, 2, 3}))
	defer p.Close()
	if !p.CompareAndSwap(point{1, 2, 3}, point{4, 5, 6}) || p.Load() != (point{4, 5, 6}) {
		t.Fatal("struct value")
	}
	f := must[*mproc.Value[float64]](t)(mproc.NewValue(1.5))
	defer f.Close()
	if f.Add(2.25) != 3.75 {
		t.Fatal("float add")
	}
	b := must[*mproc.Value[int8]](t)(mproc.NewValue[int8](-3))
	defer b.Close()
	if b.Add(5) != 2 {
		t.Fatal("int8 add")
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("Add on a struct did not panic")
			}
		}()
		p.Add(point{})
	}()
	if _, err := mproc.NewValue("a string"); err == nil {
		t.Error("a string value was accepted")
	}
	if _, err := mproc.NewArray[*int](3); err == nil {
		t.Error("an array of pointers was accepted")
	}
	if _, err := mproc.NewValue(struct{ S []int }{}); err == nil {
		t.Error("a struct holding a slice was accepted")
	}
	arr := must[*mproc.Array[int32]](t)(mproc.NewArrayOf([]int32{1, 2, 3}))
	defer arr.Close()
	if arr.Len() != 3 || arr.Load(2) != 3 {
		t.Fatal("NewArrayOf")
	}
	name := fmt.Sprintf("test-value-%d", os.Getpid())
	nv := must[*mproc.Value[int64]](t)(mproc.CreateValue[int64](name, 7))
	defer nv.Close()
	defer nv.Remove()
	if _, err := mproc.OpenValue[int32](name); !errors.Is(err, mproc.ErrKind) {
		t.Fatalf("opened as another type: %v", err)
	}
	if _, err := mproc.OpenArray[int64](name); !errors.Is(err, mproc.ErrKind) {
		t.Fatalf("value opened as an array: %v", err)
	}
	ov := must[*mproc.Value[int64]](t)(mproc.OpenValue[int64](name))
	defer ov.Close()
	if ov.Load() != 7 {
		t.Fatal("opened value")
	}
}

// Load, Store and CompareAndSwap of a value that is not 4 or 8 bytes may
// be called while holding the value's Lock, as in Python's
// "with v.get_lock(): v.value += 1".
func TestValueAccessUnderItsLock(t *testing.T) {
	type pair struct{ A, B int64 }
	v := must[*mproc.Value[pair]](t)(mproc.NewValue(pair{1, 2}))
	defer v.Close()
	a := must[*mproc.Array[[3]int32]](t)(mproc.NewArray[[3]int32](2))
	defer a.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		v.Lock().Lock()
		x := v.Load()
		v.Store(pair{x.A + 1, x.B + 1})
		v.CompareAndSwap(pair{2, 3}, pair{20, 30})
		v.Lock().Unlock()
		a.Lock().Lock()
		a.Store(1, [3]int32{a.Load(0)[0] + 7})
		a.Lock().Unlock()
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Load/Store under the value's own Lock hung")
	}
	if got := v.Load(); got != (pair{20, 30}) {
		t.Fatalf("value %v", got)
	}
	if got := a.Load(1); got != [3]int32{7} {
		t.Fatalf("array %v", got)
	}
}

func TestEventWakesThreeProcesses(t *testing.T) {
	ev := must[*mproc.Event](t)(mproc.NewEvent())
	defer ev.Close()
	var ps []*mproc.Process
	for range 3 {
		here := must[*mproc.Event](t)(mproc.NewEvent())
		defer here.Close()
		ps = append(ps, start(t, eventWaitFn, syncArg{Ev: ev, Ev2: here}, mproc.ProcOptions{}))
		if err := here.Wait(ctxTimeout(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(20 * time.Millisecond) // they sleep on the event
	ev.Set()
	waitAll(t, ps)
	if !ev.IsSet() {
		t.Fatal("event cleared itself")
	}
	ev.Clear()
	if ev.IsSet() {
		t.Fatal("Clear")
	}
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestBarrierAcrossProcesses(t *testing.T) {
	b := must[*mproc.Barrier](t)(mproc.NewBarrier(4))
	defer b.Close()
	ps := startAll(t, 3, barrierFn, syncArg{B: b, N: 5})
	seen := map[int]bool{}
	for range 5 {
		i, err := b.Wait(ctxTimeout(t, 10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		seen[i] = true
	}
	waitAll(t, ps)
	if len(seen) < 2 {
		t.Logf("the parent's arrival indexes: %v", seen)
	}
	// One party killed while waiting: every other one is told.
	victim := start(t, barrierFn, syncArg{B: b, N: 0}, mproc.ProcOptions{})
	for b.NWaiting() == 0 {
		time.Sleep(time.Millisecond)
	}
	ps = startAll(t, 1, barrierFn, syncArg{B: b, N: 1})
	for b.NWaiting() < 2 {
		time.Sleep(time.Millisecond)
	}
	victim.Kill()
	wait(t, victim)
	if _, err := b.Wait(ctxTimeout(t, 10*time.Second)); !errors.Is(err, mproc.ErrBrokenBarrier) {
		t.Fatalf("parent after a party died: %v", err)
	}
	if err := wait(t, ps[0]); !errors.Is(err, mproc.ErrBrokenBarrier) {
		t.Fatalf("child after a party died: %v", err)
	}
	b.Reset()
	if b.Broken() {
		t.Fatal("Reset")
	}
}

func TestBoundedSemaphoreReturnsUnitsOfTheDead(t *testing.T) {
	s := must[*mproc.BoundedSemaphore](t)(mproc.NewBoundedSemaphore(3))
	defer s.Close()
	ev := must[*mproc.Event](t)(mproc.NewEvent())
	defer ev.Close()
	holder := start(t, semHoldFn, syncArg{Sem: s, Ev: ev, N: 3}, mproc.ProcOptions{})
	if err := ev.Wait(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if s.TryAcquire() || s.Value() != 0 {
		t.Fatal("units the holder took are free")
	}
	if err := s.Release(); err != nil { // allowed: the bound is not passed
		t.Fatal(err)
	}
	s.Acquire(context.Background())
	got := make(chan error, 1)
	go func() { got <- s.Acquire(ctxTimeout(t, 10*time.Second)) }()
	time.Sleep(20 * time.Millisecond)
	killed := time.Now()
	holder.Kill()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if d := time.Since(killed); d > 100*time.Millisecond {
		t.Errorf("units came back %v after the death", d)
	}
	wait(t, holder)
	s.Release()
	for s.Value() < 3 {
		if err := s.Release(); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Release(); !errors.Is(err, mproc.ErrOverRelease) {
		t.Fatalf("release past the bound: %v", err)
	}
	if _, err := mproc.NewBoundedSemaphore(0); err == nil {
		t.Fatal("bounded semaphore of 0")
	}
}

func TestCondAcrossProcesses(t *testing.T) {
	l := newLock(t)
	c := must[*mproc.Cond](t)(mproc.NewCond(l))
	defer c.Close()
	m := newShared(t, 64)
	ps := startAll(t, 2, condConsumerFn, syncArg{C: c, M: m})
	time.Sleep(50 * time.Millisecond)
	l.Lock()
	for range 42 {
		bump(m)
	}
	c.Broadcast()
	l.Unlock()
	waitAll(t, ps)
}

// Every blocking call returns within 10 ms of its context's cancellation.
func TestCancellationUnblocksEverything(t *testing.T) {
	rl := must[*mproc.RLock](t)(mproc.NewRLock())
	defer rl.Close()
	rw := must[*mproc.RWMutex](t)(mproc.NewRWMutex())
	defer rw.Close()
	sem := must[*mproc.Semaphore](t)(mproc.NewSemaphore(0))
	defer sem.Close()
	ev := must[*mproc.Event](t)(mproc.NewEvent())
	defer ev.Close()
	l := newLock(t)
	c := must[*mproc.Cond](t)(mproc.NewCond(l))
	defer c.Close()
	b := must[*mproc.Barrier](t)(mproc.NewBarrier(2))
	defer b.Close()
	l2 := newLock(t)
	rl.Lock()
	rw.Lock()
	l2.Lock()
	calls := map[string]func(context.Context) error{
		"Lock.LockContext":     l2.LockContext,
		"RLock.LockContext":    rl.Clone().LockContext,
		"RWMutex.LockContext":  rw.LockContext,
		"RWMutex.RLockContext": rw.RLockContext,
		"Semaphore.Acquire":    sem.Acquire,
		"Event.Wait":           ev.Wait,
		"Barrier.Wait":         func(ctx context.Context) error { _, err := b.Wait(ctx); return err },
		"Cond.Wait": func(ctx context.Context) error {
			l.Lock()
			defer l.Unlock()
			return c.Wait(ctx)
		},
	}
	var wg sync.WaitGroup
	for name, call := range calls {
		wg.Go(func() { checkCancel(t, name, call) })
	}
	wg.Wait()
}

// cancelBound is how soon a blocked call must return after its context is
// cancelled. A loaded machine can delay any goroutine past it, so the
// check is tried up to cancelTries times: the mechanism holds if one try
// meets the bound, and every try must return (a hang fails at once).
const (
	cancelBound = 10 * time.Millisecond
	cancelTries = 3
)

// checkCancel starts call with a context, cancels it once call is
// blocked, and checks that it returns context.Canceled within
// cancelBound.
func checkCancel(t *testing.T, name string, call func(ctx context.Context) error) {
	t.Helper()
	var took []time.Duration
	for range cancelTries {
		ctx, cancel := context.WithCancel(context.Background())
		got := make(chan error, 1)
		go func() { got <- call(ctx) }()
		time.Sleep(30 * time.Millisecond)
		t0 := time.Now()
		cancel()
		select {
		case err := <-got:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%s cancelled: %v", name, err)
				return
			}
		case <-time.After(5 * time.Second):
			t.Errorf("%s hangs after cancellation", name)
			return
		}
		d := time.Since(t0)
		if d <= cancelBound {
			return
		}
		took = append(took, d)
	}
	t.Errorf("%s returned %v after cancellation (bound %v, %d tries)", name, took, cancelBound, cancelTries)
}
