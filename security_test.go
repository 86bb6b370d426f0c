package mproc_test

// Issue 18's security properties, one table-driven test per property over
// every kind of named object the root package creates (namedKinds), so that
// a kind added without the property fails a test, and a kind added without
// a row fails TestSecurityKindsCovered:
//
//	TestSecurityModes               created 0600, owned by the creator; uid 65534 refused
//	TestSecurityNoSymlinks          a symbolic link at the path is never followed
//	TestSecurityNames               a bad name never escapes /dev/shm, nor creates anything
//	TestSecurityAuthkey             wrong keys refused both ways; handshake reads capped
//	TestSecurityFrameLimit          an oversized frame refused before it is allocated
//	TestSecurityPickleNeverExecutes Conn.Recv with pickle.Codec refuses code

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"mproc"
	"mproc/internal/shm"
	"mproc/internal/testenv"
	"mproc/internal/wire"
	"mproc/pickle"
	"mproc/posixmq"
	"mproc/shmnet"
)

// nobody is the unrelated user of the permission tests.
const nobody = 65534

// secKey is the authkey of the sockets of these tests.
var secKey = []byte("issue-18 authkey: 32 bytes long!")

var secSeq atomic.Int64

// secName returns a fresh segment name, whose file is removed when t ends.
func secName(t testing.TB) string {
	name := fmt.Sprintf("test-sec-%d-%d", os.Getpid(), secSeq.Add(1))
	t.Cleanup(func() { os.Remove(shm.Path(name)) })
	return name
}

// openDir returns a new directory that every user may enter (0755, unlike
// t.TempDir's 0700 parents), so that only an object's own mode stands
// between uid 65534 and the object's file. It is removed when t ends.
func openDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "mproc-sec-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// errPartial marks an open that failed and still returned a handle.
var errPartial = errors.New("a handle returned with the error: a partial open")

// handle turns a constructor's result into an io.Closer; a non-nil handle
// returned with an error is closed and reported as errPartial.
func handle[H io.Closer](h H, err error) (io.Closer, error) {
	if err != nil {
		if v := reflect.ValueOf(h); v.IsValid() && (v.Kind() != reflect.Pointer || !v.IsNil()) {
			h.Close()
			return nil, errors.Join(err, errPartial)
		}
		return nil, err
	}
	return h, nil
}

// closers closes each of its members.
type closers []io.Closer

