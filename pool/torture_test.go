//go:build mprocfail

package pool_test

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"mproc"
	"mproc/internal/failpoint"
	"mproc/internal/owner"
	"mproc/internal/testenv"
	"mproc/pool"
)

// The pool's torture tests (issue 18): real worker processes killed with
// SIGKILL at each step of a task's hand-off (pool/failpoints.go), run out
// of memory, or hung past TaskTimeout. The property is Pool's promise:
// every submitted task gets exactly one outcome — its result, or an error
// saying its worker died (or ran over its timeout) — none is lost, none
// is run and reported twice, the pool keeps working, and no worker
// outlives Close. One line per scenario:
//
//	go test -tags mprocfail -run Torture -torture.n 1000 -v ./pool
var tortureN = flag.Int("torture.n", 20, "iterations per torture scenario")

// tortureArg is a torture task's argument: its sequence number, and the
// file where every run of it appends the number (O_APPEND writes of 8
// bytes are atomic), so that the test counts runs whatever the pool says.
type tortureArg struct {
	Seq uint64
	Log string
}

// tortureOut is what a run of task Seq returns: f(Seq), which no other
// task returns, and the worker's pid.
type tortureOut struct {
	V   uint64
	Pid int
}

// tortureF is the self-verifying result of task seq.
func tortureF(seq uint64) uint64 { return seq*0x9e3779b97f4a7c15 ^ 0x5eed }

var (
	tortureTask = pool.Register("torture-task", func(ctx context.Context, a tortureArg) (tortureOut, error) {
		f, err := os.OpenFile(a.Log, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return tortureOut{}, err
		}
		_, err = f.Write(binary.LittleEndian.AppendUint64(nil, a.Seq))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return tortureOut{V: tortureF(a.Seq), Pid: os.Getpid()}, err
	})
	tortureSquare = pool.Register("torture-square", func(ctx context.Context, x int) (int, error) { return x * x, nil })
	// tortureHog allocates memory, touching every page, until the
	// process dies: its address space is first limited (RLIMIT_AS) to
	// what it uses now plus headroom bytes.
	tortureHog = pool.Register("torture-hog", func(ctx context.Context, headroom int64) (int, error) {
		vm, err := vmSize()
		if err != nil {
			return 0, err
		}
		lim := syscall.Rlimit{Cur: uint64(vm + headroom), Max: uint64(vm + headroom)}
		if err := syscall.Setrlimit(syscall.RLIMIT_AS, &lim); err != nil {
			return 0, fmt.Errorf("setrlimit: %w", err)
		}
		var keep [][]byte
		for {
			b := make([]byte, 1<<20)
			for i := 0; i < len(b); i += 4096 {
				b[i] = 1
			}
			keep = append(keep, b)
		}
	})
	// tortureHang sleeps for ever, deaf to its context.
	tortureHang = pool.Register("torture-hang", func(ctx context.Context, _ int) (int, error) {
		for {
			time.Sleep(time.Hour)
		}
	})
)

// vmSize returns this process's virtual memory size (VmSize) in bytes.
func vmSize() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmSize:"); ok {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kb); err != nil {
				return 0, fmt.Errorf("VmSize %q: %w", v, err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("no VmSize in /proc/self/status")
}

// runs reads a torture log: how many times each task ran.
func runs(t *testing.T, log string) map[uint64]int {
	t.Helper()
	b, err := os.ReadFile(log)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	if len(b)%8 != 0 {
		t.Fatalf("torture log of %d bytes: a torn record", len(b))
	}
	m := map[uint64]int{}
	for ; len(b) > 0; b = b[8:] {
		m[binary.LittleEndian.Uint64(b)]++
	}
	return m
}

// tally counts what a scenario's iterations saw. bad counts failures of
// any other kind (an unexpected error, a failed Map, a worker left
// behind), each logged.
type tally struct {
	iterations, survived, lost, dup, torn, hangs, bad int
	kills, died                                       int // workers killed; tasks failed by a death or a timeout
	maxRecovery                                       time.Duration
}

func (tl *tally) String() string {
	return fmt.Sprintf("%d of %d survived; lost %d, dup %d, torn %d, hangs %d, other failures %d, max recovery %v; workers killed %d, tasks charged %d",
		tl.survived, tl.iterations, tl.lost, tl.dup, tl.torn, tl.hangs, tl.bad, tl.maxRecovery.Round(time.Millisecond), tl.kills, tl.died)
}

