package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"mproc"
)

// The codec workload's hostile inputs: for each codec, messages built for
// its format by someone who wants the receiver to fall over, decoded into
// the pool task's struct and into `any`, each in a fresh child process
// that reports the decode's time, the bytes it allocated and its peak
// resident memory, or dies.

const (
	// hostileBudget is the most bytes a hostile message has: the message
	// limit a careful user sets (WithMaxMessage(1 << 20)); a queue's
	// default, DefaultMaxMessage, admits 16 times less.
	hostileBudget = 1 << 20
	// hostileTimeout bounds one hostile decode; the child is killed after it.
	hostileTimeout = 30 * time.Second
	// hostileHeadroom is how far the child's address space may grow
	// (RLIMIT_AS) during the decode, so that a decoder that asks for tens
	// of GiB fails here instead of weighing on a shared machine.
	hostileHeadroom = 4 << 30
)

// hostileInput is one kind of hostile message.
type hostileInput struct{ key, name string }

var hostileInputs = []hostileInput{
	{"deep", "deep"},
	{"huge", "huge length"},
	{"many", "many tiny"},
}

var hostileTargets = []string{"task", "any"}

// errNotApplicable says that a format cannot carry an input.
type errNotApplicable struct{ why string }

func (e *errNotApplicable) Error() string { return e.why }

// hostileMessage builds input for codec, to be decoded into into ("task":
// a codecTask; "any"), with parameter n: the nesting depth (deep), the
// declared element count, one element following (huge), or the element
// count (many). Into a codecTask, the deep nesting is in an extra field,
// "Deep", which the decoder must skip, and the other inputs are the Args
// field; into any, the message is the input alone. Every element is the
// integer or float 0 in its shortest form.
func hostileMessage(codec, input, into string, n int) ([]byte, error) {
	switch codec {
	case "json":
		return jsonHostile(input, into, n)
	case "gob":
		return gobHostile(input, into, n)
	case "cbor":
		return cborHostile(input, into, n)
	case "msgpack":
		return msgpackHostile(input, into, n)
	}
	return nil, fmt.Errorf("unknown codec %q", codec)
}

func jsonHostile(input, into string, n int) ([]byte, error) {
	var body []byte
	switch input {
	case "deep":
		body = append(bytes.Repeat([]byte("["), n), bytes.Repeat([]byte("]"), n)...)
	case "huge":
		return nil, &errNotApplicable{"JSON declares no lengths"}
	case "many":
		body = append([]byte("["), bytes.Repeat([]byte("0,"), n)...)
		body[len(body)-1] = ']'
	}
	switch {
	case into == "any":
		return body, nil
	case input == "deep":
		return slices.Concat([]byte(`{"ID":1,"Name":"x","Args":[],"Deep":`), body, []byte("}")), nil
	}
	return slices.Concat([]byte(`{"ID":1,"Name":"x","Args":`), body, []byte("}")), nil
}

// cborHead is a CBOR data item head: major type and argument.
func cborHead(major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return []byte{m | byte(n)}
	case n <= math.MaxUint8:
		return []byte{m | 24, byte(n)}
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16([]byte{m | 25}, uint16(n))
	case n <= math.MaxUint32:
		return binary.BigEndian.AppendUint32([]byte{m | 26}, uint32(n))
	}
	return binary.BigEndian.AppendUint64([]byte{m | 27}, n)
}

func cborText(s string) []byte { return append(cborHead(3, uint64(len(s))), s...) }

func cborHostile(input, into string, n int) ([]byte, error) {
	var body []byte
	switch input {
	case "deep":
		body = append(bytes.Repeat([]byte{0x81}, n), 0x00) // [[[...[0]...]]]
	case "huge":
		body = append(cborHead(4, uint64(n)), 0x00)
	case "many":
		body = append(cborHead(4, uint64(n)), make([]byte, n)...)
	}
	if into == "any" {
		return body, nil
	}
	fields := [][]byte{cborText("ID"), {0x01}, cborText("Name"), cborText("x"), cborText("Args")}
	if input == "deep" {
		fields = append(fields, cborHead(4, 0), cborText("Deep"), body)
	} else {
		fields = append(fields, body)
	}
	return slices.Concat(append([][]byte{cborHead(5, uint64(len(fields)/2))}, fields...)...), nil
}

