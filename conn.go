package mproc

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"mproc/internal/deadline"
	"mproc/internal/fd"
	"mproc/internal/unix"
	"mproc/internal/wire"
)

// BufferTooSmallError is RecvBytesInto's error for a message longer than
// the buffer, like Python's BufferTooShort: the message is consumed and
// kept here.
type BufferTooSmallError struct {
	Size int    // the buffer's
	Msg  []byte // the whole message
}

func (e *BufferTooSmallError) Error() string {
	return fmt.Sprintf("message of %d bytes does not fit a buffer of %d", len(e.Msg), e.Size)
}

func (e *BufferTooSmallError) Is(target error) bool { return target == ErrBufferTooSmall }

// PipeMode says which way a Pipe carries messages.
type PipeMode int

const (
	// Duplex: both ends send and receive.
	Duplex PipeMode = iota
	// OneWay: the first end only receives, the second only sends
	// (Python's Pipe(duplex=False) returns (reader, writer) the same way).
	OneWay
)

// DefaultMaxFrame is the largest message a Conn accepts unless SetMaxFrame
// says otherwise. The length is checked before anything is allocated.
const DefaultMaxFrame = 256 << 20

// Conn is a message connection over a stream socket (a Unix socket, or TCP
// from Listen and Dial), framed as Python's multiprocessing.connection
// frames messages, so that either end may be a Python Connection:
// Send/Recv carry values through a Codec, SendBytes/RecvBytes raw bytes,
// SendFile/RecvFile file descriptors (Unix sockets only).
//
// After the peer closes, receiving returns io.EOF (Python's EOFError) once
// everything it sent has been read; sending returns an error wrapping
// syscall.EPIPE, never a SIGPIPE. A Conn in the argument of Start reaches
// the child as the same socket.
//
// Sends are serialised among goroutines, and receives among goroutines; a
// send and a receive may run at once.
//
// The socket's open file description is shared with every copy of it
// (File, a child's copy, a descriptor sent elsewhere with SendFile), and the
// programs that get one (Python's Connection, a C read loop) expect blocking
// reads and writes. So a Conn leaves the description in blocking mode and
// never depends on its mode: every recvmsg and sendmsg it makes passes
// MSG_DONTWAIT and waits for readiness in Go's poller, so deadlines and
// cancellation work whatever another holder does to O_NONBLOCK.
type Conn struct {
	f        *os.File
	name     string
	readable bool
	writable bool
	unixSock bool // AF_UNIX: the socket can carry descriptors (SendFile)
	closed   atomic.Bool

	rmu  sync.Mutex
	buf  []byte // received, not yet consumed: buf[r:w]
	r, w int
	eof  bool
	fds  []*fd.FD // descriptors received, not yet claimed by RecvFile
	oob  []byte
	rc   syscall.RawConn
	// The recvmsg in flight: built once, so that a receive allocates
	// nothing (a closure per call would).
	readFn    func(uintptr) bool
	rp        []byte
	rn, roobn int
	rerr      error
	rdl, wdl  *deadline.Binder // bind contexts to f's read and write deadlines
	wbuf      []byte
	maxFrame  int

	wmu sync.Mutex
	// The sendmsg in flight, under wmu, built once like readFn.
	writeFn  func(uintptr) bool
	wp, woob []byte
	wn       int
	werr     error
	codec    Codec
}

// Pipe returns the two ends of a new connection (a socketpair): a duplex
// pair, or for OneWay the receiving end first and the sending end second.
func Pipe(mode PipeMode) (*Conn, *Conn, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("pipe: %w", err)
	}
	a, err := newConn(fds[0], "pipe")
	if err != nil {
		unix.Close(fds[1])
		return nil, nil, err
	}
	b, err := newConn(fds[1], "pipe")
	if err != nil {
		a.Close()
		return nil, nil, err
	}
	if mode == OneWay {
		unix.Shutdown(fds[0], unix.SHUT_WR)
		unix.Shutdown(fds[1], unix.SHUT_RD)
		a.writable, b.readable = false, false
	}
	return a, b, nil
}

