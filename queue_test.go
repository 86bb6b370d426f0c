package mproc_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"mproc"
)

type job struct {
	ID   int
	Name string
	Tags []string
}

type point struct{ X, Y int32 }

func TestQueueSemantics(t *testing.T) {
	q := must[*mproc.Queue[[]byte]](t)(mproc.NewQueue[[]byte](3, mproc.WithMaxMessage(8)))
	defer q.Close()
	ctx := context.Background()
	if _, err := q.TryGet(); !errors.Is(err, mproc.ErrEmpty) {
		t.Fatalf("TryGet of empty: %v", err)
	}
	for _, s := range []string{"a", "", "abcdefgh"} {
		if err := q.TryPut([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.TryPut([]byte("x")); !errors.Is(err, mproc.ErrFull) {
		t.Fatalf("TryPut of full: %v", err)
	}
	if err := q.Put(ctxTimeout(t, 10*time.Millisecond), []byte("x")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Put to a full queue past its deadline: %v", err)
	}
	err := q.TryPut([]byte("123456789"))
	if !errors.Is(err, mproc.ErrTooLarge) || !strings.Contains(err.Error(), "9 bytes") || !strings.Contains(err.Error(), "8") {
		t.Fatalf("oversized: %v", err)
	}
	if q.Len() != 3 || q.Cap() != 3 {
		t.Fatalf("len %d cap %d", q.Len(), q.Cap())
	}
	for _, want := range []string{"a", "", "abcdefgh"} {
		got, err := q.Get(ctx)
		if err != nil || string(got) != want || got == nil {
			t.Fatalf("got %q %v, want %q", got, err, want)
		}
	}
	q.Put(ctx, []byte("last"))
	q.Shutdown()
	if err := q.Put(ctx, []byte("y")); !errors.Is(err, mproc.ErrShutdown) {
		t.Fatalf("put after close: %v", err)
	}
	var all []string
	for v, err := range q.All(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, string(v))
	}
	if len(all) != 1 || all[0] != "last" {
		t.Fatalf("All after close: %q", all)
	}
	if _, err := q.Get(ctx); !errors.Is(err, mproc.ErrShutdown) {
		t.Fatalf("get of closed and drained: %v", err)
	}

	// The zero-copy path.
	zq := must[*mproc.Queue[[]byte]](t)(mproc.NewQueue[[]byte](2, mproc.WithMaxMessage(8)))
	defer zq.Close()
	if err := zq.PutFunc(ctx, 5, func(b []byte) { copy(b, "hello") }); err != nil {
		t.Fatal(err)
	}
	if err := zq.PutFunc(ctx, 9, func([]byte) {}); !errors.Is(err, mproc.ErrTooLarge) {
		t.Fatalf("PutFunc too large: %v", err)
	}
	var got string
	if err := zq.GetFunc(ctx, func(b []byte) { got = string(b) }); err != nil || got != "hello" {
		t.Fatalf("GetFunc: %q %v", got, err)
	}

	// Other value types: memory, string, codec.
	pq := must[*mproc.Queue[point]](t)(mproc.NewQueue[point](2))
	defer pq.Close()
	pq.Put(ctx, point{1, -2})
	if p, err := pq.Get(ctx); err != nil || p != (point{1, -2}) || pq.MaxMessage() != 8 {
		t.Fatalf("point: %v %v", p, err)
	}
	sq := must[*mproc.Queue[string]](t)(mproc.NewQueue[string](2))
	defer sq.Close()
	sq.Put(ctx, "héllo")
	if s, _ := sq.Get(ctx); s != "héllo" {
		t.Fatal(s)
	}
	jq := must[*mproc.Queue[job]](t)(mproc.NewQueue[job](2))
	defer jq.Close()
	jq.Put(ctx, job{ID: 7, Name: "seven", Tags: []string{"a", "b"}})
	if j, err := jq.Get(ctx); err != nil || j.ID != 7 || j.Name != "seven" || len(j.Tags) != 2 {
		t.Fatalf("job: %+v %v", j, err)
	}
	if _, err := mproc.NewQueue[int](0); err == nil {
		t.Fatal("queue of capacity 0")
	}
}

func TestQueueByNameAndBadSegments(t *testing.T) {
	name := fmt.Sprintf("test-queue-%d", os.Getpid())
	q := must[*mproc.Queue[int64]](t)(mproc.CreateQueue[int64](name, 4))
	defer q.Close()
	defer q.Remove()
	o := must[*mproc.Queue[int64]](t)(mproc.OpenQueue[int64](name))
	defer o.Close()
	q.Put(context.Background(), 42)
	if v, err := o.Get(context.Background()); err != nil || v != 42 {
		t.Fatalf("through the opened handle: %v %v", v, err)
	}
	if _, err := mproc.OpenJoinableQueue[int64](name); !errors.Is(err, mproc.ErrKind) {
		t.Fatalf("queue opened as joinable: %v", err)
	}
	if _, err := mproc.OpenQueue[[16]byte](name); !errors.Is(err, mproc.ErrKind) {
		t.Fatalf("8-byte queue opened for 16-byte values: %v", err)
	}
	if _, err := mproc.OpenLock(name); !errors.Is(err, mproc.ErrKind) {
		t.Fatalf("queue opened as a lock: %v", err)
	}
	// A corrupted header.
	path := filepath.Join("/dev/shm", "mproc."+name)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	bad := name + "-bad"
	b[50] ^= 0xff // a parameter, under the checksum
	if err := os.WriteFile(filepath.Join("/dev/shm", "mproc."+bad), b, 0o600); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(filepath.Join("/dev/shm", "mproc."+bad))
	if _, err := mproc.OpenQueue[int64](bad); !errors.Is(err, mproc.ErrCorrupt) {
		t.Fatalf("corrupt queue: %v", err)
	}
	trunc := name + "-trunc"
	if err := os.WriteFile(filepath.Join("/dev/shm", "mproc."+trunc), b[:300], 0o600); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(filepath.Join("/dev/shm", "mproc."+trunc))
	if _, err := mproc.OpenQueue[int64](trunc); !errors.Is(err, mproc.ErrCorrupt) {
		t.Fatalf("truncated queue: %v", err)
	}
}

// The many-message test: producers put checksummed messages numbered per
// producer; consumers check each, check per-producer order, and mark it in
// a shared bitmap, which catches a duplicate at once.
type flowArg struct {
	Q        *mproc.Queue[[]byte]
	Seen     *mproc.Array[uint32] // one bit per message
	Put      *mproc.Array[uint32] // producers: one bit per acknowledged put
	Producer int
	N        int
	Span     int // message numbers per producer in the bitmaps
}

func flowMessage(p, n int) []byte {
	size := 16 + (p*7+n)%48
	m := make([]byte, size)
	binary.LittleEndian.PutUint32(m[0:], uint32(p))
	binary.LittleEndian.PutUint32(m[4:], uint32(n))
	for i := 8; i < size-4; i++ {
		m[i] = byte(n + i)
	}
	binary.LittleEndian.PutUint32(m[size-4:], crc32.ChecksumIEEE(m[:size-4]))
	return m
}

func markBit(a *mproc.Array[uint32], k int) bool {
	for {
		w := a.Load(k / 32)
		bit := uint32(1) << (k % 32)
		if w&bit != 0 {
			return false
		}
		if a.CompareAndSwap(k/32, w, w|bit) {
			return true
		}
	}
}

var (
	flowProducer = mproc.Register("flow-producer", func(ctx context.Context, a flowArg) error {
		for n := range a.N {
			if err := a.Q.Put(ctx, flowMessage(a.Producer, n)); err != nil {
				return err
			}
			if a.Put != nil {
				markBit(a.Put, a.Producer*a.Span+n)
			}
		}
		return nil
	})
	flowConsumer = mproc.Register("flow-consumer", func(ctx context.Context, a flowArg) error {
		last := map[int]int{}
		for m, err := range a.Q.All(ctx) {
			if err != nil {
				return err
			}
			if len(m) < 12 || binary.LittleEndian.Uint32(m[len(m)-4:]) != crc32.ChecksumIEEE(m[:len(m)-4]) {
				return fmt.Errorf("torn message %x", m)
			}
			p, n := int(binary.LittleEndian.Uint32(m)), int(binary.LittleEndian.Uint32(m[4:]))
			if l, ok := last[p]; ok && n <= l {
				return fmt.Errorf("producer %d: message %d after %d", p, n, l)
			}
			last[p] = n
			if n >= a.Span || !markBit(a.Seen, p*a.Span+n) {
				return fmt.Errorf("message %d of producer %d delivered twice", n, p)
			}
		}
		return nil
	})
)

func TestQueueMillionMessages(t *testing.T) {
	n := 500_000 // per producer: 1 M in all
	if testing.Short() {
		n = 20_000
	}
	q := must[*mproc.Queue[[]byte]](t)(mproc.NewQueue[[]byte](1024, mproc.WithMaxMessage(64)))
	defer q.Close()
	seen := must[*mproc.Array[uint32]](t)(mproc.NewArray[uint32](2*n/32 + 1))
	defer seen.Close()
	var producers []*mproc.Process
	for p := range 2 {
		producers = append(producers, start(t, flowProducer, flowArg{Q: q, Producer: p, N: n, Span: n}, mproc.ProcOptions{}))
	}
	var consumers []*mproc.Process
	for range 2 {
		consumers = append(consumers, start(t, flowConsumer, flowArg{Q: q, Seen: seen, Span: n}, mproc.ProcOptions{}))
	}
	waitAll(t, producers)
	q.Shutdown()
	waitAll(t, consumers)
	for p := range 2 {
		for k := range n {
			i := p*n + k
			if seen.Load(i/32)&(1<<(i%32)) == 0 {
				t.Fatalf("message %d of producer %d lost", k, p)
			}
		}
	}
	if s := q.Stats(); s != (mproc.QueueStats{}) {
		t.Fatalf("stats without crashes: %+v", s)
	}
}

// Producers and consumers killed with SIGKILL at random points: no hang,
// no duplicate, no torn message, and every acknowledged message either
// delivered or accounted for.
//
// MPROC_SOAK_ROUNDS=1000 go test -run SurvivesKills -timeout 0 . soaks it.
func TestQueueSurvivesKills(t *testing.T) {
	rounds := 20
	if n, err := strconv.Atoi(os.Getenv("MPROC_SOAK_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	q := must[*mproc.Queue[[]byte]](t)(mproc.NewQueue[[]byte](16, mproc.WithMaxMessage(64)))
	defer q.Close()
	// Each round's producer is a new one, numbering its messages from 0 in
	// its own span of the bitmaps; it cannot send a span's worth in a round.
	const per = 500_000
	seen := must[*mproc.Array[uint32]](t)(mproc.NewArray[uint32](rounds*per/32 + 1))
	defer seen.Close()
	acked := must[*mproc.Array[uint32]](t)(mproc.NewArray[uint32](rounds*per/32 + 1))
	defer acked.Close()
	consumerKills := 0
	var live []*mproc.Process
	for round := range rounds {
		p := start(t, flowProducer, flowArg{Q: q, Put: acked, Producer: round, N: per, Span: per}, mproc.ProcOptions{})
		c := start(t, flowConsumer, flowArg{Q: q, Seen: seen, Span: per}, mproc.ProcOptions{})
		time.Sleep(time.Duration(5+rand.IntN(40)) * time.Millisecond)
		victim := p
		if rand.IntN(2) == 0 {
			victim = c
			consumerKills++
		}
		victim.Kill()
		if err := wait(t, victim); err == nil {
			t.Fatalf("round %d: killed child reported success", round)
		}
		// A surviving consumer goes on until the close.
		if victim == c {
			p.Kill()
			wait(t, p)
		} else {
			live = append(live, c)
		}
	}
	q.Shutdown()
	for _, c := range live {
		if err := wait(t, c); err != nil {
			t.Fatalf("surviving consumer: %v", err)
		}
	}
	// Every acknowledged message was delivered, unless a consumer died with
	// it (abandoned, or got but not yet marked when killed).
	missing := 0
	for i := range acked.Len() {
		missing += popcount(acked.Load(i) &^ seen.Load(i))
	}
	st := q.Stats()
	if missing > int(st.Abandoned)+consumerKills {
		t.Fatalf("%d acknowledged messages lost; abandoned %d, consumer kills %d", missing, st.Abandoned, consumerKills)
	}
	t.Logf("%d rounds: %d consumer kills, stats %+v, %d acknowledged messages not delivered", rounds, consumerKills, st, missing)
}

func popcount(x uint32) int {
	n := 0
	for ; x != 0; x &= x - 1 {
		n++
	}
	return n
}

var (
	idleGetFn = mproc.Register("queue-idle-get", func(ctx context.Context, q *mproc.Queue[int64]) error {
		_, err := q.Get(ctx)
		return err
	})
	workerFn = mproc.Register("queue-worker", func(ctx context.Context, q *mproc.JoinableQueue[int64]) error {
		for {
			v, err := q.Get(ctx)
			if errors.Is(err, mproc.ErrShutdown) {
				return nil
			}
			if err != nil {
				return err
			}
			time.Sleep(time.Duration(v) * time.Microsecond)
			if err := q.TaskDone(); err != nil {
				return err
			}
		}
	})
)

// slowGetFn is a getter that runs ~10 ms after it is woken: one P, held
// by a goroutine that spins.
var slowGetFn = mproc.Register("queue-slow-get", func(ctx context.Context, q *mproc.Queue[int64]) error {
	runtime.GOMAXPROCS(1)
	go func() {
		for {
			spinSink++
		}
	}()
	_, err := q.Get(ctx)
	return err
})

var spinSink int

// A getter woken for a message that is killed before it takes it leaves
// the message to the getters still asleep (issue 11: it stayed in the
// queue for as long as no other Put came).
func TestQueueWakeupOfKilledGetterPassesOn(t *testing.T) {
	for round := range 3 {
		q := must[*mproc.Queue[int64]](t)(mproc.NewQueue[int64](4))
		victim := start(t, slowGetFn, q, mproc.ProcOptions{})
		time.Sleep(300 * time.Millisecond) // first asleep
		live := []*mproc.Process{start(t, idleGetFn, q, mproc.ProcOptions{}), start(t, idleGetFn, q, mproc.ProcOptions{})}
		time.Sleep(300 * time.Millisecond)
		if err := q.Put(context.Background(), 1); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
		victim.Kill()
		wait(t, victim)
		t0 := time.Now()
		for q.Len() != 0 {
			if time.Since(t0) > 3*time.Second {
				t.Fatalf("round %d: the message stayed in the queue for %v after its getter was killed", round, time.Since(t0))
			}
			time.Sleep(time.Millisecond)
		}
		t.Logf("round %d: taken %v after the kill", round, time.Since(t0))
		for _, p := range live {
			p.Kill()
			wait(t, p)
		}
		q.Close()
	}
}

// cpuTicks returns a process's user+system time in clock ticks.
func cpuTicks(t *testing.T, pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	u, _ := strconv.Atoi(f[11])
	s, _ := strconv.Atoi(f[12])
	return u + s
}

func TestQueueIdleConsumerBurnsNoCPU(t *testing.T) {
	q := must[*mproc.Queue[int64]](t)(mproc.NewQueue[int64](4))
	defer q.Close()
	p := start(t, idleGetFn, q, mproc.ProcOptions{})
	time.Sleep(200 * time.Millisecond) // started and blocked
	before := cpuTicks(t, p.Pid())
	time.Sleep(time.Second)
	if used := cpuTicks(t, p.Pid()) - before; used > 1 { // 1 tick = 10 ms = 1% of a second
		t.Errorf("an idle consumer used %d ticks of CPU in 1 s", used)
	}
	t0 := time.Now()
	q.Put(context.Background(), 1)
	if err := wait(t, p); err != nil {
		t.Fatal(err)
	}
	t.Logf("woke and ended in %v", time.Since(t0))
}

func TestJoinableQueueAcrossProcesses(t *testing.T) {
	q := must[*mproc.JoinableQueue[int64]](t)(mproc.NewJoinableQueue[int64](8))
	defer q.Close()
	ps := []*mproc.Process{start(t, workerFn, q, mproc.ProcOptions{}), start(t, workerFn, q, mproc.ProcOptions{})}
	ctx := ctxTimeout(t, 20*time.Second)
	for i := range 100 {
		if err := q.Put(ctx, int64(i%7*100)); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Join(ctx); err != nil {
		t.Fatal(err)
	}
	if q.Unfinished() != 0 || q.Len() != 0 {
		t.Fatalf("after Join: %d unfinished, %d queued", q.Unfinished(), q.Len())
	}
	if err := q.TaskDone(); !errors.Is(err, mproc.ErrTooManyTaskDone) {
		t.Fatalf("TaskDone past the puts: %v", err)
	}
	q.Shutdown()
	waitAll(t, ps)
}

func TestQueueCancel(t *testing.T) {
	q := must[*mproc.Queue[int64]](t)(mproc.NewQueue[int64](1))
	defer q.Close()
	checkCancel(t, "Get", func(ctx context.Context) error { _, err := q.Get(ctx); return err })
	checkCancel(t, "Put", func(ctx context.Context) error { q.TryPut(1); return q.Put(ctx, 2) })
}

type prioArg struct {
	P *mproc.PriorityQueue[string]
	L *mproc.LIFOQueue[[]byte]
	N int
}

var (
	prioPutFn = mproc.Register("prio-put", func(ctx context.Context, a prioArg) error {
		for i, p := range []int64{3, 1, 2, 1, 0} {
			if err := a.P.Put(ctx, fmt.Sprint(p, "-", i), p); err != nil {
				return err
			}
		}
		return nil
	})
	lifoPutFn = mproc.Register("lifo-put", func(ctx context.Context, a prioArg) error {
		for n := 0; ; n++ {
			if err := a.L.Put(ctx, flowMessage(0, n)); err != nil {
				return err
			}
		}
	})
)

func TestPriorityAndLIFOAcrossProcesses(t *testing.T) {
	pq := must[*mproc.PriorityQueue[string]](t)(mproc.NewPriorityQueue[string](8))
	defer pq.Close()
	p := start(t, prioPutFn, prioArg{P: pq}, mproc.ProcOptions{})
	if err := wait(t, p); err != nil {
		t.Fatal(err)
	}
	var got []string
	for pq.Len() > 0 {
		v, _, err := pq.Get(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	if want := "0-4 1-1 1-3 2-2 3-0"; strings.Join(got, " ") != want {
		t.Fatalf("priority order %q, want %q", got, want)
	}
	if err := pq.TryPut("x", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := mproc.NewLIFOQueue[int](0); err == nil {
		t.Fatal("LIFO of capacity 0")
	}

	// A producer killed while putting, again and again: what comes out is
	// whole, never twice, newest first among what was there.
	lq := must[*mproc.LIFOQueue[[]byte]](t)(mproc.NewLIFOQueue[[]byte](4, mproc.WithMaxMessage(64)))
	defer lq.Close()
	for range 5 {
		p := start(t, lifoPutFn, prioArg{L: lq}, mproc.ProcOptions{})
		time.Sleep(time.Duration(10+rand.IntN(20)) * time.Millisecond)
		for range 3 {
			m, err := lq.Get(ctxTimeout(t, 10*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if binary.LittleEndian.Uint32(m[len(m)-4:]) != crc32.ChecksumIEEE(m[:len(m)-4]) {
				t.Fatalf("torn message %x", m)
			}
		}
		p.Kill()
		wait(t, p)
		var last = -1
		for lq.Len() > 0 {
			m, err := lq.TryGet()
			if err != nil {
				t.Fatal(err)
			}
			n := int(binary.LittleEndian.Uint32(m[4:]))
			if last >= 0 && n >= last {
				t.Fatalf("LIFO: %d after %d", n, last)
			}
			last = n
		}
	}
}

// GetAppend appends each message to the buffer it is given, so that one
// buffer serves message after message; it ends as Get does.
func TestGetAppend(t *testing.T) {
	ctx := ctxTimeout(t, 10*time.Second)
	q, err := mproc.NewQueue[[]byte](4)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	for _, m := range []string{"first", "second message", ""} {
		if err := q.Put(ctx, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 0, 64)
	for _, want := range []string{"first", "second message", ""} {
		got, err := q.GetAppend(ctx, buf[:0])
		if err != nil || string(got) != want || cap(got) != cap(buf) || (len(got) > 0 && &got[0] != &buf[:1][0]) {
			t.Fatalf("GetAppend = %q (cap %d), %v; want %q in the buffer given", got, cap(got), err, want)
		}
	}
	if err := q.Put(ctx, []byte("!")); err != nil {
		t.Fatal(err)
	}
	if got, err := q.GetAppend(ctx, []byte("kept")); err != nil || string(got) != "kept!" {
		t.Fatalf("GetAppend onto %q = %q, %v", "kept", got, err)
	}
	q.Shutdown()
	if got, err := q.GetAppend(ctx, buf[:0]); !errors.Is(err, mproc.ErrShutdown) || len(got) != 0 {
		t.Fatalf("GetAppend after Shutdown = %q, %v; want ErrShutdown", got, err)
	}
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	q2, _ := mproc.NewQueue[string](1)
	defer q2.Close()
	if _, err := q2.GetAppend(short, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("GetAppend of an empty queue: %v", err)
	}
	q2.Close()
	if _, err := q2.GetAppend(ctx, nil); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("GetAppend after Close: %v", err)
	}
}

// bigEchoFn gets messages from in and puts them back on out, checking
// nothing: the messages of growing sizes make this process take slot
// memory of its own (ring.grow) in a queue another process created.
var bigEchoFn = mproc.Register("queue-big-echo", func(ctx context.Context, qs [2]*mproc.Queue[[]byte]) error {
	for {
		m, err := qs[0].Get(ctx)
		if errors.Is(err, mproc.ErrShutdown) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := qs[1].Put(ctx, m); err != nil {
			return err
		}
	}
})

// A queue of large slots takes a page per slot when it is created and the
// rest as messages need it (ring.EagerRanges): 16 slots of 1 MiB cost
// about 70 KiB until a message needs more. Messages of every size up to
// the maximum still cross intact, both ways between two processes.
func TestQueueLargeSlotsTakeMemoryAsNeeded(t *testing.T) {
	name := fmt.Sprintf("lazy-%d", os.Getpid())
	in := must[*mproc.Queue[[]byte]](t)(mproc.CreateQueue[[]byte](name, 16, mproc.WithMaxMessage(1<<20)))
	defer in.Close()
	defer in.Remove()
	used := func() int64 {
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join("/dev/shm", "mproc."+name), &st); err != nil {
			t.Fatal(err)
		}
		return st.Blocks * 512
	}
	if u := used(); u > 256<<10 {
		t.Fatalf("a new queue of 16 slots of 1 MiB uses %d bytes of /dev/shm, want a page or two per slot", u)
	}
	out := must[*mproc.Queue[[]byte]](t)(mproc.NewQueue[[]byte](16, mproc.WithMaxMessage(1<<20)))
	defer out.Close()
	p := start(t, bigEchoFn, [2]*mproc.Queue[[]byte]{in, out}, mproc.ProcOptions{})
	ctx := ctxTimeout(t, 30*time.Second)
	for _, n := range []int{0, 10, 4000, 4100, 40000, 300000, 1 << 20, 5000, 1<<20 - 1} {
		m := make([]byte, n)
		for i := range m {
			m[i] = byte(i*7 + n)
		}
		if err := in.Put(ctx, m); err != nil {
			t.Fatalf("put %d bytes: %v", n, err)
		}
		back, err := out.Get(ctx)
		if err != nil || !bytes.Equal(back, m) {
			t.Fatalf("%d bytes came back as %d bytes, %v", n, len(back), err)
		}
	}
	if u := used(); u < 1<<20 {
		t.Fatalf("after a 1 MiB message the queue uses %d bytes of /dev/shm", u)
	}
	in.Shutdown()
	wait(t, p)
}
