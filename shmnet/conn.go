package shmnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"mproc"
	"mproc/internal/failpoint"
	"mproc/internal/futex"
	"mproc/internal/owner"
	"mproc/internal/shm"
)

// network is the Network of every shmnet address and error.
const network = "shmnet"

// publishEvery is the most bytes a Write copies (or a Read takes) before it
// publishes them: a long Write lets the reader start on its first part
// while it copies the rest, so the two copies overlap.
const publishEvery = 64 << 10

// Conn is one end of a shmnet connection: a net.Conn whose bytes travel
// through two byte rings in memory shared by the two processes, one ring
// per direction. It is safe for concurrent use by multiple goroutines.
//
// Reads return what has arrived, up to len(p), waiting only when nothing
// has. Concurrent Reads are serialised, and so are concurrent Writes: the
// bytes of one Write are never interleaved with another Write's. A Write
// returns once all its bytes are in the ring (the peer may not have read
// them yet), or with the count it copied and the error that stopped it.
//
// After the peer's Close or CloseWrite, Read returns io.EOF once the bytes
// sent before it are read. A Write after the peer's Close or CloseRead
// fails with ErrBrokenPipe. If the peer's process dies, Read returns the
// bytes it wrote before its death and then ErrPeerGone, and Write returns
// ErrPeerGone, whether they were waiting or come later. The death is
// noticed when the kernel hangs up the peer's end of the rendezvous socket,
// at once; a waiting call also checks the peer's owner token every
// futex.Slice (25 ms), in case the socket outlives the peer.
//
// Deadlines work as on a socket: a call past its deadline returns an error
// matching os.ErrDeadlineExceeded whose Timeout method reports true, a
// Write with the count of bytes it had copied; a deadline may be moved,
// or set in the past, while a call waits, and the call then follows it.
// Close interrupts every waiting Read and Write; they and every later call
// return an error matching net.ErrClosed.
//
// IMPORTANT: call Close. A Conn holds a shared mapping (twice its ring
// size), two descriptors and a goroutine (parked in Go's poller on the
// rendezvous socket) until then. A Conn dropped without Close is closed by
// a cleanup once the garbage collector finds it, which may be never.
type Conn struct {
	in, out       *ringCtl // in: the ring this end reads (peer → me); out: the one it writes
	inBuf, outBuf []byte
	size, mask    uint64 // ring size R, R-1; private copies
	hdr           *header
	peer          int // the peer's index in hdr.Tokens
	peerPid       int // the socket's peer, as the kernel saw it (0: unknown)
	local, remote *Addr
	l             *link
	cleanup       runtime.Cleanup

	// Lock order: rmu, then wmu, then l.mapMu.
	rmu   sync.Mutex // serialises Reads; Close holds it while it unmaps
	rhead uint64     // in.Head, whose only writer is this end (under rmu)
	wmu   sync.Mutex // serialises Writes; Close holds it while it unmaps
	wtail uint64     // out.Tail, likewise (under wmu)

	rdl, wdl       atomic.Int64 // deadlines in Unix nanoseconds; 0: none
	rsleep, wsleep atomic.Bool  // a Read (Write) sleeps on its futex word
	closed         atomic.Bool  // Close was called
	rdone, wdone   atomic.Bool  // CloseRead, CloseWrite were called
}

// link is what a connection holds besides its Conn: the mapping, the
// socket, and the state its watcher goroutine shares. Neither the watcher
// nor the cleanup of a Conn dropped without Close may reference the Conn,
// so they hold this.
type link struct {
	seg     *shm.Segment
	sock    *os.File // the rendezvous socket, non-blocking: the watcher reads it in Go's poller
	in, out *ringCtl
	gone    atomic.Bool // the peer vanished without Close
	// readWake and writeWake are &in.DataSeq and &out.SpaceSeq, the words
	// this process's Read and Write sleep on, computed once: even taking
	// the address of a field through in or out touches the mapping (the
	// nil check), which must not happen unlocked after release.
	readWake, writeWake *atomic.Uint32

	// mapMu guards the mapping for whoever touches it outside the Conn's
	// rmu and wmu (SetDeadline, CloseRead, CloseWrite, the watcher):
	// release unmaps under it.
	mapMu    sync.RWMutex
	unmapped bool
}

