package main

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
)

// TestMemoryPlumbing runs the memory workload at tiny N, printing only.
// Every row must have its samples (a pool gives one per worker), both
// detail tables must be there and the target must have a verdict. It
// asserts nothing about the sizes beyond their being there.
func TestMemoryPlumbing(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Fatal("python3 is not in PATH; it is on every machine this project runs on:", err)
	}
	before, err := memChildPids()
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	err = run(context.Background(), []string{"-n", "2", "-pyn", "1", "-rounds", "1", "-out", "", "memory"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\nstderr:\n%s", err, stderr.String())
	}
	out := stdout.String()
	if strings.Contains(out, "not run") {
		t.Errorf("a variant did not run")
	}
	checkRows(t, out, []wantRow{
		{"| mproc idle child (`Register` + `Start`, blocked in `<-ctx.Done()`) |", "2", nil, ""},
		{"| mproc spare (`KeepWarm(1)`), waiting for a `Start` |", "2", nil, ""},
		{"`Process`, fork, idle child |", "1", nil, ""},
		{"`Process`, spawn, idle child |", "1", nil, ""},
		{"| mproc `pool.New`, 2 workers: a worker after a task |", "4", nil, ""},
		{"`Pool(2)`, fork: a worker after a task |", "2", nil, ""},
		{"`Pool(2)`, spawn: a worker after a task |", "2", nil, ""},
		{"| mproc `NewQueue[[]byte](1024, WithMaxMessage(64))`, filled: its segment |", "2", nil, ""},
		{"`Queue(1024)`, filled with 1024 × 64 B `bytes`: the producer's growth |", "1", nil, ""},
		{"| mproc `NewQueue[[]byte](65536, WithMaxMessage(64))`, filled: its segment |", "2", nil, ""},
		{"`Queue(65536)`, filled with 65536 × 64 B `bytes`: the producer's growth |", "1", nil, ""},
	})
	for _, want := range []string{"| Process | RSS | RssAnon | RssFile | RssShmem | USS |", "| N | mproc segment size |",
		"Target (issue #17): an mproc pool worker no larger than a Python `Pool` worker", "MiB", "KiB"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out, "not judged") {
		t.Errorf("the target was not judged")
	}
	// Spares off, every child gone: nothing of the workload is left.
	if kids, err := memChildPids(); err != nil {
		t.Error(err)
	} else {
		for pid := range kids {
			if !before[pid] {
				t.Errorf("child process %d left", pid)
			}
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s\nstderr:\n%s", out, stderr.String())
	}
}

func TestMemorySize(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1000: "1000 B", 4096: "4 KiB", 135168: "132 KiB",
		8 << 20: "8.00 MiB", -2048: "-2 KiB"} {
		if got := memSize(n); got != want {
			t.Errorf("memSize(%d) = %q, want %q", n, got, want)
		}
	}
	m := procKB([]byte("Name:\tx\nVmRSS:\t  1234 kB\nThreads:\t3\n55f-7ff ---p 00000000 00:00 0 [rollup]\nPss: 12 kB\n"))
	if m["VmRSS"] != 1234<<10 || m["Pss"] != 12<<10 || len(m) != 2 {
		t.Errorf("procKB: %v", m)
	}
}
