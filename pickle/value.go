package pickle

import (
	"fmt"
	"math"
	"math/big"
	"reflect"
)

// Unmarshal decodes the pickle data into the value v points to, which it
// replaces. Into an *any it stores the natural Go values: nil, bool,
// int64 (or *big.Int beyond int64), float64, string, []byte (bytes and
// bytearray), []any (list), Tuple, map[any]any or Dict (dict; see Dict),
// Set, FrozenSet, and Object (an object of a class the Decoder's Objects
// lists, its Args and State natural values too). Into other types it
// converts, and an [*UnmarshalTypeError] names the path of a value that
// does not fit:
//
//   - bool from bool; integer types from int, range-checked; float types
//     from float or int; big.Int and *big.Int from int;
//   - string from str, bytes or bytearray; []byte from bytes, bytearray
//     or str (UTF-8); [N]byte from bytes of length N;
//   - slices from list, tuple, set or frozenset; arrays from those of
//     exactly the array's length;
//   - maps from dict, and map[K]struct{} or map[K]bool from set or
//     frozenset;
//   - structs from dict with str keys, matched to the exported fields'
//     names or `pickle:"name"` tags (exactly, else case-insensitively;
//     unknown keys are ignored, embedded structs' fields are promoted);
//     not structs with fields but none exported, such as time.Time;
//   - Object from an object (only);
//   - pointers, slices, maps and interfaces from None (as nil); pointers
//     are allocated otherwise.
//
// Objects the pickle shares (memo references: one list appearing twice)
// are shared in Go too: the same []any, []byte, map or pointer. On error,
// *v is unchanged.
func (d Decoder) Unmarshal(data []byte, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return &ValueError{Detail: fmt.Sprintf("Unmarshal into %T, not a non-nil pointer", v), Err: ErrUnsupported}
	}
	lim := d.withDefaults()
	st := decStates.Get().(*decState)
	defer st.free()
	st.b = budgetFor(lim, len(data))
	return lim.decode(st, data, rv, &st.b)
}

// unmarshal is Unmarshal under the limits lim (with defaults applied),
// into rv (a non-nil pointer), charging what it allocates to b.
func (lim Decoder) unmarshal(data []byte, rv reflect.Value, b *budget) error {
	st := decStates.Get().(*decState)
	defer st.free()
	return lim.decode(st, data, rv, b)
}

// decode is unmarshal with the parser and converter of st.
func (lim Decoder) decode(st *decState, data []byte, rv reflect.Value, b *budget) error {
	if !b.spend(decodeOverhead) {
		return &OpError{Detail: fmt.Sprintf("decoding needs more than %d bytes of memory", b.max), Err: ErrTooLarge}
	}
	root, err := st.p.parse(data, lim, b)
	if err != nil {
		return err
	}
	st.c = converter{lim: lim, budget: b, path: st.c.path[:0]}
	c := &st.c
	if p, ok := rv.Interface().(*any); ok {
		x, err := c.natural(root)
		if err != nil {
			return err
		}
		*p = x
		return nil
	}
	// Into a new value, so that *v is unchanged on error.
	if err := c.spend(allocSize(int(rv.Elem().Type().Size()))); err != nil {
		return err
	}
	x := reflect.New(rv.Elem().Type()).Elem()
	if err := c.into(root, x); err != nil {
		return err
	}
	rv.Elem().Set(x)
	return nil
}

// converter turns the parsed object graph into Go values. It recurses
// once per level of nesting, up to MaxDepth, and charges what it
// allocates to the parser's budget.
type converter struct {
	lim    Decoder
	budget *budget
	depth  int
	path   path // where the conversion is, for errors
	// pathPaid is the capacity of path charged to the budget.
	pathPaid int
	peak     int // the deepest level reached, for the heights of shared values
	shared   map[*node]sharedValue
	typed    map[typedKey]sharedValue
	busy     map[*node]bool // shared nodes being converted: seeing one again is a cycle
	copied   int            // bytes copied between str and bytes, bounded by MaxSize
}

type typedKey struct {
	n *node
	t reflect.Type
}

