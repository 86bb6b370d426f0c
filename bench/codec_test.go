package main

import (
	"bytes"
	"context"
	"errors"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestCodecPlumbing runs the codec workload at tiny N, printing only.
// Every row must have its samples and figures, every hostile input an
// outcome, and the report a verdict. It asserts nothing about timings,
// nor about which codec the verdict favours.
func TestCodecPlumbing(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"-n", "2", "-rounds", "1", "-out", "", "codec"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\nstderr:\n%s", err, stderr.String())
	}
	out := stdout.String()
	var rows []wantRow
	for _, k := range codecKinds {
		for _, c := range []string{"JSON", "gob", "CBOR", "msgpack"} {
			rows = append(rows, wantRow{"| " + c + ", " + k.name + " |", "2", nil, ""})
		}
	}
	for _, v := range []string{"gob stream (", "raw memory (`Queue[T]` `TryPut` + `TryGet`), small struct",
		"raw memory (`Queue[T]` `TryPut` + `TryGet`), `{ID int64; Data [1024]byte}`",
		"raw memory (`Queue[T]` `TryPut` + `TryGet`), `{ID int64; Data [65536]byte}`"} {
		rows = append(rows, wantRow{"| " + v, "2", nil, ""})
	}
	for _, r := range rows { // checkRows wants the row's whole variant
		i := strings.Index(out, r.prefix)
		if i < 0 {
			t.Errorf("no row %q", r.prefix)
			continue
		}
		line, _, _ := strings.Cut(out[i:], "\n")
		if !strings.Contains(line, " | "+r.runs+" | ") || strings.Contains(line, "not run") {
			t.Errorf("row has not %s samples: %s", r.runs, line)
		}
		if cells := strings.Split(line, "|"); len(cells) != 11 || strings.TrimSpace(cells[9]) == "–" {
			t.Errorf("row lacks its allocation and size cells: %s", line)
		}
	}
	for _, c := range []string{"JSON", "gob", "CBOR", "msgpack"} {
		for _, in := range hostileInputs {
			for _, into := range []string{"task struct", "`any`"} {
				prefix := "| " + c + " | " + in.name
				found := false
				for line := range strings.Lines(out) {
					if strings.HasPrefix(line, prefix) && strings.Contains(line, " | "+into+" | ") {
						found = true
						if !strings.Contains(line, "refused: ") && !strings.Contains(line, "**accepted**") &&
							!strings.Contains(line, "**crashed**") && !strings.Contains(line, "not applicable: ") {
							t.Errorf("hostile row without an outcome: %s", line)
						}
					}
				}
				if !found {
					t.Errorf("no hostile row %q into %s", prefix, into)
				}
			}
		}
	}
	for _, want := range []string{"**Hostile input.**", "**Summary**", "**Verdict.**", "The figures favour", "MaxNestedLevels: 32"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s\nstderr:\n%s", out, stderr.String())
	}
}

// TestHostileMessages checks that each hostile message is what it says,
// at benign sizes, so that a refusal in the workload is the decoder's
// limit at work and not a malformed message: nested n levels deep, it
// decodes (into the task struct, with the nesting skipped); n tiny
// elements decode to n zeros; a header declaring one element, with one
// following, decodes to it, and one declaring three is refused.
func TestHostileMessages(t *testing.T) {
	defs, err := codecDefs()
	if err != nil {
		t.Fatal(err)
	}
	const n = 5
	for _, d := range defs {
		for _, in := range hostileInputs {
			for _, into := range hostileTargets {
				t.Run(d.key+"/"+in.key+"/"+into, func(t *testing.T) {
					decode := func(count int) (any, []byte, error) {
						data, err := hostileMessage(d.key, in.key, into, count)
						if err != nil {
							return nil, nil, err
						}
						if into == "task" {
							var task codecTask
							err = d.codec.Unmarshal(data, &task)
							return task, data, err
						}
						var v any
						err = d.codec.Unmarshal(data, &v)
						return v, data, err
					}
					count := n
					if in.key == "huge" {
						count = 1
					}
					v, data, err := decode(count)
					var na *errNotApplicable
					switch {
					case errors.As(err, &na):
						// Formats that cannot carry an input: JSON declares no
						// lengths; gob decodes into any only registered types.
						if d.key != "json" || in.key != "huge" {
							if d.key != "gob" || in.key != "deep" || into != "any" {
								t.Fatalf("not applicable: %s", na.why)
							}
						}
						return
					case err != nil:
						t.Fatalf("% x: %v", data, err)
					}
					if task, ok := v.(codecTask); ok {
						want := codecTask{ID: 1, Name: "x", Args: make([]float64, count)}
						if in.key == "deep" {
							want.Args = nil
						}
						if task.ID != want.ID || task.Name != want.Name || !slices.Equal(task.Args, want.Args) {
							t.Fatalf("% x: decoded %+v, want %+v", data, task, want)
						}
					} else if got := depthOrLen(v, in.key == "deep"); got != count {
						t.Fatalf("% x: decoded %#v: depth or length %d, want %d", data, v, got, count)
					}
					if in.key == "huge" {
						if v, data, err := decode(3); err == nil {
							t.Errorf("% x: a header claiming 3 elements with 1 following was accepted: %#v", data, v)
						}
					}
				})
			}
		}
	}
}

// depthOrLen is how many slices nest in v (deep), or v's length.
func depthOrLen(v any, deep bool) int {
	if !deep {
		if s := reflect.ValueOf(v); s.Kind() == reflect.Slice {
			return s.Len()
		}
		return -1
	}
	depth := 0
	for x := v; ; {
		s := reflect.ValueOf(x)
		if s.Kind() != reflect.Slice {
			return depth
		}
		depth++
		if s.Len() == 0 {
			return depth
		}
		x = s.Index(0).Interface()
	}
}

// TestHostileSized checks that the workload's messages stay within the
// budget and fill most of it.
func TestHostileSized(t *testing.T) {
	for _, c := range []string{"json", "gob", "cbor", "msgpack"} {
		for _, in := range hostileInputs {
			for _, into := range hostileTargets {
				data, n, err := hostileSized(c, in.key, into)
				var na *errNotApplicable
				switch {
				case errors.As(err, &na):
					continue
				case err != nil:
					t.Errorf("%s %s into %s: %v", c, in.key, into, err)
				case in.key == "huge" && n != math.MaxUint32:
					t.Errorf("%s huge into %s: claims %d", c, into, n)
				case in.key != "huge" && (len(data) > hostileBudget || len(data) < hostileBudget-64):
					t.Errorf("%s %s into %s: %d bytes for a budget of %d", c, in.key, into, len(data), hostileBudget)
				}
			}
		}
	}
}

// TestGobUint checks gobUint against gob's own encoding of a length.
func TestGobUint(t *testing.T) {
	for _, x := range []uint64{0, 1, 127, 128, 255, 256, 1 << 20, math.MaxUint32, math.MaxUint64} {
		got := gobUint(x)
		if want := gobUintRef(x); !bytes.Equal(got, want) {
			t.Errorf("gobUint(%d) = % x, want % x", x, got, want)
		}
	}
}

// gobUintRef is gob's encoding as its documentation states it: below 128
// one byte; else the byte count negated, then the bytes, big-endian.
func gobUintRef(x uint64) []byte {
	if x < 128 {
		return []byte{byte(x)}
	}
	var b []byte
	for ; x > 0; x >>= 8 {
		b = append([]byte{byte(x)}, b...)
	}
	return append([]byte{byte(256 - len(b))}, b...)
}
