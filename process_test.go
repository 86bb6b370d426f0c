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
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"mproc"
	"mproc/internal/owner"
	"mproc/internal/testenv"
)

// Child functions, registered at package level as Register requires.
var (
	sleepFn = mproc.Register("sleep", func(ctx context.Context, d time.Duration) error {
		select {
		case <-time.After(d):
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	})
	// caughtFn sets ev once its process catches SIGTERM and SIGINT, then
	// waits for its context.
	caughtFn = mproc.Register("caught", func(ctx context.Context, ev *mproc.Event) error {
		<-mproc.SignalsCaught()
		ev.Set()
		<-ctx.Done()
		return context.Cause(ctx)
	})
	failFn = mproc.Register("fail", func(ctx context.Context, kind string) error {
		switch kind {
		case "corrupt":
			return fmt.Errorf("open thing: %w", mproc.ErrCorrupt)
		case "canceled":
			return fmt.Errorf("gave up: %w", context.Canceled)
		case "notexist":
			_, err := os.Open("/nonexistent/file")
			return err
		}
		return errors.New("plain failure: " + kind)
	})
	panicFn = mproc.Register("panic", func(ctx context.Context, msg string) error {
		panicHere(msg)
		return nil
	})
	exitFn = mproc.Register("exit", func(ctx context.Context, code int) error {
		os.Exit(code)
		return nil
	})
	// stubbornFn ignores its context and runs until killed.
	stubbornFn = mproc.Register("stubborn", func(ctx context.Context, _ struct{}) error {
		select {}
	})
	printFn = mproc.Register("print", func(ctx context.Context, s string) error {
		fmt.Println(s)
		fmt.Fprintln(os.Stderr, "err:"+s)
		return nil
	})
	currentFn = mproc.Register("current", func(ctx context.Context, want string) error {
		c := mproc.Current()
		if c.Name != want || !c.Child || c.Pid != os.Getpid() || c.ParentPid != os.Getppid() {
			return fmt.Errorf("Current() = %+v in pid %d (ppid %d), want name %q", c, os.Getpid(), os.Getppid(), want)
		}
		return nil
	})
	anyFn = mproc.Register("any", func(ctx context.Context, v struct{ V any }) error { return nil })
)

func panicHere(msg string) { panic("deliberate: " + msg) }

func start[A any](t *testing.T, f *mproc.Func[A], arg A, opts mproc.ProcOptions) *mproc.Process {
	t.Helper()
	p, err := f.Start(context.Background(), arg, opts)
	if err != nil {
		t.Fatalf("Start %s: %v", f.Name(), err)
	}
	testenv.Reap(t, p)
	return p
}

func wait(t *testing.T, p *mproc.Process) error { t.Helper(); return testenv.Wait(t, p) }

func TestStartWait(t *testing.T) {
	p := start(t, sleepFn, time.Millisecond, mproc.ProcOptions{Name: "napper"})
	if p.Pid() <= 0 || p.Pid() == os.Getpid() || p.Name() != "napper" {
		t.Fatalf("pid %d name %q", p.Pid(), p.Name())
	}
	if err := wait(t, p); err != nil {
		t.Fatal(err)
	}
	if p.Alive() || p.ExitCode() != 0 {
		t.Fatalf("alive %v exit code %d", p.Alive(), p.ExitCode())
	}
	if err := p.Wait(context.Background()); err != nil {
		t.Fatalf("second Wait: %v", err)
	}
	if err := p.Kill(); !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("Kill after exit: %v", err)
	}
	q := start(t, sleepFn, 0, mproc.ProcOptions{})
	if !strings.HasPrefix(q.Name(), "sleep-") {
		t.Errorf("default name %q", q.Name())
	}
	wait(t, q)
}

