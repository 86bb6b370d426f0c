//go:build linux && (amd64 || arm64 || riscv64 || loong64)

package sysvmq_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"mproc"
	"mproc/internal/testenv"
	"mproc/sysvmq"
)

// Child functions, registered at package level as mproc.Register requires.
var (
	// echoFn answers every message on In with the same type and its text
	// reversed on Out, until a message of type stopType.
	echoFn = mproc.Register("echo", func(ctx context.Context, a echoArg) error {
		sysvmq.SetPolling(a.Poll)
		if a.Uncancellable {
			ctx = context.Background()
		}
		buf := make([]byte, 1<<16)
		for {
			n, typ, err := a.In.Receive(ctx, 0, buf)
			if err != nil {
				return err
			}
			if typ == stopType {
				return nil
			}
			msg := buf[:n]
			slices.Reverse(msg)
			if err := a.Out.Send(ctx, typ, msg); err != nil {
				return err
			}
		}
	})
	// receiveFn waits for one message and fails if one comes: it returns
	// how its wait ended.
	receiveFn = mproc.Register("receive", func(ctx context.Context, a recvArg) error {
		n, typ, err := a.Q.Receive(ctx, a.Filter, make([]byte, 64))
		if err == nil {
			return fmt.Errorf("received a message of type %d and %d bytes", typ, n)
		}
		return err
	})
	// ignoringFn ignores SIGURG, as signal.Ignore lets a program do, and
	// waits for a message as receiveFn does.
	ignoringFn = mproc.Register("ignoring", func(ctx context.Context, a recvArg) error {
		signal.Ignore(syscall.SIGURG)
		_, _, err := a.Q.Receive(ctx, a.Filter, make([]byte, 64))
		return err
	})
	// sendFn sends its messages in order.
	sendFn = mproc.Register("send", func(ctx context.Context, a sendArg) error {
		for _, m := range a.Msgs {
			if err := a.Q.Send(ctx, m.Type, m.Data); err != nil {
				return err
			}
		}
		return nil
	})
)

const stopType = 99

type echoArg struct {
	In, Out       *sysvmq.Queue
	Poll          bool // wait by polling (the fallback) rather than in the kernel
	Uncancellable bool // wait with context.Background: no interruption machinery
}

type recvArg struct {
	Q      *sysvmq.Queue
	Filter int64
}

type msg struct {
	Type int64
	Data []byte
}

type sendArg struct {
	Q    *sysvmq.Queue
	Msgs []msg
}

// payload is message i's deterministic text of n bytes.
func payload(i, n int) []byte {
	r := rand.New(rand.NewPCG(uint64(i), uint64(n)))
	b := make([]byte, n)
	for j := range b {
		b[j] = byte(r.Uint32())
	}
	return b
}

