package posixmq_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"mproc"
	"mproc/internal/testenv"
	"mproc/posixmq"
)

// Child functions, registered at package level as mproc.Register requires.
var (
	// echoFn sends back every message of Req on Resp with its priority,
	// until the message "quit".
	echoFn = mproc.Register("echo", func(ctx context.Context, a echoArgs) error {
		req, err := posixmq.Open(a.Req, posixmq.O_RDONLY, nil, 0)
		if err != nil {
			return err
		}
		defer req.Close()
		resp, err := posixmq.Open(a.Resp, posixmq.O_WRONLY, nil, 0)
		if err != nil {
			return err
		}
		defer resp.Close()
		attr, err := req.Attr()
		if err != nil {
			return err
		}
		buf := make([]byte, attr.MsgSize)
		for {
			n, prio, err := req.Receive(ctx, buf)
			if err != nil {
				return err
			}
			if string(buf[:n]) == "quit" {
				return nil
			}
			if err := resp.Send(ctx, buf[:n], prio); err != nil {
				return err
			}
		}
	})
	// sendFn sends its messages in order and returns.
	sendFn = mproc.Register("send", func(ctx context.Context, a sendArgs) error {
		q, err := posixmq.Open(a.Name, posixmq.O_WRONLY, nil, 0)
		if err != nil {
			return err
		}
		defer q.Close()
		for _, m := range a.Msgs {
			if err := q.Send(ctx, []byte(m.Body), m.Prio); err != nil {
				return err
			}
		}
		return nil
	})
	// produceFn sends numbered, checksummed messages until killed.
	produceFn = mproc.Register("produce", func(ctx context.Context, name string) error {
		q, err := posixmq.Open(name, posixmq.O_WRONLY, nil, 0)
		if err != nil {
			return err
		}
		for i := uint64(0); ; i++ {
			if err := q.Send(ctx, numbered(i), 0); err != nil {
				return err
			}
		}
	})
	// receiveFn says "ready" on Ready, then waits in Receive on Name
	// until killed.
	receiveFn = mproc.Register("receive", func(ctx context.Context, a echoArgs) error {
		q, err := posixmq.Open(a.Req, posixmq.O_RDONLY, nil, 0)
		if err != nil {
			return err
		}
		ready, err := posixmq.Open(a.Resp, posixmq.O_WRONLY, nil, 0)
		if err != nil {
			return err
		}
		if err := ready.Send(ctx, []byte("ready"), 0); err != nil {
			return err
		}
		attr, _ := q.Attr()
		_, _, err = q.Receive(ctx, make([]byte, attr.MsgSize))
		return fmt.Errorf("receive returned: %w", err)
	})
	// probeFn opens queues in a changed process: see probe.
	probeFn = mproc.Register("probe", func(ctx context.Context, p probe) error {
		runtime.LockOSThread() // a private IPC namespace is the thread's; never unlocked, so the thread goes with the child
		if p.NewIPC {
			if err := syscall.Unshare(syscall.CLONE_NEWIPC); err != nil {
				return fmt.Errorf("unshare: %w", err)
			}
			if err := os.WriteFile("/proc/sys/fs/mqueue/queues_max", []byte(strconv.Itoa(p.QueuesMax)), 0); err != nil {
				return err
			}
		}
		if p.Rlimit != 0 {
			if err := syscall.Setrlimit(rlimitMsgqueue, &syscall.Rlimit{Cur: p.Rlimit, Max: p.Rlimit}); err != nil {
				return fmt.Errorf("setrlimit: %w", err)
			}
		}
		if p.Drop {
			if err := dropPrivileges(); err != nil {
				return err
			}
		}
		var qs []*posixmq.Queue
		defer func() {
			for _, q := range qs {
				q.Close()
			}
		}()
		for i := range max(p.Count, 1) {
			name := p.Name
			if p.Count > 0 {
				name += "-" + strconv.Itoa(i)
			}
			q, err := posixmq.Open(name, p.Flags, p.Attr, 0o600)
			if err != nil {
				return err
			}
			qs = append(qs, q)
		}
		return nil
	})
)

type echoArgs struct{ Req, Resp string }

type msg struct {
	Body string
	Prio uint
}

type sendArgs struct {
	Name string
	Msgs []msg
}

// probe says how probeFn changes itself before it opens Count queues
// called Name-0, Name-1, ... (or Name once, if Count is 0) with Flags and
// Attr; it returns the first error.
type probe struct {
	NewIPC    bool   // a private IPC namespace with queues_max = QueuesMax
	QueuesMax int    //
	Rlimit    uint64 // lower RLIMIT_MSGQUEUE to this, if not 0
	Drop      bool   // become uid and gid 65534, without capabilities
	Name      string
	Flags     int
	Attr      *posixmq.Attr
	Count     int
}

