package testenv

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
	"testing"

	"mproc/internal/unix"
)

// OpenPTY opens a new pseudo-terminal pair, as posix_openpt(3),
// unlockpt(3) and ptsname(3) do: master is /dev/ptmx, terminal the
// /dev/pts/N it controls. What a program writes to terminal is read from
// master; what the test writes to master is the program's keyboard input.
// Both are closed when the test ends (closing them earlier is fine).
func OpenPTY(t testing.TB) (master, terminal *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Fatalf("open /dev/ptmx: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	var n uint32
	rc, err := master.SyscallConn()
	if err == nil {
		rc.Control(func(fd uintptr) {
			if err = unix.IoctlSetPointerInt(int(fd), unix.TIOCSPTLCK, 0); err != nil {
				err = fmt.Errorf("unlock (TIOCSPTLCK): %w", err)
				return
			}
			if n, err = unix.IoctlGetUint32(int(fd), unix.TIOCGPTN); err != nil {
				err = fmt.Errorf("pty number (TIOCGPTN): %w", err)
			}
		})
	}
	if err != nil {
		t.Fatalf("/dev/ptmx: %v", err)
	}
	terminal, err = os.OpenFile("/dev/pts/"+strconv.FormatUint(uint64(n), 10), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open the terminal of /dev/ptmx: %v", err)
	}
	t.Cleanup(func() { terminal.Close() })
	return master, terminal
}
