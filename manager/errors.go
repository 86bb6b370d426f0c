package manager

import (
	"errors"
	"fmt"
	"strings"
)

// Errors of clients. Match with errors.Is.
var (
	// ErrServerGone: the server closed the connection or could not be
	// reached (it died, or shut down) before a call got its reply.
	ErrServerGone = errors.New("mproc: manager server gone")
	// ErrProtocol: a message broke the manager protocol (not the tuple
	// the protocol says, an unknown reply kind).
	ErrProtocol = errors.New("mproc: manager protocol error")
	// ErrNotFound: a Get of a key a dict does not hold, an attribute a
	// Namespace does not have (Python's KeyError, AttributeError).
	ErrNotFound = errors.New("mproc: not found")
)

// RemoteError is an exception a server raised for a call: its Python
// class (module and name) and arguments, as in ('#ERROR', exception)
// replies, or the text of a ('#TRACEBACK', text) reply (Name is then
// "Traceback"). Errors of well-known classes unwrap to a sentinel:
// queue.Empty to mproc.ErrEmpty, queue.Full to mproc.ErrFull,
// queue.ShutDown to mproc.ErrShutdown, KeyError and AttributeError to
// ErrNotFound, threading.BrokenBarrierError to mproc.ErrBrokenBarrier.
type RemoteError struct {
	Module, Name string
	Args         []any
	Err          error // the sentinel it maps to, or nil
}

func (e *RemoteError) Error() string {
	var b strings.Builder
	b.WriteString("manager: ")
	if e.Module != "" && e.Module != "builtins" {
		b.WriteString(e.Module + ".")
	}
	b.WriteString(e.Name)
	switch len(e.Args) {
	case 0:
	case 1:
		fmt.Fprintf(&b, ": %v", e.Args[0])
	default:
		fmt.Fprintf(&b, ": %v", e.Args)
	}
	return b.String()
}

func (e *RemoteError) Unwrap() error { return e.Err }
