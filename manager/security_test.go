package manager_test

// Issue 18's properties at the manager's network entry points: a pickle
// that would run code in Python is refused by the server (in a request)
// and by the client (in a reply), and a frame over the limit is refused
// before it is allocated, by either.

import (
	"context"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"mproc"
	"mproc/internal/testenv"
	"mproc/manager"
	"mproc/pickle"
)

var secKey = []byte("issue-18 manager key")

// serveHere serves a manager in this process on a new Unix socket, until
// t ends, so that what the server allocates is this process's.
func serveHere(t *testing.T) string {
	t.Helper()
	ln, err := mproc.Listen("unix", "", secKey, mproc.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- manager.Serve(ctx, ln, manager.Options{}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr()
}

// fakeServer listens like a manager on a new Unix socket and answers every
// request with reply, as a hostile server would; it stops when t ends.
func fakeServer(t *testing.T, reply func(c *mproc.Conn) error) string {
	t.Helper()
	ln, err := mproc.Listen("unix", "", secKey, mproc.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept(ctx)
			if err != nil {
				return
			}
			if _, err := c.RecvBytes(ctx); err == nil {
				reply(c)
			}
			// Hold the connection until the client closes it.
			c.RecvBytes(ctx)
			c.Close()
		}
	}()
	t.Cleanup(func() {
		cancel()
		ln.Close()
		<-done
	})
	return ln.Addr()
}

func short(s string) string { return "\x8c" + string([]byte{byte(len(s))}) + s } // SHORT_BINUNICODE

// codeBodies are pickle fragments, each leaving one value on the stack,
// that make Python's pickle.loads import, build or call something: run
// "touch marker", in most.
func codeBodies(marker string) map[string]string {
	cmd := "touch " + marker
	return map[string]string{
		"STACK_GLOBAL os.system, REDUCE": short("os") + short("system") + "\x93" + short(cmd) + "\x85R",
		"GLOBAL builtins.eval, REDUCE":   "cbuiltins\neval\n" + short("__import__('os').system('"+cmd+"')") + "\x85R",
		"GLOBAL subprocess.call, REDUCE": "csubprocess\ncall\n" + short(cmd) + "\x85R",
		"INST os.system":                 "(" + short(cmd) + "ios\nsystem\n",
		"OBJ os.system":                  "(cos\nsystem\n" + short(cmd) + "o",
		"NEWOBJ os.system":               "cos\nsystem\n)\x81",
		"NEWOBJ_EX builtins.set":         "cbuiltins\nset\n)}\x92",
		"BUILD":                          "]}b",
		"EXT1":                           "\x82\x01",
		"EXT2":                           "\x83\x01\x00",
		"EXT4":                           "\x84\x01\x00\x00\x00",
		"BINPERSID":                      short("os.system") + "Q",
		"PERSID":                         "Pos.system\n",
		// An exception the manager lists, whose argument is the call.
		"os.system inside an allowed exception": "cbuiltins\nKeyError\n" + short("os") + short("system") + "\x93" + short(cmd) + "\x85R\x85R",
	}
}

// TestSecurityPickleNeverExecutes: the manager's server refuses a request,
// and its client a reply, that holds a pickle Python would run code for:
// the server answers '#TRACEBACK' naming the unsafe pickle and ends the
// connection, and goes on serving others; the client's call fails with
// ErrProtocol naming it. Nothing is run.
func TestSecurityPickleNeverExecutes(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "executed")
	bodies := codeBodies(marker)
	notRun := func(t *testing.T) {
		t.Helper()
		if _, err := os.Lstat(marker); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the pickle's command ran: %v", err)
		}
	}

	t.Run("server", func(t *testing.T) {
		addr := serveHere(t)
		for _, what := range slices.Sorted(maps.Keys(bodies)) {
			t.Run(what, func(t *testing.T) {
				ctx := ctxFor(t, 30*time.Second)
				c, err := mproc.Dial(ctx, "unix", addr, secKey)
				check(t, err)
				defer c.Close()
				// (None, 'create', ('dict', <body>), {})
				req := "\x80\x04(N" + short("create") + "(" + short("dict") + bodies[what] + "t}t."
				check(t, c.SendBytes(ctx, []byte(req)))
				b, err := c.RecvBytes(ctx)
				if err != nil {
					t.Fatalf("no reply: %v", err)
				}
				var v pickle.Tuple
				if err := pickle.Unmarshal(b, &v); err != nil || len(v) != 2 || v[0] != "#TRACEBACK" ||
					!strings.Contains(v[1].(string), "unsafe") {
					t.Errorf("reply %v, %v; want a '#TRACEBACK' naming the unsafe pickle", v, err)
				}
				if _, err := c.RecvBytes(ctx); err != io.EOF {
					t.Errorf("after the refusal: %v; want the connection ended (io.EOF)", err)
				}
				notRun(t)
			})
		}
		cl, err := manager.Dial(ctxFor(t, 30*time.Second), "unix", addr, secKey, nil)
		check(t, err)
		defer cl.Close()
		if _, err := manager.NewDict[string, int](ctxFor(t, 30*time.Second), cl); err != nil {
			t.Errorf("the server after the refusals: %v", err)
		}
	})

	t.Run("client", func(t *testing.T) {
		for _, what := range slices.Sorted(maps.Keys(bodies)) {
			t.Run(what, func(t *testing.T) {
				// ('#RETURN', <body>)
				reply := "\x80\x04" + short("#RETURN") + bodies[what] + "\x86."
				addr := fakeServer(t, func(c *mproc.Conn) error {
					return c.SendBytes(context.Background(), []byte(reply))
				})
				cl, err := manager.Dial(ctxFor(t, 30*time.Second), "unix", addr, secKey, &manager.DialOptions{SocketOnly: true})
				if err == nil {
					cl.Close()
				}
				if !errors.Is(err, manager.ErrProtocol) || !strings.Contains(err.Error(), "unsafe") {
					t.Errorf("Dial: %v; want ErrProtocol naming the unsafe pickle", err)
				}
				notRun(t)
			})
		}
	})
}

