package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"mproc"
	"mproc/fifo"
	"mproc/posixmq"
	"mproc/sysvmq"
)

// The ipc workload (issue #7): the cost of each way to move a message
// from one process to another on Linux, as this module offers them: a
// FIFO (package fifo), a POSIX message queue (posixmq), a System V message
// queue (sysvmq), a Unix stream socketpair with a 4-byte length before each
// message, and mproc.Queue[[]byte], the reference of every group.
// Throughput 1 → 1 at 64 B and 8 KiB, and a 64 B round trip on one CPU and
// on two. There are no targets: the point is the price list.

func init() {
	addWorkload(workload{name: "ipc", about: "FIFO, POSIX and SysV message queues, socketpair vs mproc Queue: 64 B and 8 KiB throughput, 64 B round trip", run: ipcWorkload})
}

// The kinds of the ipc rows.
const (
	ipcMproc  = "mproc"  // mproc.Queue[[]byte] Put / Get
	ipcZC     = "zc"     // mproc.Queue[[]byte] PutFunc / GetFunc into reused buffers
	ipcFIFO   = "fifo"   // fifo: WriteMessage / ReadMessage, raw records above fifo.MaxMessage
	ipcPosix  = "posix"  // posixmq Send / Receive
	ipcSysV   = "sysv"   // sysvmq Send / Receive
	ipcSocket = "socket" // a Unix stream socketpair, 4-byte big-endian length, then the bytes
)

var ipcKinds = []string{ipcMproc, ipcZC, ipcFIFO, ipcPosix, ipcSysV, ipcSocket}

const (
	ipcWarmup = 1 // uncounted batches per throughput variant and round
	// ipcQueueBytes: the mproc queue of a throughput row holds this many
	// bytes of messages, a pipe's default buffer.
	ipcQueueBytes = 64 << 10
	ipcRTCapacity = 64 // slots of the round trip's mproc queues
)

// ipcSize is one message size of the throughput rows.
type ipcSize struct {
	bytes int
	name  string // "64 B"
	batch int    // messages per sample
}

var ipcSizes = []ipcSize{
	{bytes: 64, name: "64 B", batch: 2_000},
	{bytes: 8 << 10, name: "8 KiB", batch: 256},
}

// format prints a sample (the time of rateUnit messages): msgs/s for 64 B,
// bytes/s above.
func (s ipcSize) format() func(time.Duration) string {
	if s.bytes <= 64 {
		return perSecond(rateUnit, 0)
	}
	return perSecond(rateUnit, s.bytes)
}

// ipcArgs is the argument of ipcChild: which mechanism, its objects, and
// what to do. Ping carries messages from the parent to the child, Pong
// (round trips only) back.
type ipcArgs struct {
	Kind string
	Size int
	// Throughput: Batches batches of Batch messages, checked (length and
	// sequence number), Done set after each batch.
	Batch, Batches int
	Done           *mproc.Event
	// Round trip: echo Total messages.
	RT    bool
	Total int

	Ping, Pong         *mproc.Queue[[]byte] // mproc, zc
	PingPath, PongPath string               // fifo: FIFO paths; posix: queue names
	SysV               *sysvmq.Queue        // sysv: one queue, ping type 1, pong type 2
	// socket: the child's standard input is its end.
}

// ipcChild is the other process of every ipc row: it receives the
// parent's messages, checking them, or echoes them back.
var ipcChild = mproc.Register("bench.ipcChild", func(ctx context.Context, a ipcArgs) error {
	if a.Done != nil {
		defer a.Done.Close()
	}
	e, err := childEnd(ctx, a)
	if err != nil {
		return err
	}
	defer e.close()
	if a.RT {
		for range a.Total {
			m, err := e.recv(ctx)
			if err != nil {
				return err
			}
			if err := e.send(ctx, m); err != nil {
				return err
			}
		}
		return nil
	}
	var seq uint64
	for range a.Batches {
		for range a.Batch {
			m, err := e.recv(ctx)
			if err != nil {
				return fmt.Errorf("message %d: %w", seq, err)
			}
			if err := checkMsg(m, a.Size, seq); err != nil {
				return err
			}
			seq++
		}
		a.Done.Set()
	}
	return nil
})