func TestGoToGoAcrossProcesses(t *testing.T) {
	noLeaks(t)
	in, out := newQueue(t), newQueue(t)
	p := start(t, echoFn, echoArg{In: in, Out: out})
	const n = 300
	size := func(i int) int { return i * 277 % 8193 } // 0 to 8192 bytes: the queue (16 KiB) fills often
	sent := make(chan error, 1)
	go func() {
		for i := range n {
			if err := in.Send(context.Background(), int64(i%5+1), payload(i, size(i))); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	buf := make([]byte, 8192)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range n {
		m, typ, err := out.Receive(ctx, 0, buf)
		if err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		want := payload(i, size(i))
		slices.Reverse(want)
		if typ != int64(i%5+1) || !bytes.Equal(buf[:m], want) {
			t.Fatalf("reply %d: type %d, %d bytes; want type %d, %d bytes reversed", i, typ, m, i%5+1, len(want))
		}
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	info, err := in.Stat()
	if err != nil {
		t.Fatal(err)
	}
	// A message handed straight to a waiting receiver records the
	// receiving thread's id as msg_lrpid: a thread of the child.
	_, err = os.Stat(fmt.Sprintf("/proc/%d/task/%d", p.Pid(), info.LastReceiver))
	if info.LastSender != os.Getpid() || err != nil || info.Messages != 0 {
		t.Errorf("request queue after the conversation: %+v (parent %d, child %d): %v", info, os.Getpid(), p.Pid(), err)
	}
	if err := in.Send(context.Background(), stopType, nil); err != nil {
		t.Fatal(err)
	}
	if err := wait(t, p); err != nil {
		t.Fatal(err)
	}
}

// TestTypeFilters sends a table of messages from a child and receives
// them with every kind of filter.
func TestTypeFilters(t *testing.T) {
	noLeaks(t)
	q := newQueue(t)
	table := []msg{{3, []byte("a")}, {1, []byte("b")}, {2, []byte("c")}, {1, []byte("d")}, {5, []byte("e")}, {2, []byte("f")}, {4, []byte("g")}}
	if err := wait(t, start(t, sendFn, sendArg{Q: q, Msgs: table})); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		opts sysvmq.ReceiveOptions
		want string // "type text", or "empty"
	}{
		{sysvmq.ReceiveOptions{Type: 2}, "2 c"},               // the first of type 2
		{sysvmq.ReceiveOptions{Type: -3}, "1 b"},              // the lowest type <= 3, first of it
		{sysvmq.ReceiveOptions{Type: 0}, "3 a"},               // the first
		{sysvmq.ReceiveOptions{Type: -1}, "1 d"},              //
		{sysvmq.ReceiveOptions{Type: 7}, "empty"},             // no such type
		{sysvmq.ReceiveOptions{Type: -1}, "empty"},            // no type <= 1 left
		{sysvmq.ReceiveOptions{Type: 2, Except: true}, "5 e"}, // the first not of type 2
		{sysvmq.ReceiveOptions{Type: math.MinInt64}, "2 f"},   // every type is <= |MinInt64|
		{sysvmq.ReceiveOptions{Type: 0}, "4 g"},
		{sysvmq.ReceiveOptions{Type: 0}, "empty"},
	}
	buf := make([]byte, 16)
	for i, s := range steps {
		s.opts.NoWait = true
		n, typ, err := q.ReceiveWith(nil, buf, s.opts)
		got := fmt.Sprintf("%d %s", typ, buf[:n])
		if err == sysvmq.ErrEmpty {
			got = "empty"
		} else if err != nil {
			t.Fatalf("step %d %+v: %v", i, s.opts, err)
		}
		if got != s.want {
			t.Errorf("step %d %+v: got %q, want %q", i, s.opts, got, s.want)
		}
	}
}

// TestTypeFiltersModel compares random sends and receives with a model of
// the kernel's selection rules.
func TestTypeFiltersModel(t *testing.T) {
	noLeaks(t)
	q := newQueue(t)
	const capacity = 600
	if err := q.SetMaxBytes(capacity); err != nil {
		t.Fatal(err)
	}
	var model []msg
	queued := 0
	r := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 100)
	for i := range 5000 {
		if r.IntN(2) == 0 {
			m := msg{int64(r.IntN(6) + 1), payload(i, r.IntN(100))}
			err := q.TrySend(m.Type, m.Data)
			full := queued+len(m.Data) > capacity || len(model)+1 > capacity
			if full != (err == sysvmq.ErrFull) || !full && err != nil {
				t.Fatalf("op %d: TrySend(%d bytes) with %d bytes queued: %v", i, len(m.Data), queued, err)
			}
			if err == nil {
				model = append(model, m)
				queued += len(m.Data)
			}
			continue
		}
		o := sysvmq.ReceiveOptions{Type: int64(r.IntN(15) - 7), NoWait: true}
		o.Except = o.Type > 0 && r.IntN(4) == 0
		want := -1
		for j, m := range model {
			var ok bool
			switch {
			case o.Type == 0:
				ok = true
			case o.Type > 0:
				ok = (m.Type == o.Type) != o.Except
			default:
				ok = m.Type <= -o.Type && (want < 0 || m.Type < model[want].Type)
			}
			if ok {
				want = j
				if o.Type >= 0 {
					break
				}
			}
		}
		n, typ, err := q.ReceiveWith(nil, buf, o)
		if want < 0 {
			if err != sysvmq.ErrEmpty {
				t.Fatalf("op %d: %+v on %d messages: got type %d, %v; want ErrEmpty", i, o, len(model), typ, err)
			}
			continue
		}
		if err != nil || typ != model[want].Type || !bytes.Equal(buf[:n], model[want].Data) {
			t.Fatalf("op %d: %+v: got type %d %d bytes %v; want message %d of type %d", i, o, typ, n, err, want, model[want].Type)
		}
		queued -= len(model[want].Data)
		model = slices.Delete(model, want, want+1)
	}
	if info, err := q.Stat(); err != nil || info.Messages != len(model) || info.Bytes != queued {
		t.Fatalf("Stat = %+v, %v; model has %d messages, %d bytes", info, err, len(model), queued)
	}
}

func TestNoWait(t *testing.T) {
	noLeaks(t)
	q := newQueue(t)
	buf := make([]byte, 16)
	if _, _, err := q.TryReceive(0, buf); err != sysvmq.ErrEmpty {
		t.Fatalf("TryReceive on an empty queue: %v", err)
	}
	if err := q.SetMaxBytes(100); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := q.TrySend(1, make([]byte, 10)); err != nil {
			t.Fatalf("TrySend %d: %v", i, err)
		}
	}
	if err := q.TrySend(1, []byte{1}); err != sysvmq.ErrFull {
		t.Fatalf("TrySend to a full queue: %v", err)
	}
	if err := q.TrySend(1, nil); err != nil { // 100 bytes queued of 100, 11 messages of 100
		t.Fatalf("TrySend of an empty message to a queue with bytes full: %v", err)
	}
	if _, _, err := q.TryReceive(2, buf); err != sysvmq.ErrEmpty {
		t.Fatalf("TryReceive of an absent type: %v", err)
	}
	for i := range 11 {
		if n, typ, err := q.TryReceive(0, buf); err != nil || n != min(10, 100-10*i) || typ != 1 {
			t.Fatalf("TryReceive %d = %d, %d, %v", i, n, typ, err)
		}
	}
	// The capacity also counts messages: at most MaxBytes of them.
	if err := q.SetMaxBytes(4); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if err := q.TrySend(1, nil); err != nil {
			t.Fatalf("empty message %d: %v", i, err)
		}
	}
	if err := q.TrySend(1, nil); err != sysvmq.ErrFull {
		t.Fatalf("fifth empty message in a queue of 4: %v", err)
	}
}

