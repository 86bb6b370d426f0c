// Package ring is mproc's queue ring: a bounded multi-producer
// multi-consumer FIFO of variable-size messages in one block of shared
// memory, that survives any of its users dying at any instruction.
//
// # Layout
//
//	[0]    head: the next position to read     (own cache line)
//	[64]   tail: the next position to write    (own cache line)
//	[128]  futex words, waiter counts, closed flag, statistics
//	[256]  records: NRecords process tokens
//	[...]  slots: Cap slots of SlotStride bytes: state, length, message
//	[...]  put marks: Cap words (whole cache lines), then get marks: Cap words
//
// Positions count up forever; position p lives in slot p % Cap, in lap
// p / Cap. Each slot has a 64-bit state word, the lap it belongs to and a
// kind:
//
//	Free(lap)          empty, for position lap*Cap+i to be written
//	Written(lap)       holds a message for position lap*Cap+i
//	Skipped(lap)       holds nothing: its producer died or saw the close
//
// Beside each slot, away from its cache lines, are two claim marks: the
// lap and the record index of the producer that last claimed the slot,
// and of the consumer that last claimed it. A producer at tail that finds
// the slot Free(lap) claims it by a compare-and-swap of the put mark to
// (lap, r), then moves tail past it (anyone who finds the mark already at
// lap helps move tail, so a producer that dies between the two steps
// stalls no one). It copies the message in and publishes it with a store
// of Written(lap). A consumer claims Written(lap) at head the same way,
// with the get mark, copies the message out, and frees the slot for the
// next lap with a store of Free(lap+1). The marks are exclusive per
// position (laps only grow), nobody writes a slot it has not claimed, so
// a message is never torn, and a message is handed to one consumer only.
//
// The marks are apart from the state words so that a claim does not
// touch the line the other side polls: in lock-step the consumer reads
// the state of the very slot the producer is filling, and a claim written
// there (as an earlier layout did) made that line travel twice per
// message.
//
// # Dead processes
//
// Every process that uses the ring first takes a record: its owner token
// (pid and start time). A slot still Free(lap) whose put mark says lap is
// claimed and not yet written: if the claimant's process is dead, the
// consumer that waits at it turns it into Skipped. A slot still holding
// lap's message whose get mark says lap is being read: if the claimant's
// process is dead, the producer that needs it a lap later frees it (and
// counts the message as abandoned: it is lost, never delivered twice).
// Liveness is checked only when a waiter has waited a slice (futex wait
// slices of 25 ms), and only for a claim that blocks it: a live but slow
// or stopped process is waited for, never robbed. A dead process's
// record is reused only after every claim that names it has been
// repaired.
package ring

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"

	"mproc/internal/failpoint"

	"mproc/internal/futex"
	"mproc/internal/psync"
)

// Errors. The root package maps them to its own.
var (
	ErrFull    = errors.New("ring full")
	ErrEmpty   = errors.New("ring empty")
	ErrClosed  = errors.New("ring closed")
	ErrRecords = errors.New("every process record of the queue is taken by a live process")
	// ErrCorrupt: a value read from the shared memory is impossible (a
	// message longer than a slot, a record index past the table). The
	// message concerned is dropped and counted in Corrupt.
	ErrCorrupt = errors.New("ring memory corrupt")
)

const (
	// NRecords is how many processes can use one ring at once.
	NRecords = 255
	// HeaderSize is the bytes before the slots.
	HeaderSize = 256 + NRecords*8 + 8
	// slotHeader is the bytes of a slot before its message.
	slotHeader = 16
	line       = 64
)

// Slot kinds.
const (
	kFree uint64 = iota
	kWritten
	kSkipped
)

// Failpoints (package failpoint): the steps where a process may die with a
// slot half-changed, for the torture tests. A producer that dies at one
// of the first two never returned from Put: its message is skipped (a
// survivor repairs the slot). A consumer that dies at one of the last two
// took the message with it: at most once, by design.
const (
	FailPutClaimed   = "ring.put.claimed"   // put mark (lap, rec), tail not yet moved
	FailPutFilled    = "ring.put.filled"    // message copied in, slot not yet Written
	FailPutPublished = "ring.put.published" // slot Written, getters not yet woken
	FailGetClaimed   = "ring.get.claimed"   // get mark (lap, rec), head not yet moved
	FailGetRead      = "ring.get.read"      // message copied out, slot not yet freed
)

