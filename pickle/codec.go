package pickle

// Tuple is a Python tuple. Marshal writes it as a tuple; a tuple decodes
// into an any as a Tuple.
type Tuple []any

// Set is a Python set: its elements in the pickle's order (Python's own
// iteration order). It is a slice, not a Go map, so that it can hold what
// Go maps cannot (tuples, frozensets); unmarshal into a map[T]struct{} or
// map[T]bool for lookups. Marshal writes a set; its elements must be
// hashable in Python (no lists, dicts or sets).
type Set []any

// FrozenSet is a Python frozenset; see Set.
type FrozenSet []any

// Dict is a Python dict as its items in order. A dict decodes into an any
// as a map[any]any when every key can be a Go map key by value (None,
// bool, int64, float64, string), and as a Dict otherwise (tuple, bytes,
// frozenset or big-int keys). Unmarshal into a *Dict to always get one.
// Marshal writes a Dict's items in its order.
type Dict []DictItem

// DictItem is one key and value of a Dict.
type DictItem struct {
	Key, Value any
}

// Codec is a pickle codec for mproc queues and connections: Marshal with
// its Encoder, Unmarshal with its Decoder. The zero value uses the default
// limits. A Codec is safe for concurrent use by multiple goroutines.
type Codec struct {
	Decoder Decoder
	Encoder Encoder
}

// Marshal returns the protocol-4 pickle of v; see [Encoder.Marshal].
func (c Codec) Marshal(v any) ([]byte, error) { return c.Encoder.Marshal(v) }

// Unmarshal decodes the pickle data into the value v points to; see
// [Decoder.Unmarshal].
func (c Codec) Unmarshal(data []byte, v any) error { return c.Decoder.Unmarshal(data, v) }

// Marshal returns the protocol-4 pickle of v under the default limits.
func Marshal(v any) ([]byte, error) { return Encoder{}.Marshal(v) }

// Unmarshal decodes the pickle data into the value v points to, under
// the default limits.
func Unmarshal(data []byte, v any) error { return Decoder{}.Unmarshal(data, v) }
