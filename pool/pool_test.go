package pool_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"mproc"
	"mproc/pool"
)

// Tasks, registered at package level in the parent and in every worker.
var (
	double = pool.Register("double", func(ctx context.Context, x int) (int, error) { return 2 * x, nil })
	pid    = pool.Register("pid", func(ctx context.Context, _ int) (int, error) { return os.Getpid(), nil })
	fail   = pool.Register("fail", func(ctx context.Context, what string) (int, error) {
		return 0, fmt.Errorf("no %s: %w", what, os.ErrNotExist)
	})
	boom = pool.Register("boom", func(ctx context.Context, msg string) (int, error) { panicHere(msg); return 0, nil })
	// nap sleeps d, or until its context ends (then it returns the cause).
	nap = pool.Register("nap", func(ctx context.Context, d time.Duration) (int, error) {
		select {
		case <-time.After(d):
			return os.Getpid(), nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	})
	// napOrFail fails at once for a negative d, else naps.
	napOrFail = pool.Register("nap-or-fail", func(ctx context.Context, d time.Duration) (int, error) {
		if d < 0 {
			return 0, fmt.Errorf("negative nap: %w", os.ErrInvalid)
		}
		select {
		case <-time.After(d):
			return 1, nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	})
	// stubborn sleeps d, ignoring its context.
	stubborn = pool.Register("stubborn", func(ctx context.Context, d time.Duration) (int, error) {
		time.Sleep(d)
		return os.Getpid(), nil
	})
	// blocker writes its pid to the file path, then waits for its context.
	blocker = pool.Register("blocker", func(ctx context.Context, path string) (int, error) {
		if err := os.WriteFile(path+".tmp", []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
			return 0, err
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			return 0, err
		}
		<-ctx.Done()
		return 0, ctx.Err()
	})
	exit      = pool.Register("exit", func(ctx context.Context, code int) (int, error) { os.Exit(code); return 0, nil })
	badResult = pool.Register("badresult", func(ctx context.Context, x int) (withChan, error) { return withChan{C: make(chan int)}, nil })
	echoChan  = pool.Register("echochan", func(ctx context.Context, v withChan) (int, error) { return 1, nil })
	big       = pool.Register("big", func(ctx context.Context, n int) (string, error) { return strings.Repeat("x", n), nil })

	greeting string
	setup    = pool.RegisterInit("setup", func(ctx context.Context, s string) error {
		if s == "fail" {
			return errors.New("setup refused")
		}
		greeting = s
		return nil
	})
	greet = pool.Register("greet", func(ctx context.Context, name string) (string, error) { return greeting + ", " + name, nil })
)

type withChan struct{ C chan int }

func panicHere(msg string) { panic("deliberate: " + msg) }

func newPool(t *testing.T, opts pool.Options) *pool.Pool {
	t.Helper()
	p, err := pool.New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Terminate()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.Wait(ctx); err != nil {
			t.Errorf("pool Wait after Terminate: %v", err)
		}
	})
	return p
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestSubmitResult(t *testing.T) {
	p := newPool(t, pool.Options{Workers: 2})
	ctx := ctxT(t)
	var fs []*pool.Future[int]
	for i := range 100 {
		fs = append(fs, double.Submit(p, i))
	}
	for i, f := range fs {
		r, err := f.Result(ctx)
		if err != nil || r != 2*i {
			t.Fatalf("task %d: %d, %v", i, r, err)
		}
	}
	_, err := fail.Submit(p, "file").Result(ctx)
	var re *mproc.RemoteError
	if !errors.Is(err, os.ErrNotExist) || !errors.As(err, &re) || !strings.Contains(err.Error(), "no file") {
		t.Fatalf("error %v (%T), want a RemoteError matching os.ErrNotExist", err, err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := double.Submit(p, 1).Result(ctx); !errors.Is(err, pool.ErrClosed) {
		t.Fatalf("Submit after Close: %v", err)
	}
	if err := p.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(p.Workers()); n != 0 {
		t.Fatalf("%d workers after Wait", n)
	}
}

func TestPanic(t *testing.T) {
	p := newPool(t, pool.Options{Workers: 1})
	ctx := ctxT(t)
	before := p.Workers()[0].Pid()
	_, err := boom.Submit(p, "kaboom").Result(ctx)
	var pe *mproc.PanicError
	if !errors.As(err, &pe) || !strings.Contains(pe.Value, "deliberate: kaboom") || !strings.Contains(pe.Stack, "panicHere") {
		t.Fatalf("error %v (%T), want a PanicError with the stack", err, err)
	}
	if pe.Pid != before {
		t.Errorf("PanicError pid %d, worker %d", pe.Pid, before)
	}
	r, err := pid.Submit(p, 0).Result(ctx)
	if err != nil || r != before {
		t.Fatalf("after the panic: pid %d, %v; want the same worker %d", r, err, before)
	}
}

// TestQueuedTaskMovesToIdleWorker checks that a task queued behind a long
// one runs on a worker that has nothing to do: the blocker runs until it
// is cancelled, and the task sent to its worker's queue behind it must not
// wait for that (with two workers, the second one's queue).
// It does after Close too, which ends the workers once their queues are
// drained.
func TestQueuedTaskMovesToIdleWorker(t *testing.T) {
	for _, closed := range []bool{false, true} {
		t.Run(fmt.Sprintf("closed=%v", closed), func(t *testing.T) { queuedTaskMoves(t, closed) })
	}
}

func queuedTaskMoves(t *testing.T, closed bool) {
	p := newPool(t, pool.Options{Workers: 2})
	ctx := ctxT(t)
	path := filepath.Join(t.TempDir(), "pid")
	running := blocker.Submit(p, path)
	blocked := waitPid(t, path)
	fs := make([]*pool.Future[int], 7)
	for i := range fs {
		fs[i] = pid.Submit(p, i)
	}
	if closed {
		p.Close()
	}
	for i, f := range fs {
		got, err := f.Result(ctx)
		if err != nil {
			t.Fatalf("task %d: %v (queued behind the blocker, not moved?)", i, err)
		}
		if got == blocked {
			t.Fatalf("task %d ran on the blocker's worker %d", i, got)
		}
	}
	running.Cancel()
	if _, err := running.Result(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("blocker: %v, want context.Canceled", err)
	}
	if closed {
		if err := p.Wait(ctx); err != nil {
			t.Fatalf("Wait after Close: %v", err)
		}
	}
}