// A sharedValue is the conversion of a shared node, and its height (1 for
// an empty container), so that a reference to it deeper down still
// respects MaxDepth.
type sharedValue struct {
	v      any // the natural value, or a reflect.Value
	height int
}

// reuse checks that a shared value of height h fits below the current
// level.
func (c *converter) reuse(h int) error {
	if c.depth+h > c.lim.MaxDepth {
		return c.valueError(ErrTooLarge, "nested deeper than %d", c.lim.MaxDepth)
	}
	c.peak = max(c.peak, c.depth+h)
	return nil
}

// spend charges n bytes to the budget, before they are allocated.
func (c *converter) spend(n int) error {
	if c.budget.spend(n) {
		return nil
	}
	return c.valueError(ErrTooLarge, "decoding needs more than %d bytes of memory", c.budget.max)
}

func (c *converter) typeError(x any, t reflect.Type, detail string) error {
	return &UnmarshalTypeError{Value: pyType(x), Type: t, Path: c.path.String(), Detail: detail}
}

func (c *converter) valueError(err error, format string, args ...any) error {
	return &ValueError{Path: c.path.String(), Detail: fmt.Sprintf(format, args...), Err: err}
}

// enter starts converting node n: it checks the depth and, for a shared
// node, cycles.
func (c *converter) enter(n *node) error {
	if c.depth >= c.lim.MaxDepth {
		return c.valueError(ErrTooLarge, "nested deeper than %d", c.lim.MaxDepth)
	}
	// The path grows by one element per level: room for this one and an
	// error's, charged.
	// (Charged as if it grew from nothing in this call, like the
	// parser's stack: a pooled path may have room already.)
	if c.pathPaid < c.depth+2 {
		n := max(2*c.pathPaid, c.depth+2, 8)
		if err := c.spend(allocSize(n * int(pathElemSize))); err != nil {
			return err
		}
		c.pathPaid = n
		if cap(c.path) < c.depth+2 {
			c.path = append(make(path, 0, n), c.path...)
		}
	}
	c.depth++
	c.peak = max(c.peak, c.depth)
	if n.refs >= 2 {
		if c.busy[n] {
			c.depth--
			return c.valueError(ErrUnsupported, "recursive %s: it contains itself", pyType(n))
		}
		if err := c.spend(cacheEntry); err != nil {
			return err
		}
		if c.busy == nil {
			c.busy = make(map[*node]bool)
		}
		c.busy[n] = true
	}
	return nil
}

func (c *converter) leave(n *node) {
	c.depth--
	if n.refs >= 2 {
		delete(c.busy, n)
	}
}

// natural converts x to the Go value an any receives.
func (c *converter) natural(x any) (any, error) {
	switch v := x.(type) {
	case byteArray:
		return []byte(v), c.spend(sliceBox)
	case *node:
		if v.refs >= 2 {
			if r, ok := c.shared[v]; ok {
				if err := c.reuse(r.height); err != nil {
					return nil, err
				}
				return r.v, nil
			}
		}
		base, saved := c.depth, c.peak
		c.peak = base
		if err := c.enter(v); err != nil {
			return nil, err
		}
		r, err := c.naturalNode(v)
		c.leave(v)
		height := c.peak - base
		c.peak = max(saved, c.peak)
		if err != nil {
			return nil, err
		}
		if v.refs >= 2 {
			if err := c.spend(cacheEntry); err != nil {
				return nil, err
			}
			if c.shared == nil {
				c.shared = make(map[*node]sharedValue)
			}
			c.shared[v] = sharedValue{r, height}
		}
		return r, nil
	}
	return x, nil
}

