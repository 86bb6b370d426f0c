package mproc_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"testing"
	"time"

	"mproc"
	"mproc/internal/testenv"
)

func pipe(t *testing.T, mode mproc.PipeMode) (*mproc.Conn, *mproc.Conn) {
	t.Helper()
	a, b, err := mproc.Pipe(mode)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func TestPipeMessages(t *testing.T) {
	testenv.CheckFDLeaks(t)
	a, b := pipe(t, mproc.Duplex)
	ctx := ctxTimeout(t, 20*time.Second)
	sizes := []int{0, 1, 64 << 10, 10 << 20}
	go func() {
		for _, n := range sizes {
			a.SendBytes(ctx, bytes.Repeat([]byte{byte(n)}, n))
		}
	}()
	for _, n := range sizes {
		m, err := b.RecvBytes(ctx)
		if err != nil || len(m) != n || (n > 0 && m[n-1] != byte(n)) {
			t.Fatalf("message of %d: %d bytes, %v", n, len(m), err)
		}
	}
	// Values through the codec, both ways.
	type msg struct {
		N    int
		Text string
	}
	if err := b.Send(ctx, msg{7, "seven"}); err != nil {
		t.Fatal(err)
	}
	var got msg
	if err := a.Recv(ctx, &got); err != nil || got != (msg{7, "seven"}) {
		t.Fatalf("Recv: %+v %v", got, err)
	}
	// Poll.
	if ok, err := b.PollTimeout(10 * time.Millisecond); ok || err != nil {
		t.Fatalf("poll of an idle connection: %v %v", ok, err)
	}
	a.SendBytes(ctx, []byte("0123456789"))
	if ok, err := b.PollTimeout(time.Second); !ok || err != nil {
		t.Fatalf("poll with a message waiting: %v %v", ok, err)
	}
	// A buffer too small keeps the message in the error.
	small := make([]byte, 4)
	_, err := b.RecvBytesInto(ctx, small)
	var tooSmall *mproc.BufferTooSmallError
	if !errors.Is(err, mproc.ErrBufferTooSmall) || !errors.As(err, &tooSmall) || string(tooSmall.Msg) != "0123456789" {
		t.Fatalf("RecvBytesInto a small buffer: %v", err)
	}
	a.SendBytes(ctx, []byte("ok"))
	if n, err := b.RecvBytesInto(ctx, small); err != nil || string(small[:n]) != "ok" {
		t.Fatalf("RecvBytesInto: %q %v", small[:n], err)
	}
	// Cancellation.
	cctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	t0 := time.Now()
	// (A bound for a busy machine: without the cancellation's wake-up the
	// receive would wait for ever.)
	if _, err := b.RecvBytes(cctx); !errors.Is(err, context.Canceled) || time.Since(t0) > 2*time.Second {
		t.Fatalf("cancelled receive: %v after %v", err, time.Since(t0))
	}
	// The peer closes: EOF after what it sent; sending gets EPIPE.
	a.SendBytes(ctx, []byte("last"))
	a.Close()
	if m, err := b.RecvBytes(ctx); err != nil || string(m) != "last" {
		t.Fatalf("before EOF: %q %v", m, err)
	}
	if ok, _ := b.PollTimeout(0); !ok {
		t.Fatal("poll at EOF says nothing to read")
	}
	if _, err := b.RecvBytes(ctx); err != io.EOF {
		t.Fatalf("after the peer closed: %v", err)
	}
	if err := b.SendBytes(ctx, []byte("x")); !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("send to a closed peer: %v", err)
	}
}

