package engine

import (
	"context"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/livemigrate/livemigrate/internal/mdb"
	"github.com/livemigrate/livemigrate/internal/migration"
	"github.com/livemigrate/livemigrate/internal/mongotest"
)

func indexNames(t *testing.T, c *mongo.Client, ns migration.Namespace) []string {
	t.Helper()
	specs, err := c.Database(ns.DB).Collection(ns.Coll).Indexes().ListSpecifications(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range specs {
		names = append(names, s.Name)
	}
	slices.Sort(names)
	return names
}

// TestInvariantCopyCaptureApplyCommit: copy + capture + apply while a
// workload writes (inserts, updates with $unset, replaces, deletes) and
// collections and indexes are created and dropped; after commit the
// destination equals the source's final state document for document.
func TestInvariantCopyCaptureApplyCommit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srcSrv, dstSrv := mongotest.StartSource(t), mongotest.StartDestination(t)
	src, dst := mongotest.Client(t, srcSrv), mongotest.Client(t, dstSrv)
	items := migration.Namespace{DB: "app", Coll: "items"}
	seed(t, src, items, 0, 500)

	wl := mongotest.StartWorkload(ctx, src, mongotest.WorkloadOptions{
		Namespaces: []string{"app.items", "app.orders"}, Writers: 2, Rate: 150, DocBytes: 200, Seed: 7, IDBase: 1_000_000,
	})
	e, err := New(Options{Source: mdb.URI(srcSrv.URI()), Destination: mdb.URI(dstSrv.URI())}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- e.Run(runCtx) }()

	mongotest.WaitFor(t, "change application", 60*time.Second, func() bool { return e.Progress().Phase == migration.PhaseApplying })
	// DDL while the workload runs.
	tmp := src.Database("app").Collection("tmp")
	if _, err := tmp.InsertMany(ctx, []any{bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "_id", Value: 2}}}); err != nil {
		t.Fatal(err)
	}
	if err := src.Database("app").CreateCollection(ctx, "created"); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Database("app").Collection("created").InsertOne(ctx, bson.D{{Key: "_id", Value: "c1"}, {Key: "v", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Database("app").Collection("items").Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "n", Value: 1}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Database("app").Collection("items").Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "s", Value: 1}}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if err := src.Database("app").Collection("items").Indexes().DropOne(ctx, "s_1"); err != nil {
		t.Fatal(err)
	}
	if err := tmp.Drop(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	if _, err := wl.Stop(); err != nil {
		t.Fatalf("workload: %v", err)
	}
	mongotest.WaitFor(t, "canCommit", 60*time.Second, func() bool { return e.Progress().CanCommit })
	if err := e.Commit(); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("Run: %v", err)
	}
	p := e.Progress()
	if p.State != migration.StateCommitted || !p.CanWrite {
		t.Fatalf("after commit: state %s canWrite %v, want COMMITTED and true", p.State, p.CanWrite)
	}
	rep := e.CommitReport()
	if rep == nil || !rep.Verified || rep.EventsApplied == 0 {
		t.Fatalf("commit report = %+v, want verified with events applied", rep)
	}
	t.Logf("commit report: %+v", *rep)
	// An exact change application leaves nothing for verification to
	// find: a lost or misapplied event would show here.
	if rep.Found.Total() != 0 || rep.Repaired != 0 {
		t.Errorf("verification at commit found %+v and repaired %d documents, want 0: change application lost or misapplied events", rep.Found, rep.Repaired)
	}
	if rep.Mode != VerifyContinuous || rep.Coverage == nil || !rep.Coverage.Complete {
		t.Errorf("mode %q coverage %+v, want continuous with complete coverage", rep.Mode, rep.Coverage)
	}
	if len(rep.Verification) != rep.Namespaces {
		t.Errorf("commit report lists %d namespaces' verification, want %d", len(rep.Verification), rep.Namespaces)
	}
	for _, n := range rep.Verification {
		if n.Namespace == "app.items" && n.Matched == 0 {
			t.Errorf("app.items verified with 0 matched documents: %+v", n)
		}
	}

	if diff := collNames(t, src, "app"); !slices.Equal(diff, collNames(t, dst, "app")) {
		t.Errorf("collections: source %v, destination %v", diff, collNames(t, dst, "app"))
	}
	for _, name := range collNames(t, src, "app") {
		ns := migration.Namespace{DB: "app", Coll: name}
		assertSame(t, src, dst, ns)
		if s, d := indexNames(t, src, ns), indexNames(t, dst, ns); !slices.Equal(s, d) {
			t.Errorf("%s indexes: source %v, destination %v", ns, s, d)
		}
	}
}
