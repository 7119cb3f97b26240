package engine

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/livemigrate/livemigrate/internal/mdb"
	"github.com/livemigrate/livemigrate/internal/migration"
	"github.com/livemigrate/livemigrate/internal/mongotest"
	"github.com/livemigrate/livemigrate/internal/verify"
)

// TestCommitRechecksChangedDocumentsAlteredBehindTheEngine: after the
// background pass covered app.items, four documents change on the source
// (their events are applied, so they join the changed set), and then the
// destination is changed behind the engine's back: one of them altered
// (ObjectId _id), one deleted (string _id), one the source deleted added
// back (ObjectId _id), one altered (int _id, read by $in rather than an
// equality find). The commit compares exactly those four, finds each, and
// repairs it; the namespace stays covered by its pass.
func TestCommitRechecksChangedDocumentsAlteredBehindTheEngine(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srcSrv, dstSrv := mongotest.StartSource(t), mongotest.StartDestination(t)
	src, dst := mongotest.Client(t, srcSrv), mongotest.Client(t, dstSrv)
	items := migration.Namespace{DB: "app", Coll: "items"}
	seed(t, src, items, 0, 300)
	altered, added := bson.NewObjectID(), bson.NewObjectID()
	sc := src.Database("app").Collection("items")
	if _, err := sc.InsertMany(ctx, []any{
		bson.D{{Key: "_id", Value: altered}, {Key: "s", Value: "a"}},
		bson.D{{Key: "_id", Value: "deleted"}, {Key: "s", Value: "b"}},
		bson.D{{Key: "_id", Value: added}, {Key: "s", Value: "c"}},
	}); err != nil {
		t.Fatal(err)
	}
	// Seeded writes older than the replay window (startReplay) are not
	// replayed into the changed set after the pass.
	time.Sleep(startReplay + time.Second)

	opts := Options{Source: mdb.URI(srcSrv.URI()), Destination: mdb.URI(dstSrv.URI())}
	e, err := New(opts, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	// No background rechecks: the changed documents stay in the set
	// until the commit (a recheck between their apply and the planting
	// would compare them equal, and rightly drop them).
	e.cdc.recheckEvery = time.Hour
	runCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(cancel)
	errc := make(chan error, 1)
	go func() { errc <- e.Run(runCtx) }()
	mongotest.WaitFor(t, "the background pass of app.items", 90*time.Second, func() bool {
		st, _ := e.BackgroundVerification()
		return st.Passes >= 1
	})

	set := func(id any, v string) {
		t.Helper()
		if _, err := sc.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: bson.D{{Key: "s", Value: v}}}}); err != nil {
			t.Fatal(err)
		}
	}
	set(altered, "changed")
	set("deleted", "changed")
	set(40, "changed")
	if _, err := sc.DeleteOne(ctx, bson.D{{Key: "_id", Value: added}}); err != nil {
		t.Fatal(err)
	}
	dc := dst.Database("app").Collection("items")
	mongotest.WaitFor(t, "the four changes applied", 60*time.Second, func() bool {
		n, err := dc.CountDocuments(ctx, bson.D{{Key: "_id", Value: added}})
		return err == nil && n == 0 && sameDoc(t, src, dst, items, altered) && sameDoc(t, src, dst, items, "deleted") && sameDoc(t, src, dst, items, 40)
	})

	for _, id := range []any{altered, 40} {
		if r, err := dc.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: bson.D{{Key: "s", Value: "planted"}}}}); err != nil || r.ModifiedCount != 1 {
			t.Fatalf("plant an altered document %v: %v %+v", id, err, r)
		}
	}
	if r, err := dc.DeleteOne(ctx, bson.D{{Key: "_id", Value: "deleted"}}); err != nil || r.DeletedCount != 1 {
		t.Fatalf("plant a deleted document: %v %+v", err, r)
	}
	if _, err := dc.InsertOne(ctx, bson.D{{Key: "_id", Value: added}, {Key: "s", Value: "planted"}}); err != nil {
		t.Fatalf("plant an added document: %v", err)
	}

	mongotest.WaitFor(t, "canCommit", 60*time.Second, func() bool { return e.Progress().CanCommit })
	if err := e.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("Run: %v", err)
	}
	rep := e.CommitReport()
	t.Logf("commit report: %+v coverage %+v background %+v", *rep, rep.Coverage, rep.Background)
	want := verify.Counts{Missing: 1, Extra: 1, Differing: 2}
	if rep.Found != want || rep.Repaired != want.Total() || !rep.Verified {
		t.Errorf("found before repair %+v, repaired %d, verified %v; want %+v, %d, true", rep.Found, rep.Repaired, rep.Verified, want, want.Total())
	}
	if rep.Coverage == nil || !rep.Coverage.Complete || rep.Coverage.ByPass != 1 || len(rep.Coverage.InFull) != 0 {
		t.Errorf("coverage %+v: want app.items covered by its pass, nothing compared in full", rep.Coverage)
	}
	if rep.DocumentsRechecked != 4 {
		t.Errorf("%d documents rechecked at commit, want the 4 changed since the pass", rep.DocumentsRechecked)
	}
	assertSame(t, src, dst, items)
	if err := dc.FindOne(ctx, bson.D{{Key: "_id", Value: added}}).Err(); !errors.Is(err, mongo.ErrNoDocuments) {
		t.Errorf("the document added on the destination is still there after repair: %v", err)
	}
}
