package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"mproc/manager"
)

// The manager workload (issue #13): a shared dict served by a manager in
// another process, d[k] = v then d[k] as one op, for each pairing of a Go
// or Python client with a Go (package manager) or Python
// (multiprocessing.Manager) server over Unix sockets, the Go pair also on
// the shared-memory path and over loopback TCP.

func init() {
	addWorkload(workload{name: "manager", about: "Shared dict through a manager server: d[k] = v + d[k], Go/Python client × Go/Python server", run: managerWorkload})
}

const (
	mgrBatch  = 100 // ops (one set + one get) per sample
	mgrWarmup = 1   // uncounted batches per variant and round
	mgrKeys   = 8   // the keys "k0" ... "k7", used in turn
)

// The rows' keys, in the table's order; the first is the reference.
const (
	mgrGoGoShm = "go-go-shm" // Go client → Go server, shared-memory path
	mgrGoGo    = "go-go"     // Go client → Go server, Unix socket only
	mgrGoGoTCP = "go-go-tcp" // Go client → Go server, loopback TCP
	mgrPyPy    = "py-py"     // Python client → Python server
	mgrPyGo    = "py-go"     // Python client → Go server
	mgrGoPy    = "go-py"     // Go client → Python server
)

// mgrOps runs mgrWarmup + n batches of mgrBatch ops on d, each a Set and a
// Get whose value is checked, and returns the n counted batches' time per
// op. Keys and values are those of python/manager.py.
func mgrOps(ctx context.Context, d *manager.Dict[string, int64], n int) ([]time.Duration, error) {
	var keys [mgrKeys]string
	for i := range keys {
		keys[i] = "k" + strconv.Itoa(i)
	}
	out := make([]time.Duration, 0, n)
	for b := range mgrWarmup + n {
		base := b * mgrBatch
		t0 := time.Now()
		for i := range mgrBatch {
			k, v := keys[i%mgrKeys], int64((base+i)%100)
			if err := d.Set(ctx, k, v); err != nil {
				return nil, fmt.Errorf("d[%q] = %d: %w", k, v, err)
			}
			got, err := d.Get(ctx, k)
			if err != nil {
				return nil, fmt.Errorf("d[%q]: %w", k, err)
			}
			if got != v {
				return nil, fmt.Errorf("d[%q] is %d, want %d", k, got, v)
			}
		}
		t := time.Since(t0)
		if b >= mgrWarmup {
			out = append(out, perOp(t, mgrBatch))
		}
	}
	return out, nil
}

// mgrGoClient dials the manager at addr from this process, creates a dict
// there and runs mgrOps on it; the dict is dropped afterwards.
func mgrGoClient(ctx context.Context, network, addr string, key []byte, opts *manager.DialOptions, n int) (samples []time.Duration, err error) {
	c, err := manager.Dial(ctx, network, addr, key, opts)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	d, err := manager.NewDict[string, int64](ctx, c)
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := d.Close(ctx); err == nil && cerr != nil {
			err = fmt.Errorf("drop the dict: %w", cerr)
		}
	}()
	return mgrOps(ctx, d, n)
}

// mgrGoServer starts a Go manager server in an mproc child (manager.Start,
// on a new Unix socket unless opts say otherwise), runs client against it
// and shuts it down.
func mgrGoServer(ctx context.Context, opts manager.StartOptions, client func(ctx context.Context, srv *manager.Process) ([]time.Duration, error)) (samples []time.Duration, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	srv, err := manager.Start(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		if serr := srv.Shutdown(sctx); err == nil && serr != nil {
			err = fmt.Errorf("shut the Go server down: %w", serr)
		}
	}()
	return client(ctx, srv)
}

// mgrPyServer runs `python3 manager.py server`, a multiprocessing.Manager()
// whose server is a child of the script, runs client against it, and
// ends it by closing the script's standard input. It returns the
// script's Python version too.
func mgrPyServer(ctx context.Context, c *config, client func(ctx context.Context, network, addr string, key []byte) ([]time.Duration, error)) (samples []time.Duration, version string, err error) {
	src, err := pyScripts.ReadFile("python/manager.py")
	if err != nil {
		return nil, "", err
	}
	dir, err := os.MkdirTemp("", "mproc-bench-")
	if err != nil {
		return nil, "", err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "manager.py")
	if err := os.WriteFile(path, src, 0o600); err != nil {
		return nil, "", err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.python, path, "server")
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	// The manager's server process shares the script's stderr; should it
	// outlive the script, Wait stops waiting for it after this.
	cmd.WaitDelay = 5 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, "", err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	defer func() {
		stdin.Close() // the script shuts its manager down and exits
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var werr error
		select {
		case werr = <-done:
		case <-time.After(10 * time.Second):
			cancel() // kills the script
			werr = fmt.Errorf("did not end within 10 s of its input's end: %v", <-done)
		}
		if err == nil && werr != nil {
			err = fmt.Errorf("python3 manager.py server: %v: %s", werr, strings.TrimSpace(stderr.String()))
		}
	}()
	line, rerr := bufio.NewReader(stdout).ReadBytes('\n')
	var hello struct{ Python, Address, Key string }
	if rerr != nil {
		return nil, "", fmt.Errorf("python3 manager.py server: no address (%v)", rerr)
	}
	if err := json.Unmarshal(line, &hello); err != nil {
		return nil, "", fmt.Errorf("python3 manager.py server: %q: %w", line, err)
	}
	key, err := hex.DecodeString(hello.Key)
	if err != nil {
		return nil, "", fmt.Errorf("python3 manager.py server: key %q: %w", hello.Key, err)
	}
	go io.Copy(io.Discard, stdout) // nothing more is expected
	samples, err = client(ctx, "unix", hello.Address, key)
	return samples, hello.Python, err
}

