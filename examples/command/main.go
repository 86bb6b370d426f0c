// Command runs an external program bound to this process and hands it a
// SharedMemory block as a file descriptor.
package main

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"
	"os/exec"
	"strconv"

	"mproc"
)

// script reads $2 bytes at file offset $1 from fd 3 (what the parent wrote)
// and writes a reply at file offset $3 (conv=notrunc: the size is sealed).
const script = `
msg=$(dd if=/proc/self/fd/3 bs=1 skip="$1" count="$2" status=none)
echo "sh (pid $$) read: $msg"
printf 'sh %s was here' "$$" | dd of=/proc/self/fd/3 bs=1 seek="$3" conv=notrunc status=none
`

func main() {
	mproc.Main() // not needed for StartCommand alone, but harmless and a good habit
	if err := run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context) error {
	mem, err := mproc.NewSharedMemory(128)
	if err != nil {
		return err
	}
	defer mem.Close()
	msg := "hello from the Go parent"
	copy(mem.Bytes(), msg)

	f, err := mem.File() // a descriptor of its own, for the command
	if err != nil {
		return err
	}
	defer f.Close()
	const replyAt = 64 // in Bytes()
	cmd := exec.Command("sh", "-c", script, "sh",
		strconv.Itoa(mproc.SharedMemoryFileOffset), strconv.Itoa(len(msg)), strconv.Itoa(mproc.SharedMemoryFileOffset+replyAt))
	cmd.ExtraFiles = []*os.File{f} // ExtraFiles[0] is fd 3 in the command
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr

	// Bound: if this process dies, however it dies, the command is killed.
	p, err := mproc.StartCommand(ctx, cmd, mproc.CommandOptions{})
	if err != nil {
		return err
	}
	f.Close() // the command has its own copy now
	if err := p.Wait(ctx); err != nil {
		return err
	}
	reply := bytes.TrimRight(mem.Bytes()[replyAt:], "\x00")
	fmt.Printf("parent (pid %d) read the reply at Bytes()[%d:]: %s\n", os.Getpid(), replyAt, reply)
	return nil
}
