package verify

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/livemigrate/livemigrate/internal/migration"
	"github.com/livemigrate/livemigrate/internal/mongotest"
)

// pair starts a source and a destination and returns clients for both.
func pair(t *testing.T) (src, dst *mongo.Client) {
	t.Helper()
	return mongotest.Client(t, mongotest.StartSource(t)), mongotest.Client(t, mongotest.StartDestination(t))
}

// testDoc is a document with nested values of several types.
func testDoc(id int32) bson.D {
	return bson.D{
		{Key: "_id", Value: id},
		{Key: "name", Value: fmt.Sprintf("item-%04d", id)},
		{Key: "n", Value: id * 7},
		{Key: "price", Value: float64(id) / 4},
		{Key: "meta", Value: bson.D{{Key: "a", Value: id % 3}, {Key: "b", Value: "x"}, {Key: "at", Value: time.UnixMilli(1700000000000 + int64(id)).UTC()}}},
		{Key: "tags", Value: bson.A{"t", id, bson.D{{Key: "k", Value: true}}}},
	}
}

// seed writes the same documents and indexes to every client.
func seed(t *testing.T, ns string, n int, clients ...*mongo.Client) {
	t.Helper()
	ctx := context.Background()
	db, coll, _ := cut(ns)
	docs := make([]any, n)
	for i := range docs {
		docs[i] = testDoc(int32(i))
	}
	for _, c := range clients {
		cl := c.Database(db).Collection(coll)
		if _, err := cl.InsertMany(ctx, docs); err != nil {
			t.Fatalf("seed %s: %v", ns, err)
		}
		if _, err := cl.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "name", Value: 1}}, Options: options.Index().SetUnique(true)}); err != nil {
			t.Fatalf("index %s: %v", ns, err)
		}
	}
}

func cut(ns string) (string, string, bool) {
	for i := range ns {
		if ns[i] == '.' {
			return ns[:i], ns[i+1:], true
		}
	}
	return ns, "", false
}

func run(t *testing.T, o Options) *Report {
	t.Helper()
	if o.Rechecks == 0 {
		o.Rechecks = 2
		o.RecheckBackoff = 20 * time.Millisecond
	}
	o.TempDir = t.TempDir()
	o.MaxExamples = 100
	v, err := New(o, nil)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := v.Run(context.Background())
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return rep
}

// summary is what the difference tests compare.
type summary struct {
	Namespace                 string
	SourceCount, DestCount    int64
	Matched                   int64
	Missing, Extra, Differing []string
	Indexes                   []string
	Options                   []string
}

func summarizeReport(rep *Report) []summary {
	var out []summary
	for _, n := range rep.Namespaces {
		s := summary{Namespace: n.Namespace, SourceCount: n.Source.Count, DestCount: n.Destination.Count, Matched: n.Matched,
			Missing: sorted(n.Examples.Missing), Extra: sorted(n.Examples.Extra), Differing: sorted(n.Examples.Differing)}
		if int64(len(n.Examples.Missing)) != n.Missing || int64(len(n.Examples.Extra)) != n.Extra || int64(len(n.Examples.Differing)) != n.Differing {
			s.Namespace += fmt.Sprintf(" (totals %d/%d/%d disagree with examples)", n.Missing, n.Extra, n.Differing)
		}
		for _, d := range n.IndexDiffs {
			s.Indexes = append(s.Indexes, d.Name+" "+string(d.Kind))
		}
		for _, d := range n.OptionDiffs {
			s.Options = append(s.Options, d.Name+" "+string(d.Kind))
		}
		out = append(out, s)
	}
	return out
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	if len(s) == 0 {
		return nil
	}
	return s
}

func num(i int32) string { return fmt.Sprintf(`{"$numberInt":"%d"}`, i) }

// inject breaks app.items on the destination in every way the report must
// tell apart, and returns nothing: the expectations are in the tests.
func inject(t *testing.T, dst *mongo.Client) {
	t.Helper()
	ctx := context.Background()
	c := dst.Database("app").Collection("items")
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("inject %s: %v", what, err)
		}
	}
	_, err := c.DeleteOne(ctx, bson.D{{Key: "_id", Value: int32(10)}})
	must("delete", err)
	_, err = c.UpdateOne(ctx, bson.D{{Key: "_id", Value: int32(20)}}, bson.D{{Key: "$set", Value: bson.D{{Key: "meta.b", Value: "y"}}}})
	must("alter field", err)
	d := testDoc(30)
	d[1], d[2] = d[2], d[1] // field order: n before name
	_, err = c.ReplaceOne(ctx, bson.D{{Key: "_id", Value: int32(30)}}, d)
	must("reorder fields", err)
	// int32 → int64, same number. FerretDB skips a replace whose new
	// document compares equal to the old one, so delete and insert.
	d = testDoc(40)
	d[2].Value = int64(40 * 7)
	_, err = c.DeleteOne(ctx, bson.D{{Key: "_id", Value: int32(40)}})
	must("change type", err)
	_, err = c.InsertOne(ctx, d)
	must("change type", err)
	_, err = c.InsertMany(ctx, []any{testDoc(1000), testDoc(1001)})
	must("insert extra", err)
	_, err = c.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "n", Value: 1}, {Key: "price", Value: -1}}})
	must("add index", err)
	must("drop index", c.Indexes().DropOne(ctx, "name_1"))
}

