package mproc

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"mproc/internal/unix"
	"mproc/internal/wire"
)

// Defaults of ListenOptions.
const (
	// DefaultHandshakeTimeout bounds each client's authkey handshake.
	DefaultHandshakeTimeout = 5 * time.Second
	// DefaultMaxPending caps the connections a Listener holds that Accept
	// has not returned yet.
	DefaultMaxPending = 64
	// DefaultBacklog is the kernel's queue of connections the Listener has
	// not taken yet (listen(2)'s backlog).
	DefaultBacklog = 128
)

// ListenOptions configure a Listener. The zero value is ready to use.
type ListenOptions struct {
	// ModernOnly refuses legacy HMAC-MD5 answers, which breaks clients on
	// Python 3.11 and older.
	ModernOnly bool
	// HandshakeTimeout bounds each client's authkey handshake, from the
	// moment the Listener takes the connection to the verdict; a client
	// that has not finished by then is disconnected. 0 means
	// DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// MaxPending caps the connections taken from the kernel that Accept
	// has not returned: in their handshake, or authenticated and waiting.
	// At the cap the Listener takes no more until one leaves (Accept
	// returns it, or its handshake fails or times out): later clients
	// wait in the kernel's backlog, and once that is full too, Dial on a
	// Unix socket waits until its context ends (Python's Client blocks).
	// 0 means DefaultMaxPending.
	MaxPending int
	// Backlog is the kernel's queue of connections not yet taken by the
	// Listener; 0 means DefaultBacklog (the kernel caps it at somaxconn).
	Backlog int
	// OnError, if not nil, receives each error that does not end the
	// Listener and so is not Accept's to return: a failed handshake (a
	// wrong key: ErrAuth; too slow: os.ErrDeadlineExceeded; the client
	// gone), and an accept(2) failure the Listener waits out (out of
	// descriptors or memory: it retries after 5 ms, doubling to 1 s, as
	// net/http's Server does). It is called from the Listener's
	// goroutines, possibly at once from several: use it to log, and return
	// quickly (a connection holds its MaxPending slot until it returns).
	OnError func(error)
}

// Listener accepts connections from Dial and from Python's
// multiprocessing.connection.Client: Python's Listener, in Go.
//
// Networks: "unix" (a socket file, created 0600, never over an existing
// file or symbolic link; with an empty address, mproc picks a path in a new
// private directory, removed by Close; the abstract namespace, and a path
// holding a NUL byte, are refused) and "tcp", "tcp4", "tcp6" with an IP
// address or "localhost" and a port (":0" picks one; Addr tells which).
// Host names other than localhost are not resolved: mproc does its own
// socket calls, without package net, so that programs stay statically
// linked and start their children fast.
//
// With a non-nil authkey every connection runs Python's mutual challenge
// (Listener side: deliver, then answer), in the peer's generation: HMAC-MD5
// for Python 3.11 and older, {sha256} for 3.12 and newer. A nil key skips
// it; an empty, non-nil key runs it, as Python 3.13 does.
//
// Unlike Python's Listener, one client cannot hold up the others: a
// goroutine takes connections from the kernel as they come and runs each
// handshake in a goroutine of its own, bounded by
// ListenOptions.HandshakeTimeout, and Accept returns the connections that
// passed, in the order they passed. A client that connects and stays
// silent, or sends half a frame, costs one of ListenOptions.MaxPending
// slots until its deadline, and nothing else.
//
// A Listener is safe for concurrent use by multiple goroutines.
type Listener struct {
	f         *os.File // the listening socket; only the acceptor reads it
	network   string
	addr      string
	key       []byte
	opts      ListenOptions // defaults filled in
	path, dir string        // a unix socket's file, and the private directory mproc made
	bound     bool          // bind made the file at path: cleanup may remove it

	// slots holds a token per pending connection (taken from the kernel,
	// not returned by Accept), and one the acceptor takes before each
	// accept(2). Tokens are given back when a handshake fails, and when
	// Accept takes a connection from ready. So the handshakes running and
	// the connections in ready number at most MaxPending = cap(slots) =
	// cap(ready), and a send on ready never blocks.
	slots chan struct{}
	ready chan *Conn // authenticated, in the order their handshakes ended

	done     chan struct{}      // closed by Close, first
	cancel   context.CancelFunc // ends every handshake's context (Close)
	hctx     context.Context    // the parent of every handshake's context
	broken   chan struct{}      // closed when the acceptor fails for good
	err      error              // why; written before broken is closed
	wg       sync.WaitGroup     // the acceptor and the handshakes
	closeErr error
	once     sync.Once
}

