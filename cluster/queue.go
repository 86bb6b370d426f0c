package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"mproc"
)

// Defaults of queues and pools.
const (
	// DefaultAckWait is how long a delivered message or task may go
	// without news from its holder (a heartbeat, every third of it, from
	// every live handle) before it is delivered to another consumer.
	DefaultAckWait = 30 * time.Second
	// DefaultMaxDeliver is how many deliveries a queue message gets
	// before the next one moves it to the dead-letter queue, and how many
	// times a pool task is started before its future fails with
	// ErrWorkerDied.
	DefaultMaxDeliver = 3
	// headerRoom is what a message's headers may take of the server's
	// max_payload.
	headerRoom = 1024
)

// Storage is how a queue's or a pool's streams are kept, fixed when they
// are created. The zero value is one copy, on disk, with DefaultAckWait.
type Storage struct {
	// Replicas is the number of servers of a NATS cluster that hold each
	// message (1, 3 or 5 in practice; 0 means 1). A put returns once a
	// majority has it.
	Replicas int
	// Memory keeps messages in the servers' memory instead of files:
	// faster, and lost when a server restarts.
	Memory bool
	// AckWait is how long a message (a task) may be held without a sign
	// of life from its consumer (its worker) before it is delivered to
	// another: the time to notice a dead consumer. 0 means
	// DefaultAckWait.
	AckWait time.Duration
}

func (s Storage) replicas() int { return max(s.Replicas, 1) }

func (s Storage) storage() jetstream.StorageType {
	if s.Memory {
		return jetstream.MemoryStorage
	}
	return jetstream.FileStorage
}

func (s Storage) ackWait() time.Duration {
	if s.AckWait <= 0 {
		return DefaultAckWait
	}
	return s.AckWait
}

// QueueOptions configure a queue. The zero value is ready to use.
type QueueOptions struct {
	// Codec encodes values other than []byte and strings; nil means
	// mproc.DefaultCodec. Every process must use the same one.
	Codec mproc.Codec
	// MaxDeliver is how many times a message may be delivered: a message
	// delivered that often without being done (its consumers died, or
	// called Retry or Close) is moved to the dead-letter queue by the
	// next consumer it reaches. 0 means DefaultMaxDeliver, a negative
	// value no limit.
	MaxDeliver int
	// MaxMessage is the largest encoded value in bytes; 0 means what the
	// server takes (its max_payload, 1 MiB by default, less 1 KiB for
	// headers).
	MaxMessage int
	// Storage says where and how long messages are kept.
	Storage
}

// Queue is a first-in first-out queue of values of type T on a NATS
// JetStream work-queue stream, shared by every process of every machine
// that opens it by name: the cluster form of mproc.JoinableQueue.
//
// # When a message is done
//
// Delivery is at least once. Get hands a value to this handle, which
// keeps it as in progress — it tells the server so three times per
// AckWait — until TaskDone (the oldest value Get returned through this
// handle, as Python's task_done counts) or until Done on the *Delivery
// that Receive returns. Then, and only then, the message is acknowledged
// (the server confirms it, replicated in a cluster) and removed: once
// TaskDone or Done returns nil, the message is never delivered again.
// If the holding process dies, or loses the server for longer than
// AckWait, the message goes to the next consumer, whose Receive sees
// Attempt() > 1. Close, and Retry on a Delivery, give messages back at
// once.
//
// Capacity bounds the messages put and not yet done: a message being
// worked on still holds its place (JetStream counts it until its ack).
//
// # Dead letters
//
// A message delivered MaxDeliver times without being done (it killed its
// consumers, say) is not handed out again: the consumer that receives it
// next copies it to the queue's dead-letter queue (DeadLetters) and then
// acknowledges it, so it no longer holds a place or blocks Join. The copy
// carries the message's id, so if that consumer dies between the two
// steps its successor's copy is a duplicate the server drops. A message
// the codec cannot decode goes there too, at once.
//
// A *Queue is safe for concurrent use by goroutines. Every method that
// talks to the server takes a context: each is a round trip at least,
// which a failover can stretch.
type Queue[T any] struct {
	c       *Conn
	name    string
	stream  string
	subject string
	cons    jetstream.Consumer
	vc      valueCodec[T]

	capacity   int
	maxDeliver int // 0: no dead-lettering
	maxMsg     int
	ackWait    time.Duration
	dead       string // the dead-letter subject; "" for a dead-letter queue

	mu     sync.Mutex
	closed bool
	held   map[*Delivery[T]]struct{} // delivered here, not done: heartbeats, Close
	fifo   []*Delivery[T]            // Get's, oldest first: TaskDone

	life  context.Context // cancelled by Close: ends heartbeats and blocked calls
	close context.CancelFunc
	wg    sync.WaitGroup
}

