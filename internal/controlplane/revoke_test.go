package controlplane_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/mongodb-forks/digest"

	"github.com/livemigrate/livemigrate/internal/api"
)

// getJSON does an authenticated GET and decodes a 200 answer into v.
func (e *env) getJSON(path string, auth func(*http.Request), v any) int {
	e.t.Helper()
	req, err := http.NewRequest("GET", e.hs.URL+path, nil)
	must(e.t, err)
	auth(req)
	resp, err := http.DefaultClient.Do(req)
	must(e.t, err)
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK && v != nil {
		must(e.t, json.Unmarshal(data, v))
	}
	return resp.StatusCode
}

func basic(user, pass string) func(*http.Request) {
	return func(r *http.Request) { r.SetBasicAuth(user, pass) }
}

// TestRevokeAPIKey: an org owner lists the org's API keys (never a private
// key) and deletes one; it is refused on its very next request, with
// Basic (whose verified credentials are cached) and with Digest.
func TestRevokeAPIKey(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	key, err := e.owner.CreateAPIKey(ctx, e.orgID, api.APIKeyRequest{Desc: "to revoke", Roles: []api.Role{{RoleName: api.RoleOrgMember}}})
	must(t, err)
	orgPath := "/api/atlas/v2/orgs/" + e.orgID
	if code := e.getJSON(orgPath, basic(key.PublicKey, key.PrivateKey), nil); code != http.StatusOK {
		t.Fatalf("new key: %d", code)
	}
	var page api.Page[api.APIKey]
	owner := basic(e.secretNamed("publicKey-owner"), e.secretNamed("privateKey-owner"))
	if code := e.getJSON(orgPath+"/apiKeys", owner, &page); code != http.StatusOK {
		t.Fatalf("list API keys: %d", code)
	}
	var found bool
	for _, k := range page.Results {
		if k.PrivateKey != "" {
			t.Errorf("listed key %s has its private key", k.ID)
		}
		if k.ID == key.ID {
			found = k.PublicKey == key.PublicKey && k.Desc == "to revoke" && len(k.Roles) == 1 && k.Roles[0].RoleName == api.RoleOrgMember
		}
	}
	if !found || page.TotalCount != 3 { // owner, member, the new one (the other org's is not listed)
		t.Errorf("API keys listed: %+v, want owner, member and %s", page, key.ID)
	}
	// Only owners list keys; other orgs see no such org.
	if code := e.getJSON(orgPath+"/apiKeys", basic(e.secretNamed("publicKey-member"), e.secretNamed("privateKey-member")), nil); code != http.StatusForbidden {
		t.Errorf("member lists API keys: %d, want 403", code)
	}
	if code, env := e.raw("DELETE", orgPath+"/apiKeys/"+key.ID, e.secretNamed("publicKey-other"), e.secretNamed("privateKey-other"), nil); code != http.StatusNotFound || env.ErrorCode != "ORG_NOT_FOUND" {
		t.Errorf("another org's owner deletes the key: %d %s, want 404 ORG_NOT_FOUND", code, env.ErrorCode)
	}
	if code, env := e.raw("DELETE", orgPath+"/apiKeys/0123456789abcdef01234567", e.secretNamed("publicKey-owner"), e.secretNamed("privateKey-owner"), nil); code != http.StatusNotFound || env.ErrorCode != "API_KEY_NOT_FOUND" {
		t.Errorf("delete an unknown key: %d %s, want 404 API_KEY_NOT_FOUND", code, env.ErrorCode)
	}
	if code, env := e.raw("DELETE", orgPath+"/apiKeys/"+key.ID, e.secretNamed("publicKey-owner"), e.secretNamed("privateKey-owner"), nil); code != http.StatusNoContent {
		t.Fatalf("delete the key: %d %s", code, env.ErrorCode)
	}
	if code := e.getJSON(orgPath, basic(key.PublicKey, key.PrivateKey), nil); code != http.StatusUnauthorized {
		t.Errorf("deleted key, Basic: %d, want 401", code)
	}
	resp, err := (&http.Client{Transport: digest.NewTransport(key.PublicKey, key.PrivateKey)}).Get(e.hs.URL + orgPath)
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("deleted key, Digest: %d, want 401", resp.StatusCode)
	}
}

