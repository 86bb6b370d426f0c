package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// DefaultPool is the pool Serve and cmd/worker serve without a name.
const DefaultPool = "default"

// PoolOptions configure a Pool handle. The zero value is ready to use.
type PoolOptions struct {
	// MaxDeliver is how many times a task may be started: a task whose
	// worker dies (or is cut off from the server for longer than
	// AckWait) is started again on another worker, up to this many
	// starts in all; then its future fails with ErrWorkerDied. 1 fails it
	// at the first death, as the local pool does; 0 means
	// DefaultMaxDeliver. It travels with each task.
	MaxDeliver int
	// TaskTimeout bounds each task (each element of a Map) in the
	// worker: its context has that deadline. 0 means no limit.
	TaskTimeout time.Duration
	// Storage is used if this call creates the pool's streams; an
	// existing pool keeps its own (AckWait included).
	Storage
}

// Pool is a handle to submit tasks to the workers of a named pool, which
// run anywhere (Serve): the cluster form of pool.Pool. Tasks go to the
// pool's work-queue stream, which every worker pulls from; results come
// back on this handle's own subject of the pool's result stream.
//
// Faults: a task whose worker dies (killed, a crash, a machine gone,
// cut off for longer than AckWait) is started again on another worker,
// up to MaxDeliver starts, then fails with ErrWorkerDied: tasks run at
// least once, so make them idempotent or set MaxDeliver to 1. A task
// that panics fails its own future with an *mproc.PanicError. A result
// is kept (for an hour) until this handle reads it, across reconnections
// and server failovers.
//
// Its methods are safe for concurrent use.
//
// IMPORTANT: a Pool holds a consumer on the server until Close (then
// Wait) or Terminate, or until the context given to OpenPool ends.
type Pool struct {
	c      *Conn
	name   string
	opts   PoolOptions
	id     string // this handle's id: result subject, task ids
	reply  string
	maxMsg int
	seq    atomic.Uint64
	res    jetstream.ConsumeContext

	mu      sync.Mutex
	pending map[string]*pendingTask
	closed  bool // no new tasks
	ended   bool // released (closed and drained, or terminated)
	done    chan struct{}
	stop    func() // unregisters the Terminate on the context's end
}

type pendingTask struct {
	finish func(status string, h nats.Header, body []byte, err error)
}

// OpenPool opens the pool name, creating its streams if need be (with
// opts.Storage), and returns a handle to submit tasks to it. ctx bounds
// the handle's life: when it ends, or the connection is closed, the
// handle is terminated (Terminate).
func OpenPool(ctx context.Context, c *Conn, name string, opts PoolOptions) (*Pool, error) {
	if err := checkName("pool", name); err != nil {
		return nil, err
	}
	if opts.MaxDeliver <= 0 {
		opts.MaxDeliver = DefaultMaxDeliver
	}
	if _, err := ensurePool(ctx, c, name, opts.Storage); err != nil {
		return nil, fmt.Errorf("open pool %q: %w", name, err)
	}
	p := &Pool{
		c: c, name: name, opts: opts,
		id:      nuid.Next(),
		maxMsg:  int(c.nc.MaxPayload() - headerRoom),
		pending: map[string]*pendingTask{},
		done:    make(chan struct{}),
	}
	p.reply = resultSubject(name, p.id)
	cons, err := c.js.CreateConsumer(ctx, resultStream(name), jetstream.ConsumerConfig{
		Durable:           "r_" + p.id,
		FilterSubject:     p.reply,
		AckPolicy:         jetstream.AckExplicitPolicy,
		MaxAckPending:     -1,
		InactiveThreshold: resultTTL,
	})
	if err != nil {
		return nil, fmt.Errorf("open pool %q: result consumer: %w", name, gone(err))
	}
	p.res, err = cons.Consume(p.onResult)
	if err != nil {
		c.js.DeleteConsumer(context.WithoutCancel(ctx), resultStream(name), "r_"+p.id)
		return nil, fmt.Errorf("open pool %q: consume results: %w", name, gone(err))
	}
	life, cancel := within(ctx, c.life)
	p.mu.Lock()
	stop := context.AfterFunc(life, func() { p.Terminate() })
	p.stop = func() { stop(); cancel() }
	p.mu.Unlock()
	return p, nil
}

// ensurePool creates the pool's streams and the workers' consumer, or
// finds them, and returns the consumer.
func ensurePool(ctx context.Context, c *Conn, name string, st Storage) (jetstream.Consumer, error) {
	base := jetstream.StreamConfig{
		Retention: jetstream.WorkQueuePolicy,
		MaxMsgs:   -1,
		MaxBytes:  -1,
		Storage:   st.storage(),
		Replicas:  st.replicas(),
	}
	tasks := base
	tasks.Name, tasks.Subjects = taskStream(name), []string{taskSubject(name)}
	tasks.Metadata = map[string]string{metaKind: "pool tasks"}
	results := base
	results.Name, results.Subjects = resultStream(name), []string{resultSubject(name, "*")}
	results.MaxAge = resultTTL
	results.Metadata = map[string]string{metaKind: "pool results"}
	for _, cfg := range []jetstream.StreamConfig{tasks, results} {
		if _, err := ensureStream(ctx, c.js, cfg, false); err != nil {
			return nil, err
		}
	}
	return ensureConsumer(ctx, c.js, tasks.Name, workersConfig(st.ackWait()), false)
}

