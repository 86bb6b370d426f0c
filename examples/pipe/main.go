// Pipe: a duplex Pipe between the parent and a child. They play ping-pong
// over it, each end both sending and receiving; then the child returns, its
// end closes with its process, and the parent's Recv gets io.EOF.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"syscall"

	"mproc"
)

type ball struct {
	Hit  int
	Word string
}

// player answers each ping with a pong until it is told "bye".
var player = mproc.Register("player", func(ctx context.Context, c *mproc.Conn) error {
	defer c.Close()
	for {
		var b ball
		if err := c.Recv(ctx, &b); err != nil {
			return err
		}
		if b.Word == "bye" {
			fmt.Printf("  child  (pid %d) got bye: returning closes its end\n", os.Getpid())
			return nil
		}
		fmt.Printf("  child  (pid %d) got %s %d\n", os.Getpid(), b.Word, b.Hit)
		if err := c.Send(ctx, ball{Hit: b.Hit + 1, Word: "pong"}); err != nil {
			return err
		}
	}
})

func main() {
	mproc.Main()
	ctx := context.Background()
	mine, theirs, err := mproc.Pipe(mproc.Duplex)
	if err != nil {
		log.Fatal(err)
	}
	p, err := player.Start(ctx, theirs, mproc.ProcOptions{}) // the child gets its own copy
	if err != nil {
		log.Fatal(err)
	}
	theirs.Close() // close ours, or the pipe stays open here and EOF never comes

	for hit := 1; hit < 6; hit += 2 {
		if err := mine.Send(ctx, ball{Hit: hit, Word: "ping"}); err != nil {
			log.Fatal(err)
		}
		var b ball
		if err := mine.Recv(ctx, &b); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("  parent (pid %d) got %s %d\n", os.Getpid(), b.Word, b.Hit)
	}
	if err := mine.Send(ctx, ball{Word: "bye"}); err != nil {
		log.Fatal(err)
	}

	// Nothing more will come: once the child's end is closed, Recv says so.
	var b ball
	err = mine.Recv(ctx, &b)
	fmt.Printf("parent: Recv after the child closed its end: %v (io.EOF: %t)\n", err, errors.Is(err, io.EOF))
	if !errors.Is(err, io.EOF) {
		log.Fatal("expected io.EOF")
	}
	err = mine.Send(ctx, ball{Word: "anyone?"})
	fmt.Printf("parent: Send after it: %v (EPIPE: %t; no SIGPIPE kills us)\n", err, errors.Is(err, syscall.EPIPE))
	if err := p.Wait(ctx); err != nil {
		log.Fatal(err)
	}
	mine.Close()
}
