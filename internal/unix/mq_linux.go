//go:build linux && (amd64 || arm64 || riscv64 || loong64 || ppc64 || ppc64le || s390x)

// MqAttr and Sigevent below are the 64-bit layouts (longs and pointers of
// 8 bytes); MIPS swaps sigev_signo and sigev_notify, hence the list.

package unix

import (
	"syscall"
	"unsafe"

	linux "golang.org/x/sys/unix"
)

// POSIX message queues, mq_overview(7). x/sys has the system call numbers
// but no wrappers, so these are hand-written in its shape. They are the
// kernel's calls, not glibc's: a queue descriptor (mqd_t) is an ordinary
// file descriptor, names are given without the leading '/' that mq_open(3)
// takes, and there is no SIGEV_THREAD helper thread.

// MqAttr is struct mq_attr (mq_getsetattr(2)).
type MqAttr struct {
	Flags   int64 // mq_flags: 0 or O_NONBLOCK; the only field mq_getsetattr sets
	Maxmsg  int64 // mq_maxmsg: the queue's capacity in messages
	Msgsize int64 // mq_msgsize: the largest message, in bytes
	Curmsgs int64 // mq_curmsgs: messages now in the queue
	_       [4]int64
}

// Sigevent is struct sigevent as mq_notify(2) reads it (64 bytes on every
// Linux ABI with 64-bit pointers).
type Sigevent struct {
	Value  uintptr // sigev_value; for SIGEV_THREAD, the address of the NOTIFY_COOKIE_LEN-byte cookie
	Signo  int32   // sigev_signo; for SIGEV_THREAD, the netlink socket to notify
	Notify int32   // sigev_notify: SIGEV_*
	Tid    int32   // sigev_notify_thread_id (SIGEV_THREAD_ID; the start of the union)
	_      [11]int32
}

const (
	// mq_notify(2) kinds of notification.
	SIGEV_SIGNAL    = 0 // send Signo to the process, si_value = Value
	SIGEV_NONE      = 1 // register, but deliver nothing
	SIGEV_THREAD    = 2 // the kernel's form: send the cookie to the netlink socket Signo
	SIGEV_THREAD_ID = 4 // timers only; mq_notify rejects it with EINVAL

	// The last byte of a SIGEV_THREAD cookie says why it was sent.
	NOTIFY_NONE       = 0
	NOTIFY_WOKENUP    = 1
	NOTIFY_REMOVED    = 2
	NOTIFY_COOKIE_LEN = 32

	// MQ_PRIO_MAX is one more than the largest message priority.
	MQ_PRIO_MAX = 32768

	// RLIMIT_MSGQUEUE bounds the bytes a user's queues may take.
	RLIMIT_MSGQUEUE = linux.RLIMIT_MSGQUEUE
)

var mqZero uintptr // the address passed for empty buffers

func mqBuf(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return unsafe.Pointer(&mqZero)
	}
	return unsafe.Pointer(&b[0])
}

// MqOpen is mq_open(2): mq_open(name, oflag, mode, attr). name is the
// kernel's form, without a leading '/' (one there makes the kernel refuse
// the name with EACCES). attr is read only with O_CREAT; nil asks for the
// defaults in /proc/sys/fs/mqueue/{msg,msgsize}_default.
func MqOpen(name string, oflag int, mode uint32, attr *MqAttr) (mqd int, err error) {
	p, err := linux.BytePtrFromString(name)
	if err != nil {
		return -1, err
	}
	r, _, errno := syscall.Syscall6(linux.SYS_MQ_OPEN,
		uintptr(unsafe.Pointer(p)), uintptr(oflag), uintptr(mode), uintptr(unsafe.Pointer(attr)), 0, 0)
	if errno != 0 {
		return -1, errno
	}
	return int(r), nil
}

// MqUnlink is mq_unlink(2); name is the kernel's form, as for MqOpen.
func MqUnlink(name string) error {
	p, err := linux.BytePtrFromString(name)
	if err != nil {
		return err
	}
	_, _, errno := syscall.Syscall(linux.SYS_MQ_UNLINK, uintptr(unsafe.Pointer(p)), 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// MqTimedsend is mq_timedsend(2). abstime is an absolute CLOCK_REALTIME
// deadline, nil to wait without one; on an O_NONBLOCK descriptor a full
// queue fails at once with EAGAIN. Other errors: ETIMEDOUT, EINTR,
// EMSGSIZE (len(msg) > mq_msgsize), EINVAL (prio >= MQ_PRIO_MAX), EBADF.
func MqTimedsend(mqd int, msg []byte, prio uint32, abstime *Timespec) error {
	_, _, errno := syscall.Syscall6(linux.SYS_MQ_TIMEDSEND,
		uintptr(mqd), uintptr(mqBuf(msg)), uintptr(len(msg)), uintptr(prio), uintptr(unsafe.Pointer(abstime)), 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// MqTimedreceive is mq_timedreceive(2): it removes the oldest message of
// the highest priority into msg and returns its length, storing its
// priority in *prio if prio is not nil. len(msg) below mq_msgsize fails
// with EMSGSIZE whatever the message's length. Waiting is as for
// MqTimedsend, with EAGAIN for an empty queue.
func MqTimedreceive(mqd int, msg []byte, prio *uint32, abstime *Timespec) (n int, err error) {
	r, _, errno := syscall.Syscall6(linux.SYS_MQ_TIMEDRECEIVE,
		uintptr(mqd), uintptr(mqBuf(msg)), uintptr(len(msg)), uintptr(unsafe.Pointer(prio)), uintptr(unsafe.Pointer(abstime)), 0)
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}

// MqNotify is mq_notify(2). A non-nil sev registers this process as the
// queue's one notifiee (EBUSY if another process is), notified once when a
// message arrives on the empty queue while nobody waits in
// mq_timedreceive; nil removes this process's registration.
func MqNotify(mqd int, sev *Sigevent) error {
	_, _, errno := syscall.Syscall(linux.SYS_MQ_NOTIFY, uintptr(mqd), uintptr(unsafe.Pointer(sev)), 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// MqGetsetattr is mq_getsetattr(2): it stores the queue's attributes in
// *oldattr if not nil, then, if newattr is not nil, sets the descriptor's
// O_NONBLOCK from newattr.Flags (the other fields are ignored).
func MqGetsetattr(mqd int, newattr, oldattr *MqAttr) error {
	_, _, errno := syscall.Syscall(linux.SYS_MQ_GETSETATTR,
		uintptr(mqd), uintptr(unsafe.Pointer(newattr)), uintptr(unsafe.Pointer(oldattr)))
	if errno != 0 {
		return errno
	}
	return nil
}
