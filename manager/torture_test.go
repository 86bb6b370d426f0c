//go:build mprocfail

package manager_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"mproc"
	"mproc/internal/failpoint"
	"mproc/internal/testenv"
	"mproc/manager"
)

// The manager's torture tests (issue 18): a client process killed with
// SIGKILL halfway through a call (manager/failpoints.go) while this
// process uses the same objects, on either path; and the server killed
// halfway through creating an object, counting a reference, dropping a
// dead client's references or setting up the shared-memory path. One line
// per scenario:
//
//	go test -tags mprocfail -run Torture -v ./manager -args -torture.n=200
var tortureN = flag.Int("torture.n", 20, "iterations per torture scenario")

// tortureItems is how many items each iteration's queue starts with.
const tortureItems = 100

// bigValue is a dict value of three chunks on the shared-memory path.
var bigValue = bytes.Repeat([]byte("0123456789abcdef"), 150<<10/16)

type clientArg struct {
	Network, Addr     string
	Key               []byte
	SocketOnly        bool
	Dict, Lock, Queue string
	// Got counts, per item, the gets of it that returned in the child.
	Got *mproc.Array[uint32]
	// Big: set bigValue in every round (the chunk failpoint's scenario).
	Big bool
}

// tortureClient uses the objects this process made, in rounds, until it
// is killed: under the lock it sets a dict entry (and a big one), takes an
// item from the queue, creates and drops a dict of its own, and takes and
// drops a second reference to the shared dict. Every kind of call passes
// the client's failpoints: create, incref, decref, and methods.
var tortureClient = mproc.Register("manager-torture-client", func(ctx context.Context, a clientArg) error {
	c, err := manager.Dial(ctx, a.Network, a.Addr, a.Key, &manager.DialOptions{SocketOnly: a.SocketOnly})
	if err != nil {
		return err
	}
	d, err := manager.Attach[manager.Dict[string, []byte]](ctx, c, a.Dict)
	if err != nil {
		return err
	}
	l, err := manager.Attach[manager.Lock](ctx, c, a.Lock)
	if err != nil {
		return err
	}
	q, err := manager.Attach[manager.Queue[int64]](ctx, c, a.Queue)
	if err != nil {
		return err
	}
	for i := 0; ; i++ {
		if err := l.Acquire(ctx); err != nil {
			return err
		}
		if err := d.Set(ctx, "child", []byte(fmt.Sprint(i))); err != nil {
			return err
		}
		if a.Big {
			if err := d.Set(ctx, "big", bigValue); err != nil {
				return err
			}
		}
		if err := l.Release(ctx); err != nil {
			return err
		}
		switch seq, err := q.TryGet(ctx); {
		case err == nil:
			a.Got.Add(int(seq), 1)
		case !errors.Is(err, mproc.ErrEmpty):
			return err
		}
		own, err := manager.NewDict[string, int](ctx, c)
		if err != nil {
			return err
		}
		if err := own.Set(ctx, "x", i); err != nil {
			return err
		}
		if err := own.Close(ctx); err != nil {
			return err
		}
		d2, err := manager.Attach[manager.Dict[string, []byte]](ctx, c, a.Dict)
		if err != nil {
			return err
		}
		if err := d2.Close(ctx); err != nil {
			return err
		}
	}
})

type tally struct {
	iterations, survived, lost, dup, torn, hangs, bad int
	// taken counts queue items a killed client took with it (at most
	// one per death: the queue's promise); freed, objects freed while
	// this process held them; leaked, references of the dead client
	// still held 10 s after its death.
	taken, freed, leaked int
	// swept counts server deaths that left names in /dev/shm until the
	// next server started (and removed them).
	swept       int
	maxRecovery time.Duration
}

func (tl *tally) String() string {
	return fmt.Sprintf("%d of %d survived; lost %d, dup %d, torn %d, hangs %d, freed early %d, leaked %d, other failures %d, max recovery %v; items taken by the killed client %d, names left until the next server %d",
		tl.survived, tl.iterations, tl.lost, tl.dup, tl.torn, tl.hangs, tl.freed, tl.leaked, tl.bad, tl.maxRecovery.Round(time.Millisecond), tl.taken, tl.swept)
}

func (tl *tally) report(t *testing.T, line string) {
	t.Helper()
	line = fmt.Sprintf("%s: %v", line, tl)
	t.Log(line)
	if tl.survived != tl.iterations || tl.lost+tl.dup+tl.torn+tl.hangs+tl.freed+tl.leaked+tl.bad > 0 {
		t.Error(line)
	}
}

