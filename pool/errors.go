package pool

import (
	"errors"

	"mproc"
)

// Errors of a pool's futures and calls. Match with errors.Is.
var (
	// ErrClosed: Submit (or Map) after Close or Terminate.
	ErrClosed = errors.New("mproc: pool closed")
	// ErrTerminated: the future was pending or running when Terminate was
	// called or the pool's context ended.
	ErrTerminated = errors.New("mproc: pool terminated")
	// ErrWorkerDied: the worker process running the task ended (killed,
	// os.Exit, a crash) before the task returned. The error also holds
	// an *mproc.ExitError with the exit status or signal (errors.As).
	ErrWorkerDied = errors.New("mproc: pool worker died running the task")
	// ErrBroken: a worker's initializer failed, or a worker process could
	// not be started, so the pool cannot run tasks; every pending future
	// and every later Submit fails with it, and the workers are killed.
	ErrBroken = errors.New("mproc: pool broken: a worker could not start or initialise")
	// ErrNotRegistered: the worker does not know the task's name: Register
	// was not called at package level in this binary.
	ErrNotRegistered = mproc.ErrNotRegistered
)

func init() {
	for _, e := range []error{ErrClosed, ErrTerminated, ErrWorkerDied, ErrBroken} {
		mproc.RegisterSentinel(e)
	}
}

func errorCode(err error) uint32 { return mproc.ErrorCode(err) }

func codeError(code uint32) error { return mproc.CodeError(code) }
