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

// plantAfterCopy copies items and orders (Run with StopAfterCopy), then
// changes the destination behind the engine's back, before any
// verification pass can have read it: one document altered, one deleted,
// one added.
func plantAfterCopy(t *testing.T, srcSrv, dstSrv *mongotest.Server, src, dst *mongo.Client, opts Options) {
	t.Helper()
	ctx := context.Background()
	items, orders := migration.Namespace{DB: "app", Coll: "items"}, migration.Namespace{DB: "app", Coll: "orders"}
	seed(t, src, items, 0, 400)
	seed(t, src, orders, 0, 200)
	// On FerretDB change application replays the oplog from 3 s before
	// the start point (startReplay): seeding earlier keeps the replayed
	// inserts from repairing the planted documents.
	time.Sleep(startReplay + time.Second)
	opts.Source, opts.Destination = mdb.URI(srcSrv.URI()), mdb.URI(dstSrv.URI())
	if _, err := runEngine(t, opts); err != nil {
		t.Fatalf("copy: %v", err)
	}
	coll := dst.Database("app").Collection("items")
	if r, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 10}}, bson.D{{Key: "$set", Value: bson.D{{Key: "s", Value: "planted"}}}}); err != nil || r.ModifiedCount != 1 {
		t.Fatalf("plant an altered document: %v %+v", err, r)
	}
	if r, err := coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: 20}}); err != nil || r.DeletedCount != 1 {
		t.Fatalf("plant a deleted document: %v %+v", err, r)
	}
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "planted-extra"}}); err != nil {
		t.Fatalf("plant an extra document: %v", err)
	}
}

// alterOrder changes one destination document of app.orders with no
// change event.
func alterOrder(t *testing.T, dst *mongo.Client, id int) {
	t.Helper()
	r, err := dst.Database("app").Collection("orders").UpdateOne(context.Background(), bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "s", Value: "altered behind the engine's back"}}}})
	if err != nil || r.ModifiedCount != 1 {
		t.Fatalf("alter orders %d on the destination: %v %+v", id, err, r)
	}
}

// sameDoc reports whether document id is on both sides with the same
// bytes (false while it is missing from the destination: the apply writes
// an update as delete + insert on FerretDB).
func sameDoc(t *testing.T, src, dst *mongo.Client, ns migration.Namespace, id any) bool {
	t.Helper()
	var a, b bson.Raw
	if err := src.Database(ns.DB).Collection(ns.Coll).FindOne(context.Background(), bson.D{{Key: "_id", Value: id}}).Decode(&a); err != nil {
		t.Fatal(err)
	}
	err := dst.Database(ns.DB).Collection(ns.Coll).FindOne(context.Background(), bson.D{{Key: "_id", Value: id}}).Decode(&b)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(a) == string(b)
}

