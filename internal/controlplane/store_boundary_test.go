package controlplane

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// sqlMethods are the database/sql methods that run statements. The ones
// without Context count only with arguments (url.Values has Query()).
var sqlMethods = map[string]bool{
	"ExecContext": true, "QueryContext": true, "QueryRowContext": true, "PrepareContext": true, "BeginTx": true,
	"Exec": false, "Query": false, "QueryRow": false, "Prepare": false,
}

// TestSQLOnlyInStore: only the store files (store.go, store_*.go) run SQL;
// handlers call store methods. It fails on a database/sql statement call in
// any other file of the package.
func TestSQLOnlyInStore(t *testing.T) {
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") || name == "store.go" || strings.HasPrefix(name, "store_") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		var calls []string
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if withContext, known := sqlMethods[sel.Sel.Name]; known && (withContext || len(call.Args) > 0) {
				calls = append(calls, fset.Position(call.Pos()).String()+" "+sel.Sel.Name)
			}
			return true
		})
		if len(calls) > 0 {
			sort.Strings(calls)
			t.Errorf("%s runs SQL outside the store; make each a store method (store_*.go):\n\t%s", name, strings.Join(calls, "\n\t"))
		}
	}
}
