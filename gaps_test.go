package mproc_test

// Tests for the gaps listed in issue 12: SimpleQueue, the unbounded
// Semaphore in children, what RWMutex readers see, file descriptors
// between mproc and Python's multiprocessing.reduction, and Python's
// 8-byte frame length. Every test runs across real processes: children
// re-executed from this binary, or python3.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"mproc"
	"mproc/internal/testenv"
)

// ---------------------------------------------------------------------------
// 1. SimpleQueue across processes.

type gapsQueueArg struct {
	Q     *mproc.SimpleQueue[string]
	Out   *mproc.SimpleQueue[job]
	Ready *mproc.Event
	N     int
}

// gapsMsg is message i: its number, and a length and content that vary.
func gapsMsg(i int) string {
	return fmt.Sprintf("msg-%d-%s-é", i, strings.Repeat(string(rune('a'+i%26)), i%53))
}

var (
	// gapsSQProducer puts messages 0..N-1, then closes the queue for
	// every process.
	gapsSQProducer = mproc.Register("gaps-sq-producer", func(ctx context.Context, a gapsQueueArg) error {
		for i := range a.N {
			if err := a.Q.Put(ctx, gapsMsg(i)); err != nil {
				return fmt.Errorf("put %d: %w", i, err)
			}
		}
		return a.Q.Shutdown()
	})
	// gapsSQConsumer gets until ErrShutdown, checks order and values,
	// forwards each as a job on Out, then closes Out.
	gapsSQConsumer = mproc.Register("gaps-sq-consumer", func(ctx context.Context, a gapsQueueArg) error {
		i := 0
		for ; ; i++ {
			v, err := a.Q.Get(ctx)
			if errors.Is(err, mproc.ErrShutdown) {
				break
			}
			if err != nil {
				return fmt.Errorf("get %d: %w", i, err)
			}
			if v != gapsMsg(i) {
				return fmt.Errorf("message %d is %q, want %q", i, v, gapsMsg(i))
			}
			if err := a.Out.Put(ctx, job{ID: i, Name: v, Tags: []string{strconv.Itoa(len(v))}}); err != nil {
				return fmt.Errorf("forward %d: %w", i, err)
			}
		}
		if i != a.N {
			return fmt.Errorf("ErrShutdown after %d messages, want %d", i, a.N)
		}
		// Closed and drained: ErrShutdown again, empty, and no more puts.
		if _, err := a.Q.Get(ctx); !errors.Is(err, mproc.ErrShutdown) {
			return fmt.Errorf("second Get of the closed, drained queue: %v", err)
		}
		if !a.Q.Empty() {
			return errors.New("closed, drained queue not Empty")
		}
		if err := a.Q.Put(ctx, "late"); !errors.Is(err, mproc.ErrShutdown) {
			return fmt.Errorf("Put to the closed queue: %v", err)
		}
		return a.Out.Shutdown()
	})
	// gapsSQBlockedGet waits in Get on an empty queue that another
	// process closes.
	gapsSQBlockedGet = mproc.Register("gaps-sq-blocked-get", func(ctx context.Context, a gapsQueueArg) error {
		ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		a.Ready.Set()
		v, err := a.Q.Get(ctx)
		if errors.Is(err, mproc.ErrShutdown) {
			return nil
		}
		return fmt.Errorf("Get waiting on an empty queue closed by another process: %q, %v", v, err)
	})
)