// blockedCall runs f in a goroutine, waits until this process has a thread
// in system call nr (or, when polling, a little while), cancels, and
// returns f's error and how long it took to return after the cancel.
func blockedCall(t *testing.T, polling bool, nr int, f func(ctx context.Context) error) (error, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f(ctx) }()
	if polling {
		time.Sleep(20 * time.Millisecond)
	} else {
		waitInSyscall(t, os.Getpid(), nr)
	}
	select {
	case err := <-done:
		t.Fatalf("returned before the cancel: %v", err)
	default:
	}
	at := time.Now()
	cancel()
	select {
	case err := <-done:
		return err, time.Since(at)
	case <-time.After(5 * time.Second):
		t.Fatal("a cancelled call still blocks 5s later")
		return nil, 0
	}
}

var modes = []struct {
	name    string
	polling bool
}{{"signal", false}, {"poll", true}}

// inModes runs f as a subtest in each way of waiting, with a new queue of
// capacity maxBytes.
func inModes(t *testing.T, maxBytes int, f func(t *testing.T, polling bool, q *sysvmq.Queue)) {
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			noLeaks(t)
			sysvmq.SetPolling(mode.polling)
			defer sysvmq.SetPolling(false)
			q := newQueue(t)
			if err := q.SetMaxBytes(maxBytes); err != nil {
				t.Fatal(err)
			}
			f(t, mode.polling, q)
		})
	}
}

// TestCancelBlocked cancels a Receive on an empty queue and a Send to a
// full one, 20 times each, and requires each to return within 20 ms.
func TestCancelBlocked(t *testing.T) {
	inModes(t, 16, func(t *testing.T, polling bool, q *sysvmq.Queue) {
		calls := []struct {
			name string
			nr   int
			f    func(ctx context.Context) error
		}{
			{"Receive", syscall.SYS_MSGRCV, func(ctx context.Context) error {
				_, _, err := q.Receive(ctx, 5, make([]byte, 16))
				return err
			}},
			{"Send", syscall.SYS_MSGSND, func(ctx context.Context) error {
				return q.Send(ctx, 1, []byte("does not fit"))
			}},
		}
		if err := q.TrySend(1, []byte("fills 16 bytes!!")); err != nil {
			t.Fatal(err)
		}
		for _, c := range calls {
			var lat []time.Duration
			for range 20 {
				err, d := blockedCall(t, polling, c.nr, c.f)
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("%s: got %v, want context.Canceled", c.name, err)
				}
				lat = append(lat, d)
			}
			slices.Sort(lat)
			t.Logf("%s: cancel to return: median %v, max %v", c.name, lat[len(lat)/2], lat[len(lat)-1])
			if lat[len(lat)-1] > 20*time.Millisecond {
				t.Errorf("%s: a cancelled call took %v to return", c.name, lat[len(lat)-1])
			}
		}
		if info, err := q.Stat(); err != nil || info.Messages != 1 {
			t.Fatalf("after cancelled sends: %+v, %v", info, err)
		}
	})
}

func TestDeadline(t *testing.T) {
	noLeaks(t)
	q := newQueue(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	at := time.Now()
	_, _, err := q.Receive(ctx, 0, nil)
	if d := time.Since(at); !errors.Is(err, context.DeadlineExceeded) || d > 50*time.Millisecond {
		t.Fatalf("Receive with a 10ms deadline: %v after %v", err, d)
	}
	if _, _, err := q.Receive(ctx, 0, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Receive with an expired context: %v", err)
	}
	// A message that is there is taken even with an expired context:
	// Receive tries once before it looks at ctx.
	if err := q.TrySend(1, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if n, _, err := q.Receive(ctx, 0, make([]byte, 1)); err != nil || n != 1 {
		t.Fatalf("Receive of a queued message with an expired context: %d, %v", n, err)
	}
}

// TestCancelLosesNothing races cancellation against messages arriving: a
// message is either received by the call that was cancelled or left in
// the queue, never lost or duplicated; a cancelled Send sent nothing.
func TestCancelLosesNothing(t *testing.T) {
	inModes(t, 64, func(t *testing.T, polling bool, q *sysvmq.Queue) {
		const n = 1000
		sentOK := make(chan []int, 1)
		var sendTimeouts int
		go func() { // sends with short deadlines into a small queue
			var ok []int
			r := rand.New(rand.NewPCG(3, 4))
			for i := 0; len(ok) < n; i++ {
				if i/100%2 == 0 {
					time.Sleep(time.Duration(r.IntN(2000)) * time.Microsecond) // the receiver waits
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(r.IntN(1000))*time.Microsecond)
				err := q.Send(ctx, 1, strconv.AppendInt(make([]byte, 0, 8), int64(i), 10))
				cancel()
				switch {
				case err == nil:
					ok = append(ok, i)
				case errors.Is(err, context.DeadlineExceeded):
					sendTimeouts++
				default:
					t.Errorf("Send %d: %v", i, err)
					sentOK <- ok
					return
				}
			}
			sentOK <- ok
		}()
		var got []int
		var recvTimeouts int
		r := rand.New(rand.NewPCG(5, 6))
		buf := make([]byte, 16)
		deadline := time.Now().Add(20 * time.Second)
		for len(got) < n && time.Now().Before(deadline) {
			if len(got)/100%2 == 1 {
				time.Sleep(time.Duration(r.IntN(2000)) * time.Microsecond) // the sender waits
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(r.IntN(1000))*time.Microsecond)
			m, _, err := q.Receive(ctx, 0, buf)
			cancel()
			switch {
			case err == nil:
				v, _ := strconv.Atoi(string(buf[:m]))
				got = append(got, v)
			case errors.Is(err, context.DeadlineExceeded):
				recvTimeouts++
			default:
				t.Fatalf("Receive: %v", err)
			}
		}
		ok := <-sentOK
		t.Logf("%d messages; %d sends and %d receives timed out", len(got), sendTimeouts, recvTimeouts)
		if sendTimeouts < 20 || recvTimeouts < 20 {
			t.Errorf("too few timeouts to test the race")
		}
		if !slices.Equal(got, ok) {
			t.Fatalf("received %d messages, sent %d; first difference at %d", len(got), len(ok), firstDiff(got, ok))
		}
		if _, _, err := q.TryReceive(0, buf); err != sysvmq.ErrEmpty {
			t.Fatalf("a cancelled Send left a message: %v", err)
		}
	})
}

func firstDiff(a, b []int) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestIdleCost measures, in a fresh child, the CPU time that 8 blocked
// Receives cost over a second while nothing happens, above the child's own
// idle cost, and requires it to be negligible for the signal design.
func TestIdleCost(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			noLeaks(t)
			var out bytes.Buffer
			p, err := idleFn.Start(context.Background(), idleArg{Q: newQueue(t), Waiters: 8, Span: time.Second, Poll: mode.polling}, mproc.ProcOptions{Stdout: &out})
			if err != nil {
				t.Fatal(err)
			}
			children.Store(p.Pid(), true)
			testenv.Reap(t, p)
			if err := wait(t, p); err != nil {
				t.Fatal(err)
			}
			var base, used time.Duration
			if _, err := fmt.Sscanf(out.String(), "%d %d", &base, &used); err != nil {
				t.Fatalf("child printed %q", out.String())
			}
			t.Logf("8 blocked Receives for 1s: %v of CPU (%.2f%% of a core) above the idle process's %v", used-base, 100*(used-base).Seconds(), base)
			if !mode.polling && used-base > 10*time.Millisecond {
				t.Errorf("blocked Receives used %v of CPU in 1s", used-base)
			}
		})
	}
}

