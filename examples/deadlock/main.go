// Deadlock (that is not): a child takes a lock and is killed with SIGKILL
// while holding it. The parent, already waiting, gets the lock within
// tens of milliseconds together with ErrOwnerDead, repairs the state the
// lock protects and marks it consistent.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"mproc"
)

type args struct {
	L       *mproc.Lock
	Balance *mproc.Value[int64]
	Held    *mproc.Event
}

// transfer takes the lock, starts an update, and hangs half-way through.
var transfer = mproc.Register("transfer", func(ctx context.Context, a args) error {
	a.L.Lock()
	a.Balance.Store(-1) // half-written state
	a.Held.Set()
	select {} // killed here
})

func main() {
	mproc.Main()
	ctx := context.Background()
	l, err := mproc.NewLock()
	if err != nil {
		log.Fatal(err)
	}
	balance, err := mproc.NewValue[int64](100)
	if err != nil {
		log.Fatal(err)
	}
	held, err := mproc.NewEvent()
	if err != nil {
		log.Fatal(err)
	}
	p, err := transfer.Start(ctx, args{L: l, Balance: balance, Held: held}, mproc.ProcOptions{})
	if err != nil {
		log.Fatal(err)
	}
	held.Wait(ctx)
	go func() { time.Sleep(50 * time.Millisecond); p.Kill() }()

	t0 := time.Now()
	err = l.LockContext(ctx) // waits for the holder, who dies
	if !errors.Is(err, mproc.ErrOwnerDead) {
		log.Fatalf("expected ErrOwnerDead, got %v", err)
	}
	fmt.Printf("lock taken %v after waiting: %v; balance reads %d\n", time.Since(t0).Round(time.Millisecond), err, balance.Load())
	balance.Store(100) // repair from a journal, a checkpoint, ...
	l.MarkConsistent()
	l.Unlock()
	fmt.Println("state repaired, lock consistent:", l.Consistent(), "; the child ended with:", p.Wait(ctx))
}
