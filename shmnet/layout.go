package shmnet

import (
	"fmt"
	"math/bits"
	"reflect"
	"structs"
	"sync/atomic"

	"mproc"
	"mproc/internal/shm"
)

// The shared layout, version 1.
//
// One connection is one anonymous segment (a memfd, sealed against resizing,
// no name anywhere): the standard mproc segment header (internal/shm: magic,
// version, kind KindSharedMemory, sizes, checksum; Param[0] = paramKind,
// Param[1] = the ring size R), then this data area:
//
//	data offset   size  contents
//	          0     64  header: Magic "mprocnet", Version, RingSize (= R),
//	                    Tokens[2] (packed owner tokens: [0] listener, [1] dialer)
//	         64    256  ctl[0]: control of ring 0, listener → dialer
//	        320    256  ctl[1]: control of ring 1, dialer → listener
//	        576          zero up to ringsOff
//	   ringsOff      R  ring 0's bytes (file offset 4096: page-aligned)
//	 ringsOff+R      R  ring 1's bytes
//
// Each ring is a single-producer single-consumer byte ring of R bytes, R a
// power of two. Its control block is four cache lines, one per writer and
// temperature, so that the two hot counters never share a line:
//
//	line 0  Tail      producer's hot line: bytes ever written
//	line 1  Head      consumer's hot line: bytes ever read
//	line 2  WClosed, WWaiting, DataSeq     the producer's cold words
//	line 3  RClosed, RWaiting, SpaceSeq    the consumer's cold words
//
// # Who writes which word
//
//   - Tail: only the producer, after it has copied the bytes of
//     [old Tail, new Tail) into the ring (a sequentially consistent store:
//     the bytes are visible before the new Tail is). Bytes in [Head, Tail),
//     at ring offsets taken modulo R, belong to the consumer; the rest of
//     the ring belongs to the producer.
//   - Head: only the consumer, after it has copied [old Head, new Head) out.
//     0 ≤ Tail − Head ≤ R always; a reader that sees otherwise reports
//     mproc.ErrCorrupt and never indexes outside the ring (offsets are
//     masked with a private copy of R − 1).
//   - WClosed: the producer stores 1 once it will write no more (Close,
//     CloseWrite), after its last Tail store: a consumer that sees WClosed
//     and then Tail == Head has read everything (io.EOF).
//   - RClosed: the consumer stores 1 once it will read no more (Close,
//     CloseRead); the producer's writes then fail with ErrBrokenPipe.
//   - RWaiting / WWaiting: the consumer (producer) stores 1 just before it
//     sleeps on DataSeq (SpaceSeq) and 0 when it wakes; the other side
//     clears it with a compare-and-swap 1 → 0 when it wakes the sleeper, so
//     that one sleep costs at most one FUTEX_WAKE.
//   - DataSeq / SpaceSeq: futex words that only ever count up. The consumer
//     sleeps on DataSeq, the producer on SpaceSeq. Anyone who changes what
//     a sleeper waits for adds 1 and wakes the word: the other side after
//     publishing bytes, space or a closed flag (only when the waiting flag
//     says someone sleeps: the fast path makes no system call), and the
//     sleeper's own process when it closes the connection or moves a
//     deadline.
//   - Tokens[0]: the listener, before it sends the descriptor. Tokens[1]:
//     the dialer, once it has validated the segment. Nobody writes them
//     again.
//
// # The waiting protocol
//
// A consumer that finds Tail == Head polls for futex.SpinFor (futex.SpinGo,
// yielding between polls), then loads DataSeq, stores RWaiting = 1, looks at
// Tail (and the flags) once more, and sleeps on DataSeq while it still
// holds the loaded value. A producer stores Tail and then loads RWaiting.
// Both pairs are sequentially consistent, so either the producer sees
// RWaiting = 1 (and bumps DataSeq, so the sleep cannot start, or is woken),
// or the consumer sees the new Tail. The producer's wait for space is the
// mirror image on Head, WWaiting and SpaceSeq.
//
// # A peer that dies
//
// Each side keeps the rendezvous socket open for the life of the
// connection, and a watcher goroutine waits on it in Go's poller (no
// thread, no CPU). The kernel hangs the socket up when the peer's process
// dies (or closes its end); the watcher then marks the peer gone and wakes
// this process's sleepers, so that waiting and later calls fail at once.
// As a backstop, a sleeper sleeps at most futex.Slice (25 ms) at a time and
// when a slice ends without a wake-up checks the peer's owner token
// (owner.Alive: pid and start time; used only when its pid is the one the
// kernel reported for the socket's peer, so a peer in another pid
// namespace is judged by the socket alone). A dead peer never leaves a
// word half-written that a survivor must repair: Tail and Head move only
// after the bytes they cover are complete, so the survivor delivers every
// byte published before the death, and then ErrPeerGone. Bytes a dying
// producer was copying, beyond its last Tail, are lost, and nothing else.
const (
	layoutMagic   = "mprocnet"
	layoutVersion = 1
	// paramKind marks a shmnet segment in the segment header's Param[0]
	// ("shmnet" as a little-endian integer).
	paramKind = 0x74656e6d6873
	line      = 64
	hdrOff    = 0
	ctlOff    = line
	ctlSize   = 4 * line
	ringsOff  = 4096 - shm.HeaderSize
)

