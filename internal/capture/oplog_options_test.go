package capture_test

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/livemigrate/livemigrate/internal/capture"
	"github.com/livemigrate/livemigrate/internal/migration"
	"github.com/livemigrate/livemigrate/internal/mongotest"
)

// TestOplogReaderCreateBeforeFirstData: a capped collection created and
// written to is announced by a create with its options before its first
// document, whether the next catalog listing comes after the writes
// (here: no listing after the start) or between the create and the writes
// (here: a listing before every poll). Applying the document first would
// create the collection implicitly, without options, and the create that
// came later would find it existing: the destination's copy was never
// capped (found by the adversarial suite, docs/design/testing.md).
func TestOplogReaderCreateBeforeFirstData(t *testing.T) {
	t.Parallel()
	for _, every := range []time.Duration{time.Hour, time.Nanosecond} {
		t.Run("listing every "+every.String(), func(t *testing.T) {
			t.Parallel()
			testCreateBeforeFirstData(t, every)
		})
	}
}

func testCreateBeforeFirstData(t *testing.T, catalogEvery time.Duration) {
	ctx := context.Background()
	srv := mongotest.StartSource(t)
	c := mongotest.Client(t, srv)
	if _, err := c.Database("harness").Collection("marker").InsertOne(ctx, bson.D{}); err != nil {
		t.Fatal(err)
	}
	base, err := capture.ReadCatalog(ctx, c, appOnly)
	if err != nil {
		t.Fatal(err)
	}
	r := capture.NewOplogReader(c, capture.OplogOptions{
		Filter: appOnly, FullImageUpdates: true, CatalogDDL: true,
		Baseline: func(context.Context) (capture.Catalog, error) { return base, nil },
		Settle:   2 * time.Second, CatalogEvery: catalogEvery, Poll: 100 * time.Millisecond,
	}, nil)
	from, err := r.Latest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	opts := options.CreateCollection().SetCapped(true).SetSizeInBytes(1 << 20).SetMaxDocuments(50)
	if err := c.Database("app").CreateCollection(ctx, "capped", opts); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Database("app").Collection("capped").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	// A newer entry: a listing's create takes the newest position of its poll.
	if _, err := c.Database("harness").Collection("marker").InsertOne(ctx, bson.D{}); err != nil {
		t.Fatal(err)
	}

	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out := make(chan migration.Event, 100)
	go func() { _ = r.Run(rctx, from, out) }()
	ns := migration.Namespace{DB: "app", Coll: "capped"}
	var created bool
	for ev := range out {
		if ev.NS != ns {
			continue
		}
		if ev.Op == migration.OpCreate {
			if capped, _ := ev.Options.Lookup("capped").BooleanOK(); !capped {
				t.Errorf("create of %s has options %v, want capped", ns, ev.Options)
			}
			created = true
			continue
		}
		if !created {
			t.Errorf("%s of %s before any create with its options: the destination would create it uncapped", ev.Op, ns)
		}
		return
	}
	t.Fatalf("no event for %s in 30s", ns)
}
