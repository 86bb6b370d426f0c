package mproc

import (
	"bytes"
	"context"
	"encoding/gob"
	"errors"

	"mproc/internal/psync"
	"mproc/internal/shm"
)

// Cond is a condition variable shared by processes, over a Lock: Python's
// multiprocessing.Condition with the verbs of sync.Cond. Wait unlocks L,
// sleeps until Signal or Broadcast, and locks L again; as with sync.Cond,
// a waiter may wake without a signal, so it re-checks its condition in a
// loop:
//
//	c.L.Lock()
//	for !ready() {
//		if err := c.Wait(ctx); err != nil { ... }
//	}
//	... use the state ...
//	c.L.Unlock()
//
// A *Cond travels to children with its Lock. It is safe for concurrent
// use; it must not be used after Close, which does not close L.
type Cond struct {
	object
	L *Lock
	c *psync.Cond
}

var condKind = handleKind[Cond]{kind: shm.KindCond, size: 64, make: func(o object) (*Cond, error) {
	return &Cond{object: o, c: shm.At[psync.Cond](o.seg.Data(), 0)}, nil
}}

func withLock(c *Cond, err error, l *Lock) (*Cond, error) {
	if err != nil {
		return nil, err
	}
	if l == nil {
		c.Close()
		return nil, errors.New("a Cond needs a Lock")
	}
	c.L = l
	return c, nil
}

// NewCond creates an anonymous condition variable over l.
func NewCond(l *Lock) (*Cond, error) {
	c, err := condKind.create("", false, condKind.spec([2]uint64{}, nil))
	return withLock(c, err, l)
}

// CreateCond creates the named condition variable name over l; processes
// that open it must use the same lock (opened by its own name).
func CreateCond(name string, l *Lock) (*Cond, error) {
	c, err := condKind.create(name, true, condKind.spec([2]uint64{}, nil))
	return withLock(c, err, l)
}

// OpenCond opens the named condition variable name over l.
func OpenCond(name string, l *Lock) (*Cond, error) {
	c, err := condKind.open(name)
	return withLock(c, err, l)
}

// Wait unlocks c.L, which this process must hold, waits for a Signal or
// Broadcast, and locks c.L again before it returns, even when ctx is done
// first (it then returns ctx.Err()). ErrOwnerDead from relocking is
// returned as from Lock.LockContext.
func (c *Cond) Wait(ctx context.Context) error {
	if err := c.closed("cond"); err != nil {
		return err
	}
	return c.c.Wait(ctx, c.L.Release, func() error { return c.L.LockContext(context.Background()) })
}

// Signal wakes one waiting process, if any.
func (c *Cond) Signal() { c.c.Signal() }

// Broadcast wakes every waiting process.
func (c *Cond) Broadcast() { c.c.Broadcast() }

type condWire struct {
	Cond []byte
	L    *Lock
}

// GobEncode implements gob.GobEncoder: the child gets the Cond and its
// Lock.
func (c *Cond) GobEncode() ([]byte, error) {
	b, err := c.encode()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	err = gob.NewEncoder(&buf).Encode(condWire{Cond: b, L: c.L})
	return buf.Bytes(), err
}

// GobDecode implements gob.GobDecoder.
func (c *Cond) GobDecode(b []byte) error {
	var w condWire
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&w); err != nil {
		return err
	}
	if err := condKind.decode(c, w.Cond); err != nil {
		return err
	}
	c.L = w.L
	return nil
}
