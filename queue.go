package mproc

import (
	"context"
	"errors"
	"fmt"
	"iter"

	"mproc/internal/psync"
	"mproc/internal/ring"
	"mproc/internal/shm"
)

// Queue is a bounded first-in first-out queue between processes, in shared
// memory: Python's multiprocessing.Queue, any number of producers and
// consumers in any processes.
//
// Values of type []byte and string cross as their bytes; fixed-size types
// without pointers (numbers, and arrays and structs of them) as their
// memory; anything else through a Codec (DefaultCodec, CBOR, unless
// WithCodec says otherwise). A message larger than the queue's maximum
// (WithMaxMessage) is refused with ErrTooLarge before anything is written.
//
// Crashes: a process may die at any point of Put or Get without stalling
// the others. A message whose producer died before finishing it is
// skipped; a message whose consumer died while copying it out is dropped
// (Get had not returned it, so it was never delivered) and counted in
// Stats().Abandoned. No message is delivered twice or torn. A producer or
// consumer that is merely slow or stopped (SIGSTOP) is waited for.
//
// Shutdown ends the queue for every process, like closing a channel: puts
// fail with ErrShutdown, and gets return what is left, then ErrShutdown.
// Close releases this process's handle only, as os.File.Close does (and as
// Python's Queue.close does).
//
// A *Queue is safe for concurrent use by goroutines. Blocked calls spin for
// up to ~20 µs, yielding the CPU, and then sleep on a futex in slices of
// 25 ms, backing off to 200 ms while nothing happens: a waiter woken for a
// message that dies before taking it leaves the message to the next
// sleeper within 200 ms, and an idle consumer wakes about five times a
// second.
type Queue[T any] struct {
	object
	r     *ring.Ring
	tr    transport[T]
	tasks *psync.Tasks // in the bytes before the ring; used by JoinableQueue
}

// queueHeaderSize is the bytes before the ring: the JoinableQueue's count
// of unfinished tasks (psync.Tasks), in every queue's layout.
const queueHeaderSize = 64

// Queue variants, in the segment's parameter 0 (low byte), so that a
// queue is opened as what it was created as.
const (
	variantFIFO     = 1
	variantJoinable = 2
)

// QueueOption configures a new queue.
type QueueOption func(*queueConfig)

type queueConfig struct {
	maxMsg int
	codec  Codec
}

// DefaultMaxMessage is the largest message of a queue created without
// WithMaxMessage whose values are not of a fixed size.
const DefaultMaxMessage = 64 << 10

// WithMaxMessage sets the largest message in bytes. Each slot reserves
// that much shared memory. Slots under 16 KiB take it when the queue is
// created; larger slots take a page then and the rest as messages first
// need it, so a queue of large slots that carries small messages stays
// small. Either way a full /dev/shm is an error (wrapping syscall.ENOSPC,
// from the creation or from the Put that needed the memory), never a
// crash.
func WithMaxMessage(n int) QueueOption { return func(c *queueConfig) { c.maxMsg = n } }

// WithCodec sets the Codec of values that are neither bytes, strings nor
// fixed-size and pointer-free. Every process must use the same one.
func WithCodec(c Codec) QueueOption { return func(q *queueConfig) { q.codec = c } }

func queueKind[T any](variant uint64, codec Codec) handleKind[Queue[T]] {
	return handleKind[Queue[T]]{kind: shm.KindQueue, size: queueHeaderSize + ring.HeaderSize,
		make: func(o object) (*Queue[T], error) {
			capacity, v, maxMsg := o.param(0)>>8, o.param(0)&0xff, o.param(1)
			if v != variant {
				return nil, fmt.Errorf("a queue of variant %d, not %d: %w", v, variant, ErrKind)
			}
			if capacity < 1 || capacity > 1<<24 || maxMsg < 1 || maxMsg > 1<<30 {
				return nil, fmt.Errorf("queue of %d slots of %d bytes: %w", capacity, maxMsg, ErrCorrupt)
			}
			// The creator sizes the data area exactly for its parameters.
			data := o.seg.Data()
			if len(data) != queueHeaderSize+ring.Size(int(capacity), int(maxMsg)) {
				return nil, fmt.Errorf("queue of %d slots of %d bytes in %d bytes: %w", capacity, maxMsg, len(data), ErrCorrupt)
			}
			tr := newTransport[T](codec)
			if tr.kind == asMemory && tr.size > int(maxMsg) {
				return nil, fmt.Errorf("queue of %d-byte messages cannot carry a %d-byte %T: %w", maxMsg, tr.size, *new(T), ErrKind)
			}
			r, err := ring.Attach(data[queueHeaderSize:], int(capacity), int(maxMsg), self)
			if err != nil {
				return nil, fmt.Errorf("attach: %w", err)
			}
			seg := o.seg
			r.AllocateWith(func(off, n int) error { return seg.Allocate(queueHeaderSize+off, n) })
			q := &Queue[T]{object: o, r: r, tr: tr, tasks: shm.At[psync.Tasks](data, 0)}
			if variant == variantJoinable {
				r.CountTaken(q.tasks)
			}
			return q, nil
		}}
}

