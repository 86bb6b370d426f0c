package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"mproc"
)

const putDoc = `
Put messages read from stdin into the named mproc queue, opened as a queue
of []byte (a Go program's Queue[[]byte] or Queue[string] reads them as they
are; a queue of another type reads them as its codec's encoding). Every
queue variant works: a joinable queue counts a task per message, a priority
queue takes --priority.

  --format line   one message per line, without its newline (the default)
  --format raw    all of stdin is one message
  --format json   one message per line, each of which must be valid JSON
                  (blank lines are skipped); the line's bytes are sent

When the queue is full, put waits up to --timeout (5s) for room for each
message; then it stops, says how many messages it put, and exits with
status 1, as it does when the queue is shut down, a message is larger than
the queue's maximum, or a line is not JSON. With --timeout 0 it does not
wait; with a negative timeout it waits as long as it takes.`

func runPut(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return putFrom(ctx, args, os.Stdin, stderr)
}

// putFrom is put with its input.
func putFrom(ctx context.Context, args []string, stdin io.Reader, stderr io.Writer) error {
	fs := newFlagSet("put", " NAME", stderr, putDoc)
	format, timeout := queueFlags(fs, "input", "for room in a full queue")
	prio := fs.Int64("priority", 0, "priority of the messages in a priority queue (lowest first)")
	name, err := queueArgs("put", fs, args, format)
	if err != nil {
		return err
	}
	q, err := openByteQueue("put", name, *prio)
	if err != nil {
		return err
	}
	defer q.close()
	put := 0
	send := func(msg []byte, where string) error {
		if len(msg) > q.max {
			return fmt.Errorf("put: %s: %d bytes, more than the queue's maximum message of %d bytes (%s put)", where, len(msg), q.max, plural(int64(put), "message", "messages"))
		}
		_, err := wait(ctx, *timeout, func(ctx context.Context) (struct{}, error) { return struct{}{}, q.put(ctx, msg) },
			func() (struct{}, error) { return struct{}{}, q.tryPut(msg) })
		switch {
		case errors.Is(err, mproc.ErrFull):
			return fmt.Errorf("put: queue %q is full (%s put)", q.name, plural(int64(put), "message", "messages"))
		case errors.Is(err, errTimeout):
			return fmt.Errorf("put: queue %q still full after %v (%s put)", q.name, *timeout, plural(int64(put), "message", "messages"))
		case errors.Is(err, mproc.ErrShutdown):
			return fmt.Errorf("put: queue %q is shut down (%s put)", q.name, plural(int64(put), "message", "messages"))
		case ctx.Err() != nil:
			return fmt.Errorf("put: interrupted (%s put)", plural(int64(put), "message", "messages"))
		case err != nil:
			return fmt.Errorf("put: %s (%s put)", oneLine(err), plural(int64(put), "message", "messages"))
		}
		put++
		return nil
	}
	// stdin is read in a goroutine of its own, so that Ctrl-C ends a put
	// that waits for input on a terminal.
	items := make(chan inputItem)
	done := make(chan struct{})
	defer close(done)
	go readInput(stdin, *format, q.max, items, done)
	for {
		var it inputItem
		select {
		case <-ctx.Done():
			return fmt.Errorf("put: interrupted (%s put)", plural(int64(put), "message", "messages"))
		case it = <-items:
		}
		switch {
		case it.err == io.EOF:
			return nil
		case errors.Is(it.err, errLong):
			return fmt.Errorf("put: %s: more than the queue's maximum message of %d bytes (%s put)", it.where, q.max, plural(int64(put), "message", "messages"))
		case errors.Is(it.err, errNotJSON):
			return fmt.Errorf("put: %s is not valid JSON (%s put)", it.where, plural(int64(put), "message", "messages"))
		case it.err != nil:
			return fmt.Errorf("put: read stdin: %s (%s put)", oneLine(it.err), plural(int64(put), "message", "messages"))
		}
		if err := send(it.msg, it.where); err != nil {
			return err
		}
	}
}

// inputItem is a message read from stdin, or why there is none: io.EOF
// at the end, errLong, errNotJSON or a read error.
type inputItem struct {
	msg   []byte
	where string // "line N", or "stdin"
	err   error
}

var errNotJSON = errors.New("not JSON")

// readInput sends the messages of r, in format, to items, then the
// error that ends them, and returns; or returns when done is closed.
func readInput(r io.Reader, format string, max int, items chan<- inputItem, done <-chan struct{}) {
	emit := func(it inputItem) bool {
		select {
		case items <- it:
			return it.err == nil
		case <-done:
			return false
		}
	}
	if format == "raw" {
		msg, err := io.ReadAll(io.LimitReader(r, int64(max)+1))
		if err != nil {
			emit(inputItem{err: err})
		} else if emit(inputItem{msg: msg, where: "stdin"}) {
			emit(inputItem{err: io.EOF})
		}
		return
	}
	lines := bufio.NewReader(r)
	for n := 1; ; n++ {
		line, err := readLine(lines, max)
		it := inputItem{msg: line, where: fmt.Sprintf("line %d", n), err: err}
		if err == nil && format == "json" {
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			if !json.Valid(line) {
				it.err = errNotJSON
			}
		}
		if !emit(it) {
			return
		}
	}
}

// errLong says a line is longer than a message may be.
var errLong = errors.New("line too long")

// readLine returns the next line of r without its newline: io.EOF at the
// end, errLong (having skipped nothing) for a line over max bytes.
func readLine(r *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > max+1 || len(line) == max+1 && line[max] != '\n' {
			return nil, errLong
		}
		switch {
		case err == nil:
			return line[:len(line)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF && len(line) > 0:
			return line, nil
		}
		return nil, err
	}
}
