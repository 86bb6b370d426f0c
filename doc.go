// Package mproc is multi-process programming for Go on Linux: Go functions
// in child processes, and shared objects between processes, with the data
// path in shared memory.
//
// # Processes
//
// A program that starts children calls [Main] first in main. A function
// registered at package level with [Register] runs in a child — the same
// binary, re-executed — with [Func.Start]; the child is a [*Process] with
// Wait, Terminate, Kill and Signal, in the manner of os/exec:
//
//	var square = mproc.Register("square", func(ctx context.Context, n int) error {
//		fmt.Println(n * n)
//		return nil
//	})
//
//	func main() {
//		mproc.Main()
//		p, err := square.Start(ctx, 7, mproc.ProcOptions{})
//		...
//		err = p.Wait(ctx)
//	}
//
// The argument crosses with encoding/gob. Handles such as [*SharedMemory]
// may be part of it: their file descriptors travel with it over the control
// socket that parent and child share, and the child finds them mapped.
//
// How a child ends reaches the parent with its identity: an error that
// matches an mproc sentinel or a context error arrives as a [*RemoteError]
// that still matches it with errors.Is; a panic as a [*PanicError] with the
// child's stack; os.Exit and death by a signal as an [*ExitError].
//
// Children die with their parent, however the parent dies (SIGKILL
// included): the child sees its control socket close, its context is
// cancelled with [ErrParentDied], it passes the news to its own children,
// and it exits one grace period later. [ProcOptions].Detached opts out.
// Every child is reaped, waited for or not. [StartCommand] binds an external
// program the same way and hands it mproc descriptors.
//
// # Shared memory
//
// [SharedMemory] is a block of memory shared by processes: anonymous
// ([NewSharedMemory]) for children, or named ([CreateSharedMemory],
// [OpenSharedMemory]) for unrelated processes. Every shared object lives in
// a segment that starts with a versioned, checksummed header; opening a
// file that is not a valid segment fails with [ErrCorrupt], [ErrVersion] or
// [ErrKind], never with a crash or a hang.
//
// # Synchronisation
//
// [Lock], [RLock], [RWMutex], [Semaphore], [BoundedSemaphore], [Event],
// [Cond] and [Barrier] work across processes on futexes in shared memory,
// with New (anonymous, for children), Create and Open (named) constructors.
// Every blocking call takes a context. A process that dies holding a lock
// does not hang the others: the next owner gets the lock and
// [ErrOwnerDead], and repairs the state before [Lock.MarkConsistent]. A
// [BoundedSemaphore] gives back the units of a holder that died, and a
// [Barrier] breaks when a waiting party dies. [Value] and [Array] hold
// pointer-free values with atomic access; [MapFile] maps a file.
//
// # Queues
//
// [Queue] is a bounded multi-producer multi-consumer queue in shared
// memory; [SimpleQueue], [JoinableQueue], [LIFOQueue] and [PriorityQueue]
// complete Python's set. A process that dies in the middle of a put or a
// get never stalls the others, and no message is delivered twice or torn.
//
// # Caveats
//
//   - Linux only. Children are re-executions of /proc/self/exe, so the
//     binary must call [Main] first, and register every function at package
//     level, before main runs.
//   - The argument of Start is encoded with gob: unexported fields do not
//     cross, and interface values need gob.Register.
//   - A child function that ignores its context is killed with SIGKILL one
//     grace period ([DefaultGracePeriod]) after Terminate or its parent's
//     death.
//   - Named shared objects are files in /dev/shm, created 0600: they
//     outlive every process until removed.
package mproc
