package main

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
)

// TestManagerPlumbing runs the manager workload at tiny N, printing only.
// Every row must have its samples, and the issue #13 target a verdict. It
// asserts nothing about timings.
func TestManagerPlumbing(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Fatal("python3 is not in PATH; it is on every machine this project runs on:", err)
	}
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"-n", "2", "-pyn", "1", "-rounds", "1", "-out", "", "manager"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\nstderr:\n%s", err, stderr.String())
	}
	out := stdout.String()
	if strings.Contains(out, "not run") {
		t.Errorf("a variant did not run")
	}
	rows := []struct{ has, runs string }{
		{"| Go client → Go server (`manager.Start`), shared memory |", "2"},
		{"| Go client → Go server (`manager.Start`), Unix socket |", "2"},
		{"| Go client → Go server (`manager.Start`), loopback TCP |", "2"},
		{"client → Python", "1"},
		{"client (`SyncManager.connect()`) → Go server (`manager.Start`) |", "1"},
		{"| Go client (`manager.Dial`) → Python", "2"},
	}
	for _, r := range rows {
		i := strings.Index(out, r.has)
		if i < 0 {
			t.Errorf("no row with %q", r.has)
			continue
		}
		line, _, _ := strings.Cut(out[i:], "\n")
		if !strings.Contains(line, " | "+r.runs+" | ") {
			t.Errorf("row has not %s samples: %s", r.runs, line)
		}
	}
	for _, want := range []string{"Target (issue #13): the Unix-socket path no slower than Python's",
		"Target (issue #13): the shared-memory path ≤ 0.2× Python's", "Changing one side only:"} {
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