// queueOptions applies opts for a new queue of capacity values of type T
// and checks the result.
func queueOptions[T any](capacity int, opts []QueueOption) (queueConfig, error) {
	var cfg queueConfig
	for _, o := range opts {
		o(&cfg)
	}
	tr := newTransport[T](cfg.codec)
	switch {
	case cfg.maxMsg == 0 && tr.kind == asMemory:
		cfg.maxMsg = tr.size
	case cfg.maxMsg == 0:
		cfg.maxMsg = DefaultMaxMessage
	}
	if capacity < 1 || capacity > 1<<24 || cfg.maxMsg < 1 || cfg.maxMsg > 1<<30 ||
		(tr.kind == asMemory && cfg.maxMsg < tr.size) {
		return cfg, fmt.Errorf("queue of %d messages of %d bytes out of range", capacity, cfg.maxMsg)
	}
	return cfg, nil
}

func createQueue[T any](name string, named bool, capacity int, variant uint64, opts []QueueOption) (*Queue[T], error) {
	cfg, err := queueOptions[T](capacity, opts)
	if err != nil {
		return nil, err
	}
	size := queueHeaderSize + ring.Size(capacity, cfg.maxMsg)
	if size > shm.MaxDataSize {
		return nil, fmt.Errorf("queue of %d messages of %d bytes needs %d bytes", capacity, cfg.maxMsg, size)
	}
	k := queueKind[T](variant, cfg.codec)
	spec := objectSpec{kind: shm.KindQueue, size: size,
		param: [2]uint64{uint64(capacity)<<8 | variant, uint64(cfg.maxMsg)},
		init: func(b []byte) error {
			return ring.Init(b[queueHeaderSize:], capacity, cfg.maxMsg)
		},
		eager: queueEager(capacity, cfg.maxMsg)}
	return k.create(name, named, spec)
}

// queueEager is the memory a queue's segment takes at creation: the
// queue's header and what its ring needs (ring.EagerRanges), or nil for
// all of it.
func queueEager(capacity, maxMsg int) [][2]int {
	rs := ring.EagerRanges(capacity, maxMsg)
	if rs == nil {
		return nil
	}
	for i := range rs {
		rs[i][0] += queueHeaderSize
	}
	rs[0] = [2]int{0, queueHeaderSize + rs[0][1]} // the ring's header follows the queue's
	return rs
}

// NewQueue creates an anonymous queue of capacity messages, for this
// process and its children.
func NewQueue[T any](capacity int, opts ...QueueOption) (*Queue[T], error) {
	return createQueue[T]("", false, capacity, variantFIFO, opts)
}

// CreateQueue creates the named queue name.
func CreateQueue[T any](name string, capacity int, opts ...QueueOption) (*Queue[T], error) {
	return createQueue[T](name, true, capacity, variantFIFO, opts)
}

// OpenQueue opens the named queue name. A non-default codec must be given
// again (WithCodec; other options are ignored).
func OpenQueue[T any](name string, opts ...QueueOption) (*Queue[T], error) {
	var cfg queueConfig
	for _, o := range opts {
		o(&cfg)
	}
	return queueKind[T](variantFIFO, cfg.codec).open(name)
}

func (q *Queue[T]) check() error { return q.closed("queue") }

