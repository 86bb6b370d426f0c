package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"mproc"
)

// The event workload (issue #4): a ping-pong between two processes over two
// mproc.Events, with both processes on one CPU and on two CPUs, against the
// C futex floor, Go over a Unix socket and Python's multiprocessing.Event.

func init() {
	addWorkload(workload{name: "event", about: "Event ping-pong round trip between two processes, one CPU and two", run: eventWorkload})
}

const (
	eventTarget  = 4 * time.Microsecond // issue #4: one CPU
	eventStretch = 2 * time.Microsecond // issue #4, stretch goal: two CPUs
	eventRounds  = 100                  // round trips per batch (one sample)
	eventWarmup  = 200                  // uncounted round trips per child
)

// placement is where the two processes of a ping-pong run.
type placement struct {
	name    string // "one CPU", "two CPUs"
	key     string // its name for sync.py
	a, b    int    // CPUs of the parent (ping) and the child (pong)
	missing string // why it cannot run
}

// pongArgs is the argument of both Go pong children.
type pongArgs struct {
	Ping, Pong *mproc.Event // eventPong
	Total      int          // round trips, warm-up included
}

// eventPong answers Total pings: wait for Ping, clear it, set Pong.
var eventPong = mproc.Register("bench.eventPong", func(ctx context.Context, a pongArgs) error {
	defer a.Ping.Close()
	defer a.Pong.Close()
	for range a.Total {
		if err := a.Ping.Wait(ctx); err != nil {
			return err
		}
		a.Ping.Clear()
		a.Pong.Set()
	}
	return nil
})

// socketPong echoes Total single bytes on its standard input, one end of
// a Unix stream socketpair.
var socketPong = mproc.Register("bench.socketPong", func(ctx context.Context, a pongArgs) error {
	c := os.Stdin
	var b [1]byte
	for range a.Total {
		if _, err := io.ReadFull(c, b[:]); err != nil {
			return err
		}
		if _, err := c.Write(b[:]); err != nil {
			return err
		}
	}
	return nil
})

// pingPong runs a started child's ping-pong with this process pinned to
// pl.a and the child to pl.b: eventWarmup uncounted round trips, then
// batches of eventRounds, each sample the batch's time per round trip. It
// restores this process's affinity and waits for the child.
func pingPong(ctx context.Context, p *mproc.Process, pl placement, aff *affinity, batches int, roundTrip func() error) ([]time.Duration, error) {
	defer p.Kill() // on an early return; a no-op once it has ended
	pinned := true
	defer func() {
		if pinned {
			aff.restore(ctx)
		}
	}()
	if err := aff.pin(ctx, p.Pid(), pl.b); err != nil {
		return nil, err
	}
	if err := aff.pin(ctx, os.Getpid(), pl.a); err != nil {
		return nil, err
	}
	for range eventWarmup {
		if err := roundTrip(); err != nil {
			return nil, err
		}
	}
	var out []time.Duration
	for range batches {
		t0 := time.Now()
		for range eventRounds {
			if err := roundTrip(); err != nil {
				return nil, err
			}
		}
		out = append(out, perOp(time.Since(t0), eventRounds))
	}
	pinned = false
	if err := aff.restore(ctx); err != nil {
		return nil, err
	}
	if err := p.Wait(ctx); err != nil {
		return nil, fmt.Errorf("pong child: %w", err)
	}
	return out, nil
}

func mprocPingPong(ctx context.Context, pl placement, aff *affinity, batches int) ([]time.Duration, error) {
	a := pongArgs{Total: eventWarmup + batches*eventRounds}
	var err error
	if a.Ping, err = mproc.NewEvent(); err != nil {
		return nil, err
	}
	defer a.Ping.Close()
	if a.Pong, err = mproc.NewEvent(); err != nil {
		return nil, err
	}
	defer a.Pong.Close()
	p, err := eventPong.Start(ctx, a, mproc.ProcOptions{})
	if err != nil {
		return nil, fmt.Errorf("start pong child: %w", err)
	}
	wctx, stop := whileHealthy(ctx, p)
	defer stop()
	return pingPong(ctx, p, pl, aff, batches, func() error {
		a.Ping.Set()
		if err := a.Pong.Wait(wctx); err != nil {
			return context.Cause(wctx)
		}
		a.Pong.Clear()
		return nil
	})
}

