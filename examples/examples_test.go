// Package examples_test builds and runs every example, and checks what it
// prints: each folder of examples/ must have an entry in the table below,
// so that no example goes unchecked.
package examples_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// An example's expected output: every regexp in want must match somewhere
// in what it prints (standard output and error together).
type example struct {
	want []string
	// python: the example needs python3. Without it, the example must print
	// withoutPython instead, or is skipped if withoutPython is nil.
	python        bool
	withoutPython []string
}

var examples = map[string]example{
	"hello": {want: []string{
		`hello, world, from greet-1 \(pid \d+, parent \d+\)`,
		`greet-1 \(pid \d+\) returned <nil>, exit status 0`,
	}},
	"sharedmemory": {want: []string{
		`anonymous, half 0: half 0 written by pid \d+`,
		`anonymous, half 1: half 1 written by pid \d+`,
		`named "mproc-example-\d+": pid \d+ got "ping"`,
		`after Remove, opening the name fails with os.ErrNotExist; our mapping still reads "ping"`,
	}},
	"faults": {want: []string{
		`panic: +panics-1 panicked: assignment to entry in nil map \(stack: \d+ bytes\)`,
		`exit: +process "exits-2" \(pid \d+\) exited with status 3`,
		`kill: +process "hangs-3" \(pid \d+\) was killed by signal 9`,
		`error: +process "gives-up-4" \(pid \d+\): step 2 of 3: context canceled \(errors.Is context.Canceled: true\)`,
		`the parent survived all four`,
	}},
	"command": {want: []string{
		`sh \(pid \d+\) read: hello from the Go parent`,
		`parent \(pid \d+\) read the reply at Bytes\(\)\[64:\]: sh \d+ was here`,
	}},
	"queue": {want: []string{
		`2 producers, 2 consumers: sum of job numbers 999000 \(want 999000\)`,
	}},
	"deadlock": {want: []string{
		`lock taken \S+ after waiting: mproc: previous owner died holding the lock; balance reads -1`,
		`state repaired, lock consistent: true ; the child ended with: .*killed by signal 9`,
	}},
	"signals": {want: []string{
		`child \d+: SIGUSR1, order "reload the configuration"`,
		`child \d+: SIGUSR1, order "rotate the logs"`,
	}},
	"pool": {want: []string{
		`(?s)-- blocking Result, in submission order\n27 takes 111 steps \(worker \d+\)\n9 takes 19 steps \(worker \d+\)\n97 takes 118 steps \(worker \d+\)\n3 takes 7 steps \(worker \d+\)\n`,
		`Map: 3 results in order; 6 takes 8 steps \(worker \d+\)`,
		`(?s)-- OnDone callbacks, in completion order\n.*-- AsCompleted`,
		`44 takes 16 steps`, `12 takes 9 steps`, `31 takes 106 steps`, `50 takes 24 steps`,
		`14 takes 17 steps \(worker \d+\) <nil>`, `23 takes 15 steps \(worker \d+\) <nil>`, `5 takes 5 steps \(worker \d+\) <nil>`,
	}},
	"manager": {python: true, want: []string{
		`python: done`,
		`go: dict\["from python"\] = 3`,
		`go: dict\["answer"\] = 42`,
		`go: from the queue: hello from Python 3\.\d+`,
	}},
	"producerconsumer": {want: []string{
		`(?s)(consumer pid \d+ handled task [0-4] of producer [01]\n.*){10}Join returned`,
		`Join returned: 10 tasks put, 10 handled, 0 unfinished`,
		`queue shut down: the consumers ended`,
	}},
	"tickets": {want: []string{
		`with the lock:\n  sold per seller \[(\d+ ){5}\d+\]: 100 tickets sold from a stock of 100\n  exact: every ticket sold once\n`,
		`without the lock:\n  sold per seller \[(\d+ ){5}\d+\]: \d+ tickets sold from a stock of 100\n  (oversold by \d+|no oversell this time)`,
	}},
	"flashsale": {want: []string{
		`(?s)(buyer \d \(pid \d+\) in: [123] inside\n.*){10}`,
		`10 buyers served in \S+; at most [123] inside at once \(the limit is 3\)`,
	}},
	"pipe": {want: []string{
		`child  \(pid \d+\) got ping 1\n  parent \(pid \d+\) got pong 2\n  child  \(pid \d+\) got ping 3\n  parent \(pid \d+\) got pong 4\n  child  \(pid \d+\) got ping 5\n  parent \(pid \d+\) got pong 6\n`,
		`child  \(pid \d+\) got bye: returning closes its end`,
		`parent: Recv after the child closed its end: EOF \(io.EOF: true\)`,
		`parent: Send after it: .*broken pipe \(EPIPE: true`,
	}},
	"namedpipe": {want: []string{
		`writer \(pid \d+\) sends "Hello from pid \d+"\nreader \(pid \d+\) got "Hello from pid \d+"\nreader \(pid \d+\) then got io.EOF`,
		`cat printed: Hello from the shell, pid \d+`,
	}},
	"messagequeues": {want: []string{
		`POSIX queue, highest priority first:\n  priority 9: FIRE\n  priority 5: disk almost full\n  priority 5: high load\n  priority 1: routine report\n  priority 1: backup done\n`,
		`System V queue, .*\n  type 1: FIRE\n  type 5: disk almost full\n  type 5: high load\n  type 9: routine report\n  type 9: backup done\n`,
	}},
	"sharedarray": {want: []string{
		`before: \[1 2 3 4 5 6 7 8 9 10 11 12\]`,
		`after:  \[1 4 9 16 25 36 49 64 81 100 121 144\]`,
		`largest square 144, by pid \d+`,
		`count: 40000 \(4 workers x 10000 atomic Adds\)`,
	}},
	"zombies": {want: []string{
		`child \d+ runs \(state [RSD], parent \d+\); it returns now\n   child \d+: (reaped at once|exited .*until that parent reaped it): gone from /proc`,
		`middle \d+ has a child, \d+ \(state [RSD], parent \d+\); SIGKILL to middle`,
		`middle \d+: reaped at once: gone from /proc`,
		`grandchild \d+: context done: mproc: parent process died`,
		`grandchild \d+: still running \(state [RSD], parent \d+\): an orphan; SIGTERM to it`,
		`grandchild \d+: context done: mproc: terminated`,
	}},
	"pythonconn": {python: true, want: []string{
		`go worker \(pid \d+\): square -> 144\npython 3\.\d+ \(pid \d+\): sent \{'op': 'square', 'n': 12\}, got 144\n`,
		`go worker \(pid \d+\): upper -> HELLO FROM PYTHON\npython 3\.\d+ \(pid \d+\): sent .*, got 'HELLO FROM PYTHON'\n`,
		`go worker \(pid \d+\): sum -> 10\npython 3\.\d+ \(pid \d+\): sent \{'op': 'sum', 'numbers': \[1, 2, 3, 4\]\}, got 10\n`,
		`go worker \(pid \d+\): EOF, Python closed the connection`,
	}, withoutPython: []string{`python3 not found: skipping this example`}},
	"http": {want: []string{
		`GET over Unix socket: hello from pid \d+ over unix`,
		`GET over shmnet: hello from pid \d+ over shmnet`,
		`curl --unix-socket: hello from pid \d+ over unix|curl is not installed`,
	}},
	"netrpc": {want: []string{
		`Arith.Multiply\(7, 6\) = 42, computed by pid \d+ over shmnet`,
		`Arith.Divide\(1, 0\): error "divide by zero"`,
	}},
	"grpc": {want: []string{
		`shmnet +server pid \d+ .*: \d+ unary Echo calls`,
		`unix +server pid \d+ .*: \d+ unary Echo calls`,
		`tcp +server pid \d+ .*: \d+ unary Echo calls`,
	}},
}

