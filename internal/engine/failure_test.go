package engine

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/livemigrate/livemigrate/internal/clone"
	"github.com/livemigrate/livemigrate/internal/mdb"
	"github.com/livemigrate/livemigrate/internal/migration"
	"github.com/livemigrate/livemigrate/internal/mongotest"
)

// TestDeterministicCopyFailureThenResume: the source connection breaks at
// the same reply of one collection every time (a proxy resets connections
// carrying a reply over 512 KiB). The run ends FAILED with an error that
// names that collection, says the failure is deterministic and what to do
// — not a CursorNotFound of another collection, and not after minutes of
// retrying. With the fault gone, the same command resumes from the
// checkpoint and completes.
func TestDeterministicCopyFailureThenResume(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srcSrv, dstSrv := mongotest.StartSource(t), mongotest.StartDestination(t)
	src, dst := mongotest.Client(t, srcSrv), mongotest.Client(t, dstSrv)
	bad := migration.Namespace{DB: "app", Coll: "bad"}
	items := migration.Namespace{DB: "app", Coll: "items"}
	seed(t, src, items, 0, 2000)
	seed(t, src, bad, 0, 300)
	if _, err := src.Database(bad.DB).Collection(bad.Coll).InsertOne(ctx, bson.D{{Key: "_id", Value: "big"}, {Key: "pad", Value: strings.Repeat("x", 1<<20)}}); err != nil {
		t.Fatal(err)
	}
	proxy := mongotest.NewProxy(t, srcSrv.Addr())
	proxy.ResetOnReplyOver(512 << 10)
	opts := Options{Source: mdb.URI(srcSrv.URIFor(proxy.Addr())), Destination: mdb.URI(dstSrv.URI()),
		SourceID: "rs:test-source"} // the fingerprint of the source, whichever address reaches it
	opts.Copy.Retry = mdb.RetryPolicy{MaxElapsed: time.Minute, Initial: 10 * time.Millisecond, Max: 100 * time.Millisecond}

	e, err := runEngine(t, opts)
	var ce *clone.CopyError
	if !errors.As(err, &ce) {
		t.Fatalf("first run = %v, want a *clone.CopyError", err)
	}
	if !ce.Deterministic || ce.NS != bad {
		t.Errorf("first run's error = %+v, want deterministic on %s", ce, bad)
	}
	p := e.Progress()
	if p.State != migration.StateFailed || !strings.Contains(p.Error, bad.String()) || !strings.Contains(p.Error, "deterministic") ||
		!strings.Contains(p.Error, "run the same command again") {
		t.Errorf("progress after the failure: state %s, error %q; want FAILED naming %s, deterministic, and what to do", p.State, p.Error, bad)
	}
	t.Logf("first run: %v", err)

	proxy.Pass()
	if _, err := runEngine(t, opts); err != nil {
		t.Fatalf("second run (same options, fault gone): %v", err)
	}
	assertSame(t, src, dst, items)
	want, got := digestsOf(t, src, bad), digestsOf(t, dst, bad)
	if len(want) != 301 || len(got) != len(want) {
		t.Fatalf("%s: %d source documents, %d on the destination, want 301 each", bad, len(want), len(got))
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: document %s differs", bad, k)
		}
	}
}
