package ring

import (
	"context"
	"sync"
	"testing"
	"time"
)

func heapOf(t *testing.T, slots, maxMsg int, lifo bool) ([]byte, func() *Heap) {
	t.Helper()
	mem := heapMem(slots, maxMsg)
	if err := InitHeap(mem, slots, maxMsg); err != nil {
		t.Fatal(err)
	}
	return mem, func() *Heap {
		h, err := AttachHeap(mem, slots, maxMsg, lifo, tok())
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
}

func heapMem(slots, maxMsg int) []byte {
	n := HeapSize(slots, maxMsg)
	words := make([]uint64, (n+2*line)/8)
	return alignTo(words, n)
}

func getH(h *Heap) (string, int64, error) {
	var s string
	var p int64
	err := h.TryGet(func(b []byte, prio int64) { s, p = string(b), prio })
	return s, p, err
}

func putH(h *Heap, s string, prio int64) error {
	return h.TryPut(len(s), func(b []byte) { copy(b, s) }, prio)
}

func TestHeapOrder(t *testing.T) {
	_, view := heapOf(t, 8, 8, false)
	h := view()
	for i, p := range []int64{5, 1, 3, 1, -2, 5} {
		putH(h, string(rune('a'+i)), p)
	}
	want := "ebdcaf" // by priority, then arrival
	for i := range len(want) {
		s, _, err := getH(h)
		if err != nil || s != want[i:i+1] {
			t.Fatalf("get %d: %q %v, want %q", i, s, err, want[i:i+1])
		}
	}
	_, lview := heapOf(t, 4, 8, true)
	l := lview()
	for _, s := range []string{"1", "2", "3", "4"} {
		putH(l, s, 0)
	}
	if err := putH(l, "5", 0); err != ErrFull {
		t.Fatalf("full: %v", err)
	}
	for _, want := range []string{"4", "3", "2", "1"} {
		if s, _, _ := getH(l); s != want {
			t.Fatalf("LIFO: %q, want %q", s, want)
		}
	}
	if _, _, err := getH(l); err != ErrEmpty {
		t.Fatal(err)
	}
	putH(l, "x", 0)
	l.Close()
	if err := putH(l, "y", 0); err != ErrClosed {
		t.Fatal(err)
	}
	if s, _, _ := getH(l); s != "x" {
		t.Fatal("drain after close")
	}
	if _, _, err := getH(l); err != ErrClosed {
		t.Fatal(err)
	}
	if err := l.Get(context.Background(), func([]byte, int64) {}); err != ErrClosed {
		t.Fatal(err)
	}
}

func TestHeapConcurrent(t *testing.T) {
	_, view := heapOf(t, 16, 8, false)
	var wg sync.WaitGroup
	got := make(chan string, 4000)
	for p := range 4 {
		h := view()
		wg.Go(func() {
			for i := range 1000 {
				s := string(rune('A'+p)) + string(rune(i%64+'0'))
				if err := h.Put(context.Background(), len(s), func(b []byte) { copy(b, s) }, int64(i%3)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	var cwg sync.WaitGroup
	for range 4 {
		h := view()
		cwg.Go(func() {
			for {
				err := h.Get(context.Background(), func(b []byte, _ int64) { got <- string(b) })
				if err == ErrClosed {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	view().Close()
	cwg.Wait()
	if len(got) != 4000 {
		t.Fatalf("%d of 4000 delivered", len(got))
	}
}

func TestHeapHolderDies(t *testing.T) {
	_, view := heapOf(t, 4, 8, false)
	h := view()
	putH(h, "keep", 1)
	// A consumer dies inside Get, before freeing the slot: the message is
	// left for the next consumer.
	d := view()
	func() {
		defer func() { recover() }()
		d.TryGet(func([]byte, int64) { panic("killed") })
	}()
	dead.Store(d.me, true)
	// A producer dies inside Put, before its commit: no message.
	p := view()
	func() {
		defer func() { recover() }()
		p.TryPut(4, func([]byte) { panic("killed") }, 0)
	}()
	dead.Store(p.me, true)
	start := time.Now()
	s, _, err := getH(h)
	if err != nil || s != "keep" {
		t.Fatalf("after deaths: %q %v", s, err)
	}
	if time.Since(start) > time.Second {
		t.Fatal("recovery too slow")
	}
	if _, _, err := getH(h); err != ErrEmpty {
		t.Fatalf("the dead producer's message appeared: %v", err)
	}
	for range 4 {
		if err := putH(h, "x", 0); err != nil {
			t.Fatalf("free slots lost in the deaths: %v", err)
		}
	}
}

// As TestWakeupOfDeadGetterPassesOn, for the heap's getters and putters.
func TestHeapWakeupOfDeadWaiterPassesOn(t *testing.T) {
	_, view := heapOf(t, 1, 8, false)
	h := view()
	thief := stealWake(t, &h.c.notEmpty, &h.c.getWaiters)
	got := make(chan error, 1)
	go func() { got <- h.Get(within(t, 5*time.Second), func([]byte, int64) {}) }()
	time.Sleep(20 * time.Millisecond)
	if err := putH(h, "a", 0); err != nil {
		t.Fatal(err)
	}
	<-thief
	if err := <-got; err != nil {
		t.Fatalf("the live getter: %v", err)
	}

	putH(h, "b", 0) // full
	thief = stealWake(t, &h.c.notFull, &h.c.putWaiters)
	go func() {
		got <- h.Put(within(t, 5*time.Second), 1, func([]byte) {}, 0)
	}()
	time.Sleep(20 * time.Millisecond)
	if _, _, err := getH(h); err != nil {
		t.Fatal(err)
	}
	<-thief
	if err := <-got; err != nil {
		t.Fatalf("the live putter: %v", err)
	}
}
