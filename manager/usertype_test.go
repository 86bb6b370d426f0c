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
	manager.RegisterType(manager.Type{Name: "Counter", New: func(a manager.Args) (*manager.Object, error) {
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
		}}, nil
	}})
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
