package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"mproc"
	"mproc/posixmq"
)

// TestMain is the children's entry point too: the mproc child and the exec
// baseline re-execute the test binary.
func TestMain(m *testing.M) {
	mproc.Main()
	exitIfBaselineChild()
	os.Exit(m.Run())
}

// TestProcessPlumbing runs the process workload at tiny N through run, as
// go run ./bench does, twice into one file. It checks the plumbing only:
// every variant has samples, and the file keeps foreign text and one copy
// of each section. It asserts nothing about timings.
func TestProcessPlumbing(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Fatal("python3 is not in PATH; it is on every machine this project runs on:", err)
	}
	out := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	const foreign = "<!-- bench:other -->\nkept\n<!-- /bench:other -->"
	if err := os.WriteFile(out, []byte("# mine\n\n"+foreign+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), []string{"-n", "3", "-pyn", "1", "-rounds", "2", "-out", out, "process"}, &stdout, &stderr)
		if err != nil {
			t.Fatalf("run: %v\nstderr:\n%s", err, stderr.String())
		}
		if strings.Contains(stdout.String(), "not run") {
			t.Errorf("a variant did not run:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
		}
		for _, want := range []string{"| mproc `Start` + `Wait` | 3 |", "| Go `exec.Command(self).Run()` | 3 |", "multiprocessing` fork | 1 |",
			"multiprocessing` spawn | 1 |", "multiprocessing` forkserver | 1 |", "Target (issue #3)",
			"Target (issue #17): mproc `Start` + `Wait`, cold, median ≤ 1.1× Go's"} {
			if !strings.Contains(stdout.String(), want) {
				t.Errorf("output lacks %q:\n%s", want, stdout.String())
			}
		}
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	if !strings.HasPrefix(doc, "# mine\n") || !strings.Contains(doc, foreign) {
		t.Errorf("foreign text lost:\n%s", doc)
	}
	for _, m := range []string{"<!-- bench:machine -->", "<!-- /bench:machine -->", "<!-- bench:process -->", "<!-- /bench:process -->"} {
		if n := strings.Count(doc, m); n != 1 {
			t.Errorf("%s appears %d times, want 1:\n%s", m, n, doc)
		}
	}
}

// TestNewFile checks that a missing BENCHMARKS.md is created with its header.
func TestNewFile(t *testing.T) {
	out := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	if err := writeSections(out, section{"process", "body"}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if doc := string(b); !strings.HasPrefix(doc, fileHeader) || !strings.HasSuffix(doc, "<!-- bench:process -->\nbody\n<!-- /bench:process -->\n") {
		t.Errorf("new file:\n%s", doc)
	}
}

// TestSyncPlumbing runs the lock and event workloads at tiny N, printing
// only. Every row must have its samples, or say "not run" for the one
// reason this machine may lack (no taskset, no cc). It asserts nothing
// about timings.
func TestSyncPlumbing(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Fatal("python3 is not in PATH; it is on every machine this project runs on:", err)
	}
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"-n", "2", "-pyn", "1", "-rounds", "1", "-out", "", "lock", "event"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\nstderr:\n%s", err, stderr.String())
	}
	out := stdout.String()
	_, noTaskset := exec.LookPath("taskset")
	_, noCC := exec.LookPath("cc")
	rows := []wantRow{
		{"| mproc `Lock`+`Unlock`, uncontended |", "2", nil, ""},
		{"| Go `sync.Mutex`, uncontended |", "2", nil, ""},
		{"`multiprocessing.Lock`, uncontended |", "1", nil, ""},
		{"| mproc `Lock`+`Unlock`, 2 processes |", "2", nil, ""},
		{"| Go `sync.Mutex`, 2 goroutines |", "2", nil, ""},
		{"`multiprocessing.Lock`, 2 processes |", "1", nil, ""},
		{"| mproc `Event`, one CPU |", "2", noTaskset, ""},
		{"| floor: C futex wait/wake, one CPU |", "2", noCC, ""},
		{"| Go Unix socket, 1 byte each way, one CPU |", "2", noTaskset, ""},
		{"`multiprocessing.Event`, one CPU |", "1", nil, ""},
		{"| mproc `Event`, two CPUs |", "2", noTaskset, ""},
		{"| floor: C futex wait/wake, two CPUs |", "2", noCC, ""},
		{"| Go Unix socket, 1 byte each way, two CPUs |", "2", noTaskset, ""},
		{"`multiprocessing.Event`, two CPUs |", "1", nil, ""},
	}
	checkRows(t, out, rows)
	for _, want := range []string{"Target (issue #4): mproc `Lock`+`Unlock`, uncontended", "Target (issue #4): mproc contended",
		"Target (issue #4): mproc `Event`, one CPU", "Stretch goal (issue #4)", "changed hands"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s\nstderr:\n%s", out, stderr.String())
	}
}