const (
	buildTimeout = 5 * time.Minute  // a cold cache on a busy machine
	runTimeout   = 60 * time.Second // each example takes a few seconds at most
)

func TestExamples(t *testing.T) {
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") && !strings.HasPrefix(e.Name(), "_") {
			names = append(names, e.Name())
		}
	}
	for name := range examples {
		if _, err := os.Stat(name); err != nil {
			t.Errorf("the table has %q, which is not a folder of examples/: remove it", name)
		}
	}
	sort.Strings(names)
	goTool := goTool(t)
	_, pyErr := exec.LookPath("python3")
	bin := t.TempDir()
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			ex, ok := examples[name]
			if !ok {
				t.Fatalf("examples/%s has no entry in the table of examples_test.go: add what it must print", name)
			}
			want := ex.want
			if ex.python && pyErr != nil {
				if ex.withoutPython == nil {
					t.Skip("python3 is not installed")
				}
				want = ex.withoutPython
			}
			t.Parallel()
			exe := filepath.Join(bin, name)
			build(t, goTool, name, exe)
			out := run(t, exe)
			for _, w := range want {
				if !regexp.MustCompile(w).MatchString(out) {
					t.Errorf("the output does not match %q", w)
				}
			}
			if t.Failed() {
				t.Logf("output of examples/%s:\n%s", name, out)
			}
		})
	}
}

// goTool is the go command: the one on PATH, or the one of the Go that
// built this test.
func goTool(t *testing.T) string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err != nil {
		t.Fatal("no go command on PATH or in GOROOT")
	}
	return p
}

// build builds the example in folder dir as exe, from inside the folder, so
// that an example with a go.mod of its own builds in its own module.
func build(t *testing.T, goTool, dir, exe string) {
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool, "build", "-o", exe, ".")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build examples/%s: %v\n%s", dir, err, out)
	}
}

// run runs exe in its own process group, which is killed if it runs over
// runTimeout, and returns what it printed; it fails the test unless exe
// exits with status 0.
func run(t *testing.T, exe string) string {
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, exe)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A process the example left behind holding its output would make Wait
	// wait for it: give up on it after WaitDelay.
	cmd.WaitDelay = 5 * time.Second
	t0 := time.Now()
	err := cmd.Run()
	switch {
	case ctx.Err() != nil:
		t.Errorf("still running after %v: killed its process group", runTimeout)
	case errors.Is(err, exec.ErrWaitDelay):
		t.Errorf("exited, but left a process holding its output open")
	case err != nil:
		t.Errorf("%v", err)
	}
	t.Logf("ran in %v", time.Since(t0).Round(time.Millisecond))
	return out.String()
}
