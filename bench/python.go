package main

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// The Python peers, embedded so that the harness (and its test) run from any
// directory. Each prints one JSON object (pyResult) on standard output.
//
//go:embed python/*.py
var pyScripts embed.FS

// pyResult is what every Python peer prints: samples in seconds per
// variant, and why a variant could not run.
type pyResult struct {
	Python  string               `json:"python"` // platform.python_version()
	Samples map[string][]float64 `json:"samples"`
	Errors  map[string]string    `json:"errors"`
}

// runPython runs python/<script> with args under c.python and decodes its
// output. The script is written to a temporary directory first: spawn and
// forkserver children re-import it by path.
func runPython(ctx context.Context, c *config, script string, args ...string) (*pyResult, error) {
	src, err := pyScripts.ReadFile("python/" + script)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "mproc-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, script)
	if err := os.WriteFile(path, src, 0o600); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, c.python, append([]string{path}, args...)...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("python3 %s %s: %v: %s", script, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	if stderr.Len() > 0 {
		c.log.Write(stderr.Bytes())
	}
	var r pyResult
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		return nil, fmt.Errorf("python3 %s: decode output %q: %w", script, stdout.String(), err)
	}
	return &r, nil
}
