package mproc

import (
	"os"

	"mproc/internal/shm"
)

// SharedMemory is a block of memory shared between processes: a named
// segment that unrelated processes open by name, or an anonymous one that
// reaches children inside the argument of Start.
//
// Bytes is plain memory: concurrent writers must synchronise themselves
// (with a Lock, or atomics on aligned words through a Value). A
// *SharedMemory is safe for concurrent use, but Bytes must not be used after
// Close.
type SharedMemory struct {
	object
}

// NewSharedMemory creates an anonymous shared memory block of size bytes,
// zeroed. It has no name: pass it to children inside the argument of Start.
func NewSharedMemory(size int) (*SharedMemory, error) {
	o, err := newObject(objectSpec{kind: shm.KindSharedMemory, size: size})
	if err != nil {
		return nil, err
	}
	return &SharedMemory{o}, nil
}

// CreateSharedMemory creates the named shared memory block name of size
// bytes, zeroed, readable and writable by the owner only (0600). It fails
// with os.ErrExist if the name is taken and ErrInvalidName for a bad name.
func CreateSharedMemory(name string, size int) (*SharedMemory, error) {
	o, err := createObject(name, true, objectSpec{kind: shm.KindSharedMemory, size: size})
	if err != nil {
		return nil, err
	}
	return &SharedMemory{o}, nil
}

// OpenSharedMemory opens the named shared memory block name. It fails with
// os.ErrNotExist, ErrCorrupt, ErrVersion or ErrKind when name is not a valid
// shared memory block.
func OpenSharedMemory(name string) (*SharedMemory, error) {
	o, err := openObject(name, shm.KindSharedMemory, 0)
	if err != nil {
		return nil, err
	}
	return &SharedMemory{o}, nil
}

// Bytes returns the shared memory. It must not be used after Close.
func (m *SharedMemory) Bytes() []byte { return m.seg.Data() }

// Size returns the size of the block in bytes.
func (m *SharedMemory) Size() int { return len(m.seg.Data()) }

// SharedMemoryFileOffset is where Bytes starts in the file of a
// SharedMemory (see File): the segment header comes first.
const SharedMemoryFileOffset = shm.HeaderSize

// File returns a new *os.File for the block's descriptor, to hand to an
// external program in exec.Cmd.ExtraFiles. The file is the whole segment:
// Bytes starts at SharedMemoryFileOffset, and its size is fixed (anonymous
// blocks are sealed). The caller closes it.
func (m *SharedMemory) File() (*os.File, error) {
	return m.seg.FD().File("mproc-shm:" + m.seg.Name())
}

// GobEncode implements gob.GobEncoder: a *SharedMemory in the argument of
// Start reaches the child with its descriptor. Elsewhere it fails with
// ErrNotHandle.
func (m *SharedMemory) GobEncode() ([]byte, error) { return m.encode() }

// GobDecode implements gob.GobDecoder for a child receiving its argument.
func (m *SharedMemory) GobDecode(b []byte) (err error) {
	m.object, err = decodeObject(b, shm.KindSharedMemory, 0)
	return err
}
