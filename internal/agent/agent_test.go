package agent_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/livemigrate/livemigrate/internal/agent"
	"github.com/livemigrate/livemigrate/internal/api"
	"github.com/livemigrate/livemigrate/internal/catalog"
	"github.com/livemigrate/livemigrate/internal/checkpoint"
	"github.com/livemigrate/livemigrate/internal/client"
	"github.com/livemigrate/livemigrate/internal/controlplane"
	"github.com/livemigrate/livemigrate/internal/controlplane/cptest"
	"github.com/livemigrate/livemigrate/internal/engine"
	"github.com/livemigrate/livemigrate/internal/mdb"
	"github.com/livemigrate/livemigrate/internal/mongotest"
)

func startControlPlane(t *testing.T) *cptest.Owner {
	t.Helper()
	return cptest.Start(t, controlplane.Timing{}, testLogger(t))
}

func startControlPlaneWith(t *testing.T, timing controlplane.Timing) *cptest.Owner {
	t.Helper()
	return cptest.Start(t, timing, testLogger(t))
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.DiscardHandler)
}

// startAgent runs an agent until the test ends.
func startAgent(t *testing.T, cp *cptest.Owner, host string, sources ...agent.Source) {
	t.Helper()
	stoppableAgent(t, cp, host, sources...)
}

