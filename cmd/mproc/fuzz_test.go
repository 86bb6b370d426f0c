package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mproc"
	"mproc/internal/shm"
)

// FuzzNames gives the CLI arbitrary object names, as the commands that
// read (stat, rm --dry-run) and write (put, get) take them, and checks how
// they are parsed: a name is accepted only if its path is a file directly
// in /dev/shm, named "mproc." and the name (no '/', no "..", no NUL, no
// leading '.', at most shm.MaxNameLen bytes); every other name is a usage
// error (exit status 2) before anything is opened, printed or removed;
// the verdict is the same every time. Names that start with '-' are also
// given after "--", and extra is a list of further arguments (one a line)
// for rm --dry-run, which must remove nothing.
func FuzzNames(f *testing.F) {
	for _, s := range []struct{ name, extra string }{
		{"jobs", ""},
		{"a.b_c-D9", "other\nnames"},
		{"", ""},
		{".hidden", ""},
		{"..", "../../etc/passwd"},
		{"../../etc/passwd", ""},
		{"a/b", ""},
		{"nul\x00byte", "x\x00y"},
		{"-json", "--"},
		{"--", "-h"},
		{"space name", ""},
		{"caf\u00e9", ""},
		{strings.Repeat("n", shm.MaxNameLen), ""},
		{strings.Repeat("n", shm.MaxNameLen+1), ""},
		{`\040mnt\134x`, ""},
	} {
		f.Add(s.name, s.extra)
	}
	// An object the fuzzed arguments may name but must never remove (one
	// per fuzzing process).
	canary := fmt.Sprintf("fuzz-canary-%d", os.Getpid())
	e, err := mproc.CreateEvent(canary)
	if err != nil {
		f.Fatal(err)
	}
	e.Close()
	f.Cleanup(func() { os.Remove(shm.Path(canary)) })
	f.Fuzz(func(t *testing.T, name, extra string) {
		checkName(t, name)
		checkName(t, canary) // stays valid, whatever ran before

		valid := shm.ValidateName(name) == nil
		cmds := [][]string{{"stat", "--", name}, {"rm", "--dry-run", "--", name}}
		if !strings.HasPrefix(name, "-") {
			cmds = append(cmds, []string{"stat", name}, []string{"rm", "--dry-run", name})
		}
		if !valid {
			// Commands that change a queue, for names that must be
			// refused before anything is opened.
			cmds = append(cmds, []string{"get", "--timeout", "0", "--", name}, []string{"put", "--timeout", "0", "--", name})
		}
		for _, args := range cmds {
			code, stdout := runCLI(t, args)
			if code2, stdout2 := runCLI(t, args); !valid && (code2 != code || stdout2 != stdout) {
				t.Fatalf("%q: exit %d, then %d", args, code, code2)
			}
			switch {
			case !valid && code != exitUsage:
				t.Fatalf("%q: the invalid name %q gave exit status %d, want %d", args, name, code, exitUsage)
			case !valid && stdout != "":
				t.Fatalf("%q: the invalid name %q printed %q", args, name, stdout)
			case args[0] == "rm" && strings.Contains(stdout, "\nremoved") || strings.HasPrefix(stdout, "removed"):
				t.Fatalf("%q: rm --dry-run removed something: %q", args, stdout)
			}
		}

		// Any further arguments: rm --dry-run removes nothing, whatever
		// they are (flags that could turn the dry run off are left out).
		args := []string{"rm", "--dry-run"}
		for a := range strings.SplitSeq(extra, "\n") {
			if l := strings.ToLower(a); !strings.Contains(l, "dry") && !strings.Contains(l, "force") &&
				!strings.Contains(l, "stale") && !strings.Contains(l, "prefix") {
				args = append(args, a)
			}
		}
		args = append(args, canary)
		runCLI(t, args)
		if _, err := os.Stat(shm.Path(canary)); err != nil {
			t.Fatalf("%q: the canary is gone: %v", args, err)
		}

		// The mount-table unescaping that finds the mqueue directory.
		u := unescapeMount(name)
		if u != unescapeMount(name) || len(u) > len(name) || !strings.Contains(name, `\`) && u != name {
			t.Fatalf("unescapeMount(%q) = %q", name, u)
		}
	})
}

// checkName checks what ValidateName and Path say of name.
func checkName(t *testing.T, name string) {
	t.Helper()
	err := shm.ValidateName(name)
	if err2 := shm.ValidateName(name); fmt.Sprint(err) != fmt.Sprint(err2) {
		t.Fatalf("ValidateName(%q): %v, then %v", name, err, err2)
	}
	if err != nil {
		if !errors.Is(err, mproc.ErrInvalidName) {
			t.Fatalf("ValidateName(%q): %v, not ErrInvalidName", name, err)
		}
		return
	}
	p := shm.Path(name)
	switch {
	case name == "" || len(name) > shm.MaxNameLen || name[0] == '.',
		strings.ContainsAny(name, "/\x00\\") || name == "..":
		t.Fatalf("ValidateName accepted %q", name)
	case filepath.Clean(p) != p || filepath.Dir(p) != shm.Dir || filepath.Base(p) != shm.Prefix+name:
		t.Fatalf("the name %q has the path %q, not a file directly in %s", name, p, shm.Dir)
	}
}

// runCLI runs the CLI with args and returns its exit status and output.
func runCLI(t *testing.T, args []string) (int, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, &stdout, &stderr)
	return exitCode(err, &stderr), stdout.String()
}
