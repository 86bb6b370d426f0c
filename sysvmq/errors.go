package sysvmq

import (
	"fmt"
	"os"
	"strconv"

	"mproc"
)

// Errors of sending and receiving. Match with errors.Is. The ones that are
// mproc's own keep their identity when a child returns them to its parent.
var (
	// ErrFull: TrySend found no room for the message (msgsnd's EAGAIN
	// under IPC_NOWAIT). TrySend returns it unwrapped, so a polling loop
	// allocates nothing.
	ErrFull = mproc.ErrFull
	// ErrEmpty: TryReceive found no message that its type filter selects
	// (msgrcv's ENOMSG under IPC_NOWAIT); the queue may hold others.
	// Returned unwrapped.
	ErrEmpty = mproc.ErrEmpty
	// ErrBufferTooSmall: Receive's buffer cannot hold the message it
	// selected (msgrcv's E2BIG); the message stays queued and the
	// *TooLongError says how long it is.
	ErrBufferTooSmall = mproc.ErrBufferTooSmall
	// ErrTooLarge: Send's message is longer than the kernel's limit for
	// one message (kernel.msgmax) or the queue's capacity (Info.MaxBytes).
	ErrTooLarge = mproc.ErrTooLarge
)

// ErrRemoved: the queue was removed (IPC_RMID), by this process or
// another, before or during the call (EIDRM; EINVAL for an identifier that
// no longer names a queue). It matches os.ErrNotExist too, which is how a
// child's ErrRemoved reads in its parent.
var ErrRemoved = fmt.Errorf("mproc: message queue removed: %w", os.ErrNotExist)

// ErrInvalid: an argument the kernel would refuse: a message type below 1
// for Send, flags other than IPCCreat|IPCExcl, permission bits outside
// 0o777, a capacity below 1, Except without a positive type. It matches
// os.ErrInvalid.
var ErrInvalid = fmt.Errorf("mproc: invalid message queue argument: %w", os.ErrInvalid)

// Error records a failed operation on a queue: the operation, the queue
// and the cause, which errors.Is and errors.As see through. Causes are the
// sentinels above, context errors, and errno values for the rest
// (errors.Is(err, os.ErrPermission) holds for EACCES and EPERM,
// os.ErrExist for EEXIST, os.ErrNotExist for ENOENT).
type Error struct {
	Op  string // "get", "send", "receive", "stat", "set", "remove"
	Key int    // the key, for "get"
	ID  int    // the queue identifier, or -1 when unknown
	Err error
}

func (e *Error) Error() string {
	if e.Op == "get" && e.ID < 0 {
		return "sysvmq: get key " + keyString(e.Key) + ": " + e.Err.Error()
	}
	return "sysvmq: " + e.Op + " queue " + strconv.Itoa(e.ID) + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

func keyString(k int) string {
	if k == IPCPrivate {
		return "IPC_PRIVATE"
	}
	return "0x" + strconv.FormatUint(uint64(uint32(k)), 16)
}

// TooLongError is Receive's error for a message longer than its buffer:
// msgrcv's E2BIG, as MSG_NOERROR is off unless ReceiveOptions.Truncate
// says otherwise. The message stays in the queue. errors.Is(err,
// ErrBufferTooSmall) holds.
//
// The kernel does not say how long the message is; Receive finds out, best
// effort, by copying the queue's messages without removing them (msgrcv
// with MSG_COPY, which needs a kernel with CONFIG_CHECKPOINT_RESTORE and
// read permission). Size is -1 when that failed or the queue changed.
type TooLongError struct {
	Buffer int   // the buffer's length
	Size   int   // the message's length in bytes, or -1 if unknown
	Type   int64 // the message's type, or 0 if unknown
}

func (e *TooLongError) Error() string {
	if e.Size < 0 {
		return fmt.Sprintf("mproc: message longer than the %d-byte buffer (it stays queued)", e.Buffer)
	}
	return fmt.Sprintf("mproc: message of type %d is %d bytes, longer than the %d-byte buffer (it stays queued)", e.Type, e.Size, e.Buffer)
}

// Is reports whether target is ErrBufferTooSmall.
func (e *TooLongError) Is(target error) bool { return target == ErrBufferTooSmall }
