package pool_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"mproc"
	"mproc/pool"
)

func TestOnDone(t *testing.T) {
	p := newPool(t, pool.Options{Workers: 1})
	ctx := ctxT(t)
	f := nap.Submit(p, 50*time.Millisecond)
	got := make(chan int, 2)
	f.OnDone(func(r int, err error) { // before completion: from the pool
		if err != nil {
			t.Error(err)
		}
		got <- r
	})
	f.OnDone(func(r int, err error) { got <- r })
	r, err := f.Result(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		select {
		case v := <-got:
			if v != r {
				t.Fatalf("callback got %d, Result %d", v, r)
			}
		case <-ctx.Done():
			t.Fatal("callback never ran")
		}
	}
	var after atomic.Int64
	f.OnDone(func(r int, err error) { after.Store(int64(r)) }) // after: at once
	if after.Load() != int64(r) {
		t.Fatalf("callback added after completion: %d, want %d at once", after.Load(), r)
	}
}

func TestUnencodable(t *testing.T) {
	p := newPool(t, pool.Options{Workers: 1, MaxMessage: 4096})
	ctx := ctxT(t)
	if _, err := echoChan.Submit(p, withChan{C: make(chan int)}).Result(ctx); err == nil || !strings.Contains(err.Error(), "encode argument") {
		t.Fatalf("argument with a chan: %v", err)
	}
	var re *mproc.RemoteError
	if _, err := badResult.Submit(p, 1).Result(ctx); !errors.As(err, &re) || !strings.Contains(err.Error(), "encode result") {
		t.Fatalf("result with a chan: %v", err)
	}
	if _, err := big.Submit(p, 8192).Result(ctx); !errors.Is(err, mproc.ErrTooLarge) {
		t.Fatalf("result over MaxMessage: %v", err)
	}
	if _, err := greet.Submit(p, strings.Repeat("y", 8192)).Result(ctx); !errors.Is(err, mproc.ErrTooLarge) {
		t.Fatalf("argument over MaxMessage: %v", err)
	}
	if r, err := double.Submit(p, 4).Result(ctx); err != nil || r != 8 {
		t.Fatalf("next task: %d, %v", r, err)
	}
}

func TestMap(t *testing.T) {
	p := newPool(t, pool.Options{Workers: 2, MaxMessage: 64 << 10})
	ctx := ctxT(t)
	xs := make([]int, 1000)
	for i := range xs {
		xs[i] = i
	}
	for _, opts := range [][]pool.MapOption{nil, {pool.ChunkSize(1)}, {pool.ChunkSize(7)}, {pool.ChunkSize(5000)}} {
		rs, err := double.Map(ctx, p, xs, opts...)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range rs {
			if r != 2*i {
				t.Fatalf("chunk option %v: rs[%d] = %d", opts, i, r)
			}
		}
	}
	if rs, err := double.Map(ctx, p, nil); err != nil || len(rs) != 0 {
		t.Fatalf("empty map: %v, %v", rs, err)
	}
	// A failing element: its error, with its index.
	_, err := fail.Map(ctx, p, []string{"a", "b"})
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "element 0") {
		t.Fatalf("failing map: %v", err)
	}
	// A panicking element fails alone in its chunk.
	got := map[string]error{}
	for r, err := range boom.MapUnordered(ctx, p, []string{"x"}) {
		got["x"] = err
		_ = r
	}
	var pe *mproc.PanicError
	if !errors.As(got["x"], &pe) {
		t.Fatalf("panic in a chunk: %v", got["x"])
	}
	// A chunk too large for one message is split.
	words := []string{strings.Repeat("a", 40000), strings.Repeat("b", 40000), "c"}
	rs, err := greet.Map(ctx, p, words, pool.ChunkSize(3))
	if err != nil || len(rs) != 3 || !strings.HasSuffix(rs[1], "bbb") {
		t.Fatalf("split chunk: %d results, %v", len(rs), err)
	}
}

