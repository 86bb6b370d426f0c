package pool

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"

	"mproc"
	"mproc/internal/errcode"
	"mproc/internal/failpoint"
	"mproc/internal/ring"
)

// workerFunc is the entry point of every worker process of every pool. It
// runs whichever registered task each message names: the task registry is
// filled at package level in every process of the binary.
var workerFunc = mproc.Register("mproc/pool.worker", runWorker)

// workerState is a worker's view of its running task, shared between the
// task loop and the control goroutine.
type workerState struct {
	a     workerArg
	quiet context.Context // the worker's context, ring.NoWake

	mu        sync.Mutex
	running   uint64
	stop      context.CancelFunc
	cancelled map[uint64]bool // cancellations that arrived before their task started
}

func runWorker(ctx context.Context, a workerArg) error {
	if a.Init != "" {
		if err := runInit(ctx, a.Init, a.InitArg); err != nil {
			a.Results.Put(ctx, errMessage(resInit, packSlot(a.Slot, a.Gen), errcode.Code(err), err.Error()))
			return err
		}
	}
	w := &workerState{a: a, quiet: ring.NoWake(ctx), cancelled: make(map[uint64]bool)}
	go w.control(ctx)
	for n := 0; a.MaxTasks == 0 || n < a.MaxTasks; n++ {
		msg, err := a.Tasks.Get(ctx)
		if errors.Is(err, mproc.ErrShutdown) {
			return nil // Close: drained
		}
		if err != nil {
			return err
		}
		if err := w.run(ctx, msg); err != nil {
			return err
		}
	}
	return nil
}

func runInit(ctx context.Context, name string, arg []byte) error {
	e := lookup(name)
	if e == nil || e.init == nil {
		return fmt.Errorf("initializer %q: %w", name, ErrNotRegistered)
	}
	return e.init(ctx, arg)
}

// control cancels tasks on the parent's request.
func (w *workerState) control(ctx context.Context) {
	for {
		id, err := w.a.Ctrl.Get(ctx)
		if err != nil {
			return
		}
		w.mu.Lock()
		if id == w.running {
			w.stop()
		} else {
			if len(w.cancelled) >= 1024 {
				clear(w.cancelled) // requests that raced with their task's end
			}
			w.cancelled[id] = true
		}
		w.mu.Unlock()
	}
}

// run runs one task message and puts its result. The order is the
// protocol: the task's id goes into the slot before the task starts, and
// leaves it only after the result is in the result queue, so a death at
// any point is charged to the right task (see Pool.exited).
func (w *workerState) run(ctx context.Context, msg []byte) error {
	a := w.a
	kind, id, name, payload, err := parseTask(msg)
	if err != nil {
		return err
	}
	failpoint.Hit(FailTaskReceived)
	w.mu.Lock()
	if w.cancelled[id] {
		delete(w.cancelled, id)
		w.mu.Unlock()
		return a.Results.Put(ctx, resultMessage(resCanceled, id, nil))
	}
	tctx, cancel := context.WithCancel(ctx)
	w.running, w.stop = id, cancel
	w.mu.Unlock()

	a.Slots.Add(2*a.Slot+1, 1)
	a.Slots.Store(2*a.Slot, id)
	failpoint.Hit(FailTaskStarting)
	res, clean := w.call(tctx, kind&^taskQuiet, id, name, payload)
	cancel()
	w.mu.Lock()
	w.running, w.stop = 0, nil
	w.mu.Unlock()
	if len(res) > a.Results.MaxMessage() {
		err := tooLarge("result", len(res), a.Results.MaxMessage())
		res, clean = errMessage(resErr, id, errcode.Code(err), fmt.Sprintf("task %q: %v", name, err)), false
	}
	failpoint.Hit(FailTaskRan)
	pctx := ctx
	if clean && kind&taskQuiet != 0 && a.Tasks.Len() >= 2 {
		pctx = w.quiet
	}
	if err := a.Results.Put(pctx, res); err != nil {
		return err
	}
	failpoint.Hit(FailTaskReported)
	a.Slots.Store(2*a.Slot, 0)
	return nil
}

// call runs the task and returns its result message, and whether it is
// a success throughout (no failed item of a chunk either).
func (w *workerState) call(ctx context.Context, kind byte, id uint64, name string, payload []byte) (res []byte, clean bool) {
	e := lookup(name)
	if e == nil || (e.one == nil) {
		err := fmt.Errorf("task %q is not registered in the worker: %w", name, ErrNotRegistered)
		return errMessage(resErr, id, errcode.Code(err), err.Error()), false
	}
	defer func() {
		if r := recover(); r != nil {
			res, clean = panicMessage(id, fmt.Sprint(r), stack()), false
		}
	}()
	var out []byte
	var err error
	failed := false
	if kind == taskBatch {
		out, failed, err = e.batch(ctx, payload, w.item)
		kind = resBatch
	} else {
		tctx, cancel := w.timeout(ctx)
		defer cancel()
		out, err = e.one(tctx, payload)
		kind = resOK
	}
	if err != nil {
		return errMessage(resErr, id, errcode.Code(err), err.Error()), false
	}
	return resultMessage(kind, id, out), !failed
}

// item starts one element of a chunk: it counts it for the timeout
// watcher and gives it its own deadline.
func (w *workerState) item(ctx context.Context) (context.Context, context.CancelFunc) {
	w.a.Slots.Add(2*w.a.Slot+1, 1)
	return w.timeout(ctx)
}

// timeout gives a task, or an element of a chunk, its deadline when there
// is a TaskTimeout; without one it runs in ctx, the task message's own
// context (cancelled when the message's work ends or is cancelled): a
// context per element would cost more than a small element's work.
func (w *workerState) timeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if w.a.Timeout > 0 {
		return context.WithTimeout(ctx, w.a.Timeout)
	}
	return ctx, noCancel
}

var noCancel context.CancelFunc = func() {}

const maxStack = 64 << 10

func stack() string {
	s := debug.Stack()
	if len(s) > maxStack {
		s = s[:maxStack]
	}
	return string(s)
}
