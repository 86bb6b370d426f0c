package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"mproc/internal/testenv"
)

// TestWorker: an embedded worker serves and prints the URL for others,
// and a second worker joins with it; both stop with their contexts.
func TestWorker(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out1, out2, errs testenv.Buffer
	ctx1, stop1 := context.WithCancel(ctx)
	done1 := make(chan error, 1)
	go func() {
		done1 <- run(ctx1, []string{"-listen", "127.0.0.1:0", "-queue", "jobs", "-workers", "1"}, &out1, &errs)
	}()
	var url string
	for url == "" && ctx.Err() == nil {
		if _, after, ok := strings.Cut(out1.String(), "-nats "); ok {
			url, _, _ = strings.Cut(after, "\n")
		}
		time.Sleep(5 * time.Millisecond)
	}
	ctx2, stop2 := context.WithCancel(ctx)
	done2 := make(chan error, 1)
	go func() { done2 <- run(ctx2, []string{"-nats", url, "-queue", "jobs"}, &out2, &errs) }()
	for !strings.Contains(out2.String(), "serving pool") && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	for !strings.Contains(out1.String(), "serving pool") && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	stop2()
	if err := <-done2; err != nil {
		t.Fatalf("second worker: %v (%s)", err, errs.String())
	}
	stop1()
	if err := <-done1; err != nil {
		t.Fatalf("first worker: %v (%s)", err, errs.String())
	}
	t.Logf("first worker:\n%s\nsecond worker:\n%s", out1.String(), out2.String())
}
