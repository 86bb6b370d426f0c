// Package shm creates, opens, maps and removes mproc segments, and holds
// every unsafe cast of shared memory in mproc.
//
// A named segment is a file in Dir whose name is Prefix plus the user's name,
// created 0600 by default with O_EXCL and O_NOFOLLOW. An anonymous segment is
// a memfd sealed against shrinking and growing; it has no name and reaches
// other processes only as an inherited or passed file descriptor.
//
// Mappings are never unmapped behind a caller's back: a Segment's memory
// stays valid until Close, and pointers into it must not be used after.
// (There is deliberately no cleanup that unmaps an unreachable Segment: a
// pointer into the data area does not keep the Segment reachable.)
//
// SIGBUS: a process that truncates a segment file under the processes that
// map it makes their next access beyond the new end fault, and every
// access to a queue or a lock is a plain load or store that cannot be
// guarded. So Open trusts only segment files that the caller's own user
// owns: a file owned by anyone else is refused with os.ErrPermission, even
// for root (whom the mode bits would let in), because its owner could
// truncate it at any time. Segments are created 0600. Anonymous segments
// are sealed against resizing. What remains is a process of the same user
// truncating a file in /dev/shm by hand: that user can also kill the
// process, and mproc does not defend against it.
package shm

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"mproc/internal/fd"
	"mproc/internal/owner"
	"mproc/internal/unix"
)

const (
	// Dir holds named segments.
	Dir = "/dev/shm"
	// Prefix starts the file name of every named segment.
	Prefix = "mproc."
	// MaxNameLen is the longest name a segment can have.
	MaxNameLen = 200
	// InitWait bounds how long Open waits for a segment being initialised.
	InitWait = time.Second
	// MaxDataSize bounds a segment's data area (1 TiB).
	MaxDataSize = 1 << 40
)

// Segment is one mapped segment. It is safe for concurrent use; Close must
// not race with use of the memory it returned.
type Segment struct {
	name string // "" for anonymous
	fd   *fd.FD
	mem  []byte
	hdr  *header

	closeOnce sync.Once
	closed    atomic.Bool
}

// CreateOptions configure Create and NewAnonymous.
type CreateOptions struct {
	// Mode is the permission of a named segment file; 0 means 0600.
	Mode os.FileMode
	// Param are immutable parameters of the kind, covered by the checksum.
	Param [2]uint64
	// Init initialises the data area before the segment is published; it
	// may write only within Eager.
	Init func(data []byte) error
	// Eager, if not nil, are the ranges of the data area (offset, length)
	// whose memory is taken at creation; the rest is taken by Allocate
	// before it is first touched. nil takes all of it at creation.
	Eager [][2]int
}

// ValidateName reports whether name can name a segment: 1 to MaxNameLen
// bytes of ASCII letters, digits, '.', '_' and '-', not starting with '.'.
func ValidateName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty name", ErrInvalidName)
	case len(name) > MaxNameLen:
		return fmt.Errorf("%w: %q is %d bytes, the limit is %d", ErrInvalidName, name[:16]+"...", len(name), MaxNameLen)
	case name[0] == '.':
		return fmt.Errorf("%w: %q starts with '.'", ErrInvalidName, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: %q holds %q (allowed: letters, digits, '.', '_', '-')", ErrInvalidName, name, c)
		}
	}
	return nil
}

// Path returns the file path of the named segment name.
func Path(name string) string { return Dir + "/" + Prefix + name }

// Create creates the named segment name of kind with a data area of
// dataSize bytes. It fails with os.ErrExist if the name is taken.
func Create(name string, kind Kind, dataSize int, opts CreateOptions) (*Segment, error) {
	if err := ValidateName(name); err != nil {
		return nil, fmt.Errorf("create segment: %w", err)
	}
	if err := checkSize(dataSize); err != nil {
		return nil, fmt.Errorf("create segment %q: %w", name, err)
	}
	mode := opts.Mode.Perm()
	if mode == 0 {
		mode = 0o600
	}
	path := Path(name)
	raw, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(mode))
	if err != nil {
		return nil, fmt.Errorf("create segment %q: %w", name, errnoErr(err))
	}
	f, err := fd.New(raw)
	if err != nil {
		return nil, err
	}
	s, err := initialise(f, name, kind, dataSize, opts, func() error {
		return unix.Fchmod(raw, uint32(mode)) // the umask must not widen or narrow it
	})
	if err != nil {
		unix.Unlink(path)
		return nil, fmt.Errorf("create segment %q: %w", name, err)
	}
	return s, nil
}

