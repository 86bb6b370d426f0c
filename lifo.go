package mproc

import (
	"context"
	"errors"
	"fmt"

	"mproc/internal/ring"
	"mproc/internal/shm"
)

// heapQueue is the part LIFOQueue and PriorityQueue share: a robust-mutex
// heap of messages in one segment (internal/ring.Heap).
type heapQueue[T any] struct {
	object
	h  *ring.Heap
	tr transport[T]
}

const (
	variantLIFO     = 3
	variantPriority = 4
)

func heapKind[T any](variant uint64, codec Codec) handleKind[heapQueue[T]] {
	return handleKind[heapQueue[T]]{kind: shm.KindQueue, size: 128, make: func(o object) (*heapQueue[T], error) {
		slots, v, maxMsg := o.param(0)>>8, o.param(0)&0xff, o.param(1)
		if v != variant {
			return nil, fmt.Errorf("a queue of variant %d, not %d: %w", v, variant, ErrKind)
		}
		// The creator sizes the data area exactly for its parameters.
		if slots < 1 || slots > 1<<24 || maxMsg < 1 || maxMsg > 1<<30 ||
			len(o.seg.Data()) != ring.HeapSize(int(slots), int(maxMsg)) {
			return nil, fmt.Errorf("queue of %d slots of %d bytes in %d bytes: %w", slots, maxMsg, len(o.seg.Data()), ErrCorrupt)
		}
		tr := newTransport[T](codec)
		if tr.kind == asMemory && tr.size > int(maxMsg) {
			return nil, fmt.Errorf("queue of %d-byte messages cannot carry a %d-byte %T: %w", maxMsg, tr.size, *new(T), ErrKind)
		}
		h, err := ring.AttachHeap(o.seg.Data(), int(slots), int(maxMsg), variant == variantLIFO, self)
		if err != nil {
			return nil, err
		}
		return &heapQueue[T]{object: o, h: h, tr: tr}, nil
	}}
}

func createHeapQueue[T any](name string, named bool, capacity int, variant uint64, opts []QueueOption) (*heapQueue[T], error) {
	cfg, err := queueOptions[T](capacity, opts)
	if err != nil {
		return nil, err
	}
	k := heapKind[T](variant, cfg.codec)
	return k.create(name, named, objectSpec{kind: shm.KindQueue, size: ring.HeapSize(capacity, cfg.maxMsg),
		param: [2]uint64{uint64(capacity)<<8 | variant, uint64(cfg.maxMsg)},
		init:  func(b []byte) error { return ring.InitHeap(b, capacity, cfg.maxMsg) }})
}

func openHeapQueue[T any](name string, variant uint64, opts []QueueOption) (*heapQueue[T], error) {
	var cfg queueConfig
	for _, o := range opts {
		o(&cfg)
	}
	return heapKind[T](variant, cfg.codec).open(name)
}

func (q *heapQueue[T]) put(ctx context.Context, v T, prio int64, wait bool) error {
	if err := q.closed("queue"); err != nil {
		return err
	}
	msg, err := q.tr.message(&v)
	if err != nil {
		return err
	}
	n, fill := len(msg), func(b []byte) { copy(b, msg) }
	if n > q.h.Max() {
		return fmt.Errorf("queue %q: message of %d bytes, maximum %d: %w", q.Name(), n, q.h.Max(), ErrTooLarge)
	}
	if wait {
		err = q.h.Put(ctx, n, fill, prio)
	} else {
		err = q.h.TryPut(n, fill, prio)
	}
	return mapRingErr(q.Name(), err)
}

func (q *heapQueue[T]) get(ctx context.Context, wait bool) (T, int64, error) {
	var v T
	var prio int64
	if err := q.closed("queue"); err != nil {
		return v, 0, err
	}
	var derr error
	read := func(msg []byte, p int64) {
		prio = p
		derr = q.tr.decode(append(q.tr.buffer(&v), msg...), &v)
	}
	var err error
	if wait {
		err = q.h.Get(ctx, read)
	} else {
		err = q.h.TryGet(read)
	}
	if err == nil {
		err = derr
	}
	return v, prio, mapRingErr(q.Name(), err)
}

