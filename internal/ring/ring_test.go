package ring

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"unsafe"

	"mproc/internal/futex"

	"mproc/internal/psync"
)

// The tests run the ring over heap memory under the race detector, with
// goroutines posing as processes: each view has its own token, and dead
// marks a token's process as dead for psync.Alive.
var dead sync.Map

func TestMain(m *testing.M) {
	futex.Slice = 5 * time.Millisecond
	psync.Alive = func(tok uint64) bool { _, d := dead.Load(tok); return !d }
	os.Exit(m.Run())
}

var nextTok atomic.Uint64

// within returns a context that ends after d, or with the test.
func within(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func tok() uint64 { return nextTok.Add(1) << 8 }

// heap returns zeroed, cache-line-aligned memory for a ring.
func heap(t testing.TB, capacity, maxMsg int) []byte {
	n := Size(capacity, maxMsg)
	return alignTo(make([]uint64, (n+2*line)/8), n)
}

// alignTo returns n bytes of words starting at a cache line.
func alignTo(words []uint64, n int) []byte {
	b := unsafe.Slice((*byte)(unsafe.Pointer(&words[0])), len(words)*8)
	off := int(line - uintptr(unsafe.Pointer(&b[0]))%line)
	return b[off : off+n]
}

func attach(t testing.TB, mem []byte, capacity, maxMsg int) (*Ring, uint64) {
	t.Helper()
	me := tok()
	r, err := Attach(mem, capacity, maxMsg, me)
	if err != nil {
		t.Fatal(err)
	}
	return r, me
}

func get(r *Ring) ([]byte, error) {
	var out []byte
	b := r.TryGet(func(m []byte) { out = append([]byte{}, m...) })
	return out, b.Err
}

func TestFIFOFullEmptyClose(t *testing.T) {
	mem := heap(t, 4, 16)
	r, _ := attach(t, mem, 4, 16)
	if _, err := get(r); err != ErrEmpty {
		t.Fatal(err)
	}
	for i := range 4 {
		if b := r.TryPut([]byte{byte(i)}); b.Err != nil {
			t.Fatal(b.Err)
		}
	}
	if b := r.TryPut([]byte{9}); b.Err != ErrFull {
		t.Fatalf("put into a full ring: %v", b.Err)
	}
	if b := r.TryPut(make([]byte, 17)); b.Err == nil {
		t.Fatal("oversized message accepted")
	}
	if r.Len() != 4 || r.Cap() != 4 {
		t.Fatal(r.Len(), r.Cap())
	}
	for lap := range 3 { // wrap around
		for i := range 4 {
			m, err := get(r)
			if err != nil || m[0] != byte(i+4*lap) {
				t.Fatalf("lap %d: got %v %v", lap, m, err)
			}
			r.TryPut([]byte{byte(i + 4*(lap+1))})
		}
	}
	r.Close()
	if b := r.TryPut([]byte{1}); b.Err != ErrClosed {
		t.Fatal("put after close")
	}
	for range 4 {
		if _, err := get(r); err != nil {
			t.Fatalf("drain after close: %v", err)
		}
	}
	if _, err := get(r); err != ErrClosed {
		t.Fatalf("get of a drained closed ring: %v", err)
	}
	if err := r.Get(context.Background(), func([]byte) {}); err != ErrClosed {
		t.Fatal(err)
	}
}

func TestBlockingAndCancel(t *testing.T) {
	mem := heap(t, 2, 8)
	r, _ := attach(t, mem, 2, 8)
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan error, 1)
	go func() { got <- r.Get(ctx, func([]byte) {}) }()
	time.Sleep(20 * time.Millisecond)
	t0 := time.Now()
	cancel()
	// A bound for a busy machine (34 ms seen under load); a cancellation
	// that did not wake the waiter would leave it asleep for its slice.
	if err := <-got; err != context.Canceled || time.Since(t0) > time.Second {
		t.Fatalf("cancelled get: %v after %v", err, time.Since(t0))
	}
	r.TryPut([]byte{1})
	r.TryPut([]byte{2})
	if err := r.Put(within(t, 10*time.Millisecond), 1, func(b []byte) {}); err != context.DeadlineExceeded {
		t.Fatalf("put into a full ring past its deadline: %v", err)
	}
	// A blocked put goes on once a get frees a slot, and a blocked get once
	// a put arrives.
	done := make(chan error, 1)
	go func() { done <- r.Put(context.Background(), 1, func(b []byte) { b[0] = 3 }) }()
	time.Sleep(10 * time.Millisecond)
	get(r)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestNoWakePut checks that a put with NoWake leaves a sleeping getter
// asleep (its futex word unchanged), and that the message is still got,
// in order, once a plain put wakes the getter.
func TestNoWakePut(t *testing.T) {
	mem := heap(t, 4, 8)
	r, _ := attach(t, mem, 4, 8)
	got := make(chan []byte, 2)
	go func() {
		for range 2 {
			m, err := r.GetAppend(context.Background(), nil)
			if err != nil {
				t.Error(err)
			}
			got <- m
		}
	}()
	for r.c.getWaiters.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	seq := r.c.notEmpty.Load()
	if err := r.PutBytes(NoWake(context.Background()), []byte{1}); err != nil {
		t.Fatal(err)
	}
	if r.c.notEmpty.Load() != seq {
		t.Fatal("a NoWake put woke the getter")
	}
	if err := r.PutBytes(context.Background(), []byte{2}); err != nil {
		t.Fatal(err)
	}
	for want := byte(1); want <= 2; want++ {
		select {
		case m := <-got:
			if len(m) != 1 || m[0] != want {
				t.Fatalf("got %v, want [%d]", m, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("message %d not got", want)
		}
	}
}

// message is producer p's n-th message: p, n, padding, a checksum.
func message(p, n, size int) []byte {
	m := make([]byte, size)
	binary.LittleEndian.PutUint32(m[0:], uint32(p))
	binary.LittleEndian.PutUint32(m[4:], uint32(n))
	for i := 8; i < size-4; i++ {
		m[i] = byte(p*31 + n + i)
	}
	binary.LittleEndian.PutUint32(m[size-4:], crc32.ChecksumIEEE(m[:size-4]))
	return m
}

func verify(m []byte) (p, n int, ok bool) {
	if len(m) < 12 || binary.LittleEndian.Uint32(m[len(m)-4:]) != crc32.ChecksumIEEE(m[:len(m)-4]) {
		return 0, 0, false
	}
	return int(binary.LittleEndian.Uint32(m[0:])), int(binary.LittleEndian.Uint32(m[4:])), true
}

// With one or two slots, a slot goes round between a try's loads of tail
// (or head) and of the slot's state often enough to catch a claim that
// acts on a stale position (a claim protocol that kept the claim off the
// state word had exactly that bug, and only these sizes found it).
func TestManyProducersManyConsumers(t *testing.T) {
	for _, capacity := range []int{64, 2, 1} {
		t.Run(fmt.Sprint(capacity), func(t *testing.T) { manyToMany(t, capacity) })
	}
}

func manyToMany(t *testing.T, capacity int) {
	const producers, consumers, each = 4, 4, 5000
	mem := heap(t, capacity, 64)
	ctx := within(t, time.Minute) // a lost message or a lost wake-up fails, not hangs
	var wg sync.WaitGroup
	for p := range producers {
		r, _ := attach(t, mem, capacity, 64)
		wg.Go(func() {
			for n := range each {
				m := message(p, n, 12+n%50)
				if err := r.Put(ctx, len(m), func(b []byte) { copy(b, m) }); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	seen := make([][]int, consumers)
	var cwg sync.WaitGroup
	for c := range consumers {
		r, _ := attach(t, mem, capacity, 64)
		cwg.Go(func() {
			last := map[int]int{}
			for {
				var m []byte
				err := r.Get(ctx, func(b []byte) { m = append(m[:0], b...) })
				if err == ErrClosed {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				p, n, ok := verify(m)
				if !ok {
					t.Errorf("torn message %x", m)
					return
				}
				if l, ok := last[p]; ok && n <= l {
					t.Errorf("consumer %d: producer %d's %d after %d", c, p, n, l)
				}
				last[p] = n
				seen[c] = append(seen[c], p*each+n)
			}
		})
	}
	wg.Wait()
	r, _ := attach(t, mem, capacity, 64)
	r.Close()
	cwg.Wait()
	got := make([]bool, producers*each)
	for _, s := range seen {
		for _, k := range s {
			if got[k] {
				t.Fatalf("message %d delivered twice", k)
			}
			got[k] = true
		}
	}
	for k, ok := range got {
		if !ok {
			t.Fatalf("message %d lost", k)
		}
	}
}

func TestDeadProducerIsSkipped(t *testing.T) {
	mem := heap(t, 4, 8)
	r, _ := attach(t, mem, 4, 8)
	d, dtok := attach(t, mem, 4, 8)
	r.TryPut([]byte{1})
	claimed := make(chan struct{})
	go d.TryPutFunc(1, func([]byte) { close(claimed); select {} }) // dies mid-write
	<-claimed
	r.TryPut([]byte{3})
	m, _ := get(r)
	if m[0] != 1 {
		t.Fatal(m)
	}
	// The next get waits at the dead producer's slot; its death lets it on.
	got := make(chan []byte, 1)
	go func() {
		var out []byte
		r.Get(context.Background(), func(b []byte) { out = append(out, b...) })
		got <- out
	}()
	time.Sleep(3 * futex.Slice)
	select {
	case m := <-got:
		t.Fatalf("got %v past a live producer's claim", m)
	default:
	}
	dead.Store(dtok, true)
	if m := <-got; len(m) != 1 || m[0] != 3 {
		t.Fatalf("after the producer died: %v", m)
	}
	if s, _, _ := r.Stats(); s != 1 {
		t.Fatalf("skipped %d", s)
	}
	// The dead process's record goes to a newcomer only after repair.
	for range NRecords - 2 {
		attach(t, mem, 4, 8)
	}
	if _, err := Attach(mem, 4, 8, tok()); err != nil {
		t.Fatalf("record of a dead process not reused: %v", err)
	}
	if _, err := Attach(mem, 4, 8, tok()); !errors.Is(err, ErrRecords) {
		t.Fatalf("more processes than records: %v", err)
	}
}

func TestDeadConsumerAbandons(t *testing.T) {
	mem := heap(t, 2, 8)
	r, _ := attach(t, mem, 2, 8)
	d, dtok := attach(t, mem, 2, 8)
	r.TryPut([]byte{1})
	r.TryPut([]byte{2})
	claimed := make(chan struct{})
	go d.TryGet(func([]byte) { close(claimed); select {} }) // dies mid-read of 1
	<-claimed
	if m, _ := get(r); m[0] != 2 {
		t.Fatal(m)
	}
	// The slot the dead consumer holds is the next to write: full.
	if b := r.TryPut([]byte{3}); b.Err != ErrFull {
		t.Fatalf("put into the held slot: %v", b.Err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Put(context.Background(), 1, func(b []byte) { b[0] = 3 }) }()
	time.Sleep(3 * futex.Slice)
	select {
	case err := <-done:
		t.Fatalf("put past a live consumer's claim: %v", err)
	default:
	}
	dead.Store(dtok, true)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if b := r.TryPut([]byte{4}); b.Err != nil {
		t.Fatal(b.Err)
	}
	if _, a, _ := r.Stats(); a != 1 {
		t.Fatalf("abandoned %d", a)
	}
	for _, want := range []byte{3, 4} {
		if m, err := get(r); err != nil || m[0] != want {
			t.Fatalf("got %v %v, want %d", m, err, want)
		}
	}
}

// A caller that only ever tries is not stopped for good by a dead
// process's claim: TryPut repairs a dead consumer's slot, TryGet a dead
// producer's (the torture test found a TryPut loop that found the ring
// full for ever).
func TestTriesRepairDeadClaims(t *testing.T) {
	mem := heap(t, 2, 8)
	r, _ := attach(t, mem, 2, 8)
	c, ctok := attach(t, mem, 2, 8)
	r.TryPut([]byte{1})
	r.TryPut([]byte{2})
	claimed := make(chan struct{})
	go c.TryGet(func([]byte) { close(claimed); select {} }) // dies mid-read of 1
	<-claimed
	if m, _ := get(r); m[0] != 2 {
		t.Fatal(m)
	}
	if b := r.TryPut([]byte{3}); b.Err != ErrFull {
		t.Fatalf("put into a live consumer's slot: %v", b.Err)
	}
	dead.Store(ctok, true)
	if b := r.TryPut([]byte{3}); b.Err != nil {
		t.Fatalf("put into a dead consumer's slot: %v", b.Err)
	}
	p, ptok := attach(t, mem, 2, 8)
	claimed = make(chan struct{})
	go p.TryPutFunc(1, func([]byte) { close(claimed); select {} }) // dies mid-write
	<-claimed
	if m, _ := get(r); m[0] != 3 {
		t.Fatal(m)
	}
	if b := r.TryGet(func([]byte) {}); b.Err != ErrEmpty {
		t.Fatalf("get past a live producer's claim: %v", b.Err)
	}
	dead.Store(ptok, true)
	r.TryPut([]byte{4})
	if m, err := r.TryGetAppend(nil); err.Err != nil || len(m) != 1 || m[0] != 4 {
		t.Fatalf("get past a dead producer's claim: %v %v", m, err.Err)
	}
}

func TestPanickingFillAndRead(t *testing.T) {
	mem := heap(t, 2, 8)
	r, _ := attach(t, mem, 2, 8)
	func() {
		defer func() { recover() }()
		r.TryPutFunc(3, func([]byte) { panic("fill") })
	}()
	r.TryPut([]byte{7})
	if m, err := get(r); err != nil || m[0] != 7 {
		t.Fatalf("after a panicking fill: %v %v", m, err)
	}
	r.TryPut([]byte{8})
	func() {
		defer func() { recover() }()
		r.TryGet(func([]byte) { panic("read") })
	}()
	r.TryPut([]byte{9})
	r.TryPut([]byte{10})
	for _, want := range []byte{9, 10} {
		if m, err := get(r); err != nil || m[0] != want {
			t.Fatalf("after a panicking read: %v %v, want %d", m, err, want)
		}
	}
}

// stealWake poses as a waiter that is woken and dies before it acts: it
// announces itself in waiters, sleeps on word until one wake-up reaches
// it, and never takes its announcement back. It returns once it sleeps
// (as far as a test can tell).
func stealWake(t *testing.T, word, waiters *atomic.Uint32) <-chan struct{} {
	t.Helper()
	woken := make(chan struct{})
	go func() {
		seq := word.Load()
		waiters.Add(1)
		futex.Wait(context.Background(), futex.Addr(word), seq, time.Now().Add(10*time.Second))
		close(woken)
	}()
	time.Sleep(20 * time.Millisecond) // first in the kernel's queue of sleepers
	return woken
}

// A wake-up taken by a getter that dies before it gets leaves the message
// to the other sleeping getters (issue 11: the message stayed while they
// slept).
func TestWakeupOfDeadGetterPassesOn(t *testing.T) {
	mem := heap(t, 4, 8)
	r, _ := attach(t, mem, 4, 8)
	thief := stealWake(t, &r.c.notEmpty, &r.c.getWaiters)
	got := make(chan error, 1)
	go func() { got <- r.Get(within(t, 5*time.Second), func([]byte) {}) }()
	time.Sleep(20 * time.Millisecond) // asleep behind the thief
	if b := r.TryPut([]byte{1}); b.Err != nil {
		t.Fatal(b.Err)
	}
	<-thief
	t0 := time.Now()
	if err := <-got; err != nil {
		t.Fatalf("the live getter: %v after %v", err, time.Since(t0))
	}
	if d := time.Since(t0); d > 10*futex.Slice+time.Second {
		t.Errorf("the live getter took the message %v after the thief was woken", d)
	}
}
