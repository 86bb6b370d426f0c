package shm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"mproc/internal/fd"
)

var seq atomic.Int64

func testName(t *testing.T) string {
	n := fmt.Sprintf("test-%d-%d", os.Getpid(), seq.Add(1))
	t.Cleanup(func() { os.Remove(Path(n)) })
	return n
}

func TestCreateOpenRoundTrip(t *testing.T) {
	name := testName(t)
	s, err := Create(name, KindSharedMemory, 4096, CreateOptions{
		Param: [2]uint64{7, 9},
		Init:  func(d []byte) error { copy(d, "hello"); return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fi, err := os.Stat(Path(name))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	o, err := Open(name, KindSharedMemory, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if got := string(o.Data()[:5]); got != "hello" {
		t.Errorf("data %q", got)
	}
	if len(o.Data()) != 4096 || o.Param(0) != 7 || o.Param(1) != 9 || o.Kind() != KindSharedMemory {
		t.Errorf("len %d params %d %d kind %v", len(o.Data()), o.Param(0), o.Param(1), o.Kind())
	}
	s.Data()[5] = '!'
	if o.Data()[5] != '!' {
		t.Error("a write through one mapping is not visible through the other")
	}
	o.Stats().Puts.Add(3)
	if s.Stats().Puts.Load() != 3 {
		t.Error("stats not shared")
	}
	if info := o.Info(); int(info.Creator.Pid) != os.Getpid() || time.Since(info.Created) > time.Minute {
		t.Errorf("info %+v", info)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
	if _, err := Create(name, KindSharedMemory, 1, CreateOptions{}); !errors.Is(err, os.ErrExist) {
		t.Errorf("Create existing: %v", err)
	}
	if err := Unlink(name); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(name, KindSharedMemory, OpenOptions{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open removed: %v", err)
	}
	if err := Unlink(name); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Unlink removed: %v", err)
	}
}

func TestModeAndKind(t *testing.T) {
	name := testName(t)
	s, err := Create(name, KindQueue, 0, CreateOptions{Mode: 0o640})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fi, _ := os.Stat(Path(name))
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", fi.Mode().Perm())
	}
	if _, err := Open(name, KindLock, OpenOptions{}); !errors.Is(err, ErrKind) {
		t.Errorf("Open as another kind: %v", err)
	}
	if o, err := Open(name, KindAny, OpenOptions{ReadOnly: true}); err != nil {
		t.Errorf("Open KindAny read-only: %v", err)
	} else {
		o.Close()
	}
}

func TestInvalidNames(t *testing.T) {
	for _, n := range []string{"", "../x", "a/b", ".hidden", "a b", "a\x00b", strings.Repeat("x", MaxNameLen+1)} {
		if _, err := Create(n, KindSharedMemory, 1, CreateOptions{}); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Create(%q): %v", n, err)
		}
		if _, err := Open(n, KindSharedMemory, OpenOptions{}); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Open(%q): %v", n, err)
		}
		if err := Unlink(n); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Unlink(%q): %v", n, err)
		}
	}
	if _, err := Create("x", KindSharedMemory, -1, CreateOptions{}); err == nil {
		t.Error("negative size accepted")
	}
}

// validHeader returns a well-formed segment image of kind with data bytes.
func validHeader(t *testing.T, data int) []byte {
	name := testName(t)
	s, err := Create(name, KindSharedMemory, data, CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	img := append([]byte(nil), s.mem...)
	s.Close()
	return img
}

func TestOpenRejectsBadFiles(t *testing.T) {
	good := validHeader(t, 64)
	mutate := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	cases := []struct {
		name string
		img  []byte
		want error
	}{
		{"garbage", []byte(strings.Repeat("not a segment at all ", 30)), ErrCorrupt},
		{"truncated", good[:HeaderSize+10], ErrCorrupt},
		{"short", good[:40], ErrCorrupt},
		{"bad checksum", mutate(func(b []byte) []byte { b[48] ^= 1; return b }), ErrCorrupt},
		{"version", mutate(func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[8:], 99)
			h := At[header](b, 0)
			h.Checksum = h.checksum()
			return b
		}), ErrVersion},
		{"foreign magic", mutate(func(b []byte) []byte { copy(b, "SQLite f"); return b }), ErrCorrupt},
		{"empty", nil, ErrCorrupt},
		{"never initialised", make([]byte, 4096), ErrCorrupt},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			name := testName(t)
			if err := os.WriteFile(Path(name), c.img, 0o600); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			s, err := Open(name, KindSharedMemory, OpenOptions{})
			if err == nil {
				s.Close()
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("Open: %v, want %v", err, c.want)
			}
			if d := time.Since(start); d > 3*InitWait {
				t.Errorf("took %v", d)
			}
		})
	}
}

func TestOpenRejectsNonFiles(t *testing.T) {
	target := testName(t)
	s, err := Create(target, KindSharedMemory, 8, CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	link := testName(t)
	if err := os.Symlink(Path(target), Path(link)); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(link, KindSharedMemory, OpenOptions{}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("symlink: %v", err)
	}
	if _, err := Create(link, KindSharedMemory, 8, CreateOptions{}); !errors.Is(err, os.ErrExist) {
		t.Errorf("create over symlink: %v", err)
	}
	fifo := testName(t)
	if err := syscall.Mkfifo(Path(fifo), 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := Open(fifo, KindSharedMemory, OpenOptions{}); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("fifo: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Open of a FIFO hangs")
	}
	dir := testName(t)
	if err := os.Mkdir(Path(dir), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, KindSharedMemory, OpenOptions{}); err == nil {
		t.Error("directory opened as a segment")
	}
}

// TestOpenWaitsForInitialisation opens a segment whose creator publishes it
// after a delay shorter than InitWait.
func TestOpenWaitsForInitialisation(t *testing.T) {
	name := testName(t)
	release := make(chan struct{})
	created := make(chan error, 1)
	go func() {
		s, err := Create(name, KindSharedMemory, 16, CreateOptions{Init: func([]byte) error {
			<-release
			return nil
		}})
		if err == nil {
			defer s.Close()
		}
		created <- err
	}()
	for {
		if _, err := os.Stat(Path(name)); err == nil {
			break
		}
		time.Sleep(time.Millisecond)
	}
	time.AfterFunc(100*time.Millisecond, func() { close(release) })
	o, err := Open(name, KindSharedMemory, OpenOptions{})
	if err != nil {
		t.Fatalf("Open during initialisation: %v", err)
	}
	o.Close()
	if err := <-created; err != nil {
		t.Fatal(err)
	}
}

func TestAnonymous(t *testing.T) {
	s, err := NewAnonymous(KindSharedMemory, 1000, CreateOptions{Init: func(d []byte) error { d[0] = 42; return nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Name() != "" {
		t.Errorf("name %q", s.Name())
	}
	dup, err := s.FD().Dup()
	if err != nil {
		t.Fatal(err)
	}
	o, err := FromFD(dup, KindSharedMemory)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if o.Data()[0] != 42 {
		t.Error("data not shared")
	}
	if err := syscall.Ftruncate(s.FD().Int(), 10); err == nil {
		t.Error("an anonymous segment can be truncated")
	}
	dup2, _ := s.FD().Dup()
	if _, err := FromFD(dup2, KindQueue); !errors.Is(err, ErrKind) {
		t.Errorf("FromFD wrong kind: %v", err)
	}
	if dup2.Int() != -1 {
		t.Error("FromFD did not close the fd on error")
	}
	if _, err := fd.New(-1); err == nil {
		t.Error("fd.New(-1) succeeded")
	}
}
