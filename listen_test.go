package mproc_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"mproc"
	"mproc/internal/testenv"
	"mproc/pickle"
)

func TestListenDialGo(t *testing.T) {
	ctx := ctxTimeout(t, 20*time.Second)
	for _, network := range []string{"unix", "tcp"} {
		addr := "127.0.0.1:0"
		if network == "unix" {
			addr = ""
		}
		rejected := make(chan error, 10)
		l, err := mproc.Listen(network, addr, []byte("secret"), mproc.ListenOptions{OnError: func(err error) { rejected <- err }})
		if err != nil {
			t.Fatal(err)
		}
		if network == "unix" {
			st, err := os.Stat(l.Addr())
			if err != nil || st.Mode().Perm() != 0o600 {
				t.Fatalf("socket file %s: %v %v", l.Addr(), st.Mode(), err)
			}
		}
		accepted := make(chan error, 1)
		go func() {
			c, err := l.Accept(ctx)
			if err == nil {
				m, _ := c.RecvBytes(ctx)
				c.SendBytes(ctx, append(m, '!'))
				c.Close()
			}
			accepted <- err
		}()
		c, err := mproc.Dial(ctx, network, l.Addr(), []byte("secret"))
		if err != nil {
			t.Fatalf("%s: dial: %v", network, err)
		}
		c.SendBytes(ctx, []byte("hi"))
		if m, err := c.RecvBytes(ctx); err != nil || string(m) != "hi!" {
			t.Fatalf("%s: %q %v", network, m, err)
		}
		c.Close()
		if err := <-accepted; err != nil {
			t.Fatal(err)
		}
		// A wrong key fails the Dial; the Listener reports it to OnError,
		// not as an error of Accept.
		if _, err := mproc.Dial(ctx, network, l.Addr(), []byte("wrong")); !errors.Is(err, mproc.ErrAuth) {
			t.Fatalf("%s: dial with a wrong key: %v", network, err)
		}
		if err := <-rejected; !errors.Is(err, mproc.ErrAuth) {
			t.Fatalf("%s: rejection of a wrong key: %v", network, err)
		}
		path := l.Addr()
		if err := l.Close(); err != nil {
			t.Fatalf("%s: close: %v", network, err)
		}
		if _, err := l.Accept(ctx); !errors.Is(err, os.ErrClosed) {
			t.Fatalf("%s: accept after close: %v", network, err)
		}
		if err := l.Close(); !errors.Is(err, os.ErrClosed) {
			t.Fatalf("%s: second close: %v", network, err)
		}
		if network == "unix" {
			if _, err := os.Stat(filepath.Dir(path)); !os.IsNotExist(err) {
				t.Fatalf("private directory left behind: %v", err)
			}
		}
	}
	if _, err := mproc.Listen("unix", "@abstract", nil, mproc.ListenOptions{}); err == nil {
		t.Fatal("abstract socket accepted")
	}
	if _, err := mproc.Dial(ctx, "tcp", "example.com:80", nil); err == nil {
		t.Fatal("a host name was dialled")
	}
	if _, err := mproc.Dial(ctx, "unix", filepath.Join(t.TempDir(), "none"), nil); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("dial of a missing socket: %v", err)
	}
}