// TestRevokeUser: an org owner lists the org's users and removes one; the
// user's cookie session ends at once and the password stops working. An
// owner cannot remove themselves, nor a user of another org.
func TestRevokeUser(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	bob, err := e.admin.CreateUser(ctx, e.orgID, api.UserRequest{Username: "bob", Password: "bob-password", Roles: []api.Role{{RoleName: api.RoleOrgMember}}})
	must(t, err)
	e.secret("bob-password", "bob-password")
	code, hdr, _ := e.send("POST", "/api/session", map[string]string{"Content-Type": "application/json"}, `{"username":"bob","password":"bob-password"}`, nil)
	if code != http.StatusOK {
		t.Fatalf("login: %d", code)
	}
	cookie := hdr.Get("Set-Cookie")
	withCookie := func(r *http.Request) { r.Header.Set("Cookie", cookie) }
	if code := e.getJSON("/api/session", withCookie, nil); code != http.StatusOK {
		t.Fatalf("session: %d", code)
	}
	orgPath := "/api/atlas/v2/orgs/" + e.orgID
	var page api.Page[api.User]
	if code := e.getJSON(orgPath+"/users", withCookie, &page); code != http.StatusOK {
		t.Fatalf("list users (as a member): %d", code)
	}
	names := map[string]string{}
	for _, u := range page.Results {
		names[u.Username] = u.ID
	}
	if names["bob"] != bob.ID || names["root"] == "" || len(names) != 2 {
		t.Errorf("users listed: %+v, want root and bob", page.Results)
	}
	owner := [2]string{e.secretNamed("publicKey-owner"), e.secretNamed("privateKey-owner")}
	if code, env := e.raw("DELETE", orgPath+"/users/"+bob.ID, e.secretNamed("publicKey-member"), e.secretNamed("privateKey-member"), nil); code != http.StatusForbidden {
		t.Errorf("member removes a user: %d %s, want 403", code, env.ErrorCode)
	}
	otherRoot, err := e.other.Orgs(ctx)
	must(t, err)
	if code, env := e.raw("DELETE", "/api/atlas/v2/orgs/"+otherRoot[0].ID+"/users/"+bob.ID, owner[0], owner[1], nil); code != http.StatusNotFound {
		t.Errorf("remove a user through another org: %d %s, want 404", code, env.ErrorCode)
	}
	if code, env := e.raw("DELETE", orgPath+"/users/"+names["root"], "root", "root-password", nil); code != http.StatusBadRequest || env.ErrorCode != "CANNOT_REMOVE_SELF" {
		t.Errorf("remove oneself: %d %s, want 400 CANNOT_REMOVE_SELF", code, env.ErrorCode)
	}
	if code, env := e.raw("DELETE", orgPath+"/users/"+bob.ID, owner[0], owner[1], nil); code != http.StatusNoContent {
		t.Fatalf("remove bob: %d %s", code, env.ErrorCode)
	}
	if code := e.getJSON("/api/session", withCookie, nil); code != http.StatusUnauthorized {
		t.Errorf("removed user's session: %d, want 401", code)
	}
	if code := e.getJSON(orgPath, basic("bob", "bob-password"), nil); code != http.StatusUnauthorized {
		t.Errorf("removed user's password: %d, want 401", code)
	}
	if code := e.getJSON(orgPath+"/users", basic(owner[0], owner[1]), &page); code != http.StatusOK || len(page.Results) != 1 {
		t.Errorf("users after removal: %d %+v, want root only", code, page.Results)
	}
}