func socketPingPong(ctx context.Context, pl placement, aff *affinity, batches int) ([]time.Duration, error) {
	// A socketpair rather than net.Listen/Dial: package net would make this
	// binary a cgo one, which slows every child's start (the process
	// workload).
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	c, childEnd := os.NewFile(uintptr(fds[0]), "pingpong"), os.NewFile(uintptr(fds[1]), "pingpong-child")
	a := pongArgs{Total: eventWarmup + batches*eventRounds}
	p, err := socketPong.Start(ctx, a, mproc.ProcOptions{Stdin: childEnd})
	childEnd.Close()
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("start socket pong child: %w", err)
	}
	defer c.Close()
	var b [1]byte
	return pingPong(ctx, p, pl, aff, batches, func() error {
		if _, err := c.Write(b[:]); err != nil {
			return err
		}
		_, err := io.ReadFull(c, b[:])
		return err
	})
}

func eventWorkload(ctx context.Context, c *config) (*report, error) {
	aff, err := newAffinity()
	if err != nil {
		return nil, err
	}
	pls := []placement{
		{name: "one CPU", key: "one", a: aff.cpus[0], b: aff.cpus[0]},
		{name: "two CPUs", key: "two", a: aff.cpus[0], b: -1},
	}
	if len(aff.cpus) > 1 {
		pls[1].b = aff.cpus[1]
	} else {
		pls[1].missing = "this process may run on one CPU only (" + aff.orig + ")"
	}
	floor, err := buildC(ctx, c, "futex_pingpong")
	if err != nil {
		return nil, err
	}
	defer floor.Close()

	// Rows: per placement, mproc, the C floor, Go socket, Python.
	const perPl = 4
	samples := make([][]time.Duration, perPl*len(pls))
	pyErr := map[int]string{}
	pyVersion := ""
	goRounds, pyRounds := split(c.n, c.rounds), split(c.pyN, c.rounds)
	nr := max(len(goRounds), len(pyRounds))
	for r := range nr {
		if r < len(goRounds) {
			fmt.Fprintf(c.log, "bench: event: round %d/%d: Go and C\n", r+1, nr)
			n := goRounds[r]
			for i, pl := range pls {
				if pl.missing != "" {
					continue
				}
				steps := []func() ([]time.Duration, error){
					func() ([]time.Duration, error) { return mprocPingPong(ctx, pl, aff, n) },
					func() ([]time.Duration, error) {
						return floor.run(ctx, strconv.Itoa(n), strconv.Itoa(eventRounds),
							strconv.Itoa(pl.a), strconv.Itoa(pl.b), strconv.Itoa(eventWarmup))
					},
					func() ([]time.Duration, error) { return socketPingPong(ctx, pl, aff, n) },
				}
				for k := range steps {
					v := (k + r) % len(steps)
					if (v == 1 && floor.path == "") || (v != 1 && aff.taskset == "") {
						continue
					}
					s, err := steps[v]()
					if err != nil {
						return nil, fmt.Errorf("%s: %w", pl.name, err)
					}
					samples[perPl*i+v] = append(samples[perPl*i+v], s...)
				}
			}
		}
		if r < len(pyRounds) && c.python != "" {
			fmt.Fprintf(c.log, "bench: event: round %d/%d: python3 multiprocessing\n", r+1, nr)
			var spec []string
			for _, pl := range pls {
				if pl.missing == "" {
					spec = append(spec, fmt.Sprintf("%s:%d:%d", pl.key, pl.a, pl.b))
				}
			}
			res, err := runPython(ctx, c, "sync.py", "event", "-n", strconv.Itoa(pyRounds[r]),
				"--rounds", strconv.Itoa(eventRounds), "--warmup", strconv.Itoa(eventWarmup),
				"--placements", strings.Join(spec, ","))
			if err != nil {
				return nil, err
			}
			pyVersion = res.Python
			for i, pl := range pls {
				samples[perPl*i+3] = append(samples[perPl*i+3], seconds(res.Samples[pl.key])...)
				if e := res.Errors[pl.key]; e != "" {
					pyErr[perPl*i+3] = e
				}
			}
		}
	}

	py := "Python"
	if pyVersion != "" {
		py = "Python " + pyVersion
	}
	rep := &report{
		title:   "Event ping-pong",
		refName: "mproc",
		format:  humanDuration,
		about: "The round trip of a ping-pong between two processes, per round trip: A sets ping and " +
			"waits for pong, then clears pong; B waits for ping, clears it and sets pong. Each sample " +
			"is a batch of " + strconv.Itoa(eventRounds) + " round trips timed in A and divided by " +
			strconv.Itoa(eventRounds) + ". One CPU: both processes pinned to the same CPU, so every " +
			"hand-over is a context switch; two CPUs: each pinned to its own. mproc: two " +
			"`mproc.NewEvent()`, `Set`, `Wait(ctx)`, `Clear`, B a child started with `Start`. Floor: " +
			"C (`bench/c/futex_pingpong.c`, `cc -O2`), two `fork`ed processes on a shared anonymous " +
			"page, `FUTEX_WAIT`/`FUTEX_WAKE` on two words, no spinning, pinned with " +
			"`sched_setaffinity`. Go socket: one byte written and read back over a connected Unix " +
			"stream socketpair (B an mproc child that only echoes on it). Python: two " +
			"`multiprocessing.Event` (fork context), pinned with `os.sched_setaffinity`, timed with " +
			"`time.perf_counter` inside Python.",
		target: eventTarget,
		source: "issue #4",
	}
	for i, pl := range pls {
		ref := perPl * i
		for v, name := range []string{
			"mproc `Event`",
			"floor: C futex wait/wake",
			"Go Unix socket, 1 byte each way",
			py + " `multiprocessing.Event`",
		} {
			rw := row{variant: name + ", " + pl.name, samples: samples[ref+v], ref: ref, judged: i == 0 && v == 0}
			switch {
			case pl.missing != "":
				rw.missing = pl.missing
			case v == 1 && floor.path == "":
				rw.missing = floor.missing
			case v != 1 && v != 3 && aff.taskset == "":
				rw.missing = "taskset not found in PATH, cannot pin the Go processes"
			case v == 3 && c.python == "":
				rw.missing = c.pyMissing
			case pyErr[ref+v] != "":
				rw.missing = pyErr[ref+v]
			case len(rw.samples) == 0:
				rw.missing = "no samples"
			}
			rep.rows = append(rep.rows, rw)
		}
	}
	two := summarize(samples[perPl]).median
	verdict := fmt.Sprintf("**met** (median %s)", humanDuration(two))
	switch {
	case two == 0:
		verdict = "not judged (no samples)"
	case two > eventStretch:
		verdict = fmt.Sprintf("**not met** (median %s)", humanDuration(two))
	}
	rep.notes = []string{
		fmt.Sprintf("Stretch goal (issue #4): mproc `Event`, two CPUs, median ≤ %s — %s.",
			humanDuration(eventStretch), verdict),
		"Each placement's rows are compared to mproc's row of that placement.",
		"The C floor is the cost of a futex sleep and wake-up per hand-over, nothing else: it never " +
			"polls. mproc's `Wait` first polls the flag for about 20 µs, calling `sched_yield` between " +
			"looks, and `Set` makes no system call when nobody sleeps; on one CPU the yield hands the " +
			"CPU straight to the peer, which can cost less than a futex sleep and wake-up, and on two " +
			"CPUs the peer usually sees the flag while still polling. So mproc can beat this floor; " +
			"the floor says what sleeping in the kernel costs on this machine.",
		fmt.Sprintf("Samples are batches: %d per Go and C variant and placement, %d per Python variant "+
			"and placement, split into %d round(s); in each round the Go and C variants run one after "+
			"the other per placement, in an order that rotates from round to round, then one Python "+
			"process runs its share. Every variant starts its second process anew each round and does "+
			"%d uncounted round trips first.", c.n, c.pyN, nr, eventWarmup),
		fmt.Sprintf("Pinning: the Go rows pin both processes, every thread, with `taskset -a -p -c` "+
			"once the child is running, and check `/proc/PID/task/*/status` (the bench process gets "+
			"back its CPUs, %s, after each variant); one CPU is CPU %d, two CPUs are CPUs %d (A) and %d (B).",
			aff.orig, pls[0].a, pls[1].a, pls[1].b),
	}
	if c.python == "" {
		rep.notes = append(rep.notes, "**Python variants not run: "+c.pyMissing+".**")
	}
	return rep, nil
}

