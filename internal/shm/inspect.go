package shm

import (
	"fmt"
	"os"
	"runtime/debug"

	"mproc/internal/fd"
	"mproc/internal/psync"
	"mproc/internal/ring"
	"mproc/internal/unix"
)

// Inspection: what a tool (cmd/mproc, which may import internal/shm but
// no other internal package) reads of a named segment, header and state
// words, without becoming one of its users.
//
// Inspect maps the segment read-only and only loads words (the State
// methods of internal/psync, ring.Inspect and ring.InspectHeap): it takes
// no process record, no lock and no mutex, and does not wait for a segment
// being initialised. What it returns is a snapshot, not consistent across
// words.
//
// It must know how each kind lays out its data area, which the root
// package decides (the table in ARCHITECTURE.md §3); the constants below
// repeat the root package's, and cmd/mproc's tests check Inspect against
// objects the root package made.
const (
	// queueTasksSize is the bytes before a FIFO or joinable queue's ring:
	// the JoinableQueue's psync.Tasks (queueHeaderSize in queue.go).
	queueTasksSize = 64
	// valuesOffset is where a Value's or an Array's elements start, after
	// its psync.Mutex (value.go).
	valuesOffset = 64
	// maxInspectedValues bounds the element bytes Inspect copies.
	maxInspectedValues = 64
)

// Queue variants, in the low byte of a queue's parameter 0 (queue.go,
// orderedqueue.go), by the name of the root package's handle type.
var queueTypes = map[uint64]string{1: "Queue", 2: "JoinableQueue", 3: "LIFOQueue", 4: "PriorityQueue"}

// Types of the other kinds' handles, by kind.
var kindTypes = map[Kind]string{
	KindSharedMemory: "SharedMemory", KindLock: "Lock", KindRLock: "RLock", KindRWMutex: "RWMutex",
	KindSemaphore: "Semaphore", KindEvent: "Event", KindCond: "Cond", KindBarrier: "Barrier",
	KindValue: "Value", KindArray: "Array",
}

// Inspection is what Inspect read of one named segment.
type Inspection struct {
	Name string
	Path string
	// The file's owner, permission bits, size, device and inode.
	Uid      uint32
	Mode     os.FileMode
	Size     int64
	Dev, Ino uint64

	// Ready is false while the header is not published: the segment is
	// being initialised, or its creator died doing so.
	Ready bool
	// Err says why the file is not a valid segment (it wraps ErrCorrupt or
	// ErrVersion). Info is valid when Ready and Err is nil, and the state
	// below when StateErr is nil too.
	Err  error
	Info Info
	// Type is the root package's handle type for the segment: "Queue",
	// "JoinableQueue", "LIFOQueue", "PriorityQueue", "Lock", "RLock",
	// "RWMutex", "Semaphore", "BoundedSemaphore", "Event", "Cond",
	// "Barrier", "Value", "Array" or "SharedMemory"; "" if unknown.
	Type string
	// StateErr says why the data area could not be read although the
	// header is valid (it disagrees with the parameters: ErrCorrupt).
	StateErr error

	// The kind's state: one or two of these are set.
	Queue     *ring.RingState       // Queue, JoinableQueue
	Tasks     *psync.TasksState     // Queue, JoinableQueue (unused by a Queue)
	Heap      *ring.HeapState       // LIFOQueue, PriorityQueue
	Mutex     *psync.MutexState     // Lock; the lock of a Value or an Array
	RMutex    *psync.RMutexState    // RLock
	RWMutex   *psync.RWMutexState   // RWMutex
	Semaphore *psync.SemaphoreState // Semaphore, BoundedSemaphore
	Event     *psync.EventState     // Event
	Cond      *psync.CondState      // Cond
	Barrier   *psync.BarrierState   // Barrier
	// ElemSize and Count are a Value's or an Array's element size and
	// number, and Values a copy of its first (up to 64) element bytes.
	ElemSize, Count uint64
	Values          []byte
}

// Inspect reads the named segment name. A missing one is os.ErrNotExist.
// A file under the name that is not a valid segment (a symbolic link, a
// directory, bad magic, ...) is reported in the Inspection's Err, not as
// an error. Unlike Open, it reads segments of any owner the caller may
// open: a fault because the owner truncated the file while it was read is
// caught and reported in Err.
func Inspect(name string) (*Inspection, error) {
	if err := ValidateName(name); err != nil {
		return nil, fmt.Errorf("inspect segment: %w", err)
	}
	in := &Inspection{Name: name, Path: Path(name)}
	raw, err := unix.Open(in.Path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err == unix.ELOOP {
		in.Err = fmt.Errorf("a symbolic link, not a segment: %w", ErrCorrupt)
		if fi, err := os.Lstat(in.Path); err == nil {
			in.fileInfo(fi)
		}
		return in, nil
	}
	if err != nil {
		return nil, fmt.Errorf("inspect segment %q: %w", name, errnoErr(err))
	}
	f, err := fd.New(raw)
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(f.Int(), &st); err != nil {
		f.Close()
		return nil, fmt.Errorf("inspect segment %q: fstat: %w", name, err)
	}
	in.Uid, in.Mode, in.Size, in.Dev, in.Ino = st.Uid, os.FileMode(st.Mode&0o777), st.Size, st.Dev, st.Ino
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		in.Err = fmt.Errorf("not a regular file: %w", ErrCorrupt)
	case st.Size > 0 && st.Size < HeaderSize:
		in.Err = fmt.Errorf("%d bytes, shorter than a header: %w", st.Size, ErrCorrupt)
	case st.Size > 0:
		in.read(f, st.Size) // it closes f
		return in, nil
	}
	f.Close()
	return in, nil
}

