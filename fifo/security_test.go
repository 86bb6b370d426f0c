package fifo_test

// Issue 18's properties for FIFOs: created with the mode asked for, another
// user refused by it; a symbolic link never written or created through.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"mproc"
	"mproc/fifo"
	"mproc/internal/testenv"
)

const nobody = 65534

// fifoOpens are every way to open a FIFO, each closing what it opened.
var fifoOpens = map[string]func(ctx context.Context, path string) error{
	"OpenReader": func(ctx context.Context, p string) error { return closeErr(fifo.OpenReader(ctx, p)) },
	"OpenWriter": func(ctx context.Context, p string) error { return closeErr(fifo.OpenWriter(ctx, p)) },
	"OpenServer": func(_ context.Context, p string) error { return closeErr(fifo.OpenServer(p)) },
}

func closeErr[C io.Closer](c C, err error) error {
	if err == nil {
		c.Close()
	}
	return err
}

// openAsNobodyFn becomes uid and gid 65534 and opens the FIFO at path
// every way: each must fail at once with os.ErrPermission.
var openAsNobodyFn = mproc.Register("fifo-security-open-as-nobody", func(ctx context.Context, path string) error {
	if err := syscall.Setgroups(nil); err != nil {
		return err
	}
	if err := syscall.Setgid(nobody); err != nil {
		return err
	}
	if err := syscall.Setuid(nobody); err != nil {
		return err
	}
	var errs []error
	for name, open := range fifoOpens {
		octx, cancel := context.WithTimeout(ctx, 20*time.Second)
		err := open(octx, path)
		cancel()
		if !errors.Is(err, os.ErrPermission) {
			errs = append(errs, fmt.Errorf("%s as uid %d: %v; want os.ErrPermission", name, os.Geteuid(), err))
		}
	}
	return errors.Join(errs...)
})

// TestSecurityModes: Create makes a FIFO of the permission asked for, 0600
// here even under an empty umask, owned by its creator; a process of
// another user (a child that became uid and gid 65534) is refused every
// open with os.ErrPermission, without waiting for the other end.
func TestSecurityModes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skipf("running as uid %d: only root can start a child as uid %d", os.Geteuid(), nobody)
	}
	dir, err := os.MkdirTemp("", "fifo-sec-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil { // uid 65534 may enter: only the FIFO's mode refuses it
		t.Fatal(err)
	}
	path := filepath.Join(dir, "fifo")
	old := syscall.Umask(0)
	err = fifo.Create(path, 0o600)
	syscall.Umask(old)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); fi.Mode() != os.ModeNamedPipe|0o600 || st.Uid != uint32(os.Geteuid()) {
		t.Errorf("%s: mode %v, uid %d; want %v, uid %d", path, fi.Mode(), st.Uid, os.ModeNamedPipe|0o600, os.Geteuid())
	}
	if err := wait(t, start(t, openAsNobodyFn, path)); err != nil {
		t.Error(err)
	}
}

// TestSecurityNoSymlinks: Create never makes a FIFO through a symbolic
// link, nor touches what it points at; every open through a link to
// anything but a FIFO fails with ErrNotFIFO without writing or truncating
// it; Remove removes neither the link nor its target. (A link to a FIFO is
// followed by the opens, as documented: it leads to a FIFO, which is all
// they use.)
func TestSecurityNoSymlinks(t *testing.T) {
	testenv.CheckFDLeaks(t)
	ctx := testCtx(t)
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	state := func(p string) string {
		fi, err := os.Lstat(p)
		if err != nil {
			return err.Error()
		}
		b, _ := os.ReadFile(p)
		return fmt.Sprintf("%v %q", fi.Mode(), b)
	}
	want := state(victim)
	link := filepath.Join(dir, "link")
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}
	dangling := filepath.Join(dir, "dangling")
	target := filepath.Join(dir, "created-through-the-link")
	if err := os.Symlink(target, dangling); err != nil {
		t.Fatal(err)
	}

	for _, p := range []string{link, dangling} {
		if err := fifo.Create(p, 0o600); !errors.Is(err, os.ErrExist) || !errors.Is(err, fifo.ErrNotFIFO) {
			t.Errorf("Create over the link %s: %v; want os.ErrExist and ErrNotFIFO", p, err)
		}
	}
	for name, open := range fifoOpens {
		if err := open(ctx, link); !errors.Is(err, fifo.ErrNotFIFO) {
			t.Errorf("%s through a link to a file: %v; want ErrNotFIFO", name, err)
		}
		if err := open(ctx, dangling); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s through a dangling link: %v; want os.ErrNotExist", name, err)
		}
	}
	if err := fifo.Remove(link); !errors.Is(err, fifo.ErrNotFIFO) {
		t.Errorf("Remove of a link: %v; want ErrNotFIFO", err)
	}
	if got := state(victim); got != want {
		t.Errorf("the link's target: %s; want it untouched: %s", got, want)
	}
	if _, err := os.Lstat(target); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the dangling link's target was created: %v", err)
	}
	for _, p := range []string{link, dangling} {
		if fi, err := os.Lstat(p); err != nil || fi.Mode().Type() != os.ModeSymlink {
			t.Errorf("the link %s afterwards: %v", p, err)
		}
	}
}
