package main

import (
	"bytes"
	"context"
	"encoding/gob"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"mproc"
)

// The codec workload (issue #12): what each codec a user would consider
// costs on the values that cross most often (a pool task's argument and
// result, a small struct, a small map, a struct carrying 1 KiB or 64 KiB
// of bytes), measured in one process: encode + decode time, allocations
// and encoded size, against the memory copy mproc's queue does without a
// codec for pointer-free types. Then what each codec does with hostile
// input, each decode in a fresh child process (codec_hostile.go). The
// report ends with the codec the figures favour for DefaultCodec.

func init() {
	addWorkload(workload{name: "codec", about: "Codecs (JSON, gob, CBOR, msgpack, raw memory): round trip, allocations, size; hostile input", run: codecWorkload})
}

const codecWarmup = 1 // uncounted batches per variant and round

// The values. codecTask and codecResult are a pool task's argument and
// result; codecPoint is a small pointer-free struct; codecBlob carries
// bytes, and codecBlob1K and codecBlob64K carry the same bytes in a
// fixed-size array, which makes them pointer-free: that is how a user gets
// a payload onto mproc's raw memory path.
type (
	codecTask struct {
		ID   int64
		Name string
		Args []float64
	}
	codecResult struct {
		ID    int64
		Value float64
		OK    bool
		Err   string
	}
	codecPoint struct {
		X, Y, Z float64
		Seq     int64
		Flags   uint32
	}
	codecBlob struct {
		ID   int64
		Data []byte
	}
	codecBlob1K struct {
		ID   int64
		Data [1 << 10]byte
	}
	codecBlob64K struct {
		ID   int64
		Data [64 << 10]byte
	}
)

// msgpackCodec is an mproc.Codec over github.com/vmihailenco/msgpack/v5,
// with its defaults: it has no setting that limits nesting or lengths
// (its own cap on preallocation is always on).
type msgpackCodec struct{}

func (msgpackCodec) Marshal(v any) ([]byte, error)      { return msgpack.Marshal(v) }
func (msgpackCodec) Unmarshal(data []byte, v any) error { return msgpack.Unmarshal(data, v) }

// codecDef is one codec under test.
type codecDef struct {
	key, name string
	codec     mproc.Codec
	limits    string // the decode limits it runs with
}

func codecDefs() ([]codecDef, error) {
	return []codecDef{
		{"json", "JSON", mproc.JSONCodec{}, "none to set; built in: nesting depth 10000"},
		{"gob", "gob", mproc.GobCodec{}, "none to set; built in: lengths checked against the input, 1 GiB message cap, 10000 levels of nested types"},
		{"cbor", "CBOR", mproc.CBORCodec{}, fmt.Sprintf("mproc's `CBORCodec`: `DecOptions{MaxNestedLevels: %d, MaxArrayElements: %d, MaxMapPairs: %d}`", mproc.CBORMaxNesting, mproc.CBORMaxElements, mproc.CBORMaxElements)},
		{"msgpack", "msgpack", msgpackCodec{}, "none to set (no depth or length option); built in: preallocation capped at 1 M elements for some types"},
	}, nil
}

// codecVariant is one row of the speed table: one way of carrying one
// value.
type codecVariant struct {
	key, variant, group string
	op                  func() error // one round trip
	size                int          // bytes on the wire (in the slot)
	allocs, bytes       float64      // per round trip
	missing             string
}

// codecKind is one value the codecs carry: its rows share a group, whose
// reference row is JSON's, and a batch size (round trips per sample).
type codecKind struct {
	key, name string
	batch     int
}

var codecKinds = []codecKind{
	{"task", "task argument `{ID int64; Name string; Args []float64}` (8 args)", 100},
	{"result", "task result `{ID int64; Value float64; OK bool; Err string}`", 100},
	{"point", "small struct `{X, Y, Z float64; Seq int64; Flags uint32}`", 100},
	{"map", "`map[string]int`, 10 entries", 50},
	{"blob1k", "`{ID int64; Data []byte}`, 1 KiB of data", 50},
	{"blob64k", "`{ID int64; Data []byte}`, 64 KiB of data", 4},
}

