package shmnet_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/nettest"

	"mproc/internal/testenv"
	"mproc/shmnet"
)

// pair returns the two ends of a new connection in this process, the
// dialer's first, closed (with their listener) when the test ends.
func pair(t testing.TB, opts *shmnet.Options) (dialed, accepted *shmnet.Conn) {
	t.Helper()
	ln, err := shmnet.Listen(filepath.Join(t.TempDir(), "s"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	d, a, err := connect(ln, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close(); a.Close() })
	return d, a
}

// connect dials ln and accepts the connection.
func connect(ln *shmnet.Listener, opts *shmnet.Options) (dialed, accepted *shmnet.Conn, err error) {
	type result struct {
		c   *shmnet.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := ln.AcceptConn()
		ch <- result{c, err}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := shmnet.Dial(ctx, ln.Addr().String(), opts)
	if err != nil {
		ln.Close() // ends the Accept
		<-ch
		return nil, nil, err
	}
	r := <-ch
	if r.err != nil {
		d.Close()
		return nil, nil, r.err
	}
	return d, r.c, nil
}

// TestNetConn runs x/net's conformance tests of the net.Conn contract,
// with the default rings and with the smallest, which every test of a few
// KiB fills and wraps.
func TestNetConn(t *testing.T) {
	for _, ring := range []int{0, shmnet.MinRingSize} {
		t.Run("ring="+strconv.Itoa(ring), func(t *testing.T) {
			testenv.CheckFDLeaks(t)
			opts := &shmnet.Options{RingSize: ring}
			nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
				ln, err := shmnet.Listen(filepath.Join(t.TempDir(), "s"), opts)
				if err != nil {
					return nil, nil, nil, err
				}
				d, a, err := connect(ln, opts)
				if err != nil {
					return nil, nil, nil, err
				}
				return d, a, func() { d.Close(); a.Close(); ln.Close() }, nil
			})
		})
	}
}

// TestAddr checks the connection's addresses.
func TestAddr(t *testing.T) {
	d, a := pair(t, nil)
	for _, addr := range []net.Addr{d.LocalAddr(), d.RemoteAddr(), a.LocalAddr(), a.RemoteAddr()} {
		if addr.Network() != "shmnet" {
			t.Errorf("%v: network %q", addr, addr.Network())
		}
	}
	me := " (pid " + strconv.Itoa(os.Getpid()) + ")"
	if s := d.LocalAddr().String(); !strings.HasSuffix(s, me) {
		t.Errorf("dialer's local address %q, want the pid", s)
	}
	if s := a.RemoteAddr().String(); !strings.HasSuffix(s, me) {
		t.Errorf("listener's remote address %q, want the dialer's pid", s)
	}
}

// TestHalfClose checks CloseWrite (the peer reads the bytes, then EOF, and
// can still answer) and CloseRead (the peer's writes fail like EPIPE).
func TestHalfClose(t *testing.T) {
	d, a := pair(t, nil)
	if _, err := d.Write([]byte("request")); err != nil {
		t.Fatal(err)
	}
	if err := d.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(a)
	if err != nil || string(got) != "request" {
		t.Fatalf("ReadAll after CloseWrite = %q, %v; want the request and no error", got, err)
	}
	if _, err := d.Write([]byte("x")); !errors.Is(err, shmnet.ErrBrokenPipe) {
		t.Errorf("Write after own CloseWrite: %v, want ErrBrokenPipe", err)
	}
	if _, err := a.Write([]byte("reply")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(d, buf); err != nil || string(buf) != "reply" {
		t.Fatalf("reply %q, %v", buf, err)
	}

	if err := d.CloseRead(); err != nil {
		t.Fatal(err)
	}
	if n, err := d.Read(buf); n != 0 || err != io.EOF {
		t.Errorf("Read after CloseRead = %d, %v; want 0, EOF", n, err)
	}
	_, err = a.Write([]byte("more"))
	if !errors.Is(err, shmnet.ErrBrokenPipe) || !errors.Is(err, syscall.EPIPE) {
		t.Errorf("Write after the peer's CloseRead: %v, want ErrBrokenPipe matching EPIPE", err)
	}
}

// TestPeerClose checks both sides of a Close: the peer reads what was sent
// and then EOF, and its writes fail like EPIPE.
func TestPeerClose(t *testing.T) {
	d, a := pair(t, nil)
	if _, err := d.Write([]byte("last words")); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(a); err != nil || string(got) != "last words" {
		t.Errorf("ReadAll = %q, %v", got, err)
	}
	if _, err := a.Write([]byte("x")); !errors.Is(err, syscall.EPIPE) {
		t.Errorf("Write to a closed peer: %v, want EPIPE", err)
	}
}

// TestCloseUnblocks checks that Close from another goroutine ends a
// waiting Read and a waiting Write with net.ErrClosed, and that every call
// after it fails so.
func TestCloseUnblocks(t *testing.T) {
	d, _ := pair(t, &shmnet.Options{RingSize: shmnet.MinRingSize})
	errs := make(chan error, 2)
	go func() {
		_, err := d.Read(make([]byte, 10))
		errs <- err
	}()
	go func() {
		_, err := d.Write(make([]byte, 10*shmnet.MinRingSize)) // fills the ring, then waits
		errs <- err
	}()
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		select {
		case err := <-errs:
			if !errors.Is(err, net.ErrClosed) {
				t.Errorf("interrupted call: %v, want net.ErrClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Close did not end a waiting call")
		}
	}
	t.Logf("Close ended both waiting calls in %v", time.Since(start))
	if _, err := d.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read after Close: %v", err)
	}
	if _, err := d.Write(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after Close: %v", err)
	}
	if err := d.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
	if err := d.SetDeadline(time.Now()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("SetDeadline after Close: %v", err)
	}
}

