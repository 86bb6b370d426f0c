package manager

import (
	"context"
	"errors"
	"iter"
	"time"

	"mproc"
	"mproc/pickle"
)

// pollSlice bounds each blocking call a proxy makes: Get, Acquire and Wait
// ask the server to wait at most this long and ask again until their
// context ends. Closing the connection instead would leave a Python server
// blocked in the call, and a queue item it then takes would be lost.
const pollSlice = 100 * time.Millisecond

// poll runs call with a timeout in seconds until it reports done or ctx
// ends.
//
// The server times each call out itself, so a call is not abandoned when
// ctx's deadline passes: its reply (the server's timeout) is waited for,
// up to pollGrace more. Abandoning it would close the connection while
// the server may still complete it — a put reported failed that the
// queue then holds. A ctx cancelled before its deadline abandons the call
// at once.
func poll(ctx context.Context, call func(ctx context.Context, timeout float64) (done bool, err error)) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		slice := pollSlice
		if d, ok := ctx.Deadline(); ok {
			slice = min(slice, time.Until(d))
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), max(slice, 0)+pollGrace)
		stop := context.AfterFunc(ctx, func() {
			if !errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
				cancel()
			}
		})
		done, err := call(cctx, max(slice, 0).Seconds())
		stop()
		cancel()
		if err != nil && ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil || done {
			return err
		}
	}
}

// pollGrace is how long past its timeout a blocking call's reply is
// waited for before the call is abandoned (a server that is gone).
const pollGrace = 2 * time.Second

// Dict is a proxy of a dict on the server, with keys of type K and values
// of type V (converted through the pickle codec: a Python int is an int64,
// a str a string, a dict a map or a struct).
type Dict[K comparable, V any] struct{ *Ref }

// NewDict creates an empty dict on the server.
func NewDict[K comparable, V any](ctx context.Context, c *Client) (*Dict[K, V], error) {
	r, err := New(ctx, c, "dict", nil, nil)
	if err != nil {
		return nil, err
	}
	return &Dict[K, V]{Ref: r}, nil
}

// Get returns the value of k; ErrNotFound (Python's KeyError) if there is
// none.
func (d *Dict[K, V]) Get(ctx context.Context, k K) (V, error) {
	return CallAs[V](ctx, d.Ref, "__getitem__", k)
}

// Set sets the value of k.
func (d *Dict[K, V]) Set(ctx context.Context, k K, v V) error {
	_, err := d.Call(ctx, "__setitem__", []any{k, v}, nil)
	return err
}

// Delete removes k; ErrNotFound if it was not there.
func (d *Dict[K, V]) Delete(ctx context.Context, k K) error {
	_, err := d.Call(ctx, "__delitem__", []any{k}, nil)
	return err
}

// Contains reports whether the dict holds k.
func (d *Dict[K, V]) Contains(ctx context.Context, k K) (bool, error) {
	return CallAs[bool](ctx, d.Ref, "__contains__", k)
}

// Len returns the number of items.
func (d *Dict[K, V]) Len(ctx context.Context) (int, error) {
	return CallAs[int](ctx, d.Ref, "__len__")
}

// Keys returns the keys, in the dict's order.
func (d *Dict[K, V]) Keys(ctx context.Context) ([]K, error) {
	return CallAs[[]K](ctx, d.Ref, "keys")
}

// Items returns the items, in the dict's order, as one snapshot.
func (d *Dict[K, V]) Items(ctx context.Context) (iter.Seq2[K, V], error) {
	v, err := d.Call(ctx, "items", nil, nil)
	if err != nil {
		return nil, err
	}
	list, ok := seq(v)
	if !ok {
		return nil, errors.New("manager: items: not a list")
	}
	ks, vs := make([]K, len(list)), make([]V, len(list))
	for i, x := range list {
		kv, ok := seq(x)
		if !ok || len(kv) != 2 {
			return nil, errors.New("manager: items: not a list of pairs")
		}
		if ks[i], err = convert[K](kv[0]); err != nil {
			return nil, err
		}
		if vs[i], err = convert[V](kv[1]); err != nil {
			return nil, err
		}
	}
	return func(yield func(K, V) bool) {
		for i := range ks {
			if !yield(ks[i], vs[i]) {
				return
			}
		}
	}, nil
}