// codecRoundTrip is what mproc's queue does with a value of a type that
// goes through a codec, less the queue: Marshal of a pointer to a copy,
// then Unmarshal into a new value. It checks one round trip first.
func codecRoundTrip[T any](c mproc.Codec, v T) (op func() error, size int, err error) {
	b, err := c.Marshal(&v)
	if err != nil {
		return nil, 0, err
	}
	var back T
	if err := c.Unmarshal(b, &back); err != nil {
		return nil, 0, err
	}
	if !reflect.DeepEqual(back, v) {
		return nil, 0, fmt.Errorf("round trip changed the value: %+v", back)
	}
	return func() error {
		w := v
		b, err := c.Marshal(&w)
		if err != nil {
			return err
		}
		var out T
		return c.Unmarshal(b, &out)
	}, len(b), nil
}

// gobStream is gob as it is meant to be used, one Encoder and one Decoder
// for a whole stream: the type goes once, in the first message, so every
// later message depends on it and cannot be decoded alone. A queue message
// must decode alone (any consumer may get it, a late one too), so mproc's
// GobCodec cannot do this; the row shows what it forgoes.
func gobStream[T any](v T) (op func() error, size int, err error) {
	var buf bytes.Buffer
	enc, dec := gob.NewEncoder(&buf), gob.NewDecoder(&buf)
	op = func() error {
		w := v
		if err := enc.Encode(&w); err != nil {
			return err
		}
		var out T
		return dec.Decode(&out)
	}
	if err := op(); err != nil { // the type goes out here
		return nil, 0, err
	}
	w := v
	if err := enc.Encode(&w); err != nil {
		return nil, 0, err
	}
	size = buf.Len()
	var back T
	if err := dec.Decode(&back); err != nil {
		return nil, 0, err
	}
	if !reflect.DeepEqual(back, v) {
		return nil, 0, fmt.Errorf("round trip changed the value: %+v", back)
	}
	return op, size, nil
}

// rawQueue is mproc's path without a codec: a pointer-free value is
// copied as memory into a queue slot by TryPut and out of it by TryGet, on
// a queue of one slot in this process. It measures that copy plus the
// queue's own bookkeeping, which the codec rows do not include: a value
// that goes through a codec pays the queue too, on its encoded bytes.
func rawQueue[T comparable](v T) (op func() error, size int, closeQ func(), err error) {
	q, err := mproc.NewQueue[T](1)
	if err != nil {
		return nil, 0, nil, err
	}
	op = func() error {
		if err := q.TryPut(v); err != nil {
			return err
		}
		_, err := q.TryGet()
		return err
	}
	closeQ = func() { q.Close() }
	if err := q.TryPut(v); err != nil {
		closeQ()
		return nil, 0, nil, err
	}
	if back, err := q.TryGet(); err != nil || back != v {
		closeQ()
		return nil, 0, nil, fmt.Errorf("queue round trip: %v (value kept: %t)", err, back == v)
	}
	return op, q.MaxMessage(), closeQ, nil
}

