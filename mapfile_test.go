package mproc_test

import (
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"testing"

	"mproc"
	"mproc/internal/testenv"
)

var (
	_ io.ReaderAt = (*mproc.MapFile)(nil)
	_ io.WriterAt = (*mproc.MapFile)(nil)
)

var page = os.Getpagesize()

// writeFile creates a file in a test directory holding content.
func writeFile(t *testing.T, content []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "data")
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// pattern returns n bytes that differ from page to page and byte to byte.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/page)
	}
	return b
}

// guardedByte reads b[i] the way the MapFile documentation tells callers
// of Bytes to guard against a truncated file.
func guardedByte(b []byte, i int) (v byte, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(interface{ Addr() uintptr }); !ok {
				panic(r)
			}
			err = fmt.Errorf("byte %d: %v: %w", i, r, mproc.ErrFileTruncated)
		}
	}()
	return b[i], nil
}

// guardedStore is guardedByte for a store.
func guardedStore(b []byte, i int, v byte) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(interface{ Addr() uintptr }); !ok {
				panic(r)
			}
			err = fmt.Errorf("byte %d: %v", i, r)
		}
	}()
	b[i] = v
	return nil
}

func TestMapFileReadWrite(t *testing.T) {
	testenv.CheckFDLeaks(t)
	path := filepath.Join(t.TempDir(), "rw")
	m, err := mproc.CreateMapFile(path, int64(3*page))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Size() != 3*page || len(m.Bytes()) != 3*page || m.Path() != path {
		t.Fatalf("Size %d, len(Bytes) %d, Path %q", m.Size(), len(m.Bytes()), m.Path())
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() != int64(3*page) || fi.Mode().Perm()&0o077 != 0 {
		t.Fatalf("created file: %v, %v", fi, err)
	}
	if !bytes.Equal(m.Bytes(), make([]byte, 3*page)) {
		t.Fatal("a new map file is not zeroed")
	}

	// Across a page boundary, through WriteAt and through Bytes.
	if n, err := m.WriteAt([]byte("written at"), int64(page-5)); n != 10 || err != nil {
		t.Fatalf("WriteAt: %d, %v", n, err)
	}
	copy(m.Bytes()[2*page:], "direct")
	if err := m.Sync(); err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 3*page)
	copy(want[page-5:], "written at")
	copy(want[2*page:], "direct")
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("file after Sync differs from what was written")
	}
	buf := make([]byte, 10)
	if n, err := m.ReadAt(buf, int64(page-5)); n != 10 || err != nil || string(buf) != "written at" {
		t.Fatalf("ReadAt: %d, %v, %q", n, err, buf)
	}
	// The whole mapping through io.SectionReader, which relies on ReadAt's
	// io.EOF at the end.
	all, err := io.ReadAll(io.NewSectionReader(m, 0, 1<<30))
	if err != nil || !bytes.Equal(all, want) {
		t.Fatalf("ReadAll over ReadAt: %d bytes, %v", len(all), err)
	}

	// A second mapping of the same file, in read-write mode, shares the
	// memory: no Sync is needed to see each other's writes.
	o, err := mproc.OpenMapFile(path, mproc.MapReadWrite)
	if err != nil {
		t.Fatal(err)
	}
	if o.Size() != 3*page || !bytes.Equal(o.Bytes(), want) {
		t.Fatal("reopened map differs")
	}
	copy(o.Bytes()[7:], "shared")
	if string(m.Bytes()[7:13]) != "shared" {
		t.Fatal("two mappings of one file do not share memory")
	}
	// Close does not lose writes: they are in the page cache.
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(path); err != nil || string(got[7:13]) != "shared" {
		t.Fatalf("write through Bytes not in the file after Close: %v", err)
	}
}