// newConn wraps the stream socket raw, which it takes over.
func newConn(raw int, name string) (*Conn, error) {
	c := new(Conn)
	if err := c.init(raw, name); err != nil {
		return nil, err
	}
	return c, nil
}

// init makes c a Conn over raw, which it takes over.
//
// os.NewFile hands a descriptor to Go's poller only if it is non-blocking,
// so O_NONBLOCK is set for that call and cleared after it (see Conn: the
// description stays blocking for the other holders; a holder that reads
// exactly then may see one EAGAIN).
func (c *Conn) init(raw int, name string) error {
	if err := fd.SetCloexec(raw); err != nil {
		unix.Close(raw)
		return fmt.Errorf("connection: %w", err)
	}
	if err := unix.SetNonblock(raw, true); err != nil {
		unix.Close(raw)
		return fmt.Errorf("connection: %w", err)
	}
	domain, _ := unix.GetsockoptInt(raw, unix.SOL_SOCKET, unix.SO_DOMAIN)
	c.f, c.name, c.readable, c.writable, c.maxFrame = os.NewFile(uintptr(raw), name), name, true, true, DefaultMaxFrame
	c.unixSock = domain == unix.AF_UNIX
	if err := unix.SetNonblock(raw, false); err != nil {
		c.f.Close()
		return fmt.Errorf("connection: %w", err)
	}
	rc, err := c.f.SyscallConn()
	if err != nil {
		c.f.Close()
		return err
	}
	c.rc = rc
	c.rdl, c.wdl = deadline.New(c.f.SetReadDeadline), deadline.New(c.f.SetWriteDeadline)
	c.readFn = func(raw uintptr) bool {
		c.rn, c.roobn, _, _, c.rerr = unix.Recvmsg(int(raw), c.rp, c.oob, unix.MSG_CMSG_CLOEXEC|unix.MSG_DONTWAIT)
		return c.rerr != unix.EAGAIN
	}
	c.writeFn = func(raw uintptr) bool {
		c.wn, c.werr = unix.SendmsgN(int(raw), c.wp, c.woob, nil, unix.MSG_NOSIGNAL|unix.MSG_DONTWAIT)
		return c.werr != unix.EAGAIN
	}
	return nil
}

// SetMaxFrame sets the largest message this end accepts (n > 0).
func (c *Conn) SetMaxFrame(n int) {
	c.rmu.Lock()
	c.maxFrame = max(n, 1)
	c.rmu.Unlock()
}

// SetCodec sets the Codec of Send and Recv (DefaultCodec otherwise); use
// pickle.Codec to talk to Python's send and recv.
func (c *Conn) SetCodec(codec Codec) {
	c.wmu.Lock()
	c.rmu.Lock()
	c.codec = codec
	c.rmu.Unlock()
	c.wmu.Unlock()
}

func (c *Conn) codecOf() Codec {
	if c.codec == nil {
		return DefaultCodec
	}
	return c.codec
}

// Close closes this end, and any received descriptors nobody claimed.
func (c *Conn) Close() error {
	c.closed.Store(true)
	err := c.f.Close()
	c.rmu.Lock()
	closeFDs(c.fds)
	c.fds = nil
	c.rmu.Unlock()
	return err
}

// PeerPid returns the process id of the peer of a Unix socket connection,
// as the kernel recorded it when the connection was made (SO_PEERCRED);
// ErrNotUnixSocket for other connections.
func (c *Conn) PeerPid() (int, error) {
	if !c.unixSock {
		return 0, fmt.Errorf("%s: peer pid: %w", c.name, ErrNotUnixSocket)
	}
	var pid int
	var err error
	cerr := c.rc.Control(func(raw uintptr) {
		var cred *unix.Ucred
		if cred, err = unix.GetsockoptUcred(int(raw), unix.SOL_SOCKET, unix.SO_PEERCRED); err == nil {
			pid = int(cred.Pid)
		}
	})
	if err = cmp.Or(cerr, err); err != nil {
		return 0, fmt.Errorf("%s: peer pid: %w", c.name, err)
	}
	return pid, nil
}

