package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"mproc"
)

// queueFlags defines the flags that put and get share: --format, of
// their input or output, and --timeout, how long a put or a get waits.
func queueFlags(fs *flag.FlagSet, put, waits string) (format *string, timeout *time.Duration) {
	format = fs.String("format", "line", put+" format: line, raw or json")
	timeout = fs.Duration("timeout", 5*time.Second, "how long to wait "+waits+" (0: not at all; negative: for ever)")
	return format, timeout
}

// queueArgs parses the arguments of put or get (cmd), with the --format
// flag format, and returns the queue's name.
func queueArgs(cmd string, fs *flag.FlagSet, args []string, format *string) (string, error) {
	rest, err := parseArgs(fs, args)
	if err != nil {
		return "", err
	}
	if len(rest) != 1 {
		return "", badArgs("%s: want one queue name, got %d arguments", cmd, len(rest))
	}
	if *format != "line" && *format != "raw" && *format != "json" {
		return "", badArgs("%s: --format %q: want line, raw or json", cmd, *format)
	}
	return rest[0], nil
}

// byteQueue is a named queue of any variant opened as a queue of []byte,
// for put and get.
type byteQueue struct {
	kind, name string
	max        int
	put        func(ctx context.Context, msg []byte) error
	tryPut     func(msg []byte) error
	get        func(ctx context.Context) ([]byte, error)
	tryGet     func() ([]byte, error)
	done       func() error // after a get: JoinableQueue.TaskDone; nil for the others
	close      func() error
}

// openByteQueue opens the queue name for cmd. prio is the priority of a
// priority queue's puts.
func openByteQueue(cmd, name string, prio int64) (*byteQueue, error) {
	in, err := inspectMproc(cmd, name)
	if err != nil {
		return nil, err
	}
	e := mprocEntry(in)
	if e.Capacity == nil { // not a queue, or not one that could be read
		what := e.Kind
		if e.Note != "" {
			what += ": " + e.Note
		}
		return nil, fmt.Errorf("%s: %q is not a queue (%s)", cmd, name, what)
	}
	bq := &byteQueue{kind: e.Kind, name: name}
	var openErr error
	switch in.Type {
	case "Queue":
		var q *mproc.Queue[[]byte]
		if q, openErr = mproc.OpenQueue[[]byte](name); openErr == nil {
			bq.put, bq.tryPut, bq.get, bq.tryGet, bq.close = q.Put, q.TryPut, q.Get, q.TryGet, q.Close
			bq.max = q.MaxMessage()
		}
	case "JoinableQueue":
		var q *mproc.JoinableQueue[[]byte]
		if q, openErr = mproc.OpenJoinableQueue[[]byte](name); openErr == nil {
			bq.put, bq.tryPut, bq.get, bq.tryGet, bq.close = q.Put, q.TryPut, q.Get, q.TryGet, q.Close
			bq.done, bq.max = q.TaskDone, q.MaxMessage()
		}
	case "LIFOQueue":
		var q *mproc.LIFOQueue[[]byte]
		if q, openErr = mproc.OpenLIFOQueue[[]byte](name); openErr == nil {
			bq.put, bq.tryPut, bq.get, bq.tryGet, bq.close = q.Put, q.TryPut, q.Get, q.TryGet, q.Close
			bq.max = in.Heap.Max
		}
	case "PriorityQueue":
		var q *mproc.PriorityQueue[[]byte]
		if q, openErr = mproc.OpenPriorityQueue[[]byte](name); openErr == nil {
			bq.put = func(ctx context.Context, m []byte) error { return q.Put(ctx, m, prio) }
			bq.tryPut = func(m []byte) error { return q.TryPut(m, prio) }
			bq.get = func(ctx context.Context) ([]byte, error) { m, _, err := q.Get(ctx); return m, err }
			bq.tryGet = func() ([]byte, error) { m, _, err := q.TryGet(); return m, err }
			bq.close, bq.max = q.Close, in.Heap.Max
		}
	default:
		return nil, fmt.Errorf("%s: %q is a %s, not a queue", cmd, name, e.Kind)
	}
	switch {
	case errors.Is(openErr, os.ErrNotExist):
		return nil, fmt.Errorf("%s: no mproc object %q (removed meanwhile)", cmd, name)
	case errors.Is(openErr, os.ErrPermission):
		return nil, fmt.Errorf("%s: %q: permission denied (%s)", cmd, name, oneLine(openErr))
	case openErr != nil:
		return nil, fmt.Errorf("%s: %s", cmd, oneLine(openErr))
	}
	return bq, nil
}

// errTimeout says a put or get waited its --timeout out.
var errTimeout = errors.New("timed out")

// wait runs the blocking op with timeout: 0 tries once (try), a negative
// timeout waits until ctx ends. A wait that timed out is errTimeout.
func wait[T any](ctx context.Context, timeout time.Duration, op func(context.Context) (T, error), try func() (T, error)) (T, error) {
	if timeout == 0 {
		return try()
	}
	if timeout < 0 {
		return op(ctx)
	}
	tctx, cancel := context.WithTimeoutCause(ctx, timeout, errTimeout)
	defer cancel()
	v, err := op(tctx)
	// The wait may end at its deadline a moment before the context's timer
	// fires: any deadline error while ctx itself goes on is the timeout.
	if err != nil && ctx.Err() == nil && (errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(context.Cause(tctx), errTimeout)) {
		return v, errTimeout
	}
	return v, err
}
