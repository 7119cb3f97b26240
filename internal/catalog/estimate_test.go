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
