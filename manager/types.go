package manager

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"mproc/pickle"
)

// builtins are the types SyncManager registers, with the methods its
// proxies call.
func builtins() []Type {
	return []Type{
		{"dict", newDict},
		{"list", newList},
		{"Namespace", newNamespace},
		{"Value", newValue},
		{"Queue", newQueue}, // Python's Queue has task_done and join too
		{"JoinableQueue", newQueue},
		{"Lock", func(a Args) (*Object, error) { return newLock(false), nil }},
		{"RLock", func(a Args) (*Object, error) { return newLock(true), nil }},
		{"Semaphore", func(a Args) (*Object, error) { return newSemaphore(a, false) }},
		{"BoundedSemaphore", func(a Args) (*Object, error) { return newSemaphore(a, true) }},
		{"Condition", newCondition},
		{"Event", newEvent},
		{"Barrier", newBarrier},
		{"Array", newArray},
	}
}

// waitState is a mutex and a channel that is closed and replaced at every
// change: what blocking methods wait on.
type waitState struct {
	mu      sync.Mutex
	changed chan struct{}
}

// notify wakes every waiter; mu is held.
func (w *waitState) notify() {
	if w.changed != nil {
		close(w.changed)
	}
	w.changed = make(chan struct{})
}

// wait releases mu until the state changes, the call's context ends or
// deadline (zero: none) passes, and takes it again. It reports false past
// the deadline.
func (w *waitState) wait(c *Call, deadline time.Time) (bool, error) {
	if w.changed == nil {
		w.changed = make(chan struct{})
	}
	ch := w.changed
	w.mu.Unlock()
	defer w.mu.Lock()
	var timeout <-chan time.Time
	if !deadline.IsZero() {
		d := time.Until(deadline)
		if d <= 0 {
			return false, nil
		}
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	stop := c.watch()
	select {
	case <-ch:
		stop()
		if c.gone() {
			return false, context.Canceled
		}
		return true, nil
	case <-timeout:
		stop()
		return false, nil
	case <-c.Ctx.Done():
		stop()
		return false, c.Ctx.Err()
	}
}

// deadlineOf turns Python's (block, timeout) into a deadline: zero for
// none, the past for a call that must not block.
func deadlineOf(block, timeout any) (time.Time, error) {
	if b, ok := block.(bool); ok && !b {
		return time.Unix(1, 0), nil
	}
	switch timeout.(type) {
	case nil:
		return time.Time{}, nil
	}
	f, ok := asFloat(timeout)
	if !ok {
		return time.Time{}, typeError("timeout must be a number, not %T", timeout)
	}
	if f < 0 {
		// Lock.acquire's timeout=-1 means none; Queue.get's is an error.
		return time.Time{}, nil
	}
	return time.Now().Add(time.Duration(f * float64(time.Second))), nil
}

func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case int64:
		return x != 0
	case float64:
		return x != 0
	case string:
		return x != ""
	}
	return true
}

// hashKey is the Go map key of a Python dict key: its pickle, which is the
// same for equal values of one type (1 and 1.0 are different keys here,
// unlike Python). Lists, dicts and sets are not hashable.
func hashKey(k any) (string, error) {
	switch k.(type) {
	case []any, map[any]any, pickle.Dict, pickle.Set:
		return "", typeError("unhashable type: '%s'", pyType(k))
	}
	b, err := pickle.Marshal(k)
	if err != nil {
		return "", typeError("unhashable key: %v", err)
	}
	return string(b), nil
}

func pyType(v any) string {
	switch v.(type) {
	case nil:
		return "NoneType"
	case bool:
		return "bool"
	case int64:
		return "int"
	case float64:
		return "float"
	case string:
		return "str"
	case []byte:
		return "bytes"
	case []any:
		return "list"
	case pickle.Tuple:
		return "tuple"
	case map[any]any, pickle.Dict:
		return "dict"
	case pickle.Set:
		return "set"
	}
	return fmt.Sprintf("%T", v)
}

// lockedBy makes a method of f that runs under mu.
func lockedBy(mu *sync.Mutex, f func(a Args) (any, error)) Method {
	return func(_ *Call, a Args) (any, error) {
		mu.Lock()
		defer mu.Unlock()
		return f(a)
	}
}

// equalTo returns the test "y == x" a list uses (remove, index, count):
// equal pickles, so equal values of one type, as hashKey compares keys.
func equalTo(x any) (func(y any) bool, error) {
	h, err := pickle.Marshal(x)
	if err != nil {
		return nil, err
	}
	return func(y any) bool {
		b, err := pickle.Marshal(y)
		return err == nil && string(b) == string(h)
	}, nil
}

