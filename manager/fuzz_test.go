package manager

import (
	"context"
	"errors"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"mproc"
	"mproc/internal/wire"
	"mproc/pickle"
)

// Bounds of FuzzRequests: how long a request's reply is waited for before
// the program goes on (a blocking call may never answer), how long the
// server may take to answer another client or to notice a hang-up
// (generous: the machine is shared), and what one input may allocate (the
// server's frame limit, mproc.DefaultMaxFrame, plus room).
const (
	fuzzReplyWait = 20 * time.Millisecond
	fuzzLiveness  = 20 * time.Second
	fuzzMaxAlloc  = mproc.DefaultMaxFrame + 64<<20
	fuzzMaxConns  = 4
	// fuzzMaxRecords bounds a program: each record may wait
	// fuzzReplyWait, and longer programs find nothing new.
	fuzzMaxRecords = 48
)

var fuzzKey = []byte("fuzz key")

// FuzzRequests runs a fresh server on a Unix socket and has clients that
// passed the handshake send it a program of frames: well-formed requests,
// pickles that are not requests, bytes that are not pickles, and raw bytes
// that are not even frames. The promises under test: every reply is a
// well-formed reply pickle (#RETURN, #ERROR, #TRACEBACK or #PROXY); the
// server never panics (that ends the fuzzer); while the program's clients
// sit in blocking calls, another client is still answered; once they hang
// up, every connection of theirs ends and what they held is released
// (the server's connection table empties); and the server then shuts down.
//
// The program is a sequence of records (the first fuzzMaxRecords count):
// an op byte, a length byte and that many bytes. Op 0 sends them as one
// frame and waits briefly for the reply; op 1 sends them as raw bytes; op
// 2 opens a new connection (the oldest of fuzzMaxConns is hung up); op 3
// sends a frame and does not wait. The server's object ids are deterministic ("7f0000000001" for the
// first object), so a program can name what it created.
func FuzzRequests(f *testing.F) {
	for _, p := range fuzzSeedPrograms() {
		f.Add(p)
	}
	f.Fuzz(runProgram)
}

// runProgram runs one program of FuzzRequests against a fresh server.
func runProgram(t *testing.T, prog []byte) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	s := NewServer(Options{})
	ln, err := mproc.Listen("unix", "", fuzzKey, mproc.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()
	addr := ln.Addr()

	var conns []*fuzzConn
	defer func() {
		for _, c := range conns {
			c.close()
		}
	}()
	for records := 0; len(prog) >= 2 && records < fuzzMaxRecords; records++ {
		op, n := prog[0]%4, int(prog[1])
		data := prog[2:min(2+n, len(prog))]
		prog = prog[min(2+n, len(prog)):]
		if op == 2 || len(conns) == 0 {
			if len(conns) == fuzzMaxConns {
				conns[0].close()
				conns = conns[1:]
			}
			c := dialFuzz(t, addr, s)
			if c == nil {
				break // the server shut down (a shutdown request)
			}
			conns = append(conns, c)
			if op == 2 {
				continue
			}
		}
		conns[len(conns)-1].do(op, data)
	}

	if !isShutdown(s) {
		// Another client is served while the program's clients wait.
		c := dialFuzz(t, addr, s)
		if c != nil {
			b, _ := pickle.Marshal(request{method: "number_of_objects"}.value())
			if r, err := c.call(b); !isShutdown(s) && (err != nil || r[0] != kindReturn) {
				t.Fatalf("another client asked number_of_objects: %v, %v", r, err)
			}
			c.close()
		}
	}
	for _, c := range conns {
		c.close()
	}
	conns = nil
	deadline := time.Now().Add(fuzzLiveness)
	for {
		s.mu.Lock()
		n := len(s.conns)
		s.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d connections still served %v after their clients hung up\n%s", n, fuzzLiveness, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(fuzzLiveness):
		t.Fatalf("Serve has not returned %v after its context ended", fuzzLiveness)
	}
	runtime.ReadMemStats(&after)
	if d := after.TotalAlloc - before.TotalAlloc; d > fuzzMaxAlloc {
		t.Fatalf("%d bytes allocated by one program", d)
	}
}

