package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"mproc"
	"mproc/pool"
)

// The memory workload: the resident memory of an idle mproc child, a spare
// (KeepWarm), a pool worker and a filled queue, against Python's
// multiprocessing Process, Pool worker and Queue. Each process is measured
// from outside through /proc/PID/status (VmRSS and its split) and
// /proc/PID/smaps_rollup (PSS, private pages); a queue through the smaps
// entry of its shared-memory segment, or, in Python, through the growth of
// the producer process.

func init() {
	addWorkload(workload{name: "memory", about: "RSS and PSS of an idle child, a spare, a pool worker and a filled queue", run: memoryWorkload})
}

const (
	memMaxSamples  = 5  // samples per variant at most: -n and -pyn only lower it
	memQueueMsg    = 64 // bytes per queue message
	memPoolWorkers = 2
	// A process is measured once its VmRSS has not changed over
	// memStableReads reads memPollEvery apart, or after memSettleMax.
	memPollEvery   = 25 * time.Millisecond
	memStableReads = 4
	memSettleMax   = 3 * time.Second
	memWaitMax     = 30 * time.Second // for a child's signal, a spare to appear
)

// memQueueSizes are the queues' capacities, each filled once.
var memQueueSizes = []int{1024, 65536}

// memInfo is what is measured of a process (or a queue), in bytes.
type memInfo struct {
	rss, pss, uss     int64 // VmRSS; Pss; Private_Clean + Private_Dirty
	anon, file, shmem int64 // VmRSS split: RssAnon, RssFile, RssShmem
}

// procKB reads the "Name: N kB" lines of a /proc file, in bytes.
func procKB(b []byte) map[string]int64 {
	m := make(map[string]int64)
	for line := range strings.Lines(string(b)) {
		k, v, ok := strings.Cut(line, ":")
		f := strings.Fields(v)
		if !ok || len(f) != 2 || f[1] != "kB" {
			continue
		}
		if n, err := strconv.ParseInt(f[0], 10, 64); err == nil {
			m[k] = n << 10
		}
	}
	return m
}

// readMem reads a process's memory from /proc/PID/status and
// /proc/PID/smaps_rollup; pid 0 is this process.
func readMem(pid int) (memInfo, error) {
	dir := "/proc/self"
	if pid != 0 {
		dir = "/proc/" + strconv.Itoa(pid)
	}
	st, err := os.ReadFile(dir + "/status")
	if err != nil {
		return memInfo{}, err
	}
	ro, err := os.ReadFile(dir + "/smaps_rollup")
	if err != nil {
		return memInfo{}, err
	}
	s, r := procKB(st), procKB(ro)
	if _, ok := s["VmRSS"]; !ok {
		return memInfo{}, fmt.Errorf("%s/status: no VmRSS (a zombie?)", dir)
	}
	if _, ok := r["Pss"]; !ok {
		return memInfo{}, fmt.Errorf("%s/smaps_rollup: no Pss", dir)
	}
	return memInfo{rss: s["VmRSS"], pss: r["Pss"], uss: r["Private_Clean"] + r["Private_Dirty"],
		anon: s["RssAnon"], file: s["RssFile"], shmem: s["RssShmem"]}, nil
}

// memSettle measures pid once its VmRSS has stopped changing (see
// memStableReads); settled is false if it had not after memSettleMax.
func memSettle(ctx context.Context, pid int) (m memInfo, settled bool, err error) {
	deadline := time.Now().Add(memSettleMax)
	last, same := int64(-1), 0
	for {
		if m, err = readMem(pid); err != nil {
			return memInfo{}, false, err
		}
		if m.rss == last {
			same++
		} else {
			last, same = m.rss, 1
		}
		if same >= memStableReads {
			return m, true, nil
		}
		if time.Now().After(deadline) {
			return m, false, nil
		}
		select {
		case <-ctx.Done():
			return memInfo{}, false, ctx.Err()
		case <-time.After(memPollEvery):
		}
	}
}

// memIdleArg is the idle child's argument: the event it sets once running.
type memIdleArg struct{ Ready *mproc.Event }

// memIdleFn is the idle child: it says it runs, drops the event (so that
// its mapping is not counted) and blocks until its context ends.
var memIdleFn = mproc.Register("bench.memIdle", func(ctx context.Context, a memIdleArg) error {
	a.Ready.Set()
	a.Ready.Close()
	<-ctx.Done()
	return nil
})

