package psync

// NSlots is how many processes an RWMutex or a BoundedSemaphore keeps a
// record for at once: the processes that hold it or (RWMutex) wait to write.
// A process that finds every record taken waits until one is free.
const NSlots = 64

// slot is one process's record, guarded by the owning structure's meta
// mutex: its token (0: free) and two counters whose meaning is the owner's.
type slot struct {
	tok  uint64
	a, b uint32
}

type slots [NSlots]slot

// find returns me's record, or nil.
func (s *slots) find(me uint64) *slot {
	for i := range s {
		if s[i].tok == me {
			return &s[i]
		}
	}
	return nil
}

// claim returns me's record, taking a free one if me has none; nil when
// every record is taken.
func (s *slots) claim(me uint64) *slot {
	if r := s.find(me); r != nil {
		return r
	}
	if r := s.find(0); r != nil {
		*r = slot{tok: me}
		return r
	}
	return nil
}

// release frees r if both its counters are zero.
func (r *slot) release() {
	if r.a == 0 && r.b == 0 {
		*r = slot{}
	}
}

// reap frees the records of dead processes, calling dead on each first.
func (s *slots) reap(dead func(*slot)) {
	for i := range s {
		if t := s[i].tok; t != 0 && !Alive(t) {
			dead(&s[i])
			s[i] = slot{}
		}
	}
}

// sum adds up the counters of every record.
func (s *slots) sum() (a, b uint32) {
	for i := range s {
		a += s[i].a
		b += s[i].b
	}
	return a, b
}