// ipcEnd is one process's side of a variant: send a message, receive one.
// recv's slice may be a buffer reused by the next call.
type ipcEnd struct {
	send    func(ctx context.Context, msg []byte) error
	recv    func(ctx context.Context) ([]byte, error)
	closers []func() error
}

func (e *ipcEnd) close() {
	for i := len(e.closers) - 1; i >= 0; i-- {
		e.closers[i]()
	}
	e.closers = nil
}

func noSend(context.Context, []byte) error   { return errors.New("this end does not send") }
func noRecv(context.Context) ([]byte, error) { return nil, errors.New("this end does not receive") }

// mprocEnd puts on out and gets from in (either may be nil): Put and Get,
// a new slice per message, or with zc PutFunc and GetFunc copying in from
// the caller's slice and out into one reused buffer.
func mprocEnd(out, in *mproc.Queue[[]byte], zc bool, size int) *ipcEnd {
	e := &ipcEnd{send: noSend, recv: noRecv}
	if out != nil {
		e.send = func(ctx context.Context, msg []byte) error { return out.Put(ctx, msg) }
		if zc {
			e.send = func(ctx context.Context, msg []byte) error {
				return out.PutFunc(ctx, len(msg), func(b []byte) { copy(b, msg) })
			}
		}
	}
	if in != nil {
		e.recv = in.Get
		if zc {
			buf := make([]byte, size)
			var got []byte
			read := func(b []byte) { got = buf[:copy(buf, b)] }
			e.recv = func(ctx context.Context) ([]byte, error) {
				if err := in.GetFunc(ctx, read); err != nil {
					return nil, err
				}
				return got, nil
			}
		}
	}
	return e
}

// fifoEnd writes to w and reads from r (either may be nil). A message of
// at most fifo.MaxMessage bytes goes as one atomic WriteMessage and comes
// back from ReadMessage (a new slice); a longer one cannot, so it is a
// raw record of exactly size bytes, written with Write and read with
// io.ReadFull into a reused buffer: right for one writer, interleaved with
// others' records if there were several.
func fifoEnd(w *fifo.Writer, r *fifo.Reader, size int) *ipcEnd {
	e := &ipcEnd{send: noSend, recv: noRecv}
	raw := size > fifo.MaxMessage
	if w != nil {
		e.closers = append(e.closers, w.Close)
		e.send = w.WriteMessage
		if raw {
			e.send = func(ctx context.Context, msg []byte) error {
				_, err := w.WriteContext(ctx, msg)
				return err
			}
		}
	}
	if r != nil {
		e.closers = append(e.closers, r.Close)
		e.recv = r.ReadMessage
		if raw {
			buf := make([]byte, size)
			e.recv = func(ctx context.Context) ([]byte, error) {
				_, err := io.ReadFull(ctxReader{ctx, r}, buf)
				return buf, err
			}
		}
	}
	return e
}

// ctxReader reads from a FIFO bounded by ctx.
type ctxReader struct {
	ctx context.Context
	r   *fifo.Reader
}

func (c ctxReader) Read(p []byte) (int, error) { return c.r.ReadContext(c.ctx, p) }

// posixEnd sends on out and receives from in (either may be nil) at
// priority 0, into one reused buffer of the queue's MsgSize.
func posixEnd(out, in *posixmq.Queue, size int) *ipcEnd {
	e := &ipcEnd{send: noSend, recv: noRecv}
	if out != nil {
		e.closers = append(e.closers, out.Close)
		e.send = func(ctx context.Context, msg []byte) error { return out.Send(ctx, msg, 0) }
	}
	if in != nil {
		e.closers = append(e.closers, in.Close)
		buf := make([]byte, size)
		e.recv = func(ctx context.Context) ([]byte, error) {
			n, _, err := in.Receive(ctx, buf)
			return buf[:n], err
		}
	}
	return e
}

// sysvEnd sends messages of type out and receives those of type in on q,
// into one reused buffer.
func sysvEnd(q *sysvmq.Queue, out, in int64, size int) *ipcEnd {
	buf := make([]byte, size)
	return &ipcEnd{
		send: func(ctx context.Context, msg []byte) error { return q.Send(ctx, out, msg) },
		recv: func(ctx context.Context) ([]byte, error) {
			n, _, err := q.Receive(ctx, in, buf)
			return buf[:n], err
		},
	}
}

