package manager

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"

	"mproc"
	"mproc/internal/failpoint"
	"mproc/pickle"
)

// Client is a connection to a manager server, Go's or Python's. Control
// calls (create, incref, decref) each dial a connection of their own, as
// Python's clients do; method calls go over connections that called
// accept_connection, one per call in flight, kept for reuse. Over a Unix
// socket to a Go server those connections carry the calls in shared
// memory instead (see DialOptions). A Client is safe for concurrent use by
// multiple goroutines.
type Client struct {
	network, addr string
	key           []byte

	mu   sync.Mutex
	idle []*link // accepted connections not in use
	done bool
	shm  bool // ask for the shared-memory path (until a server refuses it)
}

// DialOptions configure a client; the zero value (or nil) is the default.
type DialOptions struct {
	// SocketOnly keeps every call on the socket. By default a client of a
	// Go server over a Unix socket moves each connection's calls to a pair
	// of shared-memory queues after the handshake, several times faster; a
	// Python server, a TCP address or a server whose queues the client may
	// not open (another user's) keep the socket.
	SocketOnly bool
}

// Dial connects to the manager at addr with authkey key and checks that it
// answers (Python's BaseManager.connect). Errors reaching it match
// ErrServerGone.
func Dial(ctx context.Context, network, addr string, key []byte, opts *DialOptions) (*Client, error) {
	if opts == nil {
		opts = &DialOptions{}
	}
	c := &Client{network: network, addr: addr, key: key, shm: network == "unix" && !opts.SocketOnly}
	if _, err := c.control(ctx, "dummy"); err != nil {
		return nil, err
	}
	return c, nil
}

// Close closes the client's connections. Objects it created stay on the
// server until their references are dropped (the proxies' Close).
func (c *Client) Close() error {
	c.mu.Lock()
	idle := c.idle
	c.idle, c.done = nil, true
	c.mu.Unlock()
	for _, l := range idle {
		l.close()
	}
	return nil
}

// Shutdown asks the server to stop (Python's Manager.shutdown): every
// client's connections are closed, and its objects go with it.
func (c *Client) Shutdown(ctx context.Context) error {
	_, err := c.control(ctx, "shutdown")
	return err
}

func (c *Client) dial(ctx context.Context) (*mproc.Conn, error) {
	conn, err := mproc.Dial(ctx, c.network, c.addr, c.key)
	if errors.Is(err, mproc.ErrAuth) && !connLost(err) && ctx.Err() == nil {
		// A server that dies during the handshake may end the connection
		// as one that refuses the key does: a second try tells them
		// apart, since a dead server accepts no more.
		conn, err = mproc.Dial(ctx, c.network, c.addr, c.key)
	}
	if err != nil {
		if ctx.Err() != nil || errors.Is(err, mproc.ErrAuth) && !connLost(err) {
			return nil, fmt.Errorf("manager %s: %w", c.addr, err)
		}
		return nil, fmt.Errorf("manager %s: %w: %w", c.addr, ErrServerGone, err)
	}
	return conn, nil
}

// connLost reports whether err says the connection was cut (the peer's
// process died): mproc.Dial reports a handshake cut short as ErrAuth.
func connLost(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// exchange sends req on l and reads the reply.
func exchange(ctx context.Context, l *link, req request) (pickle.Tuple, error) {
	buf := sendBufs.Get().(*[]byte)
	b, err := pickle.Encoder{}.Append((*buf)[:0], req.value())
	if err != nil {
		sendBufs.Put(buf)
		return nil, fmt.Errorf("encode %s: %w", req.method, err)
	}
	err = l.send(ctx, b)
	putSendBuf(buf, b)
	if err != nil {
		return nil, gone(ctx, err)
	}
	failpoint.Hit(FailClientSent)
	b, err = l.recv(ctx)
	if err != nil {
		return nil, gone(ctx, err)
	}
	failpoint.Hit(FailClientReplied)
	var v any
	if err := (pickle.Decoder{Objects: allowedObjects}).Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("%w: reply to %s: %w", ErrProtocol, req.method, err)
	}
	t, ok := v.(pickle.Tuple)
	if !ok || len(t) != 2 {
		return nil, fmt.Errorf("%w: reply to %s is a %T, not (kind, value)", ErrProtocol, req.method, v)
	}
	return t, nil
}

// gone maps a connection's failure: the context's error if it ended,
// ErrServerGone otherwise.
func gone(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("%w: %w", ErrServerGone, err)
}