// Update sets every item of m.
func (d *Dict[K, V]) Update(ctx context.Context, m map[K]V) error {
	items := make(pickle.Dict, 0, len(m))
	for k, v := range m {
		items = append(items, pickle.DictItem{Key: k, Value: v})
	}
	_, err := d.Call(ctx, "update", []any{items}, nil)
	return err
}

// SetDefault returns the value of k, setting it to def first if there is
// none.
func (d *Dict[K, V]) SetDefault(ctx context.Context, k K, def V) (V, error) {
	return CallAs[V](ctx, d.Ref, "setdefault", k, def)
}

// Pop removes k and returns its value; ErrNotFound if there is none.
func (d *Dict[K, V]) Pop(ctx context.Context, k K) (V, error) {
	return CallAs[V](ctx, d.Ref, "pop", k)
}

// CallAs calls r's method with args and converts its result to T through
// the pickle codec: the body of a typed proxy's method, for the built-in
// types and a program's own (see Create).
func CallAs[T any](ctx context.Context, r *Ref, method string, args ...any) (T, error) {
	v, err := r.Call(ctx, method, args, nil)
	if err != nil {
		var zero T
		return zero, err
	}
	return convert[T](v)
}

// List is a proxy of a list on the server, of elements of type T.
type List[T any] struct{ *Ref }

// NewList creates a list on the server holding xs.
func NewList[T any](ctx context.Context, c *Client, xs ...T) (*List[T], error) {
	init := make([]any, len(xs))
	for i, x := range xs {
		init[i] = x
	}
	r, err := New(ctx, c, "list", []any{init}, nil)
	if err != nil {
		return nil, err
	}
	return &List[T]{Ref: r}, nil
}

// Append adds x at the end.
func (l *List[T]) Append(ctx context.Context, x T) error {
	_, err := l.Call(ctx, "append", []any{x}, nil)
	return err
}

// Extend adds xs at the end.
func (l *List[T]) Extend(ctx context.Context, xs ...T) error {
	v := make([]any, len(xs))
	for i, x := range xs {
		v[i] = x
	}
	_, err := l.Call(ctx, "extend", []any{v}, nil)
	return err
}

// Get returns element i (negative counts from the end); an IndexError
// *RemoteError out of range.
func (l *List[T]) Get(ctx context.Context, i int) (T, error) {
	return CallAs[T](ctx, l.Ref, "__getitem__", int64(i))
}

// Set sets element i.
func (l *List[T]) Set(ctx context.Context, i int, x T) error {
	_, err := l.Call(ctx, "__setitem__", []any{int64(i), x}, nil)
	return err
}

// Slice returns elements [lo, hi) (Python's l[lo:hi], negative counting
// from the end).
func (l *List[T]) Slice(ctx context.Context, lo, hi int) ([]T, error) {
	return CallAs[[]T](ctx, l.Ref, "__getitem__", pickle.Object{Module: "builtins", Name: "slice", Args: pickle.Tuple{int64(lo), int64(hi), nil}})
}

// Len returns the number of elements.
func (l *List[T]) Len(ctx context.Context) (int, error) { return CallAs[int](ctx, l.Ref, "__len__") }

// Pop removes and returns element i (-1: the last).
func (l *List[T]) Pop(ctx context.Context, i int) (T, error) {
	return CallAs[T](ctx, l.Ref, "pop", int64(i))
}

// Insert inserts x before element i.
func (l *List[T]) Insert(ctx context.Context, i int, x T) error {
	_, err := l.Call(ctx, "insert", []any{int64(i), x}, nil)
	return err
}

// Remove removes the first element equal to x; a ValueError *RemoteError
// if there is none.
func (l *List[T]) Remove(ctx context.Context, x T) error {
	_, err := l.Call(ctx, "remove", []any{x}, nil)
	return err
}

// All returns a snapshot of the elements.
func (l *List[T]) All(ctx context.Context) ([]T, error) {
	return CallAs[[]T](ctx, l.Ref, "__getitem__", pickle.Object{Module: "builtins", Name: "slice", Args: pickle.Tuple{nil, nil, nil}})
}

// Namespace is a proxy of a Namespace: attributes by name.
type Namespace struct{ *Ref }

// NewNamespace creates a Namespace on the server with attrs.
func NewNamespace(ctx context.Context, c *Client, attrs map[string]any) (*Namespace, error) {
	r, err := New(ctx, c, "Namespace", nil, attrs)
	if err != nil {
		return nil, err
	}
	return &Namespace{Ref: r}, nil
}

