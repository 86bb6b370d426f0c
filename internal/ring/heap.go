package ring

import (
	"context"
	"fmt"
	"sync/atomic"
	"unsafe"

	"mproc/internal/futex"
	"mproc/internal/psync"
)

// Heap is an ordered queue of variable-size messages in shared memory:
// the priority queue (lowest priority first, first in first out among
// equals) and, ordering by arrival only and newest first, the LIFO queue.
//
// Unlike the ring it is one robust mutex (psync.Mutex) over a binary heap
// of slot indices, a stack of free slots, and the slots. Messages are
// copied in and out under the mutex. Each slot's state word (free or full)
// is the truth: a put makes its slot full as its last step, a get makes
// its slot free as its last step, and the heap and the free stack are
// rebuilt from the slot states whenever the mutex comes back from a
// process that died holding it. So a producer that dies inside Put leaves
// no message; a consumer that dies inside Get before its last step leaves
// the message for the next consumer (it never returned it, so it was never
// delivered), after it, loses it.
//
// Layout: the control block (128 bytes), the heap and free arrays (4
// bytes per slot each, rounded up to 64), then the slots.
//
// Damaged memory: every count, index and size read from the shared memory
// is checked before it is used. An impossible one (count+nfree ≠ slots, an
// index past the slots, a message longer than a slot) rebuilds the heap
// from the slot states as after a death, drops the message concerned (for
// a size), counts it in Corrupt, and fails the call with ErrCorrupt.
type Heap struct {
	c      *heapControl
	heap   []uint32
	free   []uint32
	mem    []byte
	slots  int
	stride int
	max    int
	lifo   bool
	me     uint64
}

type heapControl struct {
	mu         psync.Mutex
	_          [40]byte
	notEmpty   atomic.Uint32
	getWaiters atomic.Uint32
	notFull    atomic.Uint32
	putWaiters atomic.Uint32
	closed     atomic.Uint32
	count      uint32 // messages in the heap; guarded by mu
	nfree      uint32 // entries of the free stack; guarded by mu
	_          uint32
	seq        uint64 // arrival counter; guarded by mu
	Corrupt    atomic.Uint64
	_          [16]byte
}

type heapSlot struct {
	full atomic.Uint32
	size uint32
	prio int64
	seq  uint64
	_    uint64
}

const heapSlotHeader = 32

func heapArrays(slots int) int { return (8*slots + line - 1) / line * line }

// HeapSize returns the bytes a heap of slots messages of maxMsg bytes
// needs.
func HeapSize(slots, maxMsg int) int {
	return 128 + heapArrays(slots) + slots*heapStride(maxMsg)
}

func heapStride(maxMsg int) int { return (heapSlotHeader + maxMsg + line - 1) / line * line }

// InitHeap initialises zeroed memory for a heap.
func InitHeap(mem []byte, slots, maxMsg int) error {
	h, err := viewHeap(mem, slots, maxMsg, false, 0)
	if err != nil {
		return err
	}
	for i := range h.free {
		h.free[i] = uint32(i)
	}
	h.c.nfree = uint32(slots)
	return nil
}

// AttachHeap returns the view of the heap in mem for the process me.
func AttachHeap(mem []byte, slots, maxMsg int, lifo bool, me uint64) (*Heap, error) {
	return viewHeap(mem, slots, maxMsg, lifo, me)
}

func viewHeap(mem []byte, slots, maxMsg int, lifo bool, me uint64) (*Heap, error) {
	if slots < 1 || maxMsg < 1 || slots > 1<<24 || maxMsg > 1<<30 {
		return nil, fmt.Errorf("heap of %d slots of %d bytes out of range", slots, maxMsg)
	}
	if len(mem) < HeapSize(slots, maxMsg) || uintptr(unsafe.Pointer(&mem[0]))%line != 0 {
		return nil, fmt.Errorf("heap of %d slots of %d bytes does not fit %d bytes", slots, maxMsg, len(mem))
	}
	arr := unsafe.Slice((*uint32)(unsafe.Pointer(&mem[128])), 2*slots)
	return &Heap{c: (*heapControl)(unsafe.Pointer(&mem[0])), heap: arr[:slots:slots], free: arr[slots:],
		mem: mem[128+heapArrays(slots):], slots: slots, stride: heapStride(maxMsg), max: maxMsg, lifo: lifo, me: me}, nil
}

