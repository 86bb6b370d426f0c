//go:build mprocfail

package mproc_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"mproc"
	"mproc/internal/failpoint"
	"mproc/internal/psync"
	"mproc/internal/ring"
	"mproc/internal/testenv"
)

// The torture tests (issue 18): for each scenario, N iterations of real
// processes, one of which is killed with SIGKILL at a failpoint (package
// internal/failpoint, built in with -tags mprocfail) on a random hit; the
// survivors check self-verifying records (testenv.Record: sequence number
// and checksum)
// and that the object still works. One line per scenario:
//
//	go test -tags mprocfail -run Torture -torture.n 1000 .
var tortureN = flag.Int("torture.n", 20, "iterations per torture scenario")

type tortureArg struct {
	Data, Report *mproc.Queue[[]byte]
	N            int
}

var (
	tortureProducer = mproc.Register("torture-producer", func(ctx context.Context, a tortureArg) error {
		for seq := uint64(1); seq <= uint64(a.N); seq++ {
			if err := a.Data.Put(ctx, testenv.Record(seq)); err != nil {
				return err
			}
		}
		return nil
	})
	tortureConsumer = mproc.Register("torture-consumer", func(ctx context.Context, a tortureArg) error {
		for range a.N {
			b, err := a.Data.Get(ctx)
			if err != nil {
				return err
			}
			if err := a.Report.Put(ctx, b); err != nil {
				return err
			}
		}
		return nil
	})
)

// tally counts what an iteration's survivors saw.
type tally struct {
	iterations, survived, lost, dup, torn, hangs int
	// taken counts messages a killed consumer took with it, which its
	// scenario allows (at most once); lost counts any other.
	taken       int
	maxRecovery time.Duration
}

func (t *tally) String() string {
	return fmt.Sprintf("%d of %d survived; lost %d, dup %d, torn %d, hangs %d, max recovery %v; taken by the killed consumer %d",
		t.survived, t.iterations, t.lost, t.dup, t.torn, t.hangs, t.maxRecovery.Round(time.Millisecond), t.taken)
}

// seen records the sequence numbers received and reports duplicates and
// torn messages into t.
type seen map[uint64]int

func (s seen) add(t *tally, b []byte) {
	seq, ok := testenv.CheckRecord(b)
	if !ok {
		t.torn++
		return
	}
	if s[seq]++; s[seq] == 2 {
		t.dup++
	}
}

func TestTortureQueue(t *testing.T) {
	if !failpoint.Enabled {
		t.Fatal("built without -tags mprocfail")
	}
	scenarios := []struct {
		name, point string
		producer    bool
		// mayLose is how many messages a death there may lose: a
		// consumer's claimed message goes with it (at most once).
		mayLose int
	}{
		{"Q1 producer killed after claim", ring.FailPutClaimed, true, 0},
		{"Q2 producer killed after filling", ring.FailPutFilled, true, 0},
		{"Q3 producer killed after publishing", ring.FailPutPublished, true, 0},
		{"Q4 consumer killed after claim", ring.FailGetClaimed, false, 1},
		{"Q5 consumer killed after reading", ring.FailGetRead, false, 1},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			var tl tally
			for range *tortureN {
				tortureQueueOnce(t, sc.point, sc.producer, sc.mayLose, &tl)
			}
			t.Logf("%s: %v", sc.name, &tl)
			if tl.survived != tl.iterations || tl.lost+tl.dup+tl.torn+tl.hangs > 0 {
				t.Errorf("%s: %v", sc.name, &tl)
			}
		})
	}
}