// pyDict is an insertion-ordered Python dict.
type pyDict struct {
	keys  []string // hash keys in order; "" for a deleted item
	items map[string]*dictItem
	dead  int
}

type dictItem struct {
	key, value any
	at         int
}

func (d *pyDict) get(k any) (*dictItem, string, error) {
	h, err := hashKey(k)
	if err != nil {
		return nil, "", err
	}
	return d.items[h], h, nil
}

func (d *pyDict) set(k, v any) error {
	it, h, err := d.get(k)
	if err != nil {
		return err
	}
	if it != nil {
		it.value = v
		return nil
	}
	d.items[h] = &dictItem{key: k, value: v, at: len(d.keys)}
	d.keys = append(d.keys, h)
	return nil
}

func (d *pyDict) del(h string) {
	it := d.items[h]
	delete(d.items, h)
	d.keys[it.at] = ""
	d.dead++
	if d.dead > 32 && d.dead > len(d.keys)/2 {
		live := d.keys[:0]
		for _, k := range d.keys {
			if k != "" {
				d.items[k].at = len(live)
				live = append(live, k)
			}
		}
		d.keys, d.dead = live, 0
	}
}

func (d *pyDict) each(f func(it *dictItem)) {
	for _, h := range d.keys {
		if h != "" {
			f(d.items[h])
		}
	}
}

func (d *pyDict) value() pickle.Dict {
	out := make(pickle.Dict, 0, len(d.items))
	d.each(func(it *dictItem) { out = append(out, pickle.DictItem{Key: it.key, Value: it.value}) })
	return out
}

// pairs returns the items of a dict or an iterable of pairs, for update.
func pairs(v any) ([][2]any, error) {
	var out [][2]any
	switch x := v.(type) {
	case nil:
	case map[any]any:
		for k, v := range x {
			out = append(out, [2]any{k, v})
		}
	case pickle.Dict:
		for _, it := range x {
			out = append(out, [2]any{it.Key, it.Value})
		}
	case []any:
		for _, p := range x {
			kv, ok := seq(p)
			if !ok || len(kv) != 2 {
				return nil, valueError("dictionary update sequence element has wrong length")
			}
			out = append(out, [2]any{kv[0], kv[1]})
		}
	case pickle.Tuple:
		return pairs([]any(x))
	default:
		return nil, typeError("'%s' object is not iterable", pyType(v))
	}
	return out, nil
}

func seq(v any) ([]any, bool) {
	switch x := v.(type) {
	case []any:
		return x, true
	case pickle.Tuple:
		return x, true
	}
	return nil, false
}