// waitObjects waits up to 10 s for the server to hold want objects, and
// returns how many it holds then; at once if fewer (an object freed
// while referenced does not come back).
func waitObjects(ctx context.Context, c *manager.Client, want int) int {
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := manager.NumObjects(ctx, c)
		if err != nil {
			return -1
		}
		if n <= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// serverSegments counts the names in /dev/shm of the server with pid:
// its shared-memory path's queues, which must not outlive their set-up.
func serverSegments(t *testing.T, pid int) int {
	t.Helper()
	m, err := filepath.Glob(fmt.Sprintf("/dev/shm/*mproc-manager-%d-*", pid))
	check(t, err)
	return len(m)
}

// TestTortureClientKilled kills a client process at each point of a call,
// on the shared-memory path and on the socket, while this process uses
// the same dict, lock and queue. After the death: this process gets the
// lock, its objects all still answer (none freed while it holds them),
// the server's object count returns to the three it holds (the dead
// client's references, its own dicts included, are dropped), the queue
// lost at most the one item of a get in flight, a half-sent big value was
// dropped whole, and /dev/shm holds nothing of the server's.
func TestTortureClientKilled(t *testing.T) {
	if !failpoint.Enabled {
		t.Fatal("built without -tags mprocfail")
	}
	scenarios := []struct {
		name, point string
		maxHit      int
		socketOnly  bool
		big         bool
	}{
		{"MC1 client killed after sending a request, shared memory", manager.FailClientSent, 60, false, false},
		{"MC2 client killed after sending a request, socket", manager.FailClientSent, 60, true, false},
		{"MC3 client killed after reading a reply, shared memory", manager.FailClientReplied, 60, false, false},
		{"MC4 client killed after reading a reply, socket", manager.FailClientReplied, 60, true, false},
		{"MC5 client killed between the chunks of a request, shared memory", manager.FailLinkChunk, 6, false, true},
	}
	// The scenarios run side by side, each with a server of its own:
	// most of an iteration is waiting for the server's reaper.
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t)
			var tl tally
			start := time.Now()
			for range *tortureN {
				clientOnce(t, srv, sc.point, 1+rand.IntN(sc.maxHit), sc.socketOnly, sc.big, &tl)
			}
			tl.report(t, fmt.Sprintf("%s (%s, %v)", sc.name, sc.point, time.Since(start).Round(time.Millisecond)))
		})
	}
}

