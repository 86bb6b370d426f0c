package testenv

import (
	"encoding/binary"
	"runtime"

	"mproc/internal/wire"
)

// Allocated runs f and returns how many bytes the process allocated
// meanwhile (runtime.MemStats.TotalAlloc): f's and every goroutine's (a
// server's in this process too).
func Allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// MaxAlloc is what a refused claim may cost in the tests of hostile
// frames: buffers and errors, far below the gigabytes their claims announce.
const MaxAlloc = 16 << 20

// FrameHeader returns the frame header announcing n bytes: the 4-byte form
// up to wire.MaxShortFrame, the 12-byte form beyond, for any n a hostile
// peer may claim (wire.AppendHeader takes only an int).
func FrameHeader(n uint64) []byte {
	if n <= wire.MaxShortFrame {
		return binary.BigEndian.AppendUint32(nil, uint32(n))
	}
	return binary.BigEndian.AppendUint64([]byte{0xff, 0xff, 0xff, 0xff}, n)
}