func TestMapFileReadOnly(t *testing.T) {
	testenv.CheckFDLeaks(t)
	content := pattern(2*page + 100) // not a whole number of pages
	path := writeFile(t, content)
	m, err := mproc.OpenMapFile(path, mproc.MapReadOnly)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Size() != len(content) || !bytes.Equal(m.Bytes(), content) {
		t.Fatalf("read-only map: size %d, content equal %v", m.Size(), bytes.Equal(m.Bytes(), content))
	}
	n, err := m.WriteAt([]byte("x"), 0)
	if n != 0 || !errors.Is(err, os.ErrPermission) || !strings.Contains(err.Error(), "read-only") || !strings.Contains(err.Error(), path) {
		t.Fatalf("WriteAt on a read-only map: %d, %v", n, err)
	}
	if err := m.Sync(); err != nil {
		t.Fatalf("Sync on a read-only map: %v", err)
	}
	buf := make([]byte, 300)
	if n, err := m.ReadAt(buf, int64(2*page-200)); n != 300 || err != nil || !bytes.Equal(buf, content[2*page-200:2*page+100]) {
		t.Fatalf("ReadAt: %d, %v", n, err)
	}
	// The memory itself is read-only: a store faults (shown under the
	// guard, which must restore SetPanicOnFault's previous setting).
	if err := guardedStore(m.Bytes(), 0, 'x'); err == nil {
		t.Fatal("a store into a read-only map did not fault")
	}
	if debug.SetPanicOnFault(false) {
		t.Fatal("the guard left SetPanicOnFault on")
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, content) {
		t.Fatal("the file changed under a read-only map")
	}
}

