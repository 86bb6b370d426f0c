package shmnet_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"

	"mproc/shmnet"
)

// A server that answers each line with its length, and a client, both here
// for the example; in real use they are two processes that share the
// socket path (and the key).
func Example() {
	dir, _ := os.MkdirTemp("", "shmnet-example-")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "server.sock")
	opts := &shmnet.Options{Key: []byte("secret")}

	ln, err := shmnet.Listen(path, opts)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		s := bufio.NewScanner(c)
		for s.Scan() {
			fmt.Fprintf(c, "%d\n", len(s.Text()))
		}
	}()

	c, err := shmnet.Dial(context.Background(), path, opts)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	r := bufio.NewReader(c)
	for _, line := range []string{"shared", "memory"} {
		fmt.Fprintln(c, line)
		answer, _ := r.ReadString('\n')
		fmt.Print(line, " ", answer)
	}
	fmt.Println(c.RemoteAddr().Network())
	// Output:
	// shared 6
	// memory 6
	// shmnet
}
