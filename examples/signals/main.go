// Signals: the os/signal way between Go processes. A signal carries no
// data a Go program can read, so the child is woken by SIGUSR1 and reads
// what the parent meant from a Queue; SignalWithValue is for C peers that
// read si_value (see its doc).
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"

	"mproc"
)

type args struct {
	Orders *mproc.Queue[string]
	Ready  *mproc.Event
}

var child = mproc.Register("child", func(ctx context.Context, a args) error {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGUSR1)
	a.Ready.Set()
	for done := 0; done < 2; {
		select {
		case <-sigs:
			// Signals of one kind coalesce: take every order waiting.
			for {
				order, err := a.Orders.TryGet()
				if err != nil {
					break
				}
				fmt.Printf("child %d: SIGUSR1, order %q\n", os.Getpid(), order)
				done++
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
})

func main() {
	mproc.Main()
	ctx := context.Background()
	orders, err := mproc.NewQueue[string](8)
	if err != nil {
		log.Fatal(err)
	}
	ready, err := mproc.NewEvent()
	if err != nil {
		log.Fatal(err)
	}
	p, err := child.Start(ctx, args{Orders: orders, Ready: ready}, mproc.ProcOptions{})
	if err != nil {
		log.Fatal(err)
	}
	ready.Wait(ctx)
	for _, o := range []string{"reload the configuration", "rotate the logs"} {
		orders.Put(ctx, o) // the data first, then the wake-up
		p.Signal(syscall.SIGUSR1)
	}
	if err := p.Wait(ctx); err != nil {
		log.Fatal(err)
	}
}
