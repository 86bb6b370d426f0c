package fifo

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"mproc/internal/deadline"
	"mproc/internal/unix"
)

// Writer is the writing end of a FIFO, from OpenWriter.
//
// Write and WriteContext write all of p, waiting for room in the FIFO as
// needed; only writes of at most PipeBuf bytes are atomic, so concurrent
// writers (goroutines or processes) may interleave longer ones.
// WriteMessage writes one framed message in one atomic write. Once no
// process has the FIFO open for reading, writes fail with ErrNoReader.
//
// Writes are serialised among goroutines. Close may be called at any time;
// it wakes a blocked write, which returns an error matching os.ErrClosed.
type Writer struct {
	f      *os.File
	path   string
	dl     *deadline.Binder // bounds f's writes
	closed atomic.Bool

	mu  sync.Mutex // held by each write; guards msg
	msg [PipeBuf]byte
}

func newWriter(f *os.File, path string) *Writer {
	w := &Writer{f: f, path: path}
	w.dl = deadline.New(f.SetWriteDeadline)
	return w
}

// Write is WriteContext without a bound: it waits for as long as it takes.
func (w *Writer) Write(p []byte) (int, error) {
	return w.WriteContext(context.Background(), p)
}

// WriteContext writes all of p, waiting for room until ctx is done, and
// returns how much it wrote. A done ctx writes nothing. Without a reader
// it fails with ErrNoReader.
func (w *Writer) WriteContext(ctx context.Context, p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return 0, ioErr(ctx, "write", w.path, err)
	}
	unbind := w.dl.Bind(ctx)
	defer unbind()
	n, err := w.f.Write(p)
	return n, ioErr(ctx, "write", w.path, err)
}

// WriteMessage writes msg as one message of the format ReadMessage reads
// (see HeaderSize), in a single write(2) of at most PipeBuf bytes, which
// the kernel makes atomic: messages of concurrent writers, in this process
// or others, never interleave, and a message is written whole or not at
// all. It waits for room in the FIFO until ctx is done.
//
// A msg longer than MaxMessage fails with ErrTooLarge; without a reader it
// fails with ErrNoReader.
func (w *Writer) WriteMessage(ctx context.Context, msg []byte) error {
	if len(msg) > MaxMessage {
		return fmt.Errorf("write fifo %q: message of %d bytes, over the %d that fit one atomic write (PIPE_BUF %d less the %d-byte header): %w",
			w.path, len(msg), MaxMessage, PipeBuf, HeaderSize, ErrTooLarge)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return ioErr(ctx, "write", w.path, err)
	}
	buf := w.msg[:HeaderSize+len(msg)]
	putHeader(buf, len(buf))
	copy(buf[HeaderSize:], msg)
	rc, err := w.f.SyscallConn()
	if err != nil || w.closed.Load() {
		return ioErr(ctx, "write", w.path, cmp.Or(err, os.ErrClosed))
	}
	unbind := w.dl.Bind(ctx)
	defer unbind()
	var n int
	var werr error
	err = rc.Write(func(raw uintptr) bool {
		// At most PIPE_BUF bytes, non-blocking: all of buf, or EAGAIN and
		// nothing when the FIFO has no room, then a wait for room.
		for {
			n, werr = unix.Write(int(raw), buf)
			if werr != unix.EINTR {
				return werr != unix.EAGAIN
			}
		}
	})
	switch {
	case err != nil && w.closed.Load():
		err = os.ErrClosed // the raw call says poll.ErrFileClosing
	case err == nil:
		err = werr
	}
	if err == nil && n != len(buf) {
		err = fmt.Errorf("%d of %d bytes written: %w", n, len(buf), io.ErrShortWrite)
	}
	return ioErr(ctx, "write", w.path, err)
}

// Close closes the Writer, waking any blocked write. When the last writer
// closes, the readers' reads return io.EOF (a Reader from OpenServer is
// a writer too, and never does). A second Close returns an error matching
// os.ErrClosed.
func (w *Writer) Close() error {
	w.closed.Store(true)
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("close fifo %q: %w", w.path, pathErr(err))
	}
	return nil
}