// memPidTask is the pool's tiny task: it returns the worker's pid.
var memPidTask = pool.Register("bench.memPid", func(context.Context, int) (int, error) { return os.Getpid(), nil })

// memMeasurer measures processes and counts those that never settled.
type memMeasurer struct{ unsettled int }

func (mm *memMeasurer) measure(ctx context.Context, pid int) (memInfo, error) {
	m, ok, err := memSettle(ctx, pid)
	if !ok && err == nil {
		mm.unsettled++
	}
	return m, err
}

// idleChild starts the idle child, waits for its signal and measures it.
func (mm *memMeasurer) idleChild(ctx context.Context) (memInfo, error) {
	ev, err := mproc.NewEvent()
	if err != nil {
		return memInfo{}, err
	}
	defer ev.Close()
	p, err := memIdleFn.Start(ctx, memIdleArg{Ready: ev}, mproc.ProcOptions{})
	if err != nil {
		return memInfo{}, fmt.Errorf("start: %w", err)
	}
	defer func() {
		p.Terminate()
		p.Wait(context.Background()) // a terminated child's error says so: nothing to check
	}()
	wctx, cancel := context.WithTimeout(ctx, memWaitMax)
	defer cancel()
	if err := ev.Wait(wctx); err != nil {
		return memInfo{}, fmt.Errorf("waiting for the child's signal: %w", err)
	}
	m, err := mm.measure(ctx, p.Pid())
	if err == nil && !p.Alive() {
		err = errors.New("the idle child ended while measured")
	}
	return m, err
}

// memChildPids lists this process's children, from the parent pid in
// /proc/*/stat (this kernel need not have /proc/PID/task/TID/children).
func memChildPids() (map[int]bool, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	self := os.Getpid()
	out := make(map[int]bool)
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid ...: comm may hold anything, so after the last ')'.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		if f := strings.Fields(string(b[i+1:])); len(f) > 1 && f[1] == strconv.Itoa(self) {
			out[pid] = true
		}
	}
	return out, nil
}

// spare turns KeepWarm(1) on, finds the spare, measures it and turns the
// spares off. mproc does not expose a spare's pid (Children does not list
// spares), so the spare is the one child of this process that appears
// after KeepWarm and is not in Children.
func (mm *memMeasurer) spare(ctx context.Context) (m memInfo, err error) {
	before, err := memChildPids()
	if err != nil {
		return memInfo{}, err
	}
	if err := mproc.KeepWarm(1); err != nil {
		return memInfo{}, err
	}
	defer func() {
		if kerr := mproc.KeepWarm(0); err == nil {
			err = kerr
		}
	}()
	deadline := time.Now().Add(memWaitMax)
	spare := 0
	for spare == 0 {
		now, err := memChildPids()
		if err != nil {
			return memInfo{}, err
		}
		for _, p := range mproc.Children() {
			delete(now, p.Pid())
		}
		var fresh []int
		for pid := range now {
			if !before[pid] {
				fresh = append(fresh, pid)
			}
		}
		switch {
		case len(fresh) == 1:
			spare = fresh[0]
		case len(fresh) > 1:
			return memInfo{}, fmt.Errorf("KeepWarm(1): %d new children %v, want one", len(fresh), fresh)
		case time.Now().After(deadline):
			return memInfo{}, fmt.Errorf("KeepWarm(1): no spare within %s", memWaitMax)
		default:
			time.Sleep(5 * time.Millisecond)
		}
	}
	self, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return memInfo{}, err
	}
	if exe, err := os.Readlink("/proc/" + strconv.Itoa(spare) + "/exe"); err != nil || exe != self {
		return memInfo{}, fmt.Errorf("child %d runs %q (%v), not this binary", spare, exe, err)
	}
	return mm.measure(ctx, spare)
}