func (tl *tally) report(t *testing.T, name string) {
	t.Helper()
	t.Logf("%s: %v", name, tl)
	if tl.survived != tl.iterations || tl.lost+tl.dup+tl.torn+tl.hangs+tl.bad > 0 {
		t.Errorf("%s: %v", name, tl)
	}
}

// events records when workers died and when tasks succeeded, for the
// recovery time: from a death to the next task that succeeded after it.
type events struct {
	mu     sync.Mutex
	deaths []time.Time
	oks    []time.Time
}

func (e *events) ok() {
	e.mu.Lock()
	e.oks = append(e.oks, time.Now())
	e.mu.Unlock()
}

func (e *events) watch(p *mproc.Process) {
	go func() {
		<-p.Done()
		e.mu.Lock()
		e.deaths = append(e.deaths, time.Now())
		e.mu.Unlock()
	}()
}

// recovery returns the longest time from a death to the next success, and
// false if a death was followed by none.
func (e *events) recovery() (time.Duration, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	slices.SortFunc(e.oks, time.Time.Compare)
	var worst time.Duration
	for _, d := range e.deaths {
		i, _ := slices.BinarySearchFunc(e.oks, d, time.Time.Compare)
		if i == len(e.oks) {
			return 0, false
		}
		worst = max(worst, e.oks[i].Sub(d))
	}
	return worst, true
}

// startPool starts a pool whose first workers have env in their
// environment (the failpoint setting); the replacements the pool starts
// later do not, since the variable is gone by then.
func startPool(t *testing.T, env string, opts pool.Options) *pool.Pool {
	t.Helper()
	if env != "" {
		old, had := os.LookupEnv(failpoint.Env)
		os.Setenv(failpoint.Env, env)
		defer func() {
			if had {
				os.Setenv(failpoint.Env, old)
			} else {
				os.Unsetenv(failpoint.Env)
			}
		}()
	}
	p, err := pool.New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// endPool terminates p, if still running, and waits for it: an
// iteration that failed leaves nothing to the next.
func endPool(p *pool.Pool) {
	p.Terminate()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p.Wait(ctx)
}

// closePool closes p and checks that it keeps no process: Wait returns,
// and every pid in pids (the workers it had) is gone, not even a zombie.
func closePool(t *testing.T, p *pool.Pool, pids map[int]bool) error {
	t.Helper()
	p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Wait(ctx); err != nil {
		return fmt.Errorf("Wait after Close: %w", err)
	}
	if ws := p.Workers(); len(ws) != 0 {
		return fmt.Errorf("%d workers after Close and Wait", len(ws))
	}
	for pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("worker %d left after Close and Wait (kill 0: %v)", pid, err)
		}
	}
	if cs := mproc.Children(); len(cs) != 0 {
		return fmt.Errorf("%d children left after Close and Wait", len(cs))
	}
	return nil
}

// mapWorks checks that p still runs a Map.
func mapWorks(ctx context.Context, p *pool.Pool, ev *events) error {
	xs := make([]int, 50)
	for i := range xs {
		xs[i] = i
	}
	rs, err := tortureSquare.Map(ctx, p, xs, pool.ChunkSize(3))
	if err != nil {
		return fmt.Errorf("Map after the kills: %w", err)
	}
	for i, r := range rs {
		if r != i*i {
			return fmt.Errorf("Map after the kills: result %d is %d", i, r)
		}
	}
	ev.ok()
	return nil
}

// TestTortureHandOff kills workers at each step of a task's hand-off. Each
// iteration starts a pool of two workers, both set to die at a random hit
// k (1–8) of the failpoint, and submits 24 tasks; the replacements have no
// failpoint. Every task must get exactly one outcome: its result, from
// exactly one run, or — where the death leaves the task started but not
// reported — ErrWorkerDied, one per killed worker, from at most one run.
func TestTortureHandOff(t *testing.T) {
	if !failpoint.Enabled {
		t.Fatal("built without -tags mprocfail")
	}
	scenarios := []struct {
		name, point string
		// charged: a death there fails the task it holds with
		// ErrWorkerDied (else the task is sent again, or its result is
		// already out); ran: that task has run.
		charged, ran bool
	}{
		{"PW1 worker killed after receiving its task", pool.FailTaskReceived, false, false},
		{"PW2 worker killed before running its task", pool.FailTaskStarting, true, false},
		{"PW3 worker killed after running, before reporting", pool.FailTaskRan, true, true},
		{"PW4 worker killed after reporting, before clearing its slot", pool.FailTaskReported, false, true},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			var tl tally
			dir := t.TempDir()
			start := time.Now()
			for i := range *tortureN {
				handOffOnce(t, filepath.Join(dir, fmt.Sprint(i)), sc.point, sc.charged, sc.ran, &tl)
			}
			tl.report(t, fmt.Sprintf("%s (%s, %v)", sc.name, sc.point, time.Since(start).Round(time.Millisecond)))
		})
		// The same deaths under a Map, whose workers hold back the
		// parent's wake-up for results (taskQuiet): a death after such a
		// result must not leave it unseen, nor the Map waiting.
		t.Run(sc.name+", in a Map", func(t *testing.T) {
			var tl tally
			dir := t.TempDir()
			start := time.Now()
			for i := range *tortureN {
				mapHandOffOnce(t, filepath.Join(dir, fmt.Sprint(i)), sc.point, sc.charged, &tl)
			}
			tl.report(t, fmt.Sprintf("%s, in a Map (%s, %v)", sc.name, sc.point, time.Since(start).Round(time.Millisecond)))
		})
	}
}

