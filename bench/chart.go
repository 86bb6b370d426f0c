package main

import (
	"fmt"
	"html"
	"math"
	"os"
	"strconv"
	"strings"
)

// The chart: the headline of each workload — mproc against what a user
// would otherwise pick (Python's multiprocessing, Go over sockets or
// pipes) and the floor the hardware allows (C) — drawn as speed relative
// to mproc on a log scale. It is drawn from the tables in BENCHMARKS.md
// after every run, so it always shows the figures the tables show, even
// when a run rewrote only some sections.

// A chartSeries is one kind of contender, the same colour in every group.
type chartSeries struct{ name, color string }

var (
	seriesMproc  = chartSeries{"mproc", "#2b6cb0"}
	seriesPython = chartSeries{"Python multiprocessing", "#d69e2e"}
	seriesGo     = chartSeries{"Go sockets / pipes", "#718096"}
	seriesFloor  = chartSeries{"C floor", "#38a169"}
	chartLegend  = []chartSeries{seriesMproc, seriesPython, seriesGo, seriesFloor}
)

// A chartGroup is one headline: a table row per series, found in the
// workload's section by substrings its variant name must all contain.
type chartGroup struct {
	section, title string
	bars           []chartBar
}

type chartBar struct {
	series chartSeries
	match  []string
}

var chartGroups = []chartGroup{
	{"queue", "Queue, 1 → 1 process, 64 B messages", []chartBar{
		{seriesMproc, []string{"mproc `Queue[[]byte]`, 64 B"}},
		{seriesPython, []string{"`multiprocessing.Queue`, 64 B"}},
		{seriesGo, []string{"Go Unix stream socketpair, 64 B"}},
		{seriesFloor, []string{"floor: C spinning ring, two CPUs, 64 B"}},
	}},
	{"queue", "Queue round trip, 64 B, two CPUs", []chartBar{
		{seriesMproc, []string{"mproc `Queue[[]byte]` round trip, 64 B, two CPUs"}},
		{seriesPython, []string{"`multiprocessing.Queue` round trip, 64 B, two CPUs"}},
		{seriesGo, []string{"Go Unix stream socketpair round trip, 64 B, two CPUs"}},
	}},
	{"event", "Event ping-pong, two CPUs", []chartBar{
		{seriesMproc, []string{"mproc `Event`, two CPUs"}},
		{seriesPython, []string{"`multiprocessing.Event`, two CPUs"}},
		{seriesGo, []string{"Go Unix socket, 1 byte each way, two CPUs"}},
		{seriesFloor, []string{"floor: C futex wait/wake, two CPUs"}},
	}},
	{"lock", "Lock + Unlock, 2 processes", []chartBar{
		{seriesMproc, []string{"mproc `Lock`+`Unlock`, 2 processes"}},
		{seriesPython, []string{"`multiprocessing.Lock`, 2 processes"}},
	}},
	{"conn", "Conn, 64 KiB messages", []chartBar{
		{seriesMproc, []string{"mproc `Conn` `SendBytes` → `RecvBytesInto`, 64 KiB"}},
		{seriesPython, []string{"`Pipe()` `send_bytes` → `recv_bytes`, 64 KiB"}},
		{seriesGo, []string{"Go raw socketpair, blocking, 64 KiB"}},
	}},
	{"pool", "Pool.map, automatic chunks, per task", []chartBar{
		{seriesMproc, []string{"mproc `Map`, automatic chunks"}},
		{seriesPython, []string{"`Pool.map`, default chunksize"}},
	}},
	{"pool", "Pool Submit + Result, per call", []chartBar{
		{seriesMproc, []string{"mproc `Submit` + `Result`"}},
		{seriesPython, []string{"`ProcessPoolExecutor`"}},
	}},
	{"process", "Start + Wait of a child", []chartBar{
		{seriesMproc, []string{"mproc `Start` + `Wait`"}},
		{seriesPython, []string{"`multiprocessing` fork"}},
		{seriesGo, []string{"Go `exec.Command(self).Run()`"}},
	}},
	{"manager", "Manager dict, d[k] = v + d[k]", []chartBar{
		{seriesMproc, []string{"Go client → Go server", "shared memory"}},
		{seriesPython, []string{"client → Python", "`multiprocessing.Manager()`", "Python"}},
		{seriesGo, []string{"Go client → Go server", "Unix socket"}},
	}},
	{"rpc", "gRPC unary round trip", []chartBar{
		{seriesMproc, []string{"gRPC unary", "shmnet"}},
		{seriesGo, []string{"gRPC unary", "Unix socket"}},
	}},
}

// chartValue is a table cell's median as a speed: higher is faster.
func chartValue(cell string) (float64, bool) {
	f := strings.Fields(cell)
	if len(f) < 2 {
		return 0, false
	}
	x, err := strconv.ParseFloat(f[0], 64)
	if err != nil || x <= 0 {
		return 0, false
	}
	unit := strings.Join(f[1:], " ")
	scale := map[string]float64{"ns": 1e-9, "µs": 1e-6, "ms": 1e-3, "s": 1}
	if s, ok := scale[unit]; ok {
		return 1 / (x * s), true // a time per op: its inverse
	}
	rate := map[string]float64{"msgs/s": 1, "k msgs/s": 1e3, "M msgs/s": 1e6, "MB/s": 1e6, "GB/s": 1e9}
	if s, ok := rate[unit]; ok {
		return x * s, true
	}
	return 0, false
}

