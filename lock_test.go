package mproc_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"mproc"
)

// counterArg is a child's share of a counting test: N increments of the
// 8-byte counter at the start of M under the locker.
type counterArg struct {
	Lock *mproc.Lock
	M    *mproc.SharedMemory
	N    int
}

func bump(m *mproc.SharedMemory) {
	b := m.Bytes()
	binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)+1)
}

func count(m *mproc.SharedMemory) uint64 { return binary.LittleEndian.Uint64(m.Bytes()) }

var (
	lockCountFn = mproc.Register("lock-count", func(ctx context.Context, a counterArg) error {
		for range a.N {
			if err := a.Lock.LockContext(ctx); err != nil {
				return err
			}
			bump(a.M)
			a.Lock.Unlock()
		}
		return nil
	})
	// lockHoldFn takes the lock, raises the flag at byte 8 of M and holds
	// the lock until it is killed.
	lockHoldFn = mproc.Register("lock-hold", func(ctx context.Context, a counterArg) error {
		a.Lock.Lock()
		a.M.Bytes()[8] = 1
		<-ctx.Done()
		select {} // hold it until SIGKILL
	})
)

func newShared(t *testing.T, size int) *mproc.SharedMemory {
	t.Helper()
	m, err := mproc.NewSharedMemory(size)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func newLock(t *testing.T) *mproc.Lock {
	t.Helper()
	l, err := mproc.NewLock()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestLockCountsExactly(t *testing.T) {
	const procs, n = 4, 100_000
	l, m := newLock(t), newShared(t, 64)
	var ps []*mproc.Process
	for range procs - 1 {
		ps = append(ps, start(t, lockCountFn, counterArg{Lock: l, M: m, N: n}, mproc.ProcOptions{}))
	}
	for range n { // the parent is the fourth process
		l.Lock()
		bump(m)
		l.Unlock()
	}
	for _, p := range ps {
		if err := wait(t, p); err != nil {
			t.Fatal(err)
		}
	}
	if got := count(m); got != procs*n {
		t.Fatalf("counter %d, want %d", got, procs*n)
	}
}

// holdLock starts a child that holds l and waits until it does.
func holdLock(t *testing.T, l *mproc.Lock, m *mproc.SharedMemory) *mproc.Process {
	t.Helper()
	p := start(t, lockHoldFn, counterArg{Lock: l, M: m}, mproc.ProcOptions{})
	for deadline := time.Now().Add(10 * time.Second); m.Bytes()[8] == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the holder never took the lock")
		}
	}
	return p
}

func TestLockHolderKilled(t *testing.T) {
	l, m := newLock(t), newShared(t, 64)
	holder := holdLock(t, l, m)
	if ok, err := l.TryLock(); ok || err != nil {
		t.Fatalf("TryLock of a held lock: %v %v", ok, err)
	}
	// A waiter in another process, and two goroutines here.
	other := start(t, lockCountFn, counterArg{Lock: l, M: m, N: 1}, mproc.ProcOptions{})
	type result struct {
		err error
		at  time.Time
	}
	got := make(chan result, 2)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			err := l.LockContext(context.Background())
			got <- result{err, time.Now()}
			if err == nil || errors.Is(err, mproc.ErrOwnerDead) {
				if errors.Is(err, mproc.ErrOwnerDead) {
					l.MarkConsistent() // "repaired"
				}
				bump(m)
				l.Unlock()
			}
		})
	}
	time.Sleep(50 * time.Millisecond) // everybody is waiting
	killed := time.Now()
	holder.Kill()
	wg.Wait()
	if err := wait(t, holder); err == nil {
		t.Fatal("killed holder reported success")
	}
	close(got)
	deadCount := 0
	for r := range got {
		if errors.Is(r.err, mproc.ErrOwnerDead) {
			deadCount++
			if d := r.at.Sub(killed); d > 100*time.Millisecond {
				t.Errorf("ErrOwnerDead %v after the kill, want within 100 ms", d)
			}
		} else if r.err != nil {
			t.Errorf("waiter: %v", r.err)
		}
	}
	err := wait(t, other)
	if errors.Is(err, mproc.ErrOwnerDead) {
		deadCount++
	} else if err != nil {
		t.Fatalf("waiting process: %v", err)
	}
	// The child returns ErrOwnerDead without unlocking when it was the one
	// told; then the lock is left held by a dead process again, and the
	// parent takes it over once more.
	if deadCount == 0 {
		t.Fatal("nobody was told that the owner died")
	}
	if err := l.LockContext(context.Background()); err != nil && !errors.Is(err, mproc.ErrOwnerDead) {
		t.Fatal(err)
	}
	l.MarkConsistent()
	if !l.Consistent() {
		t.Fatal("MarkConsistent did not stick")
	}
	l.Unlock()
	if ok, err := l.TryLock(); !ok || err != nil {
		t.Fatalf("lock after recovery: %v %v", ok, err)
	}
	l.Unlock()
	if got := count(m); got < 2 {
		t.Fatalf("work did not continue: counter %d", got)
	}
}

