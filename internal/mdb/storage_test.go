package mdb_test

import (
	"context"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/livemigrate/livemigrate/internal/mdb"
	"github.com/livemigrate/livemigrate/internal/mongotest"
)

// DetectStorage tells FerretDB's SQLite backend from its PostgreSQL one by
// the plan of a find on an existing collection, and says it does not know
// for a missing one; only SQLite builds small collections' indexes first.
func TestDetectStorage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opts []mongotest.Option
		want mdb.Storage
	}{
		{"sqlite", nil, mdb.StorageSQLite},
		{"postgresql", []mongotest.Option{mongotest.WithPostgreSQL()}, mdb.StoragePostgreSQL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			c := mongotest.Client(t, mongotest.StartDestination(t, tc.opts...))
			info, err := mdb.Probe(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := mdb.DetectStorage(ctx, c, info, "probe", "missing"); err != nil || got != mdb.StorageUnknown {
				t.Fatalf("missing collection: %q, %v; want %q", got, err, mdb.StorageUnknown)
			}
			if _, err := c.Database("probe").Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}}); err != nil {
				t.Fatal(err)
			}
			got, err := mdb.DetectStorage(ctx, c, info, "probe", "c")
			if err != nil || got != tc.want {
				t.Fatalf("DetectStorage = %q, %v; want %q", got, err, tc.want)
			}
			if up := got.IndexesFirstUpTo(); (up > 0) != (tc.want == mdb.StorageSQLite) {
				t.Fatalf("%s: IndexesFirstUpTo = %d", got, up)
			}
		})
	}
	if got, err := mdb.DetectStorage(context.Background(), nil, mdb.ServerInfo{VersionString: "7.0.5"}, "x", "y"); err != nil || got != mdb.StorageMongoDB {
		t.Fatalf("MongoDB: %q, %v", got, err)
	}
}