// TestQueuePlumbing runs the queue workload at tiny N, printing only.
// Every row must have its samples, or say "not run" for a reason this
// machine may have (no taskset, no cc, a socket buffer limit too low for
// a 1 MiB SOCK_SEQPACKET record). It asserts nothing about timings.
func TestQueuePlumbing(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Fatal("python3 is not in PATH; it is on every machine this project runs on:", err)
	}
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"-n", "2", "-pyn", "1", "-rounds", "1", "-out", "", "queue"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\nstderr:\n%s", err, stderr.String())
	}
	out := stdout.String()
	_, noTaskset := exec.LookPath("taskset")
	_, noCC := exec.LookPath("cc")
	var rows []wantRow
	for _, size := range []string{"64 B", "64 KiB", "1 MiB"} {
		rows = append(rows,
			wantRow{"| mproc `Queue[[]byte]`, " + size + " |", "2", nil, ""},
			wantRow{"| mproc `Queue[[]byte]` `PutFunc`/`GetFunc`, copying in and out of reused buffers, " + size + " |", "2", nil, ""},
			wantRow{"| mproc `Queue[[]byte]` `Put`/`GetAppend`, appending to a reused buffer, " + size + " |", "2", nil, ""},
			wantRow{"| floor: C spinning ring, two CPUs, " + size + " |", "2", noCC, ""},
			wantRow{"| floor: C ring with mproc's MPMC slot protocol, two CPUs, " + size + " |", "2", noCC, ""},
			wantRow{"| Go channel, one process, " + size + " |", "2", nil, ""},
			wantRow{"| Go Unix stream socketpair, " + size + " |", "2", nil, ""},
			wantRow{"| Go `SOCK_SEQPACKET` socketpair, " + size + " |", "2", nil, "must fit the socket buffer"},
			wantRow{"| Go `os.Pipe`, " + size + " |", "2", nil, ""},
			wantRow{"`multiprocessing.Queue`, " + size + " |", "1", nil, ""},
			wantRow{"`multiprocessing.SimpleQueue`, " + size + " |", "1", nil, ""},
			wantRow{"`multiprocessing.Pipe`, " + size + " |", "1", nil, ""},
		)
	}
	for _, pl := range []string{"one CPU", "two CPUs"} {
		rows = append(rows,
			wantRow{"| mproc `Queue[[]byte]` round trip, 64 B, " + pl + " |", "2", noTaskset, ""},
			wantRow{"| floor: C futex wait/wake round trip, no message, " + pl + " |", "2", noCC, ""},
			wantRow{"| Go Unix stream socketpair round trip, 64 B, " + pl + " |", "2", noTaskset, ""},
			wantRow{"`multiprocessing.Queue` round trip, 64 B, " + pl + " |", "1", nil, ""},
		)
	}
	for _, sh := range []string{"2×2", "4×4"} {
		rows = append(rows,
			wantRow{"| mproc `Queue[[]byte]`, " + sh + " processes, 64 B |", "2", nil, ""},
			wantRow{"| Go channel, " + sh + " goroutines, 64 B |", "2", nil, ""},
			wantRow{"`multiprocessing.Queue`, " + sh + " processes, 64 B |", "1", nil, ""},
		)
	}
	checkRows(t, out, rows)
	for _, want := range []string{"Target (issue #5): mproc `Queue`, 1 → 1, 64 B", "Target (issue #5): mproc `Queue`, 1 → 1, 1 MiB",
		"Target (issue #5): mproc `Queue` round trip, 64 B, one CPU", "Target (issue #5): mproc `Queue` round trip, 64 B, two CPUs",
		"M msgs/s", "GB/s", "oversubscribes",
		"Target (issue #17): mproc `Queue` `Put`/`Get`, 1 → 1, 64 B, median rate ≥ 0.6× the C spinning ring floor's",
		"Target (issue #17): mproc `Queue` `Put`/`Get`, 1 → 1, 64 B, median rate ≥ 1× a Go channel's",
		"Target (issue #17): mproc `Queue` `PutFunc`/`GetFunc`, 1 → 1, 64 B, median rate ≥ 0.8×",
		"Target (issue #17): mproc `Queue` `Put`/`GetAppend` into a reused buffer, 1 → 1, 64 KiB, median rate ≥ 0.6×",
		"Target (issue #17): mproc `Queue`, 2×2 processes, 64 B, median rate ≥ 0.5×",
		"Ratio (issue #17, no target): mproc `Queue`, 4×4 processes",
		"Target (issue #17): mproc `Queue` round trip, 64 B, one CPU, median ≤ 1× the C futex wait/wake floor's",
		"Target (issue #17): mproc `Queue` round trip, 64 B, two CPUs, median ≤ 0.05× the Go Unix stream socketpair's"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out, "not judged") && noTaskset == nil && noCC == nil {
		t.Errorf("a target was not judged")
	}
	if t.Failed() {
		t.Logf("output:\n%s\nstderr:\n%s", out, stderr.String())
	}
}