type idleArg struct {
	Q       *sysvmq.Queue
	Waiters int
	Span    time.Duration
	Poll    bool
}

// idleFn prints the CPU time this process uses in a.Span doing nothing,
// then with a.Waiters Receives blocked.
var idleFn = mproc.Register("idle", func(ctx context.Context, a idleArg) error {
	sysvmq.SetPolling(a.Poll)
	cpu := func() time.Duration {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	time.Sleep(100 * time.Millisecond)
	runtime.GC()
	before := cpu()
	time.Sleep(a.Span)
	base := cpu() - before
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, a.Waiters)
	for i := range a.Waiters {
		go func() {
			_, _, err := a.Q.Receive(ctx, int64(i+1), nil)
			done <- err
		}()
	}
	time.Sleep(100 * time.Millisecond)
	runtime.GC()
	before = cpu()
	time.Sleep(a.Span)
	used := cpu() - before
	cancel()
	for range a.Waiters {
		if err := <-done; !errors.Is(err, context.Canceled) {
			return err
		}
	}
	fmt.Println(int64(base), int64(used))
	return nil
})

// TestChildCancelled terminates a child blocked in Receive: its context is
// cancelled and the Receive returns, well before the grace period.
func TestChildCancelled(t *testing.T) {
	noLeaks(t)
	q := newQueue(t)
	p := start(t, receiveFn, recvArg{Q: q})
	waitInSyscall(t, p.Pid(), syscall.SYS_MSGRCV)
	at := time.Now()
	if err := p.Terminate(); err != nil {
		t.Fatal(err)
	}
	err := wait(t, p)
	var re *mproc.RemoteError
	if !errors.As(err, &re) || !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want the child's context.Canceled", err)
	}
	t.Logf("terminated child returned after %v", time.Since(at))
}

// TestSIGURGIgnored: in a program that ignores SIGURG a signal cannot
// interrupt a wait, so waits poll, and cancellation still works.
func TestSIGURGIgnored(t *testing.T) {
	noLeaks(t)
	q := newQueue(t)
	p := start(t, ignoringFn, recvArg{Q: q})
	time.Sleep(100 * time.Millisecond)
	if err := q.TrySend(1, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := wait(t, p); err != nil {
		t.Fatalf("a polling Receive missed its message: %v", err)
	}
	p = start(t, ignoringFn, recvArg{Q: q})
	time.Sleep(100 * time.Millisecond)
	p.Terminate()
	if err := wait(t, p); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want the child's context.Canceled", err)
	}
}

func TestRemoveWakesBlockedChild(t *testing.T) {
	noLeaks(t)
	for _, c := range []struct {
		name string
		nr   int
		run  func(q *sysvmq.Queue) *mproc.Process
	}{
		{"Receive", syscall.SYS_MSGRCV, func(q *sysvmq.Queue) *mproc.Process {
			return start(t, receiveFn, recvArg{Q: q, Filter: -3})
		}},
		{"Send", syscall.SYS_MSGSND, func(q *sysvmq.Queue) *mproc.Process {
			if err := q.SetMaxBytes(1); err != nil {
				t.Fatal(err)
			}
			if err := q.TrySend(1, []byte("x")); err != nil {
				t.Fatal(err)
			}
			return start(t, sendFn, sendArg{Q: q, Msgs: []msg{{2, []byte("y")}}})
		}},
	} {
		q := newQueue(t)
		p := c.run(q)
		waitInSyscall(t, p.Pid(), c.nr)
		if err := q.Remove(); err != nil {
			t.Fatal(err)
		}
		err := wait(t, p)
		if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "message queue removed") {
			t.Fatalf("%s: child blocked on a removed queue returned %v", c.name, err)
		}
		// And here: the handle knows, and a second handle learns it from the kernel.
		if _, _, err := q.TryReceive(0, nil); !errors.Is(err, sysvmq.ErrRemoved) {
			t.Errorf("TryReceive after Remove: %v", err)
		}
		if err := q.Remove(); !errors.Is(err, sysvmq.ErrRemoved) {
			t.Errorf("second Remove: %v", err)
		}
		var other sysvmq.Queue
		b, _ := q.GobEncode()
		if err := other.GobDecode(b); err != nil {
			t.Fatal(err)
		}
		if err := other.TrySend(1, nil); !errors.Is(err, sysvmq.ErrRemoved) {
			t.Errorf("TrySend on another handle of a removed queue: %v", err)
		}
		if _, err := other.Stat(); !errors.Is(err, sysvmq.ErrRemoved) {
			t.Errorf("Stat of a removed queue: %v", err)
		}
		if _, err := sysvmq.FromID(q.ID()); !errors.Is(err, sysvmq.ErrRemoved) {
			t.Errorf("FromID of a removed queue: %v", err)
		}
	}
}

