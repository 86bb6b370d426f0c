package fifo

import "errors"

// Errors from Create, Remove and the opens. Each is wrapped with the
// operation and the path ("open fifo \"/run/x\": ..."); match with
// errors.Is. Besides these, os.ErrNotExist (no such path, or a missing
// directory on the way), os.ErrExist (Create over an existing file) and
// os.ErrInvalid (an empty path, or one holding a NUL byte) are wrapped
// where they apply.
var (
	// ErrNotFIFO: the path names something other than a FIFO (a regular
	// file, a directory, a device, a socket, or for Remove a symbolic
	// link). The file is left as it was: it is never written, truncated or
	// removed, and opened only with O_NONBLOCK and only to be closed.
	ErrNotFIFO = errors.New("mproc: not a fifo")
)

// Errors from reading and writing. os.ErrClosed after Close, and a done
// context's error (context.Canceled, context.DeadlineExceeded) are wrapped
// in the same way.
var (
	// ErrNoReader: a write found no process with the FIFO open for
	// reading (EPIPE). The error also matches syscall.EPIPE. The process
	// is not killed by SIGPIPE: the Go runtime turns it into this error
	// on every descriptor but standard output and error.
	ErrNoReader = errors.New("mproc: fifo has no reader")
	// ErrTooLarge: WriteMessage was given more than MaxMessage bytes, which
	// could not be written atomically. Nothing was written.
	ErrTooLarge = errors.New("mproc: fifo message too large")
	// ErrBadMessage: ReadMessage found bytes that are not a message header
	// (see Reader.ReadMessage). The stream cannot be resynchronised:
	// every later ReadMessage returns the same error.
	ErrBadMessage = errors.New("mproc: malformed fifo message")
)
