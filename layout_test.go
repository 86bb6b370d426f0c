// layout_test.go enforces the import rules of the project's design by
// statically scanning every .go file of the module, test files included.
//
// Rules (paths are relative to the module root):
//
//  1. golang.org/x/sys/unix is imported only in internal/unix/, and the raw
//     syscall entry points syscall.Syscall*, syscall.RawSyscall* and
//     syscall.AllThreadsSyscall* (through the name the file binds to
//     "syscall", renamed or dot-imported) are used only in internal/unix/.
//  2. "unsafe" is imported only under internal/.
//  3. Non-test files of the root package import no mproc/... package other
//     than mproc/internal/....
//  4. Allowed mproc imports per top-level directory (own path excepted):
//     pool/ rpc/ fifo/ posixmq/ sysvmq/: mproc, mproc/internal/...;
//     manager/: also mproc/pickle; pickle/: the standard library only;
//     internal/: mproc/internal/... only (internal/testenv may also import
//     mproc); cmd/ examples/ bench/: public mproc packages only (cmd/ may
//     also import mproc/internal/shm); elsewhere: mproc, mproc/internal/....
//     mproc/internal/testenv is imported only by _test.go files, of any
//     directory.
//  5. Only files under cluster/ import github.com/nats-io/....
//  6. A file importing golang.org/x/sys/unix is Linux-only: it is named
//     *_linux.go, *_linux_test.go or *_linux_GOARCH[_test].go, or its
//     //go:build constraint cannot be satisfied without the linux tag.
//
// testdata/ and dot- or underscore-prefixed directories and files are
// skipped. Nested modules (a directory with its own go.mod, e.g. cluster/)
// are checked against rule 5 only, except those in ownModules: bench/ has
// its own go.mod only so that the core module requires golang.org/x/sys
// alone, and is checked like any other directory.
package mproc_test

