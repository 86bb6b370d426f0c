package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"mproc"
	"mproc/internal/testenv"
)

// TestBinary runs the built command, as a shell would: exit statuses,
// one-line errors, put and get between separate invocations, another
// user's objects, and watch on a terminal stopped by Ctrl-C.
func TestBinary(t *testing.T) {
	bin := buildMproc(t)
	t.Run("ExitStatus", func(t *testing.T) { testExitStatus(t, bin) })
	t.Run("PutGet", func(t *testing.T) { testPutGet(t, bin) })
	t.Run("Permission", func(t *testing.T) { testPermission(t, bin) })
	t.Run("WatchTerminal", func(t *testing.T) { testWatchTerminal(t, bin) })
	t.Run("WatchInterrupted", func(t *testing.T) { testWatchInterrupted(t, bin) })
	t.Run("PutTerminal", func(t *testing.T) { testPutTerminal(t, bin) })
}

// badNames are refused before anything touches the file system.
var badNames = []string{"a/b", "..", "../x", "", ".hidden", "a b", strings.Repeat("n", 201)}

func testExitStatus(t *testing.T, bin string) {
	p := prefix(t)
	l, err := mproc.CreateLock(p + "lock")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	missing := p + "nosuch"
	type tc struct {
		args []string
		code int
		re   string // stderr, one line
	}
	cases := []tc{
		{[]string{"stat", p + "lock"}, 0, ""},
		{[]string{"nosuch"}, exitUsage, ""},
		{[]string{"stat", missing}, exitFailure, `^mproc: stat: no mproc object "` + missing + `" \(no file /dev/shm/mproc.` + missing + `\)\n$`},
		{[]string{"rm", missing}, exitFailure, `^mproc: rm: no mproc object "` + missing + `"`},
		{[]string{"put", missing}, exitFailure, `^mproc: put: no mproc object "` + missing + `"`},
		{[]string{"get", missing}, exitFailure, `^mproc: get: no mproc object "` + missing + `"`},
		{[]string{"watch", "--count", "1", missing}, exitFailure, `^mproc: watch: no mproc object "` + missing + `"`},
		{[]string{"put", p + "lock"}, exitFailure, `^mproc: put: "` + p + `lock" is not a queue \(lock\)\n$`},
		{[]string{"get", p + "lock"}, exitFailure, `^mproc: get: "` + p + `lock" is not a queue \(lock\)\n$`},
	}
	for _, cmd := range []string{"stat", "rm", "put", "get", "watch"} {
		for _, n := range badNames {
			cases = append(cases, tc{[]string{cmd, n}, exitUsage, `^mproc: ` + cmd + `: mproc: invalid name: `})
		}
	}
	for _, c := range cases {
		r := runBin(t, bin, "", nil, c.args...)
		what := fmt.Sprintf("mproc %q", c.args)
		if r.code != c.code {
			t.Errorf("%s: exit status %d, want %d\nstderr: %s", what, r.code, c.code, r.stderr)
		}
		if c.re != "" {
			oneLineErr(t, what, r.stderr, c.re)
			if r.stdout != "" {
				t.Errorf("%s: stdout %q", what, r.stdout)
			}
		}
	}
	// A NUL cannot be in an argument of exec: through run.
	for _, cmd := range []string{"stat", "rm", "put", "get", "watch"} {
		_, errOut, code := cli(t, cmd, "a\x00b")
		if code != exitUsage {
			t.Errorf("%s a\\x00b: exit status %d", cmd, code)
		}
		oneLineErr(t, cmd+" NUL", errOut, `^mproc: `+cmd+`: mproc: invalid name: "a\\x00b" holds '\\x00'`)
	}
}

