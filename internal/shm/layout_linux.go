package shm

import (
	"hash/crc32"
	"strconv"
	"structs"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Segment layout, version 3. Every mproc segment, named or anonymous, is one
// shared file that starts with this header:
//
//	offset size field
//	     0    8 Magic       "mprocseg"
//	     8    4 Version     layout version (Version)
//	    12    4 Kind        what the data area holds (Kind*)
//	    16    4 HeaderSize  HeaderSize; the data area starts here
//	    20    4 reserved    0
//	    24    8 TotalSize   header + data, equals the file size
//	    32    8 Creator     owner.Token.Pack() of the creating process
//	    40    8 Created     creation time, Unix nanoseconds
//	    48   16 Param[2]    immutable parameters of the kind (capacity, ...)
//	    64    4 Checksum    CRC-32C of bytes [0, 64)
//	    68    4 State       0 while being initialised, stateReady after
//	    72   56 reserved    0
//	   128   64 Stats       counters, one cache line, updated atomically
//	   192   64 reserved    0
//	   256      data area   the kind's own layout
//
// Writers: the creator writes every field before State and stores State
// last, atomically; nobody writes bytes [0, 128) afterwards. Stats are
// for any process to update with atomic adds and to read without locks
// (no kind updates them yet: the queue's own counters live in its ring).
// The data area belongs to the kind.
//
// Readers (Open, FromFD): a segment whose State is not ready is still being
// initialised — or its creator died while initialising it; Open waits up to
// InitWait for it and then reports ErrCorrupt. Everything else is validated
// before the data area is handed out: magic, version, kind, header size,
// total size against the file size, and the checksum.
const (
	Magic = "mprocseg"
	// Version 2: a JoinableQueue counts tasks at the consumer
	// (psync.Tasks). 3: the queue ring's claims are marks beside its
	// slots, not in their state words.
	Version     = 3
	HeaderSize  = 256
	checkedSize = 64         // bytes covered by Checksum
	stateReady  = 0x52454459 // "READY"
)

type header struct {
	_          structs.HostLayout
	Magic      [8]byte
	Version    uint32
	Kind       uint32
	HeaderSize uint32
	_          uint32
	TotalSize  uint64
	Creator    uint64
	Created    int64
	Param      [2]uint64
	Checksum   uint32
	State      uint32
	_          [56]byte
	Stats      Stats
	_          [64]byte
}

// Stats is the counters block of every segment, reserved for counters that
// kinds update and tools read without locking (a reader sees each counter
// atomically but not a consistent snapshot of all of them). No kind
// updates them yet.
type Stats struct {
	_         structs.HostLayout
	Puts      atomic.Uint64 // items or operations in
	Gets      atomic.Uint64 // items or operations out
	Bytes     atomic.Uint64 // payload bytes in
	Waits     atomic.Uint64 // times a caller had to block
	HighWater atomic.Uint64 // largest occupancy seen
	_         [3]uint64
}

// RaiseHighWater lifts HighWater to at least v.
func (s *Stats) RaiseHighWater(v uint64) {
	for {
		old := s.HighWater.Load()
		if v <= old || s.HighWater.CompareAndSwap(old, v) {
			return
		}
	}
}

func init() {
	if unsafe.Sizeof(header{}) != HeaderSize || unsafe.Offsetof(header{}.Checksum) != checkedSize ||
		unsafe.Offsetof(header{}.Stats) != 128 {
		panic("mproc: segment header layout is wrong")
	}
}

// castagnoli is built on first use, not at start-up: every child process
// links this package, and most never open a segment.
var castagnoli = sync.OnceValue(func() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) })

func (h *header) checksum() uint32 {
	b := unsafe.Slice((*byte)(unsafe.Pointer(h)), checkedSize)
	return crc32.Checksum(b, castagnoli())
}

func (h *header) state() uint32 { return atomic.LoadUint32(&h.State) }

// Kind says what a segment's data area holds.
type Kind uint32

// Kinds. Numbers are part of the on-disk format: never reuse one.
const (
	KindAny          Kind = 0 // Open accepts any kind (for inspection tools)
	KindSharedMemory Kind = 1
	KindQueue        Kind = 2
	KindLock         Kind = 3
	KindRLock        Kind = 4
	KindRWMutex      Kind = 5
	KindSemaphore    Kind = 6
	KindEvent        Kind = 7
	KindCond         Kind = 8
	KindBarrier      Kind = 9
	KindValue        Kind = 10
	KindArray        Kind = 11
)

var kindNames = [...]string{"any", "shared-memory", "queue", "lock", "rlock", "rwmutex",
	"semaphore", "event", "cond", "barrier", "value", "array"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.FormatUint(uint64(k), 10) + ")"
}

// At returns a *T at byte offset off of b. It panics if T does not fit or
// off is not aligned for T: both are programming errors in mproc, whose
// layouts are fixed.
func At[T any](b []byte, off int) *T {
	var zero T
	size, align := int(unsafe.Sizeof(zero)), int(unsafe.Alignof(zero))
	if off < 0 || off+size > len(b) {
		panic("mproc: shared-memory access out of bounds")
	}
	p := unsafe.Pointer(&b[off])
	if uintptr(p)%uintptr(align) != 0 {
		panic("mproc: misaligned shared-memory access")
	}
	return (*T)(p)
}

// Slice returns the n values of type T at byte offset off of b, with At's
// checks.
func Slice[T any](b []byte, off, n int) []T {
	if n == 0 {
		return nil
	}
	var zero T
	if n < 0 || off < 0 || off+n*int(unsafe.Sizeof(zero)) > len(b) {
		panic("mproc: shared-memory access out of bounds")
	}
	return unsafe.Slice(At[T](b, off), n)
}

// As reinterprets p as a *U. It panics unless U and T have the same size:
// it is for word-sized atomic access to a value of a pointer-free type.
func As[U, T any](p *T) *U {
	var u U
	var t T
	if unsafe.Sizeof(u) != unsafe.Sizeof(t) {
		panic("mproc: shm.As between types of different sizes")
	}
	return (*U)(unsafe.Pointer(p))
}

// Bytes returns the memory of *p, which must be pointer-free.
func Bytes[T any](p *T) []byte {
	var zero T
	return unsafe.Slice((*byte)(unsafe.Pointer(p)), unsafe.Sizeof(zero))
}

// SliceBytes returns the memory of the elements of s, which must be
// pointer-free, without copying.
func SliceBytes[T any](s []T) []byte {
	var zero T
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), len(s)*int(unsafe.Sizeof(zero)))
}

// StringBytes returns the bytes of s without copying; they must not be
// written.
func StringBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// String returns b as a string without copying; b must not be written
// afterwards.
func String(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
