//go:build mprocfail

package shmnet_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"mproc"
	"mproc/internal/failpoint"
	"mproc/internal/testenv"
	"mproc/shmnet"
)

// shmnet's torture tests (issue 18): a child process at one end of a
// connection streams self-verifying records (or reads them) and is killed
// with SIGKILL at a ring's commit point (shmnet/failpoints.go) on a random
// hit. The survivor must read a prefix of the stream, every byte of it
// right, then an error, within a bounded time (never torn bytes, never a
// hang); or, when the reader died, see its Write fail. The rings are the
// smallest (4 KiB), so that writers wait and both ends wrap around often.
// One line per scenario:
//
//	go test -tags mprocfail -run Torture -v ./shmnet -args -torture.n=1000
var tortureN = flag.Int("torture.n", 20, "iterations per torture scenario")

// checkRecord reports whether b is record seq, whole and right.
func checkRecord(b []byte, seq uint64) bool {
	got, ok := testenv.CheckRecord(b)
	return ok && got == seq && bytes.Equal(b, testenv.Record(seq))
}

// tortureArgs is the argument of the torture children.
type tortureArgs struct {
	Path string
	// Acked counts the bytes of the stream the child's Writes have
	// returned (the writer), or the records it has checked (the reader).
	Acked *mproc.Value[uint64]
	Seed  uint64
}

var (
	// tortureWriter dials Path and writes records 1, 2, ... for ever, in
	// Writes of 1 to 100 records, storing in Acked the bytes written.
	tortureWriter = mproc.Register("shmnet.tortureWriter", func(ctx context.Context, a tortureArgs) error {
		c, err := shmnet.Dial(ctx, a.Path, &shmnet.Options{RingSize: shmnet.MinRingSize})
		if err != nil {
			return err
		}
		defer c.Close()
		r := rand.New(rand.NewPCG(a.Seed, 1))
		var buf []byte
		for seq := uint64(1); ; {
			buf = buf[:0]
			for range 1 + r.IntN(100) {
				buf = append(buf, testenv.Record(seq)...)
				seq++
			}
			if _, err := c.Write(buf); err != nil {
				return err
			}
			a.Acked.Add(uint64(len(buf)))
		}
	})
	// tortureReader dials Path and reads records for ever, in Reads of
	// random sizes, checking each; it fails at the first wrong one and
	// counts the right ones in Acked.
	tortureReader = mproc.Register("shmnet.tortureReader", func(ctx context.Context, a tortureArgs) error {
		c, err := shmnet.Dial(ctx, a.Path, &shmnet.Options{RingSize: shmnet.MinRingSize})
		if err != nil {
			return err
		}
		defer c.Close()
		r := rand.New(rand.NewPCG(a.Seed, 2))
		buf := make([]byte, 8*testenv.RecordSize)
		var have []byte
		for seq := uint64(1); ; {
			n, err := c.Read(buf[:1+r.IntN(len(buf))])
			if err != nil {
				return err
			}
			have = append(have, buf[:n]...)
			for len(have) >= testenv.RecordSize {
				if !checkRecord(have[:testenv.RecordSize], seq) {
					return fmt.Errorf("record %d is torn: % x", seq, have[:testenv.RecordSize])
				}
				have = have[testenv.RecordSize:]
				seq++
				a.Acked.Add(1)
			}
		}
	})
)

type tally struct {
	iterations, survived, lost, torn, hangs, bad int
	records                                      uint64 // whole records the survivor checked
	maxRecovery                                  time.Duration
}

func (tl *tally) String() string {
	return fmt.Sprintf("%d of %d survived; lost %d, torn %d, hangs %d, other failures %d, max recovery %v; %d records checked",
		tl.survived, tl.iterations, tl.lost, tl.torn, tl.hangs, tl.bad, tl.maxRecovery.Round(time.Millisecond), tl.records)
}

