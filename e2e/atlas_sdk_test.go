package e2e

import (
	"context"
	"net/http"
	"testing"
	"time"

	"go.mongodb.org/atlas-sdk/v20250312006/admin"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/livemigrate/livemigrate/internal/api"
	"github.com/livemigrate/livemigrate/internal/mongotest"
)

// TestAtlasSDKConformance drives the whole live-migration flow through
// MongoDB's own Atlas Go SDK (pinned in go.mod) with HTTP Digest API-key
// authentication, against the real server binary, a real agent and FerretDB:
// link token, available projects, validate, validation status, create,
// describe, cutover, link delete. Every response must parse into the SDK's
// models and every error case into its ApiError with Atlas's error code.
// Only the setup Atlas does not have an equivalent for in this API (the API
// keys and the destination cluster's registration) uses our own client.
func TestAtlasSDKConformance(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cp := startControlPlane(t)
	src := mongotest.StartSource(t)
	dst := mongotest.StartDestination(t)
	sc := mongotest.Client(t, src)
	docs := make([]any, 0, 500)
	for i := range 500 {
		docs = append(docs, bson.D{{Key: "_id", Value: i}, {Key: "n", Value: i}})
	}
	if _, err := sc.Database("app").Collection("items").InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	if _, err := cp.Admin.CreateCluster(ctx, cp.GroupID, api.ClusterRequest{Name: "dst", ConnectionString: dst.URI()}); err != nil {
		t.Fatal(err)
	}
	ownerKey, err := cp.Admin.CreateAPIKey(ctx, cp.OrgID, api.APIKeyRequest{Desc: "sdk owner", Roles: []api.Role{{OrgID: cp.OrgID, RoleName: api.RoleOrgOwner}}})
	if err != nil {
		t.Fatal(err)
	}
	memberKey, err := cp.Admin.CreateAPIKey(ctx, cp.OrgID, api.APIKeyRequest{Desc: "sdk member", Roles: []api.Role{{OrgID: cp.OrgID, RoleName: api.RoleOrgMember}}})
	if err != nil {
		t.Fatal(err)
	}
	sdk := func(public, private string) admin.CloudMigrationServiceApi {
		c, err := admin.NewClient(admin.UseBaseURL(cp.URL), admin.UseDigestAuth(public, private))
		if err != nil {
			t.Fatal(err)
		}
		return c.CloudMigrationServiceApi
	}
	owner := sdk(ownerKey.PublicKey, ownerKey.PrivateKey)
	member := sdk(memberKey.PublicKey, memberKey.PrivateKey)
	wantCode := func(what string, err error, status int, code string) {
		t.Helper()
		apiErr, ok := admin.AsError(err)
		if !ok {
			t.Errorf("%s: error %v does not parse as the SDK's ApiError", what, err)
			return
		}
		if apiErr.GetError() != status || apiErr.GetErrorCode() != code || apiErr.GetDetail() == "" || apiErr.GetReason() == "" {
			t.Errorf("%s: ApiError {error %d, errorCode %q, detail %q, reason %q}, want %d %s with detail and reason",
				what, apiErr.GetError(), apiErr.GetErrorCode(), apiErr.GetDetail(), apiErr.GetReason(), status, code)
		}
	}
	wantStatus := func(what string, resp *http.Response, err error, status int) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if resp.StatusCode != status {
			t.Errorf("%s: status %d, want %d", what, resp.StatusCode, status)
		}
	}

	// Link token (201, as Atlas really answers).
	tok, resp, err := owner.CreateLinkToken(ctx, cp.OrgID, &admin.TargetOrgRequest{AccessListIps: &[]string{}}).Execute()
	wantStatus("create link token", resp, err, http.StatusCreated)
	if tok.GetLinkToken() == "" {
		t.Fatal("create link token: empty linkToken")
	}
	cp.LinkToken = tok.GetLinkToken()
	cp.startAgent(t, "host1", nil, "--source", "rs0="+src.URI(), "--progress-interval", "500ms")

	// Available projects: the source project with the agent and its deployment.
	var sourceGroupID string
	mongotest.WaitForErr(t, "rs0 in availableProjects", 30*time.Second, func() (bool, error) {
		projects, _, err := owner.ListSourceProjects(ctx, cp.OrgID).Execute()
		if err != nil {
			return false, err
		}
		for _, p := range projects {
			for _, d := range p.GetDeployments() {
				if d.GetName() == "rs0" && len(p.GetMigrationHosts()) == 1 && p.GetMigrationHosts()[0] == "host1" {
					sourceGroupID = p.GetProjectId()
					return d.GetMongoDBVersion() != "", nil
				}
			}
		}
		return false, nil
	})

	// The request exactly as the SDK builds it: hostnameSchemaType left
	// empty (Atlas defaults it to PUBLIC), managed authentication.
	req := &admin.LiveMigrationRequest20240530{
		Source:         admin.Source{ClusterName: "rs0", GroupId: sourceGroupID, ManagedAuthentication: true},
		Destination:    admin.Destination{ClusterName: "dst", GroupId: cp.GroupID},
		MigrationHosts: &[]string{"host1"},
	}

	// Error cases, each parsed into the SDK's ApiError.
	_, _, err = member.ValidateMigration(ctx, cp.GroupID, req).Execute()
	wantCode("validate as organization member", err, http.StatusForbidden, "USER_UNAUTHORIZED")
	_, _, err = member.ListSourceProjects(ctx, cp.OrgID).Execute()
	wantCode("availableProjects as organization member", err, http.StatusForbidden, "USER_UNAUTHORIZED")
	_, _, err = owner.ListSourceProjects(ctx, "0123456789abcdef01234567").Execute()
	wantCode("availableProjects of an unknown org", err, http.StatusNotFound, "ORG_NOT_FOUND")
	_, _, err = owner.GetPushMigration(ctx, "0123456789abcdef01234567", "0123456789abcdef01234567").Execute()
	wantCode("describe in an unknown project", err, http.StatusNotFound, "GROUP_NOT_FOUND")
	_, _, err = owner.GetPushMigration(ctx, cp.GroupID, "0123456789abcdef01234567").Execute()
	wantCode("describe an unknown migration", err, http.StatusNotFound, "LIVE_MIGRATION_NOT_FOUND")
	bad := *req
	bad.Destination.ClusterName = "nope"
	_, _, err = owner.ValidateMigration(ctx, cp.GroupID, &bad).Execute()
	wantCode("validate to an unknown destination cluster", err, http.StatusNotFound, "CLUSTER_NOT_FOUND")
	_, _, err = sdk(ownerKey.PublicKey, "wrong-secret").ListSourceProjects(ctx, cp.OrgID).Execute()
	wantCode("wrong Digest secret", err, http.StatusUnauthorized, "UNAUTHORIZED")

	// Validate and its status.
	v, resp, err := owner.ValidateMigration(ctx, cp.GroupID, req).Execute()
	wantStatus("validate", resp, err, http.StatusOK)
	if v.GetId() == "" || v.GetGroupId() != cp.GroupID || v.GetSourceGroupId() != sourceGroupID || v.GetStatus() != "PENDING" {
		t.Errorf("validate: %+v", v)
	}
	mongotest.WaitForErr(t, "validation result", 60*time.Second, func() (bool, error) {
		v, _, err = owner.GetValidationStatus(ctx, cp.GroupID, v.GetId()).Execute()
		return err == nil && v.GetStatus() != "PENDING", err
	})
	if v.GetStatus() != "SUCCESS" {
		t.Fatalf("validation %s: %s", v.GetStatus(), v.GetErrorMessage())
	}

	// Create (201), describe until ready, cutover (202), describe until complete.
	m, resp, err := owner.CreatePushMigration(ctx, cp.GroupID, req).Execute()
	wantStatus("create", resp, err, http.StatusCreated)
	if m.GetId() == "" || m.GetStatus() != "NEW" || len(m.GetMigrationHosts()) != 1 {
		t.Errorf("create: %+v", m)
	}
	_, _, err = owner.CreatePushMigration(ctx, cp.GroupID, req).Execute()
	wantCode("second create to the same destination", err, http.StatusConflict, "DESTINATION_CLUSTER_IN_USE")
	_, err = owner.CutoverMigration(ctx, cp.GroupID, m.GetId()).Execute()
	if apiErr, ok := admin.AsError(err); !ok || apiErr.GetError() != http.StatusConflict {
		t.Errorf("cutover before ready: %v, want a 409 ApiError", err)
	}
	mongotest.WaitForErr(t, "ready for cutover", 90*time.Second, func() (bool, error) {
		m, _, err = owner.GetPushMigration(ctx, cp.GroupID, m.GetId()).Execute()
		if err == nil && m.GetStatus() == "FAILED" {
			t.Fatalf("migration failed")
		}
		return err == nil && m.GetReadyForCutover(), err
	})
	if m.GetStatus() != "WORKING" || !m.HasLagTimeSeconds() {
		t.Errorf("describe when ready: status %s, lagTimeSeconds set %v; want WORKING with a lag", m.GetStatus(), m.HasLagTimeSeconds())
	}
	_, err = member.CutoverMigration(ctx, cp.GroupID, m.GetId()).Execute()
	wantCode("cutover as organization member", err, http.StatusForbidden, "USER_UNAUTHORIZED")
	mm, _, err := member.GetPushMigration(ctx, cp.GroupID, m.GetId()).Execute()
	if err != nil || mm.GetId() != m.GetId() {
		t.Errorf("describe as organization member: %+v %v, want the migration (members may read)", mm, err)
	}
	resp, err = owner.CutoverMigration(ctx, cp.GroupID, m.GetId()).Execute()
	wantStatus("cutover", resp, err, http.StatusAccepted)
	mongotest.WaitForErr(t, "migration complete", 120*time.Second, func() (bool, error) {
		m, _, err = owner.GetPushMigration(ctx, cp.GroupID, m.GetId()).Execute()
		return err == nil && m.GetStatus() == "COMPLETE", err
	})
	if m.HasLagTimeSeconds() {
		t.Errorf("describe when complete: lagTimeSeconds %d, want none after cutover", m.GetLagTimeSeconds())
	}
	n, err := mongotest.Client(t, dst).Database("app").Collection("items").CountDocuments(ctx, bson.D{})
	if err != nil || n != 500 {
		t.Errorf("destination app.items: %d documents (%v), want 500", n, err)
	}

	// Link delete (204), then 404 with Atlas's code when there is no link.
	resp, err = owner.DeleteLinkToken(ctx, cp.OrgID).Execute()
	wantStatus("delete link token", resp, err, http.StatusNoContent)
	_, err = owner.DeleteLinkToken(ctx, cp.OrgID).Execute()
	wantCode("delete link token without a link", err, http.StatusNotFound, "UNEXPECTED_ERROR")
}
