// Queue: two producer processes and two consumer processes share one
// queue in shared memory; the parent closes it when the producers are
// done, and the consumers drain it and stop.
package main

import (
	"context"
	"fmt"
	"log"

	"mproc"
)

type job struct {
	From, N int
}

type args struct {
	Jobs    *mproc.Queue[job]
	Results *mproc.Queue[int64]
	From    int
}

var (
	produce = mproc.Register("produce", func(ctx context.Context, a args) error {
		for n := range 1000 {
			if err := a.Jobs.Put(ctx, job{From: a.From, N: n}); err != nil {
				return err
			}
		}
		return nil
	})
	consume = mproc.Register("consume", func(ctx context.Context, a args) error {
		var sum int64
		for j, err := range a.Jobs.All(ctx) { // ends when the queue is closed and drained
			if err != nil {
				return err
			}
			sum += int64(j.N)
		}
		return a.Results.Put(ctx, sum)
	})
)

func main() {
	mproc.Main()
	ctx := context.Background()
	jobs, err := mproc.NewQueue[job](64) // job is fixed-size: it crosses as memory
	if err != nil {
		log.Fatal(err)
	}
	results, err := mproc.NewQueue[int64](4)
	if err != nil {
		log.Fatal(err)
	}
	var producers, consumers []*mproc.Process
	for i := range 2 {
		p, err := produce.Start(ctx, args{Jobs: jobs, From: i}, mproc.ProcOptions{})
		if err != nil {
			log.Fatal(err)
		}
		producers = append(producers, p)
		c, err := consume.Start(ctx, args{Jobs: jobs, Results: results}, mproc.ProcOptions{})
		if err != nil {
			log.Fatal(err)
		}
		consumers = append(consumers, c)
	}
	for _, p := range producers {
		if err := p.Wait(ctx); err != nil {
			log.Fatal(err)
		}
	}
	jobs.Shutdown() // no more jobs: the consumers drain the queue and return
	var total int64
	for _, c := range consumers {
		if err := c.Wait(ctx); err != nil {
			log.Fatal(err)
		}
		sum, err := results.Get(ctx)
		if err != nil {
			log.Fatal(err)
		}
		total += sum
	}
	want := int64(2 * 999 * 1000 / 2)
	fmt.Printf("2 producers, 2 consumers: sum of job numbers %d (want %d)\n", total, want)
	if total != want {
		log.Fatal("jobs lost or duplicated")
	}
}
