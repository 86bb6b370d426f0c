// Command mproc inspects and exercises mproc shared objects.
//
// Usage:
//
//	mproc <subcommand> [flags] [args]
//
// Run "mproc help" for the list of subcommands and "mproc <subcommand> -h"
// for a subcommand's flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"text/tabwriter"

	"mproc"
)

func main() {
	mproc.Main() // a child started by a subcommand runs its function here and exits
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// A subcommand is one file of this directory, listed in subcommands.
type subcommand struct {
	name    string
	summary string // one line for the usage message
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// subcommands are listed, in this order, by the usage message.
var subcommands = []subcommand{
	{"demo", "start child processes that share memory, and contain their faults", runDemo},
}

// errUsage marks an error that run has already reported, with a usage
// message, on stderr: main exits with status 2 without printing it again.
var errUsage = errors.New("usage error")

// run runs the subcommand named by args[0] with the rest of args. ctx is
// cancelled on SIGINT and SIGTERM; a subcommand stops its children and
// returns when it is.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		usage(stderr)
		return fmt.Errorf("%w: no subcommand", errUsage)
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return nil
	}
	for _, c := range subcommands {
		if c.name == name {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "mproc: unknown subcommand %q\n", name)
	usage(stderr)
	return fmt.Errorf("%w: unknown subcommand %q", errUsage, name)
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: mproc <subcommand> [flags] [args]\n\nSubcommands:\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range subcommands {
		fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nRun \"mproc <subcommand> -h\" for its flags.\n")
}

// newFlagSet returns a flag set for a subcommand that reports parse errors
// and -h on stderr and returns them (wrapped by parseFlags).
func newFlagSet(name, args string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("mproc "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: mproc %s [flags]%s\n\nFlags:\n", name, args)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args into fs; a bad flag, already reported by fs, is
// an errUsage, and -h is flag.ErrHelp.
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	return err
}

// exitCode is the process's exit status for run's result: 0 for success
// and -h, 2 for a usage error (already reported), 1 for any other error,
// which it prints to stderr.
func exitCode(err error, stderr io.Writer) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	}
	fmt.Fprintf(stderr, "mproc: %v\n", err)
	return 1
}

// syncWriter serialises writes to w, which the parent and the output
// copiers of its children share. A child's short line is one write to its
// pipe and arrives as one Write here, so lines do not interleave.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