// Listen listens on addr and starts taking connections (see Listener).
func Listen(network, addr string, authkey []byte, opts ListenOptions) (*Listener, error) {
	if opts.HandshakeTimeout < 0 || opts.MaxPending < 0 || opts.Backlog < 0 {
		return nil, fmt.Errorf("listen %s %q: negative option in %+v", network, addr, opts)
	}
	opts.HandshakeTimeout = cmp.Or(opts.HandshakeTimeout, DefaultHandshakeTimeout)
	opts.MaxPending = cmp.Or(opts.MaxPending, DefaultMaxPending)
	opts.Backlog = cmp.Or(opts.Backlog, DefaultBacklog)
	l := &Listener{network: network, key: authkey, opts: opts}
	sa, family, err := l.sockaddr(addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s %q: %w", network, addr, err)
	}
	raw, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		l.cleanup()
		return nil, fmt.Errorf("listen %s %q: %w", network, addr, err)
	}
	if family != unix.AF_UNIX {
		unix.SetsockoptInt(raw, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	}
	if family == unix.AF_UNIX {
		// bind(2) gives the socket file the socket's mode, less the umask
		// (which can only narrow it): set it on the descriptor, so that
		// the file is never wider, and no chmod by path can be led by a
		// symbolic link swapped in after bind to another file.
		err = unix.Fchmod(raw, 0o600)
	}
	if err == nil {
		// bind(2) never follows a symbolic link nor replaces an existing
		// file: either is EADDRINUSE, and stays as it was.
		err = unix.Bind(raw, sa)
		l.bound = err == nil && l.path != ""
	}
	if err == nil {
		err = unix.Listen(raw, opts.Backlog)
	}
	if err != nil {
		unix.Close(raw)
		l.cleanup()
		return nil, fmt.Errorf("listen %s %q: %w", network, addr, err)
	}
	l.addr = cmp.Or(l.path, boundAddr(raw))
	l.f = os.NewFile(uintptr(raw), "mproc-listener")
	l.slots = make(chan struct{}, opts.MaxPending)
	l.ready = make(chan *Conn, opts.MaxPending)
	l.done, l.broken = make(chan struct{}), make(chan struct{})
	l.hctx, l.cancel = context.WithCancel(context.Background())
	l.wg.Add(1)
	go l.acceptLoop()
	return l, nil
}

// sockaddr parses addr for the listener's network, making the private
// directory for an empty unix address.
func (l *Listener) sockaddr(addr string) (unix.Sockaddr, int, error) {
	if l.network != "unix" {
		return inetSockaddr(l.network, addr, true)
	}
	if addr == "" {
		dir, err := os.MkdirTemp("", "mproc-")
		if err != nil {
			return nil, 0, err
		}
		l.dir, addr = dir, filepath.Join(dir, "listener")
	}
	if err := checkUnixAddr(addr); err != nil {
		return nil, 0, err
	}
	l.path = addr
	return &unix.SockaddrUnix{Name: addr}, unix.AF_UNIX, nil
}

// checkUnixAddr refuses the Unix socket paths that would not name the file
// they spell: the abstract namespace, and a path holding a NUL byte (the
// kernel would end it there, at another file).
func checkUnixAddr(addr string) error {
	if strings.HasPrefix(addr, "@") || strings.HasPrefix(addr, "\x00") {
		return errors.New("abstract-namespace sockets are not supported: anyone on the machine could connect")
	}
	if strings.IndexByte(addr, 0) >= 0 {
		return fmt.Errorf("the path holds a NUL byte: %w", os.ErrInvalid)
	}
	return nil
}

// cleanup removes what Listen made: the socket file, only if bind made it
// (a failed bind leaves whatever was at the path), and the private
// directory.
func (l *Listener) cleanup() {
	if l.bound {
		os.Remove(l.path)
	}
	if l.dir != "" {
		os.Remove(l.dir)
	}
}

