// Faults shows how a child's failures reach its parent as typed errors,
// and that the parent survives every one of them.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"syscall"

	"mproc"
)

// The children: each fails in its own way.
var (
	panics = mproc.Register("panics", func(ctx context.Context, _ struct{}) error {
		var m map[string]int
		m["boom"]++ // assignment to entry in nil map
		return nil
	})
	exits = mproc.Register("exits", func(ctx context.Context, code int) error {
		os.Exit(code)
		return nil
	})
	hangs = mproc.Register("hangs", func(ctx context.Context, _ struct{}) error {
		select {} // ignores its context: only Kill ends it
	})
	givesUp = mproc.Register("gives-up", func(ctx context.Context, _ struct{}) error {
		step, cancel := context.WithCancel(ctx)
		cancel() // say the step was abandoned
		<-step.Done()
		return fmt.Errorf("step 2 of 3: %w", step.Err())
	})
)

func main() {
	mproc.Main()
	if err := run(context.Background()); err != nil {
		log.Fatal(err)
	}
	fmt.Println("the parent survived all four")
}

func run(ctx context.Context) error {
	// A panic arrives as a *PanicError with the value and the child's stack.
	err := startWait(ctx, panics, struct{}{})
	var pe *mproc.PanicError
	if !errors.As(err, &pe) {
		return fmt.Errorf("panics: got %v, want a *mproc.PanicError", err)
	}
	fmt.Printf("panic:   %s panicked: %s (stack: %d bytes)\n", pe.Process, pe.Value, len(pe.Stack))

	// os.Exit skips the function's return: an *ExitError with the status.
	err = startWait(ctx, exits, 3)
	var ee *mproc.ExitError
	if !errors.As(err, &ee) || ee.Code != 3 {
		return fmt.Errorf("exits: got %v, want an *mproc.ExitError with code 3", err)
	}
	fmt.Printf("exit:    %v\n", ee)

	// Kill: an *ExitError naming the signal.
	p, err := hangs.Start(ctx, struct{}{}, mproc.ProcOptions{})
	if err != nil {
		return err
	}
	p.Kill()
	if err := p.Wait(ctx); !errors.As(err, &ee) || ee.Signal != syscall.SIGKILL {
		return fmt.Errorf("hangs: got %v, want an *mproc.ExitError with SIGKILL", err)
	}
	fmt.Printf("kill:    %v\n", ee)

	// A returned error keeps its text, and its identity for sentinels.
	err = startWait(ctx, givesUp, struct{}{})
	if !errors.Is(err, context.Canceled) {
		return fmt.Errorf("gives-up: got %v, want context.Canceled", err)
	}
	fmt.Printf("error:   %v (errors.Is context.Canceled: true)\n", err)
	return nil
}

func startWait[A any](ctx context.Context, f *mproc.Func[A], arg A) error {
	p, err := f.Start(ctx, arg, mproc.ProcOptions{})
	if err != nil {
		log.Fatal(err) // not the fault we came to see
	}
	return p.Wait(ctx)
}
