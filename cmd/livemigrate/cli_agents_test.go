package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/livemigrate/livemigrate/internal/api"
	"github.com/livemigrate/livemigrate/internal/client"
)

// TestAgentsCommands: list shows the agents; a held registration is listed
// and approved (its host becomes the agent, the old credential is refused);
// another is rejected; revoke refuses the agent at once.
func TestAgentsCommands(t *testing.T) {
	t.Parallel()
	e := startControlPlane(t)
	ctx := t.Context()
	tok, err := e.owner.CreateLinkToken(ctx, e.orgID, api.LinkTokenRequest{})
	cliMust(t, err)
	first, reg, err := client.RegisterAgent(ctx, tok.LinkToken, "host-c", "v1")
	cliMust(t, err)

	list := e.run("", "agents", "list", "-o", "json")
	wantExit(t, list, 0)
	var page api.Page[api.Agent]
	if err := json.Unmarshal([]byte(list.stdout), &page); err != nil || page.TotalCount != 2 {
		t.Fatalf("agents list -o json: %v %s", err, list.stdout)
	}
	table := e.run("", "agents", "ls")
	wantExit(t, table, 0)
	if !strings.Contains(table.stdout, "host-c") || !strings.Contains(table.stdout, "LAST SEEN") {
		t.Fatalf("agents ls:\n%s", table.stdout)
	}

	// Two registrations of host-c with only the link token: held.
	var held []api.AgentRegistration
	for range 2 {
		cl, h, err := client.RegisterAgentWith(ctx, api.AgentRegisterRequest{LinkToken: tok.LinkToken, Hostname: "host-c", Version: "v2"})
		cliMust(t, err)
		if cl != nil || h.Status != api.RegistrationPending {
			t.Fatalf("takeover registration: %+v", h)
		}
		held = append(held, h)
	}
	regs := e.run("", "agents", "registrations")
	wantExit(t, regs, 0)
	if !strings.Contains(regs.stdout, held[0].RegistrationID) || !strings.Contains(regs.stdout, reg.AgentID) || !strings.Contains(regs.stdout, "without the host's agent credential") {
		t.Fatalf("agents registrations:\n%s", regs.stdout)
	}
	rejected := e.run("", "agents", "reject", held[1].RegistrationID)
	wantExit(t, rejected, 0)
	approved := e.run("", "agents", "approve", held[0].RegistrationID)
	wantExit(t, approved, 0)
	if !strings.Contains(approved.stdout, "approved") {
		t.Fatalf("agents approve: %s", approved.stdout)
	}
	again := e.run("", "agents", "approve", held[0].RegistrationID)
	wantExit(t, again, 1)
	if !strings.Contains(again.stderr, "already APPROVED") {
		t.Fatalf("approve twice: %s", again.stderr)
	}
	if err := first.Heartbeat(ctx, api.AgentHeartbeat{}); !client.IsUnauthorized(err) {
		t.Fatalf("replaced agent's heartbeat: %v, want 401", err)
	}
	second, _, err := client.RegisterAgentWith(ctx, api.AgentRegisterRequest{LinkToken: tok.LinkToken, Hostname: "host-c", AgentSecret: held[0].AgentSecret})
	cliMust(t, err)
	cliMust(t, second.Heartbeat(ctx, api.AgentHeartbeat{}))

	usage := e.run("", "agents", "revoke")
	wantExit(t, usage, 2)
	no := e.run("n\n", "agents", "revoke", reg.AgentID)
	wantExit(t, no, 0)
	cliMust(t, second.Heartbeat(ctx, api.AgentHeartbeat{}))
	yes := e.run("", "agents", "revoke", "--force", reg.AgentID)
	wantExit(t, yes, 0)
	if err := second.Heartbeat(ctx, api.AgentHeartbeat{}); !client.IsUnauthorized(err) {
		t.Fatalf("revoked agent's heartbeat: %v, want 401", err)
	}
	gone := e.run("", "agents", "revoke", "--force", reg.AgentID)
	wantExit(t, gone, 1)
}