// watch waits in Go's poller for the peer's end of the rendezvous socket
// to close, which the kernel does when the peer's process dies as well as
// on its Close (whose flags in the segment then say so first). The peer
// sends nothing on the socket after the set-up; bytes it would send are
// ignored. A hang-up marks the peer gone and wakes this process's waiting
// calls; the socket's own Close (release) ends the watch quietly.
func (l *link) watch() {
	var b [64]byte
	for {
		_, err := l.sock.Read(b[:])
		if err == nil {
			continue
		}
		if errors.Is(err, os.ErrClosed) {
			return
		}
		l.gone.Store(true)
		l.poke(l.readWake)
		l.poke(l.writeWake)
		return
	}
}

// poke wakes this process's sleeper on w, unless release has unmapped it.
func (l *link) poke(w *atomic.Uint32) {
	l.mapMu.RLock()
	if !l.unmapped {
		bump(w)
	}
	l.mapMu.RUnlock()
}

// release tells the peer that this end is gone (it reads and writes no
// more), then closes the socket (ending the watcher) and unmaps the
// segment. The caller makes sure no call of the Conn touches the mapping
// any more.
func (l *link) release() error {
	l.mapMu.Lock()
	defer l.mapMu.Unlock()
	l.unmapped = true
	l.in.RClosed.Store(1)
	l.out.WClosed.Store(1)
	bump(&l.out.DataSeq)
	bump(&l.in.SpaceSeq)
	err := l.sock.Close()
	if serr := l.seg.Close(); err == nil {
		err = serr
	}
	return err
}

// bump changes futex word w and wakes whoever sleeps on it.
func bump(w *atomic.Uint32) {
	w.Add(1)
	futex.WakeAll(futex.Addr(w))
}

// newConn makes the Conn of side (0 listener, 1 dialer) over the mapped
// segment seg and the rendezvous socket sock (non-blocking), both of which
// it takes over, and starts its watcher.
func newConn(seg *shm.Segment, v view, side int, sock *os.File, peerPid int, path string) *Conn {
	r := uint64(len(v.ring[0]))
	c := &Conn{
		in: v.ctl[1-side], out: v.ctl[side], inBuf: v.ring[1-side], outBuf: v.ring[side],
		size: r, mask: r - 1, hdr: v.hdr, peer: 1 - side, peerPid: peerPid,
		local:  &Addr{Path: path, Pid: os.Getpid()},
		remote: &Addr{Path: path, Pid: peerPid},
	}
	c.rhead, c.wtail = c.in.Head.Load(), c.out.Tail.Load()
	c.l = &link{seg: seg, sock: sock, in: c.in, out: c.out, readWake: &c.in.DataSeq, writeWake: &c.out.SpaceSeq}
	c.cleanup = runtime.AddCleanup(c, func(l *link) { l.release() }, c.l)
	if watchSockets {
		go c.l.watch()
	}
	return c
}

// watchSockets: new connections start their watcher. Tests turn it off to
// prove the owner-token check alone.
var watchSockets = true

