package manager

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"mproc"
	"mproc/internal/failpoint"
	"mproc/internal/owner"
	"mproc/pickle"
)

// Options configure a server.
type Options struct {
	// Types are object types besides the built-in ones (a built-in's name
	// may be taken over).
	Types []Type
	// Decoder bounds the pickles of requests; the zero value is the pickle
	// package's defaults.
	Decoder pickle.Decoder
}

// A Type is a kind of object a server creates on request: Python's
// typeid. New makes one from create's arguments.
type Type struct {
	Name string
	New  func(a Args) (*Object, error)
}

// Object is what a server holds: the methods a client may call, by name.
// Nothing else of it is reachable from the network.
type Object struct {
	Methods map[string]Method
	// Value, if not nil, returns a copy of the object for '#GETVALUE'.
	Value func() any
}

// exposed returns the object's method names, sorted, as create replies.
func (o *Object) exposed() pickle.Tuple {
	names := make([]string, 0, len(o.Methods))
	for n := range o.Methods {
		names = append(names, n)
	}
	slices.Sort(names)
	t := make(pickle.Tuple, len(names))
	for i, n := range names {
		t[i] = n
	}
	return t
}

// A Method runs one call. It returns the reply's value, or an error: a
// *pyError raises that exception in the caller, any other error a
// RuntimeError with its text. A *Proxied value is a new object the caller
// gets a proxy of.
type Method func(c *Call, a Args) (any, error)

// Proxied is a method's result that stays on the server: a new object of
// type Typeid, which the server holds with one reference, the caller's,
// and replies with ('#PROXY', (exposed, Token)) — Python's
// method_to_typeid (dict.__iter__ returns an "Iterator").
type Proxied struct {
	Typeid string
	Obj    *Object
}

// Call is what a method knows of the call it runs: its context, which ends
// when the client's connection closes or the server stops, and the
// connection, which owns what the call acquires.
type Call struct {
	Ctx  context.Context
	conn *serverConn
}