// poolWorkers starts a pool, runs the tiny task until each worker has run
// one, and measures every worker.
func (mm *memMeasurer) poolWorkers(ctx context.Context) (ms []memInfo, err error) {
	p, err := pool.New(ctx, pool.Options{Workers: memPoolWorkers})
	if err != nil {
		return nil, err
	}
	defer func() {
		p.Close()
		if werr := p.Wait(ctx); err == nil {
			err = werr
		}
	}()
	ran := make(map[int]bool)
	for i := 0; len(ran) < memPoolWorkers; i++ {
		if i == 1000 {
			return nil, fmt.Errorf("after %d rounds of %d tasks only workers %v ran one", i, memPoolWorkers, ran)
		}
		fs := make([]*pool.Future[int], memPoolWorkers)
		for k := range fs {
			fs[k] = memPidTask.Submit(p, k)
		}
		for _, f := range fs {
			pid, err := f.Result(ctx)
			if err != nil {
				return nil, err
			}
			ran[pid] = true
		}
	}
	ws := p.Workers()
	if len(ws) != memPoolWorkers {
		return nil, fmt.Errorf("%d workers, want %d", len(ws), memPoolWorkers)
	}
	for _, w := range ws {
		if !ran[w.Pid()] {
			return nil, fmt.Errorf("worker %d ran no task (tasks ran in %v)", w.Pid(), ran)
		}
		m, err := mm.measure(ctx, w.Pid())
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	return ms, nil
}

// smapsEntry is one mapping of /proc/self/smaps.
type smapsEntry struct {
	header              string // address range, permissions, offset, device, inode, name
	size, rss, pss, uss int64
}

func readSmaps() ([]smapsEntry, error) {
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return nil, err
	}
	var out []smapsEntry
	var kv map[string]int64
	flush := func() {
		if len(out) > 0 {
			e := &out[len(out)-1]
			e.size, e.rss, e.pss, e.uss = kv["Size"], kv["Rss"], kv["Pss"], kv["Private_Clean"]+kv["Private_Dirty"]
		}
	}
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if lo, hi, ok := strings.Cut(f[0], "-"); ok && isHex(lo) && isHex(hi) {
			flush()
			out = append(out, smapsEntry{header: strings.TrimSpace(line)})
			kv = make(map[string]int64)
			continue
		}
		if kv != nil && len(f) == 3 && f[2] == "kB" {
			if n, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				kv[strings.TrimSuffix(f[0], ":")] = n << 10
			}
		}
	}
	flush()
	return out, nil
}

func isHex(s string) bool {
	_, err := strconv.ParseUint(s, 16, 64)
	return s != "" && err == nil
}

// memfdMapping returns the smaps entry whose header is h.
func memfdMapping(h string) (smapsEntry, error) {
	es, err := readSmaps()
	if err != nil {
		return smapsEntry{}, err
	}
	if i := slices.IndexFunc(es, func(e smapsEntry) bool { return e.header == h }); i >= 0 {
		return es[i], nil
	}
	return smapsEntry{}, fmt.Errorf("mapping %q gone", h)
}

// memQueueSample is one filled queue: its segment's mapping empty and
// full, and this process's VmRSS growth over the fill.
type memQueueSample struct {
	empty, full smapsEntry
	growth      int64
}

// memQueue creates a queue of n slots of memQueueMsg bytes, finds its segment
// (the one new /memfd:mproc: mapping), fills it and measures it.
func memQueue(n int) (s memQueueSample, err error) {
	isSeg := func(e smapsEntry) bool { return strings.Contains(e.header, "/memfd:mproc") }
	before, err := readSmaps()
	if err != nil {
		return s, err
	}
	q, err := mproc.NewQueue[[]byte](n, mproc.WithMaxMessage(memQueueMsg))
	if err != nil {
		return s, err
	}
	defer func() {
		if cerr := q.Close(); err == nil {
			err = cerr
		}
	}()
	after, err := readSmaps()
	if err != nil {
		return s, err
	}
	var fresh []smapsEntry
	for _, e := range after {
		if isSeg(e) && !slices.ContainsFunc(before, func(b smapsEntry) bool { return b.header == e.header }) {
			fresh = append(fresh, e)
		}
	}
	if len(fresh) != 1 {
		return s, fmt.Errorf("NewQueue(%d): %d new /memfd:mproc mappings, want one", n, len(fresh))
	}
	s.empty = fresh[0]
	p0, err := readMem(0)
	if err != nil {
		return s, err
	}
	msg := make([]byte, memQueueMsg)
	for i := range n {
		binary.LittleEndian.PutUint64(msg, uint64(i))
		if err := q.TryPut(msg); err != nil {
			return s, fmt.Errorf("put %d of %d: %w", i+1, n, err)
		}
	}
	p1, err := readMem(0) // before reading smaps, which allocates
	if err != nil {
		return s, err
	}
	s.growth = p1.rss - p0.rss
	s.full, err = memfdMapping(s.empty.header)
	return s, err
}

