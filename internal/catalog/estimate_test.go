package catalog

import (
	"context"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/livemigrate/livemigrate/internal/migration"
	"github.com/livemigrate/livemigrate/internal/mongotest"
)

func TestEstimate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := mongotest.StartServer(t)
	c := mongotest.Client(t, srv)
	coll := c.Database("app").Collection("items")
	docs := make([]any, 500)
	for i := range docs {
		docs[i] = bson.D{{Key: "_id", Value: i}, {Key: "text", Value: strings.Repeat("x", 1000)}}
	}
	if _, err := coll.InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	n, size, err := Estimate(ctx, c, migration.Namespace{DB: "app", Coll: "items"})
	if err != nil {
		t.Fatal(err)
	}
	// FerretDB counts rows exactly; the size is the sampled BSON size of
	// the documents (1,025 bytes each), not SQLite's pages.
	if n != 500 || size != 500*1025 {
		t.Errorf("Estimate = %d documents, %d bytes; want 500 documents of 1,025 bytes", n, size)
	}
	n, size, err = Estimate(ctx, c, migration.Namespace{DB: "app", Coll: "missing"})
	if err != nil || n != 0 || size != 0 {
		t.Errorf("Estimate of a missing collection = %d, %d, %v; want 0, 0, nil", n, size, err)
	}
}

// TestListExactDatabases: include filters that name their databases
// exactly list the same namespaces without listDatabases, a database that
// does not exist included; a regex or no filters list the databases.
func TestListExactDatabases(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := mongotest.StartServer(t)
	c := mongotest.Client(t, srv)
	for _, ns := range []string{"app.users", "app.orders", "logs.a", "other.x"} {
		n, _ := migration.ParseNamespace(ns)
		if _, err := c.Database(n.DB).Collection(n.Coll).InsertOne(ctx, bson.D{{Key: "_id", Value: 1}}); err != nil {
			t.Fatal(err)
		}
	}
	names := func(include, exclude []migration.Filter) ([]string, bool) {
		t.Helper()
		s, err := NewScope(include, exclude, "")
		if err != nil {
			t.Fatal(err)
		}
		_, exact := s.ExactDatabases()
		colls, err := List(ctx, c, s)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, col := range colls {
			out = append(out, col.NS.String())
		}
		return out, exact
	}
	exact := []migration.Filter{{Database: "logs"}, {Database: "app", Collections: []string{"users"}}, {Database: "missing"}, {Database: "app"}}
	got, ok := names(exact, []migration.Filter{{Database: "app", Collections: []string{"orders"}}})
	if want := []string{"app.users", "logs.a"}; !ok || strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("exact databases: List = %v (exact %v); want %v without listDatabases", got, ok, want)
	}
	got, ok = names([]migration.Filter{{DatabaseRegex: &migration.Regex{Pattern: "^(app|logs)$"}}}, nil)
	if want := []string{"app.orders", "app.users", "logs.a"}; ok || strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("database regex: List = %v (exact %v); want %v from listDatabases", got, ok, want)
	}
	if got, ok = names(nil, nil); ok || len(got) != 4 {
		t.Errorf("no filters: List = %v (exact %v); want all 4 from listDatabases", got, ok)
	}
	s, _ := NewScope([]migration.Filter{{Database: "admin"}, {Database: DefaultMetadataDB}, {Database: "b"}, {Database: "a"}, {Database: "b"}}, []migration.Filter{{Database: "a"}}, "")
	if dbs, ok := s.ExactDatabases(); !ok || strings.Join(dbs, ",") != "b" {
		t.Errorf("ExactDatabases = %v, %v; want [b]: system, metadata, excluded and repeated databases dropped", dbs, ok)
	}
}
