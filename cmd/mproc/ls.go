package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

const lsDoc = `
List the IPC objects of the machine that this user may see, in one table:

  KIND                 WHAT, FROM WHERE
  queue, joinable-queue, lifo-queue, priority-queue, lock, rlock, rwmutex,
  semaphore, bounded-semaphore, event, cond, barrier, value, array,
  shared-memory        mproc objects: the files /dev/shm/mproc.NAME, read
                       without taking part (no record taken, nothing written)
  posix-mq             POSIX message queues, from the mqueue file system
                       wherever it is mounted (usually /dev/mqueue)
  sysv-msg             SysV message queues, from /proc/sysvipc/msg
  sysv-shm             SysV shared memory, from /proc/sysvipc/shm
  fifo                 FIFOs in the directories given with --fifo

SIZE is the file's size (mproc), the bytes of the queued messages (posix-mq,
sysv-msg) or the segment's size (sysv-shm). CREATOR is the creating process
(mproc, sysv-shm; the kernel records none for the others). AGE is the time
since creation (mproc: the header's creation time; SysV: the ctime, creation
or the last IPC_SET). PROCESSES are the processes the object names, with
their roles, live ones first:

  open             has a descriptor on it (seen in /proc/PID/fd: this user's
                   processes, or every process for root)
  attached         took one of a queue's process records (kept after the
                   process closes its handle, until the record is reused)
  putting/getting  inside a put or a get of a queue now
  busy             inside a put or a get of a LIFO or priority queue now
  holder           holds a lock, or units of a bounded semaphore
  reader/writer/waiting-writer   of an rwmutex
  waiting          arrived at a barrier and waits for the other parties
  notify           registered for a POSIX queue's notification
  last-send/last-receive         the last processes that used a SysV queue
  last-attach      the last process that attached or detached SysV memory

mproc objects record their processes with their start times, so a pid
that was recycled counts as dead; the kernel's pids (posix-mq, sysv-*) have
no start time, and a recycled one counts as alive.

STALE means that nobody alive is left who uses the object, as far as the
machine records it:

  mproc objects  its creator is dead, no live process has the file open,
                 and every process its memory records (a queue's attached
                 processes, a lock's holder, a semaphore's holders, an
                 rwmutex's readers and writers, a barrier's waiting parties)
                 is dead. A file whose header was never published (its
                 creator died creating it) or is not a valid segment is
                 stale when no live process has it open. A stale queue may
                 still hold messages: "mproc stat" shows them.
  posix-mq       no live process has it open and none is registered for its
                 notification (the kernel does not record the creator)
  sysv-msg       its last sender and last receiver, the only processes the
                 kernel records, are dead; a queue that nobody has used yet
                 is not stale
  sysv-shm       nothing is attached to it and its creator and the last
                 process that attached or detached it are dead
  fifo           no live process has it open

An object that could not be read is not stale, nor, for a user other than
root, another user's object in a file (its processes' descriptors cannot be
seen). "mproc rm --stale" removes the stale mproc objects. Other users'
objects are listed as far as this user may read them.`

// lsOutput is what ls --json prints.
type lsOutput struct {
	Objects []entry  `json:"objects"`
	Notes   []string `json:"notes"` // sources that could not be read
}

func runLs(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("ls", "", stderr, lsDoc)
	asJSON := fs.Bool("json", false, "print JSON: {\"objects\": [...], \"notes\": [...]}")
	onlyStale := fs.Bool("stale", false, "list only stale objects")
	var fifoDirs stringList
	fs.Var(&fifoDirs, "fifo", "list the FIFOs in `DIR` too (repeatable)")
	rest, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return badArgs("ls: takes no arguments, got %q (FIFO directories go with --fifo)", rest)
	}
	out, err := inventory(fifoDirs)
	if err != nil {
		return fmt.Errorf("ls: %w", err)
	}
	if *onlyStale {
		out.Objects = slices.DeleteFunc(out.Objects, func(e entry) bool { return !e.Stale })
	}
	if *asJSON {
		return writeJSON(stdout, out)
	}
	for _, n := range out.Notes {
		fmt.Fprintf(stderr, "mproc ls: note: %s\n", n)
	}
	return lsTable(stdout, out.Objects, time.Now())
}

// inventory lists every object, with the processes that have it open and
// whether it is stale. A source that cannot be read is a note; only a
// --fifo directory that cannot be read is an error.
func inventory(fifoDirs []string) (lsOutput, error) {
	out := lsOutput{Objects: []entry{}, Notes: []string{}}
	add := func(es []entry, err error) {
		if err != nil {
			out.Notes = append(out.Notes, oneLine(err))
		}
		out.Objects = append(out.Objects, es...)
	}
	add(listMproc())
	if dir := mqueueDir(); dir != "" {
		add(listPosixMQ(dir))
	} else {
		out.Notes = append(out.Notes, "POSIX message queues not listed: no mqueue file system is mounted (as root: mkdir -p /dev/mqueue && mount -t mqueue none /dev/mqueue)")
	}
	add(listSysvMsg())
	add(listSysvShm())
	for _, dir := range fifoDirs {
		es, err := listFIFOs(dir)
		if err != nil {
			return out, err
		}
		out.Objects = append(out.Objects, es...)
	}
	addOpeners(out.Objects)
	slices.SortStableFunc(out.Objects, func(a, b entry) int {
		if d := kindOrder(a.Kind) - kindOrder(b.Kind); d != 0 {
			return d
		}
		if a.ID != nil && b.ID != nil {
			return *a.ID - *b.ID
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out, nil
}

func lsTable(w io.Writer, es []entry, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tNAME\tSIZE\tCREATOR\tAGE\tPROCESSES\tSTATE\tSTALE")
	for _, e := range es {
		name := e.Name
		if e.Key != "" && e.Key != "0x00000000" {
			name += " key " + e.Key
		}
		cr := "-"
		if e.Creator != nil {
			cr = fmt.Sprint(e.Creator.Pid)
			if !e.Creator.Alive {
				cr += " dead"
			}
		}
		age := "-"
		if t := cmpTime(e.Created, e.Ctime); t != nil {
			age = humanAge(*t, now)
		}
		state := e.State
		if e.Note != "" {
			state = strings.TrimPrefix(state+"; "+e.Note, "; ")
		}
		if state == "" {
			state = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Kind, name, humanSize(e.Size), cr, age,
			procList(e.Processes), state, map[bool]string{true: "stale", false: ""}[e.Stale])
	}
	return tw.Flush()
}

func cmpTime(ts ...*time.Time) *time.Time {
	for _, t := range ts {
		if t != nil {
			return t
		}
	}
	return nil
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(s string) error {
	if s == "" {
		return fmt.Errorf("empty directory")
	}
	*l = append(*l, s)
	return nil
}

var _ flag.Value = (*stringList)(nil)
