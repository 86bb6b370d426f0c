package pool

import (
	"errors"
	"reflect"
	"testing"

	"mproc/internal/shm"

	"mproc"
)

type rawPoint struct {
	X, Y float64
	N    [3]int32
	OK   bool
}

type hiddenField struct {
	X int
	y int
}

type skippedField struct {
	X int
	Y int `json:"-"`
}

// Only types every codec would carry byte for byte cross as memory.
func TestRawType(t *testing.T) {
	for _, c := range []struct {
		v   any
		raw bool
	}{
		{0, true}, {uint8(0), true}, {0.5, true}, {false, true}, {[4]uint16{}, true}, {rawPoint{}, true},
		{"", false}, {[]int{}, false}, {map[int]int{}, false}, {new(int), false}, {struct{}{}, false},
		{hiddenField{}, false}, {skippedField{}, false}, {complex(1, 2), false}, {[2]string{}, false},
		{struct{ P *int }{}, false},
	} {
		if got := rawType(reflect.TypeOf(c.v)); got != c.raw {
			t.Errorf("rawType(%T) = %v, want %v", c.v, got, c.raw)
		}
	}
	if newCodecOf[int](taskOptions([]TaskOption{WithCodec(mproc.JSONCodec{})})).raw {
		t.Errorf("an int of a task registered WithCodec crosses as memory")
	}
}

// Raw values, slices and chunk results decode to what was encoded; a
// message of the wrong length is refused, never read past.
func TestRawRoundTrip(t *testing.T) {
	vc := newCodecOf[rawPoint](taskOptions(nil))
	if !vc.raw {
		t.Fatal("rawPoint does not cross as memory")
	}
	p := rawPoint{X: 1.5, Y: -2, N: [3]int32{7, 8, 9}, OK: true}
	b, _ := vc.marshal(&p)
	var q rawPoint
	if err := vc.unmarshal(b, &q); err != nil || q != p {
		t.Fatalf("value: %+v, %v", q, err)
	}
	if err := vc.unmarshal(b[1:], &q); err == nil {
		t.Fatal("a short value decoded")
	}
	s := []rawPoint{p, {}, p}
	msg, _ := vc.sliceMessage(taskBatch, "t", s)
	kind, _, name, b, err := parseTask(msg)
	if err != nil || kind != taskBatch || name != "t" {
		t.Fatalf("slice message: %d %q, %v", kind, name, err)
	}
	got, err := vc.unmarshalSlice(b)
	if err != nil || !reflect.DeepEqual(got, s) {
		t.Fatalf("slice: %+v, %v", got, err)
	}
	if _, err := vc.unmarshalSlice(b[:len(b)-1]); err == nil {
		t.Fatal("a slice of a partial value decoded")
	}
	out := batchResult[rawPoint]{V: s, E: []batchErr{{I: 1, E: &wireErr{Msg: "failed"}}}}
	for _, in := range []batchResult[rawPoint]{out, {V: s}, {V: []rawPoint{}}} {
		b, err := vc.marshalBatch(&in)
		if err != nil {
			t.Fatal(err)
		}
		back, err := vc.unmarshalItems(b, len(in.V), from{name: "w", pid: 7})
		if err != nil || len(back) != len(in.V) {
			t.Fatalf("batch %+v: %+v, %v", in, back, err)
		}
		for i, it := range back {
			failed := len(in.E) > 0 && i == 1
			if it.V != in.V[i] || (it.Err != nil) != failed {
				t.Fatalf("batch %+v: item %d is %+v", in, i, it)
			}
			var re *mproc.RemoteError
			if failed && (!errors.As(it.Err, &re) || re.Msg != "failed" || re.Pid != 7) {
				t.Fatalf("batch errors: %v", it.Err)
			}
		}
		if _, err := vc.unmarshalItems(b, len(in.V)+1, from{}); err == nil {
			t.Fatal("a batch of fewer results than asked for decoded")
		}
		if len(in.V) > 0 {
			if _, err := vc.unmarshalItems(b[:4+len(shm.SliceBytes(in.V))-1], len(in.V), from{}); err == nil {
				t.Fatal("a batch claiming more results than it holds decoded")
			}
		}
	}
}
