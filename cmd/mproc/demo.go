package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"mproc"
)

// The demo's child functions. They are registered at package level, in a
// file the test binary compiles too, so that a re-executed binary (this
// command or its test) knows them.
var (
	primesFn = mproc.Register("demo-primes", countPrimesChild)
	panicFn  = mproc.Register("demo-panic", func(ctx context.Context, msg string) error {
		panic(msg)
	})
	sleepFn = mproc.Register("demo-sleep", func(ctx context.Context, _ struct{}) error {
		<-ctx.Done()
		return context.Cause(ctx) // mproc.ErrTerminated after Terminate
	})
)

// primesArg is a prime-counting child's argument: the shared memory
// arrives mapped in the child.
type primesArg struct {
	Mem    *mproc.SharedMemory // one 8-byte little-endian slot per child
	Slot   int
	Lo, Hi int // count the primes in [Lo, Hi)
}

func countPrimesChild(ctx context.Context, a primesArg) error {
	defer a.Mem.Close()
	b := a.Mem.Bytes()
	if a.Slot < 0 || 8*a.Slot+8 > len(b) {
		return fmt.Errorf("slot %d outside shared memory of %d bytes", a.Slot, len(b))
	}
	n, err := countPrimes(ctx, a.Lo, a.Hi)
	if err != nil {
		return err
	}
	binary.LittleEndian.PutUint64(b[8*a.Slot:], uint64(n))
	me := mproc.Current()
	fmt.Printf("  %s (pid %d, parent %d): %d primes in [%d, %d) -> slot %d\n",
		me.Name, me.Pid, me.ParentPid, n, a.Lo, a.Hi, a.Slot)
	return nil
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", "", stderr)
	workers := fs.Int("workers", 4, "number of prime-counting child processes (1-64)")
	limit := fs.Int("n", 10_000_000, "count the primes below `n`")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 || *workers < 1 || *workers > 64 || *limit < *workers {
		fs.Usage()
		return fmt.Errorf("%w: demo takes no arguments, 1-64 workers and n >= workers", errUsage)
	}
	out, errOut := &syncWriter{w: stdout}, &syncWriter{w: stderr}
	opts := func(name string) mproc.ProcOptions {
		return mproc.ProcOptions{Name: name, Stdout: out, Stderr: errOut}
	}
	// Start terminates the children when ctx ends, and kills them a grace
	// period later, so Wait needs no deadline of its own; waiting past ctx
	// means no child is left running when run returns.
	wait := context.WithoutCancel(ctx)

	mem, err := mproc.NewSharedMemory(8 * *workers)
	if err != nil {
		return err
	}
	defer mem.Close()
	fmt.Fprintf(out, "parent (pid %d): %d children count the primes below %d, each into its 8-byte slot of shared memory\n",
		mproc.Current().Pid, *workers, *limit)
	var procs []*mproc.Process
	var errs []error
	for i := range *workers {
		lo, hi := i**limit / *workers, (i+1)**limit / *workers
		p, err := primesFn.Start(ctx, primesArg{Mem: mem, Slot: i, Lo: lo, Hi: hi}, opts(fmt.Sprintf("primes-%d", i)))
		if err != nil {
			errs = append(errs, err)
			break
		}
		procs = append(procs, p)
	}
	for _, p := range procs {
		if len(errs) > 0 {
			p.Terminate()
		}
		if err := p.Wait(wait); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted:\n%w", errors.Join(errs...))
		}
		return errors.Join(errs...)
	}
	counts := make([]uint64, *workers)
	var total uint64
	for i := range counts {
		counts[i] = binary.LittleEndian.Uint64(mem.Bytes()[8*i:])
		total += counts[i]
	}
	want, err := countPrimes(ctx, 0, *limit)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "parent read %v from shared memory: %d primes in all (one process counting alone: %d)\n", counts, total, want)
	if total != uint64(want) {
		return fmt.Errorf("children counted %d primes, one process %d", total, want)
	}

	// A panic in a child is the child's problem: the parent gets it as an error.
	p, err := panicFn.Start(ctx, "index out of range in a buggy worker", opts("crasher"))
	if err != nil {
		return err
	}
	var pe *mproc.PanicError
	if err := p.Wait(wait); !errors.As(err, &pe) {
		return fmt.Errorf("child %s: got %v, want a panic", p.Name(), err)
	}
	fmt.Fprintf(out, "contained: %s (pid %d) panicked with %q; the parent carries on\n", pe.Process, pe.Pid, pe.Value)

	// Terminate cancels the child's context; it returns the cause.
	p, err = sleepFn.Start(ctx, struct{}{}, opts("sleeper"))
	if err != nil {
		return err
	}
	if err := p.Terminate(); err != nil {
		return err
	}
	var re *mproc.RemoteError
	if err := p.Wait(wait); !errors.Is(err, mproc.ErrTerminated) || !errors.As(err, &re) {
		return fmt.Errorf("child %s: got %v, want %v", p.Name(), err, mproc.ErrTerminated)
	}
	fmt.Fprintf(out, "stopped: %s (pid %d) was terminated and returned its context's cause %q (errors.Is ErrTerminated)\n", re.Process, re.Pid, re.Msg)
	if left := mproc.Children(); len(left) > 0 {
		return fmt.Errorf("%d children still running", len(left))
	}
	fmt.Fprintf(out, "demo ok: every child ended and was reaped\n")
	return nil
}

// countPrimes counts the primes in [lo, hi) with a segmented sieve of
// Eratosthenes. It returns context.Cause(ctx) if ctx ends first.
func countPrimes(ctx context.Context, lo, hi int) (int, error) {
	lo = max(lo, 2)
	if hi <= lo {
		return 0, nil
	}
	r := int(math.Sqrt(float64(hi))) + 1
	composite := make([]bool, r+1)
	var base []int // the primes up to sqrt(hi)
	for i := 2; i <= r; i++ {
		if !composite[i] {
			base = append(base, i)
			for j := i * i; j <= r; j += i {
				composite[j] = true
			}
		}
	}
	const segment = 1 << 16
	seg := make([]bool, segment)
	count := 0
	for start := lo; start < hi; start += segment {
		if ctx.Err() != nil {
			return 0, context.Cause(ctx)
		}
		end := min(start+segment, hi)
		clear(seg)
		for _, p := range base {
			if p*p >= end {
				break
			}
			for j := max(p*p, (start+p-1)/p*p); j < end; j += p {
				seg[j-start] = true
			}
		}
		for _, c := range seg[:end-start] {
			if !c {
				count++
			}
		}
	}
	return count, nil
}
