package controlplane_test

import (
	"bytes"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/livemigrate/livemigrate/internal/api"
	"github.com/livemigrate/livemigrate/internal/client"
)

// TestGolden walks every endpoint through a whole migration and compares
// each request and response with testdata/<name>.golden (-update rewrites).
func TestGolden(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	tokenAt := e.rec.count()
	// The link token and its secret, as created in newEnv.
	tokenSecrets := []string{e.secrets[indexOf(e.names, "linkToken")], e.secrets[indexOf(e.names, "linkSecret")]}

	_, err := e.admin.Orgs(ctx)
	must(t, err)
	e.golden("orgs_list")
	_, err = e.admin.CreateOrg(ctx, "Third")
	must(t, err)
	e.golden("orgs_create")
	_, err = e.owner.Org(ctx, e.orgID)
	must(t, err)
	e.golden("orgs_get")
	_, err = e.owner.CreateUser(ctx, e.orgID, api.UserRequest{Username: "alice", Password: "alice-password", Roles: []api.Role{{GroupID: e.groupID, RoleName: api.RoleGroupOwner}}})
	must(t, err)
	e.secret("alice-password", "alice-password")
	e.golden("users_create")
	_, err = e.owner.CreateAPIKey(ctx, e.orgID, api.APIKeyRequest{Desc: "ci", Roles: []api.Role{{OrgID: e.orgID, RoleName: api.RoleOrgMember}}})
	must(t, err)
	e.golden("apikeys_create")
	p, err := e.owner.CreateProject(ctx, e.orgID, "Project 1")
	must(t, err)
	e.golden("projects_create")
	_, err = e.member.Projects(ctx)
	must(t, err)
	e.golden("projects_list")
	_, err = e.member.Project(ctx, p.ID)
	must(t, err)
	e.golden("projects_get")
	_, err = e.owner.CreateCluster(ctx, e.groupID, api.ClusterRequest{Name: "dest2", ConnectionString: "mongodb://u:p%40ss@h1:27017,h2:27017/?tls=true", Password: "pw"})
	must(t, err)
	e.golden("clusters_create")
	_, err = e.member.Clusters(ctx, e.groupID)
	must(t, err)
	e.golden("clusters_list")
	_, err = e.member.Cluster(ctx, e.groupID, "dest2")
	must(t, err)
	e.golden("clusters_get")
	must(t, e.owner.DeleteCluster(ctx, e.groupID, "dest2"))
	e.golden("clusters_delete")
	_, err = e.owner.SetWebhook(ctx, e.groupID, api.WebhookRequest{URL: "http://127.0.0.1:1/hook", Secret: "hook-secret"})
	must(t, err)
	e.golden("webhook_put")
	_, err = e.member.Webhook(ctx, e.groupID)
	must(t, err)
	e.golden("webhook_get")
	must(t, e.owner.DeleteWebhook(ctx, e.groupID))
	e.golden("webhook_delete")

	// The eight Atlas endpoints, the agent protocol and the extensions.
	_, err = e.owner.AvailableProjects(ctx, e.orgID)
	must(t, err)
	e.golden("availableProjects")
	_, err = e.member.Agents(ctx, e.orgID)
	must(t, err)
	e.golden("x-agents")
	must(t, e.agent.Heartbeat(ctx, api.AgentHeartbeat{}))
	e.golden("agent_heartbeat")
	must(t, e.agent.ReportDeployments(ctx, []api.Deployment{{Name: "rs0", MongoDBVersion: "7.0.14", FeatureCompatibilityVersion: "7.0", DBSizeBytes: 1 << 20, OplogSizeMB: 990}}))
	e.golden("agent_deployments")

	v, err := e.owner.CreateValidation(ctx, e.groupID, e.request())
	must(t, err)
	e.golden("validate_create")
	// The validate work waits for the validation's destination user.
	items, err := e.agent.PollWork(ctx, 10*time.Second)
	must(t, err)
	if len(items) != 1 || items[0].Kind != api.WorkValidate || items[0].Spec.Destination.Username != "livemigrate-"+v.ID ||
		items[0].Spec.Destination.Password == "dest-password" || items[0].Spec.Request.Source.Password != "source-password" {
		t.Fatalf("validate work item = %+v", items)
	}
	e.secret("validationUserPassword", items[0].Spec.Destination.Password)
	e.golden("agent_work_validate")
	must(t, e.agent.AckWork(ctx, items[0].ID))
	e.golden("agent_work_ack")
	must(t, e.agent.PostValidationResult(ctx, v.ID, api.ValidationResult{Status: api.ValidationSuccess, Checks: []api.ValidationCheck{
		{Name: "source version", Status: api.CheckPassed, Message: "7.0.14"}, {Name: "destination disk", Status: api.CheckWarning, Message: "unknown"}}}))
	e.golden("agent_validation_result")
	_, err = e.owner.Validation(ctx, e.groupID, v.ID)
	must(t, err)
	e.golden("validate_get")
	_, err = e.owner.ValidationChecks(ctx, e.groupID, v.ID)
	must(t, err)
	e.golden("validate_x-checks")

	m, err := e.owner.CreateMigration(ctx, e.groupID, e.request())
	must(t, err)
	e.golden("migration_create")
	if _, err := e.owner.CreateMigration(ctx, e.groupID, e.request()); !client.IsConflict(err) {
		t.Fatalf("second migration to the same destination: err = %v, want 409", err)
	}
	e.golden("migration_create_conflict")
	if _, err := e.owner.CreateValidation(ctx, e.groupID, e.request()); !client.IsConflict(err) {
		t.Fatalf("validation while a migration targets the destination: err = %v, want 409", err)
	}
	// The start work waits for the migration's destination user.
	items, err = e.agent.PollWork(ctx, 10*time.Second)
	must(t, err)
	if len(items) != 1 || items[0].Spec.Destination.Username != "livemigrate-"+m.ID {
		t.Fatalf("start work item = %+v, want one with user livemigrate-%s", items, m.ID)
	}
	e.secret("destUserPassword", items[0].Spec.Destination.Password)
	e.golden("agent_work_start")
	must(t, e.agent.AckWork(ctx, items[0].ID))
	_, err = e.member.Migration(ctx, e.groupID, m.ID)
	must(t, err)
	e.golden("migration_get_new")
	_, err = e.agent.PostProgress(ctx, m.ID, api.Progress{Phase: "collection copy", State: api.StateRunning, Info: "copying", LagTimeSeconds: 30,
		EstimatedTotalBytes: 1000, EstimatedCopiedBytes: 400, EstimatedTotalDocuments: 10, CopiedDocuments: 4,
		Namespaces: []api.NamespaceProgress{{Namespace: "db.c", Phase: "copying", EstimatedBytes: 1000, CopiedBytes: 400, EstimatedDocuments: 10, CopiedDocuments: 4}}})
	must(t, err)
	e.golden("agent_progress")
	if err := e.owner.Cutover(ctx, e.groupID, m.ID); !client.IsConflict(err) {
		t.Fatalf("cutover before ready: err = %v, want 409", err)
	}
	e.golden("migration_cutover_not_ready")
	_, err = e.agent.PostProgress(ctx, m.ID, api.Progress{Phase: "change event application", State: api.StateRunning, LagTimeSeconds: 1, CanCommit: true,
		TotalEventsApplied: 12, EstimatedTotalBytes: 1000, EstimatedCopiedBytes: 1000, EstimatedTotalDocuments: 10, CopiedDocuments: 10,
		BackgroundVerification: &api.BackgroundVerification{NamespacesVerified: 1, Namespaces: 1, DocumentsCompared: 10, Passes: 1, DocumentsToRecheck: 2}})
	must(t, err)
	_, err = e.member.Migration(ctx, e.groupID, m.ID)
	must(t, err)
	e.golden("migration_get_ready")
	_, err = e.member.Migrations(ctx, e.groupID)
	must(t, err)
	e.golden("migration_list")
	_, err = e.member.MigrationProgress(ctx, e.groupID, m.ID)
	must(t, err)
	e.golden("migration_x-progress")
	win, err := e.owner.ExtendCutoverWindow(ctx, e.groupID, m.ID)
	must(t, err)
	e.golden("migration_x-extend")
	if got := win.ExpiresAt.Sub(win.StartedAt); got != 144*time.Hour {
		t.Errorf("window after one extension = %v, want 144h", got)
	}
	must(t, e.owner.Cutover(ctx, e.groupID, m.ID))
	e.golden("migration_cutover")
	items, err = e.agent.PollWork(ctx, time.Second)
	must(t, err)
	e.golden("agent_work_cutover")
	must(t, e.agent.AckWork(ctx, items[0].ID))
	ack, err := e.agent.PostProgress(ctx, m.ID, api.Progress{Phase: "commit", State: api.StateCommitting})
	must(t, err)
	if ack.Directive != api.DirectiveCutover {
		t.Errorf("directive after cutover = %s, want CUTOVER", ack.Directive)
	}
	must(t, e.agent.PostReport(ctx, m.ID, api.Report{ChangesSynced: 12, DowntimeSeconds: 3.5, DurationSeconds: 600, BytesCopied: 1000, CollectionsCopied: 1,
		Downtime: &api.Downtime{VerificationMode: "continuous", EngineSeconds: 3.2, CommitPointSeconds: 1, DrainSeconds: 0.5, IndexRestoreSeconds: 0.25, VerificationSeconds: 1.25,
			DocumentsRechecked: 2, FoundBeforeRepair: api.DifferenceCounts{Differing: 1}, Repaired: 1,
			Coverage:   api.Coverage{Complete: true, Namespaces: 1, NamespacesByPass: 1},
			Background: &api.BackgroundVerification{NamespacesVerified: 1, Namespaces: 1, DocumentsCompared: 10, Passes: 1}},
		Verification: api.Verification{Status: api.VerificationPassed, Namespaces: []api.NamespaceVerification{{Namespace: "db.c", Matched: 10}}}}))
	e.golden("agent_report")
	_, err = e.member.Migration(ctx, e.groupID, m.ID)
	must(t, err)
	e.golden("migration_get_complete")
	rep, err := e.member.MigrationReport(ctx, e.groupID, m.ID)
	must(t, err)
	if rep.DowntimeSeconds <= 0 || rep.DowntimeSeconds == 3.5 || rep.DowntimeSeconds > 60 {
		t.Errorf("report downtime %v s: want the control plane's cutover-to-completion time, not the agent's 3.5 s", rep.DowntimeSeconds)
	}
	e.golden("migration_x-report")
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) { // the user is dropped after the report
		events, err := e.member.MigrationEvents(ctx, e.groupID, m.ID)
		must(t, err)
		if events[len(events)-1].Type == api.EventDestinationUserDropped {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s event after COMPLETE: %+v", api.EventDestinationUserDropped, events)
		}
	}
	e.golden("migration_x-events")
	ack, err = e.agent.PostProgress(ctx, m.ID, api.Progress{Phase: "done", State: api.StateCommitted})
	must(t, err)
	if ack.Directive != api.DirectiveStop {
		t.Errorf("directive after COMPLETE = %s, want STOP", ack.Directive)
	}

	m2, err := e.owner.CreateMigration(ctx, e.groupID, e.request())
	must(t, err)
	_, err = e.owner.CancelMigration(ctx, e.groupID, m2.ID)
	must(t, err)
	e.golden("migration_x-cancel")
	items, err = e.agent.PollWork(ctx, 0)
	must(t, err)
	if len(items) != 1 || items[0].Kind != api.WorkCancel {
		t.Errorf("after cancel the agent gets %+v, want one cancel item (the start item is retired)", items)
	}

	sc := e.client(nil)
	_, err = sc.Login(ctx, "alice", "alice-password")
	must(t, err)
	x := e.rec.last()
	if x.status != 200 {
		t.Fatalf("login status %d", x.status)
	}
	must(t, e.owner.DeleteLinkToken(ctx, e.orgID))
	e.golden("linktoken_delete")
	if err := e.agent.Heartbeat(ctx, api.AgentHeartbeat{}); !client.IsUnauthorized(err) {
		t.Errorf("agent heartbeat after link deletion: err = %v, want 401", err)
	}
	_, err = e.owner.CreateLinkToken(ctx, e.orgID, api.LinkTokenRequest{AccessListIPs: []string{"10.0.0.0/8", "192.168.1.1"}})
	must(t, err)
	x = e.rec.last()
	e.secret("linkToken2", strings.Trim(strings.TrimSpace(strings.SplitN(string(x.respBody), ":", 2)[1]), `"}`))
	e.golden("linktoken_create")

	// The link token never comes back after creation: not in a response, the
	// logs or the store.
	for _, x := range e.rec.since(tokenAt) {
		for _, s := range tokenSecrets {
			if bytes.Contains(x.respBody, []byte(s)) {
				t.Errorf("%s %s: response contains the link token or its secret", x.method, x.path)
			}
		}
	}
	for _, s := range tokenSecrets {
		if strings.Contains(e.logs.String(), s) {
			t.Errorf("logs contain the link token or its secret")
		}
	}
	files, _ := filepath.Glob(filepath.Join(e.dir, "cp.db*"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		must(t, err)
		for _, s := range append(tokenSecrets, "source-password", "dest-password", "destpw", "alice-password") {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("store file %s contains secret %q in plain text", filepath.Base(f), s)
			}
		}
	}
}

