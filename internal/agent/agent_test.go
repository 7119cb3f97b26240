package agent_test

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/livemigrate/livemigrate/internal/agent"
	"github.com/livemigrate/livemigrate/internal/api"
	"github.com/livemigrate/livemigrate/internal/client"
	"github.com/livemigrate/livemigrate/internal/controlplane"
	"github.com/livemigrate/livemigrate/internal/mdb"
	"github.com/livemigrate/livemigrate/internal/mongotest"
)

// controlPlane is an in-process control plane with an owner's client.
type controlPlane struct {
	admin          *client.Client
	orgID, groupID string
	sourceGroupID  string
	linkToken      string
}

func startControlPlane(t *testing.T) *controlPlane {
	t.Helper()
	return startControlPlaneWith(t, controlplane.Timing{})
}

func startControlPlaneWith(t *testing.T, timing controlplane.Timing) *controlPlane {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, controlplane.KeySize)
	rand.Read(key)
	url := "http://" + ln.Addr().String()
	srv, err := controlplane.New(ctx, controlplane.Options{DataPath: filepath.Join(t.TempDir(), "cp.db"), Key: key, ExternalURL: url,
		Logger: testLogger(t), Timing: timing})
	if err != nil {
		t.Fatal(err)
	}
	_, pw, orgID, err := srv.Bootstrap(ctx, controlplane.BootstrapOptions{Username: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = srv.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done; srv.Close() })
	cp := &controlPlane{admin: client.New(url, client.BasicAuth("admin", pw)), orgID: orgID}
	projects, err := cp.admin.Projects(ctx)
	if err != nil || len(projects) == 0 {
		t.Fatalf("projects: %v %v", projects, err)
	}
	cp.groupID = projects[0].ID
	tok, err := cp.admin.CreateLinkToken(ctx, orgID, api.LinkTokenRequest{})
	if err != nil {
		t.Fatal(err)
	}
	cp.linkToken = tok.LinkToken
	return cp
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.DiscardHandler)
}

// startAgent runs an agent until the test ends.
func startAgent(t *testing.T, cp *controlPlane, host string, sources ...agent.Source) {
	t.Helper()
	a, err := agent.New(agent.Options{LinkToken: cp.linkToken, Hostname: host, Sources: sources, Version: "test",
		ProgressInterval: 300 * time.Millisecond, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent run: %v", err)
		}
	})
}

func (cp *controlPlane) waitDeployment(t *testing.T, host, name string) api.AvailableDeployment {
	t.Helper()
	var found api.AvailableDeployment
	mongotest.WaitForErr(t, "deployment "+name, 20*time.Second, func() (bool, error) {
		ps, err := cp.admin.AvailableProjects(context.Background(), cp.orgID)
		if err != nil {
			return false, err
		}
		for _, p := range ps {
			cp.sourceGroupID = p.ProjectID
			for _, d := range p.Deployments {
				if d.Name == name {
					found = d
					return true, nil
				}
			}
		}
		return false, nil
	})
	return found
}

func (cp *controlPlane) request(host, source, dest string) api.MigrationRequest {
	return api.MigrationRequest{
		Source:         api.MigrationSource{ClusterName: source, GroupID: cp.sourceGroupID, ManagedAuthentication: true},
		Destination:    api.MigrationDestination{ClusterName: dest, GroupID: cp.groupID, HostnameSchemaType: api.HostnamePublic},
		MigrationHosts: []string{host},
	}
}

func (cp *controlPlane) validate(t *testing.T, req api.MigrationRequest) api.ValidationChecks {
	t.Helper()
	ctx := context.Background()
	v, err := cp.admin.CreateValidation(ctx, cp.groupID, req)
	if err != nil {
		t.Fatal(err)
	}
	var checks api.ValidationChecks
	mongotest.WaitForErr(t, "validation result", 30*time.Second, func() (bool, error) {
		checks, err = cp.admin.ValidationChecks(ctx, cp.groupID, v.ID)
		return err == nil && checks.Status != api.ValidationPending, err
	})
	return checks
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
	if _, err := cp.admin.CreateCluster(ctx, cp.groupID, api.ClusterRequest{Name: "dst", ConnectionString: dst.URI()}); err != nil {
		t.Fatal(err)
	}
	startAgent(t, cp, "host1", agent.Source{Name: "rs0", URI: mdb.URI(src.URI())}, agent.Source{Name: "unreachable", URI: "mongodb://127.0.0.1:1/?directConnection=true"})

	d := cp.waitDeployment(t, "host1", "rs0")
	if d.MongoDBVersion != "7.0.42" || d.FeatureCompatibilityVersion != "7.0" || d.Sharded || d.OplogSizeMB == 0 {
		t.Errorf("deployment rs0 = %+v, want version 7.0.42, FCV 7.0, not sharded, an oplog size", d)
	}
	cp.waitDeployment(t, "host1", "unreachable") // unreachable, still reported by name

	checks := cp.validate(t, cp.request("host1", "rs0", "dst"))
	if checks.Status != api.ValidationSuccess {
		t.Fatalf("validation: %s %+v", checks.Status, checks.Checks)
	}

	m, err := cp.admin.CreateMigration(ctx, cp.groupID, cp.request("host1", "rs0", "dst"))
	if err != nil {
		t.Fatal(err)
	}
	var mp api.MigrationProgress
	mongotest.WaitForErr(t, "ready for cutover", 90*time.Second, func() (bool, error) {
		mp, err = cp.admin.MigrationProgress(ctx, cp.groupID, m.ID)
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
		err := cp.admin.Cutover(ctx, cp.groupID, m.ID)
		if client.IsConflict(err) {
			return false, nil
		}
		return err == nil, err
	})
	mongotest.WaitForErr(t, "migration complete", 90*time.Second, func() (bool, error) {
		mp, err = cp.admin.MigrationProgress(ctx, cp.groupID, m.ID)
		if err == nil && mp.Migration.Status == api.MigrationFailed {
			return false, errors.New("migration failed: " + mp.ErrorMessage)
		}
		return err == nil && mp.Migration.Status == api.MigrationComplete, err
	})
	rep, err := cp.admin.MigrationReport(ctx, cp.groupID, m.ID)
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
