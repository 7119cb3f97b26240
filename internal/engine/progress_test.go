package engine

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/livemigrate/livemigrate/internal/mdb"
	"github.com/livemigrate/livemigrate/internal/migration"
	"github.com/livemigrate/livemigrate/internal/mongotest"
)

// TestByteEstimateFollowsCopiedDocuments: a size estimate 3x too large (as
// FerretDB's are) is corrected by the mean size of the documents copied.
func TestByteEstimateFollowsCopiedDocuments(t *testing.T) {
	e := &Engine{}
	e.prog.Namespaces = []migration.NamespaceProgress{{EstimatedDocuments: 1000, EstimatedBytes: 300_000}}
	e.prog.CollectionCopy.EstimatedTotalDocuments = 1000
	e.prog.CollectionCopy.EstimatedTotalBytes = 300_000
	n := &e.prog.Namespaces[0]

	e.addCountsLocked(n, 250, 25_000) // 100-byte documents
	cc := e.prog.CollectionCopy
	if n.EstimatedBytes != 100_000 || cc.EstimatedTotalBytes != 100_000 {
		t.Fatalf("after a quarter: estimate %d (total %d), want 100000", n.EstimatedBytes, cc.EstimatedTotalBytes)
	}
	e.addCountsLocked(n, 1000, 100_000) // more documents than estimated
	cc = e.prog.CollectionCopy
	if n.EstimatedDocuments != 1250 || n.EstimatedBytes != 125_000 || cc.EstimatedTotalBytes != 125_000 || cc.EstimatedCopiedBytes != 125_000 {
		t.Fatalf("past the estimate: docs %d bytes %d total %d copied %d, want 1250/125000/125000/125000",
			n.EstimatedDocuments, n.EstimatedBytes, cc.EstimatedTotalBytes, cc.EstimatedCopiedBytes)
	}
}

// TestFirstEstimateWithinTwentyPercent: on FerretDB, whose size figures are
// storage sizes (3.4× the BSON of these documents), the first progress
// snapshot with a total is within 20 % of the bytes finally copied, for
// every namespace together. With no more namespaces than workers the
// estimates run alongside the first reads, so that snapshot may come after
// a few batches; it must hold every namespace's estimate, not part of them.
func TestFirstEstimateWithinTwentyPercent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srcSrv, dstSrv := mongotest.StartSource(t), mongotest.StartDestination(t)
	src := mongotest.Client(t, srcSrv)
	sizes := map[string]int{"orders": 3000, "events": 1500, "people": 600}
	for name, n := range sizes {
		coll := src.Database("est").Collection(name)
		docs := make([]any, 0, n)
		rng := rand.New(rand.NewPCG(uint64(n), 1))
		for i := range n {
			// ~0.4-2 KB, the size varying from document to document.
			docs = append(docs, bson.D{{Key: "_id", Value: i}, {Key: "user", Value: fmt.Sprintf("user-%05d", i%977)},
				{Key: "kind", Value: []string{"a", "b", "c"}[i%3]}, {Key: "n", Value: int64(i)},
				{Key: "text", Value: strings.Repeat("x", 400+rng.IntN(1600))}})
		}
		if _, err := coll.InsertMany(ctx, docs); err != nil {
			t.Fatal(err)
		}
		if _, err := coll.Indexes().CreateMany(ctx, []mongo.IndexModel{
			{Keys: bson.D{{Key: "user", Value: 1}}}, {Keys: bson.D{{Key: "kind", Value: 1}, {Key: "n", Value: -1}}},
		}); err != nil {
			t.Fatal(err)
		}
	}
	e, err := New(Options{Source: mdb.URI(srcSrv.URI()), Destination: mdb.URI(dstSrv.URI()), StopAfterCopy: true}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	var first migration.CopyProgress
	stop := make(chan struct{})
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		for {
			if cc := e.Progress().CollectionCopy; cc.EstimatedTotalBytes > 0 {
				first = cc
				return
			}
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Microsecond):
			}
		}
	}()
	rctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	err = e.Run(rctx)
	close(stop)
	<-polled
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	final := e.Progress().CollectionCopy
	if final.CopiedDocuments != 5100 || final.EstimatedCopiedBytes == 0 {
		t.Fatalf("copied %d documents, %d bytes; want 5100", final.CopiedDocuments, final.EstimatedCopiedBytes)
	}
	if first.EstimatedTotalBytes == 0 {
		t.Fatalf("no progress snapshot with an estimate: %+v", first)
	}
	ratio := float64(first.EstimatedTotalBytes) / float64(final.EstimatedCopiedBytes)
	t.Logf("first estimate %d bytes, %d documents, %d namespaces, with %d bytes copied; copied %d bytes (%.3f×)",
		first.EstimatedTotalBytes, first.EstimatedTotalDocuments, first.CollectionsTotal, first.EstimatedCopiedBytes, final.EstimatedCopiedBytes, ratio)
	if first.CollectionsTotal != 3 || first.EstimatedTotalDocuments != 5100 || ratio < 0.8 || ratio > 1.2 {
		t.Errorf("first estimate: %d namespaces, %d documents, %d bytes (%.2f× the %d copied); want 3, 5100 and within 20 %%",
			first.CollectionsTotal, first.EstimatedTotalDocuments, first.EstimatedTotalBytes, ratio, final.EstimatedCopiedBytes)
	}
}
