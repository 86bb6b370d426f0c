package manager_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"mproc"
	"mproc/internal/testenv"
	"mproc/manager"
	"mproc/pickle"
)

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// startServer starts a manager server in a child process, shut down when
// t ends.
func startServer(t *testing.T) *manager.Process {
	t.Helper()
	srv, err := manager.Start(context.Background(), manager.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Reap(t, srv.Process)
	t.Cleanup(func() { srv.Shutdown(ctxFor(t, 10*time.Second)) })
	return srv
}

func dial(t *testing.T, srv *manager.Process) *manager.Client {
	t.Helper()
	c, err := manager.Dial(ctxFor(t, 10*time.Second), srv.Network, srv.Addr, srv.Key, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func check(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

type point struct {
	X, Y int
	Tag  string
}

func TestDictAndList(t *testing.T) {
	srv := startServer(t)
	c := dial(t, srv)
	ctx := ctxFor(t, 30*time.Second)

	d, err := manager.NewDict[string, point](ctx, c)
	check(t, err)
	check(t, d.Set(ctx, "a", point{1, 2, "one"}))
	check(t, d.Set(ctx, "b", point{3, 4, "two"}))
	if p, err := d.Get(ctx, "a"); err != nil || p != (point{1, 2, "one"}) {
		t.Fatalf("Get a: %+v %v", p, err)
	}
	if _, err := d.Get(ctx, "zz"); !errors.Is(err, manager.ErrNotFound) {
		t.Fatalf("Get of a missing key: %v", err)
	}
	var re *manager.RemoteError
	if _, err := d.Get(ctx, "zz"); !errors.As(err, &re) || re.Name != "KeyError" {
		t.Fatalf("Get of a missing key: %v, want a KeyError", err)
	}
	if n, err := d.Len(ctx); err != nil || n != 2 {
		t.Fatalf("Len: %d %v", n, err)
	}
	if v, err := d.SetDefault(ctx, "c", point{Tag: "default"}); err != nil || v.Tag != "default" {
		t.Fatalf("SetDefault: %+v %v", v, err)
	}
	check(t, d.Update(ctx, map[string]point{"d": {Tag: "four"}}))
	items, err := d.Items(ctx)
	check(t, err)
	var keys []string
	for k := range items {
		keys = append(keys, k)
	}
	if !slices.Equal(keys, []string{"a", "b", "c", "d"}) {
		t.Fatalf("keys in order: %v", keys)
	}
	if v, err := d.Pop(ctx, "b"); err != nil || v.Tag != "two" {
		t.Fatalf("Pop: %+v %v", v, err)
	}
	check(t, d.Delete(ctx, "a"))
	if ok, err := d.Contains(ctx, "a"); err != nil || ok {
		t.Fatalf("Contains after Delete: %v %v", ok, err)
	}

	l, err := manager.NewList[int64](ctx, c, 1, 2, 3)
	check(t, err)
	check(t, l.Append(ctx, 4))
	check(t, l.Extend(ctx, 5, 6))
	check(t, l.Insert(ctx, 0, 0))
	if v, err := l.Get(ctx, -1); err != nil || v != 6 {
		t.Fatalf("Get -1: %v %v", v, err)
	}
	if s, err := l.Slice(ctx, 1, 3); err != nil || !slices.Equal(s, []int64{1, 2}) {
		t.Fatalf("Slice: %v %v", s, err)
	}
	check(t, l.Remove(ctx, 3))
	if v, err := l.Pop(ctx, -1); err != nil || v != 6 {
		t.Fatalf("Pop: %v %v", v, err)
	}
	all, err := l.All(ctx)
	if err != nil || !slices.Equal(all, []int64{0, 1, 2, 4, 5}) {
		t.Fatalf("All: %v %v", all, err)
	}
	if _, err := l.Get(ctx, 99); !errors.As(err, &re) || re.Name != "IndexError" {
		t.Fatalf("Get out of range: %v", err)
	}

	ns, err := manager.NewNamespace(ctx, c, map[string]any{"x": int64(1)})
	check(t, err)
	check(t, ns.Set(ctx, "y", "why"))
	if v, err := ns.Get(ctx, "y"); err != nil || v != "why" {
		t.Fatalf("Namespace y: %v %v", v, err)
	}
	if _, err := ns.Get(ctx, "nope"); !errors.Is(err, manager.ErrNotFound) {
		t.Fatalf("Namespace missing: %v", err)
	}
	for _, r := range []*manager.Ref{d.Ref, l.Ref, ns.Ref} {
		check(t, r.Close(ctx))
	}
}

var incrementFn = mproc.Register("manager-test-increment", func(ctx context.Context, a incArg) error {
	c, err := manager.Dial(ctx, a.Network, a.Addr, a.Key, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	d, err := manager.Attach[manager.Dict[string, int64]](ctx, c, a.Dict)
	if err != nil {
		return err
	}
	l, err := manager.Attach[manager.Lock](ctx, c, a.Lock)
	if err != nil {
		return err
	}
	for range a.N {
		if err := l.Acquire(ctx); err != nil {
			return err
		}
		v, err := d.Get(ctx, "n")
		if err != nil {
			return err
		}
		if err := d.Set(ctx, "n", v+1); err != nil {
			return err
		}
		if err := l.Release(ctx); err != nil {
			return err
		}
	}
	return nil
})

type incArg struct {
	Network, Addr string
	Key           []byte
	Dict, Lock    string
	N             int
}

// Processes increment one dict value under the manager's Lock: no update
// is lost.
func TestLockedIncrementsAcrossProcesses(t *testing.T) {
	srv := startServer(t)
	c := dial(t, srv)
	ctx := ctxFor(t, 5*time.Minute)
	d, err := manager.NewDict[string, int64](ctx, c)
	check(t, err)
	check(t, d.Set(ctx, "n", 0))
	l, err := manager.NewLock(ctx, c, "Lock")
	check(t, err)
	procs, n := 8, 300
	if s := os.Getenv("MPROC_MANAGER_INCREMENTS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	var ps []*mproc.Process
	for range procs {
		p, err := incrementFn.Start(ctx, incArg{srv.Network, srv.Addr, srv.Key, d.ID(), l.ID(), n}, mproc.ProcOptions{})
		check(t, err)
		testenv.Reap(t, p)
		ps = append(ps, p)
	}
	for _, p := range ps {
		check(t, testenv.Wait(t, p))
	}
	if v, err := d.Get(ctx, "n"); err != nil || v != int64(procs*n) {
		t.Fatalf("after %d × %d locked increments: %d %v", procs, n, v, err)
	}
}

var holdLockFn = mproc.Register("manager-test-hold-lock", func(ctx context.Context, a incArg) error {
	c, err := manager.Dial(ctx, a.Network, a.Addr, a.Key, nil)
	if err != nil {
		return err
	}
	l, err := manager.Attach[manager.Lock](ctx, c, a.Lock)
	if err != nil {
		return err
	}
	if err := l.Acquire(ctx); err != nil {
		return err
	}
	fmt.Println("held")
	select {}
})

// A client that dies holding a lock does not keep it: its connection ends
// and the server releases what it held.
func TestDeadClientReleasesLock(t *testing.T) {
	srv := startServer(t)
	c := dial(t, srv)
	ctx := ctxFor(t, 30*time.Second)
	l, err := manager.NewLock(ctx, c, "Lock")
	check(t, err)
	r, w, err := os.Pipe()
	check(t, err)
	p, err := holdLockFn.Start(ctx, incArg{Network: srv.Network, Addr: srv.Addr, Key: srv.Key, Lock: l.ID()}, mproc.ProcOptions{Stdout: w})
	check(t, err)
	w.Close()
	testenv.Reap(t, p)
	buf := make([]byte, 5)
	if _, err := r.Read(buf); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := l.Acquire(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Acquire of a lock a live client holds: %v", err)
	}
	p.Kill()
	testenv.Wait(t, p)
	t0 := time.Now()
	check(t, l.Acquire(ctx))
	t.Logf("acquired %v after the holder was killed", time.Since(t0))
	check(t, l.Release(ctx))
}

func TestQueueAndEvent(t *testing.T) {
	srv := startServer(t)
	c := dial(t, srv)
	ctx := ctxFor(t, 30*time.Second)
	q, err := manager.NewQueue[string](ctx, c, 2)
	check(t, err)
	check(t, q.Put(ctx, "a"))
	check(t, q.Put(ctx, "b"))
	if err := q.TryPut(ctx, "c"); !errors.Is(err, mproc.ErrFull) {
		t.Fatalf("TryPut into a full queue: %v", err)
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if err := q.Put(short, "c"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Put into a full queue past its context: %v", err)
	}
	for _, want := range []string{"a", "b"} {
		if v, err := q.Get(ctx); err != nil || v != want {
			t.Fatalf("Get: %q %v, want %q", v, err, want)
		}
		check(t, q.TaskDone(ctx))
	}
	if _, err := q.TryGet(ctx); !errors.Is(err, mproc.ErrEmpty) {
		t.Fatalf("TryGet of an empty queue: %v", err)
	}
	check(t, q.Join(ctx))

	e, err := manager.NewEvent(ctx, c)
	check(t, err)
	go func() { time.Sleep(50 * time.Millisecond); e.Set(ctx) }()
	check(t, e.Wait(ctx))
	if ok, err := e.IsSet(ctx); err != nil || !ok {
		t.Fatalf("IsSet: %v %v", ok, err)
	}
}

// References: an object lives while it is referenced, and create and
// decref cycles leave the server holding nothing (2 000 in CI;
// MPROC_MANAGER_CYCLES=10000 for the count).
func TestReferences(t *testing.T) {
	srv := startServer(t)
	c := dial(t, srv)
	ctx := ctxFor(t, 5*time.Minute)
	cycles := 2000
	if s := os.Getenv("MPROC_MANAGER_CYCLES"); s != "" {
		cycles, _ = strconv.Atoi(s)
	}
	for range cycles {
		d, err := manager.NewDict[string, int](ctx, c)
		check(t, err)
		check(t, d.Close(ctx))
	}
	n, err := manager.NumObjects(ctx, c)
	if err != nil || n != 0 {
		t.Fatalf("objects after create/decref cycles: %d %v", n, err)
	}
	d, err := manager.NewDict[string, int](ctx, c)
	check(t, err)
	check(t, d.Close(ctx))
	if err := d.Set(ctx, "x", 1); err == nil {
		t.Fatal("a freed object still answers")
	}
}

// The server dying mid-call gives ErrServerGone, not a hang.
func TestServerGone(t *testing.T) {
	srv := startServer(t)
	c := dial(t, srv)
	ctx := ctxFor(t, 30*time.Second)
	q, err := manager.NewQueue[int](ctx, c, 0)
	check(t, err)
	got := make(chan error, 1)
	go func() { _, err := q.Get(ctx); got <- err }()
	time.Sleep(100 * time.Millisecond)
	srv.Kill()
	select {
	case err := <-got:
		if !errors.Is(err, manager.ErrServerGone) {
			t.Fatalf("Get while the server died: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Get hung after the server died")
	}
	if _, err := manager.Dial(ctx, srv.Network, srv.Addr, srv.Key, nil); !errors.Is(err, manager.ErrServerGone) {
		t.Fatalf("Dial of a dead server: %v", err)
	}
}

func TestWrongKey(t *testing.T) {
	srv := startServer(t)
	if _, err := manager.Dial(ctxFor(t, 10*time.Second), srv.Network, srv.Addr, []byte("wrong"), nil); !errors.Is(err, mproc.ErrAuth) {
		t.Fatalf("Dial with a wrong key: %v", err)
	}
}

// Malformed requests get a '#TRACEBACK' reply, and the server goes on.
func TestMalformedRequests(t *testing.T) {
	srv := startServer(t)
	ctx := ctxFor(t, 30*time.Second)
	for _, req := range [][]byte{
		[]byte("not a pickle"),
		mustPickle(t, "just a string"),
		mustPickle(t, pickle.Tuple{nil, int64(5), pickle.Tuple{}, map[any]any{}}),
		mustPickle(t, pickle.Tuple{nil, "nosuchcall", pickle.Tuple{}, map[any]any{}}),
		mustPickle(t, pickle.Tuple{"beef", "get", pickle.Tuple{}, map[any]any{}}),
		{0x80, 0x04, 0x93}, // STACK_GLOBAL on an empty stack
		{0x80, 0x04, 0x63, 'o', 's', '\n', 's', 'y', 's', 't', 'e', 'm', '\n', 0x85, 0x52, 0x2e}, // os.system
	} {
		conn, err := mproc.Dial(ctx, srv.Network, srv.Addr, srv.Key)
		check(t, err)
		check(t, conn.SendBytes(ctx, req))
		b, err := conn.RecvBytes(ctx)
		if err != nil {
			t.Fatalf("request % x: no reply: %v", req, err)
		}
		var v pickle.Tuple
		if err := pickle.Unmarshal(b, &v); err != nil || len(v) != 2 || v[0] != "#TRACEBACK" {
			t.Fatalf("request % x: reply %v %v, want a '#TRACEBACK'", req, v, err)
		}
		conn.Close()
	}
	c := dial(t, srv)
	d, err := manager.NewDict[string, int](ctx, c)
	check(t, err)
	check(t, d.Set(ctx, "still", 1))
}

func mustPickle(t *testing.T, v any) []byte {
	b, err := pickle.Marshal(v)
	check(t, err)
	return b
}

var holdRefFn = mproc.Register("manager-test-hold-ref", func(ctx context.Context, a incArg) error {
	c, err := manager.Dial(ctx, a.Network, a.Addr, a.Key, nil)
	if err != nil {
		return err
	}
	if _, err := manager.NewDict[string, int](ctx, c); err != nil {
		return err
	}
	fmt.Println("held")
	select {}
})

// A client process that dies holding references (it never called decref)
// does not leak them: the server drops them once it sees the process gone.
func TestDeadClientReleasesReferences(t *testing.T) {
	srv := startServer(t)
	c := dial(t, srv)
	ctx := ctxFor(t, 30*time.Second)
	r, w, err := os.Pipe()
	check(t, err)
	p, err := holdRefFn.Start(ctx, incArg{Network: srv.Network, Addr: srv.Addr, Key: srv.Key}, mproc.ProcOptions{Stdout: w})
	check(t, err)
	w.Close()
	testenv.Reap(t, p)
	if _, err := r.Read(make([]byte, 5)); err != nil {
		t.Fatal(err)
	}
	if n, err := manager.NumObjects(ctx, c); err != nil || n != 1 {
		t.Fatalf("objects while the client lives: %d %v", n, err)
	}
	p.Kill()
	testenv.Wait(t, p)
	t0 := time.Now()
	for {
		n, err := manager.NumObjects(ctx, c)
		check(t, err)
		if n == 0 {
			break
		}
		if time.Since(t0) > 10*time.Second {
			t.Fatalf("%d objects still held 10 s after their client died", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("references dropped %v after the client died", time.Since(t0))
}

var barrierFn = mproc.Register("manager-test-barrier", func(ctx context.Context, a incArg) error {
	c, err := manager.Dial(ctx, a.Network, a.Addr, a.Key, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	b, err := manager.Attach[manager.Barrier](ctx, c, a.Lock)
	if err != nil {
		return err
	}
	_, err = b.Wait(ctx)
	return err
})

var notifyFn = mproc.Register("manager-test-notify", func(ctx context.Context, a incArg) error {
	c, err := manager.Dial(ctx, a.Network, a.Addr, a.Key, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	cv, err := manager.Attach[manager.Condition](ctx, c, a.Lock)
	if err != nil {
		return err
	}
	d, err := manager.Attach[manager.Dict[string, int64]](ctx, c, a.Dict)
	if err != nil {
		return err
	}
	if err := cv.Acquire(ctx); err != nil {
		return err
	}
	if err := d.Set(ctx, "ready", 1); err != nil {
		return err
	}
	if err := cv.NotifyAll(ctx); err != nil {
		return err
	}
	return cv.Release(ctx)
})

func TestBarrierAndCondition(t *testing.T) {
	srv := startServer(t)
	c := dial(t, srv)
	ctx := ctxFor(t, 30*time.Second)
	b, err := manager.NewBarrier(ctx, c, 3)
	check(t, err)
	var ps []*mproc.Process
	for range 2 {
		p, err := barrierFn.Start(ctx, incArg{Network: srv.Network, Addr: srv.Addr, Key: srv.Key, Lock: b.ID()}, mproc.ProcOptions{})
		check(t, err)
		testenv.Reap(t, p)
		ps = append(ps, p)
	}
	if i, err := b.Wait(ctx); err != nil || i < 0 || i > 2 {
		t.Fatalf("Barrier.Wait: %d %v", i, err)
	}
	for _, p := range ps {
		check(t, testenv.Wait(t, p))
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := b.Wait(short); !errors.Is(err, mproc.ErrBrokenBarrier) && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Barrier.Wait alone past its deadline: %v", err)
	}

	cv, err := manager.NewCondition(ctx, c)
	check(t, err)
	d, err := manager.NewDict[string, int64](ctx, c)
	check(t, err)
	check(t, cv.Acquire(ctx))
	p, err := notifyFn.Start(ctx, incArg{Network: srv.Network, Addr: srv.Addr, Key: srv.Key, Lock: cv.ID(), Dict: d.ID()}, mproc.ProcOptions{})
	check(t, err)
	testenv.Reap(t, p)
	for {
		ok, err := d.Contains(ctx, "ready")
		check(t, err)
		if ok {
			break
		}
		check(t, cv.Wait(ctx))
	}
	check(t, cv.Release(ctx))
	check(t, testenv.Wait(t, p))
}
