package controlplane_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livemigrate/livemigrate/internal/api"
	"github.com/livemigrate/livemigrate/internal/client"
)

// rawRegister posts a registration and returns the status and the raw body.
func (e *env) rawRegister(req api.AgentRegisterRequest) (int, []byte, api.AgentRegistration) {
	e.t.Helper()
	b, _ := json.Marshal(req)
	resp, err := http.Post(e.hs.URL+"/api/agent/v1/register", "application/json", bytes.NewReader(b))
	must(e.t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var reg api.AgentRegistration
	_ = json.Unmarshal(body, &reg)
	return resp.StatusCode, body, reg
}

// auditTrail is the org's audit trail as its owner reads it.
func (e *env) auditTrail() []api.AuditEvent {
	e.t.Helper()
	req, _ := http.NewRequest("GET", e.hs.URL+"/api/atlas/v2/orgs/"+e.orgID+"/events", nil)
	req.SetBasicAuth("root", "root-password")
	resp, err := http.DefaultClient.Do(req)
	must(e.t, err)
	defer resp.Body.Close()
	var page api.Page[api.AuditEvent]
	must(e.t, json.NewDecoder(resp.Body).Decode(&page))
	return page.Results
}

func wantAPIError(t *testing.T, what string, err error, status int, code string) *client.APIError {
	t.Helper()
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.StatusCode != status || ae.ErrorCode != code {
		t.Fatalf("%s: %v, want %d %s", what, err, status, code)
	}
	return ae
}

// TestAgentTakeover: a registration of a hostname with a live agent that
// carries only the link token gets no secrets, raises an event (events feed,
// webhook) and an audit entry, and waits; the real agent keeps working and
// re-registers seamlessly with its own credential; a rejected registration
// stays refused; an approved one takes over the agent identity and its
// migration, and the previous credential is refused.
func TestAgentTakeover(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	var mu sync.Mutex
	var hooks []api.Event
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev api.Event
		_ = json.NewDecoder(r.Body).Decode(&ev)
		mu.Lock()
		hooks = append(hooks, ev)
		mu.Unlock()
	}))
	defer hook.Close()
	_, err := e.owner.SetWebhook(ctx, e.groupID, api.WebhookRequest{URL: hook.URL, Secret: "hook-secret"})
	must(t, err)
	m, err := e.owner.CreateMigration(ctx, e.groupID, e.request())
	must(t, err)

	// The attacker has the link token and the hostname, not the agent's credential.
	status, body, held := e.rawRegister(api.AgentRegisterRequest{LinkToken: e.linkToken, Hostname: "host-a", Version: "evil"})
	if status != http.StatusAccepted || held.Status != api.RegistrationPending || held.AgentID != "" || held.RegistrationID == "" || held.AgentSecret == "" {
		t.Fatalf("takeover registration: %d %s, want 202 PENDING_APPROVAL without an agent ID", status, body)
	}
	for _, s := range []string{"source-password", "dest-password", "destpw", e.agentID} {
		if bytes.Contains(body, []byte(s)) {
			t.Fatalf("takeover registration answer carries %q: %s", s, body)
		}
	}
	if !strings.Contains(held.Detail, "approv") {
		t.Errorf("held detail %q does not say an approval is needed", held.Detail)
	}
	// Its pending credential gets nothing.
	attacker := client.New(e.hs.URL, client.AgentSecret(held.AgentSecret))
	_, err = attacker.PollWork(ctx, 0)
	wantAPIError(t, "poll with a pending credential", err, http.StatusUnauthorized, "AGENT_REGISTRATION_PENDING")
	// Asking again with it answers the same registration; a wrong credential is another attempt.
	if st, b, again := e.rawRegister(api.AgentRegisterRequest{LinkToken: e.linkToken, Hostname: "host-a", AgentSecret: held.AgentSecret}); st != http.StatusAccepted || again.RegistrationID != held.RegistrationID {
		t.Fatalf("register again while held: %d %s", st, b)
	}
	st, b, held2 := e.rawRegister(api.AgentRegisterRequest{LinkToken: e.linkToken, Hostname: "host-a", AgentSecret: "lma_guessed"})
	if st != http.StatusAccepted || held2.RegistrationID == held.RegistrationID {
		t.Fatalf("register with a wrong credential: %d %s", st, b)
	}

	// The event (feed and webhook) and the audit entry.
	events, err := e.owner.MigrationEvents(ctx, e.groupID, m.ID)
	must(t, err)
	n := 0
	for _, ev := range events {
		if ev.Type == api.EventTakeoverAttempt {
			n++
			if !strings.Contains(ev.Message, held.RegistrationID) && !strings.Contains(ev.Message, held2.RegistrationID) {
				t.Errorf("takeover event %q does not name the registration", ev.Message)
			}
		}
	}
	if n != 2 {
		t.Fatalf("%d takeover events, want 2: %+v", n, events)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		mu.Lock()
		got := 0
		for _, h := range hooks {
			if h.Type == api.EventTakeoverAttempt && h.MigrationID == m.ID {
				got++
			}
		}
		mu.Unlock()
		if got == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook got %d takeover events, want 2", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	audit := 0
	for _, a := range e.auditTrail() {
		if a.EventTypeName == "MIGRATION_HOST_TAKEOVER_ATTEMPT" && a.Hostname == "host-a" && a.Status == http.StatusAccepted {
			audit++
		}
	}
	if audit != 2 {
		t.Fatalf("%d takeover audit entries, want 2", audit)
	}

	// The real agent is unaffected and gets the migration's spec (once its
	// destination user is settled: the long-poll waits for it).
	items, err := e.agent.PollWork(ctx, 20*time.Second)
	must(t, err)
	if len(items) == 0 || items[0].Spec == nil || items[0].MigrationID != m.ID {
		t.Fatalf("the real agent's work: %+v", items)
	}
	// Restarted with its stored credential: the same agent, no approval.
	cl, reg, err := client.RegisterAgentWith(ctx, api.AgentRegisterRequest{LinkToken: e.linkToken, Hostname: "host-a", Version: "v1.0.1", AgentSecret: secretOf(t, e)})
	must(t, err)
	if cl == nil || reg.Status != api.RegistrationActive || reg.AgentID != e.agentID {
		t.Fatalf("re-registration with the agent's credential: %+v", reg)
	}

	// Only owners see and decide held registrations.
	_, err = e.member.AgentRegistrations(ctx, e.orgID, api.DecisionPending)
	wantAPIError(t, "member lists registrations", err, http.StatusForbidden, "USER_UNAUTHORIZED")
	_, err = e.other.ApproveAgentRegistration(ctx, e.orgID, held.RegistrationID)
	if !client.IsNotFound(err) {
		t.Fatalf("other org's owner approves: %v, want 404", err)
	}
	pending, err := e.owner.AgentRegistrations(ctx, e.orgID, api.DecisionPending)
	must(t, err)
	if len(pending) != 2 || pending[0].AgentID != e.agentID || pending[0].Hostname != "host-a" || pending[0].RemoteAddress != "127.0.0.1" {
		t.Fatalf("pending registrations: %+v", pending)
	}

	// Rejected: refused for good.
	_, err = e.owner.RejectAgentRegistration(ctx, e.orgID, held2.RegistrationID)
	must(t, err)
	if st, b, _ := e.rawRegister(api.AgentRegisterRequest{LinkToken: e.linkToken, Hostname: "host-a", AgentSecret: held2.AgentSecret}); st != http.StatusForbidden || !bytes.Contains(b, []byte("AGENT_REGISTRATION_REJECTED")) {
		t.Fatalf("register with a rejected registration's credential: %d %s", st, b)
	}
	_, err = e.owner.ApproveAgentRegistration(ctx, e.orgID, held2.RegistrationID)
	wantAPIError(t, "approve a rejected registration", err, http.StatusConflict, "AGENT_REGISTRATION_DECIDED")

	// Approved (the host was replaced): the new host is the agent, with its migration.
	dec, err := e.owner.ApproveAgentRegistration(ctx, e.orgID, held.RegistrationID)
	must(t, err)
	if dec.Status != api.DecisionApproved || dec.DecidedBy == "" || dec.AgentID != e.agentID {
		t.Fatalf("approved: %+v", dec)
	}
	_, err = e.agent.PollWork(ctx, 0)
	ae := wantAPIError(t, "the replaced agent polls", err, http.StatusUnauthorized, "AGENT_CREDENTIAL_REPLACED")
	if !strings.Contains(ae.Detail, "approved another registration") {
		t.Errorf("replaced detail %q", ae.Detail)
	}
	newAgent, reg, err := client.RegisterAgentWith(ctx, api.AgentRegisterRequest{LinkToken: e.linkToken, Hostname: "host-a", Version: "v2", AgentSecret: held.AgentSecret})
	must(t, err)
	if newAgent == nil || reg.AgentID != e.agentID {
		t.Fatalf("approved host registers: %+v", reg)
	}
	items, err = newAgent.PollWork(ctx, 20*time.Second)
	must(t, err)
	if len(items) == 0 || items[0].Kind != api.WorkStart || items[0].Spec == nil || items[0].MigrationID != m.ID {
		t.Fatalf("the approved host's work: %+v", items)
	}
	if _, _, err := client.RegisterAgentWith(ctx, api.AgentRegisterRequest{LinkToken: e.linkToken, Hostname: "host-a", AgentSecret: secretOf(t, e)}); err == nil {
		t.Fatal("the replaced credential registered again")
	}
}

