package cluster

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"mproc"
	"mproc/internal/errcode"
	"mproc/pool"
)

// Errors of connections, queues and pools. Match with errors.Is. The
// queue and pool errors are the local ones (mproc.ErrFull, pool.ErrWorkerDied,
// ...), so code written for mproc.Queue and pool.Pool tests them unchanged.
var (
	// ErrUnreachable: Connect could not reach any NATS server before its
	// context ended: refused, silent, or a failed handshake. The error also
	// holds nats.go's own (errors.As, or its text).
	ErrUnreachable = errors.New("mproc: NATS server unreachable")
	// ErrNoJetStream: the server answered but has no JetStream for this
	// account (nats-server -js, or jetstream {} in its configuration).
	ErrNoJetStream = errors.New("mproc: JetStream not enabled on the NATS server")
)

// Queue errors (the local queue's sentinels).
var (
	// ErrFull: a TryPut found the queue at its capacity (the server refused
	// the message: "maximum messages exceeded").
	ErrFull = mproc.ErrFull
	// ErrEmpty: a TryGet found no message ready.
	ErrEmpty = mproc.ErrEmpty
	// ErrTooLarge: a message over the queue's or the server's maximum
	// (MaxMessage, max_payload).
	ErrTooLarge = mproc.ErrTooLarge
	// ErrTooManyTaskDone: TaskDone with no message got through this handle
	// and not yet done.
	ErrTooManyTaskDone = mproc.ErrTooManyTaskDone
	// ErrInvalidName: a queue or pool name with anything but ASCII letters,
	// digits, '-' and '_', or longer than MaxNameLen.
	ErrInvalidName = mproc.ErrInvalidName
)

// Pool errors (the local pool's sentinels).
var (
	// ErrClosed: Submit (or Map) after Close or Terminate.
	ErrClosed = pool.ErrClosed
	// ErrTerminated: the future was pending when Terminate was called or
	// the pool's context ended.
	ErrTerminated = pool.ErrTerminated
	// ErrWorkerDied: the task's worker died (or was cut off for longer
	// than the pool's AckWait) more times than PoolOptions.MaxDeliver
	// allows.
	ErrWorkerDied = pool.ErrWorkerDied
	// ErrNotRegistered: the worker that took the task has no function
	// registered under its name.
	ErrNotRegistered = mproc.ErrNotRegistered
)

// Error identity across machines.
//
// A worker's error travels as its text and the codes of every registered
// sentinel it matches (errors.Is). A code is the sentinel's own text:
// the worker and the submitter may be different binaries, so the local
// internal/errcode numbering, positions in one binary's table, cannot
// serve. The receiver turns the codes it knows back into sentinels, so
// errors.Is(err, ErrX) holds on its side. Registered: every sentinel mproc
// and its packages register with errcode (the context errors, the os
// errors mproc reuses, mproc's and pool's sentinels), this package's, and
// the caller's (RegisterError).
var codes struct {
	sync.Mutex
	synced uint32 // errcode codes taken in
	byText map[string]error
	order  []error // registration order; matched last first
}

// RegisterError makes errs keep their identity from a worker to the
// submitter of a task: a task error that matches one of them (errors.Is)
// arrives as an *mproc.RemoteError that matches it too. Both sides must
// register the sentinel; they agree on it by its text, which must be
// unique (RegisterError panics if another error already has it).
// Call it at package initialisation, as Register.
func RegisterError(errs ...error) {
	codes.Lock()
	defer codes.Unlock()
	initCodes()
	for _, err := range errs {
		addCode(err, true)
	}
}

func addCode(err error, strict bool) {
	if err == nil {
		return
	}
	text := err.Error()
	if old, ok := codes.byText[text]; ok {
		if old != err && strict {
			panic("mproc/cluster: RegisterError: another error has the text " + text)
		}
		return
	}
	codes.byText[text] = err
	codes.order = append(codes.order, err)
}

// initCodes takes in what errcode registered since the last call (mproc
// and its packages register there at initialisation), and this
// package's own sentinels the first time.
func initCodes() {
	if codes.byText == nil {
		codes.byText = map[string]error{}
		for _, err := range []error{ErrUnreachable, ErrNoJetStream, os.ErrInvalid} {
			addCode(err, false)
		}
	}
	for c := codes.synced + 1; ; c++ {
		err := errcode.Error(c)
		if err == nil {
			break
		}
		addCode(err, false)
		codes.synced = c
	}
}

// errorCodes returns the codes of the registered sentinels err matches,
// the most recently registered (the most specific, usually) first.
func errorCodes(err error) []string {
	codes.Lock()
	defer codes.Unlock()
	initCodes()
	var out []string
	for i := len(codes.order) - 1; i >= 0; i-- {
		if errors.Is(err, codes.order[i]) {
			out = append(out, codes.order[i].Error())
		}
	}
	return out
}

// codeErrors returns the sentinels of the codes this side knows: nil, one,
// or their errors.Join.
func codeErrors(cs []string) error {
	codes.Lock()
	defer codes.Unlock()
	initCodes()
	var errs []error
	for _, c := range cs {
		if err, ok := codes.byText[c]; ok {
			errs = append(errs, err)
		}
	}
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return errors.Join(errs...)
}

// RemoteError and PanicError are mproc's: a task's error or panic arrives
// as the local pool's do. Process is the worker's name (host:pid by
// default, ServeOptions.Name), Pid its pid on its own machine.
type (
	RemoteError = mproc.RemoteError
	PanicError  = mproc.PanicError
)

// MaxNameLen is the longest queue or pool name.
const MaxNameLen = 64

// checkName validates a queue or pool name: JetStream stream names
// cannot hold '.', '*', '>', whitespace or path separators, and subjects
// are built from it.
func checkName(what, name string) error {
	if name == "" || len(name) > MaxNameLen || strings.IndexFunc(name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	}) >= 0 {
		return fmt.Errorf("%s name %q: %w", what, name, ErrInvalidName)
	}
	return nil
}