// Delivery is one delivery of a queue message: its value, and the
// receipt that says it is done (Done) or to be given to another consumer
// (Retry). Exactly one of them should be called.
type Delivery[T any] struct {
	Value T

	q       *Queue[T]
	msg     jetstream.Msg
	attempt int
}

// Attempt returns which delivery of its message this is, from 1: more
// than 1 after a consumer died holding it, or gave it back.
func (d *Delivery[T]) Attempt() int { return d.attempt }

// Done acknowledges the message, and waits until the server confirms it
// (ctx bounds the wait): it is then removed, and never delivered again.
// If Done fails, the message is still held; Done may be called again.
// Done on a delivery already done or retried fails with
// ErrTooManyTaskDone, and after the handle's Close (which gave the
// message back) with os.ErrClosed.
func (d *Delivery[T]) Done(ctx context.Context) error {
	if err := d.q.release(d); err != nil {
		return fmt.Errorf("queue %q: Done: %w", d.q.name, err)
	}
	if err := ack(ctx, d.msg); err != nil {
		d.q.hold(d, false)
		return fmt.Errorf("queue %q: ack: %w", d.q.name, err)
	}
	return nil
}

// Retry gives the message back, to be delivered again at once (perhaps
// to this process); the delivery counts toward MaxDeliver.
func (d *Delivery[T]) Retry() error {
	if err := d.q.release(d); err != nil {
		return fmt.Errorf("queue %q: Retry: %w", d.q.name, err)
	}
	return gone(d.msg.Nak())
}

// Names of a queue's streams and subjects. JetStream names cannot hold
// '.', so user names (checkName) cannot either, and the prefixes keep
// queues, dead-letter queues and pools apart.
func queueStream(name string) string  { return "MPQ_" + name }
func queueSubject(name string) string { return "mpq." + name }
func deadStream(name string) string   { return "MPD_" + name }
func deadSubject(name string) string  { return "mpd." + name }

const (
	workersConsumer = "workers"
	metaKind        = "mproc.kind"
	metaMaxDeliver  = "mproc.max_deliver"
	metaMaxMessage  = "mproc.max_message"
)