const (
	nobody         = 65534
	rlimitMsgqueue = 12 // RLIMIT_MSGQUEUE
)

func dropPrivileges() error {
	if err := syscall.Setgroups(nil); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	if err := syscall.Setgid(nobody); err != nil {
		return fmt.Errorf("setgid: %w", err)
	}
	if err := syscall.Setuid(nobody); err != nil {
		return fmt.Errorf("setuid: %w", err)
	}
	return nil
}

// numbered is message i of produceFn: i, filler, CRC of both.
func numbered(i uint64) []byte {
	b := make([]byte, 64)
	binary.LittleEndian.PutUint64(b, i)
	for j := 8; j < 60; j++ {
		b[j] = byte(i*31 + uint64(j))
	}
	binary.LittleEndian.PutUint32(b[60:], crc32.ChecksumIEEE(b[:60]))
	return b
}

func checkNumbered(b []byte) (uint64, error) {
	if len(b) != 64 || crc32.ChecksumIEEE(b[:60]) != binary.LittleEndian.Uint32(b[60:]) {
		return 0, fmt.Errorf("torn message of %d bytes: % x", len(b), b)
	}
	return binary.LittleEndian.Uint64(b), nil
}

var seq atomic.Int64

// qname returns a fresh queue name for t, unlinked when t ends.
func qname(t *testing.T) string {
	t.Helper()
	s := strings.NewReplacer("/", "-", " ", "_").Replace(t.Name())
	name := fmt.Sprintf("/mproc-test-%d-%s-%d", os.Getpid(), s, seq.Add(1))
	t.Cleanup(func() {
		if err := posixmq.Unlink(name); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("unlink %s: %v", name, err)
		}
	})
	return name
}