// Name returns the pool's name.
func (p *Pool) Name() string { return p.name }

// submit publishes a task and records finish for its result; it returns
// the task's id, or "" when finish was already called with an error.
func (p *Pool) submit(name, kind string, payload []byte, finish func(string, nats.Header, []byte, error)) string {
	if len(payload) > p.maxMsg {
		finish("", nil, nil, fmt.Errorf("task %q: argument of %d bytes, maximum %d: %w", name, len(payload), p.maxMsg, ErrTooLarge))
		return ""
	}
	id := p.id + "." + strconv.FormatUint(p.seq.Add(1), 10)
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		finish("", nil, nil, fmt.Errorf("task %q: %w", name, ErrClosed))
		return ""
	}
	p.pending[id] = &pendingTask{finish: finish}
	p.mu.Unlock()
	h := nats.Header{}
	h.Set(hdrMsgID, id)
	h.Set(hdrTask, name)
	h.Set(hdrKind, kind)
	h.Set(hdrReply, p.reply)
	h.Set(hdrMaxDeliver, strconv.Itoa(p.opts.MaxDeliver))
	if p.opts.TaskTimeout > 0 {
		h.Set(hdrTimeout, p.opts.TaskTimeout.String())
	}
	msg := &nats.Msg{Subject: taskSubject(p.name), Data: payload, Header: h}
	// Asynchronous publishes keep the submission order on the wire; one
	// that fails (a failover, too many in flight) is retried on its own,
	// with the same id, so the stream keeps one copy.
	paf, err := p.c.js.PublishMsgAsync(msg)
	if err != nil {
		go p.republish(id, msg, err)
		return id
	}
	go func() {
		select {
		case <-paf.Ok():
		case err := <-paf.Err():
			p.republish(id, msg, err)
		}
	}()
	return id
}

// republishTimeout bounds the retries of a task's publication.
const republishTimeout = time.Minute

// republish retries a failed asynchronous publish (republishTimeout), or
// fails the task.
func (p *Pool) republish(id string, msg *nats.Msg, err error) {
	if transient(err) || errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
		ctx, cancel := context.WithTimeout(context.Background(), republishTimeout)
		defer cancel()
		if _, err = publish(ctx, p.c.js, msg); err == nil {
			return
		}
	}
	p.fail(id, fmt.Errorf("task %q: publish: %w", msg.Header.Get(hdrTask), gone(err)))
}

// take removes the pending task id, and releases the handle if it was
// the last one of a closed pool.
func (p *Pool) take(id string) *pendingTask {
	p.mu.Lock()
	t := p.pending[id]
	delete(p.pending, id)
	release := t != nil && p.closed && len(p.pending) == 0 && !p.ended
	if release {
		p.ended = true
	}
	p.mu.Unlock()
	if release {
		p.release()
	}
	return t
}

func (p *Pool) fail(id string, err error) {
	if t := p.take(id); t != nil {
		t.finish("", nil, nil, err)
	}
}

// onResult hands a result to its future, then acknowledges it (which
// deletes it from the stream). A result for a task no longer pending (a
// duplicate from a task run twice, a cancelled task) is only acknowledged.
func (p *Pool) onResult(m jetstream.Msg) {
	h := m.Headers()
	if t := p.take(h.Get(hdrID)); t != nil {
		t.finish(h.Get(hdrStatus), h, m.Data(), nil)
	}
	m.Ack()
}

// cancel fails the pending task id with context.Canceled and tells the
// workers.
func (p *Pool) cancel(id string) bool {
	t := p.take(id)
	if t == nil {
		return false
	}
	p.c.nc.Publish(cancelSubject(p.name), []byte(id))
	t.finish("", nil, nil, context.Canceled)
	return true
}

// Close stops accepting tasks (Submit then fails with ErrClosed): those
// already submitted run, and the handle lets go of its result consumer
// once every one has its outcome. Wait waits for that.
func (p *Pool) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	release := len(p.pending) == 0 && !p.ended
	if release {
		p.ended = true
	}
	p.mu.Unlock()
	if release {
		p.release()
	}
	return nil
}

// Terminate stops the handle now: every future not yet done fails with
// ErrTerminated, and the workers are told to cancel those tasks.
func (p *Pool) Terminate() error {
	p.mu.Lock()
	if p.ended {
		p.mu.Unlock()
		return nil
	}
	p.closed, p.ended = true, true
	pending := p.pending
	p.pending = map[string]*pendingTask{}
	p.mu.Unlock()
	for id, t := range pending {
		p.c.nc.Publish(cancelSubject(p.name), []byte(id))
		t.finish("", nil, nil, ErrTerminated)
	}
	p.release()
	return nil
}

// release lets go of the result consumer.
func (p *Pool) release() {
	p.mu.Lock()
	stop := p.stop
	p.mu.Unlock()
	if stop != nil {
		stop()
	}
	p.res.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), attemptTimeout)
	defer cancel()
	p.c.js.DeleteConsumer(ctx, resultStream(p.name), "r_"+p.id)
	close(p.done)
}

// Wait waits until the handle is done, after Close or Terminate: every
// future has its outcome. ctx bounds the waiting.
func (p *Pool) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