// codecVariants builds every row of the speed table, in the table's
// order, and returns what closes their queues. A variant that cannot be
// set up (or does not give the value back) is a row that says why.
func codecVariants(defs []codecDef) ([]codecVariant, func()) {
	rng := rand.New(rand.NewPCG(12, 12))
	blob := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	task := codecTask{ID: 4242, Name: "thumbnails/img-0042.jpg", Args: []float64{0.5, 1.25, 2, 3.75, 640, 480, 0.9, 1e-3}}
	result := codecResult{ID: 4242, Value: 3.14159, OK: true}
	point := codecPoint{X: 1.5, Y: -2.25, Z: 3, Seq: 77, Flags: 5}
	m := map[string]int{}
	for i, k := range strings.Fields("alpha bravo charlie delta echo foxtrot golf hotel india juliet") {
		m[k] = i * 1000
	}
	b1k, b64k := codecBlob{ID: 7, Data: blob(1 << 10)}, codecBlob{ID: 8, Data: blob(64 << 10)}
	r1k, r64k := codecBlob1K{ID: 7}, &codecBlob64K{ID: 8}
	copy(r1k.Data[:], b1k.Data)
	copy(r64k.Data[:], b64k.Data)

	var vs []codecVariant
	var closers []func()
	closeAll := func() {
		for _, c := range closers {
			c()
		}
	}
	add := func(kind, key, variant string, op func() error, size int, err error) {
		v := codecVariant{key: key + " " + kind, variant: variant, group: "json " + kind, op: op, size: size}
		if err != nil {
			v.missing = err.Error()
		}
		vs = append(vs, v)
	}
	for _, k := range codecKinds {
		for _, d := range defs {
			var op func() error
			var size int
			var err error
			switch k.key {
			case "task":
				op, size, err = codecRoundTrip(d.codec, task)
			case "result":
				op, size, err = codecRoundTrip(d.codec, result)
			case "point":
				op, size, err = codecRoundTrip(d.codec, point)
			case "map":
				op, size, err = codecRoundTrip(d.codec, m)
			case "blob1k":
				op, size, err = codecRoundTrip(d.codec, b1k)
			case "blob64k":
				op, size, err = codecRoundTrip(d.codec, b64k)
			}
			add(k.key, d.key, d.name+", "+k.name, op, size, err)
		}
		var op func() error
		var size int
		var closeQ func()
		var err error
		what := k.name
		switch k.key {
		case "task":
			op, size, err = gobStream(task)
			add(k.key, "gobstream", "gob stream (one Encoder and Decoder for all messages: not for a queue), "+k.name, op, size, err)
			continue
		case "point":
			op, size, closeQ, err = rawQueue(point)
		case "blob1k":
			op, size, closeQ, err = rawQueue(r1k)
			what = fmt.Sprintf("`{ID int64; Data [%d]byte}`, 1 KiB of data", len(r1k.Data))
		case "blob64k":
			op, size, closeQ, err = rawQueue(*r64k)
			what = fmt.Sprintf("`{ID int64; Data [%d]byte}`, 64 KiB of data", len(r64k.Data))
		default:
			continue
		}
		if closeQ != nil {
			closers = append(closers, closeQ)
		}
		add(k.key, "raw", "raw memory (`Queue[T]` `TryPut` + `TryGet`), "+what, op, size, err)
	}
	return vs, closeAll
}

// measureAllocs returns the allocations and bytes allocated per call of
// op, over n calls after one uncounted call.
func measureAllocs(op func() error, n int) (allocs, bytes float64, err error) {
	if err := op(); err != nil {
		return 0, 0, err
	}
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	for range n {
		if err := op(); err != nil {
			return 0, 0, err
		}
	}
	runtime.ReadMemStats(&m1)
	return float64(m1.Mallocs-m0.Mallocs) / float64(n), float64(m1.TotalAlloc-m0.TotalAlloc) / float64(n), nil
}

// timeBatches runs warm uncounted batches of batch calls of op, then n
// counted ones, and returns the time per call of each counted batch.
func timeBatches(op func() error, batch, warm, n int) ([]time.Duration, error) {
	var out []time.Duration
	for i := range warm + n {
		t0 := time.Now()
		for range batch {
			if err := op(); err != nil {
				return nil, err
			}
		}
		if d := time.Since(t0); i >= warm {
			out = append(out, perOp(d, batch))
		}
	}
	return out, nil
}

