package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestBenchRoot finds the source tree in a candidate directory, and says
// clearly when none holds it, as for an installed binary.
func TestBenchRoot(t *testing.T) {
	tree := func(module string) string {
		d := t.TempDir()
		if err := os.MkdirAll(filepath.Join(d, "bench"), 0o755); err != nil {
			t.Fatal(err)
		}
		for f, s := range map[string]string{"go.mod": "module " + module + "\n\ngo 1.26\n", "bench/main.go": "package main\n"} {
			if err := os.WriteFile(filepath.Join(d, f), []byte(s), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return d
	}
	empty, other, mine := t.TempDir(), tree("example.com/other"), tree("mproc")
	if got, err := benchRoot([]string{empty, other, mine}); err != nil || got != mine {
		t.Errorf("benchRoot found %q, %v; want %s", got, err, mine)
	}
	_, err := benchRoot([]string{empty, other})
	if err == nil || !strings.Contains(err.Error(), "installed without it") || !strings.Contains(err.Error(), "searched: "+empty+", "+other) {
		t.Errorf("benchRoot without the tree: %v", err)
	}
	// This test runs in the tree: the binary's own candidates find it.
	wd, _ := os.Getwd()
	if got, err := benchRoot(benchCandidates()); err != nil || got != filepath.Dir(filepath.Dir(wd)) {
		t.Errorf("benchRoot of the test binary: %q, %v", got, err)
	}
}

// TestBenchQuick runs one workload of the suite with --quick.
func TestBenchQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: compiles and runs the benchmark suite")
	}
	// cli's two minutes may not do to compile the suite on a busy machine.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := exitCode(run(ctx, []string{"bench", "--quick", "lock"}, &stdout, &stderr), &stderr)
	out, errOut := stdout.String(), stderr.String()
	if code != 0 {
		t.Fatalf("bench --quick lock: exit status %d\nstderr:\n%s", code, errOut)
	}
	for _, re := range []string{`(?m)^## Machine$`, `(?m)^Last run .*: ` + "`go run ./bench -out '' -n 10 -pyn 3 -rounds 1 lock`", `(?m)^\| mproc .*\| reference \|$`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("stdout lacks %s:\n%s", re, out)
		}
	}
	for _, re := range []string{
		`(?m)^mproc bench \[0s\]: compiling and starting the suite: go run \. -out "" -n 10 -pyn 3 -rounds 1 lock \(in .*/bench\)$`,
		`(?m)^mproc bench \[\d+s\]: lock: running$`,
		`(?m)^mproc bench: done in \d+s$`,
	} {
		if !regexp.MustCompile(re).MatchString(errOut) {
			t.Errorf("stderr lacks %s:\n%s", re, errOut)
		}
	}
	_, errOut, code = cli(t, "bench", "--quick", "nosuch")
	if code != exitFailure || !strings.Contains(errOut, `unknown workload "nosuch"`) ||
		!regexp.MustCompile(`(?m)^mproc: bench: the suite failed \(exit status 1\) after \d+s$`).MatchString(errOut) {
		t.Errorf("bench of an unknown workload: exit status %d\n%s", code, errOut)
	}
}
