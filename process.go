package mproc

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"mproc/internal/errcode"
	"mproc/internal/fd"
	"mproc/internal/reexec"
)

// DefaultGracePeriod is how long a terminated child, or a child whose parent
// died, has between the cancellation of its context and SIGKILL.
const DefaultGracePeriod = time.Second

// registry maps function names to their runners. It is filled by Register
// calls at package initialisation, before Main runs.
var registry struct {
	sync.Mutex
	m map[string]func(ctx context.Context, arg []byte, fds []*fd.FD) error
}

var mainCalled atomic.Bool

// Func is a function registered to run in child processes. Create it with
// Register in a package-level variable declaration.
type Func[A any] struct {
	name string
	late bool // registered after Main: a child would not know it
}

// Register registers fn under name so that Start can run it in a child
// process, and returns the handle to start it with. The argument type A must
// be encodable with encoding/gob; mproc handles (such as *SharedMemory) in
// it travel with their file descriptors.
//
// Register must be called at package level (var w = mproc.Register(...)),
// so that the child, which is the same binary, registers the same functions
// before Main dispatches; a function registered after Main ran cannot be
// started (ErrNotRegistered). Register panics if name is empty or taken, or
// fn is nil, as http.Handle does: those are programming errors.
func Register[A any](name string, fn func(ctx context.Context, arg A) error) *Func[A] {
	if name == "" || fn == nil {
		panic("mproc: Register needs a name and a function")
	}
	registry.Lock()
	defer registry.Unlock()
	if registry.m == nil {
		registry.m = make(map[string]func(context.Context, []byte, []*fd.FD) error)
	}
	if _, dup := registry.m[name]; dup {
		panic("mproc: Register called twice for " + name)
	}
	registry.m[name] = func(ctx context.Context, b []byte, fds []*fd.FD) error {
		arg, err := decodeArg[A](b, fds)
		if err != nil {
			return fmt.Errorf("decode argument of %q: %w", name, err)
		}
		return fn(ctx, arg)
	}
	return &Func[A]{name: name, late: mainCalled.Load()}
}

// Name returns the name the function was registered under.
func (f *Func[A]) Name() string { return f.name }

// ProcOptions configure a child process. The zero value is ready to use.
type ProcOptions struct {
	// Name names the process (Process.Name, Current().Name in the child);
	// the default is the function's name and a sequence number, "worker-3".
	Name string
	// Stdin is the child's standard input; nil means /dev/null.
	Stdin io.Reader
	// Stdout and Stderr receive the child's output; nil means the parent's
	// own standard output and error. Use io.Discard to drop it: the child
	// then writes to /dev/null. As in os/exec, any other writer that is not
	// an *os.File is fed by a goroutine per child: one writer shared by
	// several children must be safe for concurrent use.
	Stdout, Stderr io.Writer
	// Env is added to the parent's environment for the child.
	Env []string
	// Dir is the child's working directory; "" means the parent's.
	Dir string
	// GracePeriod is how long the child has to return after its context is
	// cancelled by Terminate or by the parent's death before it is killed;
	// 0 means DefaultGracePeriod.
	GracePeriod time.Duration
	// Detached makes the child outlive its parent: it is not told of the
	// parent's death and runs in its own process group. Its result is lost
	// if the parent is gone when it ends. Its output still goes where
	// Stdout and Stderr say; output the parent relays (a writer that is
	// not an *os.File) is lost once the parent is gone, and the child's
	// writes then fail with EPIPE (a detached child ignores SIGPIPE, so
	// they do not kill it).
	Detached bool
}

var procSeq atomic.Int64

// Start runs the function in a new child process with arg and returns
// once the child holds its argument. ctx bounds the child's life, as
// exec.CommandContext does: when ctx is done before the child ends, the
// child is terminated (Terminate).
//
// Start fails, with no child left behind, when the function is not
// registered (ErrNotRegistered), Main was not called (ErrNoMain), or arg
// cannot be encoded.
func (f *Func[A]) Start(ctx context.Context, arg A, opts ProcOptions) (*Process, error) {
	if f == nil || f.name == "" {
		return nil, fmt.Errorf("start: %w", ErrNotRegistered)
	}
	if f.late {
		return nil, fmt.Errorf("start %q: registered after mproc.Main ran, so a child cannot see it; call Register at package level: %w", f.name, ErrNotRegistered)
	}
	if !mainCalled.Load() {
		return nil, fmt.Errorf("start %q: %w", f.name, ErrNoMain)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("start %q: %w", f.name, err)
	}
	payload, fds, err := encodeArg(arg)
	if err != nil {
		return nil, fmt.Errorf("start %q: encode argument: %w", f.name, err)
	}
	defer closeFDs(fds)
	return start(ctx, f.name, payload, fds, opts)
}

