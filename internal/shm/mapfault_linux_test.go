package shm

import "testing"

// BenchmarkCopyGuarded prices the guard that would turn a truncated
// segment's SIGBUS into an error (debug.SetPanicOnFault around the access,
// a deferred recover): CopyGuarded of 64 bytes against a plain copy. The
// difference is what every queue and lock operation would pay for it,
// which is why they are not guarded (RELIABILITY.md has the figures).
func BenchmarkCopyGuarded(b *testing.B) {
	src, dst := make([]byte, 64), make([]byte, 64)
	b.Run("plain", func(b *testing.B) {
		for b.Loop() {
			copy(dst, src)
		}
	})
	b.Run("guarded", func(b *testing.B) {
		for b.Loop() {
			CopyGuarded(dst, src, src)
		}
	})
}