// TestTortureStream kills the writing end of a stream (SN1, SN2) or its
// reading end (SN3, SN4) at each commit point of the ring, on a random hit
// (1–200). Writer killed: the survivor reads the stream's bytes up to
// somewhere at or past what the writer's returned Writes covered, every
// one of them right (a last record may be cut short, never wrong), then
// ErrPeerGone (or io.EOF), within 30 s. Reader killed: the survivor's
// Write, writing the same stream, fails with ErrPeerGone or ErrBrokenPipe
// within 30 s, and the reader had found no wrong record before its death.
func TestTortureStream(t *testing.T) {
	if !failpoint.Enabled {
		t.Fatal("built without -tags mprocfail")
	}
	scenarios := []struct {
		name, point string
		writer      bool // the child writes
	}{
		{"SN1 writer killed after copying, before publishing", shmnet.FailWriteCopied, true},
		{"SN2 writer killed after publishing", shmnet.FailWritePublished, true},
		{"SN3 reader killed after consuming, before freeing the room", shmnet.FailReadCopied, false},
		{"SN4 reader killed after freeing the room", shmnet.FailReadPublished, false},
	}
	ln, err := shmnet.Listen(filepath.Join(t.TempDir(), "s"), &shmnet.Options{RingSize: shmnet.MinRingSize})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			var tl tally
			start := time.Now()
			for range *tortureN {
				streamOnce(t, ln, sc.point, sc.writer, &tl)
			}
			line := fmt.Sprintf("%s (%s, %v): %v", sc.name, sc.point, time.Since(start).Round(time.Millisecond), &tl)
			t.Log(line)
			if tl.survived != tl.iterations || tl.lost+tl.torn+tl.hangs+tl.bad > 0 {
				t.Error(line)
			}
		})
	}
}

func streamOnce(t *testing.T, ln *shmnet.Listener, point string, writer bool, tl *tally) {
	tl.iterations++
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	acked, err := mproc.NewValue[uint64](0)
	if err != nil {
		t.Fatal(err)
	}
	defer acked.Close()
	k := 1 + rand.IntN(200)
	child := tortureReader
	if writer {
		child = tortureWriter
	}
	p, err := child.Start(ctx, tortureArgs{Path: ln.Addr().String(), Acked: acked, Seed: rand.Uint64()},
		mproc.ProcOptions{Env: []string{fmt.Sprintf("%s=%s=kill@%d", failpoint.Env, point, k)}})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Reap(t, p)
	died := make(chan time.Time, 1)
	go func() { <-p.Done(); died <- time.Now() }()
	c, err := ln.AcceptConn()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	fail := func(format string, args ...any) {
		t.Logf("%s, kill at hit %d: %s", point, k, fmt.Sprintf(format, args...))
	}
	var end error       // the survivor's error
	var endAt time.Time // when it came
	if writer {
		var got uint64 // bytes received, all right
		buf := make([]byte, 8*testenv.RecordSize)
		var have []byte
		seq := uint64(1)
		for {
			n, err := c.Read(buf[:1+rand.IntN(len(buf))])
			have = append(have, buf[:n]...)
			got += uint64(n)
			for len(have) >= testenv.RecordSize {
				if !checkRecord(have[:testenv.RecordSize], seq) {
					tl.torn++
					fail("record %d is torn: % x", seq, have[:testenv.RecordSize])
					return
				}
				have = have[testenv.RecordSize:]
				seq++
				tl.records++
			}
			if err != nil {
				end, endAt = err, time.Now()
				break
			}
		}
		// What is left is the start of the next record: cut short, not
		// wrong.
		if !bytes.Equal(have, testenv.Record(seq)[:len(have)]) {
			tl.torn++
			fail("the last %d bytes are not the start of record %d: % x", len(have), seq, have)
			return
		}
		if w := acked.Load(); got < w {
			tl.lost++
			fail("%d bytes received, the writer's Writes had returned for %d", got, w)
			return
		}
	} else {
		var buf []byte
		for seq := uint64(1); ; {
			buf = buf[:0]
			for range 1 + rand.IntN(100) {
				buf = append(buf, testenv.Record(seq)...)
				seq++
			}
			if _, err := c.Write(buf); err != nil {
				end, endAt = err, time.Now()
				break
			}
		}
		tl.records += acked.Load()
	}
	var ee *mproc.ExitError
	if err := p.Wait(ctx); !errors.As(err, &ee) || ee.Signal != syscall.SIGKILL {
		// A reader that found a wrong record exits with that error.
		tl.torn++
		fail("the child was to be killed: %v", err)
		return
	}
	switch {
	case errors.Is(end, os.ErrDeadlineExceeded):
		tl.hangs++
		fail("the survivor still waits 30 s after its peer's death")
		return
	case errors.Is(end, shmnet.ErrPeerGone), writer && errors.Is(end, io.EOF), !writer && errors.Is(end, shmnet.ErrBrokenPipe):
	default:
		tl.bad++
		fail("the survivor's error: %v", end)
		return
	}
	tl.maxRecovery = max(tl.maxRecovery, endAt.Sub(<-died))
	tl.survived++
}