func msgpackArrayHead(n int) []byte {
	switch {
	case n < 16:
		return []byte{0x90 | byte(n)}
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16([]byte{0xdc}, uint16(n))
	}
	return binary.BigEndian.AppendUint32([]byte{0xdd}, uint32(n))
}

func msgpackStr(s string) []byte { return append([]byte{0xa0 | byte(len(s))}, s...) } // len(s) < 32

func msgpackHostile(input, into string, n int) ([]byte, error) {
	var body []byte
	switch input {
	case "deep":
		body = append(bytes.Repeat([]byte{0x91}, n), 0x00)
	case "huge":
		body = append(msgpackArrayHead(n), 0x00)
	case "many":
		body = append(msgpackArrayHead(n), make([]byte, n)...)
	}
	if into == "any" {
		return body, nil
	}
	fields := [][]byte{msgpackStr("ID"), {0x01}, msgpackStr("Name"), msgpackStr("x"), msgpackStr("Args")}
	if input == "deep" {
		fields = append(fields, msgpackArrayHead(0), msgpackStr("Deep"), body)
	} else {
		fields = append(fields, body)
	}
	return slices.Concat(append([][]byte{{0x80 | byte(len(fields)/2)}}, fields...)...), nil
}

// hostileNest is a recursive type for gob's deep input: a wire struct
// like codecTask with an extra field Deep of it, which a decoder into
// codecTask must skip.
type (
	hostileNest []hostileNest
	hostileWire struct {
		ID   int64
		Name string
		Args []float64
		Deep hostileNest
	}
)

// gobHostile has gob encode a benign message of the input's shape and
// then rewrites the value's last bytes (checking that they are what gob
// wrote), so that the type descriptions stay gob's own.
func gobHostile(input, into string, n int) ([]byte, error) {
	enc := func(v any) ([]byte, error) {
		var buf bytes.Buffer
		err := gob.NewEncoder(&buf).Encode(v)
		return buf.Bytes(), err
	}
	switch {
	case input == "deep" && into == "any":
		return nil, &errNotApplicable{"gob decodes into `any` only types the receiver registered, none of them nested"}
	case input == "deep":
		// The value ends: Deep's field delta 2, its length 1, the inner
		// slice's length 0, the struct's end.
		b, err := enc(hostileWire{ID: 1, Name: "x", Deep: hostileNest{{}}})
		if err != nil {
			return nil, err
		}
		return gobPatch(b, []byte{2, 1, 0, 0}, slices.Concat([]byte{2}, bytes.Repeat([]byte{1}, n), []byte{0, 0}))
	case input == "huge" && into == "task":
		// Args's field delta 1, its length 1, the float 0, the struct's end.
		b, err := enc(codecTask{ID: 1, Name: "x", Args: []float64{0}})
		if err != nil {
			return nil, err
		}
		return gobPatch(b, []byte{1, 1, 0, 0}, slices.Concat([]byte{1}, gobUint(uint64(n)), []byte{0, 0}))
	case input == "huge":
		// An interface value ends: the concrete value's byte count, then
		// the value (a singleton: delta 0, the slice's length 1, the float 0).
		var v any = []float64{0}
		b, err := enc(&v)
		if err != nil {
			return nil, err
		}
		l := gobUint(uint64(n))
		return gobPatch(b, []byte{3, 0, 1, 0}, slices.Concat([]byte{byte(2 + len(l)), 0}, l, []byte{0}))
	case into == "task":
		return enc(codecTask{ID: 1, Name: "x", Args: make([]float64, n)})
	}
	var v any = make([]float64, n)
	return enc(&v)
}

