package cluster_test

import (
	"context"
	"fmt"
	"log"
	"sync"

	"mproc/cluster"
)

// A queue on an embedded server: put, get, and done.
func ExampleQueue() {
	ctx := context.Background()
	c, err := cluster.Connect(ctx, cluster.Options{}) // an embedded server, in-process
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	q, err := cluster.CreateQueue[string](ctx, c, "example", 100, cluster.QueueOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer q.Close()
	for _, s := range []string{"a", "b"} {
		if err := q.Put(ctx, s); err != nil {
			log.Fatal(err)
		}
	}
	for range 2 {
		s, err := q.Get(ctx)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(s)
		if err := q.TaskDone(ctx); err != nil { // acknowledged: never delivered again
			log.Fatal(err)
		}
	}
	if err := q.Join(ctx); err != nil {
		log.Fatal(err)
	}
	// Output:
	// a
	// b
}

var cube = cluster.Register("example.cube", func(ctx context.Context, x int) (int, error) { return x * x * x, nil })

// A pool whose worker runs in this process; any process that registers
// the same functions and calls Serve on the same server adds workers.
func ExampleServe() {
	ctx := context.Background()
	c, err := cluster.Connect(ctx, cluster.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { cluster.Serve(wctx, c, cluster.ServeOptions{Pool: "example", Workers: 2}) })
	defer func() { stop(); wg.Wait() }()

	p, err := cluster.OpenPool(ctx, c, "example", cluster.PoolOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Terminate()
	r, err := cube.Submit(p, 3).Result(ctx)
	fmt.Println(r, err)
	rs, err := cube.Map(ctx, p, []int{1, 2, 3, 4})
	fmt.Println(rs, err)
	// Output:
	// 27 <nil>
	// [1 8 27 64] <nil>
}
