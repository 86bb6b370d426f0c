package pool

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"
	"time"

	"mproc"
	"mproc/internal/errcode"
	"mproc/internal/failpoint"
	"mproc/internal/ring"
)

// DefaultMaxMessage is the largest task or result message, header
// included, of a pool created without Options.MaxMessage. The queues
// reserve that much shared memory per slot, but take a page of it per
// slot when they are created and the rest as larger messages first need
// it (mproc.WithMaxMessage): a pool of 8 workers starts with about
// 1.3 MiB of /dev/shm.
const DefaultMaxMessage = 1 << 20

// depth is how many tasks the parent keeps outstanding per worker: the
// running one and the next, so that a worker never waits for the parent
// between tasks. A worker whose last task came back within quickTask of
// being sent gets up to quickDepth: with tasks of a few microseconds, two
// in flight leave it waiting for the parent (Map with ChunkSize(1): 3.3 µs
// a task, 2.1 with four). A Map's chunks get quietDepth whatever their
// speed: their worker wakes the parent only when its queue is down to one
// task (taskQuiet), so once per seven tasks instead of once per task,
// which gives the parent's wake-ups back to the workers (10 000 tasks of
// 1 ms on 2 workers: 1.073× the two-thread floor when woken per task,
// 1.03× once per three, 1.023–1.025× once per seven; Map ChunkSize(1) of
// tiny tasks 1.1 → 0.86 µs a task from depth 4 to 8). A task waiting
// behind a slow one moves to a worker that has nothing to do (steal), so
// a deep queue holds nothing back.
const (
	depth      = 2
	quickDepth = 4
	quietDepth = 8
	quickTask  = time.Millisecond
)

// ctrlCap is the capacity of a worker's control queue (cancellations).
const ctrlCap = 32

// Options configure a pool. The zero value is ready to use.
type Options struct {
	// Workers is the number of worker processes; 0 means runtime.NumCPU().
	Workers int
	// MaxTasksPerWorker makes a worker exit after that many tasks (a
	// chunk of Map counts as one) and be replaced by a fresh process; 0
	// means never.
	MaxTasksPerWorker int
	// Initializer runs once in every worker before its first task.
	Initializer Initializer
	// TaskTimeout bounds each task (each element of a Map): its context
	// has that deadline in the worker, and a task still running a grace
	// period later (a tenth of TaskTimeout, at least 10 ms) has its worker
	// killed and replaced. Either way the future gets
	// context.DeadlineExceeded. 0 means no limit.
	TaskTimeout time.Duration
	// MaxMessage is the largest task or result message in bytes; 0 means
	// DefaultMaxMessage. Larger arguments and results fail their future
	// with mproc.ErrTooLarge.
	MaxMessage int
	// Stdout and Stderr receive the workers' output, as in
	// mproc.ProcOptions; nil means the parent's.
	Stdout, Stderr io.Writer
}

// Pool is a set of worker processes that run registered tasks (Task):
// Python's multiprocessing.Pool. Its methods are safe for concurrent use.
//
// Faults: a task that panics fails its own future with an
// *mproc.PanicError and the worker goes on. A worker that dies (killed,
// os.Exit, a crash, TaskTimeout) fails exactly the task it was running, and
// is replaced; the tasks sent to it but not started are sent again. If the
// parent dies, the workers end too.
//
// IMPORTANT: a pool holds processes until Close (then Wait) or Terminate,
// or until the context given to New ends.
type Pool struct {
	opts    Options
	maxMsg  int
	ctx     context.Context // the workers' lives
	cancel  context.CancelFunc
	stopCtx func() bool
	results *mproc.Queue[[]byte] // every worker -> parent; see wire.go
	// slots holds two words per worker slot: [2*i] the id of the task the
	// worker is running (0: none), which the worker stores before it
	// starts the task and clears after it has put the result; [2*i+1] a
	// count of tasks and chunk items it started, for the timeout watcher.
	// Only the worker of slot i writes them, but for the parent's reset
	// of [2*i] once that worker is reaped.
	slots *mproc.Array[uint64]
	// slow is whether the last result came back quickTask or more after
	// its task was sent: the collector then sleeps at once for the next
	// (ring.NoSpin). Only the collector's goroutine uses it.
	slow      bool
	reapers   sync.WaitGroup // goroutines that may still put into results
	watcher   sync.WaitGroup
	stopWatch chan struct{}
	done      chan struct{}

	mu       sync.Mutex
	state    state
	stopErr  error // what pending futures and Submit get once stopped
	nextID   uint64
	pending  []*job // FIFO; cancelled jobs stay in it, skipped
	npending int    // jobs in pending not cancelled
	jobs     map[uint64]*job
	workers  []*worker
	live     int // workers started or starting, not yet reaped and handled
}

