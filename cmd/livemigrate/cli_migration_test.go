package main

import (
	"strings"
	"testing"
	"time"

	"github.com/livemigrate/livemigrate/internal/api"
	"github.com/livemigrate/livemigrate/internal/mongotest"
)

// startWork takes the agent's start item for migration id and returns its spec.
func (e *cpEnv) startWork(id string) *api.MigrationSpec {
	e.t.Helper()
	items, err := e.agent.PollWork(e.t.Context(), time.Second)
	cliMust(e.t, err)
	for _, it := range items {
		cliMust(e.t, e.agent.AckWork(e.t.Context(), it.ID))
		if it.Kind == api.WorkStart && it.MigrationID == id {
			return it.Spec
		}
	}
	e.t.Fatalf("agent work = %+v, want a start item for %s", items, id)
	return nil
}

func TestMigrationLifecycle(t *testing.T) {
	t.Parallel()
	e := startControlPlane(t)
	ctx := t.Context()

	// The password is read from stdin when it is not a terminal.
	create := e.run("source-password\n", requestArgs("lm", "create")...)
	wantExit(t, create, 0)
	id := cliHexID.FindString(create.stdout)
	spec := e.startWork(id)
	if got := spec.Request.Source.Password; got != "source-password" {
		t.Errorf("source password the agent got = %q, want the one from stdin", got)
	}
	if strings.Contains(create.stdout+create.stderr, "source-password") {
		t.Errorf("the password was echoed: %q %q", create.stdout, create.stderr)
	}
	conflict := e.run("", append(requestArgs("lm", "create"), "-p", "pw")...)
	wantExit(t, conflict, 1)
	describeNew := e.run("", "lm", "describe", "--liveMigrationId", id)
	wantExit(t, describeNew, 0)
	e.golden("migration_create", create, conflict, describeNew)

	_, err := e.agent.PostProgress(ctx, id, api.Progress{Phase: "collection copy", State: api.StateRunning, LagTimeSeconds: 30,
		EstimatedTotalBytes: 4096, EstimatedCopiedBytes: 1024, EstimatedTotalDocuments: 10, CopiedDocuments: 4})
	cliMust(t, err)
	// --watch shows progress until the migration becomes ready for cutover.
	stderr := &mongotest.LockedBuffer{}
	done := make(chan cliResult)
	go func() {
		done <- e.runWith(strings.NewReader(""), stderr, "lm", "describe", "--liveMigrationId", id, "--watch", "--interval", "20ms")
	}()
	mongotest.WaitFor(t, "collection copy in the watch output", 10*time.Second, func() bool { return strings.Contains(stderr.String(), "collection copy") })
	_, err = e.agent.PostProgress(ctx, id, api.Progress{Phase: "change event application", State: api.StateRunning, LagTimeSeconds: 1, CanCommit: true,
		TotalEventsApplied: 12, EstimatedTotalBytes: 4096, EstimatedCopiedBytes: 4096, EstimatedTotalDocuments: 10, CopiedDocuments: 10,
		BackgroundVerification: &api.BackgroundVerification{NamespacesVerified: 1, Namespaces: 2, DocumentsCompared: 4, Passes: 1}})
	cliMust(t, err)
	watched := <-done
	wantExit(t, watched, 0)
	describeJSON := e.run("", "lm", "describe", "--liveMigrationId", id, "-o", "json")
	wantExit(t, describeJSON, 0)
	jsonPath := e.run("", "lm", "describe", "--liveMigrationId", id, "-o", "json-path=$.readyForCutover")
	wantExit(t, jsonPath, 0)
	list := e.run("", "lm", "list")
	wantExit(t, list, 0)
	listJSON := e.run("", "lm", "list", "-o", "json-path=$.results[*].status")
	wantExit(t, listJSON, 0)
	extend := e.run("", "lm", "extend", "--liveMigrationId", id)
	wantExit(t, extend, 0)
	reportEarly := e.run("", "lm", "report", "--liveMigrationId", id)
	wantExit(t, reportEarly, 1)
	cutover := e.run("", "lm", "cutover", "--liveMigrationId", id, "--projectId", e.groupID)
	wantExit(t, cutover, 0)
	e.golden("migration_sync", watched, describeJSON, jsonPath, list, listJSON, extend, reportEarly, cutover)

	cliMust(t, e.agent.PostReport(ctx, id, api.Report{ChangesSynced: 12, DowntimeSeconds: 3.5, DurationSeconds: 600, BytesCopied: 4096, CollectionsCopied: 2,
		Downtime: &api.Downtime{VerificationMode: "continuous", EngineSeconds: 3.2, CommitPointSeconds: 1, DrainSeconds: 0.5, IndexRestoreSeconds: 0.2, VerificationSeconds: 1.3,
			DocumentsRechecked: 3, FoundBeforeRepair: api.DifferenceCounts{Missing: 1}, Repaired: 1,
			Coverage:   api.Coverage{Complete: true, Namespaces: 2, NamespacesByPass: 1, ComparedInFull: []api.NamespaceReason{{Namespace: "shop.orders", Reason: "created during the sync"}}},
			Background: &api.BackgroundVerification{NamespacesVerified: 1, Namespaces: 2, DocumentsCompared: 4, Passes: 2, PassesInvalidated: 1, Pauses: 1, PausedSeconds: 0.4}},
		Verification: api.Verification{Status: api.VerificationPassed, Namespaces: []api.NamespaceVerification{
			{Namespace: "shop.customers", Matched: 4}, {Namespace: "shop.orders", Matched: 6}}}}))
	complete := e.run("", "lm", "describe", "--liveMigrationId", id)
	wantExit(t, complete, 0)
	watchDone := e.run("", "lm", "describe", "--liveMigrationId", id, "--watch")
	wantExit(t, watchDone, 0)
	report := e.run("", "lm", "report", "--liveMigrationId", id)
	wantExit(t, report, 0)
	reportJSON := e.run("", "lm", "report", "--liveMigrationId", id, "-o", "json")
	wantExit(t, reportJSON, 0)
	e.golden("migration_complete", complete, watchDone, report, reportJSON)

	// Cancel: "n" keeps it, "y" cancels.
	second := e.run("", append(requestArgs("lm", "create"), "-p", "pw", "-o", "go-template={{.Id}}")...)
	wantExit(t, second, 0)
	id2 := strings.TrimSpace(second.stdout)
	keep := e.run("n\n", "lm", "cancel", "--liveMigrationId", id2)
	wantExit(t, keep, 0)
	cancel := e.run("y\n", "lm", "cancel", "--liveMigrationId", id2)
	wantExit(t, cancel, 0)
	again := e.run("", "lm", "cancel", "--liveMigrationId", id2, "--force")
	wantExit(t, again, 1)
	missingID := e.run("", "lm", "describe")
	wantExit(t, missingID, 2)
	e.golden("migration_cancel", keep, cancel, again, missingID)
}

func TestMigrationDropConfirmation(t *testing.T) {
	t.Parallel()
	e := startControlPlane(t)

	no := e.run("n\n", append(requestArgs("lm", "create"), "--drop")...)
	wantExit(t, no, 1)
	list := e.run("", "lm", "list", "-o", "json-path=$.totalCount")
	wantExit(t, list, 0)
	if got := strings.TrimSpace(list.stdout); got != "0" {
		t.Fatalf("migrations after answering no to --drop: %s, want 0", got)
	}
	noPassword := e.run("", append(requestArgs("lm", "create"), "--drop", "--force")...)
	wantExit(t, noPassword, 2)
	// Confirmation first, then the password, from the same stdin.
	yes := e.run("y\nsource-password\n", append(requestArgs("lm", "create"), "--drop")...)
	wantExit(t, yes, 0)
	spec := e.startWork(cliHexID.FindString(yes.stdout))
	if !spec.Request.DropDestinationData || spec.Request.Source.Password != "source-password" {
		t.Errorf("request the agent got: drop %t, password %q; want true and the one from stdin",
			spec.Request.DropDestinationData, spec.Request.Source.Password)
	}
	e.golden("migration_drop", no, noPassword, yes)
}