// socketEnd frames messages on a connected stream socket: a 4-byte
// big-endian length and the bytes, one Write per message; it reads through
// a 64 KiB bufio.Reader into one reused buffer. The descriptor is blocking
// (as os.NewFile and os.Stdin leave a socketpair's), so it ignores ctx.
func socketEnd(f *os.File, size int) *ipcEnd {
	frame := make([]byte, 4+size)
	buf := make([]byte, size)
	br := bufio.NewReaderSize(f, 64<<10)
	var h [4]byte
	return &ipcEnd{
		send: func(_ context.Context, msg []byte) error {
			binary.BigEndian.PutUint32(frame, uint32(len(msg)))
			n := 4 + copy(frame[4:], msg)
			_, err := f.Write(frame[:n])
			return err
		},
		recv: func(context.Context) ([]byte, error) {
			if _, err := io.ReadFull(br, h[:]); err != nil {
				return nil, err
			}
			n := int(binary.BigEndian.Uint32(h[:]))
			if n > size {
				return nil, fmt.Errorf("frame of %d bytes, at most %d expected", n, size)
			}
			_, err := io.ReadFull(br, buf[:n])
			return buf[:n], err
		},
	}
}

// childEnd opens the child's side: it receives on Ping and, for a round
// trip, sends on Pong.
func childEnd(ctx context.Context, a ipcArgs) (*ipcEnd, error) {
	switch a.Kind {
	case ipcMproc, ipcZC:
		e := mprocEnd(a.Pong, a.Ping, a.Kind == ipcZC, a.Size)
		e.closers = append(e.closers, a.Ping.Close)
		if a.Pong != nil {
			e.closers = append(e.closers, a.Pong.Close)
		}
		return e, nil
	case ipcFIFO:
		r, err := fifo.OpenReader(ctx, a.PingPath)
		if err != nil {
			return nil, err
		}
		var w *fifo.Writer
		if a.RT {
			if w, err = fifo.OpenWriter(ctx, a.PongPath); err != nil {
				r.Close()
				return nil, err
			}
		}
		return fifoEnd(w, r, a.Size), nil
	case ipcPosix:
		in, err := posixmq.Open(a.PingPath, posixmq.O_RDONLY, nil, 0)
		if err != nil {
			return nil, err
		}
		var out *posixmq.Queue
		if a.RT {
			if out, err = posixmq.Open(a.PongPath, posixmq.O_WRONLY, nil, 0); err != nil {
				in.Close()
				return nil, err
			}
		}
		return posixEnd(out, in, a.Size), nil
	case ipcSysV:
		return sysvEnd(a.SysV, 2, 1, a.Size), nil
	case ipcSocket:
		return socketEnd(os.Stdin, a.Size), nil
	}
	return nil, fmt.Errorf("unknown kind %q", a.Kind)
}

// ipcLink is the parent's side of one variant before and after the child
// starts: the child's argument and options, the objects the parent made
// (removed by close, whatever happened), and the ends it holds.
type ipcLink struct {
	args     ipcArgs
	opts     mproc.ProcOptions
	cleanup  []func() error // run in reverse by close
	posixOut *posixmq.Queue // posix: the parent's open queues
	posixIn  *posixmq.Queue
	sock     *os.File // socket: the parent's end
	theirs   *os.File // socket: the child's end, closed once it has started
}

func (l *ipcLink) close() {
	if l.theirs != nil {
		l.theirs.Close()
		l.theirs = nil
	}
	for i := len(l.cleanup) - 1; i >= 0; i-- {
		l.cleanup[i]()
	}
	l.cleanup = nil
}

var ipcSeq atomic.Int64 // names this process's queues and FIFOs apart