func state(lap, kind uint64) uint64 { return lap<<8 | kind }
func lapOf(st uint64) uint64        { return st >> 8 }
func kindOf(st uint64) uint64       { return st & 0xff }

// A claim mark is (lap+1)<<8 | record index, so that zero memory is no
// claim at all.
func mark(lap, rec uint64) uint64 { return (lap+1)<<8 | rec }

// claimedIn reports whether mark m claims its slot in lap.
func claimedIn(m, lap uint64) bool { return m>>8 == lap+1 }

// open reports whether the claim of mark m still holds its slot, whose
// state is st: a put mark's slot still Free in the mark's lap (claimed,
// not yet written), a get mark's slot still holding that lap's message
// (claimed, not yet freed).
func open(m, st uint64, get bool) bool {
	return claimedIn(m, lapOf(st)) && (kindOf(st) != kFree) == get
}

// before reports whether mark m is from a lap before lap (or none): the
// only mark a claim in lap may replace. A try that loaded a slot's state
// and then its mark may find a mark of a later lap (the slot went round
// meanwhile), which it must not take back.
func before(m, lap uint64) bool { return m>>8 <= lap }

func markRec(m uint64) uint64 { return m & 0xff }

// control is the ring's fixed header.
type control struct {
	head       atomic.Uint64
	_          [line - 8]byte
	tail       atomic.Uint64
	_          [line - 8]byte
	notEmpty   atomic.Uint32 // futex word bumped when a message is published
	getWaiters atomic.Uint32
	notFull    atomic.Uint32 // futex word bumped when a slot is freed
	putWaiters atomic.Uint32
	closed     atomic.Uint32
	_          uint32
	Skipped    atomic.Uint64 // slots of dead producers skipped
	Abandoned  atomic.Uint64 // messages of dead consumers dropped
	Corrupt    atomic.Uint64 // messages dropped for an impossible size
	_          [line - 48]byte
	_          [line]byte
	records    [NRecords]atomic.Uint64
	_          uint64
}

type slot struct {
	state atomic.Uint64
	size  uint32
	_     uint32
}

// Ring is a process's view of a ring in memory.
type Ring struct {
	c      *control
	mem    []byte
	cap    uint64
	stride int
	max    int
	rec    uint64 // this process's record index
	taken  Taker  // told of each message got, before its slot is freed; may be nil
	// putMarks[i] and getMarks[i] are slot i's claim marks.
	putMarks, getMarks []atomic.Uint64

	// A lazy ring's (AllocateWith): alloc takes memory, and ext[i] is how
	// many bytes from the start of slot i this process knows have it.
	alloc func(off, n int) error
	ext   []atomic.Uint32
}

// Taker is told of each message a Get copies out, before the ring frees
// its slot: a JoinableQueue counts it (psync.Tasks) so that the message
// is counted in the ring or by the Taker at every instant.
type Taker interface{ Take() }

// CountTaken makes r tell t of each message this process gets.
func (r *Ring) CountTaken(t Taker) { r.taken = t }

// A ring whose slots are lazyStride bytes or more is lazy: only its header
// and the first page of each slot have memory when it is created
// (EagerRanges) — the pages every process reads and writes whatever the
// message — and a producer takes what a longer message needs before it
// claims a slot (AllocateWith). A queue of a few large slots that carries
// small messages thus costs a page per slot, not its full size, while a
// full /dev/shm still fails a put (ENOSPC) instead of faulting: nothing is
// written, or read, where there is no memory. Smaller slots are taken
// whole at creation.
const (
	lazyStride = 16 << 10
	page       = 4096
)

// lazy reports whether a ring of slots of stride bytes is lazy.
func lazy(stride int) bool { return stride >= lazyStride }