// NewAnonymous creates an anonymous segment: a memfd, sealed against
// resizing, reachable by other processes only through its descriptor.
func NewAnonymous(kind Kind, dataSize int, opts CreateOptions) (*Segment, error) {
	if err := checkSize(dataSize); err != nil {
		return nil, fmt.Errorf("create anonymous segment: %w", err)
	}
	raw, err := unix.MemfdCreate("mproc:"+kind.String(), unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("create anonymous segment: memfd_create: %w", err)
	}
	f, err := fd.New(raw)
	if err != nil {
		return nil, err
	}
	s, err := initialise(f, "", kind, dataSize, opts, func() error {
		_, err := unix.FcntlInt(uintptr(raw), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_SEAL)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("create anonymous segment: %w", err)
	}
	return s, nil
}

func checkSize(dataSize int) error {
	if dataSize < 0 || dataSize > MaxDataSize {
		return fmt.Errorf("data size %d out of range [0, %d]", dataSize, MaxDataSize)
	}
	return nil
}

// initialise sizes, maps and fills a new segment file, publishing its
// header last. It closes f on error.
func initialise(f *fd.FD, name string, kind Kind, dataSize int, opts CreateOptions, afterSize func() error) (*Segment, error) {
	total := HeaderSize + dataSize
	raw := f.Int()
	err := unix.Ftruncate(raw, int64(total))
	if err == nil && opts.Eager == nil {
		err = allocate(raw, 0, total)
	} else if err == nil {
		err = allocate(raw, 0, HeaderSize)
		for _, r := range opts.Eager {
			if err != nil {
				break
			}
			if err = checkRange(r[0], r[1], dataSize); err != nil {
				break
			}
			err = allocate(raw, HeaderSize+r[0], r[1])
		}
	}
	if err == nil {
		err = afterSize()
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	mem, err := unix.Mmap(raw, 0, total, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("mmap %d bytes: %w", total, err)
	}
	s := &Segment{name: name, fd: f, mem: mem, hdr: At[header](mem, 0)}
	if opts.Init != nil {
		if err := opts.Init(s.Data()); err != nil {
			s.Close()
			return nil, err
		}
	}
	h := s.hdr
	copy(h.Magic[:], Magic)
	h.Version = Version
	h.Kind = uint32(kind)
	h.HeaderSize = HeaderSize
	h.TotalSize = uint64(total)
	h.Creator = owner.Self().Pack()
	h.Created = time.Now().UnixNano()
	h.Param = opts.Param
	h.Checksum = h.checksum()
	atomic.StoreUint32(&h.State, stateReady) // publish: last write
	return s, nil
}

// allocate gives bytes [off, off+n) of the segment file on raw their
// pages now (fallocate), so that a full /dev/shm fails with ENOSPC here:
// ftruncate alone succeeds on a full tmpfs, and the first touch of a page
// it only promised — a write, or even a read, of a shared tmpfs mapping —
// would raise SIGBUS in whichever process touched it. A segment's memory
// is therefore taken when it is created (CreateOptions.Eager says which),
// or by Allocate before it is first used.
func allocate(raw, off, n int) error {
	for {
		err := unix.Fallocate(raw, 0, int64(off), int64(n))
		switch err {
		case nil:
			return nil
		case unix.EINTR:
			continue
		}
		return fmt.Errorf("allocate %d bytes: %w", n, err)
	}
}

// Allocate takes the memory of bytes [off, off+n) of the data area, if it
// is not taken yet (see CreateOptions.Eager). It fails wrapping
// syscall.ENOSPC when /dev/shm is full.
func (s *Segment) Allocate(off, n int) error {
	if err := checkRange(off, n, len(s.Data())); err != nil {
		return err
	}
	return allocate(s.fd.Int(), HeaderSize+off, n)
}

// checkRange reports a range [off, off+n) not within a data area of size
// bytes.
func checkRange(off, n, size int) error {
	if off < 0 || n < 0 || off > size || n > size-off {
		return fmt.Errorf("allocate [%d, +%d) of a data area of %d bytes: out of range", off, n, size)
	}
	return nil
}

// OpenOptions configure Open.
type OpenOptions struct {
	// ReadOnly maps the segment read-only (for inspection tools).
	ReadOnly bool
}

// Open opens the named segment name, which must hold kind (KindAny accepts
// any). It waits up to InitWait for a segment still being initialised.
func Open(name string, kind Kind, opts OpenOptions) (*Segment, error) {
	if err := ValidateName(name); err != nil {
		return nil, fmt.Errorf("open segment: %w", err)
	}
	flags := unix.O_RDWR
	if opts.ReadOnly {
		flags = unix.O_RDONLY
	}
	// O_NONBLOCK: a FIFO planted under the name must not block the open.
	raw, err := unix.Open(Path(name), flags|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		if err == unix.ELOOP {
			return nil, fmt.Errorf("open segment %q: a symbolic link, not a segment: %w", name, ErrCorrupt)
		}
		return nil, fmt.Errorf("open segment %q: %w", name, errnoErr(err))
	}
	f, err := fd.New(raw)
	if err != nil {
		return nil, err
	}
	s, err := mapExisting(f, name, kind, opts.ReadOnly)
	if err != nil {
		return nil, fmt.Errorf("open segment %q: %w", name, err)
	}
	return s, nil
}

// FromFD maps the segment open on f, which the Segment then owns. It is how
// a child maps a segment whose descriptor it received. f is closed on error.
func FromFD(f *fd.FD, kind Kind) (*Segment, error) {
	s, err := mapExisting(f, "", kind, false)
	if err != nil {
		return nil, fmt.Errorf("map passed segment: %w", err)
	}
	return s, nil
}

// mapExisting validates and maps the segment open on f, waiting up to
// InitWait for its creator to publish it. A named segment (one opened by
// name, not passed) must be owned by the caller's user. It closes f on
// error.
func mapExisting(f *fd.FD, name string, kind Kind, readOnly bool) (s *Segment, err error) {
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	deadline := time.Now().Add(InitWait)
	pause := 100 * time.Microsecond
	for {
		var st unix.Stat_t
		if err := unix.Fstat(f.Int(), &st); err != nil {
			return nil, fmt.Errorf("fstat: %w", err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFREG {
			return nil, fmt.Errorf("not a regular file: %w", ErrCorrupt)
		}
		if uid := uint32(os.Geteuid()); name != "" && st.Uid != uid {
			return nil, fmt.Errorf("owned by uid %d, not by this process's uid %d, who could not stop its owner from truncating it: %w",
				st.Uid, uid, os.ErrPermission)
		}
		size := st.Size
		if size > 0 && size < HeaderSize {
			// The creator sizes the file in one ftruncate before writing
			// anything, so this size never belongs to a segment.
			return nil, fmt.Errorf("%d bytes, shorter than a header: %w", size, ErrCorrupt)
		}
		if size >= HeaderSize {
			s, ready, err := validate(f, name, kind, readOnly, size)
			if err != nil || ready {
				return s, err
			}
		}
		if time.Now().After(deadline) {
			if size == 0 {
				return nil, fmt.Errorf("still empty after %v (its creator may have died): %w", InitWait, ErrCorrupt)
			}
			return nil, fmt.Errorf("still not initialised after %v (its creator may have died): %w", InitWait, ErrCorrupt)
		}
		time.Sleep(pause)
		pause = min(2*pause, 10*time.Millisecond)
	}
}

// validate maps size bytes and checks the header. ready is false, with no
// error, for a segment still being initialised.
func validate(f *fd.FD, name string, kind Kind, readOnly bool, size int64) (*Segment, bool, error) {
	prot := unix.PROT_READ | unix.PROT_WRITE
	if readOnly {
		prot = unix.PROT_READ
	}
	if size > HeaderSize+MaxDataSize {
		return nil, false, fmt.Errorf("%d bytes, larger than any segment: %w", size, ErrCorrupt)
	}
	mem, err := unix.Mmap(f.Int(), 0, int(size), prot, unix.MAP_SHARED)
	if err != nil {
		return nil, false, fmt.Errorf("mmap %d bytes: %w", size, err)
	}
	h := At[header](mem, 0)
	fail := func(err error) (*Segment, bool, error) {
		unix.Munmap(mem)
		return nil, false, err
	}
	if h.state() != stateReady {
		var zero [8]byte
		if h.Magic != zero && string(h.Magic[:]) != Magic {
			return fail(fmt.Errorf("bad magic %q: %w", h.Magic[:], ErrCorrupt))
		}
		unix.Munmap(mem)
		return nil, false, nil // being initialised: try again
	}
	switch {
	case string(h.Magic[:]) != Magic:
		return fail(fmt.Errorf("bad magic %q: %w", h.Magic[:], ErrCorrupt))
	case h.Checksum != h.checksum():
		return fail(fmt.Errorf("header checksum %#x, want %#x: %w", h.Checksum, h.checksum(), ErrCorrupt))
	case h.Version != Version:
		return fail(fmt.Errorf("layout version %d, this build reads %d: %w", h.Version, Version, ErrVersion))
	case h.HeaderSize != HeaderSize:
		return fail(fmt.Errorf("header size %d, want %d: %w", h.HeaderSize, HeaderSize, ErrCorrupt))
	case h.TotalSize != uint64(size):
		return fail(fmt.Errorf("header says %d bytes, file has %d (truncated?): %w", h.TotalSize, size, ErrCorrupt))
	case kind != KindAny && Kind(h.Kind) != kind:
		return fail(fmt.Errorf("holds a %v, not a %v: %w", Kind(h.Kind), kind, ErrKind))
	}
	return &Segment{name: name, fd: f, mem: mem, hdr: h}, true, nil
}

// Unlink removes the named segment name. Processes that have it open keep
// using it; the memory is freed when the last one closes it.
func Unlink(name string) error {
	if err := ValidateName(name); err != nil {
		return fmt.Errorf("remove segment: %w", err)
	}
	if err := unix.Unlink(Path(name)); err != nil {
		return fmt.Errorf("remove segment %q: %w", name, errnoErr(err))
	}
	return nil
}

// List returns the names of the named segments in Dir.
func List() ([]string, error) {
	ents, err := os.ReadDir(Dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if n, ok := strings.CutPrefix(e.Name(), Prefix); ok && ValidateName(n) == nil {
			names = append(names, n)
		}
	}
	return names, nil
}

// errnoErr maps errnos to the os errors that errors.Is users expect.
func errnoErr(err error) error {
	switch err {
	case unix.ENOENT:
		return os.ErrNotExist
	case unix.EEXIST:
		return os.ErrExist
	case unix.EPERM, unix.Errno(13): // EACCES
		return fmt.Errorf("%w (%v)", os.ErrPermission, err)
	}
	return err
}

// Name returns the segment's name, "" for an anonymous segment.
func (s *Segment) Name() string { return s.name }

// Kind returns what the segment holds.
func (s *Segment) Kind() Kind { return Kind(s.hdr.Kind) }

// Param returns the kind's immutable parameter i (0 or 1).
func (s *Segment) Param(i int) uint64 { return s.hdr.Param[i] }

// Data returns the data area. It must not be used after Close.
func (s *Segment) Data() []byte { return s.mem[HeaderSize:] }

// Stats returns the segment's counters. They must not be used after Close.
func (s *Segment) Stats() *Stats { return &s.hdr.Stats }

// Info is a copy of a segment's header fields.
type Info struct {
	Kind      Kind
	Version   uint32
	TotalSize uint64
	Creator   owner.Token
	Created   time.Time
	Param     [2]uint64
}

// Info returns a copy of the header fields.
func (s *Segment) Info() Info {
	h := s.hdr
	return Info{Kind: Kind(h.Kind), Version: h.Version, TotalSize: h.TotalSize,
		Creator: owner.Unpack(h.Creator), Created: time.Unix(0, h.Created), Param: h.Param}
}

// FD returns the segment's descriptor, owned by the Segment; Dup it to keep
// it past Close.
func (s *Segment) FD() *fd.FD { return s.fd }

// Close unmaps the segment and closes its descriptor. Memory returned by
// Data or Stats must not be used afterwards. A second Close returns
// os.ErrClosed.
func (s *Segment) Close() error {
	err := error(os.ErrClosed)
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		err = errors.Join(unix.Munmap(s.mem), s.fd.Close())
	})
	return err
}

// Closed reports whether Close was called.
func (s *Segment) Closed() bool { return s.closed.Load() }

// SetName records the name of a segment mapped with FromFD, so that its
// holder can remove it.
func (s *Segment) SetName(name string) { s.name = name }
