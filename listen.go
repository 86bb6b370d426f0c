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

	"mproc/internal/unix"
	"mproc/internal/wire"
)

// Listener accepts connections from Dial and from Python's
// multiprocessing.connection.Client: Python's Listener, in Go.
//
// Networks: "unix" (a socket file, created 0600; with an empty address,
// mproc picks a path in a new private directory, removed by Close; the
// abstract namespace is refused) and "tcp", "tcp4", "tcp6" with an IP
// address or "localhost" and a port (":0" picks one; Addr tells which).
// Host names other than localhost are not resolved: mproc does its own
// socket calls, without package net, so that programs stay statically
// linked and start their children fast.
//
// With a non-nil authkey every connection runs Python's mutual challenge
// (Listener side: deliver, then answer), in the peer's generation: HMAC-MD5
// for Python 3.11 and older, {sha256} for 3.12 and newer. A nil key skips
// it; an empty, non-nil key runs it, as Python 3.13 does.
type Listener struct {
	f          *os.File
	network    string
	addr       string
	key        []byte
	path, dir  string // a unix socket's file, and the private directory mproc made
	ModernOnly bool   // refuse legacy HMAC-MD5 answers (breaks Python ≤ 3.11 clients)
}

// Listen listens on addr.
func Listen(network, addr string, authkey []byte) (*Listener, error) {
	l := &Listener{network: network, key: authkey}
	sa, family, err := l.sockaddr(addr)
	if err != nil {
		return nil, fmt.Errorf("mproc: listen %s %q: %w", network, addr, err)
	}
	raw, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		l.cleanup()
		return nil, fmt.Errorf("mproc: listen %s %q: %w", network, addr, err)
	}
	if family != unix.AF_UNIX {
		unix.SetsockoptInt(raw, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	}
	err = unix.Bind(raw, sa)
	if err == nil && l.path != "" {
		err = os.Chmod(l.path, 0o600)
	}
	if err == nil {
		err = unix.Listen(raw, 128)
	}
	if err != nil {
		unix.Close(raw)
		l.cleanup()
		return nil, fmt.Errorf("mproc: listen %s %q: %w", network, addr, err)
	}
	l.addr = cmp.Or(l.path, boundAddr(raw))
	l.f = os.NewFile(uintptr(raw), "mproc-listener")
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
	if strings.HasPrefix(addr, "@") || strings.HasPrefix(addr, "\x00") {
		return nil, 0, errors.New("abstract-namespace sockets are not supported: anyone on the machine could connect")
	}
	l.path = addr
	return &unix.SockaddrUnix{Name: addr}, unix.AF_UNIX, nil
}

func (l *Listener) cleanup() {
	if l.path != "" {
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

// Accept waits for a connection and authenticates it; a client with a
// wrong key gets ErrAuth here (and on its side). ctx bounds the wait and
// the handshake.
func (l *Listener) Accept(ctx context.Context) (*Conn, error) {
	rc, err := l.f.SyscallConn()
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { l.f.SetReadDeadline(aLongTimeAgo) })
	defer stop()
	l.f.SetReadDeadline(deadlineOf(ctx))
	var raw int
	var aerr error
	err = rc.Read(func(fd uintptr) bool {
		raw, _, aerr = unix.Accept4(int(fd), unix.SOCK_CLOEXEC)
		return aerr != unix.EAGAIN
	})
	if err = cmp.Or(err, aerr); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("mproc: accept: %w", err)
	}
	if l.network != "unix" {
		unix.SetsockoptInt(raw, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	}
	c, err := newConn(raw, "conn from "+l.addr)
	if err != nil {
		return nil, err
	}
	if l.key != nil {
		err = c.handshake(ctx, func(rw conn) error {
			if err := wire.Deliver(rw, l.key, l.ModernOnly); err != nil {
				return err
			}
			return wire.Answer(rw, l.key)
		})
		if err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// Close stops listening and removes a unix socket's file (and the
// directory mproc made for it).
func (l *Listener) Close() error {
	err := l.f.Close()
	l.cleanup()
	return err
}

// Dial connects to a Listener (or a Python Listener) at addr and runs the
// authkey handshake (client side: answer, then deliver) when authkey is
// not nil. ctx bounds the connect and the handshake.
func Dial(ctx context.Context, network, addr string, authkey []byte) (*Conn, error) {
	var sa unix.Sockaddr
	var family int
	var err error
	if network == "unix" {
		if strings.HasPrefix(addr, "@") || strings.HasPrefix(addr, "\x00") {
			return nil, fmt.Errorf("mproc: dial unix %q: abstract-namespace sockets are not supported", addr)
		}
		sa, family = &unix.SockaddrUnix{Name: addr}, unix.AF_UNIX
	} else if sa, family, err = inetSockaddr(network, addr, false); err != nil {
		return nil, fmt.Errorf("mproc: dial %s %q: %w", network, addr, err)
	}
	raw, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("mproc: dial %s %q: %w", network, addr, err)
	}
	if family != unix.AF_UNIX {
		unix.SetsockoptInt(raw, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	}
	cerr := unix.Connect(raw, sa)
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
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("mproc: dial %s %q: %w", network, addr, errnoErr(cerr))
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
type conn struct{ c *Conn }

func (h conn) Read(p []byte) (int, error)  { return reader{h.c}.Read(p) }
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
	if err := steps(conn{c}); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !errors.Is(err, ErrAuth) {
			err = fmt.Errorf("%w: %w", ErrAuth, err)
		}
		return fmt.Errorf("mproc: %s: handshake: %w", c.name, err)
	}
	c.f.SetReadDeadline(noDeadline)
	c.f.SetWriteDeadline(noDeadline)
	return nil
}