// gobUint is gob's encoding of an unsigned integer.
func gobUint(x uint64) []byte {
	if x < 0x80 {
		return []byte{byte(x)}
	}
	b := binary.BigEndian.AppendUint64(nil, x)
	i := 0
	for b[i] == 0 {
		i++
	}
	return append([]byte{byte(-(8 - i))}, b[i:]...)
}

// gobPatch replaces the suffix old of the last message of a gob stream by
// repl and fixes that message's length.
func gobPatch(stream, old, repl []byte) ([]byte, error) {
	last := -1
	for i := 0; i < len(stream); {
		n, w := int(stream[i]), 1
		if n >= 0x80 {
			w = 1 + int(-int8(stream[i]))
			if i+w > len(stream) || w > 9 {
				return nil, errors.New("gob stream: bad message length")
			}
			var u uint64
			for _, c := range stream[i+1 : i+w] {
				u = u<<8 | uint64(c)
			}
			n = int(u)
		}
		last = i
		i += w + n
		if i > len(stream) {
			return nil, errors.New("gob stream: truncated message")
		}
	}
	if last < 0 || !bytes.HasSuffix(stream, old) {
		return nil, fmt.Errorf("gob stream: last message does not end % x", old)
	}
	w := 1
	if stream[last] >= 0x80 {
		w = 1 + int(-int8(stream[last]))
	}
	body := slices.Concat(stream[last+w:len(stream)-len(old)], repl)
	return slices.Concat(stream[:last], gobUint(uint64(len(body))), body), nil
}

// hostileSized builds the input as large as hostileBudget allows (huge:
// the largest count an array32 header holds), and returns it and its n.
func hostileSized(codec, input, into string) ([]byte, int, error) {
	if input == "huge" {
		b, err := hostileMessage(codec, input, into, math.MaxUint32)
		return b, math.MaxUint32, err
	}
	b1, err := hostileMessage(codec, input, into, 1)
	if err != nil {
		return nil, 0, err
	}
	b2, err := hostileMessage(codec, input, into, 2)
	if err != nil {
		return nil, 0, err
	}
	per := len(b2) - len(b1)
	n := (hostileBudget - len(b1) + per) / per
	for {
		b, err := hostileMessage(codec, input, into, n)
		if err != nil || len(b) <= hostileBudget {
			return b, n, err
		}
		n -= max(1, (len(b)-hostileBudget)/per)
	}
}

// hostileArgs is the hostile child's argument: which codec decodes the
// file's message into what.
type hostileArgs struct {
	Codec, Into, File string
	Headroom          uint64
}

// hostileReport is what the child prints, as JSON on its stdout.
type hostileReport struct {
	NS    int64  // the decode's duration
	Alloc uint64 // bytes it allocated (runtime.MemStats.TotalAlloc)
	Peak  uint64 // peak resident memory above the resting one before it
	Err   string // its error; "" when it accepted the message
}

var hostileChild = mproc.Register("bench.codecHostile", func(_ context.Context, a hostileArgs) error {
	data, err := os.ReadFile(a.File)
	if err != nil {
		return err
	}
	defs, err := codecDefs()
	if err != nil {
		return err
	}
	i := slices.IndexFunc(defs, func(d codecDef) bool { return d.key == a.Codec })
	if i < 0 {
		return fmt.Errorf("unknown codec %q", a.Codec)
	}
	var target any = new(any)
	if a.Into == "task" {
		target = new(codecTask)
	}
	if err := limitAddressSpace(a.Headroom); err != nil {
		return err
	}
	runtime.GC()
	debug.FreeOSMemory()
	resetPeakRSS()
	rest, err := statusBytes("VmRSS")
	if err != nil {
		return err
	}
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	t0 := time.Now()
	derr := defs[i].codec.Unmarshal(data, target)
	d := time.Since(t0)
	runtime.ReadMemStats(&m1)
	peak, err := statusBytes("VmHWM")
	if err != nil {
		return err
	}
	runtime.KeepAlive(target)
	r := hostileReport{NS: d.Nanoseconds(), Alloc: m1.TotalAlloc - m0.TotalAlloc, Peak: peak - min(peak, rest)}
	if derr != nil {
		r.Err = derr.Error()
	}
	return json.NewEncoder(os.Stdout).Encode(r)
})

