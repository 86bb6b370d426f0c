package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"mproc/internal/shm"
)

const watchDoc = `
A live view of mproc objects, refreshed every --interval (1s): the named
objects, or with no names every mproc object of /dev/shm (objects created
and removed meanwhile come and go). For each object:

  DEPTH    messages in a queue, and its capacity
  PUT/S    puts per second since the last refresh (queues)
  GET/S    gets per second since the last refresh (queues)
  WAITING  processes asleep: producers waiting for room and consumers for a
           message (queues), waiters (locks, semaphores, events, conds,
           barriers)
  STATE    held or free, a semaphore's value, set or clear, ...

On a terminal each refresh redraws the screen; otherwise the snapshots are
written one after the other, each under a line of dashes with the time.
Ctrl-C (SIGINT) stops it with exit status 0; so does --count N after N
refreshes. A named object that does not exist at the first refresh is an
error (exit status 1); one removed later shows as removed.`

func runWatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("watch", " [NAME...]", stderr, watchDoc)
	interval := fs.Duration("interval", time.Second, "time between refreshes")
	count := fs.Int("count", 0, "stop after `N` refreshes (0: until interrupted)")
	names, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if *interval <= 0 || *count < 0 {
		return badArgs("watch: want --interval > 0 and --count >= 0")
	}
	for _, n := range names {
		if err := shm.ValidateName(n); err != nil {
			return badArgs("watch: %s", oneLine(err))
		}
	}
	for _, n := range names {
		if _, err := inspectMproc("watch", n); err != nil {
			return err
		}
	}
	f, _ := stdout.(*os.File)
	w := &watcher{names: names, interval: *interval, tty: f != nil && shm.IsTerminal(f), prev: map[string]sample{}}
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	for i := 1; ; i++ {
		if _, err := stdout.Write(w.frame(time.Now())); err != nil {
			return fmt.Errorf("watch: %w", err)
		}
		if *count > 0 && i >= *count {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil // Ctrl-C: a clean end
		case <-tick.C:
		}
	}
}

// sample is what watch keeps of an object between refreshes.
type sample struct {
	created    time.Time // tells a new object under the same name
	at         time.Time
	puts, gets uint64
	queue      bool
}

type watcher struct {
	names    []string // nil: every object
	interval time.Duration
	tty      bool
	frames   int
	prev     map[string]sample
}

// ANSI sequences for the terminal view.
const (
	ansiHome      = "\x1b[H"
	ansiClearLine = "\x1b[K"
	ansiClearDown = "\x1b[J"
)

// frame renders one refresh.
func (w *watcher) frame(now time.Time) []byte {
	w.frames++
	names := w.names
	if names == nil {
		names, _ = shm.List()
		slices.Sort(names)
	}
	var table bytes.Buffer
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tDEPTH\tPUT/S\tGET/S\tWAITING\tSTATE")
	next := map[string]sample{}
	for _, name := range names {
		row, s := w.row(name, now)
		fmt.Fprintln(tw, row)
		if !s.at.IsZero() {
			next[name] = s
		}
	}
	tw.Flush()
	w.prev = next

	var b bytes.Buffer
	title := fmt.Sprintf("mproc watch: %s, every %v", now.Format("15:04:05"), w.interval)
	if len(names) == 0 {
		title += " (no mproc objects)"
	}
	if !w.tty {
		fmt.Fprintf(&b, "--- %s (refresh %d)\n%s", title, w.frames, table.Bytes())
		return b.Bytes()
	}
	b.WriteString(ansiHome)
	fmt.Fprintf(&b, "%s; Ctrl-C to stop%s\r\n", title, ansiClearLine)
	for line := range strings.Lines(table.String()) {
		b.WriteString(strings.TrimSuffix(line, "\n") + ansiClearLine + "\r\n")
	}
	b.WriteString(ansiClearDown)
	return b.Bytes()
}

// row is one object's line, tab-separated, and its sample.
func (w *watcher) row(name string, now time.Time) (string, sample) {
	in, err := shm.Inspect(name)
	if errors.Is(err, os.ErrNotExist) {
		return name + "\t-\t-\t-\t-\t-\tremoved", sample{}
	}
	if err != nil {
		return name + "\t?\t-\t-\t-\t-\t" + oneLine(err), sample{}
	}
	e := mprocEntry(in)
	state := e.State
	if e.Note != "" {
		state = e.Note
	}
	depth, putRate, getRate, waiting := "-", "-", "-", "-"
	s := sample{at: now}
	if e.Created != nil {
		s.created = *e.Created
	}
	switch {
	case in.Queue != nil:
		q := in.Queue
		s.queue, s.puts, s.gets = true, q.Tail, q.Head
		depth = fmt.Sprintf("%d/%d", q.Len(), q.Cap)
		waiting = fmt.Sprintf("%d put, %d get", q.PutWaiters, q.GetWaiters)
	case in.Heap != nil:
		h := in.Heap
		s.queue, s.puts, s.gets = true, h.Puts, h.Puts-min(h.Puts, uint64(h.Len))
		depth = fmt.Sprintf("%d/%d", h.Len, h.Cap)
		waiting = fmt.Sprintf("%d put, %d get", h.PutWaiters, h.GetWaiters)
	case in.RMutex != nil:
		waiting = fmt.Sprint(in.RMutex.Waiters)
	case in.RWMutex != nil:
		waiting = fmt.Sprint(in.RWMutex.Waiters)
	case in.Semaphore != nil:
		waiting = fmt.Sprint(in.Semaphore.Waiters)
	case in.Event != nil:
		waiting = fmt.Sprint(in.Event.Waiters)
	case in.Cond != nil:
		waiting = fmt.Sprint(in.Cond.Waiters)
	case in.Barrier != nil:
		waiting = fmt.Sprint(in.Barrier.Waiters)
	case in.Mutex != nil:
		waiting = fmt.Sprint(in.Mutex.Waiters)
	}
	if p, ok := w.prev[name]; ok && s.queue && p.queue && p.created.Equal(s.created) {
		if dt := now.Sub(p.at).Seconds(); dt > 0 {
			putRate = fmt.Sprintf("%.1f", float64(s.puts-min(s.puts, p.puts))/dt)
			getRate = fmt.Sprintf("%.1f", float64(s.gets-min(s.gets, p.gets))/dt)
		}
	}
	if holder := holderPid(e); holder != "" {
		state += " by " + holder
	}
	return strings.Join([]string{name, e.Kind, depth, putRate, getRate, waiting, state}, "\t"), s
}

// holderPid names the holder of a lock, for watch's STATE.
func holderPid(e entry) string {
	if e.Kind != "lock" && e.Kind != "rlock" && e.Kind != "rwmutex" {
		return ""
	}
	for _, p := range e.Processes {
		for _, r := range p.Roles {
			if r == roleHolder || r == roleWriter {
				s := fmt.Sprintf("pid %d", p.Pid)
				if !p.Alive {
					s += " (dead)"
				}
				return s
			}
		}
	}
	return ""
}
