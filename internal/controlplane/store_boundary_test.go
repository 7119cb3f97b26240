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

// sqlNotYetInStore are the files whose SQL has not moved into the store
// yet. A file leaves the list when its last query moves.
var sqlNotYetInStore = map[string]bool{
	"agentapi.go":       true,
	"linktoken.go":      true,
	"livemigrations.go": true,
	"migrations.go":     true,
	"timers.go":         true,
}

// sqlMethods are the database/sql methods that run statements. The ones
// without Context count only with arguments (url.Values has Query()).
var sqlMethods = map[string]bool{
	"ExecContext": true, "QueryContext": true, "QueryRowContext": true, "PrepareContext": true, "BeginTx": true,
	"Exec": false, "Query": false, "QueryRow": false, "Prepare": false,
}

// TestSQLOnlyInStore: only the store files (store.go, store_*.go) run SQL;
// handlers call store methods. It fails on a database/sql statement call in
// any other file of the package, except the files of sqlNotYetInStore —
// and on a file of that list that has none left (take it off the list).
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
		switch {
		case sqlNotYetInStore[name] && len(calls) == 0:
			t.Errorf("%s runs no SQL any more: take it off sqlNotYetInStore", name)
		case !sqlNotYetInStore[name] && len(calls) > 0:
			sort.Strings(calls)
			t.Errorf("%s runs SQL outside the store; make each a store method (store_*.go):\n\t%s", name, strings.Join(calls, "\n\t"))
		}
	}
	for name := range sqlNotYetInStore {
		if _, err := os.Stat(name); err != nil {
			t.Errorf("sqlNotYetInStore names %s, which does not exist", name)
		}
	}
}
