package mproc_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"mproc"
)

var envFn = mproc.Register("env", func(ctx context.Context, kv [2]string) error {
	if got := os.Getenv(kv[0]); got != kv[1] {
		return fmt.Errorf("%s=%q, want %q", kv[0], got, kv[1])
	}
	return nil
})

// osChildren lists the pids of this process's children from /proc,
// spares included.
func osChildren(t *testing.T) []int {
	t.Helper()
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", os.Getpid()))
	var pids []int
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		for _, s := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(s); err == nil {
				pids = append(pids, n)
			}
		}
	}
	return pids
}

// spares returns the children that are not listed by mproc.Children.
func sparePids(t *testing.T) []int {
	t.Helper()
	var known []int
	for _, p := range mproc.Children() {
		known = append(known, p.Pid())
	}
	return slices.DeleteFunc(osChildren(t), func(pid int) bool { return slices.Contains(known, pid) })
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestKeepWarm(t *testing.T) {
	if err := mproc.KeepWarm(-1); err == nil {
		t.Fatal("KeepWarm(-1) accepted")
	}
	if err := mproc.KeepWarm(2); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mproc.KeepWarm(0) })
	waitFor(t, "2 spares", func() bool { return len(sparePids(t)) == 2 })
	spares := sparePids(t)

	// A Start with default options runs in one of the spares, with its
	// name, its handles and its result.
	m, err := mproc.NewSharedMemory(4096)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	p := start(t, writeShmFn, shmArg{Mem: m, Offset: 8, Text: "warm"}, mproc.ProcOptions{})
	if !slices.Contains(spares, p.Pid()) {
		t.Errorf("Start with default options started pid %d, not one of the spares %v", p.Pid(), spares)
	}
	if err := wait(t, p); err != nil {
		t.Fatal(err)
	}
	if got := string(m.Bytes()[8:12]); got != "warm" {
		t.Errorf("spare wrote %q", got)
	}
	p = start(t, currentFn, "warm-1", mproc.ProcOptions{Name: "warm-1"})
	if err := wait(t, p); err != nil {
		t.Fatal(err)
	}
	p = start(t, failFn, "corrupt", mproc.ProcOptions{})
	if err := wait(t, p); !errors.Is(err, mproc.ErrCorrupt) {
		t.Fatalf("error from a spare: %v", err)
	}

	// Options a spare cannot honour start a process as usual.
	waitFor(t, "refill", func() bool { return len(sparePids(t)) == 2 })
	spares = sparePids(t)
	p = start(t, envFn, [2]string{"MPROC_TEST_WARM", "x"}, mproc.ProcOptions{Env: []string{"MPROC_TEST_WARM=x"}})
	if slices.Contains(spares, p.Pid()) {
		t.Error("a Start with Env ran in a spare")
	}
	if err := wait(t, p); err != nil {
		t.Fatal(err)
	}

	// A change of environment makes the spares stale.
	t.Setenv("MPROC_TEST_WARM", "y")
	p = start(t, envFn, [2]string{"MPROC_TEST_WARM", "y"}, mproc.ProcOptions{})
	if err := wait(t, p); err != nil {
		t.Fatalf("after Setenv: %v", err)
	}

	// Spares killed or terminated while idle are reaped and replaced.
	waitFor(t, "fresh spares", func() bool { return len(sparePids(t)) == 2 })
	old := sparePids(t)
	syscall.Kill(old[0], syscall.SIGKILL)
	syscall.Kill(old[1], syscall.SIGTERM)
	waitFor(t, "dead spares reaped and replaced", func() bool {
		now := sparePids(t)
		return len(now) == 2 && !slices.Contains(now, old[0]) && !slices.Contains(now, old[1])
	})
	// One killed just before a Start costs nothing but a fallback.
	for _, pid := range sparePids(t) {
		syscall.Kill(pid, syscall.SIGSTOP) // cannot exit, cannot read
		syscall.Kill(pid, syscall.SIGKILL)
	}
	p = start(t, sleepFn, time.Millisecond, mproc.ProcOptions{})
	if err := wait(t, p); err != nil {
		t.Fatalf("after the spares were killed: %v", err)
	}

	// KeepWarm(0) leaves no process behind.
	if err := mproc.KeepWarm(0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "no spares", func() bool { return len(osChildren(t)) == 0 })
}
