// Hello is the smallest mproc program: it runs a function in a child
// process and waits for it.
package main

import (
	"context"
	"fmt"
	"log"

	"mproc"
)

// greet runs in the child. Register it at package level, so that the child,
// which is this same binary started again, knows it too.
var greet = mproc.Register("greet", func(ctx context.Context, name string) error {
	me := mproc.Current()
	fmt.Printf("hello, %s, from %s (pid %d, parent %d)\n", name, me.Name, me.Pid, me.ParentPid)
	return nil
})

func main() {
	mproc.Main() // first: in the child, this runs greet and exits

	ctx := context.Background()
	p, err := greet.Start(ctx, "world", mproc.ProcOptions{})
	if err != nil {
		log.Fatal(err)
	}
	err = p.Wait(ctx) // what greet returned: nil here
	fmt.Printf("%s (pid %d) returned %v, exit status %d\n", p.Name(), p.Pid(), err, p.ExitCode())
	if err != nil {
		log.Fatal(err)
	}
}
