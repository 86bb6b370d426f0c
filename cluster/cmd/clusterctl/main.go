// Command clusterctl looks at and feeds the queues and pools of a NATS
// JetStream server used by mproc/cluster.
//
// Usage:
//
//	clusterctl -nats URL ls                       queues and pools, with their counts
//	clusterctl -nats URL put QUEUE VALUE...       put strings
//	clusterctl -nats URL get QUEUE [N]            get (and finish) N strings, 1 by default
//	clusterctl -nats URL map FUNC ARG...          run a demo function of cmd/worker on each ARG
//
// The queue subcommands handle queues of strings, as cmd/worker's -queue
// does; map knows the demo functions (demo.square, demo.where,
// demo.words) and submits to the pool -pool.
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
	"syscall"

	"mproc/cluster"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "clusterctl:", err)
		}
		os.Exit(1)
	}
}

// A subcommand is one file of this directory.
type subcommand struct {
	name, args, summary string
	run                 func(ctx context.Context, c *cluster.Conn, g global, args []string, stdout io.Writer) error
}

var subcommands = []subcommand{
	{"ls", "", "list queues and pools", runLs},
	{"put", "QUEUE VALUE...", "put strings into a queue (created if need be)", runPut},
	{"get", "QUEUE [N]", "get N strings (default 1), finishing each", runGet},
	{"map", "FUNC ARG...", "run a demo function on each ARG in the pool", runMap},
}

// global holds the flags every subcommand sees.
type global struct {
	pool string
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("clusterctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	urls := fs.String("nats", os.Getenv("NATS_URL"), "NATS server URLs, comma-separated (default $NATS_URL)")
	pool := fs.String("pool", cluster.DefaultPool, "the pool map submits to")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: clusterctl -nats URL [-pool NAME] SUBCOMMAND [ARGS]")
		for _, s := range subcommands {
			fmt.Fprintf(stderr, "  %-4s %-16s %s\n", s.name, s.args, s.summary)
		}
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 || *urls == "" {
		fs.Usage()
		return flag.ErrHelp
	}
	for _, s := range subcommands {
		if s.name != fs.Arg(0) {
			continue
		}
		c, err := cluster.Connect(ctx, cluster.Options{URLs: strings.Split(*urls, ",")})
		if err != nil {
			return err
		}
		defer c.Close()
		return s.run(ctx, c, global{pool: *pool}, fs.Args()[1:], stdout)
	}
	fs.Usage()
	return fmt.Errorf("no subcommand %q", fs.Arg(0))
}
