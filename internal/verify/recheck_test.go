package verify

import (
	"context"
	"log/slog"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/livemigrate/livemigrate/internal/migration"
)

// TestReReadByEqualityMatchesIn: a re-read by one equality find per _id
// (the plan for a few string or ObjectId _ids) returns exactly what one
// $in returns — the same documents, absent ones absent, an int64 _id never
// standing in for an int32 one — and the plan sends only string and
// ObjectId _ids to equality finds.
func TestReReadByEqualityMatchesIn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src, _ := pair(t)
	ns := migration.Namespace{DB: "app", Coll: "mixed"}
	oid := bson.NewObjectID()
	docs := []any{
		bson.D{{Key: "_id", Value: oid}, {Key: "s", Value: "oid"}},
		bson.D{{Key: "_id", Value: "str"}, {Key: "s", Value: "string"}},
		bson.D{{Key: "_id", Value: int32(5)}, {Key: "s", Value: "int32"}},
	}
	for i := range 20 {
		docs = append(docs, bson.D{{Key: "_id", Value: int64(100 + i)}, {Key: "s", Value: "filler"}})
	}
	if _, err := src.Database(ns.DB).Collection(ns.Coll).InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	key := func(v any) []byte {
		t.Helper()
		typ, b, err := bson.MarshalValue(v)
		if err != nil {
			t.Fatal(err)
		}
		return idKey(bson.RawValue{Type: typ, Value: b})
	}
	keys := [][]byte{key(oid), key("str"), key(bson.NewObjectID()), key("absent"), key(int32(5)), key(int64(5)), key(int64(101))}
	read := func(point int) fetched {
		t.Helper()
		v, err := New(Options{Source: src, Destination: src, PointLookups: point}, slog.Default())
		if err != nil {
			t.Fatal(err)
		}
		got, err := v.fetch(ctx, src, ns, keys)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	byEq, byIn := read(8), read(-1)
	if len(byEq.hash) != 4 || len(byIn.hash) != 4 {
		t.Fatalf("found %d documents by equality, %d by $in; want 4 each (oid, str, int32 5, int64 101)", len(byEq.hash), len(byIn.hash))
	}
	for k, h := range byIn.hash {
		if byEq.hash[k] != h {
			t.Errorf("_id %s: equality and $in re-reads differ", idString([]byte(k)))
		}
	}
	if _, ok := byEq.hash[string(key(int64(5)))]; ok {
		t.Errorf("int64 5 was found: the int32 5 stood in for it")
	}

	v, err := New(Options{Source: src, Destination: src}, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	point, in := v.lookupPlan(keys)
	if len(point) != 4 || len(in) != 3 || v.lookupMethod(keys) != "equality+in" {
		t.Errorf("plan: %d by equality, %d by $in (%s); want the 4 string/ObjectId _ids by equality, 3 numbers by $in", len(point), len(in), v.lookupMethod(keys))
	}
	many := make([][]byte, 0, DefaultPointLookups+1)
	for range DefaultPointLookups + 1 {
		many = append(many, key(bson.NewObjectID()))
	}
	if v.lookupMethod(many) != "in" {
		t.Errorf("%d ObjectIds: plan %s, want one $in above PointLookups", len(many), v.lookupMethod(many))
	}
}