func TestMapFileTruncated(t *testing.T) {
	testenv.CheckFDLeaks(t)
	path := writeFile(t, pattern(3*page))
	m, err := mproc.OpenMapFile(path, mproc.MapReadWrite)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	b := m.Bytes()
	if err := os.Truncate(path, int64(page)); err != nil {
		t.Fatal(err)
	}

	buf := make([]byte, 16)
	n, err := m.ReadAt(buf, int64(2*page))
	if n != 0 || !errors.Is(err, mproc.ErrFileTruncated) {
		t.Fatalf("ReadAt past the new end: %d, %v", n, err)
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("now %d bytes", page)) {
		t.Errorf("the error does not give the new size: %v", err)
	}
	t.Logf("ReadAt: %v", err)
	n, err = m.WriteAt([]byte("lost"), int64(2*page))
	if n != 0 || !errors.Is(err, mproc.ErrFileTruncated) {
		t.Fatalf("WriteAt past the new end: %d, %v", n, err)
	}
	// A range across the new end yields what still has a file behind it.
	all := make([]byte, 3*page)
	n, err = m.ReadAt(all, 0)
	if n != page || !errors.Is(err, mproc.ErrFileTruncated) || !bytes.Equal(all[:page], pattern(page)) {
		t.Fatalf("ReadAt across the new end: %d, %v", n, err)
	}
	n, err = m.WriteAt(bytes.Repeat([]byte{'w'}, 2*page), 0)
	if n != page || !errors.Is(err, mproc.ErrFileTruncated) {
		t.Fatalf("WriteAt across the new end: %d, %v", n, err)
	}
	// The surviving page still works, through every path.
	if n, err := m.ReadAt(buf, 10); n != 16 || err != nil || !bytes.Equal(buf, bytes.Repeat([]byte{'w'}, 16)) {
		t.Fatalf("ReadAt within the new end: %d, %v, %q", n, err, buf)
	}
	if v, err := guardedByte(b, 5); err != nil || v != 'w' {
		t.Fatalf("guarded Bytes within the new end: %q, %v", v, err)
	}
	// Direct access past the new end, under the documented guard, recovers.
	if _, err := guardedByte(b, 2*page+1); !errors.Is(err, mproc.ErrFileTruncated) {
		t.Fatalf("guarded Bytes past the new end: %v", err)
	}
	if debug.SetPanicOnFault(false) {
		t.Fatal("SetPanicOnFault left on")
	}
	if err := m.Sync(); err != nil {
		t.Fatalf("Sync of a truncated map: %v", err)
	}
	// Growing the file back makes the pages usable again (zeroed).
	if err := os.Truncate(path, int64(3*page)); err != nil {
		t.Fatal(err)
	}
	if n, err := m.ReadAt(buf, int64(2*page)); n != 16 || err != nil || !bytes.Equal(buf, make([]byte, 16)) {
		t.Fatalf("ReadAt after regrowth: %d, %v, %q", n, err, buf)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	// Opening a truncated file maps what is there.
	if err := os.Truncate(path, 1); err != nil {
		t.Fatal(err)
	}
	o, err := mproc.OpenMapFile(path, mproc.MapReadOnly)
	if err != nil {
		t.Fatal(err)
	}
	if o.Size() != 1 || o.Bytes()[0] != 'w' {
		t.Fatalf("size %d", o.Size())
	}
	o.Close()
}

type touchArg struct {
	Path string
	Off  int
}

// mapfileTouchFn maps Path, truncates it to one page and touches Bytes at
// Off without a guard: past the new end, that must crash the process.
var mapfileTouchFn = mproc.Register("mapfile-touch", func(ctx context.Context, a touchArg) error {
	m, err := mproc.OpenMapFile(a.Path, mproc.MapReadOnly)
	if err != nil {
		return err
	}
	defer m.Close()
	b := m.Bytes()
	if err := os.Truncate(a.Path, int64(os.Getpagesize())); err != nil {
		return err
	}
	fmt.Println("byte", b[a.Off])
	return nil
})

// TestMapFileUnguardedBytesCrash proves the documented policy: unguarded
// access through Bytes past the end of a truncated file kills the process.
func TestMapFileUnguardedBytesCrash(t *testing.T) {
	path := writeFile(t, pattern(3*page))
	var stderr bytes.Buffer
	p := start(t, mapfileTouchFn, touchArg{Path: path, Off: 2 * page}, mproc.ProcOptions{Stdout: io.Discard, Stderr: &stderr})
	err := wait(t, p)
	var ee *mproc.ExitError
	if !errors.As(err, &ee) || !strings.Contains(stderr.String(), "SIGBUS") {
		t.Fatalf("unguarded access past the end: %v\n%s", err, stderr.String())
	}
	// The same access within the remaining page is fine.
	if err := os.WriteFile(path, pattern(3*page), 0o600); err != nil {
		t.Fatal(err)
	}
	stderr.Reset()
	if err := wait(t, start(t, mapfileTouchFn, touchArg{Path: path, Off: 100}, mproc.ProcOptions{Stdout: io.Discard, Stderr: &stderr})); err != nil {
		t.Fatalf("access within the end: %v\n%s", err, stderr.String())
	}
}

type mapFileArg struct {
	RW, RO *mproc.MapFile
	Nil    *mproc.MapFile
	Off    int64
	Text   string
	Expect []byte // RO's content
}

// mapfileWriteFn checks the maps arrived with their modes and paths, and
// writes Text at Off into RW, through WriteAt and through Bytes.
var mapfileWriteFn = mproc.Register("mapfile-write", func(ctx context.Context, a mapFileArg) error {
	if a.Nil != nil {
		return errors.New("nil map arrived non-nil")
	}
	if a.RW == nil || a.RO == nil {
		return errors.New("a map arrived nil")
	}
	defer a.RW.Close()
	defer a.RO.Close()
	if !strings.HasSuffix(a.RW.Path(), "/rw") || !strings.HasSuffix(a.RO.Path(), "/ro") {
		return fmt.Errorf("paths %q and %q", a.RW.Path(), a.RO.Path())
	}
	if !bytes.Equal(a.RO.Bytes(), a.Expect) {
		return errors.New("read-only map: wrong content")
	}
	if _, err := a.RO.WriteAt([]byte("x"), 0); !errors.Is(err, os.ErrPermission) {
		return fmt.Errorf("read-only map arrived writable: %v", err)
	}
	if _, err := a.RW.WriteAt([]byte(a.Text), a.Off); err != nil {
		return err
	}
	copy(a.RW.Bytes()[a.Off+int64(len(a.Text)):], strings.ToUpper(a.Text))
	return a.RW.Sync()
})

func TestMapFileTravelsToChild(t *testing.T) {
	testenv.CheckFDLeaks(t)
	dir := t.TempDir()
	rw, err := mproc.CreateMapFile(filepath.Join(dir, "rw"), int64(2*page))
	if err != nil {
		t.Fatal(err)
	}
	defer rw.Close()
	content := pattern(1000)
	roPath := filepath.Join(dir, "ro")
	if err := os.WriteFile(roPath, content, 0o600); err != nil {
		t.Fatal(err)
	}
	ro, err := mproc.OpenMapFile(roPath, mproc.MapReadOnly)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()

	off := int64(page - 3)
	p := start(t, mapfileWriteFn, mapFileArg{RW: rw, RO: ro, Off: off, Text: "from the child", Expect: content}, mproc.ProcOptions{})
	if err := wait(t, p); err != nil {
		t.Fatal(err)
	}
	want := "from the childFROM THE CHILD"
	if got := string(rw.Bytes()[off : off+28]); got != want {
		t.Fatalf("parent's mapping holds %q", got)
	}
	file, err := os.ReadFile(rw.Path())
	if err != nil || string(file[off:off+28]) != want {
		t.Fatalf("file holds %q, %v", file[off:off+28], err)
	}
	// The parent's handles are untouched by the child's Close.
	if _, err := rw.WriteAt([]byte("again"), 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ro.Bytes(), content) {
		t.Fatal("read-only map changed")
	}

	// A closed map cannot be passed.
	ro.Close()
	if _, err := mapfileWriteFn.Start(context.Background(), mapFileArg{RW: rw, RO: ro}, mproc.ProcOptions{}); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Start with a closed map: %v", err)
	}
}

