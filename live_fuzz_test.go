package mproc_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"mproc"
	"mproc/internal/ring"
	"mproc/internal/shm"
)

// Bounds of FuzzLiveSegment: how long a blocking call may wait (its
// context), how long any call may take before it counts as hung (generous:
// the machine is shared), and how much one input may allocate.
const (
	liveWait     = 2 * time.Millisecond
	liveHang     = 20 * time.Second
	liveMaxAlloc = 64 << 20
	liveMaxMsg   = 64
	liveMaxOps   = 256
)

// liveAllowed are the errors a call on a damaged object may return: its
// ordinary errors, the context's, and ErrCorrupt (the ideal answer).
var liveAllowed = []error{
	mproc.ErrCorrupt, mproc.ErrKind, mproc.ErrVersion,
	mproc.ErrEmpty, mproc.ErrFull, mproc.ErrShutdown, mproc.ErrTooManyTaskDone,
	mproc.ErrOwnerDead, mproc.ErrNotOwner, mproc.ErrOverRelease, mproc.ErrBrokenBarrier,
	ring.ErrRecords, context.DeadlineExceeded, context.Canceled,
}

// liveObject is one shared object under FuzzLiveSegment: five operations
// that take an argument byte, a reopen (a second handle by name, used and
// closed), and Close.
type liveObject struct {
	ops    [5]func(a byte) error
	reopen func() error
	close  func() error
}

// FuzzLiveSegment creates a named object of any kind, runs operations on
// it, and between operations overwrites bytes of its live segment through
// the file (as a stray writer or a crafted peer of the same user can: the
// mapping and the file are the same pages). The promise under test: every
// call either works or returns one of its documented errors (ErrCorrupt
// for impossible state) within a bounded time; none panics, hangs, reads
// out of range (a fault kills the fuzzer), returns a message longer than
// the queue's slots, or allocates without bound.
//
// ops is a program: a byte whose low three bits are 0-4 runs that
// operation of the object with the high bits as argument, 5 reopens, 6
// writes one byte and 7 four bytes at a 16-bit offset (modulo the file
// size) that follow the op, then the value. Bytes 68-71 of the header
// (State) are left alone: a segment that is not ready makes Open poll for
// a second, which is tested elsewhere and only slows the fuzzer.
func FuzzLiveSegment(f *testing.F) {
	// Working programs for every kind, so that mutations start from paths
	// that reach deep state.
	for kind := range byte(len(liveKinds)) {
		f.Add(kind, []byte{0, 0 | 8<<3, 1, 2, 3, 4, 5, 0, 1, 1, 4 | 1<<3, 4 | 2<<3})
	}
	// The first slot's state word of a FIFO queue (data offset 64 +
	// ring.HeaderSize), rewritten between a put and a get.
	slot := shm.HeaderSize + 64 + ring.HeaderSize
	f.Add(byte(0), []byte{0 | 5<<3, 7, byte(slot >> 8), byte(slot), 0xff, 0xff, 0, 0, 1, 5, 1})
	f.Add(byte(0), []byte{0 | 5<<3, 7, byte((slot + 8) >> 8), byte(slot + 8), 0xff, 0xff, 0xff, 0x7f, 1, 3, 0})
	// The ring's tail and head words.
	tail := shm.HeaderSize + 64 + 64
	f.Add(byte(1), []byte{0, 0, 7, byte(tail >> 8), byte(tail), 9, 0, 0, 0, 0, 1, 2, 3, 4 | 1<<3})
	f.Add(byte(0), []byte{0, 7, byte((tail - 64) >> 8), byte(tail - 64), 0, 1, 0, 0, 1, 1, 3, 5})
	// A lock's owner word set to garbage while held, then a reopen.
	lock := shm.HeaderSize
	f.Add(byte(4), []byte{0, 7, byte(lock >> 8), byte(lock), 1, 2, 3, 4, 2, 1, 5, 3, 0, 1})
	f.Add(byte(7), []byte{0, 0, 7, byte(lock >> 8), byte(lock + 8), 0xff, 0xff, 0xff, 0xff, 0, 1, 1, 1, 2, 5})
	f.Add(byte(10), []byte{6, byte(lock >> 8), byte(lock), 3, 0, 1, 2, 0, 5})
	f.Add(byte(3), []byte{0, 0 | 1<<3, 0 | 2<<3, 6, byte(lock >> 8), byte(lock + 64), 0x80, 1, 1, 1, 5})
	f.Fuzz(func(t *testing.T, kind byte, ops []byte) {
		if len(ops) > liveMaxOps {
			ops = ops[:liveMaxOps]
		}
		name := craftName(t)
		k := liveKinds[int(kind)%len(liveKinds)]
		obj, err := k.make(name)
		if err != nil {
			t.Fatalf("create %s: %v", k.name, err)
		}
		file, err := os.OpenFile(shm.Path(name), os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer file.Close()
		fi, err := file.Stat()
		if err != nil {
			t.Fatal(err)
		}
		size := fi.Size()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for i := 0; i < len(ops); i++ {
			op := ops[i]
			switch op & 7 {
			case 0, 1, 2, 3, 4:
				liveCall(t, fmt.Sprintf("%s op %d(%d)", k.name, op&7, op>>3), func() error { return obj.ops[op&7](op >> 3) })
			case 5:
				liveCall(t, k.name+" reopen", obj.reopen)
			case 6, 7:
				n := 1 + 3*int(op&1) // 6: one byte; 7: four
				if i+2+n >= len(ops) {
					i = len(ops)
					break
				}
				off := int64(binary.BigEndian.Uint16(ops[i+1:])) % size
				val := ops[i+3 : i+3+n]
				i += 2 + n
				if off+int64(n) > size || off < 72 && off+int64(n) > 68 {
					break // past the end, or the header's State word
				}
				if _, err := file.WriteAt(val, off); err != nil {
					t.Fatal(err)
				}
			}
		}
		liveCall(t, k.name+" close", obj.close)
		runtime.ReadMemStats(&after)
		if d := after.TotalAlloc - before.TotalAlloc; d > liveMaxAlloc {
			t.Fatalf("%d bytes allocated by %d ops on a %s", d, len(ops), k.name)
		}
	})
}

// liveCall runs op and fails t if it panics, returns an error that is not
// in liveAllowed, or has not returned after liveHang.
func liveCall(t *testing.T, what string, op func() error) {
	t.Helper()
	type result struct {
		err   error
		panic any
		stack []byte
	}
	done := make(chan result, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- result{panic: p, stack: debug.Stack()}
			}
		}()
		done <- result{err: op()}
	}()
	timer := time.NewTimer(liveHang)
	defer timer.Stop()
	select {
	case r := <-done:
		if r.panic != nil {
			t.Fatalf("%s panicked: %v\n%s", what, r.panic, r.stack)
		}
		if r.err != nil && !isAny(r.err, liveAllowed) {
			t.Fatalf("%s: unexpected error %v", what, r.err)
		}
	case <-timer.C:
		buf := make([]byte, 1<<20)
		t.Fatalf("%s has not returned after %v\n%s", what, liveHang, buf[:runtime.Stack(buf, true)])
	}
}