// memSize prints a byte count in B, KiB or MiB (1 KiB = 1024 B).
func memSize(n int64) string {
	sign := ""
	if n < 0 {
		sign, n = "-", -n
	}
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%s%.2f MiB", sign, float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%s%.0f KiB", sign, float64(n)/(1<<10))
	}
	return fmt.Sprintf("%s%d B", sign, n)
}

// memDur prints a "duration" that holds bytes: the report's rows carry
// their byte counts as time.Duration, one nanosecond a byte.
func memDur(d time.Duration) string { return memSize(int64(d)) }

// memMedian is the median of one field over samples (0 for none).
func memMedian(ms []memInfo, f func(memInfo) int64) int64 {
	if len(ms) == 0 {
		return 0
	}
	v := make([]time.Duration, len(ms))
	for i, m := range ms {
		v[i] = time.Duration(f(m))
	}
	return int64(summarize(v).median)
}

// memRatio prints a/b as "1.23×".
func memRatio(a, b int64) string {
	if a <= 0 || b <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f×", float64(a)/float64(b))
}

// memRow is one row of the report: its key in the samples, its text and
// the key of the row it is compared to ("" for a reference row).
type memRow struct{ key, variant, ref string }

func memoryWorkload(ctx context.Context, c *config) (*report, error) {
	nGo, nPy := min(c.n, memMaxSamples), min(c.pyN, memMaxSamples)
	samples := make(map[string][]memInfo)
	queues := make(map[int][]memQueueSample)
	pyExtra := make(map[string][]float64) // Python's queue figures: "queue N/pipe", "queue N/buffered"
	pyErr := make(map[string]string)
	pyVersion := ""
	var mm memMeasurer
	pyUnsettled := 0

	qs := make([]string, len(memQueueSizes))
	for i, n := range memQueueSizes {
		qs[i] = strconv.Itoa(n)
	}
	goRounds, pyRounds := split(nGo, c.rounds), split(nPy, c.rounds)
	nr := max(len(goRounds), len(pyRounds))
	for r := range nr {
		if r < len(goRounds) {
			fmt.Fprintf(c.log, "bench: memory: round %d/%d: mproc\n", r+1, nr)
			for range goRounds[r] {
				m, err := mm.idleChild(ctx)
				if err != nil {
					return nil, fmt.Errorf("idle child: %w", err)
				}
				samples["idle"] = append(samples["idle"], m)
				if m, err = mm.spare(ctx); err != nil {
					return nil, fmt.Errorf("spare: %w", err)
				}
				samples["spare"] = append(samples["spare"], m)
				ws, err := mm.poolWorkers(ctx)
				if err != nil {
					return nil, fmt.Errorf("pool: %w", err)
				}
				samples["pool"] = append(samples["pool"], ws...)
				for _, n := range memQueueSizes {
					s, err := memQueue(n)
					if err != nil {
						return nil, fmt.Errorf("queue: %w", err)
					}
					queues[n] = append(queues[n], s)
					samples["queue "+strconv.Itoa(n)] = append(samples["queue "+strconv.Itoa(n)],
						memInfo{rss: s.full.rss, pss: s.full.pss, uss: s.full.uss})
				}
			}
		}
		if r < len(pyRounds) && c.python != "" {
			fmt.Fprintf(c.log, "bench: memory: round %d/%d: python3 multiprocessing\n", r+1, nr)
			res, err := runPython(ctx, c, "memory.py", "-n", strconv.Itoa(pyRounds[r]), "--methods", "fork,spawn",
				"--workers", strconv.Itoa(memPoolWorkers), "--queues", strings.Join(qs, ","), "--size", strconv.Itoa(memQueueMsg))
			if err != nil {
				return nil, err
			}
			pyVersion = res.Python
			vars := []string{"process fork", "process spawn", "pool fork", "pool spawn"}
			for _, q := range qs {
				vars = append(vars, "queue "+q)
			}
			for _, v := range vars {
				rss := res.Samples[v+"/rss"]
				for i := range rss {
					at := func(k string) int64 {
						if s := res.Samples[v+"/"+k]; i < len(s) {
							return int64(s[i])
						}
						return 0
					}
					samples["py "+v] = append(samples["py "+v], memInfo{rss: at("rss"), pss: at("pss"), uss: at("uss"),
						anon: at("anon"), file: at("file"), shmem: at("shmem")})
					if strings.HasPrefix(v, "queue ") {
						pyExtra[v+"/pipe"] = append(pyExtra[v+"/pipe"], float64(at("pipe")))
						pyExtra[v+"/buffered"] = append(pyExtra[v+"/buffered"], float64(at("buffered")))
					} else if at("settled") == 0 {
						pyUnsettled++
					}
				}
			}
			for k, e := range res.Errors {
				pyErr["py "+k] = e
			}
		}
	}

	py := "Python"
	if pyVersion != "" {
		py = "Python " + pyVersion
	}
	rows := []memRow{
		{"idle", "mproc idle child (`Register` + `Start`, blocked in `<-ctx.Done()`)", ""},
		{"spare", "mproc spare (`KeepWarm(1)`), waiting for a `Start`", "idle"},
		{"py process fork", py + " `Process`, fork, idle child", "idle"},
		{"py process spawn", py + " `Process`, spawn, idle child", "idle"},
		{"pool", fmt.Sprintf("mproc `pool.New`, %d workers: a worker after a task", memPoolWorkers), ""},
		{"py pool fork", fmt.Sprintf("%s `Pool(%d)`, fork: a worker after a task", py, memPoolWorkers), "pool"},
		{"py pool spawn", fmt.Sprintf("%s `Pool(%d)`, spawn: a worker after a task", py, memPoolWorkers), "pool"},
	}
	for _, n := range memQueueSizes {
		k := "queue " + strconv.Itoa(n)
		rows = append(rows,
			memRow{k, fmt.Sprintf("mproc `NewQueue[[]byte](%d, WithMaxMessage(%d))`, filled: its segment", n, memQueueMsg), ""},
			memRow{"py " + k, fmt.Sprintf("%s `Queue(%d)`, filled with %d × %d B `bytes`: the producer's growth", py, n, n, memQueueMsg), k})
	}

	rep := &report{
		title:   "Memory: idle child, spare, pool worker, queue",
		refName: "itself",
		format:  memDur,
		cols:    []string{"RSS median", "USS median", "PSS ÷ mproc's", "RSS ÷ mproc's"},
		about: fmt.Sprintf("How much memory an mproc process and a queue hold, against Python's `multiprocessing`. "+
			"**RSS** (VmRSS of /proc/PID/status) is every page the process has resident, its own and those it "+
			"shares (the binary's and libraries' code, copy-on-write pages a forked child still shares with its "+
			"parent, shared memory): summed over processes it counts shared pages once per process. **PSS** "+
			"(proportional set size, `Pss` of /proc/PID/smaps_rollup) divides each resident page by the number "+
			"of processes that map it: the fair share, which sums to the real total; it is the table's Median, "+
			"p90 and Mean. **USS** (`Private_Clean` + `Private_Dirty`) is the pages no other process maps: what "+
			"ending the process frees. "+
			"Each process is measured from its parent once its VmRSS has not changed over %d reads %d ms apart. "+
			"mproc idle child: a function registered with `mproc.Register` that sets an `mproc.Event` from its "+
			"argument, closes it and blocks in `<-ctx.Done()`, started with `Start` (this bench binary "+
			"re-executed) and measured after the parent saw the event. mproc spare: `mproc.KeepWarm(1)`, a "+
			"child started ahead of need and blocked reading its control socket before any function; mproc has "+
			"no API for its pid (`Children` does not list spares), so it is the one new child of the bench "+
			"process, found through the parent pid in /proc/*/stat, that `Children` does not list. mproc pool "+
			"worker: `pool.New(ctx, pool.Options{Workers: %d})`, tiny tasks (`os.Getpid()`) submitted two at a "+
			"time until each worker ran one, then each of `p.Workers()` measured (two samples a pool). Python "+
			"(`python/memory.py`): `Process(target=idle)` with the fork and spawn start methods, the child "+
			"saying it runs over a `Pipe()` and blocking on it; `Pool(%d)` with each, a task run on each "+
			"worker, each worker measured. Queues: mproc `NewQueue[[]byte](N, WithMaxMessage(%d))` filled once "+
			"with N `TryPut`s of one %d-byte buffer, measured as its shared-memory segment's entry in "+
			"/proc/self/smaps (only the parent maps it, so PSS = RSS); Python `multiprocessing.Queue(N)` in a "+
			"forked child, filled with N `put`s of fresh %d-byte `bytes` objects, measured as that process's "+
			"growth of VmRSS, PSS and USS from before the `Queue` was made to when its feeder thread stopped "+
			"(pipe full). Samples: at most %d per variant (fewer with a smaller `-n` or `-pyn`), each a fresh "+
			"process, pool or queue.",
			memStableReads, memPollEvery.Milliseconds(), memPoolWorkers, memPoolWorkers, memQueueMsg, memQueueMsg, memQueueMsg, memMaxSamples),
	}
	for _, mr := range rows {
		ms := samples[mr.key]
		d := make([]time.Duration, len(ms))
		for j, m := range ms {
			d[j] = time.Duration(m.pss)
		}
		rw := row{variant: mr.variant, samples: d, ref: len(rep.rows)}
		ratioP, ratioR := "reference", "reference"
		if mr.ref != "" {
			ref := samples[mr.ref]
			ratioP = memRatio(memMedian(ms, func(m memInfo) int64 { return m.pss }), memMedian(ref, func(m memInfo) int64 { return m.pss }))
			ratioR = memRatio(memMedian(ms, func(m memInfo) int64 { return m.rss }), memMedian(ref, func(m memInfo) int64 { return m.rss }))
		}
		rw.cols = []string{memSize(memMedian(ms, func(m memInfo) int64 { return m.rss })),
			memSize(memMedian(ms, func(m memInfo) int64 { return m.uss })), ratioP, ratioR}
		switch {
		case strings.HasPrefix(mr.key, "py ") && c.python == "":
			rw.missing = c.pyMissing
		case pyErr[mr.key] != "":
			rw.missing = pyErr[mr.key]
		case len(ms) == 0:
			rw.missing = "no samples"
		}
		rep.rows = append(rep.rows, rw)
	}

	// Where the processes' RSS is.
	var where strings.Builder
	where.WriteString("Where each process's resident pages are (medians of /proc/PID/status): anonymous (heap, stacks, " +
		"the Go runtime's arenas, Python's objects), file-backed (the binary's and libraries' code and data) and shared " +
		"memory (mproc's segments; Python's semaphores).\n\n" +
		"| Process | RSS | RssAnon | RssFile | RssShmem | USS |\n|---|---:|---:|---:|---:|---:|\n")
	for _, mr := range rows {
		ms := samples[mr.key]
		if len(ms) == 0 || strings.Contains(mr.key, "queue") {
			continue
		}
		med := func(f func(memInfo) int64) string { return memSize(memMedian(ms, f)) }
		fmt.Fprintf(&where, "| %s | %s | %s | %s | %s | %s |\n", mr.variant, med(func(m memInfo) int64 { return m.rss }),
			med(func(m memInfo) int64 { return m.anon }), med(func(m memInfo) int64 { return m.file }),
			med(func(m memInfo) int64 { return m.shmem }), med(func(m memInfo) int64 { return m.uss }))
	}
	// The queues in detail.
	var qt strings.Builder
	qt.WriteString(fmt.Sprintf("Where a queue of N × %d B messages is (medians). mproc: the segment's size (virtual), "+
		"its resident pages right after `NewQueue` and after the fill, and the parent's VmRSS growth over the fill "+
		"(the segment's pages plus anything else). Python: the producer's growth (the `bytes` objects and the "+
		"references its feeder thread has not sent yet, in its heap), how many messages were still in the feeder's "+
		"buffer (a `collections.deque`), and the bytes in the pipe (pickled messages with 4-byte length headers: "+
		"kernel memory, in no process's RSS or PSS).\n\n", memQueueMsg))
	qt.WriteString("| N | mproc segment size | resident, empty | resident, filled | parent VmRSS growth | " +
		"Python growth, RSS | Python growth, PSS | messages in the feeder's buffer | bytes in the pipe |\n" +
		"|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, n := range memQueueSizes {
		k := "queue " + strconv.Itoa(n)
		gs := queues[n]
		med := func(f func(memQueueSample) int64) string {
			if len(gs) == 0 {
				return "–"
			}
			d := make([]time.Duration, len(gs))
			for i, s := range gs {
				d[i] = time.Duration(f(s))
			}
			return memSize(int64(summarize(d).median))
		}
		pm := func(f func(memInfo) int64) string {
			if len(samples["py "+k]) == 0 {
				return "–"
			}
			return memSize(memMedian(samples["py "+k], f))
		}
		pe := func(key string, bytes bool) string {
			v := pyExtra[k+"/"+key]
			if len(v) == 0 {
				return "–"
			}
			d := make([]time.Duration, len(v))
			for i, x := range v {
				d[i] = time.Duration(x)
			}
			m := int64(summarize(d).median)
			if bytes {
				return memSize(m)
			}
			return strconv.FormatInt(m, 10)
		}
		fmt.Fprintf(&qt, "| %d | %s | %s | %s | %s | %s | %s | %s | %s |\n", n,
			med(func(s memQueueSample) int64 { return s.full.size }), med(func(s memQueueSample) int64 { return s.empty.rss }),
			med(func(s memQueueSample) int64 { return s.full.rss }), med(func(s memQueueSample) int64 { return s.growth }),
			pm(func(m memInfo) int64 { return m.rss }), pm(func(m memInfo) int64 { return m.pss }),
			pe("buffered", false), pe("pipe", true))
	}
	rep.tables = []string{where.String(), qt.String()}

	rep.notes = append(rep.notes, memTarget(samples, py))
	rep.notes = append(rep.notes,
		"The Median, p90 and Mean columns are PSS. The harness's \"Median vs\" column compares times, so every row "+
			"here is its own reference there; the ÷ columns compare medians instead: each Python row (and the spare) "+
			"to the mproc row of its group (the idle child, the pool worker, the queue of the same N), as row ÷ mproc.",
		"PSS depends on who else maps the same pages: each Go child here is this bench binary, whose code pages "+
			"it shares with the bench process (and a pool worker with the other worker too); a forked Python child "+
			"shares its parent's pages copy-on-write, and every Python process shares the interpreter's code with "+
			"the others on the machine. Both sides are measured in the same arrangement (parent + one child; "+
			"parent + two workers). USS leaves every shared page out.",
		fmt.Sprintf("Every Go child is this benchmark binary re-executed (%s on disk), with everything linked "+
			"into it for the other workloads (gRPC, protobuf, the codecs) loaded and initialised before "+
			"`mproc.Main` runs: most of a Go child's RSS is file-backed (RssFile above: the binary's pages and the C library's), which every "+
			"copy shares; a program of one's own that links less has smaller children.", memExeSize()),
		"An mproc pool worker maps the pool's shared-memory queues (its RssShmem); those pages are shared "+
			"with the parent and the other worker, so PSS counts a third of them in each.",
		fmt.Sprintf("The mproc queue reserves N slots of its maximum message plus a slot header, rounded to "+
			"cache lines, and its pages become resident as slots are first used: it holds the same memory "+
			"whether its messages are waiting or already taken, until it is closed. Python's `Queue` keeps "+
			"unsent messages as objects in the producer's heap and sent ones in a pipe of the kernel's "+
			"(64 KiB by default), then in the consumer; its N bounds the messages, not the bytes. The "+
			"figures here are the queue alone with no consumer attached, full: %d-byte messages, each put once.%s",
			memQueueMsg, memPerMessage(queues, samples, pyExtra)),
		"A forked Python child shares its parent's heap copy-on-write only until it writes to it: reference "+
			"counts and the cycle collector write to the objects they touch, so a long-lived fork child or "+
			"`Pool` worker unshares pages as it runs (its PSS and USS grow toward its RSS). The fork rows are "+
			"idle processes just started, their best case, and their parent a small script: a larger parent "+
			"makes larger fork children. An mproc child shares the binary's read-only pages and nothing "+
			"copy-on-write; its heap is its own from the start.",
		fmt.Sprintf("Samples: %d per Go variant, %d per Python variant (the pool rows: that many pools, each "+
			"worker of each a sample), over %d round(s): each round the Go variants one after the other, then "+
			"one Python process. Processes whose VmRSS was still changing after %s and were measured anyway: "+
			"%d Go, %d Python.", nGo, nPy, nr, memSettleMax, mm.unsettled, pyUnsettled),
	)
	if c.python == "" {
		rep.notes = append(rep.notes, "**Python variants not run: "+c.pyMissing+".**")
	}
	return rep, nil
}

