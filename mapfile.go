package mproc

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"strconv"
	"sync"

	"mproc/internal/fd"
	"mproc/internal/shm"
	"mproc/internal/unix"
)

// MapMode says how a MapFile maps its file.
type MapMode int

const (
	// MapReadOnly maps the file for reading; writes fail.
	MapReadOnly MapMode = iota
	// MapReadWrite maps the file for reading and writing. Writes reach the
	// file (MAP_SHARED) and every process that maps it.
	MapReadWrite
)

func (m MapMode) String() string {
	switch m {
	case MapReadOnly:
		return "read-only"
	case MapReadWrite:
		return "read-write"
	}
	return "MapMode(" + strconv.Itoa(int(m)) + ")"
}

// MapFile is a regular file mapped into memory, shared (MAP_SHARED) with the
// file and with every other process that maps it. Its size is fixed when it
// is mapped: the mapping neither follows a file that grows nor grows the
// file.
//
// A *MapFile is safe for concurrent use by multiple goroutines; its methods
// and Close may race. The memory itself is plain memory: concurrent writers,
// in this process or others, must synchronise themselves (with a Lock, for
// example). Memory returned by Bytes must not be used during or after Close.
//
// # Truncation and SIGBUS
//
// If the file is truncated while it is mapped (by this process or any
// other), touching a page wholly past the new end of the file raises SIGBUS;
// bytes past the new end but within its last page read as zero, and writes
// to them are lost.
//
// ReadAt and WriteAt are safe against this: they copy with
// runtime/debug.SetPanicOnFault enabled, and a fault inside the mapping makes
// them return an error that wraps ErrFileTruncated, together with the bytes
// before the file's new end.
//
// Direct access through Bytes is the caller's responsibility: by default a
// fault there crashes the program. A caller that must survive truncation by
// processes it does not trust turns the fault into a panic for its own
// goroutine and recovers it:
//
//	func readAt(m *mproc.MapFile, i int) (b byte, err error) {
//		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
//		defer func() {
//			if r := recover(); r != nil {
//				if _, ok := r.(interface{ Addr() uintptr }); !ok {
//					panic(r) // not a memory fault
//				}
//				err = fmt.Errorf("byte %d: %v: %w", i, r, mproc.ErrFileTruncated)
//			}
//		}()
//		return m.Bytes()[i], nil
//	}
//
// A MapFile travels to a child process inside the argument of Start, like a
// SharedMemory: the child receives the file's descriptor and maps the same
// file with the same mode, even if the path was renamed or removed since.
type MapFile struct {
	mu   sync.RWMutex // held for reading while the mapping is in use; Close takes it for writing
	path string
	mode MapMode
	fd   *fd.FD // nil once closed
	mem  []byte // the whole mapping; nil once closed
}

// OpenMapFile maps the whole of the existing regular file path, with mode.
// The size of the mapping is the size of the file when it is opened; an
// empty file cannot be mapped, and is an error.
//
// A missing file is an error matching os.ErrNotExist. Opening a FIFO or a
// device fails rather than blocks. A symbolic link at path (its last
// component) is refused.
func OpenMapFile(path string, mode MapMode) (*MapFile, error) {
	flags, _, err := mode.flags()
	if err != nil {
		return nil, fmt.Errorf("open map file %q: %w", path, err)
	}
	// O_NONBLOCK: a FIFO planted under the path must not block the open.
	// O_NOFOLLOW: a symbolic link planted at path must not lead the
	// mapping (read-write, with this process's rights) to another file.
	f, err := openFD(path, flags|unix.O_NONBLOCK|unix.O_NOFOLLOW, 0)
	if err != nil {
		if err == unix.ELOOP {
			err = fmt.Errorf("a symbolic link: %w", err)
		}
		return nil, fmt.Errorf("open map file %q: %w", path, err)
	}
	m := new(MapFile)
	if err := m.attach(f, path, mode); err != nil {
		return nil, fmt.Errorf("open map file %q: %w", path, err)
	}
	return m, nil
}

// CreateMapFile creates the regular file path of size bytes, zeroed, with
// permission 0600 (before the umask), and maps it read-write. It fails with
// os.ErrExist if path exists; it never truncates or follows an existing
// file. size must be positive.
func CreateMapFile(path string, size int64) (*MapFile, error) {
	if size <= 0 || size > math.MaxInt {
		return nil, fmt.Errorf("create map file %q: size %d out of range [1, %d]", path, size, math.MaxInt)
	}
	f, err := openFD(path, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create map file %q: %w", path, err)
	}
	m := new(MapFile)
	err = unix.Ftruncate(f.Int(), size)
	if err != nil {
		f.Close()
		err = fmt.Errorf("ftruncate to %d bytes: %w", size, err)
	} else {
		err = m.attach(f, path, MapReadWrite)
	}
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("create map file %q: %w", path, err)
	}
	return m, nil
}

