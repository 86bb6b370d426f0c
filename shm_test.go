package mproc_test

import (
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"

	"mproc"
	"mproc/internal/testenv"
)

type shmArg struct {
	Mem    *mproc.SharedMemory
	Named  *mproc.SharedMemory
	Offset int
	Text   string
	Nil    *mproc.SharedMemory // a nil handle stays nil
}

var writeShmFn = mproc.Register("write-shm", func(ctx context.Context, a shmArg) error {
	if a.Nil != nil {
		return errors.New("nil handle arrived non-nil")
	}
	copy(a.Mem.Bytes()[a.Offset:], a.Text)
	if a.Named != nil {
		if a.Named.Name() == "" {
			return errors.New("named handle lost its name")
		}
		copy(a.Named.Bytes(), strings.ToUpper(a.Text))
	}
	return nil
})

func TestSharedMemoryTravelsInArgument(t *testing.T) {
	testenv.CheckFDLeaks(t)
	mem, err := mproc.NewSharedMemory(4096)
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	name := fmt.Sprintf("test-arg-%d", os.Getpid())
	named, err := mproc.CreateSharedMemory(name, 64)
	if err != nil {
		t.Fatal(err)
	}
	defer named.Remove()
	defer named.Close()
	p := start(t, writeShmFn, shmArg{Mem: mem, Named: named, Offset: 100, Text: "from the child"}, mproc.ProcOptions{})
	if err := wait(t, p); err != nil {
		t.Fatal(err)
	}
	if got := string(mem.Bytes()[100:114]); got != "from the child" {
		t.Fatalf("anonymous: %q", got)
	}
	if got := string(named.Bytes()[:14]); got != "FROM THE CHILD" {
		t.Fatalf("named: %q", got)
	}
	// Four children write their own slices of one block.
	var procs []*mproc.Process
	for i := range 4 {
		procs = append(procs, start(t, writeShmFn, shmArg{Mem: mem, Offset: 1000 + 10*i, Text: fmt.Sprint("child-", i)}, mproc.ProcOptions{}))
	}
	for _, p := range procs {
		if err := wait(t, p); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 4 {
		if got, want := string(mem.Bytes()[1000+10*i:1000+10*i+7]), fmt.Sprint("child-", i); got != want {
			t.Errorf("slot %d: %q", i, got)
		}
	}
}

func TestHandleOutsideStart(t *testing.T) {
	mem, err := mproc.NewSharedMemory(8)
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	var sb strings.Builder
	if err := gob.NewEncoder(&sb).Encode(shmArg{Mem: mem}); !errors.Is(err, mproc.ErrNotHandle) {
		t.Fatalf("gob outside Start: %v", err)
	}
}

func TestSharedMemoryByName(t *testing.T) {
	name := fmt.Sprintf("test-byname-%d", os.Getpid())
	m, err := mproc.CreateSharedMemory(name, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Size() != 10 || m.Name() != name {
		t.Fatalf("size %d name %q", m.Size(), m.Name())
	}
	if _, err := mproc.CreateSharedMemory(name, 10); !errors.Is(err, os.ErrExist) {
		t.Fatalf("create twice: %v", err)
	}
	o, err := mproc.OpenSharedMemory(name)
	if err != nil {
		t.Fatal(err)
	}
	copy(m.Bytes(), "abc")
	if string(o.Bytes()[:3]) != "abc" {
		t.Fatal("not shared")
	}
	o.Close()
	if err := m.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := mproc.OpenSharedMemory(name); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("open removed: %v", err)
	}
	for _, bad := range []string{"", "../x", "a/b", strings.Repeat("n", 300)} {
		if _, err := mproc.CreateSharedMemory(bad, 1); !errors.Is(err, mproc.ErrInvalidName) {
			t.Errorf("CreateSharedMemory(%q): %v", bad, err)
		}
	}
	if err := os.WriteFile("/dev/shm/mproc."+name, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	defer os.Remove("/dev/shm/mproc." + name)
	if _, err := mproc.OpenSharedMemory(name); !errors.Is(err, mproc.ErrCorrupt) {
		t.Fatalf("open garbage: %v", err)
	}
}

// fdsFn reports the child's descriptors, one "n target" per line.
var fdsFn = mproc.Register("fds", func(ctx context.Context, a shmArg) error {
	for n, target := range testenv.FDs() {
		fmt.Printf("%d %s\n", n, target)
	}
	return nil
})

// TestNoDescriptorLeaksIntoChildren opens a descriptor without
// close-on-exec, as C code would, and checks that the child holds only its
// standard streams, its control socket, the segment passed on purpose, and
// descriptors its own Go runtime opened.
func TestNoDescriptorLeaksIntoChildren(t *testing.T) {
	leak, err := syscall.Open("/etc/hostname", syscall.O_RDONLY, 0) // no O_CLOEXEC
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(leak)
	mem, err := mproc.NewSharedMemory(8)
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	var out strings.Builder
	p := start(t, fdsFn, shmArg{Mem: mem}, mproc.ProcOptions{Stdout: &out})
	if err := wait(t, p); err != nil {
		t.Fatal(err)
	}
	var seen []string
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		n, target, _ := strings.Cut(line, " ")
		seen = append(seen, line)
		switch {
		case n == "0" || n == "1" || n == "2":
		case strings.HasPrefix(target, "socket:"): // the control socket
		case strings.HasPrefix(target, "/memfd:mproc:"): // the segment
		case strings.HasPrefix(target, "anon_inode:") || strings.HasPrefix(target, "pipe:"): // Go runtime: epoll, eventfd, wake pipe
		case strings.HasPrefix(target, "/sys/fs/cgroup/"): // Go runtime: CPU quota for GOMAXPROCS
		default:
			t.Errorf("unexpected descriptor in child: %s", line)
		}
	}
	slices.Sort(seen)
	if !slices.ContainsFunc(seen, func(s string) bool { return strings.Contains(s, "/memfd:mproc:") }) {
		t.Errorf("the passed segment is missing: %v", seen)
	}
	if slices.ContainsFunc(seen, func(s string) bool { return strings.Contains(s, "hostname") }) {
		t.Errorf("the non-CLOEXEC descriptor leaked: %v", seen)
	}
	t.Logf("child descriptors: %v", seen)
}

// TestStartCommandWithSharedMemory hands a segment to an external program
// as descriptor 3.
func TestStartCommandWithSharedMemory(t *testing.T) {
	mem, err := mproc.NewSharedMemory(64)
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	copy(mem.Bytes(), "to the shell")
	f, err := mem.File()
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	cmd := exec.Command("sh", "-c", fmt.Sprintf("dd if=/proc/self/fd/3 bs=1 skip=%d count=12 status=none; exit 4", mproc.SharedMemoryFileOffset))
	cmd.ExtraFiles = []*os.File{f}
	cmd.Stdout = &out
	p, err := mproc.StartCommand(context.Background(), cmd, mproc.CommandOptions{})
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	err = wait(t, p)
	var ee *mproc.ExitError
	if !errors.As(err, &ee) || ee.Code != 4 || p.ExitCode() != 4 {
		t.Fatalf("got %v, want exit status 4", err)
	}
	if out.String() != "to the shell" {
		t.Fatalf("command read %q", out.String())
	}
	if p.Name() != "sh" {
		t.Errorf("name %q", p.Name())
	}
}

type bulkArg struct {
	Blob []byte
	Mems []*mproc.SharedMemory
}

// bulkFn checks a large argument and many handles arrived intact.
var bulkFn = mproc.Register("bulk", func(ctx context.Context, a bulkArg) error {
	for i, b := range a.Blob {
		if b != byte(i*7) {
			return fmt.Errorf("blob byte %d is %d", i, b)
		}
	}
	for i, m := range a.Mems {
		if m.Bytes()[0] != byte(i) {
			return fmt.Errorf("handle %d holds %d", i, m.Bytes()[0])
		}
		m.Bytes()[1] = byte(i) + 1
	}
	return nil
})

// TestLargeArgumentManyHandles sends an argument far larger than a socket
// buffer and more descriptors than one SCM_RIGHTS message can carry.
func TestLargeArgumentManyHandles(t *testing.T) {
	testenv.CheckFDLeaks(t)
	a := bulkArg{Blob: make([]byte, 4<<20)}
	for i := range a.Blob {
		a.Blob[i] = byte(i * 7)
	}
	for i := range 300 {
		m, err := mproc.NewSharedMemory(2)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		m.Bytes()[0] = byte(i)
		a.Mems = append(a.Mems, m)
	}
	if err := wait(t, start(t, bulkFn, a, mproc.ProcOptions{})); err != nil {
		t.Fatal(err)
	}
	for i, m := range a.Mems {
		if m.Bytes()[1] != byte(i)+1 {
			t.Fatalf("handle %d not written by the child", i)
		}
	}
}

// createAsNobodyFn drops to uid and gid 65534 and creates a named queue
// and a named shared memory segment, which outlive it.
var createAsNobodyFn = mproc.Register("create-as-nobody", func(ctx context.Context, name string) error {
	if err := syscall.Setgroups(nil); err != nil {
		return err
	}
	if err := syscall.Setgid(65534); err != nil {
		return err
	}
	if err := syscall.Setuid(65534); err != nil {
		return err
	}
	m, err := mproc.CreateSharedMemory(name+"-mem", 4096)
	if err != nil {
		return err
	}
	m.Close()
	q, err := mproc.CreateQueue[int64](name+"-q", 4)
	if err != nil {
		return err
	}
	return q.Close()
})

// Segments owned by another user are refused, root included: their owner
// could truncate them under us (issue 11: root's next access died of
// SIGBUS).
func TestForeignSegmentsRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skipf("running as uid %d: only root can start a child as uid 65534, and root is who must refuse it", os.Geteuid())
	}
	name := fmt.Sprintf("test-foreign-%d", os.Getpid())
	t.Cleanup(func() {
		os.Remove("/dev/shm/mproc." + name + "-mem")
		os.Remove("/dev/shm/mproc." + name + "-q")
	})
	if err := wait(t, start(t, createAsNobodyFn, name, mproc.ProcOptions{})); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat("/dev/shm/mproc." + name + "-mem"); err != nil || fi.Sys().(*syscall.Stat_t).Uid != 65534 {
		t.Fatalf("the child's segment: %v", err)
	}
	if m, err := mproc.OpenSharedMemory(name + "-mem"); !errors.Is(err, os.ErrPermission) || !strings.Contains(fmt.Sprint(err), "uid 65534") {
		if m != nil {
			m.Close()
		}
		t.Fatalf("OpenSharedMemory of uid 65534's segment: %v, want os.ErrPermission naming the owner", err)
	}
	if q, err := mproc.OpenQueue[int64](name + "-q"); !errors.Is(err, os.ErrPermission) {
		if q != nil {
			q.Close()
		}
		t.Fatalf("OpenQueue of uid 65534's queue: %v, want os.ErrPermission", err)
	}
}
