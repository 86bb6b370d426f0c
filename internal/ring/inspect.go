package ring

import (
	"fmt"
	"sync/atomic"
)

// Snapshots for inspection tools (mproc stat, ls and watch, through
// internal/shm's Inspect). They read the ring or the heap without
// attaching to it: no process record is taken and nothing is stored, so
// they work on a read-only mapping and are invisible to the ring's users.
// Each word is read atomically, but not all at one instant.

// RingState is a ring as its words show it.
type RingState struct {
	// Head and Tail are positions, which count up for ever: Tail is the
	// number of puts begun since the ring was created (skipped ones
	// included), Head the number of gets begun.
	Head, Tail uint64
	Cap, Max   int // slots and the largest message in bytes
	// GetWaiters and PutWaiters are the consumers and producers that may
	// be asleep waiting for a message or for room.
	GetWaiters, PutWaiters uint32
	Closed                 bool // shut down
	// Skipped, Abandoned and Corrupt are Stats.
	Skipped, Abandoned, Corrupt uint64
	// Records are the tokens of the processes that took a record (every
	// process that attached, until a dead one's record is reused), in
	// record order.
	Records []uint64
	// Writing and Reading are the tokens of the processes now inside a put
	// (claimed a slot, not yet published it) or a get (claimed a message,
	// not yet freed its slot), one entry per claim; 0 for a record index
	// past the table. A process that died there stays until its claim is
	// repaired.
	Writing, Reading []uint64
}

// Len is the number of messages, as Ring.Len counts it.
func (s RingState) Len() int {
	if s.Tail < s.Head {
		return 0
	}
	return int(min(s.Tail-s.Head, uint64(s.Cap)))
}

// Inspect reads the ring in mem, of capacity slots of maxMsg bytes.
func Inspect(mem []byte, capacity, maxMsg int) (RingState, error) {
	if err := check(mem, capacity, maxMsg); err != nil {
		return RingState{}, err
	}
	r := view(mem, capacity, maxMsg)
	c := r.c
	s := RingState{
		Head: c.head.Load(), Tail: c.tail.Load(), Cap: capacity, Max: maxMsg,
		GetWaiters: c.getWaiters.Load(), PutWaiters: c.putWaiters.Load(), Closed: c.closed.Load() != 0,
		Skipped: c.Skipped.Load(), Abandoned: c.Abandoned.Load(), Corrupt: c.Corrupt.Load(),
	}
	for i := range c.records {
		if t := c.records[i].Load(); t != 0 {
			s.Records = append(s.Records, t)
		}
	}
	// A claim is open while its slot is in the state the claim found:
	// Free(lap) for a put, lap's message for a get. Only the slots that
	// positions [0, tail] have reached can be claimed, and only they are
	// read: a slot never used may have pages never touched, and reading
	// them would make tmpfs allocate them.
	for i := range min(s.Tail+1, r.cap) {
		sl, _ := r.slot(i)
		st := sl.state.Load()
		if m := r.putMarks[i].Load(); open(m, st, false) {
			s.Writing = append(s.Writing, r.owner(m))
		}
		if m := r.getMarks[i].Load(); open(m, st, true) {
			s.Reading = append(s.Reading, r.owner(m))
		}
	}
	return s, nil
}

// HeapState is an ordered queue's heap as its words show it.
type HeapState struct {
	Len, Cap, Max int
	// Puts counts the messages put since the heap was created (its arrival
	// counter).
	Puts                   uint64
	Owner                  uint64 // token of the process inside a put or get (the heap's mutex); 0 if none
	LockWaiters            uint32 // processes waiting for the mutex
	GetWaiters, PutWaiters uint32
	Closed                 bool
	Corrupt                uint64
}

// InspectHeap reads the heap in mem, of slots messages of maxMsg bytes.
func InspectHeap(mem []byte, slots, maxMsg int) (HeapState, error) {
	h, err := viewHeap(mem, slots, maxMsg, false, 0)
	if err != nil {
		return HeapState{}, err
	}
	c := h.c
	mu := c.mu.State()
	n := int(atomic.LoadUint32(&c.count))
	if n > slots {
		return HeapState{}, fmt.Errorf("heap of %d slots holds %d messages: %w", slots, n, ErrCorrupt)
	}
	return HeapState{
		Len: n, Cap: slots, Max: maxMsg,
		Puts:  atomic.LoadUint64(&c.seq),
		Owner: mu.Owner, LockWaiters: mu.Waiters,
		GetWaiters: c.getWaiters.Load(), PutWaiters: c.putWaiters.Load(), Closed: c.closed.Load() != 0,
		Corrupt: c.Corrupt.Load(),
	}, nil
}
