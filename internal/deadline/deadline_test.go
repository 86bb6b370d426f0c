package deadline

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"
)

// pipe returns a pipe whose read end has nothing to read: a read blocks
// until its deadline.
func pipe(t *testing.T) (*os.File, *os.File) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

func read(r *os.File) error {
	_, err := r.Read(make([]byte, 1))
	return err
}

func TestCancelWakesARead(t *testing.T) {
	r, _ := pipe(t)
	b := New(r.SetReadDeadline)
	ctx, cancel := context.WithCancel(context.Background())
	unbind := b.Bind(ctx)
	go func() { time.Sleep(10 * time.Millisecond); cancel() }()
	t0 := time.Now()
	if err := read(r); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read after cancel: %v", err)
	}
	if d := time.Since(t0); d > time.Second {
		t.Errorf("woke %v after the cancel", d)
	}
	if unbind() {
		t.Error("unbind stopped a callback that had run")
	}
}

func TestContextDeadlineBecomesTheFiles(t *testing.T) {
	r, _ := pipe(t)
	b := New(r.SetReadDeadline)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	unbind := b.Bind(ctx)
	defer unbind()
	if err := read(r); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the context's deadline: %v", err)
	}
}

// A cancellation that comes after its Bind was undone does not touch the
// next call's deadline; a context that cannot end clears what was left.
func TestLateCancelIsIgnored(t *testing.T) {
	r, w := pipe(t)
	b := New(r.SetReadDeadline)
	ctx, cancel := context.WithCancel(context.Background())
	unbind := b.Bind(ctx)
	if !unbind() {
		t.Fatal("unbind did not stop the pending callback")
	}
	unbind2 := b.Bind(context.Background()) // clears the deadline
	cancel()
	go func() { time.Sleep(50 * time.Millisecond); w.Write([]byte{1}) }()
	if err := read(r); err != nil {
		t.Fatalf("read after a stale cancel: %v", err)
	}
	unbind2()
}

func TestWithin(t *testing.T) {
	r, _ := pipe(t)
	b := New(r.SetReadDeadline)
	ctx, cancel := context.WithCancel(context.Background())
	unbind := b.Bind(ctx)
	defer unbind()
	if !b.Within(10 * time.Millisecond) {
		t.Fatal("Within refused while the context lives")
	}
	if err := read(r); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past Within's slice: %v", err)
	}
	cancel()
	time.Sleep(10 * time.Millisecond) // the callback runs
	if b.Within(time.Hour) {
		t.Fatal("Within accepted after the context ended")
	}
}

func TestNoAllocationForAContextThatCannotEnd(t *testing.T) {
	r, _ := pipe(t)
	b := New(r.SetReadDeadline)
	if n := testing.AllocsPerRun(100, func() { b.Bind(context.Background())() }); n != 0 {
		t.Fatalf("%v allocations per Bind of a context that cannot end", n)
	}
}
