package mproc

import "context"

// LIFOQueue is a bounded last-in first-out queue between processes: the
// newest value comes out first. Values cross as in Queue. It is one robust
// lock over a heap of messages, copied in and out under the lock, so it is
// slower than Queue under contention; a process that dies inside Put
// leaves no message, and one that dies inside Get leaves the message it
// was taking for the next consumer (it had not returned it).
type LIFOQueue[T any] struct {
	orderedQueue[T]
}

func lifo[T any](q *orderedQueue[T], err error) (*LIFOQueue[T], error) {
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
	return orderedKind[T](variantLIFO, nil).decode(&q.orderedQueue, b)
}