func TestGapsSimpleQueue(t *testing.T) {
	const n = 3000
	q := must[*mproc.SimpleQueue[string]](t)(mproc.NewSimpleQueue[string](4))
	defer q.Close()
	out := must[*mproc.SimpleQueue[job]](t)(mproc.NewSimpleQueue[job](4))
	defer out.Close()

	// Empty: Empty says so, and Get waits ("while there is none") until
	// its context ends.
	if !q.Empty() {
		t.Fatal("new queue not Empty")
	}
	if v, err := q.Get(ctxTimeout(t, 50*time.Millisecond)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get of an empty queue: %q, %v; want it to wait until the deadline", v, err)
	}

	// A producer child and a consumer child, the parent consuming what
	// the consumer forwards: small capacities make every process wait
	// for the others, full and empty.
	cons := start(t, gapsSQConsumer, gapsQueueArg{Q: q, Out: out, N: n}, mproc.ProcOptions{})
	time.Sleep(50 * time.Millisecond) // the consumer usually waits on the empty queue first
	prod := start(t, gapsSQProducer, gapsQueueArg{Q: q, N: n}, mproc.ProcOptions{})
	ctx := ctxTimeout(t, 60*time.Second)
	for i := 0; ; i++ {
		j, err := out.Get(ctx)
		if errors.Is(err, mproc.ErrShutdown) {
			if i != n {
				t.Fatalf("results closed after %d, want %d", i, n)
			}
			break
		}
		if err != nil {
			t.Fatalf("result %d: %v (consumer: %v)", i, err, wait(t, cons))
		}
		if want := gapsMsg(i); j.ID != i || j.Name != want || len(j.Tags) != 1 || j.Tags[0] != strconv.Itoa(len(want)) {
			t.Fatalf("result %d: %+v, want ID %d Name %q", i, j, i, want)
		}
	}
	if err := wait(t, prod); err != nil {
		t.Fatalf("producer: %v", err)
	}
	if err := wait(t, cons); err != nil {
		t.Fatalf("consumer: %v", err)
	}
	if !out.Empty() || !q.Empty() {
		t.Fatal("queues not empty at the end")
	}

	// Closed by a process that has exited, with messages left: they are
	// still delivered, in order, then ErrShutdown.
	q2 := must[*mproc.SimpleQueue[string]](t)(mproc.NewSimpleQueue[string](8))
	defer q2.Close()
	p := start(t, gapsSQProducer, gapsQueueArg{Q: q2, N: 3}, mproc.ProcOptions{})
	if err := wait(t, p); err != nil {
		t.Fatal(err)
	}
	if q2.Empty() {
		t.Fatal("queue closed with 3 messages left reports Empty")
	}
	if err := q2.Put(ctx, "x"); !errors.Is(err, mproc.ErrShutdown) {
		t.Fatalf("Put after another process closed the queue: %v", err)
	}
	for i := range 3 {
		if v, err := q2.Get(ctx); err != nil || v != gapsMsg(i) {
			t.Fatalf("left message %d: %q, %v", i, v, err)
		}
	}
	if v, err := q2.Get(ctxTimeout(t, 10*time.Second)); !errors.Is(err, mproc.ErrShutdown) {
		t.Fatalf("Get of the closed, drained queue: %q, %v", v, err)
	}
	if !q2.Empty() {
		t.Fatal("drained queue not Empty")
	}

	// A Get waiting in another process on an empty queue returns
	// ErrShutdown when the queue is closed.
	q3 := must[*mproc.SimpleQueue[string]](t)(mproc.NewSimpleQueue[string](2))
	defer q3.Close()
	ready := must[*mproc.Event](t)(mproc.NewEvent())
	defer ready.Close()
	p = start(t, gapsSQBlockedGet, gapsQueueArg{Q: q3, Ready: ready}, mproc.ProcOptions{})
	if err := ready.Wait(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // let it sleep in Get
	if err := q3.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := wait(t, p); err != nil {
		t.Fatal(err)
	}
}

// ---------------------------------------------------------------------------
// 2. The unbounded Semaphore in children.

type gapsSemArg struct {
	Sem      *mproc.Semaphore
	Cur, Max *mproc.Value[int64]
	Ran      *mproc.Array[int64]
	I, N     int
	Limit    int64
}

var (
	// gapsSemWorker holds a unit N times, counting the holders at once.
	gapsSemWorker = mproc.Register("gaps-sem-worker", func(ctx context.Context, a gapsSemArg) error {
		for k := range a.N {
			if err := a.Sem.Acquire(ctx); err != nil {
				return err
			}
			c := a.Cur.Add(1)
			for m := a.Max.Load(); c > m && !a.Max.CompareAndSwap(m, c); m = a.Max.Load() {
			}
			if c > a.Limit {
				return fmt.Errorf("iteration %d: %d holders of a semaphore of %d", k, c, a.Limit)
			}
			time.Sleep(200 * time.Microsecond)
			a.Ran.Add(a.I, 1)
			a.Cur.Add(-1)
			if err := a.Sem.Release(); err != nil {
				return err
			}
		}
		return nil
	})
	// gapsSemRelease releases N units it never acquired.
	gapsSemRelease = mproc.Register("gaps-sem-release", func(ctx context.Context, a gapsSemArg) error {
		for range a.N {
			if err := a.Sem.Release(); err != nil {
				return err
			}
		}
		return nil
	})
	// gapsSemTake acquires N units and exits holding them.
	gapsSemTake = mproc.Register("gaps-sem-take", func(ctx context.Context, a gapsSemArg) error {
		ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		for range a.N {
			if err := a.Sem.Acquire(ctx); err != nil {
				return err
			}
		}
		return nil
	})
)

func TestGapsSemaphore(t *testing.T) {
	const workers, n = 4, 150
	sem := must[*mproc.Semaphore](t)(mproc.NewSemaphore(2))
	defer sem.Close()
	cur := must[*mproc.Value[int64]](t)(mproc.NewValue[int64](0))
	defer cur.Close()
	mx := must[*mproc.Value[int64]](t)(mproc.NewValue[int64](0))
	defer mx.Close()
	ran := must[*mproc.Array[int64]](t)(mproc.NewArray[int64](workers))
	defer ran.Close()

	// Value 2, four children: never more than 2 holders, and 2 at times.
	t0 := time.Now()
	var ps []*mproc.Process
	for i := range workers {
		ps = append(ps, start(t, gapsSemWorker, gapsSemArg{Sem: sem, Cur: cur, Max: mx, Ran: ran, I: i, N: n, Limit: 2}, mproc.ProcOptions{}))
	}
	for i, p := range ps {
		if err := wait(t, p); err != nil {
			t.Errorf("worker %d: %v", i, err)
		}
	}
	t.Logf("%d workers x %d holds in %v", workers, n, time.Since(t0))
	if m := mx.Load(); m != 2 {
		t.Errorf("at most %d holders at once, want 2 (never more, and both units used)", m)
	}
	for i, r := range ran.Slice() {
		if r != n {
			t.Errorf("worker %d held the semaphore %d times, want %d", i, r, n)
		}
	}
	if c, v := cur.Load(), sem.Value(); c != 0 || v != 2 {
		t.Fatalf("after the workers: %d holders, value %d; want 0 and 2", c, v)
	}

	// Units taken by a process that ends stay taken: a Semaphore is a
	// counter, not a record of holders.
	p := start(t, gapsSemTake, gapsSemArg{Sem: sem, N: 2}, mproc.ProcOptions{})
	if err := wait(t, p); err != nil {
		t.Fatal(err)
	}
	if v := sem.Value(); v != 0 || sem.TryAcquire() {
		t.Fatalf("value %d after a child took both units and exited; want 0", v)
	}

	// A release by a process that never acquired is allowed, past the
	// initial value too (Python's Semaphore).
	p = start(t, gapsSemRelease, gapsSemArg{Sem: sem, N: 5}, mproc.ProcOptions{})
	if err := wait(t, p); err != nil {
		t.Fatalf("release by a process that never acquired: %v", err)
	}
	if v := sem.Value(); v != 5 {
		t.Fatalf("value %d after 5 releases from 0, want 5", v)
	}
	for i := range 5 {
		if !sem.TryAcquire() {
			t.Fatalf("TryAcquire %d of 5 released units failed", i)
		}
	}
	if sem.TryAcquire() {
		t.Fatal("a sixth unit")
	}

	// A child waiting at 0 is woken by another child's release.
	taker := start(t, gapsSemTake, gapsSemArg{Sem: sem, N: 1}, mproc.ProcOptions{})
	time.Sleep(50 * time.Millisecond) // it usually waits by now
	giver := start(t, gapsSemRelease, gapsSemArg{Sem: sem, N: 1}, mproc.ProcOptions{})
	if err := wait(t, giver); err != nil {
		t.Fatal(err)
	}
	if err := wait(t, taker); err != nil {
		t.Fatalf("waiter after another process released: %v", err)
	}
	if v := sem.Value(); v != 0 {
		t.Fatalf("value %d, want 0", v)
	}
}

// ---------------------------------------------------------------------------
// 3. What RWMutex readers see.

const gapsRecordWords = 64 // 512 bytes, eight cache lines

type gapsRWArg struct {
	RW    *mproc.RWMutex
	Rec   *mproc.Array[uint64]
	Stats *mproc.Array[int64] // per reader: reads, changes seen
	I, N  int
	Final uint64
}

var (
	// gapsRWWriter N times, under the write lock: checks the record is
	// whole, then sets every word to the next value, pausing halfway.
	gapsRWWriter = mproc.Register("gaps-rw-writer", func(ctx context.Context, a gapsRWArg) error {
		for k := range a.N {
			if err := a.RW.LockContext(ctx); err != nil {
				return err
			}
			v := a.Rec.Load(0)
			for j := 1; j < a.Rec.Len(); j++ {
				if w := a.Rec.Load(j); w != v {
					a.RW.Unlock()
					return fmt.Errorf("write %d: under the write lock word %d is %d, word 0 %d", k, j, w, v)
				}
			}
			for j := range a.Rec.Len() {
				a.Rec.Store(j, v+1)
				if j == a.Rec.Len()/2 {
					for range 100 { // widen the window a reader must not see
						_ = a.Rec.Load(0)
					}
				}
			}
			a.RW.Unlock()
		}
		return nil
	})
	// gapsRWReader reads the record under read locks until it holds
	// Final, checking that it is never torn and never goes back.
	gapsRWReader = mproc.Register("gaps-rw-reader", func(ctx context.Context, a gapsRWArg) error {
		var last uint64
		words := make([]uint64, a.Rec.Len())
		for reads := 0; ; reads++ {
			if err := a.RW.RLockContext(ctx); err != nil {
				return fmt.Errorf("after %d reads: %w", reads, err)
			}
			for j := range words {
				words[j] = a.Rec.Load(j)
			}
			a.RW.RUnlock()
			for j, w := range words {
				if w != words[0] {
					return fmt.Errorf("read %d: torn record: word %d is %d, word 0 %d", reads, j, w, words[0])
				}
			}
			if words[0] < last {
				return fmt.Errorf("read %d: the record went back from %d to %d", reads, last, words[0])
			}
			if words[0] != last {
				a.Stats.Add(2*a.I+1, 1)
			}
			last = words[0]
			a.Stats.Store(2*a.I, int64(reads+1))
			if last == a.Final {
				return nil
			}
			if last > a.Final {
				return fmt.Errorf("read %d: %d, past the final %d", reads, last, a.Final)
			}
		}
	})
)

func TestGapsRWMutexReadersSeeWholeRecords(t *testing.T) {
	const writers, readers, n = 2, 3, 2500
	rw := must[*mproc.RWMutex](t)(mproc.NewRWMutex())
	defer rw.Close()
	rec := must[*mproc.Array[uint64]](t)(mproc.NewArray[uint64](gapsRecordWords))
	defer rec.Close()
	stats := must[*mproc.Array[int64]](t)(mproc.NewArray[int64](2 * readers))
	defer stats.Close()
	t0 := time.Now()
	var rs, ws []*mproc.Process
	for i := range readers {
		rs = append(rs, start(t, gapsRWReader, gapsRWArg{RW: rw, Rec: rec, Stats: stats, I: i, Final: writers * n}, mproc.ProcOptions{}))
	}
	for range writers {
		ws = append(ws, start(t, gapsRWWriter, gapsRWArg{RW: rw, Rec: rec, N: n}, mproc.ProcOptions{}))
	}
	failed := false
	for i, p := range ws {
		if err := wait(t, p); err != nil {
			t.Errorf("writer %d: %v", i, err)
			failed = true
		}
	}
	for i, p := range rs {
		if failed { // the final value will not come
			p.Kill()
		}
		if err := wait(t, p); err != nil && !failed {
			t.Errorf("reader %d: %v", i, err)
		}
	}
	for j, w := range rec.Slice() {
		if w != writers*n {
			t.Fatalf("word %d is %d at the end, want %d", j, w, writers*n)
		}
	}
	for i := range readers {
		reads, changes := stats.Load(2*i), stats.Load(2*i+1)
		t.Logf("reader %d: %d reads, %d distinct values", i, reads, changes)
		if reads == 0 {
			t.Errorf("reader %d read nothing", i)
		}
	}
	t.Logf("%d writes by %d writers, %d readers: %v", writers*n, writers, readers, time.Since(t0))
}

// ---------------------------------------------------------------------------
// Python peers.

// gapsPeer is a running testdata/gaps_*.py.
type gapsPeer struct {
	cmd    *exec.Cmd
	out    *bufio.Scanner
	stderr *testenv.Buffer
	done   chan error
}

func startGapsPeer(t *testing.T, py, script string, extra []*os.File, args ...string) *gapsPeer {
	t.Helper()
	p := &gapsPeer{stderr: new(testenv.Buffer), done: make(chan error, 1)}
	p.cmd = exec.Command(py, append([]string{filepath.Join("testdata", script)}, args...)...)
	p.cmd.Stderr = p.stderr
	p.cmd.ExtraFiles = extra
	// Our own pipe, not StdoutPipe: Wait, which runs at once here, would
	// close StdoutPipe's reader and could lose the last lines.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdout = w
	err = p.cmd.Start()
	w.Close()
	if err != nil {
		r.Close()
		t.Fatal(err)
	}
	p.out = bufio.NewScanner(r)
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
		r.Close()
	})
	return p
}