// newIPCLink makes the objects of one variant: queues, FIFOs or a
// socketpair carrying messages of size bytes, with a way back for a round
// trip. A mechanism whose kernel limits refuse the size is a *notRun. On
// error nothing is left behind.
func newIPCLink(kind string, size, capacity int, rt bool) (_ *ipcLink, err error) {
	l := &ipcLink{args: ipcArgs{Kind: kind, Size: size, RT: rt}}
	defer func() {
		if err != nil {
			l.close()
		}
	}()
	switch kind {
	case ipcMproc, ipcZC:
		if l.args.Ping, err = mproc.NewQueue[[]byte](capacity, mproc.WithMaxMessage(size)); err != nil {
			return nil, err
		}
		l.cleanup = append(l.cleanup, l.args.Ping.Close)
		if rt {
			if l.args.Pong, err = mproc.NewQueue[[]byte](capacity, mproc.WithMaxMessage(size)); err != nil {
				return nil, err
			}
			l.cleanup = append(l.cleanup, l.args.Pong.Close)
		}
	case ipcFIFO:
		dir, err := os.MkdirTemp("", "mproc-bench-ipc-")
		if err != nil {
			return nil, err
		}
		l.cleanup = append(l.cleanup, func() error { return os.Remove(dir) })
		l.args.PingPath = filepath.Join(dir, "ping")
		if rt {
			l.args.PongPath = filepath.Join(dir, "pong")
		}
		for _, p := range []string{l.args.PingPath, l.args.PongPath} {
			if p == "" {
				continue
			}
			if err := fifo.Create(p, 0o600); err != nil {
				return nil, err
			}
			l.cleanup = append(l.cleanup, func() error { return fifo.Remove(p) })
		}
	case ipcPosix:
		lim := posixLimits()
		if lim.msgSizeMax >= 0 && int64(size) > lim.msgSizeMax {
			return nil, &notRun{fmt.Sprintf("MsgSize %d exceeds %smsgsize_max = %d", size, procMqueue, lim.msgSizeMax)}
		}
		attr := &posixmq.Attr{MaxMsgs: lim.msgMax, MsgSize: int64(size)}
		base := fmt.Sprintf("/mproc-bench-ipc-%d-%d", os.Getpid(), ipcSeq.Add(1))
		l.args.PingPath = base + "-ping"
		if rt {
			l.args.PongPath = base + "-pong"
		}
		for _, q := range []struct {
			name  string
			flags int
			into  **posixmq.Queue
		}{
			{l.args.PingPath, posixmq.O_WRONLY, &l.posixOut},
			{l.args.PongPath, posixmq.O_RDONLY, &l.posixIn},
		} {
			if q.name == "" {
				continue
			}
			h, err := posixmq.Open(q.name, q.flags|posixmq.O_CREATE|posixmq.O_EXCL, attr, 0o600)
			if errors.Is(err, posixmq.ErrLimit) {
				return nil, &notRun{err.Error()}
			}
			if err != nil {
				return nil, err
			}
			*q.into = h
			l.cleanup = append(l.cleanup, func() error { return posixmq.Unlink(q.name) }, h.Close)
		}
	case ipcSysV:
		lim := sysvLimits()
		switch {
		case lim.msgMax >= 0 && int64(size) > lim.msgMax:
			return nil, &notRun{fmt.Sprintf("a message of %d bytes exceeds kernel.msgmax = %d", size, lim.msgMax)}
		case lim.msgMnb >= 0 && int64(size) > lim.msgMnb:
			return nil, &notRun{fmt.Sprintf("a message of %d bytes exceeds a queue's capacity, kernel.msgmnb = %d", size, lim.msgMnb)}
		}
		q, err := sysvmq.Get(sysvmq.IPCPrivate, sysvmq.IPCCreat|sysvmq.IPCExcl, 0o600)
		if errors.Is(err, syscall.ENOSPC) {
			return nil, &notRun{fmt.Sprintf("%v (kernel.msgmni queues exist)", err)}
		}
		if err != nil {
			return nil, err
		}
		l.args.SysV = q
		l.cleanup = append(l.cleanup, q.Remove)
	case ipcSocket:
		// A socketpair rather than package net, which would make this
		// binary a cgo one (see socketPingPong).
		fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			return nil, err
		}
		l.sock, l.theirs = os.NewFile(uintptr(fds[0]), "ipc"), os.NewFile(uintptr(fds[1]), "ipc-child")
		l.cleanup = append(l.cleanup, l.sock.Close)
		l.opts.Stdin = l.theirs
	default:
		return nil, fmt.Errorf("unknown kind %q", kind)
	}
	return l, nil
}

