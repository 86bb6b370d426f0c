package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"mproc"
)

// The queue workload (issue #5): messages of 64 B, 64 KiB and 1 MiB from
// one process to another over an mproc.Queue, against the spinning C ring
// floor (and the same C ring following mproc's MPMC slot protocol), a Go
// channel, Go over Unix sockets and a pipe, and Python's multiprocessing
// Queue, SimpleQueue and Pipe; a 64 B round trip over two queues on one
// CPU and on two; and 2×2 and 4×4 producers×consumers.

func init() {
	addWorkload(workload{name: "queue", about: "Queue throughput (64 B, 64 KiB, 1 MiB), 64 B round trip, 2×2 and 4×4", run: queueWorkload})
}

const (
	queueRateTarget = 9e6                  // issue #5: 64 B messages per second, 1 → 1
	queueByteTarget = 12e9                 // issue #5: bytes per second, 64 KiB and 1 MiB
	queueRTOne      = 4 * time.Microsecond // issue #5: 64 B round trip, one CPU
	queueRTTwo      = 2 * time.Microsecond // issue #5: two CPUs
	queueWarmup     = 1                    // uncounted batches per variant and round
	// rateUnit: a throughput sample is the time of this many messages, so
	// that whole nanoseconds keep 64 B rates precise.
	rateUnit = 1000
	// seqpacketBuffers: a SOCK_SEQPACKET message must fit the sender's
	// socket buffer; for a larger message the buffer is raised to this
	// many messages.
	seqpacketBuffers = 4
)

// queueSize is one message size of the 1 → 1 rows.
type queueSize struct {
	bytes    int
	name     string // "64 B"
	capacity int    // slots of the mproc queue and the channel; maxsize of Python's Queue
	batch    int    // messages per sample, Go and C
	pyBatch  int    // messages per sample, Python
}

var queueSizes = []queueSize{
	{bytes: 64, name: "64 B", capacity: 1024, batch: 4_000, pyBatch: 1_000},
	{bytes: 64 << 10, name: "64 KiB", capacity: 16, batch: 128, pyBatch: 32},
	{bytes: 1 << 20, name: "1 MiB", capacity: 8, batch: 12, pyBatch: 4},
}

// format prints a sample of the size's rows: msgs/s for 64 B, GB/s above.
func (s queueSize) format() func(time.Duration) string {
	if s.bytes <= 64 {
		return perSecond(rateUnit, 0)
	}
	return perSecond(rateUnit, s.bytes)
}

// mpmcShape is a many-to-many row group: producers × consumers, 64 B.
type mpmcShape struct {
	producers, consumers int
	key, name            string // "2x2" (queue.py's name), "2×2"
}

var mpmcShapes = []mpmcShape{{2, 2, "2x2", "2×2"}, {4, 4, "4x4", "4×4"}}

const (
	mpmcSize     = 64
	mpmcCapacity = 1024
	mpmcBatch    = 8_000 // messages per sample, Go; divisible by every producer count
	mpmcPyBatch  = 1_000 // Python
	rtSize       = 64    // round-trip message
)

// perUnit is the time of rateUnit messages when msgs took d.
func perUnit(d time.Duration, msgs int) time.Duration {
	return time.Duration(float64(d)*rateUnit/float64(msgs) + 0.5)
}

// stamp writes message seq's number into its first 8 bytes; checkMsg
// checks it, so that loss, duplication and reordering are errors.
func stamp(b []byte, seq uint64) { binary.LittleEndian.PutUint64(b, seq) }

func checkMsg(b []byte, size int, seq uint64) error {
	if len(b) != size {
		return fmt.Errorf("message %d has %d bytes, want %d", seq, len(b), size)
	}
	if got := binary.LittleEndian.Uint64(b); got != seq {
		return fmt.Errorf("message %d arrived as number %d", seq, got)
	}
	return nil
}

// sinkArgs is the argument of the consumer children of the 1 → 1 rows.
type sinkArgs struct {
	Q    *mproc.Queue[[]byte] // queueSink
	Done *mproc.Event         // queueSink: set after each batch
	// Packets (fdSink): one message per read, a SOCK_SEQPACKET record;
	// else each message is a 4-byte little-endian length and the bytes.
	Packets              bool
	Size, Batch, Batches int
	// Mode (queueSink): how the consumer gets each message, one of
	// getNew, getFunc and getAppend.
	Mode string
}

// The modes of queueSink; mprocThroughput's producer uses PutFunc with
// getFunc, Put with the others.
const (
	getNew    = "get"    // Get: a new slice per message
	getFunc   = "func"   // GetFunc, copying each message out into one reused buffer, as the C floor does
	getAppend = "append" // buf, err = GetAppend(ctx, buf[:0]): appended to one reused buffer
)

// queueSink gets Batches batches of Batch messages, checking each, and
// sets Done after each batch.
var queueSink = mproc.Register("bench.queueSink", func(ctx context.Context, a sinkArgs) error {
	defer a.Q.Close()
	defer a.Done.Close()
	var seq uint64
	buf := make([]byte, a.Size)
	for range a.Batches {
		for range a.Batch {
			var b []byte
			var err error
			switch a.Mode {
			case getFunc:
				err = a.Q.GetFunc(ctx, func(m []byte) { b = buf[:copy(buf, m)] })
			case getAppend:
				buf, err = a.Q.GetAppend(ctx, buf[:0])
				b = buf
			default:
				b, err = a.Q.Get(ctx)
			}
			if err != nil {
				return err
			}
			if err := checkMsg(b, a.Size, seq); err != nil {
				return err
			}
			seq++
		}
		a.Done.Set()
	}
	return nil
})

// fdSink is queueSink over its standard input, a socket or a pipe, each
// message read into a new slice as Get returns one; it acknowledges each
// batch with a byte on its standard output.
var fdSink = mproc.Register("bench.fdSink", func(ctx context.Context, a sinkArgs) error {
	next := lengthReader(os.Stdin, a.Size)
	if a.Packets {
		next = func() ([]byte, error) {
			b := make([]byte, a.Size)
			n, err := os.Stdin.Read(b)
			return b[:n], err
		}
	}
	var seq uint64
	ack := []byte{1}
	for range a.Batches {
		for range a.Batch {
			b, err := next()
			if err != nil {
				return fmt.Errorf("message %d: %w", seq, err)
			}
			if err := checkMsg(b, a.Size, seq); err != nil {
				return err
			}
			seq++
		}
		if _, err := os.Stdout.Write(ack); err != nil {
			return err
		}
	}
	return nil
})