// EagerRanges returns the ranges (offset, length) of the memory of a ring
// of capacity slots of maxMsg bytes that must have memory before it is
// used, nil for all of it.
func EagerRanges(capacity, maxMsg int) [][2]int {
	stride := SlotStride(maxMsg)
	if !lazy(stride) {
		return nil
	}
	rs := make([][2]int, 0, capacity+2)
	rs = append(rs, [2]int{0, HeaderSize})
	for i := range capacity {
		rs = append(rs, [2]int{HeaderSize + i*stride, page})
	}
	return append(rs, [2]int{HeaderSize + capacity*stride, 2 * marksSize(capacity)})
}

// AllocateWith makes r take the memory of its slots with alloc (an offset
// and a length in r's memory) as messages need it, if r is lazy (see
// EagerRanges); otherwise it does nothing.
func (r *Ring) AllocateWith(alloc func(off, n int) error) {
	if !lazy(r.stride) {
		return
	}
	r.alloc = alloc
	r.ext = make([]atomic.Uint32, r.cap)
	for i := range r.ext {
		r.ext[i].Store(page)
	}
}

// grow takes the memory slot i needs for a message of n bytes: at least
// twice what this process knew it had, so that growing messages cost few
// system calls.
func (r *Ring) grow(i uint64, n int) error {
	want := min(max(slotHeader+n, 2*int(r.ext[i].Load())), r.stride)
	if err := r.alloc(HeaderSize+int(i)*r.stride, want); err != nil {
		return fmt.Errorf("memory for a message of %d bytes: %w", n, err)
	}
	r.ext[i].Store(uint32(want))
	return nil
}

// SlotStride returns the bytes per slot for messages of up to maxMsg bytes.
func SlotStride(maxMsg int) int { return (slotHeader + maxMsg + line - 1) / line * line }

// marksSize returns the bytes of one of the two arrays of claim marks:
// whole cache lines, so that producers' marks and consumers' marks never
// share one.
func marksSize(capacity int) int { return (capacity*8 + line - 1) / line * line }

// Size returns the bytes a ring of capacity slots of maxMsg bytes needs.
func Size(capacity, maxMsg int) int {
	return HeaderSize + capacity*SlotStride(maxMsg) + 2*marksSize(capacity)
}

// Init initialises mem, which must be zeroed, for a ring.
func Init(mem []byte, capacity, maxMsg int) error {
	if err := check(mem, capacity, maxMsg); err != nil {
		return err
	}
	// Zero memory is head = tail = 0, every slot Free(0) and no claim
	// marks: ready.
	return nil
}

func check(mem []byte, capacity, maxMsg int) error {
	if capacity < 1 || maxMsg < 1 || capacity > 1<<30 || maxMsg > 1<<30 {
		return fmt.Errorf("ring of %d slots of %d bytes out of range", capacity, maxMsg)
	}
	if len(mem) < Size(capacity, maxMsg) {
		return fmt.Errorf("ring of %d slots of %d bytes needs %d bytes, has %d", capacity, maxMsg, Size(capacity, maxMsg), len(mem))
	}
	if uintptr(unsafe.Pointer(&mem[0]))%line != 0 {
		return errors.New("ring memory not aligned to a cache line")
	}
	return nil
}

// Attach returns a view of the ring in mem for the process with token me,
// taking a process record for it.
func Attach(mem []byte, capacity, maxMsg int, me uint64) (*Ring, error) {
	if err := check(mem, capacity, maxMsg); err != nil {
		return nil, err
	}
	r := view(mem, capacity, maxMsg)
	rec, err := r.register(me)
	if err != nil {
		return nil, err
	}
	r.rec = rec
	return r, nil
}