// mgrPython runs `python3 manager.py MODE ...` for the Python client rows
// and returns the variant's samples, or a *notRun with the script's
// reason.
func mgrPython(ctx context.Context, c *config, name string, n int, version *string, args ...string) ([]time.Duration, error) {
	args = append(args, "-n", strconv.Itoa(n), "--warmup", strconv.Itoa(mgrWarmup), "--batch", strconv.Itoa(mgrBatch))
	res, err := runPython(ctx, c, "manager.py", args...)
	if err != nil {
		return nil, err
	}
	*version = res.Python
	if e := res.Errors[name]; e != "" {
		return nil, &notRun{e}
	}
	s, ok := res.Samples[name]
	if !ok {
		return nil, errors.New("python3 manager.py: no samples for " + name)
	}
	return seconds(s), nil
}

func managerWorkload(ctx context.Context, c *config) (*report, error) {
	samples := map[string][]time.Duration{}
	missing := map[string]string{}
	if c.python == "" {
		for _, k := range []string{mgrPyPy, mgrPyGo, mgrGoPy} {
			missing[k] = c.pyMissing
		}
	}
	pyVersion := ""
	goRounds, pyRounds := split(c.n, c.rounds), split(c.pyN, c.rounds)
	nr := max(len(goRounds), len(pyRounds))
	for r := range nr {
		fmt.Fprintf(c.log, "bench: manager: round %d/%d\n", r+1, nr)
		var steps []step
		if r < len(goRounds) {
			n := goRounds[r]
			goGo := func(start manager.StartOptions, dial *manager.DialOptions) func() ([]time.Duration, error) {
				return func() ([]time.Duration, error) {
					return mgrGoServer(ctx, start, func(ctx context.Context, srv *manager.Process) ([]time.Duration, error) {
						return mgrGoClient(ctx, srv.Network, srv.Addr, srv.Key, dial, n)
					})
				}
			}
			steps = append(steps,
				step{mgrGoGoShm, goGo(manager.StartOptions{}, nil)},
				step{mgrGoGo, goGo(manager.StartOptions{}, &manager.DialOptions{SocketOnly: true})},
				step{mgrGoGoTCP, goGo(manager.StartOptions{Network: "tcp", Addr: "127.0.0.1:0"}, nil)},
				step{mgrGoPy, func() ([]time.Duration, error) {
					s, v, err := mgrPyServer(ctx, c, func(ctx context.Context, network, addr string, key []byte) ([]time.Duration, error) {
						return mgrGoClient(ctx, network, addr, key, nil, n)
					})
					if v != "" {
						pyVersion = v
					}
					return s, err
				}},
			)
		}
		if r < len(pyRounds) {
			n := pyRounds[r]
			steps = append(steps,
				step{mgrPyPy, func() ([]time.Duration, error) {
					return mgrPython(ctx, c, mgrPyPy, n, &pyVersion, "local")
				}},
				step{mgrPyGo, func() ([]time.Duration, error) {
					return mgrGoServer(ctx, manager.StartOptions{}, func(ctx context.Context, srv *manager.Process) ([]time.Duration, error) {
						return mgrPython(ctx, c, mgrPyGo, n, &pyVersion, "client", "--address", srv.Addr, "--key", hex.EncodeToString(srv.Key))
					})
				}},
			)
		}
		if err := runRound(r, steps, samples, missing); err != nil {
			return nil, err
		}
	}

	py := "Python"
	if pyVersion != "" {
		py = "Python " + pyVersion
	}
	rep := &report{
		title:   "Manager",
		refName: "Go → Go, shared memory",
		format:  humanDuration,
		about: fmt.Sprintf("A shared dict served by a manager server in another process, over a Unix "+
			"socket (and for Go → Go also the shared-memory path and loopback TCP): one op is `d[k] = v` followed by `d[k]` (one set and one get, two request/reply "+
			"exchanges, the value checked), k a short str (\"k0\" … \"k%d\", in turn), v a small int "+
			"(0 … 99). A sample is a batch of %d ops, timed together and divided by %d. **Go → Go**: "+
			"`manager.Start(ctx, manager.StartOptions{})` runs the server in an mproc child; the bench "+
			"process, its parent, is the client: `manager.Dial`, `manager.NewDict[string, int64]`, "+
			"`d.Set(ctx, k, v)` and `d.Get(ctx, k)`; by default the client moves its connection's calls "+
			"to a pair of shared-memory queues after the handshake (*shared memory*), with "+
			"`DialOptions{SocketOnly: true}` it keeps them on the socket (*Unix socket*), and against "+
			"`StartOptions{Network: \"tcp\", Addr: \"127.0.0.1:0\"}` they go over loopback TCP. **Python → Python**: `d = multiprocessing.Manager().dict()`, "+
			"`d[k] = v` and `d[k]` in the script's main process; `Manager()` runs its server "+
			"(a `SyncManager`) in a child process (start method: the default, fork on Linux before "+
			"Python 3.14). **Python → Go**: an unmodified `SyncManager(address=path, authkey=key).connect()` "+
			"client and `m.dict()`, in a Python process the bench starts, against a server of "+
			"`manager.Start` (a child of the bench); the script gets the socket's path and the hex "+
			"authkey on its command line. **Go → Python**: the bench process as the Go client above, "+
			"against the server of a `multiprocessing.Manager()` that a Python script starts (a child "+
			"of the script) and whose address and authkey it prints. Python times itself with "+
			"`time.perf_counter`. No process is pinned.", mgrKeys-1, mgrBatch, mgrBatch),
	}
	for _, v := range []struct{ key, variant string }{
		{mgrGoGoShm, "Go client → Go server (`manager.Start`), shared memory"},
		{mgrGoGo, "Go client → Go server (`manager.Start`), Unix socket"},
		{mgrGoGoTCP, "Go client → Go server (`manager.Start`), loopback TCP"},
		{mgrPyPy, "PY client → PY server (`multiprocessing.Manager()`)"},
		{mgrPyGo, "PY client (`SyncManager.connect()`) → Go server (`manager.Start`)"},
		{mgrGoPy, "Go client (`manager.Dial`) → PY server (`multiprocessing.Manager()`)"},
	} {
		rw := row{variant: strings.ReplaceAll(v.variant, "PY", py), samples: samples[v.key]}
		switch {
		case missing[v.key] != "":
			rw.missing = missing[v.key]
		case len(rw.samples) == 0:
			rw.missing = "no samples"
		}
		rep.rows = append(rep.rows, rw)
	}
	rep.notes = mgrTargets(samples)
	rep.notes = append(rep.notes,
		"Every row is compared to the Go → Go shared-memory row. "+mgrSwaps(samples),
		fmt.Sprintf("Samples are batches of %d ops: %d per Go-client row, %d per Python-client row, split "+
			"into %d round(s). In each round every row starts its server anew, and its client runs its "+
			"share after %d uncounted batch(es); the rows run one after the other, in an order that "+
			"rotates from round to round. Server start-up and shutdown are not timed.",
			mgrBatch, c.n, c.pyN, nr, mgrWarmup),
		"No process is pinned: a row's client and server share one CPU or run on two, as the "+
			"scheduler places them, which moves a socket exchange's cost on this machine (the conn "+
			"workload's pinned round trips show by how much); medians within a few percent of each "+
			"other are a tie within that noise.",
		"The Go client passes one cancellable context to every call and keeps its accepted "+
			"connection between calls (as Python's proxy keeps its thread's connection); every call "+
			"pickles its request and unpickles its reply, as Python's does.",
	)
	if c.python == "" {
		rep.notes = append(rep.notes, "**Python variants not run: "+c.pyMissing+".**")
	}
	return rep, nil
}