// File returns a duplicate of the socket as an *os.File in blocking mode,
// for exec.Cmd.ExtraFiles: a Python child opens it with
// multiprocessing.connection.Connection(fd), a C program reads it with
// read(2). The duplicate shares the socket with c, which stays usable (see
// Conn: its calls do not depend on the blocking mode); but two readers, or
// two writers, of one socket interleave their bytes, so let one side use it
// at a time, or close c. The caller closes the file.
func (c *Conn) File() (*os.File, error) {
	var dup *os.File
	var err error
	cerr := c.rc.Control(func(raw uintptr) {
		var d int
		if d, err = unix.FcntlInt(raw, unix.F_DUPFD_CLOEXEC, 3); err != nil {
			return
		}
		// Blocking already (init), unless another holder changed it.
		if err = unix.SetNonblock(d, false); err != nil {
			unix.Close(d)
			return
		}
		dup = os.NewFile(uintptr(d), c.name)
	})
	if err = cmp.Or(cerr, err); err != nil {
		return nil, fmt.Errorf("%s: file: %w", c.name, err)
	}
	return dup, nil
}

// deadline makes ctx bound the I/O on c in one direction until the
// returned unbind is called (internal/deadline: a context that can never
// end costs nothing; a late cancellation cannot touch a later call).
func (c *Conn) deadline(ctx context.Context, read bool) (unbind func() bool) {
	if read {
		return c.rdl.Bind(ctx)
	}
	return c.wdl.Bind(ctx)
}

func (c *Conn) ioErr(ctx context.Context, err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	if c.closed.Load() {
		// The poller's "use of closed file" matches nothing.
		return fmt.Errorf("%s: %w", c.name, os.ErrClosed)
	}
	if cerr := ctxErr(ctx, err); cerr != nil {
		return cerr
	}
	return fmt.Errorf("%s: %w", c.name, err)
}