// line returns the peer's next output line, failing with its stderr if
// there is none.
func (p *gapsPeer) line(t *testing.T) string {
	t.Helper()
	if !p.out.Scan() {
		t.Fatalf("the Python peer said nothing more (%v); stderr:\n%s", p.out.Err(), p.stderr.String())
	}
	return p.out.Text()
}

// fail reports err with what the peer said on stderr.
func (p *gapsPeer) fail(t *testing.T, format string, args ...any) {
	t.Helper()
	time.Sleep(100 * time.Millisecond) // let a dying peer finish its traceback
	t.Fatalf("%s\nPython stderr:\n%s", fmt.Sprintf(format, args...), p.stderr.String())
}

// wait waits for the peer to exit cleanly after it prints "DONE".
func (p *gapsPeer) wait(t *testing.T) {
	t.Helper()
	if l := p.line(t); l != "DONE" {
		p.fail(t, "the Python peer ends with %q, want DONE", l)
	}
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			p.fail(t, "the Python peer: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the Python peer does not exit")
	}
}

// ---------------------------------------------------------------------------
// 4. Descriptors between Conn.SendFile/RecvFile and Python's
// send_handle/recv_handle.

func TestGapsPythonHandles(t *testing.T) {
	testenv.CheckFDLeaks(t) // after every parallel subtest
	pys := testenv.Pythons(t)
	vers := slices.SortedFunc(maps.Keys(pys), func(a, b string) int {
		return slices.Compare(gapsVersion(a), gapsVersion(b))
	})
	t.Logf("Python versions covered: %s", strings.Join(vers, ", "))
	for _, ver := range vers {
		py := pys[ver]
		t.Run(ver, func(t *testing.T) {
			t.Parallel()
			for _, transport := range []string{"pipe", "unix"} {
				t.Run(transport, func(t *testing.T) { gapsHandles(t, ver, py, transport) })
			}
		})
	}
}

