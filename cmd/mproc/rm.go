package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"mproc/internal/shm"
)

const rmDoc = `
Remove mproc objects (the files /dev/shm/mproc.NAME), as Remove does:
processes that have an object open keep using it, and nobody can open it
by name any more.

"mproc rm NAME..." removes the named objects, but never one that a live
process holds unless --force is given: one that is not stale, as "mproc help
ls" defines it (its creator, a process with it open, or a process its memory
records, such as a lock's holder or a queue's attached producer, is alive).
"mproc rm --stale" removes every stale mproc object, or those whose names
start with --prefix.

Each removal is reported on stdout ("removed queue jobs"). A name that is
not there, a refusal or a failure is reported on stderr, one line each, and
the exit status is then 1 (the other names are still removed). A process
may open an object between the check and the removal: a live process that
opens a stale object by name races with rm.

POSIX and SysV objects and FIFOs are not removed here (rm /dev/mqueue/NAME,
ipcrm, rm PATH).`

func runRm(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("rm", " NAME... | --stale", stderr, rmDoc)
	force := fs.Bool("force", false, "remove named objects even if live processes hold them")
	stale := fs.Bool("stale", false, "remove every stale mproc object")
	dryRun := fs.Bool("dry-run", false, "say what would be removed, and remove nothing")
	prefix := fs.String("prefix", "", "with --stale: only objects whose names start with `P`")
	names, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	switch {
	case *stale && len(names) > 0:
		return badArgs("rm: --stale takes no names")
	case *stale && *force:
		return badArgs("rm: --stale and --force do not go together")
	case !*stale && len(names) == 0:
		return badArgs("rm: want object names, or --stale")
	case !*stale && *prefix != "":
		return badArgs("rm: --prefix goes with --stale")
	}
	for _, n := range names { // every name is checked before anything is removed
		if err := shm.ValidateName(n); err != nil {
			return badArgs("rm: %s", oneLine(err))
		}
	}
	verb := "removed"
	if *dryRun {
		verb = "would remove"
	}
	var fails failures
	remove := func(e entry) {
		if *dryRun {
			fmt.Fprintf(stdout, "%s %s %s\n", verb, e.Kind, e.Name)
			return
		}
		if err := shm.Unlink(e.Name); err != nil {
			fails.add(stderr, rmError(e.Name, err))
			return
		}
		fmt.Fprintf(stdout, "%s %s %s\n", verb, e.Kind, e.Name)
	}
	if *stale {
		es, err := listMproc()
		if err != nil {
			return fmt.Errorf("rm: %w", err)
		}
		addOpeners(es)
		n := 0
		for _, e := range es {
			if e.Stale && strings.HasPrefix(e.Name, *prefix) {
				remove(e)
				n++
			}
		}
		if n == 0 {
			fmt.Fprintln(stderr, "mproc rm: no stale mproc objects")
		}
		return fails.err()
	}
	for _, name := range names {
		in, err := inspectMproc("rm", name)
		if err != nil {
			fails.add(stderr, err)
			continue
		}
		es := []entry{mprocEntry(in)}
		addOpeners(es)
		e := es[0]
		if !e.Stale && !*force {
			fails.add(stderr, fmt.Errorf("rm: %s %s is held by %s: not removed (--force removes it)", e.Kind, e.Name, liveProcs(e)))
			continue
		}
		remove(e)
	}
	return fails.err()
}

// liveProcs names the live processes of e, for a refusal.
func liveProcs(e entry) string {
	var ps []string
	creatorListed := false
	for _, p := range e.Processes {
		if !p.Alive {
			continue
		}
		roles := p.Roles
		if e.Creator != nil && e.Creator.Alive && e.Creator.Pid == p.Pid {
			roles, creatorListed = append([]string{"creator"}, roles...), true
		}
		ps = append(ps, "pid "+strconv.Itoa(p.Pid)+" ("+strings.Join(roles, ", ")+")")
	}
	if e.Creator != nil && e.Creator.Alive && !creatorListed {
		ps = append([]string{fmt.Sprintf("pid %d (creator)", e.Creator.Pid)}, ps...)
	}
	return "live " + strings.Join(ps, ", ")
}

func rmError(name string, err error) error {
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("rm: no mproc object %q (removed meanwhile)", name)
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("rm: %q: permission denied (%s is another user's)", name, shm.Path(name))
	}
	return fmt.Errorf("rm: %s", oneLine(err))
}

// failures collects the failures of a subcommand that carries on after
// one: each but the last is printed at once, the last is returned for
// main to print, so every failure is one line and the exit status 1.
type failures struct{ last error }

func (f *failures) add(stderr io.Writer, err error) {
	if f.last != nil {
		fmt.Fprintf(stderr, "mproc: %v\n", f.last)
	}
	f.last = err
}

func (f *failures) err() error { return f.last }
