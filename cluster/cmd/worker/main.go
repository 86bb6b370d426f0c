// Command worker serves a cluster pool — the demo functions of
// mproc/cluster/internal/demo — and, with -queue, consumes a queue of
// strings, printing each. Without -nats it embeds a NATS server with
// JetStream, listening on -listen, and prints the URL the others use.
//
// Two terminals sharing one queue and one pool:
//
//	terminal 1$ go run ./cluster/cmd/worker -queue jobs
//	            worker: embedded NATS server; others connect with -nats nats://TOKEN@127.0.0.1:4222
//	terminal 2$ go run ./cluster/cmd/worker -queue jobs -nats nats://TOKEN@127.0.0.1:4222
//	terminal 2$ go run ./cluster/cmd/clusterctl -nats nats://TOKEN@127.0.0.1:4222 put jobs a b c d
//	terminal 2$ go run ./cluster/cmd/clusterctl -nats nats://TOKEN@127.0.0.1:4222 map demo.where 300 300 300 300
//
// Both workers print their share of the jobs, and the map's results name
// both processes. Stop a worker with Ctrl-C: its running tasks go to the
// other. Kill one with SIGKILL mid-task: its task goes to the other after
// the pool's AckWait (-ackwait, 30 s by default).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"mproc/cluster"
	_ "mproc/cluster/internal/demo" // the functions served
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if ctx.Err() != nil {
		err = nil // stopped by a signal, perhaps in the middle of starting
	}
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "worker:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	urls := fs.String("nats", "", "NATS server URLs, comma-separated; none: embed a server")
	listen := fs.String("listen", "127.0.0.1:4222", "the embedded server's address for other processes")
	token := fs.String("token", "", "the embedded server's token (default: a random one)")
	dir := fs.String("dir", "", "the embedded server's store (default: a temporary directory)")
	poolName := fs.String("pool", cluster.DefaultPool, "the pool to serve")
	workers := fs.Int("workers", 0, "tasks run at once (default: the number of CPUs)")
	queue := fs.String("queue", "", "also take strings from this queue and print them")
	ackWait := fs.Duration("ackwait", 0, "AckWait of the pool and queue, if this worker creates them (default 30s)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	opts := cluster.Options{Token: *token, Dir: *dir}
	if *urls != "" {
		opts.URLs = strings.Split(*urls, ",")
	} else {
		opts.Listen = *listen
	}
	c, err := cluster.Connect(ctx, opts)
	if err != nil {
		return err
	}
	defer c.Close()
	if c.Server() != nil {
		fmt.Fprintf(stdout, "worker: embedded NATS server; others connect with -nats %s\n", c.URL())
	} else {
		fmt.Fprintf(stdout, "worker: connected to %s\n", c.URL())
	}
	storage := cluster.Storage{AckWait: *ackWait}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	if *queue != "" {
		q, err := cluster.CreateQueue[string](ctx, c, *queue, 0, cluster.QueueOptions{Storage: storage})
		if err != nil {
			return err
		}
		defer q.Close()
		wg.Go(func() { errs <- consume(ctx, q, stdout) })
	}
	fmt.Fprintf(stdout, "worker: pid %d serving pool %q\n", os.Getpid(), *poolName)
	wg.Go(func() {
		errs <- cluster.Serve(ctx, c, cluster.ServeOptions{Pool: *poolName, Workers: *workers, Storage: storage})
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// consume prints the queue's strings until ctx ends.
func consume(ctx context.Context, q *cluster.Queue[string], stdout io.Writer) error {
	for {
		d, err := q.Receive(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			fmt.Fprintln(stdout, "worker:", err)
			continue
		}
		fmt.Fprintf(stdout, "worker: pid %d got %q from queue %q (attempt %d)\n", os.Getpid(), d.Value, q.Name(), d.Attempt())
		time.Sleep(100 * time.Millisecond) // the work
		if err := d.Done(ctx); err != nil {
			fmt.Fprintln(stdout, "worker:", err)
		}
	}
}
