package importrules

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"path"
	"slices"
	"strings"
	"testing"
)

// pkg is the part of `go list -json` the rules read.
type pkg struct {
	ImportPath   string
	Name         string
	Standard     bool
	Module       *struct{ Path string }
	Imports      []string // direct imports of the package's non-test files
	Deps         []string // every package the non-test build needs, transitively
	TestImports  []string
	XTestImports []string
}

// graph is the module's package graph: every package of the module and
// every package they depend on, by import path.
type graph struct {
	module string
	pkgs   map[string]*pkg
}

// rel returns p relative to the module ("api/wire"), or "" if p is not a
// package of the module.
func (g graph) rel(p string) string {
	if p == g.module {
		return "."
	}
	if r, ok := strings.CutPrefix(p, g.module+"/"); ok {
		return r
	}
	return ""
}

// under reports whether the module-relative path r is dir or below it.
func under(r, dir string) bool { return r == dir || strings.HasPrefix(r, dir+"/") }

// harness reports whether r is a test harness package (ledger/ledgertest,
// api/nodetest, …): those wire real components together for tests.
func harness(r string) bool { return strings.HasSuffix(path.Base(r), "test") }

func (g graph) std(p string) bool { q := g.pkgs[p]; return q != nil && q.Standard }

// rule is one import rule: check returns one line per violation by the
// module package p (module-relative path r).
type rule struct {
	name  string
	check func(g graph, r string, p *pkg) []string
}

// moduleDeps returns the module-relative paths of p's non-test
// dependencies inside the module that are not allowed.
func moduleDeps(g graph, p *pkg, allowed func(r string) bool) []string {
	var bad []string
	for _, d := range p.Deps {
		if r := g.rel(d); r != "" && !allowed(r) {
			bad = append(bad, "depends on "+r)
		}
	}
	return bad
}

var rules = []rule{
	{"only ledger imports NATS", func(g graph, r string, p *pkg) []string {
		if under(r, "ledger") {
			return nil
		}
		var bad []string
		for _, imp := range slices.Concat(p.Imports, p.TestImports, p.XTestImports) {
			if strings.HasPrefix(imp, "github.com/nats-io/") {
				bad = append(bad, "imports "+imp)
			}
		}
		return bad
	}},
	{"ledger imports no other layer", func(g graph, r string, p *pkg) []string {
		if !under(r, "ledger") {
			return nil
		}
		return moduleDeps(g, p, func(d string) bool { return under(d, "ledger") })
	}},
	{"hsm imports no other layer but the protocol packages api/client and api/wire", func(g graph, r string, p *pkg) []string {
		if !under(r, "hsm") {
			return nil
		}
		return moduleDeps(g, p, func(d string) bool { return under(d, "hsm") || d == "api/client" || d == "api/wire" })
	}},
	{"api/wire is a leaf (standard library and protowire only)", func(g graph, r string, p *pkg) []string {
		if r != "api/wire" {
			return nil
		}
		var bad []string
		for _, imp := range p.Imports {
			if !g.std(imp) && imp != "google.golang.org/protobuf/encoding/protowire" {
				bad = append(bad, "imports "+imp)
			}
		}
		return append(bad, moduleDeps(g, p, func(string) bool { return false })...)
	}},
	{"api/client imports only api/wire and the standard library", func(g graph, r string, p *pkg) []string {
		if r != "api/client" {
			return nil
		}
		var bad []string
		for _, imp := range p.Imports {
			if !g.std(imp) && g.rel(imp) != "api/wire" {
				bad = append(bad, "imports "+imp)
			}
		}
		return append(bad, moduleDeps(g, p, func(d string) bool { return d == "api/wire" })...)
	}},
	{"projections and commands import nothing from api but api/wire", func(g graph, r string, p *pkg) []string {
		if !under(r, "projections") && !under(r, "commands") {
			return nil
		}
		return moduleDeps(g, p, func(d string) bool { return !under(d, "api") || d == "api/wire" })
	}},
	{"only api, cmd and test harnesses import the server package api", func(g graph, r string, p *pkg) []string {
		if under(r, "api") || under(r, "cmd") || harness(r) {
			return nil
		}
		return moduleDeps(g, p, func(d string) bool { return d != "api" })
	}},
	{"outside cmd only test harnesses import cmd; nothing imports a main package", func(g graph, r string, p *pkg) []string {
		var bad []string
		for _, imp := range slices.Concat(p.Imports, p.TestImports, p.XTestImports) {
			if q := g.pkgs[imp]; q != nil && q.Name == "main" {
				bad = append(bad, "imports the main package "+g.rel(imp))
			}
		}
		if !under(r, "cmd") && !harness(r) {
			bad = append(bad, moduleDeps(g, p, func(d string) bool { return !under(d, "cmd") })...)
		}
		return bad
	}},
	{"cmd/clientcmd imports only api/client and api/wire of the module", func(g graph, r string, p *pkg) []string {
		if !under(r, "cmd/clientcmd") {
			return nil
		}
		return moduleDeps(g, p, func(d string) bool { return d == "api/client" || d == "api/wire" })
	}},
}

// violations applies every rule to every package of the module and
// returns one line per violation, "rule: package: what".
func (g graph) violations() []string {
	var out []string
	for _, ip := range slices.Sorted(func(yield func(string) bool) {
		for k := range g.pkgs {
			if !yield(k) {
				return
			}
		}
	}) {
		r := g.rel(ip)
		if r == "" {
			continue
		}
		for _, ru := range rules {
			for _, v := range ru.check(g, r, g.pkgs[ip]) {
				out = append(out, ru.name+": "+r+": "+v)
			}
		}
	}
	return out
}

