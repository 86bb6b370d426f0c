package main

import (
	"cmp"
	"context"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"mproc/pool"
)

// The pool workload (issue #8): tiny tasks (the identity on an int) in a
// pool of two worker processes started before timing: Map with chunks of
// one and with the automatic chunk size, and one Submit + Result round trip
// at a time, against Python's multiprocessing.Pool.map and
// concurrent.futures.ProcessPoolExecutor; start-up on the side.

func init() {
	addWorkload(workload{name: "pool", about: "Pool of 2 workers, tiny tasks: Map (chunks of 1, automatic), Submit + Result", run: poolWorkload})
}

const (
	poolWorkers  = 2      // issue #8; this project's machines have 2 CPUs
	poolMap1N    = 1_000  // ints per Map with chunks of one, per sample
	poolMapAutoN = 40_000 // ints per Map with automatic chunks, per sample
	poolSubmitN  = 100    // Submit + Result round trips per sample
	poolWarmup   = 1      // uncounted samples per variant and round

	poolBurnN      = 10_000           // issue #17: tasks of poolBurnTask each, per sample
	poolBurnTask   = time.Millisecond // issue #17: CPU per task
	poolBurnTarget = 1.05             // issue #17: within 5% of the ideal
	poolBurnSmallN = 100              // tasks per sample when -n is under 100 (the plumbing test)

	poolMap1Target   = 3 * time.Microsecond  // issue #8: per task, chunks of one
	poolSubmitTarget = 20 * time.Microsecond // issue #8: per Submit + Result
	poolAutoFactor   = 2                     // issue #8: automatic chunks within 2× of Python's default

	// Issue #17, on the ratio of the mproc row to the Python row of this run.
	poolAutoX   = 1   // Map, automatic chunks: ≤ 1× Pool.map with its default chunksize, per task
	poolMap1X   = 0.1 // Map, ChunkSize(1): ≥ 10× faster than Pool.map(chunksize=1), per task
	poolSubmitX = 0.1 // Submit + Result: ≤ 0.1× ProcessPoolExecutor's submit + result
)

// poolBurn is the CPU-bound task: it runs burn(iters), about 1 ms of CPU
// with the iterations calibrated by burnIters.
var poolBurn = pool.Register("bench.poolBurn", func(_ context.Context, iters int) (uint64, error) { return burn(iters), nil })

// burn is iters rounds of an xorshift: arithmetic the compiler cannot
// drop, touching no memory.
func burn(iters int) uint64 {
	x := uint64(88172645463325252)
	for range iters {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
	}
	return x
}

// burnSink keeps burn's results used during calibration.
var burnSink uint64

// burnIters returns the iterations of burn that take d, and the time they
// take (the ideal per task): the least of 21 timings on a locked thread,
// which a busy machine can only stretch. (Thread CPU time from getrusage
// counts in scheduler ticks on some kernels: 0 or 4 ms for a 1 ms task.)
func burnIters(d time.Duration) (int, time.Duration) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	timed := func(n int) time.Duration {
		t0 := time.Now()
		burnSink ^= burn(n) // used, as the task's result is: unused, the compiler cuts the loop's cost to a third
		return time.Since(t0)
	}
	leastOf := func(k, n int) time.Duration {
		least := time.Duration(1<<63 - 1)
		for range k {
			least = min(least, timed(n))
		}
		return least
	}
	// Scale from the least of several timings: one stretched timing (the
	// thread preempted) once made the "1 ms" task 0.2 ms.
	n := 1 << 16
	for {
		if el := timed(n); el >= d/4 {
			n = int(float64(n) * float64(d) / float64(leastOf(7, n)))
			break
		}
		n *= 2
	}
	return n, leastOf(21, n)
}

// poolIdentity is the tiny task: it returns its argument.
var poolIdentity = pool.Register("bench.poolIdentity", func(_ context.Context, x int) (int, error) { return x, nil })

// autoChunk is the chunk size Map (and Python's Pool.map) picks for n
// items: n/(4*workers), rounded up.
func autoChunk(n int) int { return max(1, (n+4*poolWorkers-1)/(4*poolWorkers)) }

