package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"mproc"
	"mproc/cluster"
	"mproc/internal/testenv"
)

var errNoSuchThing = errors.New("test: no such thing")

func init() { cluster.RegisterError(errNoSuchThing) }

var (
	double = cluster.Register("test.double", func(ctx context.Context, x int) (int, error) { return 2 * x, nil })
	fail   = cluster.Register("test.fail", func(ctx context.Context, kind string) (string, error) {
		switch kind {
		case "full":
			return "", fmt.Errorf("wrapped: %w", mproc.ErrFull)
		case "mine":
			return "", fmt.Errorf("lookup: %w", errNoSuchThing)
		case "both":
			return "", errors.Join(errNoSuchThing, os.ErrNotExist)
		case "plain":
			return "", errors.New("plain failure")
		case "panic":
			panic("boom")
		case "wait":
			<-ctx.Done()
			return "", ctx.Err()
		}
		return kind, nil
	})
)

// serve runs an in-process worker for the test.
func serve(t *testing.T, c *cluster.Conn, opts cluster.ServeOptions) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := cluster.Serve(ctx, c, opts); err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
}

func TestPoolInProcess(t *testing.T) {
	testenv.CheckFDLeaks(t)
	ctx := ctxT(t)
	c := embedded(t, cluster.Options{})
	serve(t, c, cluster.ServeOptions{Pool: "inproc", Workers: 2})
	p, err := cluster.OpenPool(ctx, c, "inproc", cluster.PoolOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Terminate()
	if r, err := double.Submit(p, 21).Result(ctx); err != nil || r != 42 {
		t.Fatalf("double(21) = %d, %v", r, err)
	}
	xs := make([]int, 1000)
	for i := range xs {
		xs[i] = i
	}
	rs, err := double.Map(ctx, p, xs)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rs {
		if r != 2*i {
			t.Fatalf("Map[%d] = %d", i, r)
		}
	}
	sum := 0
	for r, err := range double.MapUnordered(ctx, p, xs, cluster.ChunkSize(7)) {
		if err != nil {
			t.Fatal(err)
		}
		sum += r
	}
	if sum != 999*1000 {
		t.Fatalf("MapUnordered sum = %d", sum)
	}

	_, err = fail.Submit(p, "full").Result(ctx)
	var re *cluster.RemoteError
	if !errors.Is(err, mproc.ErrFull) || !errors.As(err, &re) || re.Pid != os.Getpid() {
		t.Errorf("full: %v (%#v)", err, re)
	}
	if _, err := fail.Submit(p, "mine").Result(ctx); !errors.Is(err, errNoSuchThing) {
		t.Errorf("mine: %v", err)
	}
	if _, err := fail.Submit(p, "both").Result(ctx); !errors.Is(err, errNoSuchThing) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("both: %v", err)
	}
	_, err = fail.Submit(p, "plain").Result(ctx)
	if !errors.As(err, &re) || re.Err != nil || re.Msg != "plain failure" {
		t.Errorf("plain: %v", err)
	}
	_, err = fail.Submit(p, "panic").Result(ctx)
	var pe *cluster.PanicError
	if !errors.As(err, &pe) || pe.Value != "boom" || pe.Stack == "" {
		t.Errorf("panic: %v", err)
	}
	f := fail.Submit(p, "wait")
	if !f.Cancel() {
		t.Error("Cancel of a pending task reported false")
	}
	if _, err := f.Result(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	p.Close()
	if _, err := double.Submit(p, 1).Result(ctx); !errors.Is(err, cluster.ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
	if err := p.Wait(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestPoolFaults(t *testing.T) {
	ctx := ctxT(t)
	c := embedded(t, cluster.Options{})
	serve(t, c, cluster.ServeOptions{Pool: "faults", Workers: 2})
	p, err := cluster.OpenPool(ctx, c, "faults", cluster.PoolOptions{TaskTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Terminate()
	// Unknown to the workers.
	_, err = cluster.Unregistered[int, int]("test.nowhere").Submit(p, 1).Result(ctx)
	if !errors.Is(err, cluster.ErrNotRegistered) {
		t.Errorf("unregistered task: %v", err)
	}
	// Over TaskTimeout, one task and each element of a Map.
	if _, err := fail.Submit(p, "wait").Result(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("TaskTimeout: %v", err)
	}
	_, err = fail.Map(ctx, p, []string{"ok", "wait", "ok"})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "element 1") {
		t.Errorf("Map with a slow element: %v", err)
	}
	// Too large an argument fails its future alone.
	big := strings.Repeat("x", 2<<20)
	if _, err := fail.Submit(p, big).Result(ctx); !errors.Is(err, cluster.ErrTooLarge) {
		t.Errorf("2 MiB argument: %v", err)
	}
	// Errors per element of a Map keep their identity.
	var errs []error
	for _, err := range fail.MapUnordered(ctx, p, []string{"full", "mine", "x"}, cluster.ChunkSize(3)) {
		errs = append(errs, err)
	}
	if len(errs) != 3 || !errors.Is(errs[0], mproc.ErrFull) || !errors.Is(errs[1], errNoSuchThing) || errs[2] != nil {
		t.Errorf("MapUnordered errors: %v", errs)
	}
	// Terminate fails what is pending.
	f := fail.Submit(p, "wait")
	p.Terminate()
	if _, err := f.Result(ctx); !errors.Is(err, cluster.ErrTerminated) {
		t.Errorf("after Terminate: %v", err)
	}
	if err := p.Wait(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestServeConnClosed: Serve ends with os.ErrClosed when its connection
// is closed under it.
func TestServeConnClosed(t *testing.T) {
	ctx := ctxT(t)
	c, err := cluster.Connect(ctx, cluster.Options{})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- cluster.Serve(ctx, c, cluster.ServeOptions{Pool: "closing", Workers: 2}) }()
	time.Sleep(100 * time.Millisecond)
	c.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, os.ErrClosed) {
			t.Fatalf("Serve after Close: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("Serve hangs after its connection's Close")
	}
}