// lengthReader returns a func that reads the next length-prefixed message
// of at most max bytes from r.
func lengthReader(r io.Reader, max int) func() ([]byte, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var h [4]byte
	return func() ([]byte, error) {
		if _, err := io.ReadFull(br, h[:]); err != nil {
			return nil, err
		}
		n := int(binary.LittleEndian.Uint32(h[:]))
		if n > max {
			return nil, fmt.Errorf("message of %d bytes, maximum %d", n, max)
		}
		b := make([]byte, n)
		_, err := io.ReadFull(br, b)
		return b, err
	}
}

// notRun is a variant that cannot run on this machine, and why.
type notRun struct{ why string }

func (e *notRun) Error() string { return e.why }

// mprocThroughput puts batches of qs.batch messages into an mproc queue
// that a child empties, getting each as mode says; a sample is the time
// from the first Put of a batch until the child says it has got the
// batch's last message.
func mprocThroughput(ctx context.Context, qs queueSize, batches int, mode string) (_ []time.Duration, err error) {
	a := sinkArgs{Size: qs.bytes, Batch: qs.batch, Batches: queueWarmup + batches, Mode: mode}
	if a.Q, err = mproc.NewQueue[[]byte](qs.capacity, mproc.WithMaxMessage(qs.bytes)); err != nil {
		return nil, err
	}
	defer a.Q.Close()
	if a.Done, err = mproc.NewEvent(); err != nil {
		return nil, err
	}
	defer a.Done.Close()
	p, err := queueSink.Start(ctx, a, mproc.ProcOptions{})
	if err != nil {
		return nil, fmt.Errorf("start consumer: %w", err)
	}
	defer p.Kill() // on an early return; a no-op once it has ended
	wctx, stop := whileHealthy(ctx, p)
	defer stop()
	buf := make([]byte, qs.bytes)
	var seq uint64
	var out []time.Duration
	for b := range a.Batches {
		t0 := time.Now()
		for range a.Batch {
			stamp(buf, seq)
			seq++
			if mode == getFunc {
				err = a.Q.PutFunc(wctx, len(buf), func(m []byte) { copy(m, buf) })
			} else {
				err = a.Q.Put(wctx, buf)
			}
			if err != nil {
				return nil, causeOr(wctx, err)
			}
		}
		if err := a.Done.Wait(wctx); err != nil {
			return nil, causeOr(wctx, err)
		}
		d := time.Since(t0)
		a.Done.Clear()
		if b >= queueWarmup {
			out = append(out, perUnit(d, a.Batch))
		}
	}
	if err := p.Wait(ctx); err != nil {
		return nil, fmt.Errorf("consumer: %w", err)
	}
	return out, nil
}

// causeOr is the cause of ctx's end if it has ended, else err.
func causeOr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return err
}

// The kinds of fdThroughput.
const (
	fdStream    = "stream"    // a Unix stream socketpair, length-prefixed
	fdSeqpacket = "seqpacket" // a SOCK_SEQPACKET socketpair, one record each
	fdPipe      = "pipe"      // os.Pipe, length-prefixed; acknowledgements on a second pipe
)

// fdThroughput is mprocThroughput over a socketpair or a pipe: one write
// per message (length and bytes together), the child an mproc child that
// reads them on its standard input.
func fdThroughput(ctx context.Context, kind string, qs queueSize, batches int) ([]time.Duration, error) {
	var (
		w        io.Writer // messages
		ack      io.Reader // a byte per batch
		childIn  *os.File
		childOut *os.File
		mine     []*os.File
	)
	switch kind {
	case fdStream, fdSeqpacket:
		typ := syscall.SOCK_STREAM
		if kind == fdSeqpacket {
			typ = syscall.SOCK_SEQPACKET
		}
		// A socketpair rather than package net, which would make this
		// binary a cgo one (see socketPingPong).
		fds, err := syscall.Socketpair(syscall.AF_UNIX, typ|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			return nil, err
		}
		f, theirs := os.NewFile(uintptr(fds[0]), kind), os.NewFile(uintptr(fds[1]), kind+"-child")
		if kind == fdSeqpacket {
			if err := packetBuffers(fds, qs.bytes); err != nil {
				f.Close()
				theirs.Close()
				return nil, err
			}
		}
		w, ack, childIn, childOut, mine = f, f, theirs, theirs, []*os.File{f}
	case fdPipe:
		r, pw, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		ar, aw, err := os.Pipe()
		if err != nil {
			r.Close()
			pw.Close()
			return nil, err
		}
		w, ack, childIn, childOut, mine = pw, ar, r, aw, []*os.File{pw, ar}
	default:
		return nil, fmt.Errorf("unknown kind %q", kind)
	}
	closeMine := func() {
		for _, f := range mine {
			f.Close()
		}
	}
	a := sinkArgs{Packets: kind == fdSeqpacket, Size: qs.bytes, Batch: qs.batch, Batches: queueWarmup + batches}
	p, err := fdSink.Start(ctx, a, mproc.ProcOptions{Stdin: childIn, Stdout: childOut})
	childIn.Close()
	if childOut != childIn {
		childOut.Close()
	}
	if err != nil {
		closeMine()
		return nil, fmt.Errorf("start consumer: %w", err)
	}
	defer p.Kill()
	defer closeMine()
	hdr := 4
	if a.Packets {
		hdr = 0
	}
	frame := make([]byte, hdr+qs.bytes)
	if hdr > 0 {
		binary.LittleEndian.PutUint32(frame, uint32(qs.bytes))
	}
	var seq uint64
	var one [1]byte
	var out []time.Duration
	for b := range a.Batches {
		t0 := time.Now()
		for range a.Batch {
			stamp(frame[hdr:], seq)
			seq++
			if _, err := w.Write(frame); err != nil {
				return nil, childErr(ctx, p, err)
			}
		}
		if _, err := io.ReadFull(ack, one[:]); err != nil {
			return nil, childErr(ctx, p, err)
		}
		if d := time.Since(t0); b >= queueWarmup {
			out = append(out, perUnit(d, a.Batch))
		}
	}
	if err := p.Wait(ctx); err != nil {
		return nil, fmt.Errorf("consumer: %w", err)
	}
	return out, nil
}