func newDict(a Args) (*Object, error) {
	var mu sync.Mutex
	d := &pyDict{items: map[string]*dictItem{}}
	init, err := pairs(a.Get(0, "", nil))
	if err != nil {
		return nil, err
	}
	for _, kv := range init {
		if err := d.set(kv[0], kv[1]); err != nil {
			return nil, err
		}
	}
	for k, v := range a.Kw {
		d.set(k, v)
	}
	locked := func(f func(a Args) (any, error)) Method { return lockedBy(&mu, f) }
	getItem := func(a Args) (any, error) {
		it, _, err := d.get(a.Get(0, "key", nil))
		if err != nil {
			return nil, err
		}
		if it == nil {
			return nil, keyError(a.Get(0, "key", nil))
		}
		return it.value, nil
	}
	keys := func(a Args) (any, error) {
		out := make([]any, 0, len(d.items))
		d.each(func(it *dictItem) { out = append(out, it.key) })
		return out, nil
	}
	return &Object{
		Value: func() any { mu.Lock(); defer mu.Unlock(); return d.value() },
		Methods: map[string]Method{
			"__getitem__": locked(getItem),
			"__setitem__": locked(func(a Args) (any, error) { return nil, d.set(a.Get(0, "key", nil), a.Get(1, "value", nil)) }),
			"__delitem__": locked(func(a Args) (any, error) {
				k := a.Get(0, "key", nil)
				it, h, err := d.get(k)
				if err != nil {
					return nil, err
				}
				if it == nil {
					return nil, keyError(k)
				}
				d.del(h)
				return nil, nil
			}),
			"__contains__": locked(func(a Args) (any, error) {
				it, _, err := d.get(a.Get(0, "key", nil))
				return it != nil, err
			}),
			"__len__": locked(func(Args) (any, error) { return int64(len(d.items)), nil }),
			"get": locked(func(a Args) (any, error) {
				it, _, err := d.get(a.Get(0, "key", nil))
				if err != nil || it == nil {
					return a.Get(1, "default", nil), err
				}
				return it.value, nil
			}),
			"keys": locked(keys),
			"values": locked(func(Args) (any, error) {
				out := make([]any, 0, len(d.items))
				d.each(func(it *dictItem) { out = append(out, it.value) })
				return out, nil
			}),
			"items": locked(func(Args) (any, error) {
				out := make([]any, 0, len(d.items))
				d.each(func(it *dictItem) { out = append(out, pickle.Tuple{it.key, it.value}) })
				return out, nil
			}),
			"pop": locked(func(a Args) (any, error) {
				k := a.Get(0, "key", nil)
				it, h, err := d.get(k)
				if err != nil {
					return nil, err
				}
				if it == nil {
					if len(a.Pos) > 1 {
						return a.Pos[1], nil
					}
					return nil, keyError(k)
				}
				d.del(h)
				return it.value, nil
			}),
			"popitem": locked(func(Args) (any, error) {
				for i := len(d.keys) - 1; i >= 0; i-- {
					if h := d.keys[i]; h != "" {
						it := d.items[h]
						d.del(h)
						return pickle.Tuple{it.key, it.value}, nil
					}
				}
				return nil, keyError("popitem(): dictionary is empty")
			}),
			"setdefault": locked(func(a Args) (any, error) {
				k, def := a.Get(0, "key", nil), a.Get(1, "default", nil)
				it, _, err := d.get(k)
				if err != nil {
					return nil, err
				}
				if it != nil {
					return it.value, nil
				}
				return def, d.set(k, def)
			}),
			"update": locked(func(a Args) (any, error) {
				kvs, err := pairs(a.Get(0, "", nil))
				if err != nil {
					return nil, err
				}
				for _, kv := range kvs {
					if err := d.set(kv[0], kv[1]); err != nil {
						return nil, err
					}
				}
				for k, v := range a.Kw {
					d.set(k, v)
				}
				return nil, nil
			}),
			"clear": locked(func(Args) (any, error) {
				d.keys, d.items, d.dead = nil, map[string]*dictItem{}, 0
				return nil, nil
			}),
			"copy": locked(func(Args) (any, error) { return d.value(), nil }),
			"__iter__": func(_ *Call, _ Args) (any, error) {
				mu.Lock()
				ks, _ := keys(Args{})
				mu.Unlock()
				return &Proxied{Typeid: "Iterator", Obj: newIterator(ks.([]any))}, nil
			},
		},
	}, nil
}

// newIterator is the server side of Python's IteratorProxy, over a
// snapshot of values.
func newIterator(vs []any) *Object {
	var mu sync.Mutex
	next := func(*Call, Args) (any, error) {
		mu.Lock()
		defer mu.Unlock()
		if len(vs) == 0 {
			return nil, raise("builtins", "StopIteration")
		}
		v := vs[0]
		vs = vs[1:]
		return v, nil
	}
	return &Object{Methods: map[string]Method{
		"__next__": next,
		"send":     next,
		"throw":    func(*Call, Args) (any, error) { return nil, typeError("throw is not supported") },
		"close":    func(*Call, Args) (any, error) { mu.Lock(); vs = nil; mu.Unlock(); return nil, nil },
	}}
}

func newArray(a Args) (*Object, error) {
	var mu sync.Mutex
	typecode := a.Get(0, "typecode", nil)
	init := a.Get(1, "sequence", nil)
	var vs []any
	if n, ok := asInt(init); ok {
		// A client's number must not size an allocation unchecked: Go
		// cannot survive running out of memory (Python raises
		// MemoryError), and no pickle of a longer list could be decoded.
		if n > pickle.DefaultMaxContainerLen {
			return nil, valueError(fmt.Sprintf("Array of %d elements: the limit is %d", n, pickle.DefaultMaxContainerLen))
		}
		zero := any(int64(0))
		if s, _ := typecode.(string); s == "d" || s == "f" {
			zero = 0.0
		}
		vs = make([]any, max(n, 0))
		for i := range vs {
			vs[i] = zero
		}
	} else if s, ok := seq(init); ok {
		vs = slices.Clone(s)
	} else {
		return nil, typeError("Array needs a size or a sequence")
	}
	return &Object{
		Value: func() any { mu.Lock(); defer mu.Unlock(); return slices.Clone(vs) },
		Methods: map[string]Method{
			"__len__": func(*Call, Args) (any, error) { return int64(len(vs)), nil },
			"__getitem__": func(_ *Call, a Args) (any, error) {
				mu.Lock()
				defer mu.Unlock()
				if s, ok := isSlice(a.Get(0, "", nil)); ok {
					lo, hi, err := sliceOf(s, len(vs))
					return slices.Clone(vs[lo:hi]), err
				}
				i, err := index(a.Get(0, "", nil), len(vs))
				if err != nil {
					return nil, indexError("array index out of range")
				}
				return vs[i], nil
			},
			"__setitem__": func(_ *Call, a Args) (any, error) {
				mu.Lock()
				defer mu.Unlock()
				i, err := index(a.Get(0, "", nil), len(vs))
				if err != nil {
					return nil, indexError("array assignment index out of range")
				}
				vs[i] = a.Get(1, "", nil)
				return nil, nil
			},
		},
	}, nil
}

