// Package cluster is mproc across machines: a Queue and a process Pool on
// NATS JetStream, with the surface of mproc.JoinableQueue and pool.Pool
// where a network allows it. It is a module of its own (mproc/cluster),
// so that mproc itself never requires NATS.
//
//	c, err := cluster.Connect(ctx, cluster.Options{})             // an embedded server
//	c, err := cluster.Connect(ctx, cluster.Options{URLs: []string{"nats://host:4222"}})
//	defer c.Close()
//
//	q, err := cluster.CreateQueue[Job](ctx, c, "jobs", 1000, cluster.QueueOptions{})
//	err = q.Put(ctx, job)
//	job, err := q.Get(ctx)  // held by this process ...
//	err = q.TaskDone(ctx)   // ... until done: at least once
//
//	var square = cluster.Register("square", func(ctx context.Context, x int) (int, error) { return x * x, nil })
//	go cluster.Serve(ctx, c, cluster.ServeOptions{})          // in any number of worker processes
//	p, err := cluster.OpenPool(ctx, c, cluster.DefaultPool, cluster.PoolOptions{})
//	r, err := square.Submit(p, 7).Result(ctx)
//	rs, err := square.Map(ctx, p, xs)
//
// # Connecting
//
// Connect takes NATS URLs and credentials (a .creds file, user and
// password, a token, TLS), or, without URLs, starts an embedded
// nats-server with JetStream in this process — in a millisecond or two,
// with a temporary store that Close removes, reachable by this process
// alone unless Options.Listen opens a port for others (then with a token
// in the URL it gives). Every call that talks to the server takes a
// context; Connect's bounds the attempt, and an unreachable server gives
// ErrUnreachable by then.
//
// # Queues
//
// A Queue is a JetStream work-queue stream (MPQ_<name>, retention
// WorkQueue, MaxMsgs = capacity with DiscardNew: a full queue refuses a
// put, ErrFull) with one durable pull consumer that every handle of
// every process shares. Delivery is at least once: Get hands a message to
// this handle, which keeps telling the server it works on it, and
// TaskDone (or Done on a Receive's *Delivery) acknowledges it, waiting
// for the server's confirmation. A consumer that dies holding messages
// loses them to others after AckWait. A message delivered MaxDeliver
// times without being done moves to a dead-letter queue (MPD_<name>) on
// its next delivery, instead of blocking the queue; see Queue.
//
// # Pools
//
// Register a function at package level, in the submitting program and in
// every worker program (cmd/worker is one, with demo functions); workers
// run Serve. Submit publishes a task to the pool's work-queue stream;
// a worker pulls it, runs it, publishes the result to the submitter's own
// subject of the pool's result stream and then acknowledges the task. A
// worker that dies mid-task loses the task to another worker after
// AckWait, up to PoolOptions.MaxDeliver starts; then the future fails with
// ErrWorkerDied (MaxDeliver 1: at the first death, as in pool.Pool).
//
// # Errors
//
// The queue and pool sentinels are mproc's and pool's own (ErrFull,
// ErrEmpty, ErrTooLarge, ErrWorkerDied, ...). A task's error reaches its
// future as an *mproc.RemoteError that still matches, with errors.Is,
// every registered sentinel the original matched: mproc's, the context
// and os errors, and the program's own (RegisterError) — by their text,
// since worker and submitter may be different binaries. A panic arrives
// as an *mproc.PanicError with the worker's stack.
//
// # Caveats
//
//   - Every Get, TaskDone, Put and task is a network round trip at least
//     (tens of microseconds on an in-process connection): for work among
//     the processes of one machine, mproc.Queue and pool.Pool are two
//     orders of magnitude faster (BENCHMARKS.md).
//   - At least once: a consumer or worker that dies after its work but
//     before its acknowledgement has that work done again. Make tasks
//     idempotent, or set MaxDeliver 1 (a death then fails the task).
//   - Capacity counts messages put and not yet done, held ones included.
//   - There is no Shutdown: a queue ends for everyone with Remove.
//   - Values cross machines, so only []byte and strings travel raw;
//     everything else is encoded by the codec, even fixed-size values.
//   - Messages are limited by the server's max_payload (1 MiB by
//     default).
package cluster