func gapsVersion(v string) []int {
	var out []int
	for _, f := range strings.Split(v, ".") {
		n, _ := strconv.Atoi(f)
		out = append(out, n)
	}
	return out
}

// gapsHandles runs testdata/gaps_handles.py over a Pipe end inherited as
// descriptor 3 ("pipe") or a unix-socket Listener it dials ("unix").
func gapsHandles(t *testing.T, ver, py, transport string) {
	ctx := ctxTimeout(t, 60*time.Second)
	gopid := strconv.Itoa(os.Getpid())
	var c *mproc.Conn
	var peer *gapsPeer
	switch transport {
	case "pipe":
		a, b := pipe(t, mproc.Duplex)
		f, err := b.File()
		if err != nil {
			t.Fatal(err)
		}
		peer = startGapsPeer(t, py, "gaps_handles.py", []*os.File{f}, "pipe", "3", gopid)
		f.Close()
		b.Close()
		c = a
	case "unix":
		l, err := mproc.Listen("unix", "", []byte("gaps-key"), mproc.ListenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		peer = startGapsPeer(t, py, "gaps_handles.py", nil, "dial", l.Addr(), "gaps-key", gopid)
		if c, err = l.Accept(ctx); err != nil {
			peer.fail(t, "accept Python: %v", err)
		}
		defer c.Close()
	}
	ready := peer.line(t)
	if !strings.HasPrefix(ready, "READY "+ver+" ") {
		peer.fail(t, "Python %s says %q", ver, ready)
	}
	if strings.HasSuffix(ready, "blocking=False") {
		t.Logf("Python %s over %s: the inherited descriptor was non-blocking; the script made it blocking", ver, transport)
	}
	recvExpect := func(want string) {
		t.Helper()
		got, err := c.RecvBytes(ctx)
		if err != nil || string(got) != want {
			peer.fail(t, "from Python: %q, %v; want %q", got, err, want)
		}
	}

	// Go to Python: a regular file and a pipe's write end, between two
	// messages.
	content := strings.Repeat(fmt.Sprintf("a file from Go for Python %s over %s\n", ver, transport), 200)
	path := filepath.Join(t.TempDir(), "for-python")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	ff, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i, send := range []func() error{
		func() error { return c.SendBytes(ctx, []byte("before")) },
		func() error { return c.SendFile(ctx, ff) },
		func() error { return c.SendFile(ctx, w) },
		func() error { return c.SendBytes(ctx, []byte("after")) },
	} {
		if err := send(); err != nil {
			peer.fail(t, "send %d to Python: %v", i, err)
		}
	}
	ff.Close()
	w.Close() // Python's is now the only write end
	r.SetReadDeadline(time.Now().Add(30 * time.Second))
	got, err := io.ReadAll(r)
	if err != nil || string(got) != "through the pipe from python" {
		peer.fail(t, "through the pipe end Python received: %q, %v", got, err)
	}
	wantMsg := fmt.Sprintf("ino %d read %s", st.Sys().(*syscall.Stat_t).Ino, content)
	recvExpect(wantMsg)
	if b, _ := os.ReadFile(path); string(b) != content+"+python" {
		t.Errorf("the file after Python wrote through its descriptor: ...%q", b[max(0, len(b)-40):])
	}

	// Python to Go: an unlinked temporary file and a pipe's write end,
	// between two messages (Go's buffered reads run ahead of RecvFile).
	recvExpect("before")
	pf, err := c.RecvFile(ctx, "python-file")
	if err != nil {
		peer.fail(t, "RecvFile of Python's file: %v", err)
	}
	defer pf.Close()
	pw, err := c.RecvFile(ctx, "python-pipe")
	if err != nil {
		peer.fail(t, "RecvFile of Python's pipe: %v", err)
	}
	defer pw.Close()
	recvExpect("after")
	if fi, err := pf.Stat(); err != nil || !fi.Mode().IsRegular() || fi.Sys().(*syscall.Stat_t).Nlink != 0 {
		t.Errorf("Python's temporary file: %v, %v; want an unlinked regular file", fi, err)
	}
	if b, err := io.ReadAll(pf); err != nil || string(b) != "from python "+ver {
		t.Errorf("read from Python's file: %q, %v", b, err)
	}
	if fi, err := pw.Stat(); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("Python's pipe end: %v, %v", fi, err)
	}
	for _, f := range []*os.File{pf, pw} {
		if flags := gapsFDFlags(t, f); flags&syscall.O_CLOEXEC == 0 {
			t.Errorf("received descriptor %s without close-on-exec (flags %#o): it would leak into children", f.Name(), flags)
		}
	}
	if _, err := pw.Write([]byte("written by go")); err != nil {
		t.Fatalf("write to Python's pipe: %v", err)
	}
	pw.Close() // Python reads to EOF: no other write end stays open here
	recvExpect("pipe written by go")
	c.Close()
	peer.wait(t)
}

