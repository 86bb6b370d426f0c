package failpoint_test

import (
	"testing"

	"mproc/internal/failpoint"
)

// BenchmarkHit is the cost of a failpoint on a hot path: nothing in a
// normal build (the empty Hit is inlined away), a map look-up with the
// mprocfail tag.
func BenchmarkHit(b *testing.B) {
	for b.Loop() {
		failpoint.Hit("bench.point")
	}
}
