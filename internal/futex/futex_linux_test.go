package futex

import (
	"context"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestWaitValueMismatchReturnsAtOnce(t *testing.T) {
	var w uint32 = 1
	start := time.Now()
	if err := Wait(context.Background(), &w, 0, time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Fatalf("mismatched value blocked for %v", d)
	}
}

func TestWaitDeadline(t *testing.T) {
	var w uint32
	start := time.Now()
	err := Wait(context.Background(), &w, 0, start.Add(20*time.Millisecond))
	for err == nil { // spurious wake-ups are allowed
		err = Wait(context.Background(), &w, 0, start.Add(20*time.Millisecond))
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("got %v, want os.ErrDeadlineExceeded", err)
	}
	if d := time.Since(start); d < 20*time.Millisecond {
		t.Fatalf("returned after %v, before the deadline", d)
	}
}

func TestWaitContextDeadline(t *testing.T) {
	var w uint32
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	var err error
	for err == nil {
		err = Wait(ctx, &w, 0, time.Time{})
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want context.DeadlineExceeded", err)
	}
}

func TestWakeOne(t *testing.T) {
	var w uint32
	done := make(chan error, 1)
	go func() {
		for atomic.LoadUint32(&w) == 0 {
			if err := Wait(context.Background(), &w, 0, time.Now().Add(5*time.Second)); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	time.Sleep(10 * time.Millisecond)
	atomic.StoreUint32(&w, 1)
	Wake(&w, 1)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("waiter not woken")
	}
}

func TestWakeAll(t *testing.T) {
	var w uint32
	const n = 8
	var wg sync.WaitGroup
	var woke atomic.Int32
	for range n {
		wg.Go(func() {
			for atomic.LoadUint32(&w) == 0 {
				if err := Wait(context.Background(), &w, 0, time.Now().Add(5*time.Second)); err != nil {
					t.Error(err)
					return
				}
			}
			woke.Add(1)
		})
	}
	time.Sleep(20 * time.Millisecond)
	atomic.StoreUint32(&w, 1)
	WakeAll(&w)
	wg.Wait()
	if woke.Load() != n {
		t.Fatalf("%d of %d waiters woke", woke.Load(), n)
	}
}

// TestCancelLatency cancels blocked waiters many times, including at the
// moment they enter the kernel, and requires each to return well under 10 ms.
func TestCancelLatency(t *testing.T) {
	var w uint32
	var worst time.Duration
	for i := range 200 {
		ctx, cancel := context.WithCancel(context.Background())
		res := make(chan time.Time, 1)
		go func() {
			var err error
			for err == nil {
				err = Wait(ctx, &w, 0, time.Time{})
			}
			if !errors.Is(err, context.Canceled) {
				t.Errorf("got %v, want context.Canceled", err)
			}
			res <- time.Now()
		}()
		if i%2 == 0 {
			time.Sleep(time.Duration(i%7) * 100 * time.Microsecond)
		}
		at := time.Now()
		cancel()
		select {
		case got := <-res:
			worst = max(worst, got.Sub(at))
		case <-time.After(2 * time.Second):
			t.Fatal("cancelled waiter did not return")
		}
	}
	t.Logf("worst cancellation latency over 200 waits: %v", worst)
	if worst > time.Second {
		t.Errorf("worst cancellation latency %v, want well under a second (a missed wake-up would wait for ever)", worst)
	}
}

func BenchmarkWakeNoWaiters(b *testing.B) {
	var w uint32
	for b.Loop() {
		Wake(&w, 1)
	}
}