func isShutdown(s *Server) bool {
	select {
	case <-s.shutdown:
		return true
	default:
		return false
	}
}

// fuzzConn is one client connection of a program: a raw Unix socket past
// the handshake, and a goroutine that reads and checks every reply.
type fuzzConn struct {
	t       *testing.T
	c       net.Conn
	replies chan pickle.Tuple
	done    chan struct{}
	once    sync.Once
}

// dialFuzz connects to the server at addr and runs the client's side of
// the handshake; nil if the server has shut down.
func dialFuzz(t *testing.T, addr string, s *Server) *fuzzConn {
	t.Helper()
	c, err := net.Dial("unix", addr)
	if err != nil {
		if isShutdown(s) {
			return nil
		}
		t.Fatalf("dial: %v", err)
	}
	c.SetDeadline(time.Now().Add(fuzzLiveness))
	if err := wire.Answer(c, fuzzKey); err == nil {
		err = wire.Deliver(c, fuzzKey, false)
	}
	if err != nil {
		c.Close()
		if isShutdown(s) {
			return nil
		}
		t.Fatalf("handshake: %v", err)
	}
	c.SetDeadline(time.Time{})
	fc := &fuzzConn{t: t, c: c, replies: make(chan pickle.Tuple, 64), done: make(chan struct{})}
	go fc.read(s.decoder())
	return fc
}

// read checks every frame the server sends until it closes the
// connection.
func (fc *fuzzConn) read(d pickle.Decoder) {
	defer close(fc.done)
	for {
		b, err := wire.ReadFrame(fc.c, mproc.DefaultMaxFrame, nil)
		if err != nil {
			return
		}
		var v any
		if err := d.Unmarshal(b, &v); err != nil {
			fc.t.Errorf("a reply that does not decode: %v (% x)", err, b[:min(len(b), 64)])
			return
		}
		r, ok := v.(pickle.Tuple)
		if !ok || len(r) != 2 {
			fc.t.Errorf("a reply that is not a pair: %#v", v)
			return
		}
		switch r[0] {
		case kindReturn, kindProxy:
		case kindTraceback:
			if _, ok := r[1].(string); !ok {
				fc.t.Errorf("a traceback that is not text: %#v", r)
			}
		case kindError:
			if _, ok := r[1].(pickle.Object); !ok {
				fc.t.Errorf("an error that is not an exception: %#v", r)
			}
		default:
			fc.t.Errorf("a reply of kind %#v", r[0])
			return
		}
		select {
		case fc.replies <- r:
		default: // nobody is waiting for it
		}
	}
}

// do runs one op of a program.
func (fc *fuzzConn) do(op byte, data []byte) {
	fc.c.SetWriteDeadline(time.Now().Add(fuzzReplyWait))
	defer fc.c.SetWriteDeadline(time.Time{})
	switch op {
	case 0:
		if wire.WriteFrame(fc.c, data) == nil {
			select {
			case <-fc.replies:
			case <-fc.done:
			case <-time.After(fuzzReplyWait):
			}
		}
	case 1:
		fc.c.Write(data)
	case 3:
		wire.WriteFrame(fc.c, data)
	}
}

// call sends one request and returns its reply, or why none came within
// fuzzLiveness.
func (fc *fuzzConn) call(req []byte) (pickle.Tuple, error) {
	if err := wire.WriteFrame(fc.c, req); err != nil {
		return nil, err
	}
	select {
	case r := <-fc.replies:
		return r, nil
	case <-fc.done:
		select { // the reply may have come before the end of the connection
		case r := <-fc.replies:
			return r, nil
		default:
			return nil, errors.New("the server closed the connection")
		}
	case <-time.After(fuzzLiveness):
		return nil, errors.New("no reply")
	}
}