// create makes a new queue, closed when t ends.
func create(t *testing.T, name string, flags int, attr *posixmq.Attr, perm os.FileMode) *posixmq.Queue {
	t.Helper()
	q, err := posixmq.Open(name, flags|posixmq.O_CREATE|posixmq.O_EXCL, attr, perm)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

func start[A any](t *testing.T, f *mproc.Func[A], arg A) *mproc.Process {
	t.Helper()
	p, err := f.Start(context.Background(), arg, mproc.ProcOptions{})
	if err != nil {
		t.Fatalf("start %s: %v", f.Name(), err)
	}
	testenv.Reap(t, p)
	return p
}

func wait(t *testing.T, p *mproc.Process) error { t.Helper(); return testenv.Wait(t, p) }

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func procInt(t *testing.T, name string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/fs/mqueue/" + name)
	if err != nil {
		t.Fatal(err)
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestEchoAcrossProcesses: a Go child echoes what the parent sends, both
// sides waiting on small queues, so both block and wake each other across
// the process boundary.
func TestEchoAcrossProcesses(t *testing.T) {
	testenv.CheckFDLeaks(t)
	ctx := testCtx(t)
	const size = 1024
	attr := &posixmq.Attr{MaxMsgs: 2, MsgSize: size}
	reqName, respName := qname(t), qname(t)
	req := create(t, reqName, posixmq.O_WRONLY, attr, 0o600)
	resp := create(t, respName, posixmq.O_RDONLY, attr, 0o600)
	p := start(t, echoFn, echoArgs{reqName, respName})

	// Message 0 is empty, the others carry their index.
	sent := [][]byte{{}}
	for i := 1; i < 300; i++ {
		b := bytes.Repeat([]byte{byte(i)}, []int{4, 5, 100, size}[i%4])
		binary.LittleEndian.PutUint32(b, uint32(i))
		sent = append(sent, b)
	}
	errc := make(chan error, 1)
	go func() {
		for i, b := range sent {
			if err := req.Send(ctx, b, uint(i%7)); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	// Priorities may reorder messages that wait together, so each echo
	// is matched to what was sent by its index.
	buf := make([]byte, size)
	seen := make([]bool, len(sent))
	for i := range sent {
		n, prio, err := resp.Receive(ctx, buf)
		if err != nil {
			t.Fatalf("receive %d: %v", i, err)
		}
		j := 0
		if n >= 4 {
			j = int(binary.LittleEndian.Uint32(buf))
		}
		if j >= len(sent) || seen[j] || !bytes.Equal(buf[:n], sent[j]) || prio != uint(j%7) {
			t.Fatalf("receive %d: %d bytes, priority %d: not message %d as sent, or seen before", i, n, prio, j)
		}
		seen[j] = true
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if err := req.Send(ctx, []byte("quit"), 0); err != nil {
		t.Fatal(err)
	}
	if err := wait(t, p); err != nil {
		t.Fatalf("echo child: %v", err)
	}
	if a, err := resp.Attr(); err != nil || a.CurMsgs != 0 {
		t.Fatalf("after the echo: %+v %v", a, err)
	}
}

// TestPriorityOrder: a child sends with mixed priorities; the parent
// receives the highest first, in sending order within a priority.
func TestPriorityOrder(t *testing.T) {
	testenv.CheckFDLeaks(t)
	ctx := testCtx(t)
	name := qname(t)
	q := create(t, name, posixmq.O_RDONLY, &posixmq.Attr{MaxMsgs: 9, MsgSize: 64}, 0o600)
	prios := []uint{0, 5, 3, 5, 0, 31, 3, posixmq.MaxPriority, 5}
	var msgs []msg
	for i, p := range prios {
		msgs = append(msgs, msg{Body: fmt.Sprintf("m%d", i), Prio: p})
	}
	if err := wait(t, start(t, sendFn, sendArgs{name, msgs})); err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(msgs)
	slices.SortStableFunc(want, func(a, b msg) int { return int(b.Prio) - int(a.Prio) })
	buf := make([]byte, 64)
	for i, w := range want {
		n, prio, err := q.Receive(ctx, buf)
		if err != nil {
			t.Fatal(err)
		}
		if got := (msg{string(buf[:n]), prio}); got != w {
			t.Errorf("message %d: got %+v, want %+v", i, got, w)
		}
	}
	if _, _, err := q.TryReceive(buf); !errors.Is(err, posixmq.ErrEmpty) {
		t.Fatalf("after draining: %v", err)
	}
}

// TestTryFullEmpty: TrySend on a full queue, TryReceive on an empty one.
func TestTryFullEmpty(t *testing.T) {
	testenv.CheckFDLeaks(t)
	q := create(t, qname(t), posixmq.O_RDWR, &posixmq.Attr{MaxMsgs: 2, MsgSize: 16}, 0o600)
	buf := make([]byte, 16)
	if _, _, err := q.TryReceive(buf); !errors.Is(err, posixmq.ErrEmpty) || !errors.Is(err, mproc.ErrEmpty) {
		t.Fatalf("TryReceive on empty: %v", err)
	}
	for i := range 2 {
		if err := q.TrySend([]byte{byte(i)}, 1); err != nil {
			t.Fatalf("TrySend %d: %v", i, err)
		}
	}
	if err := q.TrySend([]byte{9}, 1); !errors.Is(err, posixmq.ErrFull) || !errors.Is(err, mproc.ErrFull) {
		t.Fatalf("TrySend on full: %v", err)
	}
	if a, err := q.Attr(); err != nil || a != (posixmq.Attr{MaxMsgs: 2, MsgSize: 16, CurMsgs: 2}) {
		t.Fatalf("Attr: %+v %v", a, err)
	}
	for i := range 2 {
		n, prio, err := q.TryReceive(buf)
		if err != nil || n != 1 || buf[0] != byte(i) || prio != 1 {
			t.Fatalf("TryReceive %d: %d %v % x %d", i, n, err, buf[:n], prio)
		}
	}
	if _, _, err := q.TryReceive(buf); !errors.Is(err, posixmq.ErrEmpty) {
		t.Fatalf("TryReceive after draining: %v", err)
	}
}

// TestMisuse: sizes, priorities, access modes and closed queues are
// refused before the kernel is asked, and the queue is left as it was.
func TestMisuse(t *testing.T) {
	testenv.CheckFDLeaks(t)
	ctx := testCtx(t)
	name := qname(t)
	q := create(t, name, posixmq.O_RDWR, &posixmq.Attr{MaxMsgs: 2, MsgSize: 16}, 0o600)
	if err := q.Send(ctx, make([]byte, 17), 0); !errors.Is(err, posixmq.ErrTooLarge) || !strings.Contains(err.Error(), "MsgSize 16") {
		t.Errorf("17 bytes: %v", err)
	}
	if err := q.TrySend(nil, posixmq.MaxPriority+1); !errors.Is(err, posixmq.ErrPriority) {
		t.Errorf("priority %d: %v", posixmq.MaxPriority+1, err)
	}
	if err := q.Send(ctx, make([]byte, 16), 0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := q.Receive(ctx, make([]byte, 15)); !errors.Is(err, posixmq.ErrBufferTooSmall) || !strings.Contains(err.Error(), "MsgSize 16") {
		t.Errorf("15-byte buffer: %v", err)
	}
	if a, _ := q.Attr(); a.CurMsgs != 1 {
		t.Errorf("the refused receive took the message: %+v", a)
	}

	ro, err := posixmq.Open(strings.TrimPrefix(name, "/"), posixmq.O_RDONLY, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if ro.Name() != name {
		t.Errorf("Name() = %q, want %q", ro.Name(), name)
	}
	if err := ro.TrySend([]byte("x"), 0); !errors.Is(err, posixmq.ErrReadOnly) {
		t.Errorf("send on O_RDONLY: %v", err)
	}
	wo, err := posixmq.Open(name, posixmq.O_WRONLY, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer wo.Close()
	if _, _, err := wo.TryReceive(make([]byte, 16)); !errors.Is(err, posixmq.ErrWriteOnly) {
		t.Errorf("receive on O_WRONLY: %v", err)
	}

	if err := wo.Close(); err != nil {
		t.Fatal(err)
	}
	if err := wo.Close(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
	if err := wo.TrySend(nil, 0); !errors.Is(err, os.ErrClosed) {
		t.Errorf("send after Close: %v", err)
	}
	if _, err := wo.Attr(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Attr after Close: %v", err)
	}
	if _, err := wo.Notify(func() {}); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Notify after Close: %v", err)
	}
	for _, flags := range []int{posixmq.O_WRONLY | posixmq.O_RDWR, posixmq.O_RDWR | os.O_TRUNC, posixmq.O_RDONLY | os.O_APPEND} {
		if _, err := posixmq.Open(name, flags, nil, 0); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("flags %#x: %v", flags, err)
		}
	}
	if _, err := posixmq.Open(name, posixmq.O_RDWR|posixmq.O_CREATE, &posixmq.Attr{MaxMsgs: -1}, 0o600); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("negative MaxMsgs: %v", err)
	}
}

// TestCloseWakesWaiters: a Receive and a Send waiting on a queue return
// os.ErrClosed when it is closed.
func TestCloseWakesWaiters(t *testing.T) {
	testenv.CheckFDLeaks(t)
	ctx := testCtx(t)
	name := qname(t)
	q := create(t, name, posixmq.O_RDWR, &posixmq.Attr{MaxMsgs: 1, MsgSize: 16}, 0o600)
	full := create(t, qname(t), posixmq.O_RDWR, &posixmq.Attr{MaxMsgs: 1, MsgSize: 16}, 0o600)
	if err := full.TrySend(nil, 0); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 2)
	go func() { _, _, err := q.Receive(ctx, make([]byte, 16)); errc <- err }()
	go func() { errc <- full.Send(ctx, nil, 0) }()
	time.Sleep(50 * time.Millisecond)
	q.Close()
	full.Close()
	for range 2 {
		select {
		case err := <-errc:
			if !errors.Is(err, os.ErrClosed) {
				t.Errorf("waiter got %v, want os.ErrClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a waiter still waits after Close")
		}
	}
}

// TestContextCancelsWaits: a blocked Send and a blocked Receive, and a
// second Receive queued behind the first, return promptly with the
// context's error, and the queue works afterwards.
func TestContextCancelsWaits(t *testing.T) {
	testenv.CheckFDLeaks(t)
	q := create(t, qname(t), posixmq.O_RDWR, &posixmq.Attr{MaxMsgs: 1, MsgSize: 16}, 0o600)
	buf := make([]byte, 16)

	// measure runs f, cancels its context after 50ms and returns f's
	// error and how long f took to return after the cancel.
	measure := func(f func(ctx context.Context) error) (error, time.Duration) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var at time.Time
		errc := make(chan error, 1)
		go func() { errc <- f(ctx) }()
		time.Sleep(50 * time.Millisecond)
		select {
		case err := <-errc:
			return fmt.Errorf("returned before the cancel: %v", err), 0
		default:
		}
		at = time.Now()
		cancel()
		select {
		case err := <-errc:
			return err, time.Since(at)
		case <-time.After(5 * time.Second):
			return errors.New("still waiting 5s after the cancel"), 5 * time.Second
		}
	}
	check := func(what string, err error, d time.Duration) {
		t.Helper()
		t.Logf("%s: returned %v after the cancel", what, d)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s: got %v, want context.Canceled", what, err)
		}
		if d > 50*time.Millisecond {
			t.Errorf("%s: returned %v after the cancel", what, d)
		}
	}

	err, d := measure(func(ctx context.Context) error { _, _, err := q.Receive(ctx, buf); return err })
	check("Receive on empty", err, d)

	// One receiver waits in the poller, a second behind it; cancel the
	// second first, then the first.
	ctx1, cancel1 := context.WithCancel(context.Background())
	defer cancel1()
	first := make(chan error, 1)
	go func() { _, _, err := q.Receive(ctx1, make([]byte, 16)); first <- err }()
	time.Sleep(20 * time.Millisecond)
	err, d = measure(func(ctx context.Context) error { _, _, err := q.Receive(ctx, make([]byte, 16)); return err })
	check("queued Receive", err, d)
	cancel1()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Errorf("first Receive: %v", err)
	}

	// A timeout ends a wait with DeadlineExceeded.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, _, err := q.Receive(ctx, buf); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Receive with a timeout: %v", err)
	}

	// Full: Send waits, and is cancelled the same way.
	if err := q.TrySend([]byte("a"), 0); err != nil {
		t.Fatal(err)
	}
	err, d = measure(func(ctx context.Context) error { return q.Send(ctx, []byte("b"), 0) })
	check("Send on full", err, d)

	// The cancelled waits left no deadline behind: a Send waits for room
	// and a Receive for a message, then both go through.
	ctx = testCtx(t)
	sent := make(chan error, 1)
	go func() { sent <- q.Send(ctx, []byte("b"), 0) }()
	time.Sleep(20 * time.Millisecond)
	for _, want := range []string{"a", "b"} {
		n, _, err := q.Receive(ctx, buf)
		if err != nil || string(buf[:n]) != want {
			t.Fatalf("Receive: %q %v, want %q", buf[:n], err, want)
		}
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		b := make([]byte, 16)
		n, _, err := q.Receive(ctx, b)
		got <- fmt.Sprint(string(b[:n]), err)
	}()
	time.Sleep(20 * time.Millisecond)
	if err := q.Send(ctx, []byte("cc"), 0); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s != "cc<nil>" {
		t.Fatalf("waiting Receive got %s, want cc", s)
	}

	// A done context with a message there still receives it, as with a
	// socket: the wait is what the context bounds.
	if err := q.TrySend([]byte("d"), 0); err != nil {
		t.Fatal(err)
	}
	done, cancelDone := context.WithCancel(context.Background())
	cancelDone()
	if n, _, err := q.Receive(done, buf); err != nil || string(buf[:n]) != "d" {
		t.Fatalf("Receive with a done context and a message there: %q %v", buf[:n], err)
	}
}

// TestWaitersHoldNoThreads: many goroutines waiting in Receive and Send
// park in the poller; none holds an OS thread in the kernel.
func TestWaitersHoldNoThreads(t *testing.T) {
	testenv.CheckFDLeaks(t)
	const n = 32
	threads := func() int {
		b, _ := os.ReadFile("/proc/self/status")
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Threads:"); ok {
				n, _ := strconv.Atoi(strings.TrimSpace(v))
				return n
			}
		}
		t.Fatal("no Threads in /proc/self/status")
		return 0
	}
	var qs []*posixmq.Queue
	for i := range n {
		q := create(t, qname(t), posixmq.O_RDWR, &posixmq.Attr{MaxMsgs: 1, MsgSize: 8}, 0o600)
		if i%2 == 1 {
			if err := q.TrySend(nil, 0); err != nil { // full: Send will wait
				t.Fatal(err)
			}
		}
		qs = append(qs, q)
	}
	before := threads()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var ended atomic.Int32
	for i, q := range qs {
		wg.Go(func() {
			var err error
			if i%2 == 0 {
				_, _, err = q.Receive(ctx, make([]byte, 8))
			} else {
				err = q.Send(ctx, nil, 0)
			}
			if errors.Is(err, context.Canceled) {
				ended.Add(1)
			}
		})
	}
	time.Sleep(200 * time.Millisecond)
	after := threads()
	cancel()
	wg.Wait()
	t.Logf("threads: %d before, %d with %d waiters", before, after, n)
	if after-before >= n/2 {
		t.Errorf("%d waiters took %d more threads", n, after-before)
	}
	if ended.Load() != n {
		t.Errorf("%d of %d waiters ended with context.Canceled", ended.Load(), n)
	}
}

// TestNotify: fn runs when a child's message reaches the empty queue, at
// once if a message is already there, never once stopped, and Close stops
// pending calls.
func TestNotify(t *testing.T) {
	testenv.CheckFDLeaks(t)
	name := qname(t)
	q := create(t, name, posixmq.O_RDONLY, &posixmq.Attr{MaxMsgs: 4, MsgSize: 32}, 0o600)
	buf := make([]byte, 32)

	ready := make(chan struct{})
	var calls atomic.Int32
	stop, err := q.Notify(func() { calls.Add(1); close(ready) })
	if err != nil {
		t.Fatal(err)
	}
	stopped := make(chan struct{})
	stop2, err := q.Notify(func() { close(stopped) })
	if err != nil {
		t.Fatal(err)
	}
	if !stop2() || stop2() {
		t.Fatal("stop of a pending Notify: want true, then false")
	}
	select {
	case <-ready:
		t.Fatal("Notify fired on an empty queue")
	case <-time.After(100 * time.Millisecond):
	}
	p := start(t, sendFn, sendArgs{name, []msg{{"hello", 3}}})
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("Notify did not fire after a child sent")
	}
	if err := wait(t, p); err != nil {
		t.Fatal(err)
	}
	if stop() {
		t.Error("stop after firing returned true")
	}
	if n, prio, err := q.TryReceive(buf); err != nil || string(buf[:n]) != "hello" || prio != 3 {
		t.Fatalf("TryReceive after Notify: %q %d %v", buf[:n], prio, err)
	}
	select {
	case <-stopped:
		t.Error("a stopped Notify fired")
	default:
	}

	// A message already there: at once.
	wq, err := posixmq.Open(name, posixmq.O_WRONLY, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer wq.Close()
	wq.TrySend([]byte("x"), 0)
	now := make(chan struct{})
	if _, err := wq.Notify(func() { close(now) }); err != nil { // a write-only descriptor may watch too
		t.Fatal(err)
	}
	select {
	case <-now:
	case <-time.After(5 * time.Second):
		t.Fatal("Notify did not fire on a non-empty queue")
	}
	q.TryReceive(buf)

	// Close stops what is pending; its duplicate descriptors close
	// (CheckFDLeaks).
	never := make(chan struct{})
	if _, err := wq.Notify(func() { close(never) }); err != nil {
		t.Fatal(err)
	}
	wq.Close()
	other, err := posixmq.Open(name, posixmq.O_WRONLY, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	other.TrySend([]byte("y"), 0)
	select {
	case <-never:
		t.Error("a Notify fired after its queue was closed")
	case <-time.After(100 * time.Millisecond):
	}
	if calls.Load() != 1 {
		t.Errorf("fn called %d times", calls.Load())
	}
}

// TestPeerKilled: a producer killed while sending leaves only whole
// messages; a receiver killed while waiting takes nothing; the survivor
// goes on, and the queue outlives every descriptor until Unlink.
func TestPeerKilled(t *testing.T) {
	testenv.CheckFDLeaks(t)
	ctx := testCtx(t)
	name := qname(t)
	q := create(t, name, posixmq.O_RDWR, &posixmq.Attr{MaxMsgs: 8, MsgSize: 64}, 0o600)
	buf := make([]byte, 64)
	p := start(t, produceFn, name)
	next := uint64(0)
	recv := func(get func() (int, uint, error)) error {
		n, _, err := get()
		if err != nil {
			return err
		}
		i, err := checkNumbered(buf[:n])
		if err != nil {
			return err
		}
		if i != next {
			return fmt.Errorf("message %d after %d", i, next-1)
		}
		next++
		return nil
	}
	for range 500 {
		if err := recv(func() (int, uint, error) { return q.Receive(ctx, buf) }); err != nil {
			t.Fatal(err)
		}
	}
	p.Kill()
	var ee *mproc.ExitError
	if err := wait(t, p); !errors.As(err, &ee) || ee.Signal != syscall.SIGKILL {
		t.Fatalf("producer: %v", err)
	}
	var err error
	for err == nil {
		err = recv(func() (int, uint, error) { return q.TryReceive(buf) })
	}
	if !errors.Is(err, posixmq.ErrEmpty) {
		t.Fatal(err)
	}
	t.Logf("%d messages, all whole and in order", next)

	// A receiver killed while it waits.
	ready := create(t, qname(t), posixmq.O_RDONLY, &posixmq.Attr{MaxMsgs: 1, MsgSize: 8}, 0o600)
	r := start(t, receiveFn, echoArgs{name, ready.Name()})
	if _, _, err := ready.Receive(ctx, make([]byte, 8)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // into its Receive
	r.Kill()
	wait(t, r)
	if err := q.Send(ctx, numbered(next), 0); err != nil {
		t.Fatal(err)
	}
	if err := recv(func() (int, uint, error) { return q.TryReceive(buf) }); err != nil {
		t.Fatalf("after the receiver died: %v", err)
	}

	// The queue persists, messages included, with no descriptor open.
	if err := q.TrySend(numbered(next), 0); err != nil {
		t.Fatal(err)
	}
	q.Close()
	q2, err := posixmq.Open(name, posixmq.O_RDONLY, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer q2.Close()
	if a, err := q2.Attr(); err != nil || a != (posixmq.Attr{MaxMsgs: 8, MsgSize: 64, CurMsgs: 1}) {
		t.Fatalf("reopened: %+v %v", a, err)
	}
	if err := posixmq.Unlink(name); err != nil {
		t.Fatal(err)
	}
	if _, err := posixmq.Open(name, posixmq.O_RDONLY, nil, 0); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("open after Unlink: %v", err)
	}
	// An unlinked queue lives on for those who hold it.
	if err := recv(func() (int, uint, error) { return q2.TryReceive(buf) }); err != nil {
		t.Fatalf("receive from the unlinked queue: %v", err)
	}
}

// TestOpenErrors: existence, names, Unlink of a missing queue.
func TestOpenErrors(t *testing.T) {
	testenv.CheckFDLeaks(t)
	name := qname(t)
	create(t, name, posixmq.O_RDWR, nil, 0o600)
	if _, err := posixmq.Open(name, posixmq.O_RDWR|posixmq.O_CREATE|posixmq.O_EXCL, nil, 0o600); !errors.Is(err, os.ErrExist) {
		t.Errorf("O_EXCL on an existing queue: %v", err)
	}
	// O_CREATE alone opens the existing queue, attributes unchanged.
	q, err := posixmq.Open(name, posixmq.O_RDWR|posixmq.O_CREATE, &posixmq.Attr{MaxMsgs: 1, MsgSize: 1}, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	a, err := q.Attr()
	q.Close()
	if err != nil || a.MaxMsgs != procInt(t, "msg_default") || a.MsgSize != procInt(t, "msgsize_default") {
		t.Errorf("nil Attr made %+v (%v), want the defaults", a, err)
	}
	missing := qname(t)
	if _, err := posixmq.Open(missing, posixmq.O_RDONLY, nil, 0); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("open missing: %v", err)
	}
	if err := posixmq.Unlink(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Unlink missing: %v", err)
	}
	// A zero field is the default.
	half := qname(t)
	q = create(t, half, posixmq.O_RDWR, &posixmq.Attr{MaxMsgs: 3}, 0o600)
	if a, err := q.Attr(); err != nil || a.MaxMsgs != 3 || a.MsgSize != procInt(t, "msgsize_default") {
		t.Errorf("Attr{MaxMsgs: 3} made %+v (%v)", a, err)
	}

	long := fmt.Sprintf("mproc-test-%d-", os.Getpid())
	long += strings.Repeat("n", posixmq.NameMax-len(long)) // NameMax bytes
	t.Cleanup(func() { posixmq.Unlink(long) })
	if q, err := posixmq.Open("/"+long, posixmq.O_RDWR|posixmq.O_CREATE|posixmq.O_EXCL, nil, 0o600); err != nil {
		t.Errorf("a %d-byte name: %v", len(long), err)
	} else {
		q.Close()
		posixmq.Unlink(long)
	}
	for _, bad := range []string{"", "/", "//", "a/b", "/a/b", "/a/", "//a", ".", "/..", "a\x00b", "/" + long + "x", long + "x"} {
		if _, err := posixmq.Open(bad, posixmq.O_RDWR|posixmq.O_CREATE, nil, 0o600); !errors.Is(err, posixmq.ErrInvalidName) {
			t.Errorf("Open(%q): %v, want ErrInvalidName", bad, err)
		}
		if err := posixmq.Unlink(bad); !errors.Is(err, posixmq.ErrInvalidName) {
			t.Errorf("Unlink(%q): %v, want ErrInvalidName", bad, err)
		}
	}
	_, err = posixmq.Open("/a/b", posixmq.O_RDONLY, nil, 0)
	t.Logf("a bad name: %v", err)
}

// TestLimits: attributes over the kernel's limits fail with a LimitError
// naming the limit and its value.
func TestLimits(t *testing.T) {
	testenv.CheckFDLeaks(t)
	msgMax, sizeMax := procInt(t, "msg_max"), procInt(t, "msgsize_max")
	priv := posixmq.HasCapSysResource()
	t.Logf("msg_max %d, msgsize_max %d, CAP_SYS_RESOURCE %v", msgMax, sizeMax, priv)
	cases := []struct {
		attr  posixmq.Attr
		field string
		value int64
	}{
		// Over the hard limits, so refused whatever the privilege.
		{posixmq.Attr{MaxMsgs: 65537, MsgSize: 8}, "MaxMsgs", 65537},
		{posixmq.Attr{MaxMsgs: 1, MsgSize: 16<<20 + 1}, "MsgSize", 16<<20 + 1},
	}
	for _, c := range cases {
		_, err := posixmq.Open(qname(t), posixmq.O_RDWR|posixmq.O_CREATE|posixmq.O_EXCL, &c.attr, 0o600)
		t.Logf("%+v: %v", c.attr, err)
		var le *posixmq.LimitError
		if !errors.As(err, &le) || !errors.Is(err, posixmq.ErrLimit) || !errors.Is(err, syscall.EINVAL) {
			t.Fatalf("%+v: got %v, want a LimitError", c.attr, err)
		}
		wantLimit, wantMax := "/proc/sys/fs/mqueue/msg_max", msgMax
		if c.field == "MsgSize" {
			wantLimit, wantMax = "/proc/sys/fs/mqueue/msgsize_max", sizeMax
		}
		if priv {
			wantLimit, wantMax = "HARD_MSGMAX (the limit with CAP_SYS_RESOURCE)", 65536
			if c.field == "MsgSize" {
				wantLimit, wantMax = "HARD_MSGSIZEMAX (the limit with CAP_SYS_RESOURCE)", 16<<20
			}
		}
		want := fmt.Sprintf("%s %d exceeds %s = %d", c.field, c.value, wantLimit, wantMax)
		if le.Field != c.field || le.Value != c.value || le.Limit != wantLimit || le.Max != wantMax || !strings.Contains(err.Error(), want) {
			t.Errorf("got %q, %+v; want %q", err, le, want)
		}
	}

	// Just over the sysctl limits, unprivileged (in a child that drops
	// root), the sysctl is named.
	for _, c := range []struct {
		attr posixmq.Attr
		want string
	}{
		{posixmq.Attr{MaxMsgs: msgMax + 1, MsgSize: 8}, fmt.Sprintf("MaxMsgs %d exceeds /proc/sys/fs/mqueue/msg_max = %d", msgMax+1, msgMax)},
		{posixmq.Attr{MaxMsgs: 1, MsgSize: sizeMax + 1}, fmt.Sprintf("MsgSize %d exceeds /proc/sys/fs/mqueue/msgsize_max = %d", sizeMax+1, sizeMax)},
	} {
		if msgMax >= 65536 || sizeMax >= 16<<20 {
			t.Log("the sysctl limits are at the hard limits; covered above")
			break
		}
		var err error
		name := qname(t)
		if os.Getuid() == 0 {
			err = wait(t, start(t, probeFn, probe{Drop: true, Name: name, Flags: posixmq.O_RDWR | posixmq.O_CREATE | posixmq.O_EXCL, Attr: &c.attr}))
		} else {
			var q *posixmq.Queue
			if q, err = posixmq.Open(name, posixmq.O_RDWR|posixmq.O_CREATE|posixmq.O_EXCL, &c.attr, 0o600); err == nil {
				q.Close()
			}
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("unprivileged %+v: got %v, want %q", c.attr, err, c.want)
		}
	}

	// RLIMIT_MSGQUEUE, lowered in a child: EMFILE, explained.
	attr := &posixmq.Attr{MaxMsgs: 2, MsgSize: 1024}
	err := wait(t, start(t, probeFn, probe{Rlimit: 1000, Name: qname(t), Flags: posixmq.O_RDWR | posixmq.O_CREATE | posixmq.O_EXCL, Attr: attr}))
	want := "the queue's 2240 bytes (messages plus kernel bookkeeping) would take this user's queues past RLIMIT_MSGQUEUE = 1000 bytes"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("over RLIMIT_MSGQUEUE: got %v, want %q", err, want)
	}

	// queues_max, in a child with a private IPC namespace and no
	// privilege: ENOSPC, explained.
	if os.Getuid() != 0 {
		t.Log("not root: queues_max is not tested (it needs a private IPC namespace)")
		return
	}
	err = wait(t, start(t, probeFn, probe{NewIPC: true, QueuesMax: 2, Drop: true, Name: "/q", Flags: posixmq.O_RDWR | posixmq.O_CREATE, Count: 3}))
	want = "the IPC namespace already holds /proc/sys/fs/mqueue/queues_max = 2 queues"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("over queues_max: got %v, want %q", err, want)
	}
	if err := wait(t, start(t, probeFn, probe{NewIPC: true, QueuesMax: 2, Drop: true, Name: "/q", Flags: posixmq.O_RDWR | posixmq.O_CREATE, Count: 2})); err != nil {
		t.Errorf("two queues with queues_max = 2: %v", err)
	}
}

// TestPermission: a queue created 0600 by root refuses uid 65534; one
// created 0644 lets it receive but not send.
func TestPermission(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root: a child must become another user to be refused")
	}
	testenv.CheckFDLeaks(t)
	private, public := qname(t), qname(t)
	create(t, private, posixmq.O_RDWR, nil, 0o600)
	create(t, public, posixmq.O_RDWR, nil, 0o644)
	for _, c := range []struct {
		name  string
		flags int
		ok    bool
	}{
		{private, posixmq.O_RDONLY, false},
		{private, posixmq.O_WRONLY, false},
		{public, posixmq.O_RDONLY, true},
		{public, posixmq.O_WRONLY, false},
		{public, posixmq.O_RDWR, false},
	} {
		err := wait(t, start(t, probeFn, probe{Drop: true, Name: c.name, Flags: c.flags}))
		if c.ok && err != nil {
			t.Errorf("uid %d opening %s with %#x: %v", nobody, c.name, c.flags, err)
		}
		if !c.ok && !errors.Is(err, os.ErrPermission) {
			t.Errorf("uid %d opening %s with %#x: got %v, want os.ErrPermission", nobody, c.name, c.flags, err)
		}
	}
}
