// Pool runs a registered function in worker processes two ways: blocking
// (Submit, then Result; Map) and asynchronous (OnDone callbacks, and
// AsCompleted to take results in the order they finish).
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"sync"
	"time"

	"mproc"
	"mproc/pool"
)

// collatz counts the steps of n to 1, slowly, and says which worker did it.
var collatz = pool.Register("collatz", func(ctx context.Context, n int) (string, error) {
	steps := 0
	for x := n; x != 1; steps++ {
		if x%2 == 0 {
			x /= 2
		} else {
			x = 3*x + 1
		}
	}
	time.Sleep(time.Duration(n%5) * 10 * time.Millisecond) // uneven work
	return fmt.Sprintf("%d takes %d steps (worker %d)", n, steps, os.Getpid()), nil
})

func main() {
	mproc.Main() // in a worker, this runs the tasks and never returns
	ctx := context.Background()
	p, err := pool.New(ctx, pool.Options{Workers: 3})
	if err != nil {
		log.Fatal(err)
	}

	// Synchronous: submit, then block on the result, in order.
	fmt.Println("-- blocking Result, in submission order")
	var fs []*pool.Future[string]
	for _, n := range []int{27, 9, 97, 3} {
		fs = append(fs, collatz.Submit(p, n))
	}
	for _, f := range fs {
		s, err := f.Result(ctx)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(s)
	}
	rs, err := collatz.Map(ctx, p, []int{6, 7, 8}) // the same, in one call
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("Map:", len(rs), "results in order;", rs[0])

	// Asynchronous: nobody waits on a particular future; callbacks run
	// as each task finishes, in completion order.
	fmt.Println("-- OnDone callbacks, in completion order")
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, n := range []int{44, 12, 31, 50} {
		wg.Add(1)
		collatz.Submit(p, n).OnDone(func(s string, err error) {
			defer wg.Done()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				fmt.Println("failed:", err)
				return
			}
			fmt.Println(s)
		})
	}
	wg.Wait()

	fmt.Println("-- AsCompleted")
	fs = fs[:0]
	for _, n := range []int{14, 23, 5} {
		fs = append(fs, collatz.Submit(p, n))
	}
	for f, err := range pool.AsCompleted(ctx, fs...) {
		if err != nil {
			log.Fatal(err)
		}
		s, err := f.Result(ctx)
		fmt.Println(s, err)
	}

	p.Close() // no new work; the workers exit once idle
	if err := p.Wait(ctx); err != nil {
		log.Fatal(err)
	}
}
