package mproc

import (
	"context"
	"fmt"

	"mproc/internal/psync"
	"mproc/internal/shm"
)

// Barrier makes a fixed number of parties, in any processes, wait for each
// other: Python's multiprocessing.Barrier. Each Wait returns when the last
// party arrives, and the barrier is ready for the next round.
//
// It breaks, and every waiting and later party gets ErrBrokenBarrier until
// Reset, when a party calls Abort, when a waiting party's context ends
// (the timeout of Python's wait), or when a party's process dies inside
// Wait before its round trips (noticed within about 25 ms). A party that
// arrived counts in its round even if it dies before the others come: when
// they come before a 25 ms check, the round trips, and the dead party is
// then missing from the next round, like one that died before it arrived.
// Nothing tells such a party from a slow one: bound Wait with a context,
// or call Abort when you learn of the death (Process.Done).
type Barrier struct {
	object
	b *psync.Barrier
}

var barrierKind = handleKind[Barrier]{kind: shm.KindBarrier, size: psync.BarrierSize, make: func(o object) (*Barrier, error) {
	b := shm.At[psync.Barrier](o.seg.Data(), 0)
	if n := b.Parties(); n < 1 || n > psync.MaxParties || uint64(n) != o.param(0) {
		return nil, fmt.Errorf("barrier of %d parties (header: %d): %w", n, o.param(0), ErrCorrupt)
	}
	return &Barrier{object: o, b: b}, nil
}}

func newBarrier(name string, named bool, parties int) (*Barrier, error) {
	if parties < 1 || parties > psync.MaxParties {
		return nil, fmt.Errorf("barrier of %d parties: want 1 to %d", parties, psync.MaxParties)
	}
	return barrierKind.create(name, named, barrierKind.spec([2]uint64{uint64(parties)}, func(b []byte) error {
		shm.At[psync.Barrier](b, 0).Init(uint32(parties))
		return nil
	}))
}

// NewBarrier creates an anonymous barrier for parties parties (1 to 256).
func NewBarrier(parties int) (*Barrier, error) { return newBarrier("", false, parties) }

// CreateBarrier creates the named barrier name.
func CreateBarrier(name string, parties int) (*Barrier, error) {
	return newBarrier(name, true, parties)
}

// OpenBarrier opens the named barrier name.
func OpenBarrier(name string) (*Barrier, error) { return barrierKind.open(name) }

// Wait arrives and waits for the other parties. It returns this party's
// arrival index, 0 for the first and Parties()-1 for the last; or
// ErrBrokenBarrier; or ctx.Err(), which breaks the barrier for the others
// if this party had arrived (ctx may end before it can: another process,
// stopped, may hold the barrier's internal lock).
func (b *Barrier) Wait(ctx context.Context) (int, error) {
	if err := b.closed("barrier"); err != nil {
		return 0, err
	}
	i, err := b.b.Wait(ctx, self)
	if err == ErrBrokenBarrier {
		err = fmt.Errorf("barrier %q: %w", b.Name(), err)
	}
	return i, err
}

// Abort breaks the barrier.
func (b *Barrier) Abort() { b.b.Abort(self) }

// Reset mends a broken barrier; parties waiting now get ErrBrokenBarrier.
func (b *Barrier) Reset() { b.b.Reset(self) }

// Broken reports whether the barrier is broken.
func (b *Barrier) Broken() bool { return b.b.Broken() }

// Parties returns the number of parties.
func (b *Barrier) Parties() int { return b.b.Parties() }

// NWaiting returns the number of parties waiting now.
func (b *Barrier) NWaiting() int { return b.b.NWaiting(self) }

// GobEncode implements gob.GobEncoder.
func (b *Barrier) GobEncode() ([]byte, error) { return b.encode() }

// GobDecode implements gob.GobDecoder.
func (b *Barrier) GobDecode(bs []byte) error { return barrierKind.decode(b, bs) }
