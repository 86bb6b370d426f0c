//go:build mprocfail

package mproc_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"mproc"
	"mproc/internal/failpoint"
	"mproc/internal/psync"
	"mproc/internal/ring"
	"mproc/internal/testenv"
)

// The torture scenarios of the other locks (issue 18): RWMutex (R),
// semaphores (S), Barrier (B), and processes stopped with SIGSTOP while
// they hold something (P). As in torture_test.go, a child is killed (or
// stopped) at a failpoint on a random hit while a second child and the
// test process contend for the same object; then the test process checks
// the object against its promise (rwmutex.go, semaphore.go, barrier.go)
// and that it still works.

// Cells of the shared array the R, S and B scenarios' processes use.
const (
	cellA, cellB  = 0, 1 // written a then b under the write lock: equal when consistent
	cellStop      = 2    // set by the test process: the contending child returns
	cellOwnerDead = 3    // ErrOwnerDead results a child saw
	cellTorn      = 4    // silent half-updates a child saw (a != b, no ErrOwnerDead)
	cellSeq       = 5    // the writers' next value
	cellHeld      = 6    // units each process holds now (S): cellHeld+index, 0 to 2
	cellBroken    = 9    // ErrBrokenBarrier results a child saw (B)
	cellRounds    = 10   // rounds a child's Wait passed (B)
	cellReset     = 11   // set by the test process once it has reset the barrier (B)
	nCells        = 12
)

// Test-level failpoints: in the children's critical sections, between the
// object's calls.
const (
	failRWReading = "torture.rw.reading" // holding a read lock
	failRWWriting = "torture.rw.writing" // holding the write lock, between a and b
	failSemHolds  = "torture.sem.holding"
)

// A child's function runs on its main goroutine. Locked to the main
// thread, it is the thread that failpoint's stop@N signals (a signal to the
// process goes to its main thread first), so the child stops exactly at
// the point; otherwise the main thread starts the group stop and the
// calling thread runs on for a few microseconds, past the point. (A
// SIGKILL needs no such care: it ends every thread at once.)
func init() {
	if os.Getenv("MPROC_CHILD") != "" {
		runtime.LockOSThread()
	}
}

func killAt(point string, k int) mproc.ProcOptions {
	return mproc.ProcOptions{Env: []string{envQuickExit(), fmt.Sprintf("%s=%s=kill@%d", failpoint.Env, point, k)}}
}

// contending are the options of the children that are not killed
// (envQuickExit: a race-detector build would sleep a second at each exit).
var contending = mproc.ProcOptions{Env: []string{envQuickExit()}}

// syncLine is a scenario's result: what the iterations' survivors saw.
type syncLine struct {
	iterations, survived int
	torn                 int // silent half-updates (R), or a permit counted twice (S)
	lost                 int // a permit lost for good (S), or a wrong ErrOwnerDead (R)
	hangs                int
	maxRecovery          time.Duration
}

func (l *syncLine) recovered(d time.Duration) { l.maxRecovery = max(l.maxRecovery, d) }

// exited returns a channel that receives the time p ended.
func exited(p *mproc.Process) <-chan time.Time {
	c := make(chan time.Time, 1)
	go func() { <-p.Done(); c <- time.Now() }()
	return c
}

// killed waits for p, which must have been killed (not have returned).
func killed(t *testing.T, ctx context.Context, p *mproc.Process, point string, k int) {
	t.Helper()
	var ee *mproc.ExitError
	if err := p.Wait(ctx); !errors.As(err, &ee) {
		t.Fatalf("the child was to be killed at %s (hit %d): %v", point, k, err)
	}
}

// stopContender tells the contending child to return and waits for it; it
// must return nil.
func stopContender(t *testing.T, ctx context.Context, p *mproc.Process, cells *mproc.Array[int64]) error {
	cells.Store(cellStop, 1)
	return p.Wait(ctx)
}

// ---- RWMutex ---------------------------------------------------------

type tortureRWArg struct {
	RW     *mproc.RWMutex
	Cells  *mproc.Array[int64]
	Writer bool
	N      int // 0: until cellStop
}

// rwStep takes the write lock (and writes a then b) or a read lock (and
// checks a == b) once. ownerDead reports an ErrOwnerDead result, which a
// writer repairs; torn a half-update seen without it.
func rwStep(ctx context.Context, rw *mproc.RWMutex, cells *mproc.Array[int64], writer bool) (ownerDead, torn bool, err error) {
	if writer {
		err = rw.LockContext(ctx)
	} else {
		err = rw.RLockContext(ctx)
	}
	if errors.Is(err, mproc.ErrOwnerDead) {
		ownerDead, err = true, nil
	}
	if err != nil {
		return false, false, err
	}
	if writer {
		if ownerDead {
			cells.Store(cellB, cells.Load(cellA))
			rw.MarkConsistent()
		}
		v := cells.Add(cellSeq, 1)
		cells.Store(cellA, v)
		failpoint.Hit(failRWWriting)
		cells.Store(cellB, v)
		rw.Unlock()
		return ownerDead, false, nil
	}
	failpoint.Hit(failRWReading)
	torn = cells.Load(cellA) != cells.Load(cellB) && !ownerDead
	rw.RUnlock()
	return ownerDead, torn, nil
}

