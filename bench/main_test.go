package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"mproc"
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
			"multiprocessing` spawn | 1 |", "multiprocessing` forkserver | 1 |", "Target (issue #3)"} {
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
