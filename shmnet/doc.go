// Package shmnet is a net.Listener and net.Conn whose bytes travel through
// shared memory, so that gRPC, net/http, net/rpc and anything else written
// against package net run unchanged between two processes of one machine,
// with a copy into and a copy out of shared memory in place of a socket's
// two system calls and two copies through the kernel.
//
//	ln, err := shmnet.Listen("/run/app/rpc.sock", &shmnet.Options{Key: key})
//	go http.Serve(ln, handler)
//
//	c, err := shmnet.Dial(ctx, "/run/app/rpc.sock", &shmnet.Options{Key: key})
//
//	// gRPC, or anything that takes a dial function:
//	dial := func(ctx context.Context, _ string) (net.Conn, error) {
//		return shmnet.Dial(ctx, "/run/app/rpc.sock", &shmnet.Options{Key: key})
//	}
//	cc, err := grpc.NewClient("passthrough:///shm", grpc.WithContextDialer(dial), ...)
//
// # How a connection is made
//
// The Listener listens on a Unix socket, the rendezvous, made with
// [mproc.Listen] (socket file 0600, removed by Close). A Dial connects to
// it; with [Options.Key] set, both sides prove the key with mproc's mutual
// HMAC handshake. The Listener's Accept then creates one anonymous shared
// segment (a memfd sealed against resizing: it has no name in /dev/shm and
// disappears with its last user) holding two single-producer
// single-consumer byte rings, one per direction, and sends its descriptor
// over the socket (SCM_RIGHTS). The dialer validates the segment, both map
// it, and both keep the socket open for the life of the connection as a
// liveness channel. The layout, who writes which word, and what a survivor
// does when its peer dies are specified in layout.go.
//
// # Waiting and liveness
//
// A Read with nothing to read, or a Write with no room, polls briefly
// (futex.SpinGo: for futex.SpinFor, letting this process's other
// goroutines run and yielding the CPU between polls) and then sleeps on a
// futex word in the segment. The other side wakes it only if it announced
// its sleep, so a transfer that never waits makes no system call.
//
// A goroutine per connection waits on the rendezvous socket in Go's poller;
// when the kernel hangs it up because the peer died (even by SIGKILL), it
// fails the waiting Read or Write with ErrPeerGone, and every later one,
// within a millisecond or so. As a backstop, sleeps last at most a slice of
// 25 ms, after which the sleeper checks the peer's owner token itself. An
// idle connection costs no CPU beyond those wake-ups, about 40 a second per
// waiting call.
//
// # Caveats
//
//   - A waiting Read or Write sleeps in the futex system call, which holds
//     an OS thread for as long as it waits (a socket's waiter parks its
//     goroutine in Go's poller instead). A server with many idle
//     connections, each with a Read waiting, has as many threads; Go
//     stops a program at 10 000 (runtime/debug.SetMaxThreads).
//   - Both processes must run on one machine and share memory; the
//     rendezvous is a Unix socket, so they need the socket file.
//   - A connection holds 2 × Options.RingSize of shared memory (1 MiB each
//     way by default), touched as the bytes pass, and two descriptors,
//     until Close.
//   - Dial returns once the Listener's Accept has taken the connection,
//     not when the kernel has; a server that stops calling Accept makes
//     Dials time out (Options.HandshakeTimeout).
//   - A process that is alive but stopped (SIGSTOP) or stuck is waited
//     for, as a socket's peer would be.
package shmnet
