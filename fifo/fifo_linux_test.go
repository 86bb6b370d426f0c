package fifo_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"mproc"
	"mproc/fifo"
	"mproc/internal/testenv"
)

// cancelLatency is how soon a wait must end after its context does.
const cancelLatency = 25 * time.Millisecond

// Child functions, registered at package level as mproc.Register requires.
var (
	// writerFn sends Count checksummed messages (see makeMsg) as writer ID.
	writerFn = mproc.Register("fifo-writer", func(ctx context.Context, a writerArgs) error {
		w, err := fifo.OpenWriter(ctx, a.Path)
		if err != nil {
			return err
		}
		defer w.Close()
		rng := rand.New(rand.NewPCG(uint64(a.ID), 7))
		for seq := range a.Count {
			if err := w.WriteMessage(ctx, makeMsg(rng, a.ID, seq)); err != nil {
				return fmt.Errorf("message %d: %w", seq, err)
			}
		}
		return w.Close()
	})
	// readerFn reads the FIFO to its end and fails unless it read Want.
	readerFn = mproc.Register("fifo-reader", func(ctx context.Context, a readerArgs) error {
		r, err := fifo.OpenReader(ctx, a.Path)
		if err != nil {
			return err
		}
		defer r.Close()
		got, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		if string(got) != a.Want {
			return fmt.Errorf("read %d bytes %.40q..., want %d bytes %.40q...", len(got), got, len(a.Want), a.Want)
		}
		return nil
	})
	// noReaderFn writes to a FIFO whose reader it closed, and fails unless
	// it got ErrNoReader and lived.
	noReaderFn = mproc.Register("fifo-no-reader", func(ctx context.Context, path string) error {
		r, err := fifo.OpenServer(path)
		if err != nil {
			return err
		}
		w, err := fifo.OpenWriter(ctx, path)
		if err != nil {
			return err
		}
		defer w.Close()
		r.Close()
		for range 3 {
			if _, err := w.Write([]byte("anyone?")); !errors.Is(err, fifo.ErrNoReader) || !errors.Is(err, syscall.EPIPE) {
				return fmt.Errorf("write with no reader: %v, want ErrNoReader", err)
			}
		}
		return nil
	})
)

type writerArgs struct {
	Path      string
	ID, Count int
}

type readerArgs struct{ Path, Want string }

// makeMsg makes message seq of writer id: id, seq and the CRC-32 of the
// random rest, then the rest; half of them as long as a message can be.
func makeMsg(rng *rand.Rand, id, seq int) []byte {
	n := fifo.MaxMessage
	if rng.IntN(2) == 0 {
		n = 12 + rng.IntN(fifo.MaxMessage-12)
	}
	msg := make([]byte, n)
	for i := 12; i < n; i++ {
		msg[i] = byte(rng.Uint32())
	}
	binary.LittleEndian.PutUint32(msg[0:], uint32(id))
	binary.LittleEndian.PutUint32(msg[4:], uint32(seq))
	binary.LittleEndian.PutUint32(msg[8:], crc32.ChecksumIEEE(msg[12:]))
	return msg
}

