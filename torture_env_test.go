package mproc_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"mproc"
	"mproc/internal/testenv"
)

// The torture scenarios of the environment (issue 18): a parent killed
// under its children, a segment truncated or overwritten in use, /dev/shm
// full, and the descriptor limit. They need no failpoints and run in the
// normal suite (a few iterations) as well as in the soak, where
// -torture.n sets their iterations.

// envN is the iterations of an environment scenario: -torture.n when it
// is given (the build has it with mprocfail), at least 3; else 3.
func envN() int {
	n := 3
	flag.Visit(func(f *flag.Flag) {
		if v, err := strconv.Atoi(f.Value.String()); err == nil && f.Name == "torture.n" {
			n = max(v, 3)
		}
	})
	return n
}

// envQuickExit is in the environment of the children these scenarios
// start: a race-detector build otherwise sleeps a second at exit (GORACE's
// atexit_sleep_ms, 1000 by default).
func envQuickExit() string {
	return "GORACE=" + strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0")
}

// envRole names the role a re-executed test binary plays (runInChild).
const envRole = "MPROC_TORTURE_ENV_ROLE"

// runInChild runs this test again in a new process of the test binary,
// with role in its environment and attr, and returns its output; the test
// fails if the child does.
func runInChild(t *testing.T, role string, attr *syscall.SysProcAttr) string {
	t.Helper()
	ctx := ctxTimeout(t, 5*time.Minute)
	args := []string{"-test.run=^" + t.Name() + "$", "-test.v", "-test.count=1"}
	flag.Visit(func(f *flag.Flag) {
		if f.Name == "torture.n" {
			args = append(args, "-torture.n="+f.Value.String())
		}
	})
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), envRole+"="+role)
	cmd.SysProcAttr = attr
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s in a child: %v\n%s", role, err, out)
	}
	return string(out)
}

// resultLines returns the lines of out that hold a scenario's result.
func resultLines(out, prefix string) string {
	var b strings.Builder
	for line := range strings.Lines(out) {
		if i := strings.Index(line, prefix); i >= 0 {
			b.WriteString(strings.TrimSpace(line[i:]) + "\n")
		}
	}
	return b.String()
}

// ---- /dev/shm full -----------------------------------------------------

// TestTortureENOSPC: in a mount namespace of its own, a child mounts a
// 64 KiB tmpfs over /dev/shm; creating a named object larger than the
// room left must fail with an error wrapping syscall.ENOSPC, leave no
// file behind, and leave the library working (a small object is created
// and used right after). Without the allocation at creation
// (internal/shm.allocate), ftruncate succeeds on the full tmpfs and the
// creator dies of SIGBUS writing the header.
func TestTortureENOSPC(t *testing.T) {
	if os.Getenv(envRole) == "enospc" {
		enospcChild(t)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root, to mount a tmpfs in a mount namespace of its own")
	}
	out := runInChild(t, "enospc", &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS})
	t.Log(resultLines(out, "E1 "))
	t.Log(resultLines(out, "E2 "))
}

func enospcChild(t *testing.T) {
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		t.Fatalf("make / private: %v", err)
	}
	if err := syscall.Mount("tmpfs", "/dev/shm", "tmpfs", 0, "size=64k"); err != nil {
		t.Fatalf("mount a tmpfs over /dev/shm: %v", err)
	}
	defer syscall.Unmount("/dev/shm", 0)
	n, failed, clear, left, broken := envN(), 0, 0, 0, 0
	for i := range n {
		// Fill what is left, then ask for more.
		var made []string
		for j := 0; ; j++ {
			name := fmt.Sprintf("enospc-%d-%d", i, j)
			q, err := mproc.CreateQueue[[]byte](name, 64, mproc.WithMaxMessage(100))
			if err != nil {
				failed++
				if errors.Is(err, syscall.ENOSPC) && strings.Contains(err.Error(), name) {
					clear++
				} else {
					t.Logf("create %s on a full /dev/shm: %v", name, err)
				}
				break
			}
			q.Close()
			made = append(made, name)
		}
		ents, _ := os.ReadDir("/dev/shm")
		if len(ents) != len(made) {
			left++
			t.Logf("/dev/shm holds %d files after the failure, %d were made", len(ents), len(made))
		}
		for _, name := range made {
			os.Remove(filepath.Join("/dev/shm", "mproc."+name))
		}
		// The library still works: a small named object.
		l, err := mproc.CreateLock(fmt.Sprintf("enospc-small-%d", i))
		if err != nil {
			broken++
			t.Logf("create a small lock after the failure: %v", err)
			continue
		}
		l.Lock()
		l.Unlock()
		l.Remove()
		l.Close()
	}
	line := fmt.Sprintf("E1 /dev/shm full (64 KiB tmpfs): %d of %d creations failed with ENOSPC wrapped and named (%d failed); files left %d, broken after %d",
		clear, n, failed, left, broken)
	t.Log(line)
	if clear != n || failed != n || left+broken > 0 {
		t.Error(line)
	}
	enospcPut(t, n)
}