func (cs closers) Close() error {
	var errs []error
	for _, c := range cs {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// withLock creates or opens a Cond over a new anonymous Lock.
func withLock(f func(name string, l *mproc.Lock) (*mproc.Cond, error)) func(string) (io.Closer, error) {
	return func(name string) (io.Closer, error) {
		l, err := mproc.NewLock()
		if err != nil {
			return nil, err
		}
		c, err := handle(f(name, l))
		if err != nil {
			l.Close()
			return nil, err
		}
		return closers{c, l}, nil
	}
}

// A namedKind is one kind of object that processes reach by name: its
// Create and Open constructors (or Listen and Dial), over one name each.
type namedKind struct {
	kind string // "Queue" for CreateQueue and OpenQueue
	// file: the name is a path the caller picks (MapFile, a Unix socket),
	// not a segment name in /dev/shm.
	file   bool
	create func(name string) (io.Closer, error)
	open   func(ctx context.Context, name string) (io.Closer, error)
}

// path returns the file that holds the object named name.
func (k namedKind) path(name string) string {
	if k.file {
		return name
	}
	return shm.Path(name)
}

// newName returns a name for a new object of k, cleaned up when t ends:
// files go in dir.
func (k namedKind) newName(t testing.TB, dir string) string {
	if k.file {
		return filepath.Join(dir, fmt.Sprintf("%s-%d", strings.ToLower(strings.ReplaceAll(k.kind, ".", "-")), secSeq.Add(1)))
	}
	return secName(t)
}

// openNamed is the open of a segment kind, which takes no context.
func openNamed[H io.Closer](f func(string) (H, error)) func(context.Context, string) (io.Closer, error) {
	return func(_ context.Context, name string) (io.Closer, error) { return handle(f(name)) }
}

// namedKinds are every kind of named object of the root package, and the
// Unix sockets of Listen and shmnet.Listen.
var namedKinds = []namedKind{
	{kind: "SharedMemory",
		create: func(n string) (io.Closer, error) { return handle(mproc.CreateSharedMemory(n, 4096)) },
		open:   openNamed(mproc.OpenSharedMemory)},
	{kind: "Queue",
		create: func(n string) (io.Closer, error) { return handle(mproc.CreateQueue[int64](n, 4)) },
		open:   openNamed(func(n string) (*mproc.Queue[int64], error) { return mproc.OpenQueue[int64](n) })},
	{kind: "JoinableQueue",
		create: func(n string) (io.Closer, error) { return handle(mproc.CreateJoinableQueue[int64](n, 4)) },
		open:   openNamed(func(n string) (*mproc.JoinableQueue[int64], error) { return mproc.OpenJoinableQueue[int64](n) })},
	{kind: "LIFOQueue",
		create: func(n string) (io.Closer, error) { return handle(mproc.CreateLIFOQueue[int64](n, 4)) },
		open:   openNamed(func(n string) (*mproc.LIFOQueue[int64], error) { return mproc.OpenLIFOQueue[int64](n) })},
	{kind: "PriorityQueue",
		create: func(n string) (io.Closer, error) { return handle(mproc.CreatePriorityQueue[int64](n, 4)) },
		open:   openNamed(func(n string) (*mproc.PriorityQueue[int64], error) { return mproc.OpenPriorityQueue[int64](n) })},
	{kind: "Lock",
		create: func(n string) (io.Closer, error) { return handle(mproc.CreateLock(n)) },
		open:   openNamed(mproc.OpenLock)},
	{kind: "RLock",
		create: func(n string) (io.Closer, error) { return handle(mproc.CreateRLock(n)) },
		open:   openNamed(mproc.OpenRLock)},
	{kind: "RWMutex",
		create: func(n string) (io.Closer, error) { return handle(mproc.CreateRWMutex(n)) },
		open:   openNamed(mproc.OpenRWMutex)},
	{kind: "Semaphore",
		create: func(n string) (io.Closer, error) { return handle(mproc.CreateSemaphore(n, 1)) },
		open:   openNamed(mproc.OpenSemaphore)},
	{kind: "BoundedSemaphore",
		create: func(n string) (io.Closer, error) { return handle(mproc.CreateBoundedSemaphore(n, 1)) },
		open:   openNamed(mproc.OpenBoundedSemaphore)},
	{kind: "Event",
		create: func(n string) (io.Closer, error) { return handle(mproc.CreateEvent(n)) },
		open:   openNamed(mproc.OpenEvent)},
	{kind: "Cond",
		create: withLock(mproc.CreateCond),
		open: func(_ context.Context, n string) (io.Closer, error) {
			return withLock(mproc.OpenCond)(n)
		}},
	{kind: "Barrier",
		create: func(n string) (io.Closer, error) { return handle(mproc.CreateBarrier(n, 2)) },
		open:   openNamed(mproc.OpenBarrier)},
	{kind: "Value",
		create: func(n string) (io.Closer, error) { return handle(mproc.CreateValue[int64](n, 7)) },
		open:   openNamed(func(n string) (*mproc.Value[int64], error) { return mproc.OpenValue[int64](n) })},
	{kind: "Array",
		create: func(n string) (io.Closer, error) { return handle(mproc.CreateArray[int64](n, 4)) },
		open:   openNamed(func(n string) (*mproc.Array[int64], error) { return mproc.OpenArray[int64](n) })},
	{kind: "MapFile", file: true,
		create: func(p string) (io.Closer, error) { return handle(mproc.CreateMapFile(p, 4096)) },
		open: func(_ context.Context, p string) (io.Closer, error) {
			return handle(mproc.OpenMapFile(p, mproc.MapReadWrite))
		}},
	{kind: "Listen", file: true,
		create: func(p string) (io.Closer, error) {
			return handle(mproc.Listen("unix", p, secKey, mproc.ListenOptions{}))
		},
		open: func(ctx context.Context, p string) (io.Closer, error) {
			return handle(mproc.Dial(ctx, "unix", p, secKey))
		}},
	{kind: "shmnet.Listen", file: true,
		create: func(p string) (io.Closer, error) { return handle(shmnet.Listen(p, &shmnet.Options{Key: secKey})) },
		open: func(ctx context.Context, p string) (io.Closer, error) {
			return handle(shmnet.Dial(ctx, p, &shmnet.Options{Key: secKey}))
		}},
}

func lookupKind(kind string) (namedKind, bool) {
	for _, k := range namedKinds {
		if k.kind == kind {
			return k, true
		}
	}
	return namedKind{}, false
}

// TestSecurityKindsCovered holds namedKinds to the package: every exported
// Create*/Open* constructor and Listen of the root package has a row, and
// the rows create every segment kind of internal/shm. A new kind without a
// row fails here, so that the tests below cover it.
func TestSecurityKindsCovered(t *testing.T) {
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, ".", func(fi os.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range pkgs["mproc"].Files {
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Recv != nil || !fn.Name.IsExported() {
				continue
			}
			name := fn.Name.Name
			kind, ok := strings.CutPrefix(name, "Create")
			if !ok {
				kind, ok = strings.CutPrefix(name, "Open")
			}
			if name == "Listen" {
				kind, ok = name, true
			}
			if ok {
				if _, found := lookupKind(kind); !found {
					t.Errorf("%s has no row in namedKinds: its object kind %q is not covered by the security tests", name, kind)
				}
			}
		}
	}

	want := map[shm.Kind]bool{}
	for k := shm.Kind(1); !strings.HasPrefix(k.String(), "kind("); k++ {
		want[k] = true
	}
	for _, k := range namedKinds {
		if k.file {
			continue
		}
		name := secName(t)
		h, err := k.create(name)
		if err != nil {
			t.Fatalf("Create%s: %v", k.kind, err)
		}
		in, err := shm.Inspect(name)
		h.Close()
		if err != nil {
			t.Fatalf("inspect the %s: %v", k.kind, err)
		}
		if in.Err != nil {
			t.Fatalf("inspect the %s: %v", k.kind, in.Err)
		}
		delete(want, in.Info.Kind)
		if in.Type != k.kind {
			t.Errorf("Create%s made a segment of type %q", k.kind, in.Type)
		}
	}
	for k := range want {
		t.Errorf("no row of namedKinds creates a segment of kind %v", k)
	}
}

// openResult is what the child of TestSecurityModes saw opening one object.
type openResult struct {
	Err        string
	Permission bool // the error wraps os.ErrPermission
	Partial    bool // a handle came back with the error
	Hung       bool // the open had not returned after openTimeout
	Leaked     []string
}

// openTimeout bounds each open in openAsNobodyFn: a refusal is immediate,
// so reaching it is a hang.
const openTimeout = 20 * time.Second

// nobodyArg names the objects openAsNobodyFn opens, by kind, and where it
// writes its report (JSON, behind a 4-byte length).
type nobodyArg struct {
	Names  map[string]string
	Report *mproc.SharedMemory
}

// becomeNobody drops this process's groups, gid and uid to 65534, so that
// it is an unrelated user without capabilities.
func becomeNobody() error {
	if err := syscall.Setgroups(nil); err != nil {
		return err
	}
	if err := syscall.Setgid(nobody); err != nil {
		return err
	}
	return syscall.Setuid(nobody)
}

// openAsNobodyFn becomes uid and gid 65534, then opens each object of its
// argument and reports how each open ended. (The test binary runs as root
// until then, so it need not be reachable by uid 65534.)
var openAsNobodyFn = mproc.Register("security-open-as-nobody", func(ctx context.Context, a nobodyArg) error {
	defer a.Report.Close()
	if err := becomeNobody(); err != nil {
		return err
	}
	if os.Geteuid() != nobody || os.Getegid() != nobody {
		return fmt.Errorf("still uid %d gid %d", os.Geteuid(), os.Getegid())
	}
	// The poller's descriptors, opened at its first use, are not an
	// open's: open them now.
	if pr, pw, err := os.Pipe(); err == nil {
		pr.SetReadDeadline(time.Now())
		pr.Close()
		pw.Close()
	}
	results := map[string]openResult{}
	for _, kind := range slices.Sorted(maps.Keys(a.Names)) {
		k, ok := lookupKind(kind)
		if !ok {
			return fmt.Errorf("no kind %q", kind)
		}
		before := testenv.FDs()
		octx, cancel := context.WithTimeout(ctx, openTimeout)
		done := make(chan openResult, 1)
		go func() {
			h, err := k.open(octx, a.Names[kind])
			var r openResult
			if err == nil {
				h.Close()
			} else {
				r = openResult{Err: err.Error(), Permission: errors.Is(err, os.ErrPermission), Partial: errors.Is(err, errPartial)}
			}
			done <- r
		}()
		var r openResult
		select {
		case r = <-done:
		case <-time.After(openTimeout + 5*time.Second):
			r = openResult{Hung: true}
		}
		cancel()
		for fd, target := range testenv.FDs() {
			if _, ok := before[fd]; !ok {
				r.Leaked = append(r.Leaked, fmt.Sprintf("%d -> %s", fd, target))
			}
		}
		results[kind] = r
	}
	b, err := json.Marshal(results)
	if err != nil {
		return err
	}
	mem := a.Report.Bytes()
	if len(b)+4 > len(mem) {
		return fmt.Errorf("report of %d bytes does not fit", len(b))
	}
	copy(mem[4:], b)
	binary.LittleEndian.PutUint32(mem, uint32(len(b)))
	return nil
})

// TestSecurityModes: every named object is created 0600 (whatever the
// umask) and owned by its creator, and a process of another user (a child
// that became uid and gid 65534) is refused opening each with an error
// wrapping os.ErrPermission: promptly, with no handle and no descriptor
// left open.
func TestSecurityModes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skipf("running as uid %d: only root can start a child as uid %d", os.Geteuid(), nobody)
	}
	dir := openDir(t)
	names := map[string]string{}
	old := syscall.Umask(0) // the widest: a mode left to the umask would show
	for _, k := range namedKinds {
		name := k.newName(t, dir)
		h, err := k.create(name)
		if err != nil {
			syscall.Umask(old)
			t.Fatalf("create %s: %v", k.kind, err)
		}
		t.Cleanup(func() { h.Close() })
		names[k.kind] = name
	}
	syscall.Umask(old)

	report, err := mproc.NewSharedMemory(1 << 16)
	if err != nil {
		t.Fatal(err)
	}
	defer report.Close()
	if err := wait(t, start(t, openAsNobodyFn, nobodyArg{Names: names, Report: report}, mproc.ProcOptions{})); err != nil {
		t.Fatalf("child as uid %d: %v", nobody, err)
	}
	mem := report.Bytes()
	var results map[string]openResult
	if err := json.Unmarshal(mem[4:4+binary.LittleEndian.Uint32(mem)], &results); err != nil {
		t.Fatalf("the child's report: %v", err)
	}

	for _, k := range namedKinds {
		t.Run(k.kind, func(t *testing.T) {
			path := k.path(names[k.kind])
			fi, err := os.Lstat(path)
			if err != nil {
				t.Fatal(err)
			}
			st := fi.Sys().(*syscall.Stat_t)
			wantType := os.FileMode(0)
			if strings.HasSuffix(k.kind, "Listen") {
				wantType = os.ModeSocket
			}
			if fi.Mode() != wantType|0o600 || st.Uid != uint32(os.Geteuid()) || st.Gid != uint32(os.Getegid()) {
				t.Errorf("%s: mode %v, uid %d, gid %d; want %v, uid %d, gid %d",
					path, fi.Mode(), st.Uid, st.Gid, wantType|0o600, os.Geteuid(), os.Getegid())
			}
			r, ok := results[k.kind]
			switch {
			case !ok:
				t.Fatalf("the child did not open it")
			case r.Hung:
				t.Errorf("open as uid %d hangs", nobody)
			case r.Err == "":
				t.Errorf("open as uid %d succeeded", nobody)
			case r.Partial:
				t.Errorf("open as uid %d: %s", nobody, r.Err)
			case !r.Permission:
				t.Errorf("open as uid %d: %s; want an error wrapping os.ErrPermission", nobody, r.Err)
			}
			if len(r.Leaked) > 0 {
				t.Errorf("the refused open left descriptors open: %s", strings.Join(r.Leaked, ", "))
			}
		})
	}
}

