package pool

import (
	"encoding/binary"
	"errors"
	"fmt"

	"mproc"
	"mproc/internal/errcode"
)

// Messages. Every message on a pool's queues is bytes: a fixed header
// written here and, after it, a payload encoded by the task's Codec.
//
// Task queue (parent -> one worker):
//
//	[kind u8: taskOne|taskBatch, | taskQuiet][task id u64][name length u16][name][argument(s)]
//
// Result queue (every worker -> parent; the parent also writes to it):
//
//	[kind u8][task id u64][body]
//	resOK       body: the encoded result
//	resBatch    body: the encoded batchResult[R] of a chunk
//	resErr      body: [code u32][message]          the task returned an error
//	resPanic    body: [value length u32][value][stack]
//	resCanceled body: empty                        cancelled before it started
//	resInit     body: [code u32][message]          the initializer failed; id = slot<<32 | gen
//	resExit     body: empty                        put by the parent once the worker (slot<<32 | gen) is reaped
//
// resExit is the parent's own message, put after the worker has been
// reaped: a result the worker committed before dying is ahead of it in the
// queue (the ring hands out positions in order, and a dead writer's
// unfinished slot is skipped), so when the collector reads resExit it has
// already seen every result that worker will ever send.
const (
	taskOne   = 1
	taskBatch = 2
	// taskQuiet, or-ed into a task's kind, says that the parent needs the
	// result only together with others (a Map's chunk): a worker whose
	// next two tasks are already queued puts a clean result without
	// waking the parent (ring.NoWake); the result that leaves its queue
	// with one task wakes it, in time to refill the queue before the
	// worker runs dry. A failure always wakes it.
	taskQuiet = 0x80

	resOK       = 1
	resBatch    = 2
	resErr      = 3
	resPanic    = 4
	resCanceled = 5
	resInit     = 6
	resExit     = 7
)

const taskHeader = 1 + 8 + 2

var errMalformed = errors.New("mproc: pool: malformed message")

// taskMessage returns the message of a task with id 0; setID fills it in.
func taskMessage(kind byte, name string, payload []byte) []byte {
	b := make([]byte, 0, taskHeader+len(name)+len(payload))
	return append(appendTaskHeader(b, kind, name), payload...)
}

// appendTaskHeader appends the header of a task message with id 0.
func appendTaskHeader(b []byte, kind byte, name string) []byte {
	b = append(b, kind)
	b = binary.LittleEndian.AppendUint64(b, 0)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(name)))
	return append(b, name...)
}

func setID(msg []byte, id uint64) { binary.LittleEndian.PutUint64(msg[1:], id) }

// setQuiet sets or clears taskQuiet in a task message.
func setQuiet(msg []byte, quiet bool) {
	if quiet {
		msg[0] |= taskQuiet
	} else {
		msg[0] &^= taskQuiet
	}
}

func parseTask(b []byte) (kind byte, id uint64, name string, payload []byte, err error) {
	if len(b) < taskHeader {
		return 0, 0, "", nil, errMalformed
	}
	n := int(binary.LittleEndian.Uint16(b[9:]))
	if len(b) < taskHeader+n {
		return 0, 0, "", nil, errMalformed
	}
	return b[0], binary.LittleEndian.Uint64(b[1:]), string(b[taskHeader : taskHeader+n]), b[taskHeader+n:], nil
}

func resultHeader(kind byte, id uint64, extra int) []byte {
	b := make([]byte, 0, 9+extra)
	b = append(b, kind)
	return binary.LittleEndian.AppendUint64(b, id)
}

func resultMessage(kind byte, id uint64, payload []byte) []byte {
	return append(resultHeader(kind, id, len(payload)), payload...)
}

func errMessage(kind byte, id uint64, code uint32, msg string) []byte {
	b := resultHeader(kind, id, 4+len(msg))
	b = binary.LittleEndian.AppendUint32(b, code)
	return append(b, msg...)
}

func panicMessage(id uint64, value, stack string) []byte {
	b := resultHeader(resPanic, id, 4+len(value)+len(stack))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(value)))
	b = append(b, value...)
	return append(b, stack...)
}

func parseResult(b []byte) (kind byte, id uint64, body []byte, err error) {
	if len(b) < 9 {
		return 0, 0, nil, errMalformed
	}
	return b[0], binary.LittleEndian.Uint64(b[1:]), b[9:], nil
}

func parseErr(body []byte) (uint32, string) {
	if len(body) < 4 {
		return 0, string(body)
	}
	return binary.LittleEndian.Uint32(body), string(body[4:])
}

func parsePanic(body []byte) (value, stack string) {
	if len(body) < 4 {
		return string(body), ""
	}
	n := min(int(binary.LittleEndian.Uint32(body)), len(body)-4)
	return string(body[4 : 4+n]), string(body[4+n:])
}

// wireErr is a task's error or panic inside a chunk's results.
type wireErr struct {
	Code  uint32 `json:"c,omitempty"`
	Msg   string `json:"m,omitempty"`
	Panic bool   `json:"p,omitempty"`
	Stack string `json:"s,omitempty"`
}

func toWire(err error) *wireErr {
	if err == nil {
		return nil
	}
	return &wireErr{Code: errcode.Code(err), Msg: err.Error()}
}

// from says which worker sent a result, for the errors made of it.
type from struct {
	name string
	pid  int
}

func (w *wireErr) err(f from) error {
	if w == nil {
		return nil
	}
	if w.Panic {
		return &mproc.PanicError{Process: f.name, Pid: f.pid, Value: w.Msg, Stack: w.Stack}
	}
	return &mproc.RemoteError{Process: f.name, Pid: f.pid, Msg: w.Msg, Err: errcode.Error(w.Code)}
}

// batchResult is a chunk's results: every element's value in order (the
// zero value where it failed), and the errors of the elements that failed
// by index. All-success chunks, the usual ones, encode as one plain list.
type batchResult[R any] struct {
	V []R        `json:"v"`
	E []batchErr `json:"e,omitempty"`
}

type batchErr struct {
	I int      `json:"i"`
	E *wireErr `json:"e"`
}

func packSlot(slot int, gen uint32) uint64 { return uint64(slot)<<32 | uint64(gen) }

func unpackSlot(v uint64) (int, uint32) { return int(v >> 32), uint32(v) }

func tooLarge(what string, n, max int) error {
	return fmt.Errorf("%s of %d bytes, maximum %d: %w", what, n, max, mproc.ErrTooLarge)
}