// childErr explains a failed write or read to child p: its own error if
// it has ended with one (within a second), else err.
func childErr(ctx context.Context, p *mproc.Process, err error) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	select {
	case <-p.Done():
		if werr := p.Wait(ctx); werr != nil {
			return fmt.Errorf("consumer: %w", werr)
		}
	case <-ctx.Done():
	}
	return err
}

// packetBuffers makes a SOCK_SEQPACKET socketpair able to carry messages
// of size bytes: the kernel refuses (EMSGSIZE) a record that does not fit
// the sender's buffer, so a buffer smaller than that is raised to
// seqpacketBuffers messages, as far as net.core.wmem_max allows. If it
// still does not fit, the variant is not run.
func packetBuffers(fds [2]int, size int) error {
	const overhead = 4096 // what the kernel counts beyond the bytes, generously
	for _, fd := range fds {
		got, err := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_SNDBUF)
		if err != nil {
			return err
		}
		if got >= size+overhead {
			continue
		}
		// The kernel doubles the value and caps it at 2×wmem_max.
		if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_SNDBUF, seqpacketBuffers*(size+overhead)/2); err != nil {
			return err
		}
		if got, err = syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_SNDBUF); err != nil {
			return err
		}
		if got < size+overhead {
			return &notRun{fmt.Sprintf("a SOCK_SEQPACKET record must fit the socket buffer, at most %d bytes here (2×net.core.wmem_max)", got)}
		}
	}
	return nil
}

// chanThroughput is mprocThroughput within one process: a goroutine sends
// each message as a new copy over a channel of the queue's capacity to a
// goroutine that checks it.
func chanThroughput(qs queueSize, batches int) ([]time.Duration, error) {
	ch := make(chan []byte, qs.capacity)
	done := make(chan error, 1)
	total := queueWarmup + batches
	go func() {
		var seq uint64
		for range total {
			for range qs.batch {
				if err := checkMsg(<-ch, qs.bytes, seq); err != nil {
					done <- err
					return
				}
				seq++
			}
			done <- nil
		}
	}()
	buf := make([]byte, qs.bytes)
	var seq uint64
	var out []time.Duration
	for b := range total {
		t0 := time.Now()
		for range qs.batch {
			stamp(buf, seq)
			seq++
			ch <- append([]byte(nil), buf...)
		}
		if err := <-done; err != nil {
			return nil, err
		}
		if d := time.Since(t0); b >= queueWarmup {
			out = append(out, perUnit(d, qs.batch))
		}
	}
	return out, nil
}

// echoArgs is the argument of the round-trip children.
type echoArgs struct {
	Ping, Pong  *mproc.Queue[[]byte] // queueEcho
	Size, Total int
}

// queueEcho puts each of Total messages got from Ping into Pong.
var queueEcho = mproc.Register("bench.queueEcho", func(ctx context.Context, a echoArgs) error {
	defer a.Ping.Close()
	defer a.Pong.Close()
	for range a.Total {
		b, err := a.Ping.Get(ctx)
		if err != nil {
			return err
		}
		if err := a.Pong.Put(ctx, b); err != nil {
			return err
		}
	}
	return nil
})

// socketEcho echoes Total messages of Size bytes on its standard input, a
// Unix stream socket.
var socketEcho = mproc.Register("bench.socketEcho", func(ctx context.Context, a echoArgs) error {
	b := make([]byte, a.Size)
	for range a.Total {
		if _, err := io.ReadFull(os.Stdin, b); err != nil {
			return err
		}
		if _, err := os.Stdin.Write(b); err != nil {
			return err
		}
	}
	return nil
})

// queueRoundTrip is the event workload's ping-pong (pingPong) of rtSize
// messages: Put on one queue, Get from another.
func queueRoundTrip(ctx context.Context, pl placement, aff *affinity, batches int) (_ []time.Duration, err error) {
	a := echoArgs{Size: rtSize, Total: eventWarmup + batches*eventRounds}
	if a.Ping, err = mproc.NewQueue[[]byte](64, mproc.WithMaxMessage(rtSize)); err != nil {
		return nil, err
	}
	defer a.Ping.Close()
	if a.Pong, err = mproc.NewQueue[[]byte](64, mproc.WithMaxMessage(rtSize)); err != nil {
		return nil, err
	}
	defer a.Pong.Close()
	p, err := queueEcho.Start(ctx, a, mproc.ProcOptions{})
	if err != nil {
		return nil, fmt.Errorf("start echo child: %w", err)
	}
	wctx, stop := whileHealthy(ctx, p)
	defer stop()
	buf := make([]byte, rtSize)
	var seq uint64
	return pingPong(ctx, p, pl, aff, batches, func() error {
		stamp(buf, seq)
		if err := a.Ping.Put(wctx, buf); err != nil {
			return causeOr(wctx, err)
		}
		b, err := a.Pong.Get(wctx)
		if err != nil {
			return causeOr(wctx, err)
		}
		err = checkMsg(b, rtSize, seq)
		seq++
		return err
	})
}

// socketRoundTrip is queueRoundTrip over a Unix stream socketpair.
func socketRoundTrip(ctx context.Context, pl placement, aff *affinity, batches int) ([]time.Duration, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	c, childEnd := os.NewFile(uintptr(fds[0]), "echo"), os.NewFile(uintptr(fds[1]), "echo-child")
	a := echoArgs{Size: rtSize, Total: eventWarmup + batches*eventRounds}
	p, err := socketEcho.Start(ctx, a, mproc.ProcOptions{Stdin: childEnd})
	childEnd.Close()
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("start socket echo child: %w", err)
	}
	defer c.Close()
	buf, back := make([]byte, rtSize), make([]byte, rtSize)
	var seq uint64
	return pingPong(ctx, p, pl, aff, batches, func() error {
		stamp(buf, seq)
		if _, err := c.Write(buf); err != nil {
			return err
		}
		if _, err := io.ReadFull(c, back); err != nil {
			return err
		}
		err := checkMsg(back, rtSize, seq)
		seq++
		return err
	})
}

// mpmcArgs is the argument of the many-to-many children.
type mpmcArgs struct {
	Data  *mproc.Queue[[]byte] // mpmcSize-byte messages; a 1-byte one asks a consumer to report
	Start *mproc.Queue[int64]  // producers: how many messages to put
	Put   *mproc.Queue[int64]  // producers: a share is put
	Got   *mproc.Queue[int64]  // consumers: messages got since the last report
}

