package pickle

import (
	"reflect"
	"strings"
	"sync"
)

// A field is a struct field that crosses as a dict item.
type field struct {
	name      string // the dict key
	index     []int  // for reflect.Value.FieldByIndex
	typ       reflect.Type
	omitEmpty bool
}

// structFields are a struct type's fields in declaration order, with
// lookups by dict key.
type structFields struct {
	list    []field
	exact   map[string]*field
	folded  map[string]*field // by strings.ToLower(name); the first wins
	maxName int               // the longest name, in bytes
}

// lookup returns the field for a dict key, or nil. A key longer than
// four times the longest name (a rune takes at most four bytes, and
// ToLower keeps the number of runes) matches nothing: it is neither
// hashed nor folded, however big.
func (s *structFields) lookup(key string) *field {
	if len(key) > 4*s.maxName {
		return nil
	}
	if f := s.exact[key]; f != nil {
		return f
	}
	return s.folded[strings.ToLower(key)]
}

// lookupCost is what lookup allocates, or hashes, at most.
func (s *structFields) lookupCost(key string) int {
	if len(key) > 4*s.maxName {
		return 0
	}
	return 2*len(key) + 16
}

var fieldCache sync.Map // reflect.Type -> *structFields

func cachedFields(t reflect.Type) *structFields {
	if f, ok := fieldCache.Load(t); ok {
		return f.(*structFields)
	}
	f, _ := fieldCache.LoadOrStore(t, typeFields(t))
	return f.(*structFields)
}

// typeFields lists the fields of struct type t that cross: exported, not
// tagged `pickle:"-"`, named by their tag or their Go name. The exported
// fields of embedded structs (not pointers) without a tag name are
// promoted, as in encoding/json: of fields with the same name, the
// shallowest wins, then the tagged one; a tie drops them all.
func typeFields(t reflect.Type) *structFields {
	type candidate struct {
		field
		depth  int
		tagged bool
	}
	var cands []candidate
	var walk func(t reflect.Type, index []int, depth int, seen map[reflect.Type]bool)
	walk = func(t reflect.Type, index []int, depth int, seen map[reflect.Type]bool) {
		seen[t] = true
		defer delete(seen, t)
		for i := range t.NumField() {
			sf := t.Field(i)
			tag := sf.Tag.Get("pickle")
			if tag == "-" {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			idx := append(append([]int(nil), index...), i)
			if sf.Anonymous && name == "" && sf.Type.Kind() == reflect.Struct {
				if !seen[sf.Type] {
					walk(sf.Type, idx, depth+1, seen)
				}
				continue
			}
			if !sf.IsExported() {
				continue
			}
			tagged := name != ""
			if !tagged {
				name = sf.Name
			}
			omit := false
			for _, o := range strings.Split(opts, ",") {
				omit = omit || o == "omitempty"
			}
			cands = append(cands, candidate{field{name, idx, sf.Type, omit}, depth, tagged})
		}
	}
	walk(t, nil, 0, map[reflect.Type]bool{})

	// Resolve name conflicts.
	type best struct {
		depth, count, tagged int
	}
	byName := map[string]*best{}
	for _, c := range cands {
		b := byName[c.name]
		if b == nil || c.depth < b.depth {
			b = &best{depth: c.depth}
			byName[c.name] = b
		}
		if c.depth == b.depth {
			b.count++
			if c.tagged {
				b.tagged++
			}
		}
	}
	s := &structFields{exact: map[string]*field{}, folded: map[string]*field{}}
	for _, c := range cands {
		b := byName[c.name]
		if c.depth != b.depth || b.count > 1 && !(b.tagged == 1 && c.tagged) {
			continue
		}
		s.list = append(s.list, c.field)
	}
	for i := range s.list {
		f := &s.list[i]
		s.maxName = max(s.maxName, len(f.name))
		s.exact[f.name] = f
		if lower := strings.ToLower(f.name); s.folded[lower] == nil {
			s.folded[lower] = f
		}
	}
	return s
}
