package pool

import (
	"context"
	"fmt"
	"iter"
	"slices"
	"sync"

	"mproc"
	"mproc/internal/future"
)

// registry maps task and initializer names to their runners. Register
// fills it at package initialisation, in the parent and in every worker
// (the same binary), so a worker finds a task by the name in its message.
var registry struct {
	sync.Mutex
	m map[string]*entry
}

// entry runs one registered function in a worker, on encoded bytes.
type entry struct {
	// one decodes an argument, runs the task and encodes its result.
	// Panics propagate to the caller.
	one func(ctx context.Context, arg []byte) ([]byte, error)
	// batch runs the task on each argument of a chunk; each gives every
	// item its context. Per-item panics and errors go into the result;
	// failed reports whether there was one.
	batch func(ctx context.Context, args []byte, each func(context.Context) (context.Context, context.CancelFunc)) (out []byte, failed bool, err error)
	// init runs an initializer.
	init func(ctx context.Context, arg []byte) error
}

func register(name string, e *entry) {
	if name == "" {
		panic("mproc/pool: Register needs a name and a function")
	}
	registry.Lock()
	defer registry.Unlock()
	if registry.m == nil {
		registry.m = make(map[string]*entry)
	}
	if _, dup := registry.m[name]; dup {
		panic("mproc/pool: Register called twice for " + name)
	}
	if len(name) > 1<<16-1 {
		panic("mproc/pool: name too long: " + name)
	}
	registry.m[name] = e
}

func lookup(name string) *entry {
	registry.Lock()
	defer registry.Unlock()
	return registry.m[name]
}

// TaskOption configures a registered task.
type TaskOption func(*taskConfig)

type taskConfig struct {
	codec    mproc.Codec
	explicit bool // WithCodec: values of every type go through codec
}

// WithCodec sets how the task's arguments and results are encoded; the
// default is mproc.DefaultCodec as Register finds it, except for values of
// a fixed size made of numbers and booleans (an int, an array or a struct
// of them with exported fields), which cross as their memory unless
// WithCodec is given. It is part of the registration, so parent and
// workers agree on it.
func WithCodec(c mproc.Codec) TaskOption {
	return func(t *taskConfig) { t.codec, t.explicit = c, true }
}

func taskOptions(opts []TaskOption) taskConfig {
	cfg := taskConfig{codec: mproc.DefaultCodec}
	for _, o := range opts {
		o(&cfg)
	}
	return cfg
}

// Task is a function registered to run in a pool's workers. Create it with
// Register in a package-level variable declaration.
type Task[A, R any] struct {
	name string
	ac   codecOf[A]
	rc   codecOf[R]
}

// Register registers fn under name to run in pool workers, and returns the
// handle to submit it with. A and R must be encodable by the task's codec
// (mproc.DefaultCodec unless WithCodec says otherwise; see WithCodec for
// the values that cross as memory).
//
// Register must be called at package level (var t = pool.Register(...)),
// so that every worker, which is the same binary, registers the same tasks.
// It panics if name is empty or taken, or fn is nil.
func Register[A, R any](name string, fn func(ctx context.Context, arg A) (R, error), opts ...TaskOption) *Task[A, R] {
	if fn == nil {
		panic("mproc/pool: Register needs a name and a function")
	}
	cfg := taskOptions(opts)
	ac, rc := newCodecOf[A](cfg), newCodecOf[R](cfg)
	register(name, &entry{
		one: func(ctx context.Context, b []byte) ([]byte, error) {
			var a A
			if err := ac.unmarshal(b, &a); err != nil {
				return nil, fmt.Errorf("task %q: decode argument: %w", name, err)
			}
			r, err := fn(ctx, a)
			if err != nil {
				return nil, err
			}
			out, err := rc.marshal(&r)
			if err != nil {
				return nil, fmt.Errorf("task %q: encode result: %w", name, err)
			}
			return out, nil
		},
		batch: func(ctx context.Context, b []byte, each func(context.Context) (context.Context, context.CancelFunc)) ([]byte, bool, error) {
			as, err := ac.unmarshalSlice(b)
			if err != nil {
				return nil, true, fmt.Errorf("task %q: decode arguments: %w", name, err)
			}
			out := batchResult[R]{V: make([]R, len(as))}
			for i, a := range as {
				var e *wireErr
				if out.V[i], e = runItem(ctx, fn, a, each); e != nil {
					out.E = append(out.E, batchErr{I: i, E: e})
				}
			}
			b, err = rc.marshalBatch(&out)
			if err == nil {
				return b, len(out.E) > 0, nil
			}
			// Find the results that cannot be encoded and make them errors.
			for i := range out.V {
				if _, err := rc.marshal(&out.V[i]); err != nil {
					var zero R
					out.V[i] = zero
					out.E = append(out.E, batchErr{I: i, E: &wireErr{Msg: fmt.Sprintf("task %q: encode result: %v", name, err)}})
				}
			}
			b, err = rc.marshalBatch(&out)
			return b, true, err
		},
	})
	return &Task[A, R]{name: name, ac: ac, rc: rc}
}

