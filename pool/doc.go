// Package pool runs registered Go functions in a pool of worker
// processes: Python's multiprocessing.Pool and concurrent.futures'
// ProcessPoolExecutor.
//
//	var square = pool.Register("square", func(ctx context.Context, x int) (int, error) { return x * x, nil })
//
//	func main() {
//		mproc.Main()
//		p, err := pool.New(ctx, pool.Options{Workers: 4})
//		...
//		r, err := square.Submit(p, 7).Result(ctx)
//		rs, err := square.Map(ctx, p, xs)
//		p.Close()
//		p.Wait(ctx)
//	}
//
// # How it works
//
// Every pool's workers run one mproc function, registered by this package,
// that dispatches each task message to the function registered under the
// name it carries; Register therefore must run at package level, in the
// parent and in the workers alike. Each worker has its own task queue and
// control queue (mproc.Queue), new with every worker process; all workers
// put their results into one result queue that a goroutine of the parent
// reads. The parent keeps two tasks outstanding per worker, and sends the
// rest as workers free up; four for a worker whose last task was quick
// (under a millisecond), and eight of a Map's chunks. A Map's worker of
// slow tasks puts a result without waking the parent while two more tasks
// wait in its queue: the parent, woken about once per seven results
// instead of once per result, takes less of the CPUs the workers need.
// When nothing is left to send and a worker is idle, the parent takes a
// task that waits behind a running one out of that worker's queue and
// gives it to the idle one: a long task holds back no other.
//
// A worker stores the id of the task it runs in a shared array before it
// starts it and clears it after it has put the result. When a worker
// process ends, the parent puts an exit message into the result queue
// behind whatever that worker had committed; reading it, the parent knows
// every result of that process is in, so the id in the array is exactly the
// task that died with it (ErrWorkerDied), and the tasks sent to the worker
// but not started are sent again.
//
// # Caveats
//
// A chunk of Map is one task: a death fails the whole chunk. Arguments and
// results are encoded (mproc.DefaultCodec, or their memory for plain
// fixed-size values; see WithCodec) and limited to
// Options.MaxMessage; handles (queues, locks) cannot travel in them: give
// them to the workers by name (mproc.OpenQueue) or through an initializer
// that opens them.
package pool