// view returns a Ring over mem, which check has accepted, with no record.
func view(mem []byte, capacity, maxMsg int) *Ring {
	r := &Ring{c: (*control)(unsafe.Pointer(&mem[0])), mem: mem, cap: uint64(capacity),
		stride: SlotStride(maxMsg), max: maxMsg}
	off := HeaderSize + capacity*r.stride
	r.putMarks = unsafe.Slice((*atomic.Uint64)(unsafe.Pointer(&mem[off])), capacity)
	r.getMarks = unsafe.Slice((*atomic.Uint64)(unsafe.Pointer(&mem[off+marksSize(capacity)])), capacity)
	return r
}

func (r *Ring) slot(pos uint64) (*slot, []byte) {
	off := HeaderSize + int(pos%r.cap)*r.stride
	s := (*slot)(unsafe.Pointer(&r.mem[off]))
	return s, r.mem[off+slotHeader : off+r.stride]
}

// register finds this process's record or takes a free one, repairing the
// claims of a dead process before taking its record.
func (r *Ring) register(me uint64) (uint64, error) {
	recs := &r.c.records
	for i := range recs {
		if recs[i].Load() == me {
			return uint64(i), nil
		}
	}
	for i := range recs {
		if recs[i].CompareAndSwap(0, me) {
			return uint64(i), nil
		}
	}
	for i := range recs {
		if t := recs[i].Load(); t != 0 && !psync.Alive(t) {
			r.repairAll(uint64(i))
			if recs[i].CompareAndSwap(t, me) {
				return uint64(i), nil
			}
		}
	}
	return 0, ErrRecords
}

// repairAll repairs every claim that the dead record rec still holds.
func (r *Ring) repairAll(rec uint64) {
	for i := range r.cap {
		s, _ := r.slot(i)
		st := s.state.Load()
		if m := r.putMarks[i].Load(); markRec(m) == rec && open(m, st, false) {
			r.repair(s, st, false)
		}
		if m := r.getMarks[i].Load(); markRec(m) == rec && open(m, st, true) {
			r.repair(s, st, true)
		}
	}
}

// repair moves a slot away from a dead process's claim: a put claim's
// Free(lap) becomes Skipped(lap), a get claim's message is dropped and the
// slot becomes Free(lap+1). It reports true: the state changed, by this
// call or another.
func (r *Ring) repair(s *slot, st uint64, get bool) bool {
	if !get {
		if s.state.CompareAndSwap(st, state(lapOf(st), kSkipped)) {
			r.c.Skipped.Add(1)
			r.wakeGetters()
		}
		return true
	}
	if s.state.CompareAndSwap(st, state(lapOf(st)+1, kFree)) {
		if kindOf(st) == kWritten {
			r.c.Abandoned.Add(1)
		}
		r.wakePutters()
	}
	return true
}

// Attempt is the outcome of a try: Err is nil when it succeeded;
// otherwise it says why not and, when a process's claim is in the way,
// which slot state to check for death after waiting (RepairIfDead).
type Attempt struct {
	Err error // ErrFull, ErrEmpty, ErrClosed
	blocker
}

// blocker is the slot that kept a try from succeeding and the claim that
// may hold it. The tries inside the ring return their error alone and
// write the blocker through a pointer when they fail: an Attempt returned
// by value was copied through the stack at every call, and on the success
// path that copy (the result spilled as words and reloaded as 16-byte
// moves, which the CPU cannot forward from the stores) added 13 ns to an
// uncontended put and get.
type blocker struct {
	s     *slot  // the slot in the way, nil when no claim can be
	state uint64 // its state
	// m is the mark of the claim that may hold the slot: a producer's
	// while it is Free(lap), a consumer's while it holds lap's message.
	// It is read only when a waiter needs it, not by the try: the mark's
	// line is the claimant's, and a read by every failed try would make
	// the next claim there fetch it back.
	m   *atomic.Uint64
	get bool // m is a get mark
}

// claim returns the mark of the claim in the way, if there is one.
func (b blocker) claim() (uint64, bool) {
	if b.s == nil {
		return 0, false
	}
	m := b.m.Load()
	return m, open(m, b.state, b.get)
}

// TryPut copies msg into the ring. It returns ErrFull, ErrClosed, or an
// error for an oversized message.
func (r *Ring) TryPut(msg []byte) Attempt { return r.tryPutRepair(len(msg), msg, nil) }