// result turns a reply into a value or an error.
func result(method string, t pickle.Tuple) (any, error) {
	kind, _ := t[0].(string)
	switch kind {
	case kindReturn:
		return t[1], nil
	case kindError:
		if o, ok := t[1].(pickle.Object); ok {
			return nil, remoteError(o)
		}
		return nil, &RemoteError{Name: "Exception", Args: []any{t[1]}}
	case kindTraceback:
		return nil, &RemoteError{Name: "Traceback", Args: []any{t[1]}}
	case kindProxy:
		return proxyToken(method, t[1])
	}
	return nil, fmt.Errorf("%w: reply kind %q to %s", ErrProtocol, kind, method)
}

// token is what a '#PROXY' reply names: a new object the server holds
// with one reference, the caller's.
type token struct{ typeid, id string }

// proxyToken reads a '#PROXY' reply's (exposed, Token).
func proxyToken(method string, v any) (token, error) {
	r, _ := v.(pickle.Tuple)
	if len(r) == 2 {
		if o, ok := r[1].(pickle.Object); ok && o.Name == "Token" {
			if st, _ := o.State.(pickle.Tuple); len(st) == 3 {
				typeid, ok1 := st[0].(string)
				id, ok2 := st[2].(string)
				if ok1 && ok2 {
					return token{typeid, id}, nil
				}
			}
		}
	}
	return token{}, fmt.Errorf("%w: %s returned a malformed proxy", ErrProtocol, method)
}

// follow turns a method's result that is a token into a Ref owning the
// server's reference to it.
func (c *Client) follow(v any, err error) (any, error) {
	if t, ok := v.(token); ok && err == nil {
		return &Ref{c: c, id: t.id, typeid: t.typeid}, nil
	}
	return v, err
}

// control runs a control call on a connection of its own.
func (c *Client) control(ctx context.Context, method string, args ...any) (any, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	t, err := exchange(ctx, socketLink(conn, pickle.DefaultMaxSize), request{method: method, args: args})
	if err != nil {
		return nil, err
	}
	return result(method, t)
}

// create makes a new object of typeid on the server and returns its id;
// the caller holds its one reference.
func (c *Client) create(ctx context.Context, typeid string, args []any, kwds map[string]any) (string, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	t, err := exchange(ctx, socketLink(conn, pickle.DefaultMaxSize), request{method: "create", args: append(pickle.Tuple{typeid}, args...), kwds: kwds})
	if err != nil {
		return "", err
	}
	v, err := result("create", t)
	if err != nil {
		return "", err
	}
	r, ok := v.(pickle.Tuple)
	if !ok || len(r) != 2 {
		return "", fmt.Errorf("%w: create returned %T", ErrProtocol, v)
	}
	id, ok := r[0].(string)
	if !ok {
		return "", fmt.Errorf("%w: create returned an id of type %T", ErrProtocol, r[0])
	}
	return id, nil
}

// call runs a method of object id over an accepted connection. A
// connection whose call was cut short by ctx is closed rather than reused:
// its reply may still come.
func (c *Client) call(ctx context.Context, id, method string, args []any, kwds map[string]any) (any, error) {
	l, err := c.take(ctx)
	if err != nil {
		return nil, err
	}
	t, err := exchange(ctx, l, request{ident: id, method: method, args: args, kwds: kwds})
	if err != nil {
		l.close()
		return nil, err
	}
	c.give(l)
	return c.follow(result(method, t))
}

// take returns an idle accepted connection, or accepts a new one.
func (c *Client) take(ctx context.Context) (*link, error) {
	c.mu.Lock()
	if n := len(c.idle); n > 0 {
		l := c.idle[n-1]
		c.idle = c.idle[:n-1]
		c.mu.Unlock()
		return l, nil
	}
	shm := c.shm
	c.mu.Unlock()
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	if shm {
		l, err := dialShm(ctx, conn)
		var refused *refusedError
		if !errors.As(err, &refused) {
			if err != nil {
				conn.Close()
			}
			return l, err
		}
		// A server that does not know the shared-memory path has closed
		// the connection; keep to the socket from now on.
		conn.Close()
		c.mu.Lock()
		c.shm = false
		c.mu.Unlock()
		if conn, err = c.dial(ctx); err != nil {
			return nil, err
		}
	}
	l := socketLink(conn, pickle.DefaultMaxSize)
	t, err := exchange(ctx, l, request{method: "accept_connection", args: pickle.Tuple{fmt.Sprintf("go-%d", os.Getpid())}})
	if err == nil {
		_, err = result("accept_connection", t)
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	return l, nil
}

func (c *Client) give(l *link) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done || len(c.idle) >= 16 {
		l.close()
		return
	}
	c.idle = append(c.idle, l)
}