// start starts the child and opens the parent's side: it sends on Ping
// and, for a round trip, receives on Pong. wctx ends if the child fails.
func (l *ipcLink) start(ctx context.Context) (p *mproc.Process, wctx context.Context, stop context.CancelFunc, e *ipcEnd, err error) {
	p, err = ipcChild.Start(ctx, l.args, l.opts)
	if l.theirs != nil {
		l.theirs.Close()
		l.theirs = nil
	}
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("start child: %w", err)
	}
	wctx, stop = whileHealthy(ctx, p)
	defer func() {
		if err != nil {
			stop()
			p.Kill()
			p.Wait(ctx)
		}
	}()
	a := l.args
	switch a.Kind {
	case ipcMproc, ipcZC:
		e = mprocEnd(a.Ping, a.Pong, a.Kind == ipcZC, a.Size)
	case ipcFIFO:
		w, err := fifo.OpenWriter(wctx, a.PingPath)
		if err != nil {
			return nil, nil, nil, nil, causeOr(wctx, err)
		}
		var r *fifo.Reader
		if a.RT {
			if r, err = fifo.OpenReader(wctx, a.PongPath); err != nil {
				w.Close()
				return nil, nil, nil, nil, causeOr(wctx, err)
			}
		}
		e = fifoEnd(w, r, a.Size)
	case ipcPosix:
		e = posixEnd(l.posixOut, l.posixIn, a.Size)
		e.closers = nil // the link closes its queues
	case ipcSysV:
		e = sysvEnd(a.SysV, 1, 2, a.Size)
	case ipcSocket:
		e = socketEnd(l.sock, a.Size)
	}
	return p, wctx, stop, e, nil
}

// ipcFail explains a failed send or receive: the child's failure if it
// has ended with one, else err.
func ipcFail(ctx, wctx context.Context, p *mproc.Process, err error) error {
	if wctx.Err() != nil {
		return context.Cause(wctx)
	}
	return childErr(ctx, p, err)
}

// ipcThroughput sends batches of sz.batch messages to a child that checks
// them; a sample is the time from the first send of a batch until the
// child says (an mproc.Event) that it has the batch's last message, per
// rateUnit messages.
func ipcThroughput(ctx context.Context, kind string, sz ipcSize, batches int) ([]time.Duration, error) {
	l, err := newIPCLink(kind, sz.bytes, max(1, ipcQueueBytes/sz.bytes), false)
	if err != nil {
		return nil, err
	}
	defer l.close()
	l.args.Batch, l.args.Batches = sz.batch, ipcWarmup+batches
	if l.args.Done, err = mproc.NewEvent(); err != nil {
		return nil, err
	}
	l.cleanup = append(l.cleanup, l.args.Done.Close)
	p, wctx, stop, e, err := l.start(ctx)
	if err != nil {
		return nil, err
	}
	defer p.Kill() // on an early return; a no-op once it has ended
	defer stop()
	defer e.close()
	buf := make([]byte, sz.bytes)
	var seq uint64
	var out []time.Duration
	for b := range l.args.Batches {
		t0 := time.Now()
		for range l.args.Batch {
			stamp(buf, seq)
			seq++
			if err := e.send(wctx, buf); err != nil {
				return nil, ipcFail(ctx, wctx, p, err)
			}
		}
		if err := l.args.Done.Wait(wctx); err != nil {
			return nil, causeOr(wctx, err)
		}
		d := time.Since(t0)
		l.args.Done.Clear()
		if b >= ipcWarmup {
			out = append(out, perUnit(d, l.args.Batch))
		}
	}
	e.close()
	if err := p.Wait(ctx); err != nil {
		return nil, fmt.Errorf("child: %w", err)
	}
	return out, nil
}

