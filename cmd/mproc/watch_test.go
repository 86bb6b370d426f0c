package main

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"mproc"
)

// TestWatchCount runs watch in plain mode for three refreshes while a
// goroutine keeps a queue busy: three snapshots, rates from the second on.
func TestWatchCount(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	p := prefix(t)
	q, err := mproc.CreateQueue[[]byte](p+"q", 64, mproc.WithMaxMessage(16))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	l, err := mproc.CreateLock(p + "l")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Lock()
	busy := make(chan struct{})
	go func() {
		defer close(busy)
		for ctx.Err() == nil {
			if q.Put(ctx, []byte("m")) != nil {
				return
			}
			if _, err := q.Get(ctx); err != nil {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	out := mustCLI(t, "watch", "--count", "3", "--interval", "300ms", p+"q", p+"l")
	cancel()
	<-busy
	if strings.Contains(out, "\x1b") {
		t.Errorf("watch to a buffer wrote ANSI sequences:\n%q", out)
	}
	frames := regexp.MustCompile(`(?m)^--- mproc watch: \d\d:\d\d:\d\d, every 300ms \(refresh (\d)\)$`).FindAllStringSubmatch(out, -1)
	if len(frames) != 3 || frames[2][1] != "3" {
		t.Fatalf("watch --count 3 wrote %d snapshots:\n%s", len(frames), out)
	}
	rows := regexp.MustCompile(`(?m)^`+p+`q +queue +\d+/64 +(\S+) +(\S+) +\d+ put, \d+ get +\d+/64 messages$`).FindAllStringSubmatch(out, -1)
	if len(rows) != 3 || rows[0][1] != "-" || rows[0][2] != "-" {
		t.Fatalf("queue rows:\n%s", out)
	}
	moved := false
	for _, r := range rows[1:] {
		puts, err1 := strconv.ParseFloat(r[1], 64)
		gets, err2 := strconv.ParseFloat(r[2], 64)
		if err1 != nil || err2 != nil {
			t.Errorf("rates %q %q are not numbers", r[1], r[2])
		}
		moved = moved || puts > 0 && gets > 0
	}
	if !moved {
		t.Errorf("no puts or gets seen in a busy queue:\n%s", out)
	}
	if n := len(regexp.MustCompile(`(?m)^`+p+`l +lock +- +- +- +0 +held by pid \d+$`).FindAllString(out, -1)); n != 3 {
		t.Errorf("%d lock rows, want 3:\n%s", n, out)
	}
}

// TestWatchAll: with no names, watch shows every object, and an object
// removed meanwhile goes; a named one shows as removed.
func TestWatchAll(t *testing.T) {
	p := prefix(t)
	ev, err := mproc.CreateEvent(p + "ev")
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	out := mustCLI(t, "watch", "--count", "1")
	if !regexp.MustCompile(`(?m)^` + p + `ev +event +- +- +- +0 +clear$`).MatchString(out) {
		t.Errorf("watch of every object lacks the test's event:\n%s", out)
	}
	w := &watcher{names: []string{p + "ev"}, interval: time.Second, prev: map[string]sample{}}
	if err := ev.Remove(); err != nil {
		t.Fatal(err)
	}
	if f := string(w.frame(time.Now())); !regexp.MustCompile(`(?m)^` + p + `ev +- +- +- +- +- +removed$`).MatchString(f) {
		t.Errorf("watch of a removed object:\n%s", f)
	}
}
