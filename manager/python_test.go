package manager_test

import (
	"cmp"
	"context"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"mproc"
	"mproc/internal/testenv"
	"mproc/manager"
)

// pythons returns python3 and every Python 3 under pyenv, by version.
func pythons(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	p, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 is required by the interop tests and is not in PATH")
	}
	v, _ := exec.Command(p, "-c", "import sys; print('%d.%d' % sys.version_info[:2])").Output()
	out[strings.TrimSpace(string(v))] = p
	if root, err := exec.Command("pyenv", "root").Output(); err == nil {
		vs, _ := exec.Command("pyenv", "versions", "--bare").Output()
		for _, ver := range strings.Fields(string(vs)) {
			bin := filepath.Join(strings.TrimSpace(string(root)), "versions", ver, "bin", "python3")
			parts := strings.SplitN(ver, ".", 3)
			if _, err := os.Stat(bin); err == nil && len(parts) >= 2 && parts[0] == "3" {
				out[parts[0]+"."+parts[1]] = bin
			}
		}
	}
	vs := slices.SortedFunc(maps.Keys(out), func(a, b string) int {
		var am, an, bm, bn int
		fmt.Sscanf(a, "%d.%d", &am, &an)
		fmt.Sscanf(b, "%d.%d", &bm, &bn)
		return cmp.Or(am-bm, an-bn)
	})
	t.Logf("Python versions tested: %s", strings.Join(vs, ", "))
	return out
}

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
			pys := pythons(t)
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
	for ver, py := range pythons(t) {
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
			c, err := manager.Dial(ctx, network, addr, k)
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
