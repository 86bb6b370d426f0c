// Namedpipe: a named pipe (FIFO) joins programs that share nothing but a
// path. This program makes one, then runs two unrelated programs on it: a
// writer that sends "Hello from pid N" and a reader that prints it (this same
// binary started as "namedpipe write PATH" and "namedpipe read PATH"); then
// the shell's "echo ... > fifo" and "cat fifo" on the same path.
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"mproc"
	"mproc/fifo"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if len(os.Args) == 3 { // one of the two programs
		if err := peer(ctx, os.Args[1], os.Args[2]); err != nil {
			log.Fatal(err)
		}
		return
	}
	dir, err := os.MkdirTemp("", "namedpipe")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "fifo")
	if err := fifo.Create(path, 0o600); err != nil {
		log.Fatal(err)
	}
	fmt.Println("FIFO:", path)

	self, err := os.Executable()
	if err != nil {
		log.Fatal(err)
	}
	run(ctx, exec.Command(self, "read", path), exec.Command(self, "write", path))

	var out strings.Builder
	cat := exec.Command("cat", path)
	cat.Stdout = &out
	echo := exec.Command("sh", "-c", `echo "Hello from the shell, pid $$" > "$1"`, "sh", path)
	fmt.Println("the shell, on the same FIFO:")
	fmt.Println(`  $ cat fifo &`)
	fmt.Println(`  $ echo "Hello from the shell, pid $$" > fifo`)
	run(ctx, cat, echo)
	fmt.Printf("  cat printed: %s", out.String())
}

// run starts both programs, bound to this one (they die with it), and
// waits for them. Each one's open of the FIFO waits for the other.
func run(ctx context.Context, cmds ...*exec.Cmd) {
	var ps []*mproc.Process
	for _, c := range cmds {
		if c.Stdout == nil {
			c.Stdout = os.Stdout
		}
		c.Stderr = os.Stderr
		p, err := mproc.StartCommand(ctx, c, mproc.CommandOptions{})
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
}

func peer(ctx context.Context, role, path string) error {
	if role == "write" {
		w, err := fifo.OpenWriter(ctx, path) // waits for a reader
		if err != nil {
			return err
		}
		defer w.Close() // the reader then sees the end of the stream
		msg := fmt.Sprintf("Hello from pid %d", os.Getpid())
		fmt.Printf("writer (pid %d) sends %q\n", os.Getpid(), msg)
		return w.WriteMessage(ctx, []byte(msg)) // one atomic write
	}
	r, err := fifo.OpenReader(ctx, path) // waits for a writer
	if err != nil {
		return err
	}
	defer r.Close()
	msg, err := r.ReadMessage(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("reader (pid %d) got %q\n", os.Getpid(), msg)
	if _, err = r.ReadMessage(ctx); err != io.EOF {
		return fmt.Errorf("after the message: %v, want io.EOF", err)
	}
	fmt.Printf("reader (pid %d) then got io.EOF: the writer closed its end\n", os.Getpid())
	return nil
}
