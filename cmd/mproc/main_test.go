package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"regexp"
	"testing"
	"time"

	"mproc"
	"mproc/internal/testenv"
)

// TestMain lets the test binary be a child: Start re-executes it, and Main
// runs the registered demo functions there. The run fails if a test left a
// child running.
func TestMain(m *testing.M) { testenv.Main(m) }

func TestDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	err := run(ctx, []string{"demo"}, &out, &errOut)
	t.Logf("stdout:\n%s", &out)
	if err != nil {
		t.Fatalf("run demo: %v\nstderr:\n%s", err, &errOut)
	}
	if errOut.Len() > 0 {
		t.Errorf("stderr not empty:\n%s", &errOut)
	}
	for _, re := range []string{
		`(?m)^parent \(pid \d+\): 4 children count the primes below 10000000`,
		`(?m)^  primes-0 \(pid \d+, parent \d+\): 183072 primes in \[0, 2500000\) -> slot 0$`,
		`(?m)^  primes-1 \(pid \d+, parent \d+\): 165441 primes in \[2500000, 5000000\) -> slot 1$`,
		`(?m)^  primes-2 \(pid \d+, parent \d+\): 159748 primes in \[5000000, 7500000\) -> slot 2$`,
		`(?m)^  primes-3 \(pid \d+, parent \d+\): 156318 primes in \[7500000, 10000000\) -> slot 3$`,
		`(?m)^parent read \[183072 165441 159748 156318\] from shared memory: 664579 primes in all \(one process counting alone: 664579\)$`,
		`(?m)^contained: crasher \(pid \d+\) panicked with "index out of range in a buggy worker"; the parent carries on$`,
		`(?m)^stopped: sleeper \(pid \d+\) was terminated and returned its context's cause "mproc: terminated"`,
		`(?m)^demo ok`,
	} {
		if !regexp.MustCompile(re).Match(out.Bytes()) {
			t.Errorf("output lacks a line matching %s", re)
		}
	}
	if n := bytes.Count(out.Bytes(), []byte("\n")); n != 9 {
		t.Errorf("output has %d lines, want 9", n)
	}
	// The children really were other processes, children of this one.
	pids := regexp.MustCompile(`\(pid (\d+), parent (\d+)\)`).FindAllSubmatch(out.Bytes(), -1)
	seen := map[string]bool{}
	for _, m := range pids {
		if string(m[1]) == fmt.Sprint(os.Getpid()) || string(m[2]) != fmt.Sprint(os.Getpid()) {
			t.Errorf("child line with pid %s, parent %s; this process is %d", m[1], m[2], os.Getpid())
		}
		seen[string(m[1])] = true
	}
	if len(seen) != 4 {
		t.Errorf("%d distinct child pids, want 4", len(seen))
	}
}

func TestDemoCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var out, errOut bytes.Buffer
	err := run(ctx, []string{"demo"}, &out, &errOut)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("run demo with a cancelled context: %v, want context.Canceled", err)
	}
	if c := exitCode(err, &errOut); c != 1 {
		t.Errorf("exit code %d, want 1", c)
	}
}