// peer starts testdata/pyconn.py and returns its first output line.
func peer(t *testing.T, py string, args ...string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command(py, append([]string{"testdata/pyconn.py"}, args...)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, bufio.NewScanner(out)
}

func line(t *testing.T, s *bufio.Scanner) string {
	t.Helper()
	if !s.Scan() {
		t.Fatalf("the Python peer said nothing: %v", s.Err())
	}
	return s.Text()
}

func echoSizes(t *testing.T, ctx context.Context, c *mproc.Conn, big bool, out *bufio.Scanner) {
	t.Helper()
	sizes := []int{0, 1, 64 << 10}
	if big {
		sizes = append(sizes, 100<<20)
	}
	for _, n := range sizes {
		m := bytes.Repeat([]byte{'a' + byte(n%26)}, n)
		if err := c.SendBytes(ctx, m); err != nil {
			t.Fatalf("send %d bytes: %v", n, err)
		}
		got, err := c.RecvBytes(ctx)
		if err != nil || !bytes.Equal(got, m) {
			t.Fatalf("echo of %d bytes: %d bytes back, %v", n, len(got), err)
		}
	}
	// Python's send and recv, through the pickle codec.
	c.SetCodec(pickle.Codec{})
	c.SendBytes(ctx, []byte("send-objects"))
	want := []string{"<nil>", "true", "7", "-1180591620717411303424", "1.5", "héllo", "[0 255]", "[1 [2]]",
		"[1 a]", "map[k:[1 2]]", "[1 2]"}
	for i, w := range want {
		var v any
		if err := c.Recv(ctx, &v); err != nil {
			t.Fatalf("object %d from Python: %v", i, err)
		}
		if got := fmt.Sprint(v); got != w {
			t.Errorf("object %d from Python: %s (%T), want %s", i, got, v, w)
		}
	}
	c.SendBytes(ctx, []byte("recv-objects"))
	objs := []any{nil, true, int64(-3), 2.5, "zwölf", []byte{1}, []any{int64(1), "x"}, pickle.Tuple{int64(1), int64(2)},
		map[string]any{"a": []any{int64(1)}}, struct{ Name string }{"go"}}
	c.SendBytes(ctx, []byte(fmt.Sprint(len(objs))))
	for _, o := range objs {
		if err := c.Send(ctx, o); err != nil {
			t.Fatalf("send %v: %v", o, err)
		}
	}
	c.SetCodec(nil)
	wantRepr := []string{"None", "True", "-3", "2.5", "'zwölf'", "b'\\x01'", "[1, 'x']", "(1, 2)", "{'a': [1]}", "{'Name': 'go'}"}
	for i, w := range wantRepr {
		if l := line(t, out); l != "REPR "+w {
			t.Errorf("object %d in Python: %q, want %q", i, l, "REPR "+w)
		}
	}
	// Python closes mid-stream: io.EOF here.
	c.SendBytes(ctx, []byte("close-now"))
	if _, err := c.RecvBytes(ctx); err != io.EOF {
		t.Fatalf("after Python closed: %v", err)
	}
}

func TestPythonInterop(t *testing.T) {
	for ver, py := range testenv.Pythons(t) {
		t.Run(ver, func(t *testing.T) {
			t.Parallel()
			ctx := ctxTimeout(t, 60*time.Second)
			for _, network := range []string{"unix", "tcp"} {
				addr := "127.0.0.1:0"
				if network == "unix" {
					addr = filepath.Join(t.TempDir(), "py.sock")
				}
				// Go dials a Python Listener.
				_, out := peer(t, py, "listen", network, addr, "secret")
				paddr := line(t, out)
				c, err := mproc.Dial(ctx, network, paddr, []byte("secret"))
				if err != nil {
					t.Fatalf("%s: dial Python: %v", network, err)
				}
				if l := line(t, out); l != "OK" {
					t.Fatalf("%s: Python after the handshake: %q", network, l)
				}
				echoSizes(t, ctx, c, network == "unix", out) // 100 MiB once per version
				c.Close()

				// A Python Client dials a Go Listener.
				gaddr := "127.0.0.1:0"
				if network == "unix" {
					gaddr = ""
				}
				rejected := make(chan error, 10)
				l, err := mproc.Listen(network, gaddr, []byte("secret"), mproc.ListenOptions{OnError: func(err error) { rejected <- err }})
				if err != nil {
					t.Fatal(err)
				}
				_, out = peer(t, py, "dial", network, l.Addr(), "secret")
				c, err = l.Accept(ctx)
				if err != nil {
					t.Fatalf("%s: accept Python: %v", network, err)
				}
				if l := line(t, out); l != "OK" {
					t.Fatalf("%s: Python after the handshake: %q", network, l)
				}
				echoSizes(t, ctx, c, false, out)
				c.Close()

				// Wrong keys, both ways.
				_, out = peer(t, py, "dial", network, l.Addr(), "wrong")
				select {
				case err := <-rejected:
					if !errors.Is(err, mproc.ErrAuth) {
						t.Fatalf("%s: rejection of Python with a wrong key: %v", network, err)
					}
				case <-ctx.Done():
					t.Fatalf("%s: Python with a wrong key not rejected", network)
				}
				if l := line(t, out); l != "ERR AuthenticationError" {
					t.Fatalf("%s: Python client with a wrong key says %q", network, l)
				}
				l.Close()
				_, out = peer(t, py, "listen", network, addr+map[bool]string{true: "2", false: ""}[network == "unix"], "secret")
				paddr = line(t, out)
				if _, err := mproc.Dial(ctx, network, paddr, []byte("wrong")); !errors.Is(err, mproc.ErrAuth) {
					t.Fatalf("%s: dial Python with a wrong key: %v", network, err)
				}
				if l := line(t, out); l != "ERR AuthenticationError" {
					t.Fatalf("%s: Python listener with a wrong key says %q", network, l)
				}
			}
		})
	}
}

// rawClient connects to a Listener without mproc: a client that speaks
// only when told to.
func rawClient(t *testing.T, network, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// partialClient connects without mproc, announces a 200-byte frame and
// sends 10 bytes of it.
func partialClient(t *testing.T, network, addr string) net.Conn {
	t.Helper()
	c := rawClient(t, network, addr)
	if _, err := c.Write([]byte{0, 0, 0, 200, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}); err != nil {
		t.Fatal(err)
	}
	return c
}

// acceptOne accepts one connection in the background, closes it, and
// says how Accept ended.
func acceptOne(ctx context.Context, l *mproc.Listener) <-chan error {
	accepted := make(chan error, 1)
	go func() {
		c, err := l.Accept(ctx)
		if err == nil {
			c.Close()
		}
		accepted <- err
	}()
	return accepted
}

// readRawFrame reads one frame (the Listener's challenge) from c.
func readRawFrame(c net.Conn) ([]byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(c, h[:]); err != nil {
		return nil, err
	}
	b := make([]byte, binary.BigEndian.Uint32(h[:]))
	_, err := io.ReadFull(c, b)
	return b, err
}

// listenerGoroutines returns the stacks of the goroutines running the
// Listener's code a second after the call, or as soon as there are none
// (Close waits for them to call Done; they may take an instant to exit).
func listenerGoroutines() []string {
	var out []string
	for range 50 {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		out = out[:0]
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "mproc.(*Listener)") {
				out = append(out, g)
			}
		}
		if len(out) == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return out
}

func listenAddr(network string) string {
	if network == "unix" {
		return ""
	}
	return "127.0.0.1:0"
}

// One client that connects and says nothing, and one that announces a
// 200-byte frame and sends 10 bytes, do not delay the next client: the
// handshakes run side by side (Python's Listener serves them in turn).
func TestListenSilentClientsDoNotBlock(t *testing.T) {
	testenv.CheckFDLeaks(t)
	for _, network := range []string{"unix", "tcp"} {
		l, err := mproc.Listen(network, listenAddr(network), []byte("secret"), mproc.ListenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		rawClient(t, network, l.Addr()) // silent
		partialClient(t, network, l.Addr())
		time.Sleep(50 * time.Millisecond) // both are in their handshakes
		ctx := ctxTimeout(t, 3*time.Second)
		t0 := time.Now()
		accepted := acceptOne(ctx, l)
		c, err := mproc.Dial(ctx, network, l.Addr(), []byte("secret"))
		if err != nil {
			t.Fatalf("%s: dial behind a silent client: %v after %v", network, err, time.Since(t0))
		}
		c.Close()
		if err := <-accepted; err != nil {
			t.Fatalf("%s: accept behind a silent client: %v after %v", network, err, time.Since(t0))
		}
		if d := time.Since(t0); d > time.Second {
			t.Errorf("%s: a client behind a silent one was served in %v", network, d)
		}
		t.Logf("%s: served in %v behind a silent and a partial client", network, time.Since(t0))
		l.Close()
	}
}

// A handshake that does not end within HandshakeTimeout is closed and
// reported to OnError as os.ErrDeadlineExceeded.
func TestListenHandshakeTimeout(t *testing.T) {
	testenv.CheckFDLeaks(t)
	const timeout = 200 * time.Millisecond
	for _, network := range []string{"unix", "tcp"} {
		rejected := make(chan error, 10)
		l, err := mproc.Listen(network, listenAddr(network), []byte("secret"),
			mproc.ListenOptions{HandshakeTimeout: timeout, OnError: func(err error) { rejected <- err }})
		if err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		silent := rawClient(t, network, l.Addr())
		partial := partialClient(t, network, l.Addr())
		for i, c := range []net.Conn{silent, partial} {
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if m, err := readRawFrame(c); err != nil || !bytes.HasPrefix(m, []byte("#CHALLENGE#")) {
				t.Fatalf("%s: client %d: challenge %q, %v", network, i, m, err)
			}
			if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
				t.Fatalf("%s: client %d after the handshake deadline: %d bytes, %v", network, i, n, err)
			}
			if d := time.Since(t0); d < timeout || d > timeout+2*time.Second {
				t.Errorf("%s: client %d closed after %v, deadline %v", network, i, d, timeout)
			}
		}
		for range 2 {
			err := <-rejected
			if !errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, mproc.ErrAuth) {
				t.Errorf("%s: rejection of a slow client: %v", network, err)
			}
			t.Logf("%s: %v", network, err)
		}
		l.Close()
	}
}

