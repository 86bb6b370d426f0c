package cluster

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Options configure Connect. The zero value starts an embedded server
// with a temporary store, reachable from this process only.
type Options struct {
	// URLs are the NATS servers to connect to ("nats://host:4222",
	// "tls://host:4222"); an entry may itself be a comma-separated list,
	// as nats.Connect takes. None: start an embedded server in this
	// process instead.
	URLs []string

	// Authentication, for URLs and for the embedded server alike: a
	// credentials file (JWT and NKey seed, nats.UserCredentials; URLs
	// only), a user and password, or a token.
	UserCredentials string
	User, Password  string
	Token           string
	// TLS is the client's TLS configuration for URLs (nats.Secure). The
	// embedded server's own TLS goes in Server.
	TLS *tls.Config

	// Name names the connection on the server, for its monitoring;
	// "mproc <program> <pid>" by default.
	Name string

	// Dir is the embedded server's JetStream store directory, created if
	// need be and kept; "" makes a temporary one that Close removes.
	Dir string
	// Listen is the address where the embedded server accepts other
	// processes ("127.0.0.1:0" for a free loopback port; URL says which):
	// "" means no listener at all, only this process's in-process
	// connection, which starts fastest and exposes nothing. A listener
	// without User/Password or Token in Options gets a random token,
	// which URL includes.
	Listen string
	// Server, if not nil, is the base of the embedded server's options,
	// for what Options does not cover (cluster routes, accounts, limits,
	// TLS, logging). Dir and Listen, when set, override its StoreDir and
	// Host/Port; JetStream is always enabled. Its authentication is its
	// own (Options' credentials are then only the client's), and unless
	// it sets DontListen or Listen is set, it listens where nats-server
	// would: Port 0 means 4222.
	Server *server.Options

	// NATS are more nats.go options, applied last (reconnection policy,
	// event handlers). By default the client reconnects forever, every
	// half second.
	NATS []nats.Option
}

// DefaultConnectTimeout bounds Connect when its context has no deadline.
const DefaultConnectTimeout = 10 * time.Second

// Conn is a connection to NATS JetStream, and the embedded server when
// Connect started one. Queues, pools and Serve work through it. Its
// methods are safe for concurrent use.
//
// IMPORTANT: Close it: an embedded server lives until then.
type Conn struct {
	nc  *nats.Conn
	js  jetstream.JetStream
	srv *server.Server // the embedded server, or nil
	url string         // what others dial, "" if they cannot
	dir string         // a temporary store to remove, or ""

	closeOnce sync.Once
	life      context.Context // cancelled by Close: ends the calls of queues, pools, Serve
	kill      context.CancelFunc
}

// Connect connects to the NATS servers of opts.URLs, or starts an
// embedded nats-server with JetStream (a millisecond or two) and connects
// to it in-process. ctx bounds the connection attempt (DefaultConnectTimeout
// without a deadline); a server that refuses, stays silent or cannot be
// resolved gives ErrUnreachable once ctx ends or every URL has failed.
// Connect does not retry an initial connection; once connected, the
// client reconnects by itself (see Options.NATS).
func Connect(ctx context.Context, opts Options) (*Conn, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultConnectTimeout)
		defer cancel()
	}
	if len(opts.URLs) == 0 {
		return connectEmbedded(ctx, opts)
	}
	urls := strings.Join(opts.URLs, ",")
	nopts, err := clientOptions(ctx, opts)
	if err != nil {
		return nil, err
	}
	nc, err := dial(ctx, func() (*nats.Conn, error) { return nats.Connect(urls, nopts...) })
	if err != nil {
		if !errors.Is(err, nats.ErrAuthorization) && !errors.Is(err, context.Canceled) {
			err = fmt.Errorf("%w: %w", ErrUnreachable, err)
		}
		return nil, fmt.Errorf("connect to %s: %w", redact(urls), err)
	}
	c, err := newConn(ctx, nc)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", redact(urls), err)
	}
	c.url = nc.ConnectedUrl()
	if u, err := url.Parse(c.url); err == nil {
		u.User = nil
		c.url = u.String()
	}
	return c, nil
}