func start(ctx context.Context, fn string, payload []byte, fds []*fd.FD, opts ProcOptions) (*Process, error) {
	name := opts.Name
	if name == "" {
		name = fmt.Sprintf("%s-%d", fn, procSeq.Add(1))
	}
	raw := make([]int, len(fds))
	for i, f := range fds {
		raw[i] = f.Int()
	}
	grace := cmp.Or(opts.GracePeriod, DefaultGracePeriod)
	hello := reexec.Hello{Func: fn, Name: name, ParentPid: os.Getpid(), Grace: grace, Detached: opts.Detached, Arg: payload}
	defer refill() // after our child has answered: see takeSpare
	if s := takeSpare(opts); s != nil {
		err := handOver(ctx, s.ctrl, hello, raw)
		if err == nil {
			p := newProcess(name, s.cmd, s.ctrl, opts)
			p.exited = s.exited
			p.watch(ctx)
			return p, nil
		}
		// The spare died before it took the Hello (killed from outside,
		// say): drop it and start a process as usual.
		dismiss([]*spare{s})
		if ctx.Err() != nil {
			return nil, fmt.Errorf("start %q: %w", name, ctx.Err())
		}
	}
	cmd, ctrl, err := startChild(opts)
	if err != nil {
		return nil, fmt.Errorf("start %q: %w", name, err)
	}
	p := newProcess(name, cmd, ctrl, opts)
	if err := handOver(ctx, ctrl, hello, raw); err != nil && err != io.EOF {
		// io.EOF: the child ended during bootstrap; Wait will say how.
		p.Kill()
		go p.reap()
		<-p.done
		return nil, fmt.Errorf("start %q: hand over argument: %w", name, err)
	}
	p.watch(ctx)
	return p, nil
}

// handOver sends the Hello and waits for the child's Ready; io.EOF means
// the child ended first.
func handOver(ctx context.Context, ctrl *reexec.Conn, hello reexec.Hello, fds []int) error {
	if err := ctrl.SendHello(ctx, hello, fds); err != nil {
		return err
	}
	return ctrl.RecvReady(ctx)
}

// startChild starts this binary as a child that waits for its Hello on the
// returned control socket.
func startChild(opts ProcOptions) (*exec.Cmd, *reexec.Conn, error) {
	ctrl, childEnd, err := reexec.Pair()
	if err != nil {
		return nil, nil, err
	}
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, reexec.EnvMarker+"=") })
	env = append(append(env, opts.Env...), reexec.EnvMarker+"="+reexec.Marker())
	cmd := &exec.Cmd{
		Path:        "/proc/self/exe",
		Args:        []string{os.Args[0]},
		Env:         env,
		Dir:         opts.Dir,
		Stdin:       opts.Stdin,
		Stdout:      childOutput(opts.Stdout, os.Stdout),
		Stderr:      childOutput(opts.Stderr, os.Stderr),
		ExtraFiles:  []*os.File{childEnd},
		SysProcAttr: &syscall.SysProcAttr{Setpgid: opts.Detached},
		WaitDelay:   time.Second,
	}
	err = cmd.Start()
	childEnd.Close()
	if err != nil {
		ctrl.Close()
		return nil, nil, err
	}
	return cmd, ctrl, nil
}

// childOutput is the exec.Cmd writer for a child's output w: io.Discard
// becomes nil (exec opens /dev/null, so no goroutine relays it and no
// pipe breaks when this process dies), nil becomes def.
func childOutput(w io.Writer, def *os.File) io.Writer {
	switch w {
	case io.Discard:
		return nil
	case nil:
		return def
	}
	return w
}

