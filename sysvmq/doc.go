// Package sysvmq is System V message queues: typed messages between any
// processes on the machine, through the kernel (msgget, msgsnd, msgrcv,
// msgctl).
//
// A queue is a kernel object named by a key and identified by a number.
// [Get] opens or creates one: by a key that unrelated programs agree on,
// often derived from a file with [Key] (ftok), or [IPCPrivate] for a new
// queue that only processes told its identifier can use ([Queue.ID],
// [FromID], or a [*Queue] in the argument of mproc's Start):
//
//	q, err := sysvmq.Get(sysvmq.IPCPrivate, 0, 0o600)
//	...
//	defer q.Remove()
//	err = q.Send(ctx, 2, []byte("job"))
//	n, typ, err := q.Receive(ctx, 0, buf)
//
// # Messages and types
//
// A message is a type, a positive int64, and up to kernel.msgmax bytes of
// text (8192 by default). [Queue.Receive] chooses by type: 0 takes the
// first message, a positive filter the first of that type, a negative one
// the first of the lowest type up to its absolute value, so types serve as
// channels or as priorities ([ReceiveOptions].Except takes the first of
// any other type). A queue holds at most [Info].MaxBytes bytes of text,
// and as many messages (kernel.msgmnb, 16384 by default; see
// [Queue.SetMaxBytes]); Send waits while it is full. [Queue.TrySend] and
// [Queue.TryReceive] do not wait: they fail with [ErrFull] and [ErrEmpty].
//
// A message longer than Receive's buffer is not received: the error is a
// [*TooLongError] naming both lengths (msgrcv's E2BIG, MSG_NOERROR being
// off), and the message stays queued for a larger buffer.
// [ReceiveOptions].Truncate receives it cut instead.
//
// # How cancellation works
//
// Every blocking call takes a context. A System V queue is not a file
// descriptor, so neither poll(2) nor the Go netpoller can watch it, and
// the kernel has no timed msgrcv. A call that must wait (it tries with
// IPC_NOWAIT first) therefore blocks in msgsnd or msgrcv on its own OS
// thread, locked for the wait, and cancellation interrupts that thread:
// when ctx is done, a context.AfterFunc sends SIGURG to it with tgkill(2).
// msgsnd and msgrcv are never restarted after a handled signal
// (signal(7)), so the call fails with EINTR and returns ctx's error. The
// signal is repeated (20 µs, doubling to 1 ms apart) until the thread has
// left, which covers a signal that lands just before the thread enters the
// kernel. A message that arrives as the signal does is not lost: the
// kernel hands it over rather than failing, and Receive returns it; a
// cancelled Send has sent nothing.
//
// SIGURG is the Go runtime's own preemption signal: its handler is always
// installed and spurious ones are expected by design, so the runtime and
// other code are unaffected (a program that asked os/signal for SIGURG
// sees these too, as it sees the runtime's). If SIGURG is ignored
// (signal.Ignore) the kernel would drop the signal without interrupting
// anything, so before every wait the handler is checked, and without one
// the call instead polls with IPC_NOWAIT, sleeping 50 µs doubling to 5 ms
// between tries.
//
// Measured on a 2-vCPU virtual machine (the tests log these figures):
//
//   - a cancelled call returns 20–250 µs after cancel (median), never
//     more than 4 ms in the tests' runs; the tests require 20 ms;
//   - while waiting it costs no CPU: 8 blocked Receives for a second
//     cost nothing measurable above an idle process (the polling fallback:
//     1–3% of a core);
//   - a 64-byte request and reply between two Go processes take 83 µs
//     with a cancellable context, 76 µs with one that cannot be cancelled
//     (no thread locking, no interrupter), 1.2 ms when both poll; C takes
//     21–29 µs on the same machine. A message sent and received without
//     waiting costs 4 µs (two system calls).
//
// The cost is a thread: each waiting call holds an OS thread, as any
// blocking system call in Go does (debug.SetMaxThreads bounds them).
//
// # Errors
//
// Failures are [*Error] values naming the operation and the queue, and
// match with errors.Is: [ErrFull], [ErrEmpty] (returned unwrapped),
// [ErrRemoved] (also os.ErrNotExist) when the queue was removed, even while
// waiting, [ErrBufferTooSmall], [ErrTooLarge], [ErrInvalid] (also
// os.ErrInvalid), context errors, and os.ErrPermission, os.ErrExist,
// os.ErrNotExist from the kernel's EACCES/EPERM, EEXIST and ENOENT. The
// mproc sentinels among them keep their identity when a child returns them
// to its parent.
//
// # Other languages
//
// The kernel's message format is a native-endian C long (the type) followed
// by the text, so C programs (msgsnd/msgrcv) and Perl (its built-in
// msgsnd/msgrcv and IPC::SysV's ftok, which the tests use as a peer and to
// check [Key]) share queues with Go. Python's standard library has no
// System V message queues (the third-party sysv_ipc module does), so
// there is no Python interoperability test.
//
// # Caveats
//
//   - A queue outlives every process until [Queue.Remove] (or ipcrm, or a
//     reboot): a program that dies without removing its queues leaves them
//     behind (ipcs -q lists them). There is nothing to close.
//   - There is no acknowledgement: a message received by a process that
//     dies before handling it is gone. Messages are whole: a process killed
//     in msgsnd or msgrcv never leaves part of one.
//   - Any process of the IPC namespace may use a queue its permissions
//     allow, including removing it (owner or creator) and reading messages
//     not meant for it; keys from [Key] can collide (24 bits of device and
//     inode), and two programs may pick the same key by chance.
//   - Receive copies each message twice (from the kernel into a pooled
//     buffer, then into the caller's) and Send once, because the kernel
//     wants the type and the text in one buffer.
//   - Linux on amd64, arm64, riscv64 and loong64: the other architectures
//     lay out struct msqid64_ds differently, and are left out.
package sysvmq