import (
	"fmt"
	"go/ast"
	"go/build/constraint"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const (
	modPath  = "mproc"
	xSysUnix = "golang.org/x/sys/unix"
)

// ownModules are the nested modules that every rule applies to.
var ownModules = []string{"bench"}

// srcFile is one source file under check, parsed with imports and comments only.
type srcFile struct {
	abs, rel, dir, top, pkg string // slash paths; top is "" at the root; pkg is dir's import path
	test, nested            bool
	fset                    *token.FileSet
	ast                     *ast.File
	out                     *[]string
}

func (f *srcFile) errorf(pos token.Pos, rule, format string, args ...any) {
	*f.out = append(*f.out, fmt.Sprintf("%s:%d: [rule %s] %s", f.rel, f.fset.Position(pos).Line, rule, fmt.Sprintf(format, args...)))
}

func under(p, prefix string) bool { return p == prefix || strings.HasPrefix(p, prefix+"/") }
func isMproc(p string) bool       { return under(p, modPath) }
func isInternal(p string) bool    { return under(p, modPath+"/internal") }
func isStd(p string) bool         { return !strings.Contains(strings.Split(p, "/")[0], ".") }
func isPublic(_ *srcFile, p string) bool {
	return isMproc(p) && !slices.Contains(strings.Split(p, "/"), "internal")
}
func rootOrInternal(_ *srcFile, p string) bool { return p == modPath || isInternal(p) }

func when(cond bool, msg string) string {
	if cond {
		return msg
	}
	return ""
}

type dirRule struct {
	dirs    []string // top-level directories; nil means any other
	desc    string
	stdOnly bool // also forbid every non-standard-library import
	allowed func(f *srcFile, p string) bool
}

// dirRules is rule 4: which mproc packages each top-level directory may import.
var dirRules = []dirRule{
	{[]string{"pool", "rpc", "fifo", "posixmq", "sysvmq"}, "mproc and mproc/internal/...", false, rootOrInternal},
	{[]string{"manager"}, "mproc, mproc/pickle and mproc/internal/...", false,
		func(f *srcFile, p string) bool { return p == modPath+"/pickle" || rootOrInternal(f, p) }},
	{[]string{"pickle"}, "the standard library only", true, func(*srcFile, string) bool { return false }},
	{[]string{"internal"}, "other mproc/internal/... packages only (internal/testenv may also import mproc)", false,
		func(f *srcFile, p string) bool {
			return isInternal(p) || p == modPath && under(f.dir, "internal/testenv")
		}},
	{[]string{"cmd"}, "public mproc packages and mproc/internal/shm", false,
		func(f *srcFile, p string) bool { return isPublic(f, p) || p == modPath+"/internal/shm" }},
	{[]string{"examples", "bench"}, "public mproc packages only", false, isPublic},
	{nil, "mproc and mproc/internal/...", false, rootOrInternal},
}

func checkDirImport(f *srcFile, p string) string {
	if f.dir == "." || p == f.pkg || f.test && p == modPath+"/internal/testenv" {
		return "" // any package's tests may use the test helpers
	}
	r := dirRules[slices.IndexFunc(dirRules, func(r dirRule) bool { return r.dirs == nil || slices.Contains(r.dirs, f.top) })]
	return when(isMproc(p) && !r.allowed(f, p) || r.stdOnly && !isStd(p), f.top+"/ may import "+r.desc)
}

// importRules are applied to each import of each file and return a complaint
// or "". Inside nested modules only the rules marked nested apply.
var importRules = []struct {
	rule   string
	nested bool
	check  func(f *srcFile, p string) string
}{
	{"1", false, func(f *srcFile, p string) string {
		return when(p == xSysUnix && !under(f.dir, "internal/unix"), "golang.org/x/sys/unix may be imported only in internal/unix/")
	}},
	{"2", false, func(f *srcFile, p string) string {
		return when(p == "unsafe" && f.top != "internal", "unsafe may be imported only under internal/")
	}},
	{"3", false, func(f *srcFile, p string) string {
		return when(f.dir == "." && !f.test && isMproc(p) && p != f.pkg && !isInternal(p), "the root package may import only mproc/internal/...")
	}},
	{"4", false, checkDirImport},
	{"4", false, func(f *srcFile, p string) string {
		return when(p == modPath+"/internal/testenv" && !f.test, "mproc/internal/testenv may be imported only by _test.go files")
	}},
	{"5", true, func(f *srcFile, p string) string {
		return when(under(p, "github.com/nats-io") && f.top != "cluster", "only cluster/ may import github.com/nats-io/...")
	}},
	{"6", false, func(f *srcFile, p string) string {
		return when(p == xSysUnix && !linuxOnly(f), "importer of golang.org/x/sys/unix must be *_linux.go or //go:build linux")
	}},
}

var linuxArches = strings.Fields("386 amd64 arm arm64 loong64 mips mips64 mips64le mipsle ppc64 ppc64le riscv64 s390x")

// linuxOnly reports whether f builds only with the linux tag (android implies linux).
func linuxOnly(f *srcFile) bool {
	parts := strings.Split(strings.TrimSuffix(strings.TrimSuffix(path.Base(f.rel), ".go"), "_test"), "_")
	if n := len(parts); n >= 2 && parts[n-1] == "linux" || n >= 3 && parts[n-2] == "linux" && slices.Contains(linuxArches, parts[n-1]) {
		return true
	}
	for _, cg := range f.ast.Comments {
		for _, c := range cg.List {
			if c.Pos() > f.ast.Package || !constraint.IsGoBuild(c.Text) {
				continue
			}
			x, err := constraint.Parse(c.Text)
			if err != nil {
				return false
			}
			var tags []string // every tag but linux and android (Eval visits all tags)
			x.Eval(func(t string) bool {
				if t != "linux" && t != "android" && !slices.Contains(tags, t) {
					tags = append(tags, t)
				}
				return false
			})
			for m := 0; m < 1<<min(len(tags), 16); m++ { // is x satisfiable with linux off?
				if x.Eval(func(t string) bool { i := slices.Index(tags, t); return i >= 0 && m&(1<<i) != 0 }) {
					return false
				}
			}
			return len(tags) <= 16
		}
	}
	return false
}

// checkRawSyscalls is the selector half of rule 1.
func checkRawSyscalls(f *srcFile) {
	names, dot := map[string]bool{}, false
	for _, imp := range f.ast.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p == "syscall" {
			switch {
			case imp.Name == nil:
				names["syscall"] = true
			case imp.Name.Name == ".":
				dot = true
			case imp.Name.Name != "_":
				names[imp.Name.Name] = true
			}
		}
	}
	if under(f.dir, "internal/unix") || len(names) == 0 && !dot {
		return
	}
	full, err := parser.ParseFile(f.fset, f.abs, nil, parser.SkipObjectResolution)
	if err != nil {
		*f.out = append(*f.out, fmt.Sprintf("%s: [parse] %v", f.rel, err))
		return
	}
	raw := func(n string) bool {
		return strings.HasPrefix(n, "Syscall") || strings.HasPrefix(n, "RawSyscall") || strings.HasPrefix(n, "AllThreadsSyscall")
	}
	sels := map[*ast.Ident]bool{}
	ast.Inspect(full, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.SelectorExpr:
			sels[n.Sel] = true
			if x, ok := n.X.(*ast.Ident); ok && names[x.Name] && raw(n.Sel.Name) {
				f.errorf(n.Pos(), "1", "uses syscall.%s: raw syscalls belong in internal/unix/", n.Sel.Name)
			}
		case *ast.Ident:
			if dot && !sels[n] && raw(n.Name) {
				f.errorf(n.Pos(), "1", "uses syscall.%s (dot import): raw syscalls belong in internal/unix/", n.Name)
			}
		}
		return true
	})
}

