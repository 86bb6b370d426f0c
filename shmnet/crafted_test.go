package shmnet_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"mproc"
	"mproc/internal/owner"
	"mproc/internal/shm"
	"mproc/internal/testenv"
	"mproc/shmnet"
)

// TestCraftedSegment has a fake listener send Dial segments that are
// damaged, foreign or unsealed, and other first messages: Dial must refuse
// each with the right error and keep nothing of it.
func TestCraftedSegment(t *testing.T) {
	const r = shmnet.MinRingSize
	valid := func(data []byte) { shmnet.InitSegment(data, r, owner.Self().Pack()) }
	anon := func(kind shm.Kind, param0, param1 uint64, size int, fill func([]byte)) func(t *testing.T) *shm.Segment {
		return func(t *testing.T) *shm.Segment {
			seg, err := shm.NewAnonymous(kind, size, shm.CreateOptions{Param: [2]uint64{param0, param1},
				Init: func(d []byte) error { fill(d); return nil }})
			if err != nil {
				t.Fatal(err)
			}
			return seg
		}
	}
	good := func(fill func([]byte)) func(t *testing.T) *shm.Segment {
		return anon(shm.KindSharedMemory, shmnet.ParamKind, r, shmnet.DataSize(r), func(d []byte) { valid(d); fill(d) })
	}
	for _, tc := range []struct {
		name  string
		hello string
		seg   func(t *testing.T) *shm.Segment
		want  error
	}{
		{"another kind", "", anon(shm.KindQueue, shmnet.ParamKind, r, shmnet.DataSize(r), valid), mproc.ErrKind},
		{"not shmnet's", "", anon(shm.KindSharedMemory, 42, r, shmnet.DataSize(r), valid), mproc.ErrKind},
		{"ring size not a power of two", "", anon(shm.KindSharedMemory, shmnet.ParamKind, r+1, shmnet.DataSize(r+1), valid), mproc.ErrCorrupt},
		{"ring size too large", "", anon(shm.KindSharedMemory, shmnet.ParamKind, 2*shmnet.MaxRingSize, shmnet.DataSize(r), valid), mproc.ErrCorrupt},
		{"short data area", "", anon(shm.KindSharedMemory, shmnet.ParamKind, 2*r, shmnet.DataSize(r), valid), mproc.ErrCorrupt},
		{"bad magic", "", good(func(d []byte) { copy(d, "mprocxxx") }), mproc.ErrCorrupt},
		{"version 2", "", good(func(d []byte) { binary.LittleEndian.PutUint32(d[8:], 2) }), mproc.ErrVersion},
		{"header ring size", "", good(func(d []byte) { binary.LittleEndian.PutUint32(d[12:], 2*r) }), mproc.ErrCorrupt},
		{"tail past the ring", "", good(func(d []byte) { binary.LittleEndian.PutUint64(d[shmnet.CtlOff:], r+1) }), mproc.ErrCorrupt},
		{"unsealed", "", func(t *testing.T) *shm.Segment {
			name := fmt.Sprintf("shmnet-test-%d", os.Getpid())
			seg, err := shm.Create(name, shm.KindSharedMemory, shmnet.DataSize(r), shm.CreateOptions{
				Param: [2]uint64{shmnet.ParamKind, r}, Init: func(d []byte) error { valid(d); return nil }})
			if err != nil {
				t.Fatal(err)
			}
			shm.Unlink(name)
			return seg
		}, mproc.ErrCorrupt},
		{"not a shmnet listener", "#SOMETHING#", nil, mproc.ErrProtocol},
		{"silent listener", "-", nil, context.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testenv.CheckFDLeaks(t)
			path := filepath.Join(t.TempDir(), "s")
			ml, err := mproc.Listen("unix", path, nil, mproc.ListenOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer ml.Close()
			served := make(chan error, 1)
			go func() { served <- fakeListener(ml, tc.hello, tc.seg, t) }()
			start := time.Now()
			timeout := 10 * time.Second // never reached, even on a busy machine
			if tc.want == context.DeadlineExceeded {
				timeout = 500 * time.Millisecond
			}
			c, err := shmnet.Dial(context.Background(), path, &shmnet.Options{HandshakeTimeout: timeout})
			if err == nil {
				c.Close()
				t.Fatal("Dial accepted it")
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("Dial: %v, want %v", err, tc.want)
			}
			var ne net.Error
			if timeout := errors.As(err, &ne) && ne.Timeout(); timeout != (tc.want == context.DeadlineExceeded) {
				t.Errorf("Dial's error: Timeout() = %v", timeout)
			}
			t.Logf("refused in %v: %v", time.Since(start).Round(time.Millisecond), err)
			ml.Close()
			if err := <-served; err != nil {
				t.Error(err)
			}
		})
	}
}

// fakeListener accepts one connection on ml and sends hello (shmnet's if
// empty, nothing if "-"), then the segment seg makes, if any; it waits for
// the client to hang up.
func fakeListener(ml *mproc.Listener, hello string, seg func(*testing.T) *shm.Segment, t *testing.T) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := ml.Accept(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if hello != "-" {
		if hello == "" {
			hello = "#SHMNET/1#"
		}
		if err := c.SendBytes(ctx, []byte(hello)); err != nil {
			return err
		}
	}
	if seg != nil {
		s := seg(t)
		defer s.Close()
		f, err := s.FD().File("crafted")
		if err != nil {
			return err
		}
		defer f.Close()
		if err := c.SendFile(ctx, f); err != nil {
			return err
		}
	}
	c.Poll(ctx) // until the client hangs up
	return nil
}
