package mproc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"

	"mproc/internal/errcode"
	"mproc/internal/psync"
	"mproc/internal/shm"
	"mproc/internal/wire"
)

// Errors from starting processes. Match with errors.Is.
var (
	// ErrNotRegistered: the function was not registered with Register at
	// package level in this binary, so a child could not run it.
	ErrNotRegistered = errors.New("mproc: function not registered")
	// ErrNoMain: Start was called in a program whose main does not call
	// Main first, so a child would run main instead of the function.
	ErrNoMain = errors.New("mproc: mproc.Main was not called at the start of main")
	// ErrNotHandle: a handle was encoded outside the argument of Start.
	ErrNotHandle = errors.New("mproc: handle passed outside the argument of Start")
)

// Causes of a child's context being cancelled; see context.Cause.
var (
	// ErrTerminated: the process received SIGTERM (Process.Terminate).
	ErrTerminated = errors.New("mproc: terminated")
	// ErrParentDied: the parent process is gone.
	ErrParentDied = errors.New("mproc: parent process died")
)

// Errors from opening shared objects (segments). Each is wrapped with the
// object's name and the operation.
var (
	// ErrCorrupt: not a valid mproc segment: truncated, bad checksum, wrong
	// magic, not a regular file or a symbolic link, or still uninitialised
	// a second after it appeared.
	ErrCorrupt = shm.ErrCorrupt
	// ErrVersion: the segment was written by an incompatible mproc layout.
	ErrVersion = shm.ErrVersion
	// ErrKind: the segment holds another kind of object.
	ErrKind = shm.ErrKind
	// ErrInvalidName: the name cannot name a shared object: empty, longer
	// than 200 bytes, starting with '.', or holding anything but ASCII
	// letters, digits, '.', '_' and '-'.
	ErrInvalidName = shm.ErrInvalidName
)

// Errors from synchronisation objects.
var (
	// ErrOwnerDead: the lock was acquired, but its previous holder died
	// holding it, so the state it protects may be inconsistent.
	ErrOwnerDead = psync.ErrOwnerDead
	// ErrNotOwner: an unlock by a process (or RLock handle) that does not
	// hold the lock.
	ErrNotOwner = psync.ErrNotOwner
	// ErrOverRelease: a BoundedSemaphore released past its initial value.
	ErrOverRelease = psync.ErrOverRelease
	// ErrBrokenBarrier: the barrier was aborted, reset, timed out in a
	// waiter, or lost a waiting party to death.
	ErrBrokenBarrier = psync.ErrBrokenBarrier
)

// Errors from queues.
var (
	// ErrFull: a TryPut found the queue full.
	ErrFull = errors.New("mproc: queue full")
	// ErrEmpty: a TryGet found the queue empty.
	ErrEmpty = errors.New("mproc: queue empty")
	// ErrShutdown: the queue was shut down (Shutdown) and, for gets,
	// drained. (Using a handle after its own Close is os.ErrClosed.)
	ErrShutdown = errors.New("mproc: queue shut down")
	// ErrTooLarge: a message exceeds the queue's maximum message size.
	ErrTooLarge = errors.New("mproc: message too large")
	// ErrTooManyTaskDone: TaskDone was called more times than values were
	// put in a JoinableQueue.
	ErrTooManyTaskDone = errors.New("mproc: TaskDone called more times than values were got")
)

// Errors from connections.
var (
	// ErrFrameTooLarge: a frame is longer than the connection's maximum
	// (SetMaxFrame); the connection is closed, as nothing after it can be
	// trusted.
	ErrFrameTooLarge = wire.ErrFrameTooLarge
	// ErrProtocol: the peer sent something the protocol does not allow (a
	// negative frame length, a file descriptor marker without one).
	ErrProtocol = wire.ErrProtocol
	// ErrAuth: the authkey handshake failed: a wrong key on either side.
	ErrAuth = wire.ErrAuth
	// ErrBufferTooSmall: RecvBytesInto's buffer cannot hold the message;
	// the *BufferTooSmallError holds it.
	ErrBufferTooSmall = errors.New("mproc: buffer too small for the message")
	// ErrReadOnly and ErrWriteOnly: a send on the reading end of a one-way
	// pipe, or a receive on its writing end.
	ErrReadOnly  = errors.New("mproc: connection is read-only")
	ErrWriteOnly = errors.New("mproc: connection is write-only")
	// ErrNotUnixSocket: SendFile or RecvFile on a connection that cannot
	// carry file descriptors (only a Unix socket can); nothing was sent or
	// read, so the stream is intact.
	ErrNotUnixSocket = errors.New("mproc: file descriptors need a Unix socket connection")
)

// ErrFileTruncated: a MapFile's file was truncated under the mapping, so
// the range asked for is gone.
var ErrFileTruncated = errors.New("mproc: mapped file truncated")

// The errors whose identity survives the trip from a child to its parent:
// a child's error that matches one with errors.Is arrives as a
// *RemoteError that matches it too (internal/errcode numbers them; pool
// registers its own after these).
func init() {
	errcode.Register(sentinels...)
}

var sentinels = []error{
	context.Canceled,
	context.DeadlineExceeded,
	ErrNotRegistered,
	ErrNoMain,
	ErrNotHandle,
	ErrTerminated,
	ErrParentDied,
	ErrCorrupt,
	ErrVersion,
	ErrKind,
	ErrInvalidName,
	os.ErrNotExist,
	os.ErrExist,
	os.ErrClosed,
	os.ErrPermission,
	os.ErrDeadlineExceeded,
	ErrOwnerDead,
	ErrNotOwner,
	ErrOverRelease,
	ErrBrokenBarrier,
	ErrFileTruncated,
	ErrFull,
	ErrEmpty,
	ErrShutdown,
	ErrTooLarge,
	ErrTooManyTaskDone,
	ErrFrameTooLarge,
	ErrProtocol,
	ErrAuth,
	ErrBufferTooSmall,
	ErrReadOnly,
	ErrWriteOnly,
	ErrNotUnixSocket,
}

// RemoteError is an error returned by a child's function, as its parent
// sees it. Unwrap yields the mproc or context sentinel the original matched,
// if any, so errors.Is(err, context.Canceled) or errors.Is(err,
// mproc.ErrShutdown) hold across the process boundary.
type RemoteError struct {
	Process string // the child's name
	Pid     int
	Msg     string // the original error's text
	Err     error  // the sentinel it matched, or nil
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("process %q (pid %d): %s", e.Process, e.Pid, e.Msg)
}

func (e *RemoteError) Unwrap() error { return e.Err }

// PanicError reports that a child's function panicked.
type PanicError struct {
	Process string
	Pid     int
	Value   string // the panic value, formatted with %v
	Stack   string // the panicking goroutine's stack
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("process %q (pid %d) panicked: %s", e.Process, e.Pid, e.Value)
}

// ExitError reports a child that ended without returning from its function:
// it called os.Exit with a non-zero code, crashed, or was killed by a
// signal.
type ExitError struct {
	Process string
	Pid     int
	Code    int            // exit status, or -1 when killed by a signal
	Signal  syscall.Signal // the killing signal, or 0
}

func (e *ExitError) Error() string {
	if e.Signal != 0 {
		return fmt.Sprintf("process %q (pid %d) was killed by signal %d (%v)", e.Process, e.Pid, int(e.Signal), e.Signal)
	}
	return fmt.Sprintf("process %q (pid %d) exited with status %d", e.Process, e.Pid, e.Code)
}
