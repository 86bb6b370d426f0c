package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// The shmnet and rpc workloads at tiny N: every row runs and the targets
// are judged (the figures mean nothing here).
func TestShmnetAndRPCPlumbing(t *testing.T) {
	for _, w := range []struct {
		name string
		want []string
	}{
		{"shmnet", []string{"shmnet", "Unix socket", "TCP", "Target"}},
		{"rpc", []string{"gRPC unary `Echo` round trip, 64 B, shmnet", "HTTP/1.1 GET round trip, 64 B body, loopback TCP", "Target (issue #14)"}},
	} {
		t.Run(w.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), []string{"-n", "2", "-pyn", "1", "-rounds", "1", "-out", "", w.name}, &stdout, &stderr)
			if err != nil {
				t.Fatalf("run: %v\nstderr:\n%s", err, stderr.String())
			}
			out := stdout.String()
			if strings.Contains(out, "not run") || strings.Contains(out, "no samples") {
				t.Errorf("a variant did not run:\n%s", out)
			}
			for _, s := range w.want {
				if !strings.Contains(out, s) {
					t.Errorf("no %q in:\n%s", s, out)
				}
			}
		})
	}
}