var tortureRW = mproc.Register("torture-rw", func(ctx context.Context, a tortureRWArg) error {
	for i := 0; a.N == 0 || i < a.N; i++ {
		if a.Cells.Load(cellStop) != 0 {
			return nil
		}
		dead, torn, err := rwStep(ctx, a.RW, a.Cells, a.Writer)
		if err != nil {
			return err
		}
		if dead {
			a.Cells.Add(cellOwnerDead, 1)
		}
		if torn {
			a.Cells.Add(cellTorn, 1)
		}
	}
	return nil
})

// TestTortureRWMutex: a reader or a writer killed at each step, while a
// second child (a writer when the victim reads, a reader when it writes)
// and the test process (both) contend. The promise (rwmutex.go): a dead
// reader is forgotten and a dead waiting writer stops holding readers
// back, with no ErrOwnerDead for anyone; a writer dead holding the lock
// makes the next acquirers get ErrOwnerDead until a writer repairs; never
// a silent half-update; the lock works afterwards.
func TestTortureRWMutex(t *testing.T) {
	scenarios := []struct {
		name, point string
		writer      bool // the victim writes
		holderDies  bool // it dies holding the write lock
	}{
		{"R1 reader killed acquiring, inside the lock's meta mutex", psync.FailRWReadAcquired, false, false},
		{"R2 reader killed holding a read lock", failRWReading, false, false},
		{"R3 reader killed releasing, before waking the waiters", psync.FailRWReadReleased, false, false},
		{"R4 writer killed acquiring, inside the meta mutex", psync.FailRWWriteAcquired, true, true},
		{"R5 writer killed between two writes it protects", failRWWriting, true, true},
		{"R6 writer killed while waiting (readers held back)", psync.FailRWWriteWaiting, true, false},
		{"R7 writer killed releasing, before waking the waiters", psync.FailRWWriteReleased, true, false},
	}
	for _, sc := range scenarios {
		t.Run(sc.name[:2], func(t *testing.T) {
			var l syncLine
			for range *tortureN {
				tortureRWOnce(t, sc.point, sc.writer, sc.holderDies, &l)
			}
			line := fmt.Sprintf("%s: %d of %d survived; lost 0, dup 0, torn %d, wrong ErrOwnerDead %d, hangs %d, max recovery %v",
				sc.name, l.survived, l.iterations, l.torn, l.lost, l.hangs, l.maxRecovery.Round(time.Millisecond))
			t.Log(line)
			if l.survived != l.iterations || l.torn+l.lost+l.hangs > 0 {
				t.Error(line)
			}
		})
	}
}

func tortureRWOnce(t *testing.T, point string, writer, holderDies bool, l *syncLine) {
	l.iterations++
	ctx := ctxTimeout(t, 30*time.Second)
	rw, err := mproc.NewRWMutex()
	if err != nil {
		t.Fatal(err)
	}
	defer rw.Close()
	cells, err := mproc.NewArray[int64](nCells)
	if err != nil {
		t.Fatal(err)
	}
	defer cells.Close()
	waiting := point == psync.FailRWWriteWaiting
	k := 1 + rand.IntN(20)
	if waiting {
		// The victim must wait to write: this process reads until it has
		// died waiting, at its first wait.
		rw.RLock()
		k = 1
	}
	victim, err := tortureRW.Start(ctx, tortureRWArg{RW: rw, Cells: cells, Writer: writer, N: 1000}, killAt(point, k))
	if err != nil {
		t.Fatal(err)
	}
	testenv.Reap(t, victim)
	died := exited(victim)
	other, err := tortureRW.Start(ctx, tortureRWArg{RW: rw, Cells: cells, Writer: !writer}, contending)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Reap(t, other)
	ownerDead, torn := false, false
	var tookOver time.Time
	for i := 0; victim.Alive() && !waiting; i++ {
		dead, half, err := rwStep(ctx, rw, cells, i%2 == 0)
		if err != nil {
			l.hangs++
			t.Logf("lock while the victim lives: %v", err)
			return
		}
		if dead && !ownerDead {
			ownerDead, tookOver = true, time.Now()
		}
		torn = torn || half
	}
	killed(t, ctx, victim, point, k)
	death := <-died
	if !tookOver.IsZero() {
		l.recovered(tookOver.Sub(death))
	}
	if waiting {
		rw.RUnlock()
		// A reader must get past the dead waiting writer.
		if err := rw.RLockContext(ctx); err != nil {
			l.hangs++
			t.Logf("read lock after the waiting writer died: %v", err)
			return
		}
		l.recovered(time.Since(death))
		torn = torn || cells.Load(cellA) != cells.Load(cellB)
		rw.RUnlock()
	}
	// Recovery: the write lock, then a read lock, are this process's.
	for _, w := range []bool{true, false} {
		dead, half, err := rwStep(ctx, rw, cells, w)
		if err != nil {
			l.hangs++
			t.Logf("lock after the kill: %v", err)
			return
		}
		if w {
			l.recovered(time.Since(death))
		}
		ownerDead, torn = ownerDead || dead, torn || half
	}
	if err := stopContender(t, ctx, other, cells); err != nil {
		l.hangs++
		t.Logf("the contending child: %v", err)
		return
	}
	ownerDead = ownerDead || cells.Load(cellOwnerDead) > 0
	if torn || cells.Load(cellTorn) > 0 {
		l.torn++
		t.Logf("killed at %s (hit %d): a silent half-update", point, k)
		return
	}
	if ownerDead != holderDies {
		l.lost++
		t.Logf("killed at %s (hit %d): ErrOwnerDead seen %v, want %v", point, k, ownerDead, holderDies)
		return
	}
	if !rw.Consistent() {
		l.lost++
		t.Logf("killed at %s (hit %d): still marked inconsistent after a writer's MarkConsistent", point, k)
		return
	}
	l.survived++
}