// openFD opens path with flags, close-on-exec, as an owned descriptor.
func openFD(path string, flags int, perm uint32) (*fd.FD, error) {
	raw, err := unix.Open(path, flags|unix.O_CLOEXEC, perm)
	if err != nil {
		return nil, err
	}
	return fd.New(raw)
}

// flags returns the open flags and the memory protection of mode.
func (mode MapMode) flags() (open, prot int, err error) {
	switch mode {
	case MapReadOnly:
		return unix.O_RDONLY, unix.PROT_READ, nil
	case MapReadWrite:
		return unix.O_RDWR, unix.PROT_READ | unix.PROT_WRITE, nil
	}
	return 0, 0, fmt.Errorf("invalid map mode %d", int(mode))
}

// attach maps the whole regular file open on f into m, which takes
// ownership of f. It closes f on error.
func (m *MapFile) attach(f *fd.FD, path string, mode MapMode) (err error) {
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	_, prot, err := mode.flags()
	if err != nil {
		return err
	}
	size, err := fileSize(f)
	if err != nil {
		return err
	}
	switch {
	case size == 0:
		return errors.New("the file is empty, and an empty file cannot be mapped")
	case size > math.MaxInt:
		return fmt.Errorf("the file is %d bytes, more than this platform can map", size)
	}
	mem, err := unix.Mmap(f.Int(), 0, int(size), prot, unix.MAP_SHARED)
	runtime.KeepAlive(f)
	if err != nil {
		return fmt.Errorf("mmap %d bytes %s: %w", size, mode, err)
	}
	// The file may have shrunk between fstat and mmap: the mapping would
	// then fault past the new end from its first use.
	if now, err := fileSize(f); err != nil || now < size {
		unix.Munmap(mem)
		if err != nil {
			return err
		}
		return fmt.Errorf("mapped %d bytes, but the file is now %d bytes: %w", size, now, ErrFileTruncated)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mem != nil {
		unix.Munmap(mem)
		return errors.New("map file: MapFile already in use")
	}
	m.path, m.mode, m.fd, m.mem = path, mode, f, mem
	return nil
}

// fileSize returns the size of the regular file open on f.
func fileSize(f *fd.FD) (int64, error) {
	var st unix.Stat_t
	err := unix.Fstat(f.Int(), &st)
	runtime.KeepAlive(f)
	if err != nil {
		return 0, fmt.Errorf("fstat: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		kind := "not a regular file"
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			kind = "a directory, not a regular file"
		}
		return 0, errors.New(kind)
	}
	return st.Size, nil
}

// Bytes returns the mapped memory, or nil after Close. Writing to the memory
// of a read-only map faults. It must not be used during or after Close, and
// touching it after the file was truncated crashes the program unless the
// caller guards the access as the MapFile documentation shows.
func (m *MapFile) Bytes() []byte {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.mem
}

// Size returns the size of the mapping in bytes, or 0 after Close.
func (m *MapFile) Size() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.mem)
}

// Path returns the path the file was opened or created with, even after
// Close.
func (m *MapFile) Path() string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.path
}

// ReadAt implements io.ReaderAt: it copies len(p) bytes of the mapping
// starting at off into p. As with os.File, fewer bytes than len(p) come with
// io.EOF at the end of the mapping. If the file was truncated under the
// range, ReadAt returns the bytes before the file's new end and an error
// wrapping ErrFileTruncated.
func (m *MapFile) ReadAt(p []byte, off int64) (int, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.mem == nil {
		return 0, fmt.Errorf("read map file %q: %w", m.path, os.ErrClosed)
	}
	if off < 0 {
		return 0, fmt.Errorf("read map file %q: negative offset %d", m.path, off)
	}
	if off >= int64(len(m.mem)) {
		return 0, io.EOF
	}
	n, err := m.transfer("read", p, int(off), false)
	if err == nil && n < len(p) {
		err = io.EOF
	}
	return n, err
}