// corruptHeap is panicked, and recovered by the operation, when an index
// read from shared memory is out of range.
type corruptHeap struct{}

func (h *Heap) slot(i uint32) (*heapSlot, []byte) {
	if i >= uint32(h.slots) {
		panic(corruptHeap{})
	}
	off := int(i) * h.stride
	return (*heapSlot)(unsafe.Pointer(&h.mem[off])), h.mem[off+heapSlotHeader : off+h.stride]
}

// lock takes the mutex, rebuilding after a holder's death or when the
// counts are impossible.
func (h *Heap) lock(ctx context.Context) error {
	err := h.c.mu.Lock(ctx, h.me)
	if err == psync.ErrOwnerDead {
		h.rebuild()
		h.c.mu.MarkConsistent(h.me)
		return nil
	}
	if err == nil && uint64(h.c.count)+uint64(h.c.nfree) != uint64(h.slots) {
		h.rebuild()
		h.c.Corrupt.Add(1)
	}
	return err
}

func (h *Heap) unlock() { h.c.mu.Unlock(h.me) }

// unlockRecover unlocks the mutex at the end of an operation. If the
// operation panicked half-way, it rebuilds the heap first: an index out
// of range sets *err to ErrCorrupt, any other panic (a caller's fill or
// read) goes on.
func (h *Heap) unlockRecover(err *error) {
	r := recover()
	if r == nil {
		h.unlock()
		return
	}
	h.rebuild()
	h.unlock()
	if _, ok := r.(corruptHeap); !ok {
		panic(r)
	}
	h.c.Corrupt.Add(1)
	*err = ErrCorrupt
}

// rebuild makes the heap and the free stack agree with the slot states.
func (h *Heap) rebuild() {
	h.c.count, h.c.nfree = 0, 0
	for i := range uint32(h.slots) {
		s, _ := h.slot(i)
		if s.full.Load() != 0 {
			h.push(i)
		} else {
			h.free[h.c.nfree] = i
			h.c.nfree++
		}
	}
}

func (h *Heap) less(a, b uint32) bool {
	sa, _ := h.slot(a)
	sb, _ := h.slot(b)
	if h.lifo {
		return sa.seq > sb.seq
	}
	return sa.prio < sb.prio || sa.prio == sb.prio && sa.seq < sb.seq
}

func (h *Heap) push(i uint32) {
	k := h.c.count
	h.heap[k] = i
	h.c.count++
	for k > 0 {
		p := (k - 1) / 2
		if !h.less(h.heap[k], h.heap[p]) {
			break
		}
		h.heap[k], h.heap[p] = h.heap[p], h.heap[k]
		k = p
	}
}

func (h *Heap) pop() uint32 {
	top := h.heap[0]
	h.c.count--
	n := h.c.count
	h.heap[0] = h.heap[n]
	for k := uint32(0); ; {
		l, r, m := 2*k+1, 2*k+2, k
		if l < n && h.less(h.heap[l], h.heap[m]) {
			m = l
		}
		if r < n && h.less(h.heap[r], h.heap[m]) {
			m = r
		}
		if m == k {
			break
		}
		h.heap[k], h.heap[m] = h.heap[m], h.heap[k]
		k = m
	}
	return top
}

// TryPut adds a message of n bytes, written by fill, with priority prio.
func (h *Heap) TryPut(n int, fill func([]byte), prio int64) error {
	if n > h.max {
		return fmt.Errorf("message of %d bytes exceeds the maximum of %d", n, h.max)
	}
	if err := h.lock(context.Background()); err != nil {
		return err
	}
	if err := h.tryPut(n, fill, prio); err != nil {
		return err
	}
	h.wake(&h.c.notEmpty, &h.c.getWaiters)
	return nil
}

// tryPut is TryPut's step under the mutex, which it releases.
func (h *Heap) tryPut(n int, fill func([]byte), prio int64) (err error) {
	defer h.unlockRecover(&err)
	if h.c.closed.Load() != 0 {
		return ErrClosed
	}
	if h.c.nfree == 0 {
		return ErrFull
	}
	i := h.free[h.c.nfree-1]
	s, data := h.slot(i)
	h.c.nfree--
	s.size, s.prio, s.seq = uint32(n), prio, h.c.seq
	h.c.seq++
	fill(data[:n])
	s.full.Store(1) // the commit point
	h.push(i)
	return nil
}

