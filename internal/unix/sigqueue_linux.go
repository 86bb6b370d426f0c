package unix

import (
	"syscall"
	"unsafe"

	linux "golang.org/x/sys/unix"
)

// siginfoQueue is the kernel's siginfo_t as sigqueue(3) fills it: the
// common head, then the _rt member of the union (pid, uid, sigval).
type siginfoQueue struct {
	Signo int32
	Errno int32
	Code  int32
	_     int32
	Pid   int32
	Uid   uint32
	Value int64 // union sigval: sival_int in the low half on little endian
	_     [96]byte
}

const siQueue = -1 // SI_QUEUE

// Sigqueue is sigqueue(3): it sends sig to pid with value (rt_sigqueueinfo).
func Sigqueue(pid int, sig syscall.Signal, value int64) error {
	info := siginfoQueue{Signo: int32(sig), Code: siQueue, Pid: int32(linux.Getpid()), Uid: uint32(linux.Getuid()), Value: value}
	_, _, errno := syscall.Syscall(linux.SYS_RT_SIGQUEUEINFO, uintptr(pid), uintptr(sig), uintptr(unsafe.Pointer(&info)))
	if errno != 0 {
		return errno
	}
	return nil
}

func init() {
	if unsafe.Sizeof(siginfoQueue{}) != 128 {
		panic("mproc: siginfo size")
	}
}