// fileState is what a victim of a symbolic link looks like: its mode and
// contents, or that it does not exist.
func fileState(path string) string {
	fi, err := os.Lstat(path)
	if err != nil {
		return err.Error()
	}
	b, _ := os.ReadFile(path)
	return fmt.Sprintf("%v %q", fi.Mode(), b)
}

// TestSecurityNoSymlinks: a symbolic link planted where an object's file
// goes is never followed. Create fails, and whatever the link points at (a
// file an attacker wants overwritten, or a path it wants created) stays as
// it was, and so does the link (and a file already at the path); Open refuses a link, even one to a valid object, and the file
// behind it is not changed.
//
// Dial (mproc's and shmnet's) connects through a link to a socket, as
// connect(2) and Python do: whoever can plant the link could bind a socket
// at the path as well, and the authkey is what authenticates the peer. It
// is held to the rest: no link to anything else is written through.
func TestSecurityNoSymlinks(t *testing.T) {
	for _, k := range namedKinds {
		t.Run(k.kind, func(t *testing.T) {
			testenv.CheckFDLeaks(t)
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			dir := t.TempDir()
			victim := filepath.Join(dir, "victim")
			if err := os.WriteFile(victim, []byte("precious"), 0o644); err != nil {
				t.Fatal(err)
			}
			wantVictim := fileState(victim)
			checkVictim := func(after string) {
				t.Helper()
				if got := fileState(victim); got != wantVictim {
					t.Errorf("the link's target after %s: %s; want it untouched: %s", after, got, wantVictim)
				}
			}
			plant := func(target string) string {
				t.Helper()
				name := k.newName(t, dir)
				if err := os.Symlink(target, k.path(name)); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { os.Remove(k.path(name)) })
				return name
			}
			checkLink := func(name, target, after string) {
				t.Helper()
				if got, err := os.Readlink(k.path(name)); err != nil || got != target {
					t.Errorf("the link after %s: %q, %v; want it left pointing at %s", after, got, err, target)
				}
			}

			// Create over an existing file.
			name := k.newName(t, dir)
			if err := os.WriteFile(k.path(name), []byte("precious"), 0o644); err != nil {
				t.Fatal(err)
			}
			wantFile := fileState(k.path(name))
			if h, err := k.create(name); err == nil {
				h.Close()
				t.Errorf("Create over an existing file succeeded")
			}
			if got := fileState(k.path(name)); got != wantFile {
				t.Errorf("an existing file at the path after Create: %s; want it untouched: %s", got, wantFile)
			}

			// Create over a link to a file.
			name = plant(victim)
			if h, err := k.create(name); err == nil {
				h.Close()
				t.Errorf("Create over a link to a file succeeded")
			} else if !errors.Is(err, os.ErrExist) && !errors.Is(err, syscall.EADDRINUSE) {
				t.Errorf("Create over a link to a file: %v; want os.ErrExist (or EADDRINUSE for a socket)", err)
			}
			checkVictim("Create")
			checkLink(name, victim, "Create")

			// Create over a dangling link: the path it names is not created.
			target := filepath.Join(dir, "created-through-the-link")
			name = plant(target)
			if h, err := k.create(name); err == nil {
				h.Close()
				t.Errorf("Create over a dangling link succeeded")
			}
			if _, err := os.Lstat(target); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("Create over a dangling link made its target: %v", err)
			}
			checkLink(name, target, "Create")

			// Open through a link to a file.
			name = plant(victim)
			if h, err := k.open(ctx, name); err == nil {
				h.Close()
				t.Errorf("Open through a link to a file succeeded")
			}
			checkVictim("Open")
			checkLink(name, victim, "Open")

			if k.file {
				return
			}
			// Open through a link to a valid object of the kind, of this user.
			real := secName(t)
			h, err := k.create(real)
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			name = plant(shm.Path(real))
			if h, err := k.open(ctx, name); err == nil {
				h.Close()
				t.Errorf("Open through a link to a valid %s succeeded", k.kind)
			} else if !errors.Is(err, mproc.ErrCorrupt) {
				t.Errorf("Open through a link to a valid %s: %v; want ErrCorrupt", k.kind, err)
			}
		})
	}
}

