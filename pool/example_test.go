package pool_test

import (
	"context"
	"fmt"
	"log"

	"mproc/pool"
)

// square runs in the pool's worker processes; it is registered at package
// level so that the workers (the same binary) know it too.
var square = pool.Register("example-square", func(ctx context.Context, x int) (int, error) {
	return x * x, nil
})

func Example() {
	ctx := context.Background()
	p, err := pool.New(ctx, pool.Options{Workers: 2})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Terminate()

	r, err := square.Submit(p, 7).Result(ctx) // one task, one Future
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(r)

	rs, err := square.Map(ctx, p, []int{1, 2, 3, 4}) // results in order
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(rs)

	p.Close() // no more tasks
	if err := p.Wait(ctx); err != nil {
		log.Fatal(err)
	}
	// Output:
	// 49
	// [1 4 9 16]
}
