package psync

import "unsafe"

// Sizes of the structures, for the segments that hold them. The init
// function keeps them true.
const (
	MutexSize     = 24
	RMutexSize    = 32
	RWMutexSize   = 48 + NRecords*16
	SemaphoreSize = 40 + NRecords*16
	EventSize     = 8
	CondSize      = 8
	BarrierSize   = 48 + MaxParties*8
)

func init() {
	if unsafe.Sizeof(Mutex{}) != MutexSize || unsafe.Sizeof(RMutex{}) != RMutexSize ||
		unsafe.Sizeof(RWMutex{}) != RWMutexSize || unsafe.Sizeof(Semaphore{}) != SemaphoreSize ||
		unsafe.Sizeof(Event{}) != EventSize || unsafe.Sizeof(Cond{}) != CondSize ||
		unsafe.Sizeof(Barrier{}) != BarrierSize {
		panic("mproc: psync sizes changed")
	}
}