// CreateQueue creates the queue name with room for capacity messages
// (capacity <= 0: no bound) and its dead-letter queue, or opens them if
// they exist with the same capacity and options — every process may call
// it. A queue of that name with other settings gives an error wrapping
// os.ErrExist. ctx bounds the round trips.
func CreateQueue[T any](ctx context.Context, c *Conn, name string, capacity int, opts QueueOptions) (*Queue[T], error) {
	if err := checkName("queue", name); err != nil {
		return nil, err
	}
	maxDeliver := opts.MaxDeliver
	switch {
	case maxDeliver == 0:
		maxDeliver = DefaultMaxDeliver
	case maxDeliver < 0:
		maxDeliver = -1
	}
	maxMsgs := int64(capacity)
	if capacity <= 0 {
		maxMsgs = -1
	}
	limit := c.nc.MaxPayload() - headerRoom
	if opts.MaxMessage > int(limit) {
		return nil, fmt.Errorf("create queue %q: MaxMessage %d over the server's limit of %d: %w", name, opts.MaxMessage, limit, ErrTooLarge)
	}
	cfg := jetstream.StreamConfig{
		Name:       queueStream(name),
		Subjects:   []string{queueSubject(name)},
		Retention:  jetstream.WorkQueuePolicy,
		MaxMsgs:    maxMsgs,
		MaxBytes:   -1,
		Discard:    jetstream.DiscardNew,
		MaxMsgSize: -1,
		Storage:    opts.Storage.storage(),
		Replicas:   opts.Storage.replicas(),
		Metadata:   map[string]string{metaKind: "queue", metaMaxDeliver: strconv.Itoa(maxDeliver)},
	}
	if opts.MaxMessage > 0 {
		// The server counts headers in; the client checks the value.
		cfg.MaxMsgSize = int32(opts.MaxMessage + headerRoom)
		cfg.Metadata[metaMaxMessage] = strconv.Itoa(opts.MaxMessage)
	}
	if _, err := ensureStream(ctx, c.js, cfg, true); err != nil {
		return nil, fmt.Errorf("create queue %q: %w", name, err)
	}
	dcfg := cfg
	dcfg.Name, dcfg.Subjects, dcfg.MaxMsgs = deadStream(name), []string{deadSubject(name)}, -1
	dcfg.Metadata = map[string]string{metaKind: "dead-letters", metaMaxDeliver: "-1"}
	if _, err := ensureStream(ctx, c.js, dcfg, false); err != nil {
		return nil, fmt.Errorf("create queue %q: dead-letter stream: %w", name, err)
	}
	ccfg := workersConfig(opts.Storage.ackWait())
	for _, s := range []string{cfg.Name, dcfg.Name} {
		if _, err := ensureConsumer(ctx, c.js, s, ccfg, s == cfg.Name); err != nil {
			return nil, fmt.Errorf("create queue %q: %w", name, err)
		}
	}
	return OpenQueue[T](ctx, c, name, opts)
}

// OpenQueue opens the existing queue name, with the settings it was
// created with; of opts only Codec counts. No such queue: an error
// wrapping os.ErrNotExist.
func OpenQueue[T any](ctx context.Context, c *Conn, name string, opts QueueOptions) (*Queue[T], error) {
	if err := checkName("queue", name); err != nil {
		return nil, err
	}
	q, err := openQueue[T](ctx, c, name, queueStream(name), queueSubject(name), opts.Codec, deadSubject(name))
	if err != nil {
		return nil, fmt.Errorf("open queue %q: %w", name, err)
	}
	return q, nil
}

func openQueue[T any](ctx context.Context, c *Conn, name, stream, subject string, codec mproc.Codec, dead string) (*Queue[T], error) {
	s, err := c.js.Stream(ctx, stream)
	if err != nil {
		return nil, notExist(err)
	}
	cons, err := c.js.Consumer(ctx, stream, workersConsumer)
	if err != nil {
		return nil, notExist(err)
	}
	cfg := s.CachedInfo().Config
	q := &Queue[T]{
		c: c, name: name, stream: stream, subject: subject, cons: cons,
		vc:       newValueCodec[T](codec),
		capacity: int(max(cfg.MaxMsgs, 0)),
		maxMsg:   int(c.nc.MaxPayload() - headerRoom),
		ackWait:  cons.CachedInfo().Config.AckWait,
		dead:     dead,
		held:     map[*Delivery[T]]struct{}{},
	}
	q.life, q.close = context.WithCancel(context.Background())
	if n, err := strconv.Atoi(cfg.Metadata[metaMaxMessage]); err == nil && n > 0 {
		q.maxMsg = min(q.maxMsg, n)
	}
	if n, err := strconv.Atoi(cfg.Metadata[metaMaxDeliver]); err == nil && n > 0 && dead != "" {
		q.maxDeliver = n
	}
	q.wg.Go(q.heartbeats)
	return q, nil
}