// tortureQueueOnce runs one iteration: a child producer (or consumer) is
// killed at point on a random hit while this process consumes (or
// produces); then this process drains the queue and checks it still
// works.
func tortureQueueOnce(t *testing.T, point string, producer bool, mayLose int, tl *tally) {
	tl.iterations++
	const n = 200
	ctx := ctxTimeout(t, 30*time.Second)
	data, err := mproc.NewQueue[[]byte](16, mproc.WithMaxMessage(testenv.RecordSize))
	if err != nil {
		t.Fatal(err)
	}
	defer data.Close()
	report, err := mproc.NewQueue[[]byte](n, mproc.WithMaxMessage(testenv.RecordSize))
	if err != nil {
		t.Fatal(err)
	}
	defer report.Close()
	k := 1 + rand.IntN(n/2)
	opts := mproc.ProcOptions{Env: []string{fmt.Sprintf("%s=%s=kill@%d", failpoint.Env, point, k)}}
	s := seen{}
	var p *mproc.Process
	if producer {
		p, err = tortureProducer.Start(ctx, tortureArg{Data: data, N: n}, opts)
	} else {
		p, err = tortureConsumer.Start(ctx, tortureArg{Data: data, Report: report, N: n}, opts)
	}
	if err != nil {
		t.Fatal(err)
	}
	testenv.Reap(t, p)
	put := uint64(0) // what this process put (consumer scenarios)
	// While the child lives: consume what it produces, or produce what it
	// consumes (the queue holds 16).
	for p.Alive() {
		if producer {
			if b, err := data.TryGet(); err == nil {
				s.add(tl, b)
			}
		} else if put < n {
			if data.TryPut(testenv.Record(put+1)) == nil {
				put++
			}
		}
		for {
			b, err := report.TryGet()
			if err != nil {
				break
			}
			s.add(tl, b)
		}
	}
	died := time.Now()
	werr := p.Wait(ctx)
	var ee *mproc.ExitError
	if !errors.As(werr, &ee) {
		t.Fatalf("the child was to be killed at %s (hit %d): %v", point, k, werr)
	}
	// Recovery: this process puts a message and gets every message left,
	// its own last; a dead process's claim must not stop it.
	sentinel := uint64(1 << 40)
	for data.TryPut(testenv.Record(sentinel)) != nil {
		// Full (the child filled it before it died): make room.
		short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		b, err := data.Get(short)
		cancel()
		switch {
		case err == nil:
			s.add(tl, b)
		case ctx.Err() != nil:
			tl.hangs++
			t.Logf("put after the kill: the queue stays full")
			return
		}
	}
	for {
		b, err := data.Get(ctx)
		if err != nil {
			tl.hangs++
			t.Logf("get after the kill: %v", err)
			return
		}
		if seq, ok := testenv.CheckRecord(b); ok && seq == sentinel {
			break
		}
		s.add(tl, b)
	}
	tl.maxRecovery = max(tl.maxRecovery, time.Since(died))
	for {
		b, err := report.TryGet()
		if err != nil {
			break
		}
		s.add(tl, b)
	}
	// What must have arrived: a producer's puts 1..k-1 (the kth may or
	// may not, as it died inside it); everything this process put, but
	// what a consumer took with it.
	var want []uint64
	if producer {
		for seq := uint64(1); seq < uint64(k); seq++ {
			want = append(want, seq)
		}
	} else {
		for seq := uint64(1); seq <= put; seq++ {
			want = append(want, seq)
		}
	}
	missing := 0
	for _, seq := range want {
		if s[seq] == 0 {
			missing++
		}
	}
	var extra []uint64
	for seq := range s {
		if seq == 0 || seq > uint64(n) || producer && seq > uint64(k) {
			extra = append(extra, seq)
		}
	}
	slices.Sort(extra)
	if missing <= mayLose {
		tl.taken += missing
	} else {
		tl.lost += missing
	}
	if missing <= mayLose && len(extra) == 0 {
		tl.survived++
	} else {
		t.Logf("killed at %s, hit %d: %d missing (may lose %d), unexpected %v", point, k, missing, mayLose, extra)
	}
}

type tortureLockArg struct {
	Lock  *mproc.Lock
	Cells *mproc.Array[int64] // [a, b]: the holder writes a, then b; equal when consistent
	N     int
}

// tortureLocker locks, writes both cells under the lock (a failpoint
// between the writes), and unlocks, N times.
var tortureLocker = mproc.Register("torture-locker", func(ctx context.Context, a tortureLockArg) error {
	for i := range a.N {
		if err := a.Lock.LockContext(ctx); err != nil && !errors.Is(err, mproc.ErrOwnerDead) {
			return err
		}
		v := int64(i + 1)
		a.Cells.Store(0, v)
		failpoint.Hit("torture.between-writes")
		a.Cells.Store(1, v)
		a.Lock.Unlock()
	}
	return nil
})

