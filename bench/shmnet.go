package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"mproc"
	"mproc/shmnet"
)

// The shmnet workload: a byte stream between two processes, at 64 B, 4 KiB,
// 64 KiB and 1 MiB writes, and a 64 B request/response round trip on one
// CPU and on two, over shmnet (net.Conn on shared memory), a Unix socket
// and loopback TCP, all three through package net's interfaces.

func init() {
	addWorkload(workload{name: "shmnet", about: "shmnet net.Conn stream (64 B to 1 MiB writes) and 64 B round trip vs Unix socket and loopback TCP", run: shmnetWorkload})
}

const (
	shmnetStreamFactor = 3                      // target: stream at 64 KiB writes ≥ 3× a Unix socket's rate
	shmnetRTFactor     = 0.5                    // target: 64 B round trip on two CPUs ≤ 0.5× a Unix socket's
	shmnetDeathTarget  = 100 * time.Millisecond // target: a SIGKILLed peer fails the waiting Read within it
	shmnetWarmup       = 1                      // uncounted batches per stream variant and round
	shmnetDeathWait    = 5 * time.Millisecond   // how long the Read waits before the kill: asleep, past its spin
)

// shmnetSize is one write size of the stream rows.
type shmnetSize struct {
	bytes int
	name  string
	batch int // writes per sample
}

var shmnetSizes = []shmnetSize{
	{bytes: 64, name: "64 B", batch: 4_000},
	{bytes: 4 << 10, name: "4 KiB", batch: 1_000},
	{bytes: 64 << 10, name: "64 KiB", batch: 128},
	{bytes: 1 << 20, name: "1 MiB", batch: 16},
}

// shmnetNets are the transports, in the table's order: key (CLI network
// name) and row name.
var shmnetNets = [][2]string{
	{"shmnet", "shmnet"},
	{"unix", "Unix socket"},
	{"tcp", "loopback TCP"},
}

// shmnetArgs is the argument of the shmnet workload's children.
type shmnetArgs struct {
	Network, Addr        string // "shmnet", "unix" or "tcp", and where to dial
	Size, Batch, Batches int    // shmnetSink
	Total                int    // shmnetEcho: round trips, warm-up included
}