// TestPeerKilled kills a child in the middle of a conversation, and one
// blocked sending to a full queue: the queues hold whole messages only and
// go on working with a new peer.
func TestPeerKilled(t *testing.T) {
	noLeaks(t)
	in, out := newQueue(t), newQueue(t)
	buf := make([]byte, 256)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	talk := func(i int) {
		t.Helper()
		if err := in.Send(ctx, 1, payload(i, 200)); err != nil {
			t.Fatal(err)
		}
		n, _, err := out.Receive(ctx, 0, buf)
		want := payload(i, 200)
		slices.Reverse(want)
		if err != nil || !bytes.Equal(buf[:n], want) {
			t.Fatalf("reply %d: %d bytes, %v", i, n, err)
		}
	}
	p := start(t, echoFn, echoArg{In: in, Out: out})
	for i := range 10 {
		talk(i)
	}
	// The child is blocked in msgrcv, its interrupter armed: kill it there.
	waitInSyscall(t, p.Pid(), syscall.SYS_MSGRCV)
	p.Kill()
	var ee *mproc.ExitError
	if err := wait(t, p); !errors.As(err, &ee) || ee.Signal != syscall.SIGKILL {
		t.Fatalf("killed child: %v", err)
	}
	// Nothing is waiting for requests now: one stays queued, whole.
	if err := in.Send(ctx, 1, payload(10, 200)); err != nil {
		t.Fatal(err)
	}
	short, c2 := context.WithTimeout(ctx, 20*time.Millisecond)
	if _, _, err := out.Receive(short, 0, buf); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("reply from a dead peer: %v", err)
	}
	c2()
	if info, err := in.Stat(); err != nil || info.Messages != 1 || info.Bytes != 200 {
		t.Fatalf("request queue: %+v, %v", info, err)
	}
	// A new peer picks up the queued request, and the conversation goes on.
	p = start(t, echoFn, echoArg{In: in, Out: out})
	n, _, err := out.Receive(ctx, 0, buf)
	want := payload(10, 200)
	slices.Reverse(want)
	if err != nil || !bytes.Equal(buf[:n], want) {
		t.Fatalf("reply to the request left by the dead peer: %v", err)
	}
	for i := 11; i < 20; i++ {
		talk(i)
	}
	// Killed mid-stream: replies pile up while we do not read, the child
	// blocks sending one to the full reply queue, and dies there.
	if err := out.SetMaxBytes(3 * 200); err != nil {
		t.Fatal(err)
	}
	for i := 20; i < 25; i++ {
		if err := in.Send(ctx, 1, payload(i, 200)); err != nil {
			t.Fatal(err)
		}
	}
	for info, _ := out.Stat(); info.Messages < 3; info, _ = out.Stat() {
		time.Sleep(time.Millisecond)
	}
	waitInSyscall(t, p.Pid(), syscall.SYS_MSGSND)
	p.Kill()
	wait(t, p)
	for i := 20; i < 23; i++ {
		n, _, err := out.TryReceive(0, buf)
		want := payload(i, 200)
		slices.Reverse(want)
		if err != nil || !bytes.Equal(buf[:n], want) {
			t.Fatalf("reply %d queued before the kill: %d bytes, %v", i, n, err)
		}
	}
	if _, _, err := out.TryReceive(0, buf); err != sysvmq.ErrEmpty {
		t.Fatalf("the reply the child died sending: %v", err)
	}
	// Request 23 died with the child (received, never answered: System V
	// queues have no acknowledgement); request 24 is still queued.
	n, _, err = in.TryReceive(0, buf)
	if err != nil || !bytes.Equal(buf[:n], payload(24, 200)) {
		t.Fatalf("request 24: %d bytes, %v", n, err)
	}
	if _, _, err := in.TryReceive(0, buf); err != sysvmq.ErrEmpty {
		t.Fatalf("request queue not empty: %v", err)
	}
}

