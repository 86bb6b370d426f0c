package ring

import (
	"encoding/binary"
	"testing"
)

// FuzzRing drives a ring through a random sequence of puts, gets, closes,
// and producers and consumers that die in the middle of their step, and
// checks what no sequence may break: every message is delivered at most
// once, in order, untorn; once closed and drained, every message that was
// put is either delivered or abandoned by a consumer that died reading it;
// and the ring never refuses progress forever.
func FuzzRing(f *testing.F) {
	f.Add([]byte{0, 0, 1, 2, 1, 0, 3, 1, 1, 0, 5, 1, 1})
	f.Add([]byte{0, 0, 0, 0, 0, 3, 3, 0, 1, 1, 2, 2, 2, 0, 1, 4, 4, 1})
	f.Fuzz(runOps)
}

func runOps(t *testing.T, ops []byte) {
	if len(ops) > 512 {
		ops = ops[:512] // longer inputs find nothing new and slow the fuzzer down
	}
	{
		const capacity, maxMsg = 4, 16
		mem := heap(t, capacity, maxMsg)
		r, _ := attach(t, mem, capacity, maxMsg)
		next := uint64(1)
		put := map[uint64]bool{}
		abandoned := map[uint64]bool{}
		var last uint64
		deliver := func(b []byte) {
			if len(b) != 16 || binary.LittleEndian.Uint64(b[8:]) != ^binary.LittleEndian.Uint64(b) {
				t.Fatalf("torn message %x", b)
			}
			v := binary.LittleEndian.Uint64(b)
			if !put[v] || v <= last {
				t.Fatalf("delivered %d after %d (put: %v)", v, last, put[v])
			}
			last = v
			delete(put, v)
		}
		fill := func(v uint64) func([]byte) {
			return func(b []byte) {
				binary.LittleEndian.PutUint64(b, v)
				binary.LittleEndian.PutUint64(b[8:], ^v)
			}
		}
		dieIn := func(f func()) {
			defer func() { recover() }()
			f()
		}
		for _, op := range ops {
			switch op % 6 {
			case 0:
				b := r.TryPutFunc(16, fill(next))
				if b.Err == nil {
					put[next] = true
				}
				next++
				r.RepairIfDead(b)
			case 1:
				b := r.TryGet(deliver)
				r.RepairIfDead(b)
			case 2: // a producer dies while writing
				d, dtok := attach(t, mem, capacity, maxMsg)
				dead.Store(dtok, true)
				dieIn(func() { d.TryPutFunc(16, func([]byte) { panic("killed") }) })
			case 3: // a consumer dies while reading
				d, dtok := attach(t, mem, capacity, maxMsg)
				dead.Store(dtok, true)
				dieIn(func() {
					d.TryGet(func(b []byte) {
						v := binary.LittleEndian.Uint64(b)
						if v > last {
							last = v // later deliveries still come in order
						}
						abandoned[v] = true
						delete(put, v)
						panic("killed")
					})
				})
			case 4:
				r.Len()
			case 5:
				r.Close()
			}
		}
		r.Close()
		for range 4 * capacity * (len(ops) + 1) {
			b := r.TryGet(deliver)
			if b.Err == ErrClosed {
				break
			}
			r.RepairIfDead(b)
		}
		if b := r.TryGet(deliver); b.Err != ErrClosed {
			t.Fatalf("closed ring not drained: %v", b.Err)
		}
		if len(put) != 0 {
			t.Fatalf("messages lost: %v", put)
		}
	}
}

// FuzzCorrupt drives a ring and a heap through puts and gets while it
// overwrites bytes of their memory between operations (what a crafted
// segment or a stray writer does), and checks the one promise that holds
// for damaged memory: no call panics or loops for ever; impossible values
// give ErrCorrupt. An op is one byte (put, get, repair, len, close) or,
// with the low bits 5-7, four: an offset of two bytes and a value.
func FuzzCorrupt(f *testing.F) {
	f.Add([]byte{0, 0, 0, 6, 0x10, 0x01, 0xff, 1, 1, 1})
	f.Add([]byte{0, 7, 0x00, 0x02, 0x40, 1, 0, 1, 6, 0x08, 0x00, 0x07, 1, 1})
	f.Add([]byte{0, 0, 5, 0x14, 0x09, 0xff, 1, 1, 5, 0x0c, 0x09, 0x30, 1, 0, 1})
	f.Add([]byte{0, 0, 0, 0, 7, 0x80, 0x00, 0x05, 1, 0, 1, 5, 0x81, 0x00, 0x09, 1, 1, 1})
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 512 {
			ops = ops[:512]
		}
		const capacity, maxMsg = 4, 16
		mem := heap(t, capacity, maxMsg)
		r, _ := attach(t, mem, capacity, maxMsg)
		hmem := heapMem(capacity, maxMsg)
		if err := InitHeap(hmem, capacity, maxMsg); err != nil {
			t.Fatal(err)
		}
		h, err := AttachHeap(hmem, capacity, maxMsg, len(ops)%2 == 0, tok())
		if err != nil {
			t.Fatal(err)
		}
		payload := []byte("0123456789abcdef")
		for i := 0; i < len(ops); i++ {
			op := ops[i]
			switch op & 7 {
			case 0:
				r.RepairIfDead(r.TryPut(payload[:op>>3%17]))
				h.TryPut(int(op>>3%17), func(b []byte) { copy(b, payload) }, int64(op>>3))
			case 1:
				r.RepairIfDead(r.TryGet(func(b []byte) {
					if len(b) > maxMsg {
						t.Fatalf("a message of %d bytes from a ring of %d-byte slots", len(b), maxMsg)
					}
				}))
				h.TryGet(func(b []byte, _ int64) {
					if len(b) > maxMsg {
						t.Fatalf("a message of %d bytes from a heap of %d-byte slots", len(b), maxMsg)
					}
				})
			case 2:
				r.Len()
				h.Len()
			case 3:
				r.Close()
				h.Close()
			case 4:
				r.TryGetAppend(nil)
			default:
				if i+3 >= len(ops) {
					return
				}
				off := int(ops[i+1])<<8 | int(ops[i+2])
				v := ops[i+3]
				i += 3
				if op&7 == 5 {
					mem[off%len(mem)] = v
				} else if off%len(hmem) >= 8 {
					// Not the mutex's owner word: an owner that is a live
					// process is waited for, by design; a dead one is taken
					// over (tested elsewhere).
					hmem[off%len(hmem)] = v
				}
			}
		}
	})
}