// ipcRoundTrip is the event workload's ping-pong (pingPong) of rtSize
// messages: sent on Ping, echoed by the child on Pong.
func ipcRoundTrip(ctx context.Context, kind string, pl placement, aff *affinity, batches int) ([]time.Duration, error) {
	l, err := newIPCLink(kind, rtSize, ipcRTCapacity, true)
	if err != nil {
		return nil, err
	}
	defer l.close()
	l.args.Total = eventWarmup + batches*eventRounds
	p, wctx, stop, e, err := l.start(ctx)
	if err != nil {
		return nil, err
	}
	defer stop()
	defer e.close()
	buf := make([]byte, rtSize)
	var seq uint64
	return pingPong(ctx, p, pl, aff, batches, func() error {
		stamp(buf, seq)
		if err := e.send(wctx, buf); err != nil {
			return ipcFail(ctx, wctx, p, err)
		}
		m, err := e.recv(wctx)
		if err != nil {
			return ipcFail(ctx, wctx, p, err)
		}
		err = checkMsg(m, rtSize, seq)
		seq++
		return err
	})
}

const procMqueue = "/proc/sys/fs/mqueue/"

// mqLimits are the kernel's limits on message queues, -1 where unknown.
type mqLimits struct {
	msgMax, msgSizeMax int64 // POSIX: messages per queue, bytes per message
	msgMnb             int64 // SysV: bytes per queue (kernel.msgmnb)
}

func posixLimits() mqLimits {
	return mqLimits{msgMax: procInt(procMqueue + "msg_max"), msgSizeMax: procInt(procMqueue + "msgsize_max"), msgMnb: -1}
}

func sysvLimits() mqLimits {
	return mqLimits{msgMax: procInt("/proc/sys/kernel/msgmax"), msgMnb: procInt("/proc/sys/kernel/msgmnb"), msgSizeMax: -1}
}

// procInt reads a number from a /proc file, or -1.
func procInt(path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return -1
	}
	return v
}

// ipcVariant names each kind's row, for messages of size bytes.
func ipcVariant(kind string, size int) string {
	switch kind {
	case ipcMproc:
		return "mproc `Queue[[]byte]` `Put`/`Get`"
	case ipcZC:
		return "mproc `Queue[[]byte]` `PutFunc`/`GetFunc`, reused buffers"
	case ipcFIFO:
		if size > fifo.MaxMessage {
			return "FIFO (`fifo`), raw `Write`/`Read` of fixed-size records"
		}
		return "FIFO (`fifo`) `WriteMessage`/`ReadMessage`"
	case ipcPosix:
		return "POSIX message queue (`posixmq`) `Send`/`Receive`"
	case ipcSysV:
		return "System V message queue (`sysvmq`) `Send`/`Receive`"
	case ipcSocket:
		return "Unix stream socketpair, 4-byte length framing"
	}
	return kind
}

