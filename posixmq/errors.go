package posixmq

import (
	"errors"
	"fmt"
	"strconv"

	"mproc"
)

// Errors from opening, creating and removing queues. Each is wrapped in an
// [*Error] with the queue's name and the operation; match with errors.Is.
// A missing queue is os.ErrNotExist, an existing name with O_EXCL
// os.ErrExist, a queue whose mode refuses this user os.ErrPermission.
var (
	// ErrInvalidName: the name cannot name a queue: empty, "/" alone, a
	// '/' after the leading one, "." or "..", a NUL byte, or longer than
	// NameMax bytes. It is mproc.ErrInvalidName.
	ErrInvalidName = mproc.ErrInvalidName
	// ErrLimit: creating the queue would pass a kernel limit. The error
	// is a [*LimitError] naming the limit and its value.
	ErrLimit = errors.New("mproc: message queue limit exceeded")
)

// Errors from sending and receiving. The first four are mproc's own
// sentinels, so they keep their identity when a child returns them.
var (
	// ErrFull: TrySend found the queue full.
	ErrFull = mproc.ErrFull
	// ErrEmpty: TryReceive found the queue empty.
	ErrEmpty = mproc.ErrEmpty
	// ErrTooLarge: a message longer than the queue's MsgSize.
	ErrTooLarge = mproc.ErrTooLarge
	// ErrBufferTooSmall: a receive buffer shorter than the queue's
	// MsgSize, which the kernel refuses even when the message would fit.
	ErrBufferTooSmall = mproc.ErrBufferTooSmall
	// ErrPriority: a priority of MaxPriority+1 or more.
	ErrPriority = errors.New("mproc: message priority out of range")
	// ErrReadOnly and ErrWriteOnly: a send on a queue opened O_RDONLY, or
	// a receive on one opened O_WRONLY.
	ErrReadOnly  = errors.New("mproc: message queue opened read-only")
	ErrWriteOnly = errors.New("mproc: message queue opened write-only")
)

// Error is the error of an operation on a queue: the operation ("open",
// "send", "receive", "notify", "attr", "close", "unlink"), the queue's name
// as given, and the cause, which Unwrap returns.
type Error struct {
	Op   string
	Name string
	Err  error
}

func (e *Error) Error() string {
	return "posixmq: " + e.Op + " " + strconv.Quote(e.Name) + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// LimitError explains a queue the kernel would not create because of a
// limit: which quantity asked too much, the limit, and where it is set.
// It matches ErrLimit and the kernel's errno (EINVAL, EMFILE or ENOSPC)
// with errors.Is.
type LimitError struct {
	Field string // "MaxMsgs", "MsgSize", "queues" or "bytes"
	Value int64  // what was asked for; for "queues", unknown (0)
	Limit string // the limit: "/proc/sys/fs/mqueue/msg_max", "RLIMIT_MSGQUEUE", ...
	Max   int64  // the limit's value, or -1 if it could not be read
	Err   error  // the errno
}

func (e *LimitError) Error() string {
	switch e.Field {
	case "queues":
		return fmt.Sprintf("the IPC namespace already holds %s = %d queues", e.Limit, e.Max)
	case "bytes":
		return fmt.Sprintf("the queue's %d bytes (messages plus kernel bookkeeping) would take this user's queues past %s = %d bytes",
			e.Value, e.Limit, e.Max)
	}
	return fmt.Sprintf("%s %d exceeds %s = %d", e.Field, e.Value, e.Limit, e.Max)
}

func (e *LimitError) Is(target error) bool { return target == ErrLimit }

func (e *LimitError) Unwrap() error { return e.Err }