// naturalNode converts a container. A node held once is converted once,
// so its items can become the result in place.
func (c *converter) naturalNode(n *node) (any, error) {
	if n.kind == kObject {
		return c.naturalObject(n)
	}
	out := n.items
	if n.refs >= 2 || out == nil {
		if err := c.spend(allocSize(len(n.items) * ifaceSize)); err != nil {
			return nil, err
		}
		out = make([]any, len(n.items))
	}
	c.path = append(c.path, pathElem{kind: indexElem})
	dict := n.kind == kDict
	for i, item := range n.items {
		if dict {
			if i%2 == 1 {
				continue // the keys first: a value's path names its key
			}
			c.path[len(c.path)-1].kind = keyElem
		} else {
			c.path[len(c.path)-1].index = i
		}
		v, err := c.natural(item)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	if dict {
		c.path[len(c.path)-1].kind = valueElem
		for i := 1; i < len(n.items); i += 2 {
			c.path[len(c.path)-1].key = out[i-1]
			v, err := c.natural(n.items[i])
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
	}
	c.path = c.path[:len(c.path)-1]
	if n.kind == kDict {
		return c.dictOf(out)
	}
	if err := c.spend(sliceBox); err != nil {
		return nil, err
	}
	switch n.kind {
	case kTuple:
		return Tuple(out), nil
	case kSet:
		return Set(out), nil
	case kFrozenSet:
		return FrozenSet(out), nil
	}
	return out, nil
}

// goKey reports whether a natural value is a Go map key that compares by
// value the way Python compares it.
func goKey(k any) bool {
	switch k.(type) {
	case nil, bool, int64, float64, string:
		return true
	}
	return false
}

// dictOf makes a map[any]any of kv (key0, value0, key1, ...), or a Dict
// if a key cannot be a Go map key.
func (c *converter) dictOf(kv []any) (any, error) {
	asDict := false
	for i := 0; i < len(kv) && !asDict; i += 2 {
		asDict = !goKey(kv[i])
		if s, ok := kv[i].(string); ok {
			// The map will hash it. (Charged whether or not a later key
			// makes a Dict of it: a bound need not be exact.)
			if err := c.spend(len(s)); err != nil {
				return nil, err
			}
		}
	}
	if asDict {
		if err := c.spend(costOf(len(kv)/2, dictItemSize)); err != nil {
			return nil, err
		}
		if err := c.spend(sliceBox); err != nil {
			return nil, err
		}
		d := make(Dict, len(kv)/2)
		for i := range d {
			d[i] = DictItem{kv[2*i], kv[2*i+1]}
		}
		return d, nil
	}
	if err := c.spend(mapCost(len(kv)/2, 2*ifaceSize)); err != nil {
		return nil, err
	}
	m := make(map[any]any, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m, nil
}

var (
	dictItemSize  = reflect.TypeFor[DictItem]().Size()
	pathElemSize  = reflect.TypeFor[pathElem]().Size()
	bigIntType    = reflect.TypeFor[big.Int]()
	bigIntPtrType = reflect.TypeFor[*big.Int]()
	dictType      = reflect.TypeFor[Dict]()
	byteType      = reflect.TypeFor[byte]()
)

// into converts x into dst, which must be settable. It sets all of dst
// (never merges), so that a temporary can be reused.
func (c *converter) into(x any, dst reflect.Value) error {
	t := dst.Type()
	switch t.Kind() {
	case reflect.Interface:
		v, err := c.natural(x)
		if err != nil {
			return err
		}
		if v == nil {
			dst.SetZero()
			return nil
		}
		rv := reflect.ValueOf(v)
		if !rv.Type().AssignableTo(t) {
			return c.typeError(x, t, "")
		}
		dst.Set(rv)
		return nil
	case reflect.Pointer:
		if x == nil {
			dst.SetZero()
			return nil
		}
		if t == bigIntPtrType {
			b, err := c.toBig(x)
			if err != nil {
				return err
			}
			if b == nil {
				return c.typeError(x, t, "")
			}
			dst.Set(reflect.ValueOf(b))
			return nil
		}
		if n, ok := x.(*node); ok && n.refs >= 2 {
			return c.cached(n, dst)
		}
		if err := c.spend(allocSize(int(t.Elem().Size()))); err != nil {
			return err
		}
		p := reflect.New(t.Elem())
		if err := c.into(x, p.Elem()); err != nil {
			return err
		}
		dst.Set(p)
		return nil
	}
	switch v := x.(type) {
	case nil:
		switch t.Kind() {
		case reflect.Slice, reflect.Map:
			dst.SetZero()
			return nil
		}
	case bool:
		if t.Kind() == reflect.Bool {
			dst.SetBool(v)
			return nil
		}
	case int64, *big.Int:
		return c.intInto(x, dst)
	case float64:
		switch t.Kind() {
		case reflect.Float32, reflect.Float64:
			if !math.IsInf(v, 0) && dst.OverflowFloat(v) {
				return c.typeError(x, t, fmt.Sprintf("%g overflows %v", v, t))
			}
			dst.SetFloat(v)
			return nil
		}
	case string:
		switch {
		case t.Kind() == reflect.String:
			dst.SetString(v)
			return nil
		case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8:
			if err := c.copy(len(v)); err != nil {
				return err
			}
			if err := c.spend(allocSize(len(v)) + sliceBox); err != nil {
				return err
			}
			return c.bytesAs([]byte(v), dst)
		}
	case []byte:
		return c.bytesInto(x, v, dst)
	case byteArray:
		return c.bytesInto(x, v, dst)
	case *node:
		if v.refs >= 2 {
			return c.cached(v, dst)
		}
		return c.nodeInto(v, dst)
	}
	return c.typeError(x, t, "")
}

// cached converts a shared node once per type, and sets dst to that
// value: a slice, map or pointer then refers to the same Go value.
func (c *converter) cached(n *node, dst reflect.Value) error {
	t := dst.Type()
	k := typedKey{n, t}
	if r, ok := c.typed[k]; ok {
		if err := c.reuse(r.height); err != nil {
			return err
		}
		// A copy: of a header or a pointer, or of a whole array or
		// struct, which the budget counts as if allocated.
		if err := c.spend(int(t.Size())); err != nil {
			return err
		}
		dst.Set(r.v.(reflect.Value))
		return nil
	}
	base, saved := c.depth, c.peak
	c.peak = base
	defer func() { c.peak = max(saved, c.peak) }()
	if t.Kind() == reflect.Pointer {
		if err := c.spend(allocSize(int(t.Elem().Size()))); err != nil {
			return err
		}
		p := reflect.New(t.Elem())
		if err := c.into(n, p.Elem()); err != nil {
			return err
		}
		dst.Set(p)
	} else if err := c.nodeInto(n, dst); err != nil {
		return err
	}
	if err := c.spend(cacheEntry + allocSize(int(t.Size()))); err != nil {
		return err
	}
	v := reflect.New(t).Elem()
	v.Set(dst)
	if c.typed == nil {
		c.typed = make(map[typedKey]sharedValue)
	}
	c.typed[k] = sharedValue{v, c.peak - base}
	return nil
}

func (c *converter) copy(n int) error {
	c.copied += n
	if c.copied > c.lim.MaxSize {
		return c.valueError(ErrTooLarge, "more than %d bytes copied between str and bytes", c.lim.MaxSize)
	}
	return nil
}

// toBig returns a new big.Int of an int, or nil for another value.
func (c *converter) toBig(x any) (*big.Int, error) {
	switch v := x.(type) {
	case int64:
		return big.NewInt(v), c.spend(bigCost(8))
	case *big.Int:
		if err := c.spend(bigCost(len(v.Bits()) * wordSize)); err != nil {
			return nil, err
		}
		return new(big.Int).Set(v), nil
	}
	return nil, nil
}

// intInto converts an int64 or a *big.Int (which does not fit an int64).
func (c *converter) intInto(x any, dst reflect.Value) error {
	t := dst.Type()
	i, small := x.(int64)
	overflow := func() error {
		s := fmt.Sprint(i)
		if !small {
			s = intString(x.(*big.Int))
		}
		return c.typeError(x, t, fmt.Sprintf("%s overflows %v", s, t))
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if !small || dst.OverflowInt(i) {
			return overflow()
		}
		dst.SetInt(i)
		return nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		var u uint64
		switch {
		case small && i >= 0:
			u = uint64(i)
		case !small && x.(*big.Int).IsUint64():
			u = x.(*big.Int).Uint64()
		default:
			return overflow()
		}
		if dst.OverflowUint(u) {
			return overflow()
		}
		dst.SetUint(u)
		return nil
	case reflect.Float32, reflect.Float64:
		f := float64(i)
		if !small {
			b := x.(*big.Int)
			if b.BitLen() > 1024 { // beyond float64, without converting
				return overflow()
			}
			if err := c.spend(bigCost(len(b.Bits()) * wordSize)); err != nil { // a big.Float of it
				return err
			}
			f, _ = b.Float64()
		}
		if math.IsInf(f, 0) || dst.OverflowFloat(f) {
			return overflow()
		}
		dst.SetFloat(f)
		return nil
	case reflect.Struct:
		if t == bigIntType {
			b, err := c.toBig(x)
			if err != nil {
				return err
			}
			dst.Set(reflect.ValueOf(b).Elem())
			return nil
		}
	}
	return c.typeError(x, t, "")
}

func (c *converter) bytesInto(x any, b []byte, dst reflect.Value) error {
	t := dst.Type()
	switch {
	case t.Kind() == reflect.String:
		if err := c.copy(len(b)); err != nil {
			return err
		}
		if err := c.spend(allocSize(len(b))); err != nil {
			return err
		}
		dst.SetString(string(b))
		return nil
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8:
		return c.bytesAs(b, dst)
	case t.Kind() == reflect.Array && t.Elem().Kind() == reflect.Uint8:
		if len(b) != t.Len() {
			return c.typeError(x, t, fmt.Sprintf("%d bytes for %d", len(b), t.Len()))
		}
		for i, c := range b {
			dst.Index(i).SetUint(uint64(c))
		}
		return nil
	}
	return c.typeError(x, t, "")
}

// bytesAs sets dst, a slice of a byte kind, to b: b itself for []byte
// and named []byte types, a copy for []MyByte.
func (c *converter) bytesAs(b []byte, dst reflect.Value) error {
	t := dst.Type()
	if t.Elem() == byteType {
		if err := c.spend(2 * sliceBox); err != nil {
			return err
		}
		dst.Set(reflect.ValueOf(b).Convert(t))
		return nil
	}
	if err := c.spend(allocSize(len(b)) + sliceBox); err != nil {
		return err
	}
	out := reflect.MakeSlice(t, len(b), len(b))
	copy(out.Bytes(), b) // Bytes takes any slice of a byte kind
	dst.Set(out)
	return nil
}

// nodeInto converts a container into dst (not a pointer).
func (c *converter) nodeInto(n *node, dst reflect.Value) error {
	t := dst.Type()
	if t == objectType || n.kind == kObject {
		if t != objectType || n.kind != kObject {
			return c.typeError(n, t, "")
		}
		v, err := c.natural(n)
		if err != nil {
			return err
		}
		dst.Set(reflect.ValueOf(v))
		return nil
	}
	if t == dictType {
		if n.kind != kDict {
			return c.typeError(n, t, "")
		}
		if err := c.enter(n); err != nil {
			return err
		}
		defer c.leave(n)
		if err := c.spend(costOf(len(n.items)/2, dictItemSize)); err != nil {
			return err
		}
		d := make(Dict, len(n.items)/2)
		c.path = append(c.path, pathElem{kind: keyElem})
		for i := range d {
			c.path[len(c.path)-1] = pathElem{kind: keyElem}
			k, err := c.natural(n.items[2*i])
			if err != nil {
				return err
			}
			c.path[len(c.path)-1] = pathElem{kind: valueElem, key: k}
			v, err := c.natural(n.items[2*i+1])
			if err != nil {
				return err
			}
			d[i] = DictItem{k, v}
		}
		c.path = c.path[:len(c.path)-1]
		dst.Set(reflect.ValueOf(d))
		return nil
	}
	seq := n.kind != kDict
	isSet := n.kind == kSet || n.kind == kFrozenSet
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		if !seq {
			break
		}
		if t.Kind() == reflect.Array && t.Len() != len(n.items) {
			return c.typeError(n, t, fmt.Sprintf("%d elements for %d", len(n.items), t.Len()))
		}
		if err := c.enter(n); err != nil {
			return err
		}
		defer c.leave(n)
		out := dst
		if t.Kind() == reflect.Slice {
			if err := c.spend(costOf(len(n.items), t.Elem().Size())); err != nil {
				return err
			}
			out = reflect.MakeSlice(t, len(n.items), len(n.items))
		}
		c.path = append(c.path, pathElem{kind: indexElem})
		for i, item := range n.items {
			c.path[len(c.path)-1].index = i
			if err := c.into(item, out.Index(i)); err != nil {
				return err
			}
		}
		c.path = c.path[:len(c.path)-1]
		dst.Set(out)
		return nil
	case reflect.Map:
		var setValue reflect.Value
		switch {
		case isSet && t.Elem().Kind() == reflect.Struct && t.Elem().NumField() == 0:
			setValue = reflect.Zero(t.Elem())
		case isSet && t.Elem().Kind() == reflect.Bool:
			setValue = reflect.ValueOf(true).Convert(t.Elem())
		case seq:
			return c.typeError(n, t, "")
		}
		if err := c.enter(n); err != nil {
			return err
		}
		defer c.leave(n)
		stride := 1
		if !isSet {
			stride = 2
		}
		if err := c.spend(mapCost(len(n.items)/stride, t.Key().Size()+t.Elem().Size())); err != nil {
			return err
		}
		if err := c.spend(allocSize(int(t.Key().Size())) + allocSize(int(t.Elem().Size()))); err != nil { // k and v
			return err
		}
		out := reflect.MakeMapWithSize(t, len(n.items)/stride)
		k := reflect.New(t.Key()).Elem()
		v := setValue
		if !isSet {
			v = reflect.New(t.Elem()).Elem()
		}
		c.path = append(c.path, pathElem{})
		for i := 0; i < len(n.items); i += stride {
			if isSet {
				c.path[len(c.path)-1] = pathElem{kind: indexElem, index: i}
			} else {
				c.path[len(c.path)-1] = pathElem{kind: keyElem}
			}
			if err := c.into(n.items[i], k); err != nil {
				return err
			}
			if !k.Comparable() {
				return c.valueError(ErrUnsupported, "%s key cannot be a Go map key", pyType(n.items[i]))
			}
			if err := c.spend(hashCost(k)); err != nil {
				return err
			}
			if !isSet {
				c.path[len(c.path)-1] = pathElem{kind: valueElem, key: n.items[i]}
				if err := c.into(n.items[i+1], v); err != nil {
					return err
				}
			}
			out.SetMapIndex(k, v)
		}
		c.path = c.path[:len(c.path)-1]
		dst.Set(out)
		return nil
	case reflect.Struct:
		if n.kind != kDict {
			break
		}
		if err := c.enter(n); err != nil {
			return err
		}
		defer c.leave(n)
		return c.structInto(n, dst)
	}
	return c.typeError(n, t, "")
}

func (c *converter) structInto(n *node, dst reflect.Value) error {
	t := dst.Type()
	fields := cachedFields(t)
	if len(fields.list) == 0 && t.NumField() > 0 {
		return c.typeError(n, t, "no exported fields")
	}
	dst.SetZero()
	for i := 0; i < len(n.items); i += 2 {
		name, ok := n.items[i].(string)
		if !ok {
			c.path = append(c.path, pathElem{kind: valueElem, key: n.items[i]})
			return c.typeError(n.items[i], t, "a struct's dict keys must be str")
		}
		if err := c.spend(fields.lookupCost(name)); err != nil {
			return err
		}
		f := fields.lookup(name)
		if f == nil {
			continue
		}
		c.path = append(c.path, pathElem{name: f.name})
		if err := c.into(n.items[i+1], dst.FieldByIndex(f.index)); err != nil {
			return err
		}
		c.path = c.path[:len(c.path)-1]
	}
	return nil
}
