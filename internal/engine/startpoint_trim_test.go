package engine

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/livemigrate/livemigrate/internal/mdb"
	"github.com/livemigrate/livemigrate/internal/migration"
	"github.com/livemigrate/livemigrate/internal/mongotest"
)

// TestStartRightAfterOplogTrimmed: a bulk load just before the migration
// starts trims the source's small oplog to its last seconds. Nothing after
// the start point is missing, so the engine must not report lost history
// (the reader replays a few seconds before the start point, but judges loss
// against the start point itself).
func TestStartRightAfterOplogTrimmed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srcSrv, dstSrv := mongotest.StartSource(t, mongotest.WithOplog(200)), mongotest.StartDestination(t)
	src, dst := mongotest.Client(t, srcSrv), mongotest.Client(t, dstSrv)
	items := migration.Namespace{DB: "app", Coll: "items"}

	// Load until the oplog is full, has been trimmed, and its oldest entry is
	// less than 2 s old.
	oldest := func() bson.Timestamp {
		var e struct {
			TS bson.Timestamp `bson:"ts"`
		}
		if err := src.Database("local").Collection("oplog.rs").FindOne(ctx, bson.D{}).Decode(&e); err != nil {
			t.Fatalf("read the oldest oplog entry: %v", err)
		}
		return e.TS
	}
	next := 0
	deadline := time.Now().Add(60 * time.Second)
	for {
		seed(t, src, items, next, 100)
		next += 100
		full, err := src.Database("local").Collection("oplog.rs").CountDocuments(ctx, bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		if full >= 200 && next > 400 && int64(oldest().T) >= time.Now().Unix()-2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the oplog was not trimmed to its last 2 s after %d inserts", next)
		}
	}

	e, err := New(Options{Source: mdb.URI(srcSrv.URI()), Destination: mdb.URI(dstSrv.URI())}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- e.Run(runCtx) }()
	mongotest.WaitFor(t, "change application", 60*time.Second, func() bool {
		select {
		case err := <-errc:
			t.Fatalf("engine stopped before applying changes: %v", err)
		default:
		}
		return e.Progress().Phase == migration.PhaseApplying
	})
	seed(t, src, items, next, 10)
	mongotest.WaitFor(t, "canCommit", 60*time.Second, func() bool { return e.Progress().CanCommit })
	if err := e.Commit(); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if rep := e.CommitReport(); rep == nil || rep.Repaired != 0 {
		t.Errorf("commit report %+v, want verified with 0 repaired", rep)
	}
	assertSame(t, src, dst, items)
}