// enospcPut is E2: a queue of 1 MiB slots takes a page per slot when it is
// created (ring.EagerRanges), so it fits the 64 KiB tmpfs; a put that
// needs more memory than is left must fail wrapping ENOSPC — not fault —
// and leave the queue working for messages that fit.
func enospcPut(t *testing.T, n int) {
	refused, worked := 0, 0
	big, small := bytes.Repeat([]byte{0xb1}, 256<<10), bytes.Repeat([]byte{0x5a}, 1000)
	for i := range n {
		name := fmt.Sprintf("enospc-put-%d", i)
		q, err := mproc.CreateQueue[[]byte](name, 4, mproc.WithMaxMessage(1<<20))
		if err != nil {
			t.Errorf("create a queue of 1 MiB slots on a 64 KiB tmpfs: %v", err)
			return
		}
		if err := q.TryPut(big); errors.Is(err, syscall.ENOSPC) {
			refused++
		} else {
			t.Logf("put of %d bytes on a full /dev/shm: %v", len(big), err)
		}
		if err := q.TryPut(small); err != nil {
			t.Logf("put of %d bytes after the refusal: %v", len(small), err)
		} else if m, err := q.TryGet(); err == nil && bytes.Equal(m, small) {
			worked++
		} else {
			t.Logf("get after the refusal: %d bytes, %v", len(m), err)
		}
		q.Remove()
		q.Close()
	}
	line := fmt.Sprintf("E2 put of 256 KiB into a queue of 1 MiB slots on a full /dev/shm: %d of %d refused with ENOSPC wrapped; queue working after %d",
		refused, n, worked)
	t.Log(line)
	if refused != n || worked != n {
		t.Error(line)
	}
}

// ---- descriptor limit ----------------------------------------------------

var envNop = mproc.Register("torture-env-nop", func(ctx context.Context, _ int) error { return nil })

// TestTortureEMFILE: in a child whose every descriptor is taken (up to a
// lowered RLIMIT_NOFILE), creating and opening objects, Listen, Dial and
// Start fail with an error wrapping EMFILE; once descriptors are free
// again they succeed, and the failed calls leaked none (/proc/self/fd
// counted before and after).
func TestTortureEMFILE(t *testing.T) {
	if os.Getenv(envRole) == "emfile" {
		emfileChild(t)
		return
	}
	out := runInChild(t, "emfile", nil)
	t.Log(resultLines(out, "F1 "))
}