type state uint8

const (
	open    state = iota
	closing       // Close: no new work; finish the queued
	stopped       // Terminate, a broken pool, or closed and drained
)

// worker is one slot of the pool and the process filling it. Fields are
// guarded by Pool.mu.
type worker struct {
	slot     int
	gen      uint32 // incarnation: which process of the slot a message is about
	proc     *mproc.Process
	tasks    *mproc.Queue[[]byte] // parent -> this process, new per process
	ctrl     *mproc.Queue[uint64] // ids to cancel, new per process
	inflight []*job               // sent to tasks, no result yet, in order
	sent     int
	quick    bool   // its last task came back within quickTask: quickDepth
	shutDown bool   // tasks is closed: the worker exits once it drains it
	timedOut uint64 // the task the timeout watcher killed the process for
}

// job is a submitted task (or chunk). Fields but finish are guarded by
// Pool.mu.
type job struct {
	id        uint64
	name      string
	msg       []byte
	p         *Pool
	fin       finisher  // called once, without Pool.mu
	w         *worker   // the worker it was sent to, nil while pending
	sent      time.Time // when it was sent to w
	cancelled bool
	quiet     bool // a Map's chunk: taskQuiet
}

// finisher completes a job's future with its result message (body) or
// err; src is the worker that ran it. It reports whether that readied a
// goroutine (future.Complete). The typed job of a Task (task.go) holds the
// job, the future and this, in one allocation.
type finisher interface {
	finish(body []byte, err error, src from) bool
}

// Cancel cancels j (the future's Cancel).
func (j *job) Cancel() bool { return j.p.cancelJob(j) }

