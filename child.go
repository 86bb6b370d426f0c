package mproc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"mproc/internal/errcode"
	"mproc/internal/fd"
	"mproc/internal/reexec"
)

// Main must be the first statement of main in every program that starts Go
// children with Start (StartCommand alone does not need it):
//
//	func main() {
//		mproc.Main()
//		...
//	}
//
// In the parent it returns at once. In a child (the same binary, re-executed
// by Start) it runs the registered function and exits, never returning:
// status 0 when the function returned nil, 1 when it returned an error, 2
// when it panicked. In tests, call it first in TestMain.
func Main() {
	if !mainCalled.CompareAndSwap(false, true) {
		return
	}
	marker, ok := os.LookupEnv(reexec.EnvMarker)
	if !ok {
		return
	}
	os.Unsetenv(reexec.EnvMarker) // not for the child's own children
	os.Exit(runChild(marker))
}

// Exit statuses of a child.
const (
	exitError     = 1
	exitPanic     = 2
	exitBootstrap = 125
)

const (
	maxResultMsg   = 16 << 10
	maxResultStack = 64 << 10
)

// signalsCaught is closed once a child catches SIGTERM and SIGINT (for
// tests: export_test.go).
var signalsCaught = make(chan struct{})

func runChild(marker string) int {
	ctrl, err := reexec.Attach(marker)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%v\n", err)
		return exitBootstrap
	}
	h, fds, err := ctrl.RecvHello()
	if errors.Is(err, io.EOF) {
		// A spare dropped, or a parent that died or terminated this
		// process before sending the Hello: nothing was asked of it.
		return exitBootstrap
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%v\n", err)
		return exitBootstrap
	}
	current = ProcessInfo{Name: h.Name, ParentPid: h.ParentPid, Child: true}
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	sd := &shutdown{cancel: cancel, grace: h.Grace}
	ctrl.SendReady()
	// The parent's Terminate comes on the control socket. Signals are
	// caught from here on, off the path to Ready: the first signal.Notify
	// starts the runtime's signal thread, 0.15-0.25 ms that every cold Start
	// paid (a SIGTERM or SIGINT in those first moments ends the process as
	// it would any program that has not set up its handling yet). SIGINT
	// too: Ctrl-C at a terminal reaches the whole process group, and a child
	// should wind down through its context like its parent, not die on the
	// spot.
	go func() {
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
		close(signalsCaught)
		for range sigs {
			sd.begin(ErrTerminated)
		}
	}()
	go func() {
		ctrl.Watch(func() { sd.begin(ErrTerminated) })
		if !h.Detached {
			sd.parentDied()
		}
	}()
	if h.Detached {
		// A detached child outlives the parent that may relay its output:
		// a write to that dead relay fails with EPIPE instead of killing
		// the child with SIGPIPE (Go's default for standard output).
		signal.Ignore(syscall.SIGPIPE)
	}

	registry.Lock()
	run := registry.m[h.Func]
	registry.Unlock()
	var res reexec.Result
	if run == nil {
		closeFDs(fds)
		err := fmt.Errorf("function %q is not registered in this binary: %w", h.Func, ErrNotRegistered)
		res = reexec.Result{Status: reexec.StatusError, Code: errcode.Code(err), Msg: err.Error()}
	} else {
		res = call(ctx, run, h.Arg, fds)
	}
	ctrl.SendResult(res) // fails only if the parent is gone: nobody to tell
	switch res.Status {
	case reexec.StatusOK:
		return 0
	case reexec.StatusPanic:
		return exitPanic
	}
	return exitError
}

// call runs the function and turns its error or panic into a Result.
func call(ctx context.Context, run func(context.Context, []byte, []*fd.FD) error, arg []byte, fds []*fd.FD) (res reexec.Result) {
	defer func() {
		if r := recover(); r != nil {
			res = reexec.Result{Status: reexec.StatusPanic, Msg: truncate(fmt.Sprint(r), maxResultMsg),
				Stack: truncate(string(debug.Stack()), maxResultStack)}
		}
	}()
	if err := run(ctx, arg, fds); err != nil {
		return reexec.Result{Status: reexec.StatusError, Code: errcode.Code(err), Msg: truncate(err.Error(), maxResultMsg)}
	}
	return reexec.Result{Status: reexec.StatusOK}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "... (truncated)"
}

// shutdown is a child's way out. The first of the parent's Terminate (a
// control message), SIGTERM or SIGINT, and the parent's death cancels the
// function's context with the cause and terminates this child's own
// (non-detached) children, so a whole tree winds down in parallel. When the parent is gone, the child also exits by itself one
// grace period after that first trigger, killing its own children first:
// nobody else is left to do it.
type shutdown struct {
	mu     sync.Mutex
	begun  bool
	cancel context.CancelCauseFunc
	grace  time.Duration
	since  time.Time
}

// begin starts the shutdown once. (Its triggers are set up after the
// Hello, so nothing can begin before it.)
func (s *shutdown) begin(cause error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.begun {
		return
	}
	s.begun, s.since = true, time.Now()
	s.cancel(cause)
	for _, p := range Children() {
		if !p.detached {
			p.Terminate()
		}
	}
}

func (s *shutdown) parentDied() {
	s.begin(ErrParentDied)
	s.mu.Lock()
	until := s.since.Add(s.grace)
	s.mu.Unlock()
	time.Sleep(time.Until(until))
	for _, p := range Children() {
		if !p.detached {
			p.Kill()
		}
	}
	os.Exit(exitError)
}