func TestBufferTooSmall(t *testing.T) {
	noLeaks(t)
	q := newQueue(t)
	for _, m := range []msg{{5, payload(0, 10)}, {7, payload(1, 100)}, {2, payload(2, 50)}} {
		if err := q.TrySend(m.Type, m.Data); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 16)
	for _, c := range []struct {
		o    sysvmq.ReceiveOptions
		want sysvmq.TooLongError
	}{
		{sysvmq.ReceiveOptions{Type: 7}, sysvmq.TooLongError{Buffer: 16, Size: 100, Type: 7}},
		{sysvmq.ReceiveOptions{Type: -3}, sysvmq.TooLongError{Buffer: 16, Size: 50, Type: 2}},
		{sysvmq.ReceiveOptions{Type: 5, Except: true}, sysvmq.TooLongError{Buffer: 16, Size: 100, Type: 7}},
	} {
		_, _, err := q.ReceiveWith(context.Background(), buf, c.o)
		var tl *sysvmq.TooLongError
		if !errors.As(err, &tl) || *tl != c.want || !errors.Is(err, sysvmq.ErrBufferTooSmall) {
			t.Fatalf("%+v: got %v, want %+v", c.o, err, c.want)
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("is %d bytes, longer than the 16-byte buffer", c.want.Size)) {
			t.Errorf("message %q", err)
		}
	}
	if info, err := q.Stat(); err != nil || info.Messages != 3 {
		t.Fatalf("the long messages must stay queued: %+v, %v", info, err)
	}
	n, typ, err := q.ReceiveWith(nil, buf, sysvmq.ReceiveOptions{Type: 7, Truncate: true, NoWait: true})
	if err != nil || n != 16 || typ != 7 || !bytes.Equal(buf, payload(1, 100)[:16]) {
		t.Fatalf("truncating receive: %d, %d, %v", n, typ, err)
	}
	if n, typ, err := q.Receive(context.Background(), 0, buf); err != nil || n != 10 || typ != 5 {
		t.Fatalf("receive of the short message: %d, %d, %v", n, typ, err)
	}
}

func TestInvalidArguments(t *testing.T) {
	noLeaks(t)
	q := newQueue(t)
	ctx := context.Background()
	for name, err := range map[string]error{
		"send type 0":          q.Send(ctx, 0, nil),
		"send type -1":         q.TrySend(-1, []byte("x")),
		"set capacity 0":       q.SetMaxBytes(0),
		"set capacity -5":      q.SetMaxBytes(-5),
		"except with type 0":   second(q.ReceiveWith(ctx, nil, sysvmq.ReceiveOptions{Except: true})),
		"except with type -2":  second(q.ReceiveWith(ctx, nil, sysvmq.ReceiveOptions{Type: -2, Except: true})),
		"get with IPC_NOWAIT":  first(sysvmq.Get(sysvmq.IPCPrivate, 0o4000, 0o600)),
		"get with setuid perm": first(sysvmq.Get(sysvmq.IPCPrivate, 0, os.ModeSetuid|0o600)),
		"get with a huge key":  first(sysvmq.Get(1<<40, sysvmq.IPCCreat, 0o600)),
		"key with project 0":   first(sysvmq.Key("/", 0)),
	} {
		if !errors.Is(err, sysvmq.ErrInvalid) || !errors.Is(err, os.ErrInvalid) {
			t.Errorf("%s: got %v, want ErrInvalid", name, err)
		}
	}
	if _, err := sysvmq.Key("/nonexistent/file", 'x'); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Key of a missing file: %v", err)
	}
	for _, id := range []int{-1, math.MaxInt32 + 1} {
		if _, err := sysvmq.FromID(id); !errors.Is(err, sysvmq.ErrRemoved) {
			t.Errorf("FromID(%d): %v", id, err)
		}
	}
	// Too large: above kernel.msgmax, and above the queue's capacity.
	msgmax, err := os.ReadFile("/proc/sys/kernel/msgmax")
	if err != nil {
		t.Fatal(err)
	}
	max, _ := strconv.Atoi(strings.TrimSpace(string(msgmax)))
	if err := q.TrySend(1, make([]byte, max+1)); !errors.Is(err, sysvmq.ErrTooLarge) || !strings.Contains(err.Error(), strconv.Itoa(max+1)) {
		t.Errorf("message of msgmax+1 bytes: %v", err)
	}
	if err := q.SetMaxBytes(100); err != nil {
		t.Fatal(err)
	}
	if err := q.Send(ctx, 1, make([]byte, 101)); !errors.Is(err, sysvmq.ErrTooLarge) || !strings.Contains(err.Error(), "queue capacity 100") {
		t.Errorf("message above the capacity: %v", err)
	}
	if info, err := q.Stat(); err != nil || info.Messages != 0 {
		t.Errorf("after refused sends: %+v, %v", info, err)
	}
}

func first[T any](_ T, err error) error          { return err }
func second[A, B any](_ A, _ B, err error) error { return err }

func TestGetByKey(t *testing.T) {
	noLeaks(t)
	path := filepath.Join(t.TempDir(), "anchor")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := sysvmq.Key(path, 'k')
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sysvmq.Get(key, 0, 0); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Get of a missing key: %v", err)
	}
	q, err := sysvmq.Get(key, sysvmq.IPCCreat|sysvmq.IPCExcl, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Remove()
	if _, err := sysvmq.Get(key, sysvmq.IPCCreat|sysvmq.IPCExcl, 0o640); !errors.Is(err, os.ErrExist) {
		t.Fatalf("exclusive create of a taken key: %v", err)
	}
	again, err := sysvmq.Get(key, sysvmq.IPCCreat, 0o640)
	if err != nil || again.ID() != q.ID() {
		t.Fatalf("Get of an existing key: %v, id %d vs %d", err, again.ID(), q.ID())
	}
	info, err := q.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if info.Key != key || info.Perm != 0o640 || info.UID != os.Getuid() || info.CUID != os.Getuid() || info.GID != os.Getgid() {
		t.Errorf("Stat = %+v, want key %#x, 0640, uid %d", info, key, os.Getuid())
	}
	var e *sysvmq.Error
	_, err = sysvmq.Get(key, sysvmq.IPCCreat|sysvmq.IPCExcl, 0o640)
	if !errors.As(err, &e) || e.Op != "get" || e.Key != key || !strings.Contains(err.Error(), fmt.Sprintf("%x", uint32(key))) {
		t.Errorf("error %q does not name the key %#x", err, key)
	}
}

