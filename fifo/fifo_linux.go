package fifo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"mproc/internal/unix"
)

// PipeBuf must be the kernel's PIPE_BUF: a negative constant does not
// convert to uint, so this fails to compile if they differ.
const _ = uint(PipeBuf-unix.PIPE_BUF) + uint(unix.PIPE_BUF-PipeBuf)

// Create makes a FIFO (named pipe) at path with the permission bits of
// mode, less the process's umask; mode may hold nothing but permission
// bits. Create never opens, truncates or removes anything.
//
// If anything exists at path the error matches os.ErrExist; if that is
// not a FIFO (a regular file, a directory, a symbolic link, ...) it also
// matches ErrNotFIFO, and the file is left untouched. A missing directory
// on the way matches os.ErrNotExist; an empty path, or one holding a NUL
// byte, os.ErrInvalid.
func Create(path string, mode os.FileMode) error {
	if err := checkPath(path); err != nil {
		return fmt.Errorf("create fifo %q: %w", path, err)
	}
	if mode&^os.ModePerm != 0 {
		return fmt.Errorf("create fifo %q: mode %v holds more than permission bits: %w", path, mode, os.ErrInvalid)
	}
	err := unix.Mkfifo(path, uint32(mode))
	if err == unix.EEXIST {
		if fi, lerr := os.Lstat(path); lerr == nil && fi.Mode().Type() != fs.ModeNamedPipe {
			return fmt.Errorf("create fifo %q: %w: it is %s: %w", path, os.ErrExist, kindOf(fi.Mode()), ErrNotFIFO)
		}
	}
	if err != nil {
		return fmt.Errorf("create fifo %q: %w", path, err)
	}
	return nil
}

// Remove removes the FIFO at path (not a symbolic link to one). Anything
// else at path is left in place, and the error matches ErrNotFIFO; a
// missing path matches os.ErrNotExist.
//
// The check and the unlink are two steps: a FIFO replaced by another file
// between them is that other file that goes.
func Remove(path string) error {
	if err := checkPath(path); err != nil {
		return fmt.Errorf("remove fifo %q: %w", path, err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return fmt.Errorf("remove fifo %q: %w", path, pathErr(err))
	}
	if fi.Mode().Type() != fs.ModeNamedPipe {
		return fmt.Errorf("remove fifo %q: %w", path, notFIFO(fi.Mode()))
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("remove fifo %q: %w", path, pathErr(err))
	}
	return nil
}

// OpenReader opens the FIFO at path for reading, and waits until the
// writing side has shown itself, or ctx is done. "Shown itself" means one
// of, since the open:
//   - a writer has the FIFO open (what open(2) without O_NONBLOCK waits for);
//   - there are bytes in it (left by earlier writers, or just written);
//   - a writer opened and closed it again, written to it or not.
//
// Bytes and hang-ups are seen at once (the descriptor is in Go's poller); a
// writer that holds the FIFO open without writing is seen within about
// 10 ms (a non-blocking read fails with EAGAIN instead of finding the end).
//
// Reads then return io.EOF once no writer has the FIFO open and its bytes
// are read. To serve writer after writer without seeing the end in between,
// use OpenServer.
//
// path must name a FIFO, checked before opening and again, on the open
// descriptor, after: anything else fails with ErrNotFIFO, without blocking
// and without being read. A symbolic link to a FIFO is followed.
func OpenReader(ctx context.Context, path string) (*Reader, error) {
	f, err := open(ctx, path, unix.O_RDONLY)
	if err != nil {
		return nil, fmt.Errorf("open fifo %q for reading: %w", path, err)
	}
	r := newReader(f, path)
	if err := r.awaitWriter(ctx); err != nil {
		f.Close()
		return nil, fmt.Errorf("open fifo %q for reading: waiting for a writer: %w", path, err)
	}
	return r, nil
}

// OpenServer opens the FIFO at path to read what any number of writers,
// one after another or at once, send to it, for as long as it is open: the
// Reader is also a writer of the FIFO (it opens it O_RDWR, which Linux
// allows), so its reads never return io.EOF: between writers they wait for
// the next one. It does not wait for anything, so it takes no context;
// writers' opens succeed as soon as it returns.
//
// path must name a FIFO, checked as for OpenReader.
func OpenServer(path string) (*Reader, error) {
	f, err := open(context.Background(), path, unix.O_RDWR)
	if err != nil {
		return nil, fmt.Errorf("open fifo %q for serving: %w", path, err)
	}
	return newReader(f, path), nil
}

// OpenWriter opens the FIFO at path for writing, waiting until a process
// has it open for reading, or ctx is done. A reader is noticed within about
// 10 ms: a non-blocking open fails with ENXIO while there is none, and
// OpenWriter tries again with a backoff of 0.5 to 10 ms; ctx ending stops
// the wait at once.
//
// path must name a FIFO, checked as for OpenReader: OpenWriter never
// writes to, or truncates, anything else.
func OpenWriter(ctx context.Context, path string) (*Writer, error) {
	var b backoff
	for {
		f, err := open(ctx, path, unix.O_WRONLY)
		if err == nil {
			return newWriter(f, path), nil
		}
		if err != unix.ENXIO {
			return nil, fmt.Errorf("open fifo %q for writing: %w", path, err)
		}
		if err := sleep(ctx, b.next()); err != nil {
			return nil, fmt.Errorf("open fifo %q for writing: waiting for a reader: %w", path, err)
		}
	}
}

// open validates path, checks that it names a FIFO and opens it with
// flags, O_NONBLOCK and O_CLOEXEC. The returned file is in Go's poller. The
// error is the bare cause (an errno, ErrNotFIFO, os.ErrInvalid, ctx's).
func open(ctx context.Context, path string, flags int) (*os.File, error) {
	if err := checkPath(path); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// First by path, so that a device is not even opened...
	fi, err := os.Stat(path)
	if err != nil {
		return nil, pathErr(err)
	}
	if fi.Mode().Type() != fs.ModeNamedPipe {
		return nil, notFIFO(fi.Mode())
	}
	// ...then on the descriptor, against a path changed in between.
	return openChecked(path, flags)
}

// openChecked opens path with flags, O_NONBLOCK (opening never waits, for
// the other end of a FIFO or on whatever replaced it) and O_CLOEXEC, and
// returns it if fstat says it is a FIFO.
func openChecked(path string, flags int) (*os.File, error) {
	raw, err := unix.Open(path, flags|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(raw), path)
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, pathErr(err)
	}
	if fi.Mode().Type() != fs.ModeNamedPipe {
		f.Close()
		return nil, notFIFO(fi.Mode())
	}
	return f, nil
}

