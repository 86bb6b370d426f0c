package cluster

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync"

	"github.com/nats-io/nats.go"

	"mproc"
	"mproc/internal/future"
)

// registry maps task names to their runners. Register fills it at
// package initialisation, in submitters and workers alike: a worker finds
// a task by the name in its message. Worker and submitter may be
// different binaries; they must register the same name with the same
// argument and result types, and the same codec.
var registry struct {
	sync.Mutex
	m map[string]*entry
}

// entry runs one registered function in a worker, on encoded bytes.
type entry struct {
	// one decodes an argument, runs the task and encodes its result. A
	// panic propagates to the caller.
	one func(ctx context.Context, arg []byte) ([]byte, error)
	// batch runs the task on each argument of a chunk, each with the
	// context each gives it. Per-item panics and errors go into the result.
	batch func(ctx context.Context, args []byte, each func(context.Context) (context.Context, context.CancelFunc)) ([]byte, error)
}

func lookup(name string) *entry {
	registry.Lock()
	defer registry.Unlock()
	return registry.m[name]
}

// TaskOption configures a registered task.
type TaskOption func(*taskConfig)

type taskConfig struct{ codec mproc.Codec }

// WithCodec sets how the task's arguments and results are encoded; the
// default is mproc.DefaultCodec as Register finds it. Workers and
// submitters must agree on it.
func WithCodec(c mproc.Codec) TaskOption { return func(t *taskConfig) { t.codec = c } }

// Task is a function registered to run in the workers of a cluster pool:
// pool.Task's twin. Create it with Register in a package-level variable
// declaration.
type Task[A, R any] struct {
	name  string
	codec mproc.Codec
}

// Register registers fn under name to run in cluster workers (Serve), and
// returns the handle to submit it with. A and R must be encodable by the
// task's codec (mproc.DefaultCodec unless WithCodec says otherwise).
//
// Register must be called at package level (var t = cluster.Register(...))
// in the submitting program and in every worker program. It panics if
// name is empty or taken, or fn is nil.
func Register[A, R any](name string, fn func(ctx context.Context, arg A) (R, error), opts ...TaskOption) *Task[A, R] {
	if name == "" || fn == nil {
		panic("mproc/cluster: Register needs a name and a function")
	}
	cfg := taskConfig{codec: mproc.DefaultCodec}
	for _, o := range opts {
		o(&cfg)
	}
	c := cfg.codec
	registry.Lock()
	defer registry.Unlock()
	if registry.m == nil {
		registry.m = make(map[string]*entry)
	}
	if _, dup := registry.m[name]; dup {
		panic("mproc/cluster: Register called twice for " + name)
	}
	registry.m[name] = &entry{
		one: func(ctx context.Context, b []byte) ([]byte, error) {
			var a A
			if err := c.Unmarshal(b, &a); err != nil {
				return nil, fmt.Errorf("task %q: decode argument: %w", name, err)
			}
			r, err := fn(ctx, a)
			if err != nil {
				return nil, err
			}
			out, err := c.Marshal(&r)
			if err != nil {
				return nil, fmt.Errorf("task %q: encode result: %w", name, err)
			}
			return out, nil
		},
		batch: func(ctx context.Context, b []byte, each func(context.Context) (context.Context, context.CancelFunc)) ([]byte, error) {
			var as []A
			if err := c.Unmarshal(b, &as); err != nil {
				return nil, fmt.Errorf("task %q: decode arguments: %w", name, err)
			}
			items := make([]item[R], len(as))
			for i, a := range as {
				items[i] = runItem(ctx, fn, a, each)
			}
			out, err := c.Marshal(&items)
			if err == nil {
				return out, nil
			}
			for i := range items { // the results that cannot be encoded become errors
				if _, err := c.Marshal(&items[i]); err != nil {
					var zero R
					items[i] = item[R]{V: zero, E: &wireErr{Msg: fmt.Sprintf("task %q: encode result: %v", name, err)}}
				}
			}
			return c.Marshal(&items)
		},
	}
	return &Task[A, R]{name: name, codec: c}
}

func runItem[A, R any](ctx context.Context, fn func(context.Context, A) (R, error), a A,
	each func(context.Context) (context.Context, context.CancelFunc)) (it item[R]) {
	ictx, cancel := each(ctx)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			it = item[R]{E: panicWire(r)}
		}
	}()
	r, err := fn(ictx, a)
	return item[R]{V: r, E: toWire(err)}
}

// Name returns the name the task was registered under.
func (t *Task[A, R]) Name() string { return t.name }

// Submit publishes the task with arg to p's task stream and returns its
// future at once; any worker serving the pool may run it. An argument
// that cannot be encoded, or is larger than the server takes
// (ErrTooLarge), fails that future only; after Close it fails with
// ErrClosed. A publish that fails (the server unreachable for longer than
// the pool's context allows) fails the future with the publishing error.
func (t *Task[A, R]) Submit(p *Pool, arg A) *Future[R] {
	f := future.New[R]()
	payload, err := t.codec.Marshal(&arg)
	if err != nil {
		var zero R
		future.Complete(f, zero, fmt.Errorf("task %q: encode argument: %w", t.name, err))
		return f
	}
	id := p.submit(t.name, kindOne, payload, func(status string, h nats.Header, body []byte, err error) {
		var r R
		if err == nil {
			switch status {
			case statusOK:
				if e := t.codec.Unmarshal(body, &r); e != nil {
					err = fmt.Errorf("task %q: decode result: %w", t.name, e)
				}
			default:
				err = resultErr(t.name, status, h, body)
			}
		}
		future.Complete(f, r, err)
	})
	future.SetCancel(f, future.CancelFunc(func() bool { return p.cancel(id) }))
	return f
}

