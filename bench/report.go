package main

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// report is one workload's result: its rows, the first of which (mproc) is
// the reference the others are compared to.
type report struct {
	title   string // section heading
	refName string // short name of the first row for the ratio column, "mproc"
	about   string // what is measured, a paragraph of markdown
	stamp   string // when, how and where; set by run
	rows    []row
	target  time.Duration // the reference's median must not exceed it; 0: none
	source  string        // where the target comes from, e.g. "issue #3"
	notes   []string      // shown under the table
	// cols are the headers of extra columns after the ratio column, each
	// row's cols their cells (a row that did not run shows "–").
	cols []string
	// tables are further markdown blocks, shown after the table and its
	// targets, before the notes; verdict is a closing paragraph, after them.
	tables  []string
	verdict string
	// format prints a duration in the table and the target line; nil: ms.
	// Reports of per-operation costs use humanDuration.
	format func(time.Duration) string
}

// row is one variant of the workload.
type row struct {
	variant string
	samples []time.Duration
	missing string // why there are no samples
	judged  bool   // compared to the report's target (row 0 when no row is)
	// ref is the index of the row this one's median is compared to, 0 (the
	// first row) by default; a row that is its own reference says so.
	ref int
	// format prints this row's durations instead of the report's format,
	// e.g. as a throughput (perSecond).
	format func(time.Duration) string
	cols   []string // cells of the report's extra columns
}

// summary is what the table shows of a row.
type summary struct {
	n                 int
	median, p90, mean time.Duration
}

func summarize(samples []time.Duration) summary {
	s := slices.Clone(samples)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return summary{}
	}
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	// p90 by nearest rank: the smallest sample with at least 90% at or below.
	p90 := s[int(math.Ceil(0.9*float64(n)))-1]
	return summary{n: n, median: med, p90: p90, mean: sum / time.Duration(n)}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

// humanDuration prints d in ns, µs or ms, whichever keeps it between 1 and
// 1000 (ms from 1 ms up).
func humanDuration(d time.Duration) string {
	switch {
	case d < time.Microsecond && d > -time.Microsecond:
		return fmt.Sprintf("%d ns", d.Nanoseconds())
	case d < time.Millisecond && d > -time.Millisecond:
		return fmt.Sprintf("%.2f µs", float64(d)/float64(time.Microsecond))
	}
	return ms(d)
}

// perSecond returns a format that prints the duration of ops operations
// of size bytes each as a throughput: operations per second when size is
// 0 ("9.12 M msgs/s"), else bytes per second ("12.30 GB/s", 1 GB = 10⁹
// bytes). A row's median, p90 and mean durations so become the median
// throughput, the throughput that 90% of the samples reached, and the
// harmonic mean (the overall throughput when the samples are batches of
// equal work).
func perSecond(ops, size int) func(time.Duration) string {
	return func(d time.Duration) string {
		if d <= 0 {
			return "–"
		}
		per := float64(ops) / d.Seconds()
		if size == 0 {
			switch {
			case per >= 1e6:
				return fmt.Sprintf("%.2f M msgs/s", per/1e6)
			case per >= 1e3:
				return fmt.Sprintf("%.1f k msgs/s", per/1e3)
			}
			return fmt.Sprintf("%.0f msgs/s", per)
		}
		bps := per * float64(size)
		if bps >= 1e9 {
			return fmt.Sprintf("%.2f GB/s", bps/1e9)
		}
		return fmt.Sprintf("%.0f MB/s", bps/1e6)
	}
}

// dur prints d as the report's rows do.
func (r *report) dur(d time.Duration) string {
	if r.format != nil {
		return r.format(d)
	}
	return ms(d)
}

// ratio says how an alternative's median compares to the reference's.
func ratio(alt, ref time.Duration) string {
	if ref <= 0 || alt <= 0 {
		return "n/a"
	}
	r := float64(alt) / float64(ref)
	switch {
	case r >= 1.05:
		return fmt.Sprintf("%.1f× slower", r)
	case r <= 1/1.05:
		return fmt.Sprintf("%.1f× faster", 1/r)
	}
	return fmt.Sprintf("about the same (%.2f×)", r)
}