func isAny(err error, targets []error) bool {
	for _, target := range targets {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// liveCtx returns a context for one blocking call.
func liveCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), liveWait)
}

var livePayload = func() []byte {
	b := make([]byte, liveMaxMsg)
	for i := range b {
		b[i] = byte('a' + i%26)
	}
	return b
}()

// liveMsg checks a message a queue delivered.
func liveMsg(b []byte, err error) error {
	if err == nil && len(b) > liveMaxMsg {
		return fmt.Errorf("a message of %d bytes from a queue of %d-byte messages", len(b), liveMaxMsg)
	}
	return err
}

// liveKinds are the objects FuzzLiveSegment damages.
var liveKinds = []struct {
	name string
	make func(name string) (liveObject, error)
}{
	{"Queue", func(name string) (liveObject, error) {
		q, err := mproc.CreateQueue[[]byte](name, 4, mproc.WithMaxMessage(liveMaxMsg))
		if err != nil {
			return liveObject{}, err
		}
		return liveObject{
			ops: [5]func(byte) error{
				func(a byte) error { return q.TryPut(livePayload[:int(a)*2%(liveMaxMsg+1)]) },
				func(byte) error { return liveMsg(q.TryGet()) },
				func(a byte) error {
					ctx, cancel := liveCtx()
					defer cancel()
					return q.Put(ctx, livePayload[:int(a)*2%(liveMaxMsg+1)])
				},
				func(byte) error {
					ctx, cancel := liveCtx()
					defer cancel()
					return liveMsg(q.Get(ctx))
				},
				func(a byte) error {
					switch a % 4 {
					case 0:
						q.Len()
						q.Stats()
						q.IsShutdown()
					case 1:
						return liveMsg(q.TryGet())
					case 2:
						ctx, cancel := liveCtx()
						defer cancel()
						return q.GetFunc(ctx, func(b []byte) {
							if len(b) > liveMaxMsg {
								panic(fmt.Sprintf("GetFunc: a message of %d bytes", len(b)))
							}
						})
					case 3:
						if a == 31 { // rarely: the queue is done with
							return q.Shutdown()
						}
					}
					return nil
				},
			},
			reopen: func() error {
				q2, err := mproc.OpenQueue[[]byte](name)
				if err != nil {
					return err
				}
				return errors.Join(liveMsg(q2.TryGet()), q2.TryPut(livePayload[:3]), q2.Close())
			},
			close: q.Close,
		}, nil
	}},
	{"JoinableQueue", func(name string) (liveObject, error) {
		q, err := mproc.CreateJoinableQueue[[]byte](name, 4, mproc.WithMaxMessage(liveMaxMsg))
		if err != nil {
			return liveObject{}, err
		}
		return liveObject{
			ops: [5]func(byte) error{
				func(a byte) error { return q.TryPut(livePayload[:int(a)*2%(liveMaxMsg+1)]) },
				func(byte) error { return liveMsg(q.TryGet()) },
				func(byte) error { return q.TaskDone() },
				func(byte) error {
					ctx, cancel := liveCtx()
					defer cancel()
					return q.Join(ctx)
				},
				func(a byte) error {
					q.Unfinished()
					q.Len()
					if a == 31 {
						return q.Shutdown()
					}
					ctx, cancel := liveCtx()
					defer cancel()
					return liveMsg(q.Get(ctx))
				},
			},
			reopen: func() error {
				q2, err := mproc.OpenJoinableQueue[[]byte](name)
				if err != nil {
					return err
				}
				return errors.Join(q2.TryPut(livePayload[:5]), liveMsg(q2.TryGet()), q2.Close())
			},
			close: q.Close,
		}, nil
	}},
	{"LIFOQueue", func(name string) (liveObject, error) {
		q, err := mproc.CreateLIFOQueue[[]byte](name, 4, mproc.WithMaxMessage(liveMaxMsg))
		if err != nil {
			return liveObject{}, err
		}
		return liveObject{
			ops: [5]func(byte) error{
				func(a byte) error { return q.TryPut(livePayload[:int(a)*2%(liveMaxMsg+1)]) },
				func(byte) error { return liveMsg(q.TryGet()) },
				func(a byte) error {
					ctx, cancel := liveCtx()
					defer cancel()
					return q.Put(ctx, livePayload[:int(a)%(liveMaxMsg+1)])
				},
				func(byte) error {
					ctx, cancel := liveCtx()
					defer cancel()
					return liveMsg(q.Get(ctx))
				},
				func(a byte) error {
					q.Len()
					q.IsShutdown()
					if a == 31 {
						return q.Shutdown()
					}
					return nil
				},
			},
			reopen: func() error {
				q2, err := mproc.OpenLIFOQueue[[]byte](name)
				if err != nil {
					return err
				}
				return errors.Join(liveMsg(q2.TryGet()), q2.Close())
			},
			close: q.Close,
		}, nil
	}},
	{"PriorityQueue", func(name string) (liveObject, error) {
		q, err := mproc.CreatePriorityQueue[[]byte](name, 4, mproc.WithMaxMessage(liveMaxMsg))
		if err != nil {
			return liveObject{}, err
		}
		get := func(b []byte, _ int64, err error) error { return liveMsg(b, err) }
		return liveObject{
			ops: [5]func(byte) error{
				func(a byte) error { return q.TryPut(livePayload[:int(a)*2%(liveMaxMsg+1)], int64(a)-16) },
				func(byte) error { return get(q.TryGet()) },
				func(a byte) error {
					ctx, cancel := liveCtx()
					defer cancel()
					return q.Put(ctx, livePayload[:int(a)%(liveMaxMsg+1)], int64(a))
				},
				func(byte) error {
					ctx, cancel := liveCtx()
					defer cancel()
					return get(q.Get(ctx))
				},
				func(a byte) error {
					q.Len()
					if a == 31 {
						return q.Shutdown()
					}
					return nil
				},
			},
			reopen: func() error {
				q2, err := mproc.OpenPriorityQueue[[]byte](name)
				if err != nil {
					return err
				}
				return errors.Join(get(q2.TryGet()), q2.Close())
			},
			close: q.Close,
		}, nil
	}},
	{"Lock", func(name string) (liveObject, error) {
		l, err := mproc.CreateLock(name)
		if err != nil {
			return liveObject{}, err
		}
		return liveLock(l, func() (*mproc.Lock, error) { return mproc.OpenLock(name) }), nil
	}},
	{"RLock", func(name string) (liveObject, error) {
		l, err := mproc.CreateRLock(name)
		if err != nil {
			return liveObject{}, err
		}
		return liveObject{
			ops: [5]func(byte) error{
				func(byte) error { _, err := l.TryLock(); return err },
				func(byte) error { return l.Release() },
				func(byte) error {
					ctx, cancel := liveCtx()
					defer cancel()
					return l.LockContext(ctx)
				},
				func(byte) error { return l.MarkConsistent() },
				func(byte) error {
					l.Depth()
					l.Consistent()
					_, err := l.Clone().TryLock()
					return err
				},
			},
			reopen: func() error {
				l2, err := mproc.OpenRLock(name)
				if err != nil {
					return err
				}
				_, err = l2.TryLock()
				return errors.Join(err, l2.Close())
			},
			close: l.Close,
		}, nil
	}},
	{"RWMutex", func(name string) (liveObject, error) {
		rw, err := mproc.CreateRWMutex(name)
		if err != nil {
			return liveObject{}, err
		}
		// Unlock and RUnlock panic with ErrNotOwner when this process
		// holds nothing (as sync's do): they are called only after an
		// acquisition, and held counts them.
		var w, r int
		unlock := func(f func()) (err error) {
			defer func() {
				if p := recover(); p != nil {
					if e, ok := p.(error); ok && errors.Is(e, mproc.ErrNotOwner) {
						err = fmt.Errorf("unlock after damage: %w", e)
						return
					}
					panic(p)
				}
			}()
			f()
			return nil
		}
		held := func(n *int, ok bool, err error) error {
			if ok || errors.Is(err, mproc.ErrOwnerDead) {
				*n++
			}
			return err
		}
		return liveObject{
			ops: [5]func(byte) error{
				func(byte) error { ok, err := rw.TryLock(); return held(&w, ok, err) },
				func(byte) error { ok, err := rw.TryRLock(); return held(&r, ok, err) },
				func(a byte) error {
					ctx, cancel := liveCtx()
					defer cancel()
					if a&1 == 0 {
						err := rw.LockContext(ctx)
						return held(&w, err == nil, err)
					}
					err := rw.RLockContext(ctx)
					return held(&r, err == nil, err)
				},
				func(a byte) error {
					switch {
					case a&1 == 0 && w > 0:
						w--
						return unlock(rw.Unlock)
					case a&1 == 1 && r > 0:
						r--
						return unlock(rw.RUnlock)
					}
					return nil
				},
				func(byte) error { rw.Consistent(); return rw.MarkConsistent() },
			},
			reopen: func() error {
				rw2, err := mproc.OpenRWMutex(name)
				if err != nil {
					return err
				}
				return rw2.Close()
			},
			close: rw.Close,
		}, nil
	}},
	{"BoundedSemaphore", func(name string) (liveObject, error) {
		s, err := mproc.CreateBoundedSemaphore(name, 2)
		if err != nil {
			return liveObject{}, err
		}
		return liveSemaphore(&s.Semaphore, func() (func() error, error) {
			s2, err := mproc.OpenBoundedSemaphore(name)
			if err != nil {
				return nil, err
			}
			s2.TryAcquire()
			return s2.Close, nil
		}), nil
	}},
	{"Semaphore", func(name string) (liveObject, error) {
		s, err := mproc.CreateSemaphore(name, 1)
		if err != nil {
			return liveObject{}, err
		}
		return liveSemaphore(s, func() (func() error, error) {
			s2, err := mproc.OpenSemaphore(name)
			if err != nil {
				return nil, err
			}
			s2.TryAcquire()
			return s2.Close, nil
		}), nil
	}},
	{"Event", func(name string) (liveObject, error) {
		e, err := mproc.CreateEvent(name)
		if err != nil {
			return liveObject{}, err
		}
		return liveObject{
			ops: [5]func(byte) error{
				func(byte) error { e.Set(); return nil },
				func(byte) error { e.Clear(); return nil },
				func(byte) error { e.IsSet(); return nil },
				func(byte) error {
					ctx, cancel := liveCtx()
					defer cancel()
					return e.Wait(ctx)
				},
				func(byte) error {
					ctx, cancel := liveCtx()
					defer cancel()
					done := make(chan error, 1)
					go func() { done <- e.Wait(ctx) }()
					e.Set()
					return <-done
				},
			},
			reopen: func() error {
				e2, err := mproc.OpenEvent(name)
				if err != nil {
					return err
				}
				e2.IsSet()
				return e2.Close()
			},
			close: e.Close,
		}, nil
	}},
	{"Barrier", func(name string) (liveObject, error) {
		b, err := mproc.CreateBarrier(name, 2)
		if err != nil {
			return liveObject{}, err
		}
		wait := func() error {
			ctx, cancel := liveCtx()
			defer cancel()
			_, err := b.Wait(ctx)
			return err
		}
		return liveObject{
			ops: [5]func(byte) error{
				func(byte) error { return wait() },
				func(byte) error { b.Reset(); return nil },
				func(byte) error { b.Abort(); return nil },
				func(byte) error { b.Broken(); b.NWaiting(); b.Parties(); return nil },
				func(byte) error {
					// Both parties: this goroutine and another.
					done := make(chan error, 1)
					go func() { done <- wait() }()
					return errors.Join(wait(), <-done)
				},
			},
			reopen: func() error {
				b2, err := mproc.OpenBarrier(name)
				if err != nil {
					return err
				}
				b2.NWaiting()
				return b2.Close()
			},
			close: b.Close,
		}, nil
	}},
	{"Value", func(name string) (liveObject, error) {
		v, err := mproc.CreateValue[int64](name, 7)
		if err != nil {
			return liveObject{}, err
		}
		l := liveLock(v.Lock(), nil)
		return liveObject{
			ops: [5]func(byte) error{
				func(a byte) error { v.Store(int64(a)); v.Load(); return nil },
				func(a byte) error { v.Add(int64(a)); v.CompareAndSwap(int64(a), 1); return nil },
				l.ops[0], l.ops[1], l.ops[2],
			},
			reopen: func() error {
				v2, err := mproc.OpenValue[int64](name)
				if err != nil {
					return err
				}
				v2.Add(1)
				return v2.Close()
			},
			close: v.Close,
		}, nil
	}},
	{"Array", func(name string) (liveObject, error) {
		// Three-byte elements have no atomic instructions: every access
		// takes the array's own lock, whose words are damaged too.
		a, err := mproc.CreateArray[[3]byte](name, 4)
		if err != nil {
			return liveObject{}, err
		}
		return liveObject{
			ops: [5]func(byte) error{
				func(x byte) error { a.Store(int(x)%a.Len(), [3]byte{x, x, x}); return nil },
				func(x byte) error { a.Load(int(x) % a.Len()); return nil },
				func(x byte) error { a.CompareAndSwap(int(x)%a.Len(), [3]byte{x, x, x}, [3]byte{}); return nil },
				func(byte) error { _, err := a.Lock().TryLock(); return err },
				func(byte) error { return a.Lock().Release() },
			},
			reopen: func() error {
				a2, err := mproc.OpenArray[[3]byte](name)
				if err != nil {
					return err
				}
				a2.Load(a2.Len() - 1)
				return a2.Close()
			},
			close: a.Close,
		}, nil
	}},
}

