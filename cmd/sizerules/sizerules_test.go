package sizerules

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The limits.
const (
	maxFileLines = 500 // non-test files
	maxFuncLines = 80  // every function, tests included
)

// offenders parses every .go file of the module at root and returns one
// line per file or function over its limit, "path: what (N lines)",
// sorted, and the number of files it read.
func offenders(root string) (out []string, files int, err error) {
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".") || exists(filepath.Join(path, "go.mod"))) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		files++
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if n := fset.File(f.Pos()).LineCount(); n > maxFileLines && !strings.HasSuffix(path, "_test.go") {
			out = append(out, fmt.Sprintf("%s: file (%d lines, limit %d)", rel, n, maxFileLines))
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			if n := fset.Position(fn.End()).Line - fset.Position(fn.Pos()).Line + 1; n > maxFuncLines {
				out = append(out, fmt.Sprintf("%s:%d: func %s (%d lines, limit %d)", rel, fset.Position(fn.Pos()).Line, funcName(fn), n, maxFuncLines))
			}
		}
		return nil
	})
	slices.Sort(out)
	return out, files, err
}

// funcName is "Name" or "Recv.Name".
func funcName(fn *ast.FuncDecl) string {
	if fn.Recv == nil || len(fn.Recv.List) == 0 {
		return fn.Name.Name
	}
	t := fn.Recv.List[0].Type
	for {
		switch x := t.(type) {
		case *ast.StarExpr:
			t = x.X
			continue
		case *ast.IndexExpr:
			t = x.X
			continue
		case *ast.IndexListExpr:
			t = x.X
			continue
		case *ast.Ident:
			return x.Name + "." + fn.Name.Name
		}
		return fn.Name.Name
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func TestSizes(t *testing.T) {
	out, files, err := offenders("../..")
	if err != nil {
		t.Fatal(err)
	}
	// The walk must have read the module: limits over no files would
	// pass without looking at anything.
	if files < 100 {
		t.Fatalf("read %d .go files; is ../.. the module root?", files)
	}
	for _, o := range out {
		t.Error(o)
	}
}

// TestSizesReport runs the check over a made-up module: every file and
// function just over a limit is reported, and those at the limit, long
// test files, testdata and nested modules are not.
func TestSizesReport(t *testing.T) {
	root := t.TempDir()
	write := func(path, src string) {
		t.Helper()
		path = filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// fn is a function of exactly n lines.
	fn := func(decl string, n int) string {
		return decl + " {\n" + strings.Repeat("\t_ = 0\n", n-2) + "}\n"
	}
	// file is a file of exactly n lines (n >= 3).
	file := func(n int) string { return "package p\n" + strings.Repeat("\n", n-3) + "\nvar _ = 0\n" }
	write("go.mod", "module example.com/m\n")
	write("a/ok.go", "package a\n\n"+fn("func atLimit()", maxFuncLines)+fn("func (x *T[K]) M()", maxFuncLines))
	write("a/long.go", "package a\n\n"+fn("func tooLong()", maxFuncLines+1)+fn("func (x *T[K]) Method()", maxFuncLines+1))
	write("a/long_test.go", "package a\n\n"+fn("func TestLong(t *testing.T)", maxFuncLines+1)+file(maxFileLines + 10)[len("package p\n"):])
	write("b/big.go", file(maxFileLines+1))
	write("b/limit.go", file(maxFileLines))
	write("b/testdata/x.go", file(maxFileLines+1))
	write("c/go.mod", "module example.com/c\n")
	write("c/big.go", file(maxFileLines+1))

	got, files, err := offenders(root)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"a/long.go:3: func tooLong (81 lines, limit 80)",
		"a/long.go:84: func T.Method (81 lines, limit 80)",
		"a/long_test.go:3: func TestLong (81 lines, limit 80)",
		"b/big.go: file (501 lines, limit 500)",
	}
	if !slices.Equal(got, want) || files != 5 {
		t.Fatalf("offenders = %q over %d files\nwant %q over 5", got, files, want)
	}
}