// listing returns the entries of dir, and of every directory below it, by
// path relative to dir.
func listing(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) && p != dir {
				return nil // removed meanwhile (another test's object)
			}
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// newEntries returns the entries of after missing from before, that
// belong to this test: in /dev/shm, other tests and processes come and go.
func newEntries(before, after []string, ours func(string) bool) []string {
	var out []string
	for _, e := range after {
		if !slices.Contains(before, e) && ours(e) {
			out = append(out, e)
		}
	}
	return out
}

// badNames are segment names that must be refused, each with an
// ErrInvalidName and without touching the file system. escape is the name
// of a directory planted in /dev/shm (as any user can: /dev/shm is
// world-writable) through which an unchecked name would leave /dev/shm for
// target.
func badNames(escape, target string) map[string]string {
	up := strings.Repeat("../", strings.Count(shm.Dir, "/")+1)
	return map[string]string{
		"empty":                    "",
		"dot":                      ".",
		"dot-dot":                  "..",
		"leading dot":              ".hidden",
		"slash":                    "a/b",
		"leading slash":            "/etc/passwd",
		"trailing slash":           "a/",
		"dot-dot component":        "../escaped",
		"through a planted dir":    escape + "/" + up + strings.TrimPrefix(target, "/"),
		"into a planted dir":       escape + "/inside",
		"NUL":                      "a\x00b",
		"only NUL":                 "\x00",
		"newline":                  "a\nb",
		"space":                    "a b",
		"backslash":                `a\b`,
		"non-ASCII":                "caf\u00e9",
		"over MaxNameLen":          strings.Repeat("n", shm.MaxNameLen+1),
		"NAME_MAX with the prefix": strings.Repeat("n", 255-len(shm.Prefix)+1),
		"over NAME_MAX":            strings.Repeat("n", 256),
		"over PATH_MAX":            strings.Repeat("n/", 2100),
	}
}

