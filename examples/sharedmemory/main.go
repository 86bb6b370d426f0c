// Sharedmemory shows the two ways to share memory with mproc: an anonymous
// block handed to children in their argument, and a named block that any
// process of the same user opens by name.
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"mproc"
)

type fillArg struct {
	Mem  *mproc.SharedMemory // arrives mapped in the child
	Half int                 // 0 or 1
}

// fill writes a line into its half of the block.
var fill = mproc.Register("fill", func(ctx context.Context, a fillArg) error {
	defer a.Mem.Close()
	half := len(a.Mem.Bytes()) / 2
	copy(a.Mem.Bytes()[a.Half*half:], fmt.Sprintf("half %d written by pid %d", a.Half, os.Getpid()))
	return nil
})

// reply opens the named block by name, reads it and writes an answer after
// the parent's message.
var reply = mproc.Register("reply", func(ctx context.Context, name string) error {
	m, err := mproc.OpenSharedMemory(name)
	if err != nil {
		return err
	}
	defer m.Close()
	msg := string(bytes.TrimRight(m.Bytes()[:32], "\x00"))
	copy(m.Bytes()[32:], fmt.Sprintf("pid %d got %q", os.Getpid(), msg))
	return nil
})

func main() {
	mproc.Main()
	if err := run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context) error {
	// Anonymous: no name, reaches the children inside their argument.
	anon, err := mproc.NewSharedMemory(64)
	if err != nil {
		return err
	}
	defer anon.Close()
	var kids []*mproc.Process
	for half := range 2 {
		p, err := fill.Start(ctx, fillArg{Mem: anon, Half: half}, mproc.ProcOptions{})
		if err != nil {
			return err
		}
		kids = append(kids, p)
	}
	for _, p := range kids { // both run at once, each in its own half
		if err := p.Wait(ctx); err != nil {
			return err
		}
	}
	for half := range 2 {
		fmt.Printf("anonymous, half %d: %s\n", half, bytes.TrimRight(anon.Bytes()[half*32:(half+1)*32], "\x00"))
	}

	// Named: lives in /dev/shm until removed; the child opens it by name.
	name := fmt.Sprintf("mproc-example-%d", os.Getpid())
	named, err := mproc.CreateSharedMemory(name, 128)
	if err != nil {
		return err
	}
	defer named.Remove() // on every path (after the Remove below, it just fails)
	defer named.Close()
	copy(named.Bytes(), "ping")
	p, err := reply.Start(ctx, name, mproc.ProcOptions{})
	if err != nil {
		return err
	}
	if err := p.Wait(ctx); err != nil {
		return err
	}
	fmt.Printf("named %q: %s\n", named.Name(), bytes.TrimRight(named.Bytes()[32:], "\x00"))

	// Remove deletes the name; this process keeps its mapping.
	if err := named.Remove(); err != nil {
		return err
	}
	if _, err := mproc.OpenSharedMemory(name); !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("open after Remove: %v, want os.ErrNotExist", err)
	}
	fmt.Printf("after Remove, opening the name fails with os.ErrNotExist; our mapping still reads %q\n",
		bytes.TrimRight(named.Bytes()[:32], "\x00"))
	return nil
}