// TryGet removes the first message and calls read with it in place.
func (h *Heap) TryGet(read func([]byte, int64)) error {
	if err := h.lock(context.Background()); err != nil {
		return err
	}
	err := h.tryGet(read)
	if err == nil || err == ErrCorrupt { // a slot was freed
		h.wake(&h.c.notFull, &h.c.putWaiters)
	}
	return err
}

// tryGet is TryGet's step under the mutex, which it releases.
func (h *Heap) tryGet(read func([]byte, int64)) (err error) {
	defer h.unlockRecover(&err)
	if h.c.count == 0 {
		if h.c.closed.Load() != 0 {
			return ErrClosed
		}
		return ErrEmpty
	}
	i := h.pop()
	s, data := h.slot(i)
	if s.size <= uint32(h.max) {
		read(data[:s.size], s.prio)
	} else {
		h.c.Corrupt.Add(1) // dropped: freed below
		err = ErrCorrupt
	}
	s.full.Store(0) // the commit point
	h.free[h.c.nfree] = i
	h.c.nfree++
	return err
}

func (h *Heap) wake(word, waiters *atomic.Uint32) {
	if waiters.Load() != 0 {
		word.Add(1)
		futex.Wake(futex.Addr(word), 1)
	}
}

// Put is TryPut that waits while the heap is full.
func (h *Heap) Put(ctx context.Context, n int, fill func([]byte), prio int64) error {
	return h.block(ctx, &h.c.notFull, &h.c.putWaiters, ErrFull, func() error { return h.TryPut(n, fill, prio) })
}

// Get is TryGet that waits while the heap is empty.
func (h *Heap) Get(ctx context.Context, read func([]byte, int64)) error {
	return h.block(ctx, &h.c.notEmpty, &h.c.getWaiters, ErrEmpty, func() error { return h.TryGet(read) })
}

// block calls try until it does not return busy, sleeping on word in
// between. A wake-up goes to one sleeper, which may die before it uses
// it: so sleepers sleep a slice at a time (backing off to 8 slices while
// nothing happens, futex.IdleSlices) and try again when it ends, and a
// message (or a free slot) that a dead process was woken for is taken by
// another within 200 ms.
func (h *Heap) block(ctx context.Context, word, waiters *atomic.Uint32, busy error, try func() error) error {
	for idle := 0; ; {
		if err := try(); err != busy {
			return err
		}
		seq := word.Load()
		waiters.Add(1)
		if err := try(); err != busy {
			waiters.Add(^uint32(0))
			return err
		}
		err := futex.WaitSlices(ctx, futex.Addr(word), seq, futex.IdleSlices(idle))
		waiters.Add(^uint32(0))
		if err == futex.ErrSliceOver {
			idle++
		} else {
			idle = 0
		}
		if err != nil && err != futex.ErrSliceOver {
			h.wake(word, waiters) // pass on a wake-up this waiter may have taken
			return err
		}
	}
}

// Close closes the heap: puts fail, gets drain it and then fail.
func (h *Heap) Close() {
	h.c.closed.Store(1)
	h.c.notEmpty.Add(1)
	h.c.notFull.Add(1)
	wakeAll(&h.c.notEmpty)
	wakeAll(&h.c.notFull)
}

// Closed reports whether the heap is closed.
func (h *Heap) Closed() bool { return h.c.closed.Load() != 0 }

// Len returns the number of messages.
func (h *Heap) Len() int {
	if h.lock(context.Background()) != nil {
		return 0
	}
	defer h.unlock()
	return int(h.c.count)
}

// Cap returns the number of slots; Max the largest message.
func (h *Heap) Cap() int { return h.slots }
func (h *Heap) Max() int { return h.max }

func init() {
	if unsafe.Sizeof(heapControl{}) != 128 || unsafe.Sizeof(heapSlot{}) != heapSlotHeader {
		panic("mproc: heap layout changed")
	}
}
