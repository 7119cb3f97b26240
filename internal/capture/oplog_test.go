package capture_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/livemigrate/livemigrate/internal/capture"
	"github.com/livemigrate/livemigrate/internal/capture/capturetest"
	"github.com/livemigrate/livemigrate/internal/migration"
	"github.com/livemigrate/livemigrate/internal/mongotest"
)

// ferretHarness runs the suite against a real FerretDB oplog.
type ferretHarness struct {
	srv  *mongotest.Server
	c    *mongo.Client
	base capture.Catalog // catalog at Start: DDL is noticed against it
}

func appOnly(ns migration.Namespace) bool { return ns.DB == "app" }

func ferretReader(c *mongo.Client, base capture.Catalog) capture.Reader {
	var baseline func(context.Context) (capture.Catalog, error)
	if base != nil {
		baseline = func(context.Context) (capture.Catalog, error) { return base, nil }
	}
	return capture.NewOplogReader(c, capture.OplogOptions{
		Filter: appOnly, FullImageUpdates: true, CatalogDDL: true, Baseline: baseline,
		Settle: 2 * time.Second, CatalogEvery: 200 * time.Millisecond, Poll: 100 * time.Millisecond,
	}, nil)
}

func (h *ferretHarness) Reader(t *testing.T) capture.Reader { return ferretReader(h.c, h.base) }

// Start writes a marker outside the filter so the oplog holds an entry to start at.
func (h *ferretHarness) Start(t *testing.T) migration.Position {
	t.Helper()
	ctx := context.Background()
	if _, err := h.c.Database("harness").Collection("marker").InsertOne(ctx, bson.D{}); err != nil {
		t.Fatal(err)
	}
	p, err := h.Reader(t).Latest(ctx)
	if err != nil || p.IsZero() {
		t.Fatalf("Latest = %v, %v", p, err)
	}
	if h.base, err = capture.ReadCatalog(ctx, h.c, appOnly); err != nil {
		t.Fatal(err)
	}
	return p
}

func (h *ferretHarness) Do(t *testing.T, s capturetest.Step) {
	t.Helper()
	ctx := context.Background()
	coll := h.c.Database(s.NS.DB).Collection(s.NS.Coll)
	var err error
	switch s.Kind {
	case capturetest.Insert:
		_, err = coll.InsertOne(ctx, append(bson.D{{Key: "_id", Value: s.ID}}, s.Doc...))
	case capturetest.Update:
		u := bson.D{}
		if len(s.Set) > 0 {
			u = append(u, bson.E{Key: "$set", Value: s.Set})
		}
		if len(s.Unset) > 0 {
			un := bson.D{}
			for _, f := range s.Unset {
				un = append(un, bson.E{Key: f, Value: ""})
			}
			u = append(u, bson.E{Key: "$unset", Value: un})
		}
		_, err = coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: s.ID}}, u)
	case capturetest.Replace:
		_, err = coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: s.ID}}, s.Doc)
	case capturetest.Delete:
		_, err = coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: s.ID}})
	case capturetest.CreateColl:
		err = h.c.Database(s.NS.DB).CreateCollection(ctx, s.NS.Coll)
	case capturetest.DropColl:
		err = coll.Drop(ctx)
	case capturetest.CreateIndex:
		_, err = coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: s.Index, Value: 1}}})
	case capturetest.DropIndex:
		err = coll.Indexes().DropOne(ctx, s.Index)
	}
	if err != nil {
		t.Fatalf("%s on %s: %v", s.Kind, s.NS, err)
	}
	if s.Kind != capturetest.Insert && s.Kind != capturetest.Update && s.Kind != capturetest.Replace && s.Kind != capturetest.Delete {
		time.Sleep(700 * time.Millisecond) // let the catalog comparison see each DDL step
	}
}

func (h *ferretHarness) Lost(t *testing.T) (capture.Reader, migration.Position) {
	t.Helper()
	ctx := context.Background()
	srv := mongotest.StartSource(t, mongotest.WithOplog(20))
	c := mongotest.Client(t, srv)
	coll := c.Database("app").Collection("lost")
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: -1}}); err != nil {
		t.Fatal(err)
	}
	r := ferretReader(c, nil)
	pos, err := r.Latest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	docs := make([]any, 100)
	for i := range docs {
		docs[i] = bson.D{{Key: "_id", Value: i}}
	}
	if _, err := coll.InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		raw, err := c.Database("local").Collection("oplog.rs").FindOne(ctx, bson.D{}, options.FindOne()).Raw()
		if err == nil {
			t2, i2 := raw.Lookup("ts").Timestamp()
			if migration.CompareTS(bson.Timestamp{T: t2, I: i2}, pos.TS) > 0 {
				return r, pos
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("oplog not trimmed past %v within 20s", pos.TS)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestOplogReaderConformance(t *testing.T) {
	t.Parallel()
	capturetest.Run(t, func(t *testing.T) capturetest.Harness {
		srv := mongotest.StartSource(t)
		return &ferretHarness{srv: srv, c: mongotest.Client(t, srv)}
	})
}

// TestOplogReaderBurstOverrunWhileRunning: between two polls a burst larger
// than the oplog pushes its own first entries out before any poll reads
// them. The next poll reads only the burst's surviving tail, so a check
// against what that poll read sees nothing wrong; Run must end with
// ErrHistoryLost instead of going on with the burst's head missing.
func TestOplogReaderBurstOverrunWhileRunning(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := mongotest.StartSource(t, mongotest.WithOplog(50))
	c := mongotest.Client(t, srv)
	coll := c.Database("app").Collection("burst")
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: -1}}); err != nil {
		t.Fatal(err)
	}
	r := capture.NewOplogReader(c, capture.OplogOptions{
		Filter: appOnly, FullImageUpdates: true, Settle: 2 * time.Second, Poll: 6 * time.Second,
	}, nil)
	from, err := r.Latest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	out := make(chan migration.Event, 1000)
	errc := make(chan error, 1)
	go func() { errc <- r.Run(rctx, from, out) }()
	// The first poll runs at once; the next waits Poll. The burst and the
	// trim (every 2 s) happen in between.
	if _, err := r.Latest(ctx); err != nil {
		t.Fatal(err)
	}
	docs := make([]any, 200)
	for i := range docs {
		docs[i] = bson.D{{Key: "_id", Value: i}}
	}
	if _, err := coll.InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	go func() {
		for range out { // drain
		}
	}()
	err = <-errc
	if !errors.Is(err, capture.ErrHistoryLost) {
		t.Fatalf("Run = %v, want ErrHistoryLost: the burst's first entries were trimmed unread", err)
	}
}