// Map returns at the first failure in order as soon as the elements
// before it are done — not after the slow elements behind it — and
// cancels those. (Its Gather sleeps on a future.Group that wakes it when
// every chunk is done or one has failed.)
func TestMapFailsEarly(t *testing.T) {
	p := newPool(t, pool.Options{Workers: 2})
	ctx := ctxT(t)
	for _, xs := range [][]time.Duration{
		{-1, time.Minute, time.Minute, time.Minute},
		{time.Millisecond, 2 * time.Millisecond, -1, time.Minute, time.Minute},
	} {
		t0 := time.Now()
		_, err := napOrFail.Map(ctx, p, xs, pool.ChunkSize(1))
		bad := slices.Index(xs, -1)
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("element %d: ", bad)) || !strings.Contains(err.Error(), "negative nap") {
			t.Fatalf("map over %v: %v, want the failure of element %d", xs, err, bad)
		}
		if d := time.Since(t0); d > 20*time.Second {
			t.Fatalf("map over %v returned its failure after %v", xs, d)
		}
	}
	// The naps were cancelled: the pool is free for more work at once.
	if rs, err := double.Map(ctx, p, []int{1, 2, 3}); err != nil || !slices.Equal(rs, []int{2, 4, 6}) {
		t.Fatalf("map after the failures: %v, %v", rs, err)
	}
}

func TestMapUnordered(t *testing.T) {
	p := newPool(t, pool.Options{Workers: 2})
	ctx := ctxT(t)
	xs := []time.Duration{60 * time.Millisecond, 0, 0, 0}
	var order []int
	for r, err := range stubborn.MapUnordered(ctx, p, xs, pool.ChunkSize(1)) {
		if err != nil {
			t.Fatal(err)
		}
		order = append(order, r)
	}
	if len(order) != len(xs) {
		t.Fatalf("%d results", len(order))
	}
	var sum int
	for r, err := range double.MapUnordered(ctx, p, []int{1, 2, 3, 4, 5}) {
		if err != nil {
			t.Fatal(err)
		}
		sum += r
	}
	if sum != 30 {
		t.Fatalf("sum %d", sum)
	}
	// Breaking out cancels the rest.
	for range nap.MapUnordered(ctx, p, []time.Duration{0, time.Minute, time.Minute}, pool.ChunkSize(1)) {
		break
	}
	if r, err := double.Submit(p, 1).Result(ctx); err != nil || r != 2 {
		t.Fatalf("after break: %d %v", r, err)
	}
}

func TestAsCompleted(t *testing.T) {
	p := newPool(t, pool.Options{Workers: 2})
	ctx := ctxT(t)
	slow := nap.Submit(p, 300*time.Millisecond)
	fast := nap.Submit(p, time.Millisecond)
	var got []*pool.Future[int]
	for f, err := range pool.AsCompleted(ctx, slow, fast) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, f)
	}
	if !slices.Equal(got, []*pool.Future[int]{fast, slow}) {
		t.Fatalf("completion order wrong")
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	var last error
	for _, err := range pool.AsCompleted(short, nap.Submit(p, time.Minute)) {
		last = err
	}
	if !errors.Is(last, context.DeadlineExceeded) {
		t.Fatalf("AsCompleted past its context: %v", last)
	}
}

func TestInitializer(t *testing.T) {
	p := newPool(t, pool.Options{Workers: 2, Initializer: setup.With("hello")})
	ctx := ctxT(t)
	if r, err := greet.Submit(p, "pool").Result(ctx); err != nil || r != "hello, pool" {
		t.Fatalf("greet: %q, %v", r, err)
	}
	b, err := pool.New(ctx, pool.Options{Workers: 1, Initializer: setup.With("fail")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := greet.Submit(b, "x").Result(ctx); !errors.Is(err, pool.ErrBroken) || !strings.Contains(err.Error(), "setup refused") {
		t.Fatalf("task in a broken pool: %v", err)
	}
	if err := b.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := greet.Submit(b, "x").Result(ctx); !errors.Is(err, pool.ErrBroken) {
		t.Fatalf("Submit to a broken pool: %v", err)
	}
}
