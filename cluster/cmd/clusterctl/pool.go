package main

import (
	"context"
	"fmt"
	"io"

	"mproc/cluster"
	"mproc/cluster/internal/demo"
)

// runMap runs a demo function on each argument in the pool and prints
// the results (or errors), in order.
func runMap(ctx context.Context, c *cluster.Conn, g global, args []string, stdout io.Writer) error {
	if len(args) < 2 {
		return fmt.Errorf("map FUNC ARG... (FUNC one of %v)", demo.Names)
	}
	p, err := cluster.OpenPool(ctx, c, g.pool, cluster.PoolOptions{})
	if err != nil {
		return err
	}
	defer p.Terminate()
	lines, err := demo.Map(ctx, p, args[0], args[1:])
	if err != nil {
		return err
	}
	for _, l := range lines {
		fmt.Fprintln(stdout, l)
	}
	return nil
}
