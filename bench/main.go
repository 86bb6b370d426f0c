// Command bench runs the same workload over mproc and over the alternatives a
// user would otherwise pick (plain Go, Python 3 multiprocessing), in one run
// on one machine, prints a markdown table per workload and rewrites that
// workload's section of BENCHMARKS.md.
//
// Usage, from the repository root (never under -race):
//
//	go run ./bench [-n N] [-pyn N] [-rounds R] [-out BENCHMARKS.md] [workload ...]
//
// With no workload named, every workload runs. Each workload owns the part of
// BENCHMARKS.md between the markers <!-- bench:NAME --> and
// <!-- /bench:NAME -->; the machine description owns bench:machine. Text
// outside the markers is kept, and a missing file is created with a header.
//
// Adding a workload: a new file with a func returning *report, registered in
// an init func with addWorkload. Python peers live in python/ and are
// embedded, so the harness runs from any directory.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"mproc"
)

// config is what every workload gets.
type config struct {
	n      int // iterations per Go variant
	pyN    int // iterations per Python variant
	rounds int // the iterations are split into this many interleaved rounds
	python string
	// pyMissing says why Python variants cannot run ("" when they can).
	pyMissing string
	log       io.Writer // progress; never the tables
}

// workload is one benchmark: the same job over mproc and its alternatives.
type workload struct {
	name  string // CLI name and BENCHMARKS.md marker
	about string // one line for -h
	run   func(ctx context.Context, c *config) (*report, error)
}

var workloads []workload

func addWorkload(w workload) {
	if slices.ContainsFunc(workloads, func(o workload) bool { return o.name == w.name }) {
		panic("bench: workload " + w.name + " added twice")
	}
	workloads = append(workloads, w)
	slices.SortFunc(workloads, func(a, b workload) int { return strings.Compare(a.name, b.name) })
}

func main() {
	mproc.Main()
	exitIfBaselineChild()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &config{log: stderr}
	fs.IntVar(&c.n, "n", 200, "iterations per Go variant")
	fs.IntVar(&c.pyN, "pyn", 50, "iterations per Python variant")
	fs.IntVar(&c.rounds, "rounds", 5, "split the iterations into this many rounds, alternating variants")
	out := fs.String("out", "BENCHMARKS.md", `file whose sections to rewrite; "" prints only`)
	chartOnly := fs.Bool("chart", false, "only redraw the chart from the tables in -out")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: go run ./bench [flags] [workload ...]\n\nworkloads (default all):\n")
		for _, w := range workloads {
			fmt.Fprintf(stderr, "  %-10s %s\n", w.name, w.about)
		}
		fmt.Fprintf(stderr, "\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.n < 1 || c.pyN < 1 || c.rounds < 1 {
		return errors.New("-n, -pyn and -rounds must be at least 1")
	}
	if *chartOnly {
		svg, err := writeChart(*out)
		if err == nil {
			fmt.Fprintf(stderr, "bench: wrote %s\n", svg)
		}
		return err
	}
	selected, err := selectWorkloads(fs.Args())
	if err != nil {
		fs.Usage()
		return err
	}
	if c.python, err = exec.LookPath("python3"); err != nil {
		c.python = ""
		c.pyMissing = "python3 not found in PATH, Python variants not run"
		fmt.Fprintln(stderr, "bench: WARNING:", c.pyMissing)
	}
	m := describeMachine(ctx, c.python)
	m.command = reproduceCommand(args)
	fmt.Fprintln(stdout, m.markdown())

	for _, w := range selected {
		fmt.Fprintf(stderr, "bench: %s: running\n", w.name)
		r, err := w.run(ctx, c)
		if err != nil {
			return fmt.Errorf("%s: %w", w.name, err)
		}
		r.stamp = fmt.Sprintf("Measured %s with `%s` (%s).", m.when, m.command, m.short())
		body := r.markdown()
		fmt.Fprintln(stdout, body)
		if *out != "" {
			if err := writeSections(*out, section{"machine", m.markdown()}, section{w.name, body}); err != nil {
				return err
			}
		}
	}
	if *out != "" {
		svg, err := writeChart(*out)
		if err != nil {
			return fmt.Errorf("chart: %w", err)
		}
		fmt.Fprintf(stderr, "bench: wrote %s and %s\n", *out, svg)
	}
	return nil
}

