package shmnet_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"mproc"
	"mproc/internal/testenv"
	"mproc/shmnet"
)

// streamSize is what TestStreamFromChild sends, under the race detector
// too (about 0.6 s there, 0.2 s without, on the 2-CPU development VM).
const streamSize = 1 << 30

// peerBound is how soon a peer's death must fail the survivor's call in
// the tests: generous, for a busy machine; the benchmark measures the
// real figure (about one 25 ms slice).
const peerBound = 2 * time.Second

// pattern is the stream the tests send: position i holds
// pattern[i%patternLen], and the slice runs maxChunk bytes past
// patternLen so that any chunk is one contiguous slice. patternLen is not
// a power of two, so the pattern never lines up with a ring.
const (
	patternLen = 1<<20 + 7
	maxChunk   = 256 << 10
)

var pattern = func() []byte {
	b := make([]byte, patternLen+maxChunk)
	r := rand.NewChaCha8([32]byte{'s', 'h', 'm', 'n', 'e', 't'})
	r.Read(b[:patternLen])
	copy(b[patternLen:], b)
	return b
}()

// streamAt returns the n ≤ maxChunk bytes of the stream at offset off.
func streamAt(off int64, n int) []byte {
	o := int(off % patternLen)
	return pattern[o : o+n]
}

func newCRC() hash.Hash32 { return crc32.New(crc32.MakeTable(crc32.Castagnoli)) }

// peerArgs is the argument of the tests' children.
type peerArgs struct {
	Path string
	Key  []byte
	Size int64
	Go   *mproc.Event // slowReader: start reading once set
}

// streamSender dials Path and sends Size bytes of the pattern in writes of
// random sizes, then their CRC-32C; it reads back the CRC the parent
// computed and fails if the two differ.
var streamSender = mproc.Register("shmnet.streamSender", func(ctx context.Context, a peerArgs) error {
	c, err := shmnet.Dial(ctx, a.Path, &shmnet.Options{Key: a.Key})
	if err != nil {
		return err
	}
	defer c.Close()
	sum := newCRC()
	r := rand.New(rand.NewPCG(1, 2))
	for off := int64(0); off < a.Size; {
		n := int(min(int64(1+r.IntN(maxChunk)), a.Size-off))
		b := streamAt(off, n)
		if _, err := c.Write(b); err != nil {
			return fmt.Errorf("write at %d: %w", off, err)
		}
		sum.Write(b)
		off += int64(n)
	}
	mine := sum.Sum32()
	if err := binary.Write(c, binary.BigEndian, mine); err != nil {
		return err
	}
	var theirs uint32
	if err := binary.Read(c, binary.BigEndian, &theirs); err != nil {
		return fmt.Errorf("read the parent's checksum: %w", err)
	}
	if theirs != mine {
		return fmt.Errorf("the parent received CRC %#x, this child sent %#x", theirs, mine)
	}
	return nil
})

