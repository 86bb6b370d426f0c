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
// MSG_DONTWAIT and waits for readiness itself, in ppoll(2) beside an
// eventfd that Close and the call's context write, so cancellation works
// whatever another holder does to O_NONBLOCK. A call that waits holds its
// OS thread meanwhile, as a blocking system call (and Python) does: that
// is what makes a message between processes cheap (see waiter).
type Conn struct {
	f        *os.File
	name     string
	readable bool
	writable bool
	unixSock bool // AF_UNIX: the socket can carry descriptors (SendFile)
	closed   atomic.Bool

	rc      syscall.RawConn
	rw, ww  waiter // the receive's and the send's waits
	efdMu   sync.Mutex
	efdDone bool // rw's and ww's eventfds closed (Close)

	// Receiving, under rmu.
	rmu  sync.Mutex
	buf  []byte // received, not yet consumed: buf[r:w]
	r, w int
	eof  bool
	fds  []*fd.FD // descriptors received, not yet claimed by RecvFile
	oob  []byte
	// last is the length of the last frame received: while frames are
	// large (bigFrame), the next one's header and payload are read in one
	// recvmsg, the payload straight into its destination.
	last     int
	maxFrame int
	// The recvmsg in flight: readFn under rc.Read, tryReadFn under
	// rc.Control, built once so that a receive allocates nothing (a
	// closure per call would).
	readFn    func(uintptr) bool
	tryReadFn func(uintptr)
	riov      [2]unix.Iovec
	rniov     int
	rn, roobn int
	rerr      error

	// Sending, under wmu: the sendmsg in flight, built once like readFn.
	wmu     sync.Mutex
	writeFn func(uintptr) bool
	wiov    [2]unix.Iovec
	wniov   int
	woob    []byte
	wn      int
	werr    error
	whdr    [wire.LongHeader]byte
	wsmall  []byte // a small frame, header and payload, sent with one send(2)
	codec   Codec
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
// The descriptor is blocking when os.NewFile sees it, so that the file
// stays out of Go's poller (see waiter: a Conn waits in ppoll), and stays
// blocking for the description's other holders.
func (c *Conn) init(raw int, name string) error {
	if err := fd.SetCloexec(raw); err != nil {
		unix.Close(raw)
		return fmt.Errorf("connection: %w", err)
	}
	if err := unix.SetNonblock(raw, false); err != nil {
		unix.Close(raw)
		return fmt.Errorf("connection: %w", err)
	}
	var efds [2]int
	for i := range efds {
		var err error
		if efds[i], err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
			if i > 0 {
				unix.Close(efds[0])
			}
			unix.Close(raw)
			return fmt.Errorf("connection: eventfd: %w", err)
		}
	}
	domain, _ := unix.GetsockoptInt(raw, unix.SOL_SOCKET, unix.SO_DOMAIN)
	c.f, c.name, c.readable, c.writable, c.maxFrame = os.NewFile(uintptr(raw), name), name, true, true, DefaultMaxFrame
	c.unixSock = domain == unix.AF_UNIX
	rc, err := c.f.SyscallConn()
	if err != nil {
		c.f.Close()
		return err
	}
	c.rc = rc
	c.rw.init(c, efds[0], unix.POLLIN)
	c.ww.init(c, efds[1], unix.POLLOUT)
	// A receive looks, yields spinYields times looking again, then waits
	// in rw until the socket is ready; a send waits at once (a full
	// socket buffer drains at the peer's pace).
	c.readFn = func(raw uintptr) bool {
		for i := 0; ; i++ {
			c.tryReadFn(raw)
			if c.rerr != unix.EAGAIN {
				return true
			}
			if i < spinYields {
				unix.SchedYield()
				continue
			}
			if err := c.rw.wait(int(raw)); err != nil {
				c.rerr = err
				return true
			}
		}
	}
	c.tryReadFn = func(raw uintptr) {
		c.rn, c.roobn, _, c.rerr = unix.RecvmsgIovecs(int(raw), c.riov[:c.rniov], c.oob, unix.MSG_CMSG_CLOEXEC|unix.MSG_DONTWAIT)
	}
	c.writeFn = func(raw uintptr) bool {
		for {
			if c.wniov == 1 && c.woob == nil {
				c.wn, c.werr = unix.Send(int(raw), &c.wiov[0], unix.MSG_NOSIGNAL|unix.MSG_DONTWAIT)
			} else {
				c.wn, c.werr = unix.SendmsgIovecs(int(raw), c.wiov[:c.wniov], c.woob, unix.MSG_NOSIGNAL|unix.MSG_DONTWAIT)
			}
			if c.werr != unix.EAGAIN {
				return true
			}
			if err := c.ww.wait(int(raw)); err != nil {
				c.werr = err
				return true
			}
		}
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
	c.rw.wake() // a call waiting in ppoll sees closed and returns
	c.ww.wake()
	err := c.f.Close()
	// No call can reach a wait on f now; the calls in flight, which may
	// still use the eventfds, end (promptly: woken above) before those
	// close. rmu and wmu are taken one after the other, not nested
	// (SetCodec and the handshake nest them in opposite orders).
	c.rmu.Lock()
	closeFDs(c.fds)
	c.fds = nil
	c.rmu.Unlock()
	c.wmu.Lock()
	c.wmu.Unlock()
	c.efdMu.Lock()
	if !c.efdDone {
		c.efdDone = true
		unix.Close(c.rw.efd)
		unix.Close(c.ww.efd)
	}
	c.efdMu.Unlock()
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

// spinYields is how many times a receive that finds nothing yields the
// CPU (sched_yield) and looks again before it sleeps in ppoll. A reply
// that comes within them (a peer on another CPU answering at once; on
// one CPU, the peer the yield let run) costs no sleep and no wake-up,
// which on a VM is most of a round trip: 64 B round trip on two CPUs 48
// µs without, 6-8 µs with. Past them the receive sleeps, so a connection
// that waits long costs these few yields per receive and nothing more.
const spinYields = 8

// waiter is how one direction of a Conn waits: on this thread, in
// ppoll(2) on the socket and on an eventfd that Close and the end of the
// call's context write, as Python and a blocking read(2) wait: a call that
// waits holds its OS thread, as a blocking system call does. Not in Go's
// poller: a message from another process would then wake the M blocked in
// epoll_pwait, which hands the goroutine to a P and wakes another M to
// spin, on top of the wake itself (64 B round trip on one CPU: 24 µs in
// the poller, 13 µs here, 10.5 µs for a blocking read(2)). The socket is
// kept out of the poller's epoll set too (init): with it there, each
// message also woke the poller's M, and ppoll was slower than the poller.
//
// A call that must wait registers a context.AfterFunc once and stops it
// when it ends; a late write of the eventfd (for an earlier call's
// context) only wakes a later wait spuriously, which goes round its loop.
type waiter struct {
	c      *Conn
	efd    int
	events int16
	ctx    context.Context // the call in flight's, under rmu or wmu
	stop   func() bool     // ctx's AfterFunc, once the call has waited
	wakeFn func()
	pfds   [2]unix.PollFd
	drain  [8]byte
}

func (w *waiter) init(c *Conn, efd int, events int16) {
	w.c, w.efd, w.events = c, efd, events
	w.wakeFn = w.wake
}

// start begins a call bounded by ctx; the caller holds the direction's
// mutex and defers end.
func (w *waiter) start(ctx context.Context) { w.ctx = ctx }

// end ends the call.
func (w *waiter) end() {
	if w.stop != nil {
		w.stop()
		w.stop = nil
	}
	w.ctx = nil
}

// wait waits until the socket raw may be ready, or the Conn is closed
// (os.ErrClosed), or the call's context has ended (os.ErrDeadlineExceeded,
// which ctxErr makes the context's error; a done context does not wait).
// It may return nil spuriously.
func (w *waiter) wait(raw int) error {
	if w.c.closed.Load() {
		return os.ErrClosed
	}
	if ctx := w.ctx; ctx != nil {
		if ctx.Err() != nil {
			return os.ErrDeadlineExceeded
		}
		if w.stop == nil && ctx.Done() != nil {
			w.stop = context.AfterFunc(ctx, w.wakeFn)
		}
	}
	w.pfds = [2]unix.PollFd{{Fd: int32(raw), Events: w.events}, {Fd: int32(w.efd), Events: unix.POLLIN}}
	if _, err := unix.Ppoll(w.pfds[:], nil); err != nil && err != unix.EINTR {
		return err
	}
	if w.pfds[1].Revents != 0 {
		unix.Read(w.efd, w.drain[:]) // reset the count
	}
	return nil
}

// wake ends a wait (Close, the end of the call's context).
func (w *waiter) wake() {
	one := [8]byte{1} // the eventfd's uint64 1, little-endian
	w.c.efdMu.Lock()
	if !w.c.efdDone {
		unix.Write(w.efd, one[:])
	}
	w.c.efdMu.Unlock()
}

// deadline makes ctx bound the I/O on c in one direction until the
// returned unbind is called, for callers that read and write through
// reader and writer (the handshake) with rmu or wmu held.
func (c *Conn) deadline(ctx context.Context, read bool) (unbind func() bool) {
	w := &c.ww
	if read {
		w = &c.rw
	}
	w.start(ctx)
	return func() bool {
		w.end()
		return true
	}
}

// startRead begins a receive bounded by ctx; the caller holds rmu and
// defers endRead.
func (c *Conn) startRead(ctx context.Context) { c.rw.start(ctx) }

// endRead ends the receive.
func (c *Conn) endRead() { c.rw.end() }

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

// ctxErr is ctx's error if err is I/O that ctx ended, else nil: a
// waiter returns os.ErrDeadlineExceeded only when ctx is done (a deadline
// that has passed before its timer fired is context.DeadlineExceeded).
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
	c.ww.start(ctx)
	defer c.ww.end()
	// Header and payload in one write whatever the size, as Python does
	// for small ones (no Nagle stall); the peer wakes once per message,
	// not for a lone header. A small frame is copied into one buffer and
	// goes out with send(2), a large one with a gathering sendmsg (nothing
	// copied): for 64 B messages sendmsg's header and iovec copies were
	// most of what set mproc behind a plain write of a prebuilt frame
	// (about 730 against 905 k msgs/s, paired runs across processes).
	if len(b) <= smallFrame {
		if c.wsmall == nil {
			c.wsmall = make([]byte, 0, wire.LongHeader+smallFrame)
		}
		_, err := c.sendmsg(append(wire.AppendHeader(c.wsmall[:0], len(b)), b...), nil, nil)
		return c.ioErr(ctx, err)
	}
	_, err := c.sendmsg(wire.AppendHeader(c.whdr[:0], len(b)), b, nil)
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
// message longer than buf is a *BufferTooSmallError holding it. After a
// large message (32 KiB or more) the next one is read straight into buf,
// the bytes of buf past the message's length may change (up to the
// length of the one before).
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
	c.startRead(ctx)
	defer c.endRead()
	b, err := c.readFrame(into)
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

// Reading sizes: the buffer's, and the frame size from which a payload
// is read straight into its destination (after a frame that large, its
// header too, in the same recvmsg).
// smallFrame is the largest message SendBytes copies behind its header to
// send both with one send(2); larger ones go out gathered by sendmsg.
const smallFrame = 512

const (
	readBuf  = 64 << 10
	bigFrame = 32 << 10
)

// readFrame reads one frame: into into when it fits, else into a new
// slice (longer than into: RecvBytesInto's BufferTooSmallError). io.EOF
// when the stream ends before a header.
func (c *Conn) readFrame(into []byte) ([]byte, error) {
	if c.buf == nil {
		c.buf = make([]byte, readBuf)
	}
	if c.r == c.w && !c.eof && c.last >= bigFrame {
		// Large frames: reading the header into the buffer would pull
		// most of the payload in behind it, to be copied out. Read the
		// header into the buffer and the payload (as much as the last
		// frame's length) into its destination, in one recvmsg.
		dst := into
		if dst == nil {
			dst = make([]byte, c.last) // most likely the size again
		} else if len(dst) > c.last {
			dst = dst[:c.last]
		}
		c.r, c.w = 0, 0
		got, err := c.recvmsg(c.buf[:wire.ShortHeader], dst, true)
		switch {
		case err != nil:
			return nil, err
		case got == 0:
			c.eof = true
			return nil, io.EOF
		case got < wire.ShortHeader || wire.HeaderLen(c.buf) != wire.ShortHeader:
			// A header in pieces, or the long form: as the buffered
			// path would have read it.
			c.w = min(got, wire.ShortHeader)
			c.unread(dst[:got-c.w])
		default:
			n, err := wire.ParseHeader(c.buf, c.maxFrame)
			if err != nil {
				return nil, err
			}
			got -= wire.ShortHeader
			var msg []byte
			switch {
			case n <= len(dst):
				msg = dst[:n:n]
				if got > n {
					c.unread(dst[n:got]) // the next frames' start
					got = n
				}
			case n <= len(into):
				msg = into[:n]
			default:
				msg = make([]byte, max(got, min(n, eagerFrame)))
				copy(msg, dst[:got])
			}
			// The rest straight into msg too, whatever its size: the
			// next header is read with the next payload.
			return c.readBody(msg, got, n, 0)
		}
	}
	if err := c.need(wire.ShortHeader); err != nil {
		return nil, err
	}
	h := wire.HeaderLen(c.buf[c.r:c.w])
	if err := c.need(h); err != nil {
		return nil, unexpected(err)
	}
	n, err := wire.ParseHeader(c.buf[c.r:c.w], c.maxFrame)
	if err != nil {
		return nil, err
	}
	c.r += h
	var msg []byte
	if n <= len(into) {
		msg = into[:n]
	} else {
		msg = make([]byte, min(n, eagerFrame))
	}
	return c.readBody(msg, 0, n, bigFrame)
}

// eagerFrame is the largest frame whose payload is allocated whole when
// its header arrives: a larger one grows as its bytes do, so that a
// header alone (4 bytes claiming the limit) cannot make this process
// allocate more than this.
const eagerFrame = 4 << 20

// readBody reads the payload of an n-byte frame into msg, whose first got
// bytes are read already: msg holds n bytes, or for a frame over
// eagerFrame fewer, and then grows by doubling as the payload arrives.
// Reads of at least direct bytes bypass the buffer (readFull).
func (c *Conn) readBody(msg []byte, got, n, direct int) ([]byte, error) {
	for {
		if err := c.readFull(msg[got:], direct); err != nil {
			return nil, err
		}
		if len(msg) == n {
			c.last = n // only a frame that arrived: it sizes the next read
			return msg, nil
		}
		got = len(msg)
		grown := make([]byte, min(n, 2*len(msg)))
		copy(grown, msg)
		msg = grown
	}
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// need makes the buffer hold at least k bytes (k <= readBuf): io.EOF if
// the stream ended with none, io.ErrUnexpectedEOF if with fewer.
func (c *Conn) need(k int) error {
	for c.w-c.r < k {
		if c.eof {
			if c.r == c.w {
				return io.EOF
			}
			return io.ErrUnexpectedEOF
		}
		if len(c.buf)-c.r < k {
			c.w = copy(c.buf, c.buf[c.r:c.w])
			c.r = 0
		}
		if err := c.fill(true); err != nil && err != io.EOF {
			return err
		}
	}
	return nil
}

// unread puts p, read from the socket past a frame, into the empty
// buffer.
func (c *Conn) unread(p []byte) {
	if len(p) == 0 {
		return
	}
	if c.w+len(p) > len(c.buf) {
		c.buf = append(c.buf[:c.w], make([]byte, c.w+len(p)-len(c.buf))...)
	}
	c.w += copy(c.buf[c.w:], p)
}

// readFull fills p from the buffer, then from the socket: a rest of at
// least direct bytes straight into p, a smaller one through the buffer
// (with what follows it). io.ErrUnexpectedEOF if the stream ends first.
func (c *Conn) readFull(p []byte, direct int) error {
	for len(p) > 0 {
		if c.r < c.w {
			k := copy(p, c.buf[c.r:c.w])
			c.r += k
			p = p[k:]
			continue
		}
		if c.eof {
			return io.ErrUnexpectedEOF
		}
		if len(p) < direct {
			if err := c.fill(true); err != nil {
				return unexpected(err)
			}
			continue
		}
		k, err := c.recvmsg(p, nil, true)
		if err != nil {
			return err
		}
		if k == 0 {
			c.eof = true
			return io.ErrUnexpectedEOF
		}
		p = p[k:]
	}
	return nil
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
	// One look without waiting first, which is all a done ctx gets.
	switch err := c.fill(false); {
	case err == nil || err == io.EOF:
		return true, nil
	case err != unix.EAGAIN:
		return false, c.ioErr(ctx, err)
	}
	if ctx.Err() != nil {
		return false, nil
	}
	c.startRead(ctx)
	defer c.endRead()
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

// reader reads c's stream through its buffer, writer writes to it, for
// the handshake (listen.go), after deadline.
type reader struct{ c *Conn }
type writer struct{ c *Conn }

func (r reader) Read(p []byte) (int, error) {
	c := r.c
	if c.r == c.w {
		if c.eof {
			return 0, io.EOF
		}
		if len(p) >= bigFrame {
			// A big read goes straight into p.
			n, err := c.recvmsg(p, nil, true)
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

func (w writer) Write(p []byte) (int, error) { return w.c.sendmsg(p, nil, nil) }

// fill reads what the socket has into the buffer, waiting for something
// unless !wait; io.EOF at the end.
func (c *Conn) fill(wait bool) error {
	if c.buf == nil {
		c.buf = make([]byte, readBuf)
	}
	if c.r == c.w {
		c.r, c.w = 0, 0
	}
	n, err := c.recvmsg(c.buf[c.w:], nil, wait)
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

// setIovecs points iov at the non-empty ones of a and b.
func setIovecs(iov *[2]unix.Iovec, a, b []byte) int {
	n := 0
	for _, p := range [2][]byte{a, b} {
		if len(p) > 0 {
			iov[n].Base = &p[0]
			iov[n].SetLen(len(p))
			n++
		}
	}
	return n
}

// recvmsg reads into a, then b (nil for none), collecting any
// descriptors that arrive; the caller holds rmu. Waiting, readFn yields a
// few times, then waits in rw (bounded by the receive's context). Without
// wait it makes one non-blocking attempt: unix.EAGAIN when nothing is
// there.
func (c *Conn) recvmsg(a, b []byte, wait bool) (int, error) {
	if c.oob == nil {
		c.oob = make([]byte, 4096)
	}
	c.rniov = setIovecs(&c.riov, a, b)
	c.rn, c.roobn, c.rerr = 0, 0, nil
	var err error
	if wait {
		err = c.rc.Read(c.readFn)
	} else {
		err = c.rc.Control(c.tryReadFn)
	}
	c.riov = [2]unix.Iovec{} // keep no buffer alive
	if c.roobn > 0 {
		got, _ := fd.FromRights(c.oob[:c.roobn])
		c.fds = append(c.fds, got...)
	}
	return c.rn, cmp.Or(err, c.rerr)
}

// sendmsg writes all of a then b, with oob on the first piece; the caller
// holds wmu. writeFn waits for room in ww (bounded by the send's
// context), and a closed peer is EPIPE, not SIGPIPE (MSG_NOSIGNAL). One
// piece without oob goes out with send(2), cheaper than sendmsg.
func (c *Conn) sendmsg(a, b, oob []byte) (int, error) {
	done, total := 0, len(a)+len(b)
	for done < total {
		if done < len(a) {
			c.wniov = setIovecs(&c.wiov, a[done:], b)
		} else {
			c.wniov = setIovecs(&c.wiov, b[done-len(a):], nil)
		}
		c.woob, c.wn, c.werr = oob, 0, nil
		err := c.rc.Write(c.writeFn)
		c.wiov, c.woob = [2]unix.Iovec{}, nil
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
	c.ww.start(ctx)
	defer c.ww.end()
	var serr error
	err = rc.Control(func(raw uintptr) { _, serr = c.sendmsg([]byte{1}, nil, unix.UnixRights(int(raw))) })
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
	c.startRead(ctx)
	defer c.endRead()
	if err := c.need(1); err != nil {
		return nil, c.ioErr(ctx, err)
	}
	marker := c.buf[c.r : c.r+1]
	c.r++
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
		c.buf = make([]byte, max(readBuf, len(w.Pending)))
		c.w = copy(c.buf, w.Pending)
	}
	c.eof = w.EOF
	return nil
}
