package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"mproc"
)

const getDoc = `
Get messages from the named mproc queue, opened as a queue of []byte (see
"mproc help put"), and write them to stdout:

  --format line   each message followed by a newline (the default)
  --format raw    the messages' bytes, nothing between them
  --format json   each message compacted onto one line; a message that is
                  not valid JSON is written as a JSON string of its bytes,
                  with a warning on stderr

-n gives the number of messages (1 by default). get waits up to --timeout
(5s) for each message; if the queue stays empty that long, or is shut down
and drained, before -n messages came, it says how many it got and exits
with status 1. With -n 0 it gets messages until the queue stays empty for
--timeout (with --timeout 0: until it is empty), and that is success. With
--timeout 0 it does not wait; with a negative timeout it waits as long as
it takes. A message of a joinable queue is marked done (TaskDone) once it
is written.`

func runGet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("get", " NAME", stderr, getDoc)
	format, timeout := queueFlags(fs, "output", "for a message in an empty queue")
	n := fs.Int("n", 1, "number of messages to get; 0: until the queue stays empty for --timeout")
	name, err := queueArgs("get", fs, args, format)
	if err != nil {
		return err
	}
	if *n < 0 {
		return badArgs("get: -n %d: want 0 or more", *n)
	}
	q, err := openByteQueue("get", name, 0)
	if err != nil {
		return err
	}
	defer q.close()
	got := func(i int) string {
		if *n == 0 {
			return plural(int64(i), "message", "messages")
		}
		return fmt.Sprintf("%d of %d messages", i, *n)
	}
	var buf bytes.Buffer
	for i := 0; *n == 0 || i < *n; i++ {
		msg, err := wait(ctx, *timeout, q.get, q.tryGet)
		switch {
		case err == nil:
		case *n == 0 && (errors.Is(err, errTimeout) || errors.Is(err, mproc.ErrEmpty) || errors.Is(err, mproc.ErrShutdown)):
			return nil
		case errors.Is(err, mproc.ErrEmpty):
			return fmt.Errorf("get: queue %q is empty (got %s)", q.name, got(i))
		case errors.Is(err, errTimeout):
			return fmt.Errorf("get: queue %q still empty after %v (got %s)", q.name, *timeout, got(i))
		case errors.Is(err, mproc.ErrShutdown):
			return fmt.Errorf("get: queue %q is shut down and empty (got %s)", q.name, got(i))
		case ctx.Err() != nil:
			return fmt.Errorf("get: interrupted (got %s)", got(i))
		default:
			return fmt.Errorf("get: %s (got %s)", oneLine(err), got(i))
		}
		buf.Reset()
		switch *format {
		case "raw":
			buf.Write(msg)
		case "line":
			buf.Write(msg)
			buf.WriteByte('\n')
		case "json":
			if json.Compact(&buf, msg) != nil {
				buf.Reset()
				s, _ := json.Marshal(string(msg))
				buf.Write(s)
				fmt.Fprintf(stderr, "mproc get: warning: message %d is not JSON; written as a JSON string\n", i+1)
			}
			buf.WriteByte('\n')
		}
		if _, err := stdout.Write(buf.Bytes()); err != nil {
			return fmt.Errorf("get: write: %s (message %d was taken from the queue)", oneLine(err), i+1)
		}
		if q.done != nil {
			if err := q.done(); err != nil {
				return fmt.Errorf("get: task done: %s", oneLine(err))
			}
		}
	}
	return nil
}