// watch, for a call about to block, ends the call's context if the
// client's connection ends meanwhile: a client that died or gave up must
// not be handed a queue's item or a lock it will never see. A client never
// sends while its call runs, so the socket becoming readable (data or its
// end) is the sign. The shared-memory path's socket is watched all along.
func (c *Call) watch() (stop func()) {
	sc := c.conn
	if sc == nil || sc.l.watched != nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(c.Ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if ok, err := sc.c.Poll(ctx); ok || (err != nil && ctx.Err() == nil) {
			sc.hangup()
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// gone reports whether the call's client is gone, for a call whose wait
// has just ended with the state it waited for: the watcher may not have
// run yet when the client died and an item came at once. It looks at the
// client process, when known, and at the socket (without waiting).
func (c *Call) gone() bool {
	sc := c.conn
	switch {
	case sc == nil:
		return false
	case sc.ctx.Err() != nil:
		return true
	case sc.peer != 0 && !owner.Alive(owner.Unpack(sc.peer)):
		sc.hangup()
		return true
	case sc.l.watched != nil:
		return false // the shared-memory path's watcher holds the socket
	}
	if ok, err := sc.c.Poll(doneCtx); ok || err != nil {
		sc.hangup()
		return true
	}
	return false
}

// doneCtx makes Poll look once without waiting.
var doneCtx = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// onClose runs f once the call's connection ends, unless the returned
// cancel ran first: what a connection holds (a lock) is released when it
// goes.
func (c *Call) onClose(f func()) (cancel func()) {
	return c.conn.onClose(f)
}

// owner identifies the connection, the holder of what it acquires.
func (c *Call) owner() *serverConn { return c.conn }

// Args are a call's positional and keyword arguments.
type Args struct {
	Pos pickle.Tuple
	Kw  map[string]any
}

// Get returns the argument at position i, or else the keyword name, or
// else def.
func (a Args) Get(i int, name string, def any) any {
	if i < len(a.Pos) {
		return a.Pos[i]
	}
	if v, ok := a.Kw[name]; ok {
		return v
	}
	return def
}

// Server is a manager server: its objects and the clients it serves.
type Server struct {
	opts  Options
	types map[string]Type

	mu    sync.Mutex
	objs  map[string]*entry
	next  uint64
	conns map[*serverConn]struct{}

	stop     context.CancelFunc
	shutdown chan struct{} // closed by the shutdown call
	once     sync.Once
	reaping  bool          // a reaper goroutine runs
	served   chan struct{} // closed when Serve returns
	addr     any           // the address Tokens carry: a path, or (host, port)
}

// entry is one object and its references. refs counts them all; owners
// counts those taken by a known process (a client over a Unix socket, by
// its packed owner token): when that process dies, its references are
// dropped (reap). References taken over TCP have no known owner and stay
// until decref, as in Python.
type entry struct {
	typeid string
	obj    *Object
	refs   int
	owners map[uint64]int
}

// NewServer returns a server with the built-in types and opts.Types.
func NewServer(opts Options) *Server {
	s := &Server{opts: opts, types: map[string]Type{}, objs: map[string]*entry{},
		conns: map[*serverConn]struct{}{}, shutdown: make(chan struct{}), served: make(chan struct{}),
		next: 0x7f0000000000}
	for _, t := range builtins() {
		s.types[t.Name] = t
	}
	for _, t := range append(registeredTypes(), opts.Types...) {
		s.types[t.Name] = t
	}
	return s
}

// Serve serves a manager on ln with a new server until ctx ends or a
// client calls shutdown; see Server.Serve.
func Serve(ctx context.Context, ln *mproc.Listener, opts Options) error {
	return NewServer(opts).Serve(ctx, ln)
}

// Serve accepts clients on ln until ctx ends or a client calls shutdown,
// then closes ln and every client's connection and returns nil (or the
// listener's error).
func (s *Server) Serve(ctx context.Context, ln *mproc.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	s.stop = cancel
	defer cancel()
	defer close(s.served)
	sweepShm()
	s.addr = ln.Addr()
	if ln.Network() != "unix" {
		if host, port, ok := strings.Cut(ln.Addr(), ":"); ok {
			p, _ := strconv.Atoi(port)
			s.addr = pickle.Tuple{strings.Trim(host, "[]"), int64(p)}
		}
	}
	go func() {
		select {
		case <-ctx.Done():
		case <-s.shutdown:
		}
		cancel()
		ln.Close()
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept(ctx)
		if err != nil {
			s.closeAll()
			if ctx.Err() != nil || errors.Is(err, os.ErrClosed) {
				return nil
			}
			return err
		}
		wg.Go(func() { s.serveConn(ctx, c) })
	}
}

func (s *Server) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for sc := range s.conns {
		sc.c.Close()
	}
}

// NumObjects returns how many objects the server holds.
func (s *Server) NumObjects() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.objs)
}

// serverConn is one client connection.
type serverConn struct {
	c      *mproc.Conn
	l      *link
	peer   uint64 // the client process's packed owner token, 0 if unknown
	ctx    context.Context
	hangup context.CancelFunc // ends ctx
	mu     sync.Mutex
	closed bool
	hooks  map[int]func()
	nhooks int
}

func (sc *serverConn) onClose(f func()) (cancel func()) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.closed {
		f()
		return func() {}
	}
	if sc.hooks == nil {
		sc.hooks = map[int]func(){}
	}
	sc.nhooks++
	id := sc.nhooks
	sc.hooks[id] = f
	return func() {
		sc.mu.Lock()
		delete(sc.hooks, id)
		sc.mu.Unlock()
	}
}

// end runs the connection's hooks: it releases what it held.
func (sc *serverConn) end() {
	sc.mu.Lock()
	sc.closed = true
	hooks := sc.hooks
	sc.hooks = nil
	sc.mu.Unlock()
	for _, f := range hooks {
		f()
	}
}