// The lock's scenarios: a holder (or a waiter) killed at each step; the
// test process, waiting for the lock meanwhile, must get it — with
// ErrOwnerDead whenever the holder died holding it — and find the state
// it protects either consistent or marked inconsistent, never a silent
// half-update.
func TestTortureLock(t *testing.T) {
	scenarios := []struct {
		name, point string
		holderDies  bool // the child died holding the lock
	}{
		{"L1 holder killed right after acquiring", psync.FailMutexAcquired, true},
		{"L2 holder killed between two writes it protects", "torture.between-writes", true},
		{"L3 holder killed after releasing, before waking the waiter", psync.FailMutexReleased, false},
		{"L4 waiter killed while waiting", psync.FailMutexWaiting, false},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			var tl tally
			for range *tortureN {
				tortureLockOnce(t, sc.point, sc.holderDies, &tl)
			}
			t.Logf("%s: %d of %d survived; silent half-updates %d, hangs %d, max recovery %v",
				sc.name, tl.survived, tl.iterations, tl.torn, tl.hangs, tl.maxRecovery.Round(time.Millisecond))
			if tl.survived != tl.iterations || tl.torn+tl.hangs > 0 {
				t.Errorf("%s: %v", sc.name, &tl)
			}
		})
	}
}

func tortureLockOnce(t *testing.T, point string, holderDies bool, tl *tally) {
	tl.iterations++
	ctx := ctxTimeout(t, 30*time.Second)
	l, err := mproc.NewLock()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cells, err := mproc.NewArray[int64](2)
	if err != nil {
		t.Fatal(err)
	}
	defer cells.Close()
	k := 1 + rand.IntN(20)
	if point == psync.FailMutexWaiting {
		// The waiter must wait: this process holds the lock until the
		// child has died waiting for it, at its first wait.
		l.Lock()
		k = 1
	}
	opts := mproc.ProcOptions{Env: []string{fmt.Sprintf("%s=%s=kill@%d", failpoint.Env, point, k)}}
	p, err := tortureLocker.Start(ctx, tortureLockArg{Lock: l, Cells: cells, N: 1000}, opts)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Reap(t, p)
	exited := make(chan time.Time, 1)
	go func() { <-p.Done(); exited <- time.Now() }()
	// Contend: lock and unlock alongside the child until it dies.
	ownerDead := false
	var tookOver time.Time
	for p.Alive() && point != psync.FailMutexWaiting {
		err := l.LockContext(ctx)
		if errors.Is(err, mproc.ErrOwnerDead) {
			ownerDead, tookOver = true, time.Now()
			cells.Store(1, cells.Load(0)) // repair
			l.MarkConsistent()
		} else if err != nil {
			tl.hangs++
			t.Logf("lock while the child lives: %v", err)
			return
		}
		if a, b := cells.Load(0), cells.Load(1); a != b && !ownerDead {
			tl.torn++
		}
		l.Unlock()
	}
	var ee *mproc.ExitError
	if err := p.Wait(ctx); !errors.As(err, &ee) {
		t.Fatalf("the child was to be killed at %s (hit %d): %v", point, k, err)
	}
	died := <-exited
	if !tookOver.IsZero() {
		// The contending lock above took over from the dead holder.
		tl.maxRecovery = max(tl.maxRecovery, tookOver.Sub(died))
	}
	if point == psync.FailMutexWaiting {
		l.Unlock()
	}
	// Recovery: the lock is this process's again, and works.
	err = l.LockContext(ctx)
	switch {
	case errors.Is(err, mproc.ErrOwnerDead):
		ownerDead = true
		cells.Store(1, cells.Load(0))
		l.MarkConsistent()
	case err != nil:
		tl.hangs++
		t.Logf("lock after the kill: %v", err)
		return
	}
	tl.maxRecovery = max(tl.maxRecovery, time.Since(died))
	if a, b := cells.Load(0), cells.Load(1); a != b {
		tl.torn++ // a half-update nobody was told about
	}
	l.Unlock()
	if holderDies && !ownerDead {
		t.Logf("killed at %s (hit %d) holding the lock, and nobody got ErrOwnerDead", point, k)
		return
	}
	tl.survived++
}

type tortureJoinArg struct {
	Q *mproc.JoinableQueue[[]byte]
	N int
}

var (
	tortureJoinProducer = mproc.Register("torture-join-producer", func(ctx context.Context, a tortureJoinArg) error {
		for seq := uint64(1); seq <= uint64(a.N); seq++ {
			if err := a.Q.Put(ctx, testenv.Record(seq)); err != nil {
				return err
			}
		}
		return nil
	})
	// tortureJoinConsumer gets and reports each value done.
	tortureJoinConsumer = mproc.Register("torture-join-consumer", func(ctx context.Context, a tortureJoinArg) error {
		for range a.N {
			if _, err := a.Q.Get(ctx); err != nil {
				return err
			}
			if err := a.Q.TaskDone(); err != nil {
				return err
			}
		}
		return nil
	})
)