// TryPutFunc claims a slot for a message of n bytes and calls fill to
// write it in place.
func (r *Ring) TryPutFunc(n int, fill func([]byte)) Attempt { return r.tryPutRepair(n, nil, fill) }

// tryPutRepair is tryPut that, when a dead consumer's claim is what makes
// the ring look full, repairs the slot and tries once more: a caller that
// only ever tries would otherwise find it full for good (the waiting Put
// repairs after a sleep slice).
func (r *Ring) tryPutRepair(n int, msg []byte, fill func([]byte)) Attempt {
	var b Attempt
	b.Err = r.tryPut(nil, n, msg, fill, &b.blocker)
	if b.Err == ErrFull && r.repairIfDead(b.blocker) {
		b.Err = r.tryPut(nil, n, msg, fill, &b.blocker)
	}
	return b
}

// tryPut writes msg, or n bytes by fill when fill is not nil. When it
// returns ErrFull it sets *blk to what is in the way.
func (r *Ring) tryPut(ctx context.Context, n int, msg []byte, fill func([]byte), blk *blocker) error {
	if n > r.max {
		return fmt.Errorf("message of %d bytes exceeds the maximum of %d", n, r.max)
	}
	if r.c.closed.Load() != 0 {
		return ErrClosed
	}
	// A fill that panics leaves its slot claimed: filling names it, and
	// the deferred call publishes it as Skipped before the panic goes on,
	// so a live process's failed put stalls nobody. The guard runs after
	// the publish, not between the claim and the publish (a wrapper with
	// its own defer around fill made that window long enough for a
	// polling consumer to take the slot's line back: PutFunc 9 instead of
	// 13-14 M msgs/s across processes).
	var filling *slot
	if fill != nil {
		defer func() {
			if filling != nil {
				filling.state.Store(state(lapOf(filling.state.Load()), kSkipped))
				r.wakeGetters()
			}
		}()
	}
	c := r.c
	for {
		pos := c.tail.Load()
		s, data := r.slot(pos)
		i, lap := pos%r.cap, pos/r.cap
		st := s.state.Load()
		switch {
		case st == state(lap, kFree):
			m := r.putMarks[i].Load()
			if !before(m, lap) {
				// Claimed by another (help tail on), or pos is stale: the
				// slot went through lap since it was loaded.
				c.tail.CompareAndSwap(pos, pos+1)
				continue
			}
			if r.ext != nil && uint32(slotHeader+n) > r.ext[i].Load() {
				if err := r.grow(i, n); err != nil {
					return err
				}
				continue
			}
			if !r.putMarks[i].CompareAndSwap(m, mark(lap, r.rec)) {
				continue
			}
			failpoint.Hit(FailPutClaimed)
			c.tail.CompareAndSwap(pos, pos+1)
			if c.closed.Load() != 0 {
				s.state.Store(state(lap, kSkipped))
				r.wakeGetters()
				return ErrClosed
			}
			s.size = uint32(n)
			if fill != nil {
				filling = s
				fill(data[:n])
				filling = nil
			} else {
				copy(data, msg)
			}
			failpoint.Hit(FailPutFilled)
			s.state.Store(state(lap, kWritten))
			failpoint.Hit(FailPutPublished)
			if r.c.getWaiters.Load() != 0 && (ctx == nil || ctx.Value(noWakeKey{}) == nil) {
				r.wakeGetters()
			}
			return nil
		case lapOf(st) == lap:
			// Published or skipped: tail moved on, or lags behind a
			// position skipped since its producer died: help it on.
			c.tail.CompareAndSwap(pos, pos+1)
		case lapOf(st) < lap:
			// The slot still holds the previous lap: full, unless tail moved.
			if c.tail.Load() != pos {
				continue
			}
			if kindOf(st) != kFree {
				// Its message may be being read by a consumer.
				*blk = blocker{s: s, state: st, m: &r.getMarks[i], get: true}
				return ErrFull
			}
			*blk = blocker{}
			return ErrFull
		default:
			// A later lap: pos is stale. That slot is one lap ahead; more
			// while tail is still pos is impossible, and helping on would
			// take forever.
			if lapOf(st) > lap+1 && c.tail.Load() == pos {
				return ErrCorrupt
			}
			c.tail.CompareAndSwap(pos, pos+1)
		}
	}
}