// TestSecurityNames: names with '/', "..", ".", NUL, a leading dot, bytes
// outside [A-Za-z0-9._-], or over MaxNameLen are refused with
// ErrInvalidName by every constructor and opener, and nothing is created
// or opened anywhere: not in /dev/shm, not in a directory an attacker
// planted there to lead a name out of it, not where such a name would
// lead. Names at the edge of the rule (MaxNameLen bytes, inner dots) are
// files in /dev/shm. Paths of Unix sockets and mapped files are the
// caller's to choose, but those a system call would misread (NUL, the
// abstract namespace, too long) are refused too, and posixmq names are
// held to the same rule.
func TestSecurityNames(t *testing.T) {
	testenv.CheckFDLeaks(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	escape := secName(t)
	if err := os.Mkdir(shm.Path(escape), 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(shm.Path(escape))
	target := t.TempDir()
	ours := func(e string) bool { return strings.Contains(e, escape) || strings.Contains(e, "escaped") }
	shmBefore, targetBefore := listing(t, shm.Dir), listing(t, target)
	bad := badNames(escape, filepath.Join(target, "escaped"))
	for _, k := range namedKinds {
		if k.file {
			continue
		}
		t.Run(k.kind, func(t *testing.T) {
			for _, what := range slices.Sorted(maps.Keys(bad)) {
				name := bad[what]
				if h, err := k.create(name); !errors.Is(err, mproc.ErrInvalidName) {
					if err == nil {
						h.Close()
					}
					t.Errorf("Create%s(%s %.40q): %v; want ErrInvalidName", k.kind, what, name, err)
				}
				if h, err := k.open(ctx, name); !errors.Is(err, mproc.ErrInvalidName) {
					if err == nil {
						h.Close()
					}
					t.Errorf("Open%s(%s %.40q): %v; want ErrInvalidName", k.kind, what, name, err)
				}
			}
			// The edges of the rule are names like any other.
			for _, name := range []string{
				fmt.Sprintf("test-sec-%d-%d-a..b.", os.Getpid(), secSeq.Add(1)),
				fmt.Sprintf("test-sec-%d-%d-", os.Getpid(), secSeq.Add(1)),
			} {
				if len(name) < shm.MaxNameLen {
					name += strings.Repeat("n", shm.MaxNameLen-len(name))
				}
				t.Cleanup(func() { os.Remove(shm.Path(name)) })
				h, err := k.create(name)
				if err != nil {
					t.Errorf("Create%s(%q): %v", k.kind, name, err)
					continue
				}
				h.Close()
				if fi, err := os.Lstat(filepath.Join(shm.Dir, shm.Prefix+name)); err != nil || !fi.Mode().IsRegular() {
					t.Errorf("Create%s(%q) made no file in %s: %v", k.kind, name, shm.Dir, err)
				}
				if h, err := k.open(ctx, name); err != nil {
					t.Errorf("Open%s(%q): %v", k.kind, name, err)
				} else {
					h.Close()
				}
			}
		})
	}

	t.Run("sockets and mapped files", func(t *testing.T) {
		dir := t.TempDir()
		long := filepath.Join(dir, strings.Repeat("s", 120)) // over sun_path's 108 bytes
		cases := map[string][]string{
			"Listen":        {"@abstract", "\x00abstract", filepath.Join(dir, "a\x00b"), long},
			"shmnet.Listen": {"@abstract", "\x00abstract", filepath.Join(dir, "a\x00b"), long},
			"MapFile":       {"", filepath.Join(dir, "a\x00b"), dir + strings.Repeat("/n", 2100)},
		}
		for _, kind := range slices.Sorted(maps.Keys(cases)) {
			k, _ := lookupKind(kind)
			for _, p := range cases[kind] {
				if h, err := k.create(p); err == nil {
					h.Close()
					t.Errorf("%s(%.60q) succeeded", k.kind, p)
				}
				if h, err := k.open(ctx, p); err == nil {
					h.Close()
					t.Errorf("open %s(%.60q) succeeded", k.kind, p)
				}
			}
		}
		if got := listing(t, dir); len(got) != 1 {
			t.Errorf("left in %s: %q", dir, got[1:])
		}
	})

	t.Run("posixmq", func(t *testing.T) {
		for _, name := range []string{"", "/", "a/b", "/a/b", ".", "..", "/..", "a\x00b", strings.Repeat("n", posixmq.NameMax+1)} {
			q, err := posixmq.Open(name, posixmq.O_RDWR|posixmq.O_CREATE|posixmq.O_EXCL, nil, 0o600)
			if !errors.Is(err, posixmq.ErrInvalidName) {
				if err == nil {
					q.Close()
				}
				t.Errorf("posixmq.Open(%.40q): %v; want ErrInvalidName", name, err)
			}
		}
	})

	if got := newEntries(shmBefore, listing(t, shm.Dir), ours); len(got) > 1 || len(got) == 1 && got[0] != shm.Prefix+escape {
		t.Errorf("created in %s: %q", shm.Dir, got)
	}
	if got := newEntries(targetBefore, listing(t, target), func(string) bool { return true }); len(got) > 0 {
		t.Errorf("created in %s, out of %s: %q", target, shm.Dir, got)
	}
}

// hostilePeer is what a hostile peer sends: once, or over and over (an
// endless stream) until the connection breaks.
type hostilePeer struct {
	name    string
	send    []byte
	endless bool
	silent  bool // sends nothing, and holds the connection open
	want    error
}

// hostilePeers are the handshake's attackers: huge claims, and streams
// that never end.
var hostilePeers = []hostilePeer{
	{name: "claims 2 GiB", send: testenv.FrameHeader(wire.MaxShortFrame), want: mproc.ErrFrameTooLarge},
	{name: "claims 4 GiB in the long form", send: testenv.FrameHeader(4 << 30), want: mproc.ErrFrameTooLarge},
	{name: "claims 2^63-1 bytes", send: testenv.FrameHeader(1<<63 - 1), want: mproc.ErrFrameTooLarge},
	{name: "claims 2^64-1 bytes", send: testenv.FrameHeader(1<<64 - 1), want: mproc.ErrFrameTooLarge},
	{name: "negative length", send: []byte{0xff, 0xff, 0xff, 0xfe}, want: mproc.ErrProtocol},
	{name: "endless bytes", send: bytes.Repeat([]byte{'A'}, 64<<10), endless: true, want: mproc.ErrFrameTooLarge},
	{name: "endless 200-byte frames", send: bytes.Repeat(append(testenv.FrameHeader(200), bytes.Repeat([]byte{'#'}, 200)...), 256), endless: true, want: mproc.ErrAuth},
	{name: "silent", silent: true, want: os.ErrDeadlineExceeded},
}

// play sends p's bytes on c (until c breaks, for an endless peer), and
// then holds c open until stop is closed.
func (p hostilePeer) play(c net.Conn, stop <-chan struct{}) {
	for !p.silent {
		if _, err := c.Write(p.send); err != nil || !p.endless {
			break
		}
	}
	<-stop
	c.Close()
}

// impostor serves one connection on ln as a server that does not hold key:
// it welcomes whatever answer the client gives to its challenge, then
// answers the client's challenge with key (legacy: the 20-byte challenge of
// Python 3.11 and older). It returns the client's verdict on it.
func impostor(ln net.Listener, key []byte, legacy bool) <-chan string {
	verdict := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			verdict <- err.Error()
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(30 * time.Second))
		challenge := append([]byte("#CHALLENGE#{sha256}"), make([]byte, 40)...)
		if legacy {
			challenge = append([]byte("#CHALLENGE#"), make([]byte, 20)...)
		}
		if err := wire.WriteFrame(c, challenge); err != nil {
			verdict <- err.Error()
			return
		}
		if _, err := wire.ReadFrame(c, 256, nil); err != nil {
			verdict <- err.Error()
			return
		}
		if err := wire.WriteFrame(c, []byte("#WELCOME#")); err != nil {
			verdict <- err.Error()
			return
		}
		// wire.Answer reads the client's challenge, answers it with key,
		// and fails with the client's verdict unless it is "#WELCOME#".
		err = wire.Answer(c, key)
		switch {
		case err == nil:
			verdict <- "#WELCOME#"
		case strings.Contains(err.Error(), "#FAILURE#"):
			verdict <- "#FAILURE#"
		default:
			verdict <- err.Error()
		}
	}()
	return verdict
}

