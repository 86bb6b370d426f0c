package reexec

import (
	"encoding/binary"
	"errors"
	"time"
)

// The Hello and the Result are encoded by hand, field by field in a fixed
// order: integers as varints, strings and byte slices with a uvarint length.
// It is a few dozen bytes per child and keeps encoding/gob's reflection off
// the start-up path.

var errShort = errors.New("mproc: control protocol: message truncated")

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func (h Hello) encode() []byte {
	b := make([]byte, 0, 64+len(h.Func)+len(h.Name)+len(h.Arg))
	b = appendString(b, h.Func)
	b = appendString(b, h.Name)
	b = binary.AppendVarint(b, int64(h.ParentPid))
	b = binary.AppendVarint(b, int64(h.Grace))
	b = append(b, boolByte(h.Detached))
	b = binary.AppendUvarint(b, uint64(len(h.Arg)))
	return append(b, h.Arg...)
}

func (r Result) encode() []byte {
	b := make([]byte, 0, 16+len(r.Msg)+len(r.Stack))
	b = append(b, byte(r.Status))
	b = binary.AppendUvarint(b, uint64(r.Code))
	b = appendString(b, r.Msg)
	return appendString(b, r.Stack)
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// decoder reads fields in order; the first short or malformed field sets
// err, and every later read returns zero.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errShort
	}
	d.b = nil
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail()
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) done() error {
	if d.err == nil && len(d.b) != 0 {
		d.err = errors.New("control protocol: trailing bytes in message")
	}
	return d.err
}

func decodeHello(b []byte) (Hello, error) {
	d := decoder{b: b}
	h := Hello{
		Func:      string(d.bytes()),
		Name:      string(d.bytes()),
		ParentPid: int(d.varint()),
		Grace:     time.Duration(d.varint()),
		Detached:  d.byte() != 0,
		Arg:       d.bytes(),
	}
	return h, d.done()
}

func decodeResult(b []byte) (Result, error) {
	d := decoder{b: b}
	r := Result{Status: Status(d.byte())}
	code := d.uvarint()
	r.Msg = string(d.bytes())
	r.Stack = string(d.bytes())
	if code > 1<<32-1 {
		d.fail()
	}
	r.Code = uint32(code)
	return r, d.done()
}