// handOff is one iteration of a hand-off scenario: a pool of two
// workers set to die at hit k of the failpoint, the workers it started
// with, and what the iteration saw.
type handOff struct {
	t     *testing.T
	tl    *tally
	what  string // the scenario, for the log
	k     int
	p     *pool.Pool
	ctx   context.Context
	ev    events
	first []*mproc.Process
	pids  map[int]bool // every worker the pool had
}

// startHandOff starts an iteration at point; end releases it.
func startHandOff(t *testing.T, point, what string, tl *tally) (h *handOff, end func()) {
	tl.iterations++
	h = &handOff{t: t, tl: tl, what: what, k: 1 + rand.IntN(8), pids: map[int]bool{}}
	h.p = startPool(t, fmt.Sprintf("%s=kill@%d", point, h.k), pool.Options{Workers: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	h.ctx = ctx
	h.first = h.p.Workers()
	for _, w := range h.first {
		h.pids[w.Pid()] = true
		h.ev.watch(w)
	}
	return h, func() { cancel(); endPool(h.p) }
}

func (h *handOff) fail(format string, args ...any) {
	h.t.Logf("%s, kill at hit %d: %s", h.what, h.k, fmt.Sprintf(format, args...))
}

// kills counts the first workers killed, by SIGKILL; one that did not
// reach its kth hit is killed now, idle (it costs nothing), so that the
// Map of finish does not meet the failpoint. It reports false (counted
// and logged) if one ended otherwise or none reached the failpoint.
func (h *handOff) kills() (int, bool) {
	kills := 0
	for _, w := range h.first {
		var ee *mproc.ExitError
		select {
		case <-w.Done():
			if err := w.Wait(h.ctx); !errors.As(err, &ee) || ee.Signal != syscall.SIGKILL {
				h.tl.bad++
				h.fail("worker %d ended without SIGKILL: %v", w.Pid(), err)
				return 0, false
			}
			kills++
		default:
			w.Kill()
			w.Wait(h.ctx)
		}
	}
	if kills == 0 {
		h.tl.bad++
		h.fail("no worker reached the failpoint")
		return 0, false
	}
	h.tl.kills += kills
	return kills, true
}

// finish checks that the pool still runs a Map, that a task succeeded
// after every death, and that Close leaves no worker; it counts the
// iteration as survived if nothing went wrong.
func (h *handOff) finish() {
	tl := h.tl
	if err := mapWorks(h.ctx, h.p, &h.ev); err != nil {
		tl.bad++
		h.fail("%v", err)
		return
	}
	rec, ok := h.ev.recovery()
	if !ok {
		tl.bad++
		h.fail("no task succeeded after a death")
		return
	}
	for _, w := range h.p.Workers() {
		h.pids[w.Pid()] = true
	}
	if err := closePool(h.t, h.p, h.pids); err != nil {
		tl.bad++
		h.fail("%v", err)
		return
	}
	tl.maxRecovery = max(tl.maxRecovery, rec)
	if tl.lost+tl.dup+tl.torn+tl.bad == 0 {
		tl.survived++
	}
}

// mapHandOffOnce is handOffOnce for a Map of 24 tasks in chunks of one:
// where a death costs nothing the Map returns every result, each task
// run once; where it is charged the Map fails with ErrWorkerDied, no task
// run twice. Either way in time, and the pool works on.
func mapHandOffOnce(t *testing.T, log, point string, charged bool, tl *tally) {
	const n = 24
	h, end := startHandOff(t, point, point+" in a Map", tl)
	defer end()
	args := make([]tortureArg, n)
	for seq := range args {
		args[seq] = tortureArg{Seq: uint64(seq), Log: log}
	}
	rs, err := tortureTask.Map(h.ctx, h.p, args, pool.ChunkSize(1))
	switch {
	case h.ctx.Err() != nil:
		tl.hangs++
		h.fail("no outcome after 60 s: %v", err)
		return
	case err != nil && !(charged && errors.Is(err, pool.ErrWorkerDied)):
		tl.bad++
		h.fail("Map: %v", err)
		return
	case err == nil && charged:
		tl.bad++
		h.fail("Map succeeded: a death at %s fails its task", point)
		return
	case err == nil:
		for seq, r := range rs {
			if r.V != tortureF(uint64(seq)) {
				tl.torn++
				h.fail("task %d returned %#x, not %#x", seq, r.V, tortureF(uint64(seq)))
				return
			}
		}
		h.ev.ok()
	default:
		tl.died++
	}
	if _, ok := h.kills(); !ok {
		return
	}
	for seq, nr := range runs(t, log) {
		if nr > 1 || (err == nil && nr != 1) {
			tl.dup++
			h.fail("task %d ran %d times (Map: %v)", seq, nr, err)
			return
		}
	}
	h.finish()
}

func handOffOnce(t *testing.T, log, point string, charged, ran bool, tl *tally) {
	const n = 24
	h, end := startHandOff(t, point, point, tl)
	defer end()
	fs := make([]*pool.Future[tortureOut], n)
	for seq := range fs {
		fs[seq] = tortureTask.Submit(h.p, tortureArg{Seq: uint64(seq), Log: log})
		fs[seq].OnDone(func(_ tortureOut, err error) {
			if err == nil {
				h.ev.ok()
			}
		})
	}
	outcome := make([]error, n)
	for seq, f := range fs {
		r, err := f.Result(h.ctx)
		switch {
		case h.ctx.Err() != nil:
			tl.hangs++
			h.fail("task %d has no outcome after 60 s", seq)
			return
		case err == nil && r.V != tortureF(uint64(seq)):
			tl.torn++
			h.fail("task %d returned %#x, not %#x", seq, r.V, tortureF(uint64(seq)))
			return
		case err == nil:
			h.pids[r.Pid] = true
		case !errors.Is(err, pool.ErrWorkerDied):
			tl.bad++
			h.fail("task %d: %v", seq, err)
			return
		}
		outcome[seq] = err
	}
	kills, ok := h.kills()
	if !ok {
		return
	}
	ran1 := runs(t, log)
	wantRuns := 0 // of a task its worker's death failed
	if ran {
		wantRuns = 1
	}
	died := 0
	for seq, err := range outcome {
		nr := ran1[uint64(seq)]
		switch {
		case err == nil && nr == 0:
			tl.torn++
			h.fail("task %d reported a result and never ran", seq)
		case nr > 1:
			tl.dup++
			h.fail("task %d ran %d times (outcome %v)", seq, nr, err)
		case err != nil && !charged:
			tl.lost++
			h.fail("task %d failed: %v; a death at %s must not cost it", seq, err, point)
		case err != nil && nr != wantRuns:
			tl.bad++
			h.fail("task %d failed (%v) having run %d times; a death at %s leaves it run %v", seq, err, nr, point, ran)
		case err != nil:
			died++
		}
	}
	tl.died += died
	if charged && died != kills {
		tl.lost += max(0, kills-died)
		h.fail("%d workers killed holding a started task, %d tasks failed with ErrWorkerDied", kills, died)
		return
	}
	h.finish()
}

// ownerArg is the argument of the process that owns a pool in PW5.
type ownerArg struct {
	Workers *mproc.Array[uint64] // the owner tokens of its workers, packed
}

// tortureOwner starts a pool of two workers, records who they are, and
// submits 200 tasks: it is to be killed at a hand-off (pool.FailTaskSent).
var tortureOwner = mproc.Register("torture-pool-owner", func(ctx context.Context, a ownerArg) error {
	p, err := pool.New(ctx, pool.Options{Workers: 2})
	if err != nil {
		return err
	}
	for i, w := range p.Workers() {
		tok, err := owner.Of(w.Pid())
		if err != nil {
			return err
		}
		a.Workers.Store(i, tok.Pack())
	}
	var fs []*pool.Future[int]
	for x := range 200 {
		fs = append(fs, tortureSquare.Submit(p, x))
	}
	for _, f := range fs {
		if _, err := f.Result(ctx); err != nil {
			return err
		}
	}
	p.Close()
	return p.Wait(ctx)
})

// TestTortureOwnerKilled kills the process that owns a pool while it hands
// a task to a worker (pool.FailTaskSent, hit 1–100): its workers must end
// with it — none left running, however they were busy.
func TestTortureOwnerKilled(t *testing.T) {
	const name = "PW5 pool's owner killed handing a task to a worker"
	var tl tally
	start := time.Now()
	for range *tortureN {
		ownerOnce(t, &tl)
	}
	tl.report(t, fmt.Sprintf("%s (%s, %v)", name, pool.FailTaskSent, time.Since(start).Round(time.Millisecond)))
}

func ownerOnce(t *testing.T, tl *tally) {
	tl.iterations++
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ws, err := mproc.NewArray[uint64](2)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	k := 1 + rand.IntN(100)
	p, err := tortureOwner.Start(ctx, ownerArg{Workers: ws},
		mproc.ProcOptions{Env: []string{fmt.Sprintf("%s=%s=kill@%d", failpoint.Env, pool.FailTaskSent, k)}})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Reap(t, p)
	var ee *mproc.ExitError
	if err := p.Wait(ctx); !errors.As(err, &ee) || ee.Signal != syscall.SIGKILL {
		tl.bad++
		t.Logf("the owner was to be killed at hit %d of %s: %v", k, pool.FailTaskSent, err)
		return
	}
	died := time.Now()
	tl.kills++
	var toks []owner.Token
	for i := range ws.Len() {
		tok := owner.Unpack(ws.Load(i))
		if tok.IsZero() {
			tl.bad++
			t.Logf("the owner died before it recorded worker %d", i)
			return
		}
		toks = append(toks, tok)
	}
	// Whatever happens, no worker outlives the iteration.
	defer func() {
		for _, tok := range toks {
			if owner.Alive(tok) {
				syscall.Kill(int(tok.Pid), syscall.SIGKILL)
			}
		}
	}()
	for _, tok := range toks {
		for owner.Alive(tok) {
			if time.Since(died) > 30*time.Second {
				tl.hangs++
				t.Logf("worker %v alive 30 s after its pool's owner was killed", tok)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}
	tl.maxRecovery = max(tl.maxRecovery, time.Since(died))
	tl.survived++
}

// TestTortureOutOfMemory runs, in each iteration, one task that limits its
// worker's address space (RLIMIT_AS: what it maps now plus 64 MiB) and
// allocates until it dies, among 8 ordinary tasks, in one pool of two
// workers: the hog fails with ErrWorkerDied and the worker's exit status,
// the worker's stderr says it ran out of memory (of address space, under
// -race), the other tasks succeed, and the pool keeps its two workers.
// The kernel refuses the runtime's mmap, and the runtime ends the
// process: the cgroup OOM killer's SIGKILL would cost the task the same
// way (PW2), and this machine's cgroups (v1, the session's own) are not
// the tests' to change.
func TestTortureOutOfMemory(t *testing.T) {
	const name = "PW6 worker out of memory (RLIMIT_AS)"
	var stderr testenv.Buffer
	p := startPool(t, "", pool.Options{Workers: 2, Stderr: &stderr})
	defer endPool(p)
	badOutcomeScenario(t, p, name, "", func() (error, bool) {
		_, err := tortureHog.Submit(p, 64<<20).Result(context.Background())
		var ee *mproc.ExitError
		out := stderr.Take()
		// The runtime's last words: "out of memory", or under -race
		// "too many address space collisions" or the race detector's
		// own "ThreadSanitizer failed to allocate ... (errno: 12)".
		if !errors.Is(err, pool.ErrWorkerDied) || !errors.As(err, &ee) || ee.Code <= 0 ||
			!strings.Contains(out, "out of memory") && !strings.Contains(out, "address space") &&
				!strings.Contains(out, "failed to allocate") {
			return fmt.Errorf("hog: %v; stderr %.200q", err, out), false
		}
		return err, true
	})
}

// TestTortureHung runs, in each iteration, one task that sleeps for ever,
// deaf to its context, among 8 ordinary tasks, in one pool of two workers
// with TaskTimeout: the sleeper fails with context.DeadlineExceeded (not
// ErrWorkerDied), its worker is killed and replaced, the others succeed.
func TestTortureHung(t *testing.T) {
	const name = "PW7 worker hung past TaskTimeout"
	const timeout = 200 * time.Millisecond
	p := startPool(t, "", pool.Options{Workers: 2, TaskTimeout: timeout})
	defer endPool(p)
	badOutcomeScenario(t, p, name, fmt.Sprintf("TaskTimeout %v, ", timeout), func() (error, bool) {
		_, err := tortureHang.Submit(p, 0).Result(context.Background())
		if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, pool.ErrWorkerDied) {
			return fmt.Errorf("hung task: %v", err), false
		}
		return err, true
	})
}

// badOutcomeScenario runs -torture.n iterations of badOutcomeOnce with bad
// in p, closes p and reports the scenario's line, its parenthesis opening
// with detail.
func badOutcomeScenario(t *testing.T, p *pool.Pool, name, detail string, bad func() (error, bool)) {
	log := filepath.Join(t.TempDir(), "log")
	var tl tally
	pids := map[int]bool{}
	start := time.Now()
	for i := range *tortureN {
		badOutcomeOnce(t, p, log, uint64(i), &tl, pids, bad)
	}
	if err := closePool(t, p, pids); err != nil {
		tl.bad++
		t.Log(err)
	}
	tl.report(t, fmt.Sprintf("%s (%s%v)", name, detail, time.Since(start).Round(time.Millisecond)))
}

// badOutcomeOnce runs one iteration of a scenario whose task kills its
// worker (bad, which returns the task's error and whether it is the one
// the scenario promises) among 8 ordinary tasks, iteration i's, in p.
func badOutcomeOnce(t *testing.T, p *pool.Pool, log string, i uint64, tl *tally, pids map[int]bool, bad func() (error, bool)) {
	tl.iterations++
	const n = 8
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var ev events
	before := p.Workers()
	for _, w := range before {
		pids[w.Pid()] = true
		ev.watch(w)
	}
	badDone := make(chan struct {
		err error
		ok  bool
	}, 1)
	go func() {
		err, ok := bad()
		badDone <- struct {
			err error
			ok  bool
		}{err, ok}
	}()
	fs := make([]*pool.Future[tortureOut], n)
	for j := range fs {
		fs[j] = tortureTask.Submit(p, tortureArg{Seq: i*n + uint64(j), Log: log})
		fs[j].OnDone(func(_ tortureOut, err error) {
			if err == nil {
				ev.ok()
			}
		})
	}
	var res struct {
		err error
		ok  bool
	}
	select {
	case res = <-badDone:
	case <-ctx.Done():
		tl.hangs++
		t.Logf("iteration %d: the bad task has no outcome after 60 s", i)
		return
	}
	if !res.ok {
		tl.bad++
		t.Logf("iteration %d: %v", i, res.err)
		return
	}
	tl.died++
	failed := false
	for j, f := range fs {
		seq := i*n + uint64(j)
		r, err := f.Result(ctx)
		switch {
		case ctx.Err() != nil:
			tl.hangs++
			t.Logf("iteration %d: task %d has no outcome after 60 s", i, seq)
			return
		case err != nil:
			tl.lost++
			failed = true
			t.Logf("iteration %d: task %d: %v", i, seq, err)
		case r.V != tortureF(seq):
			tl.torn++
			failed = true
		default:
			pids[r.Pid] = true
		}
	}
	all := runs(t, log)
	for j := range uint64(n) {
		if nr := all[i*n+j]; nr > 1 {
			tl.dup++
			failed = true
			t.Logf("iteration %d: task %d ran %d times", i, i*n+j, nr)
		}
	}
	// One worker was killed; the pool has two again.
	kills := 0
	for _, w := range before {
		if !w.Alive() {
			kills++
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(p.Workers()) != 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if kills != 1 || len(p.Workers()) != 2 {
		tl.bad++
		t.Logf("iteration %d: %d workers died, %d live now", i, kills, len(p.Workers()))
		return
	}
	tl.kills++
	// A task after the death, so that recovery has a success to end on.
	r, err := tortureTask.Submit(p, tortureArg{Seq: 1 << 40, Log: log + ".after"}).Result(ctx)
	if err != nil || r.V != tortureF(1<<40) {
		tl.bad++
		t.Logf("iteration %d: a task after the death: %v", i, err)
		return
	}
	pids[r.Pid] = true
	ev.ok()
	rec, _ := ev.recovery()
	tl.maxRecovery = max(tl.maxRecovery, rec)
	if !failed {
		tl.survived++
	}
}