// The JoinableQueue's scenarios: its count of unfinished tasks must
// survive a death anywhere. A producer killed inside Put leaves nothing
// unfinished; a consumer killed inside Get before it copied the value out
// takes the value with it and leaves nothing unfinished; one killed after
// (ring.get.read: the value counted as taken, not reported done) leaves
// exactly one task unfinished, as a Python consumer that dies before
// task_done does: Join waits for it until its context ends.
func TestTortureJoinable(t *testing.T) {
	scenarios := []struct {
		name, point string
		producer    bool
		unfinished  int // left for ever by the death
	}{
		{"J1 producer killed after claim", ring.FailPutClaimed, true, 0},
		{"J2 producer killed after filling", ring.FailPutFilled, true, 0},
		{"J3 producer killed after publishing", ring.FailPutPublished, true, 0},
		{"J4 consumer killed after claim", ring.FailGetClaimed, false, 0},
		{"J5 consumer killed after taking the value", ring.FailGetRead, false, 1},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			var tl tally
			for range *tortureN {
				tortureJoinableOnce(t, sc.point, sc.producer, sc.unfinished, &tl)
			}
			t.Logf("%s: %v", sc.name, &tl)
			if tl.survived != tl.iterations || tl.lost+tl.dup+tl.torn+tl.hangs > 0 {
				t.Errorf("%s: %v", sc.name, &tl)
			}
		})
	}
}

// tortureJoinableOnce runs one iteration: a child producer (or consumer)
// is killed at point on a random hit while this process consumes and
// reports done (or produces); then this process drains the queue,
// reporting each value done, and Join must end — or, when the death left
// a task unfinished by design, report exactly that many.
func tortureJoinableOnce(t *testing.T, point string, producer bool, unfinished int, tl *tally) {
	tl.iterations++
	const n = 200
	ctx := ctxTimeout(t, 30*time.Second)
	q, err := mproc.NewJoinableQueue[[]byte](16, mproc.WithMaxMessage(testenv.RecordSize))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	k := 1 + rand.IntN(n/2)
	opts := mproc.ProcOptions{Env: []string{fmt.Sprintf("%s=%s=kill@%d", failpoint.Env, point, k)}}
	child := tortureJoinConsumer
	if producer {
		child = tortureJoinProducer
	}
	p, err := child.Start(ctx, tortureJoinArg{Q: q, N: n}, opts)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Reap(t, p)
	s := seen{}
	got := func(b []byte) {
		s.add(tl, b)
		if err := q.TaskDone(); err != nil {
			t.Errorf("TaskDone: %v", err)
		}
	}
	put := 0
	for p.Alive() {
		if producer {
			if b, err := q.TryGet(); err == nil {
				got(b)
			}
		} else if put < n && q.TryPut(testenv.Record(uint64(put+1))) == nil {
			put++
		}
	}
	died := time.Now()
	var ee *mproc.ExitError
	if err := p.Wait(ctx); !errors.As(err, &ee) {
		t.Fatalf("the child was to be killed at %s (hit %d): %v", point, k, err)
	}
	// Drain what is left (TryGet repairs a dead process's claim).
	for {
		b, err := q.TryGet()
		if err != nil {
			break
		}
		got(b)
	}
	jctx, cancel := ctx, context.CancelFunc(func() {})
	if unfinished > 0 {
		jctx, cancel = context.WithTimeout(ctx, 200*time.Millisecond) // Join must wait: for a while
	}
	jerr := q.Join(jctx)
	cancel()
	switch {
	case unfinished == 0 && jerr != nil:
		tl.hangs++
		t.Logf("killed at %s (hit %d): Join: %v with %d unfinished", point, k, jerr, q.Unfinished())
		return
	case unfinished > 0 && (jerr == nil || q.Unfinished() != unfinished):
		tl.lost++
		t.Logf("killed at %s (hit %d): Join: %v with %d unfinished, want %d", point, k, jerr, q.Unfinished(), unfinished)
		return
	}
	if unfinished == 0 {
		tl.maxRecovery = max(tl.maxRecovery, time.Since(died))
	}
	if producer {
		// Whatever the producer published, in order, and nothing it
		// did not: 1..k-1 at least, k maybe.
		for seq := uint64(1); seq < uint64(k); seq++ {
			if s[seq] == 0 {
				tl.lost++
			}
		}
		for seq := range s {
			if seq > uint64(k) {
				tl.dup++ // a message never put
			}
		}
	} else {
		// The consumer reported done what it got; this process got the
		// rest, but the one a death inside Get took.
		if len(s) > put {
			tl.dup++
		}
	}
	if tl.lost+tl.dup+tl.torn == 0 {
		tl.survived++
	}
}
