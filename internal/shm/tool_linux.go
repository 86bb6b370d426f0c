package shm

import (
	"os"

	"mproc/internal/owner"
	"mproc/internal/unix"
)

// What cmd/mproc needs from the internal packages it may not import: the
// layout rules (layout_test.go, rule 4) let cmd/ import internal/shm alone
// among them, "so that the CLI can decode segment headers", and these
// helpers come with that: whether the processes a segment names are alive
// (internal/owner), and whether an output is a terminal (internal/unix).

// Proc is a process named by a packed owner token, as segments record
// them.
type Proc struct {
	Pid   int
	Start uint64 // clock ticks after boot
	Alive bool   // this pid still runs and started then (a zombie is dead)
}

// ProcOf unpacks tok and checks whether its process is alive.
func ProcOf(tok uint64) Proc {
	t := owner.Unpack(tok)
	return Proc{Pid: int(t.Pid), Start: t.Start, Alive: owner.Alive(t)}
}

// PidAlive reports whether process pid exists and is not a zombie, for
// the pids that the kernel records of other IPC objects (no start time:
// a recycled pid counts as alive).
func PidAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	_, err := owner.Of(pid)
	return err == nil
}

// IsTerminal reports whether f is a terminal (TCGETS succeeds on it).
func IsTerminal(f *os.File) bool {
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	ok := false
	rc.Control(func(raw uintptr) {
		_, err := unix.IoctlGetTermios(int(raw), unix.TCGETS)
		ok = err == nil
	})
	return ok
}