// WriteAt implements io.WriterAt: it copies p into the mapping at off. The
// mapping cannot grow: a write that does not fit writes nothing and fails.
// A read-only map fails with an error matching os.ErrPermission. If the file
// was truncated under the range, WriteAt writes the bytes before the file's
// new end and returns an error wrapping ErrFileTruncated.
//
// The write reaches the file's page cache, and so every process mapping or
// reading the file, at once; Sync makes it durable.
func (m *MapFile) WriteAt(p []byte, off int64) (int, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	switch {
	case m.mem == nil:
		return 0, fmt.Errorf("write map file %q: %w", m.path, os.ErrClosed)
	case m.mode != MapReadWrite:
		return 0, fmt.Errorf("write map file %q: mapped read-only: %w", m.path, os.ErrPermission)
	case off < 0:
		return 0, fmt.Errorf("write map file %q: negative offset %d", m.path, off)
	case off > int64(len(m.mem)) || int64(len(p)) > int64(len(m.mem))-off:
		return 0, fmt.Errorf("write map file %q: %d bytes at offset %d do not fit in the %d-byte mapping", m.path, len(p), off, len(m.mem))
	}
	return m.transfer("write", p, int(off), true)
}

// transfer copies between p and the mapping at off, in the direction write
// says, guarded against a truncated file. m.mu is held for reading, and
// 0 <= off < len(m.mem).
func (m *MapFile) transfer(op string, p []byte, off int, write bool) (int, error) {
	win := m.mem[off:]
	n := min(len(p), len(win))
	dst, src := p[:n], win[:n]
	if write {
		dst, src = src, dst
	}
	if _, ok := shm.CopyGuarded(dst, src, m.mem); ok {
		return n, nil
	}
	// The file shrank under the range. Copy what still has a file behind
	// it, and say how large the file is now.
	size, err := fileSize(m.fd)
	if err != nil {
		return 0, fmt.Errorf("%s map file %q: %d bytes at offset %d: %w (and %v)", op, m.path, n, off, ErrFileTruncated, err)
	}
	done := 0
	if valid := min(max(size-int64(off), 0), int64(n)); valid > 0 {
		if _, ok := shm.CopyGuarded(dst[:valid], src[:valid], m.mem); ok {
			done = int(valid)
		}
	}
	return done, fmt.Errorf("%s map file %q: %d bytes at offset %d, but the file is now %d bytes: %w", op, m.path, n, off, size, ErrFileTruncated)
}

// Sync writes the mapping's changes to the file's storage and waits for
// them (msync with MS_SYNC). On a read-only map it does nothing and returns
// nil.
func (m *MapFile) Sync() error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.mem == nil {
		return fmt.Errorf("sync map file %q: %w", m.path, os.ErrClosed)
	}
	if m.mode != MapReadWrite {
		return nil
	}
	if err := unix.Msync(m.mem, unix.MS_SYNC); err != nil {
		return fmt.Errorf("sync map file %q: %w", m.path, err)
	}
	return nil
}

// Close unmaps the file and closes its descriptor; it does not Sync. Other
// processes keep their mappings. Memory returned by Bytes must not be used
// afterwards. A second Close returns os.ErrClosed, and so do the other
// methods after Close.
func (m *MapFile) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mem == nil {
		return fmt.Errorf("close map file %q: %w", m.path, os.ErrClosed)
	}
	err := errors.Join(unix.Munmap(m.mem), m.fd.Close())
	m.mem, m.fd = nil, nil
	if err != nil {
		return fmt.Errorf("close map file %q: %w", m.path, err)
	}
	return nil
}

// mapFileMeta is what a MapFile carries to a child beside its descriptor.
type mapFileMeta struct {
	Path string
	Mode MapMode
}

// GobEncode implements gob.GobEncoder: a *MapFile in the argument of Start
// reaches the child with its descriptor. Elsewhere it fails with
// ErrNotHandle.
func (m *MapFile) GobEncode() ([]byte, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.mem == nil {
		return nil, fmt.Errorf("pass map file %q: %w", m.path, os.ErrClosed)
	}
	b, err := encodeHandle(m.fd, mapFileMeta{Path: m.path, Mode: m.mode})
	if err != nil {
		return nil, fmt.Errorf("pass map file %q: %w", m.path, err)
	}
	return b, nil
}

// GobDecode implements gob.GobDecoder for a child receiving its argument:
// it maps the whole file behind the passed descriptor with the sender's
// mode.
func (m *MapFile) GobDecode(b []byte) error {
	f, w, err := decodeHandle[mapFileMeta](b)
	if err != nil {
		return err
	}
	if err := m.attach(f, w.Path, w.Mode); err != nil {
		return fmt.Errorf("map passed file %q: %w", w.Path, err)
	}
	return nil
}