func TestPipeOneWayAndLimits(t *testing.T) {
	r, w := pipe(t, mproc.OneWay)
	ctx := ctxTimeout(t, 10*time.Second)
	if err := r.SendBytes(ctx, nil); !errors.Is(err, mproc.ErrReadOnly) {
		t.Fatalf("send on the reading end: %v", err)
	}
	if _, err := w.RecvBytes(ctx); !errors.Is(err, mproc.ErrWriteOnly) {
		t.Fatalf("receive on the writing end: %v", err)
	}
	r.SetMaxFrame(100)
	w.SendBytes(ctx, make([]byte, 100))
	w.SendBytes(ctx, make([]byte, 101))
	if m, err := r.RecvBytes(ctx); err != nil || len(m) != 100 {
		t.Fatal(err)
	}
	if _, err := r.RecvBytes(ctx); !errors.Is(err, mproc.ErrFrameTooLarge) {
		t.Fatalf("oversized frame: %v", err)
	}
	// A negative length is a protocol error.
	a, b := pipe(t, mproc.Duplex)
	f, _ := a.File()
	f.Write([]byte{0xff, 0xff, 0xff, 0xf0})
	f.Close()
	if _, err := b.RecvBytes(ctx); !errors.Is(err, mproc.ErrProtocol) {
		t.Fatalf("negative length: %v", err)
	}
}

type connArg struct {
	C *mproc.Conn
}

var (
	echoFn = mproc.Register("conn-echo", func(ctx context.Context, a connArg) error {
		for {
			m, err := a.C.RecvBytes(ctx)
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			if err := a.C.SendBytes(ctx, m); err != nil {
				return err
			}
		}
	})
	fileWriterFn = mproc.Register("conn-file-writer", func(ctx context.Context, a connArg) error {
		f, err := a.C.RecvFile(ctx, "received")
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = f.Write([]byte("written by the child"))
		return err
	})
	// halfFrameFn sends half a message and waits to be killed.
	halfFrameFn = mproc.Register("conn-half-frame", func(ctx context.Context, a connArg) error {
		f, err := a.C.File()
		if err != nil {
			return err
		}
		var h [4]byte
		binary.BigEndian.PutUint32(h[:], 1<<20)
		f.Write(h[:])
		f.Write(make([]byte, 1000))
		select {}
	})
)

func TestConnAcrossProcesses(t *testing.T) {
	testenv.CheckFDLeaks(t)
	a, b := pipe(t, mproc.Duplex)
	p := start(t, echoFn, connArg{C: b}, mproc.ProcOptions{})
	ctx := ctxTimeout(t, 20*time.Second)
	for _, n := range []int{0, 5, 1 << 20} {
		if err := a.SendBytes(ctx, bytes.Repeat([]byte("x"), n)); err != nil {
			t.Fatal(err)
		}
		if m, err := a.RecvBytes(ctx); err != nil || len(m) != n {
			t.Fatalf("echo of %d bytes: %d, %v", n, len(m), err)
		}
	}
	b.Close()
	a.Close()
	if err := wait(t, p); err != nil {
		t.Fatal(err)
	}

	// A descriptor over the connection.
	c, d := pipe(t, mproc.Duplex)
	p = start(t, fileWriterFn, connArg{C: d}, mproc.ProcOptions{})
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SendFile(ctx, w); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if err := wait(t, p); err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	r.Close()
	if string(got) != "written by the child" {
		t.Fatalf("through the passed descriptor: %q", got)
	}

	// The peer killed in the middle of a message: an error, not a hang.
	e, g := pipe(t, mproc.Duplex)
	p = start(t, halfFrameFn, connArg{C: g}, mproc.ProcOptions{})
	g.Close()
	go func() { time.Sleep(100 * time.Millisecond); p.Kill() }()
	if _, err := e.RecvBytes(ctx); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("peer killed mid-message: %v", err)
	}
	wait(t, p)
}

