package main

import (
	"strings"
	"testing"
	"time"
)

// judgeRatios says met or not met by the ratio of the medians, in the
// direction and strictness each target asks, and names the faster of
// several rows it is compared to.
func TestJudgeRatios(t *testing.T) {
	us := time.Microsecond
	samples := map[string][]time.Duration{
		"fast": {1 * us, 1 * us, 9 * us}, // median 1 µs
		"slow": {2 * us},
		"same": {1 * us},
		"none": nil,
	}
	rows := func(keys ...string) []ratioRow {
		var rs []ratioRow
		for _, k := range keys {
			rs = append(rs, ratioRow{key: k, name: k + " row"})
		}
		return rs
	}
	for _, c := range []struct {
		t    ratioTarget
		want string
	}{
		{ratioTarget{mine: "fast", others: []ratioRow{{key: "slow"}}, rate: true, factor: 2},
			"**met** (median 1.00 µs, against 2.00 µs: 2.00× its rate)"},
		{ratioTarget{mine: "fast", others: []ratioRow{{key: "slow"}}, rate: true, factor: 2.1},
			"**not met** (median 1.00 µs, against 2.00 µs: 2.00× its rate)"},
		{ratioTarget{mine: "slow", others: []ratioRow{{key: "fast"}}, factor: 2},
			"**met** (median 2.00 µs, against 1.00 µs: 2.00× its time)"},
		{ratioTarget{mine: "slow", others: []ratioRow{{key: "fast"}}, factor: 1.9},
			"**not met** (median 2.00 µs, against 1.00 µs: 2.00× its time)"},
		{ratioTarget{mine: "same", others: []ratioRow{{key: "fast"}}, factor: 1}, "**met**"},
		{ratioTarget{mine: "same", others: []ratioRow{{key: "fast"}}, factor: 1, strict: true}, "**not met**"},
		{ratioTarget{mine: "same", others: []ratioRow{{key: "fast"}}, rate: true, factor: 1, strict: true}, "**not met**"},
		{ratioTarget{mine: "fast", others: rows("slow", "same", "none"), rate: true, factor: 1},
			"**met** (median 1.00 µs, against 1.00 µs for same row: 1.00× its rate)"},
		{ratioTarget{mine: "none", others: rows("slow"), factor: 1}, "not judged (no samples)"},
		{ratioTarget{mine: "fast", others: rows("none"), factor: 1}, "not judged (no samples)"},
		{ratioTarget{mine: "slow", others: []ratioRow{{key: "fast"}}, rate: true, info: true},
			"Ratio (issue #0, no target): X — median 2.00 µs, against 1.00 µs: 0.50× its rate."},
	} {
		c.t.what, c.t.show = "X", humanDuration
		out := judgeRatios("issue #0", []ratioTarget{c.t}, samples)
		if len(out) != 1 || !strings.Contains(out[0], c.want) {
			t.Errorf("%+v: got %q, want a line with %q", c.t, out, c.want)
		}
	}

	// Several targets end with a line that names those not met; a
	// ratio without a target is never among them.
	ts := []ratioTarget{
		{what: "A", mine: "fast", others: []ratioRow{{key: "slow"}}, factor: 1},
		{what: "B", mine: "slow", others: []ratioRow{{key: "fast"}}, factor: 1},
		{what: "C", mine: "slow", others: []ratioRow{{key: "fast"}}, info: true},
	}
	for i := range ts {
		ts[i].show = humanDuration
	}
	out := judgeRatios("issue #0", ts, samples)
	if got, want := out[len(out)-1], "**Not met** (issue #0): B."; got != want {
		t.Errorf("last line %q, want %q", got, want)
	}
	if got, want := judgeRatios("issue #0", ts[:1], samples), 1; len(got) != want {
		t.Errorf("one target: %d lines, want %d: %q", len(got), want, got)
	}
	if out := judgeRatios("issue #0", []ratioTarget{ts[0], ts[0]}, samples); out[len(out)-1] != "Every issue #0 target here is met." {
		t.Errorf("all met: last line %q", out[len(out)-1])
	}
}

// The command a report prints runs as printed: an empty argument or one
// a shell would split or expand is quoted.
func TestReproduceCommand(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "go run ./bench"},
		{[]string{"-out", "", "queue"}, "go run ./bench -out '' queue"},
		{[]string{"-out", "a b's.md"}, `go run ./bench -out 'a b'\''s.md'`},
	} {
		if got := reproduceCommand(c.args); got != c.want {
			t.Errorf("reproduceCommand(%q) = %s, want %s", c.args, got, c.want)
		}
	}
}