// affinity pins processes with taskset, and this one back to where it
// started. Package bench may not make the sched_setaffinity system call
// itself (only internal/unix may), so it runs taskset.
type affinity struct {
	taskset string // "" when not found
	orig    string // this process's CPU list at start, e.g. "0-1"
	cpus    []int  // orig, parsed
}

func newAffinity() (*affinity, error) {
	a := &affinity{}
	a.taskset, _ = exec.LookPath("taskset")
	lists, err := cpusAllowed(os.Getpid())
	if err != nil {
		return nil, err
	}
	a.orig = lists[0]
	if a.cpus, err = parseCPUList(a.orig); err != nil {
		return nil, err
	}
	return a, nil
}

// pin sets the affinity of every thread of process pid to cpu, and checks
// that it took: a thread the process starts while taskset walks its
// threads may escape, so it tries again.
func (a *affinity) pin(ctx context.Context, pid, cpu int) error {
	return a.set(ctx, pid, strconv.Itoa(cpu))
}

// restore gives this process back the CPUs it had at start.
func (a *affinity) restore(ctx context.Context) error { return a.set(ctx, os.Getpid(), a.orig) }

func (a *affinity) set(ctx context.Context, pid int, list string) error {
	if a.taskset == "" {
		return errors.New("taskset not found in PATH")
	}
	want, err := parseCPUList(list)
	if err != nil {
		return err
	}
	for range 5 {
		out, err := exec.CommandContext(ctx, a.taskset, "-a", "-p", "-c", list, strconv.Itoa(pid)).CombinedOutput()
		if err != nil {
			return fmt.Errorf("taskset -a -p -c %s %d: %v: %s", list, pid, err, strings.TrimSpace(string(out)))
		}
		lists, err := cpusAllowed(pid)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(lists, func(l string) bool {
			got, err := parseCPUList(l)
			return err != nil || !slices.Equal(got, want)
		}) {
			return nil
		}
	}
	return fmt.Errorf("taskset -a -p -c %s %d: some threads kept another affinity", list, pid)
}

