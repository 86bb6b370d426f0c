//go:build mprocfail

package failpoint

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"mproc/internal/unix"
)

// Enabled reports whether this build has failpoints.
const Enabled = true

// Env is the variable Hit reads its configuration from.
const Env = "MPROC_FAILPOINT"

type point struct {
	sig  unix.Signal
	at   int64 // act on this hit only; 0: every hit
	hits atomic.Int64
}

var (
	once   sync.Once
	points map[string]*point
)

func load() {
	points = map[string]*point{}
	for _, item := range strings.Split(os.Getenv(Env), ",") {
		name, action, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok || name == "" {
			continue
		}
		action, at, _ := strings.Cut(action, "@")
		p := &point{}
		switch action {
		case "kill":
			p.sig = unix.SIGKILL
		case "stop":
			p.sig = unix.SIGSTOP
		default:
			continue
		}
		if at != "" {
			n, err := strconv.ParseInt(at, 10, 64)
			if err != nil || n < 1 {
				continue
			}
			p.at = n
		}
		points[name] = p
	}
}

// Hit marks the failpoint name: if this process's configuration names it,
// it acts (see the package documentation).
func Hit(name string) {
	once.Do(load)
	p := points[name]
	if p == nil {
		return
	}
	if n := p.hits.Add(1); p.at != 0 && n != p.at {
		return
	}
	// To this thread, which must then take it: a signal to the process
	// may be taken by another thread while this one runs on past the
	// point for a few microseconds.
	runtime.LockOSThread()
	unix.Tgkill(unix.Getpid(), unix.Gettid(), p.sig)
	runtime.UnlockOSThread()
}