func notExist(err error) error {
	if errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("%w: %w", os.ErrNotExist, err)
	}
	return gone(err)
}

func workersConfig(ackWait time.Duration) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       workersConsumer,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxDeliver:    -1, // dead letters are the client's to move (see Queue)
		MaxAckPending: -1,
	}
}

// ensureStream creates the stream of cfg, or finds it. With strict, an
// existing stream must agree with cfg on what the caller set (limits,
// storage, replicas, mproc metadata), or the error wraps os.ErrExist.
func ensureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig, strict bool) (*jetstream.StreamInfo, error) {
	s, err := js.Stream(ctx, cfg.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = js.CreateStream(ctx, cfg)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			s, err = js.Stream(ctx, cfg.Name) // another process won the race
		}
	}
	if err != nil {
		return nil, gone(err)
	}
	info := s.CachedInfo()
	if strict {
		have := info.Config
		var diffs []string
		if have.MaxMsgs != cfg.MaxMsgs {
			diffs = append(diffs, fmt.Sprintf("capacity %d (not %d)", max(have.MaxMsgs, 0), max(cfg.MaxMsgs, 0)))
		}
		if have.Storage != cfg.Storage {
			diffs = append(diffs, fmt.Sprintf("%v storage", have.Storage))
		}
		if have.Replicas != cfg.Replicas {
			diffs = append(diffs, fmt.Sprintf("%d replicas", have.Replicas))
		}
		for k, v := range cfg.Metadata {
			if have.Metadata[k] != v {
				diffs = append(diffs, fmt.Sprintf("%s=%q", k, have.Metadata[k]))
			}
		}
		if len(diffs) > 0 {
			slices.Sort(diffs)
			return nil, fmt.Errorf("stream %s exists with %s: %w", cfg.Name, strings.Join(diffs, ", "), os.ErrExist)
		}
	}
	return info, nil
}

// ensureConsumer creates the durable consumer of cfg on stream, or finds
// it; with strict, an existing one must have cfg's AckWait.
func ensureConsumer(ctx context.Context, js jetstream.JetStream, stream string, cfg jetstream.ConsumerConfig, strict bool) (jetstream.Consumer, error) {
	cons, err := js.Consumer(ctx, stream, cfg.Durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		cons, err = js.CreateConsumer(ctx, stream, cfg)
		if errors.Is(err, jetstream.ErrConsumerExists) {
			cons, err = js.Consumer(ctx, stream, cfg.Durable)
		}
	}
	if err != nil {
		return nil, gone(err)
	}
	if have := cons.CachedInfo().Config.AckWait; strict && have != cfg.AckWait {
		return nil, fmt.Errorf("consumer %s > %s exists with AckWait %v (not %v): %w", stream, cfg.Durable, have, cfg.AckWait, os.ErrExist)
	}
	return cons, nil
}

// Name returns the queue's name.
func (q *Queue[T]) Name() string { return q.name }

// Cap returns the capacity, 0 for an unbounded queue.
func (q *Queue[T]) Cap() int { return q.capacity }

// MaxMessage returns the largest encoded value in bytes.
func (q *Queue[T]) MaxMessage() int { return q.maxMsg }

// Put adds v at the end, waiting while the queue is full until ctx is
// done (the server does not signal room: Put polls, backing off to
// 100 ms). It fails with ErrTooLarge for a value over MaxMessage. When Put
// returns nil the message is stored (by a majority of Replicas); a retry
// after a lost answer cannot store it twice.
func (q *Queue[T]) Put(ctx context.Context, v T) error { return q.put(ctx, v, true) }

// TryPut adds v if there is room now, or fails with ErrFull. ctx bounds
// the round trip.
func (q *Queue[T]) TryPut(ctx context.Context, v T) error { return q.put(ctx, v, false) }

