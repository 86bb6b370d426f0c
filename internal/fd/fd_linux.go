// Package fd provides owned file descriptors.
//
// An *FD owns one descriptor: Close releases it exactly once, Disown hands the
// raw number to the caller, and Dup makes an independent copy that is always
// close-on-exec. A runtime cleanup closes a descriptor whose *FD became
// unreachable without Close, so a forgotten handle leaks nothing; code that
// passes Int() to a raw call must keep the *FD alive (runtime.KeepAlive) until
// the call returns.
package fd

import (
	"fmt"
	"os"
	"runtime"
	"sync"

	"mproc/internal/unix"
)

// FD is an owned file descriptor. It is safe for concurrent use; Close,
// Disown and Int may race, and the losers see os.ErrClosed / -1.
type FD struct {
	mu      sync.Mutex
	raw     int
	cleanup runtime.Cleanup
}

// New takes ownership of raw. A negative raw is an error.
func New(raw int) (*FD, error) {
	if raw < 0 {
		return nil, fmt.Errorf("invalid file descriptor %d", raw)
	}
	f := &FD{raw: raw}
	f.cleanup = runtime.AddCleanup(f, func(raw int) { _ = unix.Close(raw) }, raw)
	return f, nil
}

// Int returns the descriptor number, or -1 once closed or disowned.
func (f *FD) Int() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.raw
}

// Close closes the descriptor. A second Close returns os.ErrClosed.
func (f *FD) Close() error {
	raw := f.Disown()
	if raw < 0 {
		return os.ErrClosed
	}
	return unix.Close(raw)
}

// Disown gives up ownership and returns the raw descriptor, which the caller
// must now close. It returns -1 if the FD was already closed or disowned.
func (f *FD) Disown() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	raw := f.raw
	if raw >= 0 {
		f.cleanup.Stop()
		f.raw = -1
	}
	return raw
}

// Dup returns an owned, close-on-exec duplicate of the descriptor.
func (f *FD) Dup() (*FD, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.raw < 0 {
		return nil, os.ErrClosed
	}
	raw, err := unix.FcntlInt(uintptr(f.raw), unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		return nil, fmt.Errorf("dup fd %d: %w", f.raw, err)
	}
	return New(raw)
}

// File returns an *os.File for a close-on-exec duplicate of the descriptor;
// the FD stays owned by the caller.
func (f *FD) File(name string) (*os.File, error) {
	d, err := f.Dup()
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(d.Disown()), name), nil
}

// IsCloexec reports whether raw has FD_CLOEXEC set.
func IsCloexec(raw int) (bool, error) {
	fl, err := unix.FcntlInt(uintptr(raw), unix.F_GETFD, 0)
	if err != nil {
		return false, err
	}
	return fl&unix.FD_CLOEXEC != 0, nil
}

// SetCloexec sets FD_CLOEXEC on raw.
func SetCloexec(raw int) error {
	fl, err := unix.FcntlInt(uintptr(raw), unix.F_GETFD, 0)
	if err != nil {
		return err
	}
	_, err = unix.FcntlInt(uintptr(raw), unix.F_SETFD, fl|unix.FD_CLOEXEC)
	return err
}

// FromRights takes over the descriptors of the SCM_RIGHTS messages in oob,
// the control data of a recvmsg.
func FromRights(oob []byte) ([]*FD, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, err
	}
	var out []*FD
	for _, m := range msgs {
		raws, err := unix.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		for _, r := range raws {
			if f, err := New(r); err == nil {
				out = append(out, f)
			}
		}
	}
	return out, nil
}
