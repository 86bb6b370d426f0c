package unix

import (
	"syscall"
	"unsafe"

	linux "golang.org/x/sys/unix"
)

// Errno values, flags and types re-exported from x/sys.
type (
	Sockaddr      = linux.Sockaddr
	SockaddrUnix  = linux.SockaddrUnix
	SockaddrInet4 = linux.SockaddrInet4
	SockaddrInet6 = linux.SockaddrInet6
	Errno         = syscall.Errno
	Signal        = syscall.Signal
	Stat_t        = linux.Stat_t
	Timespec      = linux.Timespec
	PollFd        = linux.PollFd
)

const (
	EAGAIN    = linux.EAGAIN
	EBADF     = linux.EBADF
	EEXIST    = linux.EEXIST
	EINTR     = linux.EINTR
	EINVAL    = linux.EINVAL
	ELOOP     = linux.ELOOP
	ENOENT    = linux.ENOENT
	ENOSYS    = linux.ENOSYS
	EPERM     = linux.EPERM
	ESRCH     = linux.ESRCH
	ETIMEDOUT = linux.ETIMEDOUT

	O_RDONLY    = linux.O_RDONLY
	O_RDWR      = linux.O_RDWR
	O_CREAT     = linux.O_CREAT
	O_EXCL      = linux.O_EXCL
	O_CLOEXEC   = linux.O_CLOEXEC
	O_NOFOLLOW  = linux.O_NOFOLLOW
	O_NONBLOCK  = linux.O_NONBLOCK
	O_DIRECTORY = linux.O_DIRECTORY

	S_IFMT  = linux.S_IFMT
	S_IFREG = linux.S_IFREG
	S_IFDIR = linux.S_IFDIR

	PROT_READ     = linux.PROT_READ
	PROT_WRITE    = linux.PROT_WRITE
	MAP_SHARED    = linux.MAP_SHARED
	MAP_ANONYMOUS = linux.MAP_ANONYMOUS
	MS_SYNC       = linux.MS_SYNC

	MFD_CLOEXEC       = linux.MFD_CLOEXEC
	MFD_ALLOW_SEALING = linux.MFD_ALLOW_SEALING
	F_ADD_SEALS       = linux.F_ADD_SEALS
	F_SEAL_SHRINK     = linux.F_SEAL_SHRINK
	F_SEAL_GROW       = linux.F_SEAL_GROW
	F_SEAL_SEAL       = linux.F_SEAL_SEAL
	F_GETFD           = linux.F_GETFD
	F_SETFD           = linux.F_SETFD
	F_DUPFD_CLOEXEC   = linux.F_DUPFD_CLOEXEC
	FD_CLOEXEC        = linux.FD_CLOEXEC

	AF_UNIX        = linux.AF_UNIX
	SOCK_SEQPACKET = linux.SOCK_SEQPACKET
	SOCK_STREAM    = linux.SOCK_STREAM
	SHUT_RD        = linux.SHUT_RD
	SHUT_WR        = linux.SHUT_WR
	AF_INET        = linux.AF_INET
	AF_INET6       = linux.AF_INET6
	SOCK_NONBLOCK  = linux.SOCK_NONBLOCK
	SOL_SOCKET     = linux.SOL_SOCKET
	SO_REUSEADDR   = linux.SO_REUSEADDR
	SO_ERROR       = linux.SO_ERROR
	IPPROTO_TCP    = linux.IPPROTO_TCP
	TCP_NODELAY    = linux.TCP_NODELAY
	TCP_QUICKACK   = linux.TCP_QUICKACK
	EINPROGRESS    = linux.EINPROGRESS
	SOCK_CLOEXEC   = linux.SOCK_CLOEXEC

	POLLIN = linux.POLLIN

	MSG_CTRUNC = linux.MSG_CTRUNC
	MSG_TRUNC  = linux.MSG_TRUNC
	MSG_PEEK   = linux.MSG_PEEK

	MSG_CMSG_CLOEXEC = linux.MSG_CMSG_CLOEXEC
	MSG_NOSIGNAL     = linux.MSG_NOSIGNAL

	SIGKILL = linux.SIGKILL
	SIGSTOP = linux.SIGSTOP
	SIGTERM = linux.SIGTERM
	SIGQUIT = linux.SIGQUIT

	PR_SET_CHILD_SUBREAPER = linux.PR_SET_CHILD_SUBREAPER
)