// TryGet claims the next message and calls read with it in place (valid
// only during the call). It returns ErrEmpty, or ErrClosed once the ring
// is closed and drained.
func (r *Ring) TryGet(read func([]byte)) Attempt {
	_, b := r.tryGetRepair(nil, read)
	return b
}

// TryGetAppend claims the next message and appends it to dst.
func (r *Ring) TryGetAppend(dst []byte) ([]byte, Attempt) { return r.tryGetRepair(dst, nil) }

// tryGetRepair is tryGet that, when a dead producer's claim is what makes
// the ring look empty, repairs the slot and tries once more, as
// tryPutRepair does.
func (r *Ring) tryGetRepair(dst []byte, read func([]byte)) ([]byte, Attempt) {
	var b Attempt
	out, err := r.tryGet(dst, read, &b.blocker)
	if err == ErrEmpty && r.repairIfDead(b.blocker) {
		out, err = r.tryGet(dst, read, &b.blocker)
	}
	b.Err = err
	return out, b
}

// tryGet calls read with the message, or appends it to dst if read is nil.
// When it returns ErrEmpty it sets *blk to what is in the way.
func (r *Ring) tryGet(dst []byte, read func([]byte), blk *blocker) ([]byte, error) {
	// A read that panics loses its message: the deferred call frees the
	// slot before the panic goes on (after the get, as tryPut's guard).
	var reading *slot
	if read != nil {
		defer func() {
			if reading != nil {
				reading.state.Store(state(lapOf(reading.state.Load())+1, kFree))
				r.wakePutters()
			}
		}()
	}
	c := r.c
	for {
		pos := c.head.Load()
		s, data := r.slot(pos)
		i, lap := pos%r.cap, pos/r.cap
		st := s.state.Load()
		switch {
		case st == state(lap, kWritten) || st == state(lap, kSkipped):
			m := r.getMarks[i].Load()
			if !before(m, lap) {
				c.head.CompareAndSwap(pos, pos+1) // claimed by another, or stale
				continue
			}
			if !r.getMarks[i].CompareAndSwap(m, mark(lap, r.rec)) {
				continue
			}
			failpoint.Hit(FailGetClaimed)
			c.head.CompareAndSwap(pos, pos+1)
			if kindOf(st) == kWritten && s.size > uint32(r.max) {
				// Every bound the ring uses is checked before use: a size
				// no producer can have written drops its message.
				c.Corrupt.Add(1)
				s.state.Store(state(lap+1, kFree))
				r.wakePutters()
				return dst, ErrCorrupt
			}
			if kindOf(st) == kWritten {
				if read != nil {
					reading = s
					read(data[:s.size])
					reading = nil
				} else {
					dst = append(dst, data[:s.size]...)
				}
				if r.taken != nil {
					r.taken.Take()
				}
			}
			failpoint.Hit(FailGetRead)
			s.state.Store(state(lap+1, kFree))
			r.wakePutters()
			if kindOf(st) == kWritten {
				return dst, nil
			}
		case st == state(lap, kFree) || lapOf(st) < lap:
			// Nothing published for pos yet: a producer may be writing it
			// (its mark says so), or none has come; a slot still in an
			// earlier lap is being read a lap before.
			if c.head.Load() != pos {
				continue
			}
			if c.closed.Load() != 0 && c.tail.Load() <= pos {
				return dst, ErrClosed
			}
			if st == state(lap, kFree) {
				// A producer may have claimed it.
				*blk = blocker{s: s, state: st, m: &r.putMarks[i]}
				return dst, ErrEmpty
			}
			*blk = blocker{}
			return dst, ErrEmpty
		default:
			// A later lap: pos is stale, or head lags behind a position whose
			// consumer died before moving head and whose slot was freed since:
			// help it on. (More than one lap ahead while head is still pos
			// is impossible, as for tail.)
			if lapOf(st) > lap+1 && c.head.Load() == pos {
				return dst, ErrCorrupt
			}
			c.head.CompareAndSwap(pos, pos+1)
		}
	}
}