// TestKeyMatchesC compares Key with the C library's ftok, through Perl's
// IPC::SysV.
func TestKeyMatchesC(t *testing.T) {
	perl, err := exec.LookPath("perl")
	if err != nil {
		t.Skip("no perl to run the C library's ftok: ", err)
	}
	paths := []string{"/", os.TempDir(), filepath.Join(t.TempDir(), "f")}
	os.WriteFile(paths[2], nil, 0o600)
	for _, path := range paths {
		for _, proj := range []byte{1, 'A', 0x7f, 0x80, 0xff} {
			out, err := exec.Command(perl, "-MIPC::SysV=ftok", "-e", `my $k = ftok($ARGV[0], 0+$ARGV[1]) // die "ftok: $!"; print unpack("l", pack("l", $k))`, path, strconv.Itoa(int(proj))).Output()
			if err != nil {
				t.Fatalf("perl ftok(%q, %d): %v", path, proj, err)
			}
			want, _ := strconv.Atoi(string(out))
			got, err := sysvmq.Key(path, proj)
			if err != nil || got != want {
				t.Errorf("Key(%q, %#x) = %#x, %v; C ftok says %#x", path, proj, got, err, want)
			}
		}
	}
}

// TestStat checks Stat against the kernel's own table, /proc/sysvipc/msg.
func TestStat(t *testing.T) {
	noLeaks(t)
	q := newQueue(t)
	at := time.Now().Truncate(time.Second)
	if err := wait(t, start(t, sendFn, sendArg{Q: q, Msgs: []msg{{1, make([]byte, 30)}, {2, make([]byte, 12)}, {3, nil}}})); err != nil {
		t.Fatal(err)
	}
	if _, _, err := q.TryReceive(2, make([]byte, 12)); err != nil {
		t.Fatal(err)
	}
	info, err := q.Stat()
	if err != nil {
		t.Fatal(err)
	}
	row := procRow(t, q.ID())
	mode, _ := strconv.ParseUint(row["perms"], 8, 32)
	for _, c := range []struct {
		field string
		got   int
	}{
		{"key", info.Key}, {"cbytes", info.Bytes}, {"qnum", info.Messages},
		{"lspid", info.LastSender}, {"lrpid", info.LastReceiver}, {"uid", info.UID}, {"gid", info.GID},
		{"cuid", info.CUID}, {"cgid", info.CGID}, {"stime", int(info.SendTime.Unix())},
		{"rtime", int(info.ReceiveTime.Unix())}, {"ctime", int(info.ChangeTime.Unix())},
	} {
		if strconv.Itoa(c.got) != row[c.field] {
			t.Errorf("%s: Stat says %d, /proc/sysvipc/msg %s", c.field, c.got, row[c.field])
		}
	}
	if info.Perm != os.FileMode(mode) || info.Perm != 0o600 || info.Messages != 2 || info.Bytes != 30 || info.LastReceiver != os.Getpid() {
		t.Errorf("Stat = %+v", info)
	}
	msgmnb, _ := os.ReadFile("/proc/sys/kernel/msgmnb")
	if strconv.Itoa(info.MaxBytes) != strings.TrimSpace(string(msgmnb)) {
		t.Errorf("MaxBytes %d, kernel.msgmnb %s", info.MaxBytes, msgmnb)
	}
	for _, tm := range []time.Time{info.SendTime, info.ReceiveTime, info.ChangeTime} {
		if tm.Before(at) || tm.After(time.Now()) {
			t.Errorf("time %v not in [%v, now]", tm, at)
		}
	}
	if err := q.SetMaxBytes(1000); err != nil {
		t.Fatal(err)
	}
	if info, _ := q.Stat(); info.MaxBytes != 1000 || procRow(t, q.ID())["cbytes"] != "30" {
		t.Errorf("after SetMaxBytes(1000): %+v", info)
	}
}