// index resolves a Python index (negative from the end) into [0, n).
func index(v any, n int) (int, error) {
	i, ok := asInt(v)
	if !ok {
		return 0, typeError("list indices must be integers or slices, not %s", pyType(v))
	}
	if i < 0 {
		i += n
	}
	if i < 0 || i >= n {
		return 0, indexError("list index out of range")
	}
	return i, nil
}

// sliceOf resolves a slice object's start and stop (step 1 only).
func sliceOf(o pickle.Object, n int) (int, int, error) {
	if len(o.Args) != 3 {
		return 0, 0, typeError("bad slice")
	}
	if o.Args[2] != nil {
		if s, ok := asInt(o.Args[2]); !ok || s != 1 {
			return 0, 0, valueError("slices with a step are not supported")
		}
	}
	bound := func(v any, def int) (int, error) {
		if v == nil {
			return def, nil
		}
		i, ok := asInt(v)
		if !ok {
			return 0, typeError("slice indices must be integers or None")
		}
		if i < 0 {
			i += n
		}
		return min(max(i, 0), n), nil
	}
	lo, err := bound(o.Args[0], 0)
	if err != nil {
		return 0, 0, err
	}
	hi, err := bound(o.Args[1], n)
	return lo, max(hi, lo), err
}

func isSlice(v any) (pickle.Object, bool) {
	o, ok := v.(pickle.Object)
	return o, ok && o.Module == "builtins" && o.Name == "slice"
}

