package shmnet_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"mproc"
	"mproc/internal/owner"
	"mproc/internal/shm"
	"mproc/shmnet"
)

// Bounds of FuzzCraftedSegment: a Read or Write waits fuzzWait at most
// (its deadline); a call that has not returned after fuzzHang has hung
// (generous: the machine is shared).
const (
	fuzzWait = 2 * time.Millisecond
	fuzzHang = 20 * time.Second
)

// FuzzCraftedSegment is TestCraftedSegment's check with any segment: a
// fake listener sends Dial a segment of its choice (the segment kind and
// parameters, then bytes written over a valid data area: header, ring
// control blocks, rings), and Dial must refuse it with ErrCorrupt, ErrKind
// or ErrVersion, or return a connection. On that connection, Reads and
// Writes with short deadlines run while the listener keeps overwriting
// the live segment, as a hostile peer can: every call returns within its
// deadline (or soon after) with data or an error, and none panics or
// reads out of range.
//
// patch and live are programs of records: a 16-bit offset into the data
// area, a byte n, and 1+n%8 bytes to write there. In live, a record whose
// n has bit 3 set is instead a Write (bit 4 clear) or a Read of n>>5 * 64
// bytes.
func FuzzCraftedSegment(f *testing.F) {
	r := uint64(shmnet.MinRingSize)
	ctl := uint16(shmnet.CtlOff)
	f.Add(false, uint64(shmnet.ParamKind), r, byte(0), []byte{}, []byte{0, 0, 8, 0, 0, 0x18, 0, 0, 8})
	f.Add(false, uint64(shmnet.ParamKind), r, byte(0), []byte{}, []byte{0, 0, 8 | 3<<5, 0, 0, 0x18 | 7<<5})
	f.Add(true, uint64(shmnet.ParamKind), r, byte(0), []byte{}, []byte{})
	f.Add(false, uint64(42), r, byte(0), []byte{}, []byte{})
	f.Add(false, uint64(shmnet.ParamKind), r+1, byte(0), []byte{}, []byte{})
	f.Add(false, uint64(shmnet.ParamKind), 2*r, byte(0), []byte{}, []byte{})
	f.Add(false, uint64(shmnet.ParamKind), 2*r, byte(1), []byte{}, []byte{})
	f.Add(false, uint64(shmnet.ParamKind), r, byte(0), []byte{0, 0, 0, 'x'}, []byte{})
	f.Add(false, uint64(shmnet.ParamKind), r, byte(0), []byte{0, 8, 3, 2, 0, 0, 0}, []byte{})
	// Tail past the ring, before and after Dial; Head past Tail; the
	// listener's token and the closed flags while the dialer reads.
	tail := binary.BigEndian.AppendUint16(nil, ctl)
	f.Add(false, uint64(shmnet.ParamKind), r, byte(0), append(tail, 7, 1, 0x10, 0, 0, 0, 0, 0, 0), []byte{})
	f.Add(false, uint64(shmnet.ParamKind), r, byte(0), []byte{}, append(append(tail, 1, 0xff, 0x20), 0, 0, 0x18|1<<5))
	head := binary.BigEndian.AppendUint16(nil, ctl+64)
	f.Add(false, uint64(shmnet.ParamKind), r, byte(0), []byte{}, append(append(head, 0, 5), 0, 0, 0x18|1<<5, 0, 0, 8))
	tok := []byte{0, 16, 7, 1, 0, 0, 0, 0, 0, 0, 0}
	f.Add(false, uint64(shmnet.ParamKind), r, byte(0), []byte{}, append(tok, 0, 0, 0x18|2<<5))
	closed := binary.BigEndian.AppendUint16(nil, ctl+128)
	f.Add(false, uint64(shmnet.ParamKind), r, byte(0), []byte{}, append(append(closed, 0, 1), 0, 0, 0x18|1<<5, 0, 0, 8))
	f.Fuzz(func(t *testing.T, otherKind bool, p0, p1 uint64, sizeSel byte, patch, live []byte) {
		if len(live) > 512 {
			live = live[:512]
		}
		kind := shm.KindSharedMemory
		if otherKind {
			kind = shm.KindQueue
		}
		ringSize := int(r) << (sizeSel % 2) // the data area's rings, whatever p1 says
		seg, err := shm.NewAnonymous(kind, shmnet.DataSize(ringSize), shm.CreateOptions{Param: [2]uint64{p0, p1},
			Init: func(d []byte) error {
				shmnet.InitSegment(d, ringSize, owner.Self().Pack())
				writes(d, patch, nil)
				return nil
			}})
		if err != nil {
			t.Fatal(err)
		}
		defer seg.Close()

		path := filepath.Join(t.TempDir(), "s")
		ml, err := mproc.Listen("unix", path, nil, mproc.ListenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer ml.Close()
		served := make(chan error, 1)
		go func() {
			served <- fakeListener(ml, "", func(*testing.T) *shm.Segment { return seg }, t)
		}()
		var c *shmnet.Conn
		fuzzCall(t, "Dial", func() error {
			var err error
			c, err = shmnet.Dial(context.Background(), path, &shmnet.Options{HandshakeTimeout: fuzzHang})
			if err != nil && !errors.Is(err, mproc.ErrCorrupt) && !errors.Is(err, mproc.ErrKind) && !errors.Is(err, mproc.ErrVersion) {
				return err
			}
			return nil
		})
		if c != nil {
			writes(seg.Data(), live, func(n byte) {
				buf := make([]byte, int(n>>5)*64)
				write := n&0x10 == 0
				fuzzCall(t, "Read/Write", func() error {
					var err error
					var got int
					if write {
						c.SetWriteDeadline(time.Now().Add(fuzzWait))
						got, err = c.Write(buf)
					} else {
						c.SetReadDeadline(time.Now().Add(fuzzWait))
						got, err = c.Read(buf)
					}
					if got < 0 || got > len(buf) || err == nil && write && got != len(buf) {
						return errors.New("a count out of range")
					}
					switch {
					case err == nil, errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, io.EOF),
						errors.Is(err, mproc.ErrCorrupt), errors.Is(err, shmnet.ErrPeerGone), errors.Is(err, shmnet.ErrBrokenPipe):
						return nil
					}
					return err
				})
			})
			fuzzCall(t, "Close", c.Close)
		}
		ml.Close()
		if err := <-served; err != nil && !errors.Is(err, os.ErrClosed) {
			t.Fatalf("fake listener: %v", err)
		}
	})
}