func selectWorkloads(names []string) ([]workload, error) {
	if len(names) == 0 {
		return workloads, nil
	}
	var ws []workload
	for _, n := range names {
		i := slices.IndexFunc(workloads, func(w workload) bool { return w.name == n })
		if i < 0 {
			return nil, fmt.Errorf("unknown workload %q", n)
		}
		ws = append(ws, workloads[i])
	}
	return ws, nil
}

// reproduceCommand is the command line that reproduces this run.
func reproduceCommand(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = a
		if a == "" || strings.ContainsAny(a, " \t'\"$`\\*?") {
			quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.TrimSpace("go run ./bench " + strings.Join(quoted, " "))
}

// machine describes where the numbers come from.
type machine struct {
	when, cpu, kernel, goVersion, python, load, command string
	cpus                                                int
}

func describeMachine(ctx context.Context, python string) machine {
	m := machine{
		when:      time.Now().UTC().Format("2006-01-02 15:04 UTC"),
		cpu:       "unknown CPU",
		cpus:      runtime.NumCPU(),
		goVersion: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH,
		python:    "python3 not found in PATH",
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	m.kernel = output(ctx, "uname", "-srvm")
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.load = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	if python != "" {
		m.python = output(ctx, python, "-c", "import platform, sys; print('Python', platform.python_version(), sys.executable)")
	}
	return m
}

// output runs a short command and returns its trimmed output, or the error.
func output(ctx context.Context, name string, args ...string) string {
	b, err := exec.CommandContext(ctx, name, args...).Output()
	if err != nil {
		return fmt.Sprintf("unknown (%s: %v)", name, err)
	}
	return strings.TrimSpace(string(b))
}

func (m machine) short() string {
	return fmt.Sprintf("%s, %d CPUs, load average %s at start", m.cpu, m.cpus, m.load)
}

func (m machine) markdown() string {
	return fmt.Sprintf(`## Machine

Last run %s: `+"`%s`"+`

| | |
|---|---|
| CPU | %s (%d online) |
| Kernel | %s |
| Go | %s |
| Python | %s |
| Load average at start | %s |
`, m.when, m.command, m.cpu, m.cpus, m.kernel, m.goVersion, m.python, m.load)
}

const fileHeader = `# mproc benchmarks

Every mproc transport is measured against what a user would otherwise pick
(Python 3 ` + "`multiprocessing`" + `, plain Go over pipes and Unix sockets), the same
workload in one run on one machine. Ratios compare each alternative's median
to mproc's.

Reproduce from the repository root, without ` + "`-race`" + `:

    go run ./bench              # every workload
    go run ./bench process      # one workload; -n, -pyn and -rounds set the iterations

The sections between ` + "`<!-- bench:NAME -->`" + ` markers are rewritten by
` + "`go run ./bench`" + `; text outside them is kept. See bench/README.md.

`

// section is one marked part of BENCHMARKS.md.
type section struct{ name, body string }

// writeSections replaces each section of the file at path, the text between
// <!-- bench:NAME --> and <!-- /bench:NAME -->, appending missing ones at
// the end in order. A missing file starts with fileHeader.
func writeSections(path string, secs ...section) error {
	old, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		old, err = []byte(fileHeader), nil
	}
	if err != nil {
		return err
	}
	doc := string(old)
	for _, s := range secs {
		if doc, err = replaceSection(doc, s.name, s.body); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	// Write a temporary file and rename it, so that an interrupted run
	// never leaves half a file.
	tmp, err := os.CreateTemp(filepath.Dir(path), ".bench-*.md")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(doc)
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func replaceSection(doc, name, body string) (string, error) {
	begin, end := "<!-- bench:"+name+" -->", "<!-- /bench:"+name+" -->"
	block := begin + "\n" + strings.TrimSpace(body) + "\n" + end
	i, j := strings.Index(doc, begin), strings.Index(doc, end)
	switch {
	case i < 0 && j < 0:
		return strings.TrimRight(doc, "\n") + "\n\n" + block + "\n", nil
	case i < 0 || j < i || strings.Count(doc, begin) > 1 || strings.Count(doc, end) > 1:
		return "", fmt.Errorf("section %q: markers %s ... %s missing, duplicated or out of order", name, begin, end)
	}
	return doc[:i] + block + doc[j+len(end):], nil
}
