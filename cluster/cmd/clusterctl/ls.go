package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"mproc/cluster"
)

// runLs lists the server's mproc streams: queues with their waiting,
// held and dead messages, pools with their waiting tasks.
func runLs(ctx context.Context, c *cluster.Conn, _ global, args []string, stdout io.Writer) error {
	if len(args) > 0 {
		return fmt.Errorf("ls takes no arguments")
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tNAME\tMESSAGES\tDETAIL")
	lister := c.JetStream().ListStreams(ctx)
	for info := range lister.Info() {
		name := info.Config.Name
		switch {
		case strings.HasPrefix(name, "MPQ_"):
			q, err := cluster.OpenQueue[[]byte](ctx, c, name[4:], cluster.QueueOptions{})
			if err != nil {
				return err
			}
			st, err := q.Stats(ctx)
			q.Close()
			if err != nil {
				return err
			}
			capacity := "unbounded"
			if q.Cap() > 0 {
				capacity = fmt.Sprintf("capacity %d", q.Cap())
			}
			fmt.Fprintf(tw, "queue\t%s\t%d\t%d waiting, %d held, %d dead; %s, %d replicas\n",
				name[4:], info.State.Msgs, st.Waiting, st.Held, st.Dead, capacity, info.Config.Replicas)
		case strings.HasPrefix(name, "MPP_"):
			fmt.Fprintf(tw, "pool\t%s\t%d\ttasks waiting or running; %d replicas\n", name[4:], info.State.Msgs, info.Config.Replicas)
		}
	}
	if err := lister.Err(); err != nil {
		return err
	}
	return tw.Flush()
}
