package shmnet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"mproc"
	"mproc/internal/fd"
	"mproc/internal/owner"
	"mproc/internal/shm"
	"mproc/internal/unix"
)

// DefaultHandshakeTimeout bounds the set-up of a connection when
// Options.HandshakeTimeout is 0.
const DefaultHandshakeTimeout = mproc.DefaultHandshakeTimeout

// The rendezvous, after the optional authkey handshake: the listener sends
// one frame, hello, then the segment's descriptor (mproc's SendFile form:
// one byte with SCM_RIGHTS). The frame comes first so that a Dial without
// a key that meets a keyed listener reads its "#CHALLENGE#" instead, and a
// Dial with a key that meets a keyless one reads the hello as a malformed
// challenge: each refuses with mproc.ErrAuth at once instead of waiting.
const (
	hello     = "#SHMNET/1#"
	challenge = "#CHALLENGE#"
	maxHello  = 128 // a challenge is 59 bytes
)

// fGetSeals is F_GET_SEALS (fcntl(2)), which internal/unix does not
// re-export.
const fGetSeals = 1034

// Options configure Listen and Dial. The zero value, and a nil *Options,
// are ready to use.
type Options struct {
	// Key, if not empty, is the authkey both sides must prove before a
	// connection is set up: mproc's mutual HMAC challenge and response
	// (Python's multiprocessing.connection handshake, {sha256} form) over
	// the rendezvous socket, answers compared in constant time, every
	// handshake read capped at 256 bytes and the whole handshake bounded
	// by HandshakeTimeout. A Listener with a Key refuses a Dial without
	// one, and a Dial with a Key refuses a Listener without one. Anyone
	// who may connect to the socket file (0600: the same user, and root)
	// may otherwise connect.
	Key []byte
	// RingSize is the capacity of each direction's ring, in bytes: a
	// power of two from MinRingSize to MaxRingSize; 0 means
	// DefaultRingSize. A connection maps two rings. The Listener's
	// decides; Dial ignores its own.
	RingSize int
	// HandshakeTimeout bounds a connection's set-up: on the Listener's
	// side each client's handshake, on Dial's the whole Dial (with its
	// ctx). 0 means DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// OnError, for Listen, receives the errors of clients that failed
	// before Accept could return them (a wrong key, too slow, gone during
	// the set-up); they are not Accept's errors. It may be called from
	// several goroutines at once and must return quickly.
	OnError func(error)
}

// settings are Options with the defaults filled in.
type settings struct {
	key     []byte
	ring    int
	timeout time.Duration
	onError func(error)
}

func (o *Options) settings() (settings, error) {
	var s settings
	if o != nil {
		s = settings{key: o.Key, ring: o.RingSize, timeout: o.HandshakeTimeout, onError: o.OnError}
	}
	if len(s.key) == 0 {
		s.key = nil
	}
	switch {
	case s.ring == 0:
		s.ring = DefaultRingSize
	case s.ring < 0 || !validRingSize(uint64(s.ring)):
		return s, fmt.Errorf("ring size %d is not a power of two from %d to %d", s.ring, MinRingSize, MaxRingSize)
	}
	switch {
	case s.timeout == 0:
		s.timeout = DefaultHandshakeTimeout
	case s.timeout < 0:
		return s, fmt.Errorf("negative handshake timeout %v", s.timeout)
	}
	return s, nil
}

// Addr is the address of a shmnet endpoint: the path of the rendezvous
// socket, and the process at that end when known.
type Addr struct {
	Path string
	Pid  int // 0 for a Listener's address, or when unknown
}

// Network returns "shmnet".
func (a *Addr) Network() string { return network }

// String returns the path, followed by the pid when known.
func (a *Addr) String() string {
	if a == nil {
		return "<nil>"
	}
	if a.Pid == 0 {
		return a.Path
	}
	return a.Path + " (pid " + strconv.Itoa(a.Pid) + ")"
}

// Listener accepts shmnet connections: a net.Listener. It is safe for
// concurrent use by multiple goroutines.
//
// It listens on a Unix socket, the rendezvous, through mproc.Listen: the
// socket file is created 0600 and removed by Close, and clients run their
// handshake on goroutines of their own, so a slow or silent client holds
// up no other. Accept then creates the connection's shared segment, sends
// its descriptor to the client, and returns the Conn; a Dial returns once
// an Accept has taken its connection.
type Listener struct {
	ml     *mproc.Listener
	addr   *Addr
	s      settings
	closed atomic.Bool
}