func (q *Queue[T]) put(ctx context.Context, v T, wait bool) error {
	if q.isClosed() {
		return fmt.Errorf("queue %q: %w", q.name, os.ErrClosed)
	}
	data, err := q.vc.encode(v)
	if err != nil {
		return fmt.Errorf("queue %q: %w", q.name, err)
	}
	if len(data) > q.maxMsg {
		return fmt.Errorf("queue %q: message of %d bytes, maximum %d: %w", q.name, len(data), q.maxMsg, ErrTooLarge)
	}
	msg := &nats.Msg{Subject: q.subject, Data: data, Header: nats.Header{hdrMsgID: []string{nuid.Next()}}}
	ctx, cancel := q.bound(ctx)
	defer cancel()
	for backoff := minBackoff; ; backoff = min(2*backoff, maxBackoff) {
		_, err := publish(ctx, q.c.js, msg)
		switch {
		case err == nil:
			return nil
		case isFull(err) && !wait:
			return fmt.Errorf("queue %q: %w", q.name, ErrFull)
		case isFull(err):
			if sleep(ctx, backoff) != nil {
				if q.isClosed() || q.c.life.Err() != nil {
					return fmt.Errorf("queue %q: %w", q.name, os.ErrClosed)
				}
				return fmt.Errorf("queue %q: full: %w", q.name, ctx.Err())
			}
		case isTooLarge(err):
			return fmt.Errorf("queue %q: %w: %w", q.name, ErrTooLarge, err)
		default:
			return fmt.Errorf("queue %q: put: %w", q.name, err)
		}
	}
}

// Get removes the first value from the waiting ones and returns it,
// waiting until ctx is done while there is none. The message stays held
// by this handle until TaskDone (see Queue): a process that dies first
// gives it to another consumer.
func (q *Queue[T]) Get(ctx context.Context) (T, error) { return q.get(ctx, true) }

// TryGet is Get without waiting: ErrEmpty when no message is ready now.
// ctx bounds the round trip.
func (q *Queue[T]) TryGet(ctx context.Context) (T, error) { return q.get(ctx, false) }

func (q *Queue[T]) get(ctx context.Context, wait bool) (T, error) {
	d, err := q.receive(ctx, wait)
	if err != nil {
		var zero T
		return zero, err
	}
	q.mu.Lock()
	q.fifo = append(q.fifo, d)
	q.mu.Unlock()
	return d.Value, nil
}

// TaskDone says that the oldest value Get returned through this handle
// and not yet done has been handled: its message is acknowledged, and
// never delivered again once TaskDone returns nil (ctx bounds the wait
// for the server's confirmation; on failure the value stays the oldest
// held, and TaskDone may be called again). With no such value it fails
// with ErrTooManyTaskDone. Goroutines that share a handle and finish out
// of order should use Receive and Done instead.
func (q *Queue[T]) TaskDone(ctx context.Context) error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return fmt.Errorf("queue %q: %w", q.name, os.ErrClosed)
	}
	if len(q.fifo) == 0 {
		q.mu.Unlock()
		return fmt.Errorf("queue %q: %w", q.name, ErrTooManyTaskDone)
	}
	d := q.fifo[0]
	q.fifo = q.fifo[1:]
	delete(q.held, d)
	q.mu.Unlock()
	if err := ack(ctx, d.msg); err != nil {
		q.hold(d, true)
		return fmt.Errorf("queue %q: ack: %w", q.name, err)
	}
	return nil
}

// Receive is Get with the receipt: the *Delivery's Done or Retry ends it,
// and TaskDone does not count it.
func (q *Queue[T]) Receive(ctx context.Context) (*Delivery[T], error) { return q.receive(ctx, true) }