// poolMap times one Map over xs and checks its results: the time per item.
func poolMap(ctx context.Context, p *pool.Pool, xs []int, opts ...pool.MapOption) (time.Duration, error) {
	t0 := time.Now()
	rs, err := poolIdentity.Map(ctx, p, xs, opts...)
	d := time.Since(t0)
	if err != nil {
		return 0, err
	}
	if !slices.Equal(rs, xs) {
		return 0, fmt.Errorf("map of %d ints: wrong results", len(xs))
	}
	return perOp(d, len(xs)), nil
}

// poolSubmit times poolSubmitN Submit + Result round trips, one after the
// other: the time per round trip.
func poolSubmit(ctx context.Context, p *pool.Pool) (time.Duration, error) {
	t0 := time.Now()
	for i := range poolSubmitN {
		r, err := poolIdentity.Submit(p, i).Result(ctx)
		if err != nil {
			return 0, err
		}
		if r != i {
			return 0, fmt.Errorf("submit %d: result %d", i, r)
		}
	}
	return perOp(time.Since(t0), poolSubmitN), nil
}

// poolRound starts a pool, timing pool.New, and runs warm-up plus n
// samples of each Go variant, the variants alternating iteration by
// iteration with a rotating first. samples[k] gets variant k's.
func poolRound(ctx context.Context, n int, variants []func(*pool.Pool) (time.Duration, error), samples [][]time.Duration) (start time.Duration, err error) {
	t0 := time.Now()
	p, err := pool.New(ctx, pool.Options{Workers: poolWorkers})
	if err != nil {
		return 0, err
	}
	start = time.Since(t0)
	defer func() {
		if err != nil {
			p.Terminate()
		} else {
			p.Close()
		}
		if werr := p.Wait(ctx); err == nil {
			err = werr
		}
	}()
	for i := range poolWarmup + n {
		for k := range variants {
			v := (k + i) % len(variants)
			d, err := variants[v](p)
			if err != nil {
				return 0, err
			}
			if i >= poolWarmup {
				samples[v] = append(samples[v], d)
			}
		}
	}
	return start, nil
}

// poolBurnRun times one Map of n CPU-bound tasks (burn(iters) each) with
// chunks of one over a new pool of poolWorkers, pool start-up not timed.
func poolBurnRun(ctx context.Context, iters, n int) (time.Duration, error) {
	p, err := pool.New(ctx, pool.Options{Workers: poolWorkers})
	if err != nil {
		return 0, err
	}
	defer func() { p.Close(); p.Wait(ctx) }()
	xs := make([]int, n)
	for i := range xs {
		xs[i] = iters
	}
	want := burn(iters)
	t0 := time.Now()
	rs, err := poolBurn.Map(ctx, p, xs, pool.ChunkSize(1))
	d := time.Since(t0)
	if err != nil {
		return 0, err
	}
	for _, r := range rs {
		if r != want {
			return 0, fmt.Errorf("burn: result %x, want %x", r, want)
		}
	}
	return d, nil
}

// burnFloorRun times the same n tasks without a pool: poolWorkers
// threads of this process, each burning its share. It is what the
// machine gives two CPU-bound threads at once (two busy CPUs of a shared
// VM run slower than one), the floor the pool's row can be held to.
func burnFloorRun(iters, n int) (time.Duration, error) {
	want := burn(iters)
	errs := make(chan error, poolWorkers)
	t0 := time.Now()
	for w := range poolWorkers {
		go func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			for i := w; i < n; i += poolWorkers {
				if r := burn(iters); r != want {
					errs <- fmt.Errorf("burn: result %x, want %x", r, want)
					return
				}
			}
			errs <- nil
		}()
	}
	var err error
	for range poolWorkers {
		err = cmp.Or(err, <-errs)
	}
	return time.Since(t0), err
}