// memTarget judges the target: an mproc pool worker no larger than a
// Python Pool worker, by PSS medians, against the smaller of Python's
// fork and spawn workers.
func memTarget(samples map[string][]memInfo, py string) string {
	const what = "an mproc pool worker no larger than a Python `Pool` worker (PSS medians; against the smaller of the fork and spawn workers)"
	pss := func(m memInfo) int64 { return m.pss }
	rss := func(m memInfo) int64 { return m.rss }
	uss := func(m memInfo) int64 { return m.uss }
	g, f, s := samples["pool"], samples["py pool fork"], samples["py pool spawn"]
	if len(g) == 0 || len(f)+len(s) == 0 {
		return "Target (issue #17): " + what + " — not judged (no samples)."
	}
	best, name := int64(0), ""
	for _, c := range []struct {
		n  string
		ms []memInfo
	}{{"fork", f}, {"spawn", s}} {
		if len(c.ms) > 0 && (best == 0 || memMedian(c.ms, pss) < best) {
			best, name = memMedian(c.ms, pss), c.n
		}
	}
	gp := memMedian(g, pss)
	verdict := "**met**"
	if gp > best {
		verdict = "**not met**"
	}
	detail := fmt.Sprintf("mproc %s against %s `Pool` %s %s, %s of it", memSize(gp), py, name, memSize(best), memRatio(gp, best))
	var others []string
	for _, c := range []struct {
		n  string
		ms []memInfo
	}{{"fork", f}, {"spawn", s}} {
		if len(c.ms) > 0 {
			others = append(others, fmt.Sprintf("%s PSS %s, RSS %s, USS %s", c.n, memSize(memMedian(c.ms, pss)),
				memSize(memMedian(c.ms, rss)), memSize(memMedian(c.ms, uss))))
		}
	}
	return fmt.Sprintf("Target (issue #17): %s — %s (%s; mproc RSS %s, USS %s; Python %s).", what, verdict, detail,
		memSize(memMedian(g, rss)), memSize(memMedian(g, uss)), strings.Join(others, "; "))
}

