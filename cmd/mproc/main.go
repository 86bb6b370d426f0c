// Command mproc inspects and exercises mproc shared objects.
//
// Usage:
//
//	mproc <subcommand> [flags] [args]
//
// Run "mproc help" for the list of subcommands and "mproc help
// <subcommand>" for what one does and its flags. The subcommands: ls (every
// IPC object of the machine, and which are stale), stat (one mproc
// object's header and state), rm, put and get (a named queue from the
// shell), watch (a live view), bench (the benchmark suite) and demo.
//
// Exit status: 0 success, 1 failure (a missing object, a timeout, a
// refused removal, ...), 2 a bad command line.
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
	{"ls", "list the IPC objects of the machine: mproc's, POSIX and SysV queues, SysV shared memory, FIFOs", runLs},
	{"stat", "show one mproc object's header and live state", runStat},
	{"rm", "remove mproc objects that no live process holds", runRm},
	{"put", "put messages read from stdin into a named queue", runPut},
	{"get", "get messages from a named queue and write them to stdout", runGet},
	{"watch", "a live view of mproc objects, refreshed once a second", runWatch},
	{"bench", "run the benchmark suite from the source tree", runBench},
	{"demo", "start child processes that share memory, and contain their faults", runDemo},
}

// Exit statuses, for scripts: 0 success, exitFailure for a failure (a
// missing object, a timeout, a refused removal, ...), exitUsage for a bad
// command line.
const (
	exitFailure = 1
	exitUsage   = 2
)

// errUsage marks an error that run has already reported, with a usage
// message, on stderr: main exits with status 2 without printing it again.
var errUsage = errors.New("usage error")

// argError is a bad argument that no usage message reported: main prints
// it, one line, and exits with status 2.
type argError struct{ msg string }

func (e *argError) Error() string { return e.msg }

func badArgs(format string, args ...any) error { return &argError{fmt.Sprintf(format, args...)} }

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
		if name == "help" && len(args) > 1 {
			return help(ctx, args[1:], stdout, stderr)
		}
		usage(stdout)
		return nil
	}
	if c := lookup(name); c != nil {
		return c.run(ctx, args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "mproc: unknown subcommand %q\n", name)
	usage(stderr)
	return fmt.Errorf("%w: unknown subcommand %q", errUsage, name)
}

func lookup(name string) *subcommand {
	for i := range subcommands {
		if subcommands[i].name == name {
			return &subcommands[i]
		}
	}
	return nil
}

// help is "mproc help CMD": the subcommand's whole help, on stdout.
func help(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := lookup(args[0])
	if c == nil || len(args) > 1 {
		fmt.Fprintf(stderr, "mproc help: want one subcommand name, got %q\n", args)
		usage(stderr)
		return fmt.Errorf("%w: help %q", errUsage, args)
	}
	if err := c.run(ctx, []string{"-h"}, stdout, stdout); !errors.Is(err, flag.ErrHelp) {
		return fmt.Errorf("help %s: %v", c.name, err)
	}
	return nil
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: mproc <subcommand> [flags] [args]\n\nSubcommands:\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range subcommands {
		fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nRun \"mproc help <subcommand>\" for what it does and its flags.\n"+
		"Exit status: 0 success, 1 failure (a missing object, a timeout, ...), 2 a bad command line.\n")
}

// newFlagSet returns a flag set for a subcommand that reports parse errors
// and -h on stderr and returns them (wrapped by parseFlags). args names the
// arguments for the usage line; doc, if not empty, is printed between the
// usage line and the flags.
func newFlagSet(name, args string, stderr io.Writer, doc ...string) *flag.FlagSet {
	fs := flag.NewFlagSet("mproc "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: mproc %s [flags]%s\n\n", name, args)
		if len(doc) > 0 {
			fmt.Fprintf(stderr, "%s\n\n", strings.TrimSpace(doc[0]))
		}
		fmt.Fprintf(stderr, "Flags:\n")
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

// parseArgs is parseFlags for subcommands that take arguments: flags may
// come before, between and after them ("mproc rm a b --force"), and "--"
// ends the flags. It returns the arguments.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parseFlags(fs, args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

// exitCode is the process's exit status for run's result: 0 for success
// and -h, 2 for a usage error (printed unless already reported), 1 for any
// other error, which it prints to stderr.
func exitCode(err error, stderr io.Writer) int {
	var ae *argError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return exitUsage
	case errors.As(err, &ae):
		fmt.Fprintf(stderr, "mproc: %v\n", err)
		return exitUsage
	}
	fmt.Fprintf(stderr, "mproc: %v\n", err)
	return exitFailure
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
