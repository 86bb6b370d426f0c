package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"mproc/internal/shm"
)

// TestSecurityNames: every subcommand that takes object names refuses a
// name that cannot name a segment ('/', "..", ".", NUL, a leading dot,
// other bytes, too long) as a bad command line (status 2, one line on
// stderr) before it touches anything: nothing is created, opened or
// removed, not in /dev/shm, not in a directory planted there to lead a
// name out of it, not where such a name would lead.
func TestSecurityNames(t *testing.T) {
	escape := fmt.Sprintf("test-sec-cli-%d", os.Getpid())
	if err := os.Mkdir(shm.Path(escape), 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(shm.Path(escape))
	target := t.TempDir()
	victim := filepath.Join(target, "victim")
	if err := os.WriteFile(victim, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	up := strings.Repeat("../", strings.Count(shm.Dir, "/")+1)
	bad := []string{
		"", ".", "..", ".hidden", "a/b", "/etc/passwd", "../escaped", "a\x00b", "a\nb", "caf\u00e9",
		escape + "/" + up + strings.TrimPrefix(victim, "/"),
		escape + "/inside",
		strings.Repeat("n", shm.MaxNameLen+1),
	}
	snapshot := func() []string {
		var out []string
		for _, dir := range []string{shm.Path(escape), target} {
			ents, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range ents {
				out = append(out, filepath.Join(dir, e.Name()))
			}
		}
		return out
	}
	before := snapshot()
	for _, cmd := range []string{"stat", "rm", "put", "get", "watch"} {
		for _, name := range bad {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			var stdout, stderr bytes.Buffer
			args := []string{cmd, name}
			var err error
			if cmd == "put" {
				err = putFrom(ctx, args[1:], strings.NewReader("message\n"), &stderr)
			} else {
				err = run(ctx, args, &stdout, &stderr)
			}
			cancel()
			code := exitCode(err, &stderr)
			if code != exitUsage || stdout.Len() > 0 || !strings.Contains(stderr.String(), "invalid name") ||
				strings.Count(stderr.String(), "\n") != 1 {
				t.Errorf("mproc %s %.40q: status %d, stdout %q, stderr %q; want status %d and one line naming the invalid name",
					cmd, name, code, &stdout, &stderr, exitUsage)
			}
		}
	}
	if after := snapshot(); !slices.Equal(after, before) {
		t.Errorf("the file system changed: %q, then %q", before, after)
	}
	if b, err := os.ReadFile(victim); err != nil || string(b) != "precious" {
		t.Errorf("the victim: %q, %v", b, err)
	}
}