// ctxErr is ctx's error if err is I/O that ctx ended, else nil. Only
// deadline sets a Conn's deadlines, so os.ErrDeadlineExceeded means ctx
// is done, or its deadline has passed and its timer has not fired yet
// (the poller's may fire first): context.DeadlineExceeded then.
func ctxErr(ctx context.Context, err error) error {
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

// SendBytes sends b as one message.
func (c *Conn) SendBytes(ctx context.Context, b []byte) error {
	if !c.writable {
		return ErrReadOnly
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	stop := c.deadline(ctx, false)
	defer stop()
	var err error
	if len(b) <= 16<<10 {
		// Header and payload in one write, as Python does (no Nagle stall).
		c.wbuf = append(wire.AppendHeader(c.wbuf[:0], len(b)), b...)
		_, err = c.sendmsg(c.wbuf, nil)
	} else {
		err = wire.WriteFrame(writer{c}, b)
	}
	return c.ioErr(ctx, err)
}

// Send encodes v with the Codec and sends it.
func (c *Conn) Send(ctx context.Context, v any) error {
	b, err := c.codecOf().Marshal(v)
	if err != nil {
		return fmt.Errorf("%s: encode %T: %w", c.name, v, err)
	}
	return c.SendBytes(ctx, b)
}

// RecvBytes receives one message.
func (c *Conn) RecvBytes(ctx context.Context) ([]byte, error) {
	return c.recv(ctx, nil)
}

// RecvBytesInto receives one message into buf and returns its length; a
// message longer than buf is a *BufferTooSmallError holding it.
func (c *Conn) RecvBytesInto(ctx context.Context, buf []byte) (int, error) {
	b, err := c.recv(ctx, buf)
	if err != nil {
		return 0, err
	}
	if len(b) > len(buf) {
		return 0, &BufferTooSmallError{Size: len(buf), Msg: b}
	}
	return len(b), nil
}

// Recv receives one message and decodes it into v, a pointer.
func (c *Conn) Recv(ctx context.Context, v any) error {
	b, err := c.RecvBytes(ctx)
	if err != nil {
		return err
	}
	if err := c.codecOf().Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: decode into %T: %w", c.name, v, err)
	}
	return nil
}

func (c *Conn) recv(ctx context.Context, into []byte) ([]byte, error) {
	if !c.readable {
		return nil, ErrWriteOnly
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	stop := c.deadline(ctx, true)
	defer stop()
	b, err := wire.ReadFrame(reader{c}, c.maxFrame, into[:0:len(into)])
	bad := errors.Is(err, wire.ErrFrameTooLarge) || errors.Is(err, wire.ErrProtocol)
	err = c.ioErr(ctx, err)
	if bad {
		// Nothing after a bad frame can be trusted: later calls get
		// os.ErrClosed.
		c.closed.Store(true)
		c.f.Close()
	}
	return b, err
}

// Poll reports whether a message (or the end of the stream) can be read
// without waiting, waiting for one until ctx is done: with
// context.Background it blocks, with a done context it does not wait at
// all (Python's poll(0)). It returns false and no error when ctx ends
// first.
func (c *Conn) Poll(ctx context.Context) (bool, error) {
	if !c.readable {
		return false, ErrWriteOnly
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.r < c.w || c.eof {
		return true, nil
	}
	// One look without waiting first: the poller refuses to read at all
	// past a deadline, so a done ctx would never see data or the end.
	switch err := c.fill(false); {
	case err == nil || err == io.EOF:
		return true, nil
	case err != unix.EAGAIN:
		return false, c.ioErr(ctx, err)
	}
	if ctx.Err() != nil {
		return false, nil
	}
	stop := c.deadline(ctx, true)
	defer stop()
	err := c.fill(true)
	switch {
	case err == nil || err == io.EOF:
		return true, nil
	case errors.Is(err, os.ErrDeadlineExceeded):
		return false, nil
	}
	return false, c.ioErr(ctx, err)
}

// PollTimeout is Poll with a timeout (0: do not wait).
func (c *Conn) PollTimeout(d time.Duration) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return c.Poll(ctx)
}

// reader reads c's stream through its buffer; writer writes to it.
type reader struct{ c *Conn }
type writer struct{ c *Conn }

func (r reader) Read(p []byte) (int, error) {
	c := r.c
	if c.r == c.w {
		if c.eof {
			return 0, io.EOF
		}
		if len(p) >= 32<<10 {
			// A big read goes straight into p.
			n, err := c.recvmsg(p, true)
			if n == 0 && err == nil {
				c.eof = true
				return 0, io.EOF
			}
			return n, err
		}
		if err := c.fill(true); err != nil {
			return 0, err
		}
	}
	n := copy(p, c.buf[c.r:c.w])
	c.r += n
	return n, nil
}

// fill reads what the socket has into the buffer, waiting for something
// unless !wait; io.EOF at the end.
func (c *Conn) fill(wait bool) error {
	if c.buf == nil {
		c.buf = make([]byte, 64<<10)
	}
	if c.r == c.w {
		c.r, c.w = 0, 0
	}
	n, err := c.recvmsg(c.buf[c.w:], wait)
	if err != nil {
		return err
	}
	if n == 0 {
		c.eof = true
		return io.EOF
	}
	c.w += n
	return nil
}

// recvmsg reads into p, collecting any descriptors that arrive. Without
// wait it makes one non-blocking attempt: unix.EAGAIN when nothing is
// there.
func (c *Conn) recvmsg(p []byte, wait bool) (int, error) {
	if c.oob == nil {
		c.oob = make([]byte, 4096)
	}
	c.rp, c.rn, c.roobn, c.rerr = p, 0, 0, nil
	var err error
	if wait {
		err = c.rc.Read(c.readFn)
	} else {
		err = c.rc.Control(func(raw uintptr) { c.readFn(raw) })
	}
	c.rp = nil
	if c.roobn > 0 {
		got, _ := fd.FromRights(c.oob[:c.roobn])
		c.fds = append(c.fds, got...)
	}
	return c.rn, cmp.Or(err, c.rerr)
}

func (w writer) Write(p []byte) (int, error) { return w.c.sendmsg(p, nil) }

// sendmsg writes all of p, with oob on the first piece; the caller holds
// wmu. The poller waits for room, and a closed peer is EPIPE, not SIGPIPE
// (MSG_NOSIGNAL).
func (c *Conn) sendmsg(p, oob []byte) (int, error) {
	done := 0
	for done < len(p) {
		c.wp, c.woob, c.wn, c.werr = p[done:], oob, 0, nil
		err := c.rc.Write(c.writeFn)
		c.wp, c.woob = nil, nil
		if err = cmp.Or(err, c.werr); err != nil {
			return done, err
		}
		done += c.wn
		oob = nil
	}
	return done, nil
}

// SendFile sends a duplicate of f's descriptor (SCM_RIGHTS), in the form
// Python's multiprocessing.reduction.send_handle uses: one byte, the
// descriptor beside it. f stays open here. Only a Unix socket carries
// descriptors: on any other connection SendFile sends nothing and returns
// ErrNotUnixSocket.
func (c *Conn) SendFile(ctx context.Context, f *os.File) error {
	if !c.writable {
		return ErrReadOnly
	}
	if !c.unixSock {
		return fmt.Errorf("%s: send file: %w", c.name, ErrNotUnixSocket)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	stop := c.deadline(ctx, false)
	defer stop()
	var serr error
	err = rc.Control(func(raw uintptr) { _, serr = c.sendmsg([]byte{1}, unix.UnixRights(int(raw))) })
	return c.ioErr(ctx, cmp.Or(err, serr))
}

// RecvFile receives a descriptor sent by SendFile (or Python's
// send_handle) as an *os.File named name. On a connection that is not a
// Unix socket it reads nothing and returns ErrNotUnixSocket.
func (c *Conn) RecvFile(ctx context.Context, name string) (*os.File, error) {
	if !c.readable {
		return nil, ErrWriteOnly
	}
	if !c.unixSock {
		return nil, fmt.Errorf("%s: receive file: %w", c.name, ErrNotUnixSocket)
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	stop := c.deadline(ctx, true)
	defer stop()
	var marker [1]byte
	if _, err := io.ReadFull(reader{c}, marker[:]); err != nil {
		return nil, c.ioErr(ctx, err)
	}
	if marker[0] != 1 || len(c.fds) == 0 {
		return nil, fmt.Errorf("%s: expected a file descriptor (marker %d, %d pending): %w", c.name, marker[0], len(c.fds), ErrProtocol)
	}
	f := c.fds[0]
	c.fds = c.fds[1:]
	return os.NewFile(uintptr(f.Disown()), name), nil
}

// connMeta is what a Conn carries to a child beside its socket.
type connMeta struct {
	Name               string
	Readable, Writable bool
	Pending            []byte // read from the socket, not yet consumed
	EOF                bool
}

// GobEncode implements gob.GobEncoder: a *Conn in the argument of Start
// reaches the child as a duplicate of the same socket, with the bytes this
// end has read from it and not yet consumed (a peer's request that arrived
// behind the handshake of Listener.Accept is one): the child goes on from
// where this end is. They stay here too, so this end should not go on
// reading once it has handed the connection on. Descriptors received and
// not claimed by RecvFile stay here only.
func (c *Conn) GobEncode() ([]byte, error) {
	c.rmu.Lock()
	meta := connMeta{Name: c.name, Readable: c.readable, Writable: c.writable, EOF: c.eof}
	if c.r < c.w {
		meta.Pending = bytes.Clone(c.buf[c.r:c.w])
	}
	c.rmu.Unlock()
	var b []byte
	var err error
	cerr := c.rc.Control(func(raw uintptr) {
		var d *fd.FD
		if d, err = fd.New(int(raw)); err == nil {
			b, err = encodeHandle(d, meta) // passes a duplicate
			d.Disown()
		}
	})
	return b, cmp.Or(cerr, err)
}

// GobDecode implements gob.GobDecoder for a child receiving its argument.
func (c *Conn) GobDecode(b []byte) error {
	f, w, err := decodeHandle[connMeta](b)
	if err != nil {
		return err
	}
	if err := c.init(f.Disown(), w.Name); err != nil {
		return err
	}
	c.readable, c.writable = w.Readable, w.Writable
	if len(w.Pending) > 0 {
		c.buf = make([]byte, max(64<<10, len(w.Pending)))
		c.w = copy(c.buf, w.Pending)
	}
	c.eof = w.EOF
	return nil
}
