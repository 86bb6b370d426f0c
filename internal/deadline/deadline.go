// Package deadline binds a context to the deadline of one direction of an
// *os.File's I/O (a socket, a pipe, a message queue descriptor in Go's
// poller), so that a blocked read or write returns when the context ends.
//
// While a context is bound, the file's deadline is the context's deadline,
// and the context's cancellation moves it into the past, waking a blocked
// call with os.ErrDeadlineExceeded. Every Bind starts a new generation: a
// cancellation that fires after its Bind was undone sees an older
// generation and does nothing, so it can never cut short a later call's
// I/O. A context that can never end costs nothing but clearing a deadline
// an earlier call left (no allocation, no callback).
package deadline

import (
	"context"
	"sync"
	"time"
)

// Past is a deadline that has passed: setting it wakes a blocked call.
var Past = time.Unix(1, 0)

// Binder binds one context at a time to one direction of a file. Create
// it with New; it is safe for concurrent use, but a direction has one
// context at a time: callers that may overlap take turns (a mutex or a
// semaphore per direction) around Bind and its unbind.
type Binder struct {
	set func(time.Time) error // SetReadDeadline or SetWriteDeadline

	mu    sync.Mutex
	gen   uint64    // bumped by every Bind and unbind
	done  bool      // the bound context has ended
	end   time.Time // the bound context's deadline, zero if none
	dirty bool      // a deadline is set and must be cleared
}

// New returns a Binder for the direction whose deadline set sets.
func New(set func(time.Time) error) *Binder { return &Binder{set: set} }

func noUnbind() bool { return false }

// Bind makes ctx bound the direction's I/O until unbind is called. unbind
// reports whether it stopped the cancellation callback before it ran (as
// context.AfterFunc's stop does).
func (b *Binder) Bind(ctx context.Context) (unbind func() bool) {
	b.mu.Lock()
	b.gen++
	gen := b.gen
	b.done = false
	if ctx.Done() == nil {
		b.end = time.Time{}
		if b.dirty {
			b.set(time.Time{})
			b.dirty = false
		}
		b.mu.Unlock()
		return noUnbind
	}
	b.end, _ = ctx.Deadline()
	b.dirty = true
	b.set(b.end)
	b.mu.Unlock()
	stop := context.AfterFunc(ctx, func() {
		b.mu.Lock()
		if b.gen == gen {
			b.done = true
			b.set(Past)
		}
		b.mu.Unlock()
	})
	return func() bool {
		stopped := stop()
		b.mu.Lock()
		if b.gen == gen {
			b.gen++
		}
		b.mu.Unlock()
		return stopped
	}
}

// Within sets the deadline to at most d from now, never past the bound
// context's; it reports false, doing nothing, once the context has ended.
// It is for callers that poll in slices while a context is bound.
func (b *Binder) Within(d time.Duration) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return false
	}
	end := time.Now().Add(d)
	if !b.end.IsZero() && b.end.Before(end) {
		end = b.end
	}
	b.dirty = true
	b.set(end)
	return true
}