// TestCommitFindsAndRepairsPlantedDifferences: differences planted on the
// destination before the background pass read it are found at commit
// (before repair: 1 missing, 1 extra, 1 differing) and repaired, in the
// default mode and in mode full. A document altered on the destination
// after the pass compared it, with no change event, is outside what
// continuous mode compares at commit (it compares what the change feed
// says changed; docs/design/verification.md): mode full finds it, mode
// continuous leaves it, and the test asserts both.
func TestCommitFindsAndRepairsPlantedDifferences(t *testing.T) {
	t.Parallel()
	for _, mode := range []VerifyMode{VerifyContinuous, VerifyFull} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			srcSrv, dstSrv := mongotest.StartSource(t), mongotest.StartDestination(t)
			src, dst := mongotest.Client(t, srcSrv), mongotest.Client(t, dstSrv)
			opts := Options{Source: mdb.URI(srcSrv.URI()), Destination: mdb.URI(dstSrv.URI()), Verification: mode}
			plantAfterCopy(t, srcSrv, dstSrv, src, dst, opts)

			e, errc := startEngine(t, opts)
			mongotest.WaitFor(t, "change application", 60*time.Second, func() bool { return e.Progress().Phase == migration.PhaseApplying })
			// Changes during the sync, one of them to a planted document.
			ctx := context.Background()
			items := src.Database("app").Collection("items")
			if _, err := items.InsertOne(ctx, bson.D{{Key: "_id", Value: 1000}, {Key: "s", Value: "new"}}); err != nil {
				t.Fatal(err)
			}
			if _, err := items.UpdateOne(ctx, bson.D{{Key: "_id", Value: 30}}, bson.D{{Key: "$set", Value: bson.D{{Key: "s", Value: "changed"}}}}); err != nil {
				t.Fatal(err)
			}
			if mode == VerifyContinuous {
				mongotest.WaitFor(t, "background passes of both namespaces", 90*time.Second, func() bool {
					st, _ := e.BackgroundVerification()
					return st.Passes >= 2
				})
				// Orders 7 gets no event after its pass compared it.
			} else {
				time.Sleep(3 * time.Second)
			}
			alterOrder(t, dst, 7)
			mongotest.WaitFor(t, "canCommit", 60*time.Second, func() bool { return e.Progress().CanCommit })
			if err := e.Commit(); err != nil {
				t.Fatal(err)
			}
			if err := <-errc; err != nil {
				t.Fatalf("Run: %v", err)
			}
			rep := e.CommitReport()
			t.Logf("commit report: %+v coverage %+v background %+v", *rep, rep.Coverage, rep.Background)
			want := verify.Counts{Missing: 1, Extra: 1, Differing: 1}
			if mode == VerifyFull {
				want.Differing = 2 // orders 7 as well
			}
			if rep.Found != want || rep.Repaired != want.Total() || !rep.Verified {
				t.Errorf("found before repair %+v, repaired %d, verified %v; want %+v, %d, true", rep.Found, rep.Repaired, rep.Verified, want, want.Total())
			}
			if rep.Coverage == nil || !rep.Coverage.Complete || rep.Coverage.Namespaces != 2 {
				t.Errorf("coverage %+v, want complete over 2 namespaces", rep.Coverage)
			}
			assertSame(t, src, dst, migration.Namespace{DB: "app", Coll: "items"})
			orders := migration.Namespace{DB: "app", Coll: "orders"}
			switch mode {
			case VerifyContinuous:
				if rep.Coverage.ByPass != 2 || rep.Background == nil || rep.Background.DocumentsCompared < 600 {
					t.Errorf("coverage %+v background %+v: want both namespaces covered by their passes (≥ 600 documents compared)", rep.Coverage, rep.Background)
				}
				// At commit only the documents the change feed reports as
				// changed are compared: 30 and 1000, and the in-flight
				// differences the pass found (the three planted ones).
				if rep.DocumentsRechecked < 3 || rep.DocumentsRechecked > 5 {
					t.Errorf("%d documents rechecked at commit, want only the changed and planted ones", rep.DocumentsRechecked)
				}
				if sameDoc(t, src, dst, orders, 7) {
					t.Errorf("orders 7, altered on the destination after its pass with no change event, is equal after commit: continuous mode does not compare it (is this test still planting it?)")
				}
			case VerifyFull:
				assertSame(t, src, dst, orders)
			}
			if rep.DowntimeSeconds < rep.DrainSeconds+rep.IndexRestoreSeconds+rep.VerificationSeconds {
				t.Errorf("downtime %.3fs is less than its parts (drain %.3f, index restore %.3f, verification %.3f)",
					rep.DowntimeSeconds, rep.DrainSeconds, rep.IndexRestoreSeconds, rep.VerificationSeconds)
			}
		})
	}
}

// TestCommitVerifyAfter: mode after marks the destination writable, then
// compares everything and reports differences without repairing them.
func TestCommitVerifyAfter(t *testing.T) {
	t.Parallel()
	srcSrv, dstSrv := mongotest.StartSource(t), mongotest.StartDestination(t)
	src, dst := mongotest.Client(t, srcSrv), mongotest.Client(t, dstSrv)
	opts := Options{Source: mdb.URI(srcSrv.URI()), Destination: mdb.URI(dstSrv.URI()), Verification: VerifyAfter}
	plantAfterCopy(t, srcSrv, dstSrv, src, dst, opts)
	e, errc := startEngine(t, opts)
	mongotest.WaitFor(t, "canCommit", 60*time.Second, func() bool { return e.Progress().CanCommit })
	if err := e.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("Run: %v", err)
	}
	rep := e.CommitReport()
	t.Logf("commit report: %+v", *rep)
	want := verify.Counts{Missing: 1, Extra: 1, Differing: 1}
	if rep.Found != want || rep.Repaired != 0 || rep.Verified || rep.VerificationPending {
		t.Errorf("found %+v repaired %d verified %v pending %v; want %+v, 0, false, false", rep.Found, rep.Repaired, rep.Verified, rep.VerificationPending, want)
	}
	if p := e.Progress(); !p.CanWrite || p.State != migration.StateCommitted {
		t.Errorf("state %s canWrite %v, want COMMITTED and writable", p.State, p.CanWrite)
	}
	if rep.VerificationSeconds <= 0 || rep.DowntimeSeconds <= 0 {
		t.Errorf("verification %.3fs downtime %.3fs, want both measured", rep.VerificationSeconds, rep.DowntimeSeconds)
	}
	if sameDoc(t, src, dst, migration.Namespace{DB: "app", Coll: "items"}, 10) {
		t.Errorf("items 10 was repaired; mode after repairs nothing")
	}
}

