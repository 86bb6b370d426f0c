package mproc

import (
	"bytes"
	"encoding/gob"
	"fmt"
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
	seg *shm.Segment
}

// NewSharedMemory creates an anonymous shared memory block of size bytes,
// zeroed. It has no name: pass it to children inside the argument of Start.
func NewSharedMemory(size int) (*SharedMemory, error) {
	seg, err := shm.NewAnonymous(shm.KindSharedMemory, size, shm.CreateOptions{})
	if err != nil {
		return nil, err
	}
	return &SharedMemory{seg: seg}, nil
}

// CreateSharedMemory creates the named shared memory block name of size
// bytes, zeroed, readable and writable by the owner only (0600). It fails
// with os.ErrExist if the name is taken and ErrInvalidName for a bad name.
func CreateSharedMemory(name string, size int) (*SharedMemory, error) {
	seg, err := shm.Create(name, shm.KindSharedMemory, size, shm.CreateOptions{})
	if err != nil {
		return nil, err
	}
	return &SharedMemory{seg: seg}, nil
}

// OpenSharedMemory opens the named shared memory block name. It fails with
// os.ErrNotExist, ErrCorrupt, ErrVersion or ErrKind when name is not a valid
// shared memory block.
func OpenSharedMemory(name string) (*SharedMemory, error) {
	seg, err := shm.Open(name, shm.KindSharedMemory, shm.OpenOptions{})
	if err != nil {
		return nil, err
	}
	return &SharedMemory{seg: seg}, nil
}

// Name returns the block's name, "" for an anonymous block.
func (m *SharedMemory) Name() string { return m.seg.Name() }

// Bytes returns the shared memory. It must not be used after Close.
func (m *SharedMemory) Bytes() []byte { return m.seg.Data() }

// Size returns the size of the block in bytes.
func (m *SharedMemory) Size() int { return len(m.seg.Data()) }

// Close unmaps the block in this process. Other processes keep it.
func (m *SharedMemory) Close() error { return m.seg.Close() }

// Remove removes the block's name, so it can no longer be opened; processes
// that have it open keep using it. Anonymous blocks have nothing to remove.
func (m *SharedMemory) Remove() error {
	if m.seg.Name() == "" {
		return nil
	}
	return shm.Unlink(m.seg.Name())
}

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

// wireHandle is how a handle is encoded in a child's argument: the index of
// its descriptor in the side table, and its name.
type wireHandle struct {
	FD   int
	Name string
}

// GobEncode implements gob.GobEncoder: a *SharedMemory in the argument of
// Start reaches the child with its descriptor. Elsewhere it fails with
// ErrNotHandle.
func (m *SharedMemory) GobEncode() ([]byte, error) {
	i, err := passFD(m.seg.FD())
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	err = gob.NewEncoder(&buf).Encode(wireHandle{FD: i, Name: m.seg.Name()})
	return buf.Bytes(), err
}

// GobDecode implements gob.GobDecoder for a child receiving its argument.
func (m *SharedMemory) GobDecode(b []byte) error {
	var w wireHandle
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&w); err != nil {
		return err
	}
	f, err := claimFD(w.FD)
	if err != nil {
		return err
	}
	seg, err := shm.FromFD(f, shm.KindSharedMemory)
	if err != nil {
		return fmt.Errorf("shared memory %q: %w", w.Name, err)
	}
	seg.SetName(w.Name)
	m.seg = seg
	return nil
}