// inetSockaddr parses "host:port" for tcp: an IP literal, "localhost", or
// (listening) an empty host for every address.
func inetSockaddr(network, addr string, listening bool) (unix.Sockaddr, int, error) {
	if network != "tcp" && network != "tcp4" && network != "tcp6" {
		return nil, 0, fmt.Errorf("unknown network %q: want unix, tcp, tcp4 or tcp6", network)
	}
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return nil, 0, errors.New("missing port")
	}
	host, ps := strings.Trim(addr[:i], "[]"), addr[i+1:]
	port, err := strconv.ParseUint(ps, 10, 16)
	if err != nil {
		return nil, 0, fmt.Errorf("bad port %q", ps)
	}
	var ip netip.Addr
	switch {
	case host == "" && listening:
		ip = netip.IPv4Unspecified()
		if network == "tcp6" {
			ip = netip.IPv6Unspecified()
		}
	case host == "localhost":
		ip = netip.MustParseAddr("127.0.0.1")
		if network == "tcp6" {
			ip = netip.IPv6Loopback()
		}
	default:
		if ip, err = netip.ParseAddr(host); err != nil {
			return nil, 0, fmt.Errorf("host %q is not an IP address or localhost (mproc resolves no names)", host)
		}
	}
	if ip.Is4() || ip.Is4In6() {
		if network == "tcp6" {
			return &unix.SockaddrInet6{Port: int(port), Addr: ip.As16()}, unix.AF_INET6, nil
		}
		return &unix.SockaddrInet4{Port: int(port), Addr: ip.Unmap().As4()}, unix.AF_INET, nil
	}
	if network == "tcp4" {
		return nil, 0, fmt.Errorf("%s is not an IPv4 address", ip)
	}
	return &unix.SockaddrInet6{Port: int(port), Addr: ip.As16()}, unix.AF_INET6, nil
}

// boundAddr is the "ip:port" a TCP socket is bound to.
func boundAddr(raw int) string {
	sa, err := unix.Getsockname(raw)
	if err != nil {
		return ""
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)).String()
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port)).String()
	}
	return ""
}

// Addr returns the address to dial: the socket path, or "ip:port".
func (l *Listener) Addr() string { return l.addr }

// Network returns the network the Listener listens on ("unix", "tcp", ...).
func (l *Listener) Network() string { return l.network }

// Accept waits for a connection that passed the handshake and returns it;
// ctx bounds the wait. The handshakes run in the background (see
// Listener), so a client that fails one (a wrong key, too slow, gone) is
// not Accept's error: it goes to ListenOptions.OnError. Accept's errors
// are its own and final, so a loop may stop at the first: ctx's error,
// one matching os.ErrClosed once Close was called, or the error that
// broke the listening socket.
func (l *Listener) Accept(ctx context.Context) (*Conn, error) {
	select { // a connection that is there wins over a done ctx
	case c := <-l.ready:
		return l.take(c)
	default:
	}
	select {
	case c := <-l.ready:
		return l.take(c)
	case <-l.done:
		return nil, fmt.Errorf("accept on %s: %w", l.addr, os.ErrClosed)
	case <-l.broken:
		return nil, fmt.Errorf("accept on %s: %w", l.addr, l.err)
	case <-ctx.Done():
		return nil, fmt.Errorf("accept on %s: %w", l.addr, ctx.Err())
	}
}

// take hands c, just received from ready, to Accept's caller.
func (l *Listener) take(c *Conn) (*Conn, error) {
	<-l.slots
	if l.closed() {
		c.Close()
		return nil, fmt.Errorf("accept on %s: %w", l.addr, os.ErrClosed)
	}
	return c, nil
}

func (l *Listener) closed() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

func (l *Listener) report(err error) {
	if l.opts.OnError != nil {
		l.opts.OnError(err)
	}
}

// Back-off of the acceptor after an accept(2) failure for want of
// resources, as net/http's Server.Serve waits after a temporary error.
const (
	acceptRetryMin = 5 * time.Millisecond
	acceptRetryMax = time.Second
)

// acceptLoop is the acceptor: it takes a slot, then a connection from the
// kernel, and starts its handshake, until Close or an error it cannot
// wait out. It is the only reader of l.f.
func (l *Listener) acceptLoop() {
	defer l.wg.Done()
	rc, err := l.f.SyscallConn()
	if err != nil {
		l.fail(err)
		return
	}
	var wait time.Duration
	for {
		select {
		case l.slots <- struct{}{}:
		case <-l.done:
			return
		}
		raw, sa, err := accept(rc)
		for err != nil {
			if l.closed() {
				return
			}
			switch e, _ := err.(unix.Errno); e {
			case unix.EINTR, unix.ECONNABORTED, unix.ECONNRESET, unix.EPERM, unix.EPROTO, unix.ENETDOWN,
				unix.ENOPROTOOPT, unix.EHOSTDOWN, unix.ENONET, unix.EHOSTUNREACH, unix.EOPNOTSUPP,
				unix.ENETUNREACH, unix.ETIMEDOUT:
				// That client is gone, or its network failed: accept(2)
				// says to try the next one.
			case unix.EMFILE, unix.ENFILE, unix.ENOBUFS, unix.ENOMEM:
				wait = min(max(2*wait, acceptRetryMin), acceptRetryMax)
				l.report(fmt.Errorf("accept on %s: %w; retrying in %v", l.addr, err, wait))
				select {
				case <-time.After(wait):
				case <-l.done:
					return
				}
			default:
				l.fail(err)
				return
			}
			raw, sa, err = accept(rc)
		}
		wait = 0
		l.serve(raw, sa)
	}
}