// ---- Semaphores ------------------------------------------------------

type tortureSemArg struct {
	Bounded *mproc.BoundedSemaphore // or:
	Plain   *mproc.Semaphore
	Cells   *mproc.Array[int64]
	Index   int // this child's cellHeld+Index
	N       int // 0: until cellStop
}

// semStep acquires a unit, holds it a moment and releases it. Release
// failing with ErrOverRelease means the semaphore counted a unit twice.
func semStep(ctx context.Context, s *mproc.Semaphore, cells *mproc.Array[int64], index int) error {
	if err := s.Acquire(ctx); err != nil {
		return err
	}
	cells.Add(cellHeld+index, 1)
	failpoint.Hit(failSemHolds)
	cells.Add(cellHeld+index, -1)
	return s.Release()
}

var tortureSem = mproc.Register("torture-sem", func(ctx context.Context, a tortureSemArg) error {
	for i := 0; a.N == 0 || i < a.N; i++ {
		if a.Cells.Load(cellStop) != 0 {
			return nil
		}
		s := a.Plain
		if a.Bounded != nil {
			s = &a.Bounded.Semaphore
		}
		if err := semStep(ctx, s, a.Cells, a.Index); err != nil {
			return err
		}
	}
	return nil
})

// TestTortureSemaphore: a holder or a waiter of a BoundedSemaphore killed
// at each step, while a second child and the test process contend. The
// promise (semaphore.go): the units of a dead process are given back
// (within a slice to a waiter, or at the next acquisition), so every
// iteration ends with exactly the bound available — none lost for good,
// none counted twice (a Release would then fail with ErrOverRelease, or one
// unit too many could be taken). A plain Semaphore is a counter: the unit
// a dead holder took stays taken (S7), and nothing else changes.
func TestTortureSemaphore(t *testing.T) {
	scenarios := []struct {
		name, point string
		unbounded   bool
	}{
		{"S1 holder killed halfway through taking a unit", psync.FailSemTaking, false},
		{"S2 holder killed right after acquiring", psync.FailSemAcquired, false},
		{"S3 holder killed holding a unit", failSemHolds, false},
		{"S4 holder killed halfway through giving it back", psync.FailSemReleasing, false},
		{"S5 holder killed after giving it back, before waking a waiter", psync.FailSemReleased, false},
		{"S6 waiter killed while waiting", psync.FailSemWaiting, false},
		{"S7 plain Semaphore: holder killed holding a unit (it stays taken)", failSemHolds, true},
	}
	for _, sc := range scenarios {
		t.Run(sc.name[:2], func(t *testing.T) {
			var l syncLine
			for range *tortureN {
				tortureSemOnce(t, sc.point, sc.unbounded, &l)
			}
			line := fmt.Sprintf("%s: %d of %d survived; lost %d, dup %d, torn 0, hangs %d, max recovery %v",
				sc.name, l.survived, l.iterations, l.lost, l.torn, l.hangs, l.maxRecovery.Round(time.Millisecond))
			t.Log(line)
			if l.survived != l.iterations || l.torn+l.lost+l.hangs > 0 {
				t.Error(line)
			}
		})
	}
}