// checkMsg verifies a message of makeMsg and returns its writer and
// sequence number.
func checkMsg(msg []byte) (id, seq int, err error) {
	if len(msg) < 12 {
		return 0, 0, fmt.Errorf("message of %d bytes", len(msg))
	}
	if got, want := crc32.ChecksumIEEE(msg[12:]), binary.LittleEndian.Uint32(msg[8:]); got != want {
		return 0, 0, fmt.Errorf("message of %d bytes: checksum %08x, want %08x", len(msg), got, want)
	}
	return int(binary.LittleEndian.Uint32(msg[0:])), int(binary.LittleEndian.Uint32(msg[4:])), nil
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newFIFO creates a FIFO in a fresh directory and returns its path.
func newFIFO(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fifo")
	if err := fifo.Create(path, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// openPair opens both ends of path in this process; the test closes them.
func openPair(t *testing.T, path string) (*fifo.Reader, *fifo.Writer) {
	t.Helper()
	ctx := testCtx(t)
	type result struct {
		r   *fifo.Reader
		err error
	}
	ch := make(chan result, 1)
	go func() {
		r, err := fifo.OpenReader(ctx, path)
		ch <- result{r, err}
	}()
	w, werr := fifo.OpenWriter(ctx, path)
	res := <-ch
	if werr != nil || res.err != nil {
		closeIf(w, werr)
		closeIf(res.r, res.err)
		t.Fatalf("OpenWriter: %v; OpenReader: %v", werr, res.err)
	}
	t.Cleanup(func() { res.r.Close(); w.Close() })
	return res.r, w
}

func start[A any](t *testing.T, f *mproc.Func[A], arg A) *mproc.Process {
	t.Helper()
	p, err := f.Start(testCtx(t), arg, mproc.ProcOptions{})
	if err != nil {
		t.Fatalf("Start %s: %v", f.Name(), err)
	}
	testenv.Reap(t, p)
	return p
}

func wait(t *testing.T, p *mproc.Process) error { t.Helper(); return testenv.Wait(t, p) }

// cancelled runs op, cancels its context after a while, and checks that op
// returns context.Canceled soon after. A loaded machine may be late once:
// only if three tries in a row are late is it op that is slow.
func cancelled(t *testing.T, name string, op func(ctx context.Context) error) {
	t.Helper()
	var late []time.Duration
	for range 3 {
		d := cancelOnce(t, name, op)
		t.Logf("%s returned %v after the cancel", name, d)
		if d <= cancelLatency {
			return
		}
		late = append(late, d)
	}
	t.Errorf("%s returned %v after the cancel, want under %v", name, late, cancelLatency)
}

func cancelOnce(t *testing.T, name string, op func(ctx context.Context) error) time.Duration {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- op(ctx) }()
	select {
	case err := <-done:
		t.Fatalf("%s returned before its context ended: %v", name, err)
	case <-time.After(50 * time.Millisecond):
	}
	at := time.Now()
	cancel()
	select {
	case err := <-done:
		d := time.Since(at)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s: %v, want context.Canceled", name, err)
		}
		return d
	case <-time.After(5 * time.Second):
		t.Fatalf("%s still waiting 5s after its context was cancelled", name)
	}
	return 0
}

// timedOut runs op with a context that times out and checks that it returns
// context.DeadlineExceeded, in time (at least once in three tries).
func timedOut(t *testing.T, name string, op func(ctx context.Context) error) {
	t.Helper()
	// A deadline is the scheduler's to keep: on a loaded 2-CPU VM a timer
	// fires 100+ ms late, so the bound is generous; cancellation latency
	// proper is checked by cancelled.
	const timeout, slack = 30 * time.Millisecond, 250 * time.Millisecond
	var late []time.Duration
	for range 3 {
		ctx, cancel := context.WithTimeout(t.Context(), timeout)
		at := time.Now()
		err := op(ctx)
		d := time.Since(at)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: %v, want context.DeadlineExceeded", name, err)
		}
		if d < timeout {
			t.Errorf("%s with a %v timeout returned after %v", name, timeout, d)
		}
		if d <= timeout+slack {
			return
		}
		late = append(late, d)
	}
	t.Errorf("%s with a %v timeout returned after %v", name, timeout, late)
}