func (s *Server) serveConn(ctx context.Context, c *mproc.Conn) {
	ctx, cancel := context.WithCancel(ctx)
	maxMsg := s.opts.Decoder.MaxSize
	if maxMsg <= 0 {
		maxMsg = pickle.DefaultMaxSize
	}
	l := socketLink(c, maxMsg)
	sc := &serverConn{c: c, l: l, ctx: ctx, hangup: cancel, peer: peerOf(c)}
	s.mu.Lock()
	s.conns[sc] = struct{}{}
	s.mu.Unlock()
	defer func() {
		cancel()
		l.close()
		sc.end()
		s.mu.Lock()
		delete(s.conns, sc)
		s.mu.Unlock()
	}()
	req, err := s.recv(ctx, l)
	if err != nil {
		return
	}
	switch {
	case req.ident != "":
		s.send(ctx, l, pickle.Tuple{kindTraceback, "a method call on a connection that has not called accept_connection"})
		return
	case req.method == methodAcceptShm && sameMachine(c):
		shm, err := s.acceptShm(ctx, l)
		if err != nil {
			return
		}
		if shm {
			l.watch(cancel)
		}
	default:
		reply := s.control(req, sc.peer)
		if s.send(ctx, l, reply) != nil {
			return
		}
		switch req.method {
		case "shutdown":
			s.send(ctx, l, reply) // Python's server answers a shutdown twice
			s.once.Do(func() { close(s.shutdown) })
			return
		case "accept_connection":
		default:
			return // one control call per connection
		}
	}
	for {
		req, err := s.recv(ctx, l)
		if err != nil {
			return
		}
		if s.send(ctx, l, s.call(&Call{Ctx: ctx, conn: sc}, req)) != nil {
			return
		}
	}
}

// sameMachine reports whether c's peer is a process on this machine (a
// Unix socket), which may share memory with the server.
func sameMachine(c *mproc.Conn) bool {
	_, err := c.PeerPid()
	return err == nil
}

// recv reads a request. A pickle that cannot be decoded, or is not a
// request, ends the connection after a '#TRACEBACK' reply (its frame was
// read whole, but what follows cannot be trusted to belong together).
func (s *Server) recv(ctx context.Context, l *link) (request, error) {
	b, err := l.recv(ctx)
	if err != nil {
		return request{}, err
	}
	var v any
	err = s.decoder().Unmarshal(b, &v)
	var r request
	if err == nil {
		r, err = parseRequest(v)
	}
	if err != nil {
		s.send(ctx, l, pickle.Tuple{kindTraceback, fmt.Sprintf("bad request: %v", err)})
		return request{}, err
	}
	return r, nil
}

func (s *Server) decoder() pickle.Decoder {
	d := s.opts.Decoder
	d.Objects = allowedObjects
	return d
}

func (s *Server) send(ctx context.Context, l *link, reply pickle.Tuple) error {
	buf := sendBufs.Get().(*[]byte)
	b, err := pickle.Encoder{}.Append((*buf)[:0], reply)
	if err != nil {
		// A result that cannot be pickled (Python: '#UNSERIALIZABLE').
		b, err = pickle.Encoder{}.Append((*buf)[:0], pickle.Tuple{kindTraceback, fmt.Sprintf("result cannot be sent: %v", err)})
		if err != nil {
			sendBufs.Put(buf)
			return err
		}
	}
	err = l.send(ctx, b)
	putSendBuf(buf, b)
	return err
}

// control runs a control call from the process peer (0: unknown).
func (s *Server) control(r request, peer uint64) pickle.Tuple {
	v, err := s.controlCall(r, peer)
	if err != nil {
		return pickle.Tuple{kindTraceback, err.Error()}
	}
	return pickle.Tuple{kindReturn, v}
}