// accept takes a connection from the kernel, waiting for one in the poller.
func accept(rc syscall.RawConn) (int, unix.Sockaddr, error) {
	var raw int
	var sa unix.Sockaddr
	var aerr error
	err := rc.Read(func(fd uintptr) bool {
		raw, sa, aerr = unix.Accept4(int(fd), unix.SOCK_CLOEXEC)
		return aerr != unix.EAGAIN
	})
	return raw, sa, cmp.Or(err, aerr)
}

// fail records why the acceptor stopped, for Accept.
func (l *Listener) fail(err error) {
	l.err = err
	close(l.broken)
}

// serve starts the handshake of raw, a new connection holding a slot.
func (l *Listener) serve(raw int, sa unix.Sockaddr) {
	if l.network != "unix" {
		unix.SetsockoptInt(raw, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	}
	c, err := newConn(raw, l.peerName(raw, sa))
	if err != nil {
		<-l.slots
		l.report(fmt.Errorf("accept on %s: %w", l.addr, err))
		return
	}
	if l.key == nil {
		l.ready <- c
		return
	}
	l.wg.Add(1)
	go l.handshake(c)
}

// handshake authenticates c, then queues it for Accept or closes it.
func (l *Listener) handshake(c *Conn) {
	defer l.wg.Done()
	ctx, cancel := context.WithTimeout(l.hctx, l.opts.HandshakeTimeout)
	defer cancel()
	err := c.handshake(ctx, func(rw conn) error {
		rw.quickAck = !c.unixSock
		if err := wire.Deliver(rw, l.key, l.opts.ModernOnly); err != nil {
			return err
		}
		return wire.Answer(rw, l.key)
	})
	if err == nil {
		l.ready <- c
		return
	}
	c.Close()
	<-l.slots
	if l.closed() {
		return // Close ended it: nobody's error
	}
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("%s: handshake not done within %v: %w", c.name, l.opts.HandshakeTimeout, os.ErrDeadlineExceeded)
	}
	l.report(err)
}

// peerName names an accepted connection in errors: by the client's
// address on TCP, by its process on a Unix socket.
func (l *Listener) peerName(raw int, sa unix.Sockaddr) string {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return "conn from " + netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)).String()
	case *unix.SockaddrInet6:
		return "conn from " + netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port)).String()
	}
	if cred, err := unix.GetsockoptUcred(raw, unix.SOL_SOCKET, unix.SO_PEERCRED); err == nil && cred.Pid > 0 {
		return fmt.Sprintf("conn from pid %d on %s", cred.Pid, l.addr)
	}
	return "conn on " + l.addr
}

// Close stops listening, closes the connections Accept has not returned
// (ending their handshakes), waits for the Listener's goroutines to end,
// and removes a unix socket's file (and the directory mproc made for it).
// Pending and later Accepts return an error matching os.ErrClosed, and so
// does a second Close.
func (l *Listener) Close() error {
	first := false
	l.once.Do(func() {
		first = true
		close(l.done)
		l.cancel()
		l.closeErr = l.f.Close() // wakes the acceptor
		l.wg.Wait()
		for len(l.ready) > 0 {
			select {
			case c := <-l.ready:
				c.Close()
			default: // a racing Accept took it, and closes it
			}
		}
		l.cleanup()
	})
	if !first {
		return fmt.Errorf("close listener %s: %w", l.addr, os.ErrClosed)
	}
	return l.closeErr
}