func indexOf(names []string, n string) int {
	for i, v := range names {
		if v == n {
			return i
		}
	}
	panic(n)
}

// TestSessionCSRF: a session works for reads; unsafe methods need the CSRF header.
func TestSessionCSRF(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	sc := e.client(nil)
	sess, err := sc.Login(ctx, "root", "root-password")
	must(t, err)
	e.golden("session_login")
	if _, err := sc.Orgs(ctx); err != nil {
		t.Fatalf("read with session: %v", err)
	}
	if _, err := sc.CreateProject(ctx, e.orgID, "with-csrf"); err != nil {
		t.Fatalf("write with session and CSRF token: %v", err)
	}
	// Same cookie, no CSRF header.
	req, _ := http.NewRequest(http.MethodPost, e.hs.URL+"/api/atlas/v2/groups", strings.NewReader(`{"name":"x","orgId":"`+e.orgID+`"}`))
	u, _ := http.NewRequest(http.MethodGet, e.hs.URL, nil)
	_ = u
	jar := &http.Client{Transport: e.rec}
	for _, c := range mustCookies(t, e, sess) {
		req.AddCookie(c)
	}
	resp, err := jar.Do(req)
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("session write without CSRF header: status %d, want 403", resp.StatusCode)
	}
	must(t, sc.Logout(ctx))
	var ae *client.APIError
	if _, err := sc.Orgs(ctx); !errors.As(err, &ae) || ae.StatusCode != http.StatusUnauthorized {
		t.Errorf("after logout: err = %v, want 401", err)
	}
}

func mustCookies(t *testing.T, e *env, _ api.Session) []*http.Cookie {
	t.Helper()
	// Log in again on a plain client to read the Set-Cookie header.
	resp, err := http.Post(e.hs.URL+"/api/session", "application/json", strings.NewReader(`{"username":"root","password":"root-password"}`))
	must(t, err)
	resp.Body.Close()
	return resp.Cookies()
}
