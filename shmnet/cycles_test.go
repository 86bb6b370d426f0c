package shmnet_test

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"mproc/shmnet"
)

// cycles is how many connections TestConnectCycles makes and closes.
const cycles = 10_000

// TestConnectCycles makes and closes many connections, each carrying a
// byte each way, and checks that no descriptor and nothing in /dev/shm is
// left behind.
func TestConnectCycles(t *testing.T) {
	ln, err := shmnet.Listen(filepath.Join(t.TempDir(), "s"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	fds, shm := openFDs(t), devShm(t)
	start := time.Now()
	buf := make([]byte, 1)
	for i := range cycles {
		d, a, err := connect(ln, nil)
		if err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
		if _, err := d.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(a, buf); err != nil || buf[0] != byte(i) {
			t.Fatalf("cycle %d: read %v, %v", i, buf, err)
		}
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		if n, err := d.Read(buf); n != 0 || err != io.EOF {
			t.Fatalf("cycle %d: after the peer's Close: %d, %v", i, n, err)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	}
	el := time.Since(start)
	t.Logf("%d connect/close cycles in %v (%v each)", cycles, el, el/cycles)
	got := openFDs(t)
	for deadline := time.Now().Add(time.Second); got != fds && time.Now().Before(deadline); got = openFDs(t) {
		time.Sleep(20 * time.Millisecond) // a background close (a child's reaper) may be late
	}
	if got != fds {
		t.Errorf("%d descriptors open before, %d after", fds, got)
	}
	// Other test processes may come and go in /dev/shm meanwhile: what
	// must not appear is a name this process holds.
	for _, name := range devShm(t) {
		if !slices.Contains(shm, name) && holds(t, "/dev/shm/"+name) {
			t.Errorf("/dev/shm/%s appeared, held by this process", name)
		}
	}
	if m := segmentMappings(t); len(m) > 0 {
		t.Errorf("segments still mapped: %v", m)
	}
}

// openFDs counts this process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// holds reports whether this process has path open or mapped.
func holds(t *testing.T, path string) bool {
	t.Helper()
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		if target, _ := os.Readlink("/proc/self/fd/" + e.Name()); target == path {
			return true
		}
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Contains(string(maps), " "+path)
}

// devShm lists /dev/shm.
func devShm(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir("/dev/shm")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}
