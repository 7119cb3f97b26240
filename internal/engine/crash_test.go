package engine

import (
	"context"
	"errors"
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/livemigrate/livemigrate/internal/capture"
	"github.com/livemigrate/livemigrate/internal/catalog"
	"github.com/livemigrate/livemigrate/internal/mdb"
	"github.com/livemigrate/livemigrate/internal/migration"
	"github.com/livemigrate/livemigrate/internal/mongotest"
)

// The kill -9 tests of change application (docs/design/apply.md): each one
// crashes a process while a workload writes, recovers, commits, and ends
// with the destination equal to the source's final state, byte for byte,
// indexes included.

// applyCheckpoint reads the durable change-apply checkpoint from the
// destination's metadata database.
func applyCheckpoint(t *testing.T, dst *mongo.Client) (applyState, bool) {
	t.Helper()
	var d struct {
		Value applyState `bson:"value"`
	}
	err := dst.Database(catalog.DefaultMetadataDB).Collection("state").FindOne(context.Background(), bson.D{{Key: "_id", Value: stateKeyApply}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return applyState{}, false
	}
	if err != nil {
		t.Fatalf("read the apply checkpoint: %v", err)
	}
	return d.Value, true
}

// crashWriters is the number of writers of crashWorkload, each with one
// single-document write in flight at a time.
const crashWriters = 2

// crashWorkload is the live workload of the crash tests.
func crashWorkload(ctx context.Context, src *mongo.Client, seed uint64) *mongotest.Workload {
	return mongotest.StartWorkload(ctx, src, mongotest.WorkloadOptions{
		Namespaces: []string{"app.items", "app.orders"}, Writers: crashWriters, Rate: 120, DocBytes: 200, Seed: seed, IDBase: 1_000_000,
	})
}

// startEngine runs an engine in this process; the returned channel gets
// Run's error.
func startEngine(t *testing.T, opts Options) (*Engine, <-chan error) {
	t.Helper()
	e, err := New(opts, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	errc := make(chan error, 1)
	go func() { errc <- e.Run(ctx) }()
	return e, errc
}

// commitEngine waits up to ready for canCommit, commits, waits up to done
// for Run to return and checks that the engine is COMMITTED, writable and
// verified; it returns the commit report.
func commitEngine(t *testing.T, e *Engine, errc <-chan error, ready, done time.Duration) *CommitReport {
	t.Helper()
	mongotest.WaitFor(t, "canCommit", ready, func() bool { return e.Progress().CanCommit })
	if err := e.Commit(); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(done):
		t.Fatalf("commit did not finish in %v; progress %+v", done, e.Progress())
	}
	p := e.Progress()
	rep := e.CommitReport()
	if p.State != migration.StateCommitted || !p.CanWrite || rep == nil || !rep.Verified {
		t.Fatalf("after commit: state %s canWrite %v report %+v, want COMMITTED, writable, verified", p.State, p.CanWrite, rep)
	}
	t.Logf("commit report: %+v", *rep)
	return rep
}

// commitAndCompare waits for canCommit, commits, and checks that the
// destination equals the source: collections, every document byte for
// byte, index names and uniqueness. Verification may have found (and
// repaired) at most maxFound documents: 0 where no change can have been
// lost, so a lost or misapplied event fails the test.
func commitAndCompare(t *testing.T, e *Engine, errc <-chan error, src, dst *mongo.Client, maxFound int64) {
	t.Helper()
	rep := commitEngine(t, e, errc, 60*time.Second, 90*time.Second)
	if rep.Found.Total() > maxFound || rep.Repaired > maxFound {
		t.Errorf("verification at commit found %+v and repaired %d documents, want at most %d", rep.Found, rep.Repaired, maxFound)
	}
	srcColls, dstColls := collNames(t, src, "app"), collNames(t, dst, "app")
	if !slices.Equal(srcColls, dstColls) {
		t.Errorf("collections: source %v, destination %v", srcColls, dstColls)
	}
	for _, name := range srcColls {
		ns := migration.Namespace{DB: "app", Coll: name}
		assertSame(t, src, dst, ns)
		if s, d := indexUniqueness(t, src, ns), indexUniqueness(t, dst, ns); !cmpEqual(s, d) {
			t.Errorf("%s indexes: source %v, destination %v", ns, s, d)
		}
	}
}

// TestKillEngineDuringChangeApplication: the engine process is killed with
// SIGKILL twice while it applies a live workload; an engine restarted with
// the same parameters resumes from the durable checkpoint, commits, and the
// destination equals the source.
func TestKillEngineDuringChangeApplication(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srcSrv, dstSrv := mongotest.StartSource(t), mongotest.StartDestination(t)
	src, dst := mongotest.Client(t, srcSrv), mongotest.Client(t, dstSrv)
	seed(t, src, migration.Namespace{DB: "app", Coll: "items"}, 0, 300)
	seed(t, src, migration.Namespace{DB: "app", Coll: "orders"}, 0, 100)
	wl := crashWorkload(ctx, src, 11)
	defer wl.Stop()

	var last applyState
	for kill := 1; kill <= 2; kill++ {
		p := startHelper(t, helperSync, srcSrv, dstSrv)
		// Kill once this process has moved the checkpoint (it is applying).
		deadline := time.Now().Add(45 * time.Second)
		for {
			st, ok := applyCheckpoint(t, dst)
			if ok && last.Pos.Before(st.Pos) && st.Applied > last.Applied {
				last = st
				break
			}
			select {
			case err := <-p.done:
				t.Fatalf("engine process ended before it was killed: %v\n%s", err, p.out.String())
			case <-time.After(200 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				_ = p.cmd.Process.Signal(syscall.SIGKILL)
				t.Fatalf("engine process %d never checkpointed change application\n%s", kill, p.out.String())
			}
		}
		time.Sleep(time.Duration(300*kill) * time.Millisecond) // mid-batch, not right at a save
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		var ee *exec.ExitError
		if err := <-p.done; !errors.As(err, &ee) {
			t.Fatalf("engine process %d: want killed, got %v", kill, err)
		}
		t.Logf("kill %d: checkpoint %v, %d events applied", kill, last.Pos.TS, last.Applied)
	}

	e, errc := startEngine(t, Options{Source: mdb.URI(srcSrv.URI()), Destination: mdb.URI(dstSrv.URI())})
	mongotest.WaitFor(t, "change application after restart", 30*time.Second, func() bool { return e.Progress().Phase == migration.PhaseApplying })
	time.Sleep(2 * time.Second)
	if _, err := wl.Stop(); err != nil {
		t.Fatalf("workload: %v", err)
	}
	commitAndCompare(t, e, errc, src, dst, 0)
	if rep := e.CommitReport(); rep.EventsApplied <= last.Applied {
		t.Errorf("events applied %d after resume, want more than the %d checkpointed before the kill", rep.EventsApplied, last.Applied)
	}
}

// killDuringChangeApplication runs an engine from srcSrv to dstSrv; once it
// applies changes it starts the crash workload (seed) and, 2 s later, kills
// victim (one of the two) with SIGKILL, restarts it after down and returns
// after up more, the workload still writing.
func killDuringChangeApplication(t *testing.T, srcSrv, dstSrv, victim *mongotest.Server, seed uint64, down, up time.Duration) (*Engine, <-chan error, *mongotest.Workload) {
	t.Helper()
	e, errc := startEngine(t, Options{Source: mdb.URI(srcSrv.URI()), Destination: mdb.URI(dstSrv.URI())})
	mongotest.WaitFor(t, "change application", 30*time.Second, func() bool { return e.Progress().Phase == migration.PhaseApplying })
	wl := crashWorkload(context.Background(), mongotest.Client(t, srcSrv), seed)
	t.Cleanup(func() { _, _ = wl.Stop() })
	time.Sleep(2 * time.Second)
	if err := victim.Kill(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(down)
	rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := victim.Restart(rctx); err != nil {
		t.Fatalf("restart the killed server: %v", err)
	}
	time.Sleep(up)
	return e, errc, wl
}

// TestKillSourceDuringChangeApplication: the source server is killed with
// SIGKILL and restarted while the engine applies a live workload. Its oplog
// counter restarts and writes committed just before the crash may have no
// oplog entry: commit must still end equal (verification repairs them), not
// report success with a difference.
func TestKillSourceDuringChangeApplication(t *testing.T) {
	t.Parallel()
	srcSrv, dstSrv := mongotest.StartSource(t), mongotest.StartDestination(t)
	src, dst := mongotest.Client(t, srcSrv), mongotest.Client(t, dstSrv)
	seed(t, src, migration.Namespace{DB: "app", Coll: "items"}, 0, 300)

	e, errc, wl := killDuringChangeApplication(t, srcSrv, dstSrv, srcSrv, 12, 500*time.Millisecond, 4*time.Second)
	_, _ = wl.Stop() // writes fail while the source is down
	// FerretDB writes the oplog entry in a transaction after the data's
	// (substrate.md): a write in flight at the kill can be committed with
	// no entry. Each writer has one write in flight, so at most
	// crashWriters documents are found and repaired.
	commitAndCompare(t, e, errc, src, dst, crashWriters)
}

// TestKillDestinationDuringChangeApplication: the destination server is
// killed with SIGKILL and restarted while the engine applies a live
// workload; the engine rides it out and ends equal.
func TestKillDestinationDuringChangeApplication(t *testing.T) {
	t.Parallel()
	srcSrv, dstSrv := mongotest.StartSource(t), mongotest.StartDestination(t)
	src, dst := mongotest.Client(t, srcSrv), mongotest.Client(t, dstSrv)
	seed(t, src, migration.Namespace{DB: "app", Coll: "items"}, 0, 300)

	e, errc, wl := killDuringChangeApplication(t, srcSrv, dstSrv, dstSrv, 13, 2*time.Second, 3*time.Second)
	if _, err := wl.Stop(); err != nil {
		t.Fatalf("workload: %v", err)
	}
	commitAndCompare(t, e, errc, src, dst, 0)
}

// TestResumeAfterOplogTrimmed: the engine is stopped, the source's capped
// oplog is trimmed past its checkpoint, and a restart fails with
// ErrHistoryLost: nothing applied, nothing reported as success.
func TestResumeAfterOplogTrimmed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const oplogMax = 300
	srcSrv, dstSrv := mongotest.StartSource(t, mongotest.WithOplog(oplogMax)), mongotest.StartDestination(t)
	src, dst := mongotest.Client(t, srcSrv), mongotest.Client(t, dstSrv)
	items := migration.Namespace{DB: "app", Coll: "items"}
	seed(t, src, items, 0, 100)
	opts := Options{Source: mdb.URI(srcSrv.URI()), Destination: mdb.URI(dstSrv.URI())}

	// First run: copy, apply a few changes, stop (a clean stop saves the checkpoint).
	e, err := New(opts, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- e.Run(runCtx) }()
	mongotest.WaitFor(t, "change application", 30*time.Second, func() bool { return e.Progress().Phase == migration.PhaseApplying })
	seed(t, src, items, 100, 20)
	mongotest.WaitFor(t, "the changes applied", 30*time.Second, func() bool { return e.Progress().TotalEventsApplied >= 20 })
	stop()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("first run stopped with %v, want context.Canceled", err)
	}
	before, ok := applyCheckpoint(t, dst)
	if !ok {
		t.Fatal("no apply checkpoint after a clean stop")
	}

	// While the engine is stopped, write more than the oplog holds, and
	// wait for the server's capped cleanup to trim it past the checkpoint.
	for i := range 4 {
		seed(t, src, items, 1000+i*200, 200)
	}
	mongotest.WaitFor(t, "the oplog trimmed past the checkpoint", 20*time.Second, func() bool {
		var first struct {
			TS bson.Timestamp `bson:"ts"`
		}
		if err := src.Database("local").Collection("oplog.rs").FindOne(ctx, bson.D{}).Decode(&first); err != nil {
			t.Fatalf("read the oldest oplog entry: %v", err)
		}
		return migration.CompareTS(first.TS, before.Pos.TS) > 0
	})
	dstCount := func() int64 {
		n, err := dst.Database(items.DB).Collection(items.Coll).CountDocuments(ctx, bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	countBefore := dstCount()

	e2, err := New(opts, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	err = e2.Run(rctx)
	if !errors.Is(err, capture.ErrHistoryLost) {
		t.Fatalf("restart after the oplog was trimmed: got %v, want ErrHistoryLost", err)
	}
	var hl *capture.HistoryLostError
	if !errors.As(err, &hl) || hl.From.Before(before.Pos) {
		t.Errorf("error %v: want a *HistoryLostError from the checkpoint %v", err, before.Pos.TS)
	}
	t.Logf("error: %v", err)
	p := e2.Progress()
	if p.State != migration.StateFailed || p.CanWrite || p.CanCommit || e2.CommitReport() != nil {
		t.Errorf("after ErrHistoryLost: state %s canWrite %v canCommit %v report %v, want FAILED and nothing else", p.State, p.CanWrite, p.CanCommit, e2.CommitReport())
	}
	after, _ := applyCheckpoint(t, dst)
	if migration.CompareTS(after.Pos.TS, before.Pos.TS) != 0 {
		t.Errorf("apply checkpoint moved from %v to %v across a failed resume", before.Pos.TS, after.Pos.TS)
	}
	if n := dstCount(); n != countBefore {
		t.Errorf("destination went from %d to %d documents across a failed resume", countBefore, n)
	}
	// A second attempt fails the same way: it never silently skips the gap.
	if err := func() error {
		e3, _ := New(opts, testLogger(t))
		return e3.Run(rctx)
	}(); !errors.Is(err, capture.ErrHistoryLost) {
		t.Errorf("second restart: got %v, want ErrHistoryLost", err)
	}
}