func emfileChild(t *testing.T) {
	ctx := ctxTimeout(t, time.Minute)
	lim := syscall.Rlimit{Cur: 256, Max: 256}
	var old syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatalf("setrlimit: %v", err)
	}
	defer syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old)
	name := fmt.Sprintf("emfile-%d", os.Getpid())
	named, err := mproc.CreateLock(name)
	if err != nil {
		t.Fatal(err)
	}
	defer named.Close()
	defer named.Remove()
	dir := t.TempDir()
	sock := filepath.Join(dir, "s")
	ln, err := mproc.Listen("unix", sock, nil, mproc.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	calls := []struct {
		what string
		do   func() (func(), error) // the closer of what it made
	}{
		{"NewQueue", func() (func(), error) {
			q, err := mproc.NewQueue[[]byte](4)
			return func() { q.Close() }, err
		}},
		{"CreateLock", func() (func(), error) {
			l, err := mproc.CreateLock(name + "-new")
			return func() { l.Remove(); l.Close() }, err
		}},
		{"OpenLock", func() (func(), error) {
			l, err := mproc.OpenLock(name)
			return func() { l.Close() }, err
		}},
		{"Listen", func() (func(), error) {
			l, err := mproc.Listen("unix", sock+"2", nil, mproc.ListenOptions{})
			return func() { l.Close() }, err
		}},
		{"Dial", func() (func(), error) {
			c, err := mproc.Dial(ctx, "unix", sock, nil)
			return func() {
				c.Close()
				if a, err := ln.Accept(ctx); err == nil {
					a.Close()
				}
			}, err
		}},
		{"Start", func() (func(), error) {
			p, err := envNop.Start(ctx, 0, mproc.ProcOptions{Env: []string{envQuickExit()}})
			return func() { p.Wait(ctx) }, err
		}},
	}
	n := envN()
	wrapped, leaked, broken := 0, 0, 0
	for range n {
		for _, c := range calls {
			before := len(testenv.FDs())
			var fill []int
			for {
				fd, err := syscall.Open("/dev/null", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
				if err != nil {
					break
				}
				fill = append(fill, fd)
			}
			_, err := c.do()
			for _, fd := range fill {
				syscall.Close(fd)
			}
			if errors.Is(err, syscall.EMFILE) {
				wrapped++
			} else {
				t.Logf("%s with no descriptor free: %v", c.what, err)
			}
			after := testenv.FDs()
			for try := 0; len(after) != before && try < 50; try++ {
				time.Sleep(10 * time.Millisecond) // background closes (a child's reaper)
				after = testenv.FDs()
			}
			if len(after) != before {
				leaked++
				t.Logf("%s with no descriptor free: %d descriptors before, %d after: %v", c.what, before, len(after), after)
			}
			// Recovered: the call succeeds now.
			done, err := c.do()
			if err != nil {
				broken++
				t.Logf("%s after descriptors were freed: %v", c.what, err)
				continue
			}
			done()
		}
	}
	line := fmt.Sprintf("F1 descriptor limit (EMFILE): %d of %d calls failed with EMFILE wrapped; descriptors leaked %d, failing after recovery %d",
		wrapped, n*len(calls), leaked, broken)
	t.Log(line)
	if wrapped != n*len(calls) || leaked+broken > 0 {
		t.Error(line)
	}
}

// ---- parent killed -------------------------------------------------------

type envMiddleArg struct {
	Pids *mproc.Array[int64] // [Go child, command, detached child, ready]
	Name string              // the named lock the middle creates
}

var (
	envSleeper = mproc.Register("torture-env-sleeper", func(ctx context.Context, _ int) error {
		<-ctx.Done()
		return nil
	})
	envMiddle = mproc.Register("torture-env-middle", func(ctx context.Context, a envMiddleArg) error {
		q, err := mproc.NewQueue[[]byte](64) // anonymous: a memfd, nothing in /dev/shm
		if err != nil {
			return err
		}
		defer q.Close()
		l, err := mproc.CreateLock(a.Name) // named: stays until Remove
		if err != nil {
			return err
		}
		defer l.Close()
		l.Lock()
		child, err := envSleeper.Start(ctx, 0, mproc.ProcOptions{GracePeriod: 100 * time.Millisecond})
		if err != nil {
			return err
		}
		cmd, err := mproc.StartCommand(ctx, exec.Command("sleep", "1000"), mproc.CommandOptions{})
		if err != nil {
			return err
		}
		detached, err := envSleeper.Start(ctx, 0, mproc.ProcOptions{Detached: true})
		if err != nil {
			return err
		}
		a.Pids.Store(0, int64(child.Pid()))
		a.Pids.Store(1, int64(cmd.Pid()))
		a.Pids.Store(2, int64(detached.Pid()))
		a.Pids.Store(3, 1)
		<-ctx.Done()
		return nil
	})
)

// gone reports whether process pid has ended (a zombie has).
func gone(pid int) bool {
	if syscall.Kill(pid, 0) == syscall.ESRCH {
		return true
	}
	return procStateLetter(pid) == 'Z' || procStateLetter(pid) == 0
}

// procStateLetter returns the state letter of /proc/<pid>/stat, 0 if none.
func procStateLetter(pid int) byte {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0
	}
	return b[i+2]
}

