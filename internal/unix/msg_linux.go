//go:build linux && (amd64 || arm64 || riscv64 || loong64)

// System V message queues: msgget(2), msgsnd(2), msgrcv(2), msgctl(2) and
// ftok(3), and the thread-directed signal that interrupts a blocked msgsnd
// or msgrcv.
//
// x/sys (v0.49) has the syscall numbers and the IPC_* constants but no
// msg* wrappers, so they are written here in its shape. MsqidDs is the
// kernel's struct msqid64_ds in its asm-generic 64-bit layout, which these
// four architectures use (ppc64, mips64, s390x and the 32-bit ones lay it
// out differently: hence the build constraint).

package unix

import (
	"syscall"
	"unsafe"

	linux "golang.org/x/sys/unix"
)

// System V IPC flags and commands (include/uapi/linux/ipc.h, msg.h).
const (
	IPC_PRIVATE = linux.IPC_PRIVATE
	IPC_CREAT   = linux.IPC_CREAT
	IPC_EXCL    = linux.IPC_EXCL
	IPC_NOWAIT  = linux.IPC_NOWAIT
	IPC_RMID    = linux.IPC_RMID
	IPC_SET     = linux.IPC_SET
	IPC_STAT    = linux.IPC_STAT

	MSG_NOERROR = 0o10000 // truncate a message longer than the buffer
	MSG_EXCEPT  = 0o20000 // msgtyp > 0: the first message of any other type
	MSG_COPY    = 0o40000 // copy message number msgtyp without removing it

	E2BIG  = linux.E2BIG
	EACCES = linux.EACCES
	EIDRM  = linux.EIDRM
	ENOMSG = linux.ENOMSG
	ENOSPC = linux.ENOSPC

	SIGURG = linux.SIGURG

	SIG_DFL = 0
	SIG_IGN = 1
)

// IpcPerm is struct ipc64_perm.
type IpcPerm = linux.SysvIpcPerm

// MsqidDs is struct msqid64_ds, what IPC_STAT fills and IPC_SET reads
// (only Perm.Uid, Perm.Gid, Perm.Mode and Qbytes are read).
type MsqidDs struct {
	Perm   IpcPerm
	Stime  int64  // last msgsnd, seconds since the epoch; 0 if none
	Rtime  int64  // last msgrcv
	Ctime  int64  // creation or last IPC_SET
	Cbytes uint64 // bytes of message text now queued
	Qnum   uint64 // messages now queued
	Qbytes uint64 // the most bytes of text the queue holds
	Lspid  int32  // pid of the last msgsnd
	Lrpid  int32  // pid of the last msgrcv
	_      [2]uint64
}

// MsgTypeSize is the size of the long that starts every message buffer
// (struct msgbuf { long mtype; char mtext[]; }).
const MsgTypeSize = 8

// Msgget is msgget(2): the identifier of the queue with key, created when
// msgflg has IPC_CREAT (low 9 bits: its permissions).
func Msgget(key int, msgflg int) (int, error) {
	r, _, errno := syscall.Syscall(linux.SYS_MSGGET, uintptr(key), uintptr(msgflg), 0)
	if errno != 0 {
		return -1, errno
	}
	return int(r), nil
}

// Msgsnd is msgsnd(2). msgp is a struct msgbuf: the type as a native-endian
// long in its first MsgTypeSize bytes, then the text; msgsz is
// len(msgp)-MsgTypeSize. It blocks while the queue is full unless msgflg
// has IPC_NOWAIT (then EAGAIN), and fails with EINTR when a signal with a
// handler arrives, whatever SA_RESTART says (signal(7)). EINVAL covers an
// invalid or removed msqid, a type below 1 and a size above msgmax or the
// queue's capacity; EIDRM, a queue removed while waiting.
func Msgsnd(msqid int, msgp []byte, msgflg int) error {
	if len(msgp) < MsgTypeSize {
		return EINVAL
	}
	_, _, errno := syscall.Syscall6(linux.SYS_MSGSND, uintptr(msqid),
		uintptr(unsafe.Pointer(&msgp[0])), uintptr(len(msgp)-MsgTypeSize), uintptr(msgflg), 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// Msgrcv is msgrcv(2): it removes a message chosen by msgtyp (0: the first;
// > 0: the first of that type, or with MSG_EXCEPT of another; < 0: the
// first of the lowest type <= -msgtyp) and copies it into msgp, a struct
// msgbuf with room for len(msgp)-MsgTypeSize bytes of text. It returns the
// length of the text. A longer message fails with E2BIG and stays queued,
// unless MSG_NOERROR truncates it. It blocks while nothing matches unless
// msgflg has IPC_NOWAIT (then ENOMSG), and fails with EINTR on any handled
// signal and EIDRM when the queue is removed while waiting. With MSG_COPY
// (and IPC_NOWAIT), msgtyp is a position in the queue and the message is
// copied, not removed (ENOSYS without CONFIG_CHECKPOINT_RESTORE).
func Msgrcv(msqid int, msgp []byte, msgtyp int64, msgflg int) (int, error) {
	if len(msgp) < MsgTypeSize {
		return -1, EINVAL
	}
	r, _, errno := syscall.Syscall6(linux.SYS_MSGRCV, uintptr(msqid),
		uintptr(unsafe.Pointer(&msgp[0])), uintptr(len(msgp)-MsgTypeSize), uintptr(msgtyp), uintptr(msgflg), 0)
	if errno != 0 {
		return -1, errno
	}
	return int(r), nil
}

// Msgctl is msgctl(2) for IPC_STAT (fills buf), IPC_SET (reads buf) and
// IPC_RMID (buf may be nil; every waiter then fails with EIDRM).
func Msgctl(msqid int, cmd int, buf *MsqidDs) (int, error) {
	r, _, errno := syscall.Syscall(linux.SYS_MSGCTL, uintptr(msqid), uintptr(cmd), uintptr(unsafe.Pointer(buf)))
	if errno != 0 {
		return -1, errno
	}
	return int(r), nil
}

// Ftok is ftok(3) as glibc computes it from stat(2) of path:
//
//	key = (proj & 0xff) << 24 | (st_dev & 0xff) << 16 | (st_ino & 0xffff)
//
// returned as a key_t (a signed 32-bit int). Only the low bits of the
// device and inode take part, so two files can share a key, and the key
// changes when the file is replaced (a new inode). proj 0 is allowed here;
// POSIX leaves it unspecified.
func Ftok(path string, proj int) (int, error) {
	var st Stat_t
	if err := linux.Stat(path, &st); err != nil {
		return -1, err
	}
	key := uint32(proj&0xff)<<24 | uint32(st.Dev&0xff)<<16 | uint32(st.Ino&0xffff)
	return int(int32(key)), nil
}

// Gettid is gettid(2).
func Gettid() int { return linux.Gettid() }

// Tgkill is tgkill(2): send sig to thread tid of thread group tgid.
func Tgkill(tgid, tid int, sig Signal) error { return linux.Tgkill(tgid, tid, sig) }

// SigactionHandler returns the handler of sig (rt_sigaction(2) with a nil
// new action): SIG_DFL, SIG_IGN or the address of a handler. Only the
// first word of the kernel's struct sigaction is read; the buffer is large
// enough for every layout (with or without sa_restorer).
func SigactionHandler(sig Signal) (uintptr, error) {
	var old [4]uint64
	_, _, errno := syscall.RawSyscall6(linux.SYS_RT_SIGACTION, uintptr(sig), 0, uintptr(unsafe.Pointer(&old)), 8, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return uintptr(old[0]), nil
}