// memPerMessage says what one message costs each queue at the largest N:
// the mproc segment's size per slot; Python's heap growth per message
// still in the feeder's buffer and the pipe's bytes per message in it.
func memPerMessage(queues map[int][]memQueueSample, samples map[string][]memInfo, pyExtra map[string][]float64) string {
	n := slices.Max(memQueueSizes)
	k := "queue " + strconv.Itoa(n)
	med := func(v []float64) float64 {
		d := make([]time.Duration, len(v))
		for i, x := range v {
			d[i] = time.Duration(x)
		}
		return float64(summarize(d).median)
	}
	var out []string
	if gs := queues[n]; len(gs) > 0 {
		out = append(out, fmt.Sprintf("mproc: %.0f B a slot (the segment's size ÷ N)", float64(gs[0].full.size)/float64(n)))
	}
	if ps, buf, pipe := samples["py "+k], pyExtra[k+"/buffered"], pyExtra[k+"/pipe"]; len(ps) > 0 && len(buf) > 0 && len(pipe) > 0 {
		b := med(buf)
		growth := float64(memMedian(ps, func(m memInfo) int64 { return m.rss }))
		if b > 0 {
			out = append(out, fmt.Sprintf("Python: %.0f B of the producer's RSS a message still in its buffer (growth ÷ buffered)", growth/b))
		}
		if sent := float64(n) - b; sent > 0 {
			out = append(out, fmt.Sprintf("%.0f B a message in the pipe (bytes ÷ the %.0f messages sent)", med(pipe)/sent, sent))
		}
	}
	if len(out) == 0 {
		return ""
	}
	return fmt.Sprintf(" At N = %d: %s.", n, strings.Join(out, "; "))
}

// memExeSize is the size of this binary on disk.
func memExeSize() string {
	fi, err := os.Stat("/proc/self/exe")
	if err != nil {
		return "size unknown: " + err.Error()
	}
	return memSize(fi.Size())
}