// clientOptions turns opts into nats.go options; ctx's deadline bounds
// each dial.
func clientOptions(ctx context.Context, opts Options) ([]nats.Option, error) {
	name := opts.Name
	if name == "" {
		name = fmt.Sprintf("mproc %s %d", filepath.Base(os.Args[0]), os.Getpid())
	}
	timeout := 2 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(d), time.Millisecond)
	}
	nopts := []nats.Option{
		nats.Name(name),
		nats.Timeout(timeout),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
	}
	if opts.UserCredentials != "" {
		nopts = append(nopts, nats.UserCredentials(opts.UserCredentials))
	}
	if opts.User != "" || opts.Password != "" {
		nopts = append(nopts, nats.UserInfo(opts.User, opts.Password))
	}
	if opts.Token != "" {
		nopts = append(nopts, nats.Token(opts.Token))
	}
	if opts.TLS != nil {
		nopts = append(nopts, nats.Secure(opts.TLS))
	}
	return append(nopts, opts.NATS...), nil
}

// dial runs connect, which takes no context, and gives up on it when ctx
// ends (closing the connection should it arrive later).
func dial(ctx context.Context, connect func() (*nats.Conn, error)) (*nats.Conn, error) {
	type result struct {
		nc  *nats.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		nc, err := connect()
		ch <- result{nc, err}
	}()
	select {
	case r := <-ch:
		return r.nc, r.err
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.nc != nil {
				r.nc.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

// newConn checks that JetStream answers, retrying while it is only
// temporarily unavailable (a cluster electing its leader) until ctx ends.
func newConn(ctx context.Context, nc *nats.Conn) (*Conn, error) {
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(attemptTimeout))
	if err != nil {
		nc.Close()
		return nil, err
	}
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, 500*time.Millisecond) {
		_, err = js.AccountInfo(ctx)
		if err == nil {
			break
		}
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			nc.Close()
			return nil, fmt.Errorf("%w: %w", ErrNoJetStream, err)
		}
		if sleep(ctx, wait) != nil {
			nc.Close()
			return nil, fmt.Errorf("JetStream account info: %w (then %w)", err, ctx.Err())
		}
	}
	c := &Conn{nc: nc, js: js}
	c.life, c.kill = context.WithCancel(context.Background())
	return c, nil
}

