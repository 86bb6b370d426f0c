package pickle

import "reflect"

// A Class names a Python class by its module and qualified name, as a
// pickle names it: Class{"builtins", "KeyError"},
// Class{"multiprocessing.managers", "Token"}. It is only a name: nothing
// is imported or looked up.
type Class struct {
	Module, Name string
}

// String returns "module.name".
func (c Class) String() string { return c.Module + "." + c.Name }

// An Object is a Python object that is not plain data, described by the
// opcodes that build it, none of which is run: an instance of the class
// Module.Name, made by calling the class with Args (REDUCE, as exceptions
// and slice are pickled: KeyError('k') is builtins.KeyError with Args
// ('k',)) or, if NewObj, by cls.__new__(cls, *Args) (NEWOBJ, as copyreg
// pickles instances of ordinary classes such as
// multiprocessing.managers.Token), then given State (BUILD), if State is
// not nil.
//
// State is what the pickle's BUILD sets, as decoded: usually the
// instance's attributes as a dict (an exception with attributes, a
// Namespace), a tuple (dict, slots) for a class with __slots__, or
// whatever the class's __getstate__ returned (a Token's is the tuple
// (typeid, address, id)). nil means no BUILD.
//
// A Decoder produces Objects only of the classes listed in its Objects
// field (see the package documentation), as values, like Tuple and Dict:
// an Object describes how to build the object, it is not the object, and
// a value can be matched and compared without a nil case. An object the
// pickle refers to twice decodes to two Objects sharing their Args and
// State. Decoding into an Object or *Object works too.
//
// Marshal writes an Object as CPython's pickler writes the object it
// describes, so that Python builds it when it loads the pickle. An
// *Object is written once and referred to again through the memo, as
// Python writes one object seen twice.
type Object struct {
	Module, Name string // the class, e.g. "builtins", "KeyError"
	Args         Tuple  // the arguments of the call, or of __new__
	State        any    // what BUILD sets; nil: no BUILD
	NewObj       bool   // built by cls.__new__(cls, *Args) (NEWOBJ), not cls(*Args) (REDUCE)
}

// Class returns the class of o.
func (o Object) Class() Class { return Class{o.Module, o.Name} }

var (
	objectType    = reflect.TypeFor[Object]()
	objectPtrType = reflect.TypeFor[*Object]()
	objectSize    = int(objectType.Size())
)

// Objects in the parser.
//
// An allowed class pushed by GLOBAL or STACK_GLOBAL is a *global with
// object set. REDUCE or NEWOBJ of it with a tuple of arguments makes a
// node of kind kObject whose items are the *global, the arguments (a
// tuple node) and, once BUILD has run, the state: [g, args] or [g, args,
// state]. Only this file and the converter's kObject cases look inside
// it; to everything else it is an opaque node, hashable (Python objects
// hash by identity unless their class says otherwise) and one level of
// nesting above its arguments and state.

// python2Names maps the modules Python 3's pickler writes under their
// Python 2 names at protocols 0 to 2 back to their Python 3 names, as
// Python's unpickler does (_compat_pickle, fix_imports), for the modules
// of the classes a manager meets: exceptions live in builtins, queue was
// Queue.
var python2Names = map[string]string{
	"__builtin__": "builtins",
	"exceptions":  "builtins",
	"Queue":       "queue",
}

// objectClass reports whether module.name is a class a pickle may build
// Objects of, and returns its Python 3 name.
func (p *parser) objectClass(module, name string) (Class, bool) {
	if len(p.lim.Objects) == 0 {
		return Class{}, false
	}
	c := Class{module, name}
	if m, ok := python2Names[module]; ok && p.proto < 3 {
		c.Module = m
		if module == "exceptions" && name == "StandardError" {
			c.Name = "Exception"
		}
	}
	return c, p.lim.Objects[c]
}

// pushObject runs REDUCE (newObj false) or NEWOBJ of the allowed class g
// with the arguments args: it pushes a new object node.
func (p *parser) pushObject(g *global, args *node, newObj bool) error {
	if args.kind != kTuple {
		return p.fail(ErrUnsafe, "%s.%s with arguments of type %s", g.module, g.name, kindNames[args.kind])
	}
	height := args.height + 1
	if height > uint32(p.lim.MaxDepth) {
		return p.fail(ErrTooLarge, "nested deeper than %d", p.lim.MaxDepth)
	}
	if err := p.spend(nodeSize + allocSize(3*ifaceSize)); err != nil {
		return err
	}
	if err := p.place(args); err != nil {
		return err
	}
	items := make([]any, 2, 3)
	items[0], items[1] = g, args
	return p.push(&node{kind: kObject, items: items, height: height, hashable: true, newObj: newObj})
}