func TestGoToGoAcrossProcesses(t *testing.T) {
	testenv.CheckFDLeaks(t)
	ctx := testCtx(t)
	path := newFIFO(t)

	// A child writes messages; this process reads them, then the end.
	p := start(t, writerFn, writerArgs{Path: path, ID: 1, Count: 100})
	r, err := fifo.OpenReader(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for seq := range 100 {
		msg, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("message %d: %v", seq, err)
		}
		id, got, err := checkMsg(msg)
		if err != nil || id != 1 || got != seq {
			t.Fatalf("message %d: writer %d, number %d, %v", seq, id, got, err)
		}
	}
	if msg, err := r.ReadMessage(ctx); err != io.EOF {
		t.Fatalf("after the writer exited: %q, %v; want io.EOF", msg, err)
	}
	if err := wait(t, p); err != nil {
		t.Fatal(err)
	}

	// This process writes; a child reads it all and checks it.
	want := strings.Repeat("mproc fifo 0123456789\n", 20000) // 440 kB: several pipe-fulls
	p = start(t, readerFn, readerArgs{Path: path, Want: want})
	w, err := fifo.OpenWriter(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := w.WriteContext(ctx, []byte(want)); err != nil || n != len(want) {
		t.Fatalf("WriteContext: %d, %v", n, err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := wait(t, p); err != nil {
		t.Fatal(err)
	}
}

func sh(t *testing.T, script string, args ...string) *exec.Cmd {
	t.Helper()
	if _, err := exec.LookPath("sh"); err != nil {
		t.Fatalf("no sh: %v", err)
	}
	return exec.CommandContext(testCtx(t), "sh", append([]string{"-c", script, "sh"}, args...)...)
}

func TestShellWritesGoReads(t *testing.T) {
	testenv.CheckFDLeaks(t)
	ctx := testCtx(t)
	path := newFIFO(t)
	for _, c := range []struct {
		script  string
		message bool
		want    string
	}{
		{`echo hello > "$1"`, false, "hello\n"},
		{`exec 3>"$1"; echo one >&3; sleep 0.05; echo two >&3`, false, "one\ntwo\n"},
		{`msg='hello, world'; printf '%04x%s' $(( ${#msg} + 4 )) "$msg" > "$1"`, true, "hello, world"},
	} {
		cmd := sh(t, c.script, path)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		r, err := fifo.OpenReader(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		var got []byte
		if c.message {
			got, err = r.ReadMessage(ctx)
			if err == nil {
				_, err = r.ReadMessage(ctx)
				if err == io.EOF {
					err = nil
				}
			}
		} else {
			got, err = io.ReadAll(r)
		}
		r.Close()
		if werr := cmd.Wait(); werr != nil {
			t.Errorf("%s: %v", c.script, werr)
		}
		if err != nil || string(got) != c.want {
			t.Errorf("%s: read %q, %v; want %q", c.script, got, err, c.want)
		}
	}
}

func TestGoWritesShellReads(t *testing.T) {
	testenv.CheckFDLeaks(t)
	ctx := testCtx(t)
	path := newFIFO(t)
	for _, message := range []bool{false, true} {
		var out bytes.Buffer
		cmd := sh(t, `cat "$1"`, path)
		cmd.Stdout = &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		w, err := fifo.OpenWriter(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		want := "hello from go\n"
		if message {
			err = w.WriteMessage(ctx, []byte("hello, world"))
			want = "0010hello, world"
		} else {
			_, err = w.Write([]byte(want))
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Wait(); err != nil {
			t.Fatal(err)
		}
		if out.String() != want {
			t.Errorf("cat read %q, want %q", out.String(), want)
		}
	}
}

func TestOpenCancel(t *testing.T) {
	testenv.CheckFDLeaks(t)
	path := newFIFO(t)
	open := map[string]func(ctx context.Context) error{
		"OpenReader": func(ctx context.Context) error {
			r, err := fifo.OpenReader(ctx, path)
			if err == nil {
				r.Close()
			}
			return err
		},
		"OpenWriter": func(ctx context.Context) error {
			w, err := fifo.OpenWriter(ctx, path)
			if err == nil {
				w.Close()
			}
			return err
		},
	}
	for name, op := range open {
		cancelled(t, name, op)
		timedOut(t, name, op)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := op(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a done context: %v", name, err)
		}
	}
}

func TestReadWriteCancel(t *testing.T) {
	testenv.CheckFDLeaks(t)
	ctx := testCtx(t)
	r, w := openPair(t, newFIFO(t))
	buf := make([]byte, 10)

	// Reading an empty FIFO waits; the wait ends with its context, and
	// leaves no deadline behind.
	cancelled(t, "ReadContext", func(ctx context.Context) error { _, err := r.ReadContext(ctx, buf); return err })
	timedOut(t, "ReadContext", func(ctx context.Context) error { _, err := r.ReadContext(ctx, buf); return err })
	cancelled(t, "ReadMessage", func(ctx context.Context) error { _, err := r.ReadMessage(ctx); return err })
	go func() {
		time.Sleep(20 * time.Millisecond)
		w.Write([]byte("late"))
	}()
	if n, err := r.Read(buf); err != nil || string(buf[:n]) != "late" {
		t.Fatalf("Read after cancelled reads: %q, %v", buf[:n], err)
	}

	// A message cut short by the context stays whole for the next call.
	if _, err := w.Write([]byte("000dhel")); err != nil {
		t.Fatal(err)
	}
	timedOut(t, "ReadMessage of half a message", func(ctx context.Context) error { _, err := r.ReadMessage(ctx); return err })
	if _, err := w.Write([]byte("lo, go")); err != nil {
		t.Fatal(err)
	}
	if msg, err := r.ReadMessage(ctx); err != nil || string(msg) != "hello, go" {
		t.Fatalf("ReadMessage after a timeout: %q, %v", msg, err)
	}

	// Fill the FIFO: writing then waits for room.
	big := make([]byte, 1<<20)
	fillCtx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	n, err := w.WriteContext(fillCtx, big)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || n == 0 || n == len(big) {
		t.Fatalf("WriteContext of 1 MiB to an unread FIFO: %d, %v", n, err)
	}
	cancelled(t, "WriteContext", func(ctx context.Context) error { _, err := w.WriteContext(ctx, big); return err })
	cancelled(t, "WriteMessage", func(ctx context.Context) error { return w.WriteMessage(ctx, []byte("no room")) })
	timedOut(t, "WriteMessage", func(ctx context.Context) error { return w.WriteMessage(ctx, []byte("no room")) })
	// Drained, the FIFO takes writes again.
	got := 0
	for got < n {
		m, err := r.ReadContext(ctx, big)
		if err != nil {
			t.Fatal(err)
		}
		got += m
	}
	if got != n {
		t.Fatalf("read %d bytes, %d were written", got, n)
	}
	if err := w.WriteMessage(ctx, []byte("room")); err != nil {
		t.Fatal(err)
	}
	if msg, err := r.ReadMessage(ctx); err != nil || string(msg) != "room" {
		t.Fatalf("ReadMessage: %q, %v", msg, err)
	}
}

func TestEOF(t *testing.T) {
	testenv.CheckFDLeaks(t)
	r, w := openPair(t, newFIFO(t))
	if _, err := w.Write([]byte("abc")); err != nil {
		t.Fatal(err)
	}
	w.Close()
	got, err := io.ReadAll(r)
	if err != nil || string(got) != "abc" {
		t.Fatalf("ReadAll: %q, %v", got, err)
	}
	for range 2 {
		if n, err := r.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Fatalf("Read after the end: %d, %v", n, err)
		}
		if _, err := r.ReadMessage(t.Context()); err != io.EOF {
			t.Fatalf("ReadMessage after the end: %v", err)
		}
	}
}

// OpenReader returns once a writer shows itself: by holding the FIFO open
// without writing, or by opening and closing it.
func TestOpenReaderWaitsForWriter(t *testing.T) {
	testenv.CheckFDLeaks(t)
	ctx := testCtx(t)
	path := newFIFO(t)
	for _, hold := range []bool{true, false} {
		opened := make(chan *fifo.Reader, 1)
		go func() {
			r, err := fifo.OpenReader(ctx, path)
			if err != nil {
				t.Error(err)
			}
			opened <- r
		}()
		select {
		case r := <-opened:
			t.Fatalf("OpenReader returned with no writer (%v)", r)
		case <-time.After(30 * time.Millisecond):
		}
		w, err := fifo.OpenWriter(ctx, path) // succeeds: OpenReader's descriptor is a reader
		if err != nil {
			t.Fatal(err)
		}
		if !hold {
			w.Close()
		}
		var r *fifo.Reader
		select {
		case r = <-opened:
		case <-time.After(time.Second):
			t.Fatalf("OpenReader still waiting a second after a writer opened (hold %v)", hold)
		}
		if r == nil {
			t.FailNow()
		}
		if hold {
			if _, err := w.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
			w.Close()
			if got, err := io.ReadAll(r); err != nil || string(got) != "x" {
				t.Errorf("ReadAll: %q, %v", got, err)
			}
		} else if n, err := r.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Errorf("Read after a writer came and went: %d, %v; want io.EOF", n, err)
		}
		r.Close()
	}
}

func TestNoReader(t *testing.T) {
	testenv.CheckFDLeaks(t)
	ctx := testCtx(t)
	r, w := openPair(t, newFIFO(t))
	r.Close()
	if _, err := w.Write([]byte("x")); !errors.Is(err, fifo.ErrNoReader) || !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("Write with no reader: %v", err)
	}
	if err := w.WriteMessage(ctx, []byte("x")); !errors.Is(err, fifo.ErrNoReader) {
		t.Fatalf("WriteMessage with no reader: %v", err)
	}

	// A write waiting for room fails when the reader goes.
	r, w = openPair(t, newFIFO(t))
	done := make(chan error, 1)
	go func() { _, err := w.WriteContext(ctx, make([]byte, 1<<20)); done <- err }()
	time.Sleep(30 * time.Millisecond)
	r.Close()
	select {
	case err := <-done:
		if !errors.Is(err, fifo.ErrNoReader) {
			t.Fatalf("blocked write when the reader closed: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("blocked write still waiting 5s after the reader closed")
	}

	// And in a child, which must exit normally rather than die of SIGPIPE.
	p := start(t, noReaderFn, newFIFO(t))
	if err := wait(t, p); err != nil || p.ExitCode() != 0 {
		t.Fatalf("child: %v, exit code %d", err, p.ExitCode())
	}
}

// Many writer processes share a FIFO: no message is torn or interleaved,
// none is lost, each writer's arrive in order.
func TestConcurrentWriterProcesses(t *testing.T) {
	testenv.CheckFDLeaks(t)
	ctx := testCtx(t)
	path := newFIFO(t)
	const writers, count = 8, 300
	r, err := fifo.OpenServer(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var procs []*mproc.Process
	for id := range writers {
		procs = append(procs, start(t, writerFn, writerArgs{Path: path, ID: id, Count: count}))
	}
	next := make([]int, writers)
	for i := range writers * count {
		msg, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		id, seq, err := checkMsg(msg)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if id < 0 || id >= writers || seq != next[id] {
			t.Fatalf("message %d: writer %d, number %d, want %d", i, id, seq, next[id%writers])
		}
		next[id]++
	}
	for _, p := range procs {
		if err := wait(t, p); err != nil {
			t.Fatal(err)
		}
	}
	// A server's reader never sees the end: it waits for the next writer.
	timedOut(t, "ReadMessage of a server with no writer", func(ctx context.Context) error { _, err := r.ReadMessage(ctx); return err })
}

// The checker of TestConcurrentWriterProcesses sees interleaved messages.
func TestCheckerSeesInterleaving(t *testing.T) {
	testenv.CheckFDLeaks(t)
	ctx := testCtx(t)
	r, w := openPair(t, newFIFO(t))
	rng := rand.New(rand.NewPCG(1, 2))
	a, b := makeMsg(rng, 0, 0), makeMsg(rng, 1, 0)
	frame := func(m []byte) []byte { return append([]byte(fmt.Sprintf("%04x", len(m)+4)), m...) }
	fa, fb := frame(a), frame(b)
	// a's first half, all of b, a's second half: what non-atomic writes may do.
	for _, part := range [][]byte{fa[:len(fa)/2], fb, fa[len(fa)/2:]} {
		if _, err := w.Write(part); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	bad := false
	for {
		msg, err := r.ReadMessage(ctx)
		if err != nil {
			bad = bad || err != io.EOF
			break
		}
		if _, _, err := checkMsg(msg); err != nil {
			bad = true
		}
	}
	if !bad {
		t.Fatal("interleaved messages went unnoticed")
	}
}

func TestMessages(t *testing.T) {
	testenv.CheckFDLeaks(t)
	ctx := testCtx(t)
	r, w := openPair(t, newFIFO(t))
	for _, n := range []int{0, 1, 100, fifo.MaxMessage} {
		msg := bytes.Repeat([]byte{'m'}, n)
		if err := w.WriteMessage(ctx, msg); err != nil {
			t.Fatalf("WriteMessage of %d bytes: %v", n, err)
		}
		got, err := r.ReadMessage(ctx)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("ReadMessage of %d bytes: %d bytes, %v", n, len(got), err)
		}
	}

	// Too large: refused, with both sizes named, and nothing written.
	err := w.WriteMessage(ctx, make([]byte, fifo.MaxMessage+1))
	if !errors.Is(err, fifo.ErrTooLarge) || !strings.Contains(err.Error(), "4093") || !strings.Contains(err.Error(), "4092") {
		t.Fatalf("WriteMessage of MaxMessage+1 bytes: %v", err)
	}
	timedOut(t, "ReadContext after a refused message", func(ctx context.Context) error {
		_, err := r.ReadContext(ctx, make([]byte, 1))
		return err
	})

	// Peers may write upper-case hex, and messages longer than PipeBuf;
	// Read and ReadMessage share the buffer.
	long := bytes.Repeat([]byte("0123456789"), 1000)
	if _, err := w.Write(fmt.Appendf(nil, "000AHELLO!raw%04x%s", len(long)+4, long)); err != nil {
		t.Fatal(err)
	}
	if got, err := r.ReadMessage(ctx); err != nil || string(got) != "HELLO!" {
		t.Fatalf("ReadMessage: %q, %v", got, err)
	}
	buf := make([]byte, 3)
	if n, err := io.ReadFull(r, buf); err != nil || string(buf[:n]) != "raw" {
		t.Fatalf("Read between messages: %q, %v", buf[:n], err)
	}
	if got, err := r.ReadMessage(ctx); err != nil || !bytes.Equal(got, long) {
		t.Fatalf("ReadMessage of %d bytes: %d bytes, %v", len(long), len(got), err)
	}

	// A bad header is an error, for good.
	for _, header := range []string{"0003", "xyz1", "-001"} {
		r, w := openPair(t, newFIFO(t))
		w.Write([]byte(header + "0004"))
		for range 2 {
			if _, err := r.ReadMessage(ctx); !errors.Is(err, fifo.ErrBadMessage) {
				t.Fatalf("header %q: %v, want ErrBadMessage", header, err)
			}
		}
	}

	// The end inside a message.
	for _, partial := range []string{"00", "0010hello"} {
		r, w := openPair(t, newFIFO(t))
		w.Write([]byte(partial))
		w.Close()
		if _, err := r.ReadMessage(ctx); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("stream ending in %q: %v, want io.ErrUnexpectedEOF", partial, err)
		}
	}
}

func TestClose(t *testing.T) {
	testenv.CheckFDLeaks(t)
	r, w := openPair(t, newFIFO(t))
	done := make(chan error, 1)
	go func() { _, err := r.Read(make([]byte, 1)); done <- err }()
	time.Sleep(20 * time.Millisecond)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrClosed) {
			t.Errorf("Read woken by Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Read still blocked 5s after Close")
	}
	if err := r.Close(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
	if _, err := r.ReadMessage(t.Context()); !errors.Is(err, os.ErrClosed) {
		t.Errorf("ReadMessage after Close: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("x")); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Write after Close: %v", err)
	}
	if err := w.WriteMessage(t.Context(), []byte("x")); !errors.Is(err, os.ErrClosed) {
		t.Errorf("WriteMessage after Close: %v", err)
	}
	if err := w.Close(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
}

// Descriptors are close-on-exec and non-blocking (in Go's poller).
func TestDescriptorFlags(t *testing.T) {
	testenv.CheckFDLeaks(t)
	path := newFIFO(t)
	before := testenv.FDs()
	openPair(t, path)
	found := 0
	for n, target := range testenv.FDs() {
		if _, ok := before[n]; ok || target != path {
			continue
		}
		found++
		info, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", n))
		if err != nil {
			t.Fatal(err)
		}
		var flags uint64
		for _, line := range strings.Split(string(info), "\n") {
			if v, ok := strings.CutPrefix(line, "flags:"); ok {
				flags, _ = strconv.ParseUint(strings.TrimSpace(v), 8, 64)
			}
		}
		if flags&syscall.O_CLOEXEC == 0 || flags&syscall.O_NONBLOCK == 0 {
			t.Errorf("fd %d on the FIFO has flags %o, want O_CLOEXEC and O_NONBLOCK", n, flags)
		}
	}
	if found != 2 {
		t.Errorf("found %d descriptors on the FIFO, want 2", found)
	}
}

func TestCreate(t *testing.T) {
	testenv.CheckFDLeaks(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := fifo.Create(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(path); err != nil || fi.Mode().Type() != os.ModeNamedPipe || fi.Mode().Perm()&^0o600 != 0 {
		t.Fatalf("created %v, %v", fi.Mode(), err)
	}
	if err := fifo.Create(path, 0o600); !errors.Is(err, os.ErrExist) || errors.Is(err, fifo.ErrNotFIFO) {
		t.Errorf("Create over a FIFO: %v", err)
	}

	// Anything else already there is an error, and left as it was.
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("precious"), 0o640); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(filepath.Join(dir, "nowhere"), link); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{file, dir, link} {
		err := fifo.Create(p, 0o600)
		if !errors.Is(err, os.ErrExist) || !errors.Is(err, fifo.ErrNotFIFO) {
			t.Errorf("Create over %s: %v", p, err)
		}
		t.Log(err)
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "precious" {
		t.Errorf("file after Create: %q, %v", b, err)
	}
	if fi, err := os.Lstat(file); err != nil || fi.Mode() != 0o640 {
		t.Errorf("file after Create: %v, %v", fi.Mode(), err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode().Type() != os.ModeSymlink {
		t.Errorf("link after Create: %v", err)
	}

	for _, c := range []struct {
		path string
		mode os.FileMode
		is   error
	}{
		{filepath.Join(dir, "missing", "f"), 0o600, os.ErrNotExist},
		{"", 0o600, os.ErrInvalid},
		{filepath.Join(dir, "nul\x00"), 0o600, os.ErrInvalid},
		{filepath.Join(dir, "setuid"), 0o600 | os.ModeSetuid, os.ErrInvalid},
		{filepath.Join(dir, "dir-mode"), 0o700 | os.ModeDir, os.ErrInvalid},
		{filepath.Join(dir, strings.Repeat("n", 256)), 0o600, syscall.ENAMETOOLONG},
		{dir + strings.Repeat("/n", 2100), 0o600, syscall.ENAMETOOLONG},
	} {
		if err := fifo.Create(c.path, c.mode); !errors.Is(err, c.is) {
			t.Errorf("Create(%.60q, %v): %v, want %v", c.path, c.mode, err, c.is)
		}
	}
	for _, name := range []string{"nul", "setuid", "dir-mode"} {
		if _, err := os.Lstat(filepath.Join(dir, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%q was created", name)
		}
	}
}

func TestOpenNotFIFO(t *testing.T) {
	testenv.CheckFDLeaks(t)
	ctx := testCtx(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(file, link); err != nil {
		t.Fatal(err)
	}
	opens := map[string]func(path string) error{
		"OpenReader":                  func(p string) error { r, err := fifo.OpenReader(ctx, p); closeIf(r, err); return err },
		"OpenWriter":                  func(p string) error { w, err := fifo.OpenWriter(ctx, p); closeIf(w, err); return err },
		"OpenServer":                  func(p string) error { r, err := fifo.OpenServer(p); closeIf(r, err); return err },
		"the check on the descriptor": fifo.OpenChecked,
	}
	for name, open := range opens {
		for _, p := range []string{file, link, dir, "/dev/null"} {
			if name == "the check on the descriptor" && p == "/dev/null" {
				continue // opening a device is what the first check avoids
			}
			if err := open(p); !errors.Is(err, fifo.ErrNotFIFO) {
				t.Errorf("%s(%s): %v, want ErrNotFIFO", name, p, err)
			}
		}
		if err := open(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s of a missing path: %v", name, err)
		}
		if err := open(""); !errors.Is(err, os.ErrInvalid) && name != "the check on the descriptor" {
			t.Errorf("%s of an empty path: %v", name, err)
		}
		if err := open(dir + strings.Repeat("/n", 2100)); !errors.Is(err, syscall.ENAMETOOLONG) {
			t.Errorf("%s of a path over PATH_MAX: %v", name, err)
		}
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "precious" {
		t.Errorf("file after the opens: %q, %v", b, err)
	}

	// A symbolic link to a FIFO is followed.
	path := newFIFO(t)
	link = filepath.Join(dir, "fifo-link")
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	r, w := openPair(t, link)
	w.Write([]byte("via link"))
	w.Close()
	if got, err := io.ReadAll(r); err != nil || string(got) != "via link" {
		t.Errorf("through a link: %q, %v", got, err)
	}
}

func closeIf(c io.Closer, err error) {
	if err == nil {
		c.Close()
	}
}

func TestRemove(t *testing.T) {
	testenv.CheckFDLeaks(t)
	path := newFIFO(t)
	dir := filepath.Dir(path)
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{file, link, dir} {
		if err := fifo.Remove(p); !errors.Is(err, fifo.ErrNotFIFO) {
			t.Errorf("Remove(%s): %v, want ErrNotFIFO", p, err)
		}
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s after Remove: %v", p, err)
		}
	}
	if err := fifo.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("FIFO after Remove: %v", err)
	}
	if err := fifo.Remove(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Remove of a missing FIFO: %v", err)
	}
	if err := fifo.Remove(""); !errors.Is(err, os.ErrInvalid) {
		t.Errorf("Remove(\"\"): %v", err)
	}
}
