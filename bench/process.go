package main

import (
	"context"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"mproc"
)

// The process workload (issue #3): start a child that does nothing and wait
// for it to end, over mproc, over a plain Go re-exec, and over Python's
// multiprocessing with each start method.

func init() {
	addWorkload(workload{name: "process", about: "Start + Wait of a child that returns at once", run: processWorkload})
}

// noopFn is the mproc child: it returns nil at once.
var noopFn = mproc.Register("bench.noop", func(context.Context, struct{}) error { return nil })

// baselineEnv makes this binary exit at once after mproc.Main: the child of
// the plain Go baseline.
const baselineEnv = "MPROC_BENCH_EXIT"

// exitIfBaselineChild must run right after mproc.Main in main (and TestMain).
func exitIfBaselineChild() {
	if os.Getenv(baselineEnv) == "1" {
		os.Exit(0)
	}
}

const (
	processTarget = 3 * time.Millisecond // issue #3
	processExecX  = 1.1                  // issue #17: cold Start + Wait within 1.1× Go's exec of the binary
	processWarmup = 3                    // uncounted iterations per Go variant
	pyWarmup      = 2                    // uncounted iterations per Python method and run
	warmSpares    = 2                    // KeepWarm's count in the warm variants
	warmPause     = 30 * time.Millisecond
)

var pyMethods = []string{"fork", "spawn", "forkserver"}