func TestErrorsKeepIdentity(t *testing.T) {
	cases := []struct {
		kind string
		is   error
		text string
	}{
		{"corrupt", mproc.ErrCorrupt, "open thing: mproc: corrupt segment"},
		{"canceled", context.Canceled, "gave up: context canceled"},
		{"notexist", os.ErrNotExist, "open /nonexistent/file: no such file or directory"},
		{"other", nil, "plain failure: other"},
	}
	for _, c := range cases {
		p := start(t, failFn, c.kind, mproc.ProcOptions{})
		err := wait(t, p)
		var re *mproc.RemoteError
		if !errors.As(err, &re) {
			t.Fatalf("%s: got %T %v, want *RemoteError", c.kind, err, err)
		}
		if re.Msg != c.text || re.Pid != p.Pid() || re.Process != p.Name() {
			t.Errorf("%s: %+v", c.kind, re)
		}
		if c.is != nil && !errors.Is(err, c.is) {
			t.Errorf("%s: errors.Is(%v, %v) = false", c.kind, err, c.is)
		}
		if c.is == nil && re.Err != nil {
			t.Errorf("%s: unexpected sentinel %v", c.kind, re.Err)
		}
		if p.ExitCode() != 1 {
			t.Errorf("%s: exit code %d", c.kind, p.ExitCode())
		}
	}
}

func TestPanicArrivesWithStack(t *testing.T) {
	p := start(t, panicFn, "oops", mproc.ProcOptions{Stderr: io.Discard})
	err := wait(t, p)
	var pe *mproc.PanicError
	if !errors.As(err, &pe) {
		t.Fatalf("got %T %v, want *PanicError", err, err)
	}
	if pe.Value != "deliberate: oops" || !strings.Contains(pe.Stack, "panicHere") {
		t.Fatalf("value %q, stack:\n%s", pe.Value, pe.Stack)
	}
	if p.ExitCode() != 2 {
		t.Errorf("exit code %d", p.ExitCode())
	}
}

func TestExitCodes(t *testing.T) {
	p := start(t, exitFn, 3, mproc.ProcOptions{})
	var ee *mproc.ExitError
	if err := wait(t, p); !errors.As(err, &ee) || ee.Code != 3 || ee.Signal != 0 {
		t.Fatalf("exit 3: %v", err)
	}
	if p.ExitCode() != 3 {
		t.Errorf("exit code %d", p.ExitCode())
	}
	if err := wait(t, start(t, exitFn, 0, mproc.ProcOptions{})); err != nil {
		t.Fatalf("exit 0: %v", err)
	}
}