// gapsFDFlags returns the open flags of f's descriptor, from
// /proc/self/fdinfo.
func gapsFDFlags(t *testing.T, f *os.File) int {
	t.Helper()
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var raw uintptr
	rc.Control(func(fd uintptr) { raw = fd })
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", raw))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "flags:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 8, 64)
			if err != nil {
				t.Fatal(err)
			}
			return int(n)
		}
	}
	t.Fatalf("no flags in fdinfo: %s", b)
	return 0
}

// ---------------------------------------------------------------------------
// 5. The 8-byte frame length, with a real Python.

// gapsBigPeriod and gapsBigBlock are testdata/gaps_bigframe.py's pattern:
// SHA-256 of 0, 1, 2, ... (4-byte big-endian) concatenated, cut to a
// prime length, repeated.
const gapsBigPeriod = 65521

func gapsBigBlock() []byte {
	var b []byte
	for i := uint32(0); len(b) < gapsBigPeriod; i++ {
		s := sha256.Sum256(binary.BigEndian.AppendUint32(nil, i))
		b = append(b, s[:]...)
	}
	return b[:gapsBigPeriod]
}

// raceEnabled reports whether the test binary was built with -race.
func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// gapsBigLock serialises the big test between test binaries running at
// once (each side holds 2 GiB): it returns once this process holds an
// exclusive lock on a file in the temporary directory.
func gapsBigLock(t *testing.T) {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "mproc-gaps-bigframe.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() }) // drops the lock
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	for {
		var ferr error
		rc.Control(func(fd uintptr) { ferr = syscall.Flock(int(fd), syscall.LOCK_EX|syscall.LOCK_NB) })
		if ferr == nil {
			break
		}
		if ferr != syscall.EWOULDBLOCK {
			t.Fatalf("lock %s: %v", f.Name(), ferr)
		}
		if time.Since(t0) > 5*time.Minute {
			t.Fatalf("another test binary has held %s for 5 minutes", f.Name())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if d := time.Since(t0); d > time.Second {
		t.Logf("waited %v for another test binary's big-frame test", d.Round(time.Millisecond))
	}
}

// gapsMemAvailable returns MemAvailable from /proc/meminfo in bytes.
func gapsMemAvailable(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "MemAvailable:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no MemAvailable in /proc/meminfo")
	return 0
}

// gapsBigBuffer returns n bytes of anonymous memory outside the Go heap,
// unmapped at the end of the test. Outside the heap the race detector
// keeps no shadow for it (4 GiB more, and most of the time under -race),
// and huge pages cut the page faults of a first touch.
func gapsBigBuffer(t *testing.T, n int) []byte {
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS)
	if err != nil {
		t.Fatalf("map %d bytes: %v", n, err)
	}
	t.Cleanup(func() { syscall.Munmap(b) })
	if err := syscall.Madvise(b, syscall.MADV_HUGEPAGE); err != nil {
		t.Logf("no huge pages for the buffer: %v", err)
	}
	return b
}

