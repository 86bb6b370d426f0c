// Package reexec is the child bootstrap of mproc: the environment marker
// that tells a re-executed binary it is a child, and the versioned protocol
// on the control socket that parent and child share.
//
// The control socket is one end of an AF_UNIX SOCK_SEQPACKET socketpair,
// passed to the child as descriptor 3 (named in the marker). It carries, in
// order:
//
//	parent → child  Hello: function, process name, parent pid, grace
//	                period, whether detached, the encoded argument, and the
//	                argument's descriptors as SCM_RIGHTS.
//	child → parent  Ready: the child holds the Hello and handles SIGTERM.
//	child → parent  Result: status, error code, message, panic stack.
//
// Every datagram starts with [version, type, more]: a message larger than
// one datagram continues while more is 1, and descriptors ride on any
// datagram of the message, in order. After the Hello the parent sends
// nothing; the child keeps reading, and end-of-file means the parent process
// is gone (the socket's only other holder), however it died. That is why
// parent death is detected through the socket and not through Pdeathsig,
// which fires when the creating OS thread exits rather than the process.
package reexec

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"mproc/internal/fd"
	"mproc/internal/unix"
)

const (
	// EnvMarker names the environment variable that makes a binary a child.
	EnvMarker = "MPROC_CHILD"
	// Version is the control protocol version (2: Terminate travels as a
	// message).
	Version = 2
	// ChildFD is the descriptor number of the control socket in a child.
	ChildFD = 3

	msgHello     = 'H'
	msgReady     = 'Y'
	msgResult    = 'R'
	msgTerminate = 'T'

	maxChunk    = 32 << 10 // payload bytes per datagram
	maxFDsPerDG = 250      // the kernel takes at most 253 (SCM_MAX_FD)
	maxFDs      = 4096     // descriptors per message
	maxMessage  = 1 << 30  // bytes per message
)

// Marker returns the value of EnvMarker for a child.
func Marker() string { return "v" + strconv.Itoa(Version) + ":" + strconv.Itoa(ChildFD) }

// Hello is the parent's first message; the only other one it sends is a
// request to terminate (SendTerminate).
type Hello struct {
	Func      string
	Name      string
	ParentPid int
	Grace     time.Duration
	Detached  bool
	Arg       []byte
}

// Status says how the child's function ended.
type Status uint8

const (
	StatusOK Status = iota
	StatusError
	StatusPanic
)

// Result is the child's only message.
type Result struct {
	Status Status
	Code   uint32 // the sentinel's code, 0 for none
	Msg    string // the error's or the panic value's text
	Stack  string // the panicking goroutine's stack
}

// Conn is one end of a control socket: a non-blocking SOCK_SEQPACKET
// socket in the runtime's poller, read and written with recvmsg/sendmsg
// through its RawConn, so deadlines work without package net (which would
// make every mproc binary a cgo binary and cost each child ~2 ms of dynamic
// linking at start).
type Conn struct{ f *os.File }

// Pair creates a control socketpair: the parent's Conn and the child's end
// as a file to pass in exec.Cmd.ExtraFiles (the first one, so it becomes
// ChildFD). The caller closes the file once the child has started.
func Pair() (*Conn, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("control socketpair: %w", err)
	}
	c, err := newConn(fds[0])
	if err != nil {
		unix.Close(fds[1])
		return nil, nil, err
	}
	return c, os.NewFile(uintptr(fds[1]), "mproc-control"), nil
}

