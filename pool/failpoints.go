package pool

// Failpoints (package internal/failpoint) at the steps of a task's
// hand-off, in the order a task passes them. A build with -tags mprocfail
// can kill the process there (torture_test.go); a normal build compiles
// the calls to nothing. What a death at each one costs is Pool's promise:
//
//   - FailTaskSent (the parent): the message is in the worker's task
//     queue and the parent has not yet recorded it as sent. The parent is
//     the one that dies there: its workers must end with it.
//   - FailTaskReceived (a worker): the worker has taken the message and its
//     slot does not name the task yet. A death costs nothing: the task is
//     sent again.
//   - FailTaskStarting: the slot names the task, which has not run. The
//     task fails with ErrWorkerDied, never run.
//   - FailTaskRan: the task has run and its result is not in the result
//     queue. The task fails with ErrWorkerDied, run once.
//   - FailTaskReported: the result is in the result queue and the slot
//     still names the task. The result is delivered, once.
const (
	FailTaskSent     = "pool.task.sent"
	FailTaskReceived = "pool.task.received"
	FailTaskStarting = "pool.task.starting"
	FailTaskRan      = "pool.task.ran"
	FailTaskReported = "pool.task.reported"
)
