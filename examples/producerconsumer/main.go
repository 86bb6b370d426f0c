// Producerconsumer: two producer processes put tasks on a JoinableQueue and
// three consumer processes take them. Each consumer calls TaskDone once a
// task is handled, so the parent's Join returns exactly when every task put
// has been handled, not merely taken off the queue.
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"mproc"
)

type task struct {
	Producer, N int
}

type args struct {
	Tasks    *mproc.JoinableQueue[task]
	Handled  *mproc.Value[int64] // tasks handled so far, by anyone
	Producer int
}

const perProducer = 5

var (
	produce = mproc.Register("produce", func(ctx context.Context, a args) error {
		for n := range perProducer {
			if err := a.Tasks.Put(ctx, task{Producer: a.Producer, N: n}); err != nil {
				return err
			}
		}
		return nil
	})
	consume = mproc.Register("consume", func(ctx context.Context, a args) error {
		for t, err := range a.Tasks.All(ctx) { // ends once the queue is shut down and drained
			if err != nil {
				return err
			}
			time.Sleep(20 * time.Millisecond) // the work
			a.Handled.Add(1)
			fmt.Printf("consumer pid %d handled task %d of producer %d\n", os.Getpid(), t.N, t.Producer)
			if err := a.Tasks.TaskDone(); err != nil { // after the work, not after the Get
				return err
			}
		}
		return nil
	})
)

func main() {
	mproc.Main()
	ctx := context.Background()
	tasks, err := mproc.NewJoinableQueue[task](4) // small: producers wait for room
	if err != nil {
		log.Fatal(err)
	}
	handled, err := mproc.NewValue[int64](0)
	if err != nil {
		log.Fatal(err)
	}
	var producers, consumers []*mproc.Process
	for range 3 {
		c, err := consume.Start(ctx, args{Tasks: tasks, Handled: handled}, mproc.ProcOptions{})
		if err != nil {
			log.Fatal(err)
		}
		consumers = append(consumers, c)
	}
	for i := range 2 {
		p, err := produce.Start(ctx, args{Tasks: tasks, Handled: handled, Producer: i}, mproc.ProcOptions{})
		if err != nil {
			log.Fatal(err)
		}
		producers = append(producers, p)
	}

	// Join waits for a TaskDone for every task put so far, wherever it
	// runs. Wait for the producers first, or Join could return between
	// two of their Puts.
	for _, p := range producers {
		if err := p.Wait(ctx); err != nil {
			log.Fatal(err)
		}
	}
	if err := tasks.Join(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("Join returned: %d tasks put, %d handled, %d unfinished\n",
		2*perProducer, handled.Load(), tasks.Unfinished())
	if handled.Load() != 2*perProducer {
		log.Fatal("Join returned before every task was handled")
	}

	tasks.Shutdown() // no more tasks: the consumers' All loops end
	for _, c := range consumers {
		if err := c.Wait(ctx); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println("queue shut down: the consumers ended")
}