// shmnetDial dials the parent's listener.
func shmnetDial(ctx context.Context, network, addr string) (net.Conn, error) {
	if network == "shmnet" {
		return shmnet.Dial(ctx, addr, nil)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// shmnetListen listens for one child in dir: a socket file for shmnet and
// unix, 127.0.0.1 with a port of the kernel's choice for tcp.
func shmnetListen(network, dir string) (net.Listener, error) {
	switch network {
	case "shmnet":
		return shmnet.Listen(filepath.Join(dir, "shmnet.sock"), nil)
	case "unix":
		return net.Listen("unix", filepath.Join(dir, "unix.sock"))
	}
	return net.Listen("tcp", "127.0.0.1:0")
}

// shmnetSink dials, reads Batches batches of Batch messages of Size bytes
// (io.ReadFull into one buffer), checks each one's sequence number, and
// writes a 1-byte acknowledgement after each batch.
var shmnetSink = mproc.Register("bench.shmnetSink", func(ctx context.Context, a shmnetArgs) error {
	c, err := shmnetDial(ctx, a.Network, a.Addr)
	if err != nil {
		return err
	}
	defer c.Close()
	buf, ack := make([]byte, a.Size), []byte{1}
	var seq uint64
	for range a.Batches {
		for range a.Batch {
			if _, err := io.ReadFull(c, buf); err != nil {
				return fmt.Errorf("message %d: %w", seq, err)
			}
			if err := checkMsg(buf, a.Size, seq); err != nil {
				return err
			}
			seq++
		}
		if _, err := c.Write(ack); err != nil {
			return err
		}
	}
	return nil
})

// shmnetEcho dials and writes back each of Total messages of Size bytes.
var shmnetEcho = mproc.Register("bench.shmnetEcho", func(ctx context.Context, a shmnetArgs) error {
	c, err := shmnetDial(ctx, a.Network, a.Addr)
	if err != nil {
		return err
	}
	defer c.Close()
	buf := make([]byte, a.Size)
	for range a.Total {
		if _, err := io.ReadFull(c, buf); err != nil {
			return err
		}
		if _, err := c.Write(buf); err != nil {
			return err
		}
	}
	return nil
})

// shmnetIdle dials and waits, reading, for bytes that never come, until
// it is killed.
var shmnetIdle = mproc.Register("bench.shmnetIdle", func(ctx context.Context, a shmnetArgs) error {
	c, err := shmnetDial(ctx, a.Network, a.Addr)
	if err != nil {
		return err
	}
	_, err = c.Read(make([]byte, 1))
	return err
})

// shmnetDeath measures how soon a Read waiting on a connection fails once
// the peer's process is killed: per sample, a shmnetIdle child is started
// and connects, this process's Read waits shmnetDeathWait, the child gets
// SIGKILL, and the sample is the time from the kill to the Read's return.
func shmnetDeath(ctx context.Context, network string, n int) ([]time.Duration, error) {
	var out []time.Duration
	for range n {
		c, p, err := shmnetStart(ctx, network, shmnetIdle, shmnetArgs{})
		if err != nil {
			return nil, err
		}
		done := make(chan error, 1)
		go func() {
			_, err := c.Read(make([]byte, 1))
			done <- err
		}()
		time.Sleep(shmnetDeathWait)
		t0 := time.Now()
		if err := p.Kill(); err != nil {
			c.Close()
			return nil, err
		}
		select {
		case err = <-done:
		case <-time.After(10 * time.Second):
			c.Close()
			return nil, fmt.Errorf("the Read still waits 10 s after the peer's death")
		}
		d := time.Since(t0)
		c.Close()
		p.Wait(ctx)
		if err == nil {
			return nil, fmt.Errorf("the Read returned data after the peer's death")
		}
		out = append(out, d)
	}
	return out, nil
}

// shmnetStart listens on network, starts child f with a, which dials, and
// accepts its connection.
func shmnetStart(ctx context.Context, network string, f *mproc.Func[shmnetArgs], a shmnetArgs) (net.Conn, *mproc.Process, error) {
	dir, err := os.MkdirTemp("", "mproc-bench-shmnet-")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(dir)
	ln, err := shmnetListen(network, dir)
	if err != nil {
		return nil, nil, err
	}
	defer ln.Close()
	a.Network, a.Addr = network, ln.Addr().String()
	p, err := f.Start(ctx, a, mproc.ProcOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("start child: %w", err)
	}
	type accepted struct {
		c   net.Conn
		err error
	}
	ch := make(chan accepted, 1)
	go func() {
		c, err := ln.Accept()
		ch <- accepted{c, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			p.Kill()
			return nil, nil, r.err
		}
		return r.c, p, nil
	case <-p.Done():
		ln.Close()
		<-ch
		return nil, nil, fmt.Errorf("child ended before it connected: %v", p.Wait(ctx))
	}
}

// shmnetThroughput writes batches of s.batch messages of s.bytes to a shmnetSink
// child; a sample is the time from the first Write of a batch until the
// child's acknowledgement of it has arrived.
func shmnetThroughput(ctx context.Context, network string, s shmnetSize, batches int) ([]time.Duration, error) {
	a := shmnetArgs{Size: s.bytes, Batch: s.batch, Batches: shmnetWarmup + batches}
	c, p, err := shmnetStart(ctx, network, shmnetSink, a)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	defer p.Kill() // on an early return; a no-op once it has ended
	buf, ack := make([]byte, s.bytes), make([]byte, 1)
	var seq uint64
	var out []time.Duration
	for b := range a.Batches {
		t0 := time.Now()
		for range a.Batch {
			stamp(buf, seq)
			seq++
			if _, err := c.Write(buf); err != nil {
				return nil, childErr(ctx, p, err)
			}
		}
		if _, err := io.ReadFull(c, ack); err != nil {
			return nil, childErr(ctx, p, err)
		}
		if d := time.Since(t0); b >= shmnetWarmup {
			out = append(out, perUnit(d, a.Batch))
		}
	}
	if err := p.Wait(ctx); err != nil {
		return nil, fmt.Errorf("sink: %w", err)
	}
	return out, nil
}

// shmnetRoundTrip is the event workload's ping-pong (pingPong) of rtSize
// messages to a shmnetEcho child: Write, then io.ReadFull, on both sides.
func shmnetRoundTrip(ctx context.Context, network string, pl placement, aff *affinity, batches int) ([]time.Duration, error) {
	c, p, err := shmnetStart(ctx, network, shmnetEcho, shmnetArgs{Size: rtSize, Total: eventWarmup + batches*eventRounds})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	buf, back := make([]byte, rtSize), make([]byte, rtSize)
	var seq uint64
	return pingPong(ctx, p, pl, aff, batches, func() error {
		stamp(buf, seq)
		if _, err := c.Write(buf); err != nil {
			return childErr(ctx, p, err)
		}
		if _, err := io.ReadFull(c, back); err != nil {
			return childErr(ctx, p, err)
		}
		err := checkMsg(back, rtSize, seq)
		seq++
		return err
	})
}

func shmnetWorkload(ctx context.Context, c *config) (*report, error) {
	aff, err := newAffinity()
	if err != nil {
		return nil, err
	}
	pls := placements(aff)

	// Rows keyed "NET SIZE" (stream) and "NET rt PLACEMENT" (round trip).
	var rows []keyedRow
	for _, s := range shmnetSizes {
		k := strconv.Itoa(s.bytes)
		for _, n := range shmnetNets {
			rows = append(rows, keyedRow{key: n[0] + " " + k, variant: n[1] + ", " + s.name + " writes",
				group: "shmnet " + k, format: perSecond(rateUnit, s.bytes)})
		}
	}
	for _, pl := range pls {
		for _, n := range shmnetNets {
			rows = append(rows, keyedRow{key: n[0] + " rt " + pl.key, variant: n[1] + " round trip, 64 B, " + pl.name,
				group: "shmnet rt " + pl.key})
		}
	}
	for _, n := range shmnetNets {
		rows = append(rows, keyedRow{key: n[0] + " death", variant: n[1] + ", peer killed: the waiting `Read` returns",
			group: "shmnet death"})
	}
	samples := map[string][]time.Duration{}
	missing := map[string]string{}
	for _, pl := range pls {
		for _, n := range shmnetNets {
			switch {
			case pl.missing != "":
				missing[n[0]+" rt "+pl.key] = pl.missing
			case aff.taskset == "":
				missing[n[0]+" rt "+pl.key] = "taskset not found in PATH, cannot pin the processes"
			}
		}
	}
	rounds := split(c.n, c.rounds)
	for r, n := range rounds {
		fmt.Fprintf(c.log, "bench: shmnet: round %d/%d\n", r+1, len(rounds))
		for _, s := range shmnetSizes {
			var steps []step
			for _, nw := range shmnetNets {
				steps = append(steps, step{nw[0] + " " + strconv.Itoa(s.bytes), func() ([]time.Duration, error) {
					return shmnetThroughput(ctx, nw[0], s, n)
				}})
			}
			if err := runRound(r, steps, samples, missing); err != nil {
				return nil, err
			}
		}
		for _, pl := range pls {
			var steps []step
			for _, nw := range shmnetNets {
				steps = append(steps, step{nw[0] + " rt " + pl.key, func() ([]time.Duration, error) {
					return shmnetRoundTrip(ctx, nw[0], pl, aff, n)
				}})
			}
			if err := runRound(r, steps, samples, missing); err != nil {
				return nil, fmt.Errorf("%s: %w", pl.name, err)
			}
		}
		var steps []step
		for _, nw := range shmnetNets {
			steps = append(steps, step{nw[0] + " death", func() ([]time.Duration, error) {
				return shmnetDeath(ctx, nw[0], n)
			}})
		}
		if err := runRound(r, steps, samples, missing); err != nil {
			return nil, err
		}
	}

	var sizeNames []string
	for _, s := range shmnetSizes {
		sizeNames = append(sizeNames, fmt.Sprintf("%s (%d writes per sample)", s.name, s.batch))
	}
	rep := &report{
		title:   "shmnet",
		refName: "shmnet",
		format:  humanDuration,
		about: "`net.Conn` between two processes, three transports used alike through package net's " +
			"interfaces: **shmnet** (`shmnet.Listen`/`shmnet.Dial`: two byte rings in a shared memfd, " +
			"default 1 MiB each way, no key), a **Unix socket** (`net.Listen(\"unix\", path)`) and " +
			"**loopback TCP** (`net.Listen(\"tcp\", \"127.0.0.1:0\")`, Go's default `TCP_NODELAY`). The " +
			"parent listens and accepts; the child, an mproc child, dials. **Stream**: the parent " +
			"writes batches of messages of " + strings.Join(sizeNames, ", ") + ", one `Write` each, " +
			"the first 8 bytes a sequence number; the child reads each with `io.ReadFull` into one " +
			"buffer, checks the number, and writes a 1-byte acknowledgement per batch. A sample is " +
			"the time from the first `Write` of a batch to the acknowledgement's arrival, shown as " +
			"bytes per second (1 GB = 10⁹ bytes). **Round trip**: 64 B written, echoed by the child " +
			"(`io.ReadFull`, `Write`), read back with `io.ReadFull`; the event workload's ping-pong (" +
			strconv.Itoa(eventRounds) + " round trips per sample, " + strconv.Itoa(eventWarmup) +
			" uncounted first), both processes pinned to one CPU and to two. The stream processes " +
			"are not pinned. **Peer death**: a child connects and waits in a `Read`; the parent's " +
			"own `Read` waits " + shmnetDeathWait.String() + " (shmnet's is then asleep on its futex), " +
			"the child gets SIGKILL, and a sample is the time from the kill to the parent's `Read` " +
			"returning its error (shmnet: `ErrPeerGone`; the sockets: EOF).",
	}
	for _, kr := range rows {
		ref := slices.IndexFunc(rows, func(o keyedRow) bool { return o.key == kr.group })
		rw := row{variant: kr.variant, samples: samples[kr.key], ref: ref, format: kr.format}
		switch {
		case missing[kr.key] != "":
			rw.missing = missing[kr.key]
		case len(rw.samples) == 0:
			rw.missing = "no samples"
		}
		rep.rows = append(rep.rows, rw)
	}
	rep.notes = shmnetTargets(samples, pls)
	rep.notes = append(rep.notes,
		"Each group's rows are compared to its shmnet row. A stream row's Median is the median "+
			"sample's rate, its p90 the rate that 90% of the samples reached or beat, its Mean the "+
			"rate over all its samples together.",
		"Copies: shmnet copies each byte from the writer's slice into shared memory and from there "+
			"into the reader's, with no system call while neither side waits; a waiting side spins "+
			"for about 20 µs (yielding the CPU) and then sleeps on a futex, which its peer wakes "+
			"only when it said it sleeps. The sockets copy through the kernel, one system call per "+
			"`Write` and per `Read`, and wait in Go's poller.",
		fmt.Sprintf("Samples are batches: %d per variant, split into %d round(s); in each round "+
			"the variants of a group run one after the other, in an order that rotates from round "+
			"to round. Every variant starts its child anew each round; the stream variants write "+
			"%d uncounted batch(es) first.", c.n, len(rounds), shmnetWarmup),
		fmt.Sprintf("Pinning: the round-trip rows pin both processes, every thread, with `taskset -a "+
			"-p -c` (as the event workload does). One CPU is CPU %d, two CPUs are CPUs %d and %d.",
			pls[0].a, pls[1].a, pls[1].b),
	)
	return rep, nil
}

// shmnetTargets judges shmnet against its targets, each against the Unix
// socket's row of the same group, and says plainly which are not met.
func shmnetTargets(samples map[string][]time.Duration, pls []placement) []string {
	type target struct {
		what, mine, other string
		met               func(m, o time.Duration) bool
		show              func(time.Duration) string
		rel               func(m, o time.Duration) string
	}
	k := strconv.Itoa(64 << 10)
	ts := []target{{
		what: fmt.Sprintf("shmnet stream at 64 KiB writes, median rate ≥ %d× the Unix socket's", shmnetStreamFactor),
		mine: "shmnet " + k, other: "unix " + k,
		met:  func(m, o time.Duration) bool { return float64(o)/float64(m) >= shmnetStreamFactor },
		show: perSecond(rateUnit, 64<<10),
		rel:  func(m, o time.Duration) string { return fmt.Sprintf("%.2f× its rate", float64(o)/float64(m)) },
	}}
	for _, pl := range pls {
		if pl.key != "two" {
			continue
		}
		ts = append(ts, target{
			what: fmt.Sprintf("shmnet round trip, 64 B, %s, median ≤ %.1f× the Unix socket's", pl.name, shmnetRTFactor),
			mine: "shmnet rt " + pl.key, other: "unix rt " + pl.key,
			met:  func(m, o time.Duration) bool { return float64(m) <= shmnetRTFactor*float64(o) },
			show: humanDuration,
			rel:  func(m, o time.Duration) string { return fmt.Sprintf("%.2f× its time", float64(m)/float64(o)) },
		})
	}
	ts = append(ts, target{
		what: fmt.Sprintf("shmnet, peer killed, the waiting `Read` fails within %v (median)", shmnetDeathTarget),
		mine: "shmnet death", other: "unix death",
		met:  func(m, o time.Duration) bool { return m <= shmnetDeathTarget },
		show: humanDuration,
		rel:  func(m, o time.Duration) string { return "the Unix socket's for comparison" },
	})
	var out, unmet []string
	for _, t := range ts {
		m, o := summarize(samples[t.mine]), summarize(samples[t.other])
		if m.n == 0 || o.n == 0 {
			out = append(out, fmt.Sprintf("Target (shmnet): %s — not judged (no samples).", t.what))
			unmet = append(unmet, t.what+" (not judged)")
			continue
		}
		verdict := "**met**"
		if !t.met(m.median, o.median) {
			verdict = "**not met**"
			unmet = append(unmet, t.what)
		}
		out = append(out, fmt.Sprintf("Target (shmnet): %s — %s (median %s, against %s: %s).",
			t.what, verdict, t.show(m.median), t.show(o.median), t.rel(m.median, o.median)))
	}
	if len(unmet) == 0 {
		return append(out, "Every shmnet target is met.")
	}
	return append(out, "**Not met**: "+strings.Join(unmet, "; ")+".")
}