func TestAgentRegistersValidatesAndMigrates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cp := startControlPlane(t)
	src := mongotest.StartSource(t)
	dst := mongotest.StartDestination(t)
	sc := mongotest.Client(t, src)
	var docs []any
	for i := range 500 {
		docs = append(docs, bson.D{{Key: "_id", Value: i}, {Key: "name", Value: "n"}, {Key: "n", Value: i}})
	}
	for _, coll := range []string{"a", "b"} {
		if _, err := sc.Database("shop").Collection(coll).InsertMany(ctx, docs); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cp.Admin.CreateCluster(ctx, cp.GroupID, api.ClusterRequest{Name: "dst", ConnectionString: dst.URI()}); err != nil {
		t.Fatal(err)
	}
	startAgent(t, cp, "host1", agent.Source{Name: "rs0", URI: mdb.URI(src.URI())}, agent.Source{Name: "unreachable", URI: "mongodb://127.0.0.1:1/?directConnection=true"})

	d := cp.WaitDeployment(t, "rs0")
	if d.MongoDBVersion != "7.0.42" || d.FeatureCompatibilityVersion != "7.0" || d.Sharded || d.OplogSizeMB == 0 {
		t.Errorf("deployment rs0 = %+v, want version 7.0.42, FCV 7.0, not sharded, an oplog size", d)
	}
	cp.WaitDeployment(t, "unreachable") // unreachable, still reported by name

	checks := cp.Validate(t, cp.Request("host1", "rs0", "dst"))
	if checks.Status != api.ValidationSuccess {
		t.Fatalf("validation: %s %+v", checks.Status, checks.Checks)
	}

	m, err := cp.Admin.CreateMigration(ctx, cp.GroupID, cp.Request("host1", "rs0", "dst"))
	if err != nil {
		t.Fatal(err)
	}
	var mp api.MigrationProgress
	mongotest.WaitForErr(t, "ready for cutover", 90*time.Second, func() (bool, error) {
		mp, err = cp.Admin.MigrationProgress(ctx, cp.GroupID, m.ID)
		if err != nil {
			return false, err
		}
		if mp.Migration.Status == api.MigrationFailed {
			return false, errors.New("migration failed: " + mp.ErrorMessage)
		}
		return mp.Migration.ReadyForCutover, nil
	})
	if p := mp.Progress; p.CopiedDocuments != 1000 || len(p.Namespaces) != 2 || p.Phase != "change event application" {
		t.Errorf("progress at ready = %+v, want 1000 documents copied in 2 namespaces, applying changes", p)
	}
	// The default mode verifies while changes apply; x-progress says how far.
	mongotest.WaitForErr(t, "both namespaces verified in the background", 90*time.Second, func() (bool, error) {
		mp, err = cp.Admin.MigrationProgress(ctx, cp.GroupID, m.ID)
		if err != nil || mp.Progress == nil || mp.Progress.BackgroundVerification == nil {
			return false, err
		}
		b := mp.Progress.BackgroundVerification
		return b.NamespacesVerified == 2 && b.Namespaces == 2 && b.DocumentsCompared >= 1000 && b.Passes >= 2, nil
	})
	// A change after the copy reaches the destination through change application.
	if _, err := sc.Database("shop").Collection("a").InsertOne(ctx, bson.D{{Key: "_id", Value: "late"}}); err != nil {
		t.Fatal(err)
	}
	// Writes stopped: cut over as soon as the migration is ready again.
	mongotest.WaitForErr(t, "cutover accepted", 60*time.Second, func() (bool, error) {
		err := cp.Admin.Cutover(ctx, cp.GroupID, m.ID)
		if client.IsConflict(err) {
			return false, nil
		}
		return err == nil, err
	})
	mongotest.WaitForErr(t, "migration complete", 90*time.Second, func() (bool, error) {
		mp, err = cp.Admin.MigrationProgress(ctx, cp.GroupID, m.ID)
		if err == nil && mp.Migration.Status == api.MigrationFailed {
			return false, errors.New("migration failed: " + mp.ErrorMessage)
		}
		return err == nil && mp.Migration.Status == api.MigrationComplete, err
	})
	rep, err := cp.Admin.MigrationReport(ctx, cp.GroupID, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Verification.Status != api.VerificationPassed || rep.CollectionsCopied != 2 || rep.BytesCopied == 0 || rep.DurationSeconds <= 0 {
		t.Errorf("report = %+v, want verification PASSED, 2 collections, bytes and a duration", rep)
	}
	checkItemisedDowntime(t, rep, mongotest.Client(t, dst))
	n, err := mongotest.Client(t, dst).Database("shop").Collection("a").CountDocuments(ctx, bson.D{})
	if err != nil || n != 501 {
		t.Errorf("destination shop.a has %d documents (%v), want 501", n, err)
	}
}

// checkItemisedDowntime checks the report's itemised downtime of a
// continuous-mode commit after both namespaces were verified in the
// background and one document changed: the parts fit in the engine's
// downtime and that in the control plane's, the counts are the engine's
// own commit report (as stored on the destination), nothing was found
// different or repaired, and the coverage is complete by background passes.
func checkItemisedDowntime(t *testing.T, rep api.MigrationReport, dst *mongo.Client) {
	t.Helper()
	d := rep.Downtime
	if d == nil {
		t.Fatal("the report has no itemised downtime")
	}
	var cr engine.CommitReport
	// "commit" is the engine's state key of its commit report.
	found, err := checkpoint.Open(dst, catalog.DefaultMetadataDB, slog.New(slog.DiscardHandler)).LoadState(t.Context(), "commit", &cr)
	if err != nil || !found {
		t.Fatalf("the engine's commit report on the destination: found %t, %v", found, err)
	}
	t.Logf("downtime %.2f s (engine %.2f s): commit point %.2f s, drain %.2f s, index restore %.2f s, verification %.2f s, other %.2f s; %d rechecked, %d repaired",
		rep.DowntimeSeconds, d.EngineSeconds, d.CommitPointSeconds, d.DrainSeconds, d.IndexRestoreSeconds, d.VerificationSeconds, d.OtherSeconds, d.DocumentsRechecked, d.Repaired)
	const eps = 1e-6
	if parts := d.PartsSeconds(); parts > d.EngineSeconds+eps || d.EngineSeconds > rep.DowntimeSeconds+eps {
		t.Errorf("downtime parts %.3f s, engine %.3f s, total %.3f s: want parts ≤ engine ≤ total", parts, d.EngineSeconds, rep.DowntimeSeconds)
	}
	if got := d.PartsSeconds() + d.OtherSeconds; got < rep.DowntimeSeconds-eps || got > rep.DowntimeSeconds+eps {
		t.Errorf("parts %.3f s + other %.3f s ≠ downtime %.3f s", d.PartsSeconds(), d.OtherSeconds, rep.DowntimeSeconds)
	}
	want := api.Downtime{VerificationMode: "continuous", EngineSeconds: cr.DowntimeSeconds,
		CommitPointSeconds: cr.CommitPointSeconds, DrainSeconds: cr.DrainSeconds, IndexRestoreSeconds: cr.IndexRestoreSeconds, VerificationSeconds: cr.VerificationSeconds,
		DocumentsRechecked: cr.DocumentsRechecked, Repaired: cr.Repaired,
		FoundBeforeRepair: api.DifferenceCounts{Missing: cr.Found.Missing, Extra: cr.Found.Extra, Differing: cr.Found.Differing}}
	got := *d
	got.OtherSeconds, got.Coverage, got.Background = 0, api.Coverage{}, nil
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("report's downtime against the engine's commit report (-engine +report):\n%s", diff)
	}
	if cr.Mode != engine.VerifyContinuous || d.Repaired != 0 || d.FoundBeforeRepair != (api.DifferenceCounts{}) {
		t.Errorf("mode %s, %d rechecked, %d repaired, found %+v: want continuous, nothing found or repaired",
			cr.Mode, d.DocumentsRechecked, d.Repaired, d.FoundBeforeRepair)
	}
	if c := d.Coverage; !c.Complete || c.Namespaces != 2 || c.NamespacesByPass != 2 || len(c.ComparedInFull) != 0 {
		t.Errorf("coverage %+v: want complete, both namespaces by their background pass", c)
	}
	if b := d.Background; b == nil || b.Passes < 2 || b.DocumentsCompared < 1000 || cr.Background == nil || b.Passes != cr.Background.Passes || b.DocumentsCompared != cr.Background.DocumentsCompared {
		t.Errorf("background share %+v, engine's %+v: want the engine's, at least 2 passes over 1000 documents", b, cr.Background)
	}
}
