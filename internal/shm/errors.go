package shm

import "errors"

// Errors from opening a segment. Each is wrapped with the segment's name and
// the operation; match with errors.Is. A missing segment is os.ErrNotExist,
// an existing name on create os.ErrExist, a closed segment os.ErrClosed.
var (
	// ErrCorrupt: the file is not a valid mproc segment — wrong magic,
	// truncated, bad checksum, not a regular file, a symbolic link, or still
	// uninitialised after InitWait.
	ErrCorrupt = errors.New("mproc: corrupt segment")
	// ErrVersion: the segment was written by an incompatible layout version.
	ErrVersion = errors.New("mproc: unsupported segment version")
	// ErrKind: the segment holds another kind of object.
	ErrKind = errors.New("mproc: segment holds another kind of object")
	// ErrInvalidName: the name cannot name a segment.
	ErrInvalidName = errors.New("mproc: invalid name")
)
