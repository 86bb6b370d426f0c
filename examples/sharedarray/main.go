// Sharedarray: an Array and a Value in shared memory, updated in place by
// four worker processes, as Python's multiprocessing.Array and Value are.
// Each worker squares its own elements of the array (no two workers touch
// the same element), and all of them count into one Value with atomic Adds,
// so no update is lost. Compound updates hold the object's Lock.
package main

import (
	"context"
	"fmt"
	"log"
	"os"

	"mproc"
)

const workers = 4

type args struct {
	Numbers *mproc.Array[int64]
	Count   *mproc.Value[int64] // Adds by every worker at once
	Largest *mproc.Array[int64] // [largest square, pid that made it]: updated together, under its lock
	Worker  int
}

var work = mproc.Register("work", func(ctx context.Context, a args) error {
	for i := a.Worker; i < a.Numbers.Len(); i += workers { // elements w, w+4, w+8...
		sq := a.Numbers.Load(i) * a.Numbers.Load(i)
		a.Numbers.Store(i, sq)

		l := a.Largest.Lock() // check-then-update of two cells: one at a time
		l.Lock()
		if sq > a.Largest.Load(0) {
			a.Largest.Store(0, sq)
			a.Largest.Store(1, int64(os.Getpid()))
		}
		l.Unlock()
	}
	for range 10000 {
		a.Count.Add(1)
	}
	return nil
})

func main() {
	mproc.Main()
	ctx := context.Background()
	a := args{}
	var err error
	if a.Numbers, err = mproc.NewArrayOf([]int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}); err != nil {
		log.Fatal(err)
	}
	if a.Count, err = mproc.NewValue[int64](0); err != nil {
		log.Fatal(err)
	}
	if a.Largest, err = mproc.NewArray[int64](2); err != nil {
		log.Fatal(err)
	}
	fmt.Println("before:", a.Numbers.Slice())
	var procs []*mproc.Process
	for w := range workers {
		a.Worker = w
		p, err := work.Start(ctx, a, mproc.ProcOptions{})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("worker %d is pid %d\n", w, p.Pid())
		procs = append(procs, p)
	}
	for _, p := range procs {
		if err := p.Wait(ctx); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println("after: ", a.Numbers.Slice())
	fmt.Printf("largest square %d, by pid %d\n", a.Largest.Load(0), a.Largest.Load(1))
	fmt.Printf("count: %d (%d workers x 10000 atomic Adds)\n", a.Count.Load(), workers)
	if a.Count.Load() != workers*10000 || a.Largest.Load(0) != 144 {
		log.Fatal("an update was lost")
	}
}
