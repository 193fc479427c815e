package keys

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The package imports what its doc.go says, and never the HTTP layer:
// adapters call it, not the other way round.
func TestImports(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	const mod = "github.com/kmsledger/kmsledger/"
	allowed := map[string]bool{mod + "projections": true, mod + "commands": true, mod + "hsm": true, mod + "ledger": true}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			switch {
			case path == "net/http" || strings.HasPrefix(path, "net/http/"):
				t.Errorf("%s imports %s", name, path)
			case strings.HasPrefix(path, mod) && !allowed[path]:
				t.Errorf("%s imports %s: only projections, commands, hsm and ledger", name, path)
			}
		}
	}
}
