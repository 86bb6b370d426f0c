package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"mproc/internal/shm"
)

const statDoc = `
Show one mproc object (/dev/shm/mproc.NAME): its header (kind, size, creator,
creation time, parameters), the processes it names (see "mproc help ls"),
whether it is stale, and what its state words say now:

  queues      length, capacity, largest message, puts and gets since
              creation, producers and consumers waiting, shut down or not,
              and the messages lost to deaths (skipped: the producer died
              mid-put; abandoned: the consumer died mid-get; corrupt);
              a joinable queue's unfinished tasks
  locks       held or free, the holder and whether it is alive, waiters,
              consistent or not (after a holder died); an rlock's depth
  rwmutex     the writer, the readers, waiting writers
  semaphore   value, bound, waiters, the processes holding units
  event       set or clear, waiters
  cond        signals so far (wrapping), waiters
  barrier     parties, arrived, generation, broken
  value/array element size and count, the first 64 bytes in hex, the lock

The object is read without taking part: no record is taken, nothing is
written. The words are read one by one, not at one instant.`

// statOutput is what stat --json prints: the ls entry, the header, and
// the kind's state.
type statOutput struct {
	entry
	Version   uint32     `json:"version,omitempty"`
	Param     []string   `json:"param,omitempty"` // in hex: a value's holds a type's CRC, past JSON's exact integers
	DataSize  int64      `json:"data_size,omitempty"`
	Queue     *queueStat `json:"queue,omitempty"`
	Lock      *lockStat  `json:"lock,omitempty"` // lock, rlock; a value's or an array's lock
	RWMutex   *rwStat    `json:"rwmutex,omitempty"`
	Semaphore *semStat   `json:"semaphore,omitempty"`
	Event     *eventStat `json:"event,omitempty"`
	Cond      *condStat  `json:"cond,omitempty"`
	Barrier   *barStat   `json:"barrier,omitempty"`
	Value     *valueStat `json:"value,omitempty"`
}

type queueStat struct {
	Length           int     `json:"length"`
	Capacity         int     `json:"capacity"`
	MaxMessage       int     `json:"max_message"`
	Puts             uint64  `json:"puts"` // begun since creation
	Gets             uint64  `json:"gets"`
	WaitingProducers uint32  `json:"waiting_producers"`
	WaitingConsumers uint32  `json:"waiting_consumers"`
	ShutDown         bool    `json:"shut_down"`
	Skipped          *uint64 `json:"skipped,omitempty"`   // FIFO and joinable queues
	Abandoned        *uint64 `json:"abandoned,omitempty"` // FIFO and joinable queues
	Corrupt          uint64  `json:"corrupt"`
	UnfinishedTasks  *int64  `json:"unfinished_tasks,omitempty"` // joinable queues
	JoinWaiters      *int64  `json:"join_waiters,omitempty"`
}

type lockStat struct {
	Held       bool     `json:"held"`
	Holder     *procRef `json:"holder,omitempty"`
	Waiters    uint32   `json:"waiters"`
	Consistent bool     `json:"consistent"`
	Depth      *int64   `json:"depth,omitempty"` // rlock
}

// share is a process's share of an rwmutex or a semaphore.
type share struct {
	Pid   int    `json:"pid"`
	Alive bool   `json:"alive"`
	Count uint32 `json:"count"`
}

type rwStat struct {
	Writer         *procRef `json:"writer,omitempty"`
	Readers        []share  `json:"readers"`
	WaitingWriters []share  `json:"waiting_writers"`
	Waiters        uint32   `json:"waiters"`
	Consistent     bool     `json:"consistent"`
}

type semStat struct {
	Value   uint32  `json:"value"`
	Bound   uint32  `json:"bound"` // 0: none
	Waiters uint32  `json:"waiters"`
	Holders []share `json:"holders"`
}

type eventStat struct {
	Set     bool   `json:"set"`
	Waiters uint32 `json:"waiters"`
}

type condStat struct {
	Signals uint32 `json:"signals"`
	Waiters uint32 `json:"waiters"`
}

type barStat struct {
	Parties    uint32 `json:"parties"`
	Arrived    int    `json:"arrived"`
	Generation uint32 `json:"generation"`
	Broken     bool   `json:"broken"`
	Waiters    uint32 `json:"waiters"`
}

type valueStat struct {
	ElementSize uint64 `json:"element_size"`
	Count       uint64 `json:"count"`
	Bytes       string `json:"bytes"` // the first 64 bytes, in hex
}

