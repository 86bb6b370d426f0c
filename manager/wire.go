package manager

import (
	"fmt"
	"math/big"

	"mproc"

	"mproc/pickle"
)

// Reply kinds, the first element of every reply.
const (
	kindReturn    = "#RETURN"
	kindError     = "#ERROR"
	kindTraceback = "#TRACEBACK"
	kindProxy     = "#PROXY"
)

// allowedObjects are the classes a manager's pickles may name: the
// exceptions its replies carry, slice (ListProxy sends l[1:3] as
// __getitem__ of a slice) and Token (in '#PROXY' replies). Nothing of
// them is ever called; they decode to pickle.Object values.
var allowedObjects = map[pickle.Class]bool{
	{Module: "_queue", Name: "Empty"}:                       true,
	{Module: "queue", Name: "Empty"}:                        true,
	{Module: "queue", Name: "Full"}:                         true,
	{Module: "queue", Name: "ShutDown"}:                     true,
	{Module: "builtins", Name: "KeyError"}:                  true,
	{Module: "builtins", Name: "IndexError"}:                true,
	{Module: "builtins", Name: "ValueError"}:                true,
	{Module: "builtins", Name: "TypeError"}:                 true,
	{Module: "builtins", Name: "AttributeError"}:            true,
	{Module: "builtins", Name: "RuntimeError"}:              true,
	{Module: "builtins", Name: "AssertionError"}:            true,
	{Module: "builtins", Name: "Exception"}:                 true,
	{Module: "builtins", Name: "slice"}:                     true,
	{Module: "builtins", Name: "StopIteration"}:             true,
	{Module: "threading", Name: "BrokenBarrierError"}:       true,
	{Module: "multiprocessing.managers", Name: "Token"}:     true,
	{Module: "multiprocessing.managers", Name: "Namespace"}: true,
}

// request is (ident, method, args, kwds); ident is "" for a control call
// (None on the wire).
type request struct {
	ident  string
	method string
	args   pickle.Tuple
	kwds   map[string]any
}

// noKwds is the empty keyword arguments of a request, shared: requests
// are only read.
var noKwds = map[any]any{}

func (r request) value() pickle.Tuple {
	var ident any
	if r.ident != "" {
		ident = r.ident
	}
	kw := noKwds
	if len(r.kwds) > 0 {
		kw = make(map[any]any, len(r.kwds))
		for k, v := range r.kwds {
			kw[k] = v
		}
	}
	args := r.args
	if args == nil {
		args = pickle.Tuple{}
	}
	return pickle.Tuple{ident, r.method, args, kw}
}

// parseRequest checks that v is a request.
func parseRequest(v any) (request, error) {
	t, ok := v.(pickle.Tuple)
	if !ok || len(t) != 4 {
		return request{}, fmt.Errorf("%w: a request is (ident, method, args, kwds), not %T", ErrProtocol, v)
	}
	var r request
	switch id := t[0].(type) {
	case nil:
	case string:
		if id == "" {
			return request{}, fmt.Errorf("%w: empty object id", ErrProtocol)
		}
		r.ident = id
	default:
		return request{}, fmt.Errorf("%w: object id of type %T", ErrProtocol, t[0])
	}
	if r.method, ok = t[1].(string); !ok {
		return request{}, fmt.Errorf("%w: method name of type %T", ErrProtocol, t[1])
	}
	switch a := t[2].(type) {
	case pickle.Tuple:
		r.args = a
	case []any:
		r.args = pickle.Tuple(a)
	default:
		return request{}, fmt.Errorf("%w: arguments of type %T", ErrProtocol, t[2])
	}
	kw, err := stringMap(t[3])
	if err != nil {
		return request{}, fmt.Errorf("%w: keyword arguments: %v", ErrProtocol, err)
	}
	r.kwds = kw
	return r, nil
}

// stringMap converts a decoded dict with str keys; an empty one is nil.
func stringMap(v any) (map[string]any, error) {
	var out map[string]any
	switch d := v.(type) {
	case map[any]any:
		if len(d) > 0 {
			out = make(map[string]any, len(d))
		}
		for k, x := range d {
			s, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("key of type %T", k)
			}
			out[s] = x
		}
	case pickle.Dict:
		if len(d) > 0 {
			out = make(map[string]any, len(d))
		}
		for _, it := range d {
			s, ok := it.Key.(string)
			if !ok {
				return nil, fmt.Errorf("key of type %T", it.Key)
			}
			out[s] = it.Value
		}
	case nil:
	default:
		return nil, fmt.Errorf("a %T, not a dict", v)
	}
	return out, nil
}

// pyError is an exception a method raises: its class and arguments.
type pyError struct {
	class pickle.Class
	args  []any
}

func (e *pyError) Error() string {
	return (&RemoteError{Module: e.class.Module, Name: e.class.Name, Args: e.args}).Error()
}

func raise(module, name string, args ...any) *pyError {
	return &pyError{class: pickle.Class{Module: module, Name: name}, args: args}
}

func keyError(k any) *pyError { return raise("builtins", "KeyError", k) }
func indexError(msg string) *pyError {
	return raise("builtins", "IndexError", msg)
}
func valueError(msg string) *pyError { return raise("builtins", "ValueError", msg) }
func typeError(format string, args ...any) *pyError {
	return raise("builtins", "TypeError", fmt.Sprintf(format, args...))
}
func runtimeError(msg string) *pyError { return raise("builtins", "RuntimeError", msg) }

// remoteError maps an exception object of a reply to a *RemoteError.
func remoteError(o pickle.Object) *RemoteError {
	e := &RemoteError{Module: o.Module, Name: o.Name, Args: o.Args}
	switch o.Module + "." + o.Name {
	case "_queue.Empty", "queue.Empty":
		e.Err = mproc.ErrEmpty
	case "queue.Full":
		e.Err = mproc.ErrFull
	case "queue.ShutDown":
		e.Err = mproc.ErrShutdown
	case "builtins.KeyError", "builtins.AttributeError":
		e.Err = ErrNotFound
	case "threading.BrokenBarrierError":
		e.Err = mproc.ErrBrokenBarrier
	}
	return e
}

// asInt returns a Python int argument as an int.
func asInt(v any) (int, bool) {
	switch n := v.(type) {
	case int64:
		return int(n), true
	case int:
		return n, true
	case bool:
		if n {
			return 1, true
		}
		return 0, true
	case *big.Int:
		if n.IsInt64() {
			return int(n.Int64()), true
		}
	}
	return 0, false
}

// asFloat returns a Python number argument as a float64.
func asFloat(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case int64:
		return float64(n), true
	case int:
		return float64(n), true
	case bool:
		if n {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}