func TestLockNotOwner(t *testing.T) {
	l, m := newLock(t), newShared(t, 64)
	if err := l.Release(); !errors.Is(err, mproc.ErrNotOwner) {
		t.Fatalf("release of a free lock: %v", err)
	}
	holder := holdLock(t, l, m)
	if err := l.Release(); !errors.Is(err, mproc.ErrNotOwner) {
		t.Fatalf("release of another process's lock: %v", err)
	}
	func() {
		defer func() {
			if r := recover(); r == nil {
				t.Error("Unlock of another process's lock did not panic")
			}
		}()
		l.Unlock()
	}()
	holder.Kill()
	wait(t, holder)
}

func TestLockContextCancel(t *testing.T) {
	l, m := newLock(t), newShared(t, 64)
	holder := holdLock(t, l, m)
	defer func() { holder.Kill(); wait(t, holder) }()
	checkCancel(t, "LockContext", l.LockContext)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := l.LockContext(ctx); err != context.DeadlineExceeded {
		t.Fatalf("LockContext past its deadline: %v", err)
	}
}

func TestLockByNameAndBadSegments(t *testing.T) {
	name := fmt.Sprintf("test-lock-%d", os.Getpid())
	l, err := mproc.CreateLock(name)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	defer l.Remove()
	l2, err := mproc.OpenLock(name)
	if err != nil {
		t.Fatal(err)
	}
	l.Lock()
	if ok, _ := l2.TryLock(); ok {
		t.Fatal("two handles of one process both hold the lock")
	}
	l.Unlock()
	l2.Close()
	if err := l2.LockContext(context.Background()); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("closed handle: %v", err)
	}
	if _, err := mproc.CreateLock(name); !errors.Is(err, os.ErrExist) {
		t.Fatalf("create twice: %v", err)
	}
	if _, err := mproc.CreateLock("a/b"); !errors.Is(err, mproc.ErrInvalidName) {
		t.Fatalf("bad name: %v", err)
	}
	if _, err := mproc.OpenLock(name + "-missing"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing: %v", err)
	}
	shmName := name + "-shm"
	sm, err := mproc.CreateSharedMemory(shmName, 64)
	if err != nil {
		t.Fatal(err)
	}
	defer sm.Close()
	defer sm.Remove()
	if _, err := mproc.OpenLock(shmName); !errors.Is(err, mproc.ErrKind) {
		t.Fatalf("shared memory opened as a lock: %v", err)
	}
	garbage := name + "-garbage"
	path := filepath.Join("/dev/shm", "mproc."+garbage)
	if err := os.WriteFile(path, make([]byte, 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(path)
	if _, err := mproc.OpenLock(garbage); !errors.Is(err, mproc.ErrCorrupt) {
		t.Fatalf("garbage opened as a lock: %v", err)
	}
}