func (a mpmcArgs) detach() {
	a.Data.Close()
	a.Start.Close()
	a.Put.Close()
	a.Got.Close()
}

// mpmcProducer puts the messages each token from Start asks for and says
// so on Put, until Start is closed.
var mpmcProducer = mproc.Register("bench.mpmcProducer", func(ctx context.Context, a mpmcArgs) error {
	defer a.detach()
	buf := make([]byte, mpmcSize)
	for {
		n, err := a.Start.Get(ctx)
		if errors.Is(err, mproc.ErrShutdown) {
			return nil
		}
		if err != nil {
			return err
		}
		for range n {
			if err := a.Data.Put(ctx, buf); err != nil {
				return err
			}
		}
		if err := a.Put.Put(ctx, 1); err != nil {
			return err
		}
	}
})

// mpmcConsumer counts the messages it gets from Data and reports the
// count on Got at each report message, until Data is closed and drained.
var mpmcConsumer = mproc.Register("bench.mpmcConsumer", func(ctx context.Context, a mpmcArgs) error {
	defer a.detach()
	var n int64
	for {
		b, err := a.Data.Get(ctx)
		switch {
		case errors.Is(err, mproc.ErrShutdown):
			if n != 0 {
				return fmt.Errorf("%d messages got after the last report", n)
			}
			return nil
		case err != nil:
			return err
		case len(b) == mpmcSize:
			n++
		case len(b) == 1:
			if err := a.Got.Put(ctx, n); err != nil {
				return err
			}
			n = 0
		default:
			return fmt.Errorf("message of %d bytes", len(b))
		}
	}
})

// mprocMPMC times batches of mpmcBatch messages put by sh.producers
// children and got by sh.consumers children from one queue. A batch ends
// when the consumers have counted all its messages: once the producers
// have put their shares, the parent puts one report message per consumer
// and adds up the counts they report, again until the sum is the batch.
func mprocMPMC(ctx context.Context, sh mpmcShape, batches int) (_ []time.Duration, err error) {
	var a mpmcArgs
	if a.Data, err = mproc.NewQueue[[]byte](mpmcCapacity, mproc.WithMaxMessage(mpmcSize)); err != nil {
		return nil, err
	}
	defer a.Data.Close()
	for _, q := range []**mproc.Queue[int64]{&a.Start, &a.Put, &a.Got} {
		if *q, err = mproc.NewQueue[int64](64); err != nil {
			return nil, err
		}
		defer (*q).Close()
	}
	var ps []*mproc.Process
	defer func() {
		for _, p := range ps {
			p.Kill()
		}
	}()
	wctx := ctx
	for i := range sh.producers + sh.consumers {
		f := mpmcProducer
		if i >= sh.producers {
			f = mpmcConsumer
		}
		p, err := f.Start(ctx, a, mproc.ProcOptions{})
		if err != nil {
			return nil, fmt.Errorf("start child: %w", err)
		}
		ps = append(ps, p)
		var stop context.CancelFunc
		wctx, stop = whileHealthy(wctx, p)
		defer stop()
	}
	report := []byte{0}
	share := int64(mpmcBatch / sh.producers)
	var out []time.Duration
	for b := range queueWarmup + batches {
		t0 := time.Now()
		for range sh.producers {
			if err := a.Start.Put(wctx, share); err != nil {
				return nil, causeOr(wctx, err)
			}
		}
		for range sh.producers {
			if _, err := a.Put.Get(wctx); err != nil {
				return nil, causeOr(wctx, err)
			}
		}
		for got := int64(0); got < int64(mpmcBatch); {
			for range sh.consumers {
				if err := a.Data.Put(wctx, report); err != nil {
					return nil, causeOr(wctx, err)
				}
			}
			for range sh.consumers {
				n, err := a.Got.Get(wctx)
				if err != nil {
					return nil, causeOr(wctx, err)
				}
				got += n
			}
			if got > mpmcBatch {
				return nil, fmt.Errorf("consumers got %d messages of a batch of %d", got, mpmcBatch)
			}
		}
		if d := time.Since(t0); b >= queueWarmup {
			out = append(out, perUnit(d, mpmcBatch))
		}
	}
	a.Start.Shutdown()
	a.Data.Shutdown()
	for _, p := range ps {
		if err := p.Wait(ctx); err != nil {
			return nil, fmt.Errorf("child: %w", err)
		}
	}
	return out, nil
}

// chanMPMC is mprocMPMC over a channel of []byte and goroutines, each
// message a new copy; a batch ends when the consumers have drained the
// closed channel.
func chanMPMC(sh mpmcShape, batches int) ([]time.Duration, error) {
	src := make([]byte, mpmcSize)
	share := mpmcBatch / sh.producers
	var out []time.Duration
	for b := range queueWarmup + batches {
		ch := make(chan []byte, mpmcCapacity)
		var got atomic.Int64
		var prod, cons sync.WaitGroup
		t0 := time.Now()
		for range sh.consumers {
			cons.Go(func() {
				var n int64
				for m := range ch {
					if len(m) == mpmcSize {
						n++
					}
				}
				got.Add(n)
			})
		}
		for range sh.producers {
			prod.Go(func() {
				for range share {
					ch <- append([]byte(nil), src...)
				}
			})
		}
		prod.Wait()
		close(ch)
		cons.Wait()
		d := time.Since(t0)
		if got.Load() != mpmcBatch {
			return nil, fmt.Errorf("channel: consumers got %d messages of %d", got.Load(), mpmcBatch)
		}
		if b >= queueWarmup {
			out = append(out, perUnit(d, mpmcBatch))
		}
	}
	return out, nil
}

// placements are the ping-pong's two: both processes on this process's
// first CPU, and on its first two (missing when it has one only). The
// event workload builds the same pair inline.
func placements(aff *affinity) []placement {
	pls := []placement{
		{name: "one CPU", key: "one", a: aff.cpus[0], b: aff.cpus[0]},
		{name: "two CPUs", key: "two", a: aff.cpus[0], b: -1},
	}
	if len(aff.cpus) > 1 {
		pls[1].b = aff.cpus[1]
	} else {
		pls[1].missing = "this process may run on one CPU only (" + aff.orig + ")"
	}
	return pls
}

