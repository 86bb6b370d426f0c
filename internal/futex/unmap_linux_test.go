package futex

import (
	"context"
	"sync"
	"testing"
	"time"

	"unsafe"

	"mproc/internal/unix"
)

// A waiter whose context ends may return while the context's canceller is
// about to wake the word; once Wait has returned, the caller may unmap the
// word (an object closed after a cancelled wait), and a wake of unmapped
// memory is EFAULT, which Wake turns into a panic that ends the process.
// Wait must return only after its canceller has stopped. (Found by
// FuzzLiveSegment; without the fix this loop died within seconds.)
func TestCancelledWaitThenUnmap(t *testing.T) {
	end := time.Now().Add(2 * time.Second)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := 0; time.Now().Before(end); i++ {
				mem, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANONYMOUS)
				if err != nil {
					t.Error(err)
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i%50)*time.Microsecond)
				Wait(ctx, (*uint32)(unsafe.Pointer(&mem[0])), 0, time.Time{})
				cancel()
				if err := unix.Munmap(mem); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}