// liveLock is the operations of a Lock; open, if not nil, opens it again.
func liveLock(l *mproc.Lock, open func() (*mproc.Lock, error)) liveObject {
	o := liveObject{
		ops: [5]func(byte) error{
			func(byte) error { _, err := l.TryLock(); return err },
			func(byte) error { return l.Release() },
			func(byte) error {
				ctx, cancel := liveCtx()
				defer cancel()
				return l.LockContext(ctx)
			},
			func(byte) error { return l.MarkConsistent() },
			func(byte) error { l.Consistent(); return nil },
		},
		close: l.Close,
	}
	if open != nil {
		o.reopen = func() error {
			l2, err := open()
			if err != nil {
				return err
			}
			_, err = l2.TryLock()
			return errors.Join(err, l2.Close())
		}
	}
	return o
}

// liveSemaphore is the operations of a semaphore; open opens it again and
// returns its Close.
func liveSemaphore(s *mproc.Semaphore, open func() (func() error, error)) liveObject {
	return liveObject{
		ops: [5]func(byte) error{
			func(byte) error { s.TryAcquire(); return nil },
			func(byte) error { return s.Release() },
			func(byte) error {
				ctx, cancel := liveCtx()
				defer cancel()
				return s.Acquire(ctx)
			},
			func(byte) error { s.Value(); return nil },
			func(byte) error {
				if s.TryAcquire() {
					return s.Release()
				}
				return nil
			},
		},
		reopen: func() error {
			closeFn, err := open()
			if err != nil {
				return err
			}
			return closeFn()
		},
		close: s.Close,
	}
}