// Get returns attribute name; ErrNotFound if it is not set.
func (n *Namespace) Get(ctx context.Context, name string) (any, error) {
	return n.Call(ctx, "__getattribute__", []any{name}, nil)
}

// Set sets attribute name.
func (n *Namespace) Set(ctx context.Context, name string, v any) error {
	_, err := n.Call(ctx, "__setattr__", []any{name, v}, nil)
	return err
}

// Queue is a proxy of a queue (Queue or JoinableQueue) on the server.
type Queue[T any] struct{ *Ref }

// NewQueue creates a queue of at most maxsize items (0: no bound) that
// also counts tasks (TaskDone, Join), as Python's JoinableQueue.
func NewQueue[T any](ctx context.Context, c *Client, maxsize int) (*Queue[T], error) {
	r, err := New(ctx, c, "JoinableQueue", []any{int64(maxsize)}, nil)
	if err != nil {
		return nil, err
	}
	return &Queue[T]{Ref: r}, nil
}

// Put adds v, waiting while the queue is full until ctx ends.
func (q *Queue[T]) Put(ctx context.Context, v T) error {
	return poll(ctx, func(ctx context.Context, timeout float64) (bool, error) {
		_, err := q.Call(ctx, "put", []any{v, true, timeout}, nil)
		if errors.Is(err, mproc.ErrFull) {
			return false, nil
		}
		return true, err
	})
}

// TryPut adds v if there is room now; mproc.ErrFull otherwise.
func (q *Queue[T]) TryPut(ctx context.Context, v T) error {
	_, err := q.Call(ctx, "put_nowait", []any{v}, nil)
	return err
}

// Get removes and returns the first value, waiting until there is one or
// ctx ends.
func (q *Queue[T]) Get(ctx context.Context) (T, error) {
	var out T
	err := poll(ctx, func(ctx context.Context, timeout float64) (bool, error) {
		v, err := q.Call(ctx, "get", []any{true, timeout}, nil)
		if errors.Is(err, mproc.ErrEmpty) {
			return false, nil
		}
		if err == nil {
			out, err = convert[T](v)
		}
		return true, err
	})
	return out, err
}

// TryGet removes and returns the first value if there is one now;
// mproc.ErrEmpty otherwise.
func (q *Queue[T]) TryGet(ctx context.Context) (T, error) { return CallAs[T](ctx, q.Ref, "get_nowait") }

// Len returns the number of values queued.
func (q *Queue[T]) Len(ctx context.Context) (int, error) { return CallAs[int](ctx, q.Ref, "qsize") }

// TaskDone reports one value got as handled.
func (q *Queue[T]) TaskDone(ctx context.Context) error {
	_, err := q.Call(ctx, "task_done", nil, nil)
	return err
}

// Join waits until every value put has been reported done.
func (q *Queue[T]) Join(ctx context.Context) error {
	_, err := q.Call(ctx, "join", nil, nil)
	return err
}

// Value is a proxy of a Value: one value of type T.
type Value[T any] struct{ *Ref }

// NewValue creates a Value holding v; typecode is Python's array type code
// ("i", "d", ...), kept for Python clients' repr only.
func NewValue[T any](ctx context.Context, c *Client, typecode string, v T) (*Value[T], error) {
	r, err := New(ctx, c, "Value", []any{typecode, v}, nil)
	if err != nil {
		return nil, err
	}
	return &Value[T]{Ref: r}, nil
}

// Load returns the value.
func (v *Value[T]) Load(ctx context.Context) (T, error) { return CallAs[T](ctx, v.Ref, "get") }

// Store sets the value.
func (v *Value[T]) Store(ctx context.Context, x T) error {
	_, err := v.Call(ctx, "set", []any{x}, nil)
	return err
}

// Lock is a proxy of a Lock, RLock, Semaphore or BoundedSemaphore: what
// Python's AcquirerProxy drives. Its calls go over one connection of its
// own, which holds what it acquires; on a Go server, what a connection
// holds is released when the connection ends (its process died, or Close).
type Lock struct{ *Ref }

// NewLock creates a Lock on the server; typeid may be "Lock", "RLock",
// "Semaphore" or "BoundedSemaphore" (args: the initial value).
func NewLock(ctx context.Context, c *Client, typeid string, args ...any) (*Lock, error) {
	return Create[Lock](ctx, c, typeid, args...)
}