func (q *Queue[T]) receive(ctx context.Context, wait bool) (*Delivery[T], error) {
	ctx, cancel := q.bound(ctx)
	defer cancel()
	for {
		m, err := pull(ctx, q.cons, wait)
		if q.isClosed() || q.c.life.Err() != nil {
			if m != nil {
				m.Nak()
			}
			return nil, fmt.Errorf("queue %q: %w", q.name, os.ErrClosed)
		}
		if err != nil {
			return nil, fmt.Errorf("queue %q: get: %w", q.name, err)
		}
		if m == nil {
			return nil, fmt.Errorf("queue %q: %w", q.name, ErrEmpty)
		}
		md, err := m.Metadata()
		if err != nil {
			m.Nak()
			return nil, fmt.Errorf("queue %q: get: %w", q.name, err)
		}
		if q.maxDeliver > 0 && md.NumDelivered > uint64(q.maxDeliver) {
			q.bury(m, md, fmt.Sprintf("delivered %d times without being done", md.NumDelivered-1))
			continue
		}
		v, err := q.vc.decode(m.Data())
		if err != nil {
			if q.dead == "" {
				m.Nak()
				return nil, fmt.Errorf("queue %q: message %d: %w", q.name, md.Sequence.Stream, err)
			}
			q.bury(m, md, err.Error())
			return nil, fmt.Errorf("queue %q: message %d moved to the dead letters: %w", q.name, md.Sequence.Stream, err)
		}
		d := &Delivery[T]{Value: v, q: q, msg: m, attempt: int(md.NumDelivered)}
		if !q.hold(d, false) {
			return nil, fmt.Errorf("queue %q: %w", q.name, os.ErrClosed)
		}
		return d, nil
	}
}

// bury moves m to the dead-letter queue: a copy first, identified by
// the message's own id (or its sequence), then the ack. If either step
// fails the message is given back, for the next consumer to bury.
func (q *Queue[T]) bury(m jetstream.Msg, md *jetstream.MsgMetadata, reason string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*attemptTimeout)
	defer cancel()
	id := m.Headers().Get(hdrMsgID)
	if id == "" {
		id = q.stream + ":" + strconv.FormatUint(md.Sequence.Stream, 10)
	}
	h := nats.Header{}
	for k, v := range m.Headers() {
		h[k] = v
	}
	h.Set(hdrMsgID, "dead:"+id)
	h.Set("Mproc-Dead-Reason", reason)
	h.Set("Mproc-Dead-Sequence", strconv.FormatUint(md.Sequence.Stream, 10))
	dm := &nats.Msg{Subject: q.dead, Data: m.Data(), Header: h}
	if _, err := publish(ctx, q.c.js, dm); err != nil {
		m.Nak()
		return
	}
	if ack(ctx, m) != nil {
		m.Nak()
	}
}

// hold records d as held here (at the front of the TaskDone order if
// front); if the handle is closed, it gives the message back and returns
// false.
func (q *Queue[T]) hold(d *Delivery[T], front bool) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		d.msg.Nak()
		return false
	}
	q.held[d] = struct{}{}
	if front {
		q.fifo = slices.Insert(q.fifo, 0, d)
	}
	return true
}

// release forgets d: os.ErrClosed after Close (which gave it back),
// ErrTooManyTaskDone if it is done or given back already.
func (q *Queue[T]) release(d *Delivery[T]) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return os.ErrClosed
	}
	if _, ok := q.held[d]; !ok {
		return ErrTooManyTaskDone
	}
	delete(q.held, d)
	if i := slices.Index(q.fifo, d); i >= 0 {
		q.fifo = slices.Delete(q.fifo, i, i+1)
	}
	return nil
}

// heartbeats tells the server, three times per AckWait, that the held
// messages are still being worked on, so that only a dead (or cut-off)
// holder loses them.
func (q *Queue[T]) heartbeats() {
	t := time.NewTicker(heartbeatEvery(q.ackWait))
	defer t.Stop()
	var ds []*Delivery[T]
	for {
		select {
		case <-q.life.Done():
			return
		case <-t.C:
		}
		q.mu.Lock()
		ds = ds[:0]
		for d := range q.held {
			ds = append(ds, d)
		}
		q.mu.Unlock()
		for _, d := range ds {
			d.msg.InProgress()
		}
	}
}