// At MaxPending connections in their handshakes the Listener takes no
// more: the next client waits in the backlog until a slot is free.
func TestListenMaxPending(t *testing.T) {
	testenv.CheckFDLeaks(t)
	const timeout = 500 * time.Millisecond
	ctx := ctxTimeout(t, 10*time.Second)
	l, err := mproc.Listen("unix", "", []byte("secret"), mproc.ListenOptions{HandshakeTimeout: timeout, MaxPending: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	t0 := time.Now()
	for range 2 {
		c := rawClient(t, "unix", l.Addr())
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := readRawFrame(c); err != nil { // taken: in its handshake
			t.Fatal(err)
		}
	}
	accepted := acceptOne(ctx, l)
	c, err := mproc.Dial(ctx, "unix", l.Addr(), []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	// The silent clients' deadlines started after t0; only then is a
	// slot free.
	if d := time.Since(t0); d < timeout {
		t.Errorf("a third client was served after %v, with two slots held for %v", d, timeout)
	} else {
		t.Logf("a third client was served after %v, with two slots held for %v", d, timeout)
	}
	if err := <-accepted; err != nil {
		t.Fatal(err)
	}
}

// Close ends a waiting Accept, closes the connections Accept has not
// returned (in a handshake, or authenticated), and leaves no goroutine.
func TestListenClose(t *testing.T) {
	testenv.CheckFDLeaks(t)
	for _, network := range []string{"unix", "tcp"} {
		l, err := mproc.Listen(network, listenAddr(network), []byte("secret"), mproc.ListenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ctx := ctxTimeout(t, 10*time.Second)
		silent := rawClient(t, network, l.Addr())
		waiting, err := mproc.Dial(ctx, network, l.Addr(), []byte("secret")) // authenticated, not accepted
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
		t0 := time.Now()
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		silent.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadAll(silent); err != nil {
			t.Fatalf("%s: a client in its handshake after Close: %v", network, err)
		}
		if _, err := waiting.RecvBytes(ctx); err != io.EOF {
			t.Fatalf("%s: a client not accepted after Close: %v", network, err)
		}
		waiting.Close()
		if d := time.Since(t0); d > time.Second {
			t.Errorf("%s: Close took %v to end pending connections", network, d)
		}
		if gs := listenerGoroutines(); len(gs) != 0 {
			t.Errorf("%s: goroutines of the Listener left after Close:\n%s", network, strings.Join(gs, "\n\n"))
		}

		// Close ends a waiting Accept.
		l, err = mproc.Listen(network, listenAddr(network), nil, mproc.ListenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		accepted := make(chan error, 1)
		go func() {
			_, err := l.Accept(context.Background())
			accepted <- err
		}()
		time.Sleep(20 * time.Millisecond)
		l.Close()
		select {
		case err := <-accepted:
			if !errors.Is(err, os.ErrClosed) {
				t.Fatalf("%s: Accept ended by Close: %v", network, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: Close did not end a waiting Accept", network)
		}
		if gs := listenerGoroutines(); len(gs) != 0 {
			t.Errorf("%s: goroutines of the Listener left after Close:\n%s", network, strings.Join(gs, "\n\n"))
		}
	}
}

// Dial on a Unix socket whose listener's backlog is full waits for room
// until its context ends, as a blocking connect does, instead of failing
// with EAGAIN at once.
func TestDialWaitsForBacklog(t *testing.T) {
	testenv.CheckFDLeaks(t)
	// One slot (a connection waiting for Accept) and the smallest backlog.
	l, err := mproc.Listen("unix", "", nil, mproc.ListenOptions{MaxPending: 1, Backlog: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var conns []*mproc.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	full := false
	for range 10 {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		t0 := time.Now()
		c, err := mproc.Dial(ctx, "unix", l.Addr(), nil)
		cancel()
		if err == nil {
			conns = append(conns, c)
			continue
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("dial to a full backlog: %v", err)
		}
		if d := time.Since(t0); d < 90*time.Millisecond {
			t.Fatalf("dial to a full backlog gave up after %v", d)
		}
		t.Logf("after %d connections: %v", len(conns), err)
		full = true
		break
	}
	if !full {
		t.Fatalf("%d connections and the backlog is not full", len(conns))
	}
	dialled := make(chan error, 1)
	go func() {
		c, err := mproc.Dial(ctxTimeout(t, 10*time.Second), "unix", l.Addr(), nil)
		if err == nil {
			c.Close()
		}
		dialled <- err
	}()
	select {
	case err := <-dialled:
		t.Fatalf("dial to a full backlog returned at once: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	c, err := l.Accept(ctxTimeout(t, time.Second)) // a slot frees, the backlog moves
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	select {
	case err := <-dialled:
		if err != nil {
			t.Fatalf("dial once there was room: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("dial did not connect once there was room")
	}
}

// An accepted connection handed to a child takes along what this end has
// read and not consumed: a request that arrived right behind the
// handshake, as Python's clients send it, is not lost.
func TestAcceptedConnToChildKeepsBufferedBytes(t *testing.T) {
	ctx := ctxTimeout(t, 30*time.Second)
	l, err := mproc.Listen("unix", filepath.Join(t.TempDir(), "s"), []byte("k"), mproc.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dialed := make(chan *mproc.Conn, 1)
	go func() {
		c, err := mproc.Dial(ctx, "unix", l.Addr(), []byte("k"))
		if err != nil {
			t.Error(err)
			close(dialed)
			return
		}
		c.SendBytes(ctx, []byte("first"))
		dialed <- c
	}()
	c, err := l.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	d := <-dialed
	if d == nil {
		return
	}
	defer d.Close()
	// Poll reads what has arrived into this end's buffer.
	if ok, err := c.Poll(ctx); !ok || err != nil {
		t.Fatalf("Poll: %v %v", ok, err)
	}
	p, err := echoFn.Start(ctx, connArg{C: c}, mproc.ProcOptions{})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Reap(t, p)
	if m, err := d.RecvBytes(ctx); err != nil || string(m) != "first" {
		t.Fatalf("the child echoed %q, %v; want the buffered \"first\"", m, err)
	}
	d.Close()
	testenv.Wait(t, p)
}