// TestConnPlumbing runs the conn workload at tiny N, printing only. Every
// row must have its samples, or say "not run" for the one reason this
// machine may lack (no taskset, for the pinned Go round trips). It asserts
// nothing about timings.
func TestConnPlumbing(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Fatal("python3 is not in PATH; it is on every machine this project runs on:", err)
	}
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"-n", "2", "-pyn", "1", "-rounds", "1", "-out", "", "conn"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\nstderr:\n%s", err, stderr.String())
	}
	out := stdout.String()
	_, noTaskset := exec.LookPath("taskset")
	var rows []wantRow
	for _, size := range []string{"64 B", "64 KiB", "1 MiB"} {
		rows = append(rows,
			wantRow{"| mproc `Conn` `SendBytes` → `RecvBytesInto`, " + size + " |", "2", nil, ""},
			wantRow{"| mproc `Conn` `SendBytes` → `RecvBytes`, " + size + " |", "2", nil, ""},
			wantRow{"| Go raw socketpair, blocking, " + size + " |", "2", nil, ""},
			wantRow{"| Go raw socketpair, Go's poller, " + size + " |", "2", nil, ""},
			wantRow{"`Pipe()` `send_bytes` → `recv_bytes_into`, " + size + " |", "1", nil, ""},
			wantRow{"`Pipe()` `send_bytes` → `recv_bytes`, " + size + " |", "1", nil, ""},
		)
	}
	for _, pl := range []string{"one CPU", "two CPUs"} {
		rows = append(rows,
			wantRow{"| mproc `Conn` round trip, 64 B, " + pl + " |", "2", noTaskset, ""},
			wantRow{"| Go raw socketpair round trip, blocking, 64 B, " + pl + " |", "2", noTaskset, ""},
			wantRow{"| Go raw socketpair round trip, Go's poller, 64 B, " + pl + " |", "2", noTaskset, ""},
			wantRow{"`Pipe()` round trip, 64 B, " + pl + " |", "1", nil, ""},
		)
	}
	checkRows(t, out, rows)
	for _, want := range []string{"Target (issue #6): mproc `Conn` `RecvBytesInto`, 64 B, median rate ≥ 90%",
		"Target (issue #6): mproc `Conn` `RecvBytesInto`, 1 MiB", "Target (issue #6): mproc `Conn` round trip, 64 B, one CPU",
		"Target (issue #6): mproc `Conn` round trip, 64 B, two CPUs", "the faster Python `Pipe` row's", "msgs/s", "GB/s",
		"Target (issue #17): mproc `Conn` `SendBytes` → `RecvBytesInto`, 64 B, median rate above the faster Python `Pipe` row's",
		"Target (issue #17): mproc `Conn` `SendBytes` → `RecvBytesInto`, 64 KiB, median rate above",
		"Target (issue #17): mproc `Conn` `SendBytes` → `RecvBytesInto`, 1 MiB, median rate above",
		"Target (issue #17): mproc `Conn` round trip, 64 B, one CPU, median below Python `Pipe()`'s",
		"Target (issue #17): mproc `Conn` round trip, 64 B, two CPUs, median below Python `Pipe()`'s",
		"Target (issue #17): mproc `Conn` `RecvBytes`, 64 KiB, median rate ≥ 0.8× `RecvBytesInto`'s"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out, "not judged") && noTaskset == nil {
		t.Errorf("a target was not judged:\n%s", out)
	}
	if t.Failed() {
		t.Logf("output:\n%s\nstderr:\n%s", out, stderr.String())
	}
}