// connectEmbedded starts the embedded server and connects in-process.
func connectEmbedded(ctx context.Context, opts Options) (_ *Conn, err error) {
	if opts.UserCredentials != "" && opts.Server == nil {
		return nil, fmt.Errorf("embedded server: a credentials file needs a server configured for it (Options.Server): %w", os.ErrInvalid)
	}
	var so *server.Options
	if opts.Server != nil {
		so = opts.Server.Clone()
	} else {
		so = &server.Options{DontListen: true, NoLog: true}
	}
	so.JetStream = true
	so.NoSigs = true
	if so.ServerName == "" {
		so.ServerName = "mproc-" + strconv.Itoa(os.Getpid()) + "-" + randomHex(4)
	}
	tmp := ""
	switch {
	case opts.Dir != "":
		so.StoreDir = opts.Dir
	case so.StoreDir == "":
		tmp, err = os.MkdirTemp("", "mproc-nats-")
		if err != nil {
			return nil, fmt.Errorf("embedded server: %w", err)
		}
		so.StoreDir = tmp
		defer func() {
			if err != nil {
				os.RemoveAll(tmp)
			}
		}()
	}
	if opts.Listen != "" {
		host, port, err := net.SplitHostPort(opts.Listen)
		if err != nil {
			return nil, fmt.Errorf("embedded server: listen address %q: %w", opts.Listen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil || p < 0 || p > 65535 {
			return nil, fmt.Errorf("embedded server: listen address %q: bad port: %w", opts.Listen, os.ErrInvalid)
		}
		if p == 0 {
			p = server.RANDOM_PORT
		}
		so.DontListen, so.Host, so.Port = false, host, p
	}
	if opts.Server == nil {
		switch {
		case opts.Token != "":
			so.Authorization = opts.Token
		case opts.User != "" || opts.Password != "":
			so.Username, so.Password = opts.User, opts.Password
		case opts.Listen != "":
			opts.Token = randomHex(16)
			so.Authorization = opts.Token
		}
	}
	log := &serverLog{}
	ns, err := server.NewServer(so)
	if err != nil {
		return nil, fmt.Errorf("embedded server: %w", err)
	}
	ns.SetLoggerV2(log, false, false, false)
	// Start returns once the client listener (if any) is up, so a
	// listener costs no readiness polling; JetStream is enabled inside.
	ns.Start()
	wait := time.Until(deadline(ctx))
	if !ns.ReadyForConnections(max(wait, time.Millisecond)) {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, fmt.Errorf("embedded server not ready: %s", log.failure())
	}
	nopts, _ := clientOptions(ctx, Options{Name: opts.Name, User: opts.User, Password: opts.Password, Token: opts.Token, NATS: opts.NATS})
	nopts = append(nopts, nats.InProcessServer(ns))
	nc, err := dial(ctx, func() (*nats.Conn, error) { return nats.Connect("", nopts...) })
	if err == nil {
		var c *Conn
		c, err = newConn(ctx, nc)
		if err == nil {
			c.srv, c.dir = ns, tmp
			if !so.DontListen {
				c.url = listenURL(ns, opts)
			}
			return c, nil
		}
	}
	ns.Shutdown()
	ns.WaitForShutdown()
	return nil, fmt.Errorf("embedded server: %w", err)
}

// listenURL is the URL other processes dial to reach the embedded server,
// with the credentials they need.
func listenURL(ns *server.Server, opts Options) string {
	u, err := url.Parse(ns.ClientURL())
	if err != nil {
		return ns.ClientURL()
	}
	switch {
	case opts.Token != "":
		u.User = url.User(opts.Token)
	case opts.User != "" || opts.Password != "":
		u.User = url.UserPassword(opts.User, opts.Password)
	}
	return u.String()
}

// Close closes the connection and, for an embedded server, shuts the
// server down and removes its temporary store. Queues, pools and Serve on
// the connection fail from then on. A second Close returns os.ErrClosed.
func (c *Conn) Close() error {
	err := os.ErrClosed
	c.closeOnce.Do(func() {
		err = nil
		c.kill()
		c.nc.Close()
		if c.srv != nil {
			c.srv.Shutdown()
			c.srv.WaitForShutdown()
		}
		if c.dir != "" {
			err = os.RemoveAll(c.dir)
		}
	})
	return err
}

// URL returns the URL other processes connect to: the embedded server's
// listener with the credentials it requires (Options.Listen), or the
// server this connection reached, without its credentials; "" for an
// embedded server without a listener.
func (c *Conn) URL() string { return c.url }

// NATS returns the underlying nats.go connection.
func (c *Conn) NATS() *nats.Conn { return c.nc }

// JetStream returns the connection's JetStream context.
func (c *Conn) JetStream() jetstream.JetStream { return c.js }

// Server returns the embedded server, or nil when connected to URLs.
func (c *Conn) Server() *server.Server { return c.srv }

// serverLog keeps the embedded server's errors, to explain a failed start.
type serverLog struct {
	mu   sync.Mutex
	last string
}

func (l *serverLog) keep(format string, v []any) {
	l.mu.Lock()
	l.last = fmt.Sprintf(format, v...)
	l.mu.Unlock()
}

func (l *serverLog) failure() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == "" {
		return "no error logged"
	}
	return l.last
}

func (l *serverLog) Noticef(string, ...any)         {}
func (l *serverLog) Warnf(string, ...any)           {}
func (l *serverLog) Debugf(string, ...any)          {}
func (l *serverLog) Tracef(string, ...any)          {}
func (l *serverLog) Errorf(format string, v ...any) { l.keep(format, v) }
func (l *serverLog) Fatalf(format string, v ...any) { l.keep(format, v) }

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// redact drops credentials from a URL list for error messages.
func redact(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			u.User = url.User("redacted")
			parts[i] = u.String()
		}
	}
	return strings.Join(parts, ",")
}

func deadline(ctx context.Context) time.Time {
	d, ok := ctx.Deadline()
	if !ok {
		return time.Now().Add(DefaultConnectTimeout)
	}
	return d
}

// within returns ctx, also cancelled when any of lives ends.
func within(ctx context.Context, lives ...context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stops := make([]func() bool, len(lives))
	for i, l := range lives {
		stops[i] = context.AfterFunc(l, cancel)
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}

// sleep waits d or until ctx ends (then its error).
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