// newObj runs NEWOBJ: cls.__new__(cls, *args) for an allowed class.
func (p *parser) newObj() error {
	if len(p.lim.Objects) == 0 {
		return p.fail(ErrUnsafe, "builds or loads an object")
	}
	argv, err1 := p.pop()
	cls, err2 := p.pop()
	if err := firstErr(err1, err2); err != nil {
		return err
	}
	g, ok := cls.(*global)
	if !ok || !g.object {
		return p.fail(ErrUnsafe, "builds a %s", pyType(cls))
	}
	args, ok := argv.(*node)
	if !ok {
		return p.fail(ErrUnsafe, "%s.%s with arguments of type %s", g.module, g.name, pyType(argv))
	}
	return p.pushObject(g, args, true)
}

// build runs BUILD: it sets the state of the object below it, once.
func (p *parser) build() error {
	if len(p.lim.Objects) == 0 {
		return p.fail(ErrUnsafe, "builds or loads an object")
	}
	state, err1 := p.pop()
	target, err2 := p.top()
	if err := firstErr(err1, err2); err != nil {
		return err
	}
	n, ok := target.(*node)
	if !ok || n.kind != kObject {
		return p.fail(ErrUnsafe, "sets the state of a %s", pyType(target))
	}
	if len(n.items) == 3 {
		return p.fail(ErrUnsupported, "a second BUILD of a %s", pyType(n))
	}
	if err := p.place(state); err != nil {
		return err
	}
	if c, ok := state.(*node); ok && c != n {
		n.height = max(n.height, c.height+1)
	}
	if n.height > uint32(p.lim.MaxDepth) {
		return p.fail(ErrTooLarge, "nested deeper than %d", p.lim.MaxDepth)
	}
	n.items = append(n.items, state) // within the capacity pushObject made
	return nil
}

// naturalObject converts an object node into an Object.
func (c *converter) naturalObject(n *node) (any, error) {
	g := n.items[0].(*global)
	c.path = append(c.path, pathElem{name: "Args"})
	args, err := c.natural(n.items[1])
	if err != nil {
		return nil, err
	}
	var state any
	if len(n.items) == 3 {
		c.path[len(c.path)-1] = pathElem{name: "State"}
		if state, err = c.natural(n.items[2]); err != nil {
			return nil, err
		}
	}
	c.path = c.path[:len(c.path)-1]
	if err := c.spend(allocSize(objectSize)); err != nil {
		return nil, err
	}
	return Object{Module: g.module, Name: g.name, Args: args.(Tuple), State: state, NewObj: n.newObj}, nil
}

// object writes an Object as CPython's save_reduce writes the object it
// describes, at protocol 4: the class (STACK_GLOBAL of its module and
// name, memoized, or BINGET of the class written before), the arguments,
// REDUCE or NEWOBJ, MEMOIZE, and if there is a state, the state and
// BUILD. It memoizes the object under id if not nil.
func (s *encState) object(v reflect.Value, id *identity) error {
	if s.depth >= s.maxDepth {
		return s.errorf(ErrTooLarge, "nested deeper than %d", s.maxDepth)
	}
	s.depth++
	defer func() { s.depth-- }()
	o := v.Interface().(Object)
	if o.Module == "" || o.Name == "" {
		return s.errorf(ErrUnsupported, "Object of class %q.%q: a class needs a module and a name", o.Module, o.Name)
	}
	c := o.Class()
	if i, ok := s.classes[c]; ok {
		s.boundary()
		s.get(i)
	} else {
		for _, x := range [...]string{o.Module, o.Name} {
			s.boundary()
			if err := s.str(x); err != nil {
				return err
			}
		}
		s.buf = append(s.buf, opStackGlobal)
		if s.classes == nil {
			s.classes = make(map[Class]uint32)
		}
		s.classes[c] = s.memoize()
	}
	s.push(pathElem{name: "Args"})
	if err := s.encode(reflect.ValueOf(o.Args), false); err != nil {
		return err
	}
	s.pop()
	if o.NewObj {
		s.buf = append(s.buf, opNewObj)
	} else {
		s.buf = append(s.buf, opReduce)
	}
	s.memoizeAs(id)
	if o.State == nil {
		return nil
	}
	s.push(pathElem{name: "State"})
	if err := s.encode(reflect.ValueOf(o.State), false); err != nil {
		return err
	}
	s.pop()
	s.buf = append(s.buf, opBuild)
	return nil
}
