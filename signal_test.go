package mproc_test

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"mproc"
)

// sigrtmin is glibc's SIGRTMIN (the kernel's 32 and 33 are glibc's own).
const sigrtmin = syscall.Signal(34)

func TestSignalWithValueToC(t *testing.T) {
	cc, err := exec.LookPath("cc")
	if err != nil {
		t.Fatal("a C compiler (cc) is required by this test and is not in PATH")
	}
	bin := filepath.Join(t.TempDir(), "sigvalue")
	if out, err := exec.Command(cc, "-O2", "-o", bin, "testdata/sigvalue.c").CombinedOutput(); err != nil {
		t.Fatalf("cc: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "3")
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	s := bufio.NewScanner(out)
	if !s.Scan() || s.Text() != "ready" {
		t.Fatalf("peer: %q", s.Text())
	}
	for _, v := range []int{7, -1, 1 << 30} {
		if err := mproc.SignalWithValue(cmd.Process.Pid, sigrtmin+1, v); err != nil {
			t.Fatal(err)
		}
		if !s.Scan() {
			t.Fatal("peer ended early")
		}
		if want := fmt.Sprintf("%d -1 %d", v, os.Getpid()); s.Text() != want {
			t.Fatalf("peer got %q, want %q (value, SI_QUEUE, sender)", s.Text(), want)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := mproc.SignalWithValue(cmd.Process.Pid, sigrtmin+1, 1); !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("signal to a gone process: %v", err)
	}
}
