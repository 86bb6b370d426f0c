package errcode

import (
	"errors"
	"fmt"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	a, b := errors.New("a"), errors.New("b")
	Register(a, b)
	wrapped := fmt.Errorf("context: %w", b)
	if c := Code(wrapped); Error(c) != b {
		t.Fatalf("code %d gives %v, want b", c, Error(c))
	}
	if Code(errors.New("other")) != 0 || Code(nil) != 0 || Error(0) != nil || Error(1<<30) != nil {
		t.Fatal("unregistered errors must have code 0, unknown codes no error")
	}
	if Code(a) == Code(b) {
		t.Fatal("two sentinels share a code")
	}
}