func runStat(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("stat", " NAME", stderr, statDoc)
	asJSON := fs.Bool("json", false, "print JSON")
	rest, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return badArgs("stat: want one object name, got %d arguments", len(rest))
	}
	in, err := inspectMproc("stat", rest[0])
	if err != nil {
		return err
	}
	out := statOf(in)
	if *asJSON {
		return writeJSON(stdout, out)
	}
	return statText(stdout, out, time.Now())
}

// statOf describes in, with its openers and staleness.
func statOf(in *shm.Inspection) statOutput {
	es := []entry{mprocEntry(in)}
	addOpeners(es)
	out := statOutput{entry: es[0]}
	if !in.Ready || in.Err != nil {
		return out
	}
	info := in.Info
	out.Version, out.DataSize = info.Version, int64(info.TotalSize)-shm.HeaderSize
	out.Param = []string{fmt.Sprintf("%#x", info.Param[0]), fmt.Sprintf("%#x", info.Param[1])}
	holder := func(tok uint64) *procRef {
		if tok == 0 {
			return nil
		}
		p := shm.ProcOf(tok)
		return &procRef{Pid: p.Pid, Alive: p.Alive}
	}
	switch {
	case in.Queue != nil:
		q := in.Queue
		out.Queue = &queueStat{Length: q.Len(), Capacity: q.Cap, MaxMessage: q.Max, Puts: q.Tail, Gets: q.Head,
			WaitingProducers: q.PutWaiters, WaitingConsumers: q.GetWaiters, ShutDown: q.Closed,
			Skipped: &q.Skipped, Abandoned: &q.Abandoned, Corrupt: q.Corrupt}
		if in.Type == "JoinableQueue" && in.Tasks != nil {
			// Unfinished: in the queue, and got but not reported done.
			out.Queue.UnfinishedTasks = int64p(int64(q.Len()) + int64(in.Tasks.Taken))
			out.Queue.JoinWaiters = int64p(int64(in.Tasks.Waiters))
		}
	case in.Heap != nil:
		h := in.Heap
		out.Queue = &queueStat{Length: h.Len, Capacity: h.Cap, MaxMessage: h.Max, Puts: h.Puts,
			Gets: h.Puts - min(h.Puts, uint64(h.Len)), WaitingProducers: h.PutWaiters, WaitingConsumers: h.GetWaiters,
			ShutDown: h.Closed, Corrupt: h.Corrupt}
	case in.RMutex != nil:
		r := in.RMutex
		out.Lock = &lockStat{Held: r.Owner != 0, Holder: holder(r.Owner), Waiters: r.Waiters, Consistent: r.Consistent,
			Depth: int64p(int64(r.Depth))}
	case in.RWMutex != nil:
		rw := in.RWMutex
		out.RWMutex = &rwStat{Writer: holder(rw.Writer), Readers: []share{}, WaitingWriters: []share{},
			Waiters: rw.Waiters, Consistent: rw.Consistent}
		for _, h := range rw.Records {
			p := shm.ProcOf(h.Token)
			if h.Held > 0 {
				out.RWMutex.Readers = append(out.RWMutex.Readers, share{p.Pid, p.Alive, h.Held})
			}
			if h.Waiting > 0 {
				out.RWMutex.WaitingWriters = append(out.RWMutex.WaitingWriters, share{p.Pid, p.Alive, h.Waiting})
			}
		}
	case in.Semaphore != nil:
		s := in.Semaphore
		out.Semaphore = &semStat{Value: s.Value, Bound: s.Max, Waiters: s.Waiters, Holders: []share{}}
		for _, h := range s.Holders {
			if h.Held > 0 {
				p := shm.ProcOf(h.Token)
				out.Semaphore.Holders = append(out.Semaphore.Holders, share{p.Pid, p.Alive, h.Held})
			}
		}
	case in.Event != nil:
		out.Event = &eventStat{Set: in.Event.Set, Waiters: in.Event.Waiters}
	case in.Cond != nil:
		out.Cond = &condStat{Signals: in.Cond.Seq, Waiters: in.Cond.Waiters}
	case in.Barrier != nil:
		b := in.Barrier
		out.Barrier = &barStat{Parties: b.Parties, Arrived: len(b.Arrived), Generation: b.Generation, Broken: b.Broken,
			Waiters: b.Waiters}
	}
	if in.Mutex != nil {
		m := in.Mutex
		out.Lock = &lockStat{Held: m.Owner != 0, Holder: holder(m.Owner), Waiters: m.Waiters, Consistent: m.Consistent}
	}
	if in.Type == "Value" || in.Type == "Array" {
		out.Value = &valueStat{ElementSize: in.ElemSize, Count: in.Count, Bytes: hex.EncodeToString(in.Values)}
	}
	return out
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func statText(w io.Writer, s statOutput, now time.Time) error {
	fmt.Fprintf(w, "%s: %s, %s (%s, mode %s, uid %d)\n", s.Name, s.Kind, plural(s.Size, "byte", "bytes"), s.Path, s.Mode, s.Uid)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	line := func(k, format string, args ...any) { fmt.Fprintf(tw, "  %s\t%s\n", k, fmt.Sprintf(format, args...)) }
	alive := func(c *procRef) string {
		if c == nil {
			return "none"
		}
		return fmt.Sprintf("pid %d (%s)", c.Pid, map[bool]string{true: "alive", false: "dead"}[c.Alive])
	}
	if s.Note != "" {
		line("note", "%s", s.Note)
	}
	if s.Created != nil {
		line("created", "%s (%s ago) by %s", s.Created.Format("2006-01-02 15:04:05.000 MST"), humanAge(*s.Created, now), alive(s.Creator))
	}
	if s.Param != nil {
		line("header", "layout version %d, parameters %s, data area %d bytes", s.Version, s.Param, s.DataSize)
	}
	if q := s.Queue; q != nil {
		line("length", "%d of %d messages of at most %d bytes", q.Length, q.Capacity, q.MaxMessage)
		line("puts, gets", "%d, %d since creation", q.Puts, q.Gets)
		line("waiting", "%s, %s", plural(int64(q.WaitingProducers), "producer", "producers"), plural(int64(q.WaitingConsumers), "consumer", "consumers"))
		line("shut down", "%s", yesNo(q.ShutDown))
		if q.Skipped == nil {
			line("lost", "%d corrupt", q.Corrupt)
		} else {
			line("lost", "%d skipped (producer died), %d abandoned (consumer died), %d corrupt", *q.Skipped, *q.Abandoned, q.Corrupt)
		}
		if q.UnfinishedTasks != nil {
			line("tasks", "%d unfinished, %d joining", *q.UnfinishedTasks, *q.JoinWaiters)
		}
	}
	if v := s.Value; v != nil {
		line("elements", "%d of %d bytes", v.Count, v.ElementSize)
		line("bytes", "%s", v.Bytes)
	}
	if l := s.Lock; l != nil {
		what := "lock"
		if s.Value != nil {
			what = "its lock"
		}
		state := "free"
		if l.Held {
			state = "held by " + alive(l.Holder)
		}
		if l.Depth != nil && l.Held {
			state += fmt.Sprintf(", depth %d", *l.Depth)
		}
		if !l.Consistent {
			state += ", inconsistent (a holder died; MarkConsistent clears it)"
		}
		line(what, "%s, %s", state, plural(int64(l.Waiters), "waiter", "waiters"))
	}
	if rw := s.RWMutex; rw != nil {
		line("writer", "%s", alive(rw.Writer))
		line("readers", "%s", shares(rw.Readers, "read lock"))
		line("waiting writers", "%s", shares(rw.WaitingWriters, "writer"))
		line("waiters", "%d asleep, %s", rw.Waiters, map[bool]string{true: "consistent", false: "inconsistent (a writer died)"}[rw.Consistent])
	}
	if sem := s.Semaphore; sem != nil {
		bound := "unbounded"
		if sem.Bound != 0 {
			bound = fmt.Sprintf("bound %d", sem.Bound)
		}
		line("value", "%d (%s), %s", sem.Value, bound, plural(int64(sem.Waiters), "waiter", "waiters"))
		if sem.Bound != 0 {
			line("holders", "%s", shares(sem.Holders, "unit"))
		}
	}
	if e := s.Event; e != nil {
		line("event", "%s, %s", map[bool]string{true: "set", false: "clear"}[e.Set], plural(int64(e.Waiters), "waiter", "waiters"))
	}
	if c := s.Cond; c != nil {
		line("cond", "%d signals so far, %s", c.Signals, plural(int64(c.Waiters), "waiter", "waiters"))
	}
	if b := s.Barrier; b != nil {
		line("barrier", "%d of %d parties arrived, generation %d, %s", b.Arrived, b.Parties, b.Generation,
			map[bool]string{true: "broken", false: "not broken"}[b.Broken])
	}
	line("processes", "%s", procList(s.Processes))
	line("stale", "%s", yesNo(s.Stale))
	return tw.Flush()
}

func yesNo(b bool) string { return map[bool]string{true: "yes", false: "no"}[b] }

func shares(ss []share, unit string) string {
	if len(ss) == 0 {
		return "none"
	}
	var parts []string
	for _, s := range ss {
		p := fmt.Sprintf("pid %d (%s", s.Pid, plural(int64(s.Count), unit, unit+"s"))
		if !s.Alive {
			p += ", dead"
		}
		p += ")"
		parts = append(parts, p)
	}
	return strings.Join(parts, ", ")
}
