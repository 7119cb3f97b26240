package catalog

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/livemigrate/livemigrate/internal/migration"
	"github.com/livemigrate/livemigrate/internal/mongotest"
)

func TestScope(t *testing.T) {
	s, err := NewScope(
		[]migration.Filter{{Database: "app"}, {DatabaseRegex: &migration.Regex{Pattern: "^LOGS", Options: "i"}, CollectionsRegex: &migration.Regex{Pattern: "^2025"}}},
		[]migration.Filter{{Database: "app", Collections: []string{"secret"}}},
		"")
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]bool{
		"app.users": true, "app.secret": false, "app.system.views": false,
		"logs.2025_01": true, "logs.2024_12": false, "other.x": false,
		"admin.users": false, "local.oplog.rs": false, "config.chunks": false,
		DefaultMetadataDB + ".run": false,
	}
	got := map[string]bool{}
	for ns := range cases {
		n, _ := migration.ParseNamespace(ns)
		got[ns] = s.Match(n)
	}
	if diff := cmp.Diff(cases, got); diff != "" {
		t.Errorf("Match (-want +got):\n%s", diff)
	}
	all, _ := NewScope(nil, nil, "meta")
	for ns, want := range map[string]bool{"x.y": true, "meta.run": false, "admin.x": false} {
		n, _ := migration.ParseNamespace(ns)
		if all.Match(n) != want {
			t.Errorf("no filters: Match(%s) = %v", ns, !want)
		}
	}
	if _, err := NewScope([]migration.Filter{{Collections: []string{"a"}}}, nil, ""); err == nil {
		t.Error("a filter without database was accepted")
	}
	if _, err := NewScope(nil, []migration.Filter{{DatabaseRegex: &migration.Regex{Pattern: "("}}}, ""); err == nil {
		t.Error("a bad regex was accepted")
	}
}

func TestCreateCommandStripsServerFields(t *testing.T) {
	opts, _ := bson.Marshal(bson.D{{Key: "clusteredIndex", Value: bson.D{{Key: "v", Value: 2}, {Key: "key", Value: bson.D{{Key: "_id", Value: 1}}}, {Key: "unique", Value: true}}}})
	cmd, err := CreateCommand(Collection{NS: migration.Namespace{DB: "d", Coll: "c"}, Options: opts})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := bson.MarshalExtJSON(cmd, false, false)
	want := `{"create":"c","clusteredIndex":{"key":{"_id":1},"unique":true}}`
	if string(got) != want {
		t.Errorf("create command %s, want %s", got, want)
	}
}

func TestRefusalsAreReportedPerNamespaceAndIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dst := mongotest.Client(t, mongotest.StartDestination(t))
	ns := migration.Namespace{DB: "d", Coll: "validated"}
	validator, _ := bson.Marshal(bson.D{{Key: "validator", Value: bson.D{{Key: "x", Value: bson.D{{Key: "$type", Value: "string"}}}}}})
	r, err := Create(ctx, dst, Collection{NS: ns, Kind: KindCollection, Options: validator})
	if err != nil {
		t.Fatal(err)
	}
	if r == nil || r.NS != ns || r.Kind != "collection" || !strings.Contains(r.Spec, "validator") || !strings.Contains(r.Reason, "validator") {
		t.Fatalf("validator refusal: %+v", r)
	}
	view, _ := bson.Marshal(bson.D{{Key: "viewOn", Value: "base"}, {Key: "pipeline", Value: bson.A{}}})
	if r, err := Create(ctx, dst, Collection{NS: migration.Namespace{DB: "d", Coll: "v"}, Kind: KindView, Options: view}); err != nil || r == nil || r.Kind != "view" {
		t.Fatalf("view refusal: %+v, %v", r, err)
	}

	base := migration.Namespace{DB: "d", Coll: "base"}
	if r, err := Create(ctx, dst, Collection{NS: base, Kind: KindCollection}); r != nil || err != nil {
		t.Fatalf("create %s: %+v %v", base, r, err)
	}
	if r, err := Create(ctx, dst, Collection{NS: base, Kind: KindCollection}); r != nil || err != nil {
		t.Fatalf("create %s again (idempotent): %+v %v", base, r, err)
	}
	ttl, _ := bson.Marshal(bson.D{{Key: "key", Value: bson.D{{Key: "at", Value: 1}}}, {Key: "name", Value: "at_ttl"}, {Key: "expireAfterSeconds", Value: 60}})
	r, err = CreateIndex(ctx, dst, base, "at_ttl", ttl)
	if err != nil {
		t.Fatal(err)
	}
	if r == nil || r.Kind != "index" || r.Name != "at_ttl" || !strings.Contains(r.Spec, "expireAfterSeconds") || r.Reason == "" {
		t.Fatalf("TTL index refusal: %+v", r)
	}
	e := &RefusedError{Refusals: []Refusal{*r}}
	if !strings.Contains(e.Error(), "at_ttl") || !strings.Contains(e.Error(), string(PolicySkip)) {
		t.Errorf("refused error does not name the index and the way out: %s", e)
	}
}

func TestRelaxAndRestoreUnique(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dst := mongotest.Client(t, mongotest.StartDestination(t))
	ns := migration.Namespace{DB: "d", Coll: "u"}
	spec, _ := bson.Marshal(bson.D{{Key: "key", Value: bson.D{{Key: "email", Value: 1}}}, {Key: "name", Value: "email_1"}, {Key: "unique", Value: true}})
	ix := Index{Name: "email_1", Spec: spec}
	if r, err := CreateIndex(ctx, dst, ns, ix.Name, ix.Relaxed()); r != nil || err != nil {
		t.Fatalf("create relaxed: %+v %v", r, err)
	}
	coll := dst.Database(ns.DB).Collection(ns.Coll)
	// A transient duplicate is accepted while relaxed.
	if _, err := coll.InsertMany(ctx, []any{bson.D{{Key: "_id", Value: 1}, {Key: "email", Value: "a"}}, bson.D{{Key: "_id", Value: 2}, {Key: "email", Value: "a"}}}); err != nil {
		t.Fatalf("insert a transient duplicate into a relaxed index: %v", err)
	}
	if err := RestoreUnique(ctx, dst, ns, ix); err == nil || !strings.Contains(err.Error(), "email_1") {
		t.Fatalf("restore over duplicates: got %v, want an error naming the index", err)
	}
	if _, err := coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: 2}}); err != nil {
		t.Fatal(err)
	}
	for range 2 { // idempotent, and repairs a restore interrupted after the drop
		if err := RestoreUnique(ctx, dst, ns, ix); err != nil {
			t.Fatalf("restore: %v", err)
		}
	}
	ixs, err := ListIndexes(ctx, dst, ns)
	if err != nil || len(ixs) != 1 || !ixs[0].Unique() {
		t.Fatalf("indexes after restore: %+v %v", ixs, err)
	}
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 3}, {Key: "email", Value: "a"}}); err == nil {
		t.Error("restored index accepts a duplicate")
	}
}