// TestContinuousVerificationResumesAfterRestart: the background passes and
// the record of documents changed since survive a clean stop of the
// engine. A document changed on the source (its event applied) before the
// stop, then altered on the destination while the engine was down, is
// found at commit through that record, with no new pass.
func TestContinuousVerificationResumesAfterRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srcSrv, dstSrv := mongotest.StartSource(t), mongotest.StartDestination(t)
	src, dst := mongotest.Client(t, srcSrv), mongotest.Client(t, dstSrv)
	items := migration.Namespace{DB: "app", Coll: "items"}
	seed(t, src, items, 0, 300)
	seed(t, src, migration.Namespace{DB: "app", Coll: "orders"}, 0, 100)
	time.Sleep(startReplay + time.Second)
	opts := Options{Source: mdb.URI(srcSrv.URI()), Destination: mdb.URI(dstSrv.URI())}

	e1, err := New(opts, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx1, stop := context.WithCancel(ctx)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- e1.Run(ctx1) }()
	mongotest.WaitFor(t, "background passes", 90*time.Second, func() bool { st, _ := e1.BackgroundVerification(); return st.Passes >= 2 })
	if _, err := src.Database("app").Collection("items").UpdateOne(ctx, bson.D{{Key: "_id", Value: 50}}, bson.D{{Key: "$set", Value: bson.D{{Key: "s", Value: "v2"}}}}); err != nil {
		t.Fatal(err)
	}
	mongotest.WaitFor(t, "the update applied", 30*time.Second, func() bool { return sameDoc(t, src, dst, items, 50) })
	// A later write moves the checkpoint more than the oplog reader's
	// 2 s look-back past the update, so the next process does not
	// replay it (which would repair the destination by itself).
	time.Sleep(3 * time.Second)
	orders := migration.Namespace{DB: "app", Coll: "orders"}
	if _, err := src.Database("app").Collection("orders").InsertOne(ctx, bson.D{{Key: "_id", Value: 5000}}); err != nil {
		t.Fatal(err)
	}
	mongotest.WaitFor(t, "the insert applied", 30*time.Second, func() bool {
		n, err := dst.Database(orders.DB).Collection(orders.Coll).CountDocuments(ctx, bson.D{{Key: "_id", Value: 5000}})
		return err == nil && n == 1
	})
	stop()
	if err := <-errc; err == nil {
		t.Fatal("Run returned nil after its context was cancelled")
	}
	// Behind the engine's back, as if the event had been lost.
	if _, err := dst.Database("app").Collection("items").UpdateOne(ctx, bson.D{{Key: "_id", Value: 50}}, bson.D{{Key: "$set", Value: bson.D{{Key: "s", Value: "lost"}}}}); err != nil {
		t.Fatal(err)
	}

	e2, errc2 := startEngine(t, opts)
	mongotest.WaitFor(t, "canCommit", 60*time.Second, func() bool { return e2.Progress().CanCommit })
	if err := e2.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc2; err != nil {
		t.Fatalf("Run: %v", err)
	}
	rep := e2.CommitReport()
	t.Logf("commit report: %+v coverage %+v background %+v", *rep, rep.Coverage, rep.Background)
	if rep.Background == nil || rep.Background.Passes != 0 || rep.Coverage.ByPass != 2 {
		t.Errorf("background %+v coverage %+v: want the passes of the first process kept (no new pass, 2 namespaces by pass)", rep.Background, rep.Coverage)
	}
	if want := (verify.Counts{Differing: 1}); rep.Found != want || rep.Repaired != 1 {
		t.Errorf("found %+v repaired %d, want %+v and 1 (items 50)", rep.Found, rep.Repaired, want)
	}
	assertSame(t, src, dst, items)
}

// TestContinuousVerificationSourceRestart: a restart of the source voids
// every pass (a FerretDB source can lose oplog entries when it crashes),
// so the namespaces are compared again; a destination document altered
// with no event before the restart is then found and repaired.
func TestContinuousVerificationSourceRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srcSrv, dstSrv := mongotest.StartSource(t), mongotest.StartDestination(t)
	src, dst := mongotest.Client(t, srcSrv), mongotest.Client(t, dstSrv)
	seed(t, src, migration.Namespace{DB: "app", Coll: "items"}, 0, 300)
	seed(t, src, migration.Namespace{DB: "app", Coll: "orders"}, 0, 100)
	time.Sleep(startReplay + time.Second)
	e, errc := startEngine(t, Options{Source: mdb.URI(srcSrv.URI()), Destination: mdb.URI(dstSrv.URI())})
	mongotest.WaitFor(t, "background passes", 90*time.Second, func() bool { st, _ := e.BackgroundVerification(); return st.Passes >= 2 })
	alterOrder(t, dst, 7)
	if err := srcSrv.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := srcSrv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	mongotest.WaitFor(t, "passes voided and run again", 90*time.Second, func() bool {
		st, _ := e.BackgroundVerification()
		return st.PassesInvalidated >= 2 && st.Passes >= 4
	})
	mongotest.WaitFor(t, "canCommit", 60*time.Second, func() bool { return e.Progress().CanCommit })
	if err := e.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("Run: %v", err)
	}
	rep := e.CommitReport()
	t.Logf("commit report: %+v coverage %+v background %+v", *rep, rep.Coverage, rep.Background)
	if want := (verify.Counts{Differing: 1}); rep.Found != want || rep.Repaired != 1 {
		t.Errorf("found %+v repaired %d, want %+v and 1 (orders 7)", rep.Found, rep.Repaired, want)
	}
	assertSame(t, src, dst, migration.Namespace{DB: "app", Coll: "orders"})
}
