package pool

import (
	"errors"

	"mproc"
	"mproc/internal/errcode"
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

// Their identity survives the trip from a worker (internal/errcode).
func init() {
	errcode.Register(ErrClosed, ErrTerminated, ErrWorkerDied, ErrBroken)
}
