package controlplane

import (
	"net/http"
	"testing"

	"github.com/livemigrate/livemigrate/internal/api"
)

// linkedHost is a bootstrapped control plane, served by h, with a project
// holding destination cluster "dest" and migration host "host-a" linked and
// reporting source deployment "rs0": what the in-package timer, downtime and
// email tests start from.
type linkedHost struct {
	h             http.Handler
	admin, agent  func(*http.Request) // authenticate as the owner, as the agent
	groupID       string              // the destination project
	sourceGroupID string              // the source project of available projects
	linkToken     string              // the org's link token host-a registered with
	reg           *api.AgentRegistration
}

// linkHost sets up linkedHost on a control plane of orgID (the Bootstrap
// owner is root/root-password).
func linkHost(t *testing.T, h http.Handler, orgID string) linkedHost {
	t.Helper()
	l := linkedHost{h: h, admin: func(r *http.Request) { r.SetBasicAuth("root", "root-password") }}
	var projects api.Page[api.Project]
	call(t, h, "GET", "/api/atlas/v2/groups", l.admin, nil, &projects)
	l.groupID = projects.Results[0].ID
	call(t, h, "POST", "/api/atlas/v2/groups/"+l.groupID+"/clusters", l.admin, api.ClusterRequest{Name: "dest", ConnectionString: "mongodb://d"}, &api.Cluster{})
	var tok api.LinkToken
	call(t, h, "POST", "/api/atlas/v2/orgs/"+orgID+"/liveMigrations/linkTokens", l.admin, api.LinkTokenRequest{}, &tok)
	l.linkToken, l.reg = tok.LinkToken, &api.AgentRegistration{}
	l.register(t)
	l.agent = func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+l.reg.AgentSecret) }
	call(t, h, "PUT", "/api/agent/v1/deployments", l.agent, api.DeploymentsReport{Deployments: []api.Deployment{{Name: "rs0"}}}, nil)
	var avail []api.AvailableProject
	call(t, h, "GET", "/api/atlas/v2/orgs/"+orgID+"/liveMigrations/availableProjects", l.admin, nil, &avail)
	l.sourceGroupID = avail[0].ProjectID
	return l
}

// register registers host-a with the link token and the credential it
// kept, as a (re)started agent does; agent authenticates with it.
func (l linkedHost) register(t *testing.T) {
	t.Helper()
	call(t, l.h, "POST", "/api/agent/v1/register", nil, api.AgentRegisterRequest{LinkToken: l.linkToken, Hostname: "host-a", Version: "v1", AgentSecret: l.reg.AgentSecret}, l.reg)
}

// migrate creates a live migration from rs0 into dest on host-a and
// returns it with its Admin API path.
func (l linkedHost) migrate(t *testing.T) (api.Migration, string) {
	t.Helper()
	var m api.Migration
	call(t, l.h, "POST", "/api/atlas/v2/groups/"+l.groupID+"/liveMigrations", l.admin, api.MigrationRequest{
		Source:         api.MigrationSource{ClusterName: "rs0", GroupID: l.sourceGroupID},
		Destination:    api.MigrationDestination{ClusterName: "dest", GroupID: l.groupID, HostnameSchemaType: api.HostnamePublic},
		MigrationHosts: []string{"host-a"},
	}, &m)
	return m, "/api/atlas/v2/groups/" + l.groupID + "/liveMigrations/" + m.ID
}
