package cluster_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"mproc"
	"mproc/cluster"
	"mproc/internal/testenv"
)

// Tests with real processes: the test binary re-executed (mproc.Register)
// as a pool worker or a queue consumer, connected to the test's embedded
// server over loopback TCP, and killed with SIGKILL mid-task.

type childArg struct {
	URL  string
	Name string // pool or queue
	Dir  string // where the child reports
}

// workerChild serves a pool until it is terminated or killed.
var workerChild = mproc.Register("cluster-test.worker", func(ctx context.Context, a childArg) error {
	c, err := cluster.Connect(ctx, cluster.Options{URLs: []string{a.URL}})
	if err != nil {
		return err
	}
	defer c.Close()
	return cluster.Serve(ctx, c, cluster.ServeOptions{Pool: a.Name, Workers: 1})
})

// consumerChild takes one message of a queue, reports it and its pid in
// Dir/got, and holds it until it is killed.
var consumerChild = mproc.Register("cluster-test.consumer", func(ctx context.Context, a childArg) error {
	c, err := cluster.Connect(ctx, cluster.Options{URLs: []string{a.URL}})
	if err != nil {
		return err
	}
	defer c.Close()
	q, err := cluster.OpenQueue[string](ctx, c, a.Name, cluster.QueueOptions{})
	if err != nil {
		return err
	}
	v, err := q.Get(ctx)
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(a.Dir, "got"), strconv.Itoa(os.Getpid())+" "+v); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
})

// blockOnce blocks in the first worker that runs it, after reporting
// that worker's pid in dir/pid; later runs return their worker's pid.
var blockOnce = cluster.Register("test.blockonce", func(ctx context.Context, dir string) (int, error) {
	f, err := os.OpenFile(filepath.Join(dir, "claim"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return os.Getpid(), nil
	}
	f.Close()
	if err := writeFile(filepath.Join(dir, "pid"), strconv.Itoa(os.Getpid())); err != nil {
		return 0, err
	}
	<-ctx.Done()
	return 0, ctx.Err()
})

func startChild(t *testing.T, fn *mproc.Func[childArg], a childArg) *mproc.Process {
	t.Helper()
	p, err := fn.Start(context.Background(), a, mproc.ProcOptions{})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Reap(t, p)
	return p
}

func stopChild(t *testing.T, p *mproc.Process) {
	t.Helper()
	p.Terminate()
	testenv.Wait(t, p)
}

func kill(t *testing.T, p *mproc.Process) {
	t.Helper()
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	testenv.Wait(t, p)
}

// TestWorkerKilled: two worker processes serve a pool; the one running a
// task is killed; the task is started again on the other, whose result
// the future gets.
func TestWorkerKilled(t *testing.T) {
	ctx := ctxT(t)
	c := embedded(t, cluster.Options{Listen: "127.0.0.1:0"})
	p, err := cluster.OpenPool(ctx, c, "kill", cluster.PoolOptions{Storage: cluster.Storage{AckWait: 2 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Terminate()
	dir := t.TempDir()
	a := childArg{URL: c.URL(), Name: "kill", Dir: dir}
	w1, w2 := startChild(t, workerChild, a), startChild(t, workerChild, a)
	f := blockOnce.Submit(p, dir)
	pid, _ := strconv.Atoi(waitFile(t, filepath.Join(dir, "pid")))
	victim, survivor := w1, w2
	if pid == w2.Pid() {
		victim, survivor = w2, w1
	} else if pid != w1.Pid() {
		t.Fatalf("task ran in pid %d, not a worker (%d, %d)", pid, w1.Pid(), w2.Pid())
	}
	start := time.Now()
	kill(t, victim)
	r, err := f.Result(ctx)
	if err != nil || r != survivor.Pid() {
		t.Fatalf("after the kill: %d, %v; want the survivor's pid %d", r, err, survivor.Pid())
	}
	t.Logf("task redelivered and done %v after its worker's SIGKILL (AckWait 2s)", time.Since(start))
	stopChild(t, survivor)
}

// TestWorkerKilledFails: with MaxDeliver 1 a worker's death fails the task
// with ErrWorkerDied, as in the local pool.
func TestWorkerKilledFails(t *testing.T) {
	ctx := ctxT(t)
	c := embedded(t, cluster.Options{Listen: "127.0.0.1:0"})
	p, err := cluster.OpenPool(ctx, c, "killfail", cluster.PoolOptions{MaxDeliver: 1, Storage: cluster.Storage{AckWait: 2 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Terminate()
	dir := t.TempDir()
	a := childArg{URL: c.URL(), Name: "killfail", Dir: dir}
	w1 := startChild(t, workerChild, a)
	f := blockOnce.Submit(p, dir)
	waitFile(t, filepath.Join(dir, "pid"))
	kill(t, w1)
	w2 := startChild(t, workerChild, a)
	_, err = f.Result(ctx)
	if !errors.Is(err, cluster.ErrWorkerDied) {
		t.Fatalf("after the kill: %v; want ErrWorkerDied", err)
	}
	t.Logf("future: %v", err)
	// The pool goes on.
	if r, err := double.Submit(p, 4).Result(ctx); err != nil || r != 8 {
		t.Fatalf("double(4) after the death: %d, %v", r, err)
	}
	stopChild(t, w2)
}

// TestConsumerKilled: a consumer process dies holding a message; the
// message is delivered again, as its second attempt.
func TestConsumerKilled(t *testing.T) {
	ctx := ctxT(t)
	c := embedded(t, cluster.Options{Listen: "127.0.0.1:0"})
	q, err := cluster.CreateQueue[string](ctx, c, "held", 0, cluster.QueueOptions{Storage: cluster.Storage{AckWait: 2 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if err := q.Put(ctx, "precious"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ch := startChild(t, consumerChild, childArg{URL: c.URL(), Name: "held", Dir: dir})
	got := waitFile(t, filepath.Join(dir, "got"))
	if want := strconv.Itoa(ch.Pid()) + " precious"; got != want {
		t.Fatalf("child reported %q, want %q", got, want)
	}
	if _, err := q.TryGet(ctx); !errors.Is(err, cluster.ErrEmpty) {
		t.Fatalf("TryGet while the child holds the message: %v", err)
	}
	kill(t, ch)
	d, err := q.Receive(ctx)
	if err != nil || d.Value != "precious" || d.Attempt() != 2 {
		t.Fatalf("Receive after the kill: %+v, %v", d, err)
	}
	if err := d.Done(ctx); err != nil {
		t.Fatal(err)
	}
	if err := q.Join(ctx); err != nil {
		t.Fatal(err)
	}
}