func TestInjectedDifferencesFoundExactly(t *testing.T) {
	t.Parallel()
	src, dst := pair(t)
	seed(t, "app.items", 300, src, dst)
	seed(t, "app.other", 50, src, dst)
	seed(t, "crm.people", 20, src, dst)
	inject(t, dst)

	want := []summary{
		{Namespace: "app.items", SourceCount: 300, DestCount: 301, Matched: 296,
			Missing: []string{num(10)}, Extra: []string{num(1000), num(1001)}, Differing: []string{num(20), num(30), num(40)},
			Indexes: []string{"n_1_price_-1 extra", "name_1 missing"}},
		{Namespace: "app.other", SourceCount: 50, DestCount: 50, Matched: 50},
		{Namespace: "crm.people", SourceCount: 20, DestCount: 20, Matched: 20},
	}
	rep := run(t, Options{Source: src, Destination: dst})
	if diff := cmp.Diff(want, summarizeReport(rep)); diff != "" {
		t.Errorf("byte-exact report (-want +got):\n%s", diff)
	}
	if rep.Equal() {
		t.Error("Equal() = true for a destination with differences")
	}

	t.Run("IgnoreFieldOrder", func(t *testing.T) {
		want := slices.Clone(want)
		want[0].Matched = 297
		want[0].Differing = []string{num(20), num(40)}
		rep := run(t, Options{Source: src, Destination: dst, IgnoreFieldOrder: true, RunID: "ignore-order"})
		if diff := cmp.Diff(want, summarizeReport(rep)); diff != "" {
			t.Errorf("report ignoring field order (-want +got):\n%s", diff)
		}
	})
	t.Run("Filters", func(t *testing.T) {
		rep := run(t, Options{Source: src, Destination: dst, RunID: "filters",
			Include: []migration.Filter{{Database: "app"}, {DatabaseRegex: &migration.Regex{Pattern: "^CRM$", Options: "i"}}},
			Exclude: []migration.Filter{{Database: "app", Collections: []string{"items"}}}})
		got := summarizeReport(rep)
		if diff := cmp.Diff(want[1:], got); diff != "" {
			t.Errorf("filtered report (-want +got):\n%s", diff)
		}
		if !rep.Equal() {
			t.Error("Equal() = false with the broken namespace excluded")
		}
	})
}

func TestMissingCollectionAndOptions(t *testing.T) {
	t.Parallel()
	src, dst := pair(t)
	ctx := context.Background()
	seed(t, "app.a", 30, src)
	seed(t, "app.b", 5, src, dst)
	if err := src.Database("app").CreateCollection(ctx, "capped", options.CreateCollection().SetCapped(true).SetSizeInBytes(1<<20).SetMaxDocuments(100)); err != nil {
		t.Fatal(err)
	}
	if err := dst.Database("app").CreateCollection(ctx, "capped", options.CreateCollection().SetCapped(true).SetSizeInBytes(1<<20).SetMaxDocuments(50)); err != nil {
		t.Fatal(err)
	}
	seed(t, "other.only_dst", 3, dst)

	rep := run(t, Options{Source: src, Destination: dst})
	var ids []string
	for i := range int32(30) {
		ids = append(ids, num(i))
	}
	slices.Sort(ids)
	want := []summary{
		{Namespace: "app.a", SourceCount: 30, Missing: ids, Indexes: []string{"_id_ missing", "name_1 missing"}},
		{Namespace: "app.b", SourceCount: 5, DestCount: 5, Matched: 5},
		{Namespace: "app.capped", Options: []string{"max different"}},
		{Namespace: "other.only_dst", DestCount: 3, Extra: []string{num(0), num(1), num(2)}, Indexes: []string{"_id_ extra", "name_1 extra"}},
	}
	if diff := cmp.Diff(want, summarizeReport(rep)); diff != "" {
		t.Errorf("report (-want +got):\n%s", diff)
	}
	got := map[string][2]bool{}
	for _, n := range rep.Namespaces {
		got[n.Namespace] = [2]bool{n.Source.Exists, n.Destination.Exists}
	}
	wantExists := map[string][2]bool{"app.a": {true, false}, "app.b": {true, true}, "app.capped": {true, true}, "other.only_dst": {false, true}}
	if diff := cmp.Diff(wantExists, got); diff != "" {
		t.Errorf("existence (-want +got):\n%s", diff)
	}
}

func TestRepairMakesDestinationEqual(t *testing.T) {
	t.Parallel()
	src, dst := pair(t)
	seed(t, "app.items", 300, src, dst)
	inject(t, dst)
	// A destination document whose _id has another numeric type than the source's.
	ctx := context.Background()
	if _, err := dst.Database("app").Collection("items").DeleteOne(ctx, bson.D{{Key: "_id", Value: int32(50)}}); err != nil {
		t.Fatal(err)
	}
	d := testDoc(50)
	d[0].Value = int64(50)
	if _, err := dst.Database("app").Collection("items").InsertOne(ctx, d); err != nil {
		t.Fatal(err)
	}

	rep := run(t, Options{Source: src, Destination: dst, Repair: true})
	n := rep.Namespaces[0]
	if n.Repaired != 8 {
		t.Errorf("repaired %d documents, want 8 (1 missing, 3 differing, 2 extra, and the retyped _id as 1 extra + 1 missing)", n.Repaired)
	}
	if n.Missing+n.Extra+n.Differing != 0 {
		t.Errorf("after repair: missing %d extra %d differing %d, want none", n.Missing, n.Extra, n.Differing)
	}
	// Indexes are reported, not repaired.
	if len(n.IndexDiffs) != 2 {
		t.Errorf("index diffs after repair: %+v, want the 2 injected", n.IndexDiffs)
	}
	rep = run(t, Options{Source: src, Destination: dst, RunID: "after-repair"})
	got := summarizeReport(rep)
	want := []summary{{Namespace: "app.items", SourceCount: 300, DestCount: 300, Matched: 300, Indexes: []string{"n_1_price_-1 extra", "name_1 missing"}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("fresh verify after repair (-want +got):\n%s", diff)
	}
}