// cpusAllowed returns the Cpus_allowed_list of every thread of process pid,
// the main thread's first.
func cpusAllowed(pid int) ([]string, error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	tids := []string{strconv.Itoa(pid)}
	for _, e := range ents {
		if e.Name() != tids[0] {
			tids = append(tids, e.Name())
		}
	}
	for _, tid := range tids {
		b, err := os.ReadFile(filepath.Join(dir, tid, "status"))
		if errors.Is(err, os.ErrNotExist) {
			continue // the thread has ended
		}
		if err != nil {
			return nil, err
		}
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
				out = append(out, strings.TrimSpace(v))
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no Cpus_allowed_list", dir)
	}
	return out, nil
}

// parseCPUList parses a Linux CPU list such as "0-3,6" into sorted CPUs.
func parseCPUList(s string) ([]int, error) {
	var cpus []int
	for part := range strings.SplitSeq(strings.TrimSpace(s), ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		b := a
		if err == nil && isRange {
			b, err = strconv.Atoi(hi)
		}
		if err != nil || b < a {
			return nil, fmt.Errorf("bad CPU list %q", s)
		}
		for c := a; c <= b; c++ {
			cpus = append(cpus, c)
		}
	}
	slices.Sort(cpus)
	return slices.Compact(cpus), nil
}
