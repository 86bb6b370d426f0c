package fifo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"mproc/internal/deadline"
	"mproc/internal/unix"
)

// bufSize is a Reader's buffer: the most a FIFO holds by default, and room
// for the longest message (maxFrame).
const bufSize = 64 << 10

// Reader is the reading end of a FIFO, from OpenReader or OpenServer.
//
// Read and ReadContext return bytes as they come, and io.EOF once every
// writer has closed the FIFO and its bytes are read; from then on they
// always return io.EOF (a later writer's bytes are for a new Reader). A
// Reader from OpenServer never sees the end: it waits for the next writer.
// ReadMessage returns one message of WriteMessage's format. Both may be
// used on one Reader: they share its buffer.
//
// Reads are serialised among goroutines. Close may be called at any time;
// it wakes a blocked read, which returns an error matching os.ErrClosed.
type Reader struct {
	f      *os.File
	path   string
	dl     *deadline.Binder // bounds f's reads
	closed atomic.Bool

	mu   sync.Mutex // held by each read; guards what follows
	buf  []byte     // read from f, not yet returned: buf[r:w]; allocated on first use
	r, w int
	eof  bool  // f returned end of file
	bad  error // the ErrBadMessage that desynchronised ReadMessage
}

func newReader(f *os.File, path string) *Reader {
	r := &Reader{f: f, path: path}
	r.dl = deadline.New(f.SetReadDeadline)
	return r
}

// Read is ReadContext without a bound: it waits for as long as it takes.
func (r *Reader) Read(p []byte) (int, error) {
	return r.ReadContext(context.Background(), p)
}

// ReadContext reads up to len(p) bytes into p, waiting for at least one
// until ctx is done. Bytes already read from the FIFO (by ReadMessage or
// OpenReader) are returned even if ctx is done; otherwise a done ctx
// returns its error without reading.
func (r *Reader) ReadContext(ctx context.Context, p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed.Load() {
		return 0, ioErr(ctx, "read", r.path, os.ErrClosed)
	}
	if r.r < r.w {
		n := copy(p, r.buf[r.r:r.w])
		r.r += n
		return n, nil
	}
	if r.eof {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	if err := ctx.Err(); err != nil {
		return 0, ioErr(ctx, "read", r.path, err)
	}
	unbind := r.dl.Bind(ctx)
	defer unbind()
	n, err := r.f.Read(p)
	if err == io.EOF {
		r.eof = true
	}
	return n, ioErr(ctx, "read", r.path, err)
}

// ReadMessage reads one message written by WriteMessage, or by any peer
// that writes the same format (see HeaderSize): four hexadecimal digits
// giving the length of the message, header included, then the payload,
// which it returns. It waits for the whole message until ctx is done; a
// message cut short by ctx stays buffered, whole, for the next call.
//
// It returns io.EOF at the end of the stream between messages, and an
// error matching io.ErrUnexpectedEOF if the stream ends inside one. A
// header that is not four hexadecimal digits, or says less than 4, is an
// ErrBadMessage, for this and every later call. Messages of up to 65535
// bytes, header included, are accepted, though only those of at most
// PipeBuf bytes are written atomically.
func (r *Reader) ReadMessage(ctx context.Context) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed.Load() {
		return nil, ioErr(ctx, "read", r.path, os.ErrClosed)
	}
	if r.bad != nil {
		return nil, r.bad
	}
	if err := r.need(ctx, HeaderSize); err != nil {
		return nil, err
	}
	size, ok := parseHeader(r.buf[r.r:])
	if !ok {
		r.bad = fmt.Errorf("read fifo %q: header %q: %w", r.path, r.buf[r.r:r.r+HeaderSize], ErrBadMessage)
		return nil, r.bad
	}
	if err := r.need(ctx, size); err != nil {
		return nil, err
	}
	msg := bytes.Clone(r.buf[r.r+HeaderSize : r.r+size])
	r.r += size
	return msg, nil
}