// Ref is a client's reference to one object on the server: what every
// proxy is made of.
type Ref struct {
	c      *Client
	id     string
	typeid string // when known: the type a '#PROXY' reply named

	once sync.Once

	// pinned, when set, is the one connection every call of the Ref goes
	// over, one call at a time: a lock belongs to the connection that
	// acquired it.
	pinned bool
	pmu    sync.Mutex
	pconn  *link
}

// New creates an object of typeid on the server with args and kwds, and
// returns the reference to it. It is how proxies of user-registered types
// are made; the built-in types have their own constructors.
func New(ctx context.Context, c *Client, typeid string, args []any, kwds map[string]any) (*Ref, error) {
	id, err := c.create(ctx, typeid, args, kwds)
	if err != nil {
		return nil, err
	}
	return &Ref{c: c, id: id}, nil
}

// ID returns the object's id on the server.
func (r *Ref) ID() string { return r.id }

// Typeid returns the object's type when the server named it (a Ref a
// method returned), "" otherwise.
func (r *Ref) Typeid() string { return r.typeid }

// Call calls the object's method with args and kwds and returns the
// decoded result (pickle's natural Go values). A method that returns a
// new object on the server (Python's method_to_typeid: dict.__iter__, a
// registered callable's proxytype) returns a *Ref to it, which holds one
// reference: Close it when done.
func (r *Ref) Call(ctx context.Context, method string, args []any, kwds map[string]any) (any, error) {
	if !r.pinned {
		return r.c.call(ctx, r.id, method, args, kwds)
	}
	r.pmu.Lock()
	defer r.pmu.Unlock()
	if r.pconn == nil {
		conn, err := r.c.take(ctx)
		if err != nil {
			return nil, err
		}
		r.pconn = conn
	}
	t, err := exchange(ctx, r.pconn, request{ident: r.id, method: method, args: args, kwds: kwds})
	if err != nil {
		// Whatever the connection held is released with it.
		r.pconn.close()
		r.pconn = nil
		return nil, err
	}
	return r.c.follow(result(method, t))
}

// Close drops the reference (decref): the server frees the object when
// its last reference goes. A second Close does nothing.
func (r *Ref) Close(ctx context.Context) error {
	var err error
	r.once.Do(func() {
		r.pmu.Lock()
		if r.pconn != nil {
			r.pconn.close()
			r.pconn = nil
		}
		r.pmu.Unlock()
		_, err = r.c.control(ctx, "decref", r.id)
	})
	return err
}

// convert turns a decoded value into a T, through the pickle codec (the
// value is re-encoded and decoded into T).
func convert[T any](v any) (T, error) {
	var out T
	if x, ok := v.(T); ok {
		return x, nil
	}
	b, err := pickle.Marshal(v)
	if err != nil {
		return out, err
	}
	err = pickle.Unmarshal(b, &out)
	return out, err
}

// Attach returns a proxy of type P (Dict, List, Queue, Lock, ...) for the
// object id on c's server — an object another process created and passed
// on by its ID — taking a reference of its own, which the proxy's Close
// drops.
func Attach[P ~struct{ *Ref }](ctx context.Context, c *Client, id string) (*P, error) {
	if _, err := c.control(ctx, "incref", id); err != nil {
		return nil, err
	}
	r := &Ref{c: c, id: id}
	return pin(P(struct{ *Ref }{r})), nil
}

// pin makes the proxies whose calls must share one connection (locks,
// conditions: the connection holds what they acquire) keep one.
func pin[P ~struct{ *Ref }](p P) *P {
	switch any(p).(type) {
	case Lock, Condition:
		struct{ *Ref }(p).Ref.pinned = true
	}
	return &p
}

// NumObjects returns how many objects the server holds.
func NumObjects(ctx context.Context, c *Client) (int, error) {
	v, err := c.control(ctx, "number_of_objects")
	if err != nil {
		return 0, err
	}
	n, ok := asInt(v)
	if !ok {
		return 0, fmt.Errorf("%w: number_of_objects returned a %T", ErrProtocol, v)
	}
	return n, nil
}

// Create creates an object of typeid with args on c's server and returns a
// proxy of type P for it: for a server's own types (Python's
// BaseManager.register('get_queue', callable=...) is typeid "get_queue").
func Create[P ~struct{ *Ref }](ctx context.Context, c *Client, typeid string, args ...any) (*P, error) {
	r, err := New(ctx, c, typeid, args, nil)
	if err != nil {
		return nil, err
	}
	return pin(P(struct{ *Ref }{r})), nil
}