// RepairIfDead checks the process whose claim blocked a try and repairs
// its slot if it is dead. It reports whether it did (or found it done).
func (r *Ring) RepairIfDead(b Attempt) bool { return r.repairIfDead(b.blocker) }

func (r *Ring) repairIfDead(b blocker) bool {
	if b.s == nil {
		return false
	}
	// While the slot keeps its state the mark keeps its claim: a mark
	// changes only with a claim of a later lap.
	if b.s.state.Load() != b.state {
		return true // moved on meanwhile
	}
	m, ok := b.claim()
	if !ok {
		return false // nobody's claim: a plain wait
	}
	if tok := r.owner(m); tok != 0 && psync.Alive(tok) {
		return false
	}
	return r.repair(b.s, b.state, b.get)
}

// owner returns the token of the process whose record mark m names, 0
// for a record index past the table (no process has one).
func (r *Ring) owner(m uint64) uint64 {
	if rec := markRec(m); rec < NRecords {
		return r.c.records[rec].Load()
	}
	return 0
}

// Close marks the ring closed and wakes every waiter.
func (r *Ring) Close() {
	r.c.closed.Store(1)
	r.c.notEmpty.Add(1)
	r.c.notFull.Add(1)
	wakeAll(&r.c.notEmpty)
	wakeAll(&r.c.notFull)
}

// Closed reports whether the ring is closed.
func (r *Ring) Closed() bool { return r.c.closed.Load() != 0 }

// Len returns the number of messages in the ring, including ones being
// written or read.
func (r *Ring) Len() int {
	h, t := r.c.head.Load(), r.c.tail.Load()
	if t < h {
		return 0
	}
	return int(min(t-h, r.cap))
}

// Pending counts the messages published and not yet got: slots Written,
// including those a live consumer is reading, which it reports in
// claimed. A dead consumer's claim is repaired (its message abandoned)
// and not counted. It reads every slot: for a JoinableQueue's Join, not
// a hot path.
func (r *Ring) Pending() (n int, claimed bool) {
	for i := range r.cap {
		s, _ := r.slot(i)
		st := s.state.Load()
		if kindOf(st) != kWritten {
			continue
		}
		b := blocker{s: s, state: st, m: &r.getMarks[i], get: true}
		if _, ok := b.claim(); ok {
			if r.repairIfDead(b) {
				continue
			}
			claimed = true
		}
		n++
	}
	return n, claimed
}

// Cap returns the capacity.
func (r *Ring) Cap() int { return int(r.cap) }

// Max returns the largest message.
func (r *Ring) Max() int { return r.max }

// Stats returns the counts of skipped, abandoned and corrupt slots.
func (r *Ring) Stats() (skipped, abandoned, corrupt uint64) {
	return r.c.Skipped.Load(), r.c.Abandoned.Load(), r.c.Corrupt.Load()
}

func (r *Ring) wakeGetters() {
	if r.c.getWaiters.Load() != 0 {
		r.c.notEmpty.Add(1)
		wakeOne(&r.c.notEmpty)
	}
}

func (r *Ring) wakePutters() {
	if r.c.putWaiters.Load() != 0 {
		r.c.notFull.Add(1)
		wakeOne(&r.c.notFull)
	}
}

func wakeOne(w *atomic.Uint32) { futex.Wake(futex.Addr(w), 1) }
func wakeAll(w *atomic.Uint32) { futex.WakeAll(futex.Addr(w)) }

func init() {
	if unsafe.Sizeof(control{}) != HeaderSize || unsafe.Sizeof(slot{}) != slotHeader {
		panic(fmt.Sprintf("mproc: ring layout: control %d bytes, slot %d", unsafe.Sizeof(control{}), unsafe.Sizeof(slot{})))
	}
}
