package web_test

import (
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/livemigrate/livemigrate/internal/api"
	"github.com/livemigrate/livemigrate/internal/client"
	"github.com/livemigrate/livemigrate/internal/controlplane"
)

// TestAgentsInBrowser: the Live Migration page lists a registration held
// because its hostname has a live agent; the owner rejects it, then revokes
// the live agent with the Revoke button (through the confirmation dialog,
// a cookie session and its CSRF token): the agent is refused at once.
func TestAgentsInBrowser(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	cp := startControlPlane(t, controlplane.Timing{})
	tok, err := cp.admin.CreateLinkToken(ctx, cp.orgID, api.LinkTokenRequest{})
	if err != nil {
		t.Fatal(err)
	}
	agent, _, err := client.RegisterAgent(ctx, tok.LinkToken, "migration-host-1", "v1")
	if err != nil {
		t.Fatal(err)
	}
	_, held, err := client.RegisterAgentWith(ctx, api.AgentRegisterRequest{LinkToken: tok.LinkToken, Hostname: "migration-host-1", Version: "v9"})
	if err != nil || held.Status != api.RegistrationPending {
		t.Fatalf("held registration: %+v %v", held, err)
	}

	b := newBrowser(t, cp.url, 1280, 900)
	b.open("/")
	b.signIn("owner", "owner-password")
	b.do("signed in", waitText("h1", "Organizations"))
	b.open("/orgs/" + cp.orgID + "/live-migration")
	b.do("held registration listed", chromedp.WaitVisible(chromedp.CSS(`tr[data-registration="`+held.RegistrationID+`"]`)))
	if txt := b.text(`#held-registrations`); !containsAll(txt, "waiting for your approval", "without the host's agent credential", "127.0.0.1") {
		t.Errorf("held registrations say %q", txt)
	}
	b.do("reject", click(`button[data-reject="`+held.RegistrationID+`"]`), waitText(`#agent-action`, "rejected"))
	regs, err := cp.admin.AgentRegistrations(ctx, cp.orgID, api.DecisionRejected)
	if err != nil || len(regs) != 1 || regs[0].ID != held.RegistrationID || regs[0].DecidedBy != "owner" {
		t.Fatalf("after reject: %+v %v", regs, err)
	}
	b.do("held list gone", waitJS(`!document.querySelector('tr[data-registration]')`))

	agents, err := cp.admin.Agents(ctx, cp.orgID)
	if err != nil || len(agents) != 1 {
		t.Fatalf("agents: %+v %v", agents, err)
	}
	b.do("revoke dialog", click(`button[data-revoke="`+agents[0].ID+`"]`), chromedp.WaitVisible(chromedp.CSS(`#revoke-dialog`)))
	if d := b.text(`#revoke-dialog`); !containsAll(d, "migration-host-1", "unfinished migrations fail", "approval") {
		t.Errorf("revoke dialog says %q", d)
	}
	b.do("confirm revoke", click(`#confirm-revoke-agent`), waitText(`#agent-action`, "is revoked"), waitJS(`!!document.getElementById('no-agents')`))
	if err := agent.Heartbeat(ctx, api.AgentHeartbeat{}); !client.IsUnauthorized(err) {
		t.Fatalf("revoked agent's heartbeat: %v, want 401", err)
	}
}
