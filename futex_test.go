package mproc_test

import (
	"context"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"mproc"
	"mproc/internal/futex"
	"mproc/internal/shm"
)

// pingFn waits on word 0 of the block until it is 1, then stores 2 and
// wakes the parent.
var pingFn = mproc.Register("futex-ping", func(ctx context.Context, m *mproc.SharedMemory) error {
	w := shm.At[uint32](m.Bytes(), 0)
	for atomic.LoadUint32(w) != 1 {
		if err := futex.Wait(ctx, w, 0, time.Now().Add(10*time.Second)); err != nil {
			return err
		}
	}
	atomic.StoreUint32(w, 2)
	futex.WakeAll(w)
	return nil
})

// TestFutexAcrossProcesses wakes a waiter in another process through a word
// in shared memory, and back.
func TestFutexAcrossProcesses(t *testing.T) {
	m, err := mproc.NewSharedMemory(64)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	p := start(t, pingFn, m, mproc.ProcOptions{})
	time.Sleep(50 * time.Millisecond) // let it block
	w := shm.At[uint32](m.Bytes(), 0)
	atomic.StoreUint32(w, 1)
	futex.WakeAll(w)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for atomic.LoadUint32(w) != 2 {
		if err := futex.Wait(ctx, w, 1, time.Time{}); err != nil {
			t.Fatalf("waiting for the child's reply: %v", err)
		}
	}
	if err := wait(t, p); err != nil {
		t.Fatal(err)
	}
}

// TestUnwaitedChildIsReaped never calls Wait and checks the pid does not
// linger as a zombie.
func TestUnwaitedChildIsReaped(t *testing.T) {
	p, err := sleepFn.Start(context.Background(), 0, mproc.ProcOptions{})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(p.Pid(), 0) != syscall.ESRCH {
		if time.Now().After(deadline) {
			t.Fatalf("pid %d still exists (a zombie?) 10s after the child ended", p.Pid())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := wait(t, p); err != nil {
		t.Fatal(err)
	}
}