func codecWorkload(ctx context.Context, c *config) (*report, error) {
	defs, err := codecDefs()
	if err != nil {
		return nil, err
	}
	vs, closeAll := codecVariants(defs)
	defer closeAll()
	batchOf := func(v codecVariant) int {
		kind := v.key[strings.LastIndexByte(v.key, ' ')+1:]
		return codecKinds[slices.IndexFunc(codecKinds, func(k codecKind) bool { return k.key == kind })].batch
	}
	for i := range vs {
		if vs[i].missing != "" {
			continue
		}
		if vs[i].allocs, vs[i].bytes, err = measureAllocs(vs[i].op, max(10, 2*batchOf(vs[i]))); err != nil {
			return nil, fmt.Errorf("%s: %w", vs[i].key, err)
		}
	}

	samples := map[string][]time.Duration{}
	missing := map[string]string{}
	counts := split(c.n, c.rounds)
	for r, n := range counts {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var steps []step
		for _, v := range vs {
			if v.missing != "" {
				missing[v.key] = v.missing
				continue
			}
			steps = append(steps, step{v.key, func() ([]time.Duration, error) {
				return timeBatches(v.op, batchOf(v), codecWarmup, n)
			}})
		}
		if err := runRound(r, steps, samples, missing); err != nil {
			return nil, err
		}
	}

	fmt.Fprintf(c.log, "bench: codec: hostile inputs\n")
	hostile, err := runHostile(ctx, defs)
	if err != nil {
		return nil, err
	}

	rep := &report{
		title:   "Codecs: encode + decode, allocations, size, hostile input",
		refName: "JSON",
		format:  humanDuration,
		cols:    []string{"Allocs/op", "Bytes alloc./op", "Encoded"},
		about: "What a value costs to cross as a queue message or a pool task's argument or result, " +
			"one process, no queue: `Marshal` of a pointer to a copy of the value, then `Unmarshal` " +
			"into a new value, as mproc's queue does with a codec (which codec should be `DefaultCodec`?). JSON and gob are mproc's `JSONCodec` and `GobCodec` " +
			"(`encoding/json`; `encoding/gob` with a new Encoder and Decoder per message, so that each " +
			"message decodes alone). CBOR is mproc's `CBORCodec` (`github.com/fxamacker/cbor/v2` with " +
			"RFC 3339 times and the decode limits below); msgpack is `github.com/vmihailenco/msgpack/v5` with its " +
			"defaults; both wrapped as an `mproc.Codec`. **Raw memory** is mproc's path for pointer-free " +
			"types, which never meets a codec: `TryPut` + `TryGet` on an in-process `Queue[T]` of one " +
			"slot, which copies the value's bytes into the slot and out again; it includes the queue's " +
			"own bookkeeping, which the codec rows leave out (a codec's message pays it too, on the " +
			"encoded bytes). The 1 KiB and 64 KiB raw rows carry the bytes as a `[N]byte` array, which " +
			"is what makes the struct pointer-free. Allocations and bytes are per round trip " +
			"(`runtime.MemStats`, over a run of their own); Encoded is the message's size.",
	}
	for _, v := range vs {
		ref := slices.IndexFunc(vs, func(o codecVariant) bool { return o.key == v.group })
		rw := row{variant: v.variant, samples: samples[v.key], ref: ref, missing: missing[v.key],
			cols: []string{fmt.Sprintf("%.1f", v.allocs), sizeString(v.bytes), sizeString(float64(v.size))}}
		if rw.missing == "" && len(rw.samples) == 0 {
			rw.missing = "no samples"
		}
		rep.rows = append(rep.rows, rw)
	}
	sum := codecSummaries(defs, vs, samples, hostile)
	rep.tables = []string{hostileTable(defs, hostile), summaryTable(sum)}
	rep.notes = []string{
		"Each group's rows are compared to its JSON row.",
		"Where the codec matters: mproc's queue copies `[]byte`, `string` and pointer-free fixed-size " +
			"types without one (the small struct and the `[N]byte` rows), so the codec carries " +
			"everything else: strings and slices inside structs, maps, task arguments and results " +
			"(a pool encodes every argument and result with its task's codec).",
		fmt.Sprintf("JSON's 64 KiB row is %s on the wire (base64): more than a queue's default "+
			"`DefaultMaxMessage` (%s), so such a queue needs `WithMaxMessage`.", sizeString(float64(vs[slices.IndexFunc(vs, func(v codecVariant) bool { return v.key == "json blob64k" })].size)), sizeString(mproc.DefaultMaxMessage)),
		"gob, as `GobCodec` uses it, makes a new Encoder and Decoder per message, so every message " +
			"carries its type's description and every decode compiles it again: hence its time, " +
			"allocations and size on small values. The gob stream row shows what a long-lived " +
			"Encoder saves; a queue cannot use it, because every message must decode alone (any " +
			"consumer may get it, one that started late too).",
		"The deep rows' Peak RSS is mostly goroutine stack, which doubles as it grows: Go stops a " +
			"goroutine at 1 GB of stack with a fatal error that no `recover` catches, so a decoder that " +
			"recurses once per level and needs hundreds of MiB here dies on the same input at twice the " +
			"depth (a 2 MiB message).",
		fmt.Sprintf("CBOR refuses the many-tiny inputs by its element limit (%d): a message of up to that "+
			"many elements it would accept, at the cost per element the other codecs show (8–16 bytes "+
			"of memory per byte of input). JSON and gob accept them within the message limit, so "+
			"`WithMaxMessage` is their only bound.", mproc.CBORMaxElements),
		"msgpack runs with its default encoder, CBOR with mproc's: floats and integers keep their full " +
			"width (msgpack writes an `int64` in 9 bytes), which the libraries' compact options would shrink.",
		fmt.Sprintf("Samples are batches of round trips (per value: %s), %d per variant, split into "+
			"%d round(s); in each round every variant runs its share after %d uncounted batch, in an "+
			"order that rotates from round to round.", codecBatchList(), c.n, len(counts), codecWarmup),
	}
	rep.verdict = codecVerdict(sum)
	return rep, nil
}