// checkPath refuses the paths no system call should see.
func checkPath(path string) error {
	switch {
	case path == "":
		return fmt.Errorf("empty path: %w", os.ErrInvalid)
	case strings.IndexByte(path, 0) >= 0:
		return fmt.Errorf("path holds a NUL byte: %w", os.ErrInvalid)
	}
	return nil
}

func notFIFO(m fs.FileMode) error { return fmt.Errorf("it is %s: %w", kindOf(m), ErrNotFIFO) }

func kindOf(m fs.FileMode) string {
	switch m.Type() {
	case 0:
		return "a regular file"
	case fs.ModeDir:
		return "a directory"
	case fs.ModeSymlink:
		return "a symbolic link"
	case fs.ModeSocket:
		return "a socket"
	case fs.ModeDevice | fs.ModeCharDevice:
		return "a character device"
	case fs.ModeDevice:
		return "a block device"
	case fs.ModeNamedPipe:
		return "a FIFO"
	}
	return "an irregular file"
}

// pathErr drops the *fs.PathError around err: callers name the path
// themselves.
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// ioErr gives the error of a read or write bounded by ctx the package's
// form: the operation and path, ctx's error for a deadline ctx set,
// ErrNoReader for EPIPE. io.EOF and nil pass unchanged.
func ioErr(ctx context.Context, op, path string, err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	err = pathErr(err)
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		// Deadlines are only ever ctx's: the timer may beat ctx.Err by a hair.
		if e := ctx.Err(); e != nil {
			err = e
		} else if _, ok := ctx.Deadline(); ok {
			err = context.DeadlineExceeded
		}
	case err == unix.EPIPE:
		err = fmt.Errorf("%w (%w)", ErrNoReader, err)
	}
	return fmt.Errorf("%s fifo %q: %w", op, path, err)
}

// Waits for the other end that no event announces (a writer's open
// waiting for a reader; a reader's open for a writer that does not write)
// look again after a backoff.
const (
	minBackoff = 500 * time.Microsecond
	maxBackoff = 10 * time.Millisecond
)

// backoff is the current wait between two looks; the zero value starts at
// minBackoff.
type backoff time.Duration

func (b *backoff) next() time.Duration {
	*b = backoff(min(max(2*time.Duration(*b), minBackoff), maxBackoff))
	return time.Duration(*b)
}

// sleep waits for d, or until ctx is done and returns its error.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