// checkLayout checks the module rooted at root and returns every violation
// as "file:line: [rule N] message".
func checkLayout(root string) ([]string, error) {
	var out, nested []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p) // p is under root
		rel, name := filepath.ToSlash(rel), d.Name()
		skip := strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata"
		switch {
		case d.IsDir() && rel == ".":
			return nil
		case d.IsDir() && skip:
			return filepath.SkipDir
		case d.IsDir():
			if _, err := os.Stat(filepath.Join(p, "go.mod")); err == nil && !slices.Contains(ownModules, rel) {
				nested = append(nested, rel)
			}
			return nil
		case skip || !strings.HasSuffix(name, ".go"):
			return nil
		}
		f := &srcFile{abs: p, rel: rel, dir: path.Dir(rel), test: strings.HasSuffix(name, "_test.go"), fset: token.NewFileSet(), out: &out}
		f.top, f.pkg = strings.Split(f.dir, "/")[0], modPath+"/"+f.dir
		if f.dir == "." {
			f.top, f.pkg = "", modPath
		}
		f.nested = slices.ContainsFunc(nested, func(n string) bool { return under(f.dir, n) })
		if f.ast, err = parser.ParseFile(f.fset, p, nil, parser.ImportsOnly|parser.ParseComments); err != nil {
			out = append(out, fmt.Sprintf("%s: [parse] %v", rel, err))
			return nil
		}
		for _, imp := range f.ast.Imports {
			ip, _ := strconv.Unquote(imp.Path.Value)
			for _, r := range importRules {
				if msg := when(!f.nested || r.nested, r.check(f, ip)); msg != "" {
					f.errorf(imp.Pos(), r.rule, "imports %q: %s", ip, msg)
				}
			}
		}
		if !f.nested {
			checkRawSyscalls(f)
		}
		return nil
	})
	return out, err
}