// mgrTargets judges the Go → Go rows against issue #13's targets.
func mgrTargets(samples map[string][]time.Duration) []string {
	pp := summarize(samples[mgrPyPy])
	judge := func(key, what string, factor float64) string {
		g := summarize(samples[key])
		if g.n == 0 || pp.n == 0 {
			return what + " — not judged (no samples)."
		}
		verdict := "**not met**"
		if float64(g.median) <= factor*float64(pp.median) {
			verdict = "**met**"
		}
		return fmt.Sprintf("%s — %s (median %s against %s, %.2f×).", what, verdict,
			humanDuration(g.median), humanDuration(pp.median), float64(g.median)/float64(pp.median))
	}
	return []string{
		judge(mgrGoGo, "Target (issue #13): the Unix-socket path no slower than Python's, Go client → Go server (Unix socket) median ≤ Python client → Python server median", 1),
		judge(mgrGoGoShm, "Target (issue #13): the shared-memory path ≤ 0.2× Python's, Go client → Go server (shared memory) median ≤ 0.2 × Python client → Python server median", 0.2),
	}
}

// mgrSwaps says what changing one side alone does: each mixed row against
// the Python → Python row.
func mgrSwaps(samples map[string][]time.Duration) string {
	pp := summarize(samples[mgrPyPy])
	var parts []string
	for _, s := range []struct{ key, what string }{
		{mgrPyGo, "a Go server under the Python client"},
		{mgrGoPy, "a Go client against the Python server"},
	} {
		m := summarize(samples[s.key])
		if m.n == 0 || pp.n == 0 {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s takes %.2f× the Python → Python median", s.what, float64(m.median)/float64(pp.median)))
	}
	if len(parts) == 0 {
		return ""
	}
	return "Changing one side only: " + strings.Join(parts, "; ") + "."
}