// secretOf is the agent secret newEnv registered host-a with.
func secretOf(t *testing.T, e *env) string {
	for i, n := range e.names {
		if n == "agentSecret" {
			return e.secrets[i]
		}
	}
	t.Fatal("no agent secret recorded")
	return ""
}

// TestAgentRevoke: a revoked agent is refused at once — a long-poll in
// flight ends with 401 and no spec, every later call and registration with
// its credential too; its migration fails; registering the hostname again
// with the link token waits for an approval.
func TestAgentRevoke(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	m, err := e.owner.CreateMigration(ctx, e.groupID, e.request())
	must(t, err)
	items, err := e.agent.PollWork(ctx, 20*time.Second) // the start, once its destination user is settled
	must(t, err)
	if len(items) == 0 || items[0].Kind != api.WorkStart {
		t.Fatalf("first work: %+v", items)
	}
	for _, it := range items {
		must(t, e.agent.AckWork(ctx, it.ID))
	}
	agents, err := e.owner.Agents(ctx, e.orgID)
	must(t, err)
	if len(agents) != 1 || agents[0].ID != e.agentID || agents[0].Hostname != "host-a" || agents[0].RegisteredAt.IsZero() || agents[0].LastSeenAt.IsZero() {
		t.Fatalf("agents: %+v", agents)
	}
	if err := e.member.RevokeAgent(ctx, e.orgID, e.agentID); !client.IsForbidden(err) {
		t.Fatalf("member revokes: %v, want 403", err)
	}
	if err := e.other.RevokeAgent(ctx, e.orgID, e.agentID); !client.IsNotFound(err) {
		t.Fatalf("other org's owner revokes: %v, want 404", err)
	}

	polled := make(chan error, 1)
	var got []api.WorkItem
	go func() {
		var err error
		got, err = e.agent.PollWork(ctx, 20*time.Second)
		polled <- err
	}()
	time.Sleep(300 * time.Millisecond) // the poll waits
	start := time.Now()
	must(t, e.owner.RevokeAgent(ctx, e.orgID, e.agentID))
	select {
	case err := <-polled:
		wantAPIError(t, "long-poll during revocation", err, http.StatusUnauthorized, "AGENT_REVOKED")
		if len(got) != 0 {
			t.Fatalf("revoked agent got work: %+v", got)
		}
		t.Logf("long-poll refused %v after the revocation", time.Since(start).Round(time.Millisecond))
	case <-time.After(10 * time.Second):
		t.Fatal("the long-poll of a revoked agent did not end")
	}
	ae := wantAPIError(t, "heartbeat after revocation", e.agent.Heartbeat(ctx, api.AgentHeartbeat{}), http.StatusUnauthorized, "AGENT_REVOKED")
	if !strings.Contains(ae.Detail, "revoked") || !strings.Contains(ae.Detail, "approve") {
		t.Errorf("revoked detail %q does not say what to do", ae.Detail)
	}
	_, err = e.agent.PostProgress(ctx, m.ID, api.Progress{Phase: "x", State: api.StateRunning})
	wantAPIError(t, "progress after revocation", err, http.StatusUnauthorized, "AGENT_REVOKED")
	got2, err := e.owner.Migration(ctx, e.groupID, m.ID)
	must(t, err)
	if got2.Status != api.MigrationFailed {
		t.Fatalf("migration of a revoked host: %s", got2.Status)
	}
	if err := e.owner.RevokeAgent(ctx, e.orgID, e.agentID); !client.IsNotFound(err) {
		t.Fatalf("revoke twice: %v, want 404", err)
	}
	agents, err = e.owner.Agents(ctx, e.orgID)
	must(t, err)
	if len(agents) != 0 {
		t.Fatalf("agents after revocation: %+v", agents)
	}

	// Its credential cannot register again; the link token alone is held.
	if st, b, _ := e.rawRegister(api.AgentRegisterRequest{LinkToken: e.linkToken, Hostname: "host-a", AgentSecret: secretOf(t, e)}); st != http.StatusUnauthorized || !bytes.Contains(b, []byte("AGENT_REVOKED")) {
		t.Fatalf("register with the revoked credential: %d %s", st, b)
	}
	st, b, held := e.rawRegister(api.AgentRegisterRequest{LinkToken: e.linkToken, Hostname: "host-a"})
	if st != http.StatusAccepted || held.AgentID != "" {
		t.Fatalf("register the revoked hostname with the link token: %d %s", st, b)
	}
	found := false
	for _, a := range e.auditTrail() {
		found = found || (a.EventTypeName == "MIGRATION_HOST_REGISTRATION_HELD" && a.Hostname == "host-a")
	}
	if !found {
		t.Fatal("no audit entry for the held registration")
	}
	// Approved: a new agent for the hostname.
	_, err = e.owner.ApproveAgentRegistration(ctx, e.orgID, held.RegistrationID)
	must(t, err)
	cl, reg, err := client.RegisterAgentWith(ctx, api.AgentRegisterRequest{LinkToken: e.linkToken, Hostname: "host-a", AgentSecret: held.AgentSecret})
	must(t, err)
	if cl == nil || reg.AgentID == "" || reg.AgentID == e.agentID {
		t.Fatalf("approved registration of a revoked host: %+v", reg)
	}
	must(t, cl.Heartbeat(ctx, api.AgentHeartbeat{}))
	// A new hostname needs no approval.
	if _, _, err := client.RegisterAgent(ctx, e.linkToken, "host-b", "v1"); err != nil {
		t.Fatalf("register a new hostname: %v", err)
	}
}
