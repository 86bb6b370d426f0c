package psync

// NRecords is how many processes an RWMutex or a BoundedSemaphore keeps a
// record for at once: the processes that hold it or (RWMutex) wait to write.
// A process that finds every record taken waits until one is free.
const NRecords = 64

// record is what an RWMutex or a BoundedSemaphore knows of one process,
// guarded by the owning structure's meta mutex: its token (0: a free
// record), what it holds (read locks, or units) and how many of its
// writers wait (RWMutex only).
type record struct {
	tok           uint64
	held, waiting uint32
}

// records are the per-process records of one structure (the queue ring
// keeps its own, internal/ring).
type records [NRecords]record

// find returns me's record, or nil.
func (s *records) find(me uint64) *record {
	for i := range s {
		if s[i].tok == me {
			return &s[i]
		}
	}
	return nil
}

// claim returns me's record, taking a free one if me has none; nil when
// every record is taken.
func (s *records) claim(me uint64) *record {
	if r := s.find(me); r != nil {
		return r
	}
	if r := s.find(0); r != nil {
		*r = record{tok: me}
		return r
	}
	return nil
}

// release frees r if both its counters are zero.
func (r *record) release() {
	if r.held == 0 && r.waiting == 0 {
		*r = record{}
	}
}

// reap frees the records of dead processes, calling dead on each first.
func (s *records) reap(dead func(*record)) {
	for i := range s {
		if t := s[i].tok; t != 0 && !Alive(t) {
			dead(&s[i])
			s[i] = record{}
		}
	}
}

// sum adds up the counters of every record.
func (s *records) sum() (held, waiting uint32) {
	for i := range s {
		held += s[i].held
		waiting += s[i].waiting
	}
	return held, waiting
}