// Len returns the number of values in the queue.
func (q *heapQueue[T]) Len() int { return q.h.Len() }

// Cap returns the capacity.
func (q *heapQueue[T]) Cap() int { return q.h.Cap() }

// Close closes the queue for every process: puts fail with ErrClosed,
// gets drain it and then fail with ErrClosed.
func (q *heapQueue[T]) Close() error {
	if err := q.closed("queue"); err != nil {
		return err
	}
	q.h.Close()
	return nil
}

// Detach unmaps the queue in this process.
func (q *heapQueue[T]) Detach() error { return q.object.Close() }

// GobEncode implements gob.GobEncoder.
func (q *heapQueue[T]) GobEncode() ([]byte, error) { return q.encode() }

// LIFOQueue is a bounded last-in first-out queue between processes: the
// newest value comes out first. Values cross as in Queue. It is one robust
// lock over a heap of messages, copied in and out under the lock, so it is
// slower than Queue under contention; a process that dies inside Put
// leaves no message, and one that dies inside Get leaves the message it
// was taking for the next consumer (it had not returned it).
type LIFOQueue[T any] struct {
	heapQueue[T]
}

func lifo[T any](q *heapQueue[T], err error) (*LIFOQueue[T], error) {
	if err != nil {
		return nil, err
	}
	return &LIFOQueue[T]{*q}, nil
}

// NewLIFOQueue creates an anonymous LIFO queue of capacity values.
func NewLIFOQueue[T any](capacity int, opts ...QueueOption) (*LIFOQueue[T], error) {
	return lifo(createHeapQueue[T]("", false, capacity, variantLIFO, opts))
}

// CreateLIFOQueue creates the named LIFO queue name.
func CreateLIFOQueue[T any](name string, capacity int, opts ...QueueOption) (*LIFOQueue[T], error) {
	return lifo(createHeapQueue[T](name, true, capacity, variantLIFO, opts))
}

// OpenLIFOQueue opens the named LIFO queue name.
func OpenLIFOQueue[T any](name string, opts ...QueueOption) (*LIFOQueue[T], error) {
	return lifo(openHeapQueue[T](name, variantLIFO, opts))
}

// Put adds v, waiting while the queue is full.
func (q *LIFOQueue[T]) Put(ctx context.Context, v T) error { return q.put(ctx, v, 0, true) }

// TryPut adds v if there is room now (ErrFull otherwise).
func (q *LIFOQueue[T]) TryPut(v T) error { return q.put(context.Background(), v, 0, false) }

// Get removes and returns the newest value, waiting while there is none.
func (q *LIFOQueue[T]) Get(ctx context.Context) (T, error) {
	v, _, err := q.get(ctx, true)
	return v, err
}

// TryGet removes and returns the newest value if there is one (ErrEmpty
// otherwise).
func (q *LIFOQueue[T]) TryGet() (T, error) {
	v, _, err := q.get(context.Background(), false)
	return v, err
}

// GobDecode implements gob.GobDecoder.
func (q *LIFOQueue[T]) GobDecode(b []byte) error {
	return heapKind[T](variantLIFO, nil).decode(&q.heapQueue, b)
}

// mapRingErr turns the ring's errors into mproc's, naming the queue.
func mapRingErr(name string, err error) error {
	for _, m := range [...]struct{ from, to error }{{ring.ErrFull, ErrFull}, {ring.ErrEmpty, ErrEmpty}, {ring.ErrClosed, ErrClosed}, {ring.ErrCorrupt, ErrCorrupt}} {
		if errors.Is(err, m.from) {
			return fmt.Errorf("queue %q: %w", name, m.to)
		}
	}
	return err
}
