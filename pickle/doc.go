// Package pickle is a safe, size-limited codec for the Python values that
// cross between Go and Python processes most often — None, bool, int,
// float, str, bytes, bytearray, list, tuple, dict, set and frozenset —
// in Python's pickle format. Its [Codec] satisfies mproc.Codec, so that a
// connection to a Python multiprocessing peer, or a queue, carries
// pickles:
//
//	conn.SetCodec(pickle.Codec{}) // Send and Recv talk to Python's send and recv
//	q, err := mproc.CreateQueue[Job]("jobs", 64, mproc.WithCodec(pickle.Codec{}))
//
// # Safety
//
// A pickle is a program for a stack machine, and Python's own loader will
// import any module and call any function a pickle names: never unpickle
// untrusted data in Python. This package decodes without importing or
// calling anything. It executes the data opcodes of protocols 0 to 5 (what
// Python 3 writes for the types above) and refuses, with an error wrapping
// [ErrUnsafe] that names the opcode and its offset, every opcode that
// would import, build or call an object: GLOBAL and STACK_GLOBAL (except
// below, and for the classes a Decoder allows: see Objects), REDUCE,
// BUILD, INST, OBJ, NEWOBJ, NEWOBJ_EX, EXT1/2/4, PERSID and BINPERSID.
// Unknown opcodes and malformed pickles are [ErrProtocol].
//
// Python writes a few of the supported types with a constructor call:
// set and frozenset before protocol 4 (builtins.set([...])), bytes before
// protocol 3 (_codecs.encode('...', 'latin1')) and bytearray before
// protocol 5 (builtins.bytearray(b'...')). The decoder recognises exactly
// these names — builtins or __builtin__ set, frozenset, bytearray and
// bytes, and _codecs.encode — with exactly these argument shapes, and
// builds the value itself; any other name, or these with other arguments,
// is ErrUnsafe. Nothing is looked up by name.
//
// # Objects
//
// A few Python objects that are not plain data cross between processes
// as a matter of course: a multiprocessing manager replies
// ('#ERROR', queue.Empty()) when a method raises, and ('#PROXY',
// (exposed, Token(...))) with a reference to a new shared object; Python
// sends slice(1, 3) for l[1:3]. A pickle names such an object's class and
// tells the loader to call it, which this package never does. Instead a
// Decoder whose Objects field lists the class (a [Class], its module and
// qualified name) decodes the object to an [Object]: the class's name,
// the arguments and the state, as values; nothing is imported, looked up
// or called, and the class is only a pair of strings the caller
// interprets. Exactly these opcode sequences make an Object, for a listed
// class only:
//
//	GLOBAL or STACK_GLOBAL, a tuple of arguments, REDUCE     cls(*args): exceptions, slice
//	GLOBAL or STACK_GLOBAL, a tuple of arguments, NEWOBJ     cls.__new__(cls, *args): Token, Namespace
//
// each optionally followed by one BUILD of a state (any value: a dict of
// attributes, or what __getstate__ returned; a state of None is as no
// BUILD). Anything else stays
// ErrUnsafe, exactly as without Objects: a class not listed, a listed
// class anywhere but right under its arguments (as a value, an argument,
// a state), REDUCE or NEWOBJ of arguments that are not a tuple, BUILD of
// anything but an Object, items added to an Object (APPENDS, SETITEMS,
// ADDITEMS: Python would call its methods), NEWOBJ_EX, INST and OBJ, and
// the protocol-0 and -1 form of NEWOBJ, copyreg._reconstructor. A second BUILD of the same
// object is ErrUnsupported. The pure-data constructors above (set,
// bytearray, ...) keep their meaning even if listed. Objects count
// against the limits as containers do: each is a level of nesting above
// its arguments and state, and what it takes is charged to the budget
// (about 280 bytes for an object of no arguments, so that the default
// MaxAlloc takes up to about 690,000 of them in one pickle).
// At protocols 0 to 2 Python writes some classes under their Python 2
// names; as Python's unpickler does, the decoder reads
// __builtin__.X and exceptions.X as builtins.X (exceptions.StandardError
// as builtins.Exception) and Queue.X as queue.X there, before looking the
// class up in Objects.
//
// [Encoder.Marshal] writes an Object as CPython's pickler (protocol 4)
// writes the object it describes, so that Python builds it on loading:
// STACK_GLOBAL of the module and name (each str memoized; a class written
// before is a memo reference), the arguments, REDUCE or NEWOBJ (as
// NewObj says), MEMOIZE, and BUILD of the state if it is not nil. For
// the manager's objects — _queue.Empty, queue.Full and queue.ShutDown,
// threading.BrokenBarrierError, builtins.KeyError, IndexError,
// ValueError, TypeError, AttributeError, slice, and
// multiprocessing.managers' Token and Namespace — the bytes are those of
// Python 3.7 to 3.13's pickle.dumps(x, 4) (the tests check each on every
// Python they find). Exceptions reduce to their class and args, with a
// dict state if they carry attributes (Python 3.12 and later give an
// AttributeError the state {'args': args}); Token and Namespace are
// NEWOBJ of no arguments, a Token with the state (typeid, address, id), a
// Namespace with its attributes as a dict (none: no BUILD; give a [Dict]
// to keep Python's order, as a Go map's keys are written sorted).
//
// # Limits
//
// A [Decoder] bounds the pickle's size, each container's length, each
// str's or bytes' length, the nesting depth and the memory decoding
// allocates; an [Encoder] bounds the output's size and the nesting depth.
// Exceeding one is [ErrTooLarge]. A zero limit means the default
// (DefaultMaxSize, ...). The decoder checks every length the pickle
// claims against the limits and against the bytes actually present
// before allocating, so a ten-byte pickle claiming a 4 GiB string fails
// at once, and it charges everything it allocates, Go values included,
// to a budget (MaxAlloc, and 256 bytes per byte of the pickle plus 1 MiB)
// before allocating it (see [Decoder]). The decoder runs the stack
// machine without recursion and checks the depth of each container as it
// builds it; converting the result to Go values recurses once per level,
// up to MaxDepth, and a value that contains itself (a list appended to
// itself) is [ErrUnsupported] rather than a cycle in Go. Objects the
// pickle shares through its memo stay shared in Go, so a pickle that
// names one list a million times, or nests shared lists 60 levels deep
// (2^60 leaves if expanded), decodes in time and memory linear in its
// size.
//
// # Limits on hostile input
//
// The defaults are meant for a peer you do not trust: any pickle of up
// to DefaultMaxSize (16 MiB) bytes is decoded or refused within
// DefaultMaxAlloc (192 MiB) allocated in all, garbage included, and well
// under a second. The tests (TestHostile, BenchmarkHostile) build the
// worst 16 MiB pickles we could think of: deep nesting through every
// opcode that makes a container, on the stack and through the memo;
// millions of empty or tiny containers, small ints, floats, strs and
// bytes; DUP and memo references by the million; sparse memo indexes;
// set(), bytearray() and _codecs.encode() of one big memoized object
// again and again; one 12 MiB str as a dict key a million times; texts of
// 4300-digit ints; typed targets that copy per reference; objects of an
// allowed class by the million, nested through their arguments or their
// states, or sharing one big tuple or state. Measured on a
// 2-core AMD EPYC (Go 1.26, amd64, no race detector), the most any of
// them allocated was 192 MiB and the longest took 0.34 s (a list nested
// 1.8 million deep through the memo, refused when converted); on the
// same machine busy with other work, up to 0.6 s, and with the race
// detector up to 235 MiB and 3 s. A nesting deeper
// than MaxDepth built by one container opcode after another is refused
// at the first container too deep (offset 1004 of a 16 MiB TUPLE1
// chain), having allocated almost nothing.
//
// The cost of this: a pickle is refused if decoding it would allocate
// more than MaxAlloc, or more than 256 bytes per byte of it (plus 1 MiB).
// Ordinary data needs 5 to 30 bytes per byte of pickle (strs, bytes and
// floats the least; ints and records of a few fields 10 to 30, as the
// array of a growing list doubles), dicts of one or two items about 70
// (each is a Go map), and empty containers up to 180. So under the
// defaults a pickle of strs, bytes and floats decodes up to
// DefaultMaxSize, of ints or records up to 6 MiB at least, and of tiny
// dicts up to about 3 MiB. Raise MaxAlloc for trusted peers that send more.
//
// # Values
//
// [Decoder.Unmarshal] into an *any gives nil, bool, int64 (or *big.Int
// beyond int64), float64, string, []byte, []any, [Tuple], map[any]any (or
// [Dict] when a key cannot be a Go map key, such as a tuple), [Set] and
// [FrozenSet], and [Object] for the classes the Decoder allows; into
// typed values it converts with range and type checks,
// and errors name the path (".Items[3].Name"). [Encoder.Marshal] writes
// protocol 4, the default of Python 3.8 to 3.13, which every Python 3.4 or
// later reads, as Python's own pickler (the C one, _pickle, which
// pickle.dumps uses) writes it: framing, memo, and lists, dicts and sets
// in batches of 1000 items. For values without sets, Python 3.7 to 3.13's
// pickle.dumps(x, 4) of what it loads is the same bytes. Go maps are
// written with their keys sorted.
//
// Python str is UTF-8 with "surrogatepass": a str may hold lone surrogates,
// which this package keeps in Go strings as their three-byte encoding so
// that they survive a round trip. Other invalid UTF-8 is refused both ways.
//
// Python 2 str opcodes (STRING, BINSTRING, SHORT_BINSTRING) and
// protocol 5's out-of-band buffers are [ErrUnsupported].
package pickle