// statusBytes reads a "kB" field of /proc/self/status, in bytes.
func statusBytes(field string) (uint64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(line, ":"); ok && k == field {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("/proc/self/status has no %s", field)
}

// limitAddressSpace lets this process's address space grow by at most
// headroom bytes from now on.
func limitAddressSpace(headroom uint64) error {
	size, err := statusBytes("VmSize")
	if err != nil {
		return err
	}
	lim := syscall.Rlimit{Cur: size + headroom, Max: size + headroom}
	return syscall.Setrlimit(syscall.RLIMIT_AS, &lim)
}

// resetPeakRSS resets VmHWM to the current RSS (Linux 4.0 and later; on
// older kernels the peak keeps counting from the process's start, which
// overstates a decode's peak by what start-up used).
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// hostileOutcome is what one hostile message did.
type hostileOutcome struct {
	codec   string
	input   hostileInput
	into    string
	n, size int
	missing string // the input does not apply to the codec
	ns      time.Duration
	alloc   uint64
	peak    uint64
	err     string // the decoder's error: refused
	crash   string // the child died (or was killed), and how
}

// memory is the most the message cost: allocated or resident.
func (h hostileOutcome) memory() float64 { return float64(max(h.alloc, h.peak)) }

// runHostile decodes every hostile input of every codec, one child each.
func runHostile(ctx context.Context, defs []codecDef) ([]hostileOutcome, error) {
	dir, err := os.MkdirTemp("", "mproc-bench-codec-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	var out []hostileOutcome
	for _, d := range defs {
		for _, in := range hostileInputs {
			for _, into := range hostileTargets {
				h := hostileOutcome{codec: d.key, input: in, into: into}
				data, n, err := hostileSized(d.key, in.key, into)
				var na *errNotApplicable
				switch {
				case errors.As(err, &na):
					h.missing = na.why
					out = append(out, h)
					continue
				case err != nil:
					return nil, fmt.Errorf("%s %s into %s: %w", d.key, in.key, into, err)
				}
				h.n, h.size = n, len(data)
				if err := hostileRun(ctx, &h, data, filepath.Join(dir, d.key+"-"+in.key+"-"+into)); err != nil {
					return nil, fmt.Errorf("%s %s into %s: %w", d.key, in.key, into, err)
				}
				out = append(out, h)
			}
		}
	}
	return out, nil
}

var oomSize = regexp.MustCompile(`cannot allocate (\d+)-byte block`)

// hostileRun decodes data in a hostile child and records the outcome.
func hostileRun(ctx context.Context, h *hostileOutcome, data []byte, file string) error {
	if err := os.WriteFile(file, data, 0o600); err != nil {
		return err
	}
	defer os.Remove(file)
	cctx, cancel := context.WithTimeout(ctx, hostileTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	p, err := hostileChild.Start(cctx, hostileArgs{Codec: h.codec, Into: h.into, File: file, Headroom: hostileHeadroom},
		mproc.ProcOptions{Stdout: &stdout, Stderr: &stderr, Env: []string{noExitSleep()}})
	if err != nil {
		return err
	}
	werr := p.Wait(context.Background())
	var exit *mproc.ExitError
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case cctx.Err() != nil:
		h.crash = fmt.Sprintf("not done after %s, killed", hostileTimeout)
		return nil
	case errors.As(werr, &exit):
		h.crash = crashReason(exit, stderr.String())
		return nil
	case werr != nil:
		return fmt.Errorf("%w\nstderr:\n%s", werr, stderr.String())
	}
	var r hostileReport
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &r); err != nil {
		return fmt.Errorf("child's report %q: %w", stdout.String(), err)
	}
	h.ns, h.alloc, h.peak, h.err = time.Duration(r.NS), r.Alloc, r.Peak, r.Err
	return nil
}

// noExitSleep is GORACE with atexit_sleep_ms=0 added: a race-enabled
// binary (the tests' children, under go test -race) otherwise sleeps a
// second at exit. Other builds ignore it.
func noExitSleep() string {
	return "GORACE=" + strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0")
}

// crashReason says why a hostile child died, from the Go runtime's last
// words on its stderr.
func crashReason(exit *mproc.ExitError, stderr string) string {
	if m := oomSize.FindStringSubmatch(stderr); m != nil {
		n, _ := strconv.ParseFloat(m[1], 64)
		return fmt.Sprintf("out of memory: asked for %s at once", sizeString(n))
	}
	if strings.Contains(stderr, "stack exceeds") {
		return "stack overflow: past Go's 1 GB goroutine stack limit"
	}
	for line := range strings.Lines(stderr) {
		if strings.HasPrefix(line, "fatal error:") || strings.HasPrefix(line, "panic:") {
			return strings.TrimSpace(line)
		}
	}
	return exit.Error()
}

// cell makes text fit one markdown table cell of at most max runes.
func cell(s string, maxRunes int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > maxRunes {
		s = string(r[:maxRunes-1]) + "…"
	}
	return strings.ReplaceAll(s, "|", `\|`)
}

func hostileTable(defs []codecDef, hs []hostileOutcome) string {
	var b strings.Builder
	fmt.Fprintf(&b, "**Hostile input.** Messages of at most %s (the limit a careful user gives a queue with "+
		"`WithMaxMessage`; the default, %s, admits less), each decoded once, in a fresh child process "+
		"whose address space may grow by %s (`RLIMIT_AS`, so that a runaway allocation fails there "+
		"instead of on a shared machine), killed after %s. Into the task struct, the deep nesting is "+
		"in an extra field `Deep` that the decoder must skip, and the other inputs are its `Args`; "+
		"into `any`, the input alone. Deep: nested one-element arrays, as deep as fit. Huge length: an "+
		"array header claiming 2³²−1 elements (the msgpack array32 maximum; 32 GiB of `float64`), "+
		"then one. Many tiny: as many 1-byte zeros as fit. Allocated counts every byte the decode "+
		"allocated; Peak RSS is the process's peak resident memory above its resting one (the "+
		"goroutine stack included). Limits each codec ran with: ",
		sizeString(hostileBudget), sizeString(mproc.DefaultMaxMessage), sizeString(hostileHeadroom), hostileTimeout)
	var lims []string
	for _, d := range defs {
		lims = append(lims, d.name+": "+d.limits)
	}
	b.WriteString(strings.Join(lims, "; ") + ".\n\n")
	b.WriteString("| Codec | Input | Into | Outcome | Time | Allocated | Peak RSS |\n|---|---|---|---|---:|---:|---:|\n")
	for _, h := range hs {
		name := defs[slices.IndexFunc(defs, func(d codecDef) bool { return d.key == h.codec })].name
		into := "task struct"
		if h.into == "any" {
			into = "`any`"
		}
		input := h.input.name
		switch {
		case h.missing != "":
		case h.input.key == "deep":
			input = fmt.Sprintf("deep: %d levels (%s)", h.n, sizeString(float64(h.size)))
		case h.input.key == "huge":
			input = fmt.Sprintf("huge length: claims %d (%s)", h.n, sizeString(float64(h.size)))
		default:
			input = fmt.Sprintf("many tiny: %d elements (%s)", h.n, sizeString(float64(h.size)))
		}
		outcome, t, alloc, peak := "", "–", "–", "–"
		switch {
		case h.missing != "":
			outcome = "not applicable: " + h.missing
		case h.crash != "":
			outcome = "**crashed**: " + cell(h.crash, 90)
		case h.err != "":
			outcome = "refused: `" + cell(h.err, 90) + "`"
		default:
			outcome = "**accepted**"
		}
		if h.missing == "" && h.crash == "" {
			t, alloc, peak = humanDuration(h.ns), sizeString(float64(h.alloc)), sizeString(float64(h.peak))
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", name, input, into, outcome, t, alloc, peak)
	}
	return b.String()
}