func processWorkload(ctx context.Context, c *config) (*report, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	var startOnly []time.Duration // until Start returns: the child is running
	mprocOnce := func() (time.Duration, error) {
		t0 := time.Now()
		p, err := noopFn.Start(ctx, struct{}{}, mproc.ProcOptions{})
		if err != nil {
			return 0, fmt.Errorf("mproc Start: %w", err)
		}
		t1 := time.Now()
		if err := p.Wait(ctx); err != nil {
			return 0, fmt.Errorf("mproc Wait: %w", err)
		}
		startOnly = append(startOnly, t1.Sub(t0))
		return time.Since(t0), nil
	}
	// What a user writes without mproc: re-execute the own binary with a
	// marker in the environment that main checks.
	execOnce := func() (time.Duration, error) {
		t0 := time.Now()
		cmd := exec.CommandContext(ctx, self)
		cmd.Env = append(os.Environ(), baselineEnv+"=1")
		if err := cmd.Run(); err != nil {
			return 0, fmt.Errorf("exec baseline: %w", err)
		}
		return time.Since(t0), nil
	}
	// The floor: fork+exec of a minimal C program, no Go runtime to start.
	trueOnce := func() (time.Duration, error) {
		t0 := time.Now()
		if err := exec.CommandContext(ctx, "/bin/true").Run(); err != nil {
			return 0, fmt.Errorf("floor: %w", err)
		}
		return time.Since(t0), nil
	}
	goVariants := []func() (time.Duration, error){mprocOnce, execOnce, trueOnce}
	// With spares (KeepWarm), in a phase of its own per round so that idle
	// spares never share the machine with the other variants: back to back,
	// where each Start may wait for the spare started by the one before;
	// and spaced by an untimed pause long enough for a spare to be ready,
	// which is the latency of a program that starts children now and then.
	var warmBack, warmSpaced []time.Duration
	warmPhase := func(n int) error {
		if err := mproc.KeepWarm(warmSpares); err != nil {
			return err
		}
		defer mproc.KeepWarm(0)
		time.Sleep(warmPause)
		for i := range 2 * n {
			if i%2 == 1 {
				time.Sleep(warmPause)
			}
			d, err := mprocOnce()
			if err != nil {
				return err
			}
			if i%2 == 1 {
				warmSpaced = append(warmSpaced, d)
			} else {
				warmBack = append(warmBack, d)
			}
		}
		return nil
	}
	goSamples := make([][]time.Duration, len(goVariants))
	for range processWarmup {
		for _, f := range goVariants {
			if _, err := f(); err != nil {
				return nil, err
			}
		}
	}
	if err := warmPhase(processWarmup); err != nil {
		return nil, err
	}
	startOnly, warmBack, warmSpaced = startOnly[:0], nil, nil

	py := make(map[string][]time.Duration)
	pyErr := make(map[string]string)
	pyVersion := ""
	goRounds, pyRounds := split(c.n, c.rounds), split(c.pyN, c.rounds)
	for r := range max(len(goRounds), len(pyRounds)) {
		if r < len(goRounds) {
			// Interleave iteration by iteration, alternating which goes
			// first, so that drift and order effects hit both alike.
			for i := range goRounds[r] {
				for k := range goVariants {
					v := (k + i) % len(goVariants)
					d, err := goVariants[v]()
					if err != nil {
						return nil, err
					}
					goSamples[v] = append(goSamples[v], d)
				}
			}
			cold := len(startOnly)
			if err := warmPhase(goRounds[r]); err != nil {
				return nil, err
			}
			startOnly = startOnly[:cold] // Start alone is reported for cold starts
		}
		if r < len(pyRounds) && c.python != "" {
			fmt.Fprintf(c.log, "bench: process: round %d/%d: python3 multiprocessing\n", r+1, max(len(goRounds), len(pyRounds)))
			res, err := runPython(ctx, c, "process.py", "-n", strconv.Itoa(pyRounds[r]),
				"--warmup", strconv.Itoa(pyWarmup), "--methods", strings.Join(pyMethods, ","))
			if err != nil {
				return nil, err
			}
			pyVersion = res.Python
			for m, s := range res.Samples {
				for _, sec := range s {
					py[m] = append(py[m], time.Duration(sec*float64(time.Second)))
				}
			}
			for m, e := range res.Errors {
				pyErr[m] = e
			}
		}
	}

	rep := &report{
		title:   "Process start",
		refName: "mproc",
		about: "Start a child that does nothing and wait until it has ended, timed from before " +
			"the start call to after the wait returns. mproc: `f.Start(ctx, struct{}{}, mproc.ProcOptions{})` + " +
			"`p.Wait(ctx)` of a registered function that returns nil. Go baseline: what a user writes " +
			"without mproc, `exec.Command(self)` with a marker in `cmd.Env` that makes the re-executed " +
			"binary exit right after `mproc.Main()`, then `cmd.Run()`. Python: " +
			"`multiprocessing.get_context(method).Process(target=noop)`, `start()`, `join()`, timed with " +
			"`time.perf_counter` inside the Python process.",
		target: processTarget,
		source: "issue #3",
		rows: []row{
			{variant: "mproc `Start` + `Wait`", samples: goSamples[0]},
			{variant: fmt.Sprintf("mproc with `KeepWarm(%d)`, a spare ready (%s untimed pause before each)", warmSpares, warmPause), samples: warmSpaced, judged: true},
			{variant: fmt.Sprintf("mproc with `KeepWarm(%d)`, back to back", warmSpares), samples: warmBack},
			{variant: "Go `exec.Command(self).Run()`", samples: goSamples[1]},
			{variant: "floor: Go `exec.Command(\"/bin/true\").Run()`", samples: goSamples[2]},
		},
		notes: []string{
			"Every child here is this benchmark binary re-executed, so it runs the binary's package " +
				"initialisation before anything else: what a program links costs each of its children " +
				"(when the rpc workload linked gRPC and protobuf into this binary, a cold `Start` + `Wait` " +
				"and Go's own exec of it both took about 2 ms more; that workload now runs in a program of " +
				"its own). Importing `net` (for shmnet) makes it a cgo binary, a little slower to start.",
			fmt.Sprintf("The iterations are split into %d round(s); in each, the Go variants alternate "+
				"iteration by iteration, then one Python process runs its share with the start methods "+
				"alternating. Uncounted warm-up: %d iterations per Go variant, %d per Python method "+
				"and round (they start forkserver's server and the resource tracker).",
				len(goRounds), processWarmup, pyWarmup),
			fmt.Sprintf("The `KeepWarm` rows run in a phase of their own after the other Go variants "+
				"of each round: spares on, iterations alternating back to back and after a %s pause, "+
				"spares off. A spare is this binary started ahead of need and blocked reading its "+
				"control socket: a Start that finds one ready pays only the handshake and the "+
				"child's exit; back to back, each Start waits for the spare started by the one "+
				"before, so that row is bounded by the cold start-up cost the other rows show.",
				warmPause),
			fmt.Sprintf("Both Go variants start the same binary (%s); mproc's time adds its control-socket "+
				"handshake (argument in, ready, result out) to the fork+exec and Go runtime start-up that "+
				"the baseline pays too. Of mproc's time, `Start` returns after a median %s (the child "+
				"is running its function); the rest is `Wait`. The floor row starts no Go runtime: "+
				"it is what fork+exec alone costs on this machine.",
				buildMode(), ms(summarize(startOnly).median)),
		},
	}
	pyName := "Python"
	if pyVersion != "" {
		pyName = "Python " + pyVersion
	}
	for _, m := range pyMethods {
		rw := row{variant: fmt.Sprintf("%s `multiprocessing` %s", pyName, m), samples: py[m]}
		switch {
		case c.python == "":
			rw.missing = c.pyMissing
		case pyErr[m] != "":
			rw.missing = pyErr[m]
		case len(py[m]) == 0:
			rw.missing = "no samples"
		}
		rep.rows = append(rep.rows, rw)
	}
	cold := judgeRatios("issue #17", []ratioTarget{{
		what:   fmt.Sprintf("mproc `Start` + `Wait`, cold, median ≤ %g× Go's `exec.Command(self).Run()` of the same binary", processExecX),
		mine:   "mproc",
		others: []ratioRow{{key: "exec"}},
		factor: processExecX, show: ms,
	}}, map[string][]time.Duration{"mproc": goSamples[0], "exec": goSamples[1]})
	rep.notes = append(cold, rep.notes...)
	if c.python == "" {
		rep.notes = append(rep.notes, "**Python variants not run: "+c.pyMissing+".**")
	}
	return rep, nil
}

// buildMode says how this binary was linked, which changes every Go
// child's start-up: a dynamically linked one runs the dynamic loader first.
func buildMode() string {
	f, err := elf.Open("/proc/self/exe")
	if err != nil {
		return "linking unknown: " + err.Error()
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return "dynamically linked: a package of it uses cgo"
		}
	}
	return "statically linked"
}