// Read reads up to len(p) bytes: what has arrived, waiting until something
// has. See Conn for its errors.
func (c *Conn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.closed.Load() {
		return 0, c.opErr("read", net.ErrClosed)
	}
	if c.rdone.Load() {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	if expired(c.rdl.Load()) {
		return 0, c.opErr("read", os.ErrDeadlineExceeded)
	}
	for {
		if n, err := c.take(p); n > 0 || err != nil {
			return n, err
		}
		if err := c.await(&c.in.DataSeq, &c.in.RWaiting, &c.rsleep, &c.rdl, c.readable); err != nil {
			return 0, c.opErr("read", err)
		}
	}
}

// readable reports whether a Read has something to do other than wait.
func (c *Conn) readable() bool {
	return c.in.Tail.Load() != c.rhead || c.in.WClosed.Load() != 0 ||
		c.closed.Load() || c.rdone.Load() || c.l.gone.Load()
}

// take copies into p what the ring holds, publishing Head as it goes. It
// returns 0 and no error when there is nothing to take yet.
func (c *Conn) take(p []byte) (int, error) {
	if c.closed.Load() {
		return 0, c.opErr("read", net.ErrClosed)
	}
	if c.rdone.Load() {
		return 0, io.EOF
	}
	head := c.rhead
	avail := c.in.Tail.Load() - head
	if avail == 0 {
		switch {
		case c.in.WClosed.Load() != 0:
			// WClosed is stored after the last Tail: look again.
			if avail = c.in.Tail.Load() - head; avail == 0 {
				return 0, io.EOF
			}
		case c.l.gone.Load():
			if avail = c.in.Tail.Load() - head; avail == 0 {
				return 0, c.opErr("read", ErrPeerGone)
			}
		default:
			return 0, nil
		}
	}
	n := 0
	for {
		if avail > c.size {
			c.rhead = head
			if n > 0 {
				return n, nil // the next Read reports it
			}
			return 0, c.opErr("read", c.corrupt(head, head+avail))
		}
		k := min(avail, uint64(len(p)-n), publishEvery)
		off := head & c.mask
		first := min(k, c.size-off)
		copy(p[n:], c.inBuf[off:off+first])
		if first < k {
			copy(p[n+int(first):], c.inBuf[:k-first])
		}
		head += k
		n += int(k)
		avail -= k
		failpoint.Hit(FailReadCopied)
		c.in.Head.Store(head)
		failpoint.Hit(FailReadPublished)
		c.wakeWriter()
		if n == len(p) {
			break
		}
		if avail == 0 {
			if avail = c.in.Tail.Load() - head; avail == 0 {
				break
			}
		}
	}
	c.rhead = head
	return n, nil
}

// wakeWriter wakes the peer's Write if it sleeps for room in the ring
// this end reads.
func (c *Conn) wakeWriter() {
	if c.in.WWaiting.Load() != 0 && c.in.WWaiting.CompareAndSwap(1, 0) {
		bump(&c.in.SpaceSeq)
	}
}

// Write writes all of b, waiting for room as needed. See Conn for its
// errors.
func (c *Conn) Write(b []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed.Load() {
		return 0, c.opErr("write", net.ErrClosed)
	}
	if c.wdone.Load() {
		return 0, c.opErr("write", ErrBrokenPipe)
	}
	if expired(c.wdl.Load()) {
		return 0, c.opErr("write", os.ErrDeadlineExceeded)
	}
	n := 0
	for n < len(b) {
		k, err := c.put(b[n:])
		n += k
		if err != nil {
			return n, c.opErr("write", err)
		}
		if k == 0 {
			if err := c.await(&c.out.SpaceSeq, &c.out.WWaiting, &c.wsleep, &c.wdl, c.writable); err != nil {
				return n, c.opErr("write", err)
			}
		}
	}
	return n, nil
}

// writable reports whether a Write has something to do other than wait.
func (c *Conn) writable() bool {
	return c.out.Head.Load()+c.size != c.wtail || c.out.RClosed.Load() != 0 ||
		c.closed.Load() || c.wdone.Load() || c.l.gone.Load()
}

// put copies as much of b as the ring has room for, publishing Tail as it
// goes, and returns how much it copied: 0 and no error when the ring is
// full.
func (c *Conn) put(b []byte) (int, error) {
	switch {
	case c.closed.Load():
		return 0, net.ErrClosed
	case c.wdone.Load(), c.out.RClosed.Load() != 0:
		return 0, ErrBrokenPipe
	case c.l.gone.Load():
		return 0, ErrPeerGone
	}
	tail := c.wtail
	head := c.out.Head.Load()
	n := 0
	for {
		used := tail - head
		if used > c.size {
			return n, c.corrupt(head, tail)
		}
		free := c.size - used
		if free == 0 || n == len(b) {
			return n, nil
		}
		k := min(free, uint64(len(b)-n), publishEvery)
		off := tail & c.mask
		first := min(k, c.size-off)
		copy(c.outBuf[off:off+first], b[n:])
		if first < k {
			copy(c.outBuf[:k-first], b[n+int(first):])
		}
		tail += k
		n += int(k)
		c.wtail = tail
		failpoint.Hit(FailWriteCopied)
		c.out.Tail.Store(tail)
		failpoint.Hit(FailWritePublished)
		c.wakeReader()
		if free == k {
			head = c.out.Head.Load()
		}
	}
}

// wakeReader wakes the peer's Read if it sleeps for bytes in the ring this
// end writes.
func (c *Conn) wakeReader() {
	if c.out.RWaiting.Load() != 0 && c.out.RWaiting.CompareAndSwap(1, 0) {
		bump(&c.out.DataSeq)
	}
}

func (c *Conn) corrupt(head, tail uint64) error {
	return fmt.Errorf("ring of %d bytes with head %d and tail %d: %w", c.size, head, tail, mproc.ErrCorrupt)
}

// await waits until ready might have become true: it polls ready for
// futex.SpinFor, then sleeps on the futex word seq in slices, announcing
// the sleep in waiting (for the peer) and sleeping (for this process's
// SetDeadline). It returns nil when ready holds or a wake-up came (the
// caller looks again), os.ErrDeadlineExceeded once the deadline in dl has
// passed. When a slice ends it checks the peer, and marks it gone if it
// has vanished.
func (c *Conn) await(seq, waiting *atomic.Uint32, sleeping *atomic.Bool, dl *atomic.Int64, ready func() bool) error {
	if futex.SpinGo(ready) {
		return nil
	}
	for {
		val := seq.Load()
		sleeping.Store(true)
		waiting.Store(1)
		// The deadline is loaded after sleeping is set: a SetDeadline
		// that comes later sees sleeping and wakes seq.
		d := dl.Load()
		if ready() {
			waiting.Store(0)
			sleeping.Store(false)
			return nil
		}
		now := time.Now()
		until := now.Add(futex.Slice)
		if d != 0 {
			if now.UnixNano() >= d {
				waiting.Store(0)
				sleeping.Store(false)
				return os.ErrDeadlineExceeded
			}
			until = time.Unix(0, min(d, until.UnixNano()))
		}
		err := futex.Wait(context.Background(), futex.Addr(seq), val, until)
		waiting.Store(0)
		sleeping.Store(false)
		if err == nil {
			return nil
		}
		if expired(dl.Load()) {
			return os.ErrDeadlineExceeded
		}
		if !c.peerAlive() {
			c.l.gone.Store(true)
			return nil
		}
	}
}

// peerAlive checks the peer's owner token when a sleep slice has ended: a
// backstop for the watcher, in case the peer's socket outlived it. The
// token is used only if its pid is the one the kernel gave for the
// socket's peer (a peer in another pid namespace has another pid here).
func (c *Conn) peerAlive() bool {
	if tok := c.hdr.Tokens[c.peer].Load(); tok != 0 {
		if t := owner.Unpack(tok); c.peerPid != 0 && int(t.Pid) == c.peerPid && !owner.Alive(t) {
			return false
		}
	}
	return true
}

// Close closes the connection: waiting Reads and Writes return, and later
// calls fail, with net.ErrClosed; the peer reads the bytes already written
// and then io.EOF, and its Writes fail with ErrBrokenPipe. Close frees the
// shared mapping and the descriptors. A second Close returns an error
// matching net.ErrClosed.
func (c *Conn) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return c.opErr("close", net.ErrClosed)
	}
	// Only this Close unmaps, and not before it holds rmu and wmu.
	bump(&c.in.DataSeq)
	bump(&c.out.SpaceSeq)
	c.rmu.Lock()
	c.wmu.Lock()
	c.cleanup.Stop()
	err := c.l.release()
	c.wmu.Unlock()
	c.rmu.Unlock()
	if err != nil {
		return c.opErr("close", err)
	}
	return nil
}