// Acquire waits until the lock is acquired or ctx ends.
func (l *Lock) Acquire(ctx context.Context) error {
	return poll(ctx, func(ctx context.Context, timeout float64) (bool, error) {
		v, err := l.Call(ctx, "acquire", []any{true, timeout}, nil)
		ok, _ := v.(bool)
		return ok, err
	})
}

// Release releases the lock.
func (l *Lock) Release(ctx context.Context) error {
	_, err := l.Call(ctx, "release", nil, nil)
	return err
}

// Event is a proxy of an Event.
type Event struct{ *Ref }

// NewEvent creates an Event on the server.
func NewEvent(ctx context.Context, c *Client) (*Event, error) {
	r, err := New(ctx, c, "Event", nil, nil)
	if err != nil {
		return nil, err
	}
	return &Event{Ref: r}, nil
}

// Set sets the flag.
func (e *Event) Set(ctx context.Context) error {
	_, err := e.Call(ctx, "set", nil, nil)
	return err
}

// Clear clears the flag.
func (e *Event) Clear(ctx context.Context) error {
	_, err := e.Call(ctx, "clear", nil, nil)
	return err
}

// IsSet reports whether the flag is set.
func (e *Event) IsSet(ctx context.Context) (bool, error) { return CallAs[bool](ctx, e.Ref, "is_set") }

// Wait waits until the flag is set or ctx ends.
func (e *Event) Wait(ctx context.Context) error {
	return poll(ctx, func(ctx context.Context, timeout float64) (bool, error) {
		v, err := e.Call(ctx, "wait", []any{timeout}, nil)
		ok, _ := v.(bool)
		return ok, err
	})
}

// Condition is a proxy of a Condition: a lock (Acquire, Release) and Wait,
// Notify, NotifyAll, over one connection of its own, like Lock.
type Condition struct{ *Ref }

// NewCondition creates a Condition (over an RLock of its own) on the
// server.
func NewCondition(ctx context.Context, c *Client) (*Condition, error) {
	return Create[Condition](ctx, c, "Condition")
}

// Acquire waits until the condition's lock is acquired or ctx ends.
func (cv *Condition) Acquire(ctx context.Context) error { return (&Lock{cv.Ref}).Acquire(ctx) }

// Release releases the condition's lock.
func (cv *Condition) Release(ctx context.Context) error { return (&Lock{cv.Ref}).Release(ctx) }

// Wait releases the lock, waits for a Notify (or a spurious wake-up: check
// the condition in a loop, as with sync.Cond) or the end of ctx, and takes
// the lock again.
func (cv *Condition) Wait(ctx context.Context) error {
	timeout := pollSlice
	if d, ok := ctx.Deadline(); ok {
		timeout = max(min(timeout, time.Until(d)), 0)
	}
	_, err := cv.Call(ctx, "wait", []any{timeout.Seconds()}, nil)
	return err
}

// Notify wakes at most n waiters.
func (cv *Condition) Notify(ctx context.Context, n int) error {
	_, err := cv.Call(ctx, "notify", []any{int64(n)}, nil)
	return err
}

// NotifyAll wakes every waiter.
func (cv *Condition) NotifyAll(ctx context.Context) error {
	_, err := cv.Call(ctx, "notify_all", nil, nil)
	return err
}

// Barrier is a proxy of a Barrier.
type Barrier struct{ *Ref }

// NewBarrier creates a Barrier for parties parties on the server.
func NewBarrier(ctx context.Context, c *Client, parties int) (*Barrier, error) {
	return Create[Barrier](ctx, c, "Barrier", int64(parties))
}

// Wait waits until every party has arrived and returns this party's
// arrival index; an error matching mproc.ErrBrokenBarrier if the barrier
// is or becomes broken. A ctx that ends breaks the barrier for the other
// parties (Python: a timeout does).
func (b *Barrier) Wait(ctx context.Context) (int, error) {
	var timeout any
	if d, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(d), 0).Seconds()
	}
	return CallAs[int](ctx, b.Ref, "wait", timeout)
}

// Abort breaks the barrier.
func (b *Barrier) Abort(ctx context.Context) error {
	_, err := b.Call(ctx, "abort", nil, nil)
	return err
}