// TestTortureParentKilled: the test starts a middle process that starts a
// Go child, an external command (StartCommand) and a detached Go child,
// and creates an anonymous queue and a named lock; the middle is killed
// with SIGKILL. The promise (process.go, ARCHITECTURE.md §4): the Go
// child ends within its grace period after seeing the parent's death, the
// command at once (Pdeathsig); the detached child lives on; the anonymous
// queue leaves nothing anywhere, and the named lock stays in /dev/shm until
// removed (named objects are not cleaned up), and is then handed to the
// next locker with ErrOwnerDead.
func TestTortureParentKilled(t *testing.T) {
	n := envN()
	ok, slowest := 0, time.Duration(0)
	left := 0
	for i := range n {
		d, err := parentKilledOnce(t, i)
		if err != nil {
			left++
			t.Logf("iteration %d: %v", i, err)
			continue
		}
		ok++
		slowest = max(slowest, d)
	}
	line := fmt.Sprintf("K1 parent killed under a Go child, a command and a detached child: %d of %d clean; children left %d, max time to the last child's end %v",
		ok, n, left, slowest.Round(time.Millisecond))
	t.Log(line)
	if ok != n {
		t.Error(line)
	}
}

func parentKilledOnce(t *testing.T, i int) (time.Duration, error) {
	ctx := ctxTimeout(t, 30*time.Second)
	pids, err := mproc.NewArray[int64](4)
	if err != nil {
		t.Fatal(err)
	}
	defer pids.Close()
	name := fmt.Sprintf("torture-parent-%d-%d", os.Getpid(), i)
	mid, err := envMiddle.Start(ctx, envMiddleArg{Pids: pids, Name: name}, mproc.ProcOptions{Env: []string{envQuickExit()}})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Reap(t, mid)
	for pids.Load(3) == 0 {
		if !mid.Alive() || ctx.Err() != nil {
			return 0, fmt.Errorf("the middle process ended before it was ready: %v", mid.Wait(ctx))
		}
		time.Sleep(time.Millisecond)
	}
	child, cmd, detached := int(pids.Load(0)), int(pids.Load(1)), int(pids.Load(2))
	defer syscall.Kill(detached, syscall.SIGKILL)
	mid.Kill()
	killedAt := time.Now()
	mid.Wait(ctx)
	var last time.Duration
	for _, pid := range []int{child, cmd} {
		for !gone(pid) {
			if time.Since(killedAt) > 20*time.Second {
				syscall.Kill(pid, syscall.SIGKILL)
				return 0, fmt.Errorf("child %d still alive %v after its parent was killed", pid, time.Since(killedAt).Round(time.Millisecond))
			}
			time.Sleep(time.Millisecond)
		}
		last = max(last, time.Since(killedAt))
	}
	if gone(detached) {
		return 0, fmt.Errorf("the detached child %d ended with its parent", detached)
	}
	// The named lock stays until removed, and its dead holder's lock is
	// handed over.
	l, err := mproc.OpenLock(name)
	if err != nil {
		return 0, fmt.Errorf("the named lock after its creator died: %v", err)
	}
	defer l.Close()
	l.Remove()
	if err := l.LockContext(ctx); !errors.Is(err, mproc.ErrOwnerDead) {
		return 0, fmt.Errorf("lock the dead middle's lock: %v, want ErrOwnerDead", err)
	}
	l.MarkConsistent()
	l.Unlock()
	return last, nil
}

// ---- a segment truncated or overwritten in use -----------------------------

type envTruncArg struct {
	Name  string
	N     int
	Ready *mproc.Array[int64] // [0] set once the lock is open
}

// envLockUser opens the named lock and locks and unlocks it N times (0:
// until its context ends).
var envLockUser = mproc.Register("torture-env-lock-user", func(ctx context.Context, a envTruncArg) error {
	l, err := mproc.OpenLock(a.Name)
	if err != nil {
		return err
	}
	defer l.Close()
	a.Ready.Store(0, 1)
	for i := 0; (a.N == 0 || i < a.N) && ctx.Err() == nil; i++ {
		if err := l.LockContext(ctx); err != nil && !errors.Is(err, mproc.ErrOwnerDead) {
			return err
		}
		l.Unlock()
	}
	return nil
})

