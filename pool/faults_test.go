package pool_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"mproc"
	"mproc/pool"
)

// waitPid waits for the blocker task to write its worker's pid to path.
func waitPid(t *testing.T, path string) int {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil {
			n, err := strconv.Atoi(string(b))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("blocker %s never started", path)
	return 0
}

func worker(t *testing.T, p *pool.Pool, pid int) *mproc.Process {
	t.Helper()
	for _, w := range p.Workers() {
		if w.Pid() == pid {
			return w
		}
	}
	t.Fatalf("no worker with pid %d", pid)
	return nil
}

// TestKillWorkers streams 10 000 tiny tasks through 4 workers while
// killing a worker 20 times, each time while it runs a blocker task: the
// 20 blockers fail with ErrWorkerDied, every tiny task succeeds.
func TestKillWorkers(t *testing.T) {
	const workers, tiny, kills = 4, 10000, 20
	p := newPool(t, pool.Options{Workers: workers})
	ctx := ctxT(t)
	dir := t.TempDir()

	var wg sync.WaitGroup
	tinyErrs := make(chan error, tiny)
	wg.Add(1)
	go func() {
		defer wg.Done()
		fs := make([]*pool.Future[int], 0, tiny)
		for i := range tiny {
			fs = append(fs, double.Submit(p, i))
			if i%500 == 0 {
				time.Sleep(5 * time.Millisecond) // spread the stream over the kills
			}
		}
		for i, f := range fs {
			r, err := f.Result(ctx)
			if err == nil && r != 2*i {
				err = errors.New("wrong result " + strconv.Itoa(r))
			}
			if err != nil {
				tinyErrs <- err
			}
		}
	}()

	var killed []int
	rng := rand.New(rand.NewPCG(1, 2))
	for k := range kills {
		path := filepath.Join(dir, strconv.Itoa(k))
		f := blocker.Submit(p, path)
		wpid := waitPid(t, path)
		w := worker(t, p, wpid)
		if rng.IntN(2) == 0 {
			time.Sleep(time.Duration(rng.IntN(3)) * time.Millisecond)
		}
		if err := w.Kill(); err != nil {
			t.Fatal(err)
		}
		killed = append(killed, wpid)
		_, err := f.Result(ctx)
		var ee *mproc.ExitError
		if !errors.Is(err, pool.ErrWorkerDied) || !errors.As(err, &ee) || ee.Signal != syscall.SIGKILL || ee.Pid != wpid {
			t.Fatalf("blocker %d: %v, want ErrWorkerDied with SIGKILL of pid %d", k, err, wpid)
		}
	}
	wg.Wait()
	close(tinyErrs)
	n := 0
	for err := range tinyErrs {
		if n++; n <= 5 {
			t.Errorf("tiny task failed: %v", err)
		}
	}
	if n > 0 {
		t.Fatalf("%d tiny tasks failed", n)
	}
	// Four live workers, none of them a killed one, and no zombie: a
	// killed pid is gone entirely (a zombie still answers kill 0).
	deadline := time.Now().Add(10 * time.Second)
	for len(p.Workers()) != workers && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	ws := p.Workers()
	if len(ws) != workers {
		t.Fatalf("%d live workers, want %d", len(ws), workers)
	}
	for _, w := range ws {
		for _, k := range killed {
			if w.Pid() == k {
				t.Fatalf("killed pid %d listed as live", k)
			}
		}
	}
	for _, k := range killed {
		if err := syscall.Kill(k, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("killed worker %d: kill 0: %v (a zombie?)", k, err)
		}
	}
	if r, err := double.Submit(p, 21).Result(ctx); err != nil || r != 42 {
		t.Fatalf("after the kills: %d, %v", r, err)
	}
}

func TestWorkerExit(t *testing.T) {
	p := newPool(t, pool.Options{Workers: 2})
	ctx := ctxT(t)
	_, err := exit.Submit(p, 7).Result(ctx)
	var ee *mproc.ExitError
	if !errors.Is(err, pool.ErrWorkerDied) || !errors.As(err, &ee) || ee.Code != 7 {
		t.Fatalf("os.Exit(7) in a task: %v", err)
	}
	if r, err := double.Submit(p, 2).Result(ctx); err != nil || r != 4 {
		t.Fatalf("after the exit: %d, %v", r, err)
	}
}

func TestTimeout(t *testing.T) {
	p := newPool(t, pool.Options{Workers: 1, TaskTimeout: 200 * time.Millisecond})
	ctx := ctxT(t)
	before := p.Workers()[0].Pid()
	// Cooperative: the task sees its deadline; the worker lives on.
	_, err := nap.Submit(p, time.Minute).Result(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("nap over the timeout: %v", err)
	}
	// Stubborn: the worker is killed and replaced; the next task queued
	// behind it runs in the new worker.
	start := time.Now()
	f := stubborn.Submit(p, time.Minute)
	g := pid.Submit(p, 0)
	_, err = f.Result(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, pool.ErrWorkerDied) {
		t.Fatalf("stubborn over the timeout: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("timeout took %v", d)
	}
	after, err := g.Result(ctx)
	if err != nil || after == before {
		t.Fatalf("task after the timeout: pid %d (before %d), %v", after, before, err)
	}
	if r, err := nap.Submit(p, time.Millisecond).Result(ctx); err != nil || r != after {
		t.Fatalf("short nap: %d, %v", r, err)
	}
}

func TestCancel(t *testing.T) {
	p := newPool(t, pool.Options{Workers: 1})
	ctx := ctxT(t)
	path := filepath.Join(t.TempDir(), "b")
	running := blocker.Submit(p, path)
	waitPid(t, path)
	// With one worker, the first nap is sent to it (depth two), the
	// others wait in the parent.
	sent, queued := nap.Submit(p, time.Minute), nap.Submit(p, time.Minute)
	if !queued.Cancel() {
		t.Fatal("Cancel of a queued task returned false")
	}
	if _, err := queued.Result(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("queued task: %v", err)
	}
	if !sent.Cancel() {
		t.Fatal("Cancel of a sent task returned false")
	}
	if !running.Cancel() {
		t.Fatal("Cancel of a running task returned false")
	}
	if _, err := running.Result(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("running task: %v", err)
	}
	var re *mproc.RemoteError
	if _, err := sent.Result(ctx); !errors.Is(err, context.Canceled) || errors.As(err, &re) {
		t.Fatalf("sent, not started task: %v (dropped in the worker, not run)", err)
	}
	if running.Cancel() {
		t.Error("Cancel of a done task returned true")
	}
	if r, err := double.Submit(p, 5).Result(ctx); err != nil || r != 10 {
		t.Fatalf("after the cancels: %d, %v", r, err)
	}
}

func TestMaxTasksPerWorker(t *testing.T) {
	p := newPool(t, pool.Options{Workers: 2, MaxTasksPerWorker: 3})
	ctx := ctxT(t)
	var fs []*pool.Future[int]
	for range 20 {
		fs = append(fs, pid.Submit(p, 0))
	}
	count := map[int]int{}
	for _, f := range fs {
		r, err := f.Result(ctx)
		if err != nil {
			t.Fatal(err)
		}
		count[r]++
	}
	if len(count) < 7 {
		t.Fatalf("20 tasks ran in %d processes, want at least 7: %v", len(count), count)
	}
	for pid, n := range count {
		if n > 3 {
			t.Errorf("worker %d ran %d tasks", pid, n)
		}
	}
}

func TestCloseFinishesQueued(t *testing.T) {
	p := newPool(t, pool.Options{Workers: 2})
	ctx := ctxT(t)
	var fs []*pool.Future[int]
	for range 20 {
		fs = append(fs, nap.Submit(p, 10*time.Millisecond))
	}
	p.Close()
	if err := p.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	for i, f := range fs {
		select {
		case <-f.Done():
		default:
			t.Fatalf("future %d not done after Wait", i)
		}
		if _, err := f.Result(ctx); err != nil {
			t.Fatalf("task %d: %v", i, err)
		}
	}
	if len(mproc.Children()) != 0 {
		t.Fatalf("children left: %v", mproc.Children())
	}
}

func TestTerminate(t *testing.T) {
	p := newPool(t, pool.Options{Workers: 2})
	ctx := ctxT(t)
	path := filepath.Join(t.TempDir(), "b")
	running := blocker.Submit(p, path)
	waitPid(t, path)
	var fs []*pool.Future[int]
	for range 10 {
		fs = append(fs, nap.Submit(p, time.Minute))
	}
	ws := p.Workers()
	p.Terminate()
	if err := p.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	for i, f := range append(fs, running) {
		if _, err := f.Result(ctx); !errors.Is(err, pool.ErrTerminated) {
			t.Fatalf("future %d: %v", i, err)
		}
	}
	for _, w := range ws {
		if w.Alive() {
			t.Fatalf("worker %d alive after Terminate and Wait", w.Pid())
		}
	}
	if _, err := double.Submit(p, 1).Result(ctx); !errors.Is(err, pool.ErrClosed) {
		t.Fatalf("Submit after Terminate: %v", err)
	}
}

func TestContextEndsPool(t *testing.T) {
	pctx, cancel := context.WithCancel(context.Background())
	p, err := pool.New(pctx, pool.Options{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	f := nap.Submit(p, time.Minute)
	cancel()
	if _, err := f.Result(ctx); !errors.Is(err, pool.ErrTerminated) || !errors.Is(err, context.Canceled) {
		t.Fatalf("after the pool's context ended: %v", err)
	}
	if err := p.Wait(ctx); err != nil {
		t.Fatal(err)
	}
}