func runItem[A, R any](ctx context.Context, fn func(context.Context, A) (R, error), a A,
	each func(context.Context) (context.Context, context.CancelFunc)) (r R, e *wireErr) {
	ictx, cancel := each(ctx)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			var zero R
			r, e = zero, &wireErr{Panic: true, Msg: fmt.Sprint(p), Stack: stack()}
		}
	}()
	r, err := fn(ictx, a)
	return r, toWire(err)
}

// Name returns the name the task was registered under.
func (t *Task[A, R]) Name() string { return t.name }

// Submit queues the task with arg in p and returns its future at once. An
// argument that cannot be encoded, or is larger than p's MaxMessage, fails
// that future only; after Close it fails with ErrClosed.
func (t *Task[A, R]) Submit(p *Pool, arg A) *Future[R] {
	payload, err := t.ac.marshal(&arg)
	if err != nil {
		f := future.New[R]()
		var zero R
		future.Complete(f, zero, fmt.Errorf("task %q: encode argument: %w", t.name, err))
		return f
	}
	j := &oneJob[A, R]{job: job{name: t.name, msg: taskMessage(taskOne, t.name, payload), p: p}, t: t}
	j.fin = j
	future.SetCancel(&j.f, &j.job)
	p.submit(&j.job)
	return &j.f
}

// oneJob is a submitted task: the job, its future and its finish in one
// allocation.
type oneJob[A, R any] struct {
	job
	f future.Future[R]
	t *Task[A, R]
}

func (j *oneJob[A, R]) finish(body []byte, err error, _ from) bool {
	var r R
	if err == nil {
		if e := j.t.rc.unmarshal(body, &r); e != nil {
			err = fmt.Errorf("task %q: decode result: %w", j.t.name, e)
		}
	}
	return future.Complete(&j.f, r, err)
}

// MapOption configures Map and MapUnordered.
type MapOption func(*mapConfig)

type mapConfig struct{ chunk int }

// ChunkSize sends the arguments to the workers n at a time: one message,
// one result message, and one task as far as MaxTasksPerWorker, a worker's
// death (the whole chunk fails with ErrWorkerDied) and Cancel are
// concerned. TaskTimeout applies to each item. The default is
// len(xs)/(4*Workers), rounded up, as Python's Pool.map does.
func ChunkSize(n int) MapOption { return func(c *mapConfig) { c.chunk = n } }

// submitChunks submits xs in chunks.
// g, if not nil, counts the chunks (future.Group).
func (t *Task[A, R]) submitChunks(p *Pool, xs []A, opts []MapOption, g *future.Group) []future.Chunk[R] {
	var cfg mapConfig
	for _, o := range opts {
		o(&cfg)
	}
	size := cfg.chunk
	if size <= 0 {
		w := 4 * p.opts.Workers
		size = max(1, (len(xs)+w-1)/w)
	}
	cs := make([]future.Chunk[R], 0, (len(xs)+size-1)/size)
	for start := 0; start < len(xs); start += size {
		cs = t.submitChunk(p, xs, start, min(start+size, len(xs)), cs, g)
	}
	if g != nil {
		g.Done(false)
	}
	return cs
}