// Dial connects to a Listener (or a Python Listener) at addr and runs the
// authkey handshake (client side: answer, then deliver) when authkey is
// not nil. ctx bounds the connect and the handshake. A Unix listener whose
// backlog is full (it is not accepting fast enough) makes Dial wait for
// room until ctx ends, as Python's Client (a blocking connect) does,
// polling every 100 µs at first and every 10 ms at most; then the error
// wraps ctx's.
func Dial(ctx context.Context, network, addr string, authkey []byte) (*Conn, error) {
	var sa unix.Sockaddr
	var family int
	var err error
	if network == "unix" {
		if err := checkUnixAddr(addr); err != nil {
			return nil, fmt.Errorf("dial unix %q: %w", addr, err)
		}
		sa, family = &unix.SockaddrUnix{Name: addr}, unix.AF_UNIX
	} else if sa, family, err = inetSockaddr(network, addr, false); err != nil {
		return nil, fmt.Errorf("dial %s %q: %w", network, addr, err)
	}
	raw, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("dial %s %q: %w", network, addr, err)
	}
	if family != unix.AF_UNIX {
		unix.SetsockoptInt(raw, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	}
	cerr := unix.Connect(raw, sa)
	if cerr == unix.EAGAIN {
		cerr = retryConnect(ctx, raw, sa)
	}
	if cerr == unix.EAGAIN {
		unix.Close(raw)
		return nil, fmt.Errorf("dial %s %q: listener's backlog full: %w", network, addr, ctx.Err())
	}
	c, err := newConn(raw, "conn to "+addr)
	if err != nil {
		return nil, err
	}
	if cerr == unix.EINPROGRESS {
		cerr = c.awaitConnect(ctx)
	}
	if cerr != nil {
		c.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("dial %s %q: %w", network, addr, ctx.Err())
		}
		return nil, fmt.Errorf("dial %s %q: %w", network, addr, errnoErr(cerr))
	}
	if authkey != nil {
		err := c.handshake(ctx, func(rw conn) error {
			if err := wire.Answer(rw, authkey); err != nil {
				return err
			}
			return wire.Deliver(rw, authkey, false)
		})
		if err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// Polling of a connect refused for a full backlog, from dialRetryMin
// doubling to dialRetryMax.
const (
	dialRetryMin = 100 * time.Microsecond
	dialRetryMax = 10 * time.Millisecond
)

// retryConnect connects raw, a non-blocking socket, to sa, after a first
// connect refused with EAGAIN. A Unix listener whose backlog is full
// refuses a non-blocking connect so, at once (a blocking one would sleep
// until there is room; TCP says EINPROGRESS and the kernel resends the
// SYN), and the socket stays unconnected: so try again, as a blocking
// connect would wait, until ctx ends. It returns the last connect's
// result: EAGAIN if ctx ended first.
func retryConnect(ctx context.Context, raw int, sa unix.Sockaddr) error {
	wait := dialRetryMin
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return unix.EAGAIN
		case <-t.C:
		}
		if err := unix.Connect(raw, sa); err != unix.EAGAIN {
			return err
		}
		wait = min(2*wait, dialRetryMax)
		t.Reset(wait)
	}
}

func errnoErr(err error) error {
	if e, ok := err.(unix.Errno); ok && e == unix.ENOENT {
		return fmt.Errorf("%w: %w", os.ErrNotExist, err)
	}
	return err
}

// awaitConnect waits until a non-blocking connect is done.
func (c *Conn) awaitConnect(ctx context.Context) error {
	rc, err := c.f.SyscallConn()
	if err != nil {
		return err
	}
	stop := c.deadline(ctx, false)
	defer stop()
	var soerr int
	var gerr error
	err = rc.Write(func(fd uintptr) bool {
		soerr, gerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR)
		return true
	})
	if err = cmp.Or(err, gerr); err != nil {
		return err
	}
	if soerr != 0 {
		return unix.Errno(soerr)
	}
	return nil
}

// conn is what the handshake reads and writes: c's frames, raw.
type conn struct {
	c *Conn
	// quickAck acknowledges what each read takes at once (TCP_QUICKACK).
	// A Python client writes its last handshake message and its first
	// request back to back, and Nagle holds the request until that
	// message is acknowledged: with the kernel's delayed ACK, 40 ms per
	// connection, which Python's own server pays on every manager call.
	quickAck bool
}

func (h conn) Read(p []byte) (int, error) {
	if h.quickAck {
		h.c.rc.Control(func(raw uintptr) {
			unix.SetsockoptInt(int(raw), unix.IPPROTO_TCP, unix.TCP_QUICKACK, 1)
		})
	}
	return reader{h.c}.Read(p)
}
func (h conn) Write(p []byte) (int, error) { return writer{h.c}.Write(p) }

// handshake runs steps on c, bounded by ctx.
func (c *Conn) handshake(ctx context.Context, steps func(conn) error) error {
	c.rmu.Lock()
	c.wmu.Lock()
	defer c.rmu.Unlock()
	defer c.wmu.Unlock()
	stopR, stopW := c.deadline(ctx, true), c.deadline(ctx, false)
	defer stopR()
	defer stopW()
	if err := steps(conn{c: c}); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if cerr := ctxErr(ctx, err); cerr != nil {
			return cerr
		}
		if !errors.Is(err, ErrAuth) {
			err = fmt.Errorf("%w: %w", ErrAuth, err)
		}
		return fmt.Errorf("%s: handshake: %w", c.name, err)
	}
	return nil
}
