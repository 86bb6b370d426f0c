package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"mproc"
	"mproc/fifo"
	"mproc/posixmq"
	"mproc/sysvmq"
)

// lsObjects runs ls --json with args and returns the objects that the
// test owns (keep), decoded as generic JSON.
func lsObjects(t *testing.T, keep func(o map[string]any) bool, args ...string) []any {
	t.Helper()
	out := mustCLI(t, append([]string{"ls", "--json"}, args...)...)
	var v struct {
		Objects []map[string]any `json:"objects"`
		Notes   []string         `json:"notes"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("ls --json: %v\n%s", err, out)
	}
	var mine []any
	for _, o := range v.Objects {
		if keep(o) {
			mine = append(mine, o)
		}
	}
	return mine
}

// TestLsGolden lists objects of every origin that the test made: its own
// (live creator), ones held by a live child, ones left by a SIGKILLed
// child (stale), FIFOs with and without a process, a SysV queue.
func TestLsGolden(t *testing.T) {
	ctx := t.Context()
	p := prefix(t)

	q, err := mproc.CreateQueue[[]byte](p+"queue", 4, mproc.WithMaxMessage(64))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	for _, m := range []string{"one", "two"} {
		if err := q.Put(ctx, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	ev, err := mproc.CreateEvent(p + "event")
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	ev.Set()
	v, err := mproc.CreateValue[int64](p+"value", 42)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	mem, err := mproc.CreateSharedMemory(p+"mem", 128)
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	l, err := mproc.CreateLock(p + "lock")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	holder := startHolder(t, "lock", p+"lock")
	killed := startHolder(t, "create", p+"dead-")
	kill(t, killed)

	dir := t.TempDir()
	for _, f := range []string{"open", "idle"} {
		if err := fifo.Create(filepath.Join(dir, f), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "not-a-fifo"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// O_RDWR opens a FIFO at once on Linux, with no other end.
	f, err := os.OpenFile(filepath.Join(dir, "open"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	sq, err := sysvmq.Get(sysvmq.IPCPrivate, sysvmq.IPCCreat, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer sq.Remove()
	if err := sq.Send(ctx, 1, []byte("hello")); err != nil {
		t.Fatal(err)
	}

	mine := lsObjects(t, func(o map[string]any) bool {
		name, _ := o["name"].(string)
		id, _ := o["id"].(float64)
		return strings.HasPrefix(name, p) || strings.HasPrefix(name, dir) ||
			o["kind"] == kindSysvMsg && int(id) == sq.ID()
	}, "--fifo", dir)
	n := &normalizer{
		pids: map[int]string{os.Getpid(): "SELF", holder.Pid(): "HOLDER", killed.Pid(): "KILLED"},
		strs: []string{p, "PREFIX-", dir, "DIR"},
	}
	golden(t, "ls.json", n.normalize(t, mine))

	// The table shows the same.
	out := mustCLI(t, "ls", "--fifo", dir)
	for _, re := range []string{
		`(?m)^KIND +NAME +SIZE +CREATOR +AGE +PROCESSES +STATE +STALE$`,
		fmt.Sprintf(`(?m)^queue +%squeue +[0-9.]+KiB +%d +\d+s +%[2]d attached\+open +2/4 messages +$`, p, os.Getpid()),
		fmt.Sprintf(`(?m)^lock +%slock +320B +%d +\d+s +(%[2]d open, %[3]d holder\+open|%[3]d holder\+open, %[2]d open) +held +$`, p, os.Getpid(), holder.Pid()),
		fmt.Sprintf(`(?m)^lock +%sdead-lock +320B +%d dead +\d+s +dead: %[2]d holder +held +stale$`, p, killed.Pid()),
		fmt.Sprintf(`(?m)^fifo +%s/idle +0B +- +- +- +- +stale$`, dir),
		fmt.Sprintf(`(?m)^sysv-msg +id %d +5B +- +\d+s +%d last-send +1 message +$`, sq.ID(), os.Getpid()),
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("ls output lacks a line matching %s:\n%s", re, out)
		}
	}

	// --stale lists the stale ones only.
	stale := lsObjects(t, func(o map[string]any) bool {
		name, _ := o["name"].(string)
		return strings.HasPrefix(name, p) || strings.HasPrefix(name, dir)
	}, "--stale", "--fifo", dir)
	var names []string
	for _, o := range stale {
		names = append(names, strings.NewReplacer(p, "", dir, "DIR").Replace(o.(map[string]any)["name"].(string)))
	}
	if got, want := strings.Join(names, " "), "dead-lock dead-queue dead-sem DIR/idle"; got != want {
		t.Errorf("ls --stale: %s, want %s", got, want)
	}
	terminate(t, holder)
}

// TestLsSysvShm lists SysV shared memory made by ipcmk, which exits at
// once: nothing attached and its creator dead, so it is stale.
func TestLsSysvShm(t *testing.T) {
	ipcmk, err := exec.LookPath("ipcmk")
	if err != nil {
		t.Skip("ipcmk (util-linux) is not installed: no program to create SysV shared memory with (mproc has no SysV shared memory of its own)")
	}
	out, err := exec.Command(ipcmk, "-M", "8192", "-p", "0600").CombinedOutput()
	if err != nil {
		t.Fatalf("ipcmk: %v: %s", err, out)
	}
	m := regexp.MustCompile(`id: (\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("ipcmk printed %q", out)
	}
	id, _ := strconv.Atoi(string(m[1]))
	defer exec.Command("ipcrm", "-m", strconv.Itoa(id)).Run()
	got := lsObjects(t, func(o map[string]any) bool {
		oid, _ := o["id"].(float64)
		return o["kind"] == kindSysvShm && int(oid) == id
	})
	if len(got) != 1 {
		t.Fatalf("ls lists %d SysV segments of id %d, want 1", len(got), id)
	}
	o := got[0].(map[string]any)
	cr, _ := o["creator"].(map[string]any)
	if o["size"] != 8192.0 || o["attached"] != 0.0 || o["stale"] != true || cr == nil || cr["alive"] != false || o["mode"] != "0600" {
		t.Errorf("ls says %v", o)
	}
}

// TestLsPosixMQ lists POSIX queues, which needs an mqueue file system: the
// built binary runs in a mount namespace of its own where one is mounted,
// so the test changes nothing on the machine.
func TestLsPosixMQ(t *testing.T) {
	bin := buildMproc(t)
	name := fmt.Sprintf("/mproc-cli-%d-", os.Getpid())
	open, err := posixmq.Open(name+"open", posixmq.O_RDWR|posixmq.O_CREATE, &posixmq.Attr{MaxMsgs: 4, MsgSize: 64}, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer posixmq.Unlink(name + "open")
	defer open.Close()
	for _, m := range []string{"a", "bcd"} {
		if err := open.Send(t.Context(), []byte(m), 0); err != nil {
			t.Fatal(err)
		}
	}
	closed, err := posixmq.Open(name+"closed", posixmq.O_RDWR|posixmq.O_CREATE, nil, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer posixmq.Unlink(name + "closed")
	closed.Close()

	dir := t.TempDir()
	c := exec.CommandContext(t.Context(), "sh", "-c", `mount -t mqueue none "$1" && exec "$2" ls --json`, "sh", dir, bin)
	c.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS} // Go makes the new namespace's mounts private
	var stderr strings.Builder
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		if ee := (*exec.ExitError)(nil); !errors.As(err, &ee) || strings.Contains(stderr.String(), "mount") {
			t.Skipf("cannot mount an mqueue file system in a mount namespace of its own (needs CAP_SYS_ADMIN): %v: %s", err, stderr.String())
		}
		t.Fatalf("ls in a mount namespace: %v\n%s", err, stderr.String())
	}
	var v lsOutput
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatal(err)
	}
	got := map[string]entry{}
	for _, e := range v.Objects {
		if e.Kind == kindPosixMQ && strings.HasPrefix(e.Name, name) {
			got[strings.TrimPrefix(e.Name, name)] = e
		}
	}
	o, c2 := got["open"], got["closed"]
	if len(got) != 2 || o.Messages == nil || *o.Messages != 2 || *o.Capacity != 4 || o.Size != 4 || o.Stale ||
		len(o.Processes) != 1 || o.Processes[0].Pid != os.Getpid() || !c2.Stale || *c2.Messages != 0 {
		t.Errorf("ls lists the test's POSIX queues as %+v", got)
	}
	for _, n := range v.Notes {
		if strings.Contains(n, "POSIX") {
			t.Errorf("note with an mqueue file system mounted: %s", n)
		}
	}
}

// TestLsFIFODirMissing: a --fifo directory that is not there is a failure.
func TestLsFIFODirMissing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nosuch")
	_, errOut, code := cli(t, "ls", "--fifo", dir)
	if code != exitFailure {
		t.Errorf("exit status %d, want %d", code, exitFailure)
	}
	oneLineErr(t, "ls --fifo nosuch", errOut, `^mproc: ls: --fifo .*/nosuch: no such file or directory\n$`)
}