// TestDeadlineMoves checks that a waiting Read follows its deadline as
// another goroutine moves it: set while it waits, brought forward, and
// pushed back.
func TestDeadlineMoves(t *testing.T) {
	d, a := pair(t, nil)
	read := func() (time.Duration, error) {
		start := time.Now()
		_, err := d.Read(make([]byte, 10))
		return time.Since(start), err
	}
	checkTimeout := func(err error) {
		t.Helper()
		var ne net.Error
		if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("got %v, want a timeout matching os.ErrDeadlineExceeded", err)
		}
	}

	// Set while waiting (no deadline before).
	go func() {
		time.Sleep(50 * time.Millisecond)
		d.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	}()
	el, err := read()
	checkTimeout(err)
	if el < 100*time.Millisecond-5*time.Millisecond || el > 3*time.Second {
		t.Errorf("deadline set while waiting: Read returned after %v, want about 100ms", el)
	}

	// Brought forward to the past while waiting.
	d.SetReadDeadline(time.Now().Add(time.Hour))
	go func() {
		time.Sleep(50 * time.Millisecond)
		d.SetReadDeadline(time.Now().Add(-time.Second))
	}()
	el, err = read()
	checkTimeout(err)
	if el > 3*time.Second {
		t.Errorf("deadline brought forward: Read returned after %v", el)
	}

	// Pushed back while waiting: the first deadline must not end the Read
	// (the mover has 270 ms to run, for a busy machine).
	d.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	go func() {
		time.Sleep(30 * time.Millisecond)
		d.SetReadDeadline(time.Now().Add(600 * time.Millisecond))
	}()
	el, err = read()
	checkTimeout(err)
	if el < 600*time.Millisecond {
		t.Errorf("deadline pushed back: Read returned after %v, want at least 630ms", el)
	}

	// Cleared: the Read waits for data.
	d.SetReadDeadline(time.Time{})
	go func() {
		time.Sleep(50 * time.Millisecond)
		a.Write([]byte("x"))
	}()
	if _, err := read(); err != nil {
		t.Errorf("Read without deadline: %v", err)
	}
}

// TestConcurrentWrites checks that concurrent Writes never interleave:
// writers of records larger than the ring (so every Write waits for room
// in the middle) and a reader that checks each record is one writer's.
func TestConcurrentWrites(t *testing.T) {
	const writers, records, size = 8, 40, 3*shmnet.MinRingSize + 123
	d, a := pair(t, &shmnet.Options{RingSize: shmnet.MinRingSize})
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			rec := bytes.Repeat([]byte{byte('A' + w)}, size)
			for range records {
				if _, err := d.Write(rec); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		})
	}
	counts := map[byte]int{}
	rec := make([]byte, size)
	for range writers * records {
		if _, err := io.ReadFull(a, rec); err != nil {
			t.Fatal(err)
		}
		if bytes.Count(rec, rec[:1]) != size {
			t.Fatalf("a record mixes writers: starts %q, holds %d of its first byte", rec[:8], bytes.Count(rec, rec[:1]))
		}
		counts[rec[0]]++
	}
	wg.Wait()
	for w := range writers {
		if counts[byte('A'+w)] != records {
			t.Errorf("writer %d: %d records arrived, want %d", w, counts[byte('A'+w)], records)
		}
	}
}

// TestNoAllocs checks that Write and Read allocate nothing.
func TestNoAllocs(t *testing.T) {
	d, a := pair(t, nil)
	msg, buf := make([]byte, 64), make([]byte, 64)
	d.SetDeadline(time.Now().Add(time.Hour)) // the deadline path too
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := d.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(a, buf); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Write(buf); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(d, buf); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("a round trip allocates %v times", allocs)
	}
}

// TestIdleCostsNoCPU checks that a Read waiting on an idle connection
// sleeps: over half a second the process spends little CPU.
func TestIdleCostsNoCPU(t *testing.T) {
	d, _ := pair(t, nil)
	d.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	before := cpuTime(t)
	start := time.Now()
	if _, err := d.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read: %v", err)
	}
	used, el := cpuTime(t)-before, time.Since(start)
	t.Logf("a Read waiting %v used %v of CPU", el, used)
	if used > el/5 {
		t.Errorf("a Read waiting %v used %v of CPU: it polls", el, used)
	}
}

// cpuTime is the CPU time this process has used.
func cpuTime(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
