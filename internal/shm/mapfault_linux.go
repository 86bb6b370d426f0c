package shm

import (
	"runtime/debug"
	"unsafe"
)

// CopyGuarded is copy(dst, src) for a copy to or from mapping, a shared file
// mapping that may fault: if the file was truncated under the mapping,
// touching a page wholly past its new end raises SIGBUS, which the Go
// runtime turns into a fatal error.
//
// CopyGuarded copies with debug.SetPanicOnFault(true), restoring the calling
// goroutine's previous setting before it returns. A fault at an address
// inside mapping is reported as ok == false; how much was copied before it is
// unknown, so n is 0 then. A fault elsewhere, and any other panic, is
// re-raised.
func CopyGuarded(dst, src, mapping []byte) (n int, ok bool) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if ok {
			return
		}
		r := recover()
		if f, isFault := r.(interface{ Addr() uintptr }); isFault && inside(mapping, f.Addr()) {
			n = 0
			return
		}
		panic(r)
	}()
	return copy(dst, src), true
}

// inside reports whether addr is the address of a byte of b.
func inside(b []byte, addr uintptr) bool {
	base := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return len(b) > 0 && addr >= base && addr-base < uintptr(len(b))
}
