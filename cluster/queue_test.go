package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"mproc/cluster"
	"mproc/internal/testenv"
)

type job struct {
	ID   int
	Name string
}

func TestQueueBasic(t *testing.T) {
	testenv.CheckFDLeaks(t)
	ctx := ctxT(t)
	c := embedded(t, cluster.Options{})
	q, err := cluster.CreateQueue[job](ctx, c, "basic", 10, cluster.QueueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	for i := range 5 {
		if err := q.Put(ctx, job{i, "j"}); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := q.Len(ctx); err != nil || n != 5 {
		t.Fatalf("Len = %d, %v; want 5", n, err)
	}
	for i := range 5 {
		v, err := q.Get(ctx)
		if err != nil || v.ID != i {
			t.Fatalf("Get = %v, %v; want %d", v, err, i)
		}
		if err := q.TaskDone(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := q.TryGet(ctx); !errors.Is(err, cluster.ErrEmpty) {
		t.Fatalf("TryGet on empty: %v", err)
	}
	if err := q.TaskDone(ctx); !errors.Is(err, cluster.ErrTooManyTaskDone) {
		t.Fatalf("TaskDone: %v", err)
	}
	if err := q.Join(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestQueueFull(t *testing.T) {
	ctx := ctxT(t)
	c := embedded(t, cluster.Options{})
	q, err := cluster.CreateQueue[string](ctx, c, "full", 2, cluster.QueueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	for _, v := range []string{"a", "b"} {
		if err := q.TryPut(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.TryPut(ctx, "c"); !errors.Is(err, cluster.ErrFull) {
		t.Fatalf("TryPut into a full queue: %v", err)
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if err := q.Put(short, "c"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Put into a full queue: %v", err)
	}
	// A message got but not done still holds its place.
	if v, err := q.Get(ctx); err != nil || v != "a" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	if err := q.TryPut(ctx, "c"); !errors.Is(err, cluster.ErrFull) {
		t.Fatalf("TryPut with one message held: %v", err)
	}
	// A Put waiting for room gets it once a message is done.
	putErr := make(chan error, 1)
	go func() { putErr <- q.Put(ctx, "c") }()
	time.Sleep(50 * time.Millisecond)
	if err := q.TaskDone(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-putErr; err != nil {
		t.Fatalf("blocked Put: %v", err)
	}
	for _, want := range []string{"b", "c"} {
		if v, err := q.Get(ctx); err != nil || v != want {
			t.Fatalf("Get = %q, %v; want %q", v, err, want)
		}
		if err := q.TaskDone(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

func TestQueueTooLarge(t *testing.T) {
	ctx := ctxT(t)
	c := embedded(t, cluster.Options{})
	q, err := cluster.CreateQueue[[]byte](ctx, c, "large", 0, cluster.QueueOptions{MaxMessage: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if err := q.Put(ctx, make([]byte, 101)); !errors.Is(err, cluster.ErrTooLarge) {
		t.Fatalf("Put over MaxMessage: %v", err)
	}
	if err := q.Put(ctx, make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	q2, err := cluster.CreateQueue[[]byte](ctx, c, "large2", 0, cluster.QueueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer q2.Close()
	if err := q2.Put(ctx, make([]byte, 2<<20)); !errors.Is(err, cluster.ErrTooLarge) {
		t.Fatalf("Put over the server's max_payload: %v", err)
	}
	if _, err := cluster.CreateQueue[[]byte](ctx, c, "large3", 0, cluster.QueueOptions{MaxMessage: 8 << 20}); !errors.Is(err, cluster.ErrTooLarge) {
		t.Fatalf("MaxMessage over max_payload: %v", err)
	}
}

func TestQueueNames(t *testing.T) {
	ctx := ctxT(t)
	c := embedded(t, cluster.Options{})
	q, err := cluster.CreateQueue[int](ctx, c, "named", 5, cluster.QueueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	again, err := cluster.CreateQueue[int](ctx, c, "named", 5, cluster.QueueOptions{})
	if err != nil {
		t.Fatalf("CreateQueue of an existing queue with the same settings: %v", err)
	}
	again.Close()
	if _, err := cluster.CreateQueue[int](ctx, c, "named", 6, cluster.QueueOptions{}); !errors.Is(err, os.ErrExist) {
		t.Fatalf("CreateQueue with another capacity: %v", err)
	}
	if _, err := cluster.CreateQueue[int](ctx, c, "named", 5, cluster.QueueOptions{MaxDeliver: 9}); !errors.Is(err, os.ErrExist) {
		t.Fatalf("CreateQueue with another MaxDeliver: %v", err)
	}
	if _, err := cluster.OpenQueue[int](ctx, c, "nosuch", cluster.QueueOptions{}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("OpenQueue of no queue: %v", err)
	}
	for _, bad := range []string{"", "a.b", "a b", "a*", "a>", "a/b", strings.Repeat("x", cluster.MaxNameLen+1)} {
		if _, err := cluster.CreateQueue[int](ctx, c, bad, 1, cluster.QueueOptions{}); !errors.Is(err, cluster.ErrInvalidName) {
			t.Errorf("CreateQueue(%q): %v", bad, err)
		}
	}
	o, err := cluster.OpenQueue[int](ctx, c, "named", cluster.QueueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if o.Cap() != 5 {
		t.Errorf("opened queue's Cap = %d", o.Cap())
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if err := o.Close(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
	if err := o.Put(ctx, 1); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Put after Close: %v", err)
	}
	if err := q.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := cluster.OpenQueue[int](ctx, c, "named", cluster.QueueOptions{}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("OpenQueue after Remove: %v", err)
	}
}

// TestQueueCloseGivesBack: a handle closed while holding a message gives
// it to the next consumer at once.
func TestQueueCloseGivesBack(t *testing.T) {
	ctx := ctxT(t)
	c := embedded(t, cluster.Options{})
	q1, err := cluster.CreateQueue[string](ctx, c, "giveback", 0, cluster.QueueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	q2, err := cluster.OpenQueue[string](ctx, c, "giveback", cluster.QueueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer q2.Close()
	q1.Put(ctx, "x")
	if v, err := q1.Get(ctx); err != nil || v != "x" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	if _, err := q2.TryGet(ctx); !errors.Is(err, cluster.ErrEmpty) {
		t.Fatalf("TryGet while held: %v", err)
	}
	q1.Close()
	d, err := q2.Receive(ctx)
	if err != nil || d.Value != "x" || d.Attempt() != 2 {
		t.Fatalf("Receive after Close: %+v, %v", d, err)
	}
	if err := d.Done(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.Done(ctx); !errors.Is(err, cluster.ErrTooManyTaskDone) {
		t.Fatalf("second Done: %v", err)
	}
}

// TestDeadLetters: a message delivered MaxDeliver times without being
// done moves to the dead-letter queue instead of coming back, and so
// does one the codec cannot decode; neither blocks Join.
func TestDeadLetters(t *testing.T) {
	ctx := ctxT(t)
	c := embedded(t, cluster.Options{})
	q, err := cluster.CreateQueue[job](ctx, c, "poison", 10, cluster.QueueOptions{MaxDeliver: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	q.Put(ctx, job{1, "poison"})
	q.Put(ctx, job{2, "fine"})
	raw, err := cluster.OpenQueue[[]byte](ctx, c, "poison", cluster.QueueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.Put(ctx, []byte{0xff, 0x00, 0x13}) // not CBOR of a job

	poisoned, decodeErrs, fine := 0, 0, 0
	for poisoned < 2 || decodeErrs < 1 || fine < 1 {
		d, err := q.Receive(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			decodeErrs++
			t.Logf("Receive: %v", err)
		case err != nil:
			t.Fatal(err)
		case d.Value.Name == "poison":
			poisoned++
			if d.Attempt() > 2 {
				t.Fatalf("poison delivered a %dth time", d.Attempt())
			}
			d.Retry()
		default:
			fine++
			if err := d.Done(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Whatever is left is the poison's third delivery, which buries it.
	if _, err := q.TryGet(ctx); !errors.Is(err, cluster.ErrEmpty) {
		t.Fatalf("TryGet after the poison's last delivery: %v", err)
	}
	if err := q.Join(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := q.Stats(ctx)
	if err != nil || st.Dead != 2 {
		t.Fatalf("Stats = %+v, %v; want 2 dead", st, err)
	}
	dq, err := q.DeadLetters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer dq.Close()
	rawDead, err := raw.DeadLetters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer rawDead.Close()
	var got []string
	for range 2 {
		b, err := rawDead.Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%x", b))
		rawDead.TaskDone(ctx)
	}
	t.Logf("dead letters: %v", got)
	if n, _ := dq.Len(ctx); n != 0 {
		t.Fatalf("dead letters left: %d", n)
	}
}

// TestQueueCloseWakes: Close ends a Get blocked on the handle.
func TestQueueCloseWakes(t *testing.T) {
	ctx := ctxT(t)
	c := embedded(t, cluster.Options{})
	q, err := cluster.CreateQueue[int](ctx, c, "wake", 0, cluster.QueueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := q.Get(ctx)
		errc <- err
	}()
	time.Sleep(100 * time.Millisecond)
	q.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, os.ErrClosed) {
			t.Fatalf("Get after Close: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("Get hangs after Close")
	}
}

// TestQueueRemoved: a put to a removed queue fails instead of waiting.
func TestQueueRemoved(t *testing.T) {
	ctx := ctxT(t)
	c := embedded(t, cluster.Options{})
	q, err := cluster.CreateQueue[int](ctx, c, "removed", 0, cluster.QueueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if err := q.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	if err := q.Put(ctx, 1); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Put into a removed queue: %v", err)
	}
	if _, err := q.Len(ctx); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Len of a removed queue: %v", err)
	}
}
