package pool

import (
	"context"
	"iter"

	"mproc/internal/future"
)

// Future is the result of a task submitted to a Pool, available once the
// task has ended. Its methods are safe for concurrent use: Done, Result(ctx)
// (ctx bounds the waiting only), OnDone (callbacks run from a goroutine of
// the pool, one after the other, or at once if the future is done), and
// Cancel.
//
// Result's error is the task's own error as an *mproc.RemoteError
// (errors.Is holds for the context errors and the mproc sentinels it
// wrapped), an *mproc.PanicError if it panicked, or one of the pool's:
// ErrWorkerDied, context.DeadlineExceeded (TaskTimeout), context.Canceled
// (Cancel), ErrClosed, ErrTerminated, ErrBroken, or an encoding error.
//
// Cancel cancels the task. A task not yet started is dropped, and its
// future gets context.Canceled; a running task has its context cancelled
// in the worker, and the future gets what the task then returns. Cancel
// reports whether the future was not yet done, so the cancellation was
// requested; false means it already had its outcome.
type Future[R any] = future.Future[R]

// AsCompleted yields the futures as they complete, in completion order.
// The error is nil but for the last step when ctx ends first: then the
// future is nil and the error is ctx.Err(). Breaking out of the loop is
// fine; the futures go on.
func AsCompleted[R any](ctx context.Context, fs ...*Future[R]) iter.Seq2[*Future[R], error] {
	return future.AsCompleted(ctx, fs...)
}
