// Command clusterbench measures mproc/cluster against the local
// alternatives and prints a markdown section for BENCHMARKS.md: the
// embedded server's start, 64 B and 64 KiB messages through
// cluster.Queue (an embedded server, in-process connection) against
// mproc.Queue (shared memory) and Python's multiprocessing.Queue, and
// tiny tasks through cluster.Pool against pool.Pool.
//
// Usage (never under -race):
//
//	go run ./cmd/clusterbench [-rounds 3] > section.md
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"mproc"
	"mproc/cluster"
	"mproc/pool"
)

var (
	localDouble   = pool.Register("clusterbench.double", func(ctx context.Context, x int) (int, error) { return 2 * x, nil })
	clusterDouble = cluster.Register("clusterbench.double", func(ctx context.Context, x int) (int, error) { return 2 * x, nil })
)

func main() {
	mproc.Main() // pool.Pool's workers run here
	ctx := context.Background()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "clusterbench:", err)
		os.Exit(1)
	}
}

type config struct {
	rounds int
	log    io.Writer
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("clusterbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rounds := fs.Int("rounds", 3, "rounds per variant; the median is shown")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := config{rounds: *rounds, log: stderr}
	start, err := startTimes(ctx, cfg)
	if err != nil {
		return err
	}
	queues, err := queueTimes(ctx, cfg)
	if err != nil {
		return err
	}
	pools, err := poolTimes(ctx, cfg)
	if err != nil {
		return err
	}
	w := stdout
	fmt.Fprintf(w, "## NATS cluster backend (`cluster/`)\n\n")
	fmt.Fprintf(w, "`go run ./cmd/clusterbench` in `cluster/`: %s, %d CPUs, %s, nats-server v2.15.3 embedded, nats.go v1.56.0; median of %d rounds.\n\n",
		runtime.Version(), runtime.NumCPU(), pythonVersion(), cfg.rounds)
	fmt.Fprintf(w, "**Embedded server start**: `cluster.Connect` until it returns a connection whose JetStream answered, then `Close` (server shut down, temporary store removed); median of 20.\n\n")
	fmt.Fprintf(w, "| server | start + connect | close |\n| --- | --- | --- |\n")
	for _, s := range start {
		fmt.Fprintf(w, "| %s | %s | %s |\n", s.name, ms(s.start), ms(s.close))
	}
	fmt.Fprintf(w, "\n**Queue, one producer and one consumer**: the producer puts N messages, the consumer gets each (cluster: `Get` + `TaskDone`, which waits for the server to confirm the ack); time per message from the first put to the last get. cluster.Queue: an embedded server, both goroutines of one process on its in-process connection, capacity 1024. mproc.Queue: `NewQueue[[]byte](1024, WithMaxMessage(size))`, both goroutines of one process. Python: `multiprocessing.Queue(1024)` (fork), a producer process and the main process getting.\n\n")
	fmt.Fprintf(w, "| message | cluster.Queue, file storage | cluster.Queue, memory storage | mproc.Queue (shared memory) | Python multiprocessing.Queue |\n| --- | --- | --- | --- | --- |\n")
	for _, q := range queues {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", q.size, perMsg(q.file, q.bytes), perMsg(q.mem, q.bytes), perMsg(q.local, q.bytes), perMsg(q.python, q.bytes))
	}
	fmt.Fprintf(w, "\n**Pool, tiny tasks** (`x → 2x`): %d tasks submitted one by one, then every result awaited; and one `Map` of %d. cluster.Pool: an embedded server, `Serve` with 2 workers in the same process. pool.Pool: `pool.New` with 2 worker processes.\n\n", poolTasks, poolMap)
	fmt.Fprintf(w, "| workload | cluster.Pool | pool.Pool (local processes) |\n| --- | --- | --- |\n")
	fmt.Fprintf(w, "| Submit + Result, per task | %s | %s |\n", us(pools.clusterSubmit/poolTasks), us(pools.localSubmit/poolTasks))
	fmt.Fprintf(w, "| Map of %d (default chunks), per element | %s | %s |\n", poolMap, us(pools.clusterMap/poolMap), us(pools.localMap/poolMap))
	fmt.Fprintf(w, "\nNotes: every cluster.Queue `Get` is a pull request and its reply, and every `TaskDone` an ack the server confirms (at least once: the message is never lost to a crash, and never redelivered after `TaskDone` returns); a cluster.Pool task is an asynchronous publish, a worker's pull request and its reply, a result publish (asynchronous, the next pull goes on meanwhile), the task's ack, and the result's delivery and ack. The local queue and pool move bytes through shared memory without a server. Figures from one run on a shared 2-CPU machine.\n")
	return nil
}

type startTime struct {
	name         string
	start, close time.Duration
}

func startTimes(ctx context.Context, cfg config) ([]startTime, error) {
	var out []startTime
	for _, v := range []struct{ name, listen string }{
		{"in-process connection, no listener (the default)", ""},
		{"loopback listener (`Listen: \"127.0.0.1:0\"`), in-process connection", "127.0.0.1:0"},
	} {
		var starts, closes []time.Duration
		for range 20 {
			t0 := time.Now()
			c, err := cluster.Connect(ctx, cluster.Options{Listen: v.listen})
			if err != nil {
				return nil, err
			}
			t1 := time.Now()
			c.Close()
			starts, closes = append(starts, t1.Sub(t0)), append(closes, time.Since(t1))
		}
		out = append(out, startTime{v.name, median(starts), median(closes)})
		fmt.Fprintf(cfg.log, "clusterbench: start %s: %v\n", v.name, median(starts))
	}
	return out, nil
}

type queueRow struct {
	size                     string
	bytes                    int
	file, mem, local, python time.Duration // per message; 0: not run
}

func queueTimes(ctx context.Context, cfg config) ([]queueRow, error) {
	var rows []queueRow
	for _, s := range []struct {
		name     string
		bytes, n int
	}{{"64 B", 64, 3000}, {"64 KiB", 64 << 10, 1000}} {
		r := queueRow{size: s.name, bytes: s.bytes}
		var err error
		if r.file, err = rounds(cfg, func() (time.Duration, error) { return clusterQueue(ctx, s.bytes, s.n, false) }); err != nil {
			return nil, err
		}
		if r.mem, err = rounds(cfg, func() (time.Duration, error) { return clusterQueue(ctx, s.bytes, s.n, true) }); err != nil {
			return nil, err
		}
		if r.local, err = rounds(cfg, func() (time.Duration, error) { return localQueue(ctx, s.bytes, 20*s.n) }); err != nil {
			return nil, err
		}
		if r.python, err = rounds(cfg, func() (time.Duration, error) { return pythonQueue(s.bytes, 5*s.n) }); err != nil {
			fmt.Fprintf(cfg.log, "clusterbench: python: %v (not run)\n", err)
			r.python = 0
		}
		fmt.Fprintf(cfg.log, "clusterbench: queue %s: cluster file %v, memory %v, mproc %v, python %v per message\n", s.name, r.file, r.mem, r.local, r.python)
		rows = append(rows, r)
	}
	return rows, nil
}

// rounds runs f cfg.rounds times and returns the median.
func rounds(cfg config, f func() (time.Duration, error)) (time.Duration, error) {
	var ds []time.Duration
	for range cfg.rounds {
		d, err := f()
		if err != nil {
			return 0, err
		}
		ds = append(ds, d)
	}
	return median(ds), nil
}

func clusterQueue(ctx context.Context, size, n int, memory bool) (time.Duration, error) {
	c, err := cluster.Connect(ctx, cluster.Options{})
	if err != nil {
		return 0, err
	}
	defer c.Close()
	q, err := cluster.CreateQueue[[]byte](ctx, c, "bench", 1024, cluster.QueueOptions{Storage: cluster.Storage{Memory: memory}})
	if err != nil {
		return 0, err
	}
	defer q.Close()
	return pump(ctx, size, n, q.Put, func(ctx context.Context) ([]byte, error) {
		b, err := q.Get(ctx)
		if err == nil {
			err = q.TaskDone(ctx)
		}
		return b, err
	})
}

func localQueue(ctx context.Context, size, n int) (time.Duration, error) {
	q, err := mproc.NewQueue[[]byte](1024, mproc.WithMaxMessage(size))
	if err != nil {
		return 0, err
	}
	defer q.Close()
	return pump(ctx, size, n, q.Put, q.Get)
}

// pump puts n messages of size bytes in one goroutine and gets them in
// this one, and returns the time per message.
func pump(ctx context.Context, size, n int, put func(context.Context, []byte) error, get func(context.Context) ([]byte, error)) (time.Duration, error) {
	msg := make([]byte, size)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	errc := make(chan error, 1)
	go func() {
		for range n {
			if err := put(ctx, msg); err != nil {
				errc <- err
				cancel() // the getter stops too
				return
			}
		}
		errc <- nil
	}()
	for range n {
		b, err := get(ctx)
		if err != nil {
			cancel()
			if perr := <-errc; perr != nil && !errors.Is(perr, context.Canceled) {
				return 0, perr
			}
			return 0, err
		}
		if len(b) != size {
			return 0, fmt.Errorf("got %d bytes, want %d", len(b), size)
		}
	}
	el := time.Since(start)
	return el / time.Duration(n), <-errc
}

// pythonScript: a producer process puts n messages of size bytes into a
// multiprocessing.Queue; the main process gets them, timed from the
// first get (the child's start excluded) to the last.
const pythonScript = `
import multiprocessing as mp, sys, time
def produce(q, n, size):
    b = b'x' * size
    for _ in range(n):
        q.put(b)
n, size = int(sys.argv[1]), int(sys.argv[2])
ctx = mp.get_context('fork')
q = ctx.Queue(1024)
p = ctx.Process(target=produce, args=(q, n + 1, size))
p.start()
q.get()
t = time.perf_counter()
for _ in range(n):
    assert len(q.get()) == size
el = time.perf_counter() - t
p.join()
print(int(el / n * 1e9))
`

func pythonQueue(size, n int) (time.Duration, error) {
	out, err := exec.Command("python3", "-c", pythonScript, strconv.Itoa(n), strconv.Itoa(size)).Output()
	if err != nil {
		return 0, fmt.Errorf("python3: %w", err)
	}
	ns, err := strconv.Atoi(strings.TrimSpace(string(out)))
	return time.Duration(ns), err
}

func pythonVersion() string {
	out, err := exec.Command("python3", "-c", "import sys; print('Python %d.%d.%d' % sys.version_info[:3])").Output()
	if err != nil {
		return "no python3"
	}
	return strings.TrimSpace(string(out))
}

const (
	poolTasks = 2000
	poolMap   = 10000
)

type poolResult struct {
	clusterSubmit, clusterMap, localSubmit, localMap time.Duration
}

func poolTimes(ctx context.Context, cfg config) (poolResult, error) {
	var r poolResult
	xs := make([]int, poolMap)
	for i := range xs {
		xs[i] = i
	}
	// cluster.Pool
	c, err := cluster.Connect(ctx, cluster.Options{})
	if err != nil {
		return r, err
	}
	defer c.Close()
	sctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { cluster.Serve(sctx, c, cluster.ServeOptions{Pool: "bench", Workers: 2}) })
	defer func() { stop(); wg.Wait() }()
	cp, err := cluster.OpenPool(ctx, c, "bench", cluster.PoolOptions{})
	if err != nil {
		return r, err
	}
	defer cp.Terminate()
	r.clusterSubmit, err = rounds(cfg, func() (time.Duration, error) {
		start := time.Now()
		fs := make([]*cluster.Future[int], poolTasks)
		for i := range fs {
			fs[i] = clusterDouble.Submit(cp, i)
		}
		for i, f := range fs {
			if v, err := f.Result(ctx); err != nil || v != 2*i {
				return 0, fmt.Errorf("cluster task %d: %d, %v", i, v, err)
			}
		}
		return time.Since(start), nil
	})
	if err != nil {
		return r, err
	}
	r.clusterMap, err = rounds(cfg, func() (time.Duration, error) {
		start := time.Now()
		_, err := clusterDouble.Map(ctx, cp, xs)
		return time.Since(start), err
	})
	if err != nil {
		return r, err
	}
	// pool.Pool
	lp, err := pool.New(ctx, pool.Options{Workers: 2})
	if err != nil {
		return r, err
	}
	defer func() { lp.Close(); lp.Wait(ctx) }()
	r.localSubmit, err = rounds(cfg, func() (time.Duration, error) {
		start := time.Now()
		fs := make([]*pool.Future[int], poolTasks)
		for i := range fs {
			fs[i] = localDouble.Submit(lp, i)
		}
		for i, f := range fs {
			if v, err := f.Result(ctx); err != nil || v != 2*i {
				return 0, fmt.Errorf("local task %d: %d, %v", i, v, err)
			}
		}
		return time.Since(start), nil
	})
	if err != nil {
		return r, err
	}
	r.localMap, err = rounds(cfg, func() (time.Duration, error) {
		start := time.Now()
		_, err := localDouble.Map(ctx, lp, xs)
		return time.Since(start), err
	})
	fmt.Fprintf(cfg.log, "clusterbench: pool: %+v\n", r)
	return r, err
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }

func us(d time.Duration) string { return fmt.Sprintf("%.1f µs", float64(d)/1e3) }

// perMsg shows a time per message with its rate.
func perMsg(d time.Duration, bytes int) string {
	if d <= 0 {
		return "not run"
	}
	rate := 1e9 / float64(d)
	if bytes < 1024 {
		return fmt.Sprintf("%s (%.0f k msgs/s)", us(d), rate/1e3)
	}
	return fmt.Sprintf("%s (%.0f MB/s)", us(d), rate*float64(bytes)/1e6)
}
