package mproc

import (
	"context"
)

// PriorityQueue is a bounded queue between processes that hands out the
// value of lowest priority number first, and values of equal priority in
// the order they were put (Python's PriorityQueue, with the priority
// beside the value instead of inside a tuple). It shares LIFOQueue's
// structure and crash behaviour.
type PriorityQueue[T any] struct {
	orderedQueue[T]
}

func priority[T any](q *orderedQueue[T], err error) (*PriorityQueue[T], error) {
	if err != nil {
		return nil, err
	}
	return &PriorityQueue[T]{*q}, nil
}

// NewPriorityQueue creates an anonymous priority queue of capacity values.
func NewPriorityQueue[T any](capacity int, opts ...QueueOption) (*PriorityQueue[T], error) {
	return priority(createHeapQueue[T]("", false, capacity, variantPriority, opts))
}

// CreatePriorityQueue creates the named priority queue name.
func CreatePriorityQueue[T any](name string, capacity int, opts ...QueueOption) (*PriorityQueue[T], error) {
	return priority(createHeapQueue[T](name, true, capacity, variantPriority, opts))
}

// OpenPriorityQueue opens the named priority queue name.
func OpenPriorityQueue[T any](name string, opts ...QueueOption) (*PriorityQueue[T], error) {
	return priority(openHeapQueue[T](name, variantPriority, opts))
}

// Put adds v with priority prio (lower comes out first), waiting while the
// queue is full.
func (q *PriorityQueue[T]) Put(ctx context.Context, v T, prio int64) error {
	return q.put(ctx, v, prio, true)
}

// TryPut adds v with priority prio if there is room now.
func (q *PriorityQueue[T]) TryPut(v T, prio int64) error {
	return q.put(context.Background(), v, prio, false)
}

// Get removes and returns the first value and its priority, waiting while
// there is none.
func (q *PriorityQueue[T]) Get(ctx context.Context) (T, int64, error) { return q.get(ctx, true) }

// TryGet removes and returns the first value if there is one now.
func (q *PriorityQueue[T]) TryGet() (T, int64, error) { return q.get(context.Background(), false) }

// GobDecode implements gob.GobDecoder.
func (q *PriorityQueue[T]) GobDecode(b []byte) error {
	return orderedKind[T](variantPriority, nil).decode(&q.orderedQueue, b)
}
