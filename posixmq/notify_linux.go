package posixmq

import (
	"os"
	"sync/atomic"

	"mproc/internal/unix"
)

// Notify arranges for fn to be called once, in its own goroutine, when the
// queue holds a message: at once if it already does, otherwise when one
// arrives. Call it again for the next message. The returned stop cancels
// the call, as context.AfterFunc's does: it returns true if it stopped fn
// from being called, false if fn was already started (or stopped). Close
// stops pending calls.
//
// fn is told that a message is there, not given it: another receiver, in
// this process or another, may take it first, so fn's Receive should be a
// TryReceive or bounded by a context. A channel is one line away:
//
//	ready := make(chan struct{})
//	stop, err := q.Notify(func() { close(ready) })
//
// # Why not mq_notify
//
// Notify watches the queue in the Go runtime's poller (a queue descriptor
// is pollable, and the kernel wakes pollers on every send and receive):
// it holds a duplicate of the descriptor, waits for it to be readable and
// checks mq_curmsgs. It does not call mq_notify(2), whose forms all sit
// badly with Go: SIGEV_SIGNAL needs a process-wide signal, delivered
// without its siginfo by os/signal so one queue cannot be told from
// another; SIGEV_THREAD is glibc's helper thread (the kernel's half of it
// is a netlink cookie); SIGEV_THREAD_ID is refused by mq_notify. The
// kernel also allows one registration per queue, system-wide (others get
// EBUSY), and fires only on the empty-to-non-empty edge and only if no
// process is blocked in mq_receive, so a queue that is not empty at
// registration is never reported. Polling has none of these limits:
// any number of Notify calls in any number of processes, no signals, and
// no lost wake-up. (mproc/internal/unix has an MqNotify wrapper should
// the kernel's registration be wanted.)
func (q *Queue) Notify(fn func()) (stop func() bool, err error) {
	if q.closed.Load() {
		return nil, &Error{"notify", q.name, os.ErrClosed}
	}
	var dup int
	if cerr := q.control(func(fd int) { dup, err = unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 3) }); cerr != nil {
		return nil, &Error{"notify", q.name, cerr}
	}
	if err != nil {
		return nil, &Error{"notify", q.name, err}
	}
	n := &notifier{f: os.NewFile(uintptr(dup), q.Name())}
	rc, err := n.f.SyscallConn()
	if err != nil {
		n.f.Close()
		return nil, &Error{"notify", q.name, err}
	}
	q.mu.Lock()
	if q.notes == nil {
		q.mu.Unlock()
		n.f.Close()
		return nil, &Error{"notify", q.name, os.ErrClosed}
	}
	q.notes[n] = struct{}{}
	q.mu.Unlock()

	go func() {
		err := rc.Read(func(fd uintptr) bool {
			var a unix.MqAttr
			return unix.MqGetsetattr(int(fd), nil, &a) != nil || a.Curmsgs > 0
		})
		n.f.Close()
		q.mu.Lock()
		delete(q.notes, n)
		q.mu.Unlock()
		if err == nil && n.state.CompareAndSwap(waiting, fired) {
			fn()
		}
	}()
	return n.stop, nil
}

// A notifier is one pending Notify call. Its state moves from waiting to
// fired (its goroutine is about to call fn) or to stopped, once.
type notifier struct {
	f     *os.File // a duplicate of the queue's descriptor, in the poller
	state atomic.Int32
}

const (
	waiting = iota
	fired
	stopped
)

func (n *notifier) stop() bool {
	if !n.state.CompareAndSwap(waiting, stopped) {
		return false
	}
	n.f.Close() // wakes the goroutine, which returns without calling fn
	return true
}