func TestGapsPythonBigFrame(t *testing.T) {
	const n = 1<<31 + 16 // over 0x7fffffff: the length -1 and then 8 bytes
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 is required by the interop tests and is not in PATH")
	}
	vb, err := exec.Command(py, "-c", "import sys; print('%d.%d' % sys.version_info[:2])").Output()
	if err != nil {
		t.Fatal(err)
	}
	ver := strings.TrimSpace(string(vb))
	if v := gapsVersion(ver); slices.Compare(v, []int{3, 8}) < 0 {
		t.Fatalf("python3 is %s: its multiprocessing.connection has no 8-byte frame length (3.8+)", ver)
	}
	gapsBigLock(t)
	// Go holds one 2 GiB buffer, Python about 2.3 GiB at once.
	need := int64(6 << 30)
	if avail := gapsMemAvailable(t); avail < need {
		t.Skipf("needs about %d GiB of free memory for two 2 GiB messages and has %d MiB available: not run, rather than risk the OOM killer", need>>30, avail>>20)
	}
	ctx := ctxTimeout(t, 5*time.Minute) // a hang guard, not a timing assertion
	total := time.Now()
	lap := func(what string, t0 time.Time) { t.Logf("%-32s %v", what, time.Since(t0).Round(time.Millisecond)) }

	l, err := mproc.Listen("unix", "", []byte("gaps-big"), mproc.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	peer := startGapsPeer(t, py, "gaps_bigframe.py", nil, l.Addr(), "gaps-big")
	c, err := l.Accept(ctx)
	if err != nil {
		peer.fail(t, "accept Python: %v", err)
	}
	defer c.Close()
	if l := peer.line(t); l != "OK" {
		peer.fail(t, "Python %s says %q", ver, l)
	}
	c.SetMaxFrame(n)

	// Go's message: 64 KiB random blocks, each stamped with its offset.
	t0 := time.Now()
	buf := gapsBigBuffer(t, n)
	var blk [64 << 10]byte
	rand.NewChaCha8([32]byte{'g', 'a', 'p', 's'}).Read(blk[:])
	for off := 0; off < n; off += len(blk) {
		if k := copy(buf[off:], blk[:]); k >= 8 {
			binary.LittleEndian.PutUint64(buf[off:], uint64(off))
		}
	}
	crc := crc32.ChecksumIEEE(buf)
	lap("Go: make 2 GiB + 16 and its CRC", t0)
	t0 = time.Now()
	if err := c.SendBytes(ctx, []byte(fmt.Sprintf("%d %d", n, crc))); err != nil {
		peer.fail(t, "send the header: %v", err)
	}
	if err := c.SendBytes(ctx, buf); err != nil {
		peer.fail(t, "send %d bytes: %v", n, err)
	}
	lap("Go: SendBytes", t0)
	t0 = time.Now()
	verdict, err := c.RecvBytes(ctx)
	if err != nil {
		peer.fail(t, "Python's verdict: %v", err)
	}
	lap("Python: finish recv_bytes, crc32", t0)
	t.Logf("Python %s received: %s", ver, verdict)
	if want := fmt.Sprintf("ok %d %d ", n, crc); !strings.HasPrefix(string(verdict), want) {
		peer.fail(t, "Python received %q, want %q...", verdict, want)
	}

	// Python's message, into the same buffer.
	t0 = time.Now()
	clear(buf[:4096])
	k, err := c.RecvBytesInto(ctx, buf)
	if err != nil {
		peer.fail(t, "receive Python's %d bytes: %v", n, err)
	}
	lap("Python: send_bytes; Go: RecvBytesInto", t0)
	if k != n {
		peer.fail(t, "Python's message has %d bytes, want %d", k, n)
	}
	t0 = time.Now()
	pat := gapsBigBlock()
	h := crc32.NewIEEE()
	for rem := n; rem > 0; rem -= gapsBigPeriod {
		h.Write(pat[:min(rem, gapsBigPeriod)])
	}
	for _, i := range []int{0, 1, gapsBigPeriod - 1, gapsBigPeriod, 1<<31 - 1, 1 << 31, n - 1} {
		if buf[i] != pat[i%gapsBigPeriod] {
			t.Errorf("byte %d of Python's message is %#x, want %#x", i, buf[i], pat[i%gapsBigPeriod])
		}
	}
	if got := crc32.ChecksumIEEE(buf); got != h.Sum32() {
		for off := 0; off < n; off += gapsBigPeriod {
			want := pat[:min(n-off, gapsBigPeriod)]
			if !bytes.Equal(buf[off:off+len(want)], want) {
				t.Fatalf("Python's message: CRC %#x, want %#x; the first wrong period starts at %d", got, h.Sum32(), off)
			}
		}
	}
	lap("Go: check Python's message", t0)
	if l := peer.line(t); !strings.HasPrefix(l, "SENT ") {
		peer.fail(t, "Python after sending: %q", l)
	}
	c.Close()
	peer.wait(t)
	lap(fmt.Sprintf("total (race %v)", raceEnabled()), total)
	if d := time.Since(total); d > 60*time.Second {
		t.Logf("the big-frame test took %v, over the 60 s it should take", d)
	}
}
