package controlplane_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/livemigrate/livemigrate/internal/api"
)

// endpoint is one Admin API route for the auth and body tests.
type endpoint struct {
	method, path, body string
	// need: "owner" (member gets 403), "read" (member allowed), "admin".
	need string
	// global: not scoped to an org or project (another org's owner is not 404).
	global bool
}

func (e *env) endpoints(migrationID, validationID string) []endpoint {
	req := `{"source":{"clusterName":"rs0","groupId":"` + e.sourceGroupID + `","managedAuthentication":false,"ssl":false},` +
		`"destination":{"clusterName":"dest","groupId":"` + e.groupID + `","hostnameSchemaType":"PUBLIC"},"migrationHosts":["host-a"]}`
	o, g, m, v := "/api/atlas/v2/orgs/"+e.orgID, "/api/atlas/v2/groups/"+e.groupID, migrationID, validationID
	return []endpoint{
		{"GET", "/api/atlas/v2/orgs", "", "read", true},
		{"POST", "/api/atlas/v2/orgs", `{"name":"n"}`, "admin", true},
		{"GET", o, "", "read", false},
		{"POST", o + "/users", `{"username":"u1","password":"password1","roles":[{"roleName":"ORG_MEMBER"}]}`, "owner", false},
		{"POST", o + "/apiKeys", `{"desc":"d","roles":[{"roleName":"ORG_MEMBER"}]}`, "owner", false},
		{"GET", "/api/atlas/v2/groups", "", "read", true},
		{"POST", "/api/atlas/v2/groups", `{"name":"p9","orgId":"` + e.orgID + `"}`, "owner", false},
		{"GET", g, "", "read", false},
		{"POST", g + "/clusters", `{"name":"c9","connectionString":"mongodb://h"}`, "owner", false},
		{"GET", g + "/clusters", "", "read", false},
		{"GET", g + "/clusters/dest", "", "read", false},
		{"DELETE", g + "/clusters/nosuch", "", "owner", false},
		{"PUT", g + "/integrations/WEBHOOK", `{"url":"http://127.0.0.1:1/h"}`, "owner", false},
		{"GET", g + "/integrations/WEBHOOK", "", "read", false},
		{"DELETE", g + "/integrations/WEBHOOK", "", "owner", false},
		{"POST", o + "/liveMigrations/linkTokens", `{"accessListIps":[]}`, "owner", false},
		{"DELETE", o + "/liveMigrations/linkTokens", "", "owner", false},
		{"GET", o + "/liveMigrations/availableProjects", "", "owner", false},
		{"GET", o + "/liveMigrations/x-agents", "", "read", false},
		{"POST", g + "/liveMigrations/validate", req, "owner", false},
		{"GET", g + "/liveMigrations/validate/" + v, "", "owner", false},
		{"GET", g + "/liveMigrations/validate/" + v + "/x-checks", "", "owner", false},
		{"POST", g + "/liveMigrations", req, "owner", false},
		{"GET", g + "/liveMigrations/" + m, "", "read", false},
		{"GET", g + "/liveMigrations", "", "read", false},
		{"PUT", g + "/liveMigrations/" + m + "/cutover", "", "owner", false},
		{"POST", g + "/liveMigrations/" + m + "/x-cancel", "", "owner", false},
		{"POST", g + "/liveMigrations/" + m + "/x-extend", "", "owner", false},
		{"GET", g + "/liveMigrations/" + m + "/x-progress", "", "read", false},
		{"GET", g + "/liveMigrations/" + m + "/x-report", "", "read", false},
		{"GET", g + "/liveMigrations/" + m + "/x-events", "", "read", false},
		{"GET", "/api/session", "", "read", true},
		{"DELETE", "/api/session", "", "read", true},
	}
}

func (e *env) creds(c string) (string, string) {
	for i, n := range e.names {
		if n == "publicKey-"+c {
			return e.secrets[i], e.secrets[i+1]
		}
	}
	e.t.Fatalf("no key %s", c)
	return "", ""
}

