package engine

import (
	"context"
	"testing"
	"time"

	"github.com/livemigrate/livemigrate/internal/mdb"
	"github.com/livemigrate/livemigrate/internal/migration"
	"github.com/livemigrate/livemigrate/internal/mongotest"
)

// TestBlackholeDuringChangeApplication: a 30 s network blackhole between
// the engine and the destination while the workload writes; the engine
// rides it out and the destination ends equal to the source.
func TestBlackholeDuringChangeApplication(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srcSrv, dstSrv := mongotest.StartSource(t), mongotest.StartDestination(t)
	src, dst := mongotest.Client(t, srcSrv), mongotest.Client(t, dstSrv)
	proxy := mongotest.NewProxy(t, dstSrv.Addr())
	items := migration.Namespace{DB: "app", Coll: "items"}
	seed(t, src, items, 0, 300)

	e, err := New(Options{Source: mdb.URI(srcSrv.URI()), Destination: mdb.URI(dstSrv.URIFor(proxy.Addr()))}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- e.Run(runCtx) }()
	mongotest.WaitFor(t, "change application", 60*time.Second, func() bool { return e.Progress().Phase == migration.PhaseApplying })

	wl := mongotest.StartWorkload(ctx, src, mongotest.WorkloadOptions{Namespaces: []string{"app.items"}, Writers: 2, Rate: 100, Seed: 3, IDBase: 1_000_000})
	time.Sleep(time.Second)
	proxy.Blackhole(30 * time.Second)
	time.Sleep(31 * time.Second)
	if _, err := wl.Stop(); err != nil {
		t.Fatalf("workload: %v", err)
	}
	mongotest.WaitFor(t, "canCommit", 90*time.Second, func() bool { return e.Progress().CanCommit })
	if err := e.Commit(); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("Run: %v", err)
	}
	rep := e.CommitReport()
	if rep == nil || !rep.Verified {
		t.Fatalf("commit report %+v, want verified", rep)
	}
	t.Logf("commit report: %+v", *rep)
	if rep.Repaired != 0 {
		t.Errorf("commit repaired %d documents, want 0: change application lost events across the blackhole (%+v)", rep.Repaired, rep.Verification)
	}
	assertSame(t, src, dst, items)
}
