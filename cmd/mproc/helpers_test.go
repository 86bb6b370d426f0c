package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"mproc"
	"mproc/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/")

// holdArg is what a helper child does with the objects of a test.
type holdArg struct {
	Do    string // "create", "lock", "produce"
	Name  string // the object, or the prefix of the objects to create
	Ready *mproc.Event
}

// holdFn is a child that makes or takes objects, sets Ready, and stays
// alive until it is terminated or killed:
//
//	create:  creates Name+"queue" (one message), Name+"lock" (held) and
//	         Name+"sem" (a bounded semaphore of 2, one unit held)
//	lock:    opens the lock Name and holds it
//	produce: opens the queue Name of []byte and puts one message
//	stuck-put, stuck-get: stays inside a put or a get of the queue Name
var holdFn = mproc.Register("cli-test-hold", func(ctx context.Context, a holdArg) error {
	defer a.Ready.Close()
	switch a.Do {
	case "create":
		q, err := mproc.CreateQueue[[]byte](a.Name+"queue", 4, mproc.WithMaxMessage(64))
		if err != nil {
			return err
		}
		if err := q.Put(ctx, []byte("left behind")); err != nil {
			return err
		}
		l, err := mproc.CreateLock(a.Name + "lock")
		if err != nil {
			return err
		}
		l.Lock()
		s, err := mproc.CreateBoundedSemaphore(a.Name+"sem", 2)
		if err != nil {
			return err
		}
		if err := s.Acquire(ctx); err != nil {
			return err
		}
	case "lock":
		l, err := mproc.OpenLock(a.Name)
		if err != nil {
			return err
		}
		if err := l.LockContext(ctx); err != nil && err != mproc.ErrOwnerDead {
			return err
		}
	case "produce":
		q, err := mproc.OpenQueue[[]byte](a.Name)
		if err != nil {
			return err
		}
		if err := q.Put(ctx, []byte("from a live producer")); err != nil {
			return err
		}
	case "stuck-put", "stuck-get": // inside a put or a get of the queue Name until the end
		q, err := mproc.OpenQueue[[]byte](a.Name)
		if err != nil {
			return err
		}
		stuck := func([]byte) {
			a.Ready.Set()
			<-ctx.Done()
		}
		if a.Do == "stuck-put" {
			return q.PutFunc(ctx, 1, stuck)
		}
		return q.GetFunc(ctx, stuck)
	default:
		return fmt.Errorf("unknown action %q", a.Do)
	}
	a.Ready.Set()
	<-ctx.Done()
	return nil
})

// startHolder starts holdFn and waits until it is ready. The child is
// stopped when the test ends if the test has not ended it.
func startHolder(t *testing.T, do, name string) *mproc.Process {
	t.Helper()
	ready, err := mproc.NewEvent()
	if err != nil {
		t.Fatal(err)
	}
	defer ready.Close()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	p, err := holdFn.Start(context.Background(), holdArg{Do: do, Name: name, Ready: ready}, mproc.ProcOptions{Name: "hold-" + do})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.Alive() {
			p.Kill()
		}
		p.Wait(context.Background())
	})
	if err := ready.Wait(ctx); err != nil {
		t.Fatalf("child %s %s not ready: %v", do, name, err)
	}
	return p
}

// kill ends p with SIGKILL and waits for it.
func kill(t *testing.T, p *mproc.Process) {
	t.Helper()
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	testenv.Wait(t, p)
}

// terminate ends p with SIGTERM (its context ends) and waits for it.
func terminate(t *testing.T, p *mproc.Process) {
	t.Helper()
	if err := p.Terminate(); err != nil {
		t.Fatal(err)
	}
	testenv.Wait(t, p)
}

var prefixes atomic.Int64

// prefix returns a name prefix unique to this test process and call, and
// removes every object under it when the test ends.
func prefix(t *testing.T) string {
	p := fmt.Sprintf("mproc-cli-%d-%d-", os.Getpid(), prefixes.Add(1))
	t.Cleanup(func() {
		ms, _ := filepath.Glob("/dev/shm/mproc." + p + "*")
		for _, m := range ms {
			os.Remove(m)
		}
	})
	return p
}

// cli runs the command in this process and returns its output and exit
// status.
func cli(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	err := run(ctx, args, &out, &errOut)
	code = exitCode(err, &errOut)
	return out.String(), errOut.String(), code
}

// mustCLI is cli for a command that must succeed.
func mustCLI(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := cli(t, args...)
	if code != 0 {
		t.Fatalf("mproc %q: exit status %d\nstderr:\n%s", args, code, errOut)
	}
	return out
}

// buildMproc builds the command into a directory that every user may
// read, and returns the binary's path.
func buildMproc(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} { // for the test that runs it as another user
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(dir, "mproc")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, goCmd, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// binResult is how a run of the binary ended.
type binResult struct {
	stdout, stderr string
	code           int
}

// runBin runs the binary with stdin and returns what it wrote and its exit
// status. attr, if not nil, sets its credentials and the like.
func runBin(t *testing.T, bin, stdin string, attr *syscall.SysProcAttr, args ...string) binResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, bin, args...)
	c.Stdin = strings.NewReader(stdin)
	c.SysProcAttr = attr
	var out, errOut bytes.Buffer
	c.Stdout, c.Stderr = &out, &errOut
	err := c.Run()
	r := binResult{out.String(), errOut.String(), 0}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %s %q: %v", bin, args, err)
	}
	return r
}

// oneLineErr checks that stderr is one line matching re.
func oneLineErr(t *testing.T, what, stderr, re string) {
	t.Helper()
	if strings.Count(stderr, "\n") != 1 || !strings.HasSuffix(stderr, "\n") {
		t.Errorf("%s: stderr is not one line: %q", what, stderr)
	}
	if !regexp.MustCompile(re).MatchString(stderr) {
		t.Errorf("%s: stderr %q does not match %s", what, stderr, re)
	}
}

// normalizer rewrites the JSON output of ls and stat into what does not
// change between runs: pids by their role in the test, times, the test's
// name prefix and temporary directory, SysV ids.
type normalizer struct {
	pids    map[int]string
	strs    []string // pairs: old, new
	unknown []int
}

func (n *normalizer) value(key string, v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, vv := range x {
			x[k] = n.value(k, vv)
		}
		return x
	case []any:
		for i := range x {
			x[i] = n.value(key, x[i])
		}
		if key == "processes" { // sorted by pid, which the labels replace
			slices.SortStableFunc(x, func(a, b any) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
		}
		return x
	case float64:
		switch key {
		case "pid":
			if s, ok := n.pids[int(x)]; ok {
				return s
			}
			n.unknown = append(n.unknown, int(x))
			return "UNKNOWN"
		case "id":
			return "ID"
		case "uid":
			if int(x) == os.Getuid() {
				return "UID"
			}
		}
	case string:
		switch key {
		case "created", "ctime":
			return "TIME"
		}
		for i := 0; i+1 < len(n.strs); i += 2 {
			x = strings.ReplaceAll(x, n.strs[i], n.strs[i+1])
		}
		return regexp.MustCompile(`^id \d+$`).ReplaceAllString(x, "id ID")
	}
	return v
}

// normalize returns v, decoded JSON, normalized and indented.
func (n *normalizer) normalize(t *testing.T, v any) []byte {
	t.Helper()
	v = n.value("", v)
	if len(n.unknown) > 0 {
		t.Errorf("pids of no process of the test: %v", n.unknown)
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run the test with -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the output (-update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// eventually polls cond for up to a minute.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("still not %s after a minute", what)
		}
	}
}
