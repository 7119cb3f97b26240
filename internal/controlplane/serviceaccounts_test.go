package controlplane_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"go.mongodb.org/atlas-sdk/v20250312006/admin"
	"go.mongodb.org/atlas-sdk/v20250312006/auth"

	"github.com/livemigrate/livemigrate/internal/api"
)

// TestServiceAccounts: the Atlas SDK's UseOAuthAuth (client credentials →
// POST /api/oauth/token → Bearer) works against the server; the token is
// refused at once when the service account is deleted; the client ID and
// secret are not API-key credentials; bad token requests get RFC 6749 errors.
func TestServiceAccounts(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	sa, err := e.admin.CreateServiceAccount(ctx, e.orgID, api.ServiceAccountRequest{Name: "ci", Description: "pipeline", Roles: []string{"ORG_OWNER"}, SecretExpiresAfterHours: 24})
	must(t, err)
	if !strings.HasPrefix(sa.ClientID, "mdb_sa_id_") || len(sa.Secrets) != 1 || !strings.HasPrefix(sa.Secrets[0].Secret, "mdb_sa_sk_") {
		t.Fatalf("created service account %+v", sa)
	}
	secret := sa.Secrets[0].Secret
	// The SDK's own OAuth client, with an HTTP client of its own (UseOAuthAuth
	// otherwise changes http.DefaultClient).
	sdkCtx := context.WithValue(ctx, auth.HTTPClient, &http.Client{})
	c, err := admin.NewClient(admin.UseBaseURL(e.hs.URL), admin.UseOAuthAuth(sdkCtx, sa.ClientID, secret))
	must(t, err)
	projects, _, err := c.CloudMigrationServiceApi.ListSourceProjects(ctx, e.orgID).Execute()
	if err != nil || len(projects) != 1 || projects[0].GetProjectId() != e.sourceGroupID {
		t.Fatalf("availableProjects with a service account: %+v %v", projects, err)
	}
	_, _, err = c.CloudMigrationServiceApi.ListSourceProjects(ctx, "0123456789abcdef01234567").Execute()
	if !admin.IsErrorCode(err, "ORG_NOT_FOUND") {
		t.Errorf("other org with a service account: %v, want ORG_NOT_FOUND", err)
	}

	// Client credentials are not API-key credentials.
	if code, _ := e.raw("GET", "/api/atlas/v2/orgs/"+e.orgID, sa.ClientID, secret, nil); code != http.StatusUnauthorized {
		t.Errorf("Basic with the client ID and secret: %d, want 401", code)
	}
	// Token endpoint errors.
	form := func(vals url.Values, user, pass string) int {
		req, _ := http.NewRequest("POST", e.hs.URL+"/api/oauth/token", strings.NewReader(vals.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	grant := url.Values{"grant_type": {"client_credentials"}}
	if code := form(grant, sa.ClientID, "wrong"); code != http.StatusUnauthorized {
		t.Errorf("wrong secret: %d, want 401", code)
	}
	if code := form(url.Values{"grant_type": {"password"}}, sa.ClientID, secret); code != http.StatusBadRequest {
		t.Errorf("password grant: %d, want 400", code)
	}
	if code := form(url.Values{"grant_type": {"client_credentials"}, "client_id": {sa.ClientID}, "client_secret": {secret}}, "", ""); code != http.StatusOK {
		t.Errorf("credentials in the form: %d, want 200", code)
	}

	// Deleting the service account refuses its live token on the next request.
	must(t, e.admin.DeleteServiceAccount(ctx, e.orgID, sa.ClientID))
	_, _, err = c.CloudMigrationServiceApi.ListSourceProjects(ctx, e.orgID).Execute()
	if apiErr, ok := admin.AsError(err); !ok || apiErr.GetError() != http.StatusUnauthorized {
		t.Errorf("after delete: %v, want a 401 ApiError", err)
	}
	if code := form(grant, sa.ClientID, secret); code != http.StatusUnauthorized {
		t.Errorf("token after delete: %d, want 401", code)
	}
}