// writes runs the program prog over data: it writes each record's bytes
// at its offset (modulo the data size), and for a record whose n has bit 3
// set calls op(n) instead, if op is not nil.
func writes(data, prog []byte, op func(n byte)) {
	for len(prog) >= 3 {
		off := int(binary.BigEndian.Uint16(prog)) % len(data)
		n := prog[2]
		prog = prog[3:]
		if op != nil && n&8 != 0 {
			op(n)
			continue
		}
		k := min(1+int(n%8), len(prog))
		copy(data[off:], prog[:k])
		prog = prog[k:]
	}
}

// fuzzCall runs op and fails t if it panics, returns an error, or has not
// returned after fuzzHang.
func fuzzCall(t *testing.T, what string, op func() error) {
	t.Helper()
	done := make(chan error, 1)
	var stack []byte
	go func() {
		defer func() {
			if p := recover(); p != nil {
				stack = debug.Stack()
				done <- errors.New("panic: " + panicText(p))
			}
		}()
		done <- op()
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: %v\n%s", what, err, stack)
		}
	case <-time.After(fuzzHang):
		buf := make([]byte, 1<<20)
		t.Fatalf("%s has not returned after %v\n%s", what, fuzzHang, buf[:runtime.Stack(buf, true)])
	}
}

func panicText(p any) string {
	if err, ok := p.(error); ok {
		return err.Error()
	}
	if s, ok := p.(string); ok {
		return s
	}
	return "non-error panic"
}