// Listen listens on the Unix socket path, which must not exist yet; an
// empty path makes one in a new private directory (Addr tells which, and
// Close removes both). opts may be nil.
func Listen(path string, opts *Options) (*Listener, error) {
	s, err := opts.settings()
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Addr: &Addr{Path: path}, Err: err}
	}
	ml, err := mproc.Listen("unix", path, s.key, mproc.ListenOptions{
		ModernOnly: true, HandshakeTimeout: s.timeout, OnError: s.onError,
	})
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Addr: &Addr{Path: path}, Err: err}
	}
	return &Listener{ml: ml, addr: &Addr{Path: ml.Addr()}, s: s}, nil
}

// Accept waits for the next connection and returns it as a net.Conn (a
// *Conn). After Close, waiting and later Accepts return an error matching
// net.ErrClosed.
func (l *Listener) Accept() (net.Conn, error) {
	c, err := l.AcceptConn()
	if err != nil {
		return nil, err
	}
	return c, nil
}

// AcceptConn is Accept returning the *Conn.
func (l *Listener) AcceptConn() (*Conn, error) {
	for {
		mc, err := l.ml.Accept(context.Background())
		if err == nil {
			var c *Conn
			if c, err = l.setUp(mc); err == nil {
				return c, nil
			}
			if l.s.onError != nil && !l.closed.Load() {
				l.s.onError(err)
			}
			continue
		}
		if l.closed.Load() || errors.Is(err, os.ErrClosed) {
			err = net.ErrClosed
		}
		return nil, &net.OpError{Op: "accept", Net: network, Addr: l.addr, Err: err}
	}
}

// setUp makes the connection of mc, an authenticated client: it creates the
// segment, sends the hello and the descriptor, and keeps the socket.
func (l *Listener) setUp(mc *mproc.Conn) (*Conn, error) {
	defer mc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), l.s.timeout)
	defer cancel()
	peerPid, _ := mc.PeerPid()
	name := "set up connection from pid " + strconv.Itoa(peerPid) + " on " + l.addr.Path
	seg, err := shm.NewAnonymous(shm.KindSharedMemory, dataSize(l.s.ring), shm.CreateOptions{
		Param: [2]uint64{paramKind, uint64(l.s.ring)},
		Init: func(data []byte) error {
			initSegment(data, l.s.ring, owner.Self().Pack())
			return nil
		},
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	sock, err := sendSegment(ctx, mc, seg)
	if err != nil {
		seg.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return newConn(seg, viewOf(seg.Data(), l.s.ring), 0, sock, peerPid, l.addr.Path), nil
}

// sendSegment sends the hello and seg's descriptor on mc and returns a
// duplicate of mc's socket to keep (keepSocket).
func sendSegment(ctx context.Context, mc *mproc.Conn, seg *shm.Segment) (*os.File, error) {
	if err := mc.SendBytes(ctx, []byte(hello)); err != nil {
		return nil, err
	}
	f, err := seg.FD().File("shmnet-segment")
	if err != nil {
		return nil, err
	}
	err = mc.SendFile(ctx, f)
	f.Close()
	if err != nil {
		return nil, err
	}
	return keepSocket(mc)
}

// keepSocket returns a duplicate of mc's socket for the life of the
// connection, non-blocking so that its watcher waits in Go's poller (an
// *os.File over a non-blocking descriptor is pollable). mc is closed right
// after, so the mode of the socket's file description is this file's.
func keepSocket(mc *mproc.Conn) (*os.File, error) {
	f, err := mc.File()
	if err != nil {
		return nil, err
	}
	raw, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 3)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("keep socket: %w", err)
	}
	if err := unix.SetNonblock(raw, true); err != nil {
		unix.Close(raw)
		return nil, fmt.Errorf("keep socket: %w", err)
	}
	return os.NewFile(uintptr(raw), "shmnet-rendezvous"), nil
}

// Close stops listening and removes the socket file. Waiting and later
// Accepts fail with net.ErrClosed; connections already accepted go on. A
// second Close returns an error matching net.ErrClosed.
func (l *Listener) Close() error {
	if !l.closed.CompareAndSwap(false, true) {
		return &net.OpError{Op: "close", Net: network, Addr: l.addr, Err: net.ErrClosed}
	}
	if err := l.ml.Close(); err != nil {
		return &net.OpError{Op: "close", Net: network, Addr: l.addr, Err: err}
	}
	return nil
}