func newList(a Args) (*Object, error) {
	var mu sync.Mutex
	var l []any
	if init := a.Get(0, "", nil); init != nil {
		s, ok := seq(init)
		if !ok {
			return nil, typeError("'%s' object is not iterable", pyType(init))
		}
		l = slices.Clone(s)
	}
	locked := func(f func(a Args) (any, error)) Method { return lockedBy(&mu, f) }
	find := func(x any) (int, error) {
		eq, err := equalTo(x)
		if err != nil {
			return -1, err
		}
		return slices.IndexFunc(l, eq), nil
	}
	return &Object{
		Value: func() any { mu.Lock(); defer mu.Unlock(); return slices.Clone(l) },
		Methods: map[string]Method{
			"__len__": locked(func(Args) (any, error) { return int64(len(l)), nil }),
			"__getitem__": locked(func(a Args) (any, error) {
				if s, ok := isSlice(a.Get(0, "", nil)); ok {
					lo, hi, err := sliceOf(s, len(l))
					return slices.Clone(l[lo:hi]), err
				}
				i, err := index(a.Get(0, "", nil), len(l))
				if err != nil {
					return nil, err
				}
				return l[i], nil
			}),
			"__setitem__": locked(func(a Args) (any, error) {
				if s, ok := isSlice(a.Get(0, "", nil)); ok {
					lo, hi, err := sliceOf(s, len(l))
					if err != nil {
						return nil, err
					}
					vs, ok := seq(a.Get(1, "", nil))
					if !ok {
						return nil, typeError("can only assign an iterable")
					}
					l = slices.Concat(l[:lo:lo], vs, l[hi:])
					return nil, nil
				}
				i, err := index(a.Get(0, "", nil), len(l))
				if err != nil {
					return nil, indexError("list assignment index out of range")
				}
				l[i] = a.Get(1, "", nil)
				return nil, nil
			}),
			"__delitem__": locked(func(a Args) (any, error) {
				if s, ok := isSlice(a.Get(0, "", nil)); ok {
					lo, hi, err := sliceOf(s, len(l))
					if err == nil {
						l = slices.Delete(l, lo, hi)
					}
					return nil, err
				}
				i, err := index(a.Get(0, "", nil), len(l))
				if err != nil {
					return nil, indexError("list assignment index out of range")
				}
				l = slices.Delete(l, i, i+1)
				return nil, nil
			}),
			"__contains__": locked(func(a Args) (any, error) {
				i, err := find(a.Get(0, "", nil))
				return i >= 0, err
			}),
			"append": locked(func(a Args) (any, error) { l = append(l, a.Get(0, "object", nil)); return nil, nil }),
			"extend": locked(func(a Args) (any, error) {
				vs, ok := seq(a.Get(0, "iterable", nil))
				if !ok {
					return nil, typeError("'%s' object is not iterable", pyType(a.Get(0, "", nil)))
				}
				l = append(l, vs...)
				return nil, nil
			}),
			"insert": locked(func(a Args) (any, error) {
				i, ok := asInt(a.Get(0, "index", nil))
				if !ok {
					return nil, typeError("an integer is required")
				}
				if i < 0 {
					i += len(l)
				}
				i = min(max(i, 0), len(l))
				l = slices.Insert(l, i, a.Get(1, "object", nil))
				return nil, nil
			}),
			"pop": locked(func(a Args) (any, error) {
				if len(l) == 0 {
					return nil, indexError("pop from empty list")
				}
				i, err := index(a.Get(0, "index", int64(-1)), len(l))
				if err != nil {
					return nil, indexError("pop index out of range")
				}
				v := l[i]
				l = slices.Delete(l, i, i+1)
				return v, nil
			}),
			"remove": locked(func(a Args) (any, error) {
				i, err := find(a.Get(0, "value", nil))
				if err != nil {
					return nil, err
				}
				if i < 0 {
					return nil, valueError("list.remove(x): x not in list")
				}
				l = slices.Delete(l, i, i+1)
				return nil, nil
			}),
			"index": locked(func(a Args) (any, error) {
				i, err := find(a.Get(0, "value", nil))
				if err == nil && i < 0 {
					err = valueError(fmt.Sprintf("%v is not in list", a.Get(0, "", nil)))
				}
				return int64(i), err
			}),
			"count": locked(func(a Args) (any, error) {
				eq, err := equalTo(a.Get(0, "value", nil))
				n := 0
				for _, y := range l {
					if err == nil && eq(y) {
						n++
					}
				}
				return int64(n), err
			}),
			"reverse": locked(func(Args) (any, error) { slices.Reverse(l); return nil, nil }),
			"sort": locked(func(a Args) (any, error) {
				if a.Kw["key"] != nil {
					return nil, typeError("sort with a key function is not supported by this server")
				}
				var err error
				sort.SliceStable(l, func(i, j int) bool {
					c, e := compare(l[i], l[j])
					if e != nil && err == nil {
						err = e
					}
					return c < 0
				})
				if truthy(a.Kw["reverse"]) {
					slices.Reverse(l)
				}
				return nil, err
			}),
		},
	}, nil
}

// compare orders two numbers or two strings, as Python's < does.
func compare(x, y any) (int, error) {
	if a, ok := asFloat(x); ok {
		if b, ok := asFloat(y); ok {
			switch {
			case a < b:
				return -1, nil
			case a > b:
				return 1, nil
			}
			return 0, nil
		}
	}
	if a, ok := x.(string); ok {
		if b, ok := y.(string); ok {
			return strings.Compare(a, b), nil
		}
	}
	return 0, typeError("'<' not supported between instances of '%s' and '%s'", pyType(x), pyType(y))
}

func newNamespace(a Args) (*Object, error) {
	var mu sync.Mutex
	attrs := map[string]any{}
	for k, v := range a.Kw {
		attrs[k] = v
	}
	name := func(a Args) (string, error) {
		s, ok := a.Get(0, "name", nil).(string)
		if !ok {
			return "", typeError("attribute name must be a string")
		}
		return s, nil
	}
	return &Object{
		Value: func() any {
			mu.Lock()
			defer mu.Unlock()
			out := map[any]any{}
			for k, v := range attrs {
				out[k] = v
			}
			return out
		},
		Methods: map[string]Method{
			"__getattribute__": func(_ *Call, a Args) (any, error) {
				n, err := name(a)
				if err != nil {
					return nil, err
				}
				mu.Lock()
				defer mu.Unlock()
				v, ok := attrs[n]
				if !ok {
					return nil, raise("builtins", "AttributeError", fmt.Sprintf("'Namespace' object has no attribute '%s'", n))
				}
				return v, nil
			},
			"__setattr__": func(_ *Call, a Args) (any, error) {
				n, err := name(a)
				if err != nil {
					return nil, err
				}
				mu.Lock()
				attrs[n] = a.Get(1, "value", nil)
				mu.Unlock()
				return nil, nil
			},
			"__delattr__": func(_ *Call, a Args) (any, error) {
				n, err := name(a)
				if err != nil {
					return nil, err
				}
				mu.Lock()
				defer mu.Unlock()
				if _, ok := attrs[n]; !ok {
					return nil, raise("builtins", "AttributeError", n)
				}
				delete(attrs, n)
				return nil, nil
			},
		},
	}, nil
}

