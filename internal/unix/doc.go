// Package unix is the one room for raw system calls in mproc.
//
// It re-exports what golang.org/x/sys/unix provides and hand-writes, in the
// same C-like shape, what it lacks (futex, mq_*, msg*, sigqueue). The
// functions here have no policy: they do not retry on EINTR, do not loop on
// spurious wake-ups and do not interpret errors beyond returning the errno.
// Policy lives one layer up (internal/futex, internal/shm, ...).
//
// No other package of mproc imports golang.org/x/sys/unix or calls
// syscall.Syscall*; layout_test.go at the module root enforces it.
package unix