func codecBatchList() string {
	var s []string
	for _, k := range codecKinds {
		s = append(s, fmt.Sprintf("%s %d", k.key, k.batch))
	}
	return strings.Join(s, ", ")
}

// sizeString prints a byte count in B, KiB or MiB.
func sizeString(n float64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", n/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", n/(1<<20))
	case n >= 10<<10:
		return fmt.Sprintf("%.0f KiB", n/(1<<10))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", n/(1<<10))
	}
	return fmt.Sprintf("%.0f B", n)
}

// codecSummary is one codec's figures over every value, relative to
// JSON's (geometric means of the ratios), and its hostile-input record.
type codecSummary struct {
	def                     codecDef
	time, allocs, size      float64 // geometric means of codec/JSON over the values
	values                  int     // values with figures
	refused, accepted, died int
	worst                   hostileOutcome // the accepted or refused input that cost most memory
	crash                   string         // what the first crash was
}

// hostileAmplification is the most memory (allocated or resident) one
// hostile message may cost, as a multiple of its size, for the codec to
// count as safe here.
const hostileAmplification = 64

func (s codecSummary) safe() bool {
	return s.died == 0 && s.worst.memory() <= hostileAmplification*float64(hostileBudget)
}

func codecSummaries(defs []codecDef, vs []codecVariant, samples map[string][]time.Duration, hostile []hostileOutcome) []codecSummary {
	var out []codecSummary
	for _, d := range defs {
		s := codecSummary{def: d}
		var lt, la, ls float64
		for _, k := range codecKinds {
			i := slices.IndexFunc(vs, func(v codecVariant) bool { return v.key == d.key+" "+k.key })
			j := slices.IndexFunc(vs, func(v codecVariant) bool { return v.key == "json "+k.key })
			a, b := summarize(samples[vs[i].key]), summarize(samples[vs[j].key])
			if a.n == 0 || b.n == 0 || vs[j].allocs == 0 {
				continue
			}
			lt += math.Log(float64(a.median) / float64(b.median))
			la += math.Log(max(vs[i].allocs, 0.5) / vs[j].allocs)
			ls += math.Log(float64(vs[i].size) / float64(vs[j].size))
			s.values++
		}
		if s.values > 0 {
			n := float64(s.values)
			s.time, s.allocs, s.size = math.Exp(lt/n), math.Exp(la/n), math.Exp(ls/n)
		}
		for _, h := range hostile {
			switch {
			case h.codec != d.key || h.missing != "":
			case h.crash != "":
				s.died++
				if s.crash == "" {
					s.crash = h.input.name + " into " + h.into + ": " + h.crash
				}
			default:
				if h.err != "" {
					s.refused++
				} else {
					s.accepted++
				}
				if h.memory() > s.worst.memory() {
					s.worst = h
				}
			}
		}
		out = append(out, s)
	}
	return out
}