func (in *Inspection) fileInfo(fi os.FileInfo) {
	in.Mode, in.Size = fi.Mode().Perm(), fi.Size()
	if st, ok := fi.Sys().(*unix.Stat_t); ok {
		in.Uid, in.Dev, in.Ino = st.Uid, st.Dev, st.Ino
	}
}

// read validates and maps the segment open on f, of size bytes, and reads
// its state. It closes f.
func (in *Inspection) read(f *fd.FD, size int64) {
	var s *Segment
	defer func() {
		if s != nil {
			s.Close()
		} else {
			f.Close()
		}
	}()
	// The file's owner may truncate it while it is mapped here (for a
	// segment of another user, nothing stops it): the access then faults,
	// and the fault is reported instead of crashing.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if _, fault := r.(interface{ Addr() uintptr }); !fault {
				panic(r)
			}
			in.Err = fmt.Errorf("truncated while it was read: %w", ErrCorrupt)
			in.Ready, in.StateErr = false, nil
		}
	}()
	seg, ready, err := validate(f, in.Name, KindAny, true, size)
	if err != nil || !ready {
		in.Err = err
		return
	}
	s = seg
	in.Ready, in.Info = true, s.Info()
	in.StateErr = in.readState(s.Data())
}

// readState reads the data area of a segment whose header is valid.
func (in *Inspection) readState(data []byte) error {
	kind, p := in.Info.Kind, in.Info.Param
	in.Type = kindTypes[kind]
	need := func(n int) error {
		if len(data) < n {
			return fmt.Errorf("data area of %d bytes, a %v needs %d: %w", len(data), kind, n, ErrCorrupt)
		}
		return nil
	}
	switch kind {
	case KindQueue:
		return in.readQueue(data, p[0]>>8, p[0]&0xff, p[1])
	case KindLock:
		if err := need(psync.MutexSize); err != nil {
			return err
		}
		in.Mutex = ptr(At[psync.Mutex](data, 0).State())
	case KindRLock:
		if err := need(psync.RMutexSize); err != nil {
			return err
		}
		in.RMutex = ptr(At[psync.RMutex](data, 0).State())
	case KindRWMutex:
		if err := need(psync.RWMutexSize); err != nil {
			return err
		}
		in.RWMutex = ptr(At[psync.RWMutex](data, 0).State())
	case KindSemaphore:
		if err := need(psync.SemaphoreSize); err != nil {
			return err
		}
		in.Semaphore = ptr(At[psync.Semaphore](data, 0).State())
		if p[0] != 0 {
			in.Type = "BoundedSemaphore"
		}
	case KindEvent:
		if err := need(psync.EventSize); err != nil {
			return err
		}
		in.Event = ptr(At[psync.Event](data, 0).State())
	case KindCond:
		if err := need(psync.CondSize); err != nil {
			return err
		}
		in.Cond = ptr(At[psync.Cond](data, 0).State())
	case KindBarrier:
		if err := need(psync.BarrierSize); err != nil {
			return err
		}
		in.Barrier = ptr(At[psync.Barrier](data, 0).State())
	case KindValue, KindArray:
		elem, n := p[0]&0xffffffff, p[1]
		if elem == 0 || n > (uint64(len(data))-min(uint64(len(data)), valuesOffset))/elem ||
			valuesOffset+n*elem != uint64(len(data)) {
			return fmt.Errorf("%d elements of %d bytes do not match a data area of %d bytes: %w", n, elem, len(data), ErrCorrupt)
		}
		in.ElemSize, in.Count = elem, n
		in.Mutex = ptr(At[psync.Mutex](data, 0).State())
		in.Values = append([]byte(nil), data[valuesOffset:valuesOffset+min(n*elem, maxInspectedValues)]...)
	}
	return nil
}

func (in *Inspection) readQueue(data []byte, capacity, variant, maxMsg uint64) error {
	in.Type = queueTypes[variant]
	if capacity < 1 || capacity > 1<<24 || maxMsg < 1 || maxMsg > 1<<30 {
		return fmt.Errorf("queue of %d slots of %d bytes: %w", capacity, maxMsg, ErrCorrupt)
	}
	c, m := int(capacity), int(maxMsg)
	switch variant {
	case 1, 2:
		if len(data) != queueTasksSize+ring.Size(c, m) {
			return fmt.Errorf("queue of %d slots of %d bytes in %d bytes: %w", c, m, len(data), ErrCorrupt)
		}
		rs, err := ring.Inspect(data[queueTasksSize:], c, m)
		if err != nil {
			return fmt.Errorf("%v: %w", err, ErrCorrupt)
		}
		in.Queue, in.Tasks = &rs, ptr(At[psync.Tasks](data, 0).State())
	case 3, 4:
		if len(data) != ring.HeapSize(c, m) {
			return fmt.Errorf("queue of %d slots of %d bytes in %d bytes: %w", c, m, len(data), ErrCorrupt)
		}
		hs, err := ring.InspectHeap(data, c, m)
		if err != nil {
			return fmt.Errorf("%v: %w", err, ErrCorrupt)
		}
		in.Heap = &hs
	default:
		return fmt.Errorf("queue of unknown variant %d: %w", variant, ErrCorrupt)
	}
	return nil
}

func ptr[T any](v T) *T { return &v }
