// Package demo holds the functions that cmd/worker serves and
// cmd/clusterctl submits: both programs register them, as every worker
// and submitter of a cluster pool must.
package demo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"mproc/cluster"
)

// ErrUnlucky is the error of Square for 13: registered, so it keeps its
// identity from the worker to the submitter.
var ErrUnlucky = errors.New("demo: unlucky number")

func init() { cluster.RegisterError(ErrUnlucky) }

var (
	// Square squares n (and refuses 13).
	Square = cluster.Register("demo.square", func(ctx context.Context, n int) (int, error) {
		if n == 13 {
			return 0, fmt.Errorf("square(13): %w", ErrUnlucky)
		}
		return n * n, nil
	})
	// Where sleeps ms milliseconds and says which worker ran it.
	Where = cluster.Register("demo.where", func(ctx context.Context, ms int) (string, error) {
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
		case <-ctx.Done():
			return "", ctx.Err()
		}
		host, _ := os.Hostname()
		return fmt.Sprintf("%s:%d", host, os.Getpid()), nil
	})
	// Words counts the words of s.
	Words = cluster.Register("demo.words", func(ctx context.Context, s string) (int, error) {
		return len(strings.Fields(s)), nil
	})
)

// Names lists the demo functions, for usage messages.
var Names = []string{Square.Name(), Where.Name(), Words.Name()}

// Map runs the demo function name on args (command-line words, parsed as
// the function's argument type) in p, in order, and returns each result
// or error as a line.
func Map(ctx context.Context, p *cluster.Pool, name string, args []string) ([]string, error) {
	switch name {
	case Square.Name():
		return mapInts(ctx, p, Square, args)
	case Where.Name():
		return mapInts(ctx, p, Where, args)
	case Words.Name():
		var out []string
		for r, err := range Words.MapUnordered(ctx, p, args) {
			out = append(out, line(r, err))
		}
		return out, nil
	}
	return nil, fmt.Errorf("no demo function %q (have %s)", name, strings.Join(Names, ", "))
}

func mapInts[R any](ctx context.Context, p *cluster.Pool, t *cluster.Task[int, R], args []string) ([]string, error) {
	fs := make([]*cluster.Future[R], len(args))
	for i, a := range args {
		n, err := strconv.Atoi(a)
		if err != nil {
			return nil, fmt.Errorf("%s takes integers: %w", t.Name(), err)
		}
		fs[i] = t.Submit(p, n)
	}
	out := make([]string, len(fs))
	for i, f := range fs {
		r, err := f.Result(ctx)
		out[i] = fmt.Sprintf("%s(%s) = %s", t.Name(), args[i], line(r, err))
	}
	return out, nil
}

func line[R any](r R, err error) string {
	switch {
	case errors.Is(err, ErrUnlucky):
		return "error (ErrUnlucky, across the wire): " + err.Error()
	case err != nil:
		return "error: " + err.Error()
	}
	return fmt.Sprint(r)
}