// chartRows returns the variant → median cell of every table row of the
// section name in doc.
func chartRows(doc, name string) map[string]string {
	begin, end := "<!-- bench:"+name+" -->", "<!-- /bench:"+name+" -->"
	i, j := strings.Index(doc, begin), strings.Index(doc, end)
	rows := map[string]string{}
	if i < 0 || j < i {
		return rows
	}
	for line := range strings.Lines(doc[i:j]) {
		cells := strings.Split(line, "|")
		if len(cells) < 5 || !strings.HasPrefix(line, "| ") {
			continue
		}
		rows[strings.TrimSpace(cells[1])] = strings.TrimSpace(cells[3])
	}
	return rows
}

type chartPoint struct {
	series chartSeries
	label  string  // the row's median, as the table shows it
	speed  float64 // relative to the group's mproc row
}

// chartData finds each group's rows in doc; groups without an mproc row
// are left out.
func chartData(doc string) (titles []string, points [][]chartPoint) {
	for _, g := range chartGroups {
		rows := chartRows(doc, g.section)
		var pts []chartPoint
		var ref float64
		for _, b := range g.bars {
			// The shortest matching variant: "fork" rather than
			// "forkserver".
			best := ""
			for variant := range rows {
				if containsAll(variant, b.match) && (best == "" || len(variant) < len(best)) {
					best = variant
				}
			}
			v, ok := chartValue(rows[best])
			if best == "" || !ok {
				continue
			}
			if b.series == seriesMproc {
				ref = v
			}
			pts = append(pts, chartPoint{series: b.series, label: rows[best], speed: v})
		}
		if ref == 0 {
			continue
		}
		for k := range pts {
			pts[k].speed /= ref
		}
		titles = append(titles, g.title)
		points = append(points, pts)
	}
	return titles, points
}

func containsAll(s string, subs []string) bool {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}

// chartSVG draws the groups as horizontal bars of speed relative to mproc
// (1×), on a log scale from 1/1000 to 10.
func chartSVG(titles []string, points [][]chartPoint) string {
	const (
		width, left, right = 760, 20, 170
		barH, gap, top     = 14, 4, 66
		lo, hi             = -3.0, 1.0 // log10 of the scale's ends
	)
	plot := float64(width - left - right)
	x := func(speed float64) float64 {
		l := math.Max(lo, math.Min(hi, math.Log10(speed)))
		return float64(left) + (l-lo)/(hi-lo)*plot
	}
	var b strings.Builder
	y := top
	var body strings.Builder
	for i, t := range titles {
		fmt.Fprintf(&body, `<text x="10" y="%d" font-weight="bold">%s</text>`+"\n", y+barH-2, html.EscapeString(t))
		y += barH + gap
		for _, p := range points[i] {
			fmt.Fprintf(&body, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"><title>%s: %s (%.3g× mproc's speed)</title></rect>`+"\n",
				left, y, x(p.speed)-float64(left), barH, p.series.color, html.EscapeString(p.series.name), html.EscapeString(p.label), p.speed)
			fmt.Fprintf(&body, `<text x="%.1f" y="%d" font-size="11">%s · %s</text>`+"\n", x(p.speed)+4, y+barH-3, chartRatio(p.speed), html.EscapeString(p.label))
			y += barH + gap
		}
		y += 10
	}
	height := y + 30
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="10" y="20" font-size="15" font-weight="bold">Speed relative to mproc (log scale; longer is faster; mproc = 1×)</text>`+"\n")
	lx := 10
	for _, s := range chartLegend {
		fmt.Fprintf(&b, `<rect x="%d" y="32" width="12" height="12" fill="%s"/><text x="%d" y="43">%s</text>`+"\n", lx, s.color, lx+16, html.EscapeString(s.name))
		lx += 24 + 8*len(s.name)
	}
	for _, tick := range []float64{0.001, 0.01, 0.1, 1, 10} {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s"/>`+"\n", x(tick), top-6, x(tick), y, map[bool]string{true: "#000", false: "#ddd"}[tick == 1])
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="11" text-anchor="middle">%s</text>`+"\n", x(tick), y+14, chartRatio(tick))
	}
	b.WriteString(body.String())
	b.WriteString("</svg>\n")
	return b.String()
}

func chartRatio(r float64) string {
	switch {
	case r >= 10:
		return fmt.Sprintf("%.0f×", r)
	case r >= 0.095:
		return fmt.Sprintf("%.2g×", r)
	case r >= 0.0095:
		return fmt.Sprintf("%.2f×", r)
	}
	return fmt.Sprintf("%.3f×", r)
}

// writeChart draws the chart of the tables in mdPath next to it (the same
// name, .svg).
func writeChart(mdPath string) (string, error) {
	doc, err := os.ReadFile(mdPath)
	if err != nil {
		return "", err
	}
	titles, points := chartData(string(doc))
	path := strings.TrimSuffix(mdPath, ".md") + ".svg"
	return path, os.WriteFile(path, []byte(chartSVG(titles, points)), 0o644)
}