// TestLayout checks the real module, found by walking up to its go.mod.
func TestLayout(t *testing.T) {
	dir, err := os.Getwd()
	for err == nil {
		data, _ := os.ReadFile(filepath.Join(dir, "go.mod"))
		if slices.ContainsFunc(strings.Split(string(data), "\n"), func(l string) bool {
			return slices.Equal(strings.Fields(strings.ReplaceAll(l, `"`, "")), []string{"module", modPath})
		}) {
			break
		}
		if filepath.Dir(dir) == dir {
			t.Fatalf("no go.mod declaring module %s above the working directory", modPath)
		}
		dir = filepath.Dir(dir)
	}
	vs, err2 := checkLayout(dir)
	if err != nil || err2 != nil {
		t.Fatal(err, err2)
	}
	for _, v := range vs {
		t.Errorf("layout violation: %s", v)
	}
}

// writeTree writes files, plus a go.mod for module mproc, into a temporary directory.
func writeTree(t *testing.T, files map[string]string) string {
	root := t.TempDir()
	files["go.mod"] = "module mproc\n\ngo 1.26\n"
	for name, src := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// TestLayoutRulesCatchViolations runs the checker on synthetic trees: every
// line marked "// want rule N[, rule M]" must be reported with exactly those
// rules and nothing else may be reported; a clean tree must report nothing.
func TestLayoutRulesCatchViolations(t *testing.T) {
	const u = "import \"golang.org/x/sys/unix\""
	bad := map[string]string{
		"root.go":                          "package mproc\n\nimport (\n\t\"unsafe\" // want rule 2\n\t\"mproc/pool\" // want rule 3\n\t\"mproc/internal/shm\"\n)\n",
		"root_test.go":                     "package mproc_test\n\nimport (\n\t\"mproc/pool\"\n\t\"mproc/internal/testenv\"\n)\n",
		"pool/x.go":                        "package pool\n\nimport (\n\t\"mproc/cmd/tool\" // want rule 4\n\t\"mproc/internal/shm\"\n\t\"github.com/nats-io/nats.go\" // want rule 5\n)\n",
		"pool/x_test.go":                   "package pool_test\n\nimport \"mproc/pool\"\nimport \"mproc/manager\" // want rule 4\n",
		"rpc/call.go":                      "package rpc\n\nimport sc \"syscall\"\n\nfunc f() {\n\tsc.Syscall6(0, 0, 0, 0, 0, 0, 0) // want rule 1\n\t_ = sc.Getpid()\n}\n",
		"fifo/dot.go":                      "package fifo\n\nimport . \"syscall\"\n\nvar _ = RawSyscall // want rule 1\n",
		"fifo/u_test.go":                   "package fifo\n\n" + u + " // want rule 1, rule 6\n",
		"examples/a/main.go":               "package main\n\nimport (\n\t\"mproc/pool\"\n\t\"mproc/internal/shm\" // want rule 4\n)\n",
		"cmd/tool/main.go":                 "package main\n\nimport (\n\t\"mproc/internal/shm\"\n\t\"mproc/internal/ring\" // want rule 4\n)\n",
		"manager/m.go":                     "package manager\n\nimport (\n\t\"mproc/pickle\"\n\t\"mproc/internal/testenv\" // want rule 4\n)\n",
		"pickle/p.go":                      "package pickle\n\nimport (\n\t\"encoding/binary\"\n\t\"mproc\" // want rule 4\n\t\"golang.org/x/text\" // want rule 4\n)\n",
		"pickle/p_test.go":                 "package pickle_test\n\nimport \"mproc/pickle\"\n",
		"other/o.go":                       "package other\n\nimport \"mproc/pool\" // want rule 4\n",
		"internal/shm/shm.go":              "package shm\n\nimport (\n\t\"mproc\" // want rule 4\n\t\"mproc/internal/unix\"\n\t\"unsafe\"\n)\n",
		"internal/testenv/testenv.go":      "package testenv\n\nimport \"mproc\"\n",
		"internal/unix/sys_linux.go":       "package unix\n\nimport \"syscall\"\n" + u + "\n\nvar _ = syscall.Syscall\n",
		"internal/unix/sys_linux_arm64.go": "package unix\n\n" + u + "\n",
		"internal/unix/tagged.go":          "//go:build linux && (amd64 || arm64)\n\npackage unix\n\n" + u + "\n",
		"internal/unix/plain.go":           "package unix\n\n" + u + " // want rule 6\n",
		"internal/unix/neg.go":             "//go:build !linux\n\npackage unix\n\n" + u + " // want rule 6\n",
		"internal/unix/either.go":          "//go:build linux || darwin\n\npackage unix\n\n" + u + " // want rule 6\n",
		"cluster/go.mod":                   "module mproc/cluster\n",
		"cluster/c.go":                     "package cluster\n\nimport (\n\t\"github.com/nats-io/nats.go\"\n\t\"unsafe\"\n)\n",
		"bench/go.mod":                     "module mproc/bench\n",
		"bench/main.go":                    "package main\n\nimport (\n\t\"mproc/pool\"\n\t\"github.com/fxamacker/cbor/v2\"\n\t\"mproc/internal/shm\" // want rule 4\n\t\"unsafe\" // want rule 2\n)\n",
		"tools/go.mod":                     "module mproc/tools\n",
		"tools/t.go":                       "package tools\n\nimport (\n\t\"github.com/nats-io/nats.go\" // want rule 5\n\t\"unsafe\"\n)\n",
		"testdata/x.go":                    "package x\n\nimport \"unsafe\"\n",
		"_old/x.go":                        "package x\n\nimport \"unsafe\"\n",
		".hidden/x.go":                     "package x\n\nimport \"unsafe\"\n",
	}
	var want, keys []string
	for name, src := range bad {
		for i, line := range strings.Split(src, "\n") {
			if _, rules, ok := strings.Cut(line, "// want "); ok {
				for _, r := range strings.Split(rules, ",") {
					want = append(want, fmt.Sprintf("%s:%d: [%s]", name, i+1, strings.TrimSpace(r)))
				}
			}
		}
	}
	got, err := checkLayout(writeTree(t, bad))
	for _, v := range got {
		keys = append(keys, v[:strings.Index(v, "]")+1])
	}
	slices.Sort(want)
	slices.Sort(keys)
	if err != nil || len(want) < 15 || !slices.Equal(want, keys) {
		t.Errorf("err=%v; checker reported:\n%s\nwant exactly:\n%s", err, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	clean := map[string]string{
		"root.go":                  "package mproc\n\nimport \"mproc/internal/shm\"\n",
		"root_test.go":             "package mproc_test\n\nimport (\n\t\"mproc\"\n\t\"mproc/pool\"\n\t\"mproc/internal/testenv\"\n)\n",
		"pool/p.go":                "package pool\n\nimport (\n\t\"mproc\"\n\t\"mproc/internal/shm\"\n)\n",
		"manager/m.go":             "package manager\n\nimport \"mproc/pickle\"\n",
		"pickle/p.go":              "package pickle\n\nimport \"encoding/binary\"\n",
		"cmd/c/main.go":            "package main\n\nimport (\n\t\"mproc/pool\"\n\t\"mproc/internal/shm\"\n)\n",
		"internal/unix/u_linux.go": "package unix\n\nimport (\n\t\"syscall\"\n\t\"unsafe\"\n\t\"golang.org/x/sys/unix\"\n)\n\nvar _ = syscall.RawSyscall6\n",
		"cluster/go.mod":           "module mproc/cluster\n",
		"cluster/c.go":             "package cluster\n\nimport \"github.com/nats-io/nats.go\"\n",
		"bench/go.mod":             "module mproc/bench\n",
		"bench/main.go":            "package main\n\nimport (\n\t\"mproc\"\n\t\"mproc/pool\"\n\t\"github.com/fxamacker/cbor/v2\"\n)\n",
	}
	if got, err := checkLayout(writeTree(t, clean)); err != nil || len(got) != 0 {
		t.Errorf("clean tree: err=%v, violations:\n%s", err, strings.Join(got, "\n"))
	}
}
