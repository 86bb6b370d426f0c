// Flashsale: ten buyer processes rush a shop that lets at most three in
// at a time. A Semaphore of three units is the door: a buyer Acquires a
// unit to enter and Releases it on the way out. Shared counters record how
// many are inside and the most there ever were.
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"mproc"
)

const (
	buyers = 10
	limit  = 3
)

type args struct {
	Door   *mproc.Semaphore
	Open   *mproc.Event        // the sale starts: everyone rushes at once
	Inside *mproc.Value[int64] // buyers inside now
	Peak   *mproc.Value[int64] // the most inside at once
	Buyer  int
}

var buy = mproc.Register("buy", func(ctx context.Context, a args) error {
	if err := a.Open.Wait(ctx); err != nil {
		return err
	}
	if err := a.Door.Acquire(ctx); err != nil { // waits while three are inside
		return err
	}
	n := a.Inside.Add(1)
	for peak := a.Peak.Load(); n > peak; peak = a.Peak.Load() { // raise Peak to n
		if a.Peak.CompareAndSwap(peak, n) {
			break
		}
	}
	fmt.Printf("buyer %d (pid %d) in: %d inside\n", a.Buyer, os.Getpid(), n)
	time.Sleep(30 * time.Millisecond) // choose, pay
	a.Inside.Add(-1)
	return a.Door.Release() // the next buyer waiting gets in
})

func main() {
	mproc.Main()
	ctx := context.Background()
	a := args{}
	var err error
	if a.Door, err = mproc.NewSemaphore(limit); err != nil {
		log.Fatal(err)
	}
	if a.Open, err = mproc.NewEvent(); err != nil {
		log.Fatal(err)
	}
	if a.Inside, err = mproc.NewValue[int64](0); err != nil {
		log.Fatal(err)
	}
	if a.Peak, err = mproc.NewValue[int64](0); err != nil {
		log.Fatal(err)
	}
	var procs []*mproc.Process
	for i := range buyers {
		a.Buyer = i
		p, err := buy.Start(ctx, a, mproc.ProcOptions{})
		if err != nil {
			log.Fatal(err)
		}
		procs = append(procs, p)
	}
	t0 := time.Now()
	a.Open.Set()
	for _, p := range procs {
		if err := p.Wait(ctx); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Printf("%d buyers served in %v; at most %d inside at once (the limit is %d)\n",
		buyers, time.Since(t0).Round(10*time.Millisecond), a.Peak.Load(), limit)
	if a.Peak.Load() > limit {
		log.Fatal("the semaphore let too many in")
	}
}
