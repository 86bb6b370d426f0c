// Package future is the Future of package pool and of the cluster
// module's pool, and the gathering of a chunked Map's results: written
// once for both. What completes a future, and what Cancel does, is each
// pool's; their docs say it.
package future

import (
	"context"
	"fmt"
	"iter"
	"sync"
	"sync/atomic"
)

// Future is the result of a task, available once the task has ended. Its
// methods are safe for concurrent use.
type Future[R any] struct {
	mu        sync.Mutex
	done      chan struct{} // made by the first Done or waiting Result: most futures of a Map are complete before anyone waits
	completed bool
	val       R
	err       error
	callbacks []func(R, error)

	cancel Canceller
}

// Canceller is what a future's Cancel calls.
type Canceller interface{ Cancel() bool }

// CancelFunc is a function as a Canceller.
type CancelFunc func() bool

// Cancel calls c.
func (c CancelFunc) Cancel() bool { return c() }

// New returns a future without an outcome yet. The zero Future is one
// too, for a Future inside a larger allocation.
func New[R any]() *Future[R] { return &Future[R]{} }

// closed is the done channel of a future completed before anyone asked for
// one.
var closed = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// SetCancel sets what f.Cancel does; set before f is handed out. (A
// Canceller rather than a func: a pool's job is its own, one allocation
// less per task.)
func SetCancel[R any](f *Future[R], c Canceller) { f.cancel = c }

// Complete sets f's outcome once; later calls do nothing. Completion
// synchronizes before Done is closed, Result returns and callbacks run.
// It reports whether it readied a goroutine: one waiting for f, or its
// callbacks'.
func Complete[R any](f *Future[R], v R, err error) (readied bool) {
	f.mu.Lock()
	if f.completed {
		f.mu.Unlock()
		return false
	}
	f.completed, f.val, f.err = true, v, err
	cbs := f.callbacks
	f.callbacks = nil
	readied = f.done != nil
	if readied {
		close(f.done)
	}
	f.mu.Unlock()
	if len(cbs) > 0 {
		// A goroutine of its own: a callback may block, submit, or wait
		// for other futures without stalling the pool.
		go func() {
			for _, cb := range cbs {
				cb(v, err)
			}
		}()
		readied = true
	}
	return readied
}

// Done returns a channel closed once the future has its outcome.
func (f *Future[R]) Done() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.done == nil {
		f.done = closed
		if !f.completed {
			f.done = make(chan struct{})
		}
	}
	return f.done
}

// Result waits until the task has ended or ctx is done, and returns the
// task's result and error. ctx bounds the waiting only: the task goes on
// (see Cancel), and Result returns ctx.Err().
func (f *Future[R]) Result(ctx context.Context) (R, error) {
	f.mu.Lock()
	if f.completed {
		defer f.mu.Unlock()
		return f.val, f.err
	}
	f.mu.Unlock()
	select {
	case <-f.Done():
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

// Cancel asks for the task's cancellation (what that does is the pool's:
// see its Future). It reports whether the future was not yet done, so the
// cancellation was requested; false means it already had its outcome.
func (f *Future[R]) Cancel() bool {
	if f.cancel == nil {
		return false
	}
	return f.cancel.Cancel()
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

// Item is one element's outcome in a chunk of a Map.
type Item[R any] struct {
	V   R
	Err error
}

// Chunk is elements [Start, Start+N) of a Map, submitted as one task.
type Chunk[R any] struct {
	Start, N int
	F        *Future[[]Item[R]]
}

// CancelAll cancels the chunks' tasks.
func CancelAll[R any](cs []Chunk[R]) {
	for _, c := range cs {
		c.F.Cancel()
	}
}

// Group counts a Map's chunks in flight and wakes its Gather once, when
// all of them are done or one has failed, instead of once per chunk: a
// goroutine woken for each of a thousand one-task chunks cost the pool's
// parent more than the rest of the task. The submitter holds one count
// until it calls Done(false) after the last chunk.
type Group struct {
	left   atomic.Int64
	closed atomic.Bool
	done   chan struct{}
}

// NewGroup returns a group holding the submitter's count.
func NewGroup() *Group {
	g := &Group{done: make(chan struct{})}
	g.left.Store(1)
	return g
}

// Add counts one more chunk, before it is submitted.
func (g *Group) Add() { g.left.Add(1) }

// Done counts a chunk complete (or the submitter finished), failed if it
// or one of its elements failed. It reports whether it woke the Gather.
func (g *Group) Done(failed bool) bool {
	if (g.left.Add(-1) == 0 || failed) && g.closed.CompareAndSwap(false, true) {
		close(g.done)
		return true
	}
	return false
}

// Gather is Map's body: the n results of cs in order. It returns at the
// first failure in order, with the error of that element (wrapped with
// the task's name and the element's index) and the results so far, and
// cancels the rest; or when ctx is done, with ctx.Err(). g, if not nil,
// counts cs (Group): Gather then sleeps until it says to look.
func Gather[R any](ctx context.Context, name string, cs []Chunk[R], n int, g *Group) ([]R, error) {
	if g != nil {
		select {
		case <-g.done:
		case <-ctx.Done():
		}
	}
	rs := make([]R, n)
	for k, c := range cs {
		items, err := c.F.Result(ctx)
		if err != nil {
			CancelAll(cs[k:])
			return rs, fmt.Errorf("map %q, element %d: %w", name, c.Start, err)
		}
		for i, it := range items {
			if it.Err != nil {
				CancelAll(cs[k+1:])
				return rs, fmt.Errorf("map %q, element %d: %w", name, c.Start+i, it.Err)
			}
			rs[c.Start+i] = it.V
		}
	}
	return rs, nil
}

// Unordered is MapUnordered's body: the chunks submit returns (called when
// the loop starts) yield their results as they arrive, each with its
// error; a chunk that fails as a whole yields its error once per element.
// When ctx ends it yields ctx.Err() and stops. Breaking out of the loop
// cancels what has not run.
func Unordered[R any](ctx context.Context, submit func() []Chunk[R]) iter.Seq2[R, error] {
	return func(yield func(R, error) bool) {
		cs := submit()
		defer CancelAll(cs)
		ch := make(chan Chunk[R], len(cs))
		for _, c := range cs {
			c.F.OnDone(func([]Item[R], error) { ch <- c })
		}
		var zero R
		for range cs {
			select {
			case c := <-ch:
				items, err := c.F.Result(context.Background())
				if err != nil {
					for range c.N {
						if !yield(zero, err) {
							return
						}
					}
					continue
				}
				for _, it := range items {
					if !yield(it.V, it.Err) {
						return
					}
				}
			case <-ctx.Done():
				yield(zero, ctx.Err())
				return
			}
		}
	}
}
