package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ServeOptions configure Serve. The zero value is ready to use.
type ServeOptions struct {
	// Pool is the name of the pool to serve; "" means DefaultPool.
	Pool string
	// Workers is how many tasks this process runs at once, each in its
	// own goroutine; 0 means runtime.NumCPU().
	Workers int
	// Name names this worker in the errors its tasks return
	// (RemoteError.Process); "" means hostname:pid.
	Name string
	// Storage is used if Serve creates the pool's streams.
	Storage
}

// cancelMemory is how long a worker remembers a cancellation whose task
// it has not seen, so that it skips the task if it comes later.
const cancelMemory = 10 * time.Minute

// errCancelled is the cause of a task's cancellation by its submitter.
var errCancelled = errors.New("mproc: task cancelled by its submitter")

// Serve runs the tasks of a pool in this process — any program that
// registers them (Register) can serve: pull a task, run it, publish its
// result, acknowledge the task, and so on, Workers at a time, until ctx
// ends. Then it stops taking tasks, cancels the running ones and gives
// them back to the pool for another worker (what such a task returns is
// dropped, unless it succeeded), and returns nil. While a task runs, the
// worker tells the server so three times per AckWait: a worker that dies
// or is cut off loses its tasks to others after AckWait.
//
// Serve fails if the connection is closed (os.ErrClosed) or the pool is
// removed.
func Serve(ctx context.Context, c *Conn, opts ServeOptions) error {
	name := opts.Pool
	if name == "" {
		name = DefaultPool
	}
	if err := checkName("pool", name); err != nil {
		return err
	}
	n := opts.Workers
	if n <= 0 {
		n = runtime.NumCPU()
	}
	w := &worker{c: c, pool: name, name: opts.Name, cancelled: map[string]time.Time{}, running: map[string]context.CancelCauseFunc{}}
	if w.name == "" {
		host, _ := os.Hostname()
		w.name = host + ":" + strconv.Itoa(os.Getpid())
	}
	cons, err := ensurePool(ctx, c, name, opts.Storage)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped before it started
		}
		return fmt.Errorf("serve pool %q: %w", name, err)
	}
	w.cons = cons
	w.heartbeat = heartbeatEvery(cons.CachedInfo().Config.AckWait)
	sub, err := c.nc.Subscribe(cancelSubject(name), w.onCancel)
	if err != nil {
		return fmt.Errorf("serve pool %q: %w", name, gone(err))
	}
	defer sub.Unsubscribe()
	ctx, cancel := within(ctx, c.life)
	defer cancel()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = w.loop(ctx) })
	}
	wg.Wait()
	w.results.Wait()
	if c.life.Err() != nil {
		return fmt.Errorf("serve pool %q: connection: %w", name, os.ErrClosed)
	}
	for _, err := range errs {
		if err != nil {
			return fmt.Errorf("serve pool %q: %w", name, err)
		}
	}
	return nil
}

// worker is one Serve call's state.
type worker struct {
	c         *Conn
	pool      string
	name      string
	cons      jetstream.Consumer
	heartbeat time.Duration

	results sync.WaitGroup // results being stored (finish)

	mu        sync.Mutex
	running   map[string]context.CancelCauseFunc // task id -> its cancel
	cancelled map[string]time.Time               // cancellations of tasks not running here
	pruned    time.Time                          // when cancelled was last pruned
}

// loop pulls and runs tasks until ctx ends (nil) or pulling cannot go on.
func (w *worker) loop(ctx context.Context) error {
	for {
		m, err := pull(ctx, w.cons, true)
		if ctx.Err() != nil {
			if m != nil {
				m.Nak()
			}
			return nil
		}
		if err != nil {
			return err
		}
		w.run(ctx, m)
	}
}

func (w *worker) onCancel(m *nats.Msg) {
	id := string(m.Data)
	w.mu.Lock()
	defer w.mu.Unlock()
	if cancel, ok := w.running[id]; ok {
		cancel(errCancelled)
		return
	}
	now := time.Now()
	if now.Sub(w.pruned) > time.Minute {
		w.pruned = now
		for k, t := range w.cancelled {
			if now.Sub(t) > cancelMemory {
				delete(w.cancelled, k)
			}
		}
	}
	w.cancelled[id] = now
}