const semBound = 2

func tortureSemOnce(t *testing.T, point string, unbounded bool, l *syncLine) {
	l.iterations++
	ctx := ctxTimeout(t, 30*time.Second)
	var arg tortureSemArg
	var s *mproc.Semaphore
	if unbounded {
		u, err := mproc.NewSemaphore(semBound)
		if err != nil {
			t.Fatal(err)
		}
		arg.Plain, s = u, u
	} else {
		b, err := mproc.NewBoundedSemaphore(semBound)
		if err != nil {
			t.Fatal(err)
		}
		arg.Bounded, s = b, &b.Semaphore
	}
	defer s.Close()
	cells, err := mproc.NewArray[int64](nCells)
	if err != nil {
		t.Fatal(err)
	}
	defer cells.Close()
	// This process holds a unit while the victim and the second child
	// contend for the other: when the victim dies, a unit is held by a
	// live process, so one counted twice shows (a Release fails, or a
	// third unit can be taken). In S6 it holds both until the victim has
	// died waiting, at its first wait.
	k, held := 1+rand.IntN(20), 1
	if point == psync.FailSemWaiting {
		k, held = 1, semBound
	}
	for range held {
		if !s.TryAcquire() {
			t.Fatal("a new semaphore has no unit free")
		}
	}
	arg.Cells = cells
	va, oa := arg, arg
	va.N, oa.Index = 1000, 1
	victim, err := tortureSem.Start(ctx, va, killAt(point, k))
	if err != nil {
		t.Fatal(err)
	}
	testenv.Reap(t, victim)
	died := exited(victim)
	other, err := tortureSem.Start(ctx, oa, contending)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Reap(t, other)
	dup := false
	killed(t, ctx, victim, point, k)
	death := <-died
	for ; held > 0; held-- {
		if err := s.Release(); err != nil {
			dup = true
		}
	}
	if err := stopContender(t, ctx, other, cells); err != nil {
		if errors.Is(err, mproc.ErrOverRelease) || strings.Contains(err.Error(), psync.ErrOverRelease.Error()) {
			dup = true
		} else {
			l.hangs++
			t.Logf("the contending child: %v", err)
			return
		}
	}
	// Nobody alive holds a unit now. What must be available: the bound,
	// or for a plain semaphore what the victim did not take with it.
	want := semBound
	if unbounded && cells.Load(cellHeld+0) > 0 {
		want-- // died holding (between its Add(1) and Add(-1))
	}
	short, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for held < want {
		if err := s.Acquire(short); err != nil {
			break
		}
		held++
	}
	got := held
	if got == want {
		l.recovered(time.Since(death))
	}
	extra := s.TryAcquire()
	for ; held > 0; held-- {
		if err := s.Release(); err != nil {
			dup = true
		}
	}
	if extra {
		s.Release()
	}
	if !unbounded && got == want && s.Release() == nil {
		dup = true // a unit beyond the bound
	}
	switch {
	case got < want:
		l.lost++
		t.Logf("killed at %s (hit %d): %d units could be taken back, want %d", point, k, got, want)
	case dup || extra:
		l.torn++
		t.Logf("killed at %s (hit %d): a unit counted twice (value now %d)", point, k, s.Value())
	case s.Value() != want:
		l.lost++
		t.Logf("killed at %s (hit %d): %d units available, want %d", point, k, s.Value(), want)
	default:
		l.survived++
	}
}

// ---- Barrier ---------------------------------------------------------

type tortureBarrierArg struct {
	B     *mproc.Barrier
	Cells *mproc.Array[int64]
	N     int // rounds; 0: until the barrier breaks, then one round after Reset
}

var tortureBarrier = mproc.Register("torture-barrier", func(ctx context.Context, a tortureBarrierArg) error {
	for i := 0; a.N == 0 || i < a.N; i++ {
		_, err := a.B.Wait(ctx)
		if errors.Is(err, mproc.ErrBrokenBarrier) && a.N == 0 {
			a.Cells.Add(cellBroken, 1)
			break
		}
		if err != nil {
			return err
		}
		a.Cells.Add(cellRounds, 1)
	}
	if a.N != 0 {
		return nil
	}
	// The round after the test process's Reset.
	for a.Cells.Load(cellReset) == 0 {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(time.Millisecond)
	}
	_, err := a.B.Wait(ctx)
	return err
})

