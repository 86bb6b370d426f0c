// Package testenv holds mproc's test helpers. Only _test.go files import it.
//
// Tests start real child processes by re-executing the test binary: TestMain
// calls Main, which dispatches a child to its registered function before
// any test runs, and in the parent fails the run if a test leaked a child.
package testenv

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"mproc"
)

// Main is the body of TestMain for packages whose tests start children.
func Main(m *testing.M) {
	mproc.Main()
	code := m.Run()
	deadline := time.Now().Add(5 * time.Second)
	for len(mproc.Children()) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if left := mproc.Children(); len(left) > 0 {
		for _, p := range left {
			fmt.Fprintf(os.Stderr, "testenv: test leaked child %q (pid %d); killing it\n", p.Name(), p.Pid())
			Stop(p)
		}
		code = 1
	}
	os.Exit(code)
}

// Stop ends p the way a hung test should: SIGQUIT first, so a Go child
// prints its goroutines, then SIGKILL a second later.
func Stop(p *mproc.Process) {
	p.Signal(syscall.SIGQUIT)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if p.Wait(ctx) != nil && p.Alive() {
		p.Kill()
		p.Wait(context.Background())
	}
}

// Reap registers p to be stopped (Stop) when the test ends, if still alive.
func Reap(t testing.TB, p *mproc.Process) {
	t.Cleanup(func() {
		if p.Alive() {
			t.Errorf("child %q (pid %d) still alive at the end of the test; stopping it", p.Name(), p.Pid())
			Stop(p)
		}
	})
}

// FDs returns this process's open descriptors and what they point at.
func FDs() map[int]string {
	ents, _ := os.ReadDir("/proc/self/fd")
	out := make(map[int]string, len(ents))
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err != nil {
			continue // the directory's own descriptor, already closed
		}
		out[n] = target
	}
	return out
}

// CheckFDLeaks fails t if descriptors opened during the test are still open
// at its end (after a short grace for background closes).
func CheckFDLeaks(t testing.TB) {
	before := FDs()
	t.Cleanup(func() {
		var leaked []string
		for range 50 {
			leaked = leaked[:0]
			for n, target := range FDs() {
				if _, ok := before[n]; !ok {
					leaked = append(leaked, fmt.Sprintf("%d -> %s", n, target))
				}
			}
			if len(leaked) == 0 {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		slices.Sort(leaked)
		t.Errorf("descriptors leaked: %s", strings.Join(leaked, ", "))
	})
}

// Wait waits for p, failing the test if it is still running after 30
// seconds (a hang), and returns how it ended.
func Wait(t testing.TB, p *mproc.Process) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := p.Wait(ctx)
	if errors.Is(err, context.DeadlineExceeded) && p.Alive() {
		t.Fatalf("child %s hangs", p.Name())
	}
	return err
}

// Pythons returns the Python 3 interpreters of the machine by version
// ("3.11"): python3 on PATH, which the interop tests require (the test
// fails without it), and every Python 3 pyenv holds. It logs the versions
// found, so that a run says what it covered.
func Pythons(t testing.TB) map[string]string {
	t.Helper()
	out := map[string]string{}
	p, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 is required by the interop tests and is not in PATH")
	}
	v, _ := exec.Command(p, "-c", "import sys; print('%d.%d' % sys.version_info[:2])").Output()
	out[strings.TrimSpace(string(v))] = p
	if root, err := exec.Command("pyenv", "root").Output(); err == nil {
		vs, _ := exec.Command("pyenv", "versions", "--bare").Output()
		for _, ver := range strings.Fields(string(vs)) {
			bin := filepath.Join(strings.TrimSpace(string(root)), "versions", ver, "bin", "python3")
			parts := strings.SplitN(ver, ".", 3)
			if _, err := os.Stat(bin); err == nil && len(parts) >= 2 && parts[0] == "3" {
				out[parts[0]+"."+parts[1]] = bin
			}
		}
	} else {
		t.Logf("pyenv not found: testing python3 only")
	}
	vs := slices.SortedFunc(maps.Keys(out), func(a, b string) int {
		var am, an, bm, bn int
		fmt.Sscanf(a, "%d.%d", &am, &an)
		fmt.Sscanf(b, "%d.%d", &bm, &bn)
		return cmp.Or(am-bm, an-bn)
	})
	t.Logf("Python versions tested: %s", strings.Join(vs, ", "))
	return out
}