// CloseWrite shuts the writing side: a Write waiting for room returns
// ErrBrokenPipe, and so do later ones; the peer reads what was written and
// then io.EOF. Reading goes on.
func (c *Conn) CloseWrite() error {
	if c.closed.Load() {
		return c.opErr("close", net.ErrClosed)
	}
	if !c.wdone.CompareAndSwap(false, true) {
		return nil
	}
	c.l.poke(c.l.writeWake)
	c.wmu.Lock() // after the last Write: WClosed must follow its Tail
	defer c.wmu.Unlock()
	c.l.mapMu.RLock()
	defer c.l.mapMu.RUnlock()
	if !c.l.unmapped {
		c.out.WClosed.Store(1)
		bump(&c.out.DataSeq)
	}
	return nil
}

// CloseRead shuts the reading side: Reads return io.EOF, and the peer's
// Writes fail with ErrBrokenPipe. Bytes not read yet are dropped. Writing
// goes on.
func (c *Conn) CloseRead() error {
	if c.closed.Load() {
		return c.opErr("close", net.ErrClosed)
	}
	if !c.rdone.CompareAndSwap(false, true) {
		return nil
	}
	c.l.mapMu.RLock()
	defer c.l.mapMu.RUnlock()
	if !c.l.unmapped {
		c.in.RClosed.Store(1)
		bump(&c.in.DataSeq)
		bump(&c.in.SpaceSeq)
	}
	return nil
}

