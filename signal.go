package mproc

import (
	"fmt"
	"os"
	"syscall"

	"mproc/internal/unix"
)

// SignalWithValue sends sig to the process pid with an integer value, as
// sigqueue(3) does: a C program reads it as si_value.sival_int (or
// sival_ptr) from sigwaitinfo or an SA_SIGINFO handler; real-time signals
// (SIGRTMIN+n) queue, one delivery per send.
//
// Receiving values in Go is not offered: the Go runtime handles every
// signal itself and os/signal reports which signal came, not its siginfo,
// and the alternative, signalfd, needs the signal blocked in every thread
// of the process, which a Go program cannot arrange (the runtime starts
// threads with its own masks). Between Go processes, send the signal for
// the wake-up and the data over a Queue or a Conn; see the example in
// examples/signals.
func SignalWithValue(pid int, sig syscall.Signal, value int) error {
	if err := unix.Sigqueue(pid, sig, int64(value)); err != nil {
		if err == syscall.ESRCH {
			return fmt.Errorf("signal %d to pid %d: %w", int(sig), pid, os.ErrProcessDone)
		}
		return fmt.Errorf("signal %d to pid %d: %w", int(sig), pid, err)
	}
	return nil
}

// SignalWithValue sends sig with value to the child (see the package-level
// SignalWithValue). It returns os.ErrProcessDone if the child has ended.
func (p *Process) SignalWithValue(sig syscall.Signal, value int) error {
	if !p.Alive() {
		return os.ErrProcessDone
	}
	return SignalWithValue(p.pid, sig, value)
}
