package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/livemigrate/livemigrate/internal/api"
	"github.com/livemigrate/livemigrate/internal/client"
)

func TestLinkCommands(t *testing.T) {
	t.Parallel()
	e := startControlPlane(t)
	ctx := t.Context()

	create := e.run("", "lm", "link", "create")
	wantExit(t, create, 0)
	token := strings.TrimSuffix(strings.TrimPrefix(create.stdout, "Link-token '"), "' successfully created.\n")
	claims, err := client.ParseLinkToken(token)
	if err != nil {
		t.Fatalf("link create printed %q: %v", create.stdout, err)
	}
	if claims.OrgID != e.orgID || claims.URL != e.url {
		t.Errorf("token claims = %+v, want org %s url %s", claims, e.orgID, e.url)
	}
	asJSON := e.run("", "lm", "link", "create", "--orgId", e.orgID, "--accessListIp", "10.0.0.0/8", "--accessListIp", "127.0.0.1", "-o", "json")
	wantExit(t, asJSON, 0)
	jsonPath := e.run("", "lm", "link", "create", "-o", "json-path=$.linkToken")
	wantExit(t, jsonPath, 0)
	var newest string // json-path prints JSON: a quoted string, as the atlas CLI does
	if err := json.Unmarshal([]byte(jsonPath.stdout), &newest); err != nil {
		t.Fatalf("-o json-path=$.linkToken printed %q: %v", jsonPath.stdout, err)
	}
	if _, err := client.ParseLinkToken(newest); err != nil {
		t.Errorf("-o json-path=$.linkToken printed %q: %v", jsonPath.stdout, err)
	}
	notFound := e.run("", "lm", "link", "create", "--orgId", "000000000000000000000000")
	wantExit(t, notFound, 1)
	e.golden("link_create", create, asJSON, jsonPath, notFound)

	// An agent registered with the newest token, to see deletion revoke it.
	agent, _, err := client.RegisterAgent(ctx, newest, "host-b", "v1.0.0")
	cliMust(t, err)
	no := e.run("n\n", "lm", "link", "delete")
	wantExit(t, no, 0)
	if err := agent.Heartbeat(ctx, api.AgentHeartbeat{}); err != nil {
		t.Fatalf("agent after answering no to link delete: %v", err)
	}
	yes := e.run("y\n", "lm", "link", "delete")
	wantExit(t, yes, 0)
	if err := agent.Heartbeat(ctx, api.AgentHeartbeat{}); !client.IsUnauthorized(err) {
		t.Fatalf("agent heartbeat after link delete: err = %v, want 401", err)
	}
	// No link left: Atlas's 404, through the liveMigrations group.
	forced := e.run("", "lm", "link", "rm", "--force", "--orgId", e.orgID)
	wantExit(t, forced, 1)
	usage := e.run("", "lm", "link", "delete", "extra")
	wantExit(t, usage, 2)
	unknownFlag := e.run("", "lm", "link", "create", "--bogus")
	wantExit(t, unknownFlag, 2)
	badOutput := e.run("", "lm", "link", "create", "-o", "yaml")
	wantExit(t, badOutput, 2)
	e.golden("link_delete", no, yes, forced, usage, unknownFlag, badOutput)
}