func poolWorkload(ctx context.Context, c *config) (*report, error) {
	xs1, xsAuto := make([]int, poolMap1N), make([]int, poolMapAutoN)
	for i := range xs1 {
		xs1[i] = i
	}
	for i := range xsAuto {
		xsAuto[i] = i
	}
	// The order of goSamples and pyKeys below.
	variants := []func(*pool.Pool) (time.Duration, error){
		func(p *pool.Pool) (time.Duration, error) { return poolMap(ctx, p, xs1, pool.ChunkSize(1)) },
		func(p *pool.Pool) (time.Duration, error) { return poolMap(ctx, p, xsAuto) },
		func(p *pool.Pool) (time.Duration, error) { return poolSubmit(ctx, p) },
	}
	goSamples := make([][]time.Duration, len(variants))
	var starts, burns, floors []time.Duration
	burnN := poolBurnN
	if c.n < 100 {
		burnN = poolBurnSmallN
	}
	iters, burnTask := burnIters(poolBurnTask)

	py := make(map[string][]time.Duration)
	pyErr := make(map[string]string)
	pyVersion := ""
	goRounds, pyRounds := split(c.n, c.rounds), split(c.pyN, c.rounds)
	nr := max(len(goRounds), len(pyRounds))
	for r := range nr {
		if r < len(goRounds) {
			fmt.Fprintf(c.log, "bench: pool: round %d/%d: mproc\n", r+1, nr)
			start, err := poolRound(ctx, goRounds[r], variants, goSamples)
			if err != nil {
				return nil, fmt.Errorf("mproc pool: %w", err)
			}
			starts = append(starts, start)
			d, err := poolBurnRun(ctx, iters, burnN)
			if err != nil {
				return nil, fmt.Errorf("mproc pool, CPU-bound tasks: %w", err)
			}
			burns = append(burns, d)
			if d, err = burnFloorRun(iters, burnN); err != nil {
				return nil, fmt.Errorf("CPU-bound floor: %w", err)
			}
			floors = append(floors, d)
		}
		if r < len(pyRounds) && c.python != "" {
			fmt.Fprintf(c.log, "bench: pool: round %d/%d: python3 multiprocessing\n", r+1, nr)
			res, err := runPython(ctx, c, "pool.py", "-n", strconv.Itoa(pyRounds[r]), "--warmup", strconv.Itoa(poolWarmup),
				"--workers", strconv.Itoa(poolWorkers), "--map1", strconv.Itoa(poolMap1N),
				"--mapauto", strconv.Itoa(poolMapAutoN), "--submit", strconv.Itoa(poolSubmitN))
			if err != nil {
				return nil, err
			}
			pyVersion = res.Python
			for k, s := range res.Samples {
				py[k] = append(py[k], seconds(s)...)
			}
			for k, e := range res.Errors {
				pyErr[k] = e
			}
		}
	}

	pyName := "Python"
	if pyVersion != "" {
		pyName = "Python " + pyVersion
	}
	chunk := autoChunk(poolMapAutoN)
	rep := &report{
		title:   "Pool",
		refName: "mproc",
		format:  humanDuration,
		about: fmt.Sprintf("Tiny tasks, the identity on an int, in a pool of %d worker processes started before "+
			"timing. mproc: `var id = pool.Register(name, func(ctx, x int) (int, error) { return x, nil })`, "+
			"`pool.New(ctx, pool.Options{Workers: %d})`, the default codec (`mproc.DefaultCodec`, CBOR); `id.Map(ctx, p, xs, "+
			"pool.ChunkSize(1))` over %d ints and `id.Map(ctx, p, xs)` with the automatic chunk size "+
			"(len(xs)/(4×workers), rounded up: %d) over %d ints, a sample being one call's time divided "+
			"by len(xs); and `id.Submit(p, i).Result(ctx)`, %d one after the other, a sample being their "+
			"time divided by %d. Python, the same tasks and sizes in one process per round (fork "+
			"context): `multiprocessing.Pool(%d)`, `pool.map(f, xs, chunksize=1)` and `pool.map(f, xs)` "+
			"(its default chunk size is the same, %d); `concurrent.futures.ProcessPoolExecutor(%d)`, "+
			"`ex.submit(f, x).result()`; timed with `time.perf_counter` inside Python. Every result is "+
			"checked. Start-up is timed on its own, once per pool: `pool.New` (it returns once the "+
			"workers run), the `Pool` constructor, and the executor's constructor plus one "+
			"`submit(f, 0).result()` per worker at once (it starts its processes on the first submit).",
			poolWorkers, poolWorkers, poolMap1N, chunk, poolMapAutoN, poolSubmitN, poolSubmitN,
			poolWorkers, chunk, poolWorkers),
	}
	groups := []struct {
		goRow  row
		pyKeys []string
		pyRows []string
	}{
		{row{variant: fmt.Sprintf("mproc `Map`, `ChunkSize(1)`, %d ints, per task", poolMap1N), samples: goSamples[0]},
			[]string{"map1"}, []string{fmt.Sprintf("PY `Pool.map`, `chunksize=1`, %d ints, per task", poolMap1N)}},
		{row{variant: fmt.Sprintf("mproc `Map`, automatic chunks (%d), %d ints, per task", chunk, poolMapAutoN), samples: goSamples[1]},
			[]string{"mapauto"}, []string{fmt.Sprintf("PY `Pool.map`, default chunksize (%d), %d ints, per task", chunk, poolMapAutoN)}},
		{row{variant: "mproc `Submit` + `Result`, one at a time, per call", samples: goSamples[2]},
			[]string{"submit"}, []string{"PY `ProcessPoolExecutor` `submit().result()`, one at a time, per call"}},
		{row{variant: fmt.Sprintf("mproc start-up: `pool.New`, %d workers", poolWorkers), samples: starts},
			[]string{"pool start", "executor start"},
			[]string{fmt.Sprintf("PY start-up: `Pool(%d)`", poolWorkers),
				fmt.Sprintf("PY start-up: `ProcessPoolExecutor(%d)` + a first task per worker", poolWorkers)}},
	}
	for _, g := range groups {
		ref := len(rep.rows)
		g.goRow.ref = ref
		rep.rows = append(rep.rows, g.goRow)
		for i, k := range g.pyKeys {
			rw := row{variant: strings.ReplaceAll(g.pyRows[i], "PY", pyName), samples: py[k], ref: ref}
			switch {
			case c.python == "":
				rw.missing = c.pyMissing
			case pyErr[k] != "":
				rw.missing = pyErr[k]
			case len(rw.samples) == 0:
				rw.missing = "no samples"
			}
			rep.rows = append(rep.rows, rw)
		}
	}
	ideal := time.Duration(burnN) * burnTask / poolWorkers
	rep.rows = append(rep.rows, row{variant: fmt.Sprintf("mproc `Map`, `ChunkSize(1)`, %d tasks of ~%s of CPU each, %d workers, whole run", burnN, humanDuration(burnTask), poolWorkers),
		samples: burns, ref: len(rep.rows), format: ms})
	rep.rows = append(rep.rows, row{variant: fmt.Sprintf("floor: the same %d tasks on %d threads of one process, no pool, whole run", burnN, poolWorkers),
		samples: floors, ref: len(rep.rows) - 1, format: ms})
	rep.notes = poolTargets(goSamples, py["mapauto"])
	rep.notes = append(rep.notes, poolBurnTarget2(burns, ideal, burnN, burnTask), poolBurnFloor(burns, floors, ideal))
	rep.notes = append(rep.notes, judgeRatios("issue #17", poolRatioTargets(), map[string][]time.Duration{
		"map1": goSamples[0], "auto": goSamples[1], "submit": goSamples[2],
		"py map1": py["map1"], "py auto": py["mapauto"], "py submit": py["submit"],
	})...)
	rep.notes = append(rep.notes,
		"Each Python row is compared to the mproc row above it; each mproc row is its own reference.",
		fmt.Sprintf("Samples: %d per Go variant, %d per Python variant, split into %d round(s). In each "+
			"round a new mproc pool runs its share, the three Go variants alternating call by call, "+
			"then one Python process runs its share: the two `Pool.map` forms alternating, then the "+
			"executor's. Every pool runs %d uncounted sample(s) per variant first. Start-up rows have "+
			"one sample per round.", c.n, c.pyN, nr, poolWarmup),
		"Issue #8 quotes Python at 15 µs per task (chunksize=1), 0.125 µs per task (default "+
			"chunksize) and 200 µs per `submit().result()`; the Python rows are what this machine "+
			"measured in this run.",
	)
	if c.python == "" {
		rep.notes = append(rep.notes, "**Python variants not run: "+c.pyMissing+".**")
	}
	return rep, nil
}

