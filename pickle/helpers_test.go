package pickle

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// equalValues compares decoded values: NaN equals NaN (same bits or not),
// sets and frozensets are multisets, big ints compare by value, and Go
// types must match exactly (int64, not int). Shared slices and maps are
// compared once, so that a value of exponential size when expanded (a
// fuzzed pickle) compares in linear time.
func equalValues(a, b any) bool {
	e := equality{seen: map[[2]identity]bool{}}
	return e.equal(a, b)
}

type equality struct {
	seen map[[2]identity]bool
}

// shared returns the identity of a non-empty slice or map, if v is one.
func sharedID(v any) (identity, bool) {
	r := reflect.ValueOf(v)
	switch r.Kind() {
	case reflect.Slice, reflect.Map:
		if r.Len() > 0 {
			return identity{ptr: r.Pointer(), len: r.Len(), typ: r.Type()}, true
		}
	}
	return identity{}, false
}

func (e *equality) equal(a, b any) bool {
	ia, ok1 := sharedID(a)
	ib, ok2 := sharedID(b)
	if ok1 && ok2 {
		k := [2]identity{ia, ib}
		if e.seen[k] {
			return true // compared before, or being compared
		}
		e.seen[k] = true
	}
	switch x := a.(type) {
	case nil:
		return b == nil
	case float64:
		y, ok := b.(float64)
		return ok && (x == y && math.Signbit(x) == math.Signbit(y) || math.IsNaN(x) && math.IsNaN(y))
	case *big.Int:
		y, ok := b.(*big.Int)
		return ok && x.Cmp(y) == 0
	case []byte:
		y, ok := b.([]byte)
		return ok && bytes.Equal(x, y)
	case []any:
		y, ok := b.([]any)
		return ok && e.seq(x, y)
	case Tuple:
		y, ok := b.(Tuple)
		return ok && e.seq(x, y)
	case Set:
		y, ok := b.(Set)
		return ok && e.bag(x, y)
	case FrozenSet:
		y, ok := b.(FrozenSet)
		return ok && e.bag(x, y)
	case Dict:
		y, ok := b.(Dict)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !e.equal(x[i].Key, y[i].Key) || !e.equal(x[i].Value, y[i].Value) {
				return false
			}
		}
		return true
	case Object:
		y, ok := b.(Object)
		return ok && x.Class() == y.Class() && x.NewObj == y.NewObj && e.seq(x.Args, y.Args) && e.equal(x.State, y.State)
	case map[any]any:
		y, ok := b.(map[any]any)
		if !ok || len(x) != len(y) {
			return false
		}
		var nanX, nanY []any
		for k, v := range x {
			if f, ok := k.(float64); ok && math.IsNaN(f) {
				nanX = append(nanX, v) // not found by lookup; compare as a bag
				continue
			}
			w, ok := y[k]
			if !ok || !e.equal(v, w) {
				return false
			}
		}
		for k, v := range y {
			if f, ok := k.(float64); ok && math.IsNaN(f) {
				nanY = append(nanY, v)
			}
		}
		return e.bag(nanX, nanY)
	}
	return reflect.TypeOf(a) == reflect.TypeOf(b) && a == b
}

func (e *equality) seq(x, y []any) bool {
	if len(x) != len(y) {
		return false
	}
	for i := range x {
		if !e.equal(x[i], y[i]) {
			return false
		}
	}
	return true
}

