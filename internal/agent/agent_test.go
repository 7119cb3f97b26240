package agent_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/livemigrate/livemigrate/internal/agent"
	"github.com/livemigrate/livemigrate/internal/api"
	"github.com/livemigrate/livemigrate/internal/client"
	"github.com/livemigrate/livemigrate/internal/controlplane"
	"github.com/livemigrate/livemigrate/internal/controlplane/cptest"
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
	n, err := mongotest.Client(t, dst).Database("shop").Collection("a").CountDocuments(ctx, bson.D{})
	if err != nil || n != 501 {
		t.Errorf("destination shop.a has %d documents (%v), want 501", n, err)
	}
}
