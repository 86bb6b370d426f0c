package mproc_test

import (
	"context"
	"fmt"
	"log"

	"mproc"
)

// greet runs in a child process. Functions are registered at package
// level, so that the child (the same binary, re-executed) knows them too;
// main (here TestMain) calls mproc.Main first.
var greet = mproc.Register("example-greet", func(ctx context.Context, name string) error {
	fmt.Println("hello,", name, "from a child process")
	return nil
})

func ExampleRegister() {
	ctx := context.Background()
	p, err := greet.Start(ctx, "gopher", mproc.ProcOptions{})
	if err != nil {
		log.Fatal(err)
	}
	if err := p.Wait(ctx); err != nil { // the child's error, panic or exit status
		log.Fatal(err)
	}
	fmt.Println("exit code", p.ExitCode())
	// Output:
	// hello, gopher from a child process
	// exit code 0
}

// counterArgs are handles: they travel to the child with their shared
// memory.
type counterArgs struct {
	Lock  *mproc.Lock
	Count *mproc.Value[int64]
}

var addUnderLock = mproc.Register("example-add-under-lock", func(ctx context.Context, a counterArgs) error {
	for range 1000 {
		if err := a.Lock.LockContext(ctx); err != nil {
			return err
		}
		a.Count.Store(a.Count.Load() + 1) // a compound update: the lock makes it safe
		a.Lock.Unlock()
	}
	return nil
})

func ExampleNewLock() {
	ctx := context.Background()
	l, err := mproc.NewLock()
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	n, err := mproc.NewValue[int64](0)
	if err != nil {
		log.Fatal(err)
	}
	defer n.Close()
	var ps []*mproc.Process
	for range 4 {
		p, err := addUnderLock.Start(ctx, counterArgs{Lock: l, Count: n}, mproc.ProcOptions{})
		if err != nil {
			log.Fatal(err)
		}
		ps = append(ps, p)
	}
	for _, p := range ps {
		if err := p.Wait(ctx); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println(n.Load())
	// Output: 4000
}

var echo = mproc.Register("example-echo", func(ctx context.Context, c *mproc.Conn) error {
	defer c.Close()
	for {
		var s string
		if err := c.Recv(ctx, &s); err != nil {
			return nil // io.EOF: the parent closed its end
		}
		if err := c.Send(ctx, "echo: "+s); err != nil {
			return err
		}
	}
})

func ExamplePipe() {
	ctx := context.Background()
	mine, theirs, err := mproc.Pipe(mproc.Duplex)
	if err != nil {
		log.Fatal(err)
	}
	p, err := echo.Start(ctx, theirs, mproc.ProcOptions{})
	theirs.Close() // the child has its own copy
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range []string{"one", "two"} {
		if err := mine.Send(ctx, s); err != nil {
			log.Fatal(err)
		}
		var reply string
		if err := mine.Recv(ctx, &reply); err != nil {
			log.Fatal(err)
		}
		fmt.Println(reply)
	}
	mine.Close()
	if err := p.Wait(ctx); err != nil {
		log.Fatal(err)
	}
	// Output:
	// echo: one
	// echo: two
}