// TestStreamFromChild streams streamSize bytes from a child process over a
// keyed connection, in writes and reads of random sizes, and compares the
// checksums on both sides.
func TestStreamFromChild(t *testing.T) {
	testenv.CheckFDLeaks(t)
	key := []byte("stream key")
	ln, err := shmnet.Listen(filepath.Join(t.TempDir(), "s"), &shmnet.Options{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := streamSender.Start(ctx, peerArgs{Path: ln.Addr().String(), Key: key, Size: streamSize}, mproc.ProcOptions{})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Reap(t, p)
	c, err := ln.AcceptConn()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	sum, want := newCRC(), newCRC()
	r := rand.New(rand.NewPCG(3, 4))
	buf := make([]byte, maxChunk)
	var off int64
	for off < streamSize {
		n, err := c.Read(buf[:min(int64(1+r.IntN(maxChunk)), streamSize-off)])
		if err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
		sum.Write(buf[:n])
		want.Write(streamAt(off, n))
		off += int64(n)
	}
	el := time.Since(start)
	var theirs uint32
	if err := binary.Read(c, binary.BigEndian, &theirs); err != nil {
		t.Fatal(err)
	}
	if err := binary.Write(c, binary.BigEndian, sum.Sum32()); err != nil {
		t.Fatal(err)
	}
	if sum.Sum32() != theirs || sum.Sum32() != want.Sum32() {
		t.Errorf("CRC received %#x, the child's %#x, of the pattern %#x", sum.Sum32(), theirs, want.Sum32())
	}
	if err := testenv.Wait(t, p); err != nil {
		t.Fatalf("child: %v", err)
	}
	if n, err := c.Read(buf); n != 0 || err != io.EOF {
		t.Errorf("after the child's Close: %d, %v; want EOF", n, err)
	}
	t.Logf("%d MiB in %v (%.2f GB/s, both sides checksumming)", streamSize>>20, el, float64(streamSize)/el.Seconds()/1e9)
}

// endless dials Path and writes the pattern for ever.
var endlessWriter = mproc.Register("shmnet.endlessWriter", func(ctx context.Context, a peerArgs) error {
	c, err := shmnet.Dial(ctx, a.Path, nil)
	if err != nil {
		return err
	}
	for off := int64(0); ; off += 64 << 10 {
		if _, err := c.Write(streamAt(off, 64<<10)); err != nil {
			return err
		}
	}
})

// endlessReader listens on Path, accepts one connection and reads it for
// ever.
var endlessReader = mproc.Register("shmnet.endlessReader", func(ctx context.Context, a peerArgs) error {
	ln, err := shmnet.Listen(a.Path, nil)
	if err != nil {
		return err
	}
	c, err := ln.Accept()
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, c)
	return err
})

// idlePeer dials Path and waits, reading, for bytes that never come.
var idlePeer = mproc.Register("shmnet.idlePeer", func(ctx context.Context, a peerArgs) error {
	c, err := shmnet.Dial(ctx, a.Path, nil)
	if err != nil {
		return err
	}
	_, err = c.Read(make([]byte, 1))
	return err
})

// TestPeerKilled kills the peer with SIGKILL mid-stream, as writer and as
// reader, as dialer and as listener, and with an idle connection: the
// survivor's waiting or next call must fail with ErrPeerGone within
// peerBound, and after Close nothing of the connection may remain in this
// process (descriptors, mappings). Then again with this side's socket
// watcher off, so that only the owner-token check can notice.
func TestPeerKilled(t *testing.T) {
	t.Run("watched", testPeerKilled)
	t.Run("token only", func(t *testing.T) {
		shmnet.SetWatchSockets(false)
		defer shmnet.SetWatchSockets(true)
		testPeerKilled(t)
	})
}

func testPeerKilled(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, path string) (*mproc.Process, net.Conn, func(net.Conn) error)
	}{
		{"writer-dialer", func(t *testing.T, path string) (*mproc.Process, net.Conn, func(net.Conn) error) {
			p, c := acceptChild(t, path, endlessWriter)
			if _, err := io.CopyN(io.Discard, c, 4<<20); err != nil {
				t.Fatal(err)
			}
			return p, c, func(c net.Conn) error { _, err := io.Copy(io.Discard, c); return err }
		}},
		{"reader-listener", func(t *testing.T, path string) (*mproc.Process, net.Conn, func(net.Conn) error) {
			p := start(t, endlessReader, peerArgs{Path: path})
			c := dialRetry(t, path)
			for off := int64(0); off < 4<<20; off += 64 << 10 {
				if _, err := c.Write(streamAt(off, 64<<10)); err != nil {
					t.Fatal(err)
				}
			}
			return p, c, func(c net.Conn) error {
				for off := int64(0); ; off += 64 << 10 {
					if _, err := c.Write(streamAt(off, 64<<10)); err != nil {
						return err
					}
				}
			}
		}},
		{"idle", func(t *testing.T, path string) (*mproc.Process, net.Conn, func(net.Conn) error) {
			p, c := acceptChild(t, path, idlePeer)
			return p, c, func(c net.Conn) error { _, err := c.Read(make([]byte, 1)); return err }
		}},
		{"next write", func(t *testing.T, path string) (*mproc.Process, net.Conn, func(net.Conn) error) {
			p, c := acceptChild(t, path, idlePeer)
			// A Write after the death, into a ring with room: it must fail
			// without waiting (with the watcher), or at least once the ring
			// is full (the token check while it waits).
			return p, c, func(c net.Conn) error {
				time.Sleep(300 * time.Millisecond)
				msg := make([]byte, 64)
				for n := 0; ; n += len(msg) {
					if _, err := c.Write(msg); err != nil {
						if n > 0 && !strings.Contains(t.Name(), "token") {
							t.Errorf("%d bytes written after the death before the Write failed", n)
						}
						return err
					}
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testenv.CheckFDLeaks(t)
			p, c, finish := tc.run(t, filepath.Join(t.TempDir(), "s"))
			errc := make(chan error, 1)
			go func() { errc <- finish(c) }()
			time.Sleep(50 * time.Millisecond) // the survivor is in the middle of its call
			killed := time.Now()
			if err := p.Kill(); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-errc:
				el := time.Since(killed)
				if !errors.Is(err, shmnet.ErrPeerGone) {
					t.Errorf("after the peer's death: %v, want ErrPeerGone", err)
				}
				t.Logf("the survivor's call failed %v after SIGKILL: %v", el, err)
				if el > peerBound {
					t.Errorf("the survivor noticed the death after %v, want < %v", el, peerBound)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("the survivor hangs after its peer's death")
			}
			var ee *mproc.ExitError
			if err := testenv.Wait(t, p); !errors.As(err, &ee) || ee.Signal != os.Kill {
				t.Errorf("child: %v, want killed", err)
			}
			if err := c.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			if m := segmentMappings(t); len(m) > 0 {
				t.Errorf("segments still mapped after Close: %v", m)
			}
		})
	}
}

// acceptChild listens on path, starts a child running f, which dials it,
// and returns the child and the connection it made.
func acceptChild(t *testing.T, path string, f *mproc.Func[peerArgs]) (*mproc.Process, net.Conn) {
	t.Helper()
	ln, err := shmnet.Listen(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p := start(t, f, peerArgs{Path: path})
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	return p, c
}

// start starts a child running f, stopped at the end of the test if it is
// still alive.
func start(t *testing.T, f *mproc.Func[peerArgs], a peerArgs) *mproc.Process {
	t.Helper()
	p, err := f.Start(context.Background(), a, mproc.ProcOptions{})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Reap(t, p)
	return p
}

// dialRetry dials path until a child has started listening there.
func dialRetry(t *testing.T, path string) *shmnet.Conn {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := shmnet.Dial(context.Background(), path, nil)
		if err == nil {
			return c
		}
		// The socket file appears at bind, before listen: a dial in
		// between is refused.
		if !errors.Is(err, os.ErrNotExist) && !errors.Is(err, syscall.ECONNREFUSED) || time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// segmentMappings returns the lines of /proc/self/maps that map a shmnet
// segment (a memfd named after the shared-memory kind).
func segmentMappings(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		if strings.Contains(s.Text(), "memfd:mproc:") {
			out = append(out, s.Text())
		}
	}
	return out
}

// slowReader dials Path, waits for Go, reads Size bytes and writes back
// their CRC-32C.
var slowReader = mproc.Register("shmnet.slowReader", func(ctx context.Context, a peerArgs) error {
	c, err := shmnet.Dial(ctx, a.Path, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := a.Go.Wait(ctx); err != nil {
		return err
	}
	sum := newCRC()
	if _, err := io.CopyN(sum, c, a.Size); err != nil {
		return err
	}
	return binary.Write(c, binary.BigEndian, sum.Sum32())
})

// TestDeadlineMidWrite lets a large Write run into its deadline while the
// reader, a child, is not reading: the Write returns the count it copied
// and a timeout; after a new deadline the rest is written, and the child
// must have received every byte once and in order.
func TestDeadlineMidWrite(t *testing.T) {
	testenv.CheckFDLeaks(t)
	const size = 8 << 20
	opts := &shmnet.Options{RingSize: 64 << 10}
	ln, err := shmnet.Listen(filepath.Join(t.TempDir(), "s"), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ev, err := mproc.NewEvent()
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	p := start(t, slowReader, peerArgs{Path: ln.Addr().String(), Size: size, Go: ev})
	c, err := ln.AcceptConn()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b := make([]byte, size)
	for off := 0; off < size; off += maxChunk {
		copy(b[off:], streamAt(int64(off), maxChunk))
	}

	c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	n, err := c.Write(b)
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Write into a full ring past its deadline: %d, %v; want a timeout", n, err)
	}
	if n <= 0 || n >= size {
		t.Fatalf("Write past its deadline wrote %d of %d bytes", n, size)
	}
	t.Logf("the first Write copied %d bytes before its deadline", n)

	ev.Set()
	c.SetWriteDeadline(time.Now().Add(time.Minute))
	if m, err := c.Write(b[n:]); err != nil || n+m != size {
		t.Fatalf("the rest: %d, %v", m, err)
	}
	var theirs uint32
	if err := binary.Read(c, binary.BigEndian, &theirs); err != nil {
		t.Fatal(err)
	}
	if want := crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)); theirs != want {
		t.Errorf("the child received CRC %#x, sent %#x", theirs, want)
	}
	if err := testenv.Wait(t, p); err != nil {
		t.Errorf("child: %v", err)
	}
}
