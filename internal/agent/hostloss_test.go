package agent_test

import (
	"context"
	"errors"
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

// stoppableAgent runs an agent until stop (or the end of the test).
func stoppableAgent(t *testing.T, cp *cptest.Owner, host string, sources ...agent.Source) (stop func()) {
	t.Helper()
	return cptest.RunAgent(t, agent.Options{LinkToken: cp.LinkToken, Hostname: host, Sources: sources, Version: "test",
		ProgressInterval: 300 * time.Millisecond, Logger: testLogger(t)})
}

// hostedMigration is a migration of the source "rs0" to the cluster "dst"
// that an agent on "host1" runs.
type hostedMigration struct {
	m      api.Migration
	source agent.Source // the agent's source, to restart it with
	stop   func()       // stops the agent
}

// startHostedMigration registers dst, runs an agent for src until it reports
// it and creates the migration.
func startHostedMigration(t *testing.T, cp *cptest.Owner, src, dst *mongotest.Server) hostedMigration {
	t.Helper()
	ctx := context.Background()
	if _, err := cp.Admin.CreateCluster(ctx, cp.GroupID, api.ClusterRequest{Name: "dst", ConnectionString: dst.URI()}); err != nil {
		t.Fatal(err)
	}
	h := hostedMigration{source: agent.Source{Name: "rs0", URI: mdb.URI(src.URI())}}
	h.stop = stoppableAgent(t, cp, "host1", h.source)
	cp.WaitDeployment(t, "rs0")
	m, err := cp.Admin.CreateMigration(ctx, cp.GroupID, cp.Request("host1", "rs0", "dst"))
	if err != nil {
		t.Fatal(err)
	}
	h.m = m
	return h
}

// get reads the migration; a failed one ends the test with its error.
func (h hostedMigration) get(t *testing.T, cp *cptest.Owner) api.Migration {
	t.Helper()
	ctx := context.Background()
	got, err := cp.Admin.Migration(ctx, cp.GroupID, h.m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status == api.MigrationFailed {
		mp, _ := cp.Admin.MigrationProgress(ctx, cp.GroupID, h.m.ID)
		t.Fatalf("migration failed: %s", mp.ErrorMessage)
	}
	return got
}

// completesAfterRestart restarts the agent and waits up to within for the
// migration to complete: its report must show verification passed with
// nothing repaired, missing, differing or extra, and the destination must
// hold want documents in shop.orders. It returns the report.
func (h hostedMigration) completesAfterRestart(t *testing.T, cp *cptest.Owner, dst *mongotest.Server, within time.Duration, want int64) api.MigrationReport {
	t.Helper()
	ctx := context.Background()
	stoppableAgent(t, cp, "host1", h.source)
	mongotest.WaitForErr(t, "migration complete after the agent restarted", within, func() (bool, error) {
		return h.get(t, cp).Status == api.MigrationComplete, nil
	})
	rep, err := cp.Admin.MigrationReport(ctx, cp.GroupID, h.m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Verification.Status != api.VerificationPassed {
		t.Errorf("verification %s: %s", rep.Verification.Status, rep.Verification.Message)
	}
	for _, ns := range rep.Verification.Namespaces {
		if ns.Repaired != 0 || ns.Missing != 0 || ns.Differing != 0 || ns.Extra != 0 {
			t.Errorf("namespace %+v: want nothing repaired, missing, differing or extra", ns)
		}
	}
	if n, err := mongotest.Client(t, dst).Database("shop").Collection("orders").CountDocuments(ctx, bson.D{}); err != nil || n != want {
		t.Errorf("destination shop.orders has %d documents (%v), want %d", n, err, want)
	}
	return rep
}

// TestLostHostRefusesCutoverAndResumes stops a real agent running a real
// migration between FerretDB servers: the Admin API then says the host is
// lost, is not ready for cutover, shows no lag and refuses cutover with
// MIGRATION_HOST_LOST; a restarted agent makes it ready again. A cutover
// requested just before the host is declared lost shows as lost during the
// cutover and completes when the agent is back, with nothing lost.
func TestLostHostRefusesCutoverAndResumes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// Lost after 3 × 1 s without a call.
	cp := startControlPlaneWith(t, controlplane.Timing{HeartbeatInterval: time.Second, ProgressInterval: time.Second})
	src := mongotest.StartSource(t)
	dst := mongotest.StartDestination(t)
	sc := mongotest.Client(t, src)
	var docs []any
	for i := range 200 {
		docs = append(docs, bson.D{{Key: "_id", Value: i}, {Key: "n", Value: i}})
	}
	orders := sc.Database("shop").Collection("orders")
	if _, err := orders.InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	h := startHostedMigration(t, cp, src, dst)
	m, source, stop := h.m, h.source, h.stop
	get := func() api.Migration { t.Helper(); return h.get(t, cp) }
	waitReady := func(what string) {
		t.Helper()
		mongotest.WaitForErr(t, what, 90*time.Second, func() (bool, error) { return get().ReadyForCutover, nil })
	}
	waitReady("ready for cutover")

	// The host stops: lost within the threshold (+ the timer's slack).
	stop()
	stoppedAt := time.Now()
	var lost api.Migration
	mongotest.WaitForErr(t, "host lost", 10*time.Second, func() (bool, error) { lost = get(); return lost.HostLost != nil, nil })
	t.Logf("declared lost %v after the agent stopped", time.Since(stoppedAt).Round(100*time.Millisecond))
	if lost.ReadyForCutover || lost.LagTimeSeconds != nil || lost.Status != api.MigrationWorking {
		t.Errorf("lost host: %+v, want WORKING, not ready, no lag", lost)
	}
	if hl := lost.HostLost; hl.Hostname != "host1" || hl.DuringCutover || hl.LastSeenAt.After(stoppedAt) || hl.Detail == "" {
		t.Errorf("hostLost = %+v, want host1 last seen before %v, not during cutover, with a detail", hl, stoppedAt)
	}
	err := cp.Admin.Cutover(ctx, cp.GroupID, m.ID)
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.StatusCode != 409 || ae.ErrorCode != "MIGRATION_HOST_LOST" {
		t.Fatalf("cutover while the host is lost: %v, want 409 MIGRATION_HOST_LOST", err)
	}
	// Writes while the host is away are migrated once it is back.
	if _, err := orders.InsertOne(ctx, bson.D{{Key: "_id", Value: "while-lost"}}); err != nil {
		t.Fatal(err)
	}

	// Restarted with the same hostname and link token: ready again.
	stop = stoppableAgent(t, cp, "host1", source)
	waitReady("ready again after the agent restarted")
	if got := get(); got.HostLost != nil || got.LagTimeSeconds == nil {
		t.Errorf("back: %+v, want no hostLost and a live lag", got)
	}

	// The host dies, and the operator confirms the cutover before the
	// control plane notices: the cutover waits for the host.
	stopAt := time.Now()
	stop()
	t.Logf("the agent took %v to stop", time.Since(stopAt).Round(10*time.Millisecond))
	if err := cp.Admin.Cutover(ctx, cp.GroupID, m.ID); err != nil {
		t.Fatalf("cutover just after the host stopped (not yet lost): %v", err)
	}
	mongotest.WaitForErr(t, "host lost during cutover", 10*time.Second, func() (bool, error) {
		lost = get()
		return lost.HostLost != nil, nil
	})
	if !lost.HostLost.DuringCutover || lost.Status != api.MigrationWorking {
		t.Errorf("lost during cutover: %+v %+v, want WORKING and duringCutover", lost, lost.HostLost)
	}
	h.completesAfterRestart(t, cp, dst, 90*time.Second, 201)
	events, err := cp.Admin.MigrationEvents(ctx, cp.GroupID, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	var stalled, resumed int
	for _, e := range events {
		switch e.Type {
		case api.EventStalled:
			stalled++
		case api.EventResumed:
			resumed++
		}
	}
	if stalled != 2 || resumed != 2 {
		t.Errorf("events: %d STALLED and %d RESUMED, want 2 and 2", stalled, resumed)
	}
}

// TestAgentStoppedMidCommitFinishesCommit stops the agent while its engine
// commits (the commit request is persisted on the destination): the
// migration shows the host lost during the cutover, and the restarted agent's
// engine continues the commit from its checkpoint to COMPLETE with nothing
// repaired.
func TestAgentStoppedMidCommitFinishesCommit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cp := startControlPlaneWith(t, controlplane.Timing{HeartbeatInterval: time.Second, ProgressInterval: time.Second})
	src := mongotest.StartSource(t)
	dst := mongotest.StartDestination(t)
	// Enough documents that the commit (drain, index restore, verification)
	// outlasts the few milliseconds the stop takes.
	const total = 5000
	coll := mongotest.Client(t, src).Database("shop").Collection("orders")
	for b := 0; b < total; b += 1000 {
		var docs []any
		for i := b; i < b+1000; i++ {
			docs = append(docs, bson.D{{Key: "_id", Value: i}, {Key: "n", Value: i}})
		}
		if _, err := coll.InsertMany(ctx, docs); err != nil {
			t.Fatal(err)
		}
	}
	h := startHostedMigration(t, cp, src, dst)
	m, stop := h.m, h.stop
	get := func() api.Migration { t.Helper(); return h.get(t, cp) }
	mongotest.WaitForErr(t, "ready for cutover", 120*time.Second, func() (bool, error) { return get().ReadyForCutover, nil })
	if err := cp.Admin.Cutover(ctx, cp.GroupID, m.ID); err != nil {
		t.Fatal(err)
	}
	// The engine persisted the commit request: stop the agent mid-commit.
	state := mongotest.Client(t, dst).Database("__livemigrate").Collection("state")
	deadline := time.Now().Add(60 * time.Second)
	for {
		n, err := state.CountDocuments(ctx, bson.D{{Key: "_id", Value: "apply"}, {Key: "value.commitRequestedAt", Value: bson.D{{Key: "$exists", Value: true}}}})
		if err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the engine never persisted the commit request")
		}
		time.Sleep(5 * time.Millisecond)
	}
	stopAt := time.Now()
	stop()
	t.Logf("the agent took %v to stop mid-commit", time.Since(stopAt).Round(time.Millisecond))
	if got := get(); got.Status != api.MigrationWorking {
		t.Fatalf("after stopping the agent mid-commit: %s, want WORKING (the commit finished before the stop: use more documents)", got.Status)
	}
	mongotest.WaitForErr(t, "host lost during cutover", 10*time.Second, func() (bool, error) {
		hl := get().HostLost
		return hl != nil && hl.DuringCutover, nil
	})
	rep := h.completesAfterRestart(t, cp, dst, 120*time.Second, total)
	// Every document of the commit was compared and matched.
	for _, ns := range rep.Verification.Namespaces {
		if ns.Matched != total {
			t.Errorf("namespace %+v: want %d matched", ns, total)
		}
	}
}
