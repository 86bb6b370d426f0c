package manager_test

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"mproc/manager"
)

// A user type: a counter with typed methods, registered at package level
// so that the server in a child process knows it too.
func init() {
	manager.RegisterType(manager.Type{Name: "Counter", New: newCounter})
}

func newCounter(a manager.Args) (*manager.Object, error) {
	var mu sync.Mutex
	var n int64
	return &manager.Object{Methods: map[string]manager.Method{
		"add": manager.Typed(func(ctx context.Context, by int64) (int64, error) {
			if by < 0 {
				return 0, errors.New("only forward")
			}
			mu.Lock()
			defer mu.Unlock()
			n += by
			return n, nil
		}),
		"value": manager.Typed(func(context.Context, struct{}) (int64, error) {
			mu.Lock()
			defer mu.Unlock()
			return n, nil
		}),
		// A method that returns a new object: the client gets a Ref.
		"fork": func(c *manager.Call, a manager.Args) (any, error) {
			obj, err := newCounter(a)
			return &manager.Proxied{Typeid: "Counter", Obj: obj}, err
		},
	}}, nil
}

// Counter is a typed Go proxy of the user type.
type Counter struct{ *manager.Ref }

func (c Counter) Add(ctx context.Context, by int64) (int64, error) {
	return manager.CallAs[int64](ctx, c.Ref, "add", by)
}

func (c Counter) Value(ctx context.Context) (int64, error) {
	return manager.CallAs[int64](ctx, c.Ref, "value")
}

// Fork returns a new counter, made on the server by a method.
func (c Counter) Fork(ctx context.Context) (*Counter, error) {
	r, err := manager.CallAs[*manager.Ref](ctx, c.Ref, "fork")
	if err != nil {
		return nil, err
	}
	return &Counter{r}, nil
}

func TestTypedUserProxy(t *testing.T) {
	srv := startServer(t)
	c := dial(t, srv)
	ctx := ctxFor(t, 30*time.Second)
	a, err := manager.Create[Counter](ctx, c, "Counter")
	check(t, err)
	if v, err := a.Add(ctx, 2); err != nil || v != 2 {
		t.Fatalf("Add: %v %v", v, err)
	}
	b, err := a.Fork(ctx)
	check(t, err)
	if b.Typeid() != "Counter" || b.ID() == a.ID() {
		t.Fatalf("Fork returned %q of type %q (the original is %q)", b.ID(), b.Typeid(), a.ID())
	}
	if v, err := b.Add(ctx, 7); err != nil || v != 7 {
		t.Fatalf("Add on the fork: %v %v", v, err)
	}
	if v, err := a.Value(ctx); err != nil || v != 2 {
		t.Fatalf("the original after the fork's Add: %v %v", v, err)
	}
	if n, err := manager.NumObjects(ctx, c); err != nil || n != 2 {
		t.Fatalf("objects: %d %v", n, err)
	}
	// The built-in dict's __iter__ is the same kind of reply.
	d, err := manager.NewDict[string, int64](ctx, c)
	check(t, err)
	check(t, d.Update(ctx, map[string]int64{"x": 1, "y": 2}))
	if keys := iterate(t, ctx, d.Ref); len(keys) != 2 {
		t.Fatalf("iter(d): %v", keys)
	}
	for _, r := range []*manager.Ref{a.Ref, b.Ref, d.Ref} {
		check(t, r.Close(ctx))
	}
	if n, err := manager.NumObjects(ctx, c); err != nil || n != 0 {
		t.Fatalf("objects after Close: %d %v", n, err)
	}
}

func TestUserType(t *testing.T) {
	srv := startServer(t)
	c := dial(t, srv)
	ctx := ctxFor(t, 30*time.Second)
	r, err := manager.New(ctx, c, "Counter", nil, nil)
	check(t, err)
	if v, err := r.Call(ctx, "add", []any{int64(5)}, nil); err != nil || v != int64(5) {
		t.Fatalf("add: %v %v", v, err)
	}
	var re *manager.RemoteError
	if _, err := r.Call(ctx, "add", []any{int64(-1)}, nil); !errors.As(err, &re) || re.Name != "RuntimeError" || !strings.Contains(err.Error(), "only forward") {
		t.Fatalf("a method's error: %v", err)
	}
	if _, err := r.Call(ctx, "add", []any{"five"}, nil); !errors.As(err, &re) || re.Name != "TypeError" {
		t.Fatalf("a badly typed argument: %v", err)
	}
	if _, err := r.Call(ctx, "reset", nil, nil); !errors.As(err, &re) || re.Name != "Traceback" {
		t.Fatalf("a method the type does not have: %v", err)
	}
	// An unmodified Python BaseManager client uses it too.
	py, _ := exec.LookPath("python3")
	out, err := exec.CommandContext(ctx, py, "-c", `
import sys
from multiprocessing.managers import BaseManager
class M(BaseManager): pass
M.register("Counter")
m = M(address=sys.argv[1], authkey=bytes.fromhex(sys.argv[2]))
m.connect()
c = m.Counter()
c.add(2); c.add(3)
print(c.value())
`, srv.Addr, hexKey(srv)).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "5" {
		t.Fatalf("Python client of a Go user type: %v\n%s", err, out)
	}
	check(t, r.Close(ctx))
}