func clientOnce(t *testing.T, srv *manager.Process, point string, k int, socketOnly, big bool, tl *tally) {
	tl.iterations++
	ctx := ctxFor(t, 60*time.Second)
	fail := func(format string, args ...any) {
		t.Logf("%s (socket only %v), kill at hit %d: %s", point, socketOnly, k, fmt.Sprintf(format, args...))
	}
	c, err := manager.Dial(ctx, srv.Network, srv.Addr, srv.Key, &manager.DialOptions{SocketOnly: socketOnly})
	check(t, err)
	defer c.Close()
	// The server holds nothing between iterations: an object a dead
	// client's late request created is reaped within a quarter second.
	if n := waitObjects(ctx, c, 0); n != 0 {
		tl.leaked++
		fail("%d objects on the server before the iteration", n)
		return
	}
	d, err := manager.NewDict[string, []byte](ctx, c)
	check(t, err)
	l, err := manager.NewLock(ctx, c, "Lock")
	check(t, err)
	q, err := manager.NewQueue[int64](ctx, c, 0)
	check(t, err)
	defer func() {
		// Dropped, the three are freed; and nothing else is left.
		for _, r := range []*manager.Ref{d.Ref, l.Ref, q.Ref} {
			r.Close(ctx)
		}
		if n := waitObjects(ctx, c, 0); n != 0 {
			tl.leaked++
			fail("%d objects on the server 10 s after this process dropped its own", n)
		}
	}()
	for seq := range int64(tortureItems) {
		check(t, q.Put(ctx, seq+1))
	}
	got, err := mproc.NewArray[uint32](tortureItems + 1)
	check(t, err)
	defer got.Close()
	p, err := tortureClient.Start(ctx, clientArg{Network: srv.Network, Addr: srv.Addr, Key: srv.Key, SocketOnly: socketOnly,
		Dict: d.ID(), Lock: l.ID(), Queue: q.ID(), Got: got, Big: big},
		mproc.ProcOptions{Env: []string{fmt.Sprintf("%s=%s=kill@%d", failpoint.Env, point, k)}})
	check(t, err)
	testenv.Reap(t, p)
	exited := make(chan time.Time, 1)
	go func() { <-p.Done(); exited <- time.Now() }()
	// Contend for the lock and use the dict while the child lives.
	for p.Alive() {
		if err := l.Acquire(ctx); err != nil {
			tl.hangs++
			fail("Acquire while the client lives: %v", err)
			return
		}
		err := d.Set(ctx, "parent", []byte("p"))
		if rerr := l.Release(ctx); err == nil {
			err = rerr
		}
		if err != nil {
			tl.bad++
			fail("the dict or lock while the client lives: %v", err)
			return
		}
	}
	var ee *mproc.ExitError
	if err := p.Wait(ctx); !errors.As(err, &ee) || ee.Signal != syscall.SIGKILL {
		tl.bad++
		fail("the client was to be killed: %v", err)
		return
	}
	died := <-exited
	// The lock, whoever held it.
	short, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := l.Acquire(short); err != nil {
		tl.hangs++
		fail("Acquire after the client died: %v", err)
		return
	}
	recovered := time.Since(died)
	check(t, l.Release(ctx))
	// The dict: still there, a big value whole or absent.
	if err := d.Set(ctx, "after", []byte("a")); err != nil {
		tl.freed++
		fail("the dict after the client died: %v", err)
		return
	}
	switch v, err := d.Get(ctx, "big"); {
	case errors.Is(err, manager.ErrNotFound):
	case err != nil:
		tl.bad++
		fail("Get big: %v", err)
		return
	case !bytes.Equal(v, bigValue):
		tl.torn++
		fail("a big value of %d bytes, not the %d sent", len(v), len(bigValue))
		return
	}
	// The queue: each item got by the child or left, once.
	left := make([]int, tortureItems+1)
	for {
		seq, err := q.TryGet(ctx)
		if errors.Is(err, mproc.ErrEmpty) {
			break
		}
		if err != nil {
			tl.freed++
			fail("the queue after the client died: %v", err)
			return
		}
		if seq < 1 || seq > tortureItems {
			tl.torn++
			fail("item %d was never put", seq)
			return
		}
		left[seq]++
	}
	missing := 0
	for seq := 1; seq <= tortureItems; seq++ {
		switch n := int(got.Load(seq)) + left[seq]; {
		case n == 0:
			missing++
		case n > 1:
			tl.dup++
			fail("item %d delivered %d times", seq, n)
		}
	}
	if missing > 1 {
		tl.lost += missing
		fail("%d items lost", missing)
	} else {
		tl.taken += missing
	}
	// References: back to the three this process holds.
	switch n := waitObjects(ctx, c, 3); {
	case n < 3:
		tl.freed++
		fail("%d objects on the server, this process holds 3", n)
		return
	case n > 3:
		tl.leaked++
		fail("%d objects on the server 10 s after the client died; this process holds 3", n)
		return
	}
	recovered = max(recovered, time.Since(died))
	if n := serverSegments(t, srv.Pid()); n != 0 {
		tl.bad++
		fail("%d names in /dev/shm", n)
		return
	}
	tl.maxRecovery = max(tl.maxRecovery, recovered)
	if tl.lost+tl.dup == 0 {
		tl.survived++
	}
}

// holderArg is the argument of tortureHolder.
type holderArg struct {
	Network, Addr string
	Key           []byte
	Ready         *mproc.Event
}

// tortureHolder creates a dict, sets Ready, and waits to be killed.
var tortureHolder = mproc.Register("manager-torture-holder", func(ctx context.Context, a holderArg) error {
	c, err := manager.Dial(ctx, a.Network, a.Addr, a.Key, nil)
	if err != nil {
		return err
	}
	if _, err := manager.NewDict[string, int](ctx, c); err != nil {
		return err
	}
	a.Ready.Set()
	<-ctx.Done()
	return ctx.Err()
})

// TestTortureServerKilled kills the server (manager.Start's child) at each
// point of its reference counting and of the shared-memory path's set-up,
// while this process calls it from four goroutines (two per path, one of
// them blocked in a queue's get). Every call must fail with ErrServerGone
// within 10 s of the death, later calls too, and the server's names must
// be gone from /dev/shm.
func TestTortureServerKilled(t *testing.T) {
	scenarios := []struct {
		name, point string
		maxHit      int
	}{
		{"MS1 server killed after creating an object", manager.FailServerCreated, 30},
		{"MS2 server killed after counting an incref or decref", manager.FailServerRef, 30},
		{"MS3 server killed dropping a dead client's references", manager.FailServerReaped, 1},
		{"MS4 server killed after offering the shared-memory path", manager.FailServerShmOffered, 10},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			var tl tally
			start := time.Now()
			for range *tortureN {
				serverOnce(t, sc.point, 1+rand.IntN(sc.maxHit), &tl)
			}
			tl.report(t, fmt.Sprintf("%s (%s, %v)", sc.name, sc.point, time.Since(start).Round(time.Millisecond)))
		})
	}
}

