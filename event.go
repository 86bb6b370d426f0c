package mproc

import (
	"context"

	"mproc/internal/psync"
	"mproc/internal/shm"
)

// Event is a flag that processes set, clear and wait for: Python's
// multiprocessing.Event. A waiter polls for about 20 µs, yielding the CPU,
// before it sleeps, so a quick Set from a process on another core is seen
// without a sleep and a wake-up; an idle waiter sleeps and costs nothing.
//
// An *Event is safe for concurrent use; it must not be used after Close.
type Event struct {
	object
	e *psync.Event
}

var eventKind = handleKind[Event]{kind: shm.KindEvent, size: 64, make: func(o object) (*Event, error) {
	return &Event{object: o, e: shm.At[psync.Event](o.seg.Data(), 0)}, nil
}}

// NewEvent creates an anonymous event, clear, for this process and its
// children.
func NewEvent() (*Event, error) { return eventKind.create("", false, eventKind.spec([2]uint64{}, nil)) }

// CreateEvent creates the named event name, clear.
func CreateEvent(name string) (*Event, error) {
	return eventKind.create(name, true, eventKind.spec([2]uint64{}, nil))
}

// OpenEvent opens the named event name.
func OpenEvent(name string) (*Event, error) { return eventKind.open(name) }

// Set sets the flag and wakes every waiter.
func (e *Event) Set() { e.e.Set() }

// Clear clears the flag.
func (e *Event) Clear() { e.e.Clear() }

// IsSet reports whether the flag is set.
func (e *Event) IsSet() bool { return e.e.IsSet() }

// Wait waits until the flag is set or ctx is done (then it returns
// ctx.Err()). It returns at once if the flag is set.
func (e *Event) Wait(ctx context.Context) error {
	if err := e.closed("event"); err != nil {
		return err
	}
	return e.e.Wait(ctx)
}

// GobEncode implements gob.GobEncoder: an *Event in the argument of Start
// reaches the child as the same event.
func (e *Event) GobEncode() ([]byte, error) { return e.encode() }

// GobDecode implements gob.GobDecoder for a child receiving its argument.
func (e *Event) GobDecode(b []byte) error { return eventKind.decode(e, b) }