func queueWorkload(ctx context.Context, c *config) (*report, error) {
	aff, err := newAffinity()
	if err != nil {
		return nil, err
	}
	pls := placements(aff)
	floor, err := buildC(ctx, c, "ring_floor")
	if err != nil {
		return nil, err
	}
	defer floor.Close()
	futex, err := buildC(ctx, c, "futex_pingpong")
	if err != nil {
		return nil, err
	}
	defer futex.Close()

	// The rows, in the table's order.
	// Go and C rows are keyed by variant and group ("mproc 64", "mproc rt
	// one", "chan 2x2"), Python rows by "py " and queue.py's name.
	var rows []keyedRow
	for _, qs := range queueSizes {
		k, f := strconv.Itoa(qs.bytes), qs.format()
		g := "mproc " + k
		for _, r := range [][2]string{
			{"mproc", "mproc `Queue[[]byte]`"},
			{"zc", "mproc `Queue[[]byte]` `PutFunc`/`GetFunc`, copying in and out of reused buffers"},
			{"append", "mproc `Queue[[]byte]` `Put`/`GetAppend`, appending to a reused buffer"},
			{"c", "floor: C spinning ring, two CPUs"},
			{"cmpmc", "floor: C ring with mproc's MPMC slot protocol, two CPUs"},
			{"chan", "Go channel, one process"},
			{"stream", "Go Unix stream socketpair"},
			{"seqpacket", "Go `SOCK_SEQPACKET` socketpair"},
			{"pipe", "Go `os.Pipe`"},
			{"py queue", "PY `multiprocessing.Queue`"},
			{"py simple", "PY `multiprocessing.SimpleQueue`"},
			{"py pipe", "PY `multiprocessing.Pipe`"},
		} {
			rows = append(rows, keyedRow{key: r[0] + " " + k, variant: r[1] + ", " + qs.name, group: g, format: f})
		}
	}
	for _, pl := range pls {
		g := "mproc rt " + pl.key
		for _, r := range [][2]string{
			{"mproc rt", "mproc `Queue[[]byte]` round trip, 64 B"},
			{"futex rt", "floor: C futex wait/wake round trip, no message"},
			{"socket rt", "Go Unix stream socketpair round trip, 64 B"},
			{"py rt", "PY `multiprocessing.Queue` round trip, 64 B"},
		} {
			rows = append(rows, keyedRow{key: r[0] + " " + pl.key, variant: r[1] + ", " + pl.name, group: g})
		}
	}
	for _, sh := range mpmcShapes {
		g := "mproc " + sh.key
		for _, r := range [][2]string{
			{"mproc", "mproc `Queue[[]byte]`, " + sh.name + " processes"},
			{"chan", "Go channel, " + sh.name + " goroutines"},
			{"py mpmc", "PY `multiprocessing.Queue`, " + sh.name + " processes"},
		} {
			rows = append(rows, keyedRow{key: r[0] + " " + sh.key, variant: r[1] + ", 64 B", group: g, format: perSecond(rateUnit, 0)})
		}
	}
	samples := map[string][]time.Duration{}
	missing := map[string]string{}
	runSteps := func(r int, steps []step) error { return runRound(r, steps, samples, missing) }
	for _, qs := range queueSizes {
		for _, k := range []string{"c ", "cmpmc "} {
			if floor.path == "" {
				missing[k+strconv.Itoa(qs.bytes)] = floor.missing
			}
			if len(aff.cpus) < 2 {
				missing[k+strconv.Itoa(qs.bytes)] = pls[1].missing
			}
		}
	}
	for _, pl := range pls {
		for _, k := range []string{"mproc rt ", "futex rt ", "socket rt ", "py rt "} {
			switch {
			case pl.missing != "":
				missing[k+pl.key] = pl.missing
			case k == "futex rt ":
				missing[k+pl.key] = futex.missing // it pins itself
			case aff.taskset == "" && k != "py rt ":
				missing[k+pl.key] = "taskset not found in PATH, cannot pin the Go processes"
			}
		}
	}
	if c.python == "" {
		for _, r := range rows {
			if strings.HasPrefix(r.key, "py ") {
				missing[r.key] = c.pyMissing
			}
		}
	}

	pyVersion := ""
	goRounds, pyRounds := split(c.n, c.rounds), split(c.pyN, c.rounds)
	nr := max(len(goRounds), len(pyRounds))
	for r := range nr {
		if r < len(goRounds) {
			fmt.Fprintf(c.log, "bench: queue: round %d/%d: Go and C\n", r+1, nr)
			n := goRounds[r]
			for _, qs := range queueSizes {
				k := " " + strconv.Itoa(qs.bytes)
				err := runSteps(r, []step{
					{"mproc" + k, func() ([]time.Duration, error) { return mprocThroughput(ctx, qs, n, getNew) }},
					{"zc" + k, func() ([]time.Duration, error) { return mprocThroughput(ctx, qs, n, getFunc) }},
					{"append" + k, func() ([]time.Duration, error) { return mprocThroughput(ctx, qs, n, getAppend) }},
					{"c" + k, func() ([]time.Duration, error) { return ringFloor(ctx, floor, aff, qs, n, "spsc") }},
					{"cmpmc" + k, func() ([]time.Duration, error) { return ringFloor(ctx, floor, aff, qs, n, "mpmc") }},
					{"chan" + k, func() ([]time.Duration, error) { return chanThroughput(qs, n) }},
					{"stream" + k, func() ([]time.Duration, error) { return fdThroughput(ctx, fdStream, qs, n) }},
					{"seqpacket" + k, func() ([]time.Duration, error) { return fdThroughput(ctx, fdSeqpacket, qs, n) }},
					{"pipe" + k, func() ([]time.Duration, error) { return fdThroughput(ctx, fdPipe, qs, n) }},
				})
				if err != nil {
					return nil, err
				}
			}
			for _, pl := range pls {
				err := runSteps(r, []step{
					{"mproc rt " + pl.key, func() ([]time.Duration, error) { return queueRoundTrip(ctx, pl, aff, n) }},
					{"futex rt " + pl.key, func() ([]time.Duration, error) {
						return futex.run(ctx, strconv.Itoa(n), strconv.Itoa(eventRounds),
							strconv.Itoa(pl.a), strconv.Itoa(pl.b), strconv.Itoa(eventWarmup))
					}},
					{"socket rt " + pl.key, func() ([]time.Duration, error) { return socketRoundTrip(ctx, pl, aff, n) }},
				})
				if err != nil {
					return nil, fmt.Errorf("%s: %w", pl.name, err)
				}
			}
			for _, sh := range mpmcShapes {
				err := runSteps(r, []step{
					{"mproc " + sh.key, func() ([]time.Duration, error) { return mprocMPMC(ctx, sh, n) }},
					{"chan " + sh.key, func() ([]time.Duration, error) { return chanMPMC(sh, n) }},
				})
				if err != nil {
					return nil, err
				}
			}
		}
		if r < len(pyRounds) && c.python != "" {
			fmt.Fprintf(c.log, "bench: queue: round %d/%d: python3 multiprocessing\n", r+1, nr)
			var sizes, spec, shapes []string
			for _, qs := range queueSizes {
				sizes = append(sizes, fmt.Sprintf("%d:%d:%d", qs.bytes, qs.capacity, qs.pyBatch))
			}
			for _, pl := range pls {
				if pl.missing == "" {
					spec = append(spec, fmt.Sprintf("%s:%d:%d", pl.key, pl.a, pl.b))
				}
			}
			for _, sh := range mpmcShapes {
				shapes = append(shapes, sh.key)
			}
			res, err := runPython(ctx, c, "queue.py", "-n", strconv.Itoa(pyRounds[r]),
				"--warmup", strconv.Itoa(queueWarmup), "--sizes", strings.Join(sizes, ","),
				"--rounds", strconv.Itoa(eventRounds), "--rt-warmup", strconv.Itoa(eventWarmup),
				"--placements", strings.Join(spec, ","), "--rt-size", strconv.Itoa(rtSize),
				"--mpmc", strings.Join(shapes, ","), "--mpmc-size", strconv.Itoa(mpmcSize),
				"--mpmc-capacity", strconv.Itoa(mpmcCapacity), "--mpmc-batch", strconv.Itoa(mpmcPyBatch))
			if err != nil {
				return nil, err
			}
			pyVersion = res.Python
			for name, s := range res.Samples {
				k := "py " + name
				if !strings.HasPrefix(name, "rt ") {
					// Seconds per message; a sample is rateUnit messages.
					s = slices.Clone(s)
					for i := range s {
						s[i] *= rateUnit
					}
				}
				samples[k] = append(samples[k], seconds(s)...)
			}
			for name, e := range res.Errors {
				missing["py "+name] = e
			}
		}
	}

	py := "Python"
	if pyVersion != "" {
		py = "Python " + pyVersion
	}
	rep := &report{
		title:   "Queue",
		refName: "mproc",
		format:  humanDuration,
		about: "Messages from one process to another. **Throughput, 1 → 1**: the parent puts batches of " +
			"messages of 64 B, 64 KiB or 1 MiB (" + batchList(func(qs queueSize) int { return qs.batch }) +
			" per Go and C batch, " + batchList(func(qs queueSize) int { return qs.pyBatch }) + " per Python " +
			"batch) and a child gets them, checking each one's length and sequence number; a sample is the " +
			"time from the first put of a batch until the child says (an `mproc.Event`, a byte back, a " +
			"`multiprocessing.Event`) that it has the batch's last message, shown as messages/s (64 B) or " +
			"GB/s (1 GB = 10⁹ bytes). mproc: `mproc.NewQueue[[]byte](capacity, mproc.WithMaxMessage(size))` " +
			"with " + capList() + " slots, `Put(ctx, b)` / `Get(ctx)` (a new slice per message); " +
			"`PutFunc`/`GetFunc`, copying in from the producer's buffer and out into one reused " +
			"buffer; `Put` / `buf, err = GetAppend(ctx, buf[:0])`, each message appended to one " +
			"reused buffer. Floor: " +
			"C (`bench/c/ring_floor.c`, `cc -O2`), a single-producer single-consumer ring of the same " +
			"capacity in a `MAP_SHARED` page between two `fork`ed processes pinned to two CPUs, both " +
			"spinning, one `memcpy` in and one out per message into a reused buffer: what the hardware " +
			"allows. MPMC-protocol floor: the same C program, processes, pinning and copies (its `mpmc` " +
			"mode), over a ring that does per message what mproc's ring (`internal/ring`) does, in its " +
			"layout: a 16-byte slot header (a 64-bit state word of lap and kind, and the size) before " +
			"each message, slots of the message size plus 16 rounded up to 64 bytes, then an array of " +
			"put marks and one of get marks (a 64-bit claim, lap and process record, per slot); a put " +
			"loads the closed flag, tail, the slot's state and its put mark, claims the slot with a " +
			"compare-and-swap of the mark, moves tail with a compare-and-swap, loads the closed flag " +
			"again, copies in, publishes with a sequentially consistent store of Written and loads the " +
			"getters' waiter count; a get claims a Written slot with a compare-and-swap of its get mark, " +
			"moves head, copies out, frees the slot with a sequentially consistent store and loads the " +
			"putters' waiter count; all of it spinning where " +
			"mproc would sleep on a futex (no waiter, so no wake): what mproc's protocol allows, without " +
			"Go and without mproc's API around it. Go channel: `chan []byte` of the same capacity between two goroutines, each message " +
			"a new copy. Go sockets and pipe: one `Write` per message of a 4-byte length and the bytes " +
			"(a `SOCK_SEQPACKET` record is one message, no length), read by an mproc child on its " +
			"standard input through a 64 KiB `bufio.Reader` into a new slice per message. Python: both " +
			"processes in Python (fork context), `Queue(maxsize=capacity)` `put`/`get`, `SimpleQueue` " +
			"`put`/`get`, `Pipe(duplex=False)` `send_bytes`/`recv_bytes`, timed with " +
			"`time.perf_counter` inside Python. **Round trip**: 64 B put on one queue, got by a child " +
			"and put on another, got back; the event workload's ping-pong (" + strconv.Itoa(eventRounds) +
			" round trips per sample, " + strconv.Itoa(eventWarmup) + " uncounted first), both " +
			"processes pinned to one CPU and to two; against the event workload's C floor " +
			"(`bench/c/futex_pingpong.c`: a futex wake and wait each way, no message, no spinning), " +
			"64 B written and read back over a Unix stream socketpair, and Python " +
			"`multiprocessing.Queue`. **Many to many**: " +
			strconv.Itoa(mpmcBatch) + " (Python " + strconv.Itoa(mpmcPyBatch) + ") messages of 64 B per " +
			"sample, put by P producer processes, got by C consumer processes from one queue of " +
			strconv.Itoa(mpmcCapacity) + " slots; the sample ends when the consumers have counted them " +
			"all (report messages through the queue after the producers are done, the counts back " +
			"on another queue). Against a Go channel between goroutines and Python " +
			"`multiprocessing.Queue` between processes. The 1 → 1 and many-to-many processes are not pinned.",
	}
	for _, qr := range rows {
		ref := slices.IndexFunc(rows, func(o keyedRow) bool { return o.key == qr.group })
		rw := row{variant: strings.ReplaceAll(qr.variant, "PY", py), samples: samples[qr.key], ref: ref, format: qr.format}
		switch {
		case missing[qr.key] != "":
			rw.missing = missing[qr.key]
		case len(rw.samples) == 0:
			rw.missing = "no samples"
		}
		rep.rows = append(rep.rows, rw)
	}
	rep.notes = queueTargets(samples)
	rep.notes = append(rep.notes, judgeRatios("issue #17", queueRatioTargets(pls), samples)...)
	rep.notes = append(rep.notes, judgeRatios("MPMC-protocol floor", queueProtocolRatios(), samples)...)
	rep.notes = append(rep.notes,
		"Each group's rows are compared to its mproc row. A throughput row's Median is the median "+
			"sample's rate, its p90 the rate that 90% of the samples reached or beat, its Mean the rate "+
			"over all its samples together.",
		"4×4 oversubscribes this machine's "+strconv.Itoa(len(aff.cpus))+" CPUs: 8 busy processes (8 "+
			"goroutines for the channel); a consumer or producer that is descheduled while others wait "+
			"for it shows here.",
		fmt.Sprintf("A `SOCK_SEQPACKET` record must fit the sender's socket buffer: where a message does "+
			"not fit the default buffer (here 1 MiB), both ends' `SO_SNDBUF` are raised to %d messages "+
			"(the kernel caps it at 2×`net.core.wmem_max`); the stream socket and the pipe keep their "+
			"default buffers.", seqpacketBuffers),
		"The C floors spin and never sleep: whenever another thread runs on one of their two CPUs "+
			"(this program's, the kernel's) the other side spins in vain for up to a scheduler tick, "+
			"hence their low p90 and mean; their medians are the floors.",
		"The mproc queue copies each message twice (into the shared ring, out into a new slice, "+
			"or into the reused buffer with `GetFunc` and `GetAppend`); the channel once (a new "+
			"slice); sockets and the pipe through the kernel (in and out), plus the new slice. The C "+
			"floors copy twice, into no new memory.",
		fmt.Sprintf("Samples are batches: %d per Go and C variant, %d per Python variant, split into %d "+
			"round(s); in each round the Go and C variants of a group run one after the other, in an "+
			"order that rotates from round to round, then one Python process runs its share. Every "+
			"variant starts its other processes anew each round and runs %d uncounted batch(es) first.",
			c.n, c.pyN, nr, queueWarmup),
		fmt.Sprintf("Pinning: the round-trip Go rows pin both processes, every thread, with `taskset -a "+
			"-p -c` (as the event workload does); Python pins itself with `os.sched_setaffinity`. One "+
			"CPU is CPU %d, two CPUs are CPUs %d and %d, where the C futex floor pins itself with "+
			"`sched_setaffinity`; the C ring floors run on CPUs %d and %d.",
			pls[0].a, pls[1].a, pls[1].b, pls[1].a, pls[1].b),
	)
	if c.python == "" {
		rep.notes = append(rep.notes, "**Python variants not run: "+c.pyMissing+".**")
	}
	return rep, nil
}