// resultErr is the error of a result whose status is not ok.
func resultErr(name, status string, h nats.Header, body []byte) error {
	w := decodeWire(body)
	switch status {
	case statusErr, statusPanic:
		return w.err(fromHeader(h))
	case statusDied:
		return fmt.Errorf("task %q: %s: %w", name, w.Msg, ErrWorkerDied)
	}
	return fmt.Errorf("task %q: result of unknown status %q from %s: %w", name, status, h.Get(hdrWorker), errMalformed)
}

var errMalformed = errors.New("mproc: cluster: malformed message")

// MapOption configures Map and MapUnordered.
type MapOption func(*mapConfig)

type mapConfig struct{ chunk int }

// DefaultMapChunks is how many messages Map and MapUnordered split their
// arguments into without ChunkSize: a cluster's worker count is unknown
// to the submitter, so the chunks are sized for up to this many workers
// at a time.
const DefaultMapChunks = 128

// ChunkSize sends the arguments to the workers n at a time: one task
// message, one result message, and one task as far as a worker's death
// (the whole chunk runs again, or fails with ErrWorkerDied) and Cancel
// are concerned. TaskTimeout applies to each item. The default makes at
// most DefaultMapChunks chunks.
func ChunkSize(n int) MapOption { return func(c *mapConfig) { c.chunk = n } }

func (t *Task[A, R]) submitChunks(p *Pool, xs []A, opts []MapOption) []future.Chunk[R] {
	var cfg mapConfig
	for _, o := range opts {
		o(&cfg)
	}
	size := cfg.chunk
	if size <= 0 {
		size = max(1, (len(xs)+DefaultMapChunks-1)/DefaultMapChunks)
	}
	var cs []future.Chunk[R]
	for start := 0; start < len(xs); start += size {
		cs = t.submitChunk(p, xs, start, min(start+size, len(xs)), cs)
	}
	return cs
}

// submitChunk submits xs[start:end] as one chunk, or as two halves if its
// arguments cannot be encoded together or do not fit in a message, down
// to single items, which then fail alone.
func (t *Task[A, R]) submitChunk(p *Pool, xs []A, start, end int, cs []future.Chunk[R]) []future.Chunk[R] {
	part := xs[start:end]
	payload, err := t.codec.Marshal(&part)
	if err == nil && len(payload) > p.maxMsg {
		err = fmt.Errorf("arguments of %d bytes, maximum %d: %w", len(payload), p.maxMsg, ErrTooLarge)
	}
	if err != nil && end-start > 1 {
		mid := start + (end-start)/2
		return t.submitChunk(p, xs, mid, end, t.submitChunk(p, xs, start, mid, cs))
	}
	f := future.New[[]future.Item[R]]()
	c := future.Chunk[R]{Start: start, N: end - start, F: f}
	if err != nil {
		future.Complete(f, nil, fmt.Errorf("task %q: encode argument: %w", t.name, err))
		return append(cs, c)
	}
	id := p.submit(t.name, kindBatch, payload, func(status string, h nats.Header, body []byte, err error) {
		if err == nil && status != statusBatch {
			err = resultErr(t.name, status, h, body)
		}
		if err != nil {
			future.Complete(f, nil, err)
			return
		}
		var items []item[R]
		if e := t.codec.Unmarshal(body, &items); e != nil || len(items) != c.N {
			future.Complete(f, nil, fmt.Errorf("task %q: decode %d results: %v: %w", t.name, c.N, e, errMalformed))
			return
		}
		src := fromHeader(h)
		rs := make([]future.Item[R], len(items))
		for i, it := range items {
			rs[i] = future.Item[R]{V: it.V, Err: it.E.err(src)}
		}
		future.Complete(f, rs, nil)
	})
	future.SetCancel(f, future.CancelFunc(func() bool { return p.cancel(id) }))
	return append(cs, c)
}

// Map runs the task on every element of xs in p's workers and returns
// the results in order. Arguments travel in chunks (see ChunkSize). It
// returns at the first failure in order, with the error of that element
// (wrapped with its index) and the results so far, and cancels the rest;
// or when ctx is done, with ctx.Err().
func (t *Task[A, R]) Map(ctx context.Context, p *Pool, xs []A, opts ...MapOption) ([]R, error) {
	return future.Gather(ctx, t.name, t.submitChunks(p, xs, opts), len(xs), nil)
}

// MapUnordered runs the task on every element of xs in p's workers and
// yields the results as they arrive, each with its error; a chunk that
// fails as a whole yields its error once per element. When ctx ends it
// yields ctx.Err() and stops. Breaking out of the loop cancels what has
// not run.
func (t *Task[A, R]) MapUnordered(ctx context.Context, p *Pool, xs []A, opts ...MapOption) iter.Seq2[R, error] {
	return future.Unordered(ctx, func() []future.Chunk[R] { return t.submitChunks(p, xs, opts) })
}
