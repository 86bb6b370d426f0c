package pickle_test

import (
	"errors"
	"fmt"

	"mproc/pickle"
)

func Example() {
	type Job struct {
		ID   int      `pickle:"id"`
		Args []string `pickle:"args"`
	}
	// What Python's pickle.dumps({'id': 7, 'args': ['a', 'b']}) writes.
	data := []byte("\x80\x04\x95\x1f\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x02id\x94K\x07\x8c\x04args\x94]\x94(\x8c\x01a\x94\x8c\x01b\x94eu.")

	var job Job
	if err := pickle.Unmarshal(data, &job); err != nil {
		fmt.Println(err)
	}
	fmt.Printf("%+v\n", job)

	var v any // natural Go values
	if err := pickle.Unmarshal(data, &v); err != nil {
		fmt.Println(err)
	}
	fmt.Printf("%v\n", v)

	out, err := pickle.Marshal(job)
	fmt.Println(string(out) == string(data), err)
	// Output:
	// {ID:7 Args:[a b]}
	// map[args:[a b] id:7]
	// true <nil>
}

func ExampleDecoder() {
	// pickle.dumps(os.system) followed by a call: decoding refuses it.
	evil := []byte("\x80\x04\x95\x1e\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x94\x8c\x06system\x94\x93\x94\x8c\x07echo hi\x94\x85\x94R\x94.")
	var v any
	err := pickle.Decoder{}.Unmarshal(evil, &v)
	fmt.Println(errors.Is(err, pickle.ErrUnsafe))
	fmt.Println(err)

	// A pickle that claims a 4 GiB str fails at once, allocating nothing.
	claim := []byte("\x80\x04\x8d\x00\x00\x00\x00\x01\x00\x00\x00.")
	err = pickle.Decoder{MaxStringLen: 1 << 20}.Unmarshal(claim, &v)
	fmt.Println(errors.Is(err, pickle.ErrTooLarge))
	// Output:
	// true
	// pickle: STACK_GLOBAL at offset 25: os.system: mproc: unsafe pickle: refusing to import or call
	// true
}

func ExampleObject() {
	// A Python manager's reply when a method raised queue.Empty:
	// ('#ERROR', _queue.Empty()), as Python pickles it.
	reply := []byte("\x80\x04\x95\x22\x00\x00\x00\x00\x00\x00\x00\x8c\x06#ERROR\x94\x8c\x06_queue\x94\x8c\x05Empty\x94\x93\x94)R\x94\x86\x94.")
	var v any
	err := pickle.Unmarshal(reply, &v)
	fmt.Println(errors.Is(err, pickle.ErrUnsafe)) // no class allowed

	d := pickle.Decoder{Objects: map[pickle.Class]bool{{Module: "_queue", Name: "Empty"}: true}}
	if err := d.Unmarshal(reply, &v); err != nil {
		fmt.Println(err)
	}
	exc := v.(pickle.Tuple)[1].(pickle.Object) // nothing was called
	fmt.Println(exc.Class(), exc.Args)

	// Python writes exactly these bytes for the same reply.
	out, err := pickle.Marshal(pickle.Tuple{"#ERROR", pickle.Object{Module: "_queue", Name: "Empty"}})
	fmt.Println(string(out) == string(reply), err)
	// Output:
	// true
	// _queue.Empty []
	// true <nil>
}

func ExampleTuple() {
	data, _ := pickle.Marshal(pickle.Tuple{nil, "create", pickle.Tuple{"get_queue"}, map[string]any{}})
	var v any
	_ = pickle.Unmarshal(data, &v)
	fmt.Printf("%#v\n", v)
	// Output:
	// pickle.Tuple{interface {}(nil), "create", pickle.Tuple{"get_queue"}, map[interface {}]interface {}{}}
}