func newValue(a Args) (*Object, error) {
	var mu sync.Mutex
	typecode, v := a.Get(0, "typecode", nil), a.Get(1, "value", nil)
	return &Object{
		Value: func() any { mu.Lock(); defer mu.Unlock(); return v },
		Methods: map[string]Method{
			"get": func(*Call, Args) (any, error) { mu.Lock(); defer mu.Unlock(); return v, nil },
			"set": func(_ *Call, a Args) (any, error) {
				mu.Lock()
				v = a.Get(0, "value", nil)
				mu.Unlock()
				return nil, nil
			},
			"__repr__": func(*Call, Args) (any, error) {
				mu.Lock()
				defer mu.Unlock()
				return fmt.Sprintf("Value(%v, %v)", typecode, v), nil
			},
		},
	}, nil
}

func newQueue(a Args) (*Object, error) {
	maxsize := 0
	if v := a.Get(0, "maxsize", nil); v != nil {
		n, ok := asInt(v)
		if !ok {
			return nil, typeError("maxsize must be an integer")
		}
		maxsize = n
	}
	var (
		w          waitState
		items      []any
		unfinished int
		shut       bool
	)
	full := func() bool { return maxsize > 0 && len(items) >= maxsize }
	put := func(c *Call, a Args, block, timeout any) (any, error) {
		deadline, err := deadlineOf(block, timeout)
		if err != nil {
			return nil, err
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		for !shut && full() {
			ok, err := w.wait(c, deadline)
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, raise("queue", "Full")
			}
		}
		if shut {
			return nil, raise("queue", "ShutDown")
		}
		items = append(items, a.Get(0, "item", nil))
		unfinished++
		w.notify()
		return nil, nil
	}
	get := func(c *Call, block, timeout any) (any, error) {
		deadline, err := deadlineOf(block, timeout)
		if err != nil {
			return nil, err
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		for len(items) == 0 {
			if shut {
				return nil, raise("queue", "ShutDown")
			}
			ok, err := w.wait(c, deadline)
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, raise("queue", "Empty") // _queue.Empty in 3.7+, but 3.6 has no _queue
			}
		}
		v := items[0]
		items[0] = nil
		items = items[1:]
		w.notify()
		return v, nil
	}
	size := func(f func() any) Method {
		return func(*Call, Args) (any, error) { w.mu.Lock(); defer w.mu.Unlock(); return f(), nil }
	}
	m := map[string]Method{
		"put": func(c *Call, a Args) (any, error) {
			return put(c, a, a.Get(1, "block", true), a.Get(2, "timeout", nil))
		},
		"put_nowait": func(c *Call, a Args) (any, error) { return put(c, a, false, nil) },
		"get": func(c *Call, a Args) (any, error) {
			return get(c, a.Get(0, "block", true), a.Get(1, "timeout", nil))
		},
		"get_nowait": func(c *Call, a Args) (any, error) { return get(c, false, nil) },
		"qsize":      size(func() any { return int64(len(items)) }),
		"empty":      size(func() any { return len(items) == 0 }),
		"full":       size(func() any { return full() }),
		"shutdown": func(_ *Call, a Args) (any, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			shut = true
			if truthy(a.Get(0, "immediate", false)) {
				unfinished -= len(items)
				items = nil
			}
			w.notify()
			return nil, nil
		},
		"task_done": func(*Call, Args) (any, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			if unfinished <= 0 {
				return nil, valueError("task_done() called too many times")
			}
			unfinished--
			w.notify()
			return nil, nil
		},
		"join": func(c *Call, _ Args) (any, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			for unfinished > 0 {
				if _, err := w.wait(c, time.Time{}); err != nil {
					return nil, err
				}
			}
			return nil, nil
		},
	}
	return &Object{Methods: m}, nil
}

// ownedLock is Lock, RLock and the lock of a Condition: held by a
// connection, released if that connection goes.
type ownedLock struct {
	w         *waitState
	reentrant bool
	owner     *serverConn
	count     int
	release   func() // cancels the close hook
}