// TestTortureBarrier: a party of three (victim child, a second child, the
// test process) killed at each step of Wait. The promise (barrier.go): a
// party that dies inside Wait before its round trips breaks the barrier,
// and every other party's Wait returns ErrBrokenBarrier (within a slice),
// never hangs. A party that dies once its round has tripped — after
// tripping it (B4), or while waiting if the others complete the round
// before a slice ends (B2) — counted in that round and is merely absent
// from the next, which (as documented) nothing tells from a slow party:
// the application's remedy, Abort once it knows the victim dead, ends that
// round, and such iterations are counted apart. After Reset the barrier
// serves a full round.
func TestTortureBarrier(t *testing.T) {
	scenarios := []struct {
		name, point string
		absent      time.Duration // how long after the death the test calls Abort
		mayBeAbsent bool          // the victim may have died after its round tripped
	}{
		{"B1 party killed arriving, inside the meta mutex", psync.FailBarrierArriving, time.Second, false},
		{"B2 party killed waiting for the others", psync.FailBarrierWaiting, 200 * time.Millisecond, true},
		{"B3 last party killed tripping, inside the meta mutex", psync.FailBarrierTripping, time.Second, false},
		{"B4 last party killed after tripping, before waking the others", psync.FailBarrierTripped, 50 * time.Millisecond, true},
	}
	for _, sc := range scenarios {
		t.Run(sc.name[:2], func(t *testing.T) {
			var l syncLine
			for range *tortureN {
				tortureBarrierOnce(t, sc.point, sc.absent, sc.mayBeAbsent, &l)
			}
			line := fmt.Sprintf("%s: %d of %d survived; lost 0, dup 0, torn 0, hangs %d, not reusable after Reset %d, ended by Abort (victim absent) %d, max recovery %v",
				sc.name, l.survived, l.iterations, l.hangs, l.lost, l.torn, l.maxRecovery.Round(time.Millisecond))
			t.Log(line)
			if l.survived != l.iterations || l.lost+l.hangs > 0 {
				t.Error(line)
			}
		})
	}
}

func tortureBarrierOnce(t *testing.T, point string, absentAfter time.Duration, mayBeAbsent bool, l *syncLine) {
	l.iterations++
	ctx := ctxTimeout(t, 30*time.Second)
	b, err := mproc.NewBarrier(3)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cells, err := mproc.NewArray[int64](nCells)
	if err != nil {
		t.Fatal(err)
	}
	defer cells.Close()
	k := 1 + rand.IntN(10)
	// Rounds enough for any k, however rarely the victim is the last to
	// arrive (B3, B4).
	victim, err := tortureBarrier.Start(ctx, tortureBarrierArg{B: b, Cells: cells, N: 1 << 30}, killAt(point, k))
	if err != nil {
		t.Fatal(err)
	}
	testenv.Reap(t, victim)
	died := exited(victim)
	other, err := tortureBarrier.Start(ctx, tortureBarrierArg{B: b, Cells: cells}, contending)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Reap(t, other)
	// The application's remedy for an absent party: Abort, once the
	// victim is known dead and the barrier has not broken by itself.
	var aborted atomic.Bool
	stop, finished := make(chan struct{}), make(chan struct{})
	defer func() { close(stop); <-finished }() // before b is closed
	go func() {
		defer close(finished)
		select {
		case <-victim.Done():
		case <-stop:
			return
		}
		select {
		case <-time.After(absentAfter):
			if !b.Broken() {
				aborted.Store(true)
				b.Abort()
			}
		case <-stop:
		}
	}()
	var brokenAt time.Time
	for {
		_, err := b.Wait(ctx)
		if errors.Is(err, mproc.ErrBrokenBarrier) {
			brokenAt = time.Now()
			break
		}
		if err != nil {
			l.hangs++
			t.Logf("killed at %s (hit %d): wait: %v", point, k, err)
			return
		}
	}
	killed(t, ctx, victim, point, k)
	death := <-died
	switch {
	case !aborted.Load():
		l.recovered(max(0, brokenAt.Sub(death)))
	case mayBeAbsent:
		l.torn++
	default:
		l.hangs++
		t.Logf("killed at %s (hit %d): the barrier did not break by itself within %v", point, k, absentAfter)
		return
	}
	// Reusable: after Reset, a round of this process (two goroutines) and
	// the second child trips, each index once.
	for cells.Load(cellBroken) == 0 {
		if ctx.Err() != nil {
			l.hangs++
			t.Logf("killed at %s (hit %d): the second child never saw the barrier broken", point, k)
			return
		}
		time.Sleep(time.Millisecond)
	}
	b.Reset()
	cells.Store(cellReset, 1)
	idx := make(chan int, 1)
	go func() {
		i, err := b.Wait(ctx)
		if err != nil {
			i = -1
		}
		idx <- i
	}()
	i0, err := b.Wait(ctx)
	i1 := <-idx
	if err != nil || i1 < 0 {
		l.lost++
		t.Logf("killed at %s (hit %d): the round after Reset: %v", point, k, err)
		victim.Wait(ctx)
		other.Wait(ctx)
		return
	}
	if err := other.Wait(ctx); err != nil {
		l.lost++
		t.Logf("killed at %s (hit %d): the second child's round after Reset: %v", point, k, err)
		return
	}
	if i0 == i1 || b.Broken() {
		l.lost++
		t.Logf("killed at %s (hit %d): indices %d and %d, broken %v", point, k, i0, i1, b.Broken())
		return
	}
	l.survived++
}