// frameClaims are frame headers over a manager's limits. A frame longer
// than the largest pickle the decoder takes (pickle.DefaultMaxSize) can
// only be refused once read, so it is refused before it is read.
var frameClaims = []struct {
	name   string
	header []byte
}{
	{name: "2 GiB", header: testenv.FrameHeader(0x7fffffff)},
	{name: "DefaultMaxFrame+1", header: testenv.FrameHeader(mproc.DefaultMaxFrame + 1)},
	{name: "4 GiB in the long form", header: testenv.FrameHeader(4 << 30)},
	{name: "2^64-1 in the long form", header: testenv.FrameHeader(1<<64 - 1)},
	{name: "over the decoder's MaxSize", header: testenv.FrameHeader(100 << 20)},
}

// TestSecurityFrameLimit: a frame over the manager's limit is refused
// before it is allocated: by the server (it ends the connection) and by
// the client receiving a reply (its call fails).
func TestSecurityFrameLimit(t *testing.T) {
	t.Run("server", func(t *testing.T) {
		addr := serveHere(t)
		for _, claim := range frameClaims {
			t.Run(claim.name, func(t *testing.T) {
				testenv.CheckFDLeaks(t)
				ctx := ctxFor(t, 30*time.Second)
				c, err := mproc.Dial(ctx, "unix", addr, secKey)
				check(t, err)
				defer c.Close()
				f, err := c.File()
				check(t, err)
				defer f.Close()
				var got error
				n := testenv.Allocated(func() {
					if _, err := f.Write(claim.header); err != nil {
						t.Fatal(err)
					}
					_, got = c.RecvBytes(ctx)
				})
				if got != io.EOF {
					t.Errorf("after the claim: %v; want the connection ended (io.EOF)", got)
				}
				if n > testenv.MaxAlloc {
					t.Errorf("the refusal allocated %d bytes", n)
				}
			})
		}
	})

	t.Run("client", func(t *testing.T) {
		for _, claim := range frameClaims {
			t.Run(claim.name, func(t *testing.T) {
				addr := fakeServer(t, func(c *mproc.Conn) error {
					f, err := c.File()
					if err != nil {
						return err
					}
					defer f.Close()
					_, err = f.Write(claim.header)
					return err
				})
				var got error
				n := testenv.Allocated(func() {
					cl, err := manager.Dial(ctxFor(t, 30*time.Second), "unix", addr, secKey, &manager.DialOptions{SocketOnly: true})
					if err == nil {
						cl.Close()
					}
					got = err
				})
				if !errors.Is(got, mproc.ErrFrameTooLarge) {
					t.Errorf("Dial: %v; want ErrFrameTooLarge", got)
				}
				if n > testenv.MaxAlloc {
					t.Errorf("the refusal allocated %d bytes", n)
				}
			})
		}
	})
}