func summaryTable(sum []codecSummary) string {
	var b strings.Builder
	b.WriteString("**Summary** over the six values (geometric means of each codec's figure divided by JSON's; " +
		"below 1 is better) and the hostile inputs:\n\n")
	b.WriteString("| Codec | Time vs JSON | Allocs vs JSON | Size vs JSON | Hostile: refused / accepted / crashed | Most memory one hostile message cost |\n")
	b.WriteString("|---|---:|---:|---:|---|---|\n")
	for _, s := range sum {
		worst := "–"
		if s.worst.codec != "" {
			worst = fmt.Sprintf("%s (%s into %s)", sizeString(s.worst.memory()), s.worst.input.name, s.worst.into)
		}
		fmt.Fprintf(&b, "| %s | %.2f | %.2f | %.2f | %d / %d / %d | %s |\n", s.def.name, s.time, s.allocs, s.size,
			s.refused, s.accepted, s.died, worst)
	}
	return b.String()
}

// codecVerdict weighs the figures: a codec that a hostile message of at
// most hostileBudget bytes can crash, or make cost more than
// hostileAmplification times its size in memory, is out; among the rest
// the lowest time wins, allocations breaking near ties. It says whether
// the winner is mproc.DefaultCodec.
func codecVerdict(sum []codecSummary) string {
	var safe []codecSummary
	var out []string
	for _, s := range sum {
		switch {
		case s.values == 0:
			out = append(out, s.def.name+" (no figures)")
		case s.died > 0:
			out = append(out, fmt.Sprintf("%s (a hostile message crashed the process: %s)", s.def.name, s.crash))
		case !s.safe():
			out = append(out, fmt.Sprintf("%s (one hostile message of at most %s cost %s: %s into %s)", s.def.name,
				sizeString(hostileBudget), sizeString(s.worst.memory()), s.worst.input.name, s.worst.into))
		default:
			safe = append(safe, s)
		}
	}
	better := func(a, b codecSummary) int {
		if math.Abs(a.time-b.time) < 0.05*min(a.time, b.time) {
			return cmpFloat(a.allocs, b.allocs)
		}
		return cmpFloat(a.time, b.time)
	}
	slices.SortStableFunc(safe, better)
	var b strings.Builder
	b.WriteString("**Verdict.** Rule: a codec that one hostile message of at most " + sizeString(hostileBudget) +
		fmt.Sprintf(" crashes, or makes cost more than %d× its size in memory, is out; among the rest the lowest "+
			"time vs JSON wins, allocations deciding when times are within 5%%. ", hostileAmplification))
	if len(out) > 0 {
		b.WriteString("Out: " + strings.Join(out, "; ") + ". ")
	}
	if len(safe) == 0 {
		b.WriteString("No codec passes; the figures favour none.")
		return b.String()
	}
	fmt.Fprintf(&b, "The figures favour **%s** (time %.2f×, allocations %.2f×, size %.2f× JSON's; hostile: %d refused, %d accepted, none crashed)",
		safe[0].def.name, safe[0].time, safe[0].allocs, safe[0].size, safe[0].refused, safe[0].accepted)
	if reflect.TypeOf(safe[0].def.codec) == reflect.TypeOf(mproc.DefaultCodec) {
		b.WriteString(": it is `mproc.DefaultCodec`.")
	} else {
		fmt.Fprintf(&b, "; `mproc.DefaultCodec` is `%T`: the figures say change it.", mproc.DefaultCodec)
	}
	return b.String()
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
