package e2e

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/livemigrate/livemigrate/internal/api"
	"github.com/livemigrate/livemigrate/internal/client"
	"github.com/livemigrate/livemigrate/internal/mongotest"
)

// TestResume kills the agent with SIGKILL mid-copy and mid-apply and
// restarts the control plane mid-migration, under a live workload; the
// migration still completes with verification passed and the destination
// equal to the source.
func TestResume(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cp := startControlPlane(t)
	// The 24,000 seed inserts are trimmed from a 5,000-entry oplog before the
	// migration starts (the test waits for it, and for the second of the
	// last seed to end): on FerretDB every poll scans the whole oplog, and
	// the workload's entries are what this test is about. The seeds are
	// then older than the start point, whose second the source may trim
	// without that being lost history (apply.md, Idempotence).
	src := mongotest.StartSource(t, mongotest.WithOplog(5000))
	dst := mongotest.StartDestination(t)
	sc := mongotest.Client(t, src)
	for _, coll := range []string{"big1", "big2", "big3"} {
		docs := make([]any, 0, 8000)
		for i := range 8000 {
			docs = append(docs, bson.D{{Key: "_id", Value: i}, {Key: "pad", Value: "0123456789012345678901234567890123456789"}, {Key: "n", Value: i}})
		}
		if _, err := sc.Database("app").Collection(coll).InsertMany(ctx, docs, options.InsertMany().SetOrdered(false)); err != nil {
			t.Fatal(err)
		}
	}
	seeded := time.Now()
	oplog := sc.Database("local").Collection("oplog.rs")
	mongotest.WaitForErr(t, "the seeds trimmed from the oplog", 30*time.Second, func() (bool, error) {
		n, err := oplog.EstimatedDocumentCount(ctx)
		return err == nil && n <= 5000 && time.Now().Unix() > seeded.Unix(), err
	})
	if _, err := cp.Admin.CreateCluster(ctx, cp.GroupID, api.ClusterRequest{Name: "dst", ConnectionString: dst.URI()}); err != nil {
		t.Fatal(err)
	}
	ag := cp.startAgent(t, "host1", nil, "--source", "rs0="+src.URI(), "--progress-interval", "500ms")
	cp.WaitDeployment(t, "rs0")
	wl := mongotest.StartWorkload(ctx, sc, mongotest.WorkloadOptions{Namespaces: []string{"app.hot"}, Writers: 2, Rate: 20, IDBase: 1 << 40})
	defer wl.Stop()

	m, err := cp.Admin.CreateMigration(ctx, cp.GroupID, cp.Request("host1", "rs0", "dst"))
	if err != nil {
		t.Fatal(err)
	}
	progress := func() api.MigrationProgress {
		t.Helper()
		var p api.MigrationProgress
		mongotest.WaitForErr(t, "progress", 30*time.Second, func() (bool, error) {
			p, err = cp.Admin.MigrationProgress(ctx, cp.GroupID, m.ID)
			if err == nil && p.Migration.Status == api.MigrationFailed {
				return false, errors.New("migration failed: " + p.ErrorMessage)
			}
			return err == nil, nil
		})
		return p
	}

	// Mid-copy: kill -9 the agent, start it again.
	mongotest.WaitForErr(t, "copy started", 60*time.Second, func() (bool, error) {
		p := progress()
		return p.Progress != nil && p.Progress.CopiedDocuments > 0, nil
	})
	p := progress()
	t.Logf("killing the agent in phase %q with %d documents copied", p.Progress.Phase, p.Progress.CopiedDocuments)
	ag.restart(syscall.SIGKILL)

	// Mid-apply: wait for change application, kill -9 again.
	mongotest.WaitForErr(t, "change application", 90*time.Second, func() (bool, error) {
		p := progress()
		return p.Progress != nil && p.Progress.Phase == "change event application", nil
	})
	time.Sleep(time.Second)
	t.Log("killing the agent during change application")
	ag.restart(syscall.SIGKILL)

	// The control plane restarts while the migration runs.
	time.Sleep(2 * time.Second)
	t.Log("restarting the control plane")
	cp.restart(syscall.SIGTERM)
	waitUp(t, cp.Admin)

	mongotest.WaitForErr(t, "ready for cutover", 90*time.Second, func() (bool, error) {
		return progress().Migration.ReadyForCutover, nil
	})
	if _, err := wl.Stop(); err != nil {
		t.Logf("workload errors: %v", err)
	}
	mongotest.WaitForErr(t, "cutover accepted", 60*time.Second, func() (bool, error) {
		err := cp.Admin.Cutover(ctx, cp.GroupID, m.ID)
		if client.IsConflict(err) {
			return false, nil
		}
		return err == nil, err
	})
	mongotest.WaitForErr(t, "migration complete", 120*time.Second, func() (bool, error) {
		return progress().Migration.Status == api.MigrationComplete, nil
	})
	rep, err := cp.Admin.MigrationReport(ctx, cp.GroupID, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Verification.Status != api.VerificationPassed || rep.CollectionsCopied != 4 {
		t.Errorf("report %+v, want verification PASSED and 4 collections", rep)
	}
	// The agent was killed, never a server: nothing may need repair.
	for _, n := range rep.Verification.Namespaces {
		if n.Repaired != 0 {
			t.Errorf("%s: commit repaired %d documents, want 0: change application lost events (%+v)", n.Namespace, n.Repaired, n)
		}
	}
	dc := mongotest.Client(t, dst)
	for _, coll := range []string{"big1", "big2", "big3", "hot"} {
		ns, _ := sc.Database("app").Collection(coll).CountDocuments(ctx, bson.D{})
		nd, _ := dc.Database("app").Collection(coll).CountDocuments(ctx, bson.D{})
		if ns != nd {
			t.Errorf("app.%s: source %d documents, destination %d", coll, ns, nd)
		}
	}
	events, err := cp.Admin.MigrationEvents(ctx, cp.GroupID, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if last := events[len(events)-1]; last.Type != api.EventCompleted {
		t.Errorf("last event %+v, want COMPLETED", last)
	}
}