// File gives a blocking descriptor, as a child program expects: Python's
// Connection(fd).recv_bytes() waits for a message sent later instead of
// raising BlockingIOError. The Conn keeps its deadlines afterwards.
func TestConnFilePython(t *testing.T) {
	testenv.CheckFDLeaks(t)
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 is required by this test and is not in PATH")
	}
	a, b := pipe(t, mproc.Duplex)
	ctx := ctxTimeout(t, 20*time.Second)
	f, err := b.File()
	if err != nil {
		t.Fatal(err)
	}
	// b still waits in the poller, bounded by its context, receiving and
	// sending (into a full socket buffer: on a pipe of its own).
	x, y := pipe(t, mproc.Duplex)
	g, err := y.File()
	if err != nil {
		t.Fatal(err)
	}
	g.Close()
	for _, op := range []struct {
		name string
		do   func(context.Context) error
	}{
		{"receive", func(ctx context.Context) error { _, err := b.RecvBytes(ctx); return err }},
		{"send", func(ctx context.Context) error { return y.SendBytes(ctx, make([]byte, 16<<20)) }},
	} {
		done := make(chan error, 1)
		go func() {
			short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			defer cancel()
			done <- op.do(short)
		}()
		select {
		case err := <-done:
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("%s with a deadline after File: %v", op.name, err)
			}
		case <-time.After(5 * time.Second):
			a.SendBytes(ctx, nil) // unblock them
			x.Close()
			t.Fatalf("%s with a deadline after File blocks", op.name)
		}
	}

	cmd := exec.Command(py, "-c", `
from multiprocessing.connection import Connection
c = Connection(3)
m = c.recv_bytes()
c.send_bytes(m + b" back")
`)
	cmd.ExtraFiles = []*os.File{f}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	time.Sleep(300 * time.Millisecond) // the child waits in recv_bytes
	if err := a.SendBytes(ctx, []byte("there")); err != nil {
		t.Fatal(err)
	}
	m, err := a.RecvBytes(ctxTimeout(t, 5*time.Second))
	werr := cmd.Wait()
	if err != nil || string(m) != "there back" || werr != nil {
		t.Fatalf("Python child: %q %v; exit %v: %s", m, err, werr, stderr.Bytes())
	}
	// And b still works.
	a.SendBytes(ctx, []byte("still"))
	if m, err := b.RecvBytes(ctx); err != nil || string(m) != "still" {
		t.Fatalf("the Conn after File: %q %v", m, err)
	}
}

