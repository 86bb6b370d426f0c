package manager_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"mproc"
	"mproc/internal/testenv"
	"mproc/manager"
)

// The shared-memory path carries the same calls as the socket: small and
// chunked messages, errors, and it leaves nothing in /dev/shm.
func TestSharedMemoryPath(t *testing.T) {
	srv := startServer(t)
	before := managerSegments(t)
	for _, socketOnly := range []bool{false, true} {
		t.Run(fmt.Sprintf("SocketOnly=%v", socketOnly), func(t *testing.T) {
			ctx := ctxFor(t, 30*time.Second)
			c, err := manager.Dial(ctx, srv.Network, srv.Addr, srv.Key, &manager.DialOptions{SocketOnly: socketOnly})
			check(t, err)
			defer c.Close()
			d, err := manager.NewDict[string, []byte](ctx, c)
			check(t, err)
			defer d.Close(ctx)
			big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB: 17 chunks each way
			for _, v := range [][]byte{[]byte("small"), big, {}} {
				check(t, d.Set(ctx, "k", v))
				got, err := d.Get(ctx, "k")
				if err != nil || !bytes.Equal(got, v) {
					t.Fatalf("Get of %d bytes: %d bytes, %v", len(v), len(got), err)
				}
			}
			var re *manager.RemoteError
			if _, err := d.Get(ctx, "missing"); !errors.As(err, &re) || re.Name != "KeyError" {
				t.Fatalf("Get of a missing key: %v", err)
			}
			shm, sock := manager.Links(c)
			if want := !socketOnly; (shm > 0) != want || (sock > 0) == want {
				t.Fatalf("idle connections: %d on shared memory, %d on the socket; SocketOnly=%v", shm, sock, socketOnly)
			}
		})
	}
	if after := managerSegments(t); after != before {
		t.Fatalf("segments in /dev/shm: %d before, %d after", before, after)
	}
}

// A TCP client keeps to the socket.
func TestSharedMemoryPathNotOverTCP(t *testing.T) {
	ctx := ctxFor(t, 30*time.Second)
	srv, err := manager.Start(ctx, manager.StartOptions{Network: "tcp", Addr: "127.0.0.1:0"})
	check(t, err)
	testenv.Reap(t, srv.Process)
	defer srv.Shutdown(ctx)
	c, err := manager.Dial(ctx, srv.Network, srv.Addr, srv.Key, nil)
	check(t, err)
	defer c.Close()
	l, err := manager.NewList[int64](ctx, c, 1, 2)
	check(t, err)
	if n, err := l.Len(ctx); n != 2 || err != nil {
		t.Fatalf("Len: %d %v", n, err)
	}
	if shm, sock := manager.Links(c); shm != 0 || sock != 1 {
		t.Fatalf("idle connections: %d on shared memory, %d on the socket", shm, sock)
	}
}

func managerSegments(t *testing.T) int {
	t.Helper()
	m, err := filepath.Glob("/dev/shm/*mproc-manager-*")
	check(t, err)
	return len(m)
}

var blockedGetFn = mproc.Register("manager-test-blocked-get", func(ctx context.Context, a getArg) error {
	c, err := manager.Dial(ctx, a.Network, a.Addr, a.Key, &manager.DialOptions{SocketOnly: a.SocketOnly})
	if err != nil {
		return err
	}
	q, err := manager.Attach[manager.Queue[string]](ctx, c, a.Queue)
	if err != nil {
		return err
	}
	fmt.Println("getting")
	// A get with no timeout, as Python's q.get() sends it.
	_, err = q.Call(ctx, "get", []any{true, nil}, nil)
	return err
})

type getArg struct {
	Network, Addr string
	Key           []byte
	Queue         string
	SocketOnly    bool
}

// A client killed while blocked in a queue's get must not take the next
// item with it: the server notices the connection's end and abandons the
// call before the item comes.
func TestDeadClientDoesNotTakeQueueItem(t *testing.T) {
	srv := startServer(t)
	c := dial(t, srv)
	for _, socketOnly := range []bool{false, true} {
		t.Run(fmt.Sprintf("SocketOnly=%v", socketOnly), func(t *testing.T) {
			ctx := ctxFor(t, 30*time.Second)
			q, err := manager.NewQueue[string](ctx, c, 0)
			check(t, err)
			defer q.Close(ctx)
			r, w, err := os.Pipe()
			check(t, err)
			defer r.Close()
			p, err := blockedGetFn.Start(ctx, getArg{srv.Network, srv.Addr, srv.Key, q.ID(), socketOnly}, mproc.ProcOptions{Stdout: w})
			check(t, err)
			w.Close()
			testenv.Reap(t, p)
			buf := make([]byte, 8)
			if _, err := r.Read(buf); err != nil {
				t.Fatal(err)
			}
			time.Sleep(200 * time.Millisecond) // let the get reach the server
			p.Kill()
			testenv.Wait(t, p)
			check(t, q.Put(ctx, "item"))
			short, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if v, err := q.Get(short); err != nil || v != "item" {
				t.Fatalf("Get after the blocked client died: %q %v", v, err)
			}
		})
	}
}

// BenchmarkDictSetGet is the bench workload's op (d[k] = v, then d[k])
// against a server in a child process, on each path; go run ./bench
// manager compares it with Python's.
func BenchmarkDictSetGet(b *testing.B) {
	srv, err := manager.Start(context.Background(), manager.StartOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	for _, socketOnly := range []bool{false, true} {
		b.Run(fmt.Sprintf("SocketOnly=%v", socketOnly), func(b *testing.B) {
			ctx := context.Background()
			c, err := manager.Dial(ctx, srv.Network, srv.Addr, srv.Key, &manager.DialOptions{SocketOnly: socketOnly})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			d, err := manager.NewDict[string, int64](ctx, c)
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close(ctx)
			for i := 0; b.Loop(); i++ {
				if err := d.Set(ctx, "k", int64(i%100)); err != nil {
					b.Fatal(err)
				}
				if _, err := d.Get(ctx, "k"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
