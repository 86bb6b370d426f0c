package mproc_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"sync/atomic"
	"testing"

	"mproc"
	"mproc/internal/ring"
	"mproc/internal/shm"
)

var craftSeq atomic.Int64

// craftName returns a fresh segment name, removed when t ends.
func craftName(t testing.TB) string {
	name := fmt.Sprintf("test-craft-%d-%d", os.Getpid(), craftSeq.Add(1))
	t.Cleanup(func() { os.Remove(shm.Path(name)) })
	return name
}

// patch writes b at offset off of the named segment's file, as a stray
// writer or an attacker with the file can.
func patch(t testing.TB, name string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(shm.Path(name), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// craft overwrites the header parameters of the named segment and
// recomputes the header checksum (CRC-32C of bytes [0, 64) at 64), so
// that the header is well-formed and only its values lie.
func craft(t testing.TB, name string, param0, param1 uint64) {
	t.Helper()
	b, err := os.ReadFile(shm.Path(name))
	if err != nil {
		t.Fatal(err)
	}
	binary.LittleEndian.PutUint64(b[48:], param0)
	binary.LittleEndian.PutUint64(b[56:], param1)
	binary.LittleEndian.PutUint32(b[64:], crc32.Checksum(b[:64], crc32.MakeTable(crc32.Castagnoli)))
	patch(t, name, 0, b[:68])
}

func params(t testing.TB, name string) (uint64, uint64) {
	b, err := os.ReadFile(shm.Path(name))
	if err != nil {
		t.Fatal(err)
	}
	return binary.LittleEndian.Uint64(b[48:]), binary.LittleEndian.Uint64(b[56:])
}

// Crafted headers fail at Open with ErrCorrupt, not at the first call
// with a panic (issue 11).
func TestCraftedHeadersFailAtOpen(t *testing.T) {
	name := craftName(t)
	v := must[*mproc.Value[int64]](t)(mproc.CreateValue[int64](name, 7))
	v.Close()
	p0, _ := params(t, name)
	craft(t, name, p0, 0) // zero elements
	if v, err := mproc.OpenValue[int64](name); !errors.Is(err, mproc.ErrCorrupt) {
		t.Fatalf("a Value of 0 elements: %v", err)
		v.Load()
	}

	for _, c := range []struct {
		what string
		open func(string) error
		make func(string) error
	}{
		{"LIFOQueue",
			func(n string) error { _, err := mproc.OpenLIFOQueue[int64](n); return err },
			func(n string) error {
				q, err := mproc.CreateLIFOQueue[int64](n, 64)
				if err == nil {
					err = errors.Join(q.TryPut(1), q.Close())
				}
				return err
			}},
		{"PriorityQueue",
			func(n string) error { _, err := mproc.OpenPriorityQueue[int64](n); return err },
			func(n string) error {
				q, err := mproc.CreatePriorityQueue[int64](n, 64)
				if err == nil {
					err = errors.Join(q.TryPut(1, 5), q.Close())
				}
				return err
			}},
		{"Queue",
			func(n string) error { _, err := mproc.OpenQueue[int64](n); return err },
			func(n string) error {
				q, err := mproc.CreateQueue[int64](n, 64)
				if err == nil {
					err = errors.Join(q.TryPut(1), q.Close())
				}
				return err
			}},
	} {
		for _, capacity := range []uint64{1, 2, 65} {
			name := craftName(t)
			if err := c.make(name); err != nil {
				t.Fatal(err)
			}
			p0, p1 := params(t, name)
			craft(t, name, capacity<<8|p0&0xff, p1)
			if err := c.open(name); !errors.Is(err, mproc.ErrCorrupt) {
				t.Errorf("a %s of 64 slots whose header says %d: %v", c.what, capacity, err)
			}
		}
	}
}

// A queue slot whose size field exceeds its slot drops its message with
// ErrCorrupt (counted), and the queue goes on (issue 11: TryGet
// panicked).
func TestQueueSlotSizeCorrupt(t *testing.T) {
	name := craftName(t)
	q := must[*mproc.Queue[[]byte]](t)(mproc.CreateQueue[[]byte](name, 4, mproc.WithMaxMessage(64)))
	defer q.Close()
	if err := q.TryPut([]byte("first")); err != nil {
		t.Fatal(err)
	}
	const queueHeader = 64 // the JoinableQueue counters before the ring
	slot0 := int64(shm.HeaderSize + queueHeader + ring.HeaderSize)
	patch(t, name, slot0+8, binary.LittleEndian.AppendUint32(nil, 1<<20))
	if _, err := q.TryGet(); !errors.Is(err, mproc.ErrCorrupt) {
		t.Fatalf("TryGet of a message of 1 MiB in a 64-byte slot: %v", err)
	}
	if st := q.Stats(); st.Corrupt != 1 {
		t.Fatalf("stats %+v", st)
	}
	if err := q.Put(context.Background(), []byte("second")); err != nil {
		t.Fatal(err)
	}
	if b, err := q.TryGet(); err != nil || string(b) != "second" {
		t.Fatalf("after the corrupt message: %q %v", b, err)
	}
}

// FuzzCraftedHeader gives every kind of object a well-formed header with
// any parameters; Open either refuses it or returns a handle whose calls
// do not panic.
func FuzzCraftedHeader(f *testing.F) {
	f.Add(byte(0), uint64(1<<8|1), uint64(8))
	f.Add(byte(1), uint64(1<<8|3), uint64(1))
	f.Add(byte(2), uint64(2<<8|4), uint64(8))
	f.Add(byte(3), uint64(8|32<<32), uint64(0))
	f.Add(byte(4), uint64(8|32<<32), uint64(1<<40))
	f.Add(byte(5), uint64(0), uint64(0))
	f.Add(byte(6), uint64(300), uint64(0))
	f.Fuzz(func(t *testing.T, kind byte, p0, p1 uint64) {
		name := craftName(t)
		type step struct {
			make func() error
			use  func() error // opens and uses; returns Open's error
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // blocking calls return at once
		steps := []step{
			{func() error { return closeC(mproc.CreateQueue[int64](name, 4)) }, func() error {
				q, err := mproc.OpenQueue[int64](name)
				if err == nil {
					q.TryPut(1)
					q.TryGet()
					q.Len()
					q.Close()
				}
				return err
			}},
			{func() error { return closeC(mproc.CreateLIFOQueue[int64](name, 4)) }, func() error {
				q, err := mproc.OpenLIFOQueue[int64](name)
				if err == nil {
					q.TryPut(1)
					q.TryGet()
					q.Len()
					q.Close()
				}
				return err
			}},
			{func() error { return closeC(mproc.CreatePriorityQueue[int64](name, 4)) }, func() error {
				q, err := mproc.OpenPriorityQueue[int64](name)
				if err == nil {
					q.TryPut(1, 2)
					q.TryGet()
					q.Close()
				}
				return err
			}},
			{func() error { return closeC(mproc.CreateValue[int64](name, 1)) }, func() error {
				v, err := mproc.OpenValue[int64](name)
				if err == nil {
					v.Store(v.Load() + 1)
					v.Add(1)
					v.Close()
				}
				return err
			}},
			{func() error { return closeC(mproc.CreateArray[int32](name, 8)) }, func() error {
				a, err := mproc.OpenArray[int32](name)
				if err == nil {
					for i := range a.Len() {
						a.Store(i, a.Load(i)+1)
					}
					a.Close()
				}
				return err
			}},
			{func() error { return closeC(mproc.CreateBoundedSemaphore(name, 2)) }, func() error {
				s, err := mproc.OpenBoundedSemaphore(name)
				if err == nil {
					s.TryAcquire()
					s.Release()
					s.Close()
				}
				return err
			}},
			{func() error { return closeC(mproc.CreateBarrier(name, 3)) }, func() error {
				b, err := mproc.OpenBarrier(name)
				if err == nil {
					b.Wait(ctx)
					b.Reset()
					b.Close()
				}
				return err
			}},
		}
		s := steps[int(kind)%len(steps)]
		if err := s.make(); err != nil {
			t.Fatal(err)
		}
		craft(t, name, p0, p1)
		if err := s.use(); err != nil && !errors.Is(err, mproc.ErrCorrupt) && !errors.Is(err, mproc.ErrKind) {
			t.Fatalf("open: %v, want ErrCorrupt or ErrKind", err)
		}
	})
}

func closeC[C interface{ Close() error }](c C, err error) error {
	if err != nil {
		return err
	}
	return c.Close()
}