// SendFile and RecvFile on a TCP connection, which cannot carry
// descriptors, refuse before touching the stream; over a Unix socket from
// Listen and Dial they work.
func TestConnSendFileNeedsUnix(t *testing.T) {
	testenv.CheckFDLeaks(t)
	ctx := ctxTimeout(t, 10*time.Second)
	for _, network := range []string{"tcp", "unix"} {
		l, err := mproc.Listen(network, listenAddr(network), nil, mproc.ListenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		c, err := mproc.Dial(ctx, network, l.Addr(), nil)
		if err != nil {
			t.Fatal(err)
		}
		s, err := l.Accept(ctx)
		if err != nil {
			t.Fatal(err)
		}
		l.Close()
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		err = c.SendFile(ctx, w)
		c.SendBytes(ctx, []byte("after"))
		if network == "tcp" {
			if !errors.Is(err, mproc.ErrNotUnixSocket) {
				t.Fatalf("SendFile over TCP: %v", err)
			}
			if _, err := s.RecvFile(ctx, "x"); !errors.Is(err, mproc.ErrNotUnixSocket) {
				t.Fatalf("RecvFile over TCP: %v", err)
			}
		} else {
			if err != nil {
				t.Fatalf("SendFile over a unix socket: %v", err)
			}
			g, err := s.RecvFile(ctx, "received")
			if err != nil {
				t.Fatalf("RecvFile over a unix socket: %v", err)
			}
			g.Write([]byte("through"))
			g.Close()
		}
		w.Close()
		if m, err := s.RecvBytes(ctx); err != nil || string(m) != "after" {
			t.Fatalf("%s: the message after SendFile: %q %v", network, m, err)
		}
		got, _ := io.ReadAll(r)
		r.Close()
		if network == "unix" && string(got) != "through" {
			t.Fatalf("through the passed descriptor: %q", got)
		}
		c.Close()
		s.Close()
	}
}

// Large frames are read straight into their destination, the next
// header with them: frames of varying sizes, buffers larger, exact and too
// small, RecvBytes between, and frames written by hand in pieces (a header
// split, the 8-byte length form) all come out whole and in order.
func TestConnLargeFrames(t *testing.T) {
	a, b := pipe(t, mproc.Duplex)
	ctx := ctxTimeout(t, 20*time.Second)
	msg := func(i, n int) []byte {
		m := make([]byte, n)
		for j := range m {
			m[j] = byte(i*7 + j*13)
		}
		return m
	}
	sizes := []int{40 << 10, 40 << 10, 100, 40<<10 + 7, 70 << 10, 0, 33 << 10, 1 << 20, 64 << 10, 64 << 10, 5, 64 << 10}
	go func() {
		for i, n := range sizes {
			if err := a.SendBytes(ctx, msg(i, n)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	big := make([]byte, 2<<20)
	for i, n := range sizes {
		want := msg(i, n)
		var got []byte
		var err error
		switch i % 3 {
		case 0:
			var k int
			k, err = b.RecvBytesInto(ctx, big)
			got = big[:k]
		case 1:
			got, err = b.RecvBytes(ctx)
		case 2:
			small := make([]byte, n/2)
			_, err = b.RecvBytesInto(ctx, small)
			var tooSmall *mproc.BufferTooSmallError
			if n > 0 && !errors.As(err, &tooSmall) {
				t.Fatalf("message %d (%d bytes) into %d: %v", i, n, len(small), err)
			}
			if tooSmall != nil {
				got, err = tooSmall.Msg, nil
			}
		}
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("message %d (%d bytes): %d bytes, %v", i, n, len(got), err)
		}
	}
	// By hand, in pieces the receiver meets one at a time, after large
	// frames (the path that reads header and payload together): a header
	// split, the 8-byte length form, a frame shorter than the last with
	// the next one behind it, one longer.
	f, err := a.File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var stream []byte
	var cuts []int
	frame := func(long bool, p []byte) {
		if long {
			stream = append(stream, 0xff, 0xff, 0xff, 0xff)
			stream = binary.BigEndian.AppendUint64(stream, uint64(len(p)))
		} else {
			stream = binary.BigEndian.AppendUint32(stream, uint32(len(p)))
		}
		stream = append(stream, p...)
	}
	sizes = []int{50 << 10, 10, 48 << 10, 40 << 10, 35 << 10, 5, 40 << 10, 60 << 10, 3}
	for i, n := range sizes {
		switch i {
		case 0, 2:
			cuts = append(cuts, len(stream)+2) // a header in two
		case 4, 6, 7:
			cuts = append(cuts, len(stream)) // the frame whole
		}
		frame(i == 1 || i == 3, msg(i, n))
	}
	cuts = append(cuts, len(stream))
	go func() {
		done := 0
		for _, c := range cuts {
			if _, err := f.Write(stream[done:c]); err != nil {
				t.Error(err)
				return
			}
			done = c
			time.Sleep(5 * time.Millisecond)
		}
	}()
	for i, n := range sizes {
		k, err := b.RecvBytesInto(ctx, big)
		if err != nil || !bytes.Equal(big[:k], msg(i, n)) {
			t.Fatalf("hand-written frame %d (%d bytes): %d bytes, %v", i, n, k, err)
		}
	}
}

// BenchmarkPipe64 is a 64-byte round trip between two goroutines over a
// Pipe: the path every small message takes.
func BenchmarkPipe64(b *testing.B) { benchPipe64(b, context.Background()) }

// BenchmarkPipe64Cancel is BenchmarkPipe64 with a context that can end,
// as most callers pass.
func BenchmarkPipe64Cancel(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	benchPipe64(b, ctx)
}

func benchPipe64(b *testing.B, ctx context.Context) {
	x, y, err := mproc.Pipe(mproc.Duplex)
	if err != nil {
		b.Fatal(err)
	}
	defer x.Close()
	defer y.Close()
	go func() {
		buf := make([]byte, 64)
		for {
			n, err := y.RecvBytesInto(ctx, buf)
			if err != nil || y.SendBytes(ctx, buf[:n]) != nil {
				return
			}
		}
	}()
	msg, buf := make([]byte, 64), make([]byte, 64)
	b.ReportAllocs()
	for b.Loop() {
		x.SendBytes(ctx, msg)
		x.RecvBytesInto(ctx, buf)
	}
}

// BenchmarkPipeThroughput is the throughput of messages of 64 B and 64 KiB
// over a Pipe, received with RecvBytesInto and with RecvBytes, with a
// context that can end.
func BenchmarkPipeThroughput(b *testing.B) {
	for _, size := range []int{64, 64 << 10} {
		for _, into := range []bool{true, false} {
			name := fmt.Sprintf("%d/into=%v", size, into)
			b.Run(name, func(b *testing.B) {
				x, y, err := mproc.Pipe(mproc.Duplex)
				if err != nil {
					b.Fatal(err)
				}
				defer x.Close()
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				done := make(chan struct{})
				go func() {
					defer close(done)
					defer y.Close()
					buf := make([]byte, size)
					for {
						var err error
						if into {
							_, err = y.RecvBytesInto(ctx, buf)
						} else {
							_, err = y.RecvBytes(ctx)
						}
						if err != nil {
							return
						}
					}
				}()
				msg := make([]byte, size)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					x.SendBytes(ctx, msg)
				}
				x.Close()
				<-done
			})
		}
	}
}

// BenchmarkPipe1M is the throughput of 1 MiB messages over a Pipe.
func BenchmarkPipe1M(b *testing.B) {
	x, y, err := mproc.Pipe(mproc.Duplex)
	if err != nil {
		b.Fatal(err)
	}
	defer x.Close()
	ctx := context.Background()
	go func() {
		buf := make([]byte, 1<<20)
		for {
			if _, err := y.RecvBytesInto(ctx, buf); err != nil {
				y.Close()
				return
			}
		}
	}()
	msg := make([]byte, 1<<20)
	b.SetBytes(1 << 20)
	b.ReportAllocs()
	for b.Loop() {
		x.SendBytes(ctx, msg)
	}
}

// A closed Conn says so: sending, receiving, and a receive waiting when
// Close comes all return errors matching os.ErrClosed.
func TestConnClosed(t *testing.T) {
	a, b := pipe(t, mproc.Duplex)
	ctx := ctxTimeout(t, 10*time.Second)
	done := make(chan error, 1)
	go func() {
		_, err := b.RecvBytes(ctx)
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	b.Close()
	if err := <-done; !errors.Is(err, os.ErrClosed) {
		t.Fatalf("receive waiting at Close: %v", err)
	}
	if err := b.SendBytes(ctx, []byte("x")); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("send after Close: %v", err)
	}
	if _, err := b.RecvBytes(ctx); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("receive after Close: %v", err)
	}
	// After a bad frame the Conn closes itself.
	x, y := pipe(t, mproc.Duplex)
	y.SetMaxFrame(1)
	x.SendBytes(ctx, []byte("too long"))
	if _, err := y.RecvBytes(ctx); !errors.Is(err, mproc.ErrFrameTooLarge) {
		t.Fatalf("oversized frame: %v", err)
	}
	if _, err := y.RecvBytes(ctx); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("receive after a bad frame: %v", err)
	}
	a.Close()
}