// ---- SIGSTOP ---------------------------------------------------------

// procState returns the state letter of /proc/<pid>/stat ('T' stopped).
func procState(pid int) byte {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+2 >= len(b) {
		return 0
	}
	return b[i+2]
}

// waitStopped waits until p is stopped; false if it ended first.
func waitStopped(ctx context.Context, p *mproc.Process) bool {
	for p.Alive() && ctx.Err() == nil {
		if s := procState(p.Pid()); s == 'T' || s == 't' {
			return true
		}
		time.Sleep(100 * time.Microsecond)
	}
	return false
}

// stoppedFor is how long the P scenarios try to take what a stopped
// process holds: more than two sleep slices, so that waiters have checked
// its liveness at least twice.
const stoppedFor = 60 * time.Millisecond

// TestTortureStop: a process stopped with SIGSTOP while it holds a lock, a
// unit or a queue slot keeps it: the others wait (no ErrOwnerDead, nothing
// taken), then go on after SIGCONT. A failure is anything taken from the
// stopped process ("stolen") or a wait that does not end after SIGCONT.
func TestTortureStop(t *testing.T) {
	scenarios := []struct {
		name string
		run  func(t *testing.T, ctx context.Context, k int) (stolen bool, recovery time.Duration, err error)
	}{
		{"P1 Lock holder stopped between two writes it protects", stopLock},
		{"P2 RWMutex writer stopped acquiring, inside the meta mutex", stopRWMutex},
		{"P3 BoundedSemaphore holder stopped holding the only unit", stopSemaphore},
		{"P4 queue producer stopped holding a claimed slot", stopQueue},
		{"P5 Barrier party stopped arriving, inside the meta mutex", stopBarrier},
	}
	for _, sc := range scenarios {
		t.Run(sc.name[:2], func(t *testing.T) {
			var l syncLine
			for range *tortureN {
				l.iterations++
				ctx := ctxTimeout(t, 30*time.Second)
				stolen, rec, err := sc.run(t, ctx, 1+rand.IntN(20))
				switch {
				case err != nil:
					l.hangs++
					t.Logf("%s: %v", sc.name[:2], err)
				case stolen:
					l.torn++
				default:
					l.survived++
					l.recovered(rec)
				}
			}
			line := fmt.Sprintf("%s: %d of %d survived; lost 0, dup 0, torn 0, stolen %d, hangs (or a context not honoured) %d, max recovery after SIGCONT %v",
				sc.name, l.survived, l.iterations, l.torn, l.hangs, l.maxRecovery.Round(time.Millisecond))
			t.Log(line)
			if l.survived != l.iterations || l.torn+l.hangs > 0 {
				t.Error(line)
			}
		})
	}
}

// stopAt starts f's child stopped at point's kth hit and waits for it to
// stop.
func stopAt[A any](t *testing.T, ctx context.Context, f *mproc.Func[A], arg A, point string, k int) (*mproc.Process, error) {
	p, err := f.Start(ctx, arg, mproc.ProcOptions{Env: []string{envQuickExit(), fmt.Sprintf("%s=%s=stop@%d", failpoint.Env, point, k)}})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Reap(t, p)
	if !waitStopped(ctx, p) {
		return p, fmt.Errorf("the child ended (%v) before stopping at %s (hit %d)", p.Wait(ctx), point, k)
	}
	return p, nil
}

// resume continues p and returns when.
func resume(p *mproc.Process) time.Time {
	p.Signal(syscall.SIGCONT)
	return time.Now()
}

func stopLock(t *testing.T, ctx context.Context, k int) (bool, time.Duration, error) {
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
	p, err := stopAt(t, ctx, tortureLocker, tortureLockArg{Lock: l, Cells: cells, N: 50}, "torture.between-writes", k)
	if err != nil {
		return false, 0, err
	}
	short, cancel := context.WithTimeout(ctx, stoppedFor)
	err = l.LockContext(short)
	cancel()
	if err == nil || errors.Is(err, mproc.ErrOwnerDead) {
		t.Logf("P1 hit %d: the lock of a stopped holder was taken: %v", k, err)
		l.Unlock()
		p.Kill()
		p.Wait(ctx)
		return true, 0, nil
	}
	cont := resume(p)
	if err := l.LockContext(ctx); err != nil {
		return false, 0, fmt.Errorf("hit %d: lock after SIGCONT: %w (the holder: %v)", k, err, p.Wait(ctx))
	}
	rec := time.Since(cont)
	torn := cells.Load(0) != cells.Load(1)
	l.Unlock()
	if err := p.Wait(ctx); err != nil {
		return false, 0, fmt.Errorf("the resumed holder: %w", err)
	}
	return torn, rec, nil
}