// Addr returns the listener's address: the socket path.
func (l *Listener) Addr() net.Addr { return l.addr }

// Dial connects to the Listener at path. ctx, and Options.HandshakeTimeout,
// bound the whole set-up: the connect, the handshake when Options.Key is
// set, and the wait for the Listener's Accept to send the segment. opts
// may be nil; Options.RingSize is the Listener's to choose.
//
// Dial validates the segment it receives before it maps anything of it
// into use: sealed against resizing, the mproc segment header (magic,
// version, checksum, sizes) and shmnet's own (magic, version, ring size
// against the segment's size); a refusal is mproc.ErrCorrupt,
// mproc.ErrVersion or mproc.ErrKind.
func Dial(ctx context.Context, path string, opts *Options) (*Conn, error) {
	opErr := func(err error) error {
		if errors.Is(err, context.DeadlineExceeded) {
			err = timeoutError{err} // a net.Error whose Timeout is true, as net.Dial's
		}
		return &net.OpError{Op: "dial", Net: network, Addr: &Addr{Path: path}, Err: err}
	}
	s, err := opts.settings()
	if err != nil {
		return nil, opErr(err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	mc, err := mproc.Dial(ctx, "unix", path, s.key)
	if err != nil {
		// A keyless listener's hello, read as a challenge, is refused as
		// malformed, and wire quotes it in the error: say why instead
		// (TestAuth holds this to the text).
		if s.key != nil && errors.Is(err, mproc.ErrAuth) && strings.Contains(err.Error(), hello) {
			err = fmt.Errorf("the listener has no Key, so it cannot prove this one: %w", mproc.ErrAuth)
		}
		return nil, opErr(err)
	}
	defer mc.Close()
	seg, sock, err := receiveSegment(ctx, mc, s.key != nil)
	if err != nil {
		return nil, opErr(err)
	}
	v, err := mapView(seg)
	if err != nil {
		seg.Close()
		sock.Close()
		return nil, opErr(err)
	}
	v.hdr.Tokens[1].Store(owner.Self().Pack())
	peerPid, _ := mc.PeerPid()
	return newConn(seg, v, 1, sock, peerPid, path), nil
}

// timeoutError marks err, which matches context.DeadlineExceeded, as a
// timeout for net.Error.
type timeoutError struct{ error }

func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }
func (e timeoutError) Unwrap() error { return e.error }

// receiveSegment reads the hello and the segment's descriptor from mc,
// checks the segment's seals and header, and returns it mapped, with a
// duplicate of mc's socket to keep (keepSocket).
func receiveSegment(ctx context.Context, mc *mproc.Conn, keyed bool) (*shm.Segment, *os.File, error) {
	mc.SetMaxFrame(maxHello)
	msg, err := mc.RecvBytes(ctx)
	switch {
	case err != nil:
		return nil, nil, fmt.Errorf("waiting for the listener's segment: %w", err)
	case !keyed && bytes.HasPrefix(msg, []byte(challenge)):
		return nil, nil, fmt.Errorf("the listener requires a Key and this Dial has none: %w", mproc.ErrAuth)
	case string(msg) != hello:
		return nil, nil, fmt.Errorf("not a shmnet listener (it sent %q): %w", msg[:min(len(msg), 32)], mproc.ErrProtocol)
	}
	f, err := mc.RecvFile(ctx, "shmnet-segment")
	if err != nil {
		return nil, nil, fmt.Errorf("receive segment: %w", err)
	}
	raw, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 3)
	f.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("receive segment: %w", err)
	}
	segFD, err := fd.New(raw)
	if err != nil {
		unix.Close(raw)
		return nil, nil, err
	}
	// Unsealed, the listener could shrink the file under the mapping,
	// and the next access would kill this process with SIGBUS.
	const sealed = unix.F_SEAL_SHRINK | unix.F_SEAL_GROW
	if seals, err := unix.FcntlInt(uintptr(raw), fGetSeals, 0); err != nil || seals&sealed != sealed {
		segFD.Close()
		return nil, nil, fmt.Errorf("segment not sealed against resizing (seals %#x, %v): %w", seals, err, mproc.ErrCorrupt)
	}
	seg, err := shm.FromFD(segFD, shm.KindSharedMemory)
	if err != nil {
		return nil, nil, err
	}
	sock, err := keepSocket(mc)
	if err != nil {
		seg.Close()
		return nil, nil, err
	}
	return seg, sock, nil
}
