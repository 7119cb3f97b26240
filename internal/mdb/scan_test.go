package mdb_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/livemigrate/livemigrate/internal/mdb"
	"github.com/livemigrate/livemigrate/internal/mongotest"
)

// Scan with either method returns every document of a collection, byte for
// byte as find does, across many batches (the sizer starts at one document
// and caps them at 64); a capped collection comes in insertion order.
// FerretDB's scan method is the aggregate one; an unknown method is refused.
func TestScanMethods(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := mongotest.StartDestination(t)
	c := mongotest.Client(t, srv)
	coll := c.Database("scan").Collection("docs")
	var want []bson.Raw
	for i := range 300 {
		doc := bson.D{{Key: "_id", Value: fmt.Sprintf("k%03d", 299-i)}, {Key: "n", Value: int64(i)}, {Key: "pad", Value: strings.Repeat("x", i)},
			{Key: "sub", Value: bson.D{{Key: "a", Value: bson.A{1, "two", 3.5}}}}}
		raw, err := bson.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, raw)
	}
	if _, err := coll.InsertMany(ctx, want); err != nil {
		t.Fatal(err)
	}
	if err := c.Database("scan").CreateCollection(ctx, "capped", options.CreateCollection().SetCapped(true).SetSizeInBytes(1<<20)); err != nil {
		t.Fatal(err)
	}
	for _, d := range want[:50] {
		if _, err := c.Database("scan").Collection("capped").InsertOne(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	si, err := mdb.Probe(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if m := si.ScanMethod(); m != mdb.ScanAggregate {
		t.Errorf("FerretDB's scan method = %q, want %q", m, mdb.ScanAggregate)
	}
	read := func(coll *mongo.Collection, m mdb.ScanMethod) []bson.Raw {
		t.Helper()
		cur, err := mdb.Scan(ctx, coll, mdb.NewBatchSizer(mdb.SizerOptions{MaxDocs: 64}), m)
		if err != nil {
			t.Fatalf("scan %s with %q: %v", coll.Name(), m, err)
		}
		defer cur.Close(ctx)
		var got []bson.Raw
		for cur.Next(ctx) {
			got = append(got, bytes.Clone(cur.Current()))
		}
		if err := cur.Err(); err != nil {
			t.Fatalf("scan %s with %q: %v", coll.Name(), m, err)
		}
		return got
	}
	byID := func(docs []bson.Raw) map[string]bson.Raw {
		m := map[string]bson.Raw{}
		for _, d := range docs {
			m[d.Lookup("_id").StringValue()] = d
		}
		return m
	}
	for _, m := range []mdb.ScanMethod{mdb.ScanFind, mdb.ScanAggregate, ""} {
		got := read(coll, m)
		if len(got) != len(want) {
			t.Fatalf("%q: %d documents, want %d", m, len(got), len(want))
		}
		g := byID(got)
		for _, w := range want {
			if d := g[w.Lookup("_id").StringValue()]; !bytes.Equal(d, w) {
				t.Errorf("%q: document %s = %s, want %s", m, w.Lookup("_id"), d, w)
			}
		}
		capped := read(c.Database("scan").Collection("capped"), m)
		for i, d := range capped {
			if !bytes.Equal(d, want[i]) {
				t.Fatalf("%q: capped document %d = %s, want %s (insertion order)", m, i, d, want[i])
			}
		}
		if len(capped) != 50 {
			t.Errorf("%q: %d capped documents, want 50", m, len(capped))
		}
	}
	if _, err := mdb.Scan(ctx, coll, mdb.NewBatchSizer(mdb.SizerOptions{}), "mapReduce"); err == nil || !strings.Contains(err.Error(), `scan method "mapReduce": want "find" or "aggregate"`) {
		t.Errorf("unknown method: err = %v", err)
	}
}