// Functions re-exported from x/sys.
var (
	Open            = linux.Open
	Close           = linux.Close
	Fstat           = linux.Fstat
	Ftruncate       = linux.Ftruncate
	Fchmod          = linux.Fchmod
	Unlink          = linux.Unlink
	Mmap            = linux.Mmap
	Munmap          = linux.Munmap
	Msync           = linux.Msync
	MemfdCreate     = linux.MemfdCreate
	FcntlInt        = linux.FcntlInt
	Socketpair      = linux.Socketpair
	Kill            = linux.Kill
	Fallocate       = linux.Fallocate
	Getpid          = linux.Getpid
	Getppid         = linux.Getppid
	Poll            = linux.Poll
	Read            = linux.Read
	Write           = linux.Write
	PidfdOpen       = linux.PidfdOpen
	Prctl           = linux.Prctl
	UnixRights      = linux.UnixRights
	SendmsgN        = linux.SendmsgN
	Shutdown        = linux.Shutdown
	Socket          = linux.Socket
	Bind            = linux.Bind
	Listen          = linux.Listen
	Accept4         = linux.Accept4
	Connect         = linux.Connect
	Getsockname     = linux.Getsockname
	GetsockoptInt   = linux.GetsockoptInt
	SetsockoptInt   = linux.SetsockoptInt
	Recvmsg         = linux.Recvmsg
	SetNonblock     = linux.SetNonblock
	ParseUnixRights = linux.ParseUnixRights
	CmsgSpace       = linux.CmsgSpace
	Getdents        = linux.Getdents
	ParseDirent     = linux.ParseDirent

	ParseSocketControlMessage = linux.ParseSocketControlMessage
)

// CloseRangeCloexec marks every descriptor in [first, last] close-on-exec.
func CloseRangeCloexec(first, last uint) error {
	return linux.CloseRange(first, last, linux.CLOSE_RANGE_CLOEXEC)
}

// NsecToTimespec converts nanoseconds to a Timespec.
func NsecToTimespec(ns int64) Timespec { return linux.NsecToTimespec(ns) }

// Socket options, flags and accept(2) errnos for connections and listeners.
const (
	SO_DOMAIN    = linux.SO_DOMAIN
	SO_PEERCRED  = linux.SO_PEERCRED
	MSG_DONTWAIT = linux.MSG_DONTWAIT

	ECONNABORTED = linux.ECONNABORTED
	ECONNRESET   = linux.ECONNRESET
	EHOSTDOWN    = linux.EHOSTDOWN
	EHOSTUNREACH = linux.EHOSTUNREACH
	EMFILE       = linux.EMFILE
	ENETDOWN     = linux.ENETDOWN
	ENETUNREACH  = linux.ENETUNREACH
	ENFILE       = linux.ENFILE
	ENOBUFS      = linux.ENOBUFS
	ENOMEM       = linux.ENOMEM
	ENONET       = linux.ENONET
	ENOPROTOOPT  = linux.ENOPROTOOPT
	EOPNOTSUPP   = linux.EOPNOTSUPP
	EPROTO       = linux.EPROTO
)

// Ucred is a peer's credentials (SO_PEERCRED).
type Ucred = linux.Ucred

// GetsockoptUcred is getsockopt(2) for a struct ucred.
var GetsockoptUcred = linux.GetsockoptUcred

// Iovec is one buffer of a scatter/gather call (struct iovec).
type Iovec = linux.Iovec

// msghdr is the message header of the buffers iov and the control bytes
// oob, without an address.
func msghdr(iov []Iovec, oob []byte) linux.Msghdr {
	var msg linux.Msghdr
	if len(iov) > 0 {
		msg.Iov = &iov[0]
		msg.SetIovlen(len(iov))
	}
	if len(oob) > 0 {
		msg.Control = &oob[0]
		msg.SetControllen(len(oob))
	}
	return msg
}

// RecvmsgIovecs is recvmsg(2) into the buffers iov, with room oob for
// control messages and no source address: x/sys's RecvmsgBuffers without
// its allocations (the caller keeps iov). It returns the bytes read, the
// control bytes received and the message flags.
func RecvmsgIovecs(fd int, iov []Iovec, oob []byte, flags int) (n, oobn, recvflags int, err error) {
	msg := msghdr(iov, oob)
	r, _, errno := syscall.Syscall(linux.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&msg)), uintptr(flags))
	if errno != 0 {
		return 0, 0, 0, errno
	}
	return int(r), int(msg.Controllen), int(msg.Flags), nil
}

// Send is send(2): sendto(2) of the bytes iov describes, with no
// destination address. For one buffer and no control messages it is
// cheaper than sendmsg, which copies in a message header and an iovec
// array first. It returns the bytes sent.
func Send(fd int, iov *Iovec, flags int) (int, error) {
	r, _, errno := syscall.Syscall6(linux.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(iov.Base)), uintptr(iov.Len), uintptr(flags), 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}

// SendmsgIovecs is sendmsg(2) of the buffers iov, with the control
// messages oob and no destination address: x/sys's SendmsgBuffers without
// its allocations. It returns the bytes sent.
func SendmsgIovecs(fd int, iov []Iovec, oob []byte, flags int) (int, error) {
	msg := msghdr(iov, oob)
	r, _, errno := syscall.Syscall(linux.SYS_SENDMSG, uintptr(fd), uintptr(unsafe.Pointer(&msg)), uintptr(flags))
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}

// Eventfd flags and the poll(2) event for room to write.
const (
	EFD_CLOEXEC  = linux.EFD_CLOEXEC
	EFD_NONBLOCK = linux.EFD_NONBLOCK
	POLLOUT      = linux.POLLOUT
)

// Eventfd is eventfd2(2).
var Eventfd = linux.Eventfd

// Ppoll is ppoll(2) with no signal mask change; a nil timeout waits
// without limit.
func Ppoll(fds []PollFd, timeout *Timespec) (int, error) { return linux.Ppoll(fds, timeout, nil) }
