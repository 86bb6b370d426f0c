package manager

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"

	"mproc"
)

var registered struct {
	sync.Mutex
	types []Type
}

// RegisterType adds t to every server this program makes: NewServer's and
// Start's. Call it at package level, so that a server in a child process
// (Start), which is the same binary, knows the type too.
func RegisterType(t Type) {
	if t.Name == "" || t.New == nil {
		panic("manager: RegisterType needs a name and a constructor")
	}
	registered.Lock()
	defer registered.Unlock()
	registered.types = append(registered.types, t)
}

func registeredTypes() []Type {
	registered.Lock()
	defer registered.Unlock()
	return append([]Type(nil), registered.types...)
}

// StartOptions configure Start.
type StartOptions struct {
	// Network and Addr are where the server listens: "unix" (the default)
	// and a socket path, or "" for a new private path; or "tcp" and an
	// IP:port (":0" picks a free port on every address).
	Network, Addr string
	// Key is the authkey; nil means 32 random bytes.
	Key []byte
	// Proc configures the child process.
	Proc mproc.ProcOptions
}

// Process is a manager server running in a child process: Python's
// Manager() (a SyncManager started in a process of its own).
type Process struct {
	Network, Addr string
	Key           []byte
	*mproc.Process
}

type startArg struct {
	Network, Addr string
	Key           []byte
	Report        *mproc.Conn
}

var serveFunc = mproc.Register("mproc/manager.serve", func(ctx context.Context, a startArg) error {
	ln, err := mproc.Listen(a.Network, a.Addr, a.Key, mproc.ListenOptions{})
	if err != nil {
		a.Report.SendBytes(ctx, []byte("err:"+err.Error()))
		return err
	}
	if err := a.Report.SendBytes(ctx, []byte("ok:"+ln.Addr())); err != nil {
		ln.Close()
		return err
	}
	a.Report.Close()
	return Serve(ctx, ln, Options{})
})

// Start starts a manager server in a child process and returns once it
// listens. ctx bounds the server's life, as it bounds a child's
// (mproc.Func.Start). The server knows the built-in types and those
// registered with RegisterType.
func Start(ctx context.Context, opts StartOptions) (*Process, error) {
	if opts.Network == "" {
		opts.Network = "unix"
	}
	if opts.Key == nil {
		opts.Key = make([]byte, 32)
		rand.Read(opts.Key)
	}
	mine, theirs, err := mproc.Pipe(mproc.Duplex)
	if err != nil {
		return nil, fmt.Errorf("start manager: %w", err)
	}
	defer mine.Close()
	if opts.Proc.Name == "" {
		opts.Proc.Name = "manager"
	}
	p, err := serveFunc.Start(ctx, startArg{Network: opts.Network, Addr: opts.Addr, Key: opts.Key, Report: theirs}, opts.Proc)
	theirs.Close()
	if err != nil {
		return nil, fmt.Errorf("start manager: %w", err)
	}
	b, err := mine.RecvBytes(ctx)
	if err != nil {
		p.Kill()
		p.Wait(context.Background())
		return nil, fmt.Errorf("start manager: %w (the server ended: %v)", err, p.Wait(ctx))
	}
	msg := string(b)
	if addr, ok := strings.CutPrefix(msg, "ok:"); ok {
		return &Process{Network: opts.Network, Addr: addr, Key: opts.Key, Process: p}, nil
	}
	p.Wait(ctx)
	return nil, fmt.Errorf("start manager: %w", errors.New(strings.TrimPrefix(msg, "err:")))
}

// Shutdown asks the server to stop and waits until its process has ended;
// if ctx ends first, the process is killed.
func (p *Process) Shutdown(ctx context.Context) error {
	c := &Client{network: p.Network, addr: p.Addr, key: p.Key}
	_, err := c.control(ctx, "shutdown")
	if err != nil && !errors.Is(err, ErrServerGone) {
		p.Kill()
	}
	werr := p.Wait(ctx)
	if ctx.Err() != nil {
		p.Kill()
		p.Wait(context.Background())
	}
	if err != nil && !errors.Is(err, ErrServerGone) {
		return err
	}
	return werr
}