// run runs the task of m, publishes its result and acknowledges m.
func (w *worker) run(ctx context.Context, m jetstream.Msg) {
	h := m.Headers()
	id, name, reply := h.Get(hdrMsgID), h.Get(hdrTask), h.Get(hdrReply)
	maxDeliver, _ := strconv.Atoi(h.Get(hdrMaxDeliver))
	md, err := m.Metadata()
	if err != nil || reply == "" {
		m.Term() // not a task message: nothing to answer, never again
		return
	}
	if maxDeliver > 0 && md.NumDelivered > uint64(maxDeliver) {
		msg := fmt.Sprintf("its worker died (or was cut off) in each of its %d starts", md.NumDelivered-1)
		w.finish(m, id, reply, statusDied, (&wireErr{Msg: msg}).encode())
		return
	}
	tctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	w.mu.Lock()
	_, skip := w.cancelled[id]
	delete(w.cancelled, id)
	if !skip {
		w.running[id] = cancel
	}
	w.mu.Unlock()
	if skip {
		m.Ack()
		return
	}
	defer func() {
		w.mu.Lock()
		delete(w.running, id)
		w.mu.Unlock()
	}()

	hbDone := make(chan struct{})
	var hb sync.WaitGroup
	hb.Go(func() {
		t := time.NewTicker(w.heartbeat)
		defer t.Stop()
		for {
			select {
			case <-hbDone:
				return
			case <-t.C:
				m.InProgress()
			}
		}
	})
	status, body := w.execute(tctx, name, h.Get(hdrKind), h.Get(hdrTimeout), m.Data())
	close(hbDone)
	hb.Wait()

	switch cause := context.Cause(tctx); {
	case errors.Is(cause, errCancelled):
		m.Ack() // the future has its outcome already
	case ctx.Err() != nil && status != statusOK && status != statusBatch:
		m.Nak() // leaving: another worker runs it
	default:
		w.finish(m, id, reply, status, body)
	}
}

// finish publishes a result, then acknowledges the task. The publish is
// asynchronous, so that the worker takes its next task while the server
// stores the result; the task is acknowledged once the result is stored
// (retried on a failure for up to republishTimeout, else the task is given
// back). A worker that dies between the two, or an ack lost in a
// failover, has its task run again: the second result is a duplicate the
// stream drops (same id) or the submitter ignores.
func (w *worker) finish(m jetstream.Msg, id, reply, status string, body []byte) {
	h := nats.Header{}
	h.Set(hdrMsgID, "r."+id)
	h.Set(hdrID, id)
	h.Set(hdrStatus, status)
	h.Set(hdrWorker, w.name)
	h.Set(hdrPid, strconv.Itoa(os.Getpid()))
	if limit := int(w.c.nc.MaxPayload() - headerRoom); len(body) > limit {
		h.Set(hdrStatus, statusErr)
		body = toWire(fmt.Errorf("result of %d bytes, maximum %d: %w", len(body), limit, ErrTooLarge)).encode()
	}
	msg := &nats.Msg{Subject: reply, Data: body, Header: h}
	paf, err := w.c.js.PublishMsgAsync(msg)
	w.results.Go(func() {
		if err == nil {
			select {
			case <-paf.Ok():
				m.Ack()
				return
			case err = <-paf.Err():
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), republishTimeout)
		defer cancel()
		if _, err := publish(ctx, w.c.js, msg); err != nil {
			m.Nak() // another worker may do better
			return
		}
		m.Ack()
	})
}

// execute runs a task and returns its result message's status and body.
func (w *worker) execute(ctx context.Context, name, kind, timeout string, arg []byte) (status string, body []byte) {
	e := lookup(name)
	if e == nil {
		return statusErr, toWire(fmt.Errorf("task %q on %s: %w", name, w.name, ErrNotRegistered)).encode()
	}
	limit, _ := time.ParseDuration(timeout)
	if kind == kindBatch {
		each := func(ctx context.Context) (context.Context, context.CancelFunc) {
			if limit > 0 {
				return context.WithTimeout(ctx, limit)
			}
			return ctx, func() {}
		}
		b, err := e.batch(ctx, arg, each)
		if err != nil {
			return statusErr, toWire(err).encode()
		}
		return statusBatch, b
	}
	if limit > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, limit)
		defer cancel()
	}
	defer func() {
		if r := recover(); r != nil {
			status, body = statusPanic, panicWire(r).encode()
		}
	}()
	b, err := e.one(ctx, arg)
	if err != nil {
		return statusErr, toWire(err).encode()
	}
	return statusOK, b
}
