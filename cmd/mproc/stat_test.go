package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"

	"mproc"
)

// statJSON runs stat --json name and decodes it.
func statJSON(t *testing.T, name string) map[string]any {
	t.Helper()
	out := mustCLI(t, "stat", "--json", name)
	var v map[string]any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("stat --json %s: %v\n%s", name, err, out)
	}
	return v
}

func must[T any](t *testing.T) func(v T, err error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func check(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestStatGolden stats an object of every kind, each in a known state, all
// made through the public API: the golden file pins what stat says and,
// through it, that internal/shm's Inspect reads the layouts the root
// package writes.
func TestStatGolden(t *testing.T) {
	ctx := t.Context()
	p := prefix(t)
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	keep := func(c io.Closer) { closers = append(closers, c) }

	q := must[*mproc.Queue[[]byte]](t)(mproc.CreateQueue[[]byte](p+"queue", 4, mproc.WithMaxMessage(64)))
	keep(q)
	for _, m := range []string{"a", "b", "c"} {
		check(t, q.Put(ctx, []byte(m)))
	}
	must[[]byte](t)(q.Get(ctx))

	jq := must[*mproc.JoinableQueue[[]byte]](t)(mproc.CreateJoinableQueue[[]byte](p+"joinable", 4, mproc.WithMaxMessage(64)))
	keep(jq)
	check(t, jq.Put(ctx, []byte("x")))
	check(t, jq.Put(ctx, []byte("y")))
	must[[]byte](t)(jq.Get(ctx))

	lq := must[*mproc.LIFOQueue[[]byte]](t)(mproc.CreateLIFOQueue[[]byte](p+"lifo", 4, mproc.WithMaxMessage(64)))
	keep(lq)
	check(t, lq.Put(ctx, []byte("x")))
	check(t, lq.Put(ctx, []byte("y")))

	pq := must[*mproc.PriorityQueue[[]byte]](t)(mproc.CreatePriorityQueue[[]byte](p+"priority", 4, mproc.WithMaxMessage(64)))
	keep(pq)
	for i := range 3 {
		check(t, pq.Put(ctx, []byte("x"), int64(i)))
	}
	if _, _, err := pq.Get(ctx); err != nil {
		t.Fatal(err)
	}

	l := must[*mproc.Lock](t)(mproc.CreateLock(p + "lock"))
	keep(l)
	l.Lock()
	rl := must[*mproc.RLock](t)(mproc.CreateRLock(p + "rlock"))
	keep(rl)
	rl.Lock()
	rl.Lock()
	rw := must[*mproc.RWMutex](t)(mproc.CreateRWMutex(p + "rwmutex"))
	keep(rw)
	rw.RLock()
	sem := must[*mproc.Semaphore](t)(mproc.CreateSemaphore(p+"semaphore", 5))
	keep(sem)
	check(t, sem.Acquire(ctx))
	check(t, sem.Acquire(ctx))
	bsem := must[*mproc.BoundedSemaphore](t)(mproc.CreateBoundedSemaphore(p+"bounded", 3))
	keep(bsem)
	check(t, bsem.Acquire(ctx))
	ev := must[*mproc.Event](t)(mproc.CreateEvent(p + "event"))
	keep(ev)
	ev.Set()
	cl := must[*mproc.Lock](t)(mproc.CreateLock(p + "cond-lock"))
	keep(cl)
	c := must[*mproc.Cond](t)(mproc.CreateCond(p+"cond", cl))
	keep(c)
	c.Signal()
	c.Broadcast()
	b := must[*mproc.Barrier](t)(mproc.CreateBarrier(p+"barrier", 3))
	keep(b)
	v := must[*mproc.Value[int64]](t)(mproc.CreateValue[int64](p+"value", 42))
	keep(v)
	a := must[*mproc.Array[int32]](t)(mproc.CreateArray[int32](p+"array", 4))
	keep(a)
	a.Store(1, 7)
	mem := must[*mproc.SharedMemory](t)(mproc.CreateSharedMemory(p+"mem", 100))
	keep(mem)

	all := map[string]any{}
	for _, name := range []string{"queue", "joinable", "lifo", "priority", "lock", "rlock", "rwmutex", "semaphore",
		"bounded", "event", "cond", "barrier", "value", "array", "mem"} {
		all[name] = statJSON(t, p+name)
	}
	n := &normalizer{pids: map[int]string{os.Getpid(): "SELF"}, strs: []string{p, "PREFIX-"}}
	golden(t, "stat.json", n.normalize(t, all))
}

// TestStatLive checks what stat says of objects in use: waiting producers
// and consumers, puts and gets, a lock's waiters.
func TestStatLive(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	p := prefix(t)
	q := must[*mproc.Queue[[]byte]](t)(mproc.CreateQueue[[]byte](p+"q", 2, mproc.WithMaxMessage(16)))
	defer q.Close()
	queue := func() map[string]any { return statJSON(t, p+"q")["queue"].(map[string]any) }

	got := make(chan error, 1)
	go func() { _, err := q.Get(ctx); got <- err }()
	eventually(t, "one waiting consumer", func() bool { return queue()["waiting_consumers"] == 1.0 })
	check(t, q.Put(ctx, []byte("m")))
	check(t, <-got)
	for range 2 {
		check(t, q.Put(ctx, []byte("m")))
	}
	put := make(chan error, 1)
	go func() { put <- q.Put(ctx, []byte("m")) }()
	eventually(t, "one waiting producer", func() bool { return queue()["waiting_producers"] == 1.0 })
	must[[]byte](t)(q.Get(ctx))
	check(t, <-put)
	st := queue()
	if st["puts"] != 4.0 || st["gets"] != 2.0 || st["length"] != 2.0 || st["waiting_producers"] != 0.0 || st["waiting_consumers"] != 0.0 {
		t.Errorf("stat after 4 puts and 2 gets: %v", st)
	}
	check(t, q.Shutdown())
	if !queue()["shut_down"].(bool) {
		t.Error("stat: not shut down after Shutdown")
	}

	// A goroutine of the holding process waits like another process.
	l := must[*mproc.Lock](t)(mproc.CreateLock(p + "l"))
	defer l.Close()
	l.Lock()
	locked := make(chan error, 1)
	go func() { locked <- l.LockContext(ctx) }()
	eventually(t, "one lock waiter", func() bool { return statJSON(t, p+"l")["lock"].(map[string]any)["waiters"] == 1.0 })
	out := mustCLI(t, "stat", p+"l")
	for _, re := range []string{
		fmt.Sprintf(`^%sl: lock, 320 bytes \(/dev/shm/mproc.%[1]sl, mode 0600, uid \d+\)\n`, p),
		fmt.Sprintf(`(?m)^  created +\d{4}-\d\d-\d\d .* ago\) by pid %d \(alive\)$`, os.Getpid()),
		fmt.Sprintf(`(?m)^  lock +held by pid %d \(alive\), 1 waiter$`, os.Getpid()),
		`(?m)^  stale +no$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("stat output does not match %s:\n%s", re, out)
		}
	}
	l.Unlock()
	check(t, <-locked)
	l.Unlock()
}

// TestStatInvalid: a file under an mproc name that is not a segment is
// shown as such, and is stale once nobody has it open.
func TestStatInvalid(t *testing.T) {
	p := prefix(t)
	check(t, os.WriteFile("/dev/shm/mproc."+p+"junk", []byte("not a segment: shorter than a header"), 0o600))
	v := statJSON(t, p+"junk")
	if v["kind"] != "invalid" || v["stale"] != true || !regexp.MustCompile(`shorter than a header`).MatchString(v["note"].(string)) {
		t.Errorf("stat of a junk file: %v", v)
	}
	check(t, os.WriteFile("/dev/shm/mproc."+p+"empty", nil, 0o600))
	f := must[*os.File](t)(os.Open("/dev/shm/mproc." + p + "empty"))
	defer f.Close()
	v = statJSON(t, p+"empty")
	if v["kind"] != "initialising" || v["stale"] != false {
		t.Errorf("stat of an empty file someone has open: %v", v)
	}
	_, errOut, code := cli(t, "stat", p+"nosuch")
	if code != exitFailure {
		t.Errorf("stat of a missing object: exit status %d", code)
	}
	oneLineErr(t, "stat nosuch", errOut, fmt.Sprintf(`^mproc: stat: no mproc object "%snosuch" \(no file /dev/shm/mproc.%[1]snosuch\)\n$`, p))
}

// roles returns the roles of pid in stat's processes, and whether it is
// alive.
func roles(v map[string]any, pid int) (string, bool) {
	for _, p := range v["processes"].([]any) {
		p := p.(map[string]any)
		if p["pid"] == float64(pid) {
			var rs []string
			for _, r := range p["roles"].([]any) {
				rs = append(rs, r.(string))
			}
			return strings.Join(rs, "+"), p["alive"].(bool)
		}
	}
	return "", false
}

// TestStatInFlight: processes inside a put or a get show as putting and
// getting, and still do once SIGKILLed there.
func TestStatInFlight(t *testing.T) {
	p := prefix(t)
	q := must[*mproc.Queue[[]byte]](t)(mproc.CreateQueue[[]byte](p+"q", 4, mproc.WithMaxMessage(16)))
	defer q.Close()
	check(t, q.Put(t.Context(), []byte("m")))
	getter := startHolder(t, "stuck-get", p+"q")
	putter := startHolder(t, "stuck-put", p+"q")
	v := statJSON(t, p+"q")
	if r, alive := roles(v, getter.Pid()); r != "attached+getting+open" || !alive {
		t.Errorf("getter: roles %s, alive %v", r, alive)
	}
	if r, alive := roles(v, putter.Pid()); r != "attached+putting+open" || !alive {
		t.Errorf("putter: roles %s, alive %v", r, alive)
	}
	if st := v["queue"].(map[string]any); st["puts"] != 2.0 || st["gets"] != 1.0 || st["length"] != 1.0 {
		t.Errorf("queue: %v", st)
	}
	kill(t, getter)
	kill(t, putter)
	v = statJSON(t, p+"q")
	if r, alive := roles(v, getter.Pid()); r != "attached+getting" || alive {
		t.Errorf("SIGKILLed getter: roles %s, alive %v", r, alive)
	}
	if r, alive := roles(v, putter.Pid()); r != "attached+putting" || alive {
		t.Errorf("SIGKILLed putter: roles %s, alive %v", r, alive)
	}
	if v["stale"] != false { // its creator, this process, is alive
		t.Errorf("stale: %v", v["stale"])
	}
}