// poolBurnTarget2 judges the CPU-bound row against issue #17's target.
func poolBurnTarget2(burns []time.Duration, ideal time.Duration, n int, task time.Duration) string {
	what := fmt.Sprintf("Target (issue #17): %d tasks of ~1 ms of CPU over %d workers within 5%% of the ideal (%d × %s ÷ %d = %s, the task's least time of 21 measured alone in this process)",
		n, poolWorkers, n, humanDuration(task), poolWorkers, ms(ideal))
	b := summarize(burns)
	if b.n == 0 {
		return what + " — not judged (no samples)."
	}
	r := float64(b.median) / float64(ideal)
	verdict := "**not met**"
	if r <= poolBurnTarget {
		verdict = "**met**"
	}
	return fmt.Sprintf("%s — %s (median %s, %.3f× the ideal).", what, verdict, ms(b.median), r)
}

// poolBurnFloor judges the CPU-bound row against the floor row: the
// issue's "the pool adds nothing measurable to real work", where the
// ideal itself is out of reach of two busy threads.
func poolBurnFloor(burns, floors []time.Duration, ideal time.Duration) string {
	what := "Target (issue #17, against what this machine gives): the CPU-bound `Map` within 5% of the same tasks on threads without a pool"
	b, f := summarize(burns), summarize(floors)
	if b.n == 0 || f.n == 0 {
		return what + " — not judged (no samples)."
	}
	r := float64(b.median) / float64(f.median)
	verdict := "**not met**"
	if r <= poolBurnTarget {
		verdict = "**met**"
	}
	return fmt.Sprintf("%s — %s (median %s against %s, %.3f×; the floor is %.3f× the ideal).",
		what, verdict, ms(b.median), ms(f.median), r, float64(f.median)/float64(ideal))
}