func ipcWorkload(ctx context.Context, c *config) (*report, error) {
	aff, err := newAffinity()
	if err != nil {
		return nil, err
	}
	pls := placements(aff)

	// The rows, in the table's order, keyed "kind 64", "kind rt one".
	var rows []keyedRow
	for _, sz := range ipcSizes {
		k := " " + strconv.Itoa(sz.bytes)
		for _, kind := range ipcKinds {
			rows = append(rows, keyedRow{kind + k, ipcVariant(kind, sz.bytes) + ", " + sz.name, ipcMproc + k, sz.format()})
		}
	}
	for _, pl := range pls {
		k := " rt " + pl.key
		for _, kind := range ipcKinds {
			rows = append(rows, keyedRow{kind + k, ipcVariant(kind, rtSize) + ", round trip, 64 B, " + pl.name, ipcMproc + k, nil})
		}
	}
	samples := map[string][]time.Duration{}
	missing := map[string]string{}
	for _, pl := range pls {
		for _, kind := range ipcKinds {
			switch {
			case pl.missing != "":
				missing[kind+" rt "+pl.key] = pl.missing
			case aff.taskset == "":
				missing[kind+" rt "+pl.key] = "taskset not found in PATH, cannot pin the processes"
			}
		}
	}
	runSteps := func(r int, steps []step) error { return runRound(r, steps, samples, missing) }

	goRounds := split(c.n, c.rounds)
	for r, n := range goRounds {
		fmt.Fprintf(c.log, "bench: ipc: round %d/%d\n", r+1, len(goRounds))
		for _, sz := range ipcSizes {
			var steps []step
			for _, kind := range ipcKinds {
				steps = append(steps, step{kind + " " + strconv.Itoa(sz.bytes), func() ([]time.Duration, error) {
					return ipcThroughput(ctx, kind, sz, n)
				}})
			}
			if err := runSteps(r, steps); err != nil {
				return nil, err
			}
		}
		for _, pl := range pls {
			var steps []step
			for _, kind := range ipcKinds {
				steps = append(steps, step{kind + " rt " + pl.key, func() ([]time.Duration, error) {
					return ipcRoundTrip(ctx, kind, pl, aff, n)
				}})
			}
			if err := runSteps(r, steps); err != nil {
				return nil, fmt.Errorf("%s: %w", pl.name, err)
			}
		}
	}

	var batches []string
	for _, sz := range ipcSizes {
		batches = append(batches, fmt.Sprintf("%d messages of %s", sz.batch, sz.name))
	}
	rep := &report{
		title:   "IPC mechanisms",
		refName: "mproc `Queue`",
		format:  humanDuration,
		about: "What each way of moving a message between two processes costs, all driven from Go: a " +
			"FIFO (package `fifo`), a POSIX message queue (`posixmq`), a System V message queue " +
			"(`sysvmq`), a Unix stream socketpair with a 4-byte length before each message, and " +
			"`mproc.Queue[[]byte]`, the reference of each group. **Throughput, 1 → 1**: the parent " +
			"sends batches (" + strings.Join(batches, ", ") + ") and an mproc child receives them, " +
			"checking each one's length and sequence number; a sample is the time from the first send " +
			"of a batch until the child says, with an `mproc.Event` (the same for every row), that it " +
			"has the batch's last message, shown as messages/s (64 B) or bytes/s (1 GB = 10⁹ bytes). " +
			"**Round trip**: 64 B sent to a child that sends it back (over a second mproc queue, FIFO " +
			"or POSIX queue; as a second message type on the one SysV queue; over the same socket), the " +
			"event workload's ping-pong (" + strconv.Itoa(eventRounds) + " round trips per sample, " +
			strconv.Itoa(eventWarmup) + " uncounted first), both processes pinned to one CPU and to two. " +
			"Each row: mproc `Put`/`Get`: `Put(ctx, b)`, `Get(ctx)` returning a new slice per message. " +
			"mproc `PutFunc`/`GetFunc`: the same queue, copying in from the sender's buffer and out into " +
			"one reused buffer. FIFO: `WriteMessage` (one atomic `write(2)` of a 4-hex-digit header and " +
			"the bytes) and `ReadMessage` (a new slice, read through the Reader's 64 KiB buffer); at " +
			"8 KiB, raw `Write` and `io.ReadFull` of fixed-size records into a reused buffer. POSIX: " +
			"`Send(ctx, b, 0)`, `Receive(ctx, buf)` into a reused buffer. SysV: `Send(ctx, 1, b)`, " +
			"`Receive(ctx, 1, buf)` into a reused buffer. Socketpair: one `Write` per message of the " +
			"length and the bytes, read through a 64 KiB `bufio.Reader` into a reused buffer. There " +
			"are no targets (issue #7): the point is the price of each mechanism.",
	}
	for _, ir := range rows {
		ref := 0
		for i, o := range rows {
			if o.key == ir.group {
				ref = i
			}
		}
		rw := row{variant: ir.variant, samples: samples[ir.key], ref: ref, format: ir.format}
		switch {
		case missing[ir.key] != "":
			rw.missing = missing[ir.key]
		case len(rw.samples) == 0:
			rw.missing = "no samples"
		}
		rep.rows = append(rep.rows, rw)
	}
	rep.notes = ipcNotes(c, len(goRounds), pls)
	return rep, nil
}