// loadGraph runs `go list -deps -json ./...` at the module root.
func loadGraph(t *testing.T) graph {
	t.Helper()
	mod, err := exec.Command("go", "list", "-m").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	cmd := exec.Command("go", "list", "-deps", "-json", "./...")
	cmd.Dir = "../.."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps -json ./...: %v\n%s", err, stderr.Bytes())
	}
	g := graph{module: strings.TrimSpace(string(mod)), pkgs: map[string]*pkg{}}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		g.pkgs[p.ImportPath] = &p
	}
	return g
}

func TestImportRules(t *testing.T) {
	g := loadGraph(t)
	// The graph must be the module's: a rule over an empty or foreign
	// graph would pass without looking at anything.
	for _, want := range []string{"ledger", "hsm", "api", "api/wire", "api/client", "projections", "commands", "cmd/clientcmd", "cmd/kmsledger"} {
		if g.pkgs[g.module+"/"+want] == nil {
			t.Fatalf("go list did not report %s/%s", g.module, want)
		}
	}
	for _, v := range g.violations() {
		t.Error(v)
	}
}

// TestImportRulesReport feeds a made-up graph that breaks every rule once
// and checks each break is reported under its rule, and that the same
// graph without the breaks is clean.
func TestImportRulesReport(t *testing.T) {
	const m = "example.com/m"
	std := func(p string) *pkg { return &pkg{ImportPath: p, Standard: true} }
	mk := func(r, name string, imports ...string) *pkg {
		p := &pkg{ImportPath: m + "/" + r, Name: name}
		for _, i := range imports {
			if i != "fmt" && !strings.Contains(i, ".") {
				i = m + "/" + i
			}
			p.Imports = append(p.Imports, i)
			p.Deps = append(p.Deps, i)
		}
		return p
	}
	clean := []*pkg{
		std("fmt"),
		{ImportPath: "github.com/nats-io/nats.go"},
		{ImportPath: "google.golang.org/protobuf/encoding/protowire"},
		mk("ledger", "ledger", "github.com/nats-io/nats.go", "fmt"),
		mk("ledger/ledgertest", "ledgertest", "ledger"),
		mk("hsm", "hsm", "fmt"),
		mk("api/wire", "wire", "fmt", "google.golang.org/protobuf/encoding/protowire"),
		mk("api/client", "client", "api/wire", "fmt"),
		mk("hsm/remotekms", "remotekms", "hsm", "api/client", "api/wire"),
		mk("projections", "projections", "ledger", "hsm", "api/wire"),
		mk("commands", "commands", "projections", "ledger", "api/wire"),
		mk("api", "api", "commands", "projections", "api/client"),
		mk("cmd/node", "node", "api"),
		mk("api/nodetest", "nodetest", "cmd/node", "api"),
		mk("cmd/clientcmd", "clientcmd", "api/client", "api/wire"),
		mk("cmd/kmsledger", "main", "cmd/node", "cmd/clientcmd", "api"),
	}
	g := graph{module: m, pkgs: map[string]*pkg{}}
	for _, p := range clean {
		g.pkgs[p.ImportPath] = p
	}
	if v := g.violations(); len(v) != 0 {
		t.Fatalf("clean graph reported:\n%s", strings.Join(v, "\n"))
	}

	breaks := []*pkg{
		mk("migrate", "migrate", "github.com/nats-io/nats.go"),
		mk("ledger/x", "x", "projections"),
		mk("hsm/y", "y", "ledger"),
		mk("api/wire/z", "z"), // stands in for api/wire below
		mk("projections/keys", "keys", "api"),
		mk("commands/w", "w", "api/client"),
		mk("migrate/kes", "kes", "api"),
		mk("projections/access", "access", "cmd/node"),
		mk("api/v", "v", "cmd/kmsledger"),
		mk("cmd/clientcmd/u", "u", "cmd/node"),
	}
	for _, p := range breaks {
		g.pkgs[p.ImportPath] = p
	}
	g.pkgs[m+"/api/wire"] = mk("api/wire", "wire", "ledger", "github.com/nats-io/nats.go")
	g.pkgs[m+"/api/client"] = mk("api/client", "client", "api/wire", "hsm")
	got := strings.Join(g.violations(), "\n")
	for _, want := range []string{
		"only ledger imports NATS: migrate: imports github.com/nats-io/nats.go",
		"only ledger imports NATS: api/wire: imports github.com/nats-io/nats.go",
		"ledger imports no other layer: ledger/x: depends on projections",
		"but the protocol packages api/client and api/wire: hsm/y: depends on ledger",
		"api/wire is a leaf (standard library and protowire only): api/wire: imports github.com/nats-io/nats.go",
		"api/wire is a leaf (standard library and protowire only): api/wire: depends on ledger",
		"api/client imports only api/wire and the standard library: api/client: imports " + m + "/hsm",
		"api/client imports only api/wire and the standard library: api/client: depends on hsm",
		"projections and commands import nothing from api but api/wire: projections/keys: depends on api",
		"projections and commands import nothing from api but api/wire: commands/w: depends on api/client",
		"only api, cmd and test harnesses import the server package api: migrate/kes: depends on api",
		"outside cmd only test harnesses import cmd; nothing imports a main package: projections/access: depends on cmd/node",
		"nothing imports a main package: api/v: imports the main package cmd/kmsledger",
		"cmd/clientcmd imports only api/client and api/wire of the module: cmd/clientcmd/u: depends on cmd/node",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("violation not reported: %s\ngot:\n%s", want, got)
		}
	}
}
