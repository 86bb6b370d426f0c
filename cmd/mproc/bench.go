package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"mproc/internal/shm"
)

const benchDoc = `
Run mproc's benchmark suite (the bench/ module of the source tree: each
workload over mproc and over the alternatives, Go pipes and sockets, the
kernel's queues, Python multiprocessing) and print its markdown tables on
stdout. It does not rewrite BENCHMARKS.md: for that, run "go run ./bench"
in the source tree.

The suite is a program of its own, so mproc bench needs the source tree and
the go command: it runs "go run . -out '' [flags] [WORKLOAD...]" in the
bench/ directory of the tree this binary was built from, or else of the
working directory or one of its parents. An installed binary without the
source says so and exits with status 1.

While the suite runs, a progress line shows the time so far and its last
"bench: ..." log line (on a terminal, one line redrawn; otherwise one line
each). With no workload named, every workload runs. --quick runs each with
small counts (-n 10 -pyn 3 -rounds 1): the whole suite in well under a
minute once compiled, numbers for a look, not for BENCHMARKS.md.`

// Counts of --quick.
const quickN, quickPyN, quickRounds = 10, 3, 1

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench", " [WORKLOAD...]", stderr, benchDoc)
	quick := fs.Bool("quick", false, fmt.Sprintf("small counts (-n %d -pyn %d -rounds %d)", quickN, quickPyN, quickRounds))
	n := fs.Int("n", 0, "iterations per Go variant (0: the suite's default, or --quick's)")
	pyn := fs.Int("pyn", 0, "iterations per Python variant (0: the suite's default, or --quick's)")
	rounds := fs.Int("rounds", 0, "rounds the iterations are split into (0: the suite's default, or --quick's)")
	workloads, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if *n < 0 || *pyn < 0 || *rounds < 0 {
		return badArgs("bench: -n, -pyn and -rounds must not be negative")
	}
	for _, w := range workloads {
		if w == "" || strings.HasPrefix(w, "-") {
			return badArgs("bench: %q is not a workload name", w)
		}
	}
	root, err := benchRoot(benchCandidates())
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("bench: the go command is not in PATH; mproc bench runs the suite with \"go run\" in %s", filepath.Join(root, "bench"))
	}
	cmdArgs := []string{"run", ".", "-out", ""}
	if *quick {
		*n, *pyn, *rounds = cmp0(*n, quickN), cmp0(*pyn, quickPyN), cmp0(*rounds, quickRounds)
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"-n", *n}, {"-pyn", *pyn}, {"-rounds", *rounds}} {
		if f.v > 0 {
			cmdArgs = append(cmdArgs, f.name, strconv.Itoa(f.v))
		}
	}
	cmdArgs = append(cmdArgs, workloads...)
	f, _ := stderr.(*os.File)
	p := &progress{w: stderr, tty: f != nil && shm.IsTerminal(f), start: time.Now()}
	return runSuite(ctx, goCmd, cmdArgs, filepath.Join(root, "bench"), stdout, p)
}

func cmp0(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// benchCandidates are the directories that may hold the source tree: the
// one this file was compiled from (unless the binary was built with
// -trimpath), then the working directory and its parents.
func benchCandidates() []string {
	var dirs []string
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		dirs = append(dirs, filepath.Dir(filepath.Dir(filepath.Dir(file)))) // <root>/cmd/mproc/bench.go
	}
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			dirs = append(dirs, d)
			if d == filepath.Dir(d) {
				break
			}
		}
	}
	return dirs
}

// benchRoot returns the first of dirs that holds mproc's source tree: a
// go.mod of module mproc and bench/main.go.
func benchRoot(dirs []string) (string, error) {
	for _, d := range dirs {
		mod, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "bench", "main.go")); err != nil {
			continue
		}
		for line := range strings.Lines(string(mod)) {
			if f := strings.Fields(line); len(f) == 2 && f[0] == "module" && f[1] == "mproc" {
				return d, nil
			}
		}
	}
	return "", fmt.Errorf("the benchmark suite's source (bench/main.go in mproc's source tree) is not here: "+
		"this binary was installed without it, and neither the directory it was built in nor the working directory (or a parent) holds it; "+
		"run mproc bench from a checkout of mproc (searched: %s)", strings.Join(dirs, ", "))
}

// runSuite runs the go command with args in dir, its stdout to stdout and
// its stderr through p. Its process group is interrupted when ctx ends,
// and killed 10 s later.
func runSuite(ctx context.Context, goCmd string, args []string, dir string, stdout io.Writer, p *progress) error {
	c := exec.Command(goCmd, args...)
	c.Dir, c.Stdout = dir, stdout
	// Its own process group: go run's child, the suite, is interrupted with
	// it (go run itself does not pass SIGINT on).
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pipe, err := c.StderrPipe()
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	p.show("compiling and starting the suite: go " + strings.Join(quoteArgs(args), " ") + " (in " + dir + ")")
	if err := c.Start(); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	pgid := c.Process.Pid
	stopped := make(chan struct{})
	go func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stopped:
				return
			case <-tick.C:
				p.redraw()
			case <-ctx.Done():
				syscall.Kill(-pgid, syscall.SIGINT)
				select {
				case <-stopped:
				case <-time.After(10 * time.Second):
					syscall.Kill(-pgid, syscall.SIGKILL)
				}
				return
			}
		}
	}()
	sc := bufio.NewScanner(pipe)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if msg, ok := strings.CutPrefix(line, "bench: "); ok {
			p.show(msg)
		} else {
			p.pass(line)
		}
	}
	err = c.Wait()
	close(stopped)
	syscall.Kill(-pgid, syscall.SIGKILL) // anything the suite left behind
	took := time.Since(p.start).Round(time.Second)
	p.done()
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("bench: interrupted after %v", took)
	case err != nil:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fmt.Errorf("bench: the suite failed (%v) after %v", ee.ProcessState, took)
		}
		return fmt.Errorf("bench: %w", err)
	}
	fmt.Fprintf(p.w, "mproc bench: done in %v\n", took)
	return nil
}

func quoteArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = a
		if a == "" || strings.ContainsAny(a, " '\"") {
			out[i] = strconv.Quote(a)
		}
	}
	return out
}

// progress is bench's progress line on stderr.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	tty   bool
	start time.Time
	last  string // the last "bench:" message
	drawn bool   // a progress line is on the terminal
}

func (p *progress) line() string {
	return fmt.Sprintf("mproc bench [%v]: %s", time.Since(p.start).Round(time.Second), p.last)
}

// show makes msg the progress line.
func (p *progress) show(msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.last = msg
	if p.tty {
		fmt.Fprintf(p.w, "\r%s%s", p.line(), ansiClearLine)
		p.drawn = true
		return
	}
	fmt.Fprintln(p.w, p.line())
}

// redraw updates the time on a terminal's progress line.
func (p *progress) redraw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.drawn {
		fmt.Fprintf(p.w, "\r%s%s", p.line(), ansiClearLine)
	}
}

// pass writes a line of the suite's stderr that is not progress.
func (p *progress) pass(line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.drawn {
		fmt.Fprintf(p.w, "\r%s%s\n%s%s", line, ansiClearLine, p.line(), ansiClearLine)
		return
	}
	fmt.Fprintln(p.w, line)
}

// done clears a terminal's progress line.
func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.drawn {
		fmt.Fprintf(p.w, "\r%s", ansiClearLine)
		p.drawn = false
	}
}