// SetDeadline sets the read and write deadlines (see Conn); the zero Time
// means none.
func (c *Conn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// SetReadDeadline sets the deadline of waiting and future Reads; the zero
// Time means none.
func (c *Conn) SetReadDeadline(t time.Time) error {
	if c.closed.Load() {
		return c.opErr("set", net.ErrClosed)
	}
	c.rdl.Store(deadlineNanos(t))
	if c.rsleep.Load() {
		c.l.poke(c.l.readWake)
	}
	return nil
}

// SetWriteDeadline sets the deadline of waiting and future Writes; the
// zero Time means none.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	if c.closed.Load() {
		return c.opErr("set", net.ErrClosed)
	}
	c.wdl.Store(deadlineNanos(t))
	if c.wsleep.Load() {
		c.l.poke(c.l.writeWake)
	}
	return nil
}

// LocalAddr returns this end's address: the rendezvous path and this
// process's pid.
func (c *Conn) LocalAddr() net.Addr { return c.local }

// RemoteAddr returns the peer's address: the rendezvous path and the
// peer's pid (0 if the kernel did not say).
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

func (c *Conn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: network, Source: c.local, Addr: c.remote, Err: err}
}

// deadlineNanos encodes a deadline: 0 for none, at least 1 for any time
// (a time before 1970 is just as past), and far futures capped.
func deadlineNanos(t time.Time) int64 {
	switch {
	case t.IsZero():
		return 0
	case t.After(maxDeadline):
		return math.MaxInt64
	}
	return max(t.UnixNano(), 1)
}

var maxDeadline = time.Unix(0, math.MaxInt64)

// expired reports whether the deadline d (deadlineNanos) has passed.
func expired(d int64) bool { return d != 0 && time.Now().UnixNano() >= d }
