package engine

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/livemigrate/livemigrate/internal/catalog"
	"github.com/livemigrate/livemigrate/internal/checkpoint"
	"github.com/livemigrate/livemigrate/internal/clone"
	"github.com/livemigrate/livemigrate/internal/mdb"
	"github.com/livemigrate/livemigrate/internal/migration"
	"github.com/livemigrate/livemigrate/internal/mongotest"
)

// indexedRecorder keeps, per namespace, the before_documents attribute of
// the last "collection indexed" record, and the indexes choice of "copy
// planned".
type indexedRecorder struct {
	slog.Handler
	mu      *sync.Mutex
	before  map[string]bool
	planned *string
}

func (h indexedRecorder) Handle(ctx context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	var ns string
	var before, found bool
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "ns":
			ns = a.Value.String()
		case "before_documents":
			before, found = a.Value.Bool(), true
		case "indexes":
			if r.Message == "copy planned" {
				*h.planned = a.Value.String()
			}
		}
		return true
	})
	if r.Message == "collection indexed" && found {
		h.before[ns] = before
	}
	return h.Handler.Handle(ctx, r)
}

func (h indexedRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	h.Handler = h.Handler.WithAttrs(as)
	return h
}

// Small collections get their secondary indexes before their documents on
// FerretDB/SQLite, larger ones after; either way the destination ends with
// the source's indexes (unique ones relaxed, then restored) and the same
// documents. A collection whose copy fails the same way three times
// rebuilds its indexes before each attempt but counts them once, and the
// run resumes to the end once the fault is gone.
func TestIndexesBeforeOrAfterTheDocuments(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srcSrv, dstSrv := mongotest.StartSource(t), mongotest.StartDestination(t)
	src, dst := mongotest.Client(t, srcSrv), mongotest.Client(t, dstSrv)
	small, large := migration.Namespace{DB: "shop", Coll: "small"}, migration.Namespace{DB: "shop", Coll: "large"}
	seed(t, src, small, 0, 500)
	seed(t, src, large, 0, 3000)
	if _, err := src.Database(small.DB).Collection(small.Coll).Indexes().CreateMany(ctx, []mongo.IndexModel{
		{Keys: bson.D{{Key: "s", Value: 1}}, Options: options.Index().SetUnique(true).SetName("s_unique")},
		{Keys: bson.D{{Key: "n", Value: -1}, {Key: "s", Value: 1}}},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Database(large.DB).Collection(large.Coll).Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "n", Value: 1}}}); err != nil {
		t.Fatal(err)
	}
	// A 1 MiB document at the end of small: the proxy resets every
	// connection that carries it until Pass.
	if _, err := src.Database(small.DB).Collection(small.Coll).InsertOne(ctx, bson.D{{Key: "_id", Value: "big"}, {Key: "s", Value: "big"}, {Key: "pad", Value: strings.Repeat("x", 1<<20)}}); err != nil {
		t.Fatal(err)
	}
	proxy := mongotest.NewProxy(t, srcSrv.Addr())
	proxy.ResetOnReplyOver(512 << 10)

	var mu sync.Mutex
	before, planned := map[string]bool{}, ""
	logger := slog.New(indexedRecorder{Handler: testLogger(t).Handler(), mu: &mu, before: before, planned: &planned})
	opts := Options{Source: mdb.URI(srcSrv.URIFor(proxy.Addr())), Destination: mdb.URI(dstSrv.URI()), SourceID: "rs:test-source",
		IndexesFirstUpTo: 1000, StopAfterCopy: true}
	opts.Copy.Retry = mdb.RetryPolicy{MaxElapsed: time.Minute, Initial: 10 * time.Millisecond, Max: 100 * time.Millisecond}
	run := func() (*Engine, error) {
		e, err := New(opts, logger)
		if err != nil {
			t.Fatal(err)
		}
		e.countWait = time.Minute // small's count, however loaded the machine
		rctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		defer cancel()
		return e, e.Run(rctx)
	}

	e, err := run()
	var ce *clone.CopyError
	if !errors.As(err, &ce) || !ce.Deterministic || ce.NS != small || ce.Attempts != 3 {
		t.Fatalf("first run = %v, want a deterministic *clone.CopyError on %s after 3 attempts", err, small)
	}
	// small's 2 indexes were built before each of its 3 attempts but
	// counted once; large's 1 is counted if its copy ended before small's
	// failure stopped the run.
	if ib := e.Progress().IndexBuilding; ib.Built < 2 || ib.Built > ib.Total || ib.Total > 3 {
		t.Errorf("index building after the failed run: %+v, want small's 2 (and large's 1) counted once", ib)
	}

	proxy.Pass()
	e, err = run()
	if err != nil {
		t.Fatalf("second run (fault gone): %v", err)
	}
	mu.Lock()
	if diff := cmp.Diff(map[string]bool{small.String(): true, large.String(): false}, before); diff != "" {
		t.Errorf("collection indexed before_documents (-want +got):\n%s", diff)
	}
	if planned != "before the documents up to 1000 documents" {
		t.Errorf("copy planned indexes=%q", planned)
	}
	mu.Unlock()
	assertSame(t, src, dst, small, large)
	if diff := cmp.Diff(map[string]bool{"s_unique": false, "n_-1_s_1": false}, indexUniqueness(t, dst, small)); diff != "" {
		t.Errorf("%s indexes during sync (-want +got):\n%s", small, diff)
	}
	if diff := cmp.Diff(map[string]bool{"n_1": false}, indexUniqueness(t, dst, large)); diff != "" {
		t.Errorf("%s indexes (-want +got):\n%s", large, diff)
	}
	// The resumed run built small's indexes again, and large's unless the
	// first run had.
	if ib := e.Progress().IndexBuilding; ib.Built != ib.Total || ib.Total < 2 || ib.Total > 3 {
		t.Errorf("index building in the resumed run: %+v, want small's 2 (and large's 1)", ib)
	}
	for _, n := range e.Progress().Namespaces {
		if n.State != migration.CopyIndexed {
			t.Errorf("namespace progress %+v, want indexed", n)
		}
	}
	e.dst, e.store = dst, checkpoint.Open(dst, catalog.DefaultMetadataDB, testLogger(t))
	if err := e.restoreUniqueIndexes(ctx); err != nil {
		t.Fatalf("restore unique indexes: %v", err)
	}
	if got := indexUniqueness(t, dst, small); !got["s_unique"] {
		t.Errorf("%s indexes after restore: %v", small, got)
	}
}
