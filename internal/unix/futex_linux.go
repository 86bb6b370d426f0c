package unix

import (
	"syscall"
	"unsafe"

	linux "golang.org/x/sys/unix"
)

// futex(2) operations. mproc's futex words live in shared mappings, so the
// process-private variants (FUTEX_PRIVATE_FLAG) are never used.
const (
	FUTEX_WAIT = 0
	FUTEX_WAKE = 1
)

// Futex is futex(2): futex(uaddr, op, val, timeout, uaddr2, val3).
//
// For FUTEX_WAIT, timeout is relative (nil waits forever) and the call
// returns EAGAIN when *uaddr != val, EINTR when a signal arrived, ETIMEDOUT
// when the timeout passed, and may return 0 spuriously. For FUTEX_WAKE the
// result is the number of waiters woken. No retries: see internal/futex.
func Futex(uaddr *uint32, op int, val uint32, timeout *Timespec, uaddr2 *uint32, val3 uint32) (int, error) {
	r, _, errno := syscall.Syscall6(linux.SYS_FUTEX,
		uintptr(unsafe.Pointer(uaddr)), uintptr(op), uintptr(val),
		uintptr(unsafe.Pointer(timeout)), uintptr(unsafe.Pointer(uaddr2)), uintptr(val3))
	if errno != 0 {
		return int(r), errno
	}
	return int(r), nil
}

// SchedYield is sched_yield(2), made as a raw system call: it never
// blocks, so the Go scheduler need not hear of it.
func SchedYield() { syscall.RawSyscall(linux.SYS_SCHED_YIELD, 0, 0, 0) }
