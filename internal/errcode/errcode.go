// Package errcode numbers the sentinel errors whose identity survives a
// trip between processes: a child's or a worker's error travels as a code
// and its text, and the receiver turns the code back into the sentinel so
// that errors.Is holds on its side.
//
// Codes are positions in one table that packages fill at initialisation,
// the root package first (every package that registers imports it), then
// the others in Go's deterministic initialisation order. Parent and child
// are the same binary, so they number alike. A binary never talks codes
// to a different binary.
package errcode

import "errors"

// table holds the registered sentinels; code 0 is no sentinel.
var table = []error{nil}

// Register appends errs to the table. Call it only from package
// initialisation (it is not safe for concurrent use).
func Register(errs ...error) { table = append(table, errs...) }

// Code returns the code of the first registered sentinel err matches,
// 0 for none.
func Code(err error) uint32 {
	for i, s := range table[1:] {
		if errors.Is(err, s) {
			return uint32(i + 1)
		}
	}
	return 0
}

// Error returns the sentinel of code, nil for 0 or an unknown code.
func Error(code uint32) error {
	if int(code) < len(table) {
		return table[code]
	}
	return nil
}
