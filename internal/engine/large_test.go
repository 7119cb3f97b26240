package engine

import (
	"context"
	"crypto/sha256"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/livemigrate/livemigrate/internal/mdb"
	"github.com/livemigrate/livemigrate/internal/migration"
	"github.com/livemigrate/livemigrate/internal/mongotest"
)

// digestsOf reads ns with batches bounded by bytes and returns each
// document's hash by its raw _id (the plain driver default, 101 documents
// then unbounded getMores, cannot read these collections from FerretDB).
func digestsOf(t *testing.T, c *mongo.Client, ns migration.Namespace) map[string][32]byte {
	t.Helper()
	ctx := context.Background()
	cur, err := mdb.Find(ctx, c.Database(ns.DB).Collection(ns.Coll), bson.D{}, mdb.NewBatchSizer(mdb.SizerOptions{}))
	if err != nil {
		t.Fatalf("read %s: %v", ns, err)
	}
	defer cur.Close(ctx)
	out := map[string][32]byte{}
	for cur.Next(ctx) {
		out[cur.Current().Lookup("_id").String()] = sha256.Sum256(cur.Current())
	}
	if err := cur.Err(); err != nil {
		t.Fatalf("read %s: %v", ns, err)
	}
	return out
}

// TestLargeDocumentsCopyApplyVerify: a collection of 150 documents of
// 100–900 KB next to collections of small ones is copied (on FerretDB,
// which does not cap replies, 1000-document batches made one reply over
// the driver's 48 MB limit and lost the other collections' cursors), then
// updates grow documents to 8 MiB and to 16 MiB − 1 KiB (FerretDB stores
// any size up to the BSON limit) and insert one of 4 MiB while changes are
// applied; commit verifies equal with nothing to repair, and the
// destination equals the source byte for byte.
func TestLargeDocumentsCopyApplyVerify(t *testing.T) {
	// Not parallel: FerretDB reads these documents at a few MB/s, and next to
	// the package's other servers the lag stayed over the commit threshold.
	ctx := context.Background()
	// A short oplog: the 150 large inserts leave it before the start point
	// (FerretDB's oplog reader scans the whole oplog on every poll).
	srcSrv, dstSrv := mongotest.StartSource(t, mongotest.WithOplog(400)), mongotest.StartDestination(t)
	src, dst := mongotest.Client(t, srcSrv), mongotest.Client(t, dstSrv)
	big := migration.Namespace{DB: "app", Coll: "big"}
	items, orders := migration.Namespace{DB: "app", Coll: "items"}, migration.Namespace{DB: "app", Coll: "orders"}
	r := rand.New(rand.NewPCG(12, 3))
	coll := src.Database(big.DB).Collection(big.Coll)
	var docs []any
	for i := range 150 {
		docs = append(docs, bson.D{{Key: "_id", Value: i}, {Key: "n", Value: int32(i)}, {Key: "pad", Value: strings.Repeat("b", 100<<10+r.IntN(800<<10))}})
	}
	began := time.Now()
	for i := 0; i < len(docs); i += 25 {
		if _, err := coll.InsertMany(ctx, docs[i:min(i+25, len(docs))]); err != nil {
			t.Fatalf("seed: %v", err)
		}
	}
	t.Logf("seeded %d large documents in %s", len(docs), time.Since(began).Round(time.Millisecond))
	// The oplog reader looks back 2 s from its start point for late
	// entries; the small writes after the pause make that point.
	time.Sleep(2500 * time.Millisecond)
	seed(t, src, items, 0, 500)
	seed(t, src, orders, 0, 300)
	time.Sleep(2500 * time.Millisecond) // a capped-collection cleanup

	e, errc := startEngine(t, Options{Source: mdb.URI(srcSrv.URI()), Destination: mdb.URI(dstSrv.URI())})
	mongotest.WaitFor(t, "change application", 120*time.Second, func() bool { return e.Progress().Phase == migration.PhaseApplying })
	t.Logf("copied in %s", time.Since(began).Round(time.Millisecond))

	grow := func(id int, size int) {
		t.Helper()
		_, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: bson.D{{Key: "pad", Value: strings.Repeat("g", size)}}}})
		if err != nil {
			t.Fatalf("grow _id %d to %d bytes: %v", id, size, err)
		}
	}
	grow(3, 8<<20)
	grow(7, mdb.MaxBSONSize-1024)
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "new"}, {Key: "pad", Value: strings.Repeat("n", 4<<20)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: 11}}); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Database(items.DB).Collection(items.Coll).UpdateMany(ctx, bson.D{{Key: "n", Value: bson.D{{Key: "$lt", Value: 50}}}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "touched", Value: true}}}}); err != nil {
		t.Fatal(err)
	}

	// Let the last writes reach the checkpoint before commit.
	time.Sleep(3 * time.Second)
	rep := commitEngine(t, e, errc, 240*time.Second, 120*time.Second)
	if rep.Repaired != 0 {
		t.Errorf("commit repaired %d documents, want 0 (change application lost or garbled events): %+v", rep.Repaired, rep.Verification)
	}
	t.Logf("done in %s; commit report: %+v", time.Since(began).Round(time.Millisecond), *rep)
	for _, ns := range []migration.Namespace{big, items, orders} {
		want, got := digestsOf(t, src, ns), digestsOf(t, dst, ns)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: %d source documents, %d on the destination; differing (-source +destination):\n%.1500s", ns, len(want), len(got), diff)
		}
	}
}