func (l *ownedLock) acquire(c *Call, deadline time.Time) (bool, error) {
	for {
		if l.owner == nil {
			l.owner, l.count = c.owner(), 1
			l.release = c.onClose(func() { l.w.mu.Lock(); l.drop(); l.w.mu.Unlock() })
			return true, nil
		}
		if l.reentrant && l.owner == c.owner() {
			l.count++
			return true, nil
		}
		ok, err := l.w.wait(c, deadline)
		if err != nil || !ok {
			return false, err
		}
	}
}

// drop releases the lock whatever its count; w.mu is held.
func (l *ownedLock) drop() {
	l.owner, l.count = nil, 0
	l.w.notify()
}

func (l *ownedLock) unlock(c *Call) error {
	if l.owner == nil || (l.reentrant && l.owner != c.owner()) {
		return runtimeError("release unlocked lock")
	}
	l.count--
	if l.count == 0 {
		l.release()
		l.drop()
	}
	return nil
}

func acquireArgs(a Args) (time.Time, error) {
	return deadlineOf(a.Get(0, "blocking", true), a.Get(1, "timeout", nil))
}

func lockMethods(l *ownedLock) map[string]Method {
	return map[string]Method{
		"acquire": func(c *Call, a Args) (any, error) {
			deadline, err := acquireArgs(a)
			if err != nil {
				return nil, err
			}
			l.w.mu.Lock()
			defer l.w.mu.Unlock()
			return l.acquire(c, deadline)
		},
		"release": func(c *Call, _ Args) (any, error) {
			l.w.mu.Lock()
			defer l.w.mu.Unlock()
			return nil, l.unlock(c)
		},
	}
}

func newLock(reentrant bool) *Object {
	return &Object{Methods: lockMethods(&ownedLock{w: &waitState{}, reentrant: reentrant})}
}

func newSemaphore(a Args, bounded bool) (*Object, error) {
	n, ok := asInt(a.Get(0, "value", int64(1)))
	if !ok || n < 0 {
		return nil, valueError("semaphore initial value must be >= 0")
	}
	var w waitState
	value, initial := n, n
	held := map[*serverConn]int{}
	return &Object{Methods: map[string]Method{
		"acquire": func(c *Call, a Args) (any, error) {
			deadline, err := acquireArgs(a)
			if err != nil {
				return nil, err
			}
			w.mu.Lock()
			defer w.mu.Unlock()
			for value == 0 {
				ok, err := w.wait(c, deadline)
				if err != nil || !ok {
					return false, err
				}
			}
			value--
			if bounded {
				// A bounded semaphore's units come back when their
				// holder's connection goes.
				if held[c.owner()] == 0 {
					o := c.owner()
					c.onClose(func() {
						w.mu.Lock()
						value = min(value+held[o], initial)
						delete(held, o)
						w.notify()
						w.mu.Unlock()
					})
				}
				held[c.owner()]++
			}
			return true, nil
		},
		"release": func(c *Call, a Args) (any, error) {
			k, ok := asInt(a.Get(0, "n", int64(1)))
			if !ok || k < 1 {
				return nil, valueError("n must be one or more")
			}
			w.mu.Lock()
			defer w.mu.Unlock()
			if bounded && value+k > initial {
				return nil, valueError("Semaphore released too many times")
			}
			value += k
			if bounded {
				held[c.owner()] = max(held[c.owner()]-k, 0)
			}
			w.notify()
			return nil, nil
		},
	}}, nil
}

func newCondition(a Args) (*Object, error) {
	if a.Get(0, "lock", nil) != nil {
		return nil, typeError("a Condition over a lock of its own is not supported by this server")
	}
	l := &ownedLock{w: &waitState{}, reentrant: true}
	var waiters []chan struct{} // notify wakes the oldest first
	m := lockMethods(l)
	m["wait"] = func(c *Call, a Args) (any, error) {
		deadline, err := deadlineOf(true, a.Get(0, "timeout", nil))
		if err != nil {
			return nil, err
		}
		l.w.mu.Lock()
		defer l.w.mu.Unlock()
		if l.owner != c.owner() {
			return nil, runtimeError("cannot wait on un-acquired lock")
		}
		woken := make(chan struct{})
		waiters = append(waiters, woken)
		count := l.count
		l.count = 1
		l.unlock(c)
		l.w.mu.Unlock()
		var timeout <-chan time.Time
		if !deadline.IsZero() {
			t := time.NewTimer(time.Until(deadline))
			defer t.Stop()
			timeout = t.C
		}
		notified := false
		stop := c.watch()
		select {
		case <-woken:
			notified = true
		case <-timeout:
		case <-c.Ctx.Done():
		}
		stop()
		l.w.mu.Lock()
		if !notified {
			if i := slices.Index(waiters, woken); i >= 0 {
				waiters = slices.Delete(waiters, i, i+1)
			}
		}
		if _, err := l.acquire(c, time.Time{}); err != nil {
			return nil, err
		}
		l.count = count
		return notified, c.Ctx.Err()
	}
	notify := func(n int) {
		for ; n > 0 && len(waiters) > 0; n-- {
			close(waiters[0])
			waiters = waiters[1:]
		}
	}
	m["notify"] = func(c *Call, a Args) (any, error) {
		n, ok := asInt(a.Get(0, "n", int64(1)))
		if !ok {
			return nil, typeError("n must be an integer")
		}
		l.w.mu.Lock()
		defer l.w.mu.Unlock()
		if l.owner != c.owner() {
			return nil, runtimeError("cannot notify on un-acquired lock")
		}
		notify(n)
		return nil, nil
	}
	m["notify_all"] = func(c *Call, a Args) (any, error) {
		l.w.mu.Lock()
		defer l.w.mu.Unlock()
		if l.owner != c.owner() {
			return nil, runtimeError("cannot notify on un-acquired lock")
		}
		notify(math.MaxInt)
		return nil, nil
	}
	return &Object{Methods: m}, nil
}