// TestPoolPlumbing runs the pool workload at tiny N, printing only. Every
// row must have its samples and every issue #8 target a verdict. It
// asserts nothing about timings.
func TestPoolPlumbing(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Fatal("python3 is not in PATH; it is on every machine this project runs on:", err)
	}
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"-n", "2", "-pyn", "1", "-rounds", "1", "-out", "", "pool"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\nstderr:\n%s", err, stderr.String())
	}
	out := stdout.String()
	if strings.Contains(out, "not run") {
		t.Errorf("a variant did not run")
	}
	rows := []struct{ prefix, runs string }{
		{"| mproc `Map`, `ChunkSize(1)`,", "2"},
		{"`Pool.map`, `chunksize=1`,", "1"},
		{"| mproc `Map`, automatic chunks", "2"},
		{"`Pool.map`, default chunksize", "1"},
		{"| mproc `Submit` + `Result`, one at a time, per call |", "2"},
		{"`ProcessPoolExecutor` `submit().result()`, one at a time, per call |", "1"},
		{"| mproc start-up: `pool.New`, 2 workers |", "1"},
		{"start-up: `Pool(2)` |", "1"},
		{"start-up: `ProcessPoolExecutor(2)` + a first task per worker |", "1"},
	}
	for _, r := range rows {
		i := strings.Index(out, r.prefix)
		if i < 0 {
			t.Errorf("no row %q", r.prefix)
			continue
		}
		line, _, _ := strings.Cut(out[i:], "\n")
		if !strings.Contains(line, " | "+r.runs+" | ") {
			t.Errorf("row has not %s samples: %s", r.runs, line)
		}
	}
	for _, want := range []string{"Target (issue #8): mproc `Map` with `ChunkSize(1)`", "Target (issue #8): mproc `Submit` + `Result`",
		"Target (issue #8): mproc `Map` with automatic chunks within 2×",
		"Target (issue #17): mproc `Map` with automatic chunks, median per task ≤ 1× Python's",
		"Target (issue #17): mproc `Map` with `ChunkSize(1)` ≥ 10× faster than Python's",
		"Target (issue #17): mproc `Submit` + `Result`, median per call ≤ 0.1× Python's `ProcessPoolExecutor`"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out, "not judged") {
		t.Errorf("a target was not judged")
	}
	if t.Failed() {
		t.Logf("output:\n%s\nstderr:\n%s", out, stderr.String())
	}
}