// TestPerlPeer talks to a Perl program: Python's standard library has no
// System V queues, Perl has msgsnd and msgrcv built in.
func TestPerlPeer(t *testing.T) {
	noLeaks(t)
	perl, err := exec.LookPath("perl")
	if err != nil {
		t.Skip("no perl for the foreign-language peer: ", err)
	}
	q := newQueue(t)
	p, err := mproc.StartCommand(context.Background(), exec.Command(perl, "testdata/peer.pl", strconv.Itoa(q.ID())), mproc.CommandOptions{})
	if err != nil {
		t.Fatal(err)
	}
	children.Store(p.Pid(), true)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := q.Send(ctx, 1, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	n, typ, err := q.Receive(ctx, 2, buf)
	if want := fmt.Sprintf("HELLO from perl %d", p.Pid()); err != nil || typ != 2 || string(buf[:n]) != want {
		t.Fatalf("reply: type %d %q, %v; want %q", typ, buf[:n], err, want)
	}
	n, typ, err = q.Receive(ctx, 0, buf)
	if err != nil || typ != 3 || string(buf[:n]) != "\x00\x01\xfe\xff\x00" {
		t.Fatalf("binary message: type %d %q, %v", typ, buf[:n], err)
	}
	if err := p.Wait(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestPermissionDenied runs the test binary as uid 65534 (nobody) against
// root's queues: one created 0600, one 0666.
func TestPermissionDenied(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skipf("running as uid %d: only root can start a process as another user, and root's queues are what uid 65534 must be refused", os.Getuid())
	}
	noLeaks(t)
	// The binary must be reachable by uid 65534: go test builds it in a 0700 directory.
	dir, err := os.MkdirTemp("", "sysvmq-perm")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(dir, "sysvmq.test")
	if err := os.WriteFile(copyPath, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	key, err := sysvmq.Key(dir, 'p')
	if err != nil {
		t.Fatal(err)
	}
	private, err := sysvmq.Get(key, sysvmq.IPCCreat|sysvmq.IPCExcl, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer private.Remove()
	shared, err := sysvmq.Get(sysvmq.IPCPrivate, 0, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	defer shared.Remove()
	if err := private.TrySend(1, []byte("root's")); err != nil {
		t.Fatal(err)
	}
	out, err := os.CreateTemp(dir, "out")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(copyPath)
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d,%d,%d", permEnv, key, private.ID(), shared.ID()))
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	p, err := mproc.StartCommand(context.Background(), cmd, mproc.CommandOptions{})
	if err != nil {
		t.Fatal(err)
	}
	children.Store(p.Pid(), true)
	if err := wait(t, p); err != nil {
		b, _ := os.ReadFile(out.Name())
		t.Fatalf("child: %v\n%s", err, b)
	}
	b, _ := os.ReadFile(out.Name())
	want := strings.Join([]string{
		"uid 65534",
		"get-private-rw denied", // EACCES: asking for rw of a 0600 queue
		"get-private-none ok",   // msgget checks only the permissions asked for
		"fromid-private ok",     // it exists, even if it cannot be read
		"send-private denied",
		"receive-private denied",
		"stat-private denied",
		"remove-private denied", // EPERM: not the owner
		"fromid-shared ok",
		"send-shared ok",
		"receive-shared ok",
		"setmax-shared denied",
		"remove-shared denied",
	}, "\n") + "\n"
	if string(b) != want {
		t.Fatalf("as uid 65534:\n%s\nwant:\n%s", b, want)
	}
	if info, err := private.Stat(); err != nil || info.Messages != 1 {
		t.Errorf("root's 0600 queue after nobody's attempts: %+v, %v", info, err)
	}
}

// TestQueueLimit creates queues past kernel.msgmni, in an IPC namespace of
// its own (so that nothing else is disturbed, and the queues vanish with
// it): the error names the limit.
func TestQueueLimit(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skipf("running as uid %d: a new IPC namespace and its kernel.msgmni need root", os.Getuid())
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), limitEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWIPC}
	out, err := cmd.CombinedOutput()
	want := "2 sysvmq: get key IPC_PRIVATE: the IPC namespace already holds kernel.msgmni = 2 queues: no space left on device\n"
	if err != nil || string(out) != want {
		t.Fatalf("child in a new IPC namespace: %v\n%s\nwant:\n%s", err, out, want)
	}
}

// BenchmarkRoundTrip measures a 64-byte request and reply between this
// process and an echo child, both waiting in the kernel and interrupted by
// a signal on cancellation (signal), both polling (poll), or both waiting
// in the kernel with a context that cannot be cancelled (uncancellable:
// the floor, without the interruption machinery).
func BenchmarkRoundTrip(b *testing.B) {
	for _, mode := range append(modes, struct {
		name    string
		polling bool
	}{"uncancellable", false}) {
		b.Run(mode.name, func(b *testing.B) {
			never := mode.name == "uncancellable"
			sysvmq.SetPolling(mode.polling)
			defer sysvmq.SetPolling(false)
			in, err := sysvmq.Get(sysvmq.IPCPrivate, 0, 0o600)
			if err != nil {
				b.Fatal(err)
			}
			defer in.Remove()
			out, err := sysvmq.Get(sysvmq.IPCPrivate, 0, 0o600)
			if err != nil {
				b.Fatal(err)
			}
			defer out.Remove()
			p, err := echoFn.Start(context.Background(), echoArg{In: in, Out: out, Poll: mode.polling, Uncancellable: never}, mproc.ProcOptions{})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			cctx, cancel := context.WithCancel(ctx) // a cancellable context takes the interruptible path
			defer cancel()
			if never {
				cctx = ctx
			}
			req, buf := make([]byte, 64), make([]byte, 64)
			for b.Loop() {
				if err := in.Send(cctx, 1, req); err != nil {
					b.Fatal(err)
				}
				if _, _, err := out.Receive(cctx, 0, buf); err != nil {
					b.Fatal(err)
				}
			}
			in.Send(ctx, stopType, nil)
			if err := p.Wait(ctx); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkTrySendReceive is the uncontended cost of a message: two system
// calls and two copies.
func BenchmarkTrySendReceive(b *testing.B) {
	q, err := sysvmq.Get(sysvmq.IPCPrivate, 0, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	defer q.Remove()
	msg, buf := make([]byte, 64), make([]byte, 64)
	for b.Loop() {
		if err := q.TrySend(1, msg); err != nil {
			b.Fatal(err)
		}
		if _, _, err := q.TryReceive(0, buf); err != nil {
			b.Fatal(err)
		}
	}
}