// tooLarge says which message does not fit.
func (q *Queue[T]) tooLarge(n int) error {
	return fmt.Errorf("queue %q: message of %d bytes, maximum %d: %w", q.Name(), n, q.r.Max(), ErrTooLarge)
}

// Put adds v at the end, waiting while the queue is full until ctx is
// done. It fails with ErrShutdown once the queue is shut down and ErrTooLarge
// for a message over the maximum.
func (q *Queue[T]) Put(ctx context.Context, v T) error {
	msg, err := q.message(&v)
	if err != nil {
		return err
	}
	return q.mapErr(q.r.PutBytes(ctx, msg))
}

// TryPut adds v if there is room now, or fails with ErrFull.
func (q *Queue[T]) TryPut(v T) error {
	msg, err := q.message(&v)
	if err != nil {
		return err
	}
	return q.mapErr(q.r.TryPut(msg).Err)
}

// PutFunc is the zero-copy put: it reserves a message of n bytes in the
// queue, waiting for room as Put does, calls fill to write it in place,
// and commits it. The bytes are what Get decodes: for a []byte or string
// queue the value itself, for a fixed-size type its memory, otherwise the
// codec's encoding. If fill panics, the reserved message is skipped and
// the panic goes on. fill must not block on the queue.
func (q *Queue[T]) PutFunc(ctx context.Context, n int, fill func([]byte)) error {
	if err := q.check(); err != nil {
		return err
	}
	if n < 0 || n > q.r.Max() {
		return q.tooLarge(n)
	}
	return q.mapErr(q.r.Put(ctx, n, fill))
}

// GetFunc is the zero-copy get: it removes the first message, waiting as
// Get does, and calls read with its bytes in place (see PutFunc), valid
// only during the call. If read panics, the message is dropped and the
// panic goes on.
func (q *Queue[T]) GetFunc(ctx context.Context, read func([]byte)) error {
	if err := q.check(); err != nil {
		return err
	}
	return q.mapErr(q.r.Get(ctx, read))
}

func (q *Queue[T]) message(v *T) ([]byte, error) {
	if err := q.check(); err != nil {
		return nil, err
	}
	msg, err := q.tr.message(v)
	if err != nil {
		return nil, err
	}
	if len(msg) > q.r.Max() {
		return nil, q.tooLarge(len(msg))
	}
	return msg, nil
}

// Get removes and returns the first value, waiting while the queue is
// empty until ctx is done. Once the queue is shut down and empty it returns
// ErrShutdown.
func (q *Queue[T]) Get(ctx context.Context) (T, error) {
	return q.get(ctx, true)
}

// TryGet removes and returns the first value if there is one now, or fails
// with ErrEmpty (ErrShutdown once shut down and empty).
func (q *Queue[T]) TryGet() (T, error) {
	return q.get(context.Background(), false)
}

func (q *Queue[T]) get(ctx context.Context, wait bool) (T, error) {
	if q.tr.kind == asMemory {
		return q.getMemory(ctx, wait)
	}
	var v T
	if err := q.check(); err != nil {
		return v, err
	}
	msg, err := q.getAppend(ctx, nil, wait)
	if err == nil {
		err = q.tr.decode(msg, &v)
	}
	return v, q.mapErr(err)
}

// getMemory gets a fixed-size value straight into its memory.
func (q *Queue[T]) getMemory(ctx context.Context, wait bool) (T, error) {
	var v T
	if err := q.check(); err != nil {
		return v, err
	}
	msg, err := q.getAppend(ctx, shm.Bytes(&v)[:0], wait)
	if err == nil && len(msg) != q.tr.size {
		err = fmt.Errorf("queue %q: message of %d bytes for a %d-byte value: %w", q.Name(), len(msg), q.tr.size, ErrCorrupt)
	}
	return v, q.mapErr(err)
}

// GetAppend removes the first message, waiting as Get does, and appends
// its bytes to dst: for a Queue[[]byte] or Queue[string], the value; for
// another T, its encoding, as GetFunc sees it. A consumer that passes the
// same buffer again (buf, err = q.GetAppend(ctx, buf[:0])) gets messages
// without allocating: for large messages, much faster than Get, which
// allocates each.
func (q *Queue[T]) GetAppend(ctx context.Context, dst []byte) ([]byte, error) {
	if err := q.check(); err != nil {
		return dst, err
	}
	out, err := q.getAppend(ctx, dst, true)
	if err != nil {
		return dst, q.mapErr(err)
	}
	return out, nil
}