func testPutGet(t *testing.T, bin string) {
	p := prefix(t)
	q, err := mproc.CreateQueue[[]byte](p+"q", 8, mproc.WithMaxMessage(64))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	name := p + "q"

	// Two shells: one puts lines, the other gets them.
	if r := runBin(t, bin, "one\ntwo\nthree\n", nil, "put", name); r.code != 0 || r.stdout != "" || r.stderr != "" {
		t.Fatalf("put: %+v", r)
	}
	if r := runBin(t, bin, "", nil, "get", "-n", "3", name); r.code != 0 || r.stdout != "one\ntwo\nthree\n" {
		t.Fatalf("get -n 3: %+v", r)
	}

	// A get that waits, in one shell, for what another shell puts.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	getter := exec.CommandContext(ctx, bin, "get", "-n", "2", "--format", "json", "--timeout", "1m", name)
	var out, errOut bytes.Buffer
	getter.Stdout, getter.Stderr = &out, &errOut
	if err := getter.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a consumer waiting", func() bool {
		return statJSON(t, name)["queue"].(map[string]any)["waiting_consumers"] == 1.0
	})
	if r := runBin(t, bin, "{\"a\": 1}\n\n[2,\t3]\n", nil, "put", "--format", "json", name); r.code != 0 {
		t.Fatalf("put --format json: %+v", r)
	}
	if err := getter.Wait(); err != nil || out.String() != "{\"a\":1}\n[2,3]\n" {
		t.Fatalf("get --format json: %v, stdout %q, stderr %q", err, &out, &errOut)
	}

	// Raw: stdin is one message, newlines and all; Go reads it as put.
	if r := runBin(t, bin, "raw\nbytes", nil, "put", "--format", "raw", name); r.code != 0 {
		t.Fatalf("put --format raw: %+v", r)
	}
	if m, err := q.TryGet(); err != nil || string(m) != "raw\nbytes" {
		t.Fatalf("Go got %q, %v after put --format raw", m, err)
	}
	// ... and what Go puts, the shell gets.
	for _, m := range []string{"from", "Go"} {
		if err := q.Put(ctx, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	if r := runBin(t, bin, "", nil, "get", "-n", "0", "--timeout", "0", "--format", "raw", name); r.code != 0 || r.stdout != "fromGo" {
		t.Fatalf("get -n 0 --format raw: %+v", r)
	}

	// Timeouts, and other failures, are exit status 1 and one line.
	r := runBin(t, bin, "", nil, "get", "--timeout", "200ms", name)
	if r.code != exitFailure || r.stdout != "" {
		t.Errorf("get from an empty queue: %+v", r)
	}
	oneLineErr(t, "get timeout", r.stderr, `^mproc: get: queue "`+name+`" still empty after 200ms \(got 0 of 1 messages\)\n$`)
	r = runBin(t, bin, "x\n", nil, "get", "-n", "0", "--timeout", "200ms", name)
	if r.code != 0 || r.stdout != "" || r.stderr != "" {
		t.Errorf("get -n 0 from an empty queue: %+v", r)
	}
	r = runBin(t, bin, strings.Repeat("m\n", 9), nil, "put", "--timeout", "200ms", name)
	if r.code != exitFailure {
		t.Errorf("put of 9 into a queue of 8: %+v", r)
	}
	oneLineErr(t, "put timeout", r.stderr, `^mproc: put: queue "`+name+`" still full after 200ms \(8 messages put\)\n$`)
	r = runBin(t, bin, "", nil, "get", "-n", "0", "--timeout", "0", name)
	if r.code != 0 || r.stdout != strings.Repeat("m\n", 8) {
		t.Errorf("get -n 0 --timeout 0 of 8 messages: %+v", r)
	}
	r = runBin(t, bin, "ok\nnot json\n", nil, "put", "--format", "json", name)
	if r.code != exitFailure {
		t.Errorf("put --format json of a line that is not: %+v", r)
	}
	oneLineErr(t, "put bad json", r.stderr, `^mproc: put: line 1 is not valid JSON \(0 messages put\)\n$`)
	r = runBin(t, bin, strings.Repeat("x", 65)+"\n", nil, "put", name)
	if r.code != exitFailure {
		t.Errorf("put of a line over the maximum: %+v", r)
	}
	oneLineErr(t, "put too long", r.stderr, `^mproc: put: line 1: more than the queue's maximum message of 64 bytes \(0 messages put\)\n$`)
	if err := q.Shutdown(); err != nil {
		t.Fatal(err)
	}
	r = runBin(t, bin, "", nil, "get", name)
	oneLineErr(t, "get shut down", r.stderr, `^mproc: get: queue "`+name+`" is shut down and empty \(got 0 of 1 messages\)\n$`)
	if r.code != exitFailure {
		t.Errorf("get from a shut-down queue: %+v", r)
	}
}

// testPermission runs the command as another user (uid 65534) on this
// user's objects: each refusal is one line and exit status 1.
func testPermission(t *testing.T, bin string) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run the command as another user")
	}
	p := prefix(t)
	q, err := mproc.CreateQueue[[]byte](p+"q", 4)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	nobody := &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	for _, args := range [][]string{
		{"stat", p + "q"}, {"get", "--timeout", "0", p + "q"}, {"put", p + "q"}, {"rm", p + "q"}, {"watch", "--count", "1", p + "q"},
	} {
		r := runBin(t, bin, "x\n", nobody, args...)
		if r.code != exitFailure || r.stdout != "" {
			t.Errorf("mproc %q as uid 65534: %+v", args, r)
		}
		oneLineErr(t, fmt.Sprintf("mproc %q as uid 65534", args), r.stderr, `^mproc: \w+: "`+p+`q": permission denied \(/dev/shm/mproc.`+p+`q: owned by uid 0, mode 0600\)\n$`)
	}
	if !exists(p + "q") {
		t.Error("another user's rm removed the queue")
	}
	// ls lists what it may not read, and does not fail.
	r := runBin(t, bin, "", nobody, "ls", "--json")
	if r.code != 0 || !regexp.MustCompile(`"name": "`+p+`q",(?s:[^}]*?)"stale": false,\s*"note": "permission denied \(/dev/shm/mproc.`+p+`q: owned by uid 0, mode 0600\)"`).MatchString(r.stdout) {
		t.Errorf("ls as uid 65534: %+v", r)
	}
}

