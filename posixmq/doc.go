// Package posixmq is POSIX message queues (mq_overview(7)) for Go on
// Linux: named, kernel-held queues of byte messages with priorities,
// shared by any processes that know the name, in any language.
//
// A [Queue] is opened with [Open], like a file: a name ("/jobs"), an
// access mode, O_CREATE and O_EXCL, and for a new queue its [Attr] (how
// many messages, how large) and permission bits. [Queue.Send] and
// [Queue.Receive] wait, bounded by a context, while the queue is full or
// empty; [Queue.TrySend] and [Queue.TryReceive] fail with [ErrFull] and
// [ErrEmpty] instead. Messages come out highest priority first, in order of
// sending within a priority. [Queue.Notify] calls a function when a message
// is there. [Unlink] removes the name; the queue and its messages outlive
// every process until then, and a process that dies mid-conversation takes
// nothing with it: a message is in the queue whole, or not at all.
//
//	q, err := posixmq.Open("/jobs", posixmq.O_RDWR|posixmq.O_CREATE, &posixmq.Attr{MaxMsgs: 10, MsgSize: 1024}, 0o600)
//	...
//	err = q.Send(ctx, []byte("hello"), 5)
//	buf := make([]byte, 1024)
//	n, prio, err := q.Receive(ctx, buf)
//
// # How waiting works
//
// The queue descriptor is opened non-blocking and put in the Go runtime's
// poller, as sockets are. A Send on a full queue or a Receive on an empty
// one parks its goroutine until the descriptor is writable or readable
// (the kernel wakes pollers on every send and receive) and tries again, so
// no OS thread sits in mq_timedsend or mq_timedreceive, and a context
// ends a wait at once (through the poller's deadline). Goroutines sending
// on one Queue wait their turn, as do receivers; each may leave when its
// own context ends. Notify uses the poller too, not mq_notify(2); see
// [Queue.Notify] for why.
//
// # Limits
//
// The kernel bounds queues with /proc/sys/fs/mqueue/msg_max (messages per
// queue), msgsize_max (bytes per message), queues_max (queues per IPC
// namespace) and RLIMIT_MSGQUEUE (bytes of all of a user's queues), and
// reports a refusal only as EINVAL, ENOSPC or EMFILE. Open reads the limits
// back and returns a [*LimitError] that names the one passed: "MaxMsgs 11
// exceeds /proc/sys/fs/mqueue/msg_max = 10".
//
// # Caveats
//
//   - Receive needs a buffer of the queue's whole MsgSize (see [Queue.Attr])
//     even for short messages: the kernel's rule.
//   - Attributes are fixed at creation: opening an existing queue with
//     O_CREATE (without O_EXCL) ignores attr and perm.
//   - The kernel's mq_notify registration, if another program holds one,
//     is not disturbed by Notify; but a message it reports may be one a
//     Go receiver takes first, as for any two receivers.
//   - Queues are not handles for mproc's Start: a child opens the queue by
//     name.
package posixmq