// New starts a pool of worker processes. ctx bounds the pool's life: when
// it ends, the pool is terminated (Terminate). New returns once every
// worker has started; it fails, leaving nothing behind, if one cannot be.
func New(ctx context.Context, opts Options) (*Pool, error) {
	if opts.Workers < 0 || opts.MaxTasksPerWorker < 0 || opts.TaskTimeout < 0 || opts.MaxMessage < 0 {
		return nil, fmt.Errorf("mproc/pool: negative option in %+v", opts)
	}
	if opts.Initializer.err != nil {
		return nil, opts.Initializer.err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("new pool: %w", err)
	}
	opts.Workers = cmp.Or(opts.Workers, runtime.NumCPU())
	p := &Pool{opts: opts, maxMsg: cmp.Or(opts.MaxMessage, DefaultMaxMessage),
		jobs: make(map[uint64]*job), done: make(chan struct{}), stopWatch: make(chan struct{})}
	var err error
	// Every worker has at most quietDepth results outstanding, and the parent
	// puts one exit message per process: puts never wait for long.
	if p.results, err = mproc.NewQueue[[]byte](opts.Workers*(quietDepth+2)+8, mproc.WithMaxMessage(p.maxMsg)); err != nil {
		return nil, fmt.Errorf("new pool: %w", err)
	}
	if p.slots, err = mproc.NewArray[uint64](2 * opts.Workers); err != nil {
		p.results.Close()
		return nil, fmt.Errorf("new pool: %w", err)
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.workers = make([]*worker, opts.Workers)
	for i := range p.workers {
		p.workers[i] = &worker{slot: i}
	}
	p.live = opts.Workers
	// Before the collector starts, which reads stopCtx when it ends.
	p.stopCtx = context.AfterFunc(ctx, func() {
		p.stop(fmt.Errorf("%w: %w", ErrTerminated, context.Cause(ctx)))
	})
	go p.collect()
	if opts.TaskTimeout > 0 {
		p.watcher.Add(1)
		go p.watchTimeouts()
	}
	errs := make([]error, len(p.workers))
	var wg sync.WaitGroup
	for i := range p.workers {
		wg.Go(func() { errs[i] = p.startWorker(i, 0) })
	}
	wg.Wait()
	first := errors.Join(errs...)
	if first == nil && ctx.Err() != nil {
		first = context.Cause(ctx)
	}
	if first != nil {
		p.Terminate()
		<-p.done
		return nil, fmt.Errorf("new pool: %w", first)
	}
	return p, nil
}

// workerArg is what a worker process is started with.
type workerArg struct {
	Tasks    *mproc.Queue[[]byte]
	Ctrl     *mproc.Queue[uint64]
	Results  *mproc.Queue[[]byte]
	Slots    *mproc.Array[uint64]
	Slot     int
	Gen      uint32
	MaxTasks int
	Timeout  time.Duration
	Init     string
	InitArg  []byte
}

// startWorker starts the process of slot, incarnation gen, and installs
// it. On failure it reports to the collector, as a worker whose
// initializer failed would, and returns the error.
func (p *Pool) startWorker(slot int, gen uint32) (err error) {
	p.reapers.Add(1)
	defer func() {
		if err != nil {
			id := packSlot(slot, gen)
			p.results.Put(context.Background(), errMessage(resInit, id, errcode.Code(err), err.Error()))
			p.results.Put(context.Background(), resultMessage(resExit, id, nil))
			p.reapers.Done()
		}
	}()
	tasks, err := mproc.NewQueue[[]byte](quietDepth, mproc.WithMaxMessage(p.maxMsg))
	if err != nil {
		return err
	}
	ctrl, err := mproc.NewQueue[uint64](ctrlCap)
	if err != nil {
		tasks.Close()
		return err
	}
	arg := workerArg{Tasks: tasks, Ctrl: ctrl, Results: p.results, Slots: p.slots, Slot: slot, Gen: gen,
		MaxTasks: p.opts.MaxTasksPerWorker, Timeout: p.opts.TaskTimeout,
		Init: p.opts.Initializer.name, InitArg: p.opts.Initializer.arg}
	proc, err := workerFunc.Start(p.ctx, arg, mproc.ProcOptions{
		Name: fmt.Sprintf("pool-worker-%d", slot), Stdout: p.opts.Stdout, Stderr: p.opts.Stderr})
	if err != nil {
		tasks.Close()
		ctrl.Close()
		return err
	}
	p.mu.Lock()
	w := p.workers[slot]
	w.proc, w.tasks, w.ctrl = proc, tasks, ctrl
	w.inflight, w.sent, w.shutDown, w.timedOut = nil, 0, false, 0
	if p.state == stopped {
		proc.Kill()
	} else {
		p.pump()
	}
	p.mu.Unlock()
	go func() {
		defer p.reapers.Done()
		<-proc.Done()
		p.results.Put(context.Background(), resultMessage(resExit, packSlot(slot, gen), nil))
	}()
	return nil
}

// Workers returns the worker processes alive now, in slot order: for
// tests and monitoring (killing one is a fault the pool survives).
func (p *Pool) Workers() []*mproc.Process {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ps []*mproc.Process
	for _, w := range p.workers {
		if w.proc != nil && w.proc.Alive() {
			ps = append(ps, w.proc)
		}
	}
	return ps
}

// submit queues j, or fails it.
func (p *Pool) submit(j *job) {
	p.mu.Lock()
	var err error
	switch {
	case p.state == closing || (p.state == stopped && !errors.Is(p.stopErr, ErrBroken)):
		err = ErrClosed
	case p.state == stopped:
		err = p.stopErr
	case len(j.msg) > p.maxMsg:
		err = tooLarge("argument", len(j.msg), p.maxMsg)
	}
	if err != nil {
		p.mu.Unlock()
		j.fin.finish(nil, fmt.Errorf("submit %q: %w", j.name, err), from{})
		return
	}
	p.nextID++
	j.id = p.nextID
	setID(j.msg, j.id)
	p.jobs[j.id] = j
	p.pending = append(p.pending, j)
	p.npending++
	p.pump()
	p.mu.Unlock()
}

// pump sends pending jobs to workers with room, breadth first, and closes
// the workers' task queues once Close has been called and nothing is
// pending. p.mu is held.
func (p *Pool) pump() {
	if p.state == stopped {
		return
	}
	var now time.Time
	for d := 1; d <= quietDepth && p.npending > 0; d++ {
		for _, w := range p.workers {
			if p.npending == 0 {
				break
			}
			if !p.accepts(w) || len(w.inflight) >= d {
				continue
			}
			if d > depth && !p.nextPending().quiet && (!w.quick || d > quickDepth) {
				continue
			}
			if now.IsZero() {
				now = time.Now()
			}
			p.send(w, p.popPending(), now)
		}
	}
	if p.npending == 0 {
		p.steal()
	}
	// Once closed and nothing is pending, the task queues are shut down
	// (each worker exits when it has drained its own); not while a task
	// waits behind a running one, for the worker steal may give it to.
	if p.state == closing && p.npending == 0 && !slices.ContainsFunc(p.workers, (*worker).waiting) {
		for _, w := range p.workers {
			if w.tasks != nil && !w.shutDown {
				w.tasks.Shutdown()
				w.shutDown = true
			}
		}
	}
}

// accepts reports whether w may be sent another task, room aside.
func (p *Pool) accepts(w *worker) bool {
	maxTasks := p.opts.MaxTasksPerWorker
	return w.tasks != nil && !w.shutDown && (maxTasks == 0 || w.sent < maxTasks)
}

// waiting reports whether a task waits in w's queue behind its running
// one, as far as the parent has seen.
func (w *worker) waiting() bool { return w.tasks != nil && len(w.inflight) >= 2 }

// send puts j into w's task queue and records it as w's, reporting
// whether it did. The queue holds quietDepth messages and no more are
// ever outstanding, so it cannot be full; if it were, j would go back to
// the front of the pending jobs. p.mu is held.
func (p *Pool) send(w *worker, j *job, now time.Time) bool {
	setQuiet(j.msg, j.quiet && !w.quick)
	if err := w.tasks.TryPut(j.msg); err != nil {
		j.w = nil
		p.pending = append([]*job{j}, p.pending...)
		p.npending++
		return false
	}
	failpoint.Hit(FailTaskSent)
	j.w, j.sent = w, now
	w.inflight = append(w.inflight, j)
	w.sent++
	return true
}

// nextPending returns the first job not cancelled, dropping the
// cancelled ones before it; npending > 0.
func (p *Pool) nextPending() *job {
	for p.pending[0].cancelled {
		p.pending[0] = nil
		p.pending = p.pending[1:]
	}
	return p.pending[0]
}

// steal moves tasks that wait in a busy worker's queue to idle workers,
// once nothing is pending: a task queued behind a long one would
// otherwise wait for it while another worker has nothing to do (a Map's
// worker holds up to seven behind its running one). It takes the message
// from the busy worker's queue itself (the queue hands each message out
// once: to the parent, or to the worker that was about to start it). p.mu
// is held.
func (p *Pool) steal() {
	for _, to := range p.workers {
		if !p.accepts(to) || len(to.inflight) > 0 {
			continue
		}
		var from *worker // the one with the most waiting behind its running task
		for _, w := range p.workers {
			if w.waiting() && (from == nil || len(w.inflight) > len(from.inflight)) {
				from = w
			}
		}
		if from == nil {
			return
		}
		msg, err := from.tasks.TryGet()
		if err != nil {
			continue // the worker took it first
		}
		_, id, _, _, _ := parseTask(msg)
		j := p.jobs[id]
		if j == nil || j.w != from {
			continue // cannot happen: every message in a task queue is an inflight job's
		}
		from.inflight = slices.DeleteFunc(from.inflight, func(x *job) bool { return x == j })
		from.sent--
		if !p.send(to, j, time.Now()) {
			return
		}
		if j.cancelled {
			to.ctrl.TryPut(j.id) // its cancellation went to from
		}
	}
}

// popPending removes the first job not cancelled; npending > 0.
func (p *Pool) popPending() *job {
	j := p.nextPending()
	p.pending[0] = nil
	p.pending = p.pending[1:]
	p.npending--
	return j
}

// cancelJob cancels j (Future.Cancel).
func (p *Pool) cancelJob(j *job) bool {
	p.mu.Lock()
	if j.id == 0 || p.jobs[j.id] != j {
		p.mu.Unlock()
		return false
	}
	if j.w == nil {
		j.cancelled = true
		delete(p.jobs, j.id)
		p.npending--
		p.mu.Unlock()
		j.fin.finish(nil, fmt.Errorf("task %q: %w", j.name, context.Canceled), from{})
		return true
	}
	if !j.cancelled {
		j.cancelled = true
		// A full control queue (ctrlCap cancellations not yet read) drops
		// the request: the task runs to its end.
		j.w.ctrl.TryPut(j.id)
	}
	p.mu.Unlock()
	return true
}

// collect reads the result queue: results, a failed initializer, and the
// exit of each worker process, until the pool is done.
func (p *Pool) collect() {
	quickCtx, slowCtx := context.Background(), ring.NoSpin(context.Background())
	for {
		ctx := quickCtx
		if p.slow {
			ctx = slowCtx
		}
		msg, err := p.results.Get(ctx)
		if err != nil {
			break // not closed before the end: cannot happen
		}
		finished, readied := p.handle(msg)
		if finished {
			break
		}
		if readied && p.results.Len() == 0 {
			// handle readied the goroutine waiting for this result; it
			// sits in this P's run queue, and the Get below would spin on
			// the P before sleeping: let it run now (Submit+Result ~145 µs
			// → ~35 µs here). Not in futex.Spin itself: a Gosched per wait
			// doubles every ping-pong's latency. And not when nobody was
			// readied: a Map's results wake its Gather once, and a Gosched
			// per result cost its collector a third of its time.
			runtime.Gosched()
		}
	}
	close(p.stopWatch)
	p.watcher.Wait()
	p.reapers.Wait()
	p.mu.Lock()
	p.state = stopped
	if p.stopErr == nil {
		p.stopErr = ErrClosed
	}
	p.mu.Unlock()
	p.results.Close()
	p.slots.Close()
	p.stopCtx()
	p.cancel()
	close(p.done)
}

// handle acts on one message of the result queue and reports whether the
// pool is done, and whether it may have readied a goroutine of this
// process (a Result, a Map's Gather, callbacks).
func (p *Pool) handle(msg []byte) (finished, readied bool) {
	kind, id, body, err := parseResult(msg)
	if err != nil {
		return false, false
	}
	var calls []func()
	var done *job // a task's result: its finish, with these, once unlocked
	var doneErr error
	var src from
	p.mu.Lock()
	switch kind {
	case resExit:
		finished = p.exited(id, &calls)
	case resInit:
		slot, _ := unpackSlot(id)
		_, m := parseErr(body)
		p.stopLocked(fmt.Errorf("%w: worker %d: %s", ErrBroken, slot, m), &calls)
	default:
		j := p.jobs[id]
		if j == nil || j.w == nil {
			break // cancelled, or the pool stopped
		}
		w := j.w
		src = from{name: w.proc.Name(), pid: w.proc.Pid()}
		w.inflight = slices.DeleteFunc(w.inflight, func(x *job) bool { return x == j })
		w.quick = time.Since(j.sent) < quickTask
		p.slow = !w.quick
		delete(p.jobs, id)
		switch kind {
		case resErr:
			code, m := parseErr(body)
			doneErr = &mproc.RemoteError{Process: src.name, Pid: src.pid, Msg: m, Err: errcode.Error(code)}
		case resPanic:
			v, st := parsePanic(body)
			doneErr = &mproc.PanicError{Process: src.name, Pid: src.pid, Value: v, Stack: st}
		case resCanceled:
			doneErr = fmt.Errorf("task %q: %w", j.name, context.Canceled)
		}
		done = j
		p.pump()
	}
	p.mu.Unlock()
	if done != nil {
		readied = done.fin.finish(body, doneErr, src)
	}
	for _, c := range calls {
		c()
	}
	return finished, readied || len(calls) > 0
}

// exited handles the exit of worker process id (slot and incarnation):
// the task it was running fails, the others it was sent go back to the
// front of the queue, and a new process takes the slot. p.mu is held.
func (p *Pool) exited(id uint64, calls *[]func()) (finished bool) {
	slot, gen := unpackSlot(id)
	w := p.workers[slot]
	if w.gen == gen {
		running := p.slots.Load(2 * slot)
		var died error
		if w.proc != nil {
			var ee *mproc.ExitError
			if !errors.As(w.proc.Wait(context.Background()), &ee) {
				ee = &mproc.ExitError{Process: w.proc.Name(), Pid: w.proc.Pid(), Code: w.proc.ExitCode()}
			}
			died = ee
		}
		var requeue []*job
		for _, j := range w.inflight {
			var err error
			switch {
			case j.id == running && running == w.timedOut:
				err = fmt.Errorf("task %q ran over its timeout of %v; worker killed: %w", j.name, p.opts.TaskTimeout, context.DeadlineExceeded)
			case j.id == running:
				err = fmt.Errorf("task %q: %w: %w", j.name, ErrWorkerDied, died)
			case j.cancelled:
				err = fmt.Errorf("task %q: %w", j.name, context.Canceled)
			default:
				j.w = nil
				requeue = append(requeue, j)
				continue
			}
			delete(p.jobs, j.id)
			*calls = append(*calls, func() { j.fin.finish(nil, err, from{}) })
		}
		p.pending = append(requeue, p.pending...)
		p.npending += len(requeue)
		w.inflight = nil
		if w.tasks != nil {
			w.tasks.Close()
			w.ctrl.Close()
		}
		w.proc, w.tasks, w.ctrl = nil, nil, nil
		p.slots.Store(2*slot, 0)
		p.live--
		if p.state == open || (p.state == closing && p.npending > 0) {
			w.gen++
			p.live++
			go p.startWorker(slot, w.gen)
		}
		p.pump()
	}
	return p.live == 0 && (p.state == stopped || (p.state == closing && p.npending == 0))
}

// stopLocked fails every job with err and kills every worker. p.mu is
// held.
func (p *Pool) stopLocked(err error, calls *[]func()) {
	if p.state == stopped {
		return
	}
	p.state, p.stopErr = stopped, err
	for _, j := range p.jobs {
		*calls = append(*calls, func() { j.fin.finish(nil, fmt.Errorf("task %q: %w", j.name, err), from{}) })
	}
	clear(p.jobs)
	p.pending, p.npending = nil, 0
	for _, w := range p.workers {
		w.inflight = nil
		if w.proc != nil {
			w.proc.Kill()
		}
	}
}

func (p *Pool) stop(err error) {
	var calls []func()
	p.mu.Lock()
	p.stopLocked(err, &calls)
	p.mu.Unlock()
	for _, c := range calls {
		c()
	}
}

// Close stops accepting work (Submit then fails with ErrClosed): the tasks
// already submitted run, then the workers exit. Wait waits for that.
func (p *Pool) Close() error {
	p.mu.Lock()
	if p.state == open {
		p.state = closing
		p.pump()
	}
	p.mu.Unlock()
	return nil
}

// Terminate stops the pool now: the workers are killed, and every future
// not yet done fails with ErrTerminated. Wait waits until the workers are
// reaped.
func (p *Pool) Terminate() error {
	p.stop(ErrTerminated)
	return nil
}

// Wait waits until the pool is done, after Close or Terminate: every
// future has its outcome and every worker process is reaped. ctx bounds
// the waiting.
func (p *Pool) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// watchTimeouts kills workers whose task runs past TaskTimeout plus a
// grace period. It samples the slots: a worker whose (task id, start
// count) has not changed for that long is stuck in one task.
func (p *Pool) watchTimeouts() {
	defer p.watcher.Done()
	limit := p.opts.TaskTimeout + max(p.opts.TaskTimeout/10, 10*time.Millisecond)
	tick := time.NewTicker(min(max(p.opts.TaskTimeout/10, 2*time.Millisecond), 100*time.Millisecond))
	defer tick.Stop()
	type seen struct {
		id, seq uint64
		at      time.Time
	}
	last := make([]seen, len(p.workers))
	for {
		select {
		case <-p.stopWatch:
			return
		case now := <-tick.C:
			for slot := range last {
				id, seq := p.slots.Load(2*slot), p.slots.Load(2*slot+1)
				l := &last[slot]
				if id == 0 || id != l.id || seq != l.seq {
					*l = seen{id, seq, now}
					continue
				}
				if now.Sub(l.at) > limit {
					l.at = now
					p.mu.Lock()
					w := p.workers[slot]
					if j := p.jobs[id]; j != nil && j.w == w && w.proc != nil && w.timedOut == 0 &&
						p.slots.Load(2*slot+1) == seq {
						w.timedOut = id
						w.proc.Kill()
					}
					p.mu.Unlock()
				}
			}
		}
	}
}
