package main

import (
	"strings"
	"testing"
	"time"

	"github.com/livemigrate/livemigrate/internal/api"
	"github.com/livemigrate/livemigrate/internal/controlplane"
)

// TestMigrationHostLost: once the agent stops calling (lost after 3 × 1 s),
// describe --watch ends showing it, describe says the host is lost and what to do, and cutover is refused
// with MIGRATION_HOST_LOST; when the agent is back and ready, cutover starts.
func TestMigrationHostLost(t *testing.T) {
	t.Parallel()
	e := startControlPlaneWith(t, controlplane.Timing{HeartbeatInterval: time.Second})
	ctx := t.Context()
	create := e.run("", append(requestArgs("lm", "create"), "-p", "pw", "-o", "go-template={{.Id}}")...)
	wantExit(t, create, 0)
	id := strings.TrimSpace(create.stdout)
	e.startWork(id)
	_, err := e.agent.PostProgress(ctx, id, api.Progress{Phase: "change event application", State: api.StateRunning, LagTimeSeconds: 1, CanCommit: true})
	cliMust(t, err)

	// No call from the agent any more: --watch ends when the migration stops
	// being ready, showing why.
	watch := e.run("", "lm", "describe", "--liveMigrationId", id, "--watch", "--interval", "50ms")
	wantExit(t, watch, 0)
	if !strings.Contains(watch.stderr, "HOST LOST: migration host host-a is lost") {
		t.Errorf("describe --watch when the host is lost: %q", watch.stderr)
	}
	describe := e.run("", "lm", "describe", "--liveMigrationId", id)
	wantExit(t, describe, 0)
	for _, want := range []string{"false", "WORKING", "migration host host-a is lost: nothing heard from it since", "restart `livemigrate agent` on host-a with the same link token"} {
		if !strings.Contains(describe.stdout, want) {
			t.Errorf("describe of a lost host lacks %q:\n%s", want, describe.stdout)
		}
	}
	cutover := e.run("", "lm", "cutover", "--liveMigrationId", id)
	wantExit(t, cutover, 1)
	if !strings.Contains(cutover.stderr, "409 MIGRATION_HOST_LOST") || !strings.Contains(cutover.stderr, "livemigrate agent") {
		t.Errorf("cutover while lost: %q, want 409 MIGRATION_HOST_LOST saying what to do", cutover.stderr)
	}

	// Back, with a fresh ready progress: cutover starts.
	_, err = e.agent.PostProgress(ctx, id, api.Progress{Phase: "change event application", State: api.StateRunning, LagTimeSeconds: 1, CanCommit: true})
	cliMust(t, err)
	back := e.run("", "lm", "describe", "--liveMigrationId", id)
	wantExit(t, back, 0)
	if strings.Contains(back.stdout, "lost") || !strings.Contains(back.stdout, "true") {
		t.Errorf("describe after the host is back:\n%s", back.stdout)
	}
	wantExit(t, e.run("", "lm", "cutover", "--liveMigrationId", id), 0)
}
