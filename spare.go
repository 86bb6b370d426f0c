package mproc

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"sync"

	"mproc/internal/reexec"
)

// Spare processes: Go's runtime cannot fork, so every child is a fresh
// exec of this binary and pays the runtime's start-up (about 5 ms on a
// small VM, against under 1 ms for the control-socket handshake). KeepWarm
// moves that cost off the caller's path, as Python's forkserver does: it
// keeps children started ahead of need, each blocked reading its Hello, and
// Start hands the function to one of them.

// spares is the pool of started children that have no function yet.
var spares struct {
	sync.Mutex
	want     int
	starting int
	idle     []*spare
	// What the idle spares were started with; a change in the process's
	// environment, working directory or standard files since then makes
	// them stale.
	env            []string
	dir            string
	stdout, stderr *os.File
}

type spare struct {
	cmd    *exec.Cmd
	ctrl   *reexec.Conn
	exited chan struct{} // closed once cmd.Wait has returned: a spare is reaped from birth
}

// KeepWarm keeps n child processes started and waiting, so that Start
// hands its function to a running child instead of starting a process;
// KeepWarm(0), the default, stops the waiting ones and waits until they
// have exited. After a Start takes a spare, a new one is started in the
// background.
//
// A spare serves a Start whose ProcOptions leave Stdin, Stdout, Stderr,
// Env and Dir unset and Detached false; any other Start starts a process
// as usual. A spare runs with the environment, working directory and
// standard output and error the parent had when the spare was started; if
// they have changed by the time of Start, the spares are replaced and that
// Start starts a process as usual. Spares are not children yet: Children
// does not list them, and they exit as soon as the parent dies or drops
// them. Each idle spare costs a process and its memory (a few MiB).
func KeepWarm(n int) error {
	if n < 0 {
		return fmt.Errorf("KeepWarm(%d): negative count", n)
	}
	if n > 0 && !mainCalled.Load() {
		return fmt.Errorf("KeepWarm: %w", ErrNoMain)
	}
	spares.Lock()
	spares.want = n
	var drop []*spare
	if len(spares.idle) > n {
		drop = slices.Clone(spares.idle[n:])
		spares.idle = spares.idle[:n]
	}
	spares.Unlock()
	dismiss(drop)
	refill()
	return nil
}

// takeSpare returns a spare for a Start with opts, or nil. The caller
// calls refill once its child has answered, so that the replacement's
// start-up does not compete with the hand-over for the CPU.
func takeSpare(opts ProcOptions) *spare {
	if opts.Stdin != nil || opts.Stdout != nil || opts.Stderr != nil || opts.Env != nil ||
		opts.Dir != "" || opts.Detached {
		return nil
	}
	spares.Lock()
	if spares.want == 0 {
		spares.Unlock()
		return nil
	}
	var s *spare
	var stale []*spare
	if len(spares.idle) > 0 {
		if snapshotChanged() {
			stale, spares.idle = spares.idle, nil
		} else {
			s = spares.idle[0]
			spares.idle = spares.idle[1:]
		}
	}
	spares.Unlock()
	dismiss(stale)
	return s
}

// snapshotChanged reports whether the idle spares were started with
// another environment, directory or standard files. spares is locked.
func snapshotChanged() bool {
	dir, _ := os.Getwd()
	return dir != spares.dir || os.Stdout != spares.stdout || os.Stderr != spares.stderr ||
		!slices.Equal(os.Environ(), spares.env)
}

// refill starts spares in the background until there are as many as
// wanted.
func refill() {
	spares.Lock()
	defer spares.Unlock()
	for len(spares.idle)+spares.starting < spares.want {
		spares.starting++
		go func() {
			s, env, dir, stdout, stderr, err := startSpare()
			spares.Lock()
			spares.starting--
			if err != nil {
				// Start will start processes itself and report the error.
				spares.want = 0
				spares.Unlock()
				return
			}
			var drop []*spare
			if len(spares.idle) > 0 && !(spares.dir == dir && spares.stdout == stdout &&
				spares.stderr == stderr && slices.Equal(spares.env, env)) {
				drop, spares.idle = spares.idle, nil // the new one is fresher
			}
			if len(spares.idle) == 0 {
				spares.env, spares.dir, spares.stdout, spares.stderr = env, dir, stdout, stderr
			}
			if len(spares.idle) >= spares.want {
				drop = append(drop, s)
				s = nil
			}
			if s != nil {
				spares.idle = append(spares.idle, s)
			}
			spares.Unlock()
			dismiss(drop)
		}()
	}
}

func startSpare() (s *spare, env []string, dir string, stdout, stderr *os.File, err error) {
	env = os.Environ()
	dir, _ = os.Getwd()
	stdout, stderr = os.Stdout, os.Stderr
	cmd, ctrl, err := startChild(ProcOptions{})
	if err != nil {
		return nil, nil, "", nil, nil, err
	}
	s = &spare{cmd: cmd, ctrl: ctrl, exited: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(s.exited)
		// A spare that died idle (killed from outside) leaves the pool.
		spares.Lock()
		n := len(spares.idle)
		spares.idle = slices.DeleteFunc(spares.idle, func(x *spare) bool { return x == s })
		dropped := len(spares.idle) < n
		spares.Unlock()
		if dropped {
			s.ctrl.Close()
			refill()
		}
	}()
	return s, env, dir, stdout, stderr, nil
}

// dismiss closes the spares' control sockets, which makes each exit
// without a word, and waits until they are reaped.
func dismiss(ss []*spare) {
	for _, s := range ss {
		s.ctrl.Close()
	}
	for _, s := range ss {
		<-s.exited
	}
}