// ipcNotes are the report's notes: comparisons, and the limits that shaped
// the rows, with this machine's values.
func ipcNotes(c *config, rounds int, pls []placement) []string {
	pm, sv := posixLimits(), sysvLimits()
	val := func(v int64) string {
		if v < 0 {
			return "unknown"
		}
		return strconv.FormatInt(v, 10)
	}
	notes := []string{
		"Each group's rows are compared to its mproc `Put`/`Get` row. A throughput row's Median is the " +
			"median sample's rate, its p90 the rate that 90% of the samples reached or beat, its Mean " +
			"the rate over all its samples together.",
		fmt.Sprintf("Capacity, which decides how often the sender waits for the receiver: the mproc queue "+
			"holds %d KiB of messages, a pipe's default buffer (%d slots of 64 B, %d of 8 KiB; %d slots for "+
			"the round trip); a FIFO holds 64 KiB (the pipe default); the socketpair has the kernel's "+
			"default socket buffers; a POSIX queue holds `MaxMsgs` = `%smsg_max` = %s messages (the most "+
			"a process without `CAP_SYS_RESOURCE` may ask for); a SysV queue holds `kernel.msgmnb` = %s "+
			"bytes of messages (its default `msg_qbytes`: %s of 64 B, %s of 8 KiB; raising it needs "+
			"`CAP_SYS_RESOURCE`, `SetMaxBytes`).",
			ipcQueueBytes>>10, ipcQueueBytes/64, ipcQueueBytes/(8<<10), ipcRTCapacity, procMqueue, val(pm.msgMax), val(sv.msgMnb),
			perMsgs(sv.msgMnb, 64), perMsgs(sv.msgMnb, 8<<10)),
		fmt.Sprintf("Message size limits: a FIFO message of `WriteMessage` is at most `fifo.MaxMessage` = "+
			"%d bytes (PIPE_BUF %d less the 4-byte header), the most the kernel writes atomically; an "+
			"8 KiB message cannot be one, so the 8 KiB FIFO row writes raw records of exactly 8 KiB "+
			"with `Write` (one writer: nothing interleaves; several writers could interleave them) "+
			"and reads them with `io.ReadFull`. A POSIX message is at most `%smsgsize_max` = %s bytes "+
			"(8 KiB just fits the default; a larger size says \"not run\"), and `Receive` needs a "+
			"buffer of the queue's whole `MsgSize`. A SysV message is at most `kernel.msgmax` = %s bytes.",
			fifo.MaxMessage, fifo.PipeBuf, procMqueue, val(pm.msgSizeMax), val(sv.msgMax)),
		"How each waits: the mproc queue spins for up to ~20 µs, yielding, then sleeps on a futex, and " +
			"a put or get that need not wait makes no system call; the FIFO and POSIX queue " +
			"descriptors are non-blocking in Go's poller (a wait parks the goroutine; every send is a " +
			"system call, as is every POSIX `Receive`, while a FIFO `Reader` reads up to 64 KiB at a " +
			"time, many 64 B messages per `read(2)`); a SysV `Send` or `Receive` that must wait blocks its OS thread " +
			"in `msgsnd`/`msgrcv` (locked, with a `SIGURG` to cancel it when its context ends); the " +
			"socketpair descriptors are blocking (as `os.NewFile` and `os.Stdin` leave them), so a " +
			"read blocks its thread, and the `bufio.Reader` gets many small frames per `read(2)`.",
		"Copies: mproc copies each message into shared memory and out again (`Get` into a new slice, " +
			"`GetFunc` into the reused buffer); every kernel mechanism copies in on `write`/`send` and " +
			"out on `read`/`receive`; `ReadMessage` adds a new slice per message, `sysvmq` a copy on " +
			"each side through its own buffer (the kernel's `msgbuf` puts the type before the bytes).",
		fmt.Sprintf("Samples are batches: %d per variant, split into %d round(s); in each round the variants "+
			"of a group run one after the other, in an order that rotates from round to round. Every "+
			"variant starts its child anew each round (creating and removing its queues or FIFOs; "+
			"that is not timed) and runs %d uncounted batch(es) first.", c.n, rounds, ipcWarmup),
		fmt.Sprintf("Pinning: the round trips pin both processes, every thread, with `taskset -a -p -c`, as "+
			"the event workload does; one CPU is CPU %d, two CPUs are CPUs %d and %d. The throughput "+
			"processes are not pinned.", pls[0].a, pls[1].a, pls[1].b),
	}
	return notes
}

// perMsgs says how many messages of size bytes fit in capacity bytes.
func perMsgs(capacity int64, size int) string {
	if capacity < 0 {
		return "unknown"
	}
	return strconv.FormatInt(capacity/int64(size), 10)
}