// Process is a child process started by Start or StartCommand. Its methods
// are safe for concurrent use. A child is always reaped, whether or not
// anybody calls Wait.
type Process struct {
	name     string
	pid      int
	cmd      *exec.Cmd
	ctrl     *reexec.Conn  // nil for a command
	exited   chan struct{} // closed when cmd.Wait returns, for a spare; nil: reap calls it
	grace    time.Duration
	detached bool

	done    chan struct{} // closed once reaped and err is set
	err     error
	code    int
	stopCtx func() bool

	mu   sync.Mutex
	kill *time.Timer // SIGKILL after Terminate's grace period
}

var children struct {
	sync.Mutex
	m map[*Process]time.Time
}

func newProcess(name string, cmd *exec.Cmd, ctrl *reexec.Conn, opts ProcOptions) *Process {
	p := &Process{name: name, pid: cmd.Process.Pid, cmd: cmd, ctrl: ctrl,
		grace: cmp.Or(opts.GracePeriod, DefaultGracePeriod), detached: opts.Detached,
		done: make(chan struct{}), code: -1, stopCtx: func() bool { return false }}
	children.Lock()
	if children.m == nil {
		children.m = make(map[*Process]time.Time)
	}
	children.m[p] = time.Now()
	children.Unlock()
	return p
}

// watch reaps the child in the background and terminates it when ctx is
// done first.
func (p *Process) watch(ctx context.Context) {
	p.stopCtx = context.AfterFunc(ctx, func() { p.Terminate() })
	go p.reap()
}

func (p *Process) reap() {
	if p.exited != nil {
		<-p.exited
	} else {
		p.cmd.Wait() // the state is what matters; I/O copy errors are not the child's
	}
	var res reexec.Result
	var ok bool
	if p.ctrl != nil {
		// A result is sent before exit, so it is queued on the socket now.
		res, ok, _ = p.ctrl.RecvResult(time.Now().Add(time.Second))
		p.ctrl.Close()
	}
	st := p.cmd.ProcessState
	p.code = st.ExitCode()
	switch {
	case ok && res.Status == reexec.StatusOK:
	case ok && res.Status == reexec.StatusPanic:
		p.err = &PanicError{Process: p.name, Pid: p.pid, Value: res.Msg, Stack: res.Stack}
	case ok:
		p.err = &RemoteError{Process: p.name, Pid: p.pid, Msg: res.Msg, Err: errcode.Error(res.Code)}
	default:
		ws, _ := st.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			p.err = &ExitError{Process: p.name, Pid: p.pid, Code: -1, Signal: ws.Signal()}
		} else if p.code != 0 {
			p.err = &ExitError{Process: p.name, Pid: p.pid, Code: p.code}
		}
	}
	p.stopCtx()
	p.mu.Lock()
	if p.kill != nil {
		p.kill.Stop()
	}
	p.mu.Unlock()
	children.Lock()
	delete(children.m, p)
	children.Unlock()
	close(p.done)
}

// Pid returns the child's process id.
func (p *Process) Pid() int { return p.pid }

// Name returns the child's name.
func (p *Process) Name() string { return p.name }

// Alive reports whether the child has not yet ended (and been reaped).
func (p *Process) Alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Done returns a channel closed when the child has ended.
func (p *Process) Done() <-chan struct{} { return p.done }

// Wait waits until the child ends or ctx is done and returns how it ended:
// nil when the function returned nil (or the child called os.Exit(0)); the
// function's error as a *RemoteError (errors.Is works for mproc sentinels and
// the context errors); a *PanicError when it panicked; an *ExitError when it
// exited with another status or was killed by a signal. Wait may be called
// any number of times, from any goroutine; ctx bounds only the waiting, and
// when it ends the wait Wait returns ctx.Err() itself, not a *RemoteError
// (a child's own context.Canceled arrives wrapped in one).
func (p *Process) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ExitCode returns the child's exit status: -1 while it runs or if a signal
// killed it.
func (p *Process) ExitCode() int {
	select {
	case <-p.done:
		return p.code
	default:
		return -1
	}
}

// Signal sends sig to the child. It returns os.ErrProcessDone if the child
// has ended.
func (p *Process) Signal(sig os.Signal) error {
	if !p.Alive() {
		return os.ErrProcessDone
	}
	return p.cmd.Process.Signal(sig)
}

// Kill sends SIGKILL to the child.
func (p *Process) Kill() error { return p.Signal(syscall.SIGKILL) }

