package main

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/livemigrate/livemigrate/internal/api"
	"github.com/livemigrate/livemigrate/internal/mongotest"
)

// requestArgs are the flags of a valid validation/migration create.
func requestArgs(cmd ...string) []string {
	return append(cmd, "--clusterName", "dest", "--migrationHost", "host-a", "--sourceClusterName", "rs0", "-u", "src")
}

func TestValidationCommands(t *testing.T) {
	t.Parallel()
	e := startControlPlane(t)
	ctx := t.Context()

	create := e.run("", append(requestArgs("lm", "validation", "create"), "-p", "source-password")...)
	wantExit(t, create, 0)
	id := cliHexID.FindString(create.stdout)
	if id == "" {
		t.Fatalf("validation create printed no ID: %q", create.stdout)
	}
	items, err := e.agent.PollWork(ctx, time.Second)
	cliMust(t, err)
	if len(items) != 1 || items[0].Kind != api.WorkValidate || items[0].ValidationID != id {
		t.Fatalf("agent work = %+v, want one validate item for %s", items, id)
	}
	want := api.MigrationRequest{
		Source:           api.MigrationSource{ClusterName: "rs0", GroupID: e.sourceGroupID, Username: "src", Password: "source-password"},
		Destination:      api.MigrationDestination{ClusterName: "dest", GroupID: e.groupID, HostnameSchemaType: api.HostnamePublic},
		MigrationHosts:   []string{"host-a"},
		VerificationMode: "continuous", // the CLI's default
	}
	if diff := cmp.Diff(want, items[0].Spec.Request); diff != "" {
		t.Errorf("request the agent got (-want +got):\n%s", diff)
	}
	pending := e.run("", "lm", "validation", "describe", "--validationId", id, "--projectId", e.groupID)
	wantExit(t, pending, 0)

	// --watch ends when the agent posts the result.
	stderr := &mongotest.LockedBuffer{}
	done := make(chan cliResult)
	go func() {
		done <- e.runWith(strings.NewReader(""), stderr, "lm", "validation", "describe", "--validationId", id, "--watch", "--interval", "20ms")
	}()
	mongotest.WaitFor(t, "PENDING in the watch output", 10*time.Second, func() bool { return strings.Contains(stderr.String(), "PENDING") })
	cliMust(t, e.agent.PostValidationResult(ctx, id, api.ValidationResult{
		Status: api.ValidationFailed, ErrorMessage: "source user \"src\" lacks role backup",
		Checks: []api.ValidationCheck{
			{Name: "source reachable", Status: api.CheckPassed},
			{Name: "source roles", Status: api.CheckFailed, Message: "source user \"src\" lacks role backup"},
			{Name: "destination disk", Status: api.CheckSkipped, Message: "unknown on this destination"},
		},
	}))
	watched := <-done
	wantExit(t, watched, 0)
	failed := e.run("", "lm", "validation", "describe", "--validationId", id)
	wantExit(t, failed, 0)
	checks := e.run("", "lm", "validation", "describe", "--validationId", id, "--checks")
	wantExit(t, checks, 0)
	asJSON := e.run("", "lm", "validation", "describe", "--validationId", id, "-o", "json")
	wantExit(t, asJSON, 0)
	checksJSON := e.run("", "lm", "validation", "describe", "--validationId", id, "--checks", "-o", "json")
	wantExit(t, checksJSON, 0)
	tmpl := e.run("", "lm", "validation", "describe", "--validationId", id, "-o", "go-template={{.Status}}: {{.ErrorMessage}}")
	wantExit(t, tmpl, 0)
	e.golden("validation", create, pending, watched, failed, checks, asJSON, checksJSON, tmpl)

	missing := e.run("", "lm", "validation", "describe")
	wantExit(t, missing, 2)
	notFound := e.run("", "lm", "validation", "describe", "--validationId", "000000000000000000000000")
	wantExit(t, notFound, 1)
	noUser := e.run("", "lm", "validation", "create", "--clusterName", "dest", "--migrationHost", "host-a", "--sourceClusterName", "rs0")
	wantExit(t, noUser, 2)
	noHost := e.run("", "lm", "validation", "create", "--clusterName", "dest", "--sourceClusterName", "rs0", "-u", "src")
	wantExit(t, noHost, 2)
	unknownHost := e.run("pw\n", "lm", "validation", "create", "--clusterName", "dest", "--migrationHost", "host-z", "--sourceClusterName", "rs0", "-u", "src")
	wantExit(t, unknownHost, 1)
	e.golden("validation_errors", missing, notFound, noUser, noHost, unknownHost)
}
