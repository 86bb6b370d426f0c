// Package failpoint marks the steps where shared state changes — a ring's
// claim and publish, a lock's hand-over, a pool's task hand-off — so that
// a test can stop a process exactly there and kill it.
//
// A normal build compiles Hit to nothing (failpoint_off.go): the calls cost
// nothing, as BenchmarkHit shows. Built with the tag mprocfail, Hit reads
// the process's MPROC_FAILPOINT environment variable once:
//
//	MPROC_FAILPOINT=name=action[,name=action...]
//
// where action is kill (SIGKILL this process), stop (SIGSTOP it), or
// either followed by @N to act on the Nth hit of that name only (1 = the
// first). A name not listed does nothing. The torture tests (go test
// -tags mprocfail -run Torture) start children with it set.
package failpoint
