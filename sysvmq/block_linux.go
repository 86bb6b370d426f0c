//go:build linux && (amd64 || arm64 || riscv64 || loong64)

package sysvmq

import (
	"context"
	"os"
	"runtime"
	"sync/atomic"
	"time"

	"mproc/internal/unix"
)

// How a blocking msgsnd or msgrcv is cancelled (the package documentation
// says why; export_test.go lets tests force the fallback and measure both).
//
// A call that must wait runs the system call without IPC_NOWAIT on its
// goroutine's OS thread, locked for the duration. If ctx is done first, an
// interrupter (context.AfterFunc) sends SIGURG to that thread with
// tgkill(2): msgsnd and msgrcv are never restarted after a handled signal,
// so the call fails with EINTR and, seeing ctx done, block returns ctx's
// error. A signal can land just before the thread enters the kernel and be
// lost, so the interrupter repeats it, at growing intervals, until the
// thread says it has left; block waits for the interrupter to stop before
// unlocking the thread. A message handed over at the same moment as the
// signal is kept: the kernel returns it rather than EINTR, and block
// returns it.
//
// SIGURG is the Go runtime's preemption signal: its handler is always
// installed and it tolerates spurious ones by design. A program that
// called signal.Ignore(syscall.SIGURG) (or a host that left it SIG_DFL)
// would have the kernel drop the signal without interrupting anything, so
// block checks the handler on every wait and, without one, polls with
// IPC_NOWAIT instead, sleeping pollMin doubling to pollMax between tries.
const (
	interruptFirst = 20 * time.Microsecond // the interrupter's first pause
	interruptMax   = time.Millisecond      // and its longest
	pollMin        = 50 * time.Microsecond
	pollMax        = 5 * time.Millisecond
)

var (
	pid       = os.Getpid()
	forcePoll atomic.Bool // tests: use the polling fallback
)

// block calls call(0) — one msgsnd or msgrcv without IPC_NOWAIT — until it
// returns something other than EINTR, or until ctx is done, and returns
// what it returned or ctx's error.
func block(ctx context.Context, call func(nowait int) (int, error)) (int, error) {
	if ctx.Done() == nil { // never cancelled: just block
		for {
			n, err := call(0)
			if err != unix.EINTR {
				return n, err
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if !interruptible() {
		return poll(ctx, call)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	it := &interrupter{tid: unix.Gettid(), left: make(chan struct{}), done: make(chan struct{})}
	stop := context.AfterFunc(ctx, it.run)
	var n int
	var err error
	for {
		if err = ctx.Err(); err != nil {
			break
		}
		if n, err = call(0); err != unix.EINTR {
			break
		}
	}
	close(it.left)
	if !stop() {
		<-it.done // the interrupter ran: let it finish before the thread is unlocked
	}
	return n, err
}

// interruptible reports whether SIGURG has a handler, so that a tgkill'd
// thread leaves msgsnd or msgrcv with EINTR.
func interruptible() bool {
	if forcePoll.Load() {
		return false
	}
	h, err := unix.SigactionHandler(unix.SIGURG)
	return err == nil && h != unix.SIG_DFL && h != unix.SIG_IGN
}

// An interrupter signals a thread blocked in block until it leaves.
type interrupter struct {
	tid  int
	left chan struct{} // closed by block once the call returned for good
	done chan struct{} // closed by run when it stops signalling
}

func (it *interrupter) run() {
	defer close(it.done)
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for d := interruptFirst; ; d = min(2*d, interruptMax) {
		_ = unix.Tgkill(pid, it.tid, unix.SIGURG)
		t.Reset(d)
		select {
		case <-it.left:
			return
		case <-t.C:
		}
	}
}

// poll is the fallback: call(IPC_NOWAIT) until it does not report a full
// queue (EAGAIN) or no message (ENOMSG), sleeping between tries.
func poll(ctx context.Context, call func(nowait int) (int, error)) (int, error) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for d := pollMin; ; d = min(2*d, pollMax) {
		n, err := call(unix.IPC_NOWAIT)
		if err != unix.EAGAIN && err != unix.ENOMSG && err != unix.EINTR {
			return n, err
		}
		t.Reset(d)
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-t.C:
		}
	}
}
