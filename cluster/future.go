package cluster

import (
	"context"
	"iter"

	"mproc/internal/future"
)

// Future is the result of a task submitted to a Pool, available once the
// task has ended: the same type as pool.Future. Its methods are safe for
// concurrent use: Done, Result(ctx) (ctx bounds the waiting only), OnDone
// and Cancel.
//
// Result's error is the task's own error as an *mproc.RemoteError
// (errors.Is holds for every registered sentinel it matched: see
// RegisterError), an *mproc.PanicError if it panicked, or one of the
// pool's: ErrWorkerDied, context.Canceled (Cancel), ErrClosed,
// ErrTerminated, ErrTooLarge, a publishing error, or an encoding error. A
// task over its TaskTimeout returns what its function returns once its
// context ends, usually context.DeadlineExceeded.
//
// Cancel cancels the task: its future gets context.Canceled at once, and
// the workers are told (a broadcast): one running it cancels its context
// and drops its result, and one that takes it later skips it (workers
// remember cancellations for ten minutes). Cancel reports whether the
// future was not yet done; false means it already had its outcome.
type Future[R any] = future.Future[R]

// AsCompleted yields the futures as they complete, in completion order.
// The error is nil but for the last step when ctx ends first: then the
// future is nil and the error is ctx.Err(). Breaking out of the loop is
// fine; the futures go on.
func AsCompleted[R any](ctx context.Context, fs ...*Future[R]) iter.Seq2[*Future[R], error] {
	return future.AsCompleted(ctx, fs...)
}
