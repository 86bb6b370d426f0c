package mproc_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mproc"
	"mproc/pickle"
)

func TestListenDialGo(t *testing.T) {
	ctx := ctxTimeout(t, 20*time.Second)
	for _, network := range []string{"unix", "tcp"} {
		addr := "127.0.0.1:0"
		if network == "unix" {
			addr = ""
		}
		l, err := mproc.Listen(network, addr, []byte("secret"))
		if err != nil {
			t.Fatal(err)
		}
		if network == "unix" {
			st, err := os.Stat(l.Addr())
			if err != nil || st.Mode().Perm() != 0o600 {
				t.Fatalf("socket file %s: %v %v", l.Addr(), st.Mode(), err)
			}
		}
		accepted := make(chan error, 2)
		go func() {
			for range 2 {
				c, err := l.Accept(ctx)
				if err == nil {
					m, _ := c.RecvBytes(ctx)
					c.SendBytes(ctx, append(m, '!'))
					c.Close()
				}
				accepted <- err
			}
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
		if _, err := mproc.Dial(ctx, network, l.Addr(), []byte("wrong")); !errors.Is(err, mproc.ErrAuth) {
			t.Fatalf("%s: dial with a wrong key: %v", network, err)
		}
		if err := <-accepted; !errors.Is(err, mproc.ErrAuth) {
			t.Fatalf("%s: accept of a wrong key: %v", network, err)
		}
		path := l.Addr()
		l.Close()
		if network == "unix" {
			if _, err := os.Stat(filepath.Dir(path)); !os.IsNotExist(err) {
				t.Fatalf("private directory left behind: %v", err)
			}
		}
	}
	if _, err := mproc.Listen("unix", "@abstract", nil); err == nil {
		t.Fatal("abstract socket accepted")
	}
	if _, err := mproc.Dial(ctx, "tcp", "example.com:80", nil); err == nil {
		t.Fatal("a host name was dialled")
	}
	if _, err := mproc.Dial(ctx, "unix", filepath.Join(t.TempDir(), "none"), nil); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("dial of a missing socket: %v", err)
	}
}

// pythons returns the Python interpreters to test against: python3 and
// every pyenv version.
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
			if _, err := os.Stat(bin); err == nil {
				parts := strings.SplitN(ver, ".", 3)
				if len(parts) >= 2 {
					out[parts[0]+"."+parts[1]] = bin
				}
			}
		}
	} else {
		t.Logf("pyenv not found: testing %v only", out)
	}
	for _, want := range []string{"3.11", "3.12", "3.13"} {
		if out[want] == "" {
			t.Logf("Python %s is not on this machine: not tested", want)
		}
	}
	return out
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
	for ver, py := range pythons(t) {
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
				l, err := mproc.Listen(network, gaddr, []byte("secret"))
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
				if _, err := l.Accept(ctx); !errors.Is(err, mproc.ErrAuth) {
					t.Fatalf("%s: Python with a wrong key accepted: %v", network, err)
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