func (q *Queue[T]) getAppend(ctx context.Context, dst []byte, wait bool) ([]byte, error) {
	if wait {
		return q.r.GetAppend(ctx, dst)
	}
	out, b := q.r.TryGetAppend(dst)
	return out, b.Err
}

func (q *Queue[T]) mapErr(err error) error {
	if err == nil {
		return nil // the common case, before the name is looked up
	}
	return queueErr(q.Name(), err)
}

// All returns the values in order until the queue is shut down and drained
// (the sequence then ends) or ctx is done (it yields ctx's error last).
func (q *Queue[T]) All(ctx context.Context) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for {
			v, err := q.Get(ctx)
			if errors.Is(err, ErrShutdown) {
				return
			}
			if !yield(v, err) || err != nil {
				return
			}
		}
	}
}

// Len returns the number of messages in the queue now (including ones
// being put or got).
func (q *Queue[T]) Len() int { return q.r.Len() }

// Cap returns the capacity.
func (q *Queue[T]) Cap() int { return q.r.Cap() }

// MaxMessage returns the largest message in bytes.
func (q *Queue[T]) MaxMessage() int { return q.r.Max() }

// Shutdown ends the queue for every process, as Python 3.13's
// Queue.shutdown does: puts fail with ErrShutdown at once, gets return
// what is left and then fail with ErrShutdown, and every blocked Put and
// Get wakes. It cannot be undone. This process's handle stays open
// (Close releases it).
func (q *Queue[T]) Shutdown() error {
	if err := q.check(); err != nil {
		return err
	}
	q.r.Close()
	return nil
}

// IsShutdown reports whether the queue was shut down.
func (q *Queue[T]) IsShutdown() bool { return q.r.Closed() }

// Close releases this process's handle (it unmaps the queue here): the
// handle must not be used afterwards, and a second Close returns
// os.ErrClosed. Other processes keep the queue, and so do messages in it;
// to end the queue for everyone, Shutdown it.
func (q *Queue[T]) Close() error { return q.object.Close() }

// QueueStats are counts kept in the queue's segment.
type QueueStats struct {
	// Skipped counts slots left half-written by producers that died.
	Skipped uint64
	// Abandoned counts messages lost with a consumer that died while
	// copying them out.
	Abandoned uint64
	// Corrupt counts messages dropped because the queue's memory said
	// something impossible of them (Get returned ErrCorrupt).
	Corrupt uint64
}

// Stats returns the queue's crash counts.
func (q *Queue[T]) Stats() QueueStats {
	s, a, c := q.r.Stats()
	return QueueStats{Skipped: s, Abandoned: a, Corrupt: c}
}

// GobEncode implements gob.GobEncoder.
func (q *Queue[T]) GobEncode() ([]byte, error) { return q.encode() }

// GobDecode implements gob.GobDecoder. A queue with a non-default codec
// reaches a child with DefaultCodec; set DefaultCodec in both programs.
func (q *Queue[T]) GobDecode(b []byte) error { return queueKind[T](variantFIFO, nil).decode(q, b) }

// JoinableQueue is a Queue whose consumers report each value done with
// TaskDone, so that Join can wait until every value put has been handled:
// Python's JoinableQueue.
//
// A value is unfinished from the moment its Put publishes it until a
// TaskDone after the Get that took it. A producer that dies inside Put
// leaves nothing unfinished (its value is in the queue or it is not); a
// consumer that dies inside Get takes its value with it (see Queue), and
// one that dies between Get and TaskDone leaves its task unfinished: Join
// then waits until its context ends, as in Python.
type JoinableQueue[T any] struct {
	Queue[T]
}

func joinable[T any](q *Queue[T], err error) (*JoinableQueue[T], error) {
	if err != nil {
		return nil, err
	}
	return &JoinableQueue[T]{Queue: *q}, nil
}

