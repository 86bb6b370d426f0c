package main

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"mproc/cluster"
)

// runPut puts each value into the queue, creating it (unbounded, with
// the default options) if need be.
func runPut(ctx context.Context, c *cluster.Conn, _ global, args []string, stdout io.Writer) error {
	if len(args) < 2 {
		return fmt.Errorf("put QUEUE VALUE...")
	}
	q, err := cluster.CreateQueue[string](ctx, c, args[0], 0, cluster.QueueOptions{})
	if err != nil {
		return err
	}
	defer q.Close()
	for _, v := range args[1:] {
		if err := q.Put(ctx, v); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "put %d values into %q\n", len(args)-1, args[0])
	return nil
}

// runGet gets n values, printing and finishing each.
func runGet(ctx context.Context, c *cluster.Conn, _ global, args []string, stdout io.Writer) error {
	if len(args) < 1 || len(args) > 2 {
		return fmt.Errorf("get QUEUE [N]")
	}
	n := 1
	if len(args) == 2 {
		var err error
		if n, err = strconv.Atoi(args[1]); err != nil {
			return fmt.Errorf("get: N: %w", err)
		}
	}
	q, err := cluster.OpenQueue[string](ctx, c, args[0], cluster.QueueOptions{})
	if err != nil {
		return err
	}
	defer q.Close()
	for range n {
		v, err := q.Get(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, v)
		if err := q.TaskDone(ctx); err != nil {
			return err
		}
	}
	return nil
}