// lockedBuffer collects what a goroutine writes, for the test to read.
type lockedBuffer struct {
	syncWriter
	b bytes.Buffer
}

func newLockedBuffer() *lockedBuffer {
	l := &lockedBuffer{}
	l.w = &l.b
	return l
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startOnTerminal starts the binary with a new pseudo-terminal as its
// controlling terminal and stdin, stdout and stderr: the terminal's ^C
// sends it SIGINT. It returns the terminal's master side and what the
// program writes, collected until it ends.
func startOnTerminal(t *testing.T, bin string, args ...string) (c *exec.Cmd, master *os.File, out *lockedBuffer, copied chan struct{}) {
	master, term := testenv.OpenPTY(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	c = exec.CommandContext(ctx, bin, args...)
	c.Stdin, c.Stdout, c.Stderr = term, term, term
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	term.Close()
	out, copied = newLockedBuffer(), make(chan struct{})
	go func() {
		defer close(copied)
		b := make([]byte, 4096)
		for {
			n, err := master.Read(b)
			out.Write(b[:n])
			if err != nil {
				return // EIO once the terminal's last user is gone
			}
		}
	}()
	return c, master, out, copied
}

// testPutTerminal types a line into put on a terminal, then ^C: put
// stops at once, saying how many messages it put, with status 1.
func testPutTerminal(t *testing.T, bin string) {
	p := prefix(t)
	q, err := mproc.CreateQueue[[]byte](p+"q", 4)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	c, master, out, copied := startOnTerminal(t, bin, "put", p+"q")
	if _, err := master.Write([]byte("typed\n")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a message put", func() bool { return q.Len() == 1 })
	if _, err := master.Write([]byte{3}); err != nil { // ^C
		t.Fatal(err)
	}
	err = c.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitFailure {
		t.Errorf("put stopped by ^C: %v, want exit status 1", err)
	}
	master.SetReadDeadline(time.Now().Add(10 * time.Second))
	<-copied
	if !strings.Contains(out.String(), "mproc: put: interrupted (1 message put)") {
		t.Errorf("put on a terminal wrote %q", out.String())
	}
	if m, err := q.TryGet(); err != nil || string(m) != "typed" {
		t.Errorf("queue holds %q, %v", m, err)
	}
}

// testWatchTerminal runs watch on a pseudo-terminal, as its controlling
// terminal, and stops it with Ctrl-C typed on it.
func testWatchTerminal(t *testing.T, bin string) {
	p := prefix(t)
	q, err := mproc.CreateQueue[[]byte](p+"q", 4)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	c, master, out, copied := startOnTerminal(t, bin, "watch", "--interval", "100ms", p+"q")
	eventually(t, "two frames drawn", func() bool { return strings.Count(out.String(), "mproc watch:") >= 2 })
	if _, err := master.Write([]byte{3}); err != nil { // ^C
		t.Fatal(err)
	}
	err = c.Wait()
	if err != nil {
		t.Errorf("watch stopped by ^C: %v, want exit status 0\n%q", err, out.String())
	}
	master.SetReadDeadline(time.Now().Add(10 * time.Second))
	<-copied
	s := out.String()
	for _, want := range []string{ansiHome, ansiClearLine, ansiClearDown, "Ctrl-C to stop", p + "q", "0/4"} {
		if !strings.Contains(s, want) {
			t.Errorf("watch on a terminal did not write %q:\n%q", want, s)
		}
	}
	if strings.Contains(s, "--- mproc watch") {
		t.Errorf("watch on a terminal wrote plain snapshots:\n%q", s)
	}
}

// testWatchInterrupted sends SIGINT to watch writing to a pipe: plain
// snapshots, and exit status 0.
func testWatchInterrupted(t *testing.T, bin string) {
	p := prefix(t)
	ev, err := mproc.CreateEvent(p + "ev")
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, bin, "watch", "--interval", "100ms", p+"ev")
	out := newLockedBuffer()
	c.Stdout = out
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a snapshot written", func() bool { return strings.Contains(out.String(), p+"ev") })
	if err := c.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := c.Wait(); err != nil {
		t.Errorf("watch after SIGINT: %v, want exit status 0", err)
	}
	s := out.String()
	if !regexp.MustCompile(`(?m)^--- mproc watch: \d\d:\d\d:\d\d, every 100ms \(refresh 1\)\nNAME +KIND +DEPTH +PUT/S +GET/S +WAITING +STATE\n`+p+`ev +event +- +- +- +0 +clear\n`).MatchString(s) || strings.Contains(s, "\x1b") {
		t.Errorf("watch to a pipe wrote:\n%q", s)
	}
}