// bag compares as multisets.
func (e *equality) bag(x, y []any) bool {
	if len(x) != len(y) {
		return false
	}
	used := make([]bool, len(y))
outer:
	for _, a := range x {
		for j, b := range y {
			if !used[j] && (&equality{seen: map[[2]identity]bool{}}).equal(a, b) {
				used[j] = true
				continue outer
			}
		}
		return false
	}
	return true
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func bigInt(s string) *big.Int {
	b, ok := new(big.Int).SetString(s, 0)
	if !ok {
		panic(s)
	}
	return b
}

func pow(base, exp int64) *big.Int {
	return new(big.Int).Exp(big.NewInt(base), big.NewInt(exp), nil)
}

// A python is an interpreter to test against.
type python struct {
	path, version string
}

var (
	pythonsOnce sync.Once
	pythonsList []python
	pythonsNote []string
	pythonsErr  error
)

// pythons finds python3 on PATH (required: the test fails without it) and
// every pyenv-installed Python 3, one per version.
func pythons(t *testing.T) []python {
	t.Helper()
	pythonsOnce.Do(func() {
		path, err := exec.LookPath("python3")
		if err != nil {
			pythonsErr = fmt.Errorf("python3 is not on PATH (%v): the interop tests need a Python 3 to produce and read pickles", err)
			return
		}
		candidates := []string{path}
		if pyenv, err := exec.LookPath("pyenv"); err == nil {
			root, err1 := exec.Command(pyenv, "root").Output()
			versions, err2 := exec.Command(pyenv, "versions", "--bare").Output()
			if err1 != nil || err2 != nil {
				pythonsNote = append(pythonsNote, fmt.Sprintf("pyenv failed: %v %v", err1, err2))
			}
			for _, v := range strings.Fields(string(versions)) {
				p := filepath.Join(strings.TrimSpace(string(root)), "versions", v, "bin", "python3")
				if _, err := os.Stat(p); err != nil {
					pythonsNote = append(pythonsNote, fmt.Sprintf("pyenv %s not tested: no bin/python3", v))
					continue
				}
				candidates = append(candidates, p)
			}
		}
		seen := map[string]bool{}
		for _, p := range candidates {
			out, err := exec.Command(p, "-c", "import sys; print(sys.version.split()[0])").Output()
			if err != nil {
				if p == path {
					pythonsErr = fmt.Errorf("python3 on PATH (%s) does not run: %v", p, err)
					return
				}
				pythonsNote = append(pythonsNote, fmt.Sprintf("%s not tested: %v", p, err))
				continue
			}
			v := strings.TrimSpace(string(out))
			if seen[v] {
				continue
			}
			seen[v] = true
			pythonsList = append(pythonsList, python{p, v})
		}
		slices.SortFunc(pythonsList, func(a, b python) int { return compareVersions(a.version, b.version) })
	})
	if pythonsErr != nil {
		t.Fatal(pythonsErr)
	}
	return pythonsList
}

func compareVersions(a, b string) int {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := range min(len(pa), len(pb)) {
		x, _ := strconv.Atoi(pa[i])
		y, _ := strconv.Atoi(pb[i])
		if x != y {
			return x - y
		}
	}
	return len(pa) - len(pb)
}

// atLeast reports whether version v is at least major.minor.
func atLeast(v string, major, minor int) bool {
	return compareVersions(v, fmt.Sprintf("%d.%d", major, minor)) >= 0
}

// runPython runs testdata/gen.py with args under py, feeding stdin.
func runPython(t *testing.T, py python, stdin []byte, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(py.path, append([]string{filepath.Join("testdata", "gen.py")}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	cmd.Env = append(os.Environ(), "PYTHONHASHSEED=0", "PYTHONIOENCODING=utf-8")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python %s gen.py %v: %v\n%s", py.version, args, err, stderr.Bytes())
	}
	return out
}

// A pyPickle is one pickle produced by Python.
type pyPickle struct {
	Name     string `json:"name"`
	Protocol int    `json:"protocol"`
	Hex      string `json:"hex"`
	data     []byte
}

// parseDump parses the output of gen.py dump: its header and pickles.
func parseDump(t testing.TB, out []byte) (version string, ps []pyPickle) {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		if version == "" {
			var h struct {
				Python string `json:"python"`
			}
			if err := json.Unmarshal(sc.Bytes(), &h); err != nil || h.Python == "" {
				t.Fatalf("gen.py header %q: %v", sc.Text(), err)
			}
			version = h.Python
			continue
		}
		var p pyPickle
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			t.Fatalf("gen.py line %q: %v", sc.Text(), err)
		}
		p.data = mustHex(t, p.Hex)
		ps = append(ps, p)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return version, ps
}

// fixturePickles reads testdata/python.jsonl, written by gen.py small.
func fixturePickles(t testing.TB) []pyPickle {
	t.Helper()
	out, err := os.ReadFile(filepath.Join("testdata", "python.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	_, ps := parseDump(t, out)
	return ps
}

// A capture is one pickle from the recorded Python traffic in
// testdata/captures (copied from the project's interop captures).
type capture struct {
	file string
	data []byte
}

// capturePickles splits the recorded connections into frames (a 4-byte
// big-endian length, then the payload) and returns the payloads that are
// pickles, each once.
func capturePickles(t testing.TB) []capture {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "captures", "*.jsonl"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no captures: %v", err)
	}
	seen := map[string]bool{}
	var cs []capture
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.Lines(string(raw)) {
			var rec [2]string
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			b := mustHex(t, rec[1])
			for len(b) >= 4 {
				n := int(int32(binary.BigEndian.Uint32(b)))
				if n < 0 || n > len(b)-4 {
					break
				}
				p := b[4 : 4+n]
				b = b[4+n:]
				if len(p) > 2 && p[0] == opProto && !seen[string(p)] {
					seen[string(p)] = true
					cs = append(cs, capture{filepath.Base(f), p})
				}
			}
		}
	}
	return cs
}
