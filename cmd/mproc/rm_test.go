package main

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
)

func exists(name string) bool {
	_, err := os.Lstat("/dev/shm/mproc." + name)
	return err == nil
}

// TestRm: rm refuses objects that live children hold, removes them once
// the children are gone (SIGKILLed), and removes any with --force.
func TestRm(t *testing.T) {
	p := prefix(t)
	// The creator makes a queue, a held lock and a held semaphore, and ends:
	// then a live child holds the lock, another produces into the queue.
	creator := startHolder(t, "create", p)
	terminate(t, creator)
	holder := startHolder(t, "lock", p+"lock")
	producer := startHolder(t, "produce", p+"queue")

	_, errOut, code := cli(t, "rm", p+"lock")
	if code != exitFailure || !exists(p+"lock") {
		t.Errorf("rm of a lock a live child holds: exit status %d, exists %v", code, exists(p+"lock"))
	}
	oneLineErr(t, "rm lock", errOut, fmt.Sprintf(`^mproc: rm: lock %slock is held by live pid %d \(holder, open\): not removed \(--force removes it\)\n$`, p, holder.Pid()))

	_, errOut, code = cli(t, "rm", p+"queue")
	if code != exitFailure || !exists(p+"queue") {
		t.Errorf("rm of a queue a live child produces into: exit status %d, exists %v", code, exists(p+"queue"))
	}
	oneLineErr(t, "rm queue", errOut, fmt.Sprintf(`^mproc: rm: queue %squeue is held by live pid %d \(attached, open\): not removed`, p, producer.Pid()))

	// The semaphore's creator, its only holder, is dead: it is stale.
	out, errOut, code := cli(t, "rm", p+"sem", p+"nosuch")
	if out != "removed bounded-semaphore "+p+"sem\n" || exists(p+"sem") || code != exitFailure {
		t.Errorf("rm of a stale semaphore and a missing name: exit status %d, stdout %q", code, out)
	}
	oneLineErr(t, "rm nosuch", errOut, fmt.Sprintf(`^mproc: rm: no mproc object "%snosuch"`, p))

	kill(t, producer)
	out = mustCLI(t, "rm", p+"queue")
	if out != "removed queue "+p+"queue\n" || exists(p+"queue") {
		t.Errorf("rm of a queue whose producer was SIGKILLed: %q; exists %v", out, exists(p+"queue"))
	}

	out = mustCLI(t, "rm", "--force", p+"lock")
	if out != "removed lock "+p+"lock\n" || exists(p+"lock") {
		t.Errorf("rm --force of a held lock: %q; exists %v", out, exists(p+"lock"))
	}
	terminate(t, holder)
}

// TestRmStale: rm --stale removes what a SIGKILLed creator left, and only
// that (--prefix keeps it to this test's objects: the machine may hold
// other tests' objects, stale for a moment).
func TestRmStale(t *testing.T) {
	p := prefix(t)
	killed := startHolder(t, "create", p+"k-")
	live := startHolder(t, "create", p+"l-")
	kill(t, killed)

	out := mustCLI(t, "rm", "--stale", "--dry-run", "--prefix", p)
	want := fmt.Sprintf("would remove lock %[1]sk-lock\nwould remove queue %[1]sk-queue\nwould remove bounded-semaphore %[1]sk-sem\n", p)
	if out != want {
		t.Errorf("rm --stale --dry-run:\n%s\nwant:\n%s", out, want)
	}
	for _, n := range []string{"k-lock", "k-queue", "k-sem"} {
		if !exists(p + n) {
			t.Errorf("%s removed by a dry run", n)
		}
	}
	out = mustCLI(t, "rm", "--stale", "--prefix", p)
	if out != strings.ReplaceAll(want, "would remove", "removed") {
		t.Errorf("rm --stale:\n%s", out)
	}
	for _, n := range []string{"k-lock", "k-queue", "k-sem"} {
		if exists(p + n) {
			t.Errorf("%s not removed by rm --stale", n)
		}
	}
	for _, n := range []string{"l-lock", "l-queue", "l-sem"} {
		if !exists(p + n) {
			t.Errorf("%s, held by a live child, removed by rm --stale", n)
		}
	}
	out, errOut, code := cli(t, "rm", "--stale", "--prefix", p)
	if out != "" || code != 0 || !regexp.MustCompile(`^mproc rm: no stale mproc objects\n$`).MatchString(errOut) {
		t.Errorf("rm --stale with nothing stale: exit status %d, stdout %q, stderr %q", code, out, errOut)
	}
	terminate(t, live)
}
