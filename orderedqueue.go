package mproc

import (
	"context"
	"fmt"

	"mproc/internal/ring"
	"mproc/internal/shm"
)

// orderedQueue is the part LIFOQueue and PriorityQueue share: a queue
// whose values come out in an order of their own (newest first, or by
// priority), kept as a robust-mutex heap of messages in one segment
// (internal/ring.Heap).
type orderedQueue[T any] struct {
	object
	h  *ring.Heap
	tr transport[T]
}

const (
	variantLIFO     = 3
	variantPriority = 4
)

func orderedKind[T any](variant uint64, codec Codec) handleKind[orderedQueue[T]] {
	return handleKind[orderedQueue[T]]{kind: shm.KindQueue, size: 128, make: func(o object) (*orderedQueue[T], error) {
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
		return &orderedQueue[T]{object: o, h: h, tr: tr}, nil
	}}
}

func createHeapQueue[T any](name string, named bool, capacity int, variant uint64, opts []QueueOption) (*orderedQueue[T], error) {
	cfg, err := queueOptions[T](capacity, opts)
	if err != nil {
		return nil, err
	}
	k := orderedKind[T](variant, cfg.codec)
	return k.create(name, named, objectSpec{kind: shm.KindQueue, size: ring.HeapSize(capacity, cfg.maxMsg),
		param: [2]uint64{uint64(capacity)<<8 | variant, uint64(cfg.maxMsg)},
		init:  func(b []byte) error { return ring.InitHeap(b, capacity, cfg.maxMsg) }})
}

func openHeapQueue[T any](name string, variant uint64, opts []QueueOption) (*orderedQueue[T], error) {
	var cfg queueConfig
	for _, o := range opts {
		o(&cfg)
	}
	return orderedKind[T](variant, cfg.codec).open(name)
}

func (q *orderedQueue[T]) put(ctx context.Context, v T, prio int64, wait bool) error {
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
	if err == nil {
		return nil
	}
	return queueErr(q.Name(), err)
}

func (q *orderedQueue[T]) get(ctx context.Context, wait bool) (T, int64, error) {
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
	if err != nil {
		err = queueErr(q.Name(), err)
	}
	return v, prio, err
}

// Len returns the number of values in the queue.
func (q *orderedQueue[T]) Len() int { return q.h.Len() }

// Cap returns the capacity.
func (q *orderedQueue[T]) Cap() int { return q.h.Cap() }

// Shutdown ends the queue for every process (see Queue.Shutdown).
func (q *orderedQueue[T]) Shutdown() error {
	if err := q.closed("queue"); err != nil {
		return err
	}
	q.h.Close()
	return nil
}

// IsShutdown reports whether the queue was shut down.
func (q *orderedQueue[T]) IsShutdown() bool { return q.h.Closed() }

// Close releases this process's handle (see Queue.Close).
func (q *orderedQueue[T]) Close() error { return q.object.Close() }

// GobEncode implements gob.GobEncoder.
func (q *orderedQueue[T]) GobEncode() ([]byte, error) { return q.encode() }
