// net/rpc between processes over shared memory: the standard library's
// RPC package, unchanged, on a shmnet connection to a child process.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/rpc"
	"os"
	"path/filepath"
	"time"

	"mproc"
	"mproc/shmnet"
)

// Arith is the service; its methods follow net/rpc's rules.
type Arith struct{}

type Args struct{ A, B int }

func (Arith) Multiply(a Args, reply *int) error { *reply = a.A * a.B; return nil }

func (Arith) Divide(a Args, reply *int) error {
	if a.B == 0 {
		return errors.New("divide by zero")
	}
	*reply = a.A / a.B
	return nil
}

type serverArg struct {
	Path  string
	Ready *mproc.Event
}

var serve = mproc.Register("netrpc-server", func(ctx context.Context, a serverArg) error {
	ln, err := shmnet.Listen(a.Path, nil)
	if err != nil {
		return err
	}
	go func() { <-ctx.Done(); ln.Close() }()
	s := rpc.NewServer()
	if err := s.Register(Arith{}); err != nil {
		return err
	}
	a.Ready.Set()
	for {
		conn, err := ln.Accept()
		if err != nil {
			return nil // ln closed: the parent terminated us
		}
		go s.ServeConn(conn)
	}
})

func main() {
	mproc.Main()
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "mproc-netrpc-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "arith")
	ready, err := mproc.NewEvent()
	if err != nil {
		log.Fatal(err)
	}
	p, err := serve.Start(ctx, serverArg{path, ready}, mproc.ProcOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer func() { p.Terminate(); p.Wait(ctx) }()
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := ready.Wait(wctx); err != nil {
		log.Fatal("server not ready: ", err)
	}
	conn, err := shmnet.Dial(ctx, path, nil)
	if err != nil {
		log.Fatal(err)
	}
	c := rpc.NewClient(conn)
	defer c.Close()
	var product int
	if err := c.Call("Arith.Multiply", Args{7, 6}, &product); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("Arith.Multiply(7, 6) = %d, computed by pid %d over shmnet\n", product, p.Pid())
	var q int
	err = c.Call("Arith.Divide", Args{1, 0}, &q)
	fmt.Printf("Arith.Divide(1, 0): error %q (a server error is an rpc.ServerError)\n", err)
	const calls = 2000
	t0 := time.Now()
	for i := range calls {
		if err := c.Call("Arith.Multiply", Args{i, 2}, &product); err != nil || product != 2*i {
			log.Fatalf("call %d: %d %v", i, product, err)
		}
	}
	fmt.Printf("%d calls, %v each\n", calls, (time.Since(t0) / calls).Round(time.Microsecond))
}