// Terminate asks the child to stop, which cancels the child function's
// context (context.Cause is ErrTerminated), and sends SIGKILL after the
// grace period if the child has not ended by then. The request travels on
// the child's control socket (SIGTERM if that fails); a SIGTERM or SIGINT
// from elsewhere does the same once the child runs its function, so Ctrl-C
// at a terminal winds a process group down. A command started with
// StartCommand gets SIGTERM and handles it as it sees fit.
func (p *Process) Terminate() error {
	if p.ctrl == nil || p.ctrl.SendTerminate() != nil {
		if err := p.Signal(syscall.SIGTERM); err != nil {
			return err
		}
	}
	p.mu.Lock()
	if p.kill == nil {
		p.kill = time.AfterFunc(p.grace, func() { p.Kill() })
	}
	p.mu.Unlock()
	return nil
}

// Children returns the child processes of this process that have not yet
// ended, oldest first (Python's active_children).
func Children() []*Process {
	children.Lock()
	defer children.Unlock()
	ps := make([]*Process, 0, len(children.m))
	for p := range children.m {
		ps = append(ps, p)
	}
	slices.SortFunc(ps, func(a, b *Process) int { return children.m[a].Compare(children.m[b]) })
	return ps
}

// ProcessInfo describes the calling process.
type ProcessInfo struct {
	Name      string // "main" in a process that is not an mproc child
	Pid       int
	ParentPid int
	Child     bool // started by Start
}

var current = ProcessInfo{Name: "main"}

// Current describes the calling process.
func Current() ProcessInfo {
	c := current
	c.Pid = os.Getpid()
	if !c.Child {
		c.ParentPid = os.Getppid()
	}
	return c
}

// CommandOptions configure StartCommand.
type CommandOptions struct {
	// Name names the process; the default is the command's base name.
	Name string
	// GracePeriod is Terminate's delay before SIGKILL; 0 means
	// DefaultGracePeriod.
	GracePeriod time.Duration
	// Detached lets the command outlive this process, in its own process
	// group.
	Detached bool
}

// StartCommand starts cmd, an external program, bound to this process: it
// is killed (SIGKILL) when this process dies, however it dies, unless
// opts.Detached. It returns a *Process, reaped in the background like a
// Go child; Wait returns nil or an *ExitError. mproc handles are handed to
// the command as descriptors in cmd.ExtraFiles (descriptor 3 + index), from
// their File methods. ctx bounds the command's life as in Start.
//
// Binding: the program is started from an OS thread that mproc locks for
// the life of the process, with the parent-death signal set (PR_SET_PDEATHSIG
// fires when the creating thread exits, so that thread never does).
func StartCommand(ctx context.Context, cmd *exec.Cmd, opts CommandOptions) (*Process, error) {
	if cmd.Process != nil {
		return nil, errors.New("StartCommand: command already started")
	}
	name := cmp.Or(opts.Name, filepath.Base(cmd.Path))
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("start %q: %w", name, err)
	}
	attr := &syscall.SysProcAttr{}
	if cmd.SysProcAttr != nil {
		*attr = *cmd.SysProcAttr
	}
	if opts.Detached {
		attr.Setpgid = true
	} else {
		attr.Pdeathsig = syscall.SIGKILL
	}
	cmd.SysProcAttr = attr
	if cmd.WaitDelay == 0 {
		cmd.WaitDelay = time.Second
	}
	var err error
	if opts.Detached {
		err = cmd.Start()
	} else {
		onSpawnerThread(func() { err = cmd.Start() })
	}
	if err != nil {
		return nil, fmt.Errorf("start %q: %w", name, err)
	}
	p := newProcess(name, cmd, nil, ProcOptions{GracePeriod: opts.GracePeriod, Detached: opts.Detached})
	p.watch(ctx)
	return p, nil
}

// The spawner thread: one goroutine locked to its OS thread for the life of
// the process, which never exits, so that Pdeathsig fires only when the
// process dies.
var spawner struct {
	once sync.Once
	reqs chan func()
}

func onSpawnerThread(f func()) {
	spawner.once.Do(func() {
		spawner.reqs = make(chan func())
		go func() {
			runtime.LockOSThread()
			for req := range spawner.reqs {
				req()
			}
		}()
	})
	done := make(chan struct{})
	spawner.reqs <- func() { f(); close(done) }
	<-done
}
