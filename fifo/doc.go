// Package fifo provides named pipes (FIFOs): Create and Remove them, open
// either end by path with waits bounded by a context, read and write bytes
// or atomic messages. Any process can be the other end: an mproc child, a
// shell (echo hi > path, cat path), a C or Python program.
//
//	if err := fifo.Create(path, 0o600); err != nil { ... }
//	r, err := fifo.OpenReader(ctx, path) // in one process
//	w, err := fifo.OpenWriter(ctx, path) // in another
//	err = w.WriteMessage(ctx, []byte("hello"))
//	msg, err := r.ReadMessage(ctx)
//
// # Opening
//
// open(2) of a FIFO blocks until the other end is opened, forever and
// regardless of any context. This package opens with O_NONBLOCK instead
// and waits itself, bounded by ctx:
//
//   - [OpenWriter] waits until a process has the FIFO open for reading
//     (a non-blocking open fails with ENXIO until then; it retries with a
//     backoff of 0.5 to 10 ms).
//   - [OpenReader] waits until a writer has shown itself since the open:
//     it has the FIFO open, or there are bytes in it, or one came and went
//     (see OpenReader for how each is seen).
//   - [OpenServer] opens for reading without waiting, as a reader that is
//     also a writer (O_RDWR), so that it never sees the end of the stream.
//
// Every open checks that the path names a FIFO, by path and then on the
// open descriptor: a regular file, directory or device is never read,
// written, truncated or waited on ([ErrNotFIFO]). Descriptors are
// close-on-exec and in Go's poller, so reads and writes honour the
// context given to ReadContext, WriteContext, ReadMessage and
// WriteMessage, and Close wakes them.
//
// # End of stream and no reader
//
// A [Reader] from OpenReader returns io.EOF once every writer has closed
// the FIFO and its bytes are read, and keeps returning io.EOF: bytes from
// a later writer are for a new Reader. A server that reads writer after
// writer uses OpenServer, whose reads wait between writers instead.
//
// A [Writer] whose FIFO has no reader left fails its writes with
// [ErrNoReader] (EPIPE, also matching syscall.EPIPE), and the process
// lives on: the Go runtime ignores SIGPIPE on descriptors other than
// standard output and error. Bytes written but not yet read when the last
// reader closes are lost.
//
// # Messages and atomicity
//
// The kernel writes at most PIPE_BUF ([PipeBuf], 4096 on Linux) bytes to a
// pipe atomically: they are never interleaved with another writer's. Longer
// writes may be split and interleaved. [Writer.WriteMessage] frames a
// payload of at most [MaxMessage] bytes with a 4-byte length header and
// writes it with one write(2), so any number of writer processes can share
// one FIFO, and [Reader.ReadMessage] returns the payloads one by one. The
// format (see [HeaderSize]) is text so that a shell can write it:
//
//	printf '%04x%s' $(( ${#msg} + 4 )) "$msg" > "$fifo"
//
// # Caveats
//
//   - FIFOs carry bytes within one machine; a FIFO on a network file system
//     is local to each machine.
//   - There is no way to know which writer wrote what; put it in the
//     message.
//   - Remove checks that the path is a FIFO and then unlinks it: two steps,
//     so a FIFO replaced by another file in between is that file that goes.
//   - Linux only.
package fifo