// TestTortureTruncate: another process of the same user truncates
// /dev/shm/mproc.<name> (T1) or overwrites its header (T2) while a child
// uses the lock. The promise (internal/shm's package comment, "What is
// not recovered" in ARCHITECTURE.md): new opens are refused with
// ErrCorrupt; a process already using an overwritten header goes on (the
// header is read at open only); a process using a truncated segment
// faults (SIGBUS) at its next access and ends — it must never hang, and
// nobody else is harmed. The test process never maps the segment itself.
func TestTortureTruncate(t *testing.T) {
	for _, sc := range []struct {
		name     string
		truncate bool
	}{
		{"T1 segment truncated to 0 under a lock user", true},
		{"T2 segment header overwritten under a lock user", false},
	} {
		t.Run(sc.name[:2], func(t *testing.T) {
			n := envN()
			ok, refused, crashed, hangs := 0, 0, 0, 0
			for i := range n {
				r, c, h := truncateOnce(t, i, sc.truncate)
				refused += r
				crashed += c
				hangs += h
				if r == 1 && h == 0 && (c == 1) == sc.truncate {
					ok++
				}
			}
			line := fmt.Sprintf("%s: %d of %d as promised; new opens refused %d, users ended by the fault %d, hangs %d",
				sc.name, ok, n, refused, crashed, hangs)
			t.Log(line)
			if ok != n {
				t.Error(line)
			}
		})
	}
}

// truncateOnce returns whether a new open was refused with ErrCorrupt,
// whether the user died of the fault, and whether anything hung.
func truncateOnce(t *testing.T, i int, truncate bool) (refused, crashed, hangs int) {
	ctx := ctxTimeout(t, 30*time.Second)
	name := fmt.Sprintf("torture-trunc-%d-%d", os.Getpid(), i)
	l, err := mproc.CreateLock(name)
	if err != nil {
		t.Fatal(err)
	}
	l.Close() // this process keeps no mapping
	defer os.Remove(filepath.Join("/dev/shm", "mproc."+name))
	ready, err := mproc.NewArray[int64](1)
	if err != nil {
		t.Fatal(err)
	}
	defer ready.Close()
	var stderr bytes.Buffer
	user, err := envLockUser.Start(ctx, envTruncArg{Name: name, Ready: ready}, mproc.ProcOptions{Stderr: &stderr, Env: []string{envQuickExit()}})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Reap(t, user)
	path := filepath.Join("/dev/shm", "mproc."+name)
	for ready.Load(0) == 0 {
		if !user.Alive() || ctx.Err() != nil {
			t.Fatalf("the lock user ended before it opened the lock: %v", user.Wait(ctx))
		}
		time.Sleep(100 * time.Microsecond)
	}
	if truncate {
		err = os.Truncate(path, 0)
	} else {
		var f *os.File
		if f, err = os.OpenFile(path, os.O_WRONLY, 0); err == nil {
			_, err = f.WriteAt(bytes.Repeat([]byte{0xa5}, 64), 0)
			f.Close()
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	if truncate && i%5 != 0 {
		// An empty file may be one being created: Open waits shm.InitWait
		// (1 s) before it says ErrCorrupt, so every fifth iteration checks.
		refused = 1
	} else if _, err := mproc.OpenLock(name); errors.Is(err, mproc.ErrCorrupt) {
		refused = 1
	} else {
		t.Logf("open after the damage: %v, want ErrCorrupt", err)
	}
	if !truncate {
		// The user goes on: stop it, and it must return nil.
		time.Sleep(time.Millisecond)
		user.Terminate()
		if err := user.Wait(ctx); err != nil {
			t.Logf("the user of an overwritten header: %v", err)
			hangs = 1
		}
		return refused, 0, hangs
	}
	err = user.Wait(ctx)
	var ee *mproc.ExitError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		hangs = 1
		t.Logf("the user of a truncated segment hangs")
	case errors.As(err, &ee) && strings.Contains(stderr.String(), "fault"):
		crashed = 1
	default:
		t.Logf("the user of a truncated segment: %v\n%s", err, stderr.String())
	}
	return refused, crashed, hangs
}