// TestDemoInterrupted cancels the demo while its children count, as
// SIGINT does: Start's context terminates them, each returns its context's
// cause, and run reports that promptly with no child left.
func TestDemoInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	time.AfterFunc(300*time.Millisecond, cancel)
	var out, errOut bytes.Buffer
	begin := time.Now()
	err := run(ctx, []string{"demo", "-n", "4000000000"}, &out, &errOut)
	if !errors.Is(err, mproc.ErrTerminated) {
		t.Fatalf("run interrupted demo: %v, want mproc.ErrTerminated\nstdout:\n%s", err, &out)
	}
	if d := time.Since(begin); d > 10*time.Second {
		t.Errorf("interrupted demo took %v to return", d)
	}
	if left := mproc.Children(); len(left) > 0 {
		t.Errorf("%d children left running", len(left))
	}
}

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		code     int
		stdout   string // a regexp the output must match, on stdout
		stderr   string // ... and on stderr
		usageErr bool
	}{
		{args: nil, code: 2, stderr: `Subcommands:\n  ls  (?s:.*)\n  demo  `, usageErr: true},
		{args: []string{"nosuch"}, code: 2, stderr: `(?s)unknown subcommand "nosuch".*Usage: mproc <subcommand>.*  demo  `, usageErr: true},
		{args: []string{"help"}, code: 0, stdout: `(?s)Subcommands:\n  ls  .*\n  stat  .*\n  rm  .*\n  put  .*\n  get  .*\n  watch  .*\n  bench  .*\n  demo  .*Exit status: 0 success, 1 failure`},
		{args: []string{"help", "ls"}, code: 0, stdout: `(?s)^Usage: mproc ls \[flags\].*STALE means.*mproc objects  its creator is dead.*sysv-msg .*fifo .*Flags:.*-json`},
		{args: []string{"help", "stat"}, code: 0, stdout: `(?s)^Usage: mproc stat \[flags\] NAME.*-json`},
		{args: []string{"help", "rm"}, code: 0, stdout: `(?s)^Usage: mproc rm .*-force.*-stale`},
		{args: []string{"help", "put"}, code: 0, stdout: `(?s)^Usage: mproc put .*-format.*-timeout`},
		{args: []string{"help", "get"}, code: 0, stdout: `(?s)^Usage: mproc get .*-n int.*-timeout`},
		{args: []string{"help", "watch"}, code: 0, stdout: `(?s)^Usage: mproc watch .*-count N`},
		{args: []string{"help", "bench"}, code: 0, stdout: `(?s)^Usage: mproc bench .*-quick`},
		{args: []string{"help", "demo"}, code: 0, stdout: `(?s)^Usage: mproc demo .*-workers`},
		{args: []string{"help", "nosuch"}, code: 2, stderr: `mproc help: want one subcommand name`, usageErr: true},
		{args: []string{"ls", "extra"}, code: 2, stderr: `^mproc: ls: takes no arguments, got \["extra"\]`},
		{args: []string{"ls", "--nosuch"}, code: 2, stderr: `flag provided but not defined: -nosuch`, usageErr: true},
		{args: []string{"stat"}, code: 2, stderr: `^mproc: stat: want one object name, got 0 arguments\n$`},
		{args: []string{"rm"}, code: 2, stderr: `^mproc: rm: want object names, or --stale\n$`},
		{args: []string{"rm", "--stale", "x"}, code: 2, stderr: `^mproc: rm: --stale takes no names\n$`},
		{args: []string{"put", "q", "--format", "xml"}, code: 2, stderr: `^mproc: put: --format "xml": want line, raw or json\n$`},
		{args: []string{"get", "q", "-n", "-1"}, code: 2, stderr: `^mproc: get: -n -1: want 0 or more\n$`},
		{args: []string{"watch", "--interval", "0s"}, code: 2, stderr: `^mproc: watch: want --interval > 0`},
		{args: []string{"bench", "--", "-out=x"}, code: 2, stderr: `^mproc: bench: "-out=x" is not a workload name\n$`},
		{args: []string{"demo", "-nosuch"}, code: 2, stderr: `flag provided but not defined: -nosuch`, usageErr: true},
		{args: []string{"demo", "extra"}, code: 2, stderr: `Usage: mproc demo`, usageErr: true},
		{args: []string{"demo", "-workers", "0"}, code: 2, stderr: `Usage: mproc demo`, usageErr: true},
		{args: []string{"demo", "-h"}, code: 0, stderr: `-workers int`},
	} {
		t.Run(fmt.Sprint(tc.args), func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(t.Context(), tc.args, &out, &errOut)
			if got := errors.Is(err, errUsage); got != tc.usageErr {
				t.Errorf("run: %v; errors.Is(err, errUsage) = %v, want %v", err, got, tc.usageErr)
			}
			if tc.code == 0 && err != nil && !errors.Is(err, flag.ErrHelp) {
				t.Errorf("run: %v, want nil or flag.ErrHelp", err)
			}
			if c := exitCode(err, &errOut); c != tc.code {
				t.Errorf("exit code %d, want %d", c, tc.code)
			}
			if tc.stdout != "" && !regexp.MustCompile(tc.stdout).Match(out.Bytes()) {
				t.Errorf("stdout does not match %s:\n%s", tc.stdout, &out)
			}
			if tc.stderr != "" && !regexp.MustCompile(tc.stderr).Match(errOut.Bytes()) {
				t.Errorf("stderr does not match %s:\n%s", tc.stderr, &errOut)
			}
		})
	}
}