// NewJoinableQueue creates an anonymous joinable queue.
func NewJoinableQueue[T any](capacity int, opts ...QueueOption) (*JoinableQueue[T], error) {
	return joinable(createQueue[T]("", false, capacity, variantJoinable, opts))
}

// CreateJoinableQueue creates the named joinable queue name.
func CreateJoinableQueue[T any](name string, capacity int, opts ...QueueOption) (*JoinableQueue[T], error) {
	return joinable(createQueue[T](name, true, capacity, variantJoinable, opts))
}

// OpenJoinableQueue opens the named joinable queue name.
func OpenJoinableQueue[T any](name string, opts ...QueueOption) (*JoinableQueue[T], error) {
	var cfg queueConfig
	for _, o := range opts {
		o(&cfg)
	}
	return joinable(queueKind[T](variantJoinable, cfg.codec).open(name))
}

// TaskDone says that a value got from the queue has been handled. More
// calls than values got fail with ErrTooManyTaskDone.
func (q *JoinableQueue[T]) TaskDone() error {
	if err := q.check(); err != nil {
		return err
	}
	if !q.tasks.Done() {
		return fmt.Errorf("queue %q: %w", q.Name(), ErrTooManyTaskDone)
	}
	return nil
}

// Unfinished returns the number of values put and not yet done: in the
// queue, and got but not yet reported done.
func (q *JoinableQueue[T]) Unfinished() int {
	n, _ := q.r.Pending()
	return n + q.tasks.Taken()
}

// Join waits until every task put has been reported done, or ctx is done.
func (q *JoinableQueue[T]) Join(ctx context.Context) error {
	if err := q.check(); err != nil {
		return err
	}
	return q.tasks.Wait(ctx, q.r.Pending)
}

// GobDecode implements gob.GobDecoder.
func (q *JoinableQueue[T]) GobDecode(b []byte) error {
	return queueKind[T](variantJoinable, nil).decode(&q.Queue, b)
}

// SimpleQueue is the minimal queue, Python's SimpleQueue: Put, Get, Empty,
// Shutdown and Close over the same ring as Queue.
type SimpleQueue[T any] struct {
	q *Queue[T]
}

func simple[T any](q *Queue[T], err error) (*SimpleQueue[T], error) {
	if err != nil {
		return nil, err
	}
	return &SimpleQueue[T]{q: q}, nil
}

// NewSimpleQueue creates an anonymous simple queue of capacity messages.
func NewSimpleQueue[T any](capacity int, opts ...QueueOption) (*SimpleQueue[T], error) {
	return simple(NewQueue[T](capacity, opts...))
}

// Put adds v, waiting while the queue is full.
func (s *SimpleQueue[T]) Put(ctx context.Context, v T) error { return s.q.Put(ctx, v) }

// Get removes and returns the first value, waiting while there is none.
func (s *SimpleQueue[T]) Get(ctx context.Context) (T, error) { return s.q.Get(ctx) }

// Empty reports whether the queue is empty now.
func (s *SimpleQueue[T]) Empty() bool { return s.q.Len() == 0 }

// Shutdown ends the queue for every process (see Queue.Shutdown).
func (s *SimpleQueue[T]) Shutdown() error { return s.q.Shutdown() }

// Close releases this process's handle (see Queue.Close).
func (s *SimpleQueue[T]) Close() error { return s.q.Close() }

// GobEncode implements gob.GobEncoder.
func (s *SimpleQueue[T]) GobEncode() ([]byte, error) { return s.q.GobEncode() }

// GobDecode implements gob.GobDecoder.
func (s *SimpleQueue[T]) GobDecode(b []byte) error {
	s.q = new(Queue[T])
	return s.q.GobDecode(b)
}

// queueErr turns the ring's and the heap's errors into mproc's, naming
// the queue.
func queueErr(name string, err error) error {
	for _, m := range [...]struct{ from, to error }{{ring.ErrFull, ErrFull}, {ring.ErrEmpty, ErrEmpty}, {ring.ErrClosed, ErrShutdown}, {ring.ErrCorrupt, ErrCorrupt}} {
		if errors.Is(err, m.from) {
			return fmt.Errorf("queue %q: %w", name, m.to)
		}
	}
	return err
}
