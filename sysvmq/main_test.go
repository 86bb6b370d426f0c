//go:build linux && (amd64 || arm64 || riscv64 || loong64)

package sysvmq_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"mproc"
	"mproc/internal/testenv"
	"mproc/sysvmq"
)

// permEnv marks a re-execution of the test binary under another uid (see
// TestPermissionDenied): it holds the identifiers of the queues to try.
const permEnv = "SYSVMQ_TEST_PERM_CHILD"

// limitEnv marks a re-execution of the test binary in a new IPC namespace
// (see TestQueueLimit).
const limitEnv = "SYSVMQ_TEST_LIMIT_CHILD"

func TestMain(m *testing.M) {
	if ids := os.Getenv(permEnv); ids != "" {
		os.Exit(permChild(ids))
	}
	if os.Getenv(limitEnv) != "" {
		os.Exit(limitChild())
	}
	testenv.Main(m)
}

// limitChild runs in an IPC namespace of its own: it lowers kernel.msgmni
// there to 2 and creates 3 queues, and prints the third's error.
func limitChild() int {
	if err := os.WriteFile("/proc/sys/kernel/msgmni", []byte("2"), 0); err != nil {
		fmt.Println("write msgmni:", err)
		return 1
	}
	for i := range 3 {
		if _, err := sysvmq.Get(sysvmq.IPCPrivate, 0, 0o600); err != nil {
			fmt.Println(i, err)
			return 0
		}
	}
	fmt.Println("3 queues created")
	return 0
}

// noLeaks fails t if System V queues that this test process or its
// children used are left when the test ends, and removes them. Call it
// first in a test, so that its cleanup runs after the test's own.
//
// The table of queues is machine-wide (per IPC namespace) and other
// programs may create and remove queues meanwhile, so a new queue counts as
// this test's only if its last sender or receiver (lspid, lrpid) is this
// process or a child it started; a queue created here and never used
// escapes the check.
func noLeaks(t *testing.T) {
	t.Helper()
	before := queues(t)
	t.Cleanup(func() {
		for id, pids := range queues(t) {
			if _, ok := before[id]; ok || !slices.ContainsFunc(pids, ours) {
				continue
			}
			t.Errorf("the test left message queue %d behind", id)
			if q, err := sysvmq.FromID(id); err == nil {
				q.Remove()
			}
		}
	})
}

// children holds the pids of the processes the tests started.
var children sync.Map

func ours(pid int) bool {
	_, child := children.Load(pid)
	return pid == os.Getpid() || child
}

// queues lists the queues of this IPC namespace from /proc/sysvipc/msg,
// with their last sender's and receiver's pids.
func queues(t *testing.T) map[int][]int {
	t.Helper()
	b, err := os.ReadFile("/proc/sysvipc/msg")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	out := map[int][]int{}
	for _, l := range lines[1:] {
		fs := strings.Fields(l)
		if len(fs) < 7 {
			t.Fatalf("/proc/sysvipc/msg: %q", l)
		}
		id, err1 := strconv.Atoi(fs[1])
		lspid, err2 := strconv.Atoi(fs[5])
		lrpid, err3 := strconv.Atoi(fs[6])
		if err := errors.Join(err1, err2, err3); err != nil {
			t.Fatalf("/proc/sysvipc/msg: %q: %v", l, err)
		}
		out[id] = []int{lspid, lrpid}
	}
	return out
}

// procRow returns the /proc/sysvipc/msg fields of queue id, by header name.
func procRow(t *testing.T, id int) map[string]string {
	t.Helper()
	b, err := os.ReadFile("/proc/sysvipc/msg")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	head := strings.Fields(lines[0])
	for _, l := range lines[1:] {
		fs := strings.Fields(l)
		if len(fs) == len(head) && fs[1] == strconv.Itoa(id) {
			row := map[string]string{}
			for i, h := range head {
				row[h] = fs[i]
			}
			return row
		}
	}
	t.Fatalf("queue %d not in /proc/sysvipc/msg", id)
	return nil
}

// newQueue creates a private queue that is removed when the test ends.
func newQueue(t *testing.T) *sysvmq.Queue {
	t.Helper()
	q, err := sysvmq.Get(sysvmq.IPCPrivate, 0, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := q.Remove(); err != nil && !errors.Is(err, sysvmq.ErrRemoved) {
			t.Errorf("remove queue %d: %v", q.ID(), err)
		}
	})
	return q
}

func start[A any](t *testing.T, f *mproc.Func[A], arg A) *mproc.Process {
	t.Helper()
	p, err := f.Start(context.Background(), arg, mproc.ProcOptions{})
	if err != nil {
		t.Fatalf("start %s: %v", f.Name(), err)
	}
	children.Store(p.Pid(), true)
	testenv.Reap(t, p)
	return p
}

func wait(t *testing.T, p *mproc.Process) error { t.Helper(); return testenv.Wait(t, p) }

// waitInSyscall waits until a thread of process pid is inside system call
// nr (syscall.SYS_MSGRCV, SYS_MSGSND) and still there 2 ms later, as
// /proc/PID/task/TID/syscall shows: proof that a call blocks in the kernel
// (a try with IPC_NOWAIT passes through in microseconds).
func waitInSyscall(t *testing.T, pid, nr int) {
	t.Helper()
	want := strconv.Itoa(nr) + " "
	in := func(tid string) bool {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/syscall", pid, tid))
		return strings.HasPrefix(string(b), want)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Microsecond) {
		tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		for _, task := range tasks {
			if in(task.Name()) {
				time.Sleep(2 * time.Millisecond)
				if in(task.Name()) {
					return
				}
			}
		}
	}
	t.Fatalf("no thread of pid %d stayed in system call %d within 10s", pid, nr)
}

// permChild runs as uid 65534 in a re-executed test binary and reports,
// one line per attempt, what it may do with two queues of root's: one
// created 0600 with a key, one 0666 (ids is "key,id0600,id0666").
func permChild(ids string) int {
	var key, private, shared int
	if _, err := fmt.Sscanf(ids, "%d,%d,%d", &key, &private, &shared); err != nil {
		fmt.Println("bad", ids)
		return 2
	}
	report := func(what string, err error) {
		switch {
		case err == nil:
			fmt.Println(what, "ok")
		case errors.Is(err, os.ErrPermission):
			fmt.Println(what, "denied")
		default:
			fmt.Println(what, "error:", strings.ReplaceAll(err.Error(), "\n", " "))
		}
	}
	fmt.Println("uid", os.Getuid())
	buf := make([]byte, 64)
	_, err := sysvmq.Get(key, 0, 0o600)
	report("get-private-rw", err)
	_, err = sysvmq.Get(key, 0, 0)
	report("get-private-none", err)
	q, err := sysvmq.FromID(private)
	report("fromid-private", err)
	if err == nil {
		report("send-private", q.TrySend(1, []byte("x")))
		_, _, err = q.TryReceive(0, buf)
		report("receive-private", err)
		_, err = q.Stat()
		report("stat-private", err)
		report("remove-private", q.Remove())
	}
	s, err := sysvmq.FromID(shared)
	report("fromid-shared", err)
	if err == nil {
		report("send-shared", s.TrySend(1, []byte("from nobody")))
		_, _, err = s.TryReceive(0, buf)
		report("receive-shared", err)
		report("setmax-shared", s.SetMaxBytes(100))
		report("remove-shared", s.Remove())
	}
	return 0
}