// bound returns ctx, also cancelled by the handle's Close and the
// connection's, so that blocked calls end with either.
func (q *Queue[T]) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return within(ctx, q.life, q.c.life)
}

func (q *Queue[T]) isClosed() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closed
}

// Len returns the number of messages in the queue: waiting, and
// delivered but not yet done (JoinableQueue's Unfinished, which is
// what capacity bounds).
func (q *Queue[T]) Len(ctx context.Context) (int, error) {
	s, err := q.c.js.Stream(ctx, q.stream)
	if err != nil {
		return 0, fmt.Errorf("queue %q: %w", q.name, notExist(err))
	}
	return int(s.CachedInfo().State.Msgs), nil
}

// QueueStats counts a queue's messages.
type QueueStats struct {
	Waiting int // not delivered yet
	Held    int // delivered, not done
	Dead    int // in the dead-letter queue
}

// Stats returns the queue's counts, each as the server had it at one
// moment of the call.
func (q *Queue[T]) Stats(ctx context.Context) (QueueStats, error) {
	info, err := q.cons.Info(ctx)
	if err != nil {
		return QueueStats{}, fmt.Errorf("queue %q: %w", q.name, notExist(err))
	}
	st := QueueStats{Waiting: int(info.NumPending), Held: info.NumAckPending}
	if q.dead != "" {
		s, err := q.c.js.Stream(ctx, deadStream(q.name))
		if err != nil {
			return st, fmt.Errorf("queue %q: dead letters: %w", q.name, notExist(err))
		}
		st.Dead = int(s.CachedInfo().State.Msgs)
	}
	return st, nil
}

// Join waits until every message put, by any process, has been done (or
// moved to the dead letters), or ctx is done. It polls the stream,
// backing off to 100 ms. A message whose consumer died waits for its
// redelivery and counts as unfinished until then.
func (q *Queue[T]) Join(ctx context.Context) error {
	for backoff := minBackoff; ; backoff = min(2*backoff, maxBackoff) {
		n, err := q.Len(ctx)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		if sleep(ctx, backoff) != nil {
			return fmt.Errorf("queue %q: join: %d messages left: %w", q.name, n, ctx.Err())
		}
	}
}

// DeadLetters opens the queue's dead-letter queue: a queue of the same
// values without capacity or delivery limit, from which they can be
// inspected, done, or put back.
func (q *Queue[T]) DeadLetters(ctx context.Context) (*Queue[T], error) {
	if q.dead == "" {
		return nil, fmt.Errorf("queue %q is a dead-letter queue: %w", q.name, os.ErrInvalid)
	}
	d, err := openQueue[T](ctx, q.c, q.name, deadStream(q.name), q.dead, q.vc.codec, "")
	if err != nil {
		return nil, fmt.Errorf("queue %q: dead letters: %w", q.name, err)
	}
	return d, nil
}

// Close releases this handle: messages it holds go back to the queue at
// once, for other consumers (each such delivery counts toward
// MaxDeliver), and its blocked calls return os.ErrClosed. The queue and
// its other handles are unaffected. A second Close returns os.ErrClosed.
func (q *Queue[T]) Close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return os.ErrClosed
	}
	q.closed = true
	held := q.held
	q.held, q.fifo = nil, nil
	q.mu.Unlock()
	q.close()
	q.wg.Wait()
	for d := range held {
		d.msg.Nak()
	}
	return nil
}

// Remove deletes the queue and its dead letters for every process; their
// handles fail from then on.
func (q *Queue[T]) Remove(ctx context.Context) error {
	var errs []error
	for _, s := range []string{q.stream, deadStream(q.name)} {
		if q.dead == "" && s != q.stream {
			continue
		}
		if err := q.c.js.DeleteStream(ctx, s); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove queue %q: %w", q.name, err)
	}
	return nil
}
