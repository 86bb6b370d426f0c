package main

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// The C floors: small programs that show what the hardware and the kernel
// allow, with no runtime in the way. They are embedded and compiled with
// the system's C compiler when a workload needs them; each prints
// {"samples": [seconds, ...]} on standard output. What they share is in
// c/floor.h, written beside each source.
//
//go:embed c/*.c c/*.h
var cSources embed.FS

// cProgram is a compiled C floor.
type cProgram struct {
	path    string // the executable; "" when missing says why
	missing string
	dir     string
}

// buildC compiles c/<name>.c with cc -O2 into a temporary directory. A
// missing compiler, or a compiler that fails (no kernel headers, say), is
// not an error: the program's rows say "not run" with the reason. Close
// removes the directory.
func buildC(ctx context.Context, c *config, name string) (*cProgram, error) {
	src, err := cSources.ReadFile("c/" + name + ".c")
	if err != nil {
		return nil, err
	}
	cc, err := exec.LookPath("cc")
	if err != nil {
		return &cProgram{missing: "no C compiler (cc) in PATH"}, nil
	}
	dir, err := os.MkdirTemp("", "mproc-bench-c-")
	if err != nil {
		return nil, err
	}
	p := &cProgram{dir: dir}
	srcPath, exe := filepath.Join(dir, name+".c"), filepath.Join(dir, name)
	if err := os.WriteFile(srcPath, src, 0o600); err != nil {
		p.Close()
		return nil, err
	}
	headers, err := fs.Glob(cSources, "c/*.h")
	if err != nil {
		p.Close()
		return nil, err
	}
	for _, h := range headers {
		b, err := cSources.ReadFile(h)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, path.Base(h)), b, 0o600)
		}
		if err != nil {
			p.Close()
			return nil, err
		}
	}
	out, err := exec.CommandContext(ctx, cc, "-O2", "-o", exe, srcPath).CombinedOutput()
	if err != nil {
		first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		p.missing = fmt.Sprintf("cc -O2 %s.c failed: %v: %s", name, err, first)
		fmt.Fprintf(c.log, "bench: WARNING: %s\n%s\n", p.missing, out)
		return p, nil
	}
	p.path = exe
	return p, nil
}

// run runs the program with args and returns its samples.
func (p *cProgram) run(ctx context.Context, args ...string) ([]time.Duration, error) {
	cmd := exec.CommandContext(ctx, p.path, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	name := filepath.Base(p.path)
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	var r struct {
		Samples []float64 `json:"samples"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		return nil, fmt.Errorf("%s: decode output %q: %w", name, stdout.String(), err)
	}
	return seconds(r.Samples), nil
}

// Close removes the program's directory.
func (p *cProgram) Close() {
	if p.dir != "" {
		os.RemoveAll(p.dir)
	}
}

// seconds converts samples in seconds, as the Python and C peers print
// them, to durations rounded to the nanosecond.
func seconds(s []float64) []time.Duration {
	out := make([]time.Duration, len(s))
	for i, sec := range s {
		out[i] = time.Duration(sec*float64(time.Second) + 0.5)
	}
	return out
}

// perOp is the duration of one of ops operations that took d together,
// rounded to the nanosecond.
func perOp(d time.Duration, ops int) time.Duration {
	return time.Duration(float64(d)/float64(ops) + 0.5)
}