func stopRWMutex(t *testing.T, ctx context.Context, k int) (bool, time.Duration, error) {
	rw, err := mproc.NewRWMutex()
	if err != nil {
		t.Fatal(err)
	}
	defer rw.Close()
	cells, err := mproc.NewArray[int64](nCells)
	if err != nil {
		t.Fatal(err)
	}
	defer cells.Close()
	p, err := stopAt(t, ctx, tortureRW, tortureRWArg{RW: rw, Cells: cells, Writer: true, N: 50}, psync.FailRWWriteAcquired, k)
	if err != nil {
		return false, 0, err
	}
	stolen, ignored := false, false
	for _, w := range []bool{true, false} {
		// The attempt must end with its context; if it does not, the
		// stopped process is continued so that the test can go on.
		short, cancel := context.WithTimeout(ctx, stoppedFor/2)
		done := make(chan error, 1)
		go func() { _, _, err := rwStep(short, rw, cells, w); done <- err }()
		var err error
		select {
		case err = <-done:
		case <-time.After(10 * time.Second):
			resume(p)
			<-done
			ignored, err = true, errors.New("ignored its context")
		}
		cancel()
		if ignored {
			break
		}
		if err == nil {
			t.Logf("P2 hit %d: a stopped writer's lock was taken (write %v)", k, w)
			stolen = true
		}
	}
	if ignored {
		p.Wait(ctx)
		return false, 0, fmt.Errorf("hit %d: a lock attempt did not end with its context (%v) while the writer was stopped inside the meta mutex", k, stoppedFor/2)
	}
	cont := resume(p)
	dead, torn, err := rwStep(ctx, rw, cells, true)
	if err != nil {
		return true, 0, fmt.Errorf("lock after SIGCONT: %w", err)
	}
	rec := time.Since(cont)
	if err := p.Wait(ctx); err != nil {
		return false, 0, fmt.Errorf("the resumed writer: %w", err)
	}
	if dead || cells.Load(cellOwnerDead) > 0 {
		t.Logf("P2 hit %d: ErrOwnerDead for a live, stopped writer", k)
		stolen = true
	}
	return stolen || torn, rec, nil
}

func stopSemaphore(t *testing.T, ctx context.Context, k int) (bool, time.Duration, error) {
	b, err := mproc.NewBoundedSemaphore(1)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	s := &b.Semaphore
	cells, err := mproc.NewArray[int64](nCells)
	if err != nil {
		t.Fatal(err)
	}
	defer cells.Close()
	p, err := stopAt(t, ctx, tortureSem, tortureSemArg{Bounded: b, Cells: cells, N: 50}, failSemHolds, k)
	if err != nil {
		return false, 0, err
	}
	short, cancel := context.WithTimeout(ctx, stoppedFor)
	err = s.Acquire(short)
	cancel()
	if err == nil || s.TryAcquire() {
		t.Logf("P3 hit %d: the unit of a stopped holder was taken", k)
		p.Kill()
		p.Wait(ctx)
		return true, 0, nil
	}
	cont := resume(p)
	if err := s.Acquire(ctx); err != nil {
		return false, 0, fmt.Errorf("acquire after SIGCONT: %w", err)
	}
	rec := time.Since(cont)
	if err := s.Release(); err != nil {
		return true, 0, fmt.Errorf("release: %w", err)
	}
	if err := p.Wait(ctx); err != nil {
		return false, 0, fmt.Errorf("the resumed holder: %w", err)
	}
	return s.Value() != 1, rec, nil
}