// serverLoad calls the server until a call fails, and returns that error:
// a new client per round (so that the shared-memory path is set up
// again), a dict created, set, referenced again and dropped twice.
func serverLoad(ctx context.Context, srv *manager.Process, socketOnly bool) error {
	for {
		c, err := manager.Dial(ctx, srv.Network, srv.Addr, srv.Key, &manager.DialOptions{SocketOnly: socketOnly})
		if err != nil {
			return err
		}
		err = func() error {
			defer c.Close()
			d, err := manager.NewDict[string, int](ctx, c)
			if err != nil {
				return err
			}
			if err := d.Set(ctx, "k", 1); err != nil {
				return err
			}
			d2, err := manager.Attach[manager.Dict[string, int]](ctx, c, d.ID())
			if err != nil {
				return err
			}
			if err := d2.Close(ctx); err != nil {
				return err
			}
			return d.Close(ctx)
		}()
		if err != nil {
			return err
		}
	}
}

// serverBlocked blocks in a queue's get until the server goes.
func serverBlocked(ctx context.Context, srv *manager.Process, socketOnly bool) error {
	c, err := manager.Dial(ctx, srv.Network, srv.Addr, srv.Key, &manager.DialOptions{SocketOnly: socketOnly})
	if err != nil {
		return err
	}
	defer c.Close()
	q, err := manager.NewQueue[int](ctx, c, 0)
	if err != nil {
		return err
	}
	_, err = q.Get(ctx)
	return err
}

func serverOnce(t *testing.T, point string, k int, tl *tally) {
	tl.iterations++
	ctx := ctxFor(t, 60*time.Second)
	fail := func(format string, args ...any) {
		t.Logf("%s, kill at hit %d: %s", point, k, fmt.Sprintf(format, args...))
	}
	srv, err := manager.Start(ctx, manager.StartOptions{
		Proc: mproc.ProcOptions{Env: []string{fmt.Sprintf("%s=%s=kill@%d", failpoint.Env, point, k)}}})
	check(t, err)
	testenv.Reap(t, srv.Process)
	// The calls, each goroutine's until it fails.
	callCtx, stop := context.WithCancel(ctx)
	defer stop()
	type result struct {
		err error
		at  time.Time
	}
	results := make(chan result, 4)
	var wg sync.WaitGroup
	for _, socketOnly := range []bool{false, true} {
		wg.Go(func() {
			err := serverLoad(callCtx, srv, socketOnly)
			results <- result{err, time.Now()}
		})
		wg.Go(func() {
			err := serverBlocked(callCtx, srv, socketOnly)
			results <- result{err, time.Now()}
		})
	}
	if point == manager.FailServerReaped {
		ready, err := mproc.NewEvent()
		check(t, err)
		defer ready.Close()
		h, err := tortureHolder.Start(ctx, holderArg{Network: srv.Network, Addr: srv.Addr, Key: srv.Key, Ready: ready}, mproc.ProcOptions{})
		check(t, err)
		testenv.Reap(t, h)
		ready.Wait(ctx)
		h.Kill()
		h.Wait(ctx)
	}
	var ee *mproc.ExitError
	if err := srv.Wait(ctx); !errors.As(err, &ee) || ee.Signal != syscall.SIGKILL {
		tl.bad++
		fail("the server was to be killed: %v", err)
		srv.Kill()
		stop()
		wg.Wait()
		return
	}
	died := time.Now()
	timeout := time.After(10 * time.Second)
	ok := true
	for range 4 {
		select {
		case r := <-results:
			if !errors.Is(r.err, manager.ErrServerGone) {
				ok = false
				tl.bad++
				fail("a call as the server died: %v", r.err)
			}
			tl.maxRecovery = max(tl.maxRecovery, r.at.Sub(died))
		case <-timeout:
			tl.hangs++
			fail("a call still waits 10 s after the server died")
			stop()
			wg.Wait()
			return
		}
	}
	wg.Wait()
	if _, err := manager.Dial(ctx, srv.Network, srv.Addr, srv.Key, nil); !errors.Is(err, manager.ErrServerGone) {
		ok = false
		tl.bad++
		fail("Dial after the server died: %v", err)
	}
	if n := serverSegments(t, srv.Pid()); n != 0 {
		// Names the server created and died before naming to its
		// client: the next server to start sweeps them.
		tl.swept++
		next := startServer(t)
		check(t, next.Shutdown(ctx))
		if n := serverSegments(t, srv.Pid()); n != 0 {
			ok = false
			tl.bad++
			fail("%d names of the server left in /dev/shm after the next server's sweep", n)
		}
	}
	if ok {
		tl.survived++
	}
}