// TestAuth: every endpoint refuses no credentials (401), bad credentials
// (401), another organization's owner (404, nothing leaks) and a member where
// an owner is needed (403).
func TestAuth(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	v, err := e.owner.CreateValidation(ctx, e.groupID, e.request())
	must(t, err)
	m, err := e.owner.CreateMigration(ctx, e.groupID, e.request())
	must(t, err)
	memberU, memberP := e.creds("member")
	otherU, otherP := e.creds("other")
	ownerU, _ := e.creds("owner")
	for _, ep := range e.endpoints(m.ID, v.ID) {
		name := ep.method + " " + strings.NewReplacer(e.groupID, "{groupId}", e.orgID, "{orgId}", m.ID, "{id}", v.ID, "{id}").Replace(ep.path)
		t.Run(name, func(t *testing.T) {
			body := func() []byte {
				if ep.body == "" {
					return nil
				}
				return []byte(ep.body)
			}
			check := func(who string, status int, env api.ErrorEnvelope, want int) {
				t.Helper()
				if status != want {
					t.Errorf("%s: status %d, want %d", who, status, want)
				}
				if status >= 400 && (env.Error != status || env.ErrorCode == "") {
					t.Errorf("%s: envelope %+v does not match status %d", who, env, status)
				}
			}
			st, env := e.raw(ep.method, ep.path, "", "", body())
			check("no credentials", st, env, http.StatusUnauthorized)
			st, env = e.raw(ep.method, ep.path, ownerU, "wrong", body())
			check("wrong private key", st, env, http.StatusUnauthorized)
			if strings.HasPrefix(ep.path, "/api/session") {
				return
			}
			if !ep.global {
				st, env = e.raw(ep.method, ep.path, otherU, otherP, body())
				check("another organization's owner", st, env, http.StatusNotFound)
			}
			switch ep.need {
			case "owner", "admin":
				st, env = e.raw(ep.method, ep.path, memberU, memberP, body())
				check("member", st, env, http.StatusForbidden)
			case "read":
				if st, _ := e.raw(ep.method, ep.path, memberU, memberP, body()); st >= 400 && st != http.StatusNotFound {
					t.Errorf("member read: status %d", st)
				}
			}
		})
	}
	// Agent endpoints need the agent secret.
	for _, ep := range []struct{ method, path string }{
		{"POST", "/api/agent/v1/heartbeat"}, {"PUT", "/api/agent/v1/deployments"}, {"GET", "/api/agent/v1/work"},
		{"POST", "/api/agent/v1/work/1/ack"}, {"POST", "/api/agent/v1/validations/" + v.ID + "/result"},
		{"POST", "/api/agent/v1/migrations/" + m.ID + "/progress"}, {"POST", "/api/agent/v1/migrations/" + m.ID + "/report"},
	} {
		for _, c := range [][2]string{{"", ""}, {"bearer", "lma_wrong"}, {ownerU, "x"}} {
			if st, env := e.raw(ep.method, ep.path, c[0], c[1], []byte(`{}`)); st != http.StatusUnauthorized || env.Error != st {
				t.Errorf("%s %s with %q: status %d, envelope %+v; want 401", ep.method, ep.path, c[0], st, env)
			}
		}
	}
	if st, _ := e.raw("POST", "/api/agent/v1/register", "", "", []byte(`{"linkToken":"bm9wZQ","hostname":"h"}`)); st != http.StatusUnauthorized {
		t.Errorf("register with a bad link token: status %d, want 401", st)
	}
}

// TestBadBodies: malformed and oversized bodies are 400 with the envelope, on
// every endpoint that takes a body.
func TestBadBodies(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	m, err := e.owner.CreateMigration(ctx, e.groupID, e.request())
	must(t, err)
	ownerU, ownerP := e.creds("owner")
	agentSecret := e.secrets[indexOf(e.names, "agentSecret")]
	big := []byte(`{"name":"` + strings.Repeat("x", 9<<20) + `"}`)
	type target struct{ method, path, user, pass string }
	var targets []target
	for _, ep := range e.endpoints(m.ID, "nosuch") {
		if ep.body == "" {
			continue
		}
		u, p := ownerU, ownerP
		if ep.need == "admin" {
			u, p = "root", "root-password"
		}
		targets = append(targets, target{ep.method, ep.path, u, p})
	}
	targets = append(targets,
		target{"POST", "/api/session", "", ""},
		target{"POST", "/api/agent/v1/register", "", ""},
		target{"PUT", "/api/agent/v1/deployments", "bearer", agentSecret},
		target{"POST", "/api/agent/v1/validations/x/result", "bearer", agentSecret},
		target{"POST", "/api/agent/v1/migrations/" + m.ID + "/progress", "bearer", agentSecret},
		target{"POST", "/api/agent/v1/migrations/" + m.ID + "/report", "bearer", agentSecret},
	)
	for _, tg := range targets {
		for _, c := range []struct {
			name string
			body []byte
			code string
		}{
			{"malformed", []byte(`{"name":`), "INVALID_JSON"},
			{"wrong type", []byte(`{"name":42,"status":7}`), "INVALID_JSON"},
			{"trailing data", []byte(`{} {}`), "INVALID_JSON"},
			{"oversized", big, "REQUEST_BODY_TOO_LARGE"},
		} {
			st, env := e.raw(tg.method, tg.path, tg.user, tg.pass, c.body)
			if st != http.StatusBadRequest || env.Error != 400 || env.ErrorCode != c.code || env.Reason != "Bad Request" {
				t.Errorf("%s %s %s: status %d envelope %+v, want 400 %s", tg.method, tg.path, c.name, st, env, c.code)
			}
		}
	}
}
