package psync

import (
	"context"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mproc/internal/futex"
)

// The tests run the algorithms over heap memory under the race detector,
// with goroutines posing as processes: each has its own token, and dead
// marks a token's process as dead for Alive.
var dead sync.Map

func TestMain(m *testing.M) {
	futex.Slice = 5 * time.Millisecond
	Alive = func(tok uint64) bool { _, d := dead.Load(tok); return !d }
	os.Exit(m.Run())
}

var nextTok atomic.Uint64

// proc returns a fresh token.
func proc() uint64 { return nextTok.Add(1) << 8 }

// within returns a context that ends after d, or with the test.
func within(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func kill(tok uint64) { dead.Store(tok, true) }

func TestMutexExclusion(t *testing.T) {
	var m Mutex
	counter := 0
	var wg sync.WaitGroup
	for range 4 {
		me := proc()
		wg.Go(func() {
			for range 2000 {
				if err := m.Lock(context.Background(), me); err != nil {
					t.Error(err)
					return
				}
				counter++
				if err := m.Unlock(me); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if counter != 8000 {
		t.Fatalf("counter %d, want 8000", counter)
	}
}

func TestMutexNotOwner(t *testing.T) {
	var m Mutex
	a, b := proc(), proc()
	if err := m.Unlock(a); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("unlock of unlocked: %v", err)
	}
	if ok, err := m.TryLock(a); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if ok, _ := m.TryLock(b); ok {
		t.Fatal("TryLock of a held mutex succeeded")
	}
	if err := m.Unlock(b); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("unlock by non-owner: %v", err)
	}
	if m.Owner() != a {
		t.Fatal("a non-owner's unlock changed the owner")
	}
	if err := m.MarkConsistent(b); !errors.Is(err, ErrNotOwner) {
		t.Fatal(err)
	}
}

func TestMutexDeadOwner(t *testing.T) {
	var m Mutex
	a, b, c := proc(), proc(), proc()
	if err := m.Lock(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() { got <- m.Lock(context.Background(), b) }()
	time.Sleep(3 * futex.Slice) // b is asleep
	died := time.Now()
	kill(a)
	if err := <-got; !errors.Is(err, ErrOwnerDead) {
		t.Fatalf("waiter on a dead owner: %v", err)
	}
	if d := time.Since(died); d > 4*futex.Slice+50*time.Millisecond {
		t.Errorf("death noticed after %v", d)
	}
	if !m.HeldBy(b) || m.Consistent() {
		t.Fatal("the waiter does not hold an inconsistent mutex")
	}
	// Not repaired: the next owner is told too.
	m.Unlock(b)
	if err := m.Lock(context.Background(), c); !errors.Is(err, ErrOwnerDead) {
		t.Fatalf("after an unrepaired takeover: %v", err)
	}
	if err := m.MarkConsistent(c); err != nil {
		t.Fatal(err)
	}
	m.Unlock(c)
	if err := m.Lock(context.Background(), b); err != nil {
		t.Fatalf("after repair: %v", err)
	}
	m.Unlock(b)
	// TryLock takes over from a dead owner too.
	d := proc()
	m.Lock(context.Background(), d)
	kill(d)
	if ok, err := m.TryLock(c); !ok || !errors.Is(err, ErrOwnerDead) {
		t.Fatalf("TryLock on a dead owner: %v %v", ok, err)
	}
}

func TestMutexCancelAndDeadline(t *testing.T) {
	var m Mutex
	a, b := proc(), proc()
	m.Lock(context.Background(), a)
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan error, 1)
	go func() { got <- m.Lock(ctx, b) }()
	time.Sleep(20 * time.Millisecond)
	t0 := time.Now()
	cancel()
	if err := <-got; err != context.Canceled {
		t.Fatalf("cancelled: %v", err)
	}
	if d := time.Since(t0); d > time.Second {
		t.Errorf("cancellation took %v", d)
	}
	if err := m.Lock(within(t, 15*time.Millisecond), b); err != context.DeadlineExceeded {
		t.Fatalf("deadline: %v", err)
	}
	if m.Owner() != a {
		t.Fatal("a failed Lock changed the owner")
	}
}
