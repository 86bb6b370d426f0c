// Tickets: six seller processes sell from one shared stock of 100 tickets.
// Each sale is check-then-update: read the stock, do the paperwork, write
// the stock less one. Under a Lock the sales are exact; without it, sellers
// read the same stock and overwrite each other's updates, and more tickets
// are sold than there were.
package main

import (
	"context"
	"fmt"
	"log"
	"time"

	"mproc"
)

const (
	stock   = 100
	sellers = 6
)

type args struct {
	Stock  *mproc.Value[int64]
	Sold   *mproc.Array[int64] // Sold[i]: tickets seller i sold (its own cell: no race)
	Lock   *mproc.Lock         // nil: sell without the lock
	Start  *mproc.Event        // every seller starts at once
	Seller int
}

var sell = mproc.Register("sell", func(ctx context.Context, a args) error {
	if err := a.Start.Wait(ctx); err != nil {
		return err
	}
	for {
		if a.Lock != nil {
			a.Lock.Lock()
		}
		left := a.Stock.Load()
		if left > 0 {
			time.Sleep(200 * time.Microsecond) // print the ticket, take the money
			a.Stock.Store(left - 1)
			a.Sold.Add(a.Seller, 1)
		}
		if a.Lock != nil {
			a.Lock.Unlock()
		}
		if left <= 0 {
			return nil
		}
	}
})

// sellOut runs the sellers until the stock is gone and returns the number
// of tickets sold.
func sellOut(ctx context.Context, lock *mproc.Lock) int64 {
	a := args{Lock: lock, Stock: must(mproc.NewValue[int64](stock)),
		Sold: must(mproc.NewArray[int64](sellers)), Start: must(mproc.NewEvent())}
	var procs []*mproc.Process
	for i := range sellers {
		a.Seller = i
		procs = append(procs, must(sell.Start(ctx, a, mproc.ProcOptions{})))
	}
	a.Start.Set()
	for _, p := range procs {
		if err := p.Wait(ctx); err != nil {
			log.Fatal(err)
		}
	}
	var total int64
	for _, n := range a.Sold.Slice() {
		total += n
	}
	fmt.Printf("  sold per seller %v: %d tickets sold from a stock of %d\n", a.Sold.Slice(), total, stock)
	return total
}

func main() {
	mproc.Main()
	ctx := context.Background()

	fmt.Println("with the lock:")
	if sold := sellOut(ctx, must(mproc.NewLock())); sold != stock {
		log.Fatalf("the lock failed: %d sold", sold)
	}
	fmt.Println("  exact: every ticket sold once")

	fmt.Println("without the lock:")
	if sold := sellOut(ctx, nil); sold > stock {
		fmt.Printf("  oversold by %d: sellers read the same stock and overwrote each other's sales\n", sold-stock)
	} else {
		fmt.Println("  no oversell this time: the race is a matter of timing, the lock is not")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		log.Fatal(err)
	}
	return v
}