func (r *report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "## %s\n\n%s\n\n", r.title, strings.TrimSpace(r.about))
	if r.stamp != "" {
		fmt.Fprintf(&b, "%s\n\n", r.stamp)
	}
	fmt.Fprintf(&b, "| Variant | Runs | Median | p90 | Mean | Median vs %s |", r.refName)
	for _, c := range r.cols {
		fmt.Fprintf(&b, " %s |", c)
	}
	b.WriteString("\n|---|---:|---:|---:|---:|---|" + strings.Repeat("---:|", len(r.cols)) + "\n")
	// cells are a row's extra cells, "–" where it has none.
	cells := func(w row) string {
		var c strings.Builder
		for i := range r.cols {
			cell := "–"
			if i < len(w.cols) && w.missing == "" {
				cell = w.cols[i]
			}
			fmt.Fprintf(&c, " %s |", cell)
		}
		return c.String()
	}
	for i, row := range r.rows {
		if row.missing != "" {
			fmt.Fprintf(&b, "| %s | 0 | – | – | – | not run: %s |%s\n", row.variant, row.missing, cells(row))
			continue
		}
		s := summarize(row.samples)
		cmp := "reference"
		if row.ref != i {
			cmp = ratio(s.median, summarize(r.rows[row.ref].samples).median)
		}
		dur := r.dur
		if row.format != nil {
			dur = row.format
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s |%s\n", row.variant, s.n, dur(s.median), dur(s.p90), dur(s.mean), cmp, cells(row))
	}
	b.WriteString("\n")
	if r.target > 0 {
		judged := slices.IndexFunc(r.rows, func(w row) bool { return w.judged }) >= 0
		for i, row := range r.rows {
			if !row.judged && (judged || i > 0) {
				continue
			}
			s := summarize(row.samples)
			if s.n == 0 {
				fmt.Fprintf(&b, "Target (%s): %s median ≤ %s — not judged (no samples).\n\n", r.source, row.variant, r.dur(r.target))
				continue
			}
			verdict := "**met**"
			if s.median > r.target {
				verdict = "**not met**"
			}
			fmt.Fprintf(&b, "Target (%s): %s median ≤ %s — %s (median %s).\n\n", r.source, row.variant, r.dur(r.target), verdict, r.dur(s.median))
		}
	}
	for _, t := range r.tables {
		fmt.Fprintf(&b, "%s\n\n", strings.TrimSpace(t))
	}
	for _, n := range r.notes {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	if r.verdict != "" {
		fmt.Fprintf(&b, "\n%s\n", strings.TrimSpace(r.verdict))
	}
	return strings.TrimRight(b.String(), "\n") + "\n"
}

// split divides n iterations into k rounds as evenly as possible.
func split(n, k int) []int {
	k = min(k, n)
	out := make([]int, k)
	for i := range out {
		out[i] = n / k
		if i < n%k {
			out[i]++
		}
	}
	return out
}

// keyedRow is one row of a report whose samples are gathered by key: the
// row's key, its variant text, the key of its group's reference row, and
// how its durations print (nil: the report's default).
type keyedRow struct {
	key, variant string
	group        string
	format       func(time.Duration) string
}

// step is one variant's part of a round: the key its samples go under and
// the run that gathers them.
type step struct {
	key string
	run func() ([]time.Duration, error)
}

// runRound runs steps in an order rotated by round r, so that no variant
// always goes first; it skips keys that missing says cannot run, records
// a *notRun's reason there, and appends the samples under their keys.
func runRound(r int, steps []step, samples map[string][]time.Duration, missing map[string]string) error {
	for k := range steps {
		s := steps[(k+r)%len(steps)]
		if missing[s.key] != "" {
			continue
		}
		got, err := s.run()
		var nr *notRun
		switch {
		case errors.As(err, &nr):
			missing[s.key] = nr.why
		case err != nil:
			return fmt.Errorf("%s: %w", s.key, err)
		}
		samples[s.key] = append(samples[s.key], got...)
	}
	return nil
}

// ratioTarget is a target judged on the ratio of two rows' medians measured
// side by side in one run (issue #17): mine against the fastest of others.
type ratioTarget struct {
	what   string // the target, "mproc `Queue` …, median rate ≥ 0.6× the C ring floor's"
	mine   string // the judged row's sample key
	others []ratioRow
	// rate: the samples are times per unit of work and the target is on
	// rates, mine's rate ≥ factor × the other's; else it is on times,
	// mine's ≤ factor × the other's. strict makes ≥ and ≤ > and <
	// ("faster than").
	rate   bool
	factor float64
	strict bool
	// info: no target, the line reports the ratio only.
	info bool
	show func(time.Duration) string // prints a median
}

// ratioRow is a row a ratioTarget compares to: its sample key, and its
// name in the verdict when there are several to pick the fastest from.
type ratioRow struct{ key, name string }

// judgeRatios judges ts on samples, one "Target (src): …" line each (a
// "Ratio (src, no target): …" line for an info one) with both medians and
// their ratio, and when there are several targets a last line that says
// plainly which are not met.
func judgeRatios(src string, ts []ratioTarget, samples map[string][]time.Duration) []string {
	var out, unmet []string
	judged := 0
	for _, t := range ts {
		m := summarize(samples[t.mine])
		var best ratioRow
		var o time.Duration
		for _, c := range t.others {
			if s := summarize(samples[c.key]); s.n > 0 && (best.key == "" || s.median < o) {
				best, o = c, s.median
			}
		}
		if !t.info {
			judged++
		}
		if m.n == 0 || best.key == "" {
			if t.info {
				out = append(out, fmt.Sprintf("Ratio (%s, no target): %s — not measured (no samples).", src, t.what))
				continue
			}
			out = append(out, fmt.Sprintf("Target (%s): %s — not judged (no samples).", src, t.what))
			unmet = append(unmet, t.what+" (not judged)")
			continue
		}
		// r is mine's rate over the other's, or mine's time over the other's.
		r, unit := float64(m.median)/float64(o), "time"
		if t.rate {
			r, unit = float64(o)/float64(m.median), "rate"
		}
		against := t.show(o)
		if best.name != "" {
			against += " for " + best.name
		}
		prec := 2 // a small ratio (a target of 0.05×) needs a third decimal
		if r < 0.1 {
			prec = 3
		}
		detail := fmt.Sprintf("median %s, against %s: %.*f× its %s", t.show(m.median), against, prec, r, unit)
		if t.info {
			out = append(out, fmt.Sprintf("Ratio (%s, no target): %s — %s.", src, t.what, detail))
			continue
		}
		var met bool
		switch {
		case t.rate && t.strict:
			met = r > t.factor
		case t.rate:
			met = r >= t.factor
		case t.strict:
			met = r < t.factor
		default:
			met = r <= t.factor
		}
		verdict := "**met**"
		if !met {
			verdict = "**not met**"
			unmet = append(unmet, t.what)
		}
		out = append(out, fmt.Sprintf("Target (%s): %s — %s (%s).", src, t.what, verdict, detail))
	}
	switch {
	case judged < 2:
	case len(unmet) == 0:
		out = append(out, "Every "+src+" target here is met.")
	default:
		out = append(out, "**Not met** ("+src+"): "+strings.Join(unmet, "; ")+".")
	}
	return out
}