// poolTargets judges the mproc rows against issue #8's targets and says
// plainly which are not met. pyAuto are the samples of Python's
// default-chunk Pool.map.
func poolTargets(goSamples [][]time.Duration, pyAuto []time.Duration) []string {
	var out, unmet []string
	judge := func(what string, n int, met bool, got string) {
		switch {
		case n == 0:
			out = append(out, fmt.Sprintf("Target (issue #8): %s — not judged (no samples).", what))
			unmet = append(unmet, what+" (not judged)")
		case met:
			out = append(out, fmt.Sprintf("Target (issue #8): %s — **met** (%s).", what, got))
		default:
			out = append(out, fmt.Sprintf("Target (issue #8): %s — **not met** (%s).", what, got))
			unmet = append(unmet, what)
		}
	}
	m1, auto, sub, pa := summarize(goSamples[0]), summarize(goSamples[1]), summarize(goSamples[2]), summarize(pyAuto)
	judge("mproc `Map` with `ChunkSize(1)`, median ≤ "+humanDuration(poolMap1Target)+" per task",
		m1.n, m1.median <= poolMap1Target, "median "+humanDuration(m1.median))
	judge("mproc `Submit` + `Result`, median ≤ "+humanDuration(poolSubmitTarget)+" per call",
		sub.n, sub.median <= poolSubmitTarget, "median "+humanDuration(sub.median))
	got := fmt.Sprintf("median %s against Python's %s", humanDuration(auto.median), humanDuration(pa.median))
	if pa.n > 0 && auto.n > 0 {
		got += fmt.Sprintf(", %.1f×", float64(auto.median)/float64(pa.median))
	}
	judge(fmt.Sprintf("mproc `Map` with automatic chunks within %d× of Python's `Pool.map` with its default chunksize", poolAutoFactor),
		min(auto.n, pa.n), auto.median <= poolAutoFactor*pa.median, got)
	if len(unmet) == 0 {
		return append(out, "Every issue #8 target is met.")
	}
	return append(out, "**Not met**: "+strings.Join(unmet, "; ")+".")
}

// poolRatioTargets are issue #17's targets for the pool rows, each against
// the Python row of the same tasks (keys: "map1", "auto", "submit", and
// "py " before each for Python's).
func poolRatioTargets() []ratioTarget {
	return []ratioTarget{
		{what: fmt.Sprintf("mproc `Map` with automatic chunks, median per task ≤ %g× Python's `Pool.map` with its default chunksize", float64(poolAutoX)),
			mine: "auto", others: []ratioRow{{key: "py auto"}}, factor: poolAutoX, show: humanDuration},
		{what: fmt.Sprintf("mproc `Map` with `ChunkSize(1)` ≥ %g× faster than Python's `Pool.map(chunksize=1)`, median per task ≤ %g× its", 1/poolMap1X, poolMap1X),
			mine: "map1", others: []ratioRow{{key: "py map1"}}, factor: poolMap1X, show: humanDuration},
		{what: fmt.Sprintf("mproc `Submit` + `Result`, median per call ≤ %g× Python's `ProcessPoolExecutor` `submit().result()`", poolSubmitX),
			mine: "submit", others: []ratioRow{{key: "py submit"}}, factor: poolSubmitX, show: humanDuration},
	}
}