func (s *Server) controlCall(r request, peer uint64) (any, error) {
	switch r.method {
	case "dummy", "shutdown", "accept_connection":
		return nil, nil
	case "create":
		if len(r.args) < 1 {
			return nil, errors.New("create: no typeid")
		}
		typeid, ok := r.args[0].(string)
		if !ok {
			return nil, fmt.Errorf("create: typeid of type %T", r.args[0])
		}
		id, obj, err := s.create(typeid, Args{Pos: r.args[1:], Kw: r.kwds}, peer)
		if err != nil {
			return nil, err
		}
		return pickle.Tuple{id, obj.exposed()}, nil
	case "incref", "decref":
		if len(r.args) != 1 {
			return nil, fmt.Errorf("%s: want one object id", r.method)
		}
		id, _ := r.args[0].(string)
		return nil, s.ref(id, r.method == "incref", peer)
	case "number_of_objects":
		return int64(s.NumObjects()), nil
	case "debug_info":
		s.mu.Lock()
		defer s.mu.Unlock()
		info := ""
		for id, e := range s.objs {
			info += fmt.Sprintf("  %s:       refcount=%d\n    %s\n", id, e.refs, e.typeid)
		}
		return info, nil
	case "get_methods":
		return nil, errors.New("get_methods: not supported (create returns the exposed methods)")
	}
	return nil, fmt.Errorf("unknown control call %q", r.method)
}

// create makes an object of typeid with one reference, peer's.
func (s *Server) create(typeid string, a Args, peer uint64) (string, *Object, error) {
	t, ok := s.types[typeid]
	if !ok {
		return "", nil, fmt.Errorf("create: unknown typeid %q", typeid)
	}
	obj, err := t.New(a)
	if err != nil {
		return "", nil, fmt.Errorf("create %s: %w", typeid, err)
	}
	return s.hold(typeid, obj, peer), obj, nil
}

// hold registers obj under a new id with one reference, peer's.
func (s *Server) hold(typeid string, obj *Object, peer uint64) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next++
	id := fmt.Sprintf("%x", s.next)
	e := &entry{typeid: typeid, obj: obj}
	s.objs[id] = e
	s.refLocked(e, id, true, peer)
	failpoint.Hit(FailServerCreated)
	return id
}

// ref takes or drops one of peer's references to object id. A call from
// a process that has died by now counts for nothing: its references are
// the reaper's to drop, all of them, and a decref counted as well would
// drop another process's reference (the reaper may have run already).
func (s *Server) ref(id string, up bool, peer uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.objs[id]
	if !ok {
		return fmt.Errorf("KeyError: %q: no such object", id)
	}
	if peer != 0 && !owner.Alive(owner.Unpack(peer)) {
		return nil
	}
	s.refLocked(e, id, up, peer)
	failpoint.Hit(FailServerRef)
	return nil
}

// refLocked takes or drops one of peer's references to e; s.mu is held.
// A decref from a process that holds none of the object's owned
// references drops an unowned one (a reference that crossed processes in
// a pickled proxy is taken by one process and may be dropped by another).
func (s *Server) refLocked(e *entry, id string, up bool, peer uint64) {
	if up {
		e.refs++
		if peer != 0 {
			if e.owners == nil {
				e.owners = map[uint64]int{}
			}
			e.owners[peer]++
			s.startReaper()
		}
		return
	}
	e.refs--
	if e.owners[peer] > 0 {
		if e.owners[peer]--; e.owners[peer] == 0 {
			delete(e.owners, peer)
		}
	}
	if e.refs <= 0 {
		delete(s.objs, id)
	}
}

// reapEvery is how often the reaper looks for processes that died holding
// references.
const reapEvery = 250 * time.Millisecond

