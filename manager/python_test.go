package manager_test

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"mproc"
	"mproc/internal/testenv"
	"mproc/manager"
)

// An unmodified Python SyncManager client uses a Go server's built-in
// types, on every Python here, over a Unix socket and over TCP.
func TestPythonClient(t *testing.T) {
	for _, network := range []string{"unix", "tcp"} {
		t.Run(network, func(t *testing.T) {
			addr := ""
			if network == "tcp" {
				addr = "127.0.0.1:0"
			}
			srv, err := manager.Start(context.Background(), manager.StartOptions{Network: network, Addr: addr})
			if err != nil {
				t.Fatal(err)
			}
			testenv.Reap(t, srv.Process)
			defer func() {
				if err := srv.Shutdown(ctxFor(t, 10*time.Second)); err != nil {
					t.Errorf("shutdown: %v", err)
				}
			}()
			pys := testenv.Pythons(t)
			if network == "tcp" {
				// The protocol is the same over TCP: one Python is enough.
				py, _ := exec.LookPath("python3")
				pys = map[string]string{"python3": py}
			}
			for ver, py := range pys {
				t.Run(ver, func(t *testing.T) {
					ctx := ctxFor(t, time.Minute)
					out, err := exec.CommandContext(ctx, py, "testdata/pyclient.py", network, srv.Addr, hex.EncodeToString(srv.Key)).CombinedOutput()
					if err != nil || strings.TrimSpace(string(out)) != "ok" {
						t.Fatalf("Python %s client: %v\n%s", ver, err, out)
					}
				})
			}
			c := dial(t, srv)
			if n, err := manager.NumObjects(ctxFor(t, 10*time.Second), c); err != nil || n != 0 {
				t.Errorf("objects left after the Python clients ended: %d %v", n, err)
			}
		})
	}
}

// The Go client drives an unmodified Python SyncManager, and shares a
// queue with a Python consumer, on every Python here.
func TestGoClientOfPythonServer(t *testing.T) {
	for ver, py := range testenv.Pythons(t) {
		t.Run(ver, func(t *testing.T) {
			t.Parallel()
			ctx := ctxFor(t, time.Minute)
			cmd := exec.CommandContext(ctx, py, "testdata/pyserver.py")
			stdin, err := cmd.StdinPipe()
			check(t, err)
			stdout, err := cmd.StdoutPipe()
			check(t, err)
			cmd.Stderr = os.Stderr
			check(t, cmd.Start())
			defer cmd.Wait()
			defer stdin.Close()
			var network, addr, key string
			if _, err := fmt.Fscan(stdout, &network, &addr, &key); err != nil {
				t.Fatalf("reading the Python server's address: %v", err)
			}
			k, _ := hex.DecodeString(key)
			c, err := manager.Dial(ctx, network, addr, k, nil)
			check(t, err)
			defer c.Close()

			d, err := manager.NewDict[string, []int64](ctx, c)
			check(t, err)
			check(t, d.Set(ctx, "fib", []int64{1, 1, 2, 3, 5}))
			if v, err := d.Get(ctx, "fib"); err != nil || !slices.Equal(v, []int64{1, 1, 2, 3, 5}) {
				t.Fatalf("Get from Python's dict: %v %v", v, err)
			}
			if _, err := d.Get(ctx, "nope"); !strings.Contains(fmt.Sprint(err), "KeyError") {
				t.Fatalf("Get of a missing key from Python's dict: %v", err)
			}
			if keys := iterate(t, ctx, d.Ref); !slices.Equal(keys, []any{"fib"}) {
				t.Fatalf("iter(d) over Python's dict: %v", keys)
			}
			if shm, sock := manager.Links(c); shm != 0 || sock == 0 {
				t.Fatalf("idle connections to a Python server: %d on shared memory, %d on the socket", shm, sock)
			}
			l, err := manager.NewList[string](ctx, c, "a", "b", "c")
			check(t, err)
			check(t, l.Append(ctx, "d"))
			if s, err := l.Slice(ctx, 1, 3); err != nil || !slices.Equal(s, []string{"b", "c"}) {
				t.Fatalf("Slice of Python's list: %v %v", s, err)
			}
			lock, err := manager.NewLock(ctx, c, "Lock")
			check(t, err)
			check(t, lock.Acquire(ctx))
			check(t, lock.Release(ctx))

			// The queue the Python server shares with its consumer thread,
			// which echoes each item doubled into the second queue.
			in, err := manager.Create[manager.Queue[int64]](ctx, c, "get_in")
			check(t, err)
			out, err := manager.Create[manager.Queue[int64]](ctx, c, "get_out")
			check(t, err)
			for i := range int64(50) {
				check(t, in.Put(ctx, i))
			}
			for i := range int64(50) {
				if v, err := out.Get(ctx); err != nil || v != 2*i {
					t.Fatalf("item %d back from the Python consumer: %d %v", i, v, err)
				}
			}
			for _, r := range []*manager.Ref{d.Ref, l.Ref, lock.Ref, in.Ref, out.Ref} {
				check(t, r.Close(ctx))
			}
			check(t, c.Shutdown(ctx))
		})
	}
}

var _ = mproc.ErrEmpty

// iterate follows r.__iter__(), a '#PROXY' reply naming an Iterator the
// server holds, and calls its __next__ until StopIteration.
func iterate(t *testing.T, ctx context.Context, r *manager.Ref) []any {
	t.Helper()
	v, err := r.Call(ctx, "__iter__", nil, nil)
	check(t, err)
	it, ok := v.(*manager.Ref)
	if !ok || it.Typeid() != "Iterator" {
		t.Fatalf("__iter__ returned %T %v, not a Ref of an Iterator", v, v)
	}
	defer func() { check(t, it.Close(ctx)) }()
	var out []any
	for {
		x, err := it.Call(ctx, "__next__", nil, nil)
		var re *manager.RemoteError
		if errors.As(err, &re) && re.Name == "StopIteration" {
			return out
		}
		check(t, err)
		out = append(out, x)
	}
}

func hexKey(srv *manager.Process) string { return hex.EncodeToString(srv.Key) }