// newConn wraps raw, which it takes over, making it close-on-exec and
// non-blocking.
func newConn(raw int) (*Conn, error) {
	if err := fd.SetCloexec(raw); err != nil {
		unix.Close(raw)
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := unix.SetNonblock(raw, true); err != nil {
		unix.Close(raw)
		return nil, fmt.Errorf("control socket: %w", err)
	}
	return &Conn{f: os.NewFile(uintptr(raw), "mproc-control")}, nil
}

// Close closes the socket.
func (c *Conn) Close() error { return c.f.Close() }

// SendHello sends h with fds, bounded by ctx.
func (c *Conn) SendHello(ctx context.Context, h Hello, fds []int) error {
	c.f.SetWriteDeadline(time.Time{})
	stop := context.AfterFunc(ctx, func() { c.f.SetWriteDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := c.send(msgHello, h.encode(), fds); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	return nil
}

// SendReady tells the parent that the child holds its Hello and has its
// signal handling in place.
func (c *Conn) SendReady() error {
	c.f.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return c.send(msgReady, nil, nil)
}

// RecvReady waits, bounded by ctx, for the child's Ready. It returns
// io.EOF if the child ended without sending it.
func (c *Conn) RecvReady(ctx context.Context) error {
	c.f.SetReadDeadline(time.Time{})
	stop := context.AfterFunc(ctx, func() { c.f.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	typ, _, fds, err := c.recv()
	closeAll(fds)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	if typ != msgReady {
		return fmt.Errorf("control protocol: message %q, want ready", typ)
	}
	return nil
}

// SendResult sends r. It does not block past the socket buffer (a Result
// fits in one datagram's worth of buffer), and fails if the parent is gone.
func (c *Conn) SendResult(r Result) error {
	c.f.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return c.send(msgResult, r.encode(), nil)
}

// RecvResult reads the child's Result. ok is false when the child closed
// the socket without sending one. A deadline bounds the read.
func (c *Conn) RecvResult(deadline time.Time) (r Result, ok bool, err error) {
	c.f.SetReadDeadline(deadline)
	typ, payload, fds, err := c.recv()
	closeAll(fds)
	if err == io.EOF {
		return Result{}, false, nil
	}
	if err != nil {
		return Result{}, false, err
	}
	if typ != msgResult {
		return Result{}, false, fmt.Errorf("control protocol: message %q, want a result", typ)
	}
	if r, err = decodeResult(payload); err != nil {
		return Result{}, false, fmt.Errorf("decode result: %w", err)
	}
	return r, true, nil
}

// SendTerminate asks the child to terminate (Process.Terminate): the
// child's Watch calls its terminate function. It fails if the child is
// gone.
func (c *Conn) SendTerminate() error {
	c.f.SetWriteDeadline(time.Now().Add(time.Second))
	return c.send(msgTerminate, nil, nil)
}

// Watch reads the parent's messages after the Hello until the parent
// closes its end, that is, until the parent process is gone, calling
// terminate for each request to terminate.
func (c *Conn) Watch(terminate func()) {
	for {
		typ, _, fds, err := c.recv()
		closeAll(fds)
		if err != nil {
			return
		}
		if typ == msgTerminate {
			terminate()
		}
	}
}

// Attach is the child's side of the bootstrap: it parses the marker,
// closes descriptors inherited by accident and returns the control socket,
// from which the caller reads the Hello with RecvHello. The two steps are
// apart so that a child started ahead of need (a spare) can finish its own
// set-up before it blocks.
func Attach(marker string) (*Conn, error) {
	want := "v" + strconv.Itoa(Version) + ":"
	rest, ok := strings.CutPrefix(marker, want)
	if !ok {
		return nil, fmt.Errorf("child marker %q: parent speaks another control protocol (this binary speaks %d)", marker, Version)
	}
	raw, err := strconv.Atoi(rest)
	if err != nil || raw < 3 {
		return nil, fmt.Errorf("child marker %q: bad descriptor", marker)
	}
	closeInherited(raw)
	return newConn(raw)
}

// RecvHello reads the Hello and its descriptors. io.EOF (wrapped) means the
// parent closed the socket without sending one.
func (c *Conn) RecvHello() (Hello, []*fd.FD, error) {
	typ, payload, fds, err := c.recv()
	if err != nil {
		return Hello{}, nil, fmt.Errorf("read hello: %w", err)
	}
	var h Hello
	if typ == msgTerminate {
		// Terminated before it was handed its work: as if dropped.
		err = fmt.Errorf("terminated before the hello: %w", io.EOF)
	} else if typ != msgHello {
		err = fmt.Errorf("control protocol: message %q, want a hello", typ)
	} else if h, err = decodeHello(payload); err != nil {
		err = fmt.Errorf("decode hello: %w", err)
	}
	if err != nil {
		closeAll(fds)
		return Hello{}, nil, err
	}
	return h, fds, nil
}

// closeInherited closes every descriptor above 2, except keep, that lacks
// close-on-exec. Descriptors the Go runtime and this binary's package
// initialisers open are close-on-exec, so the ones without it came through
// exec from the parent by accident (a non-CLOEXEC descriptor of a C library
// or an old syscall.Open in the parent) and must not live on in the child.
//
// It reads /proc/self/fd with getdents itself, on every cold Start: the
// kernel's listing costs about 30 µs here, and os.ReadDir added 15–30 µs
// of its own.
func closeInherited(keep int) {
	dir, err := unix.Open("/proc/self/fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	var buf [4096]byte
	var names []string
	for {
		n, err := unix.Getdents(dir, buf[:])
		if err != nil || n <= 0 {
			break
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
	unix.Close(dir)
	for _, name := range names {
		n, err := strconv.Atoi(name)
		if err != nil || n <= 2 || n == keep {
			continue
		}
		if cloexec, err := fd.IsCloexec(n); err == nil && !cloexec {
			unix.Close(n)
		}
	}
}

func (c *Conn) send(typ byte, payload []byte, fds []int) error {
	if len(payload) > maxMessage {
		return fmt.Errorf("control message of %d bytes exceeds %d", len(payload), maxMessage)
	}
	if len(fds) > maxFDs {
		return fmt.Errorf("%d descriptors exceed the limit of %d per message", len(fds), maxFDs)
	}
	for first := true; first || len(payload) > 0 || len(fds) > 0; first = false {
		n := min(len(payload), maxChunk)
		k := min(len(fds), maxFDsPerDG)
		more := byte(0)
		if n < len(payload) || k < len(fds) {
			more = 1
		}
		dg := append([]byte{Version, typ, more}, payload[:n]...)
		var oob []byte
		if k > 0 {
			oob = unix.UnixRights(fds[:k]...)
		}
		if err := c.sendmsg(dg, oob); err != nil {
			return fmt.Errorf("control socket: %w", err)
		}
		payload, fds = payload[n:], fds[k:]
	}
	return nil
}

// recv reads one message; io.EOF means the peer closed the socket.
func (c *Conn) recv() (typ byte, payload []byte, fds []*fd.FD, err error) {
	var oob []byte
	for {
		// A buffer of the datagram's size, not of the largest: a buffer of
		// 32 KiB per message (a large object of fresh pages) took 30 µs of
		// every Start's Ready and Wait's result.
		size, rerr := c.peekSize()
		if rerr != nil {
			closeAll(fds)
			return 0, nil, nil, rerr
		}
		dg := make([]byte, max(3, min(size, 3+maxChunk)))
		if oob == nil {
			oob = make([]byte, unix.CmsgSpace(4*maxFDsPerDG))
		}
		n, oobn, flags, rerr := c.recvmsg(dg, oob, 0)
		if oobn > 0 {
			got, perr := fd.FromRights(oob[:oobn])
			fds = append(fds, got...)
			if perr != nil && err == nil {
				err = perr
			}
		}
		switch {
		case rerr != nil:
			err = rerr
		case flags&(unix.MSG_CTRUNC|unix.MSG_TRUNC) != 0:
			err = errors.New("control protocol: datagram or descriptors truncated")
		case n < 3 || dg[0] != Version:
			err = fmt.Errorf("control protocol: bad datagram header % x", dg[:min(n, 3)])
		case typ != 0 && dg[1] != typ:
			err = errors.New("control protocol: message types interleaved")
		case len(payload)+n > maxMessage || len(fds) > maxFDs:
			err = errors.New("control protocol: message too large")
		}
		if err != nil {
			closeAll(fds)
			return 0, nil, nil, err
		}
		typ = dg[1]
		if payload == nil && dg[2] == 0 {
			return typ, dg[3:n], fds, nil // the whole message in one datagram
		}
		payload = append(payload, dg[3:n]...)
		if dg[2] == 0 {
			return typ, payload, fds, nil
		}
	}
}

// sendmsg sends one datagram, waiting in the poller while the socket
// buffer is full.
func (c *Conn) sendmsg(dg, oob []byte) error {
	rc, err := c.f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Write(func(raw uintptr) bool {
		_, serr = unix.SendmsgN(int(raw), dg, oob, nil, unix.MSG_NOSIGNAL)
		return serr != unix.EAGAIN
	})
	return cmp.Or(err, serr)
}

// recvmsg receives one datagram with flags (besides MSG_CMSG_CLOEXEC); a
// zero-length read is end-of-file (the protocol sends no empty
// datagrams).
func (c *Conn) recvmsg(dg, oob []byte, flags int) (n, oobn, rflags int, err error) {
	rc, err := c.f.SyscallConn()
	if err != nil {
		return 0, 0, 0, err
	}
	var rerr error
	err = rc.Read(func(raw uintptr) bool {
		n, oobn, rflags, _, rerr = unix.Recvmsg(int(raw), dg, oob, flags|unix.MSG_CMSG_CLOEXEC)
		return rerr != unix.EAGAIN
	})
	if err = cmp.Or(err, rerr); err != nil {
		return 0, 0, 0, err
	}
	if n == 0 && oobn == 0 {
		return 0, 0, 0, io.EOF
	}
	return n, oobn, rflags, nil
}

// peekSize waits for the next datagram and returns its size without
// taking it, nor its descriptors (no control buffer).
func (c *Conn) peekSize() (int, error) {
	n, _, _, err := c.recvmsg(nil, nil, unix.MSG_PEEK|unix.MSG_TRUNC)
	return n, err
}

func closeAll(fds []*fd.FD) {
	for _, f := range fds {
		f.Close()
	}
}