// startReaper starts the goroutine that drops the references of dead
// processes, if none runs; s.mu is held. It ends when no reference has an
// owner left.
func (s *Server) startReaper() {
	if s.reaping {
		return
	}
	s.reaping = true
	go func() {
		t := time.NewTicker(reapEvery)
		defer t.Stop()
		alive := map[uint64]bool{}
		for {
			select {
			case <-t.C:
			case <-s.served:
				return
			}
			s.mu.Lock()
			owned := false
			clear(alive)
			for id, e := range s.objs {
				for tok, n := range e.owners {
					a, seen := alive[tok]
					if !seen {
						a = owner.Alive(owner.Unpack(tok))
						alive[tok] = a
					}
					if a {
						owned = true
						continue
					}
					delete(e.owners, tok)
					if e.refs -= n; e.refs <= 0 {
						delete(s.objs, id)
					}
					failpoint.Hit(FailServerReaped)
				}
			}
			if !owned {
				s.reaping = false
				s.mu.Unlock()
				return
			}
			s.mu.Unlock()
		}
	}()
}

// peerOf returns the packed owner token of c's peer process, 0 when it
// is not known (TCP). A peer that has died already (a client killed right
// after its request) gets deadPeer's token, which no live process has, so
// that what it creates is reaped, not held for ever as if unowned.
func peerOf(c *mproc.Conn) uint64 {
	pid, err := c.PeerPid()
	if err != nil || pid <= 0 || pid == os.Getpid() {
		return 0
	}
	return peerToken(pid)
}

// peerToken returns the packed owner token of process pid, the peer of a
// Unix socket; if it has died, one with a start time no process can have
// (owner.Alive reports false for it).
func peerToken(pid int) uint64 {
	t, err := owner.Of(pid)
	if err != nil {
		return owner.Token{Pid: int32(pid), Start: 1<<42 - 1}.Pack()
	}
	return t.Pack()
}

// call runs a method call.
func (s *Server) call(c *Call, r request) pickle.Tuple {
	s.mu.Lock()
	e, ok := s.objs[r.ident]
	s.mu.Unlock()
	if !ok {
		return pickle.Tuple{kindTraceback, fmt.Sprintf("KeyError: object %q does not exist (it was freed, or never created)", r.ident)}
	}
	m, ok := e.obj.Methods[r.method]
	if !ok {
		switch {
		case r.method == "#GETVALUE" && e.obj.Value != nil:
			return pickle.Tuple{kindReturn, e.obj.Value()}
		case r.method == "__repr__" || r.method == "__str__":
			return pickle.Tuple{kindReturn, fmt.Sprintf("<%s object %s>", e.typeid, r.ident)}
		}
		return pickle.Tuple{kindTraceback, fmt.Sprintf("AttributeError: method %q of %s object is not in exposed=%v", r.method, e.typeid, e.obj.exposed())}
	}
	v, err := m(c, Args{Pos: r.args, Kw: r.kwds})
	if err != nil {
		var pe *pyError
		if !errors.As(err, &pe) {
			pe = runtimeError(err.Error())
		}
		return pickle.Tuple{kindError, pickle.Object{Module: pe.class.Module, Name: pe.class.Name, Args: pickle.Tuple(pe.args)}}
	}
	if p, ok := v.(*Proxied); ok {
		id := s.hold(p.Typeid, p.Obj, c.conn.peer)
		token := pickle.Object{Module: "multiprocessing.managers", Name: "Token", NewObj: true,
			State: pickle.Tuple{p.Typeid, s.addr, id}}
		return pickle.Tuple{kindProxy, pickle.Tuple{p.Obj.exposed(), token}}
	}
	return pickle.Tuple{kindReturn, v}
}

// Typed makes a Method of fn, for user types: the call's first positional
// argument (or none) is converted to A through the pickle codec (a Python
// int to an int, a dict to a struct or a map, ...), and fn's result is the
// reply. An argument that does not convert raises TypeError.
func Typed[A, R any](fn func(ctx context.Context, a A) (R, error)) Method {
	return func(c *Call, args Args) (any, error) {
		var a A
		if len(args.Pos) > 0 {
			var err error
			if a, err = convert[A](args.Pos[0]); err != nil {
				return nil, typeError("argument: %v", err)
			}
		}
		return fn(c.Ctx, a)
	}
}