// ringFloor runs bench/c/ring_floor.c in mode (spsc or mpmc) on this
// process's first two CPUs: n batches of qs.batch messages after
// queueWarmup uncounted ones, each sample the time of rateUnit messages.
func ringFloor(ctx context.Context, floor *cProgram, aff *affinity, qs queueSize, n int, mode string) ([]time.Duration, error) {
	s, err := floor.run(ctx, strconv.Itoa(qs.bytes), strconv.Itoa(qs.capacity), strconv.Itoa(n),
		strconv.Itoa(qs.batch), strconv.Itoa(aff.cpus[0]), strconv.Itoa(aff.cpus[1]), strconv.Itoa(queueWarmup), mode)
	for i := range s {
		s[i] = perUnit(s[i], qs.batch)
	}
	return s, err
}

// batchList lists the sizes' batches, "10000, 256 and 32".
func batchList(f func(queueSize) int) string {
	var s []string
	for _, qs := range queueSizes {
		s = append(s, strconv.Itoa(f(qs)))
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

// capList lists the sizes' capacities, "1024, 16 and 8".
func capList() string { return batchList(func(qs queueSize) int { return qs.capacity }) }

// queueTargets judges the mproc rows against issue #5's targets and says
// plainly which are not met.
func queueTargets(samples map[string][]time.Duration) []string {
	type target struct {
		key, what string
		met       func(time.Duration) bool
		goal, got func(time.Duration) string
	}
	var ts []target
	for _, qs := range queueSizes {
		k, f := strconv.Itoa(qs.bytes), qs.format()
		goal := rateUnit * float64(time.Second) / queueByteTarget * float64(qs.bytes) // per rateUnit messages
		what := fmt.Sprintf("≥ %.0f GB/s", queueByteTarget/1e9)
		if qs.bytes <= 64 {
			goal = rateUnit * float64(time.Second) / queueRateTarget
			what = fmt.Sprintf("≥ %.0f M msgs/s", queueRateTarget/1e6)
		}
		ts = append(ts, target{key: "mproc " + k, what: "mproc `Queue`, 1 → 1, " + qs.name + ", median " + what,
			met: func(d time.Duration) bool { return float64(d) <= goal }, got: f})
		ts = append(ts, target{key: "zc " + k, what: "mproc `Queue` `PutFunc`/`GetFunc`, 1 → 1, " + qs.name + ", median " + what,
			met: func(d time.Duration) bool { return float64(d) <= goal }, got: f})
	}
	for _, t := range []struct {
		key, name string
		max       time.Duration
	}{{"mproc rt one", "one CPU", queueRTOne}, {"mproc rt two", "two CPUs", queueRTTwo}} {
		ts = append(ts, target{key: t.key, what: "mproc `Queue` round trip, 64 B, " + t.name + ", median ≤ " + humanDuration(t.max),
			met: func(d time.Duration) bool { return d <= t.max }, got: humanDuration})
	}
	var out, unmet []string
	for _, t := range ts {
		s := summarize(samples[t.key])
		switch {
		case s.n == 0:
			out = append(out, fmt.Sprintf("Target (issue #5): %s — not judged (no samples).", t.what))
			unmet = append(unmet, t.what+" (not judged)")
		case t.met(s.median):
			out = append(out, fmt.Sprintf("Target (issue #5): %s — **met** (median %s).", t.what, t.got(s.median)))
		default:
			out = append(out, fmt.Sprintf("Target (issue #5): %s — **not met** (median %s).", t.what, t.got(s.median)))
			unmet = append(unmet, t.what)
		}
	}
	if len(unmet) == 0 {
		return append(out, "Every issue #5 target is met.")
	}
	return append(out, "**Not met**: "+strings.Join(unmet, "; ")+".")
}

// Issue #17's targets for the queue, each a ratio of two rows of this run.
const (
	queueFloorShare   = 0.6  // Put/Get 64 B: of the C ring floor's rate
	queueZCFloorShare = 0.8  // PutFunc/GetFunc 64 B: of the floor's rate
	queueChanShare    = 1    // Put/Get 64 B: of a Go channel's rate in one process
	queueMPMCShare    = 0.5  // 2×2 processes: of a channel's among 2×2 goroutines
	queueAppendShare  = 0.6  // Put/GetAppend 64 KiB: of PutFunc/GetFunc's rate
	queueRTFloorShare = 1    // round trip, one CPU: of the C futex floor's time
	queueRTSockShare  = 0.05 // round trip, two CPUs: of the Unix socket's time
)

// queueProtocolRatios set the 64 B mproc rows against the C ring that
// follows mproc's MPMC slot protocol, and that ring against the SPSC
// floor: how much of the gap to the floor is the protocol's, for
// information, no target.
func queueProtocolRatios() []ratioTarget {
	k64 := strconv.Itoa(queueSizes[0].bytes)
	floor := []ratioRow{{key: "cmpmc " + k64, name: "the MPMC-protocol floor"}}
	return []ratioTarget{
		{what: "mproc `Queue` `PutFunc`/`GetFunc`, 1 → 1, 64 B, median rate against the C ring with mproc's MPMC slot protocol",
			mine: "zc " + k64, others: floor, rate: true, info: true, show: queueSizes[0].format()},
		{what: "mproc `Queue` `Put`/`Get`, 1 → 1, 64 B, median rate against the C ring with mproc's MPMC slot protocol",
			mine: "mproc " + k64, others: floor, rate: true, info: true, show: queueSizes[0].format()},
		{what: "the C ring with mproc's MPMC slot protocol, 64 B, median rate against the C spinning SPSC ring floor",
			mine: "cmpmc " + k64, others: []ratioRow{{key: "c " + k64, name: "the SPSC floor"}}, rate: true, info: true, show: queueSizes[0].format()},
	}
}

// queueRatioTargets are issue #17's targets for the queue rows, and the
// 4×4 ratio it asks to see without a target.
func queueRatioTargets(pls []placement) []ratioTarget {
	rate64 := queueSizes[0].format()
	k64, k64K := strconv.Itoa(queueSizes[0].bytes), strconv.Itoa(queueSizes[1].bytes)
	one := func(key string) []ratioRow { return []ratioRow{{key: key}} }
	ts := []ratioTarget{
		{what: fmt.Sprintf("mproc `Queue` `Put`/`Get`, 1 → 1, 64 B, median rate ≥ %g× the C spinning ring floor's", queueFloorShare),
			mine: "mproc " + k64, others: one("c " + k64), rate: true, factor: queueFloorShare, show: rate64},
		{what: fmt.Sprintf("mproc `Queue` `Put`/`Get`, 1 → 1, 64 B, median rate ≥ %g× a Go channel's in one process", float64(queueChanShare)),
			mine: "mproc " + k64, others: one("chan " + k64), rate: true, factor: queueChanShare, show: rate64},
		{what: fmt.Sprintf("mproc `Queue` `PutFunc`/`GetFunc`, 1 → 1, 64 B, median rate ≥ %g× the C spinning ring floor's", queueZCFloorShare),
			mine: "zc " + k64, others: one("c " + k64), rate: true, factor: queueZCFloorShare, show: rate64},
		{what: fmt.Sprintf("mproc `Queue` `Put`/`GetAppend` into a reused buffer, 1 → 1, 64 KiB, median rate ≥ %g× `PutFunc`/`GetFunc`'s", queueAppendShare),
			mine: "append " + k64K, others: one("zc " + k64K), rate: true, factor: queueAppendShare, show: queueSizes[1].format()},
		{what: fmt.Sprintf("mproc `Queue`, 2×2 processes, 64 B, median rate ≥ %g× a Go channel's among 2×2 goroutines", queueMPMCShare),
			mine: "mproc 2x2", others: one("chan 2x2"), rate: true, factor: queueMPMCShare, show: rate64},
		{what: "mproc `Queue`, 4×4 processes, 64 B, median rate against a Go channel's among 4×4 goroutines",
			mine: "mproc 4x4", others: one("chan 4x4"), rate: true, info: true, show: rate64},
	}
	for _, pl := range pls {
		switch pl.key {
		case "one":
			ts = append(ts, ratioTarget{
				what: fmt.Sprintf("mproc `Queue` round trip, 64 B, %s, median ≤ %g× the C futex wait/wake floor's", pl.name, float64(queueRTFloorShare)),
				mine: "mproc rt " + pl.key, others: one("futex rt " + pl.key), factor: queueRTFloorShare, show: humanDuration})
		case "two":
			ts = append(ts, ratioTarget{
				what: fmt.Sprintf("mproc `Queue` round trip, 64 B, %s, median ≤ %g× the Go Unix stream socketpair's", pl.name, queueRTSockShare),
				mine: "mproc rt " + pl.key, others: one("socket rt " + pl.key), factor: queueRTSockShare, show: humanDuration})
		}
	}
	return ts
}
