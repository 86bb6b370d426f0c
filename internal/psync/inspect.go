package psync

import "sync/atomic"

// Snapshots for inspection tools (mproc stat, ls and watch, through
// internal/shm's Inspect).
//
// A State method only loads words, never stores or compare-and-swaps, so
// it works on a read-only mapping and changes nothing for the processes
// that use the structure. It takes none of the structure's mutexes: each
// word is read atomically, but the words are not read at one instant, so
// a snapshot of a structure in use may combine two moments (a holder
// counted in a record and the value not yet taken, say). Tokens are
// packed owner tokens (internal/owner); liveness is for the caller to
// check.

// MutexState is a Mutex as its words show it.
type MutexState struct {
	Owner      uint64 // the holder's token; 0 when unlocked
	Waiters    uint32 // waiters that may be asleep
	Consistent bool   // false after a holder died, until MarkConsistent
}

// State returns m's words.
func (m *Mutex) State() MutexState {
	return MutexState{Owner: m.owner.Load(), Waiters: m.waiters.Load(), Consistent: m.Consistent()}
}

// RMutexState is an RMutex as its words show it.
type RMutexState struct {
	MutexState
	Holder uint32 // the holding handle's id inside the owner; 0 when unlocked
	Depth  uint32 // how many times the holder has locked it
}

// State returns r's words.
func (r *RMutex) State() RMutexState {
	return RMutexState{MutexState: r.m.State(), Holder: r.holder.Load(), Depth: r.depth.Load()}
}

// Holding is one in-use per-process record of an RWMutex or a Semaphore.
type Holding struct {
	Token   uint64 // the process
	Held    uint32 // read locks (RWMutex) or units (Semaphore) it holds
	Waiting uint32 // its writers waiting (RWMutex)
}

// holdings returns the records in use, in record order.
func (s *records) holdings() []Holding {
	var out []Holding
	for i := range s {
		r := &s[i]
		if t := atomic.LoadUint64(&r.tok); t != 0 {
			out = append(out, Holding{Token: t, Held: atomic.LoadUint32(&r.held), Waiting: atomic.LoadUint32(&r.waiting)})
		}
	}
	return out
}

// RWMutexState is an RWMutex as its words show it.
type RWMutexState struct {
	Writer     uint64    // the writer holding the lock; 0 if none
	Records    []Holding // readers and processes whose writers wait
	Waiters    uint32    // processes asleep on the lock
	Consistent bool      // false after a writer died, until MarkConsistent
}

// State returns rw's words.
func (rw *RWMutex) State() RWMutexState {
	return RWMutexState{
		Writer:     atomic.LoadUint64(&rw.writer),
		Records:    rw.recs.holdings(),
		Waiters:    rw.waiters.Load(),
		Consistent: atomic.LoadUint32(&rw.flags)&flagInconsistent == 0,
	}
}

// SemaphoreState is a Semaphore as its words show it.
type SemaphoreState struct {
	Value   uint32    // units available
	Max     uint32    // the bound; 0 for none
	Waiters uint32    // processes waiting for a unit
	Holders []Holding // bounded only: who holds units
}

// State returns s's words.
func (s *Semaphore) State() SemaphoreState {
	return SemaphoreState{Value: s.value.Load(), Max: atomic.LoadUint32(&s.max),
		Waiters: s.waiters.Load(), Holders: s.recs.holdings()}
}

// EventState is an Event as its words show it.
type EventState struct {
	Set     bool
	Waiters uint32
}

// State returns e's words.
func (e *Event) State() EventState { return EventState{Set: e.IsSet(), Waiters: e.waiters.Load()} }

// CondState is a Cond as its words show it.
type CondState struct {
	Seq     uint32 // bumped by every Signal and Broadcast (wraps)
	Waiters uint32
}

// State returns c's words.
func (c *Cond) State() CondState { return CondState{Seq: c.seq.Load(), Waiters: c.waiters.Load()} }

// BarrierState is a Barrier as its words show it.
type BarrierState struct {
	Parties    uint32
	Generation uint32   // trips and resets so far (wraps)
	Broken     bool     // until Reset
	Waiters    uint32   // parties asleep
	Arrived    []uint64 // the parties waiting in this generation
}

// State returns b's words. Arrived is bounded by MaxParties whatever the
// memory says.
func (b *Barrier) State() BarrierState {
	st := b.state.Load()
	n := min(atomic.LoadUint32(&b.count), MaxParties)
	arrived := make([]uint64, 0, n)
	for i := range n {
		arrived = append(arrived, atomic.LoadUint64(&b.arrived[i]))
	}
	return BarrierState{Parties: atomic.LoadUint32(&b.parties), Generation: st >> 1, Broken: st&brokenBit != 0,
		Waiters: b.waiters.Load(), Arrived: arrived}
}

// TasksState is a Tasks count as its words show it.
type TasksState struct {
	Taken   uint32 // values got and not yet done (the queue's are unfinished too)
	Waiters uint32 // processes in Join
}

// State returns t's words.
func (t *Tasks) State() TasksState {
	return TasksState{Taken: t.taken.Load(), Waiters: t.waiters.Load()}
}