// submitChunk submits xs[start:end] as one chunk, or as two halves if its
// arguments cannot be encoded together or do not fit in a message, down
// to single items, which then fail alone.
func (t *Task[A, R]) submitChunk(p *Pool, xs []A, start, end int, cs []future.Chunk[R], g *future.Group) []future.Chunk[R] {
	msg, err := t.ac.sliceMessage(taskBatch, t.name, xs[start:end])
	if err == nil && len(msg) > p.maxMsg {
		err = tooLarge("argument", len(msg), p.maxMsg)
	}
	if err != nil && end-start > 1 {
		mid := start + (end-start)/2
		return t.submitChunk(p, xs, mid, end, t.submitChunk(p, xs, start, mid, cs, g), g)
	}
	if err != nil {
		f := future.New[[]future.Item[R]]()
		future.Complete(f, nil, fmt.Errorf("task %q: encode argument: %w", t.name, err))
		return append(cs, future.Chunk[R]{Start: start, N: end - start, F: f})
	}
	j := &chunkJob[A, R]{job: job{name: t.name, msg: msg, p: p}, t: t, n: end - start, g: g}
	// A Map's chunk: its result is wanted only with the others (or if it
	// failed), so a worker of slow tasks may hold back its wake-up
	// (taskQuiet).
	j.quiet = g != nil
	j.fin = j
	future.SetCancel(&j.f, &j.job)
	if g != nil {
		g.Add()
	}
	p.submit(&j.job)
	return append(cs, future.Chunk[R]{Start: start, N: end - start, F: &j.f})
}

// chunkJob is a submitted chunk of a Map: the job, its future and its
// finish in one allocation.
type chunkJob[A, R any] struct {
	job
	f future.Future[[]future.Item[R]]
	t *Task[A, R]
	n int
	g *future.Group // Map's, or nil
}

func (j *chunkJob[A, R]) finish(body []byte, err error, src from) bool {
	var rs []future.Item[R]
	if err == nil {
		if rs, err = j.t.rc.unmarshalItems(body, j.n, src); err != nil {
			err = fmt.Errorf("task %q: decode: %w", j.t.name, err)
		}
	}
	readied := future.Complete(&j.f, rs, err)
	if j.g != nil && j.g.Done(err != nil || slices.ContainsFunc(rs, func(it future.Item[R]) bool { return it.Err != nil })) {
		readied = true
	}
	return readied
}

// Map runs the task on every element of xs in p and returns the results in
// order. Arguments travel in chunks (see ChunkSize). It returns at the
// first failure in order, with the error of that element (wrapped with its
// index) and the results so far, and cancels the rest; or when ctx is done,
// with ctx.Err().
func (t *Task[A, R]) Map(ctx context.Context, p *Pool, xs []A, opts ...MapOption) ([]R, error) {
	g := future.NewGroup()
	return future.Gather(ctx, t.name, t.submitChunks(p, xs, opts, g), len(xs), g)
}

// MapUnordered runs the task on every element of xs in p and yields the
// results as they arrive, each with its error; a chunk that fails as a
// whole (a worker's death, say) yields its error once per element. When
// ctx ends it yields ctx.Err() and stops. Breaking out of the loop cancels
// what has not run.
func (t *Task[A, R]) MapUnordered(ctx context.Context, p *Pool, xs []A, opts ...MapOption) iter.Seq2[R, error] {
	return future.Unordered(ctx, func() []future.Chunk[R] { return t.submitChunks(p, xs, opts, nil) })
}

// Init is an initializer registered to run once in every worker, before
// its first task. Create it with RegisterInit at package level.
type Init[A any] struct {
	name  string
	codec mproc.Codec
}

// Initializer is an Init with its argument, for Options.
type Initializer struct {
	name string
	arg  []byte
	err  error
}

// RegisterInit registers fn to run in workers as an initializer (Python's
// initializer and initargs): Options{Initializer: init.With(arg)}. A
// worker whose initializer fails or panics breaks the pool (ErrBroken).
func RegisterInit[A any](name string, fn func(ctx context.Context, arg A) error, opts ...TaskOption) *Init[A] {
	if fn == nil {
		panic("mproc/pool: RegisterInit needs a name and a function")
	}
	c := taskOptions(opts).codec
	register(name, &entry{init: func(ctx context.Context, b []byte) (err error) {
		var a A
		if err := c.Unmarshal(b, &a); err != nil {
			return fmt.Errorf("initializer %q: decode argument: %w", name, err)
		}
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("initializer %q panicked: %v\n%s", name, r, stack())
			}
		}()
		return fn(ctx, a)
	}})
	return &Init[A]{name: name, codec: c}
}

// With binds the initializer's argument.
func (i *Init[A]) With(arg A) Initializer {
	b, err := i.codec.Marshal(&arg)
	if err != nil {
		err = fmt.Errorf("initializer %q: encode argument: %w", i.name, err)
	}
	return Initializer{name: i.name, arg: b, err: err}
}