// A frame's header alone cannot make the receiver allocate what it
// claims: past 4 MiB the payload grows as its bytes arrive. A peer that
// claims 200 MiB and hangs up costs a few MiB; a real 20 MiB frame still
// arrives whole.
func TestFrameHeaderClaimsLittle(t *testing.T) {
	ctx := ctxTimeout(t, 20*time.Second)
	a, b, err := mproc.Pipe(mproc.Duplex)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	f, err := b.File()
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	if _, err := f.Write([]byte{0x0c, 0x80, 0x00, 0x00}); err != nil { // 200 MiB, big-endian
		t.Fatal(err)
	}
	f.Write(make([]byte, 1000))
	f.Close()
	if _, err := a.RecvBytes(ctx); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("RecvBytes of a frame cut short: %v, want io.ErrUnexpectedEOF", err)
	}
	runtime.ReadMemStats(&m1)
	if d := m1.TotalAlloc - m0.TotalAlloc; d > 16<<20 {
		t.Fatalf("a 4-byte header claiming 200 MiB made the receiver allocate %d MiB", d>>20)
	}

	c, d, err := mproc.Pipe(mproc.Duplex)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	defer d.Close()
	msg := make([]byte, 20<<20)
	for i := range msg {
		msg[i] = byte(i * 7)
	}
	go c.SendBytes(ctx, msg)
	got, err := d.RecvBytes(ctx)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("a 20 MiB frame: %d bytes, %v", len(got), err)
	}
}
