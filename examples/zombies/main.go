// Zombies: what becomes of a child that ends, and of a child whose parent
// ends, seen in /proc.
//
//  1. A zombie is a process that exited and that its parent has not waited
//     for yet (state Z). mproc waits for every child in the background, Wait
//     or no Wait: no zombie is left.
//  2. An mproc child dies with its parent (a "daemon" child in Python's
//     words): kill the middle of a tree, and its child winds down instead of
//     running on as an orphan. Orphans are reaped by pid 1 (or a subreaper).
//  3. Detached opts out: the child outlives its parent, an orphan by choice.
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"strings"
	"syscall"
	"time"

	"mproc"
)

type args struct {
	Go       *mproc.Event        // the parent lets a child go on
	Pid      *mproc.Value[int64] // a middle child's report: its child's pid
	Detached bool
}

var (
	short = mproc.Register("short", func(ctx context.Context, a args) error { return a.Go.Wait(ctx) })
	leaf  = mproc.Register("leaf", func(ctx context.Context, _ args) error {
		<-ctx.Done()
		fmt.Printf("   grandchild %d: context done: %v\n", os.Getpid(), context.Cause(ctx))
		return nil
	})
	middle = mproc.Register("middle", func(ctx context.Context, a args) error {
		p, err := leaf.Start(ctx, a, mproc.ProcOptions{Detached: a.Detached})
		if err != nil {
			return err
		}
		a.Pid.Store(int64(p.Pid()))
		a.Go.Set()
		<-ctx.Done() // until it is killed
		return nil
	})
)

func main() {
	mproc.Main()
	ctx := context.Background()
	a := args{Go: must(mproc.NewEvent()), Pid: must(mproc.NewValue[int64](0))}

	fmt.Println("1. A child returns, and nobody calls Wait")
	p := must(short.Start(ctx, a, mproc.ProcOptions{}))
	fmt.Printf("   child %d runs (%s); it returns now\n", p.Pid(), state(p.Pid()))
	a.Go.Set()
	fmt.Printf("   child %d: %s\n", p.Pid(), ended(p.Pid()))

	for _, detached := range []bool{false, true} {
		fmt.Println(map[bool]string{false: "2. A child's parent is killed: the child ends with it",
			true: "3. The same with ProcOptions{Detached: true}: the child lives on"}[detached])
		a.Go.Clear()
		a.Detached = detached
		m := must(middle.Start(ctx, a, mproc.ProcOptions{}))
		a.Go.Wait(ctx)
		g := int(a.Pid.Load())
		fmt.Printf("   middle %d has a child, %d (%s); SIGKILL to middle\n", m.Pid(), g, state(g))
		m.Kill()
		m.Wait(ctx)
		fmt.Printf("   middle %d: %s\n", m.Pid(), ended(m.Pid()))
		if detached {
			time.Sleep(100 * time.Millisecond) // time to end, were it not detached
			fmt.Printf("   grandchild %d: still running (%s): an orphan; SIGTERM to it\n", g, state(g))
			syscall.Kill(g, syscall.SIGTERM)
		}
		fmt.Printf("   grandchild %d: %s\n", g, ended(g))
	}
}

// state is pid's state letter and parent, from /proc/PID/stat ("" when the
// process is gone: exited and reaped).
func state(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:])) // after "pid (name)"
	return fmt.Sprintf("state %s, parent %s", f[0], f[1])
}

// ended waits until pid has exited and been reaped, and tells how it went.
func ended(pid int) string {
	t0 := time.Now()
	var zombie string // how it was first seen exited but not reaped
	for since := time.Duration(0); since < 10*time.Second; since = time.Since(t0) {
		switch s := state(pid); {
		case s == "" && zombie == "":
			return fmt.Sprintf("reaped at once: gone from /proc after %v", since.Round(time.Millisecond))
		case s == "":
			return fmt.Sprintf("%s until that parent reaped it: gone from /proc after %v", zombie, since.Round(time.Millisecond))
		case strings.HasPrefix(s, "state Z") && zombie == "":
			zombie = fmt.Sprintf("exited after %v; a zombie (%s)", since.Round(time.Millisecond), s)
		}
		time.Sleep(time.Millisecond)
	}
	if zombie == "" {
		log.Fatalf("pid %d still running after 10s", pid)
	}
	return zombie + " still after 10s: that parent does not reap orphans"
}

func must[T any](v T, err error) T {
	if err != nil {
		log.Fatal(err)
	}
	return v
}
