package shmnet

import "syscall"

// Errors of a connection's data path. Read and Write return them wrapped in
// a *net.OpError, like every other error but io.EOF; match with errors.Is.
//
// Elsewhere shmnet reuses the standard and the mproc sentinels:
//   - net.ErrClosed: a call on a Conn or Listener after its own Close,
//     including calls that Close interrupted.
//   - os.ErrDeadlineExceeded: a deadline passed (the *net.OpError's
//     Timeout method reports true).
//   - mproc.ErrAuth: the authkey handshake failed: a wrong key on either
//     side, a Dial without a Key to a Listener with one, or a Dial with a
//     Key to a Listener without one (which cannot prove it).
//   - mproc.ErrProtocol: the path is not a shmnet listener.
//   - mproc.ErrCorrupt, mproc.ErrVersion, mproc.ErrKind: Dial refused the
//     shared segment the listener sent (damaged, another layout version,
//     not a shmnet segment); ErrCorrupt also when a ring's counters become
//     impossible during the connection.
var (
	// ErrBrokenPipe: a Write found that the peer reads no more: it closed
	// the connection (Close) or its read side (CloseRead), or this end
	// called CloseWrite. It matches syscall.EPIPE too, as a socket's error
	// would.
	ErrBrokenPipe error = &errnoError{"mproc: shmnet: broken pipe: the peer reads no more", syscall.EPIPE}
	// ErrPeerGone: the peer's process died, or its end vanished without
	// Close. Read returns every byte the peer wrote before, then this;
	// Write returns it at once. It matches syscall.ECONNRESET too.
	ErrPeerGone error = &errnoError{"mproc: shmnet: peer gone without closing the connection", syscall.ECONNRESET}
)

// errnoError is a sentinel that also matches the errno a socket would
// give, for code written against sockets (errors.Is(err, syscall.EPIPE)).
type errnoError struct {
	msg   string
	errno syscall.Errno
}

func (e *errnoError) Error() string        { return e.msg }
func (e *errnoError) Is(target error) bool { return target == e.errno }
