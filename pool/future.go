package pool

import (
	"context"
	"iter"
	"sync"
)

// Future is the result of a task submitted to a Pool, available once the
// task has ended. Its methods are safe for concurrent use.
type Future[R any] struct {
	done chan struct{}

	mu        sync.Mutex
	completed bool
	val       R
	err       error
	callbacks []func(R, error)

	cancel func() bool
}

func newFuture[R any]() *Future[R] { return &Future[R]{done: make(chan struct{})} }

// complete sets the outcome once; later calls do nothing. Completion
// synchronizes before Done is closed, Result returns and callbacks run.
func (f *Future[R]) complete(v R, err error) {
	f.mu.Lock()
	if f.completed {
		f.mu.Unlock()
		return
	}
	f.completed, f.val, f.err = true, v, err
	cbs := f.callbacks
	f.callbacks = nil
	close(f.done)
	f.mu.Unlock()
	if len(cbs) > 0 {
		// A goroutine of its own: a callback may block, Submit, or wait
		// for other futures without stalling the pool.
		go func() {
			for _, cb := range cbs {
				cb(v, err)
			}
		}()
	}
}

// Done returns a channel closed once the future has its outcome.
func (f *Future[R]) Done() <-chan struct{} { return f.done }

// Result waits until the task has ended or ctx is done, and returns the
// task's result and error. ctx bounds the waiting only: the task goes on
// (see Cancel), and Result returns ctx.Err().
//
// The error is the task's own error as an *mproc.RemoteError (errors.Is
// holds for the context errors and the mproc sentinels it wrapped), an
// *mproc.PanicError if it panicked, or one of the pool's: ErrWorkerDied,
// context.DeadlineExceeded (TaskTimeout), context.Canceled (Cancel),
// ErrClosed, ErrTerminated, ErrBroken, or an encoding error.
func (f *Future[R]) Result(ctx context.Context) (R, error) {
	select {
	case <-f.done:
		return f.val, f.err
	case <-ctx.Done():
		var zero R
		return zero, ctx.Err()
	}
}

// OnDone calls fn with the outcome once the future has it: from a
// goroutine of the pool if the future is not done yet (callbacks of one
// future run one after the other, in the order they were added), or at
// once, in the calling goroutine, if it is.
func (f *Future[R]) OnDone(fn func(R, error)) {
	f.mu.Lock()
	if !f.completed {
		f.callbacks = append(f.callbacks, fn)
		f.mu.Unlock()
		return
	}
	v, err := f.val, f.err
	f.mu.Unlock()
	fn(v, err)
}

// Cancel cancels the task. A task not yet started is dropped, and its
// future gets context.Canceled; a running task has its context cancelled
// in the worker, and the future gets what the task then returns. Cancel
// reports whether the future was not yet done, so the cancellation was
// requested; false means it already had its outcome.
func (f *Future[R]) Cancel() bool {
	if f.cancel == nil {
		return false
	}
	return f.cancel()
}

// AsCompleted yields the futures as they complete, in completion order.
// The error is nil but for the last step when ctx ends first: then the
// future is nil and the error is ctx.Err(). Breaking out of the loop is
// fine; the futures go on.
func AsCompleted[R any](ctx context.Context, fs ...*Future[R]) iter.Seq2[*Future[R], error] {
	return func(yield func(*Future[R], error) bool) {
		ch := make(chan *Future[R], len(fs))
		for _, f := range fs {
			f.OnDone(func(R, error) { ch <- f })
		}
		for range fs {
			select {
			case f := <-ch:
				if !yield(f, nil) {
					return
				}
			case <-ctx.Done():
				yield(nil, ctx.Err())
				return
			}
		}
	}
}