// TestIPCPlumbing runs the ipc workload at tiny N, printing only. Every
// row must have its samples, or say "not run" for a reason this machine
// may have (no taskset, a kernel message queue limit below 8 KiB), and
// every FIFO, POSIX queue and SysV queue it made must be gone. It asserts
// nothing about timings.
func TestIPCPlumbing(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // where the FIFOs' directories go
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"-n", "2", "-rounds", "1", "-out", "", "ipc"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\nstderr:\n%s", err, stderr.String())
	}
	out := stdout.String()
	_, noTaskset := exec.LookPath("taskset")
	type want struct {
		prefix string
		absent error  // the tool whose absence excuses "not run"
		excuse string // a "not run" reason that is excused
	}
	var rows []want
	for _, size := range []string{"64 B", "8 KiB"} {
		fifoRow := "| FIFO (`fifo`) `WriteMessage`/`ReadMessage`, "
		if size == "8 KiB" {
			fifoRow = "| FIFO (`fifo`), raw `Write`/`Read` of fixed-size records, "
		}
		rows = append(rows,
			want{"| mproc `Queue[[]byte]` `Put`/`Get`, " + size + " |", nil, ""},
			want{"| mproc `Queue[[]byte]` `PutFunc`/`GetFunc`, reused buffers, " + size + " |", nil, ""},
			want{fifoRow + size + " |", nil, ""},
			want{"| POSIX message queue (`posixmq`) `Send`/`Receive`, " + size + " |", nil, "/proc/sys/fs/mqueue/"},
			want{"| System V message queue (`sysvmq`) `Send`/`Receive`, " + size + " |", nil, "kernel.msg"},
			want{"| Unix stream socketpair, 4-byte length framing, " + size + " |", nil, ""},
		)
	}
	for _, pl := range []string{"one CPU", "two CPUs"} {
		for _, v := range []string{"mproc `Queue[[]byte]` `Put`/`Get`", "mproc `Queue[[]byte]` `PutFunc`/`GetFunc`, reused buffers",
			"FIFO (`fifo`) `WriteMessage`/`ReadMessage`", "POSIX message queue (`posixmq`) `Send`/`Receive`",
			"System V message queue (`sysvmq`) `Send`/`Receive`", "Unix stream socketpair, 4-byte length framing"} {
			rows = append(rows, want{"| " + v + ", round trip, 64 B, " + pl + " |", noTaskset, ""})
		}
	}
	for _, r := range rows {
		i := strings.Index(out, r.prefix)
		if i < 0 {
			t.Errorf("no row %q", r.prefix)
			continue
		}
		line, _, _ := strings.Cut(out[i:], "\n")
		switch {
		case strings.Contains(line, "| 0 |") && r.absent != nil:
			t.Logf("not run, as expected without the tool (%v): %s", r.absent, line)
		case strings.Contains(line, "| 0 |") && r.excuse != "" && strings.Contains(line, r.excuse):
			t.Logf("not run, excused: %s", line)
		case !strings.Contains(line, r.prefix+" 2 |"):
			t.Errorf("row has not 2 samples: %s", line)
		}
	}
	for _, want := range []string{"msgs/s", "B/s", "µs", "PIPE_BUF", "msgsize_max", "kernel.msgmnb"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}

	// Nothing left behind: FIFOs (in TMPDIR), POSIX queues (by name), SysV
	// queues (the parent sends on each, so msg_lspid would be this process).
	if left, _ := filepath.Glob(filepath.Join(tmp, "mproc-bench-ipc-*")); len(left) > 0 {
		t.Errorf("FIFO directories left behind: %v", left)
	}
	for i := range ipcSeq.Load() {
		for _, end := range []string{"ping", "pong"} {
			name := fmt.Sprintf("/mproc-bench-ipc-%d-%d-%s", os.Getpid(), i+1, end)
			if q, err := posixmq.Open(name, posixmq.O_RDONLY, nil, 0); err == nil {
				q.Close()
				posixmq.Unlink(name)
				t.Errorf("POSIX queue %s left behind", name)
			} else if !errors.Is(err, os.ErrNotExist) {
				t.Errorf("POSIX queue %s: %v", name, err)
			}
		}
	}
	if b, err := os.ReadFile("/proc/sysvipc/msg"); err == nil {
		me := strconv.Itoa(os.Getpid())
		for line := range strings.Lines(string(b)) {
			if f := strings.Fields(line); len(f) > 5 && f[5] == me {
				t.Errorf("SysV queue left behind: %s", strings.TrimSpace(line))
			}
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s\nstderr:\n%s", out, stderr.String())
	}
}

// wantRow is a row a plumbing test expects in a report: how its line
// starts, how many samples it must have, and what excuses "not run": a
// missing tool, or a reason the line itself gives.
type wantRow struct {
	prefix, runs string
	absent       error
	excuse       string
}

// checkRows checks that out has every row with its samples, or an
// excused "not run".
func checkRows(t *testing.T, out string, rows []wantRow) {
	t.Helper()
	for _, r := range rows {
		i := strings.Index(out, r.prefix)
		if i < 0 {
			t.Errorf("no row %q", r.prefix)
			continue
		}
		line, _, _ := strings.Cut(out[i:], "\n")
		switch {
		case strings.Contains(line, "| 0 |") && r.absent != nil:
			t.Logf("not run, as expected without the tool (%v): %s", r.absent, line)
		case strings.Contains(line, "| 0 |") && r.excuse != "" && strings.Contains(line, r.excuse):
			t.Logf("not run, excused: %s", line)
		case !strings.Contains(line, r.prefix+" "+r.runs+" |"):
			t.Errorf("row has not %s samples: %s", r.runs, line)
		}
	}
}

// Every chart group finds its rows in BENCHMARKS.md: a renamed row must
// not drop out of the chart unnoticed.
func TestChartFindsItsRows(t *testing.T) {
	doc, err := os.ReadFile("../BENCHMARKS.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range chartGroups {
		rows := chartRows(string(doc), g.section)
		if len(rows) == 0 {
			t.Logf("section %q not in BENCHMARKS.md yet", g.section)
			continue
		}
		for _, b := range g.bars {
			found := false
			for variant, cell := range rows {
				if containsAll(variant, b.match) {
					if _, ok := chartValue(cell); !ok {
						t.Errorf("%s: %q: median %q is not a time or a rate", g.title, variant, cell)
					}
					found = true
				}
			}
			if !found {
				t.Errorf("%s: no row of section %q matches %q", g.title, g.section, b.match)
			}
		}
	}
	titles, _ := chartData(string(doc))
	if len(titles) == 0 {
		t.Fatal("no group drawn")
	}
}