func TestKill(t *testing.T) {
	p := start(t, stubbornFn, struct{}{}, mproc.ProcOptions{})
	if !p.Alive() {
		t.Fatal("not alive")
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	var ee *mproc.ExitError
	if err := wait(t, p); !errors.As(err, &ee) || ee.Signal != syscall.SIGKILL {
		t.Fatalf("got %v, want killed by SIGKILL", err)
	}
	if p.ExitCode() != -1 {
		t.Errorf("exit code %d", p.ExitCode())
	}
}

func TestTerminate(t *testing.T) {
	// A cooperative child sees its context cancelled with ErrTerminated.
	p := start(t, sleepFn, time.Hour, mproc.ProcOptions{})
	time.Sleep(50 * time.Millisecond)
	if err := p.Terminate(); err != nil {
		t.Fatal(err)
	}
	err := wait(t, p)
	if !errors.Is(err, mproc.ErrTerminated) {
		t.Fatalf("got %v, want ErrTerminated", err)
	}
	// Terminate travels on the control socket: right after Start, before
	// the child catches signals, it winds the child down all the same.
	for range 20 {
		p = start(t, sleepFn, time.Hour, mproc.ProcOptions{})
		p.Terminate()
		if err := wait(t, p); !errors.Is(err, mproc.ErrTerminated) {
			t.Fatalf("terminated right after Start: got %v, want ErrTerminated", err)
		}
	}
	// SIGINT (Ctrl-C at a terminal reaches the whole group) does the same,
	// once the child catches it: it sets that up just after Ready, off the
	// path of Start.
	ev := must[*mproc.Event](t)(mproc.NewEvent())
	defer ev.Close()
	p = start(t, caughtFn, ev, mproc.ProcOptions{})
	if err := ev.Wait(ctxTimeout(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
	p.Signal(syscall.SIGINT)
	if err := wait(t, p); !errors.Is(err, mproc.ErrTerminated) {
		t.Fatalf("after SIGINT: got %v, want ErrTerminated", err)
	}
	// A child that ignores it is killed after the grace period.
	q := start(t, stubbornFn, struct{}{}, mproc.ProcOptions{GracePeriod: 100 * time.Millisecond})
	at := time.Now()
	q.Terminate()
	var ee *mproc.ExitError
	if err := wait(t, q); !errors.As(err, &ee) || ee.Signal != syscall.SIGKILL {
		t.Fatalf("got %v, want killed by SIGKILL", err)
	}
	if d := time.Since(at); d < 100*time.Millisecond {
		t.Errorf("killed after %v, before the grace period", d)
	}
}

func TestStartContextBoundsLife(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	p, err := sleepFn.Start(ctx, time.Hour, mproc.ProcOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := wait(t, p); !errors.Is(err, mproc.ErrTerminated) {
		t.Fatalf("got %v, want ErrTerminated", err)
	}
	if _, err := sleepFn.Start(ctx, 0, mproc.ProcOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Start with a done ctx: %v", err)
	}
}

func TestWaitHonoursContext(t *testing.T) {
	p := start(t, stubbornFn, struct{}{}, mproc.ProcOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	at := time.Now()
	if err := p.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	if d := time.Since(at); d > time.Second {
		t.Errorf("Wait returned %v after its deadline", d)
	}
	p.Kill()
	wait(t, p)
}

var lateFn *mproc.Func[int]

func TestNotRegistered(t *testing.T) {
	lateFn = mproc.Register("late", func(ctx context.Context, _ int) error { return nil })
	before := len(mproc.Children())
	if _, err := lateFn.Start(context.Background(), 1, mproc.ProcOptions{}); !errors.Is(err, mproc.ErrNotRegistered) {
		t.Fatalf("late Register: %v", err)
	}
	var nilFn *mproc.Func[int]
	if _, err := nilFn.Start(context.Background(), 1, mproc.ProcOptions{}); !errors.Is(err, mproc.ErrNotRegistered) {
		t.Fatalf("nil Func: %v", err)
	}
	if len(mproc.Children()) != before {
		t.Fatal("a child was started")
	}
}

type unregistered struct{ X int }

func TestUnencodableArgument(t *testing.T) {
	before := len(mproc.Children())
	_, err := anyFn.Start(context.Background(), struct{ V any }{V: unregistered{1}}, mproc.ProcOptions{})
	if err == nil || !strings.Contains(err.Error(), "encode argument") {
		t.Fatalf("got %v, want an encoding error", err)
	}
	if len(mproc.Children()) != before {
		t.Fatal("a child was started")
	}
}

func TestOutputGoesWhereAsked(t *testing.T) {
	var out, errb bytes.Buffer
	p := start(t, printFn, "hello", mproc.ProcOptions{Stdout: &out, Stderr: &errb})
	if err := wait(t, p); err != nil {
		t.Fatal(err)
	}
	if out.String() != "hello\n" || errb.String() != "err:hello\n" {
		t.Fatalf("stdout %q stderr %q", out.String(), errb.String())
	}
}

func TestCurrent(t *testing.T) {
	if c := mproc.Current(); c.Child || c.Name != "main" || c.Pid != os.Getpid() {
		t.Fatalf("Current() in the parent = %+v", c)
	}
	if err := wait(t, start(t, currentFn, "kid", mproc.ProcOptions{Name: "kid"})); err != nil {
		t.Fatal(err)
	}
}

func TestChildren(t *testing.T) {
	a := start(t, stubbornFn, struct{}{}, mproc.ProcOptions{})
	b := start(t, stubbornFn, struct{}{}, mproc.ProcOptions{})
	kids := mproc.Children()
	if !containsProc(kids, a) || !containsProc(kids, b) {
		t.Fatalf("Children() = %v", kids)
	}
	a.Kill()
	b.Kill()
	wait(t, a)
	wait(t, b)
	if kids := mproc.Children(); containsProc(kids, a) || containsProc(kids, b) {
		t.Fatal("ended children still listed")
	}
}

func containsProc(ps []*mproc.Process, p *mproc.Process) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}

func TestFiftyChildrenAtOnce(t *testing.T) {
	testenv.CheckFDLeaks(t)
	var wg sync.WaitGroup
	procs := make([]*mproc.Process, 50)
	errs := make([]error, 50)
	for i := range procs {
		wg.Go(func() {
			procs[i], errs[i] = sleepFn.Start(context.Background(), 10*time.Millisecond, mproc.ProcOptions{})
		})
	}
	wg.Wait()
	for i, p := range procs {
		if errs[i] != nil {
			t.Fatalf("start %d: %v", i, errs[i])
		}
		if err := wait(t, p); err != nil {
			t.Errorf("child %d: %v", i, err)
		}
	}
	for _, p := range procs {
		// Reaped: the pid is gone, not a zombie.
		if err := syscall.Kill(p.Pid(), 0); err != syscall.ESRCH {
			t.Errorf("pid %d not reaped: kill(0) = %v", p.Pid(), err)
		}
	}
}

// Process trees: the test kills a middle process with SIGKILL and checks
// that what it started is gone within 2 s.
var treeFn *mproc.Func[treeArg]

func init() { treeFn = mproc.Register("tree", tree) }

// tree starts a stubborn child (which starts a stubborn grandchild when
// depth > 1) and a command if asked, prints the pids of its descendants and
// blocks.
func tree(ctx context.Context, a treeArg) error {
	var pids []int
	if a.Command {
		cmd := exec.Command("sleep", "3600")
		p, err := mproc.StartCommand(ctx, cmd, mproc.CommandOptions{})
		if err != nil {
			return err
		}
		pids = append(pids, p.Pid())
	}
	if a.Depth > 0 {
		opts := mproc.ProcOptions{Stdout: io.Discard, Detached: a.Detached}
		if a.Relay {
			opts.Stdout = struct{ io.Writer }{io.Discard} // relayed by this process
		}
		var r *os.File
		if a.Depth > 1 {
			var w *os.File
			r, w, _ = os.Pipe()
			defer r.Close()
			opts.Stdout = w
			defer w.Close()
		}
		p, err := treeFn.Start(ctx, treeArg{Depth: a.Depth - 1, Stubborn: true, Chatty: a.Detached}, opts)
		if err != nil {
			return err
		}
		pids = append(pids, p.Pid())
		if r != nil {
			line, err := bufio.NewReader(r).ReadString('\n')
			if err != nil {
				return err
			}
			for _, f := range strings.Fields(line) {
				n, _ := strconv.Atoi(f)
				pids = append(pids, n)
			}
		}
	}
	for _, p := range pids {
		fmt.Print(p, " ")
	}
	fmt.Println()
	for a.Chatty { // writes on after its parent is gone
		time.Sleep(10 * time.Millisecond)
		fmt.Print(".")
	}
	if a.Stubborn {
		select {}
	}
	<-ctx.Done()
	return nil
}

type treeArg struct {
	Depth    int
	Stubborn bool
	Detached bool
	Command  bool
	Relay    bool // the child's output goes through a writer this process relays
	Chatty   bool // prints a dot every 10 ms
}

func startTree(t *testing.T, a treeArg) (*mproc.Process, []owner.Token) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p := start(t, treeFn, a, mproc.ProcOptions{Stdout: w})
	w.Close()
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil {
		t.Fatalf("read descendants: %v", err)
	}
	var toks []owner.Token
	for _, f := range strings.Fields(line) {
		pid, _ := strconv.Atoi(f)
		tok, err := owner.Of(pid)
		if err != nil {
			t.Fatalf("descendant %d: %v", pid, err)
		}
		toks = append(toks, tok)
	}
	return p, toks
}

func TestParentKilledTakesTreeDown(t *testing.T) {
	p, desc := startTree(t, treeArg{Depth: 2, Command: true})
	if len(desc) != 3 {
		t.Fatalf("descendants %v", desc)
	}
	p.Kill()
	wait(t, p)
	at := time.Now()
	for _, tok := range desc {
		for owner.Alive(tok) {
			if time.Since(at) > 2*time.Second {
				t.Fatalf("descendant %v alive 2s after its ancestor was killed", tok)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	t.Logf("all %d descendants gone %v after SIGKILL", len(desc), time.Since(at))
}

// A detached child outlives its parent, and its parent's relay of its
// output: output dropped with io.Discard goes to /dev/null directly, and
// writes to a dead relay fail without SIGPIPE (issue 11: the child died
// of SIGPIPE on a loaded machine).
func TestDetachedOutlivesParent(t *testing.T) {
	for _, relay := range []bool{false, true} {
		p, desc := startTree(t, treeArg{Depth: 1, Detached: true, Relay: relay})
		p.Kill()
		wait(t, p)
		time.Sleep(1500 * time.Millisecond) // past the default grace period
		alive := owner.Alive(desc[0])
		syscall.Kill(int(desc[0].Pid), syscall.SIGKILL)
		if !alive {
			t.Fatalf("relayed output %v: the detached child died with its parent", relay)
		}
	}
}

// directPoint crosses as its memory (handle.go, argDirect), its
// unexported field too, which gob would have dropped.
type directPoint struct {
	X, Y float64
	n    int32
}

// gobbed chose its own gob encoding, which Start must keep using: its
// GobDecode adds 1000, which a copy of its memory would not.
type gobbed struct{ X int64 }

func (g gobbed) GobEncode() ([]byte, error) { return []byte(strconv.FormatInt(g.X, 10)), nil }

func (g *gobbed) GobDecode(b []byte) error {
	x, err := strconv.ParseInt(string(b), 10, 64)
	g.X = x + 1000
	return err
}

var (
	directPointFn = mproc.Register("direct-point", func(ctx context.Context, p directPoint) error {
		if p != (directPoint{X: 1.5, Y: -2, n: 7}) {
			return fmt.Errorf("got %+v", p)
		}
		return nil
	})
	directStringFn = mproc.Register("direct-string", func(ctx context.Context, s string) error {
		if s != "héllo, world" {
			return fmt.Errorf("got %q", s)
		}
		return nil
	})
	directBytesFn = mproc.Register("direct-bytes", func(ctx context.Context, b []byte) error {
		if len(b) != 70000 || b[0] != 0 || b[69999] != byte(69999%251) {
			return fmt.Errorf("got %d bytes", len(b))
		}
		return nil
	})
	emptyBytesFn = mproc.Register("empty-bytes", func(ctx context.Context, b []byte) error {
		if b == nil || len(b) != 0 {
			return fmt.Errorf("got %v, want an empty non-nil slice", b)
		}
		return nil
	})
	emptyStructFn = mproc.Register("empty-struct", func(ctx context.Context, _ struct{}) error { return nil })
	gobbedFn      = mproc.Register("gobbed", func(ctx context.Context, g gobbed) error {
		if g.X != 1042 {
			return fmt.Errorf("got %d, want 1042 (its own GobDecode)", g.X)
		}
		return nil
	})
)

// Arguments that need no gob cross directly — a fixed-size value as its
// memory, a string, a []byte (of more than one control datagram) — and a
// type with its own gob encoding keeps it.
func TestArgumentsCrossDirectly(t *testing.T) {
	big := make([]byte, 70000)
	for i := range big {
		big[i] = byte(i % 251)
	}
	for name, p := range map[string]*mproc.Process{
		"point":    start(t, directPointFn, directPoint{X: 1.5, Y: -2, n: 7}, mproc.ProcOptions{}),
		"string":   start(t, directStringFn, "héllo, world", mproc.ProcOptions{}),
		"bytes":    start(t, directBytesFn, big, mproc.ProcOptions{}),
		"empty":    start(t, emptyBytesFn, []byte{}, mproc.ProcOptions{}),
		"gobbed":   start(t, gobbedFn, gobbed{X: 42}, mproc.ProcOptions{}),
		"struct{}": start(t, emptyStructFn, struct{}{}, mproc.ProcOptions{}),
	} {
		if err := wait(t, p); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