// TestAuditTrail: every state-changing request and every login is in the
// org's audit trail with its principal, route, path, status and address;
// the trail never holds a secret, and other orgs do not see it.
func TestAuditTrail(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	key, err := e.owner.CreateAPIKey(ctx, e.orgID, api.APIKeyRequest{Desc: "audited", Roles: []api.Role{{RoleName: api.RoleOrgMember}}})
	must(t, err)
	e.secret("privateKey-audited", key.PrivateKey)
	if code, _ := e.raw("DELETE", "/api/atlas/v2/orgs/"+e.orgID+"/apiKeys/"+key.ID, e.secretNamed("publicKey-owner"), e.secretNamed("privateKey-owner"), nil); code != http.StatusNoContent {
		t.Fatalf("delete key: %d", code)
	}
	// A refused change is recorded too.
	if code, _ := e.raw("POST", "/api/atlas/v2/groups", e.secretNamed("publicKey-member"), e.secretNamed("privateKey-member"), []byte(`{"name":"nope","orgId":"`+e.orgID+`"}`)); code != http.StatusForbidden {
		t.Fatalf("member creates a project: %d", code)
	}
	if code, _, _ := e.send("POST", "/api/session", map[string]string{"Content-Type": "application/json"}, `{"username":"root","password":"root-password"}`, nil); code != http.StatusOK {
		t.Fatalf("login: %d", code)
	}

	req, _ := http.NewRequest("GET", e.hs.URL+"/api/atlas/v2/orgs/"+e.orgID+"/events", nil)
	req.SetBasicAuth(e.secretNamed("publicKey-owner"), e.secretNamed("privateKey-owner"))
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("events: %d %s", resp.StatusCode, raw)
	}
	for i, s := range e.secrets {
		if e.names[i] != "publicKey-owner" && e.names[i] != "publicKey-member" && strings.Contains(string(raw), s) {
			t.Errorf("audit trail holds secret %s", e.names[i])
		}
	}
	var page api.Page[api.AuditEvent]
	must(t, json.Unmarshal(raw, &page))
	type seen struct {
		action, target, who string
		status              int
	}
	got := map[seen]bool{}
	for _, ev := range page.Results {
		who := ev.Username + ev.PublicKey
		if ev.RemoteAddress != "127.0.0.1" || ev.OrgID != e.orgID {
			t.Errorf("event %+v: want address 127.0.0.1 and org %s", ev, e.orgID)
		}
		got[seen{ev.Action, ev.Target, who, ev.Status}] = true
	}
	owner, member := e.secretNamed("publicKey-owner"), e.secretNamed("publicKey-member")
	for _, want := range []seen{
		{"POST /api/atlas/v2/orgs/{orgId}/apiKeys", "/api/atlas/v2/orgs/" + e.orgID + "/apiKeys", owner, 201},
		{"DELETE /api/atlas/v2/orgs/{orgId}/apiKeys/{apiUserId}", "/api/atlas/v2/orgs/" + e.orgID + "/apiKeys/" + key.ID, owner, 204},
		{"POST /api/atlas/v2/groups", "/api/atlas/v2/groups", member, 403},
		{"POST /api/session", "/api/session", "root", 200},
		{"POST /api/atlas/v2/groups/{groupId}/clusters", "/api/atlas/v2/groups/" + e.groupID + "/clusters", owner, 201},
	} {
		if !got[want] {
			t.Errorf("audit trail lacks %+v; has %+v", want, got)
		}
	}
	// Another org's owner sees none of it; a member may not read it.
	others, err := e.other.Orgs(ctx)
	must(t, err)
	var otherPage api.Page[api.AuditEvent]
	if code := e.getJSON("/api/atlas/v2/orgs/"+others[0].ID+"/events", basic(e.secretNamed("publicKey-other"), e.secretNamed("privateKey-other")), &otherPage); code != http.StatusOK {
		t.Fatalf("other org's events: %d", code)
	}
	for _, ev := range otherPage.Results {
		if strings.Contains(ev.Target, e.orgID) || strings.Contains(ev.Target, e.groupID) {
			t.Errorf("other org sees %+v", ev)
		}
	}
	if code := e.getJSON("/api/atlas/v2/orgs/"+e.orgID+"/events", basic(member, e.secretNamed("privateKey-member")), nil); code != http.StatusForbidden {
		t.Errorf("member reads the audit trail: %d, want 403", code)
	}
}
