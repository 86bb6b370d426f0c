package cluster

import (
	"encoding/json"
	"fmt"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
)

// Pool messages. A pool name has four subjects on two work-queue streams:
//
//	MPP_<pool>  mpp.<pool>.task           tasks, one durable consumer "workers" shared by every worker
//	            (core) mpp.<pool>.cancel  cancellations, broadcast to workers: the task id
//	MPR_<pool>  mpr.<pool>.<client>       results, one durable consumer per submitting Pool handle
//
// A task message is the encoded argument (a []A for a chunk of Map) with
// these headers; a result message is the encoded result (a []item[R] for
// a chunk), or a JSON wireErr.
const (
	hdrTask       = "Mproc-Task"        // task: the registered name
	hdrKind       = "Mproc-Kind"        // task: kindOne or kindBatch
	hdrReply      = "Mproc-Reply"       // task: the result subject
	hdrMaxDeliver = "Mproc-Max-Deliver" // task: deliveries before ErrWorkerDied
	hdrTimeout    = "Mproc-Timeout"     // task: TaskTimeout, a time.Duration
	hdrID         = "Mproc-Id"          // result: the task's id (its Nats-Msg-Id)
	hdrStatus     = "Mproc-Status"      // result: one of the statuses below
	hdrWorker     = "Mproc-Worker"      // result: the worker's name
	hdrPid        = "Mproc-Pid"         // result: the worker's pid

	kindOne   = "one"
	kindBatch = "batch"

	statusOK    = "ok"    // the encoded R
	statusBatch = "batch" // the encoded []item[R]
	statusErr   = "err"   // a wireErr: the task's error
	statusPanic = "panic" // a wireErr: the task's panic
	statusDied  = "died"  // a wireErr: delivered past MaxDeliver (ErrWorkerDied)
)

func taskSubject(pool string) string           { return "mpp." + pool + ".task" }
func cancelSubject(pool string) string         { return "mpp." + pool + ".cancel" }
func resultSubject(pool, client string) string { return "mpr." + pool + "." + client }
func taskStream(pool string) string            { return "MPP_" + pool }
func resultStream(pool string) string          { return "MPR_" + pool }

// resultTTL is how long a result waits in its stream for a submitter
// that has gone.
const resultTTL = time.Hour

// maxStack bounds a panic's stack in a result.
const maxStack = 16 << 10

// wireErr is a task's error or panic on the wire: its text and the codes
// of the registered sentinels it matched (errorCodes).
type wireErr struct {
	Codes []string `json:"c,omitempty"`
	Msg   string   `json:"m,omitempty"`
	Panic bool     `json:"p,omitempty"`
	Stack string   `json:"s,omitempty"`
}

func toWire(err error) *wireErr {
	if err == nil {
		return nil
	}
	return &wireErr{Codes: errorCodes(err), Msg: err.Error()}
}

func panicWire(v any) *wireErr {
	s := debug.Stack()
	if len(s) > maxStack {
		s = s[:maxStack]
	}
	return &wireErr{Panic: true, Msg: fmt.Sprint(v), Stack: string(s)}
}

// from says which worker sent a result, for the errors made of it.
type from struct {
	name string
	pid  int
}

func fromHeader(h nats.Header) from {
	pid, _ := strconv.Atoi(h.Get(hdrPid))
	return from{h.Get(hdrWorker), pid}
}

func (w *wireErr) err(f from) error {
	if w == nil {
		return nil
	}
	if w.Panic {
		return &PanicError{Process: f.name, Pid: f.pid, Value: w.Msg, Stack: w.Stack}
	}
	return &RemoteError{Process: f.name, Pid: f.pid, Msg: w.Msg, Err: codeErrors(w.Codes)}
}

func (w *wireErr) encode() []byte {
	b, _ := json.Marshal(w)
	return b
}

func decodeWire(b []byte) *wireErr {
	var w wireErr
	if err := json.Unmarshal(b, &w); err != nil {
		return &wireErr{Msg: fmt.Sprintf("malformed error from worker: %v", err)}
	}
	return &w
}

// item is one result of a chunk.
type item[R any] struct {
	V R        `json:"v"`
	E *wireErr `json:"e,omitempty"`
}