func (fc *fuzzConn) close() {
	fc.once.Do(func() {
		fc.c.Close()
		<-fc.done
	})
}

// fuzzSeedPrograms are working programs: every built-in type created and
// its methods called, control calls, and requests that are wrong in each
// way parseRequest checks.
func fuzzSeedPrograms() [][]byte {
	const id1, id2 = "7f0000000001", "7f0000000002"
	type rec struct {
		op  byte
		req any // a request tuple, or []byte sent as it is
	}
	ctl := func(method string, args ...any) pickle.Tuple {
		return pickle.Tuple{nil, method, pickle.Tuple(args), map[any]any{}}
	}
	call := func(id, method string, args ...any) pickle.Tuple {
		return pickle.Tuple{id, method, pickle.Tuple(args), map[any]any{}}
	}
	callKw := func(id, method string, kw map[any]any, args ...any) pickle.Tuple {
		return pickle.Tuple{id, method, pickle.Tuple(args), kw}
	}
	newConn := rec{op: 2}
	accept := rec{0, ctl("accept_connection", "fuzz")}
	prog := func(recs ...rec) []byte {
		var b []byte
		for _, r := range recs {
			data, ok := r.req.([]byte)
			if !ok && r.req != nil {
				var err error
				if data, err = pickle.Marshal(r.req); err != nil {
					panic(err)
				}
			}
			if len(data) > 255 {
				panic("seed record too long")
			}
			b = append(append(b, r.op, byte(len(data))), data...)
		}
		return b
	}
	created := func(typeid string, args ...any) []rec {
		return []rec{{0, ctl("create", append([]any{typeid}, args...)...)}, newConn, accept}
	}
	with := func(a []rec, b ...rec) []rec { return append(append([]rec(nil), a...), b...) }
	return [][]byte{
		prog(with(created("dict"),
			rec{0, call(id1, "__setitem__", "k", int64(1))}, rec{0, call(id1, "__getitem__", "k")},
			rec{0, call(id1, "__getitem__", "missing")}, rec{0, call(id1, "keys")}, rec{0, call(id1, "__len__")},
			rec{0, call(id1, "#GETVALUE")}, rec{0, call(id1, "nosuchmethod")}, rec{0, call(id2, "keys")})...),
		prog(with(created("list", pickle.Tuple{int64(1), "two", 3.0}),
			rec{0, call(id1, "append", int64(4))}, rec{0, call(id1, "extend", pickle.Tuple{int64(5)})},
			rec{0, call(id1, "__getitem__", pickle.Object{Module: "builtins", Name: "slice", Args: pickle.Tuple{int64(1), int64(3), nil}})},
			rec{0, call(id1, "__imul__", int64(2))}, rec{0, call(id1, "pop")}, rec{0, call(id1, "index", "two")})...),
		prog(with(created("Queue", int64(2)),
			rec{0, call(id1, "put", "a")}, rec{0, call(id1, "put_nowait", "b")}, rec{0, call(id1, "put_nowait", "c")},
			rec{0, call(id1, "qsize")}, rec{0, call(id1, "get")}, rec{0, call(id1, "get_nowait")},
			rec{0, callKw(id1, "get", map[any]any{"timeout": 0.001})}, rec{3, call(id1, "get")})...),
		prog(with(created("Lock"),
			rec{0, call(id1, "acquire")}, newConn, accept, rec{3, call(id1, "acquire")},
			newConn, accept, rec{0, callKw(id1, "acquire", map[any]any{"blocking": false})}, rec{0, call(id1, "release")})...),
		prog(with(created("RLock"), rec{0, call(id1, "acquire")}, rec{0, call(id1, "acquire")}, rec{0, call(id1, "release")},
			rec{0, call(id1, "release")}, rec{0, call(id1, "release")})...),
		prog(with(created("Event"), rec{0, call(id1, "is_set")}, rec{0, callKw(id1, "wait", map[any]any{"timeout": 0.001})},
			rec{0, call(id1, "set")}, rec{0, call(id1, "wait")}, rec{0, call(id1, "clear")}, rec{3, call(id1, "wait")})...),
		prog(with(created("Semaphore", int64(1)), rec{0, call(id1, "acquire")}, rec{3, call(id1, "acquire")})...),
		prog(with(created("BoundedSemaphore", int64(1)), rec{0, call(id1, "release")}, rec{0, call(id1, "acquire")})...),
		prog(with(created("Condition"), rec{0, call(id1, "acquire")}, rec{0, callKw(id1, "wait", map[any]any{"timeout": 0.001})},
			rec{0, call(id1, "notify")}, rec{0, call(id1, "notify_all")}, rec{0, call(id1, "release")}, rec{3, call(id1, "wait")})...),
		prog(with(created("Barrier", int64(2)), rec{0, call(id1, "n_waiting")}, rec{3, call(id1, "wait")},
			newConn, accept, rec{0, call(id1, "wait")}, rec{0, call(id1, "abort")}, rec{0, call(id1, "reset")})...),
		prog(with(created("Value", "i", int64(7)), rec{0, call(id1, "get")}, rec{0, call(id1, "set", int64(8))},
			rec{0, call(id1, "#GETVALUE")})...),
		prog(with(created("Array", "i", int64(4)), rec{0, call(id1, "__len__")}, rec{0, call(id1, "__getitem__", int64(2))},
			rec{0, call(id1, "__setitem__", int64(2), int64(9))}, rec{0, call(id1, "__getitem__", int64(-9))})...),
		prog(with(created("Namespace"), rec{0, call(id1, "__setattr__", "x", int64(1))}, rec{0, call(id1, "__getattribute__", "x")},
			rec{0, call(id1, "__delattr__", "y")})...),
		prog(rec{0, ctl("create", "dict")}, newConn, rec{0, ctl("incref", id1)}, newConn, rec{0, ctl("decref", id1)},
			newConn, rec{0, ctl("decref", id1)}, newConn, rec{0, ctl("decref", id1)}, newConn, rec{0, ctl("number_of_objects")},
			newConn, rec{0, ctl("debug_info")}, newConn, rec{0, ctl("dummy")}, newConn, rec{0, ctl("get_methods")}),
		prog(rec{0, ctl("create", "nosuchtype")}, newConn, rec{0, ctl("create")}, newConn, rec{0, ctl("create", int64(1))},
			newConn, rec{0, ctl("nosuchcall")}, newConn, rec{0, call(id1, "keys")}),
		prog(rec{0, ctl(methodAcceptShm)}, rec{0, true}, newConn, rec{0, ctl(methodAcceptShm)}, rec{0, false},
			newConn, rec{0, ctl(methodAcceptShm)}, rec{0, []byte("not a pickle")}),
		prog(rec{0, ctl("shutdown")}),
		// Requests wrong in each way parseRequest checks, then bytes that
		// are no pickle and no frame.
		prog(rec{0, pickle.Tuple{nil, "dummy", pickle.Tuple{}}}, newConn, rec{0, pickle.Tuple{"", "m", pickle.Tuple{}, map[any]any{}}},
			newConn, rec{0, pickle.Tuple{int64(1), "m", pickle.Tuple{}, map[any]any{}}}, newConn, rec{0, pickle.Tuple{nil, int64(1), pickle.Tuple{}, map[any]any{}}},
			newConn, rec{0, pickle.Tuple{nil, "dummy", "args", map[any]any{}}}, newConn, rec{0, pickle.Tuple{nil, "dummy", []any{}, map[any]any{int64(1): 2}}},
			newConn, rec{0, pickle.Tuple{nil, "dummy", []any{}, nil}}, newConn, rec{0, []byte{0x80, 0x04, 0x95}},
			newConn, rec{1, []byte{0, 0, 0, 200, 0x80}}, newConn, rec{1, []byte{0xff, 0xff, 0xff, 0xfe}},
			newConn, rec{1, []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 3, 0x80, 0x04, 0x2e}}),
	}
}