func TestMapFileGobOutsideStart(t *testing.T) {
	m, err := mproc.CreateMapFile(filepath.Join(t.TempDir(), "f"), 10)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := gob.NewEncoder(io.Discard).Encode(mapFileArg{RW: m}); !errors.Is(err, mproc.ErrNotHandle) {
		t.Fatalf("gob outside Start: %v", err)
	}
}

func TestMapFileBadInputs(t *testing.T) {
	testenv.CheckFDLeaks(t)
	dir := t.TempDir()
	modes := []mproc.MapMode{mproc.MapReadOnly, mproc.MapReadWrite}
	for _, mode := range modes {
		if _, err := mproc.OpenMapFile(filepath.Join(dir, "missing"), mode); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("missing file, %v: %v", mode, err)
		}
		if m, err := mproc.OpenMapFile(dir, mode); err == nil || m != nil || !strings.Contains(err.Error(), "directory") {
			t.Errorf("directory, %v: %v", mode, err)
		}
		empty := filepath.Join(dir, "empty")
		if err := os.WriteFile(empty, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if m, err := mproc.OpenMapFile(empty, mode); err == nil || m != nil || !strings.Contains(err.Error(), "empty") {
			t.Errorf("empty file, %v: %v", mode, err)
		}
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := mproc.OpenMapFile(fifo, mproc.MapReadOnly); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("FIFO: %v", err) // and it did not block
	}
	if _, err := mproc.OpenMapFile(writeFile(t, []byte("x")), mproc.MapMode(7)); err == nil || !strings.Contains(err.Error(), "mode") {
		t.Errorf("invalid mode: %v", err)
	}

	// CreateMapFile never reuses a file, and leaves none behind on error.
	existing := writeFile(t, []byte("keep me"))
	if _, err := mproc.CreateMapFile(existing, 10); !errors.Is(err, os.ErrExist) {
		t.Errorf("create over an existing file: %v", err)
	}
	if got, _ := os.ReadFile(existing); string(got) != "keep me" {
		t.Errorf("create over an existing file changed it to %q", got)
	}
	for _, size := range []int64{0, -1} {
		p := filepath.Join(dir, fmt.Sprint("size", size))
		if _, err := mproc.CreateMapFile(p, size); err == nil {
			t.Errorf("CreateMapFile size %d succeeded", size)
		}
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("CreateMapFile size %d left a file: %v", size, err)
		}
	}
	if _, err := mproc.CreateMapFile(filepath.Join(dir, "no", "such", "dir"), 10); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("create in a missing directory: %v", err)
	}

	// Offsets, as os.File treats them.
	m, err := mproc.CreateMapFile(filepath.Join(dir, "ten"), 10)
	if err != nil {
		t.Fatal(err)
	}
	copy(m.Bytes(), "0123456789")
	buf := make([]byte, 4)
	for _, c := range []struct {
		off  int64
		n    int
		err  error
		data string
	}{
		{0, 4, nil, "0123"},
		{6, 4, nil, "6789"},
		{8, 2, io.EOF, "89"},
		{10, 0, io.EOF, ""},
		{11, 0, io.EOF, ""},
		{1 << 62, 0, io.EOF, ""},
	} {
		clear(buf)
		n, err := m.ReadAt(buf, c.off)
		if n != c.n || err != c.err || string(buf[:n]) != c.data {
			t.Errorf("ReadAt(off %d) = %d, %v, %q; want %d, %v, %q", c.off, n, err, buf[:n], c.n, c.err, c.data)
		}
	}
	if n, err := m.ReadAt(buf, -1); n != 0 || err == nil || !strings.Contains(err.Error(), "negative offset") {
		t.Errorf("ReadAt(-1): %d, %v", n, err)
	}
	if n, err := m.WriteAt(buf, -1); n != 0 || err == nil || !strings.Contains(err.Error(), "negative offset") {
		t.Errorf("WriteAt(-1): %d, %v", n, err)
	}
	for _, off := range []int64{7, 10, 11, 1 << 62} {
		if n, err := m.WriteAt([]byte("abcd"), off); n != 0 || err == nil || !strings.Contains(err.Error(), "do not fit") {
			t.Errorf("WriteAt(off %d) past the end: %d, %v", off, n, err)
		}
	}
	if string(m.Bytes()) != "0123456789" {
		t.Errorf("a failed WriteAt wrote: %q", m.Bytes())
	}
	if n, err := m.WriteAt([]byte("ab"), 8); n != 2 || err != nil || string(m.Bytes()) != "01234567ab" {
		t.Errorf("WriteAt at the very end: %d, %v, %q", n, err, m.Bytes())
	}

	// A closed handle.
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
	if _, err := m.ReadAt(buf, 0); !errors.Is(err, os.ErrClosed) {
		t.Errorf("ReadAt after Close: %v", err)
	}
	if _, err := m.WriteAt(buf, 0); !errors.Is(err, os.ErrClosed) {
		t.Errorf("WriteAt after Close: %v", err)
	}
	if err := m.Sync(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Sync after Close: %v", err)
	}
	if m.Bytes() != nil || m.Size() != 0 || m.Path() != filepath.Join(dir, "ten") {
		t.Errorf("after Close: Bytes %v, Size %d, Path %q", m.Bytes(), m.Size(), m.Path())
	}
}

// TestMapFileConcurrentClose races ReadAt, WriteAt and Sync against Close:
// each must either work or report os.ErrClosed, never fault.
func TestMapFileConcurrentClose(t *testing.T) {
	for range 20 {
		m, err := mproc.CreateMapFile(filepath.Join(t.TempDir(), "f"), int64(page))
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				buf := []byte{byte(g)}
				for i := 0; ; i++ {
					var err error
					switch i % 3 {
					case 0:
						_, err = m.WriteAt(buf, int64(g))
					case 1:
						_, err = m.ReadAt(buf, int64(g))
					case 2:
						err = m.Sync()
					}
					if errors.Is(err, os.ErrClosed) {
						return
					}
					if err != nil {
						t.Errorf("goroutine %d: %v", g, err)
						return
					}
				}
			})
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
	}
}