// need waits until the buffer holds n <= bufSize bytes, reading as much
// as the FIFO has each time. At the end of the stream it returns io.EOF if
// the buffer is empty, io.ErrUnexpectedEOF (wrapped) if not.
func (r *Reader) need(ctx context.Context, n int) error {
	if r.w-r.r >= n {
		return nil
	}
	r.grow()
	if r.r+n > len(r.buf) {
		r.w = copy(r.buf, r.buf[r.r:r.w])
		r.r = 0
	}
	bound := false
	for r.w-r.r < n {
		switch {
		case r.eof && r.r == r.w:
			return io.EOF
		case r.eof:
			return ioErr(ctx, "read", r.path, io.ErrUnexpectedEOF)
		case !bound:
			if err := ctx.Err(); err != nil {
				return ioErr(ctx, "read", r.path, err)
			}
			unbind := r.dl.Bind(ctx)
			defer unbind()
			bound = true
		}
		m, err := r.f.Read(r.buf[r.w:])
		r.w += m
		if err == io.EOF {
			r.eof = true
		} else if err != nil {
			return ioErr(ctx, "read", r.path, err)
		}
	}
	return nil
}

// grow allocates the buffer, and empties it if it holds nothing unread.
func (r *Reader) grow() {
	if r.buf == nil {
		r.buf = make([]byte, bufSize)
	}
	if r.r == r.w {
		r.r, r.w = 0, 0
	}
}

// Close closes the Reader, waking any blocked read. Writers of the FIFO
// get ErrNoReader once no reader is left. A second Close returns an error
// matching os.ErrClosed.
func (r *Reader) Close() error {
	r.closed.Store(true)
	if err := r.f.Close(); err != nil {
		return fmt.Errorf("close fifo %q: %w", r.path, pathErr(err))
	}
	return nil
}

// awaitWriter waits until a writer has shown itself since the open (see
// OpenReader), or ctx is done. Data and hang-ups wake it through the
// poller; a writer that only holds the FIFO open is noticed by a probe at
// each end of a backoff slice.
func (r *Reader) awaitWriter(ctx context.Context) error {
	rc, err := r.f.SyscallConn()
	if err != nil {
		return err
	}
	unbind := r.dl.Bind(ctx)
	defer unbind()
	var b backoff
	for {
		if !r.dl.Within(b.next()) {
			return ctx.Err()
		}
		var ready bool
		var perr error
		err := rc.Read(func(raw uintptr) bool {
			ready, perr = r.probe(int(raw))
			return ready || perr != nil
		})
		switch {
		case perr != nil:
			return perr
		case ready:
			return nil
		case err == nil:
			continue
		case !errors.Is(err, os.ErrDeadlineExceeded):
			return pathErr(err)
		case ctx.Err() != nil:
			return ctx.Err()
		}
		if end, ok := ctx.Deadline(); ok && !time.Now().Before(end) {
			return context.DeadlineExceeded
		}
		// The slice ended: look again.
	}
}

// probe looks, without waiting, for a sign of a writer since the open:
// bytes or a hang-up, as poll(2) reports them (a FIFO's reader sees
// POLLHUP only after a writer has come and gone since its open), or a
// writer holding the FIFO open, which makes a read fail with EAGAIN
// instead of finding the end of the stream. Bytes it reads stay in the
// buffer.
func (r *Reader) probe(raw int) (bool, error) {
	pfd := []unix.PollFd{{Fd: int32(raw), Events: unix.POLLIN}}
	if n, err := unix.Poll(pfd, 0); err == nil && n > 0 && pfd[0].Revents != 0 {
		return true, nil // POLLIN, POLLHUP; POLLERR and POLLNVAL for the next read to report
	}
	r.grow()
	for {
		n, err := unix.Read(raw, r.buf[r.w:])
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return true, nil
		case err != nil:
			return false, err
		case n > 0:
			r.w += n
			return true, nil
		}
		return false, nil // no writer, and none came and went
	}
}