func stopQueue(t *testing.T, ctx context.Context, k int) (bool, time.Duration, error) {
	const n = 50
	k = 1 + (k-1)%16 // the queue holds 16: the producer must reach its kth put unaided
	data, err := mproc.NewQueue[[]byte](16, mproc.WithMaxMessage(testenv.RecordSize))
	if err != nil {
		t.Fatal(err)
	}
	defer data.Close()
	p, err := stopAt(t, ctx, tortureProducer, tortureArg{Data: data, N: n}, ring.FailPutClaimed, k)
	if err != nil {
		return false, 0, err
	}
	// Messages 1..k-1 are there; k is claimed by the stopped producer, and
	// nothing may be taken past it while it is stopped.
	got := seen{}
	var tl tally
	for seq := uint64(1); seq < uint64(k); seq++ {
		b, err := data.Get(ctx)
		if err != nil {
			return false, 0, fmt.Errorf("get %d before the stop point: %w", seq, err)
		}
		got.add(&tl, b)
	}
	short, cancel := context.WithTimeout(ctx, stoppedFor)
	b, err := data.Get(short)
	cancel()
	if err == nil {
		seq, _ := testenv.CheckRecord(b)
		t.Logf("P4 hit %d: got message %d past the stopped producer's slot (state %c, %+v)", k, seq, procState(p.Pid()), data.Stats())
		p.Kill()
		p.Wait(ctx)
		return true, 0, nil
	}
	cont := resume(p)
	var rec time.Duration
	for i := k; i <= n; i++ {
		b, err := data.Get(ctx)
		if err != nil {
			return false, 0, fmt.Errorf("get after SIGCONT: %w", err)
		}
		if i == k {
			rec = time.Since(cont)
		}
		got.add(&tl, b)
	}
	if err := p.Wait(ctx); err != nil {
		return false, 0, fmt.Errorf("the resumed producer: %w", err)
	}
	for seq := uint64(1); seq <= n; seq++ {
		if got[seq] != 1 {
			t.Logf("P4 hit %d: message %d received %d times", k, seq, got[seq])
			return true, rec, nil
		}
	}
	st := data.Stats()
	return tl.dup+tl.torn > 0 || st.Skipped+st.Abandoned > 0, rec, nil
}

func stopBarrier(t *testing.T, ctx context.Context, k int) (bool, time.Duration, error) {
	b, err := mproc.NewBarrier(3)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cells, err := mproc.NewArray[int64](nCells)
	if err != nil {
		t.Fatal(err)
	}
	defer cells.Close()
	k = 1 + (k-1)%10
	other, err := tortureBarrier.Start(ctx, tortureBarrierArg{B: b, Cells: cells}, contending)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Reap(t, other)
	// The test process waits its rounds in a goroutine; the stopped child
	// (which plays until the barrier breaks, like the second child) stops
	// at its kth arrival, holding the meta mutex.
	roundsCtx, endRounds := context.WithCancel(ctx)
	defer endRounds()
	rounds := make(chan error, 1)
	go func() {
		for {
			if _, err := b.Wait(roundsCtx); err != nil {
				rounds <- err
				return
			}
		}
	}()
	p, err := stopAt(t, ctx, tortureBarrier, tortureBarrierArg{B: b, Cells: cells}, psync.FailBarrierArriving, k)
	if err != nil {
		return false, 0, err
	}
	// This process's Wait, arrived or blocked on meta, must end with its
	// context (breaking the barrier if it had arrived), and only then: the
	// stopped party is alive.
	var werr error
	select {
	case werr = <-rounds:
		return true, 0, fmt.Errorf("hit %d: Wait returned %v while the other party was stopped", k, werr)
	case <-time.After(stoppedFor):
	}
	endRounds()
	select {
	case werr = <-rounds:
	case <-time.After(10 * time.Second):
		resume(p)
		<-rounds
		return false, 0, fmt.Errorf("hit %d: a waiting party's Wait did not end with its context while a party was stopped inside the meta mutex", k)
	}
	if !errors.Is(werr, context.Canceled) {
		t.Logf("P5 hit %d: Wait while a party was stopped: %v, want its context's end", k, werr)
		return true, 0, nil
	}
	// A second Wait, which cannot arrive, ends with its context too.
	short, cancel := context.WithTimeout(ctx, stoppedFor/2)
	defer cancel()
	done := make(chan error, 1)
	go func() { _, err := b.Wait(short); done <- err }()
	select {
	case werr = <-done:
	case <-time.After(10 * time.Second):
		resume(p)
		<-done
		return false, 0, fmt.Errorf("hit %d: a Wait did not end with its context (%v) while a party was stopped inside the meta mutex", k, stoppedFor/2)
	}
	cont := resume(p)
	if !errors.Is(werr, context.DeadlineExceeded) {
		t.Logf("P5 hit %d: a second Wait while a party was stopped: %v, want its context's end", k, werr)
		return true, 0, nil
	}
	b.Abort() // if this process's Wait had not arrived, nothing broke it
	rec := time.Since(cont)
	for cells.Load(cellBroken) < 2 {
		if ctx.Err() != nil {
			return false, 0, fmt.Errorf("hit %d: the children never saw the barrier broken", k)
		}
		time.Sleep(time.Millisecond)
	}
	b.Reset()
	cells.Store(cellReset, 1)
	if _, err := b.Wait(ctx); err != nil {
		return false, 0, fmt.Errorf("hit %d: the round after Reset: %w", k, err)
	}
	for _, c := range []*mproc.Process{p, other} {
		if err := c.Wait(ctx); err != nil {
			return false, 0, fmt.Errorf("hit %d: %s: %w", k, c.Name(), err)
		}
	}
	return false, rec, nil
}