// wrongKeys are keys that are not secKey: differing in the first byte, in
// the last, by length, or empty. (Not secKey and a zero byte: HMAC pads a
// key shorter than its block with zeros, so the two are one HMAC key, in
// Python as in Go.)
func wrongKeys() map[string][]byte {
	first, last := bytes.Clone(secKey), bytes.Clone(secKey)
	first[0] ^= 1
	last[len(last)-1] ^= 0x80
	return map[string][]byte{
		"first byte differs": first,
		"last byte differs":  last,
		"a prefix":           secKey[:len(secKey)-1],
		"one byte longer":    append(bytes.Clone(secKey), 'x'),
		"empty":              {},
	}
}

// TestSecurityAuthkey: the authkey handshake refuses a wrong key in both
// directions (a Listener refuses a client without the key, and Dial refuses
// a server without it, even one that welcomes anything), whether the keys
// differ at the first byte or the last. (The answers are compared with
// crypto/hmac.Equal, in constant time, in internal/wire.Deliver: a test
// cannot time that reliably.) Every handshake read is capped: a peer that
// claims a huge frame or sends without end is refused without the claim
// being allocated, and a silent one at the deadline, on either side.
func TestSecurityAuthkey(t *testing.T) {
	ctxFor := func(t *testing.T, d time.Duration) context.Context {
		ctx, cancel := context.WithTimeout(t.Context(), d)
		t.Cleanup(cancel)
		return ctx
	}

	t.Run("server refuses a wrong key", func(t *testing.T) {
		testenv.CheckFDLeaks(t)
		errs := make(chan error, 16)
		ln, err := mproc.Listen("unix", "", secKey, mproc.ListenOptions{OnError: func(err error) { errs <- err }})
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		keys := wrongKeys()
		for _, what := range slices.Sorted(maps.Keys(keys)) {
			c, err := mproc.Dial(ctxFor(t, 30*time.Second), "unix", ln.Addr(), keys[what])
			if !errors.Is(err, mproc.ErrAuth) {
				if err == nil {
					c.Close()
				}
				t.Errorf("%s: Dial: %v; want ErrAuth", what, err)
			}
			select {
			case err := <-errs:
				if !errors.Is(err, mproc.ErrAuth) {
					t.Errorf("%s: the Listener's error: %v; want ErrAuth", what, err)
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("%s: the Listener reported no failed handshake", what)
			}
			if c, err := ln.Accept(ctxFor(t, 100*time.Millisecond)); err == nil {
				c.Close()
				t.Errorf("%s: Accept returned the client", what)
			}
		}
		c, err := mproc.Dial(ctxFor(t, 30*time.Second), "unix", ln.Addr(), secKey)
		if err != nil {
			t.Fatalf("the right key: %v", err)
		}
		c.Close()
		if c, err := ln.Accept(ctxFor(t, 30*time.Second)); err != nil {
			t.Errorf("the right key: Accept: %v", err)
		} else {
			c.Close()
		}
	})

	t.Run("client refuses a wrong server", func(t *testing.T) {
		testenv.CheckFDLeaks(t)
		path := filepath.Join(t.TempDir(), "impostor")
		ln, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		keys := wrongKeys()
		for _, what := range slices.Sorted(maps.Keys(keys)) {
			for _, legacy := range []bool{false, true} {
				verdict := impostor(ln, keys[what], legacy)
				c, err := mproc.Dial(ctxFor(t, 30*time.Second), "unix", path, secKey)
				if !errors.Is(err, mproc.ErrAuth) {
					if err == nil {
						c.Close()
					}
					t.Errorf("%s (legacy %v): Dial: %v; want ErrAuth", what, legacy, err)
				}
				if v := <-verdict; v != "#FAILURE#" {
					t.Errorf("%s (legacy %v): the client told the impostor %q; want #FAILURE#", what, legacy, v)
				}
			}
		}
		// The impostor's own code passes with the right key: what failed
		// above was the key.
		verdict := impostor(ln, secKey, false)
		c, err := mproc.Dial(ctxFor(t, 30*time.Second), "unix", path, secKey)
		if err != nil {
			t.Fatalf("an impostor that holds the key: %v", err)
		}
		c.Close()
		if v := <-verdict; v != "#WELCOME#" {
			t.Errorf("an impostor that holds the key was told %q", v)
		}
	})

	t.Run("server caps handshake reads", func(t *testing.T) {
		for _, p := range hostilePeers {
			t.Run(p.name, func(t *testing.T) {
				errs := make(chan error, 1)
				ln, err := mproc.Listen("unix", "", secKey, mproc.ListenOptions{
					HandshakeTimeout: 2 * time.Second,
					OnError:          func(err error) { errs <- err },
				})
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
				stop := make(chan struct{})
				defer close(stop)
				var got error
				n := testenv.Allocated(func() {
					c, err := net.Dial("unix", ln.Addr())
					if err != nil {
						t.Fatal(err)
					}
					go p.play(c, stop)
					select {
					case got = <-errs:
					case <-time.After(30 * time.Second):
						t.Fatalf("no verdict on the peer after 30s: the handshake hangs")
					}
				})
				if !errors.Is(got, p.want) || !errors.Is(got, mproc.ErrAuth) && p.want != os.ErrDeadlineExceeded {
					t.Errorf("the Listener's error: %v; want %v", got, p.want)
				}
				if n > testenv.MaxAlloc {
					t.Errorf("the refusal allocated %d bytes", n)
				}
			})
		}
	})

	t.Run("client caps handshake reads", func(t *testing.T) {
		for _, p := range hostilePeers {
			t.Run(p.name, func(t *testing.T) {
				testenv.CheckFDLeaks(t)
				path := filepath.Join(t.TempDir(), "hostile")
				ln, err := net.Listen("unix", path)
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
				stop := make(chan struct{})
				served := make(chan struct{})
				go func() {
					defer close(served)
					if c, err := ln.Accept(); err == nil {
						p.play(c, stop)
					}
				}()
				var got error
				n := testenv.Allocated(func() {
					ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
					defer cancel()
					c, err := mproc.Dial(ctx, "unix", path, secKey)
					if err == nil {
						c.Close()
					}
					got = err
				})
				close(stop)
				<-served
				want := p.want
				if p.silent {
					want = context.DeadlineExceeded
				}
				if !errors.Is(got, want) {
					t.Errorf("Dial: %v; want %v", got, want)
				}
				if n > testenv.MaxAlloc {
					t.Errorf("the refusal allocated %d bytes", n)
				}
			})
		}
	})
}

// TestSecurityFrameLimit: a frame whose header announces more than the
// receiver's limit is refused with ErrFrameTooLarge (a length that cannot
// be one with ErrProtocol) before anything of that size is allocated, by
// each way of receiving on a Conn, after a large frame as well (the payload
// of the next frame is then read with its header), and by shmnet's Dial,
// whose one frame is its listener's hello. The Conn closes itself after the
// refusal: nothing after a bad frame can be trusted.
func TestSecurityFrameLimit(t *testing.T) {
	const limit = 1 << 20
	recvs := map[string]func(ctx context.Context, c *mproc.Conn) error{
		"RecvBytes": func(ctx context.Context, c *mproc.Conn) error { _, err := c.RecvBytes(ctx); return err },
		"RecvBytesInto": func(ctx context.Context, c *mproc.Conn) error {
			_, err := c.RecvBytesInto(ctx, make([]byte, 64))
			return err
		},
		"Recv": func(ctx context.Context, c *mproc.Conn) error { var v any; return c.Recv(ctx, &v) },
		"Recv with pickle": func(ctx context.Context, c *mproc.Conn) error {
			c.SetCodec(pickle.Codec{})
			var v any
			return c.Recv(ctx, &v)
		},
	}
	claims := []struct {
		name     string
		header   []byte
		maxFrame int // 0: the default
		want     error
	}{
		{"limit+1", testenv.FrameHeader(limit + 1), limit, mproc.ErrFrameTooLarge},
		{"2 GiB", testenv.FrameHeader(wire.MaxShortFrame), limit, mproc.ErrFrameTooLarge},
		{"4 GiB in the long form", testenv.FrameHeader(4 << 30), limit, mproc.ErrFrameTooLarge},
		{"2^64-1 in the long form", testenv.FrameHeader(1<<64 - 1), limit, mproc.ErrFrameTooLarge},
		{"DefaultMaxFrame+1", testenv.FrameHeader(mproc.DefaultMaxFrame + 1), 0, mproc.ErrFrameTooLarge},
		{"2 GiB at the default limit", testenv.FrameHeader(wire.MaxShortFrame), 0, mproc.ErrFrameTooLarge},
		{"negative", []byte{0x80, 0, 0, 0}, limit, mproc.ErrProtocol},
	}
	for _, recvName := range slices.Sorted(maps.Keys(recvs)) {
		recv := recvs[recvName]
		for _, claim := range claims {
			for _, afterLarge := range []bool{false, true} {
				name := recvName + "/" + claim.name
				if afterLarge {
					name += " after a large frame"
				}
				t.Run(name, func(t *testing.T) {
					ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
					defer cancel()
					r, w, err := mproc.Pipe(mproc.Duplex)
					if err != nil {
						t.Fatal(err)
					}
					defer r.Close()
					defer w.Close()
					if claim.maxFrame != 0 {
						r.SetMaxFrame(claim.maxFrame)
					}
					if afterLarge {
						go w.SendBytes(ctx, make([]byte, 64<<10))
						if _, err := r.RecvBytes(ctx); err != nil {
							t.Fatal(err)
						}
					}
					f, err := w.File()
					if err != nil {
						t.Fatal(err)
					}
					defer f.Close()
					if _, err := f.Write(claim.header); err != nil {
						t.Fatal(err)
					}
					var got error
					n := testenv.Allocated(func() { got = recv(ctx, r) })
					if !errors.Is(got, claim.want) {
						t.Errorf("%v; want %v", got, claim.want)
					}
					if n > testenv.MaxAlloc {
						t.Errorf("the refusal allocated %d bytes", n)
					}
					if _, err := r.RecvBytes(ctx); !errors.Is(err, os.ErrClosed) {
						t.Errorf("the next receive: %v; want os.ErrClosed", err)
					}
				})
			}
		}
	}

	t.Run("shmnet hello", func(t *testing.T) {
		for _, claim := range claims {
			t.Run(claim.name, func(t *testing.T) {
				testenv.CheckFDLeaks(t)
				path := filepath.Join(t.TempDir(), "hostile")
				ln, err := net.Listen("unix", path)
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
				stop := make(chan struct{})
				served := make(chan struct{})
				go func() {
					defer close(served)
					if c, err := ln.Accept(); err == nil {
						hostilePeer{send: claim.header}.play(c, stop)
					}
				}()
				var got error
				n := testenv.Allocated(func() {
					ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
					defer cancel()
					c, err := shmnet.Dial(ctx, path, nil)
					if err == nil {
						c.Close()
					}
					got = err
				})
				close(stop)
				<-served
				if !errors.Is(got, claim.want) {
					t.Errorf("shmnet.Dial: %v; want %v", got, claim.want)
				}
				if n > testenv.MaxAlloc {
					t.Errorf("the refusal allocated %d bytes", n)
				}
			})
		}
	})
}

// codePickles are pickles that make Python's pickle.loads run
// os.system("touch " + marker) or otherwise import, build or call: each
// opcode that can.
func codePickles(marker string) map[string]string {
	cmd := "touch " + marker
	short := func(s string) string { return "\x8c" + string([]byte{byte(len(s))}) + s } // SHORT_BINUNICODE
	return map[string]string{
		"GLOBAL os.system, REDUCE":             "cos\nsystem\n(V" + cmd + "\ntR.",
		"GLOBAL posix.system, REDUCE":          "cposix\nsystem\n(V" + cmd + "\ntR.",
		"GLOBAL builtins.eval, REDUCE":         "\x80\x03cbuiltins\neval\n(V__import__('os').system('" + cmd + "')\ntR.",
		"STACK_GLOBAL os.system, REDUCE":       "\x80\x04" + short("os") + short("system") + "\x93" + short(cmd) + "\x85R.",
		"STACK_GLOBAL subprocess.call, REDUCE": "\x80\x04" + short("subprocess") + short("call") + "\x93" + short(cmd) + "\x85R.",
		"INST os.system":                       "(V" + cmd + "\nios\nsystem\n.",
		"INST builtins.set":                    "(ibuiltins\nset\n.",
		"OBJ os.system":                        "(cos\nsystem\nV" + cmd + "\no.",
		"OBJ builtins.set":                     "(cbuiltins\nset\no.",
		"NEWOBJ os.system":                     "\x80\x02cos\nsystem\n)\x81.",
		"NEWOBJ builtins.set":                  "\x80\x02cbuiltins\nset\n)\x81.",
		"NEWOBJ_EX builtins.set":               "\x80\x04" + short("builtins") + short("set") + "\x93)}\x92.",
		"BUILD":                                "\x80\x02]}b.",
		"EXT1":                                 "\x80\x02\x82\x01.",
		"EXT2":                                 "\x80\x02\x83\x01\x00.",
		"EXT4":                                 "\x80\x02\x84\x01\x00\x00\x00.",
		"PERSID":                               "Pos.system\n.",
		"BINPERSID":                            "\x80\x02X\x09\x00\x00\x00os.systemQ.",
		"os.system inside a dict":              "\x80\x04}" + short("k") + short("os") + short("system") + "\x93" + short(cmd) + "\x85Rs.",
	}
}

// TestSecurityPickleNeverExecutes: a Conn whose codec is pickle.Codec
// refuses, with pickle.ErrUnsafe, every pickle that would make Python
// import, build or call something, and the command such a pickle carries
// is never run. (The manager's entry points are held to the same in
// manager/security_test.go, the decoder itself in pickle/security_test.go.)
func TestSecurityPickleNeverExecutes(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "executed")
	evil := codePickles(marker)
	for _, what := range slices.Sorted(maps.Keys(evil)) {
		t.Run(what, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			r, w, err := mproc.Pipe(mproc.Duplex)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			defer w.Close()
			r.SetCodec(pickle.Codec{})
			if err := w.SendBytes(ctx, []byte(evil[what])); err != nil {
				t.Fatal(err)
			}
			var v any
			if err := r.Recv(ctx, &v); !errors.Is(err, pickle.ErrUnsafe) {
				t.Errorf("Recv: %v, %#v; want pickle.ErrUnsafe", err, v)
			}
			if _, err := os.Lstat(marker); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("the pickle's command ran: %v", err)
			}
		})
	}
}