// Ring sizes.
const (
	// DefaultRingSize is the bytes of each direction's ring when
	// Options.RingSize is 0.
	DefaultRingSize = 1 << 20
	// MinRingSize and MaxRingSize bound Options.RingSize, a power of two.
	MinRingSize = 4 << 10
	MaxRingSize = 1 << 30
)

// header is the first line of the data area. Written by the listener
// before the segment leaves it, except Tokens[1] (the dialer, once).
type header struct {
	_        structs.HostLayout
	Magic    [8]byte
	Version  uint32
	RingSize uint32
	Tokens   [2]atomic.Uint64
	_        [line - 32]byte
}

// ringCtl is one direction's control block; see the layout above for who
// writes which word.
type ringCtl struct {
	_ structs.HostLayout

	Tail atomic.Uint64 // producer
	_    [line - 8]byte

	Head atomic.Uint64 // consumer
	_    [line - 8]byte

	WClosed  atomic.Uint32 // producer
	WWaiting atomic.Uint32 // producer sets; consumer may clear
	DataSeq  atomic.Uint32 // futex word of the consumer's sleep
	_        [line - 12]byte

	RClosed  atomic.Uint32 // consumer
	RWaiting atomic.Uint32 // consumer sets; producer may clear
	SpaceSeq atomic.Uint32 // futex word of the producer's sleep
	_        [line - 12]byte
}

func init() {
	h, c := reflect.TypeFor[header](), reflect.TypeFor[ringCtl]()
	if h.Size() != line || c.Size() != ctlSize || ctlOff+2*ctlSize > ringsOff {
		panic(fmt.Sprintf("mproc: shmnet layout: header %d bytes, ring control %d", h.Size(), c.Size()))
	}
	for _, f := range []string{"Head", "WClosed", "RClosed"} {
		if sf, _ := c.FieldByName(f); sf.Offset%line != 0 {
			panic("mproc: shmnet layout: " + f + " does not start a cache line")
		}
	}
}

// dataSize is the data area of a segment with rings of r bytes.
func dataSize(r int) int { return ringsOff + 2*r }

// validRingSize reports whether r can be a ring's size.
func validRingSize(r uint64) bool {
	return r >= MinRingSize && r <= MaxRingSize && bits.OnesCount64(r) == 1
}

// view is a mapped segment's parts: the header, and for ring i its
// control block and bytes.
type view struct {
	hdr  *header
	ctl  [2]*ringCtl
	ring [2][]byte
}

// initSegment fills the data area of a new segment (zero memory: both
// rings empty and open) with the header of rings of r bytes, owned by the
// listener tok.
func initSegment(data []byte, r int, tok uint64) {
	h := shm.At[header](data, hdrOff)
	copy(h.Magic[:], layoutMagic)
	h.Version = layoutVersion
	h.RingSize = uint32(r)
	h.Tokens[0].Store(tok)
}

// mapView checks the data area of a segment the dialer received and
// returns its parts. Every check compares against what the segment header,
// covered by its checksum, says; nothing after it is trusted further than
// the ring offsets, which are masked.
func mapView(seg *shm.Segment) (view, error) {
	data := seg.Data()
	if seg.Param(0) != paramKind {
		return view{}, fmt.Errorf("segment parameter %#x, not a shmnet connection's: %w", seg.Param(0), mproc.ErrKind)
	}
	r := seg.Param(1)
	if !validRingSize(r) {
		return view{}, fmt.Errorf("ring size %d is not a power of two in [%d, %d]: %w", r, MinRingSize, MaxRingSize, mproc.ErrCorrupt)
	}
	if len(data) != dataSize(int(r)) {
		return view{}, fmt.Errorf("data area of %d bytes, rings of %d need %d: %w", len(data), r, dataSize(int(r)), mproc.ErrCorrupt)
	}
	h := shm.At[header](data, hdrOff)
	switch {
	case string(h.Magic[:]) != layoutMagic:
		return view{}, fmt.Errorf("bad magic %q: %w", h.Magic[:], mproc.ErrCorrupt)
	case h.Version != layoutVersion:
		return view{}, fmt.Errorf("layout version %d, this build reads %d: %w", h.Version, layoutVersion, mproc.ErrVersion)
	case uint64(h.RingSize) != r:
		return view{}, fmt.Errorf("header says rings of %d bytes, segment parameters %d: %w", h.RingSize, r, mproc.ErrCorrupt)
	}
	v := viewOf(data, int(r))
	for i, c := range v.ctl {
		if t, hd := c.Tail.Load(), c.Head.Load(); t-hd > r {
			return view{}, fmt.Errorf("ring %d: head %d, tail %d: %w", i, hd, t, mproc.ErrCorrupt)
		}
	}
	return v, nil
}

// viewOf returns the parts of a data area of rings of r bytes.
func viewOf(data []byte, r int) view {
	return view{
		hdr:  shm.At[header](data, hdrOff),
		ctl:  [2]*ringCtl{shm.At[ringCtl](data, ctlOff), shm.At[ringCtl](data, ctlOff+ctlSize)},
		ring: [2][]byte{data[ringsOff : ringsOff+r : ringsOff+r], data[ringsOff+r : ringsOff+2*r : ringsOff+2*r]},
	}
}