func newEvent(Args) (*Object, error) {
	var w waitState
	flag := false
	return &Object{Methods: map[string]Method{
		"is_set": func(*Call, Args) (any, error) { w.mu.Lock(); defer w.mu.Unlock(); return flag, nil },
		"set": func(*Call, Args) (any, error) {
			w.mu.Lock()
			flag = true
			w.notify()
			w.mu.Unlock()
			return nil, nil
		},
		"clear": func(*Call, Args) (any, error) { w.mu.Lock(); flag = false; w.mu.Unlock(); return nil, nil },
		"wait": func(c *Call, a Args) (any, error) {
			deadline, err := deadlineOf(true, a.Get(0, "timeout", nil))
			if err != nil {
				return nil, err
			}
			w.mu.Lock()
			defer w.mu.Unlock()
			for !flag {
				ok, err := w.wait(c, deadline)
				if err != nil || !ok {
					return flag, err
				}
			}
			return true, nil
		},
	}}, nil
}

func newBarrier(a Args) (*Object, error) {
	parties, ok := asInt(a.Get(0, "parties", nil))
	if !ok || parties < 1 {
		return nil, valueError("parties must be > 0")
	}
	if a.Get(1, "action", nil) != nil {
		return nil, typeError("a Barrier action cannot cross to this server")
	}
	var w waitState
	var gen, count int
	resetOf := -1 // the generation a Reset ended while parties waited
	broken := false
	defTimeout := a.Get(2, "timeout", nil)
	brokenErr := func() error { return raise("threading", "BrokenBarrierError") }
	return &Object{Methods: map[string]Method{
		"wait": func(c *Call, a Args) (any, error) {
			t := a.Get(0, "timeout", nil)
			if t == nil {
				t = defTimeout
			}
			deadline, err := deadlineOf(true, t)
			if err != nil {
				return nil, err
			}
			w.mu.Lock()
			defer w.mu.Unlock()
			if broken {
				return nil, brokenErr()
			}
			idx, my := count, gen
			count++
			if count == parties {
				gen++
				count = 0
				w.notify()
				return int64(idx), nil
			}
			for gen == my && !broken {
				ok, err := w.wait(c, deadline)
				if err != nil || !ok {
					if gen == my {
						broken = true
						w.notify()
					}
					if err != nil {
						return nil, err
					}
					return nil, brokenErr()
				}
			}
			if gen == my || resetOf == my {
				return nil, brokenErr()
			}
			return int64(idx), nil
		},
		"abort": func(*Call, Args) (any, error) {
			w.mu.Lock()
			broken = true
			w.notify()
			w.mu.Unlock()
			return nil, nil
		},
		"reset": func(*Call, Args) (any, error) {
			w.mu.Lock()
			if count > 0 {
				resetOf = gen // the waiting parties get BrokenBarrierError
			}
			gen++
			count, broken = 0, false
			w.notify()
			w.mu.Unlock()
			return nil, nil
		},
		"__getattribute__": func(_ *Call, a Args) (any, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			switch a.Get(0, "name", nil) {
			case "parties":
				return int64(parties), nil
			case "n_waiting":
				return int64(count), nil
			case "broken":
				return broken, nil
			}
			return nil, raise("builtins", "AttributeError", fmt.Sprint(a.Get(0, "name", nil)))
		},
	}}, nil
}
